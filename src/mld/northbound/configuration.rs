//! MLD (mldhb-mld): configuration read into the runtime's typed settings, change by change (the
//! subtrees it owns and its provider).

use super::*;

/// MLD settings of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceMld {
    pub router: Config,
    pub require_router_alert: bool,
    pub track_vrrp6_vrid: Option<u8>,
}

/// The MLD settings of an interface entry, when MLD is configured and enabled on it.
pub fn interface_mld(entry: &Node) -> Option<InterfaceMld> {
    let mld = entry.children.get(&NodeKey::new(MLD, "mld"))?;
    if leaf(mld, "enable") != Some("true") {
        return None;
    }
    let d = Config::default();
    let mut static_groups = Vec::new();
    for (k, _) in mld.children.iter() {
        if k.name == "static-group" && k.id.len() == 2 {
            let (Ok(g), Ok(s)) = (k.id[0].parse::<Ipv6Addr>(), k.id[1].parse::<Ipv6Addr>()) else {
                continue;
            };
            static_groups.push((g, (!s.is_unspecified()).then_some(s)));
        }
    }
    Some(InterfaceMld {
        router: Config {
            version: num(mld, "version", d.version),
            robustness: num(mld, "robust-count", d.robustness),
            query_interval_s: num(mld, "query-interval", d.query_interval_s),
            max_response_s: num(mld, "max-response-time", d.max_response_s),
            last_listener_interval_s: num(
                mld,
                "last-listener-query-interval",
                d.last_listener_interval_s,
            ),
            other_querier_present_s: leaf(mld, "other-querier-present-interval")
                .and_then(|v| v.parse().ok()),
            max_entries: leaf(mld, "max-entries").and_then(|v| v.parse().ok()),
            static_groups,
        },
        require_router_alert: leaf(mld, "require-router-alert") != Some("false"),
        track_vrrp6_vrid: leaf(mld, "track-vrrp6-vrid").and_then(|v| v.parse().ok()),
    })
}

/// Every interface of a whole tree with MLD enabled, by name (for tests; the runtime decodes
/// only the entries a commit changed).
#[cfg(test)]
pub fn configured(root: &Node) -> BTreeMap<String, InterfaceMld> {
    let mut out = BTreeMap::new();
    let Some(ifs) = root.children.get(&NodeKey::new(IF, "interfaces")) else {
        return out;
    };
    for (k, entry) in ifs.children.iter() {
        if k.name == "interface" && k.id.len() == 1 {
            if let Some(m) = interface_mld(entry) {
                out.insert(k.id[0].clone(), m);
            }
        }
    }
    out
}

/// What the MLD runtime reads: each interface's MLD settings and the multicast switches.
pub const SUBTREES: &[Subtree] = &[
    Subtree::entries(&[(IF, "interfaces"), (IF, "interface")], &[(MLD, "mld")]),
    Subtree::whole(&[(MC, "multicast")]),
];

/// Refuses settings the routers cannot apply.
pub(super) fn check(name: &str, m: &InterfaceMld) -> Result<(), String> {
    for (g, _) in &m.router.static_groups {
        if !super::super::instance::forwardable(g) {
            return Err(format!(
                "{name}: static group {g} is link-scope or solicited-node and is never forwarded"
            ));
        }
    }
    Ok(())
}

/// The configuration after `changes`.
pub fn decode(current: &MldConfig, changes: &Changes) -> Result<MldConfig, String> {
    let mut next = current.clone();
    changes.update(0, &mut next.mld, |name, e| {
        let m = interface_mld(e);
        match &m {
            Some(m) if current.mld.get(name) != Some(m) => check(name, m)?,
            _ => {}
        }
        Ok(m)
    })?;
    if changes.touched(1) {
        let mc = changes.subtree(1);
        next.routing = forwarding::northbound::routing_enabled(mc);
        next.backend = forwarding::northbound::backend_choice(mc);
    }
    Ok(next)
}

impl Provider for MldRuntime {
    type Config = MldConfig;

    fn name(&self) -> &'static str {
        "mld"
    }

    fn subtrees(&self) -> &'static [Subtree] {
        SUBTREES
    }

    fn decode(&self, current: &MldConfig, changes: &Changes) -> Result<MldConfig, String> {
        decode(current, changes)
    }

    fn apply(&mut self, _: &MldConfig, next: &MldConfig, _: &Changes) -> Result<(), String> {
        self.configure(next.clone());
        Ok(())
    }
}
