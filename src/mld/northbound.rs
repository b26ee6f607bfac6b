//! The MLD part of the data model (mldhb-mld): configuration read into router parameters, and
//! router state printed as the model's operational nodes.

use super::instance::{Config, FilterMode, Origin, Router, Time};
use super::tasks::{MldConfig, MldRuntime};
use crate::datastore::tree::{Node, NodeKey};
use crate::forwarding;
use crate::northbound::registry::OperProvider;
use crate::northbound::registry::{Changes, Provider, Subtree};
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::sync::Arc;

const IF: &str = "ietf-interfaces";
const MLD: &str = "mldhb-mld";
const MC: &str = "mldhb-multicast";

/// MLD settings of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceMld {
    pub router: Config,
    pub require_router_alert: bool,
    pub track_vrrp6_vrid: Option<u8>,
}

fn leaf<'a>(n: &'a Node, name: &str) -> Option<&'a str> {
    n.leaf_value(MLD, name)
}

fn num<T: std::str::FromStr>(n: &Node, name: &str, default: T) -> T {
    leaf(n, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

/// Every interface with MLD enabled, by name.
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

fn secs_left(deadline: Option<Time>, now: Time) -> u32 {
    deadline.map_or(0, |d| (d.saturating_sub(now) / 1000) as u32)
}

fn mld_node<'a>(tree: &'a mut Node, name: &str) -> &'a mut Node {
    tree.child_mut(NodeKey::new(IF, "interfaces"))
        .list_entry_mut(IF, "interface", "name", name)
        .child_mut(NodeKey::new(MLD, "mld"))
}

/// Marks MLD down on an interface where it is enabled but cannot run (absent, down, or
/// without a link-local address).
pub fn merge_down(tree: &mut Node, name: &str) {
    mld_node(tree, name).set_leaf(MLD, "oper-status", "down");
}

/// Adds a router's state under `/interfaces/interface[name]/mld` of `tree`.
pub fn merge_state(tree: &mut Node, name: &str, router: &Router, now: Time) {
    let mld = mld_node(tree, name);
    mld.set_leaf(MLD, "oper-status", "up");
    let querier = match router.other_querier {
        Some((addr, _)) if !router.querier => addr,
        _ => router.own,
    };
    mld.set_leaf(MLD, "querier", querier.to_string());
    mld.set_leaf(MLD, "is-querier", router.querier.to_string());
    mld.set_leaf(
        MLD,
        "other-querier-expiry",
        secs_left(router.other_querier.map(|o| o.1), now).to_string(),
    );
    mld.set_leaf(MLD, "group-count", router.groups.len().to_string());
    let c = &router.counters;
    let mut stats = Node::default();
    stats.set_leaf(MLD, "queries-sent", c.queries_sent.to_string());
    stats.set_leaf(MLD, "queries-received", c.queries_received.to_string());
    stats.set_leaf(MLD, "v1-reports-received", c.v1_reports.to_string());
    stats.set_leaf(MLD, "v2-reports-received", c.v2_reports.to_string());
    stats.set_leaf(MLD, "dones-received", c.dones.to_string());
    let mut errors = Node::default();
    errors.set_leaf(MLD, "checksum", c.errors.checksum.to_string());
    errors.set_leaf(MLD, "hop-limit", c.errors.hop_limit.to_string());
    errors.set_leaf(MLD, "no-router-alert", c.errors.no_router_alert.to_string());
    errors.set_leaf(MLD, "bad-source", c.errors.bad_source.to_string());
    errors.set_leaf(MLD, "too-short", c.errors.too_short.to_string());
    errors.set_leaf(MLD, "limit-exceeded", c.limit_exceeded.to_string());
    stats
        .children
        .insert(NodeKey::new(MLD, "errors"), Arc::new(errors));
    mld.children
        .insert(NodeKey::new(MLD, "statistics"), Arc::new(stats));
    for (addr, g) in &router.groups {
        let mut e = Node::default();
        e.set_leaf(MLD, "address", addr.to_string());
        let mode = match g.mode {
            FilterMode::Include => "include",
            FilterMode::Exclude => "exclude",
        };
        e.set_leaf(MLD, "filter-mode", mode);
        let version = if g.v1_host_until.is_some_and(|t| t > now) {
            1
        } else {
            2
        };
        e.set_leaf(MLD, "version", version.to_string());
        let origin = match g.origin {
            Origin::Local => "local",
            Origin::Static => "static",
            Origin::Peer => "peer",
        };
        e.set_leaf(MLD, "origin", origin);
        if let Some(r) = g.last_reporter {
            e.set_leaf(MLD, "last-reporter", r.to_string());
        }
        e.set_leaf(
            MLD,
            "up-time",
            (now.saturating_sub(g.since) / 1000).to_string(),
        );
        e.set_leaf(MLD, "expiry", secs_left(g.filter_timer, now).to_string());
        for (s, t) in &g.sources {
            let mut se = Node::default();
            se.set_leaf(MLD, "address", s.to_string());
            se.set_leaf(MLD, "expiry", secs_left(*t, now).to_string());
            e.children.insert(
                NodeKey::with_id(MLD, "source", vec![s.to_string()]),
                Arc::new(se),
            );
        }
        mld.children.insert(
            NodeKey::with_id(MLD, "group", vec![addr.to_string()]),
            Arc::new(e),
        );
    }
}

/// What the MLD runtime reads: each interface's MLD settings and the multicast switches.
pub const SUBTREES: &[Subtree] = &[
    Subtree::entries(&[(IF, "interfaces"), (IF, "interface")], &[(MLD, "mld")]),
    Subtree::whole(&[(MC, "multicast")]),
];

