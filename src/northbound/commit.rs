//! The commit pipeline's runtime side: providers prepare (and may refuse), then apply or abort.

use crate::datastore::tree::{Change, Node};
use crate::rpc_error::{RpcError, RpcResult};

/// A runtime that turns configuration into behaviour (addresses, protocols, forwarding).
pub trait ConfigProvider: Send {
    fn name(&self) -> &'static str;
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

/// A runtime's configuration across the two commit phases: `prepare` stages it, `apply` makes
/// it current and hands it to the runtime's driver when it changed, `abort` drops it.
#[derive(Debug, Default)]
pub struct Staged<T> {
    pending: Option<T>,
    handoff: Option<T>,
    current: T,
}

impl<T: Clone + PartialEq> Staged<T> {
    /// Keeps the configuration a commit prepared.
    pub fn stage(&mut self, cfg: T) {
        self.pending = Some(cfg);
    }

    /// Forgets a prepared configuration (the commit is aborted, or leaves this runtime alone).
    pub fn unstage(&mut self) {
        self.pending = None;
    }

    /// Makes the staged configuration current; true when it changed, so the driver should
    /// pick it up with [`Staged::take_new`].
    pub fn apply(&mut self) -> bool {
        match self.pending.take() {
            Some(cfg) if cfg != self.current => {
                self.current = cfg.clone();
                self.handoff = Some(cfg);
                true
            }
            _ => false,
        }
    }

    /// The configuration the runtime runs (or is about to).
    pub fn current(&self) -> &T {
        &self.current
    }

    /// The configuration applied since the driver last took one.
    pub fn take_new(&mut self) -> Option<T> {
        self.handoff.take()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_hands_off_only_changes() {
        let mut s = Staged::<u32>::default();
        s.stage(0);
        assert!(!s.apply(), "the same as current");
        s.stage(5);
        s.unstage();
        assert!(!s.apply());
        s.stage(7);
        assert!(s.apply());
        assert_eq!(
            (*s.current(), s.take_new(), s.take_new()),
            (7, Some(7), None)
        );
    }
}
