//! VRRP6 (ietf-vrrp): operational state printed as the model's `config false` nodes.

use super::*;

pub(super) fn state_identity(s: State) -> &'static str {
    match s {
        State::Initialize => "ietf-vrrp:initialize",
        State::Backup => "ietf-vrrp:backup",
        State::Master => "ietf-vrrp:master",
    }
}

/// Wall-clock mapping for `up-datetime`: the agent's clock at `now` is `wall`; the runtime
/// started (and its counters with it) at `started`.
pub struct Clock {
    pub now: Time,
    pub wall: std::time::SystemTime,
    pub started: Time,
}

impl Clock {
    fn at(&self, t: Time) -> String {
        let back = self.now - t;
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
        (inst.master_down_interval().as_micros() / CENTISECOND.as_micros()).to_string(),
    );
    e.set_leaf(VRRP, "skew-time", inst.skew_time().as_micros().to_string());
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

impl OperProvider for Vrrp6Runtime {
    fn merge_state(&self, tree: &mut Node) {
        self.with_node(|node, clock| {
            // Counters start with the runtime.
            let since = clock.started;
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
