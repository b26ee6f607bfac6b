//! Datastores (running, candidate, startup) kept in sled, one key per data node, so a commit
//! writes only what changed and is durable before it is acknowledged.

pub mod tree;
pub mod work;

use std::path::Path;
use tree::{Change, Node, NodeKey};

/// The three configuration datastores of RFC 6241.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Datastore {
    Running,
    Candidate,
    Startup,
}

impl Datastore {
    pub const ALL: [Datastore; 3] = [Datastore::Running, Datastore::Candidate, Datastore::Startup];

    pub fn name(self) -> &'static str {
        match self {
            Datastore::Running => "running",
            Datastore::Candidate => "candidate",
            Datastore::Startup => "startup",
        }
    }

    pub fn parse(s: &str) -> Option<Datastore> {
        Datastore::ALL.into_iter().find(|d| d.name() == s)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("datastore storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("datastore record is corrupt: {0}")]
    Corrupt(&'static str),
}

const SEG: u8 = 0;
const FIELD: u8 = 1;
const INNER: u8 = 0;
const LEAF: u8 = 1;

/// sled-backed storage of the three datastores.
pub struct Store {
    db: sled::Db,
    trees: [sled::Tree; 3],
    meta: sled::Tree,
    /// The running configuration a pending confirmed commit rolls back to.
    rollback: sled::Tree,
    fresh: bool,
}

fn encode_path(path: &[NodeKey], out: &mut Vec<u8>) {
    for (i, k) in path.iter().enumerate() {
        if i > 0 {
            out.push(SEG);
        }
        out.extend_from_slice(k.module.as_bytes());
        out.push(FIELD);
        out.extend_from_slice(k.name.as_bytes());
        for id in &k.id {
            out.push(FIELD);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

fn decode_path(bytes: &[u8]) -> Result<Vec<NodeKey>, StoreError> {
    let mut path = Vec::new();
    for seg in bytes.split(|b| *b == SEG) {
        let mut fields = seg.split(|b| *b == FIELD);
        let text = |f: Option<&[u8]>| -> Result<String, StoreError> {
            let f = f.ok_or(StoreError::Corrupt("path segment without a name"))?;
            String::from_utf8(f.to_vec()).map_err(|_| StoreError::Corrupt("path is not UTF-8"))
        };
        let module = text(fields.next())?;
        let name = text(fields.next())?;
        let id = fields
            .map(|f| text(Some(f)))
            .collect::<Result<Vec<_>, _>>()?;
        path.push(NodeKey::with_id(&module, &name, id));
    }
    Ok(path)
}

fn encode_value(node: &Node) -> Vec<u8> {
    match &node.value {
        None => vec![INNER],
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(LEAF);
            out.extend_from_slice(v.as_bytes());
            out
        }
    }
}

fn path_key(path: &[NodeKey]) -> Vec<u8> {
    let mut k = Vec::new();
    encode_path(path, &mut k);
    k
}

/// Adds every node of `node`'s subtree (itself included) to the batch.
fn insert_subtree(batch: &mut sled::Batch, path: &mut Vec<NodeKey>, node: &Node) {
    work::store_writes(1);
    batch.insert(path_key(path), encode_value(node));
    for (k, c) in &node.children {
        path.push(k.clone());
        insert_subtree(batch, path, c);
        path.pop();
    }
}

fn remove_subtree(batch: &mut sled::Batch, path: &mut Vec<NodeKey>, node: &Node) {
    work::store_writes(1);
    batch.remove(path_key(path));
    for (k, c) in &node.children {
        path.push(k.clone());
        remove_subtree(batch, path, c);
        path.pop();
    }
}

/// sled's page cache.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .mode(sled::Mode::HighThroughput)
            // The data tree in memory is the working copy; sled's cache (1 GiB by default) only
            // speeds up reads, which happen once, at start.
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let trees = [
            db.open_tree("running")?,
            db.open_tree("candidate")?,
            db.open_tree("startup")?,
        ];
        let meta = db.open_tree("meta")?;
        let rollback = db.open_tree("confirmed-rollback")?;
        let fresh = meta.get("initialized")?.is_none();
        Ok(Store {
            db,
            trees,
            meta,
            rollback,
            fresh,
        })
    }

    /// The sled tree holding the notification replay log.
    pub fn notification_log(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("notifications")?)
    }

    /// True when this store was created by this process (a first boot).
    pub fn is_new(&self) -> bool {
        self.fresh
    }

    /// Records that the first boot finished seeding the datastores.
    pub fn mark_initialized(&self) -> Result<(), StoreError> {
        self.meta.insert("initialized", b"1".to_vec())?;
        self.db.flush()?;
        Ok(())
    }

    fn tree(&self, ds: Datastore) -> &sled::Tree {
        &self.trees[ds as usize]
    }

    /// Reads a whole datastore.
    pub fn load(&self, ds: Datastore) -> Result<Node, StoreError> {
        load_tree(self.tree(ds))
    }

    /// Records a pending confirmed commit durably: `state` (opaque to the store) and, when
    /// given, the configuration to roll back to (kept from the first confirmed commit on).
    pub fn save_confirmed(&self, state: &[u8], rollback: Option<&Node>) -> Result<(), StoreError> {
        if let Some(tree) = rollback {
            // The marker goes last so that a crash never leaves a marker with half a tree.
            self.meta.remove("confirmed")?;
            self.db.flush()?;
            self.rollback.clear()?;
            let mut batch = sled::Batch::default();
            let mut path = Vec::new();
            for (k, c) in &tree.children {
                path.push(k.clone());
                insert_subtree(&mut batch, &mut path, c);
                path.pop();
            }
            self.rollback.apply_batch(batch)?;
        }
        self.meta.insert("confirmed", state)?;
        self.db.flush()?;
        Ok(())
    }

    /// The pending confirmed commit, if any: its state and rollback configuration.
    pub fn load_confirmed(&self) -> Result<Option<(Vec<u8>, Node)>, StoreError> {
        match self.meta.get("confirmed")? {
            None => Ok(None),
            Some(state) => Ok(Some((state.to_vec(), load_tree(&self.rollback)?))),
        }
    }

    /// Forgets the pending confirmed commit.
    pub fn clear_confirmed(&self) -> Result<(), StoreError> {
        self.meta.remove("confirmed")?;
        self.db.flush()?;
        self.rollback.clear()?;
        Ok(())
    }

    /// Applies `changes` to a datastore atomically and makes them durable.
    pub fn write_changes(&self, ds: Datastore, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.tree(ds).apply_batch(batch_of(changes))?;
        self.db.flush()?;
        Ok(())
    }

    /// Applies the same `changes` to two datastores in one transaction (a crash leaves both
    /// old or both new) and makes them durable.
    pub fn write_changes_both(
        &self,
        a: Datastore,
        b: Datastore,
        changes: &[Change],
    ) -> Result<(), StoreError> {
        use sled::Transactional;
        if changes.is_empty() {
            return Ok(());
        }
        let batch = batch_of(changes);
        (self.tree(a), self.tree(b))
            .transaction(|(ta, tb)| {
                ta.apply_batch(&batch)?;
                tb.apply_batch(&batch)?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Corrupt("transaction aborted")
                }
            })?;
        self.db.flush()?;
        Ok(())
    }

    /// Replaces a whole datastore atomically and durably.
    pub fn replace(&self, ds: Datastore, old: &Node, new: &Node) -> Result<(), StoreError> {
        self.write_changes(ds, &tree::diff(old, new))
    }
}

