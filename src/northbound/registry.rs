//! The provider registry: each runtime declares the configuration subtrees it owns; a commit
//! hands it only the changes under them, decoded into the runtime's own typed configuration, and
//! the registry keeps the current and the staged copy. Runtimes hand their operational state
//! back through [`OperProvider`].
//!
//! A commit runs in three phases over the runtimes a change concerns, in registration order:
//!
//! 1. *decode + prepare*: the runtime turns its current configuration and the changed entries of
//!    its subtrees into the next configuration ([`Provider::decode`]), then checks it against what
//!    it can do and reserves what `apply` needs ([`Provider::prepare`]). A refusal aborts every
//!    runtime prepared before it and fails the commit with the reason.
//! 2. *apply*: each prepared runtime makes the next configuration take effect. If one fails, the
//!    runtimes after it are aborted and those before it (and itself) are applied back to their
//!    current configuration; the commit fails.
//! 3. *settle*: the next configuration becomes current.
//!
//! Runtimes a commit does not concern are not called at all. What a runtime is handed costs what
//! changed: the changed entries of a list subtree are found from the change paths, and the
//! runtime looks each up in the new tree by key (O(log n)); only a change that replaces a whole
//! list (its parent created or deleted) hands every entry of it.

use crate::datastore::tree::{Change, Node, NodeKey};
use crate::datastore::work;
use std::collections::{BTreeMap, BTreeSet};

/// One schema step: module and node name.
pub type Step = (&'static str, &'static str);

/// A configuration subtree a runtime owns.
#[derive(Debug, Clone, Copy)]
pub struct Subtree {
    /// Steps from the root. For a list subtree the last step is the list, whose entries are
    /// handed over one by one.
    pub path: &'static [Step],
    /// Whether the last step of `path` is a list.
    pub list: bool,
    /// Inside the subtree (or each list entry), only changes under this path concern the
    /// runtime; empty for all. Creating or deleting the whole entry always concerns it.
    pub within: &'static [Step],
}

impl Subtree {
    /// A container (or leaf) subtree, handed over whole when anything under it changes.
    pub const fn whole(path: &'static [Step]) -> Subtree {
        Subtree {
            path,
            list: false,
            within: &[],
        }
    }

    /// A list whose changed entries are handed over one by one, each when a change falls under
    /// `within` inside it (or the entry itself is created or deleted).
    pub const fn entries(path: &'static [Step], within: &'static [Step]) -> Subtree {
        Subtree {
            path,
            list: true,
            within,
        }
    }

    /// What `path` (of one change) means for this subtree.
    fn classify(&self, path: &[NodeKey]) -> Hit {
        let n = self.path.len();
        for (k, (module, name)) in path.iter().zip(self.path) {
            if k.module != *module || k.name != *name {
                return Hit::Miss;
            }
        }
        if path.len() < n {
            // An ancestor was created or deleted: the subtree may have changed throughout.
            return Hit::Whole;
        }
        let inner = &path[n..];
        for (k, (module, name)) in inner.iter().zip(self.within) {
            if k.module != *module || k.name != *name {
                return Hit::Miss;
            }
        }
        if self.list {
            Hit::Entry(path[n - 1].id.clone())
        } else {
            Hit::Whole
        }
    }

    fn node<'a>(&self, root: &'a Node) -> Option<&'a Node> {
        let mut node = root;
        for (module, name) in &self.path[..self.path.len() - usize::from(self.list)] {
            node = node.children.get(&NodeKey::new(module, name))?;
        }
        Some(node)
    }
}

enum Hit {
    Miss,
    Whole,
    Entry(Vec<String>),
}

/// What a commit changed in one declared subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Touched {
    Untouched,
    Whole,
    Entries(BTreeSet<Vec<String>>),
}

/// The changes of one commit as one runtime sees them: per declared subtree (in the order of
/// [`Provider::subtrees`]), whether it changed and which entries.
pub struct Changes<'a> {
    old: &'a Node,
    new: &'a Node,
    subtrees: &'a [Subtree],
    touched: Vec<Touched>,
}

