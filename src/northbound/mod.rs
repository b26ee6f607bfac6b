//! The northbound core: datastore contents, locks, the commit pipeline and runtime providers.

pub mod confirmed;
pub mod convert;
pub mod defaults;
pub mod edit;
pub mod incremental;
pub mod registry;

pub mod validate;

use crate::datastore::tree::Node;
use crate::datastore::{Datastore, Store, StoreError};
use crate::rpc_error::{ErrorTag, ErrorType, RpcError, RpcResult};
use registry::{OperProvider, Provider, Registry};
use std::collections::HashMap;
use std::sync::Arc;

/// Most changes to running kept between two [`Northbound::take_running_changes`] (one
/// netconf-config-change event reports no more).
pub const MAX_RUNNING_CHANGES: usize = 64;

/// Everything the NETCONF operations read and change, behind one lock.
pub struct Northbound {
    store: Store,
    running: Arc<Node>,
    candidate: Arc<Node>,
    startup: Arc<Node>,
    /// True while the candidate holds changes not yet committed or discarded.
    candidate_dirty: bool,
    /// The candidate is known to be valid (it may not be after `test-option set`).
    candidate_valid: bool,
    /// Instances of cross-node constraints (see `incremental`) in running and candidate.
    running_refs: usize,
    candidate_refs: Option<usize>,
    locks: HashMap<Datastore, (u32, std::time::SystemTime)>,
    /// What the writes to running since the last `take_running_changes` changed.
    running_changes: Vec<crate::datastore::tree::Change>,
    /// The runtimes, each with the configuration it runs.
    registry: Registry,
    oper: Vec<Arc<dyn OperProvider>>,
    /// The pending confirmed commit (see `confirmed`).
    confirmed: Option<confirmed::Pending>,
    confirmed_hook: Option<confirmed::Hook>,
}

fn store_err(e: StoreError) -> RpcError {
    RpcError::operation_failed(format!("could not write the datastore: {e}"))
}

impl Northbound {
    /// Opens the datastores; a new store is seeded from `startup` (first boot only).
    pub fn open(store: Store, startup: Option<Node>) -> Result<Self, StoreError> {
        if store.is_new() {
            if let Some(seed) = startup {
                let empty = Node::default();
                store.replace_startup(&empty, &seed)?;
                let changes = crate::datastore::tree::diff(&empty, &seed);
                store.write_running(&changes, &empty, &seed, None)?;
            }
            store.mark_initialized()?;
        }
        let running = Arc::new(store.load(Datastore::Running)?);
        let startup = Arc::new(store.load(Datastore::Startup)?);
        let stored_candidate = match store.candidate_differs() {
            true => store.load_candidate(&running)?,
            false => (*running).clone(),
        };
        let running_refs = incremental::count(&running);
        let (candidate, candidate_dirty, candidate_refs) = if stored_candidate == *running {
            (Arc::clone(&running), false, Some(running_refs))
        } else {
            (Arc::new(stored_candidate), true, None)
        };
        let mut nb = Northbound {
            store,
            running,
            candidate,
            startup,
            candidate_dirty,
            candidate_valid: !candidate_dirty,
            running_refs,
            candidate_refs,
            locks: HashMap::new(),
            running_changes: Vec::new(),
            registry: Registry::default(),
            oper: Vec::new(),
            confirmed: None,
            confirmed_hook: None,
        };
        nb.load_confirmed()?;
        Ok(nb)
    }

    /// Registers a runtime (see [`registry`]) and brings it to the running configuration.
    pub fn register<P: Provider>(&mut self, p: P) -> Result<(), String> {
        self.registry.register(p, &self.running)
    }

    pub fn add_oper_provider(&mut self, p: Arc<dyn OperProvider>) {
        self.oper.push(p);
    }

