//! The contract between the RBS sync engine and the owners of backed-up records (the
//! hot-backup controller): what an owner pushes, and what it is told about the peer's table;
//! and the events the runtime reports to management.
//!
//! Records are opaque to RBS: a key and a value per backup-id. The engine keeps the local
//! table (to send a full batch when the channel comes up and to compute its digest) and the
//! peer's table (to reconcile after a resync). Values that carry timers express them as
//! absolute times on the sender's clock in milliseconds; every frame carries the sender's clock,
//! so the receiver turns them into remaining times on arrival.

use super::channel::DownReason;
use crate::time::Time;

/// Identifies a profile on the channel; the same on both devices (1..=4095).
pub type BackupId = u16;

/// Whole records (key, value), as a table is replaced with.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// What an owner asks the engine to do with its local table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncCommand {
    /// Insert or replace a record; sent to the peer in order.
    Upsert {
        backup_id: BackupId,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Remove a record; sent to the peer in order.
    Remove { backup_id: BackupId, key: Vec<u8> },
    /// Replace the whole table (the owner lost changes on the way and rebuilds it): the
    /// peer gets it as a new batch, which also removes there what the table no longer holds.
    Replace {
        backup_id: BackupId,
        records: Records,
    },
}

/// What the engine tells an owner about one backup-id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// The channel is up and authenticated; a batch exchange starts.
    ChannelUp,
    /// The channel went down; the peer's records stay as they were (they are the backup).
    ChannelDown,
    /// The peer has no profile with this backup-id; nothing is synced for it.
    BackupIdMismatch,
    /// The peer's full table is arriving.
    BatchStarted,
    /// A peer record was added or changed. `sender_now` is the peer's clock when it sent the
    /// frame (carried in milliseconds), to turn absolute timer values into remaining times.
    Upsert {
        key: Vec<u8>,
        value: Vec<u8>,
        sender_now: Time,
    },
    /// A peer record is gone (a real-time removal, or absent from a completed batch).
    Remove { key: Vec<u8> },
    /// The peer's full table has arrived and both digests matched: this side is in sync.
    BatchComplete,
}

/// What the runtime reports to management; the northbound renders each as an mldhb-rbs
/// notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RbsEvent {
    /// A service's channel came up.
    ChannelUp {
        service: String,
        authenticated: bool,
    },
    /// A service's channel that had come up went down.
    ChannelDown { service: String, reason: DownReason },
    /// A profile's batch sync completed: the peer's table of `entries` records arrived and
    /// matched its digest.
    BatchSyncComplete { profile: String, entries: u32 },
}
