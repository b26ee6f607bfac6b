//! `<discard-changes>`: the candidate is reset to running.

use super::{fail, Op, OpResult, Reply};
use crate::datastore::Datastore;

pub fn run(op: &Op<'_>) -> OpResult {
    let mut nb = op.shared.northbound();
    nb.check_writable(Datastore::Candidate, op.session.id)
        .map_err(fail)?;
    nb.discard().map_err(fail)?;
    Ok(Reply::Ok)
}
