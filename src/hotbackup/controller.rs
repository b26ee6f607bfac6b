//! The hot-backup controller of remote backup profiles, sans-IO: role changes, the peer's
//! records and the local group table in; router modes, peer entries, forwarding domains,
//! records for the peer, the preemption gate and notifications out.
//!
//! Master/backup: the master's routers act and its domain forwards; it sends every entry of
//! its bound interfaces (static ones aside) to the peer. The backup's routers are silent: the
//! peer's records are installed in them as peer entries with their remaining timers, in
//! place of any entry of its own (those are stale), and their forwarding entries wait in the
//! profile's parked domain. On becoming master the routers act again and take over as querier
//! at once, the domain is activated in one step, and the records sent to the peer are made to
//! match the table (every entry, including the adopted peer entries, and a removal for any
//! record the table no longer holds). Losing the master role or a bound link never withdraws
//! records: the peer needs them to take over.
//!
//! Active-active: every router acts; each device sends the entries it learned itself, and
//! installs a peer record only where it has no entry of its own (a local report for a peer
//! entry turns it into a local one; when a local entry goes while the peer's record lives on,
//! the peer entry comes back). When the role source says the peer is gone, the survivor adopts
//! the peer entries and sends them too, so that the peer finds them on its return; it stops
//! once the peer sends a record for the group again. Forwarding is split by the load-balance bucket of each (S,G):
//! bucket 0 belongs to the device with the lower RBS source address. A device forwards its
//! own bucket while its role source runs, and the peer's bucket too when the role source says
//! the peer is gone; losing the channel alone changes nothing.
//!
//! Whether the peer still serves the segment comes from the peer itself while the channel is
//! up (a status record each device keeps in its table), and from the role source otherwise: a
//! VRRP6 master never hears its backup, so without the channel it assumes the peer is gone and
//! forwards every group rather than risk none.
//!
//! The preemption gate of a role source is closed from the channel coming up until the peer's
//! batch is complete, and open while the channel is down (with a warning) or the peer has no
//! profile with the backup-id. The controller has no timers of its own.

use super::entry::{decode_key, decode_value, encode_key, encode_value, to_local};
use crate::bus::{Role, RoleSourceId, RoleState};
use crate::forwarding::Domain;
use crate::mld::balance::{own_bucket, LoadBalance};
use crate::mld::coordinator::Request;
use crate::mld::events::Binding;
use crate::mld::instance::{Group, Origin};
use crate::rbs::api::{BackupId, Records, SyncCommand, SyncEvent};
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;

/// Backup mode of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    MasterBackup,
    ActiveActive,
}

/// One remote backup profile as configured, with what it needs from its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileConfig {
    pub name: String,
    pub backup_id: BackupId,
    pub service: String,
    pub role_source: RoleSourceId,
    pub mode: Mode,
    pub lb: LoadBalance,
    /// Bound downstream interfaces.
    pub interfaces: BTreeSet<String>,
    /// The service's source and peer addresses (they decide who owns bucket 0).
    pub local_addr: Ipv6Addr,
    pub peer_addr: Ipv6Addr,
}

/// State of the batch transfer from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchState {
    #[default]
    Idle,
    InProgress,
    Complete,
}

/// Why a profile's role changed (`switchover-cause` in mldhb-rbs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    RoleSourceChange,
    PeerFailure,
    DownstreamLinkDown,
    Preempt,
    ConfigurationChange,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::RoleSourceChange => "role-source-change",
            Cause::PeerFailure => "peer-failure",
            Cause::DownstreamLinkDown => "downstream-link-down",
            Cause::Preempt => "preempt",
            Cause::ConfigurationChange => "configuration-change",
        }
    }
}

pub fn role_str(r: Role) -> &'static str {
    match r {
        Role::Initialize => "initialize",
        Role::Master => "master",
        Role::Backup => "backup",
    }
}

/// Inputs to the controller.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A role source published a new state.
    Role {
        source: RoleSourceId,
        state: RoleState,
    },
    /// The sync engine of a service reports on one backup-id.
    Sync {
        service: String,
        backup_id: BackupId,
        event: SyncEvent,
    },
    /// A group entry of a bound interface changed in the MLD router (None: gone).
    Group {
        interface: String,
        group: Ipv6Addr,
        state: Option<Group>,
    },
    /// The MLD router of a bound interface started or stopped.
    Running { interface: String, up: bool },
}

