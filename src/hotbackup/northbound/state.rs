//! Remote backup profiles (mldhb-rbs): operational state printed as the model's `config false` nodes.

use super::*;

/// Adds every profile's state under `/remote-backup/profile[name]` of `tree`; `wall` is the
/// wall-clock time at `now`.
pub fn merge_state(tree: &mut Node, ctl: &Controller, now: Time, wall: SystemTime) {
    if ctl.profiles().next().is_none() {
        return;
    }
    let rb = tree.child_mut(NodeKey::new(RBS, "remote-backup"));
    for p in ctl.profiles() {
        let st = p.state(now);
        let e = rb.child_mut(NodeKey::with_id(RBS, "profile", vec![st.name.clone()]));
        e.set_leaf(RBS, "name", st.name.clone());
        e.set_leaf(RBS, "role", role_str(st.role));
        let batch = match st.batch {
            BatchState::Idle => "idle",
            BatchState::InProgress => "in-progress",
            BatchState::Complete => "complete",
        };
        e.set_leaf(RBS, "batch-sync", batch);
        e.set_leaf(RBS, "backup-id-mismatch", st.mismatch.to_string());
        e.set_leaf(RBS, "local-entries", st.local_entries.to_string());
        e.set_leaf(RBS, "peer-entries", st.peer_entries.to_string());
        e.set_leaf(RBS, "switchovers", st.switchovers.to_string());
        if let Some(t) = st.last_switchover {
            let at = wall - (now - t);
            e.set_leaf(RBS, "last-switchover-time", crate::yang::date_and_time(at));
        }
    }
}

impl OperProvider for HotBackupRuntime {
    fn merge_state(&self, tree: &mut Node) {
        self.with_controller(|c, now| merge_state(tree, c, now, SystemTime::now()));
    }
}
