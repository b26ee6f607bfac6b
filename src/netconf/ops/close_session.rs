//! `<close-session>`: graceful end of the issuing session.

use super::{Op, OpResult, Reply};

pub fn run(_op: &Op<'_>) -> OpResult {
    Ok(Reply::Close)
}
