//! Two devices on one simulated clock: each an MLD node with its hot-backup controller and a
//! simulated data plane, joined by an in-memory sync link that keeps the RBS contract (ordered
//! delivery, a batch on every channel-up, removal of what a completed batch lacks) and can be
//! cut or made slow; role sources are driven by the tests. Every test asserts the exact group
//! tables (origin and remaining timers) and the set of devices forwarding each (S,G).

use super::controller::{Cause, Event, Input, Mode, ProfileConfig};
use super::glue::{Effect, HotBackup};
use crate::bus::{Role, RoleSourceId, RoleState};
use crate::forwarding::rpf::Route;
use crate::forwarding::sim::SimDataPlane;
use crate::mld::balance::{bucket, own_bucket, LoadBalance};
use crate::mld::coordinator::{settle, Request};
use crate::mld::events::{LinkInfo, MldNode, Out};
use crate::mld::instance::{Config, FilterMode, Origin};
use crate::mld::northbound::InterfaceMld;
use crate::mld::packet::{encode_with_checksum, Message, Record, RecordType, TYPE_QUERY};
use crate::netio::icmp6::RxPacket;
use crate::rbs::api::{SyncCommand, SyncEvent};
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv6Addr;
use std::time::Duration;

const UP: u32 = 2;
const DOWN: u32 = 3;
const MALI: Duration = Duration::from_secs(260);
const LLQT: Duration = Duration::from_secs(2);
const SERVICE: &str = "rbs1";
const BACKUP_ID: u16 = 10;
const IFACE: &str = "eth1";

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// The instant `ms` milliseconds after the simulated clock's zero.
fn at(ms: u64) -> Time {
    Time::from_millis(ms)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn source() -> RoleSourceId {
    RoleSourceId::Vrrp6 {
        interface: IFACE.into(),
        vrid: 1,
    }
}

fn state(role: Role, peer_present: bool) -> RoleState {
    RoleState { role, peer_present }
}

/// A group entry as the tests compare it: remaining timers rather than absolute ones, so
/// devices with different clocks compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    group: Ipv6Addr,
    origin: Origin,
    mode: FilterMode,
    filter_left: Option<Duration>,
    sources: Vec<(Ipv6Addr, Option<Duration>)>,
}

struct Device {
    name: &'static str,
    /// This device's clock is the simulated time plus this.
    offset: Duration,
    own_ll: Ipv6Addr,
    node: MldNode,
    hb: HotBackup<Vec<Effect>>,
    dp: SimDataPlane,
    alive: bool,
    role: RoleState,
    backup_since: Time,
    gate: bool,
    notes: Vec<Event>,
    /// General queries sent on the downstream link: (simulated time, source).
    general_queries: Vec<Time>,
    fwd_actions: usize,
}

fn links(down_up: bool, ll: Ipv6Addr) -> Vec<LinkInfo> {
    let l = |index, name: &str, up, link_local, loopback| LinkInfo {
        index,
        name: name.into(),
        up,
        link_local,
        loopback,
    };
    vec![
        l(1, "lo", true, None, true),
        l(UP, "eth0", true, Some(a("fe80::1:1")), false),
        l(DOWN, IFACE, down_up, Some(ll), false),
    ]
}

/// The in-memory channel between device 0 and device 1.
#[derive(Default)]
struct SyncLink {
    up: bool,
    /// Each side's own records, as its engine keeps them.
    tables: [BTreeMap<Vec<u8>, Vec<u8>>; 2],
    /// The keys each side has been given by the other.
    held: [BTreeSet<Vec<u8>>; 2],
    /// Events towards each side: (delivery time, sender clock offset, event).
    queue: [VecDeque<(Time, SyncEvent)>; 2],
    /// Time between batch records (zero: the batch arrives at once).
    batch_gap: Duration,
}

impl SyncLink {
    fn push(&mut self, to: usize, at: Time, e: SyncEvent) {
        let at = self.queue[to].back().map_or(at, |(t, _)| at.max(*t));
        self.queue[to].push_back((at, e));
    }

    fn command(&mut self, from: usize, now: Time, sender_now: Time, cmd: SyncCommand) {
        let to = 1 - from;
        match cmd {
            SyncCommand::Upsert { key, value, .. } => {
                self.tables[from].insert(key.clone(), value.clone());
                if self.up {
                    let e = SyncEvent::Upsert {
                        key,
                        value,
                        sender_now,
                    };
                    self.push(to, now, e);
                }
            }
            SyncCommand::Remove { key, .. } => {
                self.tables[from].remove(&key);
                if self.up {
                    self.push(to, now, SyncEvent::Remove { key });
                }
            }
            SyncCommand::Replace { .. } => unreachable!("the controller never replaces a table"),
        }
    }

