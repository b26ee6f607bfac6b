//! The bounded queue of record changes between the controller and the RBS sync engine, sans-IO:
//! pending changes coalesce per (service, backup-id, record key), so a record that changes
//! faster than the engine takes changes waits once with its latest value. When a new record
//! finds the queue full, its service's changes are dropped and the service is marked for a
//! rebuild: the drain asks the controller for the service's whole table and has the engine
//! replace its own with it (a batch resync with the peer). Pushing never waits.

use crate::rbs::api::{BackupId, SyncCommand};
use std::collections::{BTreeMap, BTreeSet, HashMap};

type RecordId = (String, BackupId, Vec<u8>);

/// The latest change of a record: its value, or None for a removal.
type Change = Option<Vec<u8>>;

/// Pending record changes, in the order of their latest change.
#[derive(Debug)]
pub struct Outbox {
    cap: usize,
    next: u64,
    pending: HashMap<RecordId, (u64, Change)>,
    order: BTreeMap<u64, RecordId>,
    rebuild: BTreeSet<String>,
    /// Times a service's changes were dropped for a rebuild.
    pub overflows: u64,
}

impl Outbox {
    /// A queue holding at most `cap` records.
    pub fn new(cap: usize) -> Outbox {
        Outbox {
            cap,
            next: 0,
            pending: HashMap::new(),
            order: BTreeMap::new(),
            rebuild: BTreeSet::new(),
            overflows: 0,
        }
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether a service waits for a rebuild.
    pub fn needs_rebuild(&self) -> bool {
        !self.rebuild.is_empty()
    }

    /// Queues a change of `service`'s table; the latest change of a record replaces the one
    /// waiting and moves behind the others.
    pub fn push(&mut self, service: String, cmd: SyncCommand) {
        if self.rebuild.contains(&service) {
            // The rebuild reads the table after this change.
            return;
        }
        let (backup_id, key, change) = match cmd {
            SyncCommand::Upsert {
                backup_id,
                key,
                value,
            } => (backup_id, key, Some(value)),
            SyncCommand::Remove { backup_id, key } => (backup_id, key, None),
            SyncCommand::Replace { .. } => {
                self.overflow(service);
                return;
            }
        };
        let id = (service, backup_id, key);
        let seq = self.next;
        self.next += 1;
        let full = self.pending.len() >= self.cap;
        match self.pending.get_mut(&id) {
            Some(slot) => {
                self.order.remove(&slot.0);
                *slot = (seq, change);
            }
            None if full => {
                self.overflow(id.0);
                return;
            }
            None => {
                self.pending.insert(id.clone(), (seq, change));
            }
        }
        self.order.insert(seq, id);
    }

    fn overflow(&mut self, service: String) {
        self.overflows += 1;
        tracing::warn!(
            service,
            waiting = self.pending.len(),
            "record changes for the peer outrun the RBS channel; its table will be resent whole"
        );
        let order = &mut self.order;
        self.pending.retain(|id, (seq, _)| {
            let keep = id.0 != service;
            if !keep {
                order.remove(seq);
            }
            keep
        });
        self.rebuild.insert(service);
    }

    /// The oldest change waiting.
    pub fn pop(&mut self) -> Option<(String, SyncCommand)> {
        let (_, id) = self.order.pop_first()?;
        let (_, change) = self.pending.remove(&id)?;
        let (service, backup_id, key) = id;
        let cmd = match change {
            Some(value) => SyncCommand::Upsert {
                backup_id,
                key,
                value,
            },
            None => SyncCommand::Remove { backup_id, key },
        };
        Some((service, cmd))
    }

    /// The services to rebuild; they queue changes again from now on. Take them in the same
    /// critical section as the tables they are rebuilt from, so that no change falls between.
    pub fn take_rebuild(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.rebuild)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(id: BackupId, k: &str, v: &str) -> SyncCommand {
        SyncCommand::Upsert {
            backup_id: id,
            key: k.into(),
            value: v.into(),
        }
    }

    fn rm(id: BackupId, k: &str) -> SyncCommand {
        SyncCommand::Remove {
            backup_id: id,
            key: k.into(),
        }
    }

    #[test]
    fn changes_coalesce_per_record_in_the_order_of_their_latest_change() {
        let mut o = Outbox::new(8);
        o.push("s".into(), up(1, "a", "1"));
        o.push("s".into(), up(1, "b", "1"));
        o.push("s".into(), up(1, "a", "2"));
        o.push("s".into(), up(2, "a", "1"));
        o.push("t".into(), rm(1, "b"));
        o.push("s".into(), rm(1, "b"));
        assert_eq!(o.len(), 4);
        let got: Vec<_> = std::iter::from_fn(|| o.pop()).collect();
        assert_eq!(
            got,
            [
                ("s".to_string(), up(1, "a", "2")),
                ("s".to_string(), up(2, "a", "1")),
                ("t".to_string(), rm(1, "b")),
                ("s".to_string(), rm(1, "b")),
            ]
        );
        assert!(o.is_empty() && !o.needs_rebuild());
    }

    #[test]
    fn a_full_queue_drops_the_service_for_a_rebuild_and_keeps_the_others() {
        let mut o = Outbox::new(3);
        o.push("t".into(), up(1, "x", "1"));
        o.push("s".into(), up(1, "a", "1"));
        o.push("s".into(), up(1, "b", "1"));
        // A change of a waiting record still fits.
        o.push("s".into(), up(1, "b", "2"));
        assert!(!o.needs_rebuild());
        o.push("s".into(), up(1, "c", "1"));
        assert_eq!(o.overflows, 1);
        assert!(o.needs_rebuild());
        // Until the rebuild is taken, the service's changes wait in its table only.
        o.push("s".into(), up(1, "d", "1"));
        assert_eq!(o.len(), 1);
        assert_eq!(o.take_rebuild(), BTreeSet::from(["s".to_string()]));
        o.push("s".into(), up(1, "e", "1"));
        let got: Vec<_> = std::iter::from_fn(|| o.pop()).collect();
        assert_eq!(
            got,
            [
                ("t".to_string(), up(1, "x", "1")),
                ("s".to_string(), up(1, "e", "1")),
            ]
        );
    }
}
