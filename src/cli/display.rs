//! The operational displays: remote backup services and profiles, VRRP6, MLD groups and
//! interfaces, E-Trunks, as aligned tables read from `<get>`.

use super::client::{Client, ClientError};
use super::commands::{ns, Display};
use crate::xml::Element;

/// Lays rows out under headers, each column as wide as its widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < width.len() {
                width[i] = width[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    out.push_str(&"-".repeat(width.iter().sum::<usize>() + 2 * (width.len().saturating_sub(1))));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Aligned `key : value` lines.
fn pairs(indent: &str, items: &[(&str, String)]) -> String {
    let w = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    items
        .iter()
        .map(|(k, v)| format!("{indent}{k:<w$} : {v}\n"))
        .collect()
}

fn text(e: &Element, ns: &str, name: &str) -> Option<String> {
    e.child(ns, name).map(|c| {
        let t = c.trimmed_text();
        // Identities show without their prefix.
        match (&c.text_ns, t.split_once(':')) {
            (Some(_), Some((_, n))) => n.to_string(),
            _ => t.to_string(),
        }
    })
}

fn or_dash(v: Option<String>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())
}

fn or_default(v: Option<String>, d: &str) -> String {
    v.unwrap_or_else(|| d.to_string())
}

fn children<'a>(e: &'a Element, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> {
    e.children
        .iter()
        .filter(move |c| c.ns == ns && c.name == name)
}

fn path<'a>(e: &'a Element, steps: &[(&str, &str)]) -> Option<&'a Element> {
    steps.iter().try_fold(e, |cur, (p, n)| cur.child(ns(p), n))
}

