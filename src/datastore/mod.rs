//! Datastores (running, candidate, startup) kept in sled, one record per list entry (see
//! [`record`]), so a commit writes only what changed and is durable before it is acknowledged.

pub mod guard;
pub mod integrity;
pub mod pages;
pub mod record;
pub mod tree;
mod v1;
pub mod work;

use std::path::Path;
use tree::{Change, Node};

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
    #[error("datastore directory {0}: {1}")]
    Io(String, std::io::Error),
    /// The store is not what its directory says it should be; it is not re-seeded.
    #[error("{0}")]
    Damaged(String),
}

/// sled-backed storage of the three datastores.
pub struct Store {
    dir: std::path::PathBuf,
    /// Test builds: writes to running fail with ENOSPC while set.
    #[cfg(test)]
    pub fail_writes: std::sync::atomic::AtomicBool,
    /// Running's integrity sum as last written.
    running_sum: std::sync::Mutex<integrity::Sum>,
    db: sled::Db,
    trees: [sled::Tree; 3],
    meta: sled::Tree,
    /// The running configuration a pending confirmed commit rolls back to.
    rollback: sled::Tree,
    fresh: bool,
}

/// sled's page cache.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// The record layout this build writes (`meta` key `layout`); stores without the key hold the
/// first layout and are migrated on open.
const LAYOUT: &[u8] = b"2";

/// Names of the trees in the current layout: running, candidate, startup, confirmed rollback.
const TREES: [&str; 4] = [
    "records/running",
    "records/candidate",
    "records/startup",
    "records/confirmed-rollback",
];

