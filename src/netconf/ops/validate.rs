//! `<validate>` (:validate:1.1): full validation of a datastore or of inline config.

use super::{fail, source_tree, Op, OpResult, Reply};
use crate::northbound::validate::validate;

pub fn run(op: &Op<'_>) -> OpResult {
    let tree = source_tree(op)?;
    validate(&tree).map_err(fail)?;
    Ok(Reply::Ok)
}
