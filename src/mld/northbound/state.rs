//! MLD (mldhb-mld): operational state printed as the model's `config false` nodes.

use super::*;

pub(super) fn secs_left(deadline: Option<Time>, now: Time) -> u32 {
    deadline.map_or(0, |d| (d - now).as_secs() as u32)
}

pub(super) fn mld_node<'a>(tree: &'a mut Node, name: &str) -> &'a mut Node {
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
        e.set_leaf(MLD, "up-time", (now - g.since).as_secs().to_string());
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