    /// The channel comes up: both sides are told, then each gets the other's full table.
    fn connect(&mut self, now: Time, offsets: [Duration; 2]) {
        self.up = true;
        for to in 0..2 {
            let from = 1 - to;
            self.push(to, now, SyncEvent::ChannelUp);
            self.push(to, now, SyncEvent::BatchStarted);
            let mut at = now;
            let records: Vec<(Vec<u8>, Vec<u8>)> = self.tables[from]
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (key, value) in records.iter() {
                let e = SyncEvent::Upsert {
                    key: key.clone(),
                    value: value.clone(),
                    sender_now: at + offsets[from],
                };
                self.push(to, at, e);
                at += self.batch_gap;
            }
            let stale: Vec<Vec<u8>> = self.held[to]
                .iter()
                .filter(|k| !self.tables[from].contains_key(*k))
                .cloned()
                .collect();
            for key in stale {
                self.push(to, at, SyncEvent::Remove { key });
            }
            self.push(to, at, SyncEvent::BatchComplete);
        }
    }

    fn next(&self) -> Option<Time> {
        self.queue
            .iter()
            .filter_map(|q| q.front().map(|x| x.0))
            .min()
    }

    fn pop_due(&mut self, now: Time) -> Option<(usize, SyncEvent)> {
        for to in 0..2 {
            if self.queue[to].front().is_some_and(|x| x.0 <= now) {
                let (_, e) = self.queue[to].pop_front()?;
                match &e {
                    SyncEvent::Upsert { key, .. } => {
                        self.held[to].insert(key.clone());
                    }
                    SyncEvent::Remove { key } => {
                        self.held[to].remove(key);
                    }
                    _ => {}
                }
                return Some((to, e));
            }
        }
        None
    }
}

struct World {
    now: Time,
    dev: [Device; 2],
    link: SyncLink,
    mode: Mode,
    lb: LoadBalance,
    /// The role sources' preemption: the backup takes the master role back once it has been
    /// backup this long with the gate open (VRRP6 preempt delay).
    preempt_delay: Option<Duration>,
}

impl World {
    /// Device A (index 0, RBS source 2001:db8:10::1) and B (index 1, ::2, clock 1000 s ahead),
    /// both configured, routers running, roles not decided, channel down.
    fn new(mode: Mode, lb: LoadBalance) -> World {
        let dev = |i: usize| Device {
            name: ["A", "B"][i],
            offset: [Duration::ZERO, Duration::from_secs(1000)][i],
            own_ll: [a("fe80::a"), a("fe80::b")][i],
            node: MldNode::default(),
            hb: HotBackup::default(),
            dp: SimDataPlane::default(),
            alive: false,
            role: RoleState::default(),
            backup_since: Time::ZERO,
            gate: true,
            notes: Vec::new(),
            general_queries: Vec::new(),
            fwd_actions: 0,
        };
        let mut w = World {
            now: Time::ZERO,
            dev: [dev(0), dev(1)],
            link: SyncLink::default(),
            mode,
            lb,
            preempt_delay: None,
        };
        w.boot(0);
        w.boot(1);
        w
    }

    fn profile(&self, i: usize) -> ProfileConfig {
        let addrs = [a("2001:db8:10::1"), a("2001:db8:10::2")];
        ProfileConfig {
            name: "rbp1".into(),
            backup_id: BACKUP_ID,
            service: SERVICE.into(),
            role_source: source(),
            mode: self.mode,
            lb: self.lb,
            interfaces: [IFACE.to_string()].into(),
            local_addr: addrs[i],
            peer_addr: addrs[1 - i],
        }
    }

    fn clock(&self, i: usize) -> Time {
        self.now + self.dev[i].offset
    }

    /// Starts (or restarts, empty) device `i`.
    fn boot(&mut self, i: usize) {
        let d = &mut self.dev[i];
        d.node = MldNode {
            routing: true,
            ..MldNode::default()
        };
        d.node.cfg.insert(
            IFACE.into(),
            InterfaceMld {
                router: Config::default(),
                require_router_alert: true,
                track_vrrp6_vrid: Some(1),
            },
        );
        d.node.fwd.use_slots(true);
        d.hb = HotBackup::default();
        d.dp = SimDataPlane::default();
        d.alive = true;
        d.role = RoleState::default();
        d.gate = true;
        d.notes.clear();
        d.general_queries.clear();
        // Its sync engine starts empty too.
        self.link.tables[i].clear();
        self.link.held[i].clear();
        let now = self.clock(i);
        let ll = self.dev[i].own_ll;
        let outs = self.dev[i].node.links(now, &links(true, ll));
        self.process(i, outs, Vec::new());
        let reqs = self.dev[i].hb.configure(vec![self.profile(i)], Vec::new());
        self.process(i, Vec::new(), reqs);
    }