impl Store {
    /// Opens (or creates) the store in `dir`, migrating a store of the first layout.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let io = |e| StoreError::Io(dir.display().to_string(), e);
        let widened = guard::restrict(dir).map_err(io)?;
        if widened > 0 {
            tracing::warn!(
                dir = %dir.display(),
                entries = widened,
                "datastore files were readable by others (keys are stored in clear); made private"
            );
        }
        let config = sled::Config::new()
            .path(dir.join("db"))
            .mode(sled::Mode::HighThroughput)
            // The data tree in memory is the working copy; sled's cache (1 GiB by default) only
            // speeds up reads, which happen once, at start.
            .cache_capacity(CACHE_BYTES);
        let db = open_when_released(&config)?;
        let meta = db.open_tree("meta")?;
        let fresh = meta.get("initialized")?.is_none();
        let marker = guard::marker(dir);
        if fresh && marker.exists() {
            return Err(StoreError::Damaged(format!(
                "{} holds no initialized datastore, but {} says one was initialized here: the \
                 store was damaged or replaced, and is not seeded again. To start over from the \
                 startup configuration, move the directory aside (mv {d} {d}.damaged) and start \
                 the agent again.",
                dir.join("db").display(),
                marker.display(),
                d = dir.display()
            )));
        }
        if !fresh && !marker.exists() {
            // A store initialized before the marker existed.
            guard::write_marker(dir).map_err(io)?;
        }
        if fresh {
            meta.insert("layout", LAYOUT)?;
        } else if meta.get("layout")?.as_deref() != Some(LAYOUT) {
            migrate(&db, &meta)?;
        }
        let [running, candidate, startup, rollback] = TREES.map(|n| db.open_tree(n));
        let running = running?;
        let stored = running.get(pages::META_KEY)?;
        let running_sum = stored
            .as_deref()
            .and_then(integrity::Sum::from_bytes)
            .unwrap_or_default();
        Ok(Store {
            dir: dir.to_path_buf(),
            #[cfg(test)]
            fail_writes: Default::default(),
            running_sum: std::sync::Mutex::new(running_sum),
            trees: [running, candidate?, startup?],
            rollback: rollback?,
            db,
            meta,
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
        guard::write_marker(&self.dir)
            .map_err(|e| StoreError::Io(self.dir.display().to_string(), e))
    }

    fn tree(&self, ds: Datastore) -> &sled::Tree {
        &self.trees[ds as usize]
    }

    /// Reads running or startup.
    pub fn load(&self, ds: Datastore) -> Result<Node, StoreError> {
        debug_assert!(
            ds != Datastore::Candidate,
            "the candidate is an overlay on running"
        );
        if ds != Datastore::Running {
            return load_tree(self.tree(ds));
        }
        // Running is checked against the integrity sum written with its last commit.
        let tree = self.tree(ds);
        let mut sum = integrity::Sum::default();
        let node = record::load(pages::iter(tree).inspect(|r| {
            if let Ok((k, v)) = r {
                sum.toggle(k, v);
            }
        }))?;
        match tree.get(pages::META_KEY)? {
            Some(stored) if integrity::Sum::from_bytes(&stored) == Some(sum) => {}
            Some(_) => {
                return Err(StoreError::Damaged(format!(
                    "running in {} fails its integrity check (its records do not add up to the \
                     sum written with the last commit): the store was damaged and is not used. \
                     To start over from the startup configuration, move the directory aside \
                     (mv {d} {d}.damaged) and start the agent again.",
                    self.dir.join("db").display(),
                    d = self.dir.display()
                )))
            }
            None => {
                // A store written before the sum existed: it starts here.
                tree.insert(pages::META_KEY, &sum.0[..])?;
                self.db.flush()?;
            }
        }
        *self.running_sum.lock().unwrap_or_else(|e| e.into_inner()) = sum;
        Ok(node)
    }

    /// Reads the candidate: `running` (as loaded) with the candidate's own records laid over
    /// it. The candidate tree holds only the records where the candidate differs from running,
    /// so an unchanged candidate costs nothing on disk or in sled's memory.
    pub fn load_candidate(&self, running: &Node) -> Result<Node, StoreError> {
        let mut tree = running.clone();
        for item in pages::iter(self.tree(Datastore::Candidate)) {
            let (k, v) = item?;
            record::apply_overlay(&mut tree, &k, &v)?;
        }
        Ok(tree)
    }

    /// True when the candidate has records of its own.
    pub fn candidate_differs(&self) -> bool {
        !self.tree(Datastore::Candidate).is_empty()
    }

    /// Records a pending confirmed commit durably: `state` (opaque to the store) and, when
    /// given, the configuration to roll back to (kept from the first confirmed commit on).
    pub fn save_confirmed(&self, state: &[u8], rollback: Option<&Node>) -> Result<(), StoreError> {
        if let Some(tree) = rollback {
            // The marker goes last so that a crash never leaves a marker with half a tree.
            self.meta.remove("confirmed")?;
            self.db.flush()?;
            self.rollback.clear()?;
            self.rollback.apply_batch(pages::fill(record::all(tree)))?;
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

    /// Applies `changes`, which lead to the tree `after`, to startup atomically and durably.
    pub fn write_startup(&self, changes: &[Change], after: &Node) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let tree = self.tree(Datastore::Startup);
        let writes = record::writes(changes, after);
        tree.apply_batch(pages::batch(
            tree,
            writes.iter().map(|(k, (_, v))| (k, v.as_ref())),
        )?)?;
        self.db.flush()?;
        Ok(())
    }

    /// Applies `changes` (leading to `after`) to running, durably. `candidate` is the
    /// candidate when it has changes of its own: its overlay is rewritten for every record
    /// running changes, so the candidate itself stays as it is. Without it, the candidate
    /// follows running (its overlay is empty and stays so).
    pub fn write_running(
        &self,
        changes: &[Change],
        before: &Node,
        after: &Node,
        candidate: Option<&Node>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        #[cfg(test)]
        if self.fail_writes.load(std::sync::atomic::Ordering::Relaxed) {
            let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
            return Err(StoreError::Io(self.dir.display().to_string(), full));
        }
        let (running, overlay) = (
            self.tree(Datastore::Running),
            self.tree(Datastore::Candidate),
        );
        let writes = record::writes(changes, after);
        let mut run = pages::batch(running, writes.iter().map(|(k, (_, v))| (k, v.as_ref())))?;
        let mut sum_slot = self.running_sum.lock().unwrap_or_else(|e| e.into_inner());
        let mut sum = *sum_slot;
        for (k, (path, v)) in &writes {
            sum.replace(k, record::value_at(before, path).as_deref(), v.as_deref());
        }
        run.insert(pages::META_KEY, &sum.0[..]);
        let mut keeps_own = false;
        let mut over = sled::Batch::default();
        if let Some(c) = candidate {
            // The candidate's own records where running changed: none where they now agree.
            let own: Vec<(&Vec<u8>, Option<Vec<u8>>)> = writes
                .iter()
                .map(|(k, (path, v))| {
                    let cv = record::value_at(c, path);
                    (k, (cv != *v).then(|| cv.unwrap_or_default()))
                })
                .collect();
            keeps_own = own.iter().any(|(_, v)| v.is_some());
            over = pages::batch(overlay, own.iter().map(|(k, v)| (*k, v.as_ref())))?;
        }
        if keeps_own {
            // The candidate keeps records running now lacks: both change together, or a crash
            // could show running's new records in the candidate.
            transaction(running, &run, overlay, &over)?;
            *sum_slot = sum;
        } else {
            // Only removals from the overlay, of records the candidate now shares with running:
            // written after running, a crash in between leaves them equal to it (harmless).
            running.apply_batch(run)?;
            *sum_slot = sum;
            if candidate.is_some() {
                overlay.apply_batch(over)?;
            }
        }
        self.db.flush()?;
        Ok(())
    }

    /// Applies `changes` (leading to `after`) to the candidate, durably: the overlay records
    /// where the candidate now differs from `running`, and drops those where it no longer does.
    pub fn write_candidate(
        &self,
        changes: &[Change],
        after: &Node,
        running: &Node,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let overlay = self.tree(Datastore::Candidate);
        overlay.apply_batch(overlay_batch(overlay, changes, after, running)?)?;
        self.db.flush()?;
        Ok(())
    }

    /// Makes the candidate equal to running, durably.
    pub fn reset_candidate(&self) -> Result<(), StoreError> {
        self.tree(Datastore::Candidate).clear()?;
        self.db.flush()?;
        Ok(())
    }

    /// Replaces startup atomically and durably.
    pub fn replace_startup(&self, old: &Node, new: &Node) -> Result<(), StoreError> {
        self.write_startup(&tree::diff(old, new), new)
    }
}

/// How long an open waits for the file lock of a store that this process just closed.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens the sled database, waiting (bounded) while its lock is held: a dropped `sled::Db`
/// releases the lock only when its flusher thread ends, a moment later. Any other error, or a
/// lock still held after [`LOCK_WAIT`] (another agent on the same store), is returned.
fn open_when_released(config: &sled::Config) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                // sled reports it as ErrorKind::Other with this text.
                if e.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return Ok(r?),
        }
    }
}