/// Reads every node record of a sled tree into a data tree.
fn load_tree(tree: &sled::Tree) -> Result<Node, StoreError> {
    let mut root = Node::default();
    for item in tree.iter() {
        let (k, v) = item?;
        work::store_reads(1);
        let path = decode_path(&k)?;
        let value = match v.first() {
            Some(&LEAF) => Some(
                String::from_utf8(v[1..].to_vec())
                    .map_err(|_| StoreError::Corrupt("value is not UTF-8"))?,
            ),
            Some(&INNER) => None,
            _ => return Err(StoreError::Corrupt("unknown node record")),
        };
        let (last, parents) = path.split_last().ok_or(StoreError::Corrupt("empty path"))?;
        let mut cur = &mut root;
        for p in parents {
            cur = cur.child_mut(p.clone());
        }
        cur.child_mut(last.clone()).value = value;
    }
    Ok(root)
}

/// One sled batch holding every node record a change list adds, rewrites or removes.
fn batch_of(changes: &[Change]) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for c in changes {
        let mut path = c.path().to_vec();
        match c {
            Change::Created(_, n) => insert_subtree(&mut batch, &mut path, n),
            Change::Deleted(_, n) => remove_subtree(&mut batch, &mut path, n),
            Change::Modified(_, _, new) => {
                let node = Node {
                    value: new.clone(),
                    ..Default::default()
                };
                work::store_writes(1);
                batch.insert(path_key(&path), encode_value(&node));
            }
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn k(m: &str, n: &str, id: &[&str]) -> NodeKey {
        NodeKey::with_id(m, n, id.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn changes_survive_reopen() {
        let dir = std::env::temp_dir().join(format!("mldhb-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut t = Node::default();
        t.insert(
            &[k("m", "c", &[]), k("m", "l", &["a", "b"]), k("m", "v", &[])],
            Arc::new(Node::leaf("")),
        );
        t.insert(
            &[k("m", "c", &[]), k("m", "ll", &["x"])],
            Arc::new(Node::leaf("x")),
        );
        {
            let s = Store::open(&dir).unwrap();
            assert!(s.is_new());
            s.replace(Datastore::Running, &Node::default(), &t).unwrap();
            s.mark_initialized().unwrap();
        }
        let s = Store::open(&dir).unwrap();
        assert!(!s.is_new());
        let loaded = s.load(Datastore::Running).unwrap();
        assert_eq!(loaded, t);
        let mut t2 = t.clone();
        t2.remove(&[k("m", "c", &[]), k("m", "l", &["a", "b"])]);
        s.replace(Datastore::Running, &t, &t2).unwrap();
        assert_eq!(s.load(Datastore::Running).unwrap(), t2);
        assert_eq!(s.load(Datastore::Candidate).unwrap(), Node::default());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