    fn process(&mut self, i: usize, outs: Vec<Out>, reqs: Vec<Request>) {
        let now = self.clock(i);
        let sim_now = self.now;
        let d = &mut self.dev[i];
        let io = settle(now, &mut d.node, Some(&mut d.hb), outs, reqs);
        let fx = std::mem::take(&mut d.hb.sink);
        for o in io {
            match o {
                Out::Fwd(f) => {
                    d.fwd_actions += 1;
                    d.dp.apply(&[f]);
                }
                Out::Send { dst, payload, .. }
                    if payload[0] == TYPE_QUERY && dst == a("ff02::1") =>
                {
                    d.general_queries.push(sim_now);
                }
                _ => {}
            }
        }
        for e in fx {
            match e {
                Effect::Sync { cmd, .. } => self.link.command(i, sim_now, now, cmd),
                Effect::Gate { open, .. } => self.dev[i].gate = open,
                Effect::Notify(n) => self.dev[i].notes.push(n),
            }
        }
    }

    fn set_role(&mut self, i: usize, role: Role, peer_present: bool) {
        if !self.dev[i].alive {
            return;
        }
        let st = state(role, peer_present);
        if role == Role::Backup && self.dev[i].role.role != Role::Backup {
            self.dev[i].backup_since = self.now;
        }
        self.dev[i].role = st;
        let now = self.clock(i);
        let reqs = self.dev[i].hb.handle(
            now,
            Input::Role {
                source: source(),
                state: st,
            },
        );
        self.process(i, Vec::new(), reqs);
    }

    /// A is master and B backup, both see each other, the channel is up and synced.
    fn pair(&mut self) {
        self.set_role(0, Role::Master, true);
        self.set_role(1, Role::Backup, true);
        self.connect();
    }

    fn connect(&mut self) {
        let offsets = [self.dev[0].offset, self.dev[1].offset];
        self.link.connect(self.now, offsets);
        self.deliver();
    }

    fn cut(&mut self) {
        self.link.up = false;
        self.link.queue = Default::default();
        for i in 0..2 {
            self.sync_event(i, SyncEvent::ChannelDown);
        }
    }

    fn sync_event(&mut self, i: usize, event: SyncEvent) {
        if !self.dev[i].alive {
            return;
        }
        let now = self.clock(i);
        let reqs = self.dev[i].hb.handle(
            now,
            Input::Sync {
                service: SERVICE.into(),
                backup_id: BACKUP_ID,
                event,
            },
        );
        self.process(i, Vec::new(), reqs);
    }

    fn deliver(&mut self) {
        while let Some((to, e)) = self.link.pop_due(self.now) {
            self.sync_event(to, e);
            self.preempt();
        }
    }

    /// The device crashes: its state is gone and the channel drops.
    fn crash(&mut self, i: usize) {
        self.dev[i].alive = false;
        self.cut();
    }

    fn downstream(&mut self, i: usize, up: bool) {
        let now = self.clock(i);
        let ll = self.dev[i].own_ll;
        let outs = self.dev[i].node.links(now, &links(up, ll));
        self.process(i, outs, Vec::new());
    }

    /// The VRRP6 preemption of the role source: the backup that has waited the delay with the
    /// gate open becomes master, the other backup.
    fn preempt(&mut self) {
        let Some(delay) = self.preempt_delay else {
            return;
        };
        for i in 0..2 {
            let (me, other) = (&self.dev[i], &self.dev[1 - i]);
            if me.alive
                && other.alive
                && me.role.role == Role::Backup
                && other.role.role == Role::Master
                && me.gate
                && self.now >= me.backup_since + delay
            {
                self.set_role(i, Role::Master, true);
                self.set_role(1 - i, Role::Backup, true);
                return;
            }
        }
    }

    fn next_event(&self) -> Option<Time> {
        let mut t = self.link.next();
        let mut take = |x: Time| t = Some(t.map_or(x, |y| y.min(x)));
        for d in self.dev.iter().filter(|d| d.alive) {
            if let Some(x) = d.node.next_deadline() {
                take(x - d.offset);
            }
            if let (Some(delay), Role::Backup, true) = (self.preempt_delay, d.role.role, d.gate) {
                if self.now < d.backup_since + delay {
                    take(d.backup_since + delay);
                }
            }
        }
        t
    }

    /// Runs everything due up to and including `to`.
    fn advance(&mut self, to: Time) {
        while let Some(t) = self.next_event().filter(|t| *t <= to) {
            self.now = self.now.max(t);
            self.deliver();
            for i in 0..2 {
                if self.dev[i].alive {
                    let now = self.clock(i);
                    let outs = self.dev[i].node.tick(now);
                    self.process(i, outs, Vec::new());
                }
            }
            self.deliver();
            self.preempt();
        }
        self.now = to;
        self.preempt();
    }

