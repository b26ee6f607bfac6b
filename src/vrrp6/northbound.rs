//! The VRRP6 part of the data model: ietf-vrrp IPv6 instances (with the mldhb-vrrp additions)
//! read into router configuration, router state printed as the model's operational nodes, and
//! the ietf-vrrp notifications.

use super::events::{GlobalStats, InstanceConfig, Key, ProtocolError};
use super::instance::{Config, Instance, NewMasterReason, State, Time, CENTISECOND};
use super::tasks::Vrrp6Runtime;
use crate::datastore::tree::{Node, NodeKey};
use crate::northbound::registry::OperProvider;
use crate::northbound::registry::{Changes, Provider, Subtree};
use crate::xml::Element;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::sync::Arc;

const IF: &str = "ietf-interfaces";
const IP: &str = "ietf-ip";
const VRRP: &str = "ietf-vrrp";
const MHVRRP: &str = "mldhb-vrrp";
pub const NS_VRRP: &str = "urn:ietf:params:xml:ns:yang:ietf-vrrp";

fn child<'a>(n: &'a Node, module: &str, name: &str) -> Option<&'a Node> {
    n.children.get(&NodeKey::new(module, name)).map(|c| &**c)
}

/// Entries of list `name` (module `module`) under `n`, with their key values.
fn entries<'a>(
    n: &'a Node,
    module: &'a str,
    name: &'a str,
) -> impl Iterator<Item = (&'a [String], &'a Node)> + 'a {
    n.children
        .iter()
        .filter(move |(k, _)| k.module == module && k.name == name && !k.id.is_empty())
        .map(|(k, v)| (k.id.as_slice(), &**v))
}

/// Reads one `vrrp-instance` entry. Errors name what cannot run.
fn instance(entry: &Node, vrid: u8, own_addrs: &[Ipv6Addr]) -> Result<InstanceConfig, String> {
    let d = Config::default();
    let preempt = child(entry, VRRP, "preempt");
    let mut vips: Vec<Ipv6Addr> = Vec::new();
    if let Some(v) = child(entry, VRRP, "virtual-ipv6-addresses") {
        for (id, _) in entries(v, VRRP, "virtual-ipv6-address") {
            let a: Ipv6Addr = id[0]
                .parse()
                .map_err(|_| format!("virtual address {} is not an IPv6 address", id[0]))?;
            if a.is_multicast() || a.is_unspecified() || a.is_loopback() {
                return Err(format!("virtual address {a} is not a unicast address"));
            }
            vips.push(a);
        }
    }
    // RFC 9568 §5.2.9: the link-local virtual address is sent first.
    let Some(first) = vips.iter().position(|a| a.is_unicast_link_local()) else {
        return Err("needs a link-local virtual address (RFC 9568 §5.2.9)".into());
    };
    let ll = vips.remove(first);
    vips.insert(0, ll);
    let mut tracked = BTreeMap::new();
    if let Some(ifs) = child(entry, VRRP, "track").and_then(|t| child(t, VRRP, "interfaces")) {
        for (id, e) in entries(ifs, VRRP, "interface") {
            let dec = e
                .leaf_value(VRRP, "priority-decrement")
                .and_then(|v| v.parse().ok())
                .unwrap_or(10u8);
            tracked.insert(id[0].clone(), dec);
        }
    }
    let owned = vips
        .iter()
        .filter(|v| own_addrs.contains(v))
        .copied()
        .collect();
    Ok(InstanceConfig {
        vrrp: Config {
            vrid,
            priority: entry
                .leaf_value(VRRP, "priority")
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.priority),
            preempt: preempt.and_then(|p| p.leaf_value(VRRP, "enabled")) != Some("false"),
            hold_time_s: preempt
                .and_then(|p| p.leaf_value(VRRP, "hold-time"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            accept_mode: entry.leaf_value(VRRP, "accept-mode") == Some("true"),
            interval_cs: entry
                .leaf_value(VRRP, "advertise-interval-centi-sec")
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.interval_cs),
            vips,
            tracked,
            virtual_mac: entry.leaf_value(MHVRRP, "virtual-mac") == Some("true"),
        },
        owned,
    })
}

fn ipv6_addresses(ipv6: &Node) -> Vec<Ipv6Addr> {
    entries(ipv6, IP, "address")
        .filter_map(|(id, _)| id[0].parse().ok())
        .collect()
}

