//! The RBS runtime on tokio: one task per service that owns its TCP connection and drives a
//! [`ServiceNode`], and the cheap-clone [`RbsHandle`] through which owners register
//! backup-ids and configuration reaches the tasks.
//!
//! Who connects: the device whose source address is lower (compared as 128-bit numbers)
//! connects from `[source]:ephemeral` to `[peer]:port`; the other listens on
//! `[source]:port` and accepts only connections from the peer's address (others are closed
//! and counted as authentication failures). Both compute the same, so exactly one
//! connection exists. A failed attempt is retried after a backoff that doubles from 100 ms
//! to 5 s and resets once the channel is up. A new connection from the peer replaces the
//! current one (the peer restarted). IPv4-mapped addresses (`::ffff:127.0.0.2`) are used
//! as IPv4, so two agents on one host can pair over distinct loopback addresses.
//!
//! Backpressure: owners send commands on a bounded channel; the task stops taking them while
//! more than [`BACKLOG_MAX`] changes wait to be sent, and the engine stops framing while
//! [`HIGH_WATER`] octets wait for the socket. Events to owners are unbounded so that an owner
//! sending commands can never deadlock with the task delivering its events.
//!
//! Real-time path: a change sent while nothing of its service waits (no command queued,
//! nothing framed and unwritten) is applied and written to the socket by the sender itself,
//! without a turn of the service task: one thread hand-off less per record, which is what
//! keeps a record's latency in microseconds when every core is busy. Otherwise it queues,
//! behind what waits. Octets go to the socket only under the node's lock, without waiting
//! (a full socket leaves them to the task), so they leave in the node's order whoever writes.

use super::api::{BackupId, RbsEvent, SyncCommand, SyncEvent};
use super::channel::{ChannelConfig, DownReason, Role};
use super::node::{Input, Output, ServiceNode};
use super::packet;
use super::sync::{self, ProfileStatus, SyncError};
use crate::bus::Bus;
use crate::time::Time;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

/// Octets pending for the socket before the engine stops framing more.
pub const HIGH_WATER: usize = 256 * 1024;
/// Local changes waiting to be sent before owners are held back.
pub const BACKLOG_MAX: usize = 65_536;
/// Commands an owner can queue before `send` waits.
pub const COMMAND_QUEUE: usize = 4096;
/// Queued commands the task applies in one turn before it frames and writes them.
const COMMANDS_PER_TURN: usize = 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const READ_BUF: usize = 64 * 1024;

/// The runtime's clock (timers, and the sender clock frames carry).
pub type Clock = Arc<dyn Fn() -> Time + Send + Sync>;

fn instant_of(now: Time, at: Time) -> Instant {
    Instant::now() + (at - now)
}

/// An address as the socket layer uses it: IPv4-mapped IPv6 addresses become IPv4.
pub fn socket_ip(ip: Ipv6Addr) -> IpAddr {
    match ip.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(ip),
    }
}

/// One service as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub peer: Ipv6Addr,
    pub source: Ipv6Addr,
    pub port: u16,
    pub channel: ChannelConfig,
}

impl ServiceConfig {
    /// True when this side opens the connection (its source address is the lower).
    pub fn initiator(&self) -> bool {
        u128::from(self.source) < u128::from(self.peer)
    }
}

/// Refusals of the handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RbsError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("the service task of {0} has stopped")]
    Stopped(String),
}

/// What `<get>` shows of a service.
#[derive(Debug, Clone)]
pub struct ServiceState {
    pub state: &'static str,
    pub authenticated: bool,
    pub last_up: Option<SystemTime>,
    pub last_down: Option<SystemTime>,
    pub last_down_reason: Option<&'static str>,
    pub discontinuity: SystemTime,
    pub frames_rx: u64,
    pub frames_tx: u64,
    pub auth_failures: u64,
    pub resyncs: u64,
    pub digest_mismatches: u64,
    pub decode_errors: u64,
}

#[derive(Debug)]
struct Times {
    last_up: Option<SystemTime>,
    last_down: Option<SystemTime>,
    started: SystemTime,
}

/// Shared between one service task, its owners and the state provider.
struct Service {
    name: String,
    node: Mutex<ServiceNode>,
    owners: Mutex<HashMap<BackupId, mpsc::UnboundedSender<SyncEvent>>>,
    cfg: watch::Sender<Option<ServiceConfig>>,
    commands: mpsc::Sender<SyncCommand>,
    /// Commands sent on `commands` and not yet applied by the task: while one waits, later
    /// changes queue behind it rather than take the direct path.
    queued: AtomicUsize,
    /// The write half of the current connection; written to only under `node`.
    wr: Mutex<Option<Arc<OwnedWriteHalf>>>,
    wake: Notify,
    times: Mutex<Times>,
}

/// What became of the octets the node had for the socket.
#[derive(Debug, PartialEq, Eq)]
enum Flush {
    /// All written (or there is no socket).
    Done,
    /// The socket took what it could, or this turn's share is written: more when it is
    /// writable.
    More,
}