    /// A host on the downstream link sends one MLDv2 record; `to` are the devices that get it
    /// (both on a shared LAN; one when an aggregation hashes it to one member).
    fn report(&mut self, to: &[usize], kind: RecordType, group: &str, sources: &[&str]) {
        let msg = Message::V2Report {
            records: vec![Record {
                kind,
                group: a(group),
                sources: sources.iter().map(|s| a(s)).collect(),
                aux: vec![],
            }],
        };
        let (src, dst) = (a("fe80::10"), a("ff02::16"));
        let rx = RxPacket {
            src,
            dst,
            ifindex: DOWN,
            hop_limit: Some(1),
            router_alert: true,
            payload: encode_with_checksum(&msg, &src, &dst),
        };
        for &i in to {
            if self.dev[i].alive {
                let now = self.clock(i);
                let outs = self.dev[i].node.packet(now, &rx);
                self.process(i, outs, Vec::new());
            }
        }
        self.deliver();
    }

    fn join(&mut self, to: &[usize], group: &str) {
        self.report(to, RecordType::ChangeToExclude, group, &[]);
    }

    fn table(&self, i: usize) -> Vec<Row> {
        let d = &self.dev[i];
        let now = self.clock(i);
        let left = |t: Option<Time>| t.map(|t| t - now);
        match d.node.running.get(IFACE) {
            None => Vec::new(),
            Some(r) => r
                .router
                .groups
                .iter()
                .map(|(g, e)| Row {
                    group: *g,
                    origin: e.origin,
                    mode: e.mode,
                    filter_left: left(e.filter_timer),
                    sources: e.sources.iter().map(|(s, t)| (*s, left(*t))).collect(),
                })
                .collect(),
        }
    }

    /// Traffic from `s` to `g` reaches both devices upstream; returns the devices that send
    /// it downstream.
    fn forwarders(&mut self, s: &str, g: &str) -> Vec<&'static str> {
        let (s, g) = (a(s), a(g));
        let routes = [Route {
            dst: a("2001:db8:100::"),
            prefix: 64,
            oif: UP,
            metric: 256,
        }];
        let mut out = Vec::new();
        for i in 0..2 {
            if !self.dev[i].alive {
                continue;
            }
            if self.dev[i].dp.forward(s, g, UP).is_none() {
                let now = self.clock(i);
                let mif = self.dev[i].node.fwd.mif_of(UP).unwrap();
                let outs = self.dev[i].node.nocache(now, s, g, mif, &routes);
                self.process(i, outs, Vec::new());
            }
            if self.dev[i]
                .dp
                .forward(s, g, UP)
                .is_some_and(|o| o.contains(&DOWN))
            {
                out.push(self.dev[i].name);
            }
        }
        out
    }

    /// The switchovers device `i` reported: (old role, new role, cause, group count).
    fn switchovers(&self, i: usize) -> Vec<(Role, Role, Cause, usize)> {
        self.dev[i]
            .notes
            .iter()
            .filter_map(|n| match n {
                Event::Switchover {
                    profile,
                    old_role,
                    new_role,
                    cause,
                    group_count,
                } => {
                    assert_eq!(profile, "rbp1");
                    Some((*old_role, *new_role, *cause, *group_count))
                }
                _ => None,
            })
            .collect()
    }

    /// The batch completions device `i` reported: the entries held each time.
    fn batches(&self, i: usize) -> Vec<usize> {
        self.dev[i]
            .notes
            .iter()
            .filter_map(|n| match n {
                Event::BatchSyncComplete { profile, entries } => {
                    assert_eq!(profile, "rbp1");
                    Some(*entries)
                }
                _ => None,
            })
            .collect()
    }
}

const S: &str = "2001:db8:100::10";

fn row(group: &str, origin: Origin, filter_left: Duration) -> Row {
    Row {
        group: a(group),
        origin,
        mode: FilterMode::Exclude,
        filter_left: Some(filter_left),
        sources: Vec::new(),
    }
}

fn with_origin(rows: &[Row], origin: Origin) -> Vec<Row> {
    rows.iter()
        .map(|r| Row {
            origin,
            ..r.clone()
        })
        .collect()
}

/// Master/backup with three groups joined at t = 1 s: two any-source, one source-specific.
fn mb_synced() -> World {
    let mut w = World::new(Mode::MasterBackup, LoadBalance::MasterOnly);
    w.pair();
    w.advance(at(1000));
    w.join(&[0, 1], "ff0e::1");
    w.join(&[0, 1], "ff0e::2");
    w.report(&[0, 1], RecordType::ModeIsInclude, "ff0e::3", &[S]);
    w
}