/// Rewrites a store of the first layout in the current one. Safe to repeat: the new trees are
/// cleared first, and the layout mark is set only once they are complete.
fn migrate(db: &sled::Db, meta: &sled::Tree) -> Result<(), StoreError> {
    let [running, candidate, startup, rollback] = v1::TREES.map(|name| {
        db.open_tree(name)
            .map_err(StoreError::from)
            .and_then(|t| v1::load(&t))
    });
    let (running, candidate) = (running?, candidate?);
    let trees = TREES.map(|name| db.open_tree(name));
    for tree in &trees {
        tree.as_ref().map_err(Clone::clone)?.clear()?;
    }
    let [t_running, t_candidate, t_startup, t_rollback] = trees;
    let records = record::all(&running);
    let mut sum = integrity::Sum::default();
    for (k, v) in &records {
        sum.toggle(k, v);
    }
    let mut batch = pages::fill(records);
    batch.insert(pages::META_KEY, &sum.0[..]);
    t_running?.apply_batch(batch)?;
    let changes = tree::diff(&running, &candidate);
    let t_candidate = t_candidate?;
    t_candidate.apply_batch(overlay_batch(&t_candidate, &changes, &candidate, &running)?)?;
    t_startup?.apply_batch(pages::fill(record::all(&startup?)))?;
    t_rollback?.apply_batch(pages::fill(record::all(&rollback?)))?;
    meta.insert("layout", LAYOUT)?;
    db.flush()?;
    for old in v1::TREES {
        db.drop_tree(old)?;
    }
    db.flush()?;
    Ok(())
}

/// Reads every record of a sled tree into a data tree.
fn load_tree(tree: &sled::Tree) -> Result<Node, StoreError> {
    record::load(pages::iter(tree))
}

/// The candidate overlay's writes for `changes` (leading to `after`): the records where the
/// candidate differs from `running` are stored (a tombstone for one it lacks), the others
/// removed.
fn overlay_batch(
    overlay: &sled::Tree,
    changes: &[Change],
    after: &Node,
    running: &Node,
) -> Result<sled::Batch, StoreError> {
    let own: Vec<(Vec<u8>, Option<Vec<u8>>)> = record::writes(changes, after)
        .into_iter()
        .map(|(k, (path, v))| {
            let differs = v != record::value_at(running, &path);
            (k, differs.then(|| v.unwrap_or_default()))
        })
        .collect();
    pages::batch(overlay, own.iter().map(|(k, v)| (k, v.as_ref())))
}

