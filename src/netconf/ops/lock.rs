//! `<lock>` and `<unlock>` of a whole datastore.

use super::{fail, Op, OpResult, Reply};
use crate::northbound::datastore_of;

pub fn lock(op: &Op<'_>) -> OpResult {
    let ds = datastore_of(op.param("target")?, "target").map_err(fail)?;
    op.shared
        .northbound()
        .lock(ds, op.session.id)
        .map_err(fail)?;
    Ok(Reply::Ok)
}

pub fn unlock(op: &Op<'_>) -> OpResult {
    let ds = datastore_of(op.param("target")?, "target").map_err(fail)?;
    op.shared
        .northbound()
        .unlock(ds, op.session.id)
        .map_err(fail)?;
    Ok(Reply::Ok)
}
