//! `<copy-config>`: replaces a whole datastore with another one or with inline config.

use super::{fail, source_tree, Op, OpResult, Reply};
use crate::northbound::datastore_of;
use crate::rpc_error::{ErrorTag, RpcError};

pub fn run(op: &Op<'_>) -> OpResult {
    let target_el = op.param("target")?;
    if target_el.child(crate::netconf::NS_BASE, "url").is_some() {
        return Err(fail(RpcError::protocol(
            ErrorTag::OperationNotSupported,
            "the :url capability is not supported",
        )));
    }
    let target = datastore_of(target_el, "target").map_err(fail)?;
    // Into a datastore, report-all(-tagged) stores the defaults explicitly and trim drops the
    // leaves that hold their default (tags cannot be stored).
    let mode = crate::northbound::defaults::Mode::from_op(op.el).map_err(fail)?;
    let tree = mode.apply(&source_tree(op)?, true);
    let mut nb = op.shared.northbound();
    nb.check_writable(target, op.session.id).map_err(fail)?;
    op.check_write(&nb.get(target), &tree)?;
    nb.set(target, (*tree).clone(), true).map_err(fail)?;
    let changes = nb.take_running_changes();
    op.shared.config_changed(Some(op.session.id), &changes);
    Ok(Reply::Ok)
}
