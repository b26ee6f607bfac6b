//! Work counters at the boundaries every commit crosses: data-tree nodes visited, datastore
//! records read and written, nodes handed to libyang. They count per thread, so tests running
//! side by side each see their own work, and they are deterministic where a clock is not: a
//! test can hold a commit's cost to what it changes.

use std::cell::Cell;

/// Work done on one thread since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Configuration tree nodes looked at (lookups, diffs, walks, entries handed to runtimes).
    pub tree_nodes: u64,
    /// Datastore records read.
    pub store_reads: u64,
    /// Datastore records written or removed.
    pub store_writes: u64,
    /// Nodes printed for libyang to parse and validate.
    pub yang_nodes: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            tree_nodes: self.tree_nodes - o.tree_nodes,
            store_reads: self.store_reads - o.store_reads,
            store_writes: self.store_writes - o.store_writes,
            yang_nodes: self.yang_nodes - o.yang_nodes,
        }
    }
}

thread_local! {
    static COUNTS: Cell<Counts> = const { Cell::new(Counts { tree_nodes: 0, store_reads: 0, store_writes: 0, yang_nodes: 0 }) };
}

fn bump(f: impl FnOnce(&mut Counts)) {
    COUNTS.with(|c| {
        let mut v = c.get();
        f(&mut v);
        c.set(v);
    });
}

/// `n` tree nodes looked at.
pub fn tree_nodes(n: usize) {
    bump(|c| c.tree_nodes += n as u64);
}

/// `n` datastore records read.
pub fn store_reads(n: usize) {
    bump(|c| c.store_reads += n as u64);
}

/// `n` datastore records written or removed.
pub fn store_writes(n: usize) {
    bump(|c| c.store_writes += n as u64);
}

/// `n` nodes handed to libyang.
pub fn yang_nodes(n: usize) {
    bump(|c| c.yang_nodes += n as u64);
}

/// This thread's counts so far.
pub fn now() -> Counts {
    COUNTS.with(Cell::get)
}