/// The VRRP6 routers of one interface entry.
pub fn interface_instances(
    name: &str,
    entry: &Node,
) -> Result<BTreeMap<Key, InstanceConfig>, String> {
    let mut out = BTreeMap::new();
    let Some(ipv6) = child(entry, IP, "ipv6") else {
        return Ok(out);
    };
    let Some(vrrp) = child(ipv6, VRRP, "vrrp") else {
        return Ok(out);
    };
    let own = ipv6_addresses(ipv6);
    for (id, e) in entries(vrrp, VRRP, "vrrp-instance") {
        let vrid: u8 = id[0]
            .parse()
            .map_err(|_| format!("{name}: VRID {} is not 1 to 255", id[0]))?;
        let c = instance(e, vrid, &own).map_err(|m| format!("{name} VRID {vrid}: {m}"))?;
        out.insert((name.to_string(), vrid), c);
    }
    Ok(out)
}

/// Every configured VRRP6 router (the whole tree: for tests).
#[cfg(test)]
pub fn configured(root: &Node) -> Result<BTreeMap<Key, InstanceConfig>, String> {
    let mut out = BTreeMap::new();
    let Some(ifs) = child(root, IF, "interfaces") else {
        return Ok(out);
    };
    for (id, entry) in entries(ifs, IF, "interface") {
        out.extend(interface_instances(&id[0], entry)?);
    }
    Ok(out)
}

fn state_identity(s: State) -> &'static str {
    match s {
        State::Initialize => "ietf-vrrp:initialize",
        State::Backup => "ietf-vrrp:backup",
        State::Master => "ietf-vrrp:master",
    }
}

/// Wall-clock mapping for `up-datetime`: the agent's clock at `now` is `wall`.
pub struct Clock {
    pub now: Time,
    pub wall: std::time::SystemTime,
}

impl Clock {
    fn at(&self, t: Time) -> String {
        let back = std::time::Duration::from_micros(self.now.saturating_sub(t));
        crate::yang::date_and_time(self.wall - back)
    }
}

/// Adds one router's state under its `vrrp-instance` entry of `tree`.
pub fn merge_instance(tree: &mut Node, key: &Key, inst: &Instance, clock: &Clock, since: Time) {
    let e = tree
        .child_mut(NodeKey::new(IF, "interfaces"))
        .list_entry_mut(IF, "interface", "name", &key.0)
        .child_mut(NodeKey::new(IP, "ipv6"))
        .child_mut(NodeKey::new(VRRP, "vrrp"))
        .child_mut(NodeKey::with_id(
            VRRP,
            "vrrp-instance",
            vec![key.1.to_string()],
        ));
    e.set_leaf(VRRP, "vrid", key.1.to_string());
    let now = clock.now;
    e.set_leaf(VRRP, "state", state_identity(inst.state));
    e.set_leaf(VRRP, "is-owner", inst.owner.to_string());
    if let Some(a) = inst.last_adv_source {
        e.set_leaf(VRRP, "last-adv-source", a.to_string());
    }
    if let Some(t) = inst.up_since {
        e.set_leaf(VRRP, "up-datetime", clock.at(t));
    }
    e.set_leaf(
        VRRP,
        "master-down-interval",
        (inst.master_down_interval() / CENTISECOND).to_string(),
    );
    e.set_leaf(VRRP, "skew-time", inst.skew_time().to_string());
    e.set_leaf(
        VRRP,
        "last-event",
        format!("ietf-vrrp:{}", inst.last_event.identity()),
    );
    e.set_leaf(VRRP, "new-master-reason", inst.reason.as_str());
    let s = &inst.stats;
    let mut st = Node::default();
    st.set_leaf(VRRP, "discontinuity-datetime", clock.at(since));
    st.set_leaf(VRRP, "master-transitions", s.master_transitions.to_string());
    st.set_leaf(VRRP, "advertisement-rcvd", s.adv_rcvd.to_string());
    st.set_leaf(VRRP, "advertisement-sent", s.adv_sent.to_string());
    st.set_leaf(VRRP, "priority-zero-pkts-rcvd", s.prio0_rcvd.to_string());
    st.set_leaf(VRRP, "priority-zero-pkts-sent", s.prio0_sent.to_string());
    st.set_leaf(VRRP, "invalid-type-pkts-rcvd", s.invalid_type.to_string());
    st.set_leaf(VRRP, "packet-length-errors", s.packet_length.to_string());
    e.children
        .insert(NodeKey::new(VRRP, "statistics"), Arc::new(st));
    if let Some((left, gated)) = inst.preempt_wait(now) {
        let mut w = Node::default();
        if !gated {
            w.set_leaf(MHVRRP, "delay-remaining", left.to_string());
        }
        w.set_leaf(MHVRRP, "waiting-for-batch-sync", gated.to_string());
        e.children
            .insert(NodeKey::new(MHVRRP, "preempt-wait"), Arc::new(w));
    }
}