impl<'a> Changes<'a> {
    /// Sorts `changes` into `subtrees`: O(changes × subtrees), no tree walk.
    pub fn new(
        subtrees: &'a [Subtree],
        old: &'a Node,
        new: &'a Node,
        changes: &[Change],
    ) -> Changes<'a> {
        let mut touched = vec![Touched::Untouched; subtrees.len()];
        for c in changes {
            for (t, s) in touched.iter_mut().zip(subtrees) {
                match (s.classify(c.path()), &mut *t) {
                    (Hit::Miss, _) | (_, Touched::Whole) => {}
                    (Hit::Whole, t) => *t = Touched::Whole,
                    (Hit::Entry(id), Touched::Entries(set)) => {
                        set.insert(id);
                    }
                    (Hit::Entry(id), t) => *t = Touched::Entries(BTreeSet::from([id])),
                }
            }
        }
        Changes {
            old,
            new,
            subtrees,
            touched,
        }
    }

    /// Every declared subtree as changed throughout: bringing a new runtime to `new`.
    pub fn everything(subtrees: &'a [Subtree], old: &'a Node, new: &'a Node) -> Changes<'a> {
        Changes {
            old,
            new,
            subtrees,
            touched: vec![Touched::Whole; subtrees.len()],
        }
    }

    /// Whether anything in any declared subtree changed.
    pub fn any(&self) -> bool {
        self.touched.iter().any(|t| *t != Touched::Untouched)
    }

    /// Whether subtree `i` changed.
    pub fn touched(&self, i: usize) -> bool {
        self.touched[i] != Touched::Untouched
    }

    /// Subtree `i` in the new configuration (for a list subtree, the list's parent).
    pub fn subtree(&self, i: usize) -> Option<&'a Node> {
        let node = self.subtrees[i].node(self.new)?;
        // Handing a subtree over whole costs what a reader of it looks at: its children.
        work::tree_nodes(1 + node.children.len());
        Some(node)
    }

    /// The changed entries of list subtree `i`: each entry's keys and its new content (None when
    /// it was deleted), in key order.
    pub fn entries(&self, i: usize) -> Vec<(Vec<String>, Option<&'a Node>)> {
        let s = &self.subtrees[i];
        let Some((module, name)) = s.path.last() else {
            return Vec::new();
        };
        let keys: BTreeSet<Vec<String>> = match &self.touched[i] {
            Touched::Untouched => return Vec::new(),
            Touched::Entries(keys) => keys.clone(),
            Touched::Whole => [self.old, self.new]
                .into_iter()
                .filter_map(|root| s.node(root))
                .flat_map(|parent| {
                    parent
                        .children
                        .keys()
                        .filter(|k| k.module == *module && k.name == *name && !k.id.is_empty())
                        .map(|k| k.id.clone())
                })
                .collect(),
        };
        let parent = s.node(self.new);
        work::tree_nodes(keys.len());
        keys.into_iter()
            .map(|id| {
                let entry = parent.and_then(|p| {
                    p.children
                        .get(&NodeKey::with_id(module, name, id.clone()))
                        .map(|n| &**n)
                });
                (id, entry)
            })
            .collect()
    }
}

impl<'a> Changes<'a> {
    /// Brings `map` (one value per entry of list subtree `i`, keyed by the entry's one key) up
    /// to date: each changed entry is decoded again, `decode` giving None when the entry holds
    /// nothing for this runtime, and a deleted one is removed.
    pub fn update<T>(
        &self,
        i: usize,
        map: &mut BTreeMap<String, T>,
        mut decode: impl FnMut(&str, &'a Node) -> Result<Option<T>, String>,
    ) -> Result<(), String> {
        for (id, entry) in self.entries(i) {
            let Ok([name]) = <[String; 1]>::try_from(id) else {
                continue;
            };
            map.remove(&name);
            if let Some(v) = entry.map(|e| decode(&name, e)).transpose()?.flatten() {
                map.insert(name, v);
            }
        }
        Ok(())
    }
}

/// A runtime that turns its part of the configuration into behaviour.
pub trait Provider: Send + 'static {
    /// The runtime's configuration in its own terms.
    type Config: Clone + Default + Send + 'static;