/// What the controller reports to the operator (the model's notifications).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A profile's role changed; `group_count` is the number of group entries of its bound
    /// interfaces at that moment.
    Switchover {
        profile: String,
        old_role: Role,
        new_role: Role,
        cause: Cause,
        group_count: usize,
    },
    /// The peer's batch is complete; `entries` is the number of the peer's records held.
    BatchSyncComplete { profile: String, entries: usize },
}

/// What the controller asks of the MLD runtime, the sync engine and the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Sync {
        service: String,
        cmd: SyncCommand,
    },
    /// A request to the MLD node (bind, silence, peer entries, domains).
    Node(Request),
    Gate {
        source: RoleSourceId,
        open: bool,
    },
    Notify(Event),
}

type Key = (String, Ipv6Addr);

/// One profile's runtime state.
#[derive(Debug, Clone)]
pub struct Profile {
    pub cfg: ProfileConfig,
    /// Domains of bucket 0 and bucket 1 (the same one unless the load is split).
    domains: [Domain; 2],
    domain_active: [bool; 2],
    pub role: RoleState,
    pub channel_up: bool,
    pub batch: BatchState,
    pub mismatch: bool,
    pub switchovers: u32,
    pub last_switchover: Option<Time>,
    /// Records from the peer that could not be decoded or name an interface not bound here.
    pub bad_records: u64,
    running: BTreeSet<String>,
    /// The router entries of the bound interfaces, as last reported.
    table: BTreeMap<Key, Group>,
    /// The records this device has sent (and not removed), with the value sent: what the
    /// sync engine's table should hold, should it have to be rebuilt.
    exported: BTreeMap<Key, Vec<u8>>,
    /// Active-active: peer entries this device sends on since the peer was gone.
    adopted: BTreeSet<Key>,
    /// The peer's records, timers on this clock.
    peer: BTreeMap<Key, Group>,
    /// What the peer last said over the channel: whether it serves the segment.
    peer_status: Option<bool>,
    /// What this device last told the peer.
    status_sent: Option<bool>,
    /// The peer liveness the forwarding currently follows.
    alive_applied: bool,
}

/// The key of the status record each device keeps in its table: one byte, 1 when its role
/// source runs and every bound interface is up. A VRRP6 master never hears its backup, so the
/// peer's own word over the channel is what tells it the peer still serves the segment.
pub const STATUS_KEY: &[u8] = b"\0status";

/// What the operational state shows of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileState {
    pub name: String,
    pub role: Role,
    pub batch: BatchState,
    pub mismatch: bool,
    pub local_entries: usize,
    pub peer_entries: usize,
    pub switchovers: u32,
    pub last_switchover: Option<Time>,
}

impl Profile {
    fn new(cfg: ProfileConfig, domains: [Domain; 2]) -> Profile {
        Profile {
            cfg,
            domains,
            domain_active: [false; 2],
            role: RoleState::default(),
            channel_up: false,
            batch: BatchState::Idle,
            mismatch: false,
            switchovers: 0,
            last_switchover: None,
            bad_records: 0,
            running: BTreeSet::new(),
            table: BTreeMap::new(),
            exported: BTreeMap::new(),
            adopted: BTreeSet::new(),
            peer: BTreeMap::new(),
            peer_status: None,
            status_sent: None,
            alive_applied: true,
        }
    }

    /// Whether this device serves the segment: its role source runs and its bound
    /// interfaces are up.
    fn serving(&self) -> bool {
        self.role.role != Role::Initialize
            && self.cfg.interfaces.iter().all(|i| self.running.contains(i))
    }

    /// Whether the peer serves the segment: what it says over the channel while the channel
    /// is up and it has said something, otherwise whether the role source hears it.
    pub fn peer_alive(&self) -> bool {
        match (self.channel_up, self.peer_status) {
            (true, Some(s)) => s,
            _ => self.role.peer_present,
        }
    }

    /// After every input: tells the peer this device's status when it changed, and follows
    /// the peer's liveness (in active-active the survivor adopts the peer's entries and
    /// forwards its share).
    fn settle(&mut self, out: &mut Vec<Action>) {
        let serving = self.serving();
        if self.status_sent != Some(serving) {
            self.status_sent = Some(serving);
            out.push(Action::Sync {
                service: self.cfg.service.clone(),
                cmd: SyncCommand::Upsert {
                    backup_id: self.cfg.backup_id,
                    key: STATUS_KEY.to_vec(),
                    value: vec![u8::from(serving)],
                },
            });
        }
        let alive = self.peer_alive();
        if alive != self.alive_applied {
            self.alive_applied = alive;
            if self.cfg.mode == Mode::ActiveActive && !alive {
                let peer_entries: Vec<Key> = self
                    .table
                    .iter()
                    .filter(|(_, g)| g.origin == Origin::Peer)
                    .map(|(k, _)| k.clone())
                    .collect();
                self.adopted.extend(peer_entries);
                self.reconcile_exports(out);
            }
            self.apply_domains(out);
        }
    }

