//! `<get-config>`: configuration of one datastore, filtered.

use super::{fail, Op, OpResult, Reply};
use crate::netconf::filter;
use crate::northbound::{datastore_of, defaults};

pub fn run(op: &Op<'_>) -> OpResult {
    let ds = datastore_of(op.param("source")?, "source").map_err(fail)?;
    let mode = defaults::Mode::from_op(op.el).map_err(fail)?;
    let filter = filter::Filter::from_op(op.rpc, op.el).map_err(fail)?;
    let tree = op.shared.northbound().get(ds);
    let tree = op.readable(mode.apply(&tree, true));
    let tagged = mode == defaults::Mode::ReportAllTagged;
    let data = defaults::with_tagging(tagged, || filter.apply(&tree)).map_err(fail)?;
    Ok(Reply::Data(data))
}