/// Frames what the engine has to send and writes it to the socket without waiting, until
/// the node has nothing more, the socket is full or `budget` octets are written. Called with
/// the node locked, which orders the writes.
fn flush(
    node: &mut ServiceNode,
    wr: &Mutex<Option<Arc<OwnedWriteHalf>>>,
    now: Time,
    budget: usize,
) -> std::io::Result<Flush> {
    let wr = lock(wr);
    let Some(w) = wr.as_deref() else {
        return Ok(Flush::Done);
    };
    let mut written = 0;
    loop {
        node.transmit(now, HIGH_WATER);
        let p = node.pending();
        if p.is_empty() {
            return Ok(Flush::Done);
        }
        if written >= budget {
            return Ok(Flush::More);
        }
        match w.try_write(p) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                node.consume(n);
                written += n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(Flush::More),
            Err(e) => return Err(e),
        }
    }
}

impl Service {
    /// The direct path of a record change: when nothing of this service waits to be applied
    /// or sent, the change is applied and its frame written here, by the sender. Gives the
    /// command back when it must queue instead (something waits, the task holds the node,
    /// or it replaces a whole table, which the task sends).
    fn apply_now(&self, hub: &Hub, cmd: SyncCommand) -> Option<SyncCommand> {
        if matches!(cmd, SyncCommand::Replace { .. }) {
            return Some(cmd);
        }
        let mut node = match self.node.try_lock() {
            Ok(n) => n,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Some(cmd),
        };
        if self.queued.load(Ordering::SeqCst) != 0
            || !node.engine.idle()
            || !node.pending().is_empty()
        {
            return Some(cmd);
        }
        match node.local(sync::Input::Command(cmd)) {
            Ok(out) => deliver(hub, self, out),
            Err(e) => tracing::warn!(service = self.name, error = %e, "command refused"),
        }
        // Whatever did not fit (or failed) is the task's to write or report.
        if flush(&mut node, &self.wr, hub.now(), HIGH_WATER).ok() != Some(Flush::Done) {
            self.wake.notify_one();
        }
        None
    }

    /// A command applied by the task: one less waits.
    fn dequeued(&self) {
        let _ = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }
}

/// Counts a command as queued from before it enters the queue; uncounted again if it never
/// gets in (a full queue, or a send abandoned while waiting).
struct Queued<'a> {
    count: &'a AtomicUsize,
    entered: bool,
}