    fn split(&self) -> bool {
        self.cfg.mode == Mode::ActiveActive && self.cfg.lb != LoadBalance::MasterOnly
    }

    fn silent(&self) -> bool {
        self.cfg.mode == Mode::MasterBackup && self.role.role != Role::Master
    }

    fn binding(&self) -> Binding {
        let (lb, domains) = if self.split() {
            (self.cfg.lb, self.domains)
        } else {
            (LoadBalance::MasterOnly, [self.domains[0]; 2])
        };
        Binding {
            silent: self.silent(),
            lb,
            domains,
        }
    }

    /// Which bucket domains forward now.
    fn wanted_active(&self) -> [bool; 2] {
        let role = self.role.role;
        if !self.split() {
            return [role == Role::Master; 2];
        }
        let on = role != Role::Initialize;
        let mut a = [on && !self.peer_alive(); 2];
        a[own_bucket(&self.cfg.local_addr, &self.cfg.peer_addr)] = on;
        a
    }

    /// Whether peer records go into the routers now, and whether they replace local entries.
    fn import(&self) -> Option<bool> {
        match self.cfg.mode {
            Mode::MasterBackup if self.role.role == Role::Master => None,
            Mode::MasterBackup => Some(true),
            Mode::ActiveActive => Some(false),
        }
    }

    fn exportable(&self, key: &Key, g: &Group) -> bool {
        match self.cfg.mode {
            Mode::MasterBackup => self.role.role == Role::Master && g.origin != Origin::Static,
            Mode::ActiveActive => {
                g.origin == Origin::Local
                    || (g.origin == Origin::Peer && self.adopted.contains(key))
            }
        }
    }

    pub fn gate_open(&self) -> bool {
        !self.channel_up || self.mismatch || self.batch == BatchState::Complete
    }

    pub fn state(&self, now: Time) -> ProfileState {
        ProfileState {
            name: self.cfg.name.clone(),
            role: self.role.role,
            batch: self.batch,
            mismatch: self.mismatch,
            local_entries: self
                .table
                .values()
                .filter(|g| g.origin == Origin::Local)
                .count(),
            peer_entries: self.peer.values().filter(|g| g.live(now)).count(),
            switchovers: self.switchovers,
            last_switchover: self.last_switchover,
        }
    }

    fn upsert(&self, key: &Key, value: Vec<u8>) -> Action {
        Action::Sync {
            service: self.cfg.service.clone(),
            cmd: SyncCommand::Upsert {
                backup_id: self.cfg.backup_id,
                key: encode_key(&key.0, &key.1),
                value,
            },
        }
    }

    /// Every record this device wants in its sync engine's table: its status and the
    /// entries it sent, with the values sent.
    fn records(&self) -> Records {
        let status = self
            .status_sent
            .map(|s| (STATUS_KEY.to_vec(), vec![u8::from(s)]));
        status
            .into_iter()
            .chain(
                self.exported
                    .iter()
                    .map(|(k, v)| (encode_key(&k.0, &k.1), v.clone())),
            )
            .collect()
    }

    fn remove(&self, key: &Key) -> Action {
        Action::Sync {
            service: self.cfg.service.clone(),
            cmd: SyncCommand::Remove {
                backup_id: self.cfg.backup_id,
                key: encode_key(&key.0, &key.1),
            },
        }
    }

    fn install(&self, key: &Key, replace_local: bool) -> Option<Action> {
        let g = self.peer.get(key)?;
        self.running.contains(&key.0).then(|| {
            Action::Node(Request::InstallPeer {
                interface: key.0.clone(),
                group: key.1,
                entry: g.clone(),
                replace_local,
            })
        })
    }

