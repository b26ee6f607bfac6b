//! Remote backup profiles (mldhb-rbs): operational state printed as the model's `config false` nodes.

use super::*;

pub(super) fn put(n: &mut Node, name: &str, value: impl Into<String>) {
    n.set_leaf(RBS, name, value);
}

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
        put(e, "name", st.name.clone());
        put(e, "role", role_str(st.role));
        let batch = match st.batch {
            BatchState::Idle => "idle",
            BatchState::InProgress => "in-progress",
            BatchState::Complete => "complete",
        };
        put(e, "batch-sync", batch);
        put(e, "backup-id-mismatch", st.mismatch.to_string());
        put(e, "local-entries", st.local_entries.to_string());
        put(e, "peer-entries", st.peer_entries.to_string());
        put(e, "switchovers", st.switchovers.to_string());
        if let Some(t) = st.last_switchover {
            let at = wall - (now - t);
            put(e, "last-switchover-time", crate::yang::date_and_time(at));
        }
    }
}

impl OperProvider for HotBackupRuntime {
    fn merge_state(&self, tree: &mut Node) {
        self.with_controller(|c, now| merge_state(tree, c, now, SystemTime::now()));
    }
}
