//! `<get>`: running configuration and operational state, filtered.

use super::{fail, Op, OpResult, Reply};
use crate::datastore::Datastore;
use crate::netconf::{filter, monitoring};
use crate::northbound::defaults;

pub fn run(op: &Op<'_>) -> OpResult {
    let mode = defaults::Mode::from_op(op.el).map_err(fail)?;
    let filter = filter::Filter::from_op(op.rpc, op.el).map_err(fail)?;
    let (running, providers) = {
        let nb = op.shared.northbound();
        (nb.get(Datastore::Running), nb.oper_providers())
    };
    let mut tree = (*running).clone();
    for p in providers {
        p.merge_state(&mut tree);
    }
    monitoring::merge_state(op.shared, &mut tree);
    op.shared.nacm.merge_state(&mut tree);
    let tree = op.readable(mode.apply(&std::sync::Arc::new(tree), false));
    let tagged = mode == defaults::Mode::ReportAllTagged;
    let data = defaults::with_tagging(tagged, || filter.apply(&tree)).map_err(fail)?;
    Ok(Reply::Data(data))
}