    /// Everything that follows from the current role: router modes, domains, and the peer
    /// entries or records that the role change brings.
    fn apply_role(&mut self, old: RoleState, out: &mut Vec<Action>) {
        let was_silent = self.cfg.mode == Mode::MasterBackup && old.role != Role::Master;
        let silent = self.silent();
        if silent != was_silent {
            for i in &self.cfg.interfaces {
                out.push(Action::Node(Request::Silent {
                    interface: i.clone(),
                    silent,
                }));
            }
        }
        self.apply_domains(out);
        let now_master = self.role.role == Role::Master;
        if self.cfg.mode == Mode::MasterBackup && now_master != (old.role == Role::Master) {
            if now_master {
                self.reconcile_exports(out);
            } else {
                let keys: Vec<Key> = self.peer.keys().cloned().collect();
                out.extend(keys.iter().filter_map(|k| self.install(k, true)));
            }
        }
    }

    fn apply_domains(&mut self, out: &mut Vec<Action>) {
        let want = self.wanted_active();
        let n = if self.split() { 2 } else { 1 };
        for (b, want) in want.into_iter().enumerate().take(n) {
            if want != self.domain_active[b] {
                self.domain_active[b] = want;
                out.push(Action::Node(Request::Domain {
                    domain: self.domains[b],
                    active: want,
                }));
            }
        }
    }

    /// Makes the records sent to the peer match the table.
    fn reconcile_exports(&mut self, out: &mut Vec<Action>) {
        let mut sent = BTreeMap::new();
        for (k, g) in &self.table {
            if self.exportable(k, g) {
                let value = encode_value(g);
                out.push(self.upsert(k, value.clone()));
                sent.insert(k.clone(), value);
            }
        }
        for k in self.exported.keys().filter(|k| !sent.contains_key(*k)) {
            out.push(self.remove(k));
        }
        self.exported = sent;
    }

    fn on_role(&mut self, now: Time, state: RoleState, out: &mut Vec<Action>) {
        let old = self.role;
        if old == state {
            return;
        }
        self.role = state;
        if old.role != state.role {
            let cause = if state.role == Role::Master {
                if !state.peer_present {
                    Cause::PeerFailure
                } else if old.role == Role::Backup && self.batch == BatchState::Complete {
                    Cause::Preempt
                } else {
                    Cause::RoleSourceChange
                }
            } else if old.role == Role::Master {
                if self
                    .cfg
                    .interfaces
                    .iter()
                    .any(|i| !self.running.contains(i))
                {
                    Cause::DownstreamLinkDown
                } else if state.peer_present && state.role == Role::Backup {
                    Cause::Preempt
                } else {
                    Cause::RoleSourceChange
                }
            } else {
                Cause::RoleSourceChange
            };
            self.switchovers += 1;
            self.last_switchover = Some(now);
            tracing::info!(profile = %self.cfg.name, old = role_str(old.role),
                new = role_str(state.role), cause = cause.as_str(), groups = self.table.len(),
                "remote backup profile switchover");
            out.push(Action::Notify(Event::Switchover {
                profile: self.cfg.name.clone(),
                old_role: old.role,
                new_role: state.role,
                cause,
                group_count: self.table.len(),
            }));
        }
        self.apply_role(old, out);
    }

    fn on_sync(&mut self, now: Time, event: SyncEvent, out: &mut Vec<Action>) {
        match event {
            SyncEvent::ChannelUp => {
                self.channel_up = true;
                self.mismatch = false;
                self.batch = BatchState::Idle;
            }
            SyncEvent::ChannelDown => {
                self.channel_up = false;
                self.batch = BatchState::Idle;
                self.peer_status = None;
            }
            SyncEvent::BackupIdMismatch => {
                self.mismatch = true;
                tracing::warn!(profile = %self.cfg.name, backup_id = self.cfg.backup_id,
                    "the peer has no profile with this backup-id; nothing is backed up");
            }
            SyncEvent::BatchStarted => self.batch = BatchState::InProgress,
            SyncEvent::BatchComplete => {
                self.batch = BatchState::Complete;
                out.push(Action::Notify(Event::BatchSyncComplete {
                    profile: self.cfg.name.clone(),
                    entries: self.peer.len(),
                }));
            }
            SyncEvent::Upsert { key, value, .. } if key == STATUS_KEY => {
                self.peer_status = value.first().map(|b| *b != 0);
            }
            SyncEvent::Remove { key } if key == STATUS_KEY => self.peer_status = None,
            SyncEvent::Upsert {
                key,
                value,
                sender_now,
            } => {
                let rec = decode_key(&key)
                    .and_then(|k| Ok((k, decode_value(&value)?)))
                    .map_err(|e| e.to_string())
                    .and_then(|(k, g)| {
                        if self.cfg.interfaces.contains(&k.0) {
                            Ok((k, g))
                        } else {
                            Err(format!("interface {} is not bound here", k.0))
                        }
                    });
                let (k, g) = match rec {
                    Ok(x) => x,
                    Err(e) => {
                        self.bad_records += 1;
                        tracing::warn!(profile = %self.cfg.name, error = %e, "peer record ignored");
                        return;
                    }
                };
                if self.adopted.remove(&k) && self.exported.remove(&k).is_some() {
                    // The peer holds the group again: it sends it itself.
                    out.push(self.remove(&k));
                }
                self.peer.insert(k.clone(), to_local(g, sender_now, now));
                if let Some(replace) = self.import() {
                    out.extend(self.install(&k, replace));
                }
            }
            SyncEvent::Remove { key } => {
                let Ok(k) = decode_key(&key) else {
                    self.bad_records += 1;
                    return;
                };
                // An adopted entry is this device's own now: the peer losing its copy (after
                // a restart, say) does not remove it.
                if self.peer.remove(&k).is_some() && !self.adopted.contains(&k) {
                    if let Some(replace) = self.import() {
                        if self.running.contains(&k.0) {
                            out.push(Action::Node(Request::RemovePeer {
                                interface: k.0,
                                group: k.1,
                                replace_local: replace,
                            }));
                        }
                    }
                }
            }
        }
    }

