//! The sync engine of one service, sans-IO: local and peer record tables per backup-id, the
//! batch with its digest, deltas with sequence numbers, resync and reconcile, counters.
//!
//! When the channel comes up each side announces its backup-ids. For every backup-id both
//! sides have, each sends its whole local table as a batch (a snapshot, so later changes
//! queue behind it as deltas) ending with the table's digest; the receiver drops the peer
//! entries the batch did not carry (reconcile), compares digests and acknowledges. A
//! mismatch is counted and the receiver asks for the batch again. Deltas carry consecutive
//! sequence numbers per backup-id: one already applied is ignored (idempotent), a gap asks
//! for a new batch. A backup-id only one side has is reported to its owner and not synced.

use super::api::{BackupId, Records, SyncCommand, SyncEvent};
use super::packet::{self, Message, Op, ResyncReason};
use crate::time::Time;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Bound;

/// A local table: a persistent map, so a batch snapshot costs O(1).
pub type Table = imbl::OrdMap<Vec<u8>, Vec<u8>>;

/// Body octets of records or operations put in one frame.
pub const CHUNK: usize = 64 * 1024;

/// An order-independent digest of a table: the XOR of SHA-256 over every encoded record,
/// kept up to date with each change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Adds or removes a record (the same call does both).
    pub fn toggle(&mut self, key: &[u8], value: &[u8]) {
        self.toggle_hash(&record_hash(key, value));
    }

    /// Adds or removes a record by its [`record_hash`].
    fn toggle_hash(&mut self, h: &[u8; 32]) {
        for (d, x) in self.0.iter_mut().zip(h) {
            *d ^= x;
        }
    }

    /// The digest of a whole table, computed from scratch.
    pub fn of<'a>(records: impl IntoIterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>) -> Digest {
        let mut d = Digest::default();
        for (k, v) in records {
            d.toggle(k, v);
        }
        d
    }
}

/// The most entries a batch's announced count reserves room for at once.
const MAX_RESERVE: usize = 1 << 21;

/// A record's contribution to a [`Digest`]: SHA-256 of its length-prefixed key and value.
pub fn record_hash(key: &[u8], value: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((key.len() as u16).to_be_bytes());
    h.update(key);
    h.update((value.len() as u16).to_be_bytes());
    h.update(value);
    h.finalize().into()
}

/// A fast hash for record keys (multiply-rotate over 8-octet words). Keys come from an
/// authenticated peer, so the keyed default hasher's flooding protection is not needed.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The peer's table of one backup-id, with its digest and the batch generation that last
/// carried each entry (a completed batch sweeps out entries of older generations). Values go
/// to the owner with the events; the table keeps each record's hash, all the digest needs.
#[derive(Debug, Default)]
pub struct PeerTable {
    map: HashMap<Vec<u8>, ([u8; 32], u32), BuildHasherDefault<KeyHasher>>,
    digest: Digest,
    generation: u32,
}

impl PeerTable {
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// True when the table holds `key` with `value`.
    pub fn holds(&self, key: &[u8], value: &[u8]) -> bool {
        self.map
            .get(key)
            .is_some_and(|(h, _)| *h == record_hash(key, value))
    }
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }
    pub fn keys(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.map.keys()
    }
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Room for `n` entries in all (a batch announces its count).
    fn reserve(&mut self, n: usize) {
        self.map.reserve(n.saturating_sub(self.map.len()));
    }

    fn upsert(&mut self, key: &[u8], value: &[u8]) {
        let h = record_hash(key, value);
        self.digest.toggle_hash(&h);
        // One lookup: a batch's keys are mostly new to the table.
        if let Some((old, _)) = self.map.insert(key.to_vec(), (h, self.generation)) {
            self.digest.toggle_hash(&old);
        }
    }

    fn remove(&mut self, key: &[u8]) -> bool {
        match self.map.remove(key) {
            Some((old, _)) => {
                self.digest.toggle_hash(&old);
                true
            }
            None => false,
        }
    }

    /// Starts a batch: entries it carries get the new generation.
    fn new_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Removes the entries the current batch did not carry; returns their keys.
    fn sweep(&mut self) -> Vec<Vec<u8>> {
        let g = self.generation;
        let gone: Vec<Vec<u8>> = self
            .map
            .iter()
            .filter(|(_, (_, eg))| *eg != g)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            self.remove(k);
        }
        gone
    }
}

/// Where receiving the peer's table is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rx {
    /// No batch yet on this channel (or the channel is down).
    Waiting,
    /// A batch is arriving.
    Batch { batch: u32, seq: u64 },
    /// In sync; deltas apply.
    Live,
    /// A batch was asked for again; deltas are ignored until it arrives.
    Resyncing,
}

/// The state of the batch from the peer, as the model's `batch-sync-state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    Idle,
    InProgress,
    Complete,
}

impl BatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Idle => "idle",
            BatchState::InProgress => "in-progress",
            BatchState::Complete => "complete",
        }
    }
}

