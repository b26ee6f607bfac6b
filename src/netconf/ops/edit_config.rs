//! `<edit-config>` with default-operation, test-option and error-option (RFC 6241 §7.2).

use super::{fail, Op, OpResult, Reply};
use crate::datastore::tree::Node;
use crate::datastore::Datastore;
use crate::northbound::edit::{self, Operation};
use crate::northbound::{datastore_of, validate};
use crate::rpc_error::{ErrorTag, RpcError};

#[derive(PartialEq, Eq, Clone, Copy)]
enum TestOption {
    TestThenSet,
    Set,
    TestOnly,
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum ErrorOption {
    Stop,
    Continue,
    Rollback,
}

fn bad_value(param: &str, value: &str) -> Vec<RpcError> {
    fail(
        RpcError::protocol(
            ErrorTag::InvalidValue,
            format!("'{value}' is not a valid {param}"),
        )
        .with_info("bad-element", param),
    )
}

pub fn run(op: &Op<'_>) -> OpResult {
    let target = datastore_of(op.param("target")?, "target").map_err(fail)?;
    if target == Datastore::Startup {
        return Err(fail(
            RpcError::protocol(
                ErrorTag::OperationNotSupported,
                "edit-config cannot target startup; use copy-config",
            )
            .with_info("bad-element", "target"),
        ));
    }
    let default_op = match op.opt("default-operation").map(|e| e.trimmed_text()) {
        None | Some("merge") => Operation::Merge,
        Some("replace") => Operation::Replace,
        Some("none") => Operation::None,
        Some(v) => return Err(bad_value("default-operation", v)),
    };
    let test = match op.opt("test-option").map(|e| e.trimmed_text()) {
        None | Some("test-then-set") => TestOption::TestThenSet,
        Some("set") => TestOption::Set,
        Some("test-only") => TestOption::TestOnly,
        Some(v) => return Err(bad_value("test-option", v)),
    };
    let on_error = match op.opt("error-option").map(|e| e.trimmed_text()) {
        None | Some("stop-on-error") => ErrorOption::Stop,
        Some("continue-on-error") => ErrorOption::Continue,
        Some("rollback-on-error") => ErrorOption::Rollback,
        Some(v) => return Err(bad_value("error-option", v)),
    };
    if op.opt("url").is_some() {
        return Err(fail(RpcError::protocol(
            ErrorTag::OperationNotSupported,
            "the :url capability is not supported",
        )));
    }
    let config = op.param("config")?;
    let mut nb = op.shared.northbound();
    nb.check_writable(target, op.session.id).map_err(fail)?;
    // default-operation replace: the config becomes the whole datastore (RFC 6241 §7.2).
    let mut new = if default_op == Operation::Replace {
        Node::default()
    } else {
        (*nb.get(target)).clone()
    };
    let errors = edit::apply(
        &mut new,
        config,
        default_op,
        on_error == ErrorOption::Continue,
    );
    if !errors.is_empty() && on_error != ErrorOption::Continue {
        return Err(errors);
    }
    // Access control covers every node the edit creates, changes or deletes; any denial
    // leaves the target untouched, whatever the error-option.
    op.check_write(&nb.get(target), &new)?;
    match test {
        TestOption::TestOnly => {
            validate::validate(&new).map_err(fail)?;
        }
        TestOption::TestThenSet | TestOption::Set => {
            // Running only ever holds valid configuration; the candidate may defer with `set`.
            let must_validate = test == TestOption::TestThenSet || target == Datastore::Running;
            nb.set(target, new, must_validate).map_err(|e| {
                let mut all = errors.clone();
                all.push(e);
                all
            })?;
            let changes = nb.take_running_changes();
            op.shared.config_changed(Some(op.session.id), &changes);
        }
    }
    if errors.is_empty() {
        Ok(Reply::Ok)
    } else {
        Err(errors)
    }
}