    /// The name a refusal is reported under.
    fn name(&self) -> &'static str;

    /// The subtrees this runtime owns; [`Changes`] reports on them in this order.
    fn subtrees(&self) -> &'static [Subtree];

    /// The configuration after `changes`, from the current one; `Err` refuses the commit.
    fn decode(&self, current: &Self::Config, changes: &Changes<'_>)
        -> Result<Self::Config, String>;

    /// Checks `next` against what the runtime can do and reserves what `apply` needs.
    fn prepare(&mut self, _next: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Makes `next` take effect; `changes` says what differs from `current`.
    fn apply(
        &mut self,
        current: &Self::Config,
        next: &Self::Config,
        changes: &Changes<'_>,
    ) -> Result<(), String>;

    /// Releases what `prepare` reserved: the commit will not happen.
    fn abort(&mut self) {}
}

/// A runtime that adds its operational state to `<get>` data.
pub trait OperProvider: Send + Sync {
    fn merge_state(&self, tree: &mut Node);
}

/// A registered runtime with its current and staged configuration.
struct Slot<P: Provider> {
    provider: P,
    current: P::Config,
    staged: Option<P::Config>,
}

/// The registry's view of a slot, whatever its configuration type.
trait Registered: Send {
    fn name(&self) -> &'static str;
    /// Decodes and prepares; Ok(false) when the commit does not concern this runtime.
    fn prepare(&mut self, old: &Node, new: &Node, changes: &[Change]) -> Result<bool, String>;
    fn apply(&mut self, old: &Node, new: &Node, changes: &[Change]) -> Result<(), String>;
    /// Applies the current configuration back after `apply` (best effort).
    fn revert(&mut self, old: &Node, new: &Node, changes: &[Change]);
    fn abort(&mut self);
    fn settle(&mut self);
}

impl<P: Provider> Registered for Slot<P> {
    fn name(&self) -> &'static str {
        self.provider.name()
    }

    fn prepare(&mut self, old: &Node, new: &Node, changes: &[Change]) -> Result<bool, String> {
        let seen = Changes::new(self.provider.subtrees(), old, new, changes);
        if !seen.any() {
            return Ok(false);
        }
        let next = self.provider.decode(&self.current, &seen)?;
        self.provider.prepare(&next)?;
        self.staged = Some(next);
        Ok(true)
    }

    fn apply(&mut self, old: &Node, new: &Node, changes: &[Change]) -> Result<(), String> {
        let Some(next) = &self.staged else {
            return Ok(());
        };
        let seen = Changes::new(self.provider.subtrees(), old, new, changes);
        self.provider.apply(&self.current, next, &seen)
    }

    fn revert(&mut self, old: &Node, new: &Node, changes: &[Change]) {
        if let Some(next) = self.staged.take() {
            // The way back touches the same paths, with the trees' roles swapped.
            let seen = Changes::new(self.provider.subtrees(), new, old, changes);
            if let Err(e) = self.provider.apply(&next, &self.current, &seen) {
                tracing::error!(provider = self.provider.name(), error = %e, "rolling back failed");
            }
        }
    }

    fn abort(&mut self) {
        if self.staged.take().is_some() {
            self.provider.abort();
        }
    }

    fn settle(&mut self) {
        if let Some(next) = self.staged.take() {
            self.current = next;
        }
    }
}

/// The runtimes of one agent, in registration order.
#[derive(Default)]
pub struct Registry {
    slots: Vec<Box<dyn Registered>>,
}

impl Registry {
    /// Registers a runtime and brings it to `running`.
    pub fn register<P: Provider>(&mut self, provider: P, running: &Node) -> Result<(), String> {
        let mut slot = Slot {
            provider,
            current: P::Config::default(),
            staged: None,
        };
        let empty = Node::default();
        let subtrees = slot.provider.subtrees();
        let all = Changes::everything(subtrees, &empty, running);
        let next = slot
            .provider
            .decode(&slot.current, &all)
            .and_then(|next| slot.provider.prepare(&next).map(|_| next))
            .map_err(|e| format!("{}: {e}", slot.provider.name()))?;
        slot.provider
            .apply(&P::Config::default(), &next, &all)
            .map_err(|e| format!("{}: {e}", slot.provider.name()))?;
        slot.current = next;
        self.slots.push(Box::new(slot));
        Ok(())
    }