impl<'a> Queued<'a> {
    fn new(count: &'a AtomicUsize) -> Queued<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        Queued {
            count,
            entered: false,
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if !self.entered {
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Locks in this order only: link, services, node, owners, times, profiles, wr.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Hub {
    services: Mutex<HashMap<String, Arc<Service>>>,
    /// Profile names by service and backup-id, for notifications.
    profiles: Mutex<HashMap<(String, BackupId), String>>,
    bus: Option<Bus>,
    clock: Clock,
    link: Mutex<Option<Link>>,
}

impl Hub {
    fn now(&self) -> Time {
        (self.clock)()
    }
}

/// Events of every configured profile, tagged, for an attached owner of all profiles.
struct Link {
    events: mpsc::UnboundedSender<(String, BackupId, SyncEvent)>,
    /// The forwarding task of each profile registered through the link.
    registered: HashMap<(String, BackupId), tokio::task::JoinHandle<()>>,
}

/// The runtime's handle; clones share it. One clone is the config provider, one the state
/// provider, others go to the owners of backed-up records.
#[derive(Clone)]
pub struct RbsHandle {
    hub: Arc<Hub>,
}

/// A registered backup-id on a service: send changes of the local table with `commands`,
/// receive what happens to the peer's with `events`.
pub struct Owner {
    pub service: String,
    pub backup_id: BackupId,
    pub commands: CommandSender,
    pub events: mpsc::UnboundedReceiver<SyncEvent>,
}

/// Sends an owner's record changes to its service; waits when the service is backed up.
#[derive(Clone)]
pub struct CommandSender {
    svc: Arc<Service>,
    hub: Arc<Hub>,
}

fn check_record(cmd: &SyncCommand) -> Result<(), RbsError> {
    let fits = |k: &[u8], v: &[u8]| k.len() <= packet::MAX_KEY && v.len() <= packet::MAX_VALUE;
    let ok = match cmd {
        SyncCommand::Upsert { key, value, .. } => fits(key, value),
        SyncCommand::Remove { key, .. } => fits(key, &[]),
        SyncCommand::Replace { records, .. } => records.iter().all(|(k, v)| fits(k, v)),
    };
    if !ok {
        return Err(SyncError::RecordTooLarge.into());
    }
    Ok(())
}

impl CommandSender {
    fn stopped(&self) -> RbsError {
        RbsError::Stopped(self.svc.name.clone())
    }

    /// Hands a change on (applied at once when nothing waits, else queued), waiting while
    /// the service's queue is full.
    pub async fn send(&self, cmd: SyncCommand) -> Result<(), RbsError> {
        check_record(&cmd)?;
        self.submit(cmd).await
    }

    /// `send` without the size check (the engine refuses what does not fit).
    async fn submit(&self, cmd: SyncCommand) -> Result<(), RbsError> {
        let Some(cmd) = self.svc.apply_now(&self.hub, cmd) else {
            return Ok(());
        };
        let mut q = Queued::new(&self.svc.queued);
        self.svc
            .commands
            .send(cmd)
            .await
            .map_err(|_| self.stopped())?;
        q.entered = true;
        Ok(())
    }

    /// `send` from a thread outside the tokio runtime, blocking while the queue is full.
    pub fn blocking_send(&self, cmd: SyncCommand) -> Result<(), RbsError> {
        check_record(&cmd)?;
        let Some(cmd) = self.svc.apply_now(&self.hub, cmd) else {
            return Ok(());
        };
        let mut q = Queued::new(&self.svc.queued);
        self.svc
            .commands
            .blocking_send(cmd)
            .map_err(|_| self.stopped())?;
        q.entered = true;
        Ok(())
    }

    /// `send` if there is room; Ok(false) when the queue is full.
    pub fn try_send(&self, cmd: SyncCommand) -> Result<bool, RbsError> {
        check_record(&cmd)?;
        let Some(cmd) = self.svc.apply_now(&self.hub, cmd) else {
            return Ok(true);
        };
        let mut q = Queued::new(&self.svc.queued);
        match self.svc.commands.try_send(cmd) {
            Ok(()) => {
                q.entered = true;
                Ok(true)
            }
            Err(mpsc::error::TrySendError::Full(_)) => Ok(false),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.stopped()),
        }
    }
}

impl RbsHandle {
    /// A runtime with no service yet; notifications go to `bus` when given. Tasks are spawned
    /// on the current tokio runtime as services appear.
    pub fn new(bus: Option<Bus>) -> RbsHandle {
        RbsHandle::with_clock(bus, Arc::new(crate::netio::clock::now))
    }

    /// A runtime on the given clock: owners whose record values hold timers must use the same
    /// clock, since frames carry it as the sender's clock.
    pub fn with_clock(bus: Option<Bus>, clock: Clock) -> RbsHandle {
        RbsHandle {
            hub: Arc::new(Hub {
                services: Mutex::default(),
                profiles: Mutex::default(),
                bus,
                clock,
                link: Mutex::default(),
            }),
        }
    }

    /// Attaches one owner for every configured profile (the hot-backup controller): commands
    /// arrive tagged with their service (taken only as fast as the services accept them);
    /// events leave tagged with service and backup-id. From then on each configured profile's
    /// (service, backup-id) is registered while configured.
    pub fn attach(
        &self,
        mut commands: mpsc::Receiver<(String, SyncCommand)>,
        events: mpsc::UnboundedSender<(String, BackupId, SyncEvent)>,
    ) {
        *lock(&self.hub.link) = Some(Link {
            events,
            registered: HashMap::new(),
        });
        self.sync_link();
        let handle = self.clone();
        tokio::spawn(async move {
            while let Some((service, cmd)) = commands.recv().await {
                if handle.sender(&service).submit(cmd).await.is_err() {
                    break;
                }
            }
        });
    }

    /// Registers the configured profiles through the link, and withdraws the others.
    fn sync_link(&self) {
        let wanted: Vec<(String, BackupId)> = lock(&self.hub.profiles).keys().cloned().collect();
        let mut link = lock(&self.hub.link);
        let Some(link) = link.as_mut() else {
            return;
        };
        let gone: Vec<(String, BackupId)> = link
            .registered
            .keys()
            .filter(|k| !wanted.contains(k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(h) = link.registered.remove(&k) {
                h.abort();
            }
            let _ = self.unregister(&k.0, k.1);
        }
        for (service, id) in wanted {
            if link.registered.contains_key(&(service.clone(), id)) {
                continue;
            }
            match self.register(&service, id) {
                Ok(mut owner) => {
                    let tx = link.events.clone();
                    let svc = service.clone();
                    let h = tokio::spawn(async move {
                        while let Some(e) = owner.events.recv().await {
                            if tx.send((svc.clone(), id, e)).is_err() {
                                break;
                            }
                        }
                    });
                    link.registered.insert((service, id), h);
                }
                Err(e) => {
                    tracing::warn!(service, backup_id = id, error = %e, "profile not registered")
                }
            }
        }
    }

    fn sender(&self, service: &str) -> CommandSender {
        CommandSender {
            svc: self.service(service),
            hub: Arc::clone(&self.hub),
        }
    }

    fn service(&self, name: &str) -> Arc<Service> {
        let mut services = lock(&self.hub.services);
        if let Some(s) = services.get(name) {
            return Arc::clone(s);
        }
        let (cfg, cfg_rx) = watch::channel(None);
        let (commands, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let s = Arc::new(Service {
            name: name.to_string(),
            node: Mutex::new(ServiceNode::new(ChannelConfig::default())),
            owners: Mutex::default(),
            cfg,
            commands,
            queued: AtomicUsize::new(0),
            wr: Mutex::new(None),
            wake: Notify::new(),
            times: Mutex::new(Times {
                last_up: None,
                last_down: None,
                started: SystemTime::now(),
            }),
        });
        let driver = Driver {
            svc: Arc::clone(&s),
            hub: Arc::clone(&self.hub),
            cfg_rx,
            cmd_rx,
        };
        tokio::spawn(tracing::Instrument::instrument(
            driver.run(),
            tracing::info_span!("rbs", service = %name),
        ));
        services.insert(name.to_string(), Arc::clone(&s));
        s
    }

    /// Configures a service (None removes its configuration; registrations stay).
    pub fn configure(&self, name: &str, cfg: Option<ServiceConfig>) {
        let s = self.service(name);
        s.cfg.send_if_modified(|old| {
            let changed = *old != cfg;
            *old = cfg;
            changed
        });
    }

    /// The names of configured services.
    pub fn configured(&self) -> Vec<String> {
        let services = lock(&self.hub.services);
        let mut names: Vec<String> = services
            .values()
            .filter(|s| s.cfg.borrow().is_some())
            .map(|s| s.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Names profiles for notifications: (service, backup-id) → profile name.
    pub fn set_profile_names(&self, names: HashMap<(String, BackupId), String>) {
        *lock(&self.hub.profiles) = names;
        self.sync_link();
    }

    /// Registers a backup-id on a service (which need not be configured yet). The first
    /// event tells the channel's current state.
    pub fn register(&self, service: &str, backup_id: BackupId) -> Result<Owner, RbsError> {
        let s = self.service(service);
        let (tx, events) = mpsc::unbounded_channel();
        {
            let mut node = lock(&s.node);
            let out = node.local(sync::Input::Register(backup_id))?;
            lock(&s.owners).insert(backup_id, tx);
            // Under the node's lock, so these come before anything the task makes next.
            deliver(&self.hub, &s, out);
        }
        s.wake.notify_one();
        Ok(Owner {
            service: service.to_string(),
            backup_id,
            commands: CommandSender {
                svc: Arc::clone(&s),
                hub: Arc::clone(&self.hub),
            },
            events,
        })
    }

    /// Withdraws a backup-id: its tables are dropped and the peer is told.
    pub fn unregister(&self, service: &str, backup_id: BackupId) -> Result<(), RbsError> {
        let s = self.service(service);
        lock(&s.node).local(sync::Input::Unregister(backup_id))?;
        lock(&s.owners).remove(&backup_id);
        s.wake.notify_one();
        Ok(())
    }

    /// The sync status of a backup-id (None when it is not registered).
    pub fn status(&self, service: &str, backup_id: BackupId) -> Option<ProfileStatus> {
        let s = lock(&self.hub.services).get(service).cloned()?;
        let node = lock(&s.node);
        node.engine.status(backup_id)
    }

    /// The state of a service for `<get>` (None when it does not exist).
    pub fn state(&self, service: &str) -> Option<ServiceState> {
        let s = lock(&self.hub.services).get(service).cloned()?;
        let node = lock(&s.node);
        let t = lock(&s.times);
        let c = node.counters();
        Some(ServiceState {
            state: node.state().as_str(),
            authenticated: node.authenticated(),
            last_up: t.last_up,
            last_down: t.last_down,
            last_down_reason: node.last_down_reason().map(DownReason::as_str),
            discontinuity: t.started,
            frames_rx: c.frames_rx,
            frames_tx: c.frames_tx,
            auth_failures: c.auth_failures,
            resyncs: node.engine.counters.resyncs,
            digest_mismatches: node.engine.counters.digest_mismatches,
            decode_errors: c.decode_errors,
        })
    }
}

/// Reports an event to NETCONF subscribers, rendered by the northbound.
fn notify(hub: &Hub, event: RbsEvent) {
    if let Some(bus) = &hub.bus {
        bus.notify(super::northbound::notification(&event));
    }
}

/// Hands node outputs to owners, state and notifications.
fn deliver(hub: &Hub, s: &Service, out: Vec<Output>) {
    if out.is_empty() {
        return;
    }
    let owners = lock(&s.owners);
    for o in out {
        match o {
            Output::Event(id, e) => {
                if let Some(tx) = owners.get(&id) {
                    let _ = tx.send(e);
                }
            }
            Output::Up { authenticated } => {
                tracing::info!(authenticated, "channel up");
                lock(&s.times).last_up = Some(SystemTime::now());
                notify(
                    hub,
                    RbsEvent::ChannelUp {
                        service: s.name.clone(),
                        authenticated,
                    },
                );
            }
            Output::Down { reason, was_up } => {
                if was_up {
                    tracing::warn!(reason = reason.as_str(), "channel down");
                    lock(&s.times).last_down = Some(SystemTime::now());
                    notify(
                        hub,
                        RbsEvent::ChannelDown {
                            service: s.name.clone(),
                            reason,
                        },
                    );
                } else {
                    tracing::info!(
                        reason = reason.as_str(),
                        "connection closed before the channel came up"
                    );
                }
            }
            Output::BatchComplete { backup_id, entries } => {
                tracing::info!(backup_id, entries, "batch sync complete");
                let profile = lock(&hub.profiles)
                    .get(&(s.name.clone(), backup_id))
                    .cloned();
                if let Some(profile) = profile {
                    notify(hub, RbsEvent::BatchSyncComplete { profile, entries });
                }
            }
        }
    }
}

type Connecting = Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send>>;

async fn connect(cfg: ServiceConfig) -> std::io::Result<TcpStream> {
    let source = socket_ip(cfg.source);
    let peer = SocketAddr::new(socket_ip(cfg.peer), cfg.port);
    let sock = if source.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.bind(SocketAddr::new(source, 0))?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(peer))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn listen(cfg: &ServiceConfig) -> std::io::Result<TcpListener> {
    let addr = SocketAddr::new(socket_ip(cfg.source), cfg.port);
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(16)
}

async fn read_opt(rd: Option<&mut OwnedReadHalf>, buf: &mut [u8]) -> std::io::Result<usize> {
    match rd {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn writable_opt(wr: Option<&OwnedWriteHalf>) -> std::io::Result<()> {
    match wr {
        Some(w) => w.writable().await,
        None => std::future::pending().await,
    }
}

async fn accept_opt(l: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn connecting_opt(c: Option<&mut Connecting>) -> std::io::Result<TcpStream> {
    match c {
        Some(c) => c.await,
        None => std::future::pending().await,
    }
}

struct Driver {
    svc: Arc<Service>,
    hub: Arc<Hub>,
    cfg_rx: watch::Receiver<Option<ServiceConfig>>,
    cmd_rx: mpsc::Receiver<SyncCommand>,
}

/// The socket side of the driver's state (the write half is the service's, see [`Service`]).
#[derive(Default)]
struct Io {
    rd: Option<OwnedReadHalf>,
    listener: Option<TcpListener>,
    connecting: Option<Connecting>,
    /// When to try connecting or binding again.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Io {
    fn schedule_retry(&mut self) {
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

fn nonce() -> [u8; 16] {
    rand::random()
}

impl Driver {
    fn node(&self) -> MutexGuard<'_, ServiceNode> {
        lock(&self.svc.node)
    }

    fn drop_connection(&self, io: &mut Io, farewell: Vec<u8>) {
        if let Some(wr) = lock(&self.svc.wr).take() {
            if !farewell.is_empty() {
                // Best effort: the error frame tells the peer why; the socket closes either way.
                let _ = wr.try_write(&farewell);
            }
        }
        io.rd = None;
    }

    /// Runs `f` on the node and hands its outputs on while still holding the node, so that
    /// owners see events in the order the node made them; after a Down the socket is closed.
    fn step(&self, io: &mut Io, initiator: bool, f: impl FnOnce(&mut ServiceNode) -> Vec<Output>) {
        let mut node = self.node();
        let out = f(&mut node);
        let mut down = false;
        for o in &out {
            match o {
                Output::Down { .. } => down = true,
                Output::Up { .. } => io.backoff = BACKOFF_MIN,
                _ => {}
            }
        }
        deliver(&self.hub, &self.svc, out);
        let farewell = if down {
            node.take_farewell()
        } else {
            Vec::new()
        };
        drop(node);
        if down {
            self.drop_connection(io, farewell);
            if initiator {
                io.schedule_retry();
            }
        }
    }

    fn start_connection(&self, io: &mut Io, stream: TcpStream, role: Role) {
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        // The node first: a connection it replaces goes down (and its socket with it). The
        // socket changes with the node's connection, so no octet goes to the wrong one.
        let mut node = self.node();
        let out = node.handle(
            self.hub.now(),
            Input::Connected {
                role,
                nonce: nonce(),
            },
        );
        deliver(&self.hub, &self.svc, out);
        let old = lock(&self.svc.wr).replace(Arc::new(wr));
        drop(node);
        drop(old);
        io.rd = Some(rd);
    }

    async fn run(mut self) {
        let mut io = Io {
            backoff: BACKOFF_MIN,
            ..Default::default()
        };
        let mut cfg: Option<ServiceConfig> = None;
        let mut rbuf = vec![0u8; READ_BUF];
        let mut cfg_open = true;
        // One timer, moved only when the deadline changes (not re-armed every turn).
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut armed: Option<(Option<Time>, Option<Instant>)> = None;
        loop {
            // Follow the configuration.
            let want = self.cfg_rx.borrow_and_update().clone();
            if want != cfg {
                self.step(&mut io, false, |n| {
                    n.handle(
                        self.hub.now(),
                        Input::Shutdown(DownReason::ConfigurationChange),
                    )
                });
                self.drop_connection(&mut io, Vec::new());
                io.listener = None;
                io.connecting = None;
                io.retry_at = None;
                io.backoff = BACKOFF_MIN;
                if let Some(c) = &want {
                    self.node().set_config(c.channel.clone());
                    tracing::info!(peer = %c.peer, source = %c.source, port = c.port,
                        initiator = c.initiator(), "service configured");
                }
                cfg = want;
            }
            let initiator = cfg.as_ref().is_some_and(ServiceConfig::initiator);
            // Get a connection going when there is none.
            if let Some(c) = &cfg {
                let due = io.retry_at.is_none_or(|t| t <= Instant::now());
                if due {
                    io.retry_at = None;
                }
                if io.rd.is_none() && initiator && io.connecting.is_none() && due {
                    io.connecting = Some(Box::pin(connect(c.clone())));
                    self.node().handle(self.hub.now(), Input::Connecting);
                }
                if !initiator && io.listener.is_none() && due {
                    match listen(c) {
                        Ok(l) => {
                            io.listener = Some(l);
                            if io.rd.is_none() {
                                self.node().handle(self.hub.now(), Input::Connecting);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot listen on the source address");
                            self.node().handle(self.hub.now(), Input::ConnectFailed);
                            io.schedule_retry();
                        }
                    }
                }
            }
            // Write what the node has, as far as the socket takes it.
            let (flushed, node_deadline, accept_commands) = {
                let mut node = self.node();
                let now = self.hub.now();
                let flushed = flush(&mut node, &self.svc.wr, now, HIGH_WATER);
                (
                    flushed,
                    node.next_deadline(),
                    node.engine.backlog() < BACKLOG_MAX,
                )
            };
            let blocked = match flushed {
                Ok(f) => f == Flush::More,
                Err(e) => {
                    tracing::debug!(error = %e, "write failed");
                    self.step(&mut io, initiator, |n| {
                        n.handle(self.hub.now(), Input::Closed)
                    });
                    continue;
                }
            };
            let writer = if blocked {
                lock(&self.svc.wr).clone()
            } else {
                None
            };
            if armed != Some((node_deadline, io.retry_at)) {
                let now = self.hub.now();
                let mut deadline = node_deadline.map(|d| instant_of(now, d));
                if let Some(r) = io.retry_at {
                    deadline = Some(deadline.map_or(r, |d| d.min(r)));
                }
                if let Some(d) = deadline {
                    sleep.as_mut().reset(d.into());
                }
                armed = deadline.map(|_| (node_deadline, io.retry_at));
            }
            tokio::select! {
                r = self.cfg_rx.changed(), if cfg_open => {
                    if r.is_err() {
                        cfg_open = false;
                    }
                }
                _ = self.svc.wake.notified() => {}
                r = read_opt(io.rd.as_mut(), &mut rbuf) => {
                    self.step(&mut io, initiator, |node| match r {
                        Ok(0) | Err(_) => node.handle(self.hub.now(), Input::Closed),
                        Ok(n) => node.handle(self.hub.now(), Input::Bytes(&rbuf[..n])),
                    });
                }
                r = writable_opt(writer.as_deref()) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "write failed");
                        self.step(&mut io, initiator, |n| n.handle(self.hub.now(), Input::Closed));
                    }
                }
                r = connecting_opt(io.connecting.as_mut()) => {
                    io.connecting = None;
                    match r {
                        Ok(stream) => self.start_connection(&mut io, stream, Role::Initiator),
                        Err(e) => {
                            tracing::debug!(error = %e, "connect failed");
                            self.node().handle(self.hub.now(), Input::ConnectFailed);
                            io.schedule_retry();
                        }
                    }
                }
                r = accept_opt(io.listener.as_ref()) => match r {
                    Ok((stream, from)) => {
                        let expected = cfg.as_ref().map(|c| socket_ip(c.peer));
                        let from_ip = match from.ip() {
                            IpAddr::V6(v6) => socket_ip(v6),
                            v4 => v4,
                        };
                        if Some(from_ip) == expected {
                            self.start_connection(&mut io, stream, Role::Acceptor);
                        } else {
                            tracing::warn!(%from, "connection from an unknown peer refused");
                            self.node().refuse_unknown_peer();
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "accept failed"),
                },
                cmd = self.cmd_rx.recv(), if accept_commands => {
                    let Some(cmd) = cmd else { continue };
                    let mut out = Vec::new();
                    let mut node = lock(&self.svc.node);
                    let mut next = Some(cmd);
                    // Take what is queued, up to the backlog bound and a turn's share: the
                    // next turn writes these first.
                    let mut taken = 0;
                    while let Some(cmd) = next.take() {
                        match node.local(sync::Input::Command(cmd)) {
                            Ok(o) => out.extend(o),
                            Err(e) => tracing::warn!(error = %e, "command refused"),
                        }
                        self.svc.dequeued();
                        taken += 1;
                        if taken < COMMANDS_PER_TURN && node.engine.backlog() < BACKLOG_MAX {
                            next = self.cmd_rx.try_recv().ok();
                        }
                    }
                    deliver(&self.hub, &self.svc, out);
                    drop(node);
                }
                _ = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.step(&mut io, initiator, |n| n.handle(self.hub.now(), Input::Timeout));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(source: &str, peer: &str, port: u16, key: Option<&str>) -> ServiceConfig {
        ServiceConfig {
            peer: peer.parse().unwrap(),
            source: source.parse().unwrap(),
            port,
            channel: ChannelConfig {
                key: key.map(|k| k.as_bytes().to_vec()),
                ..Default::default()
            },
        }
    }

    async fn next(o: &mut Owner, want: impl Fn(&SyncEvent) -> bool) -> Vec<SyncEvent> {
        let mut seen = Vec::new();
        loop {
            let e = tokio::time::timeout(Duration::from_secs(10), o.events.recv())
                .await
                .expect("event in time")
                .expect("open");
            let done = want(&e);
            seen.push(e);
            if done {
                return seen;
            }
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn two_runtimes_sync_over_loopback_tcp() {
        let port = free_port();
        let (bus, mut notes) = Bus::new();
        let (a, b) = (RbsHandle::new(Some(bus)), RbsHandle::new(None));
        a.set_profile_names(HashMap::from([(("s".to_string(), 9), "p9".to_string())]));
        // IPv4-mapped loopback addresses: two devices on one host, one port.
        a.configure(
            "s",
            Some(svc("::ffff:127.0.0.1", "::ffff:127.0.0.2", port, Some("k"))),
        );
        b.configure(
            "s",
            Some(svc("::ffff:127.0.0.2", "::ffff:127.0.0.1", port, Some("k"))),
        );
        let oa = a.register("s", 9).unwrap();
        for i in 0..2000u32 {
            oa.commands
                .send(SyncCommand::Upsert {
                    backup_id: 9,
                    key: i.to_be_bytes().to_vec(),
                    value: b"v".to_vec(),
                })
                .await
                .unwrap();
        }
        let mut ob = b.register("s", 9).unwrap();
        let ev = next(&mut ob, |e| *e == SyncEvent::BatchComplete).await;
        assert!(ev.contains(&SyncEvent::ChannelUp));
        let upserts = ev
            .iter()
            .filter(|e| matches!(e, SyncEvent::Upsert { .. }))
            .count();
        assert_eq!(upserts, 2000);
        let st = a.state("s").unwrap();
        assert_eq!((st.state, st.authenticated), ("up", true));
        assert_eq!(b.status("s", 9).unwrap().peer_entries, 2000);
        // a saw its channel come up and b's batch complete.
        let mut names = Vec::new();
        while names.len() < 2 {
            let n = tokio::time::timeout(Duration::from_secs(10), notes.recv())
                .await
                .unwrap()
                .unwrap();
            names.push(n.to_xml());
        }
        assert!(names[0].contains("rbs-channel-up") && names[0].contains("<authenticated>true"));
        assert!(names[1].contains("batch-sync-complete") && names[1].contains("<profile>p9"));
        assert!(names[1].contains("<entries>0</entries>"), "{}", names[1]);
        // A real-time change.
        oa.commands
            .send(SyncCommand::Remove {
                backup_id: 9,
                key: 5u32.to_be_bytes().to_vec(),
            })
            .await
            .unwrap();
        let ev = next(&mut ob, |e| matches!(e, SyncEvent::Remove { .. })).await;
        assert_eq!(
            ev.last(),
            Some(&SyncEvent::Remove {
                key: 5u32.to_be_bytes().to_vec()
            })
        );
        // Removing a's service takes the channel down on both sides.
        a.configure("s", None);
        next(&mut ob, |e| *e == SyncEvent::ChannelDown).await;
        let st = b.state("s").unwrap();
        assert_eq!(st.last_down_reason, Some("peer-closed"));
        assert!(st.last_down.is_some());
    }

    fn upsert(id: BackupId, key: &str, value: &str) -> SyncCommand {
        SyncCommand::Upsert {
            backup_id: id,
            key: key.into(),
            value: value.into(),
        }
    }

    fn local_value(h: &RbsHandle, id: BackupId, key: &str) -> Option<Vec<u8>> {
        let s = h.service("s");
        let node = lock(&s.node);
        node.engine.local(id)?.get(key.as_bytes()).cloned()
    }

    /// Yields to the service tasks (this test runtime has one thread) until `done`.
    async fn until(mut done: impl FnMut() -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !done() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("in time");
    }

    // On one thread, the service task cannot run while the test does not yield: what happens
    // inside `try_send` is the sender's own doing.
    #[tokio::test]
    async fn a_change_never_overtakes_one_still_queued() {
        let h = RbsHandle::new(None);
        let o = h.register("s", 1).unwrap();
        let table = SyncCommand::Replace {
            backup_id: 1,
            records: vec![(b"k".to_vec(), b"old".to_vec())],
        };
        // A whole table is the task's to apply, so the change after it queues behind it.
        assert!(o.commands.try_send(table).unwrap());
        assert!(o.commands.try_send(upsert(1, "k", "new")).unwrap());
        assert_eq!(local_value(&h, 1, "k"), None, "both wait for the task");
        let s = h.service("s");
        until(|| s.queued.load(Ordering::SeqCst) == 0).await;
        assert_eq!(local_value(&h, 1, "k").as_deref(), Some(&b"new"[..]));
        // Nothing waits any more: the sender applies the next change itself.
        assert!(o.commands.try_send(upsert(1, "k", "newer")).unwrap());
        assert_eq!(local_value(&h, 1, "k").as_deref(), Some(&b"newer"[..]));
    }

    #[tokio::test]
    async fn a_real_time_change_is_written_by_its_sender_without_a_task_turn() {
        let port = free_port();
        let (a, b) = (RbsHandle::new(None), RbsHandle::new(None));
        a.configure(
            "s",
            Some(svc("::ffff:127.0.0.1", "::ffff:127.0.0.5", port, Some("k"))),
        );
        b.configure(
            "s",
            Some(svc("::ffff:127.0.0.5", "::ffff:127.0.0.1", port, Some("k"))),
        );
        let mut oa = a.register("s", 3).unwrap();
        let mut ob = b.register("s", 3).unwrap();
        next(&mut oa, |e| *e == SyncEvent::BatchComplete).await;
        next(&mut ob, |e| *e == SyncEvent::BatchComplete).await;
        // Both batches acknowledged: nothing more to say until an owner changes something.
        until(|| a.status("s", 3).unwrap().peer_in_sync).await;
        let sa = a.service("s");
        until(|| {
            let node = lock(&sa.node);
            node.engine.idle() && node.pending().is_empty()
        })
        .await;
        let before = a.state("s").unwrap().frames_tx;
        assert!(oa.commands.try_send(upsert(3, "k", "v")).unwrap());
        // Framed and handed to the socket by `try_send` itself.
        assert_eq!(a.state("s").unwrap().frames_tx, before + 1);
        {
            let node = lock(&sa.node);
            assert!(node.engine.idle() && node.pending().is_empty());
        }
        let ev = next(&mut ob, |e| matches!(e, SyncEvent::Upsert { .. })).await;
        assert!(
            matches!(ev.last(), Some(SyncEvent::Upsert { key, value, .. })
            if key == b"k" && value == b"v")
        );
    }

    #[tokio::test]
    async fn attached_owner_follows_configured_profiles() {
        let port = free_port();
        let (a, b) = (RbsHandle::new(None), RbsHandle::new(None));
        let mut links = Vec::new();
        for h in [&a, &b] {
            let (cmd_tx, cmd_rx) = mpsc::channel(16);
            let (ev_tx, ev_rx) = mpsc::unbounded_channel();
            h.attach(cmd_rx, ev_tx);
            h.set_profile_names(HashMap::from([(("s".to_string(), 4), "p4".to_string())]));
            links.push((cmd_tx, ev_rx));
        }
        a.configure(
            "s",
            Some(svc("::ffff:127.0.0.1", "::ffff:127.0.0.4", port, None)),
        );
        b.configure(
            "s",
            Some(svc("::ffff:127.0.0.4", "::ffff:127.0.0.1", port, None)),
        );
        let (a_cmd, _) = &links[0];
        a_cmd
            .send((
                "s".to_string(),
                SyncCommand::Upsert {
                    backup_id: 4,
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                },
            ))
            .await
            .unwrap();
        let (_, b_ev) = &mut links[1];
        let mut got = Vec::new();
        while !got
            .iter()
            .any(|(_, _, e)| matches!(e, SyncEvent::Upsert { .. }))
        {
            let e = tokio::time::timeout(Duration::from_secs(10), b_ev.recv())
                .await
                .expect("event in time")
                .expect("open");
            got.push(e);
        }
        assert!(got.iter().all(|(s, id, _)| s == "s" && *id == 4));
        assert!(got.iter().any(|(_, _, e)| *e == SyncEvent::ChannelUp));
        // The profile goes from b's configuration: a's owner hears of the mismatch.
        b.set_profile_names(HashMap::new());
        let (_, a_ev) = &mut links[0];
        loop {
            let (_, _, e) = tokio::time::timeout(Duration::from_secs(10), a_ev.recv())
                .await
                .expect("event in time")
                .expect("open");
            if e == SyncEvent::BackupIdMismatch {
                break;
            }
        }
        assert!(b.status("s", 4).is_none());
    }

    #[tokio::test]
    async fn wrong_key_is_counted_and_stays_down() {
        let port = free_port();
        let (a, b) = (RbsHandle::new(None), RbsHandle::new(None));
        a.configure(
            "s",
            Some(svc(
                "::ffff:127.0.0.1",
                "::ffff:127.0.0.3",
                port,
                Some("k1"),
            )),
        );
        b.configure(
            "s",
            Some(svc(
                "::ffff:127.0.0.3",
                "::ffff:127.0.0.1",
                port,
                Some("k2"),
            )),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (sa, sb) = (a.state("s").unwrap(), b.state("s").unwrap());
            if sa.auth_failures >= 2 && sb.auth_failures >= 2 {
                assert_ne!(sa.state, "up");
                assert_eq!(sb.last_down_reason, Some("auth-failure"));
                break;
            }
            assert!(Instant::now() < deadline, "no auth failures counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