    fn on_group(&mut self, now: Time, key: Key, state: Option<Group>, out: &mut Vec<Action>) {
        if state.is_none() {
            self.adopted.remove(&key);
        }
        let export = state.as_ref().is_some_and(|g| self.exportable(&key, g));
        match &state {
            Some(g) if export => {
                let value = encode_value(g);
                out.push(self.upsert(&key, value.clone()));
                self.exported.insert(key.clone(), value);
            }
            _ => {
                if self.exported.remove(&key).is_some() {
                    out.push(self.remove(&key));
                }
            }
        }
        match state {
            Some(g) => {
                self.table.insert(key, g);
            }
            None => {
                self.table.remove(&key);
                if let Some(replace) = self.import() {
                    if self.peer.get(&key).is_some_and(|g| g.live(now)) {
                        out.extend(self.install(&key, replace));
                    }
                }
            }
        }
    }

    fn on_running(&mut self, interface: String, up: bool, out: &mut Vec<Action>) {
        if up {
            self.running.insert(interface.clone());
            if let Some(replace) = self.import() {
                let keys: Vec<Key> = self
                    .peer
                    .keys()
                    .filter(|k| k.0 == interface)
                    .cloned()
                    .collect();
                out.extend(keys.iter().filter_map(|k| self.install(k, replace)));
            }
        } else {
            self.running.remove(&interface);
            // The router's entries are gone with it; the records sent stay for the peer.
            self.table.retain(|k, _| k.0 != interface);
        }
    }
}

/// An MLD interface that tracks a VRRP6 group without a profile: its router acts only while
/// that group is master here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub interface: String,
    pub source: RoleSourceId,
}

fn track_binding(role: Role) -> Binding {
    Binding {
        silent: role != Role::Master,
        lb: LoadBalance::MasterOnly,
        domains: [Domain::ALWAYS; 2],
    }
}

/// Every remote backup profile of the device.
#[derive(Debug, Clone, Default)]
pub struct Controller {
    profiles: BTreeMap<String, Profile>,
    /// Tracking interfaces and the last role of their source.
    tracks: BTreeMap<String, (RoleSourceId, Role)>,
    next_domain: u32,
    gates: BTreeMap<RoleSourceId, bool>,
}

impl Controller {
    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// The controller has no timers: routers age the entries, role sources time preemption.
    pub fn next_deadline(&self) -> Option<Time> {
        None
    }