/// Adds the global `/vrrp` container.
pub fn merge_global(
    tree: &mut Node,
    instances: usize,
    interfaces: usize,
    g: &GlobalStats,
    clock: &Clock,
    since: Time,
) {
    let mut v = Node::default();
    v.set_leaf(VRRP, "virtual-routers", instances.to_string());
    v.set_leaf(VRRP, "interfaces", interfaces.to_string());
    let mut st = Node::default();
    st.set_leaf(VRRP, "discontinuity-datetime", clock.at(since));
    st.set_leaf(VRRP, "checksum-errors", g.checksum_errors.to_string());
    st.set_leaf(VRRP, "version-errors", g.version_errors.to_string());
    st.set_leaf(VRRP, "vrid-errors", g.vrid_errors.to_string());
    st.set_leaf(VRRP, "ip-ttl-errors", g.ip_ttl_errors.to_string());
    v.children
        .insert(NodeKey::new(VRRP, "statistics"), Arc::new(st));
    tree.children
        .insert(NodeKey::new(VRRP, "vrrp"), Arc::new(v));
}

/// `vrrp-new-master-event`.
pub fn new_master_event(address: &Ipv6Addr, reason: NewMasterReason) -> Element {
    let mut el = Element::new(NS_VRRP, "vrrp-new-master-event");
    el.push(Element::with_text(
        NS_VRRP,
        "master-ip-address",
        address.to_string(),
    ));
    el.push(Element::with_text(
        NS_VRRP,
        "new-master-reason",
        reason.as_str(),
    ));
    el
}

/// `vrrp-protocol-error-event`.
pub fn protocol_error_event(e: ProtocolError) -> Element {
    let mut el = Element::new(NS_VRRP, "vrrp-protocol-error-event");
    let mut r = Element::with_text(
        NS_VRRP,
        "protocol-error-reason",
        format!("vrrp:{}", e.identity()),
    );
    r.ns_decls.push(("vrrp".into(), NS_VRRP.into()));
    el.push(r);
    el
}

/// What the VRRP6 runtime reads: each interface's IPv6 settings (its routers and addresses).
const SUBTREES: &[Subtree] = &[Subtree::entries(
    &[(IF, "interfaces"), (IF, "interface")],
    &[(IP, "ipv6")],
)];

impl Provider for Vrrp6Runtime {
    type Config = BTreeMap<Key, InstanceConfig>;

    fn name(&self) -> &'static str {
        "vrrp6"
    }

    fn subtrees(&self) -> &'static [Subtree] {
        SUBTREES
    }

    fn decode(&self, current: &Self::Config, changes: &Changes) -> Result<Self::Config, String> {
        let mut next = current.clone();
        for (id, entry) in changes.entries(0) {
            let [name] = id.as_slice() else { continue };
            next.retain(|k, _| &k.0 != name);
            if let Some(e) = entry {
                next.extend(interface_instances(name, e)?);
            }
        }
        Ok(next)
    }

    fn prepare(&mut self, next: &Self::Config) -> Result<(), String> {
        match self.unavailable() {
            Some(why) if !next.is_empty() => Err(format!("VRRP6 cannot run in this agent: {why}")),
            _ => Ok(()),
        }
    }

    fn apply(&mut self, _: &Self::Config, next: &Self::Config, _: &Changes) -> Result<(), String> {
        self.configure(next.clone());
        Ok(())
    }
}

