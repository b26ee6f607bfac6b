//! `<commit>`: the candidate becomes running through the commit pipeline.

use super::{fail, Op, OpResult, Reply};
use crate::datastore::Datastore;

pub fn run(op: &Op<'_>) -> OpResult {
    let mut nb = op.shared.northbound();
    nb.check_writable(Datastore::Running, op.session.id)
        .map_err(fail)?;
    nb.commit().map_err(fail)?;
    Ok(Reply::Ok)
}