    /// Applies a new set of profiles. A profile that changed starts over from its bindings,
    /// keeping its role, channel state and the peer's records where the role source and the
    /// channel stayed the same.
    pub fn configure(&mut self, profiles: Vec<ProfileConfig>, tracks: Vec<Track>) -> Vec<Action> {
        let mut out = Vec::new();
        let bound: BTreeSet<&String> = profiles.iter().flat_map(|p| &p.interfaces).collect();
        let mut new_tracks = BTreeMap::new();
        for t in tracks {
            if bound.contains(&t.interface) {
                continue;
            }
            let role = match self.tracks.get(&t.interface) {
                Some((s, r)) if *s == t.source => *r,
                _ => Role::Initialize,
            };
            new_tracks.insert(t.interface, (t.source, role));
        }
        for i in self.tracks.keys() {
            if !new_tracks.contains_key(i) && !bound.contains(i) {
                out.push(Action::Node(Request::Bind {
                    interface: i.clone(),
                    binding: None,
                }));
            }
        }
        let track_binds: Vec<Action> = new_tracks
            .iter()
            .map(|(i, (_, role))| {
                Action::Node(Request::Bind {
                    interface: i.clone(),
                    binding: Some(track_binding(*role)),
                })
            })
            .collect();
        self.tracks = new_tracks;
        let new: BTreeMap<String, ProfileConfig> =
            profiles.into_iter().map(|p| (p.name.clone(), p)).collect();
        let gone: Vec<String> = self
            .profiles
            .iter()
            .filter(|(n, p)| new.get(*n) != Some(&p.cfg))
            .map(|(n, _)| n.clone())
            .collect();
        let mut old = BTreeMap::new();
        for n in gone {
            if let Some(p) = self.profiles.remove(&n) {
                for i in &p.cfg.interfaces {
                    let kept = new.get(&n).is_some_and(|c| c.interfaces.contains(i));
                    if !kept {
                        out.push(Action::Node(Request::Bind {
                            interface: i.clone(),
                            binding: None,
                        }));
                    }
                }
                if !new.contains_key(&n) {
                    // Unused from now on; left active like the domain of unbound interfaces.
                    for d in p.domains {
                        out.push(Action::Node(Request::Domain {
                            domain: d,
                            active: true,
                        }));
                    }
                }
                old.insert(n, p);
            }
        }
        for (name, cfg) in new {
            if self.profiles.contains_key(&name) {
                continue;
            }
            let prev = old.remove(&name);
            let domains = match &prev {
                Some(p) => p.domains,
                None => {
                    self.next_domain += 2;
                    [Domain(self.next_domain - 1), Domain(self.next_domain)]
                }
            };
            let mut p = Profile::new(cfg, domains);
            match &prev {
                Some(prev) => p.domain_active = prev.domain_active,
                // Domains start parked: only the role makes them forward.
                None => {
                    for d in p.domains {
                        out.push(Action::Node(Request::Domain {
                            domain: d,
                            active: false,
                        }));
                    }
                }
            }
            if let Some(prev) = prev {
                if prev.cfg.role_source == p.cfg.role_source {
                    p.role = prev.role;
                    p.switchovers = prev.switchovers;
                    p.last_switchover = prev.last_switchover;
                }
                if (&prev.cfg.service, prev.cfg.backup_id) == (&p.cfg.service, p.cfg.backup_id) {
                    p.channel_up = prev.channel_up;
                    p.batch = prev.batch;
                    p.mismatch = prev.mismatch;
                    p.exported = prev.exported;
                    p.adopted = prev.adopted;
                    p.peer = prev.peer;
                    p.peer.retain(|k, _| p.cfg.interfaces.contains(&k.0));
                }
            }
            p.apply_domains(&mut out);
            for i in &p.cfg.interfaces {
                out.push(Action::Node(Request::Bind {
                    interface: i.clone(),
                    binding: Some(p.binding()),
                }));
            }
            self.profiles.insert(name, p);
        }
        // After the profiles' unbinding, so that an interface moving to a track stays bound.
        out.extend(track_binds);
        for p in self.profiles.values_mut() {
            p.settle(&mut out);
        }
        self.gates(&mut out);
        out
    }

    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Role { source, state } => {
                for (i, (s, role)) in self.tracks.iter_mut() {
                    if *s == source && *role != state.role {
                        let silent = state.role != Role::Master;
                        if silent != (*role != Role::Master) {
                            out.push(Action::Node(Request::Silent {
                                interface: i.clone(),
                                silent,
                            }));
                        }
                        *role = state.role;
                    }
                }
                for p in self.profiles.values_mut() {
                    if p.cfg.role_source == source {
                        p.on_role(now, state, &mut out);
                    }
                }
            }
            Input::Sync {
                service,
                backup_id,
                event,
            } => {
                if let Some(p) = self
                    .profiles
                    .values_mut()
                    .find(|p| p.cfg.service == service && p.cfg.backup_id == backup_id)
                {
                    p.on_sync(now, event, &mut out);
                }
            }
            Input::Group {
                interface,
                group,
                state,
            } => {
                if let Some(p) = self.bound_mut(&interface) {
                    p.on_group(now, (interface, group), state, &mut out);
                }
            }
            Input::Running { interface, up } => {
                if let Some(p) = self.bound_mut(&interface) {
                    p.on_running(interface, up, &mut out);
                }
            }
        }
        for p in self.profiles.values_mut() {
            p.settle(&mut out);
        }
        self.gates(&mut out);
        out
    }

    /// Every record the profiles on `service` want in its sync engine's tables, per
    /// backup-id: what rebuilds those tables when changes were lost on the way.
    pub fn records(&self, service: &str) -> Vec<(BackupId, Records)> {
        self.profiles
            .values()
            .filter(|p| p.cfg.service == service)
            .map(|p| (p.cfg.backup_id, p.records()))
            .collect()
    }

    fn bound_mut(&mut self, interface: &str) -> Option<&mut Profile> {
        self.profiles
            .values_mut()
            .find(|p| p.cfg.interfaces.contains(interface))
    }

    /// Publishes each role source's gate when it changes: open when every profile on the
    /// source allows preemption.
    fn gates(&mut self, out: &mut Vec<Action>) {
        let mut want: BTreeMap<RoleSourceId, bool> = BTreeMap::new();
        for p in self.profiles.values() {
            *want.entry(p.cfg.role_source.clone()).or_insert(true) &= p.gate_open();
        }
        let dropped: Vec<RoleSourceId> = self
            .gates
            .keys()
            .filter(|s| !want.contains_key(*s))
            .cloned()
            .collect();
        for s in dropped {
            self.gates.remove(&s);
            out.push(Action::Gate {
                source: s,
                open: true,
            });
        }
        for (s, open) in want {
            if self.gates.get(&s) == Some(&open) {
                continue;
            }
            if open {
                let down: Vec<&str> = self
                    .profiles
                    .values()
                    .filter(|p| p.cfg.role_source == s && !p.channel_up)
                    .map(|p| p.cfg.name.as_str())
                    .collect();
                if !down.is_empty() {
                    tracing::warn!(source = %s, profiles = ?down,
                        "RBS channel down: preemption waits for the delay alone, not for the batch");
                }
            }
            self.gates.insert(s.clone(), open);
            out.push(Action::Gate { source: s, open });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn vrrp(i: &str) -> RoleSourceId {
        RoleSourceId::Vrrp6 {
            interface: i.into(),
            vrid: 1,
        }
    }

    fn role(c: &mut Controller, i: &str, role: Role) -> Vec<Action> {
        c.handle(
            Time::ZERO,
            Input::Role {
                source: vrrp(i),
                state: RoleState {
                    role,
                    peer_present: true,
                },
            },
        )
    }

    #[test]
    fn tracking_interface_acts_only_while_its_group_is_master() {
        let mut c = Controller::default();
        let acts = c.configure(
            Vec::new(),
            vec![Track {
                interface: "eth3".into(),
                source: vrrp("eth3"),
            }],
        );
        assert_eq!(
            acts,
            [Action::Node(Request::Bind {
                interface: "eth3".into(),
                binding: Some(track_binding(Role::Initialize)),
            })]
        );
        assert!(role(&mut c, "eth3", Role::Backup).is_empty());
        let silent = |s| {
            Action::Node(Request::Silent {
                interface: "eth3".into(),
                silent: s,
            })
        };
        assert_eq!(role(&mut c, "eth3", Role::Master), [silent(false)]);
        assert!(role(&mut c, "eth1", Role::Backup).is_empty());
        assert_eq!(role(&mut c, "eth3", Role::Initialize), [silent(true)]);
        // Unconfigured: the router acts on its own again.
        assert_eq!(
            c.configure(Vec::new(), Vec::new()),
            [Action::Node(Request::Bind {
                interface: "eth3".into(),
                binding: None,
            })]
        );
    }

    #[test]
    fn records_are_the_table_the_sent_changes_build() {
        let mut c = Controller::default();
        let p = ProfileConfig {
            name: "rbp1".into(),
            backup_id: 10,
            service: "rbs1".into(),
            role_source: vrrp("eth1"),
            mode: Mode::MasterBackup,
            lb: LoadBalance::MasterOnly,
            interfaces: ["eth1".to_string()].into(),
            local_addr: "2001:db8:10::2".parse().unwrap(),
            peer_addr: "2001:db8:10::1".parse().unwrap(),
        };
        let entry = |since| Group {
            mode: crate::mld::instance::FilterMode::Exclude,
            filter_timer: Some(since + Duration::from_secs(260)),
            sources: BTreeMap::new(),
            v1_host_until: None,
            origin: Origin::Local,
            last_reporter: None,
            since,
        };
        let group = |g: &str, state| Input::Group {
            interface: "eth1".into(),
            group: g.parse().unwrap(),
            state,
        };
        let mut acts = c.configure(vec![p], Vec::new());
        acts.extend(c.handle(
            Time::ZERO,
            Input::Running {
                interface: "eth1".into(),
                up: true,
            },
        ));
        acts.extend(role(&mut c, "eth1", Role::Master));
        for (i, g) in ["ff0e::1", "ff0e::2", "ff0e::3"].into_iter().enumerate() {
            acts.extend(c.handle(
                Time::ZERO,
                group(g, Some(entry(Time::from_millis(i as u64)))),
            ));
        }
        acts.extend(c.handle(
            Time::ZERO,
            group("ff0e::2", Some(entry(Time::from_millis(50)))),
        ));
        acts.extend(c.handle(Time::ZERO, group("ff0e::3", None)));
        // The router stops: its entries leave the table, the records sent stay.
        acts.extend(c.handle(
            Time::ZERO,
            Input::Running {
                interface: "eth1".into(),
                up: false,
            },
        ));
        let mut sent = BTreeMap::new();
        for a in acts {
            match a {
                Action::Sync {
                    cmd: SyncCommand::Upsert { key, value, .. },
                    ..
                } => {
                    sent.insert(key, value);
                }
                Action::Sync {
                    cmd: SyncCommand::Remove { key, .. },
                    ..
                } => {
                    sent.remove(&key);
                }
                _ => {}
            }
        }
        assert_eq!(sent.len(), 3, "status, ff0e::1 and ff0e::2");
        assert_eq!(sent[STATUS_KEY], [0]);
        assert_eq!(
            sent[&encode_key("eth1", &"ff0e::2".parse().unwrap())],
            encode_value(&entry(Time::from_millis(50)))
        );
        let records = c.records("rbs1");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0, 10);
        let rebuilt: BTreeMap<Vec<u8>, Vec<u8>> = records[0].1.iter().cloned().collect();
        assert_eq!(rebuilt, sent);
        assert!(c.records("rbs2").is_empty());
    }

    #[test]
    fn gate_closes_from_channel_up_to_batch_complete() {
        let mut c = Controller::default();
        let p = ProfileConfig {
            name: "rbp1".into(),
            backup_id: 10,
            service: "rbs1".into(),
            role_source: vrrp("eth1"),
            mode: Mode::MasterBackup,
            lb: LoadBalance::MasterOnly,
            interfaces: ["eth1".to_string()].into(),
            local_addr: "2001:db8:10::2".parse().unwrap(),
            peer_addr: "2001:db8:10::1".parse().unwrap(),
        };
        let gate = |acts: &[Action]| -> Vec<bool> {
            acts.iter()
                .filter_map(|a| match a {
                    Action::Gate { open, .. } => Some(*open),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(gate(&c.configure(vec![p], Vec::new())), [true]);
        let mut sync = |e| {
            c.handle(
                Time::ZERO,
                Input::Sync {
                    service: "rbs1".into(),
                    backup_id: 10,
                    event: e,
                },
            )
        };
        assert_eq!(gate(&sync(SyncEvent::ChannelUp)), [false]);
        assert_eq!(gate(&sync(SyncEvent::BatchStarted)), Vec::<bool>::new());
        assert_eq!(gate(&sync(SyncEvent::BatchComplete)), [true]);
        assert_eq!(gate(&sync(SyncEvent::ChannelDown)), Vec::<bool>::new());
        assert_eq!(gate(&sync(SyncEvent::ChannelUp)), [false]);
        // A peer without the backup-id never completes a batch: the delay alone applies.
        assert_eq!(gate(&sync(SyncEvent::BackupIdMismatch)), [true]);
        // Records that do not decode, or name an interface not bound here, are counted.
        sync(SyncEvent::Upsert {
            key: vec![1, 2, 3],
            value: vec![],
            sender_now: Time::ZERO,
        });
        sync(SyncEvent::Upsert {
            key: encode_key("eth9", &"ff0e::1".parse().unwrap()),
            value: encode_value(&Group {
                mode: crate::mld::instance::FilterMode::Exclude,
                filter_timer: Some(Time::from_millis(10)),
                sources: BTreeMap::new(),
                v1_host_until: None,
                origin: Origin::Local,
                last_reporter: None,
                since: Time::ZERO,
            }),
            sender_now: Time::ZERO,
        });
        assert_eq!(c.profile("rbp1").unwrap().bad_records, 2);
    }
}
