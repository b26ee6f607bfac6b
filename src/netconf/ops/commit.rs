//! `<commit>`: the candidate becomes running through the commit pipeline; with `<confirmed/>`
//! it is rolled back unless confirmed in time (see `northbound::confirmed`).

use super::{fail, Op, OpResult, Reply};
use crate::datastore::Datastore;
use crate::northbound::confirmed::{Request, DEFAULT_TIMEOUT};
use crate::rpc_error::{ErrorTag, RpcError};
use std::time::Duration;

pub fn run(op: &Op<'_>) -> OpResult {
    let req = request(op)?;
    let mut nb = op.shared.northbound();
    // A lock on either datastore keeps other sessions from publishing the candidate.
    for ds in [Datastore::Running, Datastore::Candidate] {
        nb.check_writable(ds, op.session.id).map_err(fail)?;
    }
    let event = nb.commit_confirmed(&req).map_err(fail)?;
    let changes = nb.take_running_changes();
    drop(nb);
    op.shared.config_changed(Some(op.session.id), &changes);
    if let Some(ev) = event {
        op.shared.confirmed_event(&ev);
    }
    Ok(Reply::Ok)
}

/// The confirmed-commit parameters of a `<commit>` or `<cancel-commit>`.
pub fn request(op: &Op<'_>) -> Result<Request, Vec<RpcError>> {
    let text = |name: &str| op.opt(name).map(|e| e.trimmed_text().to_string());
    let mut req = Request {
        session: op.session.id,
        persist: text("persist"),
        persist_id: text("persist-id"),
        ..Default::default()
    };
    let timeout = match op.opt("confirm-timeout") {
        None => DEFAULT_TIMEOUT,
        Some(e) => match e.trimmed_text().parse::<u32>() {
            Ok(n) if n > 0 => Duration::from_secs(n.into()),
            _ => {
                return Err(fail(
                    RpcError::protocol(
                        ErrorTag::InvalidValue,
                        format!(
                            "confirm-timeout '{}' is not a number of seconds from 1 to 4294967295",
                            e.trimmed_text()
                        ),
                    )
                    .with_info("bad-element", "confirm-timeout"),
                ))
            }
        },
    };
    if op.opt("confirmed").is_some() {
        req.confirmed = Some(timeout);
    } else {
        for name in ["confirm-timeout", "persist"] {
            if op.opt(name).is_some() {
                return Err(fail(
                    RpcError::protocol(
                        ErrorTag::InvalidValue,
                        format!("<{name}> is only allowed with <confirmed/>"),
                    )
                    .with_info("bad-element", name),
                ));
            }
        }
    }
    Ok(req)
}