fn mb_rows(t: Time) -> Vec<Row> {
    let left = at(1000) + MALI - t;
    vec![
        row("ff0e::1", Origin::Local, left),
        row("ff0e::2", Origin::Local, left),
        Row {
            group: a("ff0e::3"),
            origin: Origin::Local,
            mode: FilterMode::Include,
            filter_left: None,
            sources: vec![(a(S), Some(left))],
        },
    ]
}

#[test]
fn master_backup_syncs_joins_and_leaves_to_a_silent_backup() {
    let mut w = mb_synced();
    w.advance(at(2000));
    assert_eq!(w.table(0), mb_rows(at(2000)));
    // The backup ignored the host and holds the master's entries with the same time left.
    assert_eq!(w.table(1), with_origin(&mb_rows(at(2000)), Origin::Peer));
    assert!(w.dev[1].general_queries.is_empty());
    assert_eq!(w.dev[1].node.running[IFACE].router.counters.v2_reports, 0);
    for g in ["ff0e::1", "ff0e::2", "ff0e::3"] {
        assert_eq!(w.forwarders(S, g), ["A"], "{g}");
    }
    assert_eq!(
        w.forwarders("2001:db8:100::99", "ff0e::3"),
        Vec::<&str>::new()
    );
    // The backup's entry is ready: listed on a MIF slot of the downstream link, bound parked.
    let (parent, oifs) = w.dev[1].dp.mfc[&(a(S), a("ff0e::1"))].clone();
    assert_eq!(w.dev[1].dp.mifs[&parent], UP);
    assert_eq!(
        oifs.iter().map(|m| w.dev[1].dp.mifs[m]).collect::<Vec<_>>(),
        [DOWN]
    );
    assert!(oifs.iter().all(|m| w.dev[1].dp.parked.contains(m)));
    // The host leaves ff0e::1: the master lowers it to LLQT (the backup follows), then drops it.
    w.advance(at(3000));
    w.report(&[0, 1], RecordType::ChangeToInclude, "ff0e::1", &[]);
    let mut rows = mb_rows(at(3000));
    rows[0].filter_left = Some(LLQT);
    assert_eq!(w.table(0), rows);
    assert_eq!(w.table(1), with_origin(&rows, Origin::Peer));
    w.advance(at(3000) + LLQT);
    let rows = mb_rows(at(3000) + LLQT)[1..].to_vec();
    assert_eq!(w.table(0), rows);
    assert_eq!(w.table(1), with_origin(&rows, Origin::Peer));
    assert_eq!(w.forwarders(S, "ff0e::1"), Vec::<&str>::new());
    let st = w.dev[1].hb.ctl.profile("rbp1").unwrap().state(w.clock(1));
    assert_eq!((st.local_entries, st.peer_entries), (0, 2));
}

#[test]
fn master_crash_backup_takes_over_at_once_with_the_same_timers() {
    let mut w = mb_synced();
    w.advance(at(10_000));
    for g in ["ff0e::1", "ff0e::2"] {
        assert_eq!(w.forwarders(S, g), ["A"]);
    }
    let before = w.dev[1].fwd_actions;
    w.crash(0);
    w.set_role(1, Role::Master, false);
    // One slot re-bound unparked, whatever the number of groups.
    assert_eq!(w.dev[1].fwd_actions - before, 1);
    assert_eq!(w.dev[1].general_queries, [at(10_000)]);
    assert_eq!(w.table(1), with_origin(&mb_rows(at(10_000)), Origin::Peer));
    for g in ["ff0e::1", "ff0e::2"] {
        assert_eq!(w.forwarders(S, g), ["B"]);
    }
    assert_eq!(w.forwarders(S, "ff0e::3"), ["B"]);
    assert_eq!(
        w.switchovers(1),
        [
            (Role::Initialize, Role::Backup, Cause::RoleSourceChange, 0),
            (Role::Backup, Role::Master, Cause::PeerFailure, 3),
        ]
    );
    // The host answers the query for ff0e::1 only: that entry becomes local; the others age
    // out exactly when the old master's timers said.
    w.advance(at(11_000));
    w.join(&[1], "ff0e::1");
    let mut rows = with_origin(&mb_rows(at(11_000)), Origin::Peer);
    rows[0] = row("ff0e::1", Origin::Local, MALI);
    assert_eq!(w.table(1), rows);
    w.advance(at(1000) + MALI - ms(1));
    assert_eq!(w.table(1).len(), 3);
    w.advance(at(1000) + MALI);
    assert_eq!(w.table(1), [row("ff0e::1", Origin::Local, ms(10_000))]);
    assert_eq!(w.forwarders(S, "ff0e::2"), Vec::<&str>::new());
}