/// Seconds as `HH:MM:SS` (days in front when needed).
pub fn duration(secs: Option<String>) -> String {
    let Some(s) = secs.and_then(|s| s.parse::<u64>().ok()) else {
        return "-".into();
    };
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

fn get(client: &mut Client, filter: &str) -> Result<Element, ClientError> {
    client.data(&format!(
        "<get><filter type=\"subtree\">{filter}</filter></get>"
    ))
}

fn interfaces_filter(inner: &str) -> String {
    format!(
        "<interfaces xmlns=\"{}\"><interface>{inner}</interface></interfaces>",
        ns("if")
    )
}

fn interfaces(data: &Element) -> Vec<&Element> {
    data.child(ns("if"), "interfaces")
        .map(|i| children(i, ns("if"), "interface").collect())
        .unwrap_or_default()
}

fn name_of(e: &Element, prefix: &str) -> String {
    text(e, ns(prefix), "name").unwrap_or_default()
}

/// Runs one display command.
pub fn show(client: &mut Client, what: Display, arg: Option<&str>) -> Result<String, ClientError> {
    match what {
        Display::Rbs => services(client, arg),
        Display::Rbp => profiles(client, arg),
        Display::Vrrp6 => vrrp6(client, false),
        Display::Vrrp6Brief => vrrp6(client, true),
        Display::MldGroup => mld_groups(client, false),
        Display::MldGroupVerbose => mld_groups(client, true),
        Display::MldInterface => mld_interfaces(client, false),
        Display::MldInterfaceVerbose => mld_interfaces(client, true),
        Display::ETrunk => etrunks(client, arg),
        Display::Current | Display::This => Ok(String::new()),
    }
}

fn name_filter(arg: Option<&str>, key: &str) -> String {
    arg.map(|n| format!("<{key}>{}</{key}>", crate::xml::escape_text(n)))
        .unwrap_or_default()
}

fn services(client: &mut Client, arg: Option<&str>) -> Result<String, ClientError> {
    let rbs = ns("rbs");
    let data = get(
        client,
        &format!(
            "<remote-backup xmlns=\"{rbs}\"><service>{}</service></remote-backup>",
            name_filter(arg, "name")
        ),
    )?;
    let mut rows = Vec::new();
    if let Some(rb) = data.child(rbs, "remote-backup") {
        for s in children(rb, rbs, "service") {
            let st = s.child(rbs, "statistics");
            let stat = |n: &str| or_dash(st.and_then(|st| text(st, rbs, n)));
            rows.push(vec![
                name_of(s, "rbs"),
                or_dash(text(s, rbs, "peer-ipv6")),
                or_dash(text(s, rbs, "source-ipv6")),
                or_dash(text(s, rbs, "port")),
                or_dash(text(s, rbs, "state")),
                match text(s, rbs, "authenticated").as_deref() {
                    Some("true") => "yes".into(),
                    Some("false") => "no".into(),
                    _ => if s.child(rbs, "security-key").is_some() {
                        "key"
                    } else {
                        "-"
                    }
                    .into(),
                },
                or_dash(text(s, rbs, "last-down-reason")),
                stat("frames-sent"),
                stat("frames-received"),
                stat("resyncs"),
            ]);
        }
    }
    if rows.is_empty() && arg.is_some() {
        return Ok(format!(
            "Info: No remote backup service named {}.\n",
            arg.unwrap_or("")
        ));
    }
    Ok(table(
        &[
            "Name",
            "Peer",
            "Source",
            "Port",
            "State",
            "Auth",
            "Last down",
            "Sent",
            "Received",
            "Resyncs",
        ],
        &rows,
    ))
}

fn profiles(client: &mut Client, arg: Option<&str>) -> Result<String, ClientError> {
    let rbs = ns("rbs");
    let data = get(
        client,
        &format!(
            "<remote-backup xmlns=\"{rbs}\"><profile>{}</profile></remote-backup>{}",
            name_filter(arg, "name"),
            interfaces_filter(&format!("<name/><remote-backup-profile xmlns=\"{rbs}\"/>"))
        ),
    )?;
    let bound: Vec<(String, String)> = interfaces(&data)
        .into_iter()
        .filter_map(|i| Some((text(i, rbs, "remote-backup-profile")?, name_of(i, "if"))))
        .collect();
    let mut rows = Vec::new();
    if let Some(rb) = data.child(rbs, "remote-backup") {
        for p in children(rb, rbs, "profile") {
            let name = name_of(p, "rbs");
            let source = match (text(p, rbs, "vrrp6-id"), text(p, rbs, "e-trunk-id")) {
                (Some(v), _) => format!(
                    "vrrp6 {v} {}",
                    text(p, rbs, "interface").unwrap_or_default()
                ),
                (_, Some(e)) => format!(
                    "e-trunk {e} eth-trunk {}",
                    text(p, rbs, "eth-trunk-id").unwrap_or_default()
                ),
                _ => "-".into(),
            };
            let ifs: Vec<&str> = bound
                .iter()
                .filter(|(p, _)| *p == name)
                .map(|(_, i)| i.as_str())
                .collect();
            rows.push(vec![
                name,
                or_dash(text(p, rbs, "backup-id")),
                or_dash(text(p, rbs, "remote-backup-service")),
                source,
                or_default(text(p, rbs, "backup-mode"), "master-backup"),
                or_default(text(p, rbs, "load-balance"), "master-only"),
                or_dash(text(p, rbs, "role")),
                or_dash(text(p, rbs, "batch-sync")),
                or_dash(text(p, rbs, "local-entries")),
                or_dash(text(p, rbs, "peer-entries")),
                or_dash(text(p, rbs, "switchovers")),
                if ifs.is_empty() {
                    "-".into()
                } else {
                    ifs.join(",")
                },
            ]);
        }
    }
    if rows.is_empty() && arg.is_some() {
        return Ok(format!(
            "Info: No remote backup profile named {}.\n",
            arg.unwrap_or("")
        ));
    }
    Ok(table(
        &[
            "Name",
            "Backup-ID",
            "Service",
            "Role source",
            "Mode",
            "Load-balance",
            "Role",
            "Batch",
            "Local",
            "Peer",
            "Switchovers",
            "Interfaces",
        ],
        &rows,
    ))
}

fn vrrp6(client: &mut Client, brief: bool) -> Result<String, ClientError> {
    let (ip, v) = (ns("ip"), ns("vrrp"));
    let data = get(
        client,
        &interfaces_filter(&format!(
            "<name/><ipv6 xmlns=\"{ip}\"><vrrp xmlns=\"{v}\"/></ipv6>"
        )),
    )?;
    let mut rows = Vec::new();
    let mut detail = String::new();
    for i in interfaces(&data) {
        let ifname = name_of(i, "if");
        let Some(vr) = path(i, &[("ip", "ipv6"), ("vrrp", "vrrp")]) else {
            continue;
        };
        for inst in children(vr, v, "vrrp-instance") {
            let vips: Vec<String> = inst
                .child(v, "virtual-ipv6-addresses")
                .map(|a| {
                    children(a, v, "virtual-ipv6-address")
                        .filter_map(|x| text(x, v, "ipv6-address"))
                        .collect()
                })
                .unwrap_or_default();
            let vrid = or_dash(text(inst, v, "vrid"));
            let state = or_dash(text(inst, v, "state"));
            let prio = or_default(text(inst, v, "priority"), "100");
            let adv = or_default(text(inst, v, "advertise-interval-centi-sec"), "100");
            if brief {
                rows.push(vec![
                    ifname.clone(),
                    vrid,
                    state,
                    prio,
                    adv,
                    if vips.is_empty() {
                        "-".into()
                    } else {
                        vips.join(",")
                    },
                ]);
                continue;
            }
            let pre = inst.child(v, "preempt");
            let preempt = match pre.and_then(|p| text(p, v, "enabled")).as_deref() {
                Some("false") => "disabled".to_string(),
                _ => format!(
                    "enabled, delay {} s",
                    or_default(pre.and_then(|p| text(p, v, "hold-time")), "0")
                ),
            };
            let wait = inst.child(ns("mhvrrp"), "preempt-wait");
            let st = inst.child(v, "statistics");
            let stat = |n: &str| or_dash(st.and_then(|s| text(s, v, n)));
            detail.push_str(&format!("{ifname} | Virtual Router {vrid}\n"));
            detail.push_str(&pairs(
                "  ",
                &[
                    ("State", state),
                    (
                        "Virtual IP",
                        if vips.is_empty() {
                            "-".into()
                        } else {
                            vips.join(", ")
                        },
                    ),
                    ("Priority", prio),
                    ("Preempt", preempt),
                    (
                        "Preempt wait",
                        match wait {
                            Some(w) => format!(
                                "delay remaining {} s, waiting for batch sync {}",
                                or_dash(text(w, ns("mhvrrp"), "delay-remaining")),
                                or_dash(text(w, ns("mhvrrp"), "waiting-for-batch-sync"))
                            ),
                            None => "-".into(),
                        },
                    ),
                    ("Timer advertise", format!("{adv} cs")),
                    ("Last adv source", or_dash(text(inst, v, "last-adv-source"))),
                    (
                        "Master down interval",
                        text(inst, v, "master-down-interval")
                            .map(|m| format!("{m} cs"))
                            .unwrap_or_else(|| "-".into()),
                    ),
                    (
                        "New master reason",
                        or_dash(text(inst, v, "new-master-reason")),
                    ),
                    ("Master transitions", stat("master-transitions")),
                    ("Advertisements sent", stat("advertisement-sent")),
                    ("Advertisements received", stat("advertisement-rcvd")),
                ],
            ));
            detail.push('\n');
        }
    }
    if brief {
        Ok(table(
            &[
                "Interface",
                "VRID",
                "State",
                "Priority",
                "Adv(cs)",
                "Virtual IP",
            ],
            &rows,
        ))
    } else if detail.is_empty() {
        Ok("Info: No VRRP6 group is configured.\n".into())
    } else {
        Ok(detail)
    }
}

fn mld_groups(client: &mut Client, verbose: bool) -> Result<String, ClientError> {
    let m = ns("mld");
    let data = get(
        client,
        &interfaces_filter(&format!("<name/><mld xmlns=\"{m}\"><group/></mld>")),
    )?;
    let mut rows = Vec::new();
    for i in interfaces(&data) {
        let ifname = name_of(i, "if");
        let Some(mld) = i.child(m, "mld") else {
            continue;
        };
        for g in children(mld, m, "group") {
            rows.push(vec![
                ifname.clone(),
                or_dash(text(g, m, "address")),
                or_dash(text(g, m, "filter-mode")),
                or_dash(text(g, m, "version")),
                or_dash(text(g, m, "origin")),
                or_dash(text(g, m, "last-reporter")),
                duration(text(g, m, "up-time")),
                duration(text(g, m, "expiry")),
            ]);
            if verbose {
                for s in children(g, m, "source") {
                    rows.push(vec![
                        String::new(),
                        format!("  source {}", or_dash(text(s, m, "address"))),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        duration(text(s, m, "up-time")),
                        duration(text(s, m, "expiry")),
                    ]);
                }
            }
        }
    }
    Ok(table(
        &[
            "Interface",
            "Group",
            "Mode",
            "Ver",
            "Origin",
            "Last reporter",
            "Uptime",
            "Expires",
        ],
        &rows,
    ))
}

fn mld_interfaces(client: &mut Client, verbose: bool) -> Result<String, ClientError> {
    let m = ns("mld");
    let data = get(
        client,
        &interfaces_filter(&format!("<name/><mld xmlns=\"{m}\"/>")),
    )?;
    let mut rows = Vec::new();
    let mut detail = String::new();
    for i in interfaces(&data) {
        let ifname = name_of(i, "if");
        let Some(mld) = i.child(m, "mld") else {
            continue;
        };
        let status = text(mld, m, "oper-status").unwrap_or_else(|| {
            if text(mld, m, "enable").as_deref() == Some("true") {
                "-".into()
            } else {
                "disabled".into()
            }
        });
        let row = vec![
            ifname.clone(),
            status,
            or_default(text(mld, m, "version"), "2"),
            or_dash(text(mld, m, "querier")),
            match text(mld, m, "is-querier").as_deref() {
                Some("true") => "yes".into(),
                Some("false") => "no".into(),
                _ => "-".into(),
            },
            or_dash(text(mld, m, "group-count")),
        ];
        if !verbose {
            rows.push(row);
            continue;
        }
        let st = mld.child(m, "statistics");
        let stat = |n: &str| or_dash(st.and_then(|s| text(s, m, n)));
        detail.push_str(&format!("Interface {ifname}\n"));
        detail.push_str(&pairs(
            "  ",
            &[
                ("State", row[1].clone()),
                ("Version", row[2].clone()),
                ("Querier", row[3].clone()),
                ("This device is querier", row[4].clone()),
                ("Groups", row[5].clone()),
                (
                    "Query interval",
                    format!("{} s", or_default(text(mld, m, "query-interval"), "125")),
                ),
                (
                    "Robust count",
                    or_default(text(mld, m, "robust-count"), "2"),
                ),
                (
                    "Max response time",
                    format!("{} s", or_default(text(mld, m, "max-response-time"), "10")),
                ),
                (
                    "Last listener query interval",
                    format!(
                        "{} s",
                        or_default(text(mld, m, "last-listener-query-interval"), "1")
                    ),
                ),
                (
                    "Other querier present",
                    text(mld, m, "other-querier-present-interval")
                        .map(|v| format!("{v} s"))
                        .unwrap_or_else(|| "computed".into()),
                ),
                (
                    "Other querier expires",
                    duration(text(mld, m, "other-querier-expiry")),
                ),
                (
                    "Track VRRP6 VRID",
                    or_dash(text(mld, m, "track-vrrp6-vrid")),
                ),
                ("Queries sent", stat("queries-sent")),
                ("Queries received", stat("queries-received")),
                ("V1 reports received", stat("v1-reports-received")),
                ("V2 reports received", stat("v2-reports-received")),
                ("Dones received", stat("dones-received")),
            ],
        ));
        detail.push('\n');
    }
    if verbose {
        Ok(if detail.is_empty() {
            "Info: MLD is not configured on any interface.\n".into()
        } else {
            detail
        })
    } else {
        Ok(table(
            &[
                "Interface",
                "State",
                "Version",
                "Querier",
                "Is querier",
                "Groups",
            ],
            &rows,
        ))
    }
}

fn etrunks(client: &mut Client, arg: Option<&str>) -> Result<String, ClientError> {
    let e = ns("etrunk");
    let data = get(
        client,
        &format!(
            "<e-trunk xmlns=\"{e}\">{}</e-trunk>{}",
            name_filter(arg, "id"),
            interfaces_filter(&format!("<name/><eth-trunk xmlns=\"{e}\"/>"))
        ),
    )?;
    let mut rows = Vec::new();
    for t in children(&data, e, "e-trunk") {
        rows.push(vec![
            or_dash(text(t, e, "id")),
            or_default(text(t, e, "priority"), "100"),
            or_dash(text(t, e, "state")),
            or_dash(text(t, e, "cause")),
            or_dash(text(t, e, "peer-ipv6")),
            or_dash(text(t, e, "peer-state")),
            or_dash(text(t, e, "peer-priority")),
            or_dash(text(t, e, "local-system-id")),
            or_dash(text(t, e, "peer-system-id")),
            match text(t, e, "authenticated").as_deref() {
                Some("true") => "yes".into(),
                Some("false") => "no".into(),
                _ => "-".into(),
            },
            duration(text(t, e, "revert-delay-remaining")),
        ]);
    }
    if rows.is_empty() && arg.is_some() {
        return Ok(format!("Info: No E-Trunk {}.\n", arg.unwrap_or("")));
    }
    let mut out = table(
        &[
            "E-Trunk",
            "Priority",
            "State",
            "Cause",
            "Peer",
            "Peer state",
            "Peer priority",
            "System-ID",
            "Peer system-ID",
            "Auth",
            "Revert wait",
        ],
        &rows,
    );
    let mut trunks = Vec::new();
    for i in interfaces(&data) {
        let Some(et) = i.child(e, "eth-trunk") else {
            continue;
        };
        let bound = text(et, e, "e-trunk");
        if arg.is_some() && bound.as_deref() != arg {
            continue;
        }
        let members: Vec<String> = children(et, e, "member")
            .map(|m| {
                format!(
                    "{}({})",
                    text(m, e, "name").unwrap_or_default(),
                    match text(m, e, "selected").as_deref() {
                        Some("true") => "selected",
                        Some("false") => "unselected",
                        _ => "-",
                    }
                )
            })
            .collect();
        trunks.push(vec![
            name_of(i, "if"),
            or_dash(bound),
            or_default(text(et, e, "e-trunk-mode"), "auto"),
            or_dash(text(et, e, "oper-role")),
            or_dash(text(et, e, "actor-system-id")),
            if members.is_empty() {
                "-".into()
            } else {
                members.join(",")
            },
        ]);
    }
    if !trunks.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &[
                "Eth-Trunk",
                "E-Trunk",
                "Mode",
                "Role",
                "Actor system-ID",
                "Members",
            ],
            &trunks,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "Bee"],
            &[
                vec!["long-cell".into(), "x".into()],
                vec!["s".into(), "yy".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "A          Bee");
        assert_eq!(lines[2], "long-cell  x");
        assert_eq!(lines[3], "s          yy");
        assert_eq!(duration(Some("3725".into())), "01:02:05");
        assert_eq!(duration(None), "-");
    }
}
