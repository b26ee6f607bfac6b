//! The forwarding part of the data model (mldhb-multicast): the routing switch, and the table
//! printed as operational state.

use super::kernel::MfcCounters;
use super::Mfib;
use crate::datastore::tree::{Node, NodeKey};
use crate::time::Time;
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;

const MC: &str = "mldhb-multicast";

/// Whether `multicast ipv6-routing-enable` is set.
pub fn routing_enabled(multicast: Option<&Node>) -> bool {
    multicast.and_then(|m| m.leaf_value(MC, "ipv6-routing-enable")) == Some("true")
}

/// The configured data plane (`multicast forwarding-backend`, auto by default).
pub fn backend_choice(multicast: Option<&Node>) -> super::backend::Choice {
    multicast
        .and_then(|m| m.leaf_value(MC, "forwarding-backend"))
        .map(super::backend::Choice::parse)
        .unwrap_or_default()
}

/// Adds the data plane's status to `/multicast/forwarding`.
pub fn merge_status(tree: &mut Node, status: &super::backend::Status) {
    let mc = tree.child_mut(NodeKey::new(MC, "multicast"));
    let fwd = mc.child_mut(NodeKey::new(MC, "forwarding"));
    fwd.set_leaf(MC, "backend", status.backend);
    fwd.set_leaf(MC, "backend-state", status.state);
    fwd.set_leaf(MC, "backend-reason", status.reason.clone());
    if let Some(n) = status.too_big {
        fwd.set_leaf(MC, "too-big-packets", n.to_string());
    }
}

fn state(active: bool) -> &'static str {
    if active {
        "active"
    } else {
        "standby"
    }
}

/// Adds `/multicast/forwarding` to `tree`; interfaces are named through `names` (by index).
pub fn merge_state(
    tree: &mut Node,
    mfib: &Mfib,
    names: &HashMap<u32, String>,
    counters: &HashMap<(Ipv6Addr, Ipv6Addr), MfcCounters>,
    now: Time,
) {
    let mc = tree.child_mut(NodeKey::new(MC, "multicast"));
    let mut fwd = Node::default();
    let name = |i: u32| names.get(&i).cloned().unwrap_or_else(|| format!("if{i}"));
    let mut active = 0usize;
    for ((group, source), e) in mfib.iter() {
        let on = mfib.entry_active(e);
        active += usize::from(on);
        let mut n = Node::default();
        n.set_leaf(MC, "source", source.to_string());
        n.set_leaf(MC, "group", group.to_string());
        if let Some(i) = e.iif {
            n.set_leaf(MC, "incoming-interface", name(i));
        }
        n.set_leaf(MC, "state", state(on));
        for (i, d) in &e.oifs {
            let mut o = Node::default();
            o.set_leaf(MC, "name", name(*i));
            o.set_leaf(MC, "state", state(mfib.domain_active(*d)));
            n.children.insert(
                NodeKey::with_id(MC, "outgoing-interface", vec![name(*i)]),
                Arc::new(o),
            );
        }
        let c = counters
            .get(&(*source, *group))
            .copied()
            .unwrap_or_default();
        n.set_leaf(MC, "packets", c.packets.to_string());
        n.set_leaf(MC, "bytes", c.bytes.to_string());
        n.set_leaf(MC, "wrong-interface-packets", c.wrong_if.to_string());
        n.set_leaf(MC, "up-time", (now - e.since).as_secs().to_string());
        fwd.children.insert(
            NodeKey::with_id(MC, "entry", vec![source.to_string(), group.to_string()]),
            Arc::new(n),
        );
    }
    fwd.set_leaf(MC, "entry-count", mfib.len().to_string());
    fwd.set_leaf(MC, "active-entry-count", active.to_string());
    mc.children
        .insert(NodeKey::new(MC, "forwarding"), Arc::new(fwd));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarding::{Domain, Mfib};
    use std::collections::BTreeMap;

    #[test]
    fn state_fits_the_model() {
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let mut mfib = Mfib::default();
        let (g, s) = (a("ff0e::1"), a("2001:db8::1"));
        mfib.set(
            (g, s),
            Some(2),
            BTreeMap::from([(3, Domain::ALWAYS), (4, Domain(9))]),
            Time::ZERO,
        );
        mfib.set(
            (g, Ipv6Addr::UNSPECIFIED),
            None,
            BTreeMap::from([(3, Domain::ALWAYS)]),
            Time::ZERO,
        );
        mfib.set_domain_active(Domain(9), false);
        let names = HashMap::from([(2, "up0".to_string()), (3, "down0".to_string())]);
        let counters = HashMap::from([(
            (s, g),
            MfcCounters {
                packets: 7,
                bytes: 700,
                wrong_if: 1,
            },
        )]);
        let mut tree = Node::default();
        merge_state(&mut tree, &mfib, &names, &counters, Time::from_millis(5000));
        let xml = crate::northbound::convert::to_xml(&tree);
        for want in [
            "<entry-count>2</entry-count>",
            "<incoming-interface>up0</incoming-interface>",
            "<name>if4</name><state>standby</state>",
            "<packets>7</packets>",
            "<up-time>5</up-time>",
        ] {
            assert!(xml.contains(want), "{want} in {xml}");
        }
        crate::yang::assert_state_parses(&xml);
    }
}