/// Refuses settings the routers cannot apply.
fn check(name: &str, m: &InterfaceMld) -> Result<(), String> {
    for (g, _) in &m.router.static_groups {
        if !super::instance::forwardable(g) {
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
    for (id, entry) in changes.entries(0) {
        let [name] = id.as_slice() else { continue };
        match entry.and_then(interface_mld) {
            Some(m) => {
                if current.mld.get(name) != Some(&m) {
                    check(name, &m)?;
                }
                next.mld.insert(name.clone(), m);
            }
            None => {
                next.mld.remove(name);
            }
        }
    }
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

impl OperProvider for MldRuntime {
    fn merge_state(&self, tree: &mut Node) {
        self.with_state(|node, status, counters, now| {
            for name in node.cfg.keys() {
                match node.running.get(name) {
                    Some(r) => merge_state(tree, name, &r.router, now),
                    None => merge_down(tree, name),
                }
            }
            if node.fwd.enabled() {
                forwarding::northbound::merge_state(
                    tree,
                    &node.fwd.mfib,
                    &node.names,
                    counters,
                    now,
                );
            }
            forwarding::northbound::merge_status(tree, status);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mld::instance::Input;
    use crate::mld::packet::{Message, Record, RecordType};

    fn config(mld: &str) -> Node {
        let x = format!(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type><mld xmlns="urn:mldhb:yang:mldhb-mld">{mld}</mld></interface></interfaces></config>"#
        );
        let t = crate::northbound::edit::config_tree(&x);
        crate::northbound::validate::validate(&t).unwrap();
        t
    }

    #[test]
    fn defaults_and_overrides() {
        assert!(configured(&config("<enable>false</enable>")).is_empty());
        let c = configured(&config("<enable>true</enable>"));
        assert_eq!(c["eth1"].router, Config::default());
        assert!(c["eth1"].require_router_alert);
        let c = configured(&config(
            "<enable>true</enable><version>1</version><robust-count>3</robust-count><query-interval>60</query-interval>\
             <static-group><group>ff05::1</group><source>::</source></static-group>\
             <static-group><group>ff05::2</group><source>2001:db8::1</source></static-group>",
        ));
        let r = &c["eth1"].router;
        assert_eq!((r.version, r.robustness, r.query_interval_s), (1, 3, 60));
        assert_eq!(
            r.static_groups,
            vec![
                ("ff05::1".parse().unwrap(), None),
                (
                    "ff05::2".parse().unwrap(),
                    Some("2001:db8::1".parse().unwrap())
                )
            ]
        );
    }

    #[test]
    fn state_fits_the_model() {
        let own: Ipv6Addr = "fe80::2".parse().unwrap();
        let mut r = Router::new(Config::default(), own, 0);
        let rec = Record {
            kind: RecordType::ModeIsInclude,
            group: "ff05::1:3".parse().unwrap(),
            sources: vec!["2001:db8:100::10".parse().unwrap()],
            aux: vec![],
        };
        r.handle(
            0,
            Input::Received {
                from: "fe80::10".parse().unwrap(),
                msg: Message::V2Report { records: vec![rec] },
            },
        );
        let mut tree = config("<enable>true</enable>");
        merge_state(&mut tree, "eth1", &r, 5000);
        let xml = crate::northbound::convert::to_xml(&tree);
        assert!(xml.contains("<address>ff05::1:3</address>"), "{xml}");
        assert!(xml.contains("<expiry>255</expiry>"), "{xml}");
        // Every printed node exists in the schema with the right type.
        crate::yang::assert_state_parses(&xml);
    }

    #[test]
    fn changes_reach_mld_only_for_mld_settings_and_the_switches() {
        use crate::northbound::edit::config_tree as tree;
        let old = Node::default();
        let new = tree(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type><mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable></mld></interface></interfaces></config>"#,
        );
        let ch = crate::datastore::tree::diff(&old, &new);
        let first = decode(
            &MldConfig::default(),
            &Changes::new(SUBTREES, &old, &new, &ch),
        )
        .unwrap();
        assert_eq!(first.mld.keys().collect::<Vec<_>>(), ["eth1"]);
        assert!(!first.routing);
        // A description alone concerns nobody here.
        let described = tree(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type><description>x</description><mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable></mld></interface></interfaces></config>"#,
        );
        let ch = crate::datastore::tree::diff(&new, &described);
        assert!(!Changes::new(SUBTREES, &new, &described, &ch).any());
        let newer = tree(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type><description>x</description><mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable><version>1</version></mld></interface></interfaces><multicast xmlns="urn:mldhb:yang:mldhb-multicast"><ipv6-routing-enable>true</ipv6-routing-enable></multicast></config>"#,
        );
        let ch = crate::datastore::tree::diff(&described, &newer);
        let next = decode(&first, &Changes::new(SUBTREES, &described, &newer, &ch)).unwrap();
        assert!(next.routing);
        assert_eq!(next.mld["eth1"].router.version, 1);
    }

    #[test]
    fn unappliable_configuration_is_refused() {
        let m = InterfaceMld {
            router: Config {
                static_groups: vec![("ff02::1:3".parse().unwrap(), None)],
                ..Default::default()
            },
            require_router_alert: true,
            track_vrrp6_vrid: None,
        };
        assert!(check("eth1", &m).unwrap_err().contains("link-scope"));
        // Tracking VRRP6 is applied (by the hot-backup controller), not refused.
        let m = InterfaceMld {
            track_vrrp6_vrid: Some(3),
            router: Default::default(),
            require_router_alert: true,
        };
        assert_eq!(check("eth1", &m), Ok(()));
    }
}
