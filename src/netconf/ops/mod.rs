//! NETCONF operations: dispatch by element name, one module per operation.

mod cancel_commit;
mod close_session;
mod commit;
mod copy_config;
mod create_subscription;
mod delete_config;
mod discard_changes;
mod edit_config;
mod get;
mod get_config;
mod get_schema;
mod kill_session;
mod lock;
mod validate;

use super::session::SessionState;
use super::{Shared, NS_BASE, NS_MONITORING};
use crate::rpc_error::{ErrorTag, ErrorType, RpcError};
use crate::xml::Element;

/// What an operation answers with.
pub enum Reply {
    Ok,
    /// The content of `<data>`, already printed.
    Data(String),
    /// Elements placed directly in `<rpc-reply>`.
    Body(Vec<Element>),
    /// `<ok/>`, then the session ends.
    Close,
}

pub type OpResult = Result<Reply, Vec<RpcError>>;

/// The context an operation runs in.
pub struct Op<'a> {
    pub shared: &'a Shared,
    pub session: &'a SessionState,
    pub rpc: &'a Element,
    /// The operation element (the single child of `<rpc>`).
    pub el: &'a Element,
    /// What the session's user may do (RFC 8341), under the rules when the rpc arrived.
    pub access: super::nacm::Access,
}

/// The child `name` of a base-namespace element, in the base namespace; `<config>` and
/// `<filter>` are also taken in no namespace. Leniency: ncclient's `edit_config` and `get`
/// put such an element, as the script wrote it (`<config xmlns:xc="...">`), under its own
/// qualified operation, and most published scripts rely on it.
pub fn base_child<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    el.child(NS_BASE, name).or_else(|| {
        matches!(name, "config" | "filter")
            .then(|| el.child("", name))
            .flatten()
    })
}

impl Op<'_> {
    /// A required child parameter in the base namespace (see [`base_child`]).
    pub fn param(&self, name: &str) -> Result<&Element, Vec<RpcError>> {
        base_child(self.el, name)
            .ok_or_else(|| vec![RpcError::missing_element(ErrorType::Protocol, name)])
    }

    pub fn opt(&self, name: &str) -> Option<&Element> {
        base_child(self.el, name)
    }

    /// `tree` without what the user may not read (the same tree when nothing is hidden).
    pub fn readable(
        &self,
        tree: std::sync::Arc<crate::datastore::tree::Node>,
    ) -> std::sync::Arc<crate::datastore::tree::Node> {
        if self.access.reads_everything() {
            return tree;
        }
        let mut pruned = (*tree).clone();
        self.access.prune(&mut pruned);
        std::sync::Arc::new(pruned)
    }

    /// Fails with access-denied unless the user may make every change from `old` to `new`.
    pub fn check_write(
        &self,
        old: &crate::datastore::tree::Node,
        new: &crate::datastore::tree::Node,
    ) -> Result<(), Vec<RpcError>> {
        self.shared
            .nacm
            .check_write(&self.access, old, new)
            .map_err(fail)
    }
}

/// Lifts one error into an operation result.
pub fn fail(e: RpcError) -> Vec<RpcError> {
    vec![e]
}

pub fn dispatch(shared: &Shared, session: &mut SessionState, rpc: &Element) -> OpResult {
    let el = match rpc.children.as_slice() {
        [one] => one,
        [] => return Err(fail(RpcError::missing_element(ErrorType::Rpc, "operation"))),
        [_, second, ..] => {
            return Err(fail(RpcError::unknown_element(
                ErrorType::Rpc,
                &second.name,
                "an <rpc> carries exactly one operation",
            )))
        }
    };
    let running = shared
        .northbound()
        .get(crate::datastore::Datastore::Running);
    let access = shared.nacm.access(&running, &session.user);
    drop(running);
    shared.nacm.check_exec(&access, el).map_err(fail)?;
    if el.ns == super::notify::NS_NOTIF && el.name == "create-subscription" {
        // The one operation that changes the session's own state.
        return create_subscription::run(shared, session, rpc, el);
    }
    let op = Op {
        shared,
        session,
        rpc,
        el,
        access,
    };
    match (el.ns.as_str(), el.name.as_str()) {
        (NS_BASE, "get") => get::run(&op),
        (NS_BASE, "get-config") => get_config::run(&op),
        (NS_BASE, "edit-config") => edit_config::run(&op),
        (NS_BASE, "copy-config") => copy_config::run(&op),
        (NS_BASE, "delete-config") => delete_config::run(&op),
        (NS_BASE, "lock") => lock::lock(&op),
        (NS_BASE, "unlock") => lock::unlock(&op),
        (NS_BASE, "commit") => commit::run(&op),
        (NS_BASE, "cancel-commit") => cancel_commit::run(&op),
        (NS_BASE, "discard-changes") => discard_changes::run(&op),
        (NS_BASE, "validate") => validate::run(&op),
        (NS_BASE, "close-session") => close_session::run(&op),
        (NS_BASE, "kill-session") => kill_session::run(&op),
        (NS_MONITORING, "get-schema") => get_schema::run(&op),
        _ => Err(fail(
            RpcError::new(
                ErrorType::Protocol,
                ErrorTag::OperationNotSupported,
                format!("operation <{}> is not supported", el.name),
            )
            .with_info("bad-element", el.name.clone()),
        )),
    }
}

/// The tree named by a `<source>` parameter: a datastore, or inline `<config>`.
/// A datastore is pruned to what the user may read.
pub fn source_tree(
    op: &Op<'_>,
) -> Result<std::sync::Arc<crate::datastore::tree::Node>, Vec<RpcError>> {
    let src = op.param("source")?;
    if let Some(cfg) = base_child(src, "config") {
        return inline_config(cfg).map(std::sync::Arc::new);
    }
    if src.child(NS_BASE, "url").is_some() {
        return Err(fail(RpcError::protocol(
            ErrorTag::OperationNotSupported,
            "the :url capability is not supported",
        )));
    }
    let ds = crate::northbound::datastore_of(src, "source").map_err(fail)?;
    let tree = op.shared.northbound().get(ds);
    Ok(op.readable(tree))
}

/// Builds a complete tree from inline `<config>` content.
pub fn inline_config(cfg: &Element) -> Result<crate::datastore::tree::Node, Vec<RpcError>> {
    let mut tree = crate::datastore::tree::Node::default();
    let errors = crate::northbound::edit::apply(
        &mut tree,
        cfg,
        crate::northbound::edit::Operation::Merge,
        false,
    );
    if errors.is_empty() {
        Ok(tree)
    } else {
        Err(errors)
    }
}
