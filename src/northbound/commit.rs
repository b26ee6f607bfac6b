//! The commit pipeline's runtime side: providers prepare (and may refuse), then apply or abort.

use crate::datastore::tree::{Change, Node};
use crate::netconf::error::{RpcError, RpcResult};

/// A runtime that turns configuration into behaviour (addresses, protocols, forwarding).
pub trait ConfigProvider: Send {
    fn name(&self) -> &str;
    /// Checks the change and reserves what `apply` needs; `Err` refuses the commit.
    fn prepare(&mut self, old: &Node, new: &Node, changes: &[Change]) -> Result<(), String>;
    /// Makes the prepared change take effect.
    fn apply(&mut self, new: &Node, changes: &[Change]) -> Result<(), String>;
    /// Releases what `prepare` reserved; the commit will not happen.
    fn abort(&mut self);
}

/// A runtime that adds its operational state to `<get>` data.
pub trait OperProvider: Send + Sync {
    fn merge_state(&self, tree: &mut Node);
}

/// Runs prepare on every provider, then apply; on a refusal or failure every runtime is
/// returned to `old` and the commit fails with the reason.
pub fn run(
    providers: &mut [Box<dyn ConfigProvider>],
    old: &Node,
    new: &Node,
    changes: &[Change],
) -> RpcResult<()> {
    for i in 0..providers.len() {
        if let Err(reason) = providers[i].prepare(old, new, changes) {
            for p in providers[..i].iter_mut() {
                p.abort();
            }
            return Err(RpcError::operation_failed(format!(
                "{} refused the change: {reason}",
                providers[i].name()
            )));
        }
    }
    for i in 0..providers.len() {
        if let Err(reason) = providers[i].apply(new, changes) {
            for p in providers[i + 1..].iter_mut() {
                p.abort();
            }
            let back = crate::datastore::tree::diff(new, old);
            for p in providers[..=i].iter_mut() {
                let _ = p.prepare(new, old, &back).and_then(|_| p.apply(old, &back));
            }
            tracing::error!(provider = providers[i].name(), %reason, "apply failed, configuration rolled back");
            return Err(RpcError::operation_failed(format!(
                "{} could not apply the change: {reason}",
                providers[i].name()
            )));
        }
    }
    Ok(())
}