#[test]
fn activation_work_does_not_grow_with_the_group_count() {
    let mut counts = Vec::new();
    for n in [2u32, 200] {
        let mut w = World::new(Mode::MasterBackup, LoadBalance::MasterOnly);
        w.pair();
        for k in 0..n {
            let g = format!("ff0e::1:{k:x}");
            w.join(&[0, 1], &g);
            assert_eq!(w.forwarders(S, &g), ["A"]);
        }
        assert_eq!(w.table(1).len(), n as usize);
        let before = w.dev[1].fwd_actions;
        w.crash(0);
        w.set_role(1, Role::Master, false);
        counts.push(w.dev[1].fwd_actions - before);
        for k in 0..n {
            assert_eq!(w.forwarders(S, &format!("ff0e::1:{k:x}")), ["B"]);
        }
    }
    assert_eq!(counts, [1, 1]);
}

#[test]
fn master_downstream_link_down_keeps_the_backups_entries() {
    let mut w = mb_synced();
    w.advance(at(10_000));
    w.downstream(0, false);
    w.set_role(0, Role::Initialize, true);
    // The backup's role source needs three advertisements to notice; nothing is lost meanwhile.
    w.advance(at(13_000));
    assert_eq!(w.table(1), with_origin(&mb_rows(at(13_000)), Origin::Peer));
    w.set_role(1, Role::Master, false);
    assert_eq!(w.dev[1].general_queries, [at(13_000)]);
    for g in ["ff0e::1", "ff0e::2", "ff0e::3"] {
        assert_eq!(w.forwarders(S, g), ["B"], "{g}");
    }
    assert_eq!(w.switchovers(0)[1].2, Cause::DownstreamLinkDown);
    assert_eq!(w.switchovers(1)[1].2, Cause::PeerFailure);
    // A's link returns: it is backup now and B's records fill it again.
    w.downstream(0, true);
    w.set_role(0, Role::Backup, true);
    w.set_role(1, Role::Master, true);
    w.advance(at(14_000));
    assert_eq!(w.table(0), with_origin(&mb_rows(at(14_000)), Origin::Peer));
    assert_eq!(w.forwarders(S, "ff0e::1"), ["B"]);
}

#[test]
fn rbs_loss_alone_keeps_roles_and_resyncs_on_return() {
    let mut w = mb_synced();
    w.advance(at(10_000));
    w.cut();
    assert!(w.dev[1].gate, "gate open while the channel is down");
    // Changes while the channel is down: a new group, a leave.
    w.join(&[0, 1], "ff0e::4");
    w.report(&[0, 1], RecordType::ChangeToInclude, "ff0e::1", &[]);
    w.advance(at(12_000) + LLQT);
    let a_rows = w.table(0);
    assert_eq!(
        a_rows.iter().map(|r| r.group).collect::<Vec<_>>(),
        [a("ff0e::2"), a("ff0e::3"), a("ff0e::4")]
    );
    assert_eq!(
        w.table(1),
        with_origin(&mb_rows(at(12_000) + LLQT), Origin::Peer)
    );
    for g in ["ff0e::2", "ff0e::4"] {
        assert_eq!(w.forwarders(S, g), ["A"]);
    }
    w.advance(at(20_000));
    w.connect();
    assert_eq!(w.table(1), with_origin(&w.table(0), Origin::Peer));
    assert_eq!(
        w.table(0)[2],
        row("ff0e::4", Origin::Local, MALI + ms(10_000) - ms(20_000))
    );
    assert_eq!(w.batches(1).last(), Some(&3));
    assert_eq!(w.switchovers(1).len(), 1, "roles unchanged");
    for g in ["ff0e::2", "ff0e::3", "ff0e::4"] {
        let s = if g == "ff0e::3" {
            S
        } else {
            "2001:db8:100::20"
        };
        assert_eq!(w.forwarders(s, g), ["A"]);
    }
}

/// A crashes, B takes over; A returns empty and, backup now, preempts once allowed.
fn switchback(batch_gap: Duration) -> (World, Time) {
    let mut w = mb_synced();
    w.preempt_delay = Some(ms(10_000));
    w.advance(at(5_000));
    w.crash(0);
    w.set_role(1, Role::Master, false);
    w.advance(at(30_000));
    w.boot(0);
    w.set_role(0, Role::Backup, true);
    w.set_role(1, Role::Master, true);
    w.link.batch_gap = batch_gap;
    w.connect();
    let mut preempted = None;
    let mut gate_closed_until = None;
    for t in 30_000..=60_000 {
        w.advance(at(t));
        if !w.dev[0].gate {
            gate_closed_until = Some(at(t + 1));
        }
        if preempted.is_none() && w.dev[0].role.role == Role::Master {
            preempted = Some(at(t));
            // Exactly one forwarder from the first instant.
            for g in ["ff0e::1", "ff0e::2"] {
                assert_eq!(w.forwarders(S, g), ["A"], "{g} at {t}");
            }
        }
    }
    if let Some(c) = gate_closed_until {
        assert_eq!(Some(c), preempted, "preempted when the gate opened");
    }
    (w, preempted.expect("A preempted"))
}

