//! `<get-config>`: configuration of one datastore, filtered.

use super::{fail, Op, OpResult, Reply};
use crate::netconf::filter;
use crate::northbound::datastore_of;

pub fn run(op: &Op<'_>) -> OpResult {
    let ds = datastore_of(op.param("source")?, "source").map_err(fail)?;
    let tree = op.readable(op.shared.northbound().get(ds));
    let filter = filter::Filter::from_op(op.rpc, op.el).map_err(fail)?;
    let data = filter.apply(&tree).map_err(fail)?;
    Ok(Reply::Data(data))
}
