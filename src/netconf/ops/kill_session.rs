//! `<kill-session>`: ends another session and releases its locks.

use super::{fail, Op, OpResult, Reply};
use crate::rpc_error::{ErrorTag, RpcError};

pub fn run(op: &Op<'_>) -> OpResult {
    let p = op.param("session-id")?;
    let id: u32 = p.trimmed_text().parse().map_err(|_| {
        fail(
            RpcError::protocol(
                ErrorTag::InvalidValue,
                format!("'{}' is not a session-id", p.trimmed_text()),
            )
            .with_info("bad-element", "session-id"),
        )
    })?;
    if id == op.session.id {
        return Err(fail(
            RpcError::protocol(
                ErrorTag::InvalidValue,
                "a session cannot kill itself; use close-session",
            )
            .with_info("bad-element", "session-id"),
        ));
    }
    let Some(target) = op.shared.session(id) else {
        return Err(fail(
            RpcError::protocol(ErrorTag::InvalidValue, format!("no session {id}"))
                .with_info("bad-element", "session-id"),
        ));
    };
    target
        .killed_by
        .store(op.session.id, std::sync::atomic::Ordering::Relaxed);
    target.kill.notify_one();
    // Locks go now, whatever the killed session is doing.
    op.shared.northbound().release_session(id);
    tracing::info!(killed = id, "kill-session");
    Ok(Reply::Ok)
}
