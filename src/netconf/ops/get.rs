//! `<get>`: running configuration and operational state, filtered.

use super::{fail, Op, OpResult, Reply};
use crate::datastore::Datastore;
use crate::netconf::{filter, monitoring};

pub fn run(op: &Op<'_>) -> OpResult {
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
    op.access.prune(&mut tree);
    let filter = filter::Filter::from_op(op.rpc, op.el).map_err(fail)?;
    let data = filter.apply(&tree).map_err(fail)?;
    Ok(Reply::Data(data))
}
