//! RBS services (mldhb-rbs): operational state printed as the model's `config false` nodes.

use super::*;

/// Adds a service's state under `/remote-backup/service[name]` of `tree`.
pub fn merge_state(tree: &mut Node, name: &str, st: &ServiceState) {
    let entry = tree
        .child_mut(NodeKey::new(RBS, "remote-backup"))
        .list_entry_mut(RBS, "service", "name", name);
    entry.set_leaf(RBS, "state", st.state);
    entry.set_leaf(RBS, "authenticated", st.authenticated.to_string());
    if let Some(t) = st.last_up {
        entry.set_leaf(RBS, "last-up-time", date_and_time(t));
    }
    if let Some(t) = st.last_down {
        entry.set_leaf(RBS, "last-down-time", date_and_time(t));
    }
    if let Some(r) = st.last_down_reason {
        entry.set_leaf(RBS, "last-down-reason", r);
    }
    let mut s = Node::default();
    s.set_leaf(RBS, "discontinuity-time", date_and_time(st.discontinuity));
    s.set_leaf(RBS, "frames-received", st.frames_rx.to_string());
    s.set_leaf(RBS, "frames-sent", st.frames_tx.to_string());
    s.set_leaf(RBS, "auth-failures", st.auth_failures.to_string());
    s.set_leaf(RBS, "resyncs", st.resyncs.to_string());
    s.set_leaf(RBS, "digest-mismatches", st.digest_mismatches.to_string());
    s.set_leaf(RBS, "decode-errors", st.decode_errors.to_string());
    entry
        .children
        .insert(NodeKey::new(RBS, "statistics"), Arc::new(s));
}

impl OperProvider for RbsHandle {
    fn merge_state(&self, tree: &mut Node) {
        for name in self.configured() {
            if let Some(st) = self.state(&name) {
                merge_state(tree, &name, &st);
            }
        }
    }
}