    /// Runs a commit from `old` to `new` through every runtime it concerns; on `Err` (the
    /// runtime's name and reason) every runtime is back at `old`.
    pub fn commit(&mut self, old: &Node, new: &Node, changes: &[Change]) -> Result<(), Refusal> {
        self.commit_then(old, new, changes, || Ok(()))
    }

    /// [`Self::commit`], then `persist` once every runtime has applied the change: when it
    /// fails, the applied runtimes are put back at `old` and the refusal says why.
    pub fn commit_then(
        &mut self,
        old: &Node,
        new: &Node,
        changes: &[Change],
        persist: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), Refusal> {
        let mut prepared = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            match slot.prepare(old, new, changes) {
                Ok(true) => prepared.push(i),
                Ok(false) => {}
                Err(reason) => {
                    let name = slot.name();
                    for &j in &prepared {
                        self.slots[j].abort();
                    }
                    return Err(Refusal::Prepare { name, reason });
                }
            }
        }
        for (n, &i) in prepared.iter().enumerate() {
            if let Err(reason) = self.slots[i].apply(old, new, changes) {
                let name = self.slots[i].name();
                for &j in &prepared[n + 1..] {
                    self.slots[j].abort();
                }
                for &j in &prepared[..=n] {
                    self.slots[j].revert(old, new, changes);
                }
                tracing::error!(provider = name, %reason, "apply failed, configuration rolled back");
                return Err(Refusal::Apply { name, reason });
            }
        }
        if let Err(reason) = persist() {
            for &i in &prepared {
                self.slots[i].revert(old, new, changes);
            }
            tracing::error!(%reason, "persisting failed, configuration rolled back");
            return Err(Refusal::Persist { reason });
        }
        for &i in &prepared {
            self.slots[i].settle();
        }
        Ok(())
    }
}