#[test]
fn switchback_waits_for_the_batch() {
    // Four records (three groups and the status) 6 s apart: the batch completes at 54 s,
    // after the 10 s delay (40 s).
    let (mut w, t) = switchback(ms(6_000));
    assert_eq!(t, at(54_000));
    assert_eq!(w.batches(0).len(), 1);
    assert_eq!(w.switchovers(0).last().unwrap().2, Cause::Preempt);
    assert_eq!(w.switchovers(1).last().unwrap().2, Cause::Preempt);
    assert_eq!(w.dev[0].general_queries[0], at(54_000));
    // A holds B's entries (learned from A before the crash) with the same time left.
    w.advance(at(60_000));
    assert_eq!(w.table(0), with_origin(&mb_rows(at(60_000)), Origin::Peer));
    assert_eq!(w.table(1), with_origin(&mb_rows(at(60_000)), Origin::Peer));
    for g in ["ff0e::1", "ff0e::2", "ff0e::3"] {
        assert_eq!(w.forwarders(S, g), ["A"]);
    }
}

#[test]
fn switchback_after_the_delay_when_the_batch_is_quick() {
    let (_, t) = switchback(Duration::ZERO);
    assert_eq!(t, at(40_000));
}

#[test]
fn switchback_with_the_channel_down_waits_for_the_delay_alone() {
    let mut w = mb_synced();
    w.preempt_delay = Some(ms(10_000));
    w.crash(0);
    w.set_role(1, Role::Master, false);
    w.advance(at(30_000));
    w.boot(0);
    w.set_role(0, Role::Backup, true);
    w.set_role(1, Role::Master, true);
    assert!(w.dev[0].gate);
    w.advance(at(39_999));
    assert_eq!(w.dev[0].role.role, Role::Backup);
    w.advance(at(40_000));
    assert_eq!(w.dev[0].role.role, Role::Master);
    assert!(w.table(0).is_empty());
}

/// Active-active: 32 groups, each reported to one device only (the aggregation hashes the
/// hosts' reports), so the channel gives each device the union.
fn aa(lb: LoadBalance) -> (World, Vec<String>) {
    let mut w = World::new(Mode::ActiveActive, lb);
    w.pair();
    w.advance(at(1000));
    let groups: Vec<String> = (0..32).map(|k| format!("ff0e::{:x}", 0x100 + k)).collect();
    for (k, g) in groups.iter().enumerate() {
        w.join(&[k % 2], g);
    }
    (w, groups)
}

#[test]
fn active_active_syncs_both_ways_and_splits_the_load() {
    let (mut w, groups) = aa(LoadBalance::GroupHash);
    w.advance(at(2000));
    let expect = |me: usize| -> Vec<Row> {
        groups
            .iter()
            .enumerate()
            .map(|(k, g)| {
                let origin = if k % 2 == me {
                    Origin::Local
                } else {
                    Origin::Peer
                };
                row(g, origin, MALI + ms(1000) - ms(2000))
            })
            .collect()
    };
    let sorted = |mut v: Vec<Row>| {
        v.sort_by_key(|r| r.group);
        v
    };
    assert_eq!(w.table(0), sorted(expect(0)));
    assert_eq!(w.table(1), sorted(expect(1)));
    let mut per = BTreeMap::new();
    for g in &groups {
        let f = w.forwarders(S, g);
        assert_eq!(f.len(), 1, "{g}: {f:?}");
        let owner = ["A", "B"][bucket(LoadBalance::GroupHash, &a(g), &a(S))];
        assert_eq!(f[0], owner, "{g}");
        *per.entry(f[0]).or_insert(0) += 1;
    }
    assert_eq!(per.len(), 2, "both devices forward: {per:?}");
    assert_eq!(own_bucket(&a("2001:db8:10::1"), &a("2001:db8:10::2")), 0);
    // A leave on B's side removes the group on both.
    let g = &groups[1];
    w.report(&[1], RecordType::ChangeToInclude, g, &[]);
    w.advance(at(2000) + LLQT);
    assert!(w.table(0).iter().all(|r| r.group != a(g)));
    assert!(w.table(1).iter().all(|r| r.group != a(g)));
}