    /// The operational-state providers, to call without holding the northbound lock.
    pub fn oper_providers(&self) -> Vec<Arc<dyn OperProvider>> {
        self.oper.clone()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The changes made to running since the last call (for netconf-config-change).
    pub fn take_running_changes(&mut self) -> Vec<crate::datastore::tree::Change> {
        std::mem::take(&mut self.running_changes)
    }

    pub fn get(&self, ds: Datastore) -> Arc<Node> {
        match ds {
            Datastore::Running => Arc::clone(&self.running),
            Datastore::Candidate => Arc::clone(&self.candidate),
            Datastore::Startup => Arc::clone(&self.startup),
        }
    }

    pub fn candidate_dirty(&self) -> bool {
        self.candidate_dirty
    }

    pub fn lock_holder(&self, ds: Datastore) -> Option<u32> {
        self.locks.get(&ds).map(|l| l.0)
    }

    /// Held locks: datastore → (session, since).
    pub fn locks(&self) -> &HashMap<Datastore, (u32, std::time::SystemTime)> {
        &self.locks
    }

    /// Fails with in-use/lock-denied if another session holds `ds`.
    pub fn check_writable(&self, ds: Datastore, session: u32) -> RpcResult<()> {
        match self.lock_holder(ds) {
            Some(holder) if holder != session => Err(RpcError::protocol(
                ErrorTag::InUse,
                format!("the {} datastore is locked by session {holder}", ds.name()),
            )
            .with_info("session-id", holder.to_string())),
            _ => Ok(()),
        }
    }

    pub fn lock(&mut self, ds: Datastore, session: u32) -> RpcResult<()> {
        if let Some(holder) = self.lock_holder(ds) {
            return Err(RpcError::protocol(
                ErrorTag::LockDenied,
                format!(
                    "the {} datastore is already locked by session {holder}",
                    ds.name()
                ),
            )
            .with_info("session-id", holder.to_string()));
        }
        if ds == Datastore::Candidate && self.candidate_dirty {
            return Err(RpcError::protocol(
                ErrorTag::LockDenied,
                "the candidate holds uncommitted changes; commit or discard-changes first",
            )
            .with_info("session-id", "0"));
        }
        self.locks
            .insert(ds, (session, std::time::SystemTime::now()));
        Ok(())
    }

    pub fn unlock(&mut self, ds: Datastore, session: u32) -> RpcResult<()> {
        match self.lock_holder(ds) {
            Some(holder) if holder == session => {
                self.locks.remove(&ds);
                if ds == Datastore::Candidate && self.candidate_dirty {
                    // RFC 6241 §8.3.5.2: unlocking discards uncommitted candidate changes.
                    self.discard()?;
                }
                Ok(())
            }
            Some(holder) => Err(RpcError::protocol(
                ErrorTag::OperationFailed,
                format!("the {} datastore is locked by session {holder}", ds.name()),
            )
            .with_info("session-id", holder.to_string())),
            None => Err(RpcError::protocol(
                ErrorTag::OperationFailed,
                format!("the {} datastore is not locked", ds.name()),
            )),
        }
    }

    /// Releases everything a session held (its end, or kill-session).
    pub fn release_session(&mut self, session: u32) {
        let held: Vec<Datastore> = self
            .locks
            .iter()
            .filter(|(_, l)| l.0 == session)
            .map(|(d, _)| *d)
            .collect();
        for ds in held {
            let _ = self.unlock(ds, session);
        }
        self.confirmed_session_ended(session);
    }

    /// Replaces a datastore's content (edit-config result, copy-config, delete-config).
    /// Running goes through the commit pipeline; the others are only validated when asked.
    pub fn set(&mut self, ds: Datastore, new: Node, validate: bool) -> RpcResult<()> {
        match ds {
            Datastore::Running => self.commit_tree(new),
            Datastore::Candidate => {
                let changes = crate::datastore::tree::diff(&self.candidate, &new);
                let refs = if validate {
                    Some(incremental::validate_change(
                        self.candidate_valid,
                        self.candidate_refs,
                        &new,
                        &changes,
                    )?)
                } else {
                    self.candidate_refs
                        .map(|c| (c as isize + incremental::delta(&changes)).max(0) as usize)
                };
                self.store
                    .write_candidate(&changes, &new, &self.running)
                    .map_err(store_err)?;
                self.candidate = Arc::new(new);
                self.candidate_dirty = true;
                self.candidate_valid = validate;
                self.candidate_refs = refs;
                Ok(())
            }
            Datastore::Startup => {
                if validate {
                    validate::validate(&new)?;
                }
                self.store
                    .replace_startup(&self.startup, &new)
                    .map_err(store_err)?;
                self.startup = Arc::new(new);
                Ok(())
            }
        }
    }

    /// Commits the candidate to running.
    pub fn commit(&mut self) -> RpcResult<()> {
        let new = (*self.candidate).clone();
        // A candidate validated as a whole (every edit to it was) is not validated again.
        let validated = self.candidate_refs.filter(|_| self.candidate_valid);
        self.commit_validated(new, validated)?;
        self.candidate = Arc::clone(&self.running);
        self.candidate_dirty = false;
        self.candidate_valid = true;
        self.candidate_refs = Some(self.running_refs);
        Ok(())
    }

    /// Resets the candidate to running.
    pub fn discard(&mut self) -> RpcResult<()> {
        self.store.reset_candidate().map_err(store_err)?;
        self.candidate = Arc::clone(&self.running);
        self.candidate_dirty = false;
        self.candidate_valid = true;
        self.candidate_refs = Some(self.running_refs);
        Ok(())
    }

    /// validate → diff → prepare every runtime → apply → persist. Running is untouched on error.
    fn commit_tree(&mut self, new: Node) -> RpcResult<()> {
        self.commit_validated(new, None)
    }

    /// [`Self::commit_tree`] of a tree already known valid when `validated` gives its count of
    /// relevant instances (see [`incremental`]).
    fn commit_validated(&mut self, new: Node, validated: Option<usize>) -> RpcResult<()> {
        let changes = crate::datastore::tree::diff(&self.running, &new);
        if changes.is_empty() {
            return Ok(());
        }
        let refs = match validated {
            Some(refs) => refs,
            None => incremental::validate_change(true, Some(self.running_refs), &new, &changes)?,
        };
        // Keep the candidate in step when it had no changes of its own.
        let candidate_follows = !self.candidate_dirty;
        let own_candidate = (!candidate_follows).then_some(&*self.candidate);
        // Persisted once every runtime applied it; a failure to persist takes it back from them.
        let (store, running) = (&self.store, &self.running);
        self.registry
            .commit_then(running, &new, &changes, || {
                store
                    .write_running(&changes, running, &new, own_candidate)
                    .map_err(|e| store_err(e).message)
            })
            .map_err(|r| RpcError::operation_failed(r.to_string()))?;
        self.running = Arc::new(new);
        self.running_refs = refs;
        // Only as many as one event reports.
        let room = MAX_RUNNING_CHANGES.saturating_sub(self.running_changes.len());
        self.running_changes.extend(changes.into_iter().take(room));
        if candidate_follows {
            self.candidate = Arc::clone(&self.running);
            self.candidate_valid = true;
            self.candidate_refs = Some(refs);
        }
        Ok(())
    }
}

/// A datastore name from a `<source>`/`<target>` element.
pub fn datastore_of(el: &crate::xml::Element, what: &str) -> RpcResult<Datastore> {
    let child = el
        .children
        .first()
        .ok_or_else(|| RpcError::missing_element(ErrorType::Protocol, what))?;
    Datastore::parse(&child.name).ok_or_else(|| {
        RpcError::bad_element(
            ErrorType::Protocol,
            what,
            format!("unsupported datastore <{}>", child.name),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::registry::{Changes, Subtree};
    use super::*;
    use crate::datastore::tree::NodeKey;
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;

    const INTERFACES: &[Subtree] = &[Subtree::entries(
        &[
            ("ietf-interfaces", "interfaces"),
            ("ietf-interfaces", "interface"),
        ],
        &[],
    )];

    /// Counts the interfaces it was last told to run.
    struct Counter(Arc<Mutex<usize>>);

    impl Provider for Counter {
        type Config = usize;
        fn name(&self) -> &'static str {
            "counter"
        }
        fn subtrees(&self) -> &'static [Subtree] {
            INTERFACES
        }
        fn decode(&self, current: &usize, changes: &Changes) -> Result<usize, String> {
            let mut n = *current as isize;
            for (_, e) in changes.entries(0) {
                n += if e.is_some() { 1 } else { -1 };
            }
            Ok(n.max(0) as usize)
        }
        fn prepare(&mut self, _: &usize) -> Result<(), String> {
            Ok(())
        }
        fn apply(&mut self, _: &usize, next: &usize, _: &Changes) -> Result<(), String> {
            *self.0.lock().unwrap() = *next;
            Ok(())
        }
        fn abort(&mut self) {}
    }

    fn interfaces(names: &[&str]) -> Node {
        let mut t = Node::default();
        let ifs = t.child_mut(NodeKey::new("ietf-interfaces", "interfaces"));
        for n in names {
            ifs.list_entry_mut("ietf-interfaces", "interface", "name", n)
                .set_leaf("ietf-interfaces", "type", "iana-if-type:ethernetCsmacd");
        }
        t
    }

    #[test]
    fn a_commit_that_cannot_be_persisted_leaves_running_and_the_runtimes_as_they_were() {
        let dir = std::env::temp_dir().join(format!("mldhb-nb-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut nb = Northbound::open(Store::open(&dir).unwrap(), None).unwrap();
        let seen = Arc::new(Mutex::new(0));
        nb.register(Counter(Arc::clone(&seen))).unwrap();
        nb.set(Datastore::Running, interfaces(&["eth0"]), true)
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), 1);
        let before = nb.get(Datastore::Running);
        nb.store.fail_writes.store(true, Ordering::Relaxed);
        let e = nb
            .set(Datastore::Running, interfaces(&["eth0", "eth1"]), true)
            .expect_err("the disk is full");
        assert!(
            e.message.contains("No space left on device"),
            "{}",
            e.message
        );
        assert_eq!(
            *seen.lock().unwrap(),
            1,
            "the runtime was given the change back"
        );
        assert_eq!(nb.get(Datastore::Running), before);
        // Space again: the same commit goes through.
        nb.store.fail_writes.store(false, Ordering::Relaxed);
        nb.set(Datastore::Running, interfaces(&["eth0", "eth1"]), true)
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), 2);
        drop(nb);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