impl OperProvider for Vrrp6Runtime {
    fn merge_state(&self, tree: &mut Node) {
        self.with_node(|node, clock| {
            // Counters start with the runtime.
            let since = 0;
            for (k, inst) in &node.instances {
                merge_instance(tree, k, inst, clock, since);
            }
            let interfaces: BTreeSet<&String> = node.instances.keys().map(|k| &k.0).collect();
            merge_global(
                tree,
                node.instances.len(),
                interfaces.len(),
                &node.global,
                clock,
                since,
            );
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vrrp: &str, addrs: &str) -> Node {
        let x = format!(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>up0</name><type>t:ethernetCsmacd</type><ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"/></interface><interface><name>eth1</name><type>t:ethernetCsmacd</type><ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip">{addrs}<vrrp xmlns="urn:ietf:params:xml:ns:yang:ietf-vrrp" xmlns:vrrp="urn:ietf:params:xml:ns:yang:ietf-vrrp"><vrrp-instance><vrid>5</vrid><version>vrrp:vrrp-v3</version>{vrrp}</vrrp-instance></vrrp></ipv6></interface></interfaces></config>"#
        );
        let t = crate::northbound::edit::config_tree(&x);
        crate::northbound::validate::validate(&t).unwrap();
        t
    }

    const VIPS: &str = "<virtual-ipv6-addresses><virtual-ipv6-address><ipv6-address>2001:db8:1::100</ipv6-address></virtual-ipv6-address><virtual-ipv6-address><ipv6-address>fe80::100</ipv6-address></virtual-ipv6-address></virtual-ipv6-addresses>";

    #[test]
    fn every_accepted_node_is_read() {
        let t = config(
            &format!(
                "<priority>150</priority><preempt><enabled>true</enabled><hold-time>30</hold-time></preempt>\
                 <accept-mode>true</accept-mode><advertise-interval-centi-sec>50</advertise-interval-centi-sec>\
                 <track><interfaces><interface><interface>up0</interface><priority-decrement>60</priority-decrement></interface></interfaces></track>\
                 {VIPS}<virtual-mac xmlns=\"urn:mldhb:yang:mldhb-vrrp\">true</virtual-mac>"
            ),
            "",
        );
        let c = configured(&t).unwrap();
        let i = &c[&("eth1".to_string(), 5)];
        assert!(i.owned.is_empty());
        let v = &i.vrrp;
        assert_eq!(
            (
                v.vrid,
                v.priority,
                v.preempt,
                v.hold_time_s,
                v.accept_mode,
                v.interval_cs
            ),
            (5, 150, true, 30, true, 50)
        );
        assert_eq!(
            v.vips,
            vec![
                "fe80::100".parse::<Ipv6Addr>().unwrap(),
                "2001:db8:1::100".parse().unwrap()
            ]
        );
        assert_eq!(v.tracked.get("up0"), Some(&60));
        assert!(v.virtual_mac);
    }

    #[test]
    fn defaults_and_ownership() {
        let t = config(
            VIPS,
            "<address><ip>2001:db8:1::100</ip><prefix-length>64</prefix-length></address>",
        );
        let c = configured(&t).unwrap();
        let i = &c[&("eth1".to_string(), 5)];
        assert_eq!(
            i.owned,
            vec!["2001:db8:1::100".parse::<Ipv6Addr>().unwrap()]
        );
        let v = &i.vrrp;
        assert_eq!(
            (
                v.priority,
                v.preempt,
                v.hold_time_s,
                v.accept_mode,
                v.interval_cs,
                v.virtual_mac
            ),
            (100, true, 0, false, 100, false)
        );
    }

    #[test]
    fn a_router_without_link_local_address_is_refused() {
        let t = config(
            "<virtual-ipv6-addresses><virtual-ipv6-address><ipv6-address>2001:db8:1::100</ipv6-address></virtual-ipv6-address></virtual-ipv6-addresses>",
            "",
        );
        assert!(configured(&t).unwrap_err().contains("link-local"));
    }

    #[test]
    fn state_and_events_fit_the_model() {
        let t = config(VIPS, "");
        let c = configured(&t).unwrap();
        let key = ("eth1".to_string(), 5);
        let mut inst = Instance::new(c[&key].vrrp.clone());
        inst.handle(
            0,
            super::super::instance::Input::Startup {
                link_local: "fe80::2".parse().unwrap(),
                owner: false,
            },
        );
        let mut tree = t.clone();
        let clock = Clock {
            now: 5_000_000,
            wall: std::time::SystemTime::now(),
        };
        merge_instance(&mut tree, &key, &inst, &clock, 0);
        merge_global(&mut tree, 1, 1, &GlobalStats::default(), &clock, 0);
        let xml = crate::northbound::convert::to_xml(&tree);
        assert!(
            xml.contains("<master-down-interval>360</master-down-interval>"),
            "{xml}"
        );
        assert!(xml.contains("<skew-time>609375</skew-time>"), "{xml}");
        crate::yang::assert_state_parses(&xml);
        for el in [
            new_master_event(&"fe80::2".parse().unwrap(), NewMasterReason::Preempted),
            protocol_error_event(ProtocolError::Checksum),
        ] {
            let x = el.to_xml();
            crate::yang::assert_notification_parses(&x);
        }
    }
}