/// What the engine knows of one backup-id, for state displays and owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileStatus {
    /// The channel is up and the peer has this backup-id.
    pub linked: bool,
    /// The channel is up and the peer does not have this backup-id.
    pub mismatch: bool,
    pub batch: BatchState,
    /// The peer confirmed the last batch this side sent.
    pub peer_in_sync: bool,
    pub local_entries: usize,
    pub peer_entries: usize,
    /// Records in the last batch received completely.
    pub last_batch_entries: u32,
}

#[derive(Debug)]
struct Profile {
    local: Table,
    local_digest: Digest,
    /// Sequence number of the last local change.
    seq: u64,
    peer: PeerTable,
    /// Sequence number of the last peer change applied.
    peer_seq: u64,
    linked: bool,
    mismatch: bool,
    rx: Rx,
    peer_in_sync: bool,
    batches_sent: u32,
    last_batch_entries: u32,
}

impl Profile {
    fn new() -> Profile {
        Profile {
            local: Table::new(),
            local_digest: Digest::default(),
            seq: 0,
            peer: PeerTable::default(),
            peer_seq: 0,
            linked: false,
            mismatch: false,
            rx: Rx::Waiting,
            peer_in_sync: false,
            batches_sent: 0,
            last_batch_entries: 0,
        }
    }
}

/// One item of the send queue, in order.
#[derive(Debug)]
enum Out {
    Msg(Message),
    /// A batch being sent: a snapshot and how far it got.
    Batch {
        backup_id: BackupId,
        batch: u32,
        seq: u64,
        snapshot: Table,
        digest: Digest,
        begun: bool,
        cursor: Option<Vec<u8>>,
    },
    Op {
        backup_id: BackupId,
        seq: u64,
        op: Op,
    },
}

/// Counters of the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounters {
    pub resyncs: u64,
    pub digest_mismatches: u64,
    /// Deltas ignored because their sequence number was already applied.
    pub duplicates: u64,
}

/// What is handed to the engine.
#[derive(Debug, Clone)]
pub enum Input {
    /// The channel is up (authenticated or not).
    ChannelUp,
    ChannelDown,
    /// A sync message from the peer and the peer's clock when it was sent.
    Message {
        msg: Message,
        sender_now: Time,
    },
    Command(SyncCommand),
    Register(BackupId),
    Unregister(BackupId),
}

/// Refusals of local inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("backup-id {0} is not registered on this service")]
    NotRegistered(BackupId),
    #[error("backup-id {0} is already registered on this service")]
    AlreadyRegistered(BackupId),
    #[error("backup-id {0} is outside 1..4095")]
    BadBackupId(BackupId),
    #[error("record key or value exceeds the limit")]
    RecordTooLarge,
}

/// The engine of one service.
#[derive(Debug, Default)]
pub struct Engine {
    profiles: BTreeMap<BackupId, Profile>,
    up: bool,
    peer_ids: Option<BTreeSet<BackupId>>,
    queue: VecDeque<Out>,
    queued_ops: usize,
    pub counters: SyncCounters,
}

