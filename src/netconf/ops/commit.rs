//! `<commit>`: the candidate becomes running through the commit pipeline.

use super::{fail, Op, OpResult, Reply};
use crate::datastore::Datastore;

pub fn run(op: &Op<'_>) -> OpResult {
    let mut nb = op.shared.northbound();
    // A lock on either datastore keeps other sessions from publishing the candidate.
    for ds in [Datastore::Running, Datastore::Candidate] {
        nb.check_writable(ds, op.session.id).map_err(fail)?;
    }
    nb.commit().map_err(fail)?;
    let changes = nb.take_running_changes();
    op.shared.config_changed(Some(op.session.id), &changes);
    Ok(Reply::Ok)
}
