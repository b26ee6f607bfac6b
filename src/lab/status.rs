//! What the lab shows: each device's role, groups and sync state from its `<get>` reply, and
//! the receiver's tally, as a small table.

use super::scenario::RoleSource;
use crate::xml::Element;
use std::fmt::Write;

/// The subtree filter that fetches everything the status table shows.
pub const FILTER: &str = "<interfaces xmlns=\"urn:ietf:params:xml:ns:yang:ietf-interfaces\">\
<interface><name/><mld xmlns=\"urn:mldhb:yang:mldhb-mld\"><group-count/><is-querier/>\
<group><address/><origin/></group></mld>\
<ipv6 xmlns=\"urn:ietf:params:xml:ns:yang:ietf-ip\"><vrrp xmlns=\"urn:ietf:params:xml:ns:yang:ietf-vrrp\">\
<vrrp-instance><vrid/><state/></vrrp-instance></vrrp></ipv6></interface></interfaces>\
<remote-backup xmlns=\"urn:mldhb:yang:mldhb-rbs\"><service><name/><state/></service>\
<profile><name/><role/><batch-sync/><local-entries/><peer-entries/></profile></remote-backup>\
<e-trunk xmlns=\"urn:mldhb:yang:mldhb-etrunk\"><id/><state/></e-trunk>\
<multicast xmlns=\"urn:mldhb:yang:mldhb-multicast\"><forwarding><entry-count/>\
<active-entry-count/></forwarding></multicast>";

/// One device's row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceStatus {
    pub vrrp: String,
    /// The first E-Trunk's state.
    pub etrunk: String,
    pub role: String,
    pub querier: bool,
    pub local_groups: usize,
    pub peer_groups: usize,
    pub rbs: String,
    pub batch: String,
    pub fwd_active: String,
    pub fwd_all: String,
}

/// Elements under `el` along a path of local names.
fn descend<'a>(el: &'a Element, path: &[&str]) -> Vec<&'a Element> {
    let mut level = vec![el];
    for name in path {
        level = level
            .into_iter()
            .flat_map(|e| e.children.iter().filter(move |c| c.name == *name))
            .collect();
    }
    level
}

fn text_at(el: &Element, path: &[&str]) -> Option<String> {
    descend(el, path)
        .first()
        .map(|e| e.trimmed_text().to_string())
}

impl DeviceStatus {
    /// Reads the row from a `<data>` element (the reply to `<get>` with [`FILTER`]); groups come
    /// from the role source's downstream interface; what the device does not report shows as "-".
    pub fn from_data(data: &Element, rs: RoleSource) -> DeviceStatus {
        let downstream = rs.downstream();
        let dash = || "-".to_string();
        let iface = descend(data, &["interfaces", "interface"])
            .into_iter()
            .find(|i| text_at(i, &["name"]).as_deref() == Some(downstream));
        let mut st = DeviceStatus {
            vrrp: dash(),
            etrunk: dash(),
            role: dash(),
            rbs: dash(),
            batch: dash(),
            fwd_active: dash(),
            fwd_all: dash(),
            ..Default::default()
        };
        if let Some(i) = iface {
            st.vrrp = text_at(i, &["ipv6", "vrrp", "vrrp-instance", "state"])
                .map(|s| s.rsplit(':').next().unwrap_or(&s).to_string())
                .unwrap_or_else(dash);
            st.querier = text_at(i, &["mld", "is-querier"]).as_deref() == Some("true");
            for g in descend(i, &["mld", "group"]) {
                match text_at(g, &["origin"]).as_deref() {
                    Some("peer") => st.peer_groups += 1,
                    _ => st.local_groups += 1,
                }
            }
        }
        st.etrunk = text_at(data, &["e-trunk", "state"]).unwrap_or_else(dash);
        if let Some(p) = descend(data, &["remote-backup", "profile"]).first() {
            st.role = text_at(p, &["role"]).unwrap_or_else(dash);
            st.batch = text_at(p, &["batch-sync"]).unwrap_or_else(dash);
        }
        if let Some(s) = descend(data, &["remote-backup", "service"]).first() {
            st.rbs = text_at(s, &["state"]).unwrap_or_else(dash);
        }
        st.fwd_active =
            text_at(data, &["multicast", "forwarding", "active-entry-count"]).unwrap_or_else(dash);
        st.fwd_all =
            text_at(data, &["multicast", "forwarding", "entry-count"]).unwrap_or_else(dash);
        st
    }

    /// The state of the lab's role source: the VRRP6 instance's, or the E-Trunk's.
    pub fn source_state(&self, rs: RoleSource) -> &str {
        match rs {
            RoleSource::Vrrp6 => &self.vrrp,
            RoleSource::ETrunk => &self.etrunk,
        }
    }
}

/// The receiver's summary, read from the top of its JSON report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverStatus {
    pub rate_pps: f64,
    pub groups_flowing: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub max_gap_ms: f64,
}

