//! `<cancel-commit>`: rolls back the pending confirmed commit.

use super::{fail, Op, OpResult, Reply};
use crate::rpc_error::{ErrorType, RpcError};

pub fn run(op: &Op<'_>) -> OpResult {
    if op.opt("confirmed").is_some() {
        return Err(fail(RpcError::unknown_element(
            ErrorType::Protocol,
            "confirmed",
            "<cancel-commit> takes only <persist-id>",
        )));
    }
    let req = super::commit::request(op)?;
    let (event, changes) = {
        let mut nb = op.shared.northbound();
        let ev = nb.cancel_commit(&req).map_err(fail)?;
        (ev, nb.take_running_changes())
    };
    op.shared.config_changed(Some(op.session.id), &changes);
    if let Some(ev) = event {
        op.shared.confirmed_event(&ev);
    }
    Ok(Reply::Ok)
}