/// Applies two batches to two trees in one sled transaction.
fn transaction(
    a: &sled::Tree,
    batch_a: &sled::Batch,
    b: &sled::Tree,
    batch_b: &sled::Batch,
) -> Result<(), StoreError> {
    use sled::Transactional;
    (a, b)
        .transaction(|(ta, tb)| {
            ta.apply_batch(batch_a)?;
            tb.apply_batch(batch_b)?;
            Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
        })
        .map_err(|e| match e {
            sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
            sled::transaction::TransactionError::Abort(()) => {
                StoreError::Corrupt("transaction aborted")
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tree::NodeKey;

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
            s.write_running(
                &tree::diff(&Node::default(), &t),
                &Node::default(),
                &t,
                None,
            )
            .unwrap();
            s.mark_initialized().unwrap();
        }
        let s = Store::open(&dir).unwrap();
        assert!(!s.is_new());
        let loaded = s.load(Datastore::Running).unwrap();
        assert_eq!(loaded, t);
        let mut t2 = t.clone();
        t2.remove(&[k("m", "c", &[]), k("m", "l", &["a", "b"])]);
        s.write_running(&tree::diff(&t, &t2), &t, &t2, None)
            .unwrap();
        assert_eq!(s.load(Datastore::Running).unwrap(), t2);
        assert!(!s.candidate_differs());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_store_of_the_first_layout_is_migrated_once() {
        let dir = std::env::temp_dir().join(format!("mldhb-store-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut t = Node::default();
        for name in ["eth0", "eth1"] {
            t.insert(
                &[
                    k("if", "interfaces", &[]),
                    k("if", "interface", &[name]),
                    k("if", "name", &[]),
                ],
                Arc::new(Node::leaf(name)),
            );
        }
        t.insert(&[k("n", "enable", &[])], Arc::new(Node::leaf("true")));
        {
            let db = sled::open(dir.join("db")).unwrap();
            let meta = db.open_tree("meta").unwrap();
            meta.insert("initialized", b"1".to_vec()).unwrap();
            v1::store(&t, &db.open_tree("running").unwrap()).unwrap();
            v1::store(&t, &db.open_tree("startup").unwrap()).unwrap();
            db.flush().unwrap();
        }
        for _ in 0..2 {
            let s = Store::open(&dir).unwrap();
            assert!(!s.is_new());
            assert_eq!(s.load(Datastore::Running).unwrap(), t);
            assert_eq!(s.load(Datastore::Startup).unwrap(), t);
            let running = s.load(Datastore::Running).unwrap();
            assert_eq!(s.load_candidate(&running).unwrap(), Node::default());
            assert!(!s.db.tree_names().iter().any(|n| &n[..] == b"running"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn open_waits_for_a_store_being_closed_and_refuses_one_held() {
        let dir = std::env::temp_dir().join(format!("mldhb-store-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let held = Store::open(&dir).unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        // Opened while the first handle is still open: waits for it.
        let reopened = Store::open(&dir).unwrap();
        closer.join().unwrap();
        // Still held after the wait: the error is reported.
        let e = Store::open(&dir)
            .err()
            .expect("a held store must not open twice");
        assert!(e.to_string().contains("could not acquire lock"), "{e}");
        drop(reopened);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn interfaces(names: &[&str], description: &str) -> Node {
        let mut t = Node::default();
        for name in names {
            let e = [k("if", "interfaces", &[]), k("if", "interface", &[name])];
            t.insert(
                &[e[0].clone(), e[1].clone(), k("if", "name", &[])],
                Arc::new(Node::leaf(*name)),
            );
            t.insert(
                &[e[0].clone(), e[1].clone(), k("if", "description", &[])],
                Arc::new(Node::leaf(description)),
            );
        }
        t
    }

    #[test]
    fn the_candidate_is_stored_as_its_differences_from_running() {
        let dir = std::env::temp_dir().join(format!("mldhb-store-cand-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Store::open(&dir).unwrap();
        let empty = Node::default();
        let running = interfaces(&["a", "b", "c"], "r");
        s.write_running(&tree::diff(&empty, &running), &empty, &running, None)
            .unwrap();
        assert!(!s.candidate_differs());
        // The candidate: b edited, c deleted, d added; two records of its own plus a tombstone.
        let mut cand = interfaces(&["a", "b", "d"], "r");
        cand.insert(
            &[
                k("if", "interfaces", &[]),
                k("if", "interface", &["b"]),
                k("if", "description", &[]),
            ],
            Arc::new(Node::leaf("edited")),
        );
        s.write_candidate(&tree::diff(&running, &cand), &cand, &running)
            .unwrap();
        assert_eq!(pages::iter(s.tree(Datastore::Candidate)).count(), 3);
        assert_eq!(s.load_candidate(&running).unwrap(), cand);
        // Running changes under the candidate (a's description, b deleted): the candidate does not.
        let running2 = interfaces(&["a", "c"], "r2");
        s.write_running(
            &tree::diff(&running, &running2),
            &running,
            &running2,
            Some(&cand),
        )
        .unwrap();
        assert_eq!(s.load(Datastore::Running).unwrap(), running2);
        assert_eq!(s.load_candidate(&running2).unwrap(), cand);
        // Committing the candidate leaves no record of its own; it survives a reopen before.
        drop(s);
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.load_candidate(&running2).unwrap(), cand);
        s.write_running(&tree::diff(&running2, &cand), &running2, &cand, Some(&cand))
            .unwrap();
        assert!(!s.candidate_differs());
        assert_eq!(s.load(Datastore::Running).unwrap(), cand);
        // Editing back to running drops the records again.
        let edited = interfaces(&["a"], "x");
        s.write_candidate(&tree::diff(&cand, &edited), &edited, &cand)
            .unwrap();
        assert!(s.candidate_differs());
        s.write_candidate(&tree::diff(&edited, &cand), &cand, &cand)
            .unwrap();
        assert!(!s.candidate_differs());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_store_that_looks_new_where_the_marker_says_otherwise_is_refused() {
        let dir = std::env::temp_dir().join(format!("mldhb-store-marker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let s = Store::open(&dir).unwrap();
            assert!(s.is_new());
            s.mark_initialized().unwrap();
        }
        assert!(guard::marker(&dir).exists());
        // sled's files lost or unreadable as a store: sled would open an empty one.
        std::fs::remove_dir_all(dir.join("db")).unwrap();
        let e = Store::open(&dir).err().expect("refused");
        let text = e.to_string();
        assert!(matches!(e, StoreError::Damaged(_)), "{text}");
        assert!(
            text.contains("initialized") && text.contains(".damaged"),
            "{text}"
        );
        // Moved aside as the message says: a new store starts.
        let aside = dir.with_extension("damaged");
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(&dir, &aside).unwrap();
        assert!(Store::open(&dir).unwrap().is_new());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&aside);
    }

    #[test]
    fn key_values_with_separator_bytes_survive_a_restart() {
        // The first layout split keys at 0x00 and 0x01: such a name made the next start fail.
        let dir = std::env::temp_dir().join(format!("mldhb-store-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let running = interfaces(&["plain"], "r");
        let cand = interfaces(&["a\u{0}b", "a\u{1}b", "a", "b", "plain"], "c");
        {
            let s = Store::open(&dir).unwrap();
            s.write_running(
                &tree::diff(&Node::default(), &running),
                &Node::default(),
                &running,
                None,
            )
            .unwrap();
            s.write_candidate(&tree::diff(&running, &cand), &cand, &running)
                .unwrap();
            s.mark_initialized().unwrap();
        }
        let s = Store::open(&dir).unwrap();
        let r = s.load(Datastore::Running).unwrap();
        assert_eq!(r, running);
        assert_eq!(s.load_candidate(&r).unwrap(), cand);
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn running_that_fails_its_integrity_sum_is_refused() {
        let dir = std::env::temp_dir().join(format!("mldhb-store-sum-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let empty = Node::default();
        let running = interfaces(&["a", "b", "c"], "rrr");
        let running2 = interfaces(&["a", "c", "d"], "rrr");
        {
            let s = Store::open(&dir).unwrap();
            s.write_running(&tree::diff(&empty, &running), &empty, &running, None)
                .unwrap();
            s.write_running(&tree::diff(&running, &running2), &running, &running2, None)
                .unwrap();
            s.mark_initialized().unwrap();
        }
        // Commits kept the sum: the store opens.
        assert_eq!(
            Store::open(&dir).unwrap().load(Datastore::Running).unwrap(),
            running2
        );
        // One byte of one record changed behind the store's back (still a decodable record).
        {
            let db = open_when_released(&sled::Config::new().path(dir.join("db"))).unwrap();
            let tree = db.open_tree(TREES[0]).unwrap();
            let (key, page) = tree.iter().nth(1).unwrap().unwrap();
            let mut records = pages::decode(&page).unwrap();
            assert_eq!(records[0].0, key.to_vec());
            let (v, at) = records
                .iter_mut()
                .find_map(|(_, v)| {
                    let at = v.windows(3).position(|w| w == b"rrr")?;
                    Some((v, at))
                })
                .expect("an interface record");
            v[at] = b's';
            tree.apply_batch(pages::fill(records)).unwrap();
            db.flush().unwrap();
        }
        let s = Store::open(&dir).unwrap();
        let e = s.load(Datastore::Running).expect_err("refused");
        assert!(matches!(e, StoreError::Damaged(_)), "{e}");
        assert!(e.to_string().contains("integrity"), "{e}");
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