#[test]
fn active_active_source_group_hash_splits_sources_of_one_group() {
    let mut w = World::new(Mode::ActiveActive, LoadBalance::SourceGroupHash);
    w.pair();
    w.join(&[0, 1], "ff0e::7");
    let mut per = BTreeMap::new();
    for k in 1..=16 {
        let s = format!("2001:db8:100::{k:x}");
        let f = w.forwarders(&s, "ff0e::7");
        assert_eq!(f.len(), 1, "{s}: {f:?}");
        let owner = ["A", "B"][bucket(LoadBalance::SourceGroupHash, &a("ff0e::7"), &a(&s))];
        assert_eq!(f[0], owner);
        *per.entry(f[0]).or_insert(0) += 1;
    }
    assert_eq!(per.len(), 2, "{per:?}");
}

#[test]
fn active_active_master_only_forwards_on_the_master() {
    let (mut w, groups) = aa(LoadBalance::MasterOnly);
    for g in &groups {
        assert_eq!(w.forwarders(S, g), ["A"]);
    }
    assert_eq!(w.table(1).len(), 32);
}

#[test]
fn active_active_survivor_forwards_everything() {
    let (mut w, groups) = aa(LoadBalance::GroupHash);
    for g in &groups {
        assert_eq!(w.forwarders(S, g).len(), 1);
    }
    w.advance(at(5000));
    w.crash(0);
    w.set_role(1, Role::Master, false);
    for g in &groups {
        assert_eq!(w.forwarders(S, g), ["B"], "{g}");
    }
    // The entries A had learned stay on B as peer entries with A's timers.
    assert_eq!(w.table(1).len(), 32);
    assert!(w
        .table(1)
        .iter()
        .all(|r| r.filter_left == Some(MALI + ms(1000) - ms(5000))));
    // A returns empty: B's batch brings every entry, A's own included, and A's bucket goes
    // back to A.
    let group_records = w.link.tables[1]
        .keys()
        .filter(|k| k.as_slice() != super::controller::STATUS_KEY)
        .count();
    assert_eq!(group_records, 32, "B sends the adopted entries");
    w.boot(0);
    w.set_role(0, Role::Backup, true);
    w.set_role(1, Role::Master, true);
    w.connect();
    assert_eq!(w.table(0).len(), 32);
    for g in &groups {
        let owner = ["A", "B"][bucket(LoadBalance::GroupHash, &a(g), &a(S))];
        assert_eq!(w.forwarders(S, g), [owner], "{g}");
    }
}

#[test]
fn active_active_link_down_peer_takes_over_the_share() {
    let (mut w, groups) = aa(LoadBalance::GroupHash);
    w.downstream(0, false);
    w.set_role(0, Role::Initialize, true);
    w.set_role(1, Role::Master, false);
    // A's word that it no longer serves the segment crosses the channel.
    w.deliver();
    for g in &groups {
        assert_eq!(w.forwarders(S, g), ["B"], "{g}");
    }
}

#[test]
fn active_active_rbs_loss_keeps_each_share() {
    let (mut w, groups) = aa(LoadBalance::GroupHash);
    w.advance(at(3000));
    w.cut();
    // Hosts on the shared LAN reach both devices; each keeps forwarding its own bucket.
    w.join(&[0, 1], "ff0e::9999");
    for g in groups.iter().map(String::as_str).chain(["ff0e::9999"]) {
        let owner = ["A", "B"][bucket(LoadBalance::GroupHash, &a(g), &a(S))];
        assert_eq!(w.forwarders(S, g), [owner], "{g}");
    }
    // A group reported to A alone while the channel is down reaches B on resync.
    w.join(&[0], "ff0e::aaaa");
    assert!(w.table(1).iter().all(|r| r.group != a("ff0e::aaaa")));
    w.advance(at(4000));
    w.connect();
    let b = w.table(1);
    let got = b.iter().find(|r| r.group == a("ff0e::aaaa")).unwrap();
    assert_eq!(got, &row("ff0e::aaaa", Origin::Peer, MALI - ms(1000)));
    assert_eq!(b.len(), 34);
    assert_eq!(w.table(0).len(), 34);
}

#[test]
fn active_active_vrrp_master_relies_on_the_peers_word() {
    let (mut w, groups) = aa(LoadBalance::GroupHash);
    // A VRRP6 master never hears its backup: its role source cannot tell that B is there.
    w.set_role(0, Role::Master, false);
    w.deliver();
    for g in &groups {
        let owner = ["A", "B"][bucket(LoadBalance::GroupHash, &a(g), &a(S))];
        assert_eq!(w.forwarders(S, g), [owner], "B says it serves: {g}");
    }
    // Without the channel nothing tells A that B is there: A forwards every group rather
    // than risk none.
    w.cut();
    for g in &groups {
        assert!(w.forwarders(S, g).contains(&"A"), "{g}");
    }
}
