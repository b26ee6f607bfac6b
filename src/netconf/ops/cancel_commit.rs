//! `<cancel-commit>`: rolls back the pending confirmed commit.

use super::{fail, Op, OpResult, Reply};
use crate::netconf::error::{ErrorType, RpcError};

pub fn run(op: &Op<'_>) -> OpResult {
    if op.opt("confirmed").is_some() {
        return Err(fail(RpcError::unknown_element(
            ErrorType::Protocol,
            "confirmed",
            "<cancel-commit> takes only <persist-id>",
        )));
    }
    let req = super::commit::request(op)?;
    op.shared.northbound().cancel_commit(&req).map_err(fail)?;
    Ok(Reply::Ok)
}