/// Events for owners, tagged with their backup-id.
pub type Events = Vec<(BackupId, SyncEvent)>;

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Local changes waiting to be sent (the owners' backpressure measure).
    pub fn backlog(&self) -> usize {
        self.queued_ops
    }

    /// True when nothing waits to be sent.
    pub fn idle(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn registered(&self) -> impl Iterator<Item = BackupId> + '_ {
        self.profiles.keys().copied()
    }

    pub fn status(&self, id: BackupId) -> Option<ProfileStatus> {
        let p = self.profiles.get(&id)?;
        Some(ProfileStatus {
            linked: p.linked,
            mismatch: p.mismatch,
            batch: match p.rx {
                Rx::Waiting => BatchState::Idle,
                Rx::Batch { .. } | Rx::Resyncing => BatchState::InProgress,
                Rx::Live => BatchState::Complete,
            },
            peer_in_sync: p.peer_in_sync,
            local_entries: p.local.len(),
            peer_entries: p.peer.len(),
            last_batch_entries: p.last_batch_entries,
        })
    }

    /// The local table of a backup-id.
    pub fn local(&self, id: BackupId) -> Option<&Table> {
        self.profiles.get(&id).map(|p| &p.local)
    }

    /// The peer's table of a backup-id as this side holds it.
    pub fn peer(&self, id: BackupId) -> Option<&PeerTable> {
        self.profiles.get(&id).map(|p| &p.peer)
    }

    /// Acts on one input; sync messages to send are then taken with [`Engine::poll_message`].
    pub fn handle(&mut self, input: Input) -> Result<Events, SyncError> {
        let mut ev = Vec::new();
        match input {
            Input::ChannelUp => {
                self.up = true;
                self.peer_ids = None;
                self.queue.clear();
                self.queued_ops = 0;
                self.announce();
            }
            Input::ChannelDown => self.channel_down(&mut ev),
            Input::Message { msg, sender_now } => self.on_message(msg, sender_now, &mut ev),
            Input::Command(cmd) => self.command(cmd)?,
            Input::Register(id) => {
                if !(1..=4095).contains(&id) {
                    return Err(SyncError::BadBackupId(id));
                }
                if self.profiles.contains_key(&id) {
                    return Err(SyncError::AlreadyRegistered(id));
                }
                self.profiles.insert(id, Profile::new());
                if self.up {
                    self.announce();
                    self.update_link(id, &mut ev);
                } else {
                    ev.push((id, SyncEvent::ChannelDown));
                }
            }
            Input::Unregister(id) => {
                if self.profiles.remove(&id).is_none() {
                    return Err(SyncError::NotRegistered(id));
                }
                self.drop_queued(id, false);
                if self.up {
                    self.announce();
                }
            }
        }
        Ok(ev)
    }

    fn announce(&mut self) {
        let backup_ids = self.profiles.keys().copied().collect();
        self.queue
            .push_back(Out::Msg(Message::Profiles { backup_ids }));
    }

    fn channel_down(&mut self, ev: &mut Events) {
        self.up = false;
        self.peer_ids = None;
        self.queue.clear();
        self.queued_ops = 0;
        for (id, p) in self.profiles.iter_mut() {
            // Entries of a batch cut short stay: the next batch reconciles them.
            p.linked = false;
            p.mismatch = false;
            p.rx = Rx::Waiting;
            p.peer_in_sync = false;
            ev.push((*id, SyncEvent::ChannelDown));
        }
    }

    /// Removes queued items of a backup-id: its deltas (a new batch carries them), or
    /// everything of it.
    fn drop_queued(&mut self, id: BackupId, ops_only: bool) {
        let before = self.queue.len();
        self.queue.retain(|o| match o {
            Out::Op { backup_id, .. } => *backup_id != id,
            Out::Batch { backup_id, .. } => ops_only || *backup_id != id,
            Out::Msg(_) => true,
        });
        if self.queue.len() != before {
            self.queued_ops = self
                .queue
                .iter()
                .filter(|o| matches!(o, Out::Op { .. }))
                .count();
        }
    }

    /// Links or unlinks a backup-id after the peer's list or the local registration changed.
    fn update_link(&mut self, id: BackupId, ev: &mut Events) {
        let Some(peer_ids) = &self.peer_ids else {
            return;
        };
        let both = self.up && peer_ids.contains(&id);
        let Some(p) = self.profiles.get_mut(&id) else {
            return;
        };
        if both && !p.linked {
            p.linked = true;
            p.mismatch = false;
            p.rx = Rx::Waiting;
            ev.push((id, SyncEvent::ChannelUp));
            self.start_batch(id);
        } else if !both && (p.linked || !p.mismatch) {
            p.linked = false;
            p.mismatch = true;
            p.rx = Rx::Waiting;
            p.peer_in_sync = false;
            ev.push((id, SyncEvent::BackupIdMismatch));
            self.drop_queued(id, false);
        }
    }

    fn start_batch(&mut self, id: BackupId) {
        self.drop_queued(id, true);
        let Some(p) = self.profiles.get_mut(&id) else {
            return;
        };
        p.batches_sent = p.batches_sent.wrapping_add(1);
        p.peer_in_sync = false;
        self.queue.push_back(Out::Batch {
            backup_id: id,
            batch: p.batches_sent,
            seq: p.seq,
            snapshot: p.local.clone(),
            digest: p.local_digest,
            begun: false,
            cursor: None,
        });
    }

    fn request_resync(&mut self, id: BackupId, reason: ResyncReason) {
        if let Some(p) = self.profiles.get_mut(&id) {
            p.rx = Rx::Resyncing;
        }
        self.counters.resyncs += 1;
        self.queue.push_back(Out::Msg(Message::Resync {
            backup_id: id,
            reason,
        }));
    }

    fn command(&mut self, cmd: SyncCommand) -> Result<(), SyncError> {
        let (id, op) = match cmd {
            SyncCommand::Upsert {
                backup_id,
                key,
                value,
            } => {
                if key.len() > packet::MAX_KEY || value.len() > packet::MAX_VALUE {
                    return Err(SyncError::RecordTooLarge);
                }
                (backup_id, Op::Upsert { key, value })
            }
            SyncCommand::Remove { backup_id, key } => (backup_id, Op::Remove { key }),
            SyncCommand::Replace { backup_id, records } => {
                return self.replace(backup_id, records);
            }
        };
        let p = self
            .profiles
            .get_mut(&id)
            .ok_or(SyncError::NotRegistered(id))?;
        match &op {
            Op::Upsert { key, value } => {
                p.local_digest.toggle(key, value);
                if let Some(old) = p.local.insert(key.clone(), value.clone()) {
                    p.local_digest.toggle(key, &old);
                }
            }
            Op::Remove { key } => match p.local.remove(key) {
                Some(old) => p.local_digest.toggle(key, &old),
                None => return Ok(()),
            },
        }
        p.seq += 1;
        if p.linked {
            self.queue.push_back(Out::Op {
                backup_id: id,
                seq: p.seq,
                op,
            });
            self.queued_ops += 1;
        }
        Ok(())
    }

    /// Makes `records` the local table of a backup-id and, when linked, sends it to the peer
    /// as a new batch (queued deltas of the old table are dropped: the batch carries all).
    fn replace(&mut self, id: BackupId, records: Records) -> Result<(), SyncError> {
        if records
            .iter()
            .any(|(k, v)| k.len() > packet::MAX_KEY || v.len() > packet::MAX_VALUE)
        {
            return Err(SyncError::RecordTooLarge);
        }
        let p = self
            .profiles
            .get_mut(&id)
            .ok_or(SyncError::NotRegistered(id))?;
        p.local = records.into_iter().collect();
        p.local_digest = Digest::of(p.local.iter());
        if p.linked {
            self.counters.resyncs += 1;
            self.start_batch(id);
        }
        Ok(())
    }

    fn on_message(&mut self, msg: Message, sender_now: Time, ev: &mut Events) {
        match msg {
            Message::Profiles { backup_ids } => {
                self.peer_ids = Some(backup_ids.into_iter().collect());
                let ids: Vec<BackupId> = self.profiles.keys().copied().collect();
                for id in ids {
                    self.update_link(id, ev);
                }
            }
            Message::BatchBegin {
                backup_id,
                batch,
                seq,
                count,
            } => {
                let Some(p) = self.profiles.get_mut(&backup_id).filter(|p| p.linked) else {
                    return;
                };
                p.rx = Rx::Batch { batch, seq };
                p.peer.new_generation();
                // The count is the peer's word, bounded by what one table may hold.
                p.peer.reserve((count as usize).min(MAX_RESERVE));
                ev.push((backup_id, SyncEvent::BatchStarted));
            }
            Message::BatchRecords {
                backup_id,
                batch,
                records,
            } => {
                let Some(p) = self.profiles.get_mut(&backup_id).filter(|p| p.linked) else {
                    return;
                };
                let Rx::Batch { batch: current, .. } = &p.rx else {
                    return;
                };
                if *current != batch {
                    return self.request_resync(backup_id, ResyncReason::Inconsistent);
                }
                ev.reserve(records.len());
                for (key, value) in records {
                    p.peer.upsert(&key, &value);
                    ev.push((
                        backup_id,
                        SyncEvent::Upsert {
                            key,
                            value,
                            sender_now,
                        },
                    ));
                }
            }
            Message::BatchEnd {
                backup_id,
                batch,
                count,
                digest,
            } => {
                let Some(p) = self.profiles.get_mut(&backup_id).filter(|p| p.linked) else {
                    return;
                };
                let Rx::Batch {
                    batch: current,
                    seq,
                } = std::mem::replace(&mut p.rx, Rx::Waiting)
                else {
                    return;
                };
                if current != batch {
                    return self.request_resync(backup_id, ResyncReason::Inconsistent);
                }
                // Reconcile: what the peer no longer has goes.
                for key in p.peer.sweep() {
                    ev.push((backup_id, SyncEvent::Remove { key }));
                }
                let ok = p.peer.digest().0 == digest && p.peer.len() == count as usize;
                self.queue.push_back(Out::Msg(Message::BatchAck {
                    backup_id,
                    batch,
                    ok,
                }));
                if ok {
                    p.rx = Rx::Live;
                    p.peer_seq = seq;
                    p.last_batch_entries = count;
                    ev.push((backup_id, SyncEvent::BatchComplete));
                } else {
                    tracing::warn!(backup_id, "batch digest mismatch; asking for it again");
                    p.rx = Rx::Resyncing;
                    self.counters.digest_mismatches += 1;
                    self.counters.resyncs += 1;
                }
            }
            Message::BatchAck {
                backup_id,
                batch,
                ok,
            } => {
                let Some(p) = self.profiles.get_mut(&backup_id).filter(|p| p.linked) else {
                    return;
                };
                if batch != p.batches_sent {
                    return;
                }
                if ok {
                    p.peer_in_sync = true;
                } else {
                    self.counters.resyncs += 1;
                    self.start_batch(backup_id);
                }
            }
            Message::Resync { backup_id, reason } => {
                if self.linked(backup_id).is_some() {
                    tracing::info!(backup_id, ?reason, "peer asked for a new batch");
                    self.counters.resyncs += 1;
                    self.start_batch(backup_id);
                }
            }
            Message::Delta {
                backup_id,
                first_seq,
                ops,
            } => {
                let Some(p) = self.profiles.get_mut(&backup_id).filter(|p| p.linked) else {
                    return;
                };
                match p.rx {
                    Rx::Live => {}
                    Rx::Batch { .. } => {
                        return self.request_resync(backup_id, ResyncReason::Inconsistent)
                    }
                    Rx::Waiting | Rx::Resyncing => return,
                }
                let mut dup = 0;
                for (i, op) in ops.into_iter().enumerate() {
                    let seq = first_seq + i as u64;
                    if seq <= p.peer_seq {
                        dup += 1;
                        continue;
                    }
                    if seq != p.peer_seq + 1 {
                        self.counters.duplicates += dup;
                        return self.request_resync(backup_id, ResyncReason::Gap);
                    }
                    p.peer_seq = seq;
                    match op {
                        Op::Upsert { key, value } => {
                            p.peer.upsert(&key, &value);
                            ev.push((
                                backup_id,
                                SyncEvent::Upsert {
                                    key,
                                    value,
                                    sender_now,
                                },
                            ));
                        }
                        Op::Remove { key } => {
                            if p.peer.remove(&key) {
                                ev.push((backup_id, SyncEvent::Remove { key }));
                            }
                        }
                    }
                }
                self.counters.duplicates += dup;
            }
            Message::Hello { .. }
            | Message::Auth { .. }
            | Message::Keepalive
            | Message::Error { .. } => {}
        }
    }

    fn linked(&mut self, id: BackupId) -> Option<&mut Profile> {
        self.profiles.get_mut(&id).filter(|p| p.linked)
    }

    /// The next message to send, or None when nothing waits. Batches are cut into frames of
    /// about [`CHUNK`] octets as they go, so a large table is never encoded all at once.
    pub fn poll_message(&mut self) -> Option<Message> {
        match self.queue.front_mut()? {
            Out::Msg(_) => match self.queue.pop_front() {
                Some(Out::Msg(m)) => Some(m),
                _ => None,
            },
            Out::Batch {
                backup_id,
                batch,
                seq,
                snapshot,
                digest,
                begun,
                cursor,
            } => {
                if !*begun {
                    *begun = true;
                    return Some(Message::BatchBegin {
                        backup_id: *backup_id,
                        batch: *batch,
                        seq: *seq,
                        count: snapshot.len() as u32,
                    });
                }
                let lower = match cursor {
                    Some(k) => Bound::Excluded(k.clone()),
                    None => Bound::Unbounded,
                };
                let mut records = Vec::new();
                let mut size = 0;
                for (k, v) in snapshot.range((lower, Bound::Unbounded)) {
                    records.push((k.clone(), v.clone()));
                    size += packet::record_len(k, v);
                    if size >= CHUNK {
                        break;
                    }
                }
                if let Some((k, _)) = records.last() {
                    *cursor = Some(k.clone());
                    return Some(Message::BatchRecords {
                        backup_id: *backup_id,
                        batch: *batch,
                        records,
                    });
                }
                let end = Message::BatchEnd {
                    backup_id: *backup_id,
                    batch: *batch,
                    count: snapshot.len() as u32,
                    digest: digest.0,
                };
                self.queue.pop_front();
                Some(end)
            }
            Out::Op { .. } => {
                let mut ops = Vec::new();
                let mut first = None;
                let mut size = 0;
                while let Some(Out::Op { backup_id, seq, .. }) = self.queue.front() {
                    let next = match first {
                        None => true,
                        Some((id, s)) => {
                            *backup_id == id && *seq == s + ops.len() as u64 && size < CHUNK
                        }
                    };
                    if !next {
                        break;
                    }
                    let Some(Out::Op { backup_id, seq, op }) = self.queue.pop_front() else {
                        break;
                    };
                    self.queued_ops -= 1;
                    first.get_or_insert((backup_id, seq));
                    size += packet::op_len(&op);
                    ops.push(op);
                }
                let (backup_id, first_seq) = first?;
                Some(Message::Delta {
                    backup_id,
                    first_seq,
                    ops,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(id: &[BackupId]) -> Engine {
        let mut e = Engine::new();
        for i in id {
            e.handle(Input::Register(*i)).unwrap();
        }
        e.handle(Input::ChannelUp).unwrap();
        e
    }

    fn upsert(e: &mut Engine, id: BackupId, k: &str, v: &str) {
        e.handle(Input::Command(SyncCommand::Upsert {
            backup_id: id,
            key: k.into(),
            value: v.into(),
        }))
        .unwrap();
    }

    fn drain(e: &mut Engine) -> Vec<Message> {
        std::iter::from_fn(|| e.poll_message()).collect()
    }

    /// Delivers every queued message both ways until quiet; `tamper` may change or drop
    /// messages from a to b. Returns the events of b and of a.
    fn shuttle(
        a: &mut Engine,
        b: &mut Engine,
        mut tamper: impl FnMut(Message) -> Option<Message>,
    ) -> (Events, Events) {
        let (mut eb, mut ea) = (Vec::new(), Vec::new());
        loop {
            let (ma, mb) = (drain(a), drain(b));
            if ma.is_empty() && mb.is_empty() {
                return (eb, ea);
            }
            for m in ma.into_iter().filter_map(&mut tamper) {
                eb.extend(
                    b.handle(Input::Message {
                        msg: m,
                        sender_now: Time::from_millis(7),
                    })
                    .unwrap(),
                );
            }
            for m in mb {
                ea.extend(
                    a.handle(Input::Message {
                        msg: m,
                        sender_now: Time::from_millis(9),
                    })
                    .unwrap(),
                );
            }
        }
    }

    #[test]
    fn a_replaced_table_goes_to_the_peer_as_a_batch_that_removes_what_it_lacks() {
        let mut a = up(&[1]);
        let mut b = up(&[1]);
        shuttle(&mut a, &mut b, Some);
        for k in ["k1", "k2", "k3"] {
            upsert(&mut a, 1, k, "old");
        }
        shuttle(&mut a, &mut b, Some);
        assert_eq!(b.peer(1).unwrap().len(), 3);
        // Changes queued before the replacement are dropped: the batch carries the table.
        upsert(&mut a, 1, "k9", "lost");
        let records = vec![
            (b"k2".to_vec(), b"new".to_vec()),
            (b"k4".to_vec(), b"new".to_vec()),
        ];
        a.handle(Input::Command(SyncCommand::Replace {
            backup_id: 1,
            records: records.clone(),
        }))
        .unwrap();
        assert_eq!(a.backlog(), 0);
        let (eb, _) = shuttle(&mut a, &mut b, Some);
        assert_eq!(eb.first(), Some(&(1, SyncEvent::BatchStarted)));
        assert_eq!(eb.last(), Some(&(1, SyncEvent::BatchComplete)));
        for k in ["k1", "k3"] {
            assert!(
                eb.contains(&(1, SyncEvent::Remove { key: k.into() })),
                "{k}"
            );
        }
        let peer = b.peer(1).unwrap();
        assert_eq!(peer.len(), records.len());
        assert!(records.iter().all(|(k, v)| peer.holds(k, v)));
        assert_eq!(
            peer.digest(),
            Digest::of(records.iter().map(|(k, v)| (k, v)))
        );
        assert_eq!(a.counters.resyncs, 1);
        assert!(a.status(1).unwrap().peer_in_sync);
        assert_eq!(
            Digest::of(a.local(1).unwrap().iter()),
            Digest::of(records.iter().map(|(k, v)| (k, v)))
        );
        // Deltas after it apply on top.
        upsert(&mut a, 1, "k5", "v");
        shuttle(&mut a, &mut b, Some);
        assert!(b.peer(1).unwrap().holds(b"k5".as_slice(), b"v"));
        // Unlinked, only the table changes; a record too large is refused.
        let mut c = Engine::new();
        c.handle(Input::Register(2)).unwrap();
        c.handle(Input::Command(SyncCommand::Replace {
            backup_id: 2,
            records: records.clone(),
        }))
        .unwrap();
        assert_eq!(c.local(2).unwrap().len(), 2);
        assert!(c.idle());
        let big = vec![(vec![0; packet::MAX_KEY + 1], Vec::new())];
        assert_eq!(
            c.handle(Input::Command(SyncCommand::Replace {
                backup_id: 2,
                records: big,
            }))
            .unwrap_err(),
            SyncError::RecordTooLarge
        );
    }

    #[test]
    fn batch_carries_the_table_and_digests_agree() {
        let mut a = Engine::new();
        a.handle(Input::Register(1)).unwrap();
        for i in 0..5000 {
            upsert(&mut a, 1, &format!("k{i}"), &format!("v{i}"));
        }
        a.handle(Input::ChannelUp).unwrap();
        let mut b = up(&[1]);
        let (eb, ea) = shuttle(&mut a, &mut b, Some);
        assert_eq!(eb.first(), Some(&(1, SyncEvent::ChannelUp)));
        assert_eq!(ea.first(), Some(&(1, SyncEvent::ChannelUp)));
        assert!(eb.contains(&(1, SyncEvent::BatchStarted)));
        assert_eq!(eb.last(), Some(&(1, SyncEvent::BatchComplete)));
        let upserts = eb
            .iter()
            .filter(|(_, e)| {
                matches!(e, SyncEvent::Upsert { sender_now, .. }
                    if *sender_now == Time::from_millis(7))
            })
            .count();
        assert_eq!(upserts, 5000);
        let peer = b.peer(1).unwrap();
        assert_eq!(peer.len(), 5000);
        assert!(peer.holds(b"k42", b"v42"));
        assert!(!peer.holds(b"k42", b"v43"));
        assert_eq!(peer.digest(), Digest::of(a.local(1).unwrap().iter()));
        let st = a.status(1).unwrap();
        assert!(st.peer_in_sync && st.linked);
        assert_eq!(b.status(1).unwrap().batch, BatchState::Complete);
        assert_eq!(b.status(1).unwrap().last_batch_entries, 5000);
        // a's batch was cut into frames of bounded size.
        assert_eq!(b.counters, SyncCounters::default());
    }

    #[test]
    fn deltas_flow_in_order_after_the_batch() {
        let (mut a, mut b) = (up(&[1]), up(&[1]));
        shuttle(&mut a, &mut b, Some);
        upsert(&mut a, 1, "x", "1");
        upsert(&mut a, 1, "y", "2");
        upsert(&mut a, 1, "x", "3");
        a.handle(Input::Command(SyncCommand::Remove {
            backup_id: 1,
            key: b"y".to_vec(),
        }))
        .unwrap();
        assert_eq!(a.backlog(), 4);
        let msgs = drain(&mut a);
        assert_eq!(msgs.len(), 1, "consecutive deltas share a frame");
        assert_eq!(a.backlog(), 0);
        let mut ev = Vec::new();
        for m in msgs {
            ev.extend(
                b.handle(Input::Message {
                    msg: m,
                    sender_now: Time::from_millis(1),
                })
                .unwrap(),
            );
        }
        assert_eq!(ev.len(), 4);
        assert_eq!(ev[3], (1, SyncEvent::Remove { key: b"y".to_vec() }));
        assert_eq!(b.peer(1).unwrap().len(), 1);
        assert!(b.peer(1).unwrap().holds(b"x".as_slice(), b"3"));
    }

    #[test]
    fn repeated_deltas_are_ignored_by_sequence_number() {
        let (mut a, mut b) = (up(&[1]), up(&[1]));
        shuttle(&mut a, &mut b, Some);
        upsert(&mut a, 1, "x", "1");
        let d1 = drain(&mut a).pop().unwrap();
        upsert(&mut a, 1, "x", "2");
        let d2 = drain(&mut a).pop().unwrap();
        let deliver = |b: &mut Engine, m: &Message| {
            b.handle(Input::Message {
                msg: m.clone(),
                sender_now: Time::from_millis(1),
            })
            .unwrap()
        };
        assert_eq!(deliver(&mut b, &d1).len(), 1);
        assert!(deliver(&mut b, &d1).is_empty());
        assert_eq!(deliver(&mut b, &d2).len(), 1);
        assert!(deliver(&mut b, &d1).is_empty());
        assert!(deliver(&mut b, &d2).is_empty());
        assert_eq!(b.counters.duplicates, 3);
        assert!(b.peer(1).unwrap().holds(b"x".as_slice(), b"2"));
        // A frame overlapping what was applied applies only its new part.
        let overlap = Message::Delta {
            backup_id: 1,
            first_seq: 2,
            ops: vec![
                Op::Upsert {
                    key: b"x".to_vec(),
                    value: b"2".to_vec(),
                },
                Op::Upsert {
                    key: b"z".to_vec(),
                    value: b"9".to_vec(),
                },
            ],
        };
        assert_eq!(deliver(&mut b, &overlap).len(), 1);
        assert_eq!(b.peer(1).unwrap().len(), 2);
        assert_eq!(b.counters.resyncs, 0);
    }

    #[test]
    fn a_gap_asks_for_a_new_batch() {
        let (mut a, mut b) = (up(&[1]), up(&[1]));
        shuttle(&mut a, &mut b, Some);
        upsert(&mut a, 1, "x", "1");
        upsert(&mut a, 1, "y", "1");
        let lost = drain(&mut a);
        drop(lost);
        upsert(&mut a, 1, "z", "1");
        let (eb, _) = shuttle(&mut a, &mut b, Some);
        assert_eq!(b.counters.resyncs, 1);
        assert!(eb.contains(&(1, SyncEvent::BatchComplete)));
        let mut keys: Vec<_> = b.peer(1).unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, vec![b"x".to_vec(), b"y".to_vec(), b"z".to_vec()]);
    }

    #[test]
    fn digest_mismatch_is_counted_and_resynced() {
        let mut a = Engine::new();
        a.handle(Input::Register(3)).unwrap();
        for i in 0..100 {
            upsert(&mut a, 3, &format!("k{i}"), "v");
        }
        a.handle(Input::ChannelUp).unwrap();
        let mut b = up(&[3]);
        let mut damaged = false;
        let (eb, _) = shuttle(&mut a, &mut b, |m| match m {
            Message::BatchRecords {
                backup_id,
                batch,
                mut records,
            } if !damaged => {
                damaged = true;
                records[10].1 = b"corrupt".to_vec();
                Some(Message::BatchRecords {
                    backup_id,
                    batch,
                    records,
                })
            }
            m => Some(m),
        });
        assert!(damaged);
        assert_eq!(b.counters.digest_mismatches, 1);
        assert_eq!(b.counters.resyncs, 1);
        assert_eq!(a.counters.resyncs, 1);
        assert_eq!(
            eb.iter()
                .filter(|(_, e)| *e == SyncEvent::BatchComplete)
                .count(),
            1
        );
        assert_eq!(
            eb.iter()
                .filter(|(_, e)| *e == SyncEvent::BatchStarted)
                .count(),
            2
        );
        assert!(b.peer(3).unwrap().holds(b"k10".as_slice(), b"v"));
        assert!(a.status(3).unwrap().peer_in_sync);
    }

    #[test]
    fn drop_mid_batch_then_resync_reconciles_removed_entries() {
        let mut a = Engine::new();
        a.handle(Input::Register(1)).unwrap();
        for i in 0..3000 {
            upsert(&mut a, 1, &format!("k{i:05}"), "v");
        }
        let mut b = Engine::new();
        b.handle(Input::Register(1)).unwrap();
        // First connection: a complete batch, so b holds all 3000.
        a.handle(Input::ChannelUp).unwrap();
        b.handle(Input::ChannelUp).unwrap();
        shuttle(&mut a, &mut b, Some);
        assert_eq!(b.peer(1).unwrap().len(), 3000);
        // a loses 1000 entries while the channel is down, then a batch is cut short.
        let ev = a.handle(Input::ChannelDown).unwrap();
        assert_eq!(ev, vec![(1, SyncEvent::ChannelDown)]);
        b.handle(Input::ChannelDown).unwrap();
        for i in 0..1000 {
            a.handle(Input::Command(SyncCommand::Remove {
                backup_id: 1,
                key: format!("k{i:05}").into_bytes(),
            }))
            .unwrap();
        }
        a.handle(Input::ChannelUp).unwrap();
        b.handle(Input::ChannelUp).unwrap();
        let mut frames = 0;
        let (eb, _) = shuttle(&mut a, &mut b, |m| {
            if matches!(m, Message::BatchRecords { .. }) {
                frames += 1;
                (frames == 1).then_some(m)
            } else if matches!(m, Message::BatchEnd { .. }) {
                None
            } else {
                Some(m)
            }
        });
        assert!(!eb.contains(&(1, SyncEvent::BatchComplete)));
        assert_eq!(b.status(1).unwrap().batch, BatchState::InProgress);
        // Nothing is removed on a cut batch: b still has the old entries.
        assert_eq!(b.peer(1).unwrap().len(), 3000);
        a.handle(Input::ChannelDown).unwrap();
        b.handle(Input::ChannelDown).unwrap();
        assert_eq!(b.status(1).unwrap().batch, BatchState::Idle);
        a.handle(Input::ChannelUp).unwrap();
        b.handle(Input::ChannelUp).unwrap();
        let (eb, _) = shuttle(&mut a, &mut b, Some);
        let removed = eb
            .iter()
            .filter(|(_, e)| matches!(e, SyncEvent::Remove { .. }))
            .count();
        assert_eq!(removed, 1000);
        assert_eq!(eb.last(), Some(&(1, SyncEvent::BatchComplete)));
        assert_eq!(b.peer(1).unwrap().len(), 2000);
        assert!(!b.peer(1).unwrap().contains_key(b"k00000".as_slice()));
    }

    #[test]
    fn backup_id_mismatch_is_reported_and_nothing_synced() {
        let mut a = up(&[1, 2]);
        let mut b = up(&[2, 3]);
        upsert(&mut a, 1, "only-a", "v");
        let (eb, ea) = shuttle(&mut a, &mut b, Some);
        assert!(ea.contains(&(1, SyncEvent::BackupIdMismatch)));
        assert!(eb.contains(&(3, SyncEvent::BackupIdMismatch)));
        assert!(ea.contains(&(2, SyncEvent::BatchComplete)));
        assert!(a.status(1).unwrap().mismatch);
        assert!(!b.status(2).unwrap().mismatch);
        assert!(b.peer(3).unwrap().is_empty());
        // b registers 1: the mismatch clears and the batch runs.
        let ev = b.handle(Input::Register(1)).unwrap();
        assert_eq!(ev, vec![(1, SyncEvent::ChannelUp)]);
        let (eb, ea) = shuttle(&mut a, &mut b, Some);
        assert!(ea.contains(&(1, SyncEvent::ChannelUp)));
        assert!(eb.contains(&(1, SyncEvent::BatchComplete)));
        assert_eq!(b.peer(1).unwrap().len(), 1);
        assert!(!a.status(1).unwrap().mismatch);
        // a drops profile 2: b's owner hears of the mismatch.
        a.handle(Input::Unregister(2)).unwrap();
        let (eb, _) = shuttle(&mut a, &mut b, Some);
        assert_eq!(eb, vec![(2, SyncEvent::BackupIdMismatch)]);
    }

    #[test]
    fn local_refusals() {
        let mut e = Engine::new();
        assert_eq!(e.handle(Input::Register(0)), Err(SyncError::BadBackupId(0)));
        e.handle(Input::Register(1)).unwrap();
        assert_eq!(
            e.handle(Input::Register(1)),
            Err(SyncError::AlreadyRegistered(1))
        );
        assert_eq!(
            e.handle(Input::Command(SyncCommand::Remove {
                backup_id: 2,
                key: vec![]
            })),
            Err(SyncError::NotRegistered(2))
        );
        assert_eq!(
            e.handle(Input::Command(SyncCommand::Upsert {
                backup_id: 1,
                key: vec![0; packet::MAX_KEY + 1],
                value: vec![]
            })),
            Err(SyncError::RecordTooLarge)
        );
        // Changes while down update the table without queueing anything.
        upsert(&mut e, 1, "k", "v");
        assert!(e.idle());
        assert_eq!(e.status(1).unwrap().local_entries, 1);
    }
}