/// Why a commit did not reach the runtimes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A runtime refused the change in prepare.
    Prepare { name: &'static str, reason: String },
    /// A runtime could not apply it; every runtime is back at the old configuration.
    Apply { name: &'static str, reason: String },
    /// The change could not be made durable; every runtime is back at the old configuration.
    Persist { reason: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Prepare { name, reason } => write!(f, "{name} refused the change: {reason}"),
            Refusal::Persist { reason } => write!(f, "{reason}"),
            Refusal::Apply { name, reason } => {
                write!(f, "{name} could not apply the change: {reason}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const IF: &str = "ietf-interfaces";
    const IP: &str = "ietf-ip";
    const IPV6: &[Subtree] = &[Subtree::entries(
        &[(IF, "interfaces"), (IF, "interface")],
        &[(IP, "ipv6")],
    )];

    fn iface(name: &str) -> NodeKey {
        NodeKey::with_id(IF, "interface", vec![name.to_string()])
    }

    /// A tree with `n` interfaces, each with an IPv6 `mtu` leaf.
    fn tree(n: usize) -> Node {
        let mut root = Node::default();
        let ifs = root.child_mut(NodeKey::new(IF, "interfaces"));
        for i in 0..n {
            let e = ifs.child_mut(iface(&format!("eth{i}")));
            e.set_leaf(IF, "description", "x");
            e.child_mut(NodeKey::new(IP, "ipv6"))
                .set_leaf(IP, "mtu", "1500");
        }
        root
    }

    fn path(name: &str, rest: &[(&str, &str)]) -> Vec<NodeKey> {
        let mut p = vec![NodeKey::new(IF, "interfaces"), iface(name)];
        p.extend(rest.iter().map(|(m, n)| NodeKey::new(m, n)));
        p
    }

    fn modified(p: Vec<NodeKey>) -> Change {
        Change::Modified(p, Some("a".into()), Some("b".into()))
    }

    #[test]
    fn changes_are_cut_by_subtree_and_entry() {
        let (old, new) = (tree(3), tree(3));
        let outside = modified(path("eth0", &[(IF, "description")]));
        let inside = modified(path("eth1", &[(IP, "ipv6"), (IP, "mtu")]));
        let created = Change::Created(path("eth2", &[]), Arc::new(Node::default()));
        let c = Changes::new(IPV6, &old, &new, std::slice::from_ref(&outside));
        assert!(!c.any(), "a change outside `within` concerns nobody");
        let c = Changes::new(IPV6, &old, &new, &[outside, inside, created]);
        let keys: Vec<Vec<String>> = c.entries(0).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [vec!["eth1".to_string()], vec!["eth2".to_string()]]);
        assert!(c.entries(0).iter().all(|(_, e)| e.is_some()));
    }

    #[test]
    fn replacing_the_whole_list_hands_every_entry_old_and_new() {
        let (old, new) = (tree(2), tree(3));
        let whole = Change::Created(
            vec![NodeKey::new(IF, "interfaces")],
            Arc::new(Node::default()),
        );
        let c = Changes::new(IPV6, &old, &new, &[whole]);
        assert_eq!(c.entries(0).len(), 3);
        // Entries gone from the new tree are handed as deleted.
        let c = Changes::new(
            IPV6,
            &new,
            &old,
            &[Change::Deleted(
                vec![NodeKey::new(IF, "interfaces")],
                Arc::new(Node::default()),
            )],
        );
        let gone: Vec<_> = c
            .entries(0)
            .into_iter()
            .filter(|(_, e)| e.is_none())
            .collect();
        assert_eq!(gone, [(vec!["eth2".to_string()], None)]);
    }

    /// Records what the registry asks; refuses or fails on demand.
    struct Probe {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
        refuse: bool,
        fail_apply: bool,
    }

    impl Provider for Probe {
        /// The interfaces with IPv6 settings.
        type Config = BTreeSet<String>;
        fn name(&self) -> &'static str {
            self.name
        }
        fn subtrees(&self) -> &'static [Subtree] {
            IPV6
        }
        fn decode(
            &self,
            current: &Self::Config,
            changes: &Changes,
        ) -> Result<Self::Config, String> {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} decode", self.name));
            let mut next = current.clone();
            for (id, e) in changes.entries(0) {
                match e {
                    Some(_) => next.insert(id[0].clone()),
                    None => next.remove(&id[0]),
                };
            }
            Ok(next)
        }
        fn prepare(&mut self, next: &Self::Config) -> Result<(), String> {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} prepare {}", self.name, next.len()));
            if self.refuse {
                return Err("no".into());
            }
            Ok(())
        }
        fn apply(
            &mut self,
            current: &Self::Config,
            next: &Self::Config,
            _: &Changes,
        ) -> Result<(), String> {
            self.log.lock().unwrap().push(format!(
                "{} apply {}->{}",
                self.name,
                current.len(),
                next.len()
            ));
            if self.fail_apply && next.len() > current.len() {
                return Err("kernel said no".into());
            }
            Ok(())
        }
        fn abort(&mut self) {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} abort", self.name));
        }
    }

    fn probe(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Probe {
        Probe {
            name,
            log: Arc::clone(log),
            refuse: false,
            fail_apply: false,
        }
    }

    #[test]
    fn a_refusal_aborts_the_prepared_and_leaves_everyone_current() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (old, new) = (tree(1), tree(2));
        // Registering brings a runtime to running, and it may refuse that too.
        let mut reg = Registry::default();
        let refused = reg.register(
            Probe {
                refuse: true,
                ..probe("b", &log)
            },
            &old,
        );
        assert_eq!(refused, Err("b: no".to_string()));
        assert!(reg.slots.is_empty());
        let created = Change::Created(path("eth1", &[]), Arc::new(Node::default()));
        let mut reg2 = Registry::default();
        reg2.register(probe("a", &log), &old).unwrap();
        reg2.register(probe("b", &log), &old).unwrap();
        // b refuses the next commit.
        let mut refusing = Registry::default();
        refusing.register(probe("a", &log), &old).unwrap();
        refusing.slots.push(Box::new(Slot {
            provider: Probe {
                refuse: true,
                ..probe("b", &log)
            },
            current: BTreeSet::new(),
            staged: None,
        }));
        log.lock().unwrap().clear();
        let err = refusing
            .commit(&old, &new, std::slice::from_ref(&created))
            .unwrap_err();
        assert_eq!(err.to_string(), "b refused the change: no");
        assert_eq!(
            *log.lock().unwrap(),
            [
                "a decode",
                "a prepare 2",
                "b decode",
                "b prepare 1",
                "a abort"
            ]
        );
        // The same commit through runtimes that accept it.
        log.lock().unwrap().clear();
        reg2.commit(&old, &new, &[created]).unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                "a decode",
                "a prepare 2",
                "b decode",
                "b prepare 2",
                "a apply 1->2",
                "b apply 1->2"
            ]
        );
    }

    #[test]
    fn a_failed_apply_puts_the_applied_back_and_aborts_the_rest() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (old, new) = (tree(1), tree(2));
        let mut reg = Registry::default();
        reg.register(probe("a", &log), &old).unwrap();
        reg.register(
            Probe {
                fail_apply: true,
                ..probe("b", &log)
            },
            &Node::default(),
        )
        .unwrap();
        reg.slots[1] = Box::new(Slot {
            provider: Probe {
                fail_apply: true,
                ..probe("b", &log)
            },
            current: BTreeSet::from(["eth0".to_string()]),
            staged: None,
        });
        reg.register(probe("c", &log), &old).unwrap();
        log.lock().unwrap().clear();
        let created = Change::Created(path("eth1", &[]), Arc::new(Node::default()));
        let err = reg
            .commit(&old, &new, std::slice::from_ref(&created))
            .unwrap_err();
        assert!(matches!(err, Refusal::Apply { name: "b", .. }), "{err}");
        let log = log.lock().unwrap();
        let tail: Vec<&str> = log.iter().skip(6).map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "a apply 1->2",
                "b apply 1->2",
                "c abort",
                "a apply 2->1",
                "b apply 2->1"
            ]
        );
        drop(log);
        // Nothing settled: the next commit starts from the old configuration.
        let mut again = Vec::new();
        for s in &reg.slots {
            again.push(s.name());
        }
        assert_eq!(again, ["a", "b", "c"]);
    }

    #[test]
    fn a_commit_elsewhere_calls_no_runtime() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (old, new) = (tree(2), tree(2));
        let mut reg = Registry::default();
        reg.register(probe("a", &log), &old).unwrap();
        log.lock().unwrap().clear();
        let elsewhere = modified(path("eth0", &[(IF, "description")]));
        reg.commit(&old, &new, &[elsewhere]).unwrap();
        assert!(log.lock().unwrap().is_empty());
    }

    #[test]
    fn a_change_that_cannot_be_persisted_is_taken_back_from_the_runtimes() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (old, new) = (tree(1), tree(2));
        let mut reg = Registry::default();
        reg.register(probe("a", &log), &old).unwrap();
        reg.register(probe("b", &log), &old).unwrap();
        log.lock().unwrap().clear();
        let created = Change::Created(path("eth1", &[]), Arc::new(Node::default()));
        let err = reg
            .commit_then(&old, &new, std::slice::from_ref(&created), || {
                Err("could not write the datastore: No space left on device".into())
            })
            .unwrap_err();
        assert_eq!(
            err,
            Refusal::Persist {
                reason: "could not write the datastore: No space left on device".into()
            }
        );
        let tail: Vec<String> = log.lock().unwrap().iter().skip(4).cloned().collect();
        assert_eq!(
            tail,
            [
                "a apply 1->2",
                "b apply 1->2",
                "a apply 2->1",
                "b apply 2->1"
            ]
        );
        // Nothing settled: the same commit goes through from the old configuration.
        log.lock().unwrap().clear();
        reg.commit(&old, &new, &[created]).unwrap();
        assert!(log.lock().unwrap().contains(&"a apply 1->2".to_string()));
    }
}
