//! `<delete-config>`: empties the startup datastore (running cannot be deleted).

use super::{fail, Op, OpResult, Reply};
use crate::datastore::tree::Node;
use crate::datastore::Datastore;
use crate::northbound::datastore_of;
use crate::rpc_error::{ErrorTag, RpcError};

pub fn run(op: &Op<'_>) -> OpResult {
    let ds = datastore_of(op.param("target")?, "target").map_err(fail)?;
    if ds != Datastore::Startup {
        return Err(fail(
            RpcError::protocol(
                ErrorTag::OperationNotSupported,
                format!(
                    "delete-config of {} is not allowed; only startup can be deleted",
                    ds.name()
                ),
            )
            .with_info("bad-element", "target"),
        ));
    }
    let mut nb = op.shared.northbound();
    nb.check_writable(ds, op.session.id).map_err(fail)?;
    op.check_write(&nb.get(ds), &Node::default())?;
    nb.set(ds, Node::default(), false).map_err(fail)?;
    Ok(Reply::Ok)
}
