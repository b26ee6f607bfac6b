//! The forwarding part of the data model (mldhb-multicast): the routing switch, and the table
//! printed as operational state.

use super::kernel::MfcCounters;
use super::{Mfib, Time};
use crate::datastore::tree::{Node, NodeKey};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;

const MC: &str = "mldhb-multicast";

/// Whether `multicast ipv6-routing-enable` is set.
pub fn routing_enabled(root: &Node) -> bool {
    root.get(&[
        NodeKey::new(MC, "multicast"),
        NodeKey::new(MC, "ipv6-routing-enable"),
    ])
    .and_then(|n| n.value.as_deref())
        == Some("true")
}

fn put(n: &mut Node, name: &str, value: impl Into<String>) {
    n.children
        .insert(NodeKey::new(MC, name), Arc::new(Node::leaf(value)));
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
    let mc = Arc::make_mut(
        tree.children
            .entry(NodeKey::new(MC, "multicast"))
            .or_default(),
    );
    let mut fwd = Node::default();
    let name = |i: u32| names.get(&i).cloned().unwrap_or_else(|| format!("if{i}"));
    let mut active = 0usize;
    for ((group, source), e) in mfib.iter() {
        let on = mfib.entry_active(e);
        active += usize::from(on);
        let mut n = Node::default();
        put(&mut n, "source", source.to_string());
        put(&mut n, "group", group.to_string());
        if let Some(i) = e.iif {
            put(&mut n, "incoming-interface", name(i));
        }
        put(&mut n, "state", state(on));
        for (i, d) in &e.oifs {
            let mut o = Node::default();
            put(&mut o, "name", name(*i));
            put(&mut o, "state", state(mfib.domain_active(*d)));
            n.children.insert(
                NodeKey::with_id(MC, "outgoing-interface", vec![name(*i)]),
                Arc::new(o),
            );
        }
        let c = counters
            .get(&(*source, *group))
            .copied()
            .unwrap_or_default();
        put(&mut n, "packets", c.packets.to_string());
        put(&mut n, "bytes", c.bytes.to_string());
        put(&mut n, "wrong-interface-packets", c.wrong_if.to_string());
        put(
            &mut n,
            "up-time",
            (now.saturating_sub(e.since) / 1000).to_string(),
        );
        fwd.children.insert(
            NodeKey::with_id(MC, "entry", vec![source.to_string(), group.to_string()]),
            Arc::new(n),
        );
    }
    put(&mut fwd, "entry-count", mfib.len().to_string());
    put(&mut fwd, "active-entry-count", active.to_string());
    mc.children
        .insert(NodeKey::new(MC, "forwarding"), Arc::new(fwd));
}