/// The number after `"key":` at its first occurrence.
pub fn json_number(text: &str, key: &str) -> Option<f64> {
    let at = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &text[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl ReceiverStatus {
    pub fn from_report(text: &str) -> Option<ReceiverStatus> {
        Some(ReceiverStatus {
            rate_pps: json_number(text, "rate_pps")?,
            groups_flowing: json_number(text, "groups_flowing")? as u64,
            missing: json_number(text, "missing")? as u64,
            duplicates: json_number(text, "duplicates")? as u64,
            max_gap_ms: json_number(text, "max_gap_ms")?,
        })
    }
}

/// The status table; a device that cannot be reached shows its error instead of a row.
pub fn render(
    rs: RoleSource,
    devices: &[(&str, Result<DeviceStatus, String>)],
    receiver: Option<&ReceiverStatus>,
    groups: u32,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<7} {:<11} {:<8} {:<8} {:>6} {:>6} {:<12} {:<12} {:>11}",
        "device",
        rs.as_str(),
        "role",
        "querier",
        "local",
        "peer",
        "rbs",
        "batch",
        "fwd act/all"
    );
    for (name, st) in devices {
        match st {
            Ok(s) => {
                let _ = writeln!(
                    out,
                    "{:<7} {:<11} {:<8} {:<8} {:>6} {:>6} {:<12} {:<12} {:>11}",
                    name,
                    s.source_state(rs),
                    s.role,
                    if s.querier { "yes" } else { "no" },
                    s.local_groups,
                    s.peer_groups,
                    s.rbs,
                    s.batch,
                    format!("{}/{}", s.fwd_active, s.fwd_all)
                );
            }
            Err(e) => {
                let _ = writeln!(out, "{name:<7} unreachable: {e}");
            }
        }
    }
    match receiver {
        Some(r) => {
            let _ = writeln!(
                out,
                "receiver: {}/{} groups flowing, {:.0} packets/s, {} missing, {} duplicates, longest gap {:.0} ms",
                r.groups_flowing, groups, r.rate_pps, r.missing, r.duplicates, r.max_gap_ms
            );
        }
        None => {
            let _ = writeln!(out, "receiver: no report yet");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_from_the_get_reply() {
        let xml = r#"<data xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface><name>eth1</name>
<mld xmlns="urn:mldhb:yang:mldhb-mld"><is-querier>true</is-querier>
<group><address>ff0e::1</address><origin>local</origin></group>
<group><address>ff0e::2</address><origin>peer</origin></group></mld>
<ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"><vrrp xmlns="urn:ietf:params:xml:ns:yang:ietf-vrrp">
<vrrp-instance><vrid>1</vrid><state xmlns:vrrp="urn:ietf:params:xml:ns:yang:ietf-vrrp">vrrp:master</state></vrrp-instance></vrrp></ipv6></interface></interfaces>
<remote-backup xmlns="urn:mldhb:yang:mldhb-rbs"><service><name>rbs1</name><state>up</state></service>
<profile><name>rbp1</name><role>master</role><batch-sync>complete</batch-sync></profile></remote-backup>
<multicast xmlns="urn:mldhb:yang:mldhb-multicast"><forwarding><entry-count>2</entry-count><active-entry-count>1</active-entry-count></forwarding></multicast>
</data>"#;
        let el = crate::xml::parse(xml.as_bytes()).unwrap();
        let st = DeviceStatus::from_data(&el, RoleSource::Vrrp6);
        assert_eq!(st.vrrp, "master");
        assert_eq!(st.role, "master");
        assert!(st.querier);
        assert_eq!((st.local_groups, st.peer_groups), (1, 1));
        assert_eq!((st.rbs.as_str(), st.batch.as_str()), ("up", "complete"));
        assert_eq!((st.fwd_active.as_str(), st.fwd_all.as_str()), ("1", "2"));
        let table = render(
            RoleSource::Vrrp6,
            &[("A", Ok(st)), ("B", Err("refused".into()))],
            None,
            10,
        );
        assert!(table.contains("B       unreachable: refused"));
        assert!(table.starts_with("device  vrrp6"));
    }

    #[test]
    fn etrunk_rows_show_the_etrunk_state_and_the_eth_trunk_groups() {
        let xml = r#"<data xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces">
<interface><name>eth1</name></interface>
<interface><name>Eth-Trunk1</name><mld xmlns="urn:mldhb:yang:mldhb-mld"><is-querier>false</is-querier>
<group><address>ff0e::1</address><origin>peer</origin></group>
<group><address>ff0e::2</address><origin>peer</origin></group></mld></interface></interfaces>
<remote-backup xmlns="urn:mldhb:yang:mldhb-rbs"><profile><name>rbp1</name><role>backup</role></profile></remote-backup>
<e-trunk xmlns="urn:mldhb:yang:mldhb-etrunk"><id>1</id><state>backup</state></e-trunk>
</data>"#;
        let el = crate::xml::parse(xml.as_bytes()).unwrap();
        let st = DeviceStatus::from_data(&el, RoleSource::ETrunk);
        assert_eq!(st.source_state(RoleSource::ETrunk), "backup");
        assert_eq!(st.source_state(RoleSource::Vrrp6), "-");
        assert_eq!((st.local_groups, st.peer_groups), (0, 2));
        assert!(!st.querier);
        let table = render(RoleSource::ETrunk, &[("B", Ok(st))], None, 2);
        assert!(table.starts_with("device  e-trunk"), "{table}");
        assert!(table.contains("B       backup      backup"), "{table}");
    }

    #[test]
    fn receiver_summary_is_read_from_the_report_head() {
        let text = r#"{"elapsed_s":3.0,"rate_pps":2000.0,"groups_flowing":100,"missing":4,"duplicates":0,"max_gap_ms":51.5,"groups":[{"missing":9}]}"#;
        let r = ReceiverStatus::from_report(text).unwrap();
        assert_eq!(r.groups_flowing, 100);
        assert_eq!(r.missing, 4);
        assert_eq!(r.max_gap_ms, 51.5);
        assert!(ReceiverStatus::from_report("{}").is_none());
    }
}
