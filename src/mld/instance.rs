//! The MLD router on one interface (RFC 3810 §6-§8, RFC 2710 compatibility), sans-IO: inputs
//! and a caller-supplied clock in, actions out; it never reads a clock or touches a socket.

use super::packet::{Message, Query, QueryV2, Record, RecordType};
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::time::Duration;

/// The all-nodes address general queries go to.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Protocol parameters (RFC 3810 §9) with the vendor defaults of DESIGN.md §1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub version: u8,
    pub robustness: u8,
    pub query_interval_s: u32,
    pub max_response_s: u32,
    pub last_listener_interval_s: u32,
    /// None: computed as robustness × query interval + max response / 2.
    pub other_querier_present_s: Option<u32>,
    /// Groups beyond this many learned entries are dropped and counted.
    pub max_entries: Option<usize>,
    pub static_groups: Vec<(Ipv6Addr, Option<Ipv6Addr>)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: 2,
            robustness: 2,
            query_interval_s: 125,
            max_response_s: 10,
            last_listener_interval_s: 1,
            other_querier_present_s: None,
            max_entries: None,
            static_groups: Vec::new(),
        }
    }
}

impl Config {
    fn qi(&self) -> Duration {
        Duration::from_secs(self.query_interval_s.into())
    }
    fn qri(&self) -> Duration {
        Duration::from_secs(self.max_response_s.into())
    }
    /// Multicast Address Listening Interval.
    pub fn mali(&self) -> Duration {
        self.qi() * self.robustness.into() + self.qri()
    }
    pub fn llqi(&self) -> Duration {
        Duration::from_secs(self.last_listener_interval_s.into())
    }
    /// Last Listener Query Time: LLQI × LLQC, with LLQC = robustness.
    pub fn llqt(&self) -> Duration {
        self.llqi() * self.robustness.into()
    }
    pub fn other_querier_present(&self) -> Duration {
        match self.other_querier_present_s {
            Some(s) => Duration::from_secs(s.into()),
            None => self.qi() * self.robustness.into() + self.qri() / 2,
        }
    }
    /// Startup query interval: a quarter of the query interval (at least a millisecond).
    pub fn startup_interval(&self) -> Duration {
        (self.qi() / 4).max(Duration::from_millis(1))
    }
}

/// Router filter mode of a group (RFC 3810 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterMode {
    Include,
    Exclude,
}

/// Where a group entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Local,
    Static,
    Peer,
}

/// A group's state: in INCLUDE every source has a running timer; in EXCLUDE sources with a
/// running timer are the requested set X and sources without one (timer zero) the excluded Y.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub mode: FilterMode,
    pub filter_timer: Option<Time>,
    pub sources: BTreeMap<Ipv6Addr, Option<Time>>,
    /// Older Version Host Present timer (RFC 3810 §8.3.2).
    pub v1_host_until: Option<Time>,
    pub origin: Origin,
    pub last_reporter: Option<Ipv6Addr>,
    pub since: Time,
}

impl Group {
    fn new(now: Time, origin: Origin) -> Group {
        Group {
            mode: FilterMode::Include,
            filter_timer: None,
            sources: BTreeMap::new(),
            v1_host_until: None,
            origin,
            last_reporter: None,
            since: now,
        }
    }

    fn running(&self, now: Time) -> BTreeSet<Ipv6Addr> {
        self.sources
            .iter()
            .filter(|(_, t)| t.is_some_and(|t| t > now))
            .map(|(s, _)| *s)
            .collect()
    }

    fn stopped(&self, now: Time) -> BTreeSet<Ipv6Addr> {
        self.sources
            .iter()
            .filter(|(_, t)| t.is_none_or(|t| t <= now))
            .map(|(s, _)| *s)
            .collect()
    }

    /// Whether any timer keeping the entry alive still runs at `now`.
    pub fn live(&self, now: Time) -> bool {
        let running = self.sources.values().any(|t| t.is_some_and(|t| t > now));
        match self.mode {
            FilterMode::Include => running,
            FilterMode::Exclude => self.filter_timer.is_some_and(|t| t > now) || running,
        }
    }

    /// Whether traffic from `source` is wanted on this link.
    pub fn forwards(&self, source: &Ipv6Addr, now: Time) -> bool {
        match self.mode {
            // A static (S,G) has a source without a timer.
            FilterMode::Include => self
                .sources
                .get(source)
                .is_some_and(|t| t.is_none_or(|t| t > now)),
            FilterMode::Exclude => !self.stopped(now).contains(source),
        }
    }
}

/// Inputs to the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A received, already validated MLD message and its link-local source.
    Received { from: Ipv6Addr, msg: Message },
    /// The clock reached a deadline.
    Tick,
}

/// What the router asks its driver to do or tells the rest of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send {
        dst: Ipv6Addr,
        msg: Message,
    },
    /// A group's state changed (created or updated).
    GroupUpdated(Ipv6Addr),
    GroupRemoved(Ipv6Addr),
    QuerierChanged {
        querier: bool,
    },
}

/// Counters of received messages and drops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub queries_sent: u64,
    pub queries_received: u64,
    pub v1_reports: u64,
    pub v2_reports: u64,
    pub dones: u64,
    pub limit_exceeded: u64,
    pub errors: ErrorCounters,
}

/// Received messages dropped by the receive rules, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorCounters {
    pub checksum: u64,
    pub hop_limit: u64,
    pub no_router_alert: u64,
    pub bad_source: u64,
    pub too_short: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingQuery {
    group: Ipv6Addr,
    sources: Vec<Ipv6Addr>,
    left: u8,
    next: Time,
}

/// The MLD router on one interface.
#[derive(Debug, Clone)]
pub struct Router {
    pub cfg: Config,
    pub own: Ipv6Addr,
    pub querier: bool,
    pub other_querier: Option<(Ipv6Addr, Time)>,
    pub groups: BTreeMap<Ipv6Addr, Group>,
    pub counters: Counters,
    /// Silent: no queries sent, host reports and queries ignored; learned and peer entries
    /// keep aging. The hot-backup standby state of a master/backup pair's backup.
    pub silent: bool,
    startup_left: u8,
    next_general: Time,
    pending: Vec<PendingQuery>,
    /// A lower bound of every group and source timer (None: none runs), so that receiving a
    /// report and finding the next deadline cost what the report touches, not the table size.
    group_deadline: Option<Time>,
}

fn src_set(v: &[Ipv6Addr]) -> BTreeSet<Ipv6Addr> {
    v.iter().copied().collect()
}

impl Router {
    /// A router that starts as querier and sends its startup queries from `now`.
    pub fn new(cfg: Config, own: Ipv6Addr, now: Time) -> Router {
        let mut r = Router {
            startup_left: cfg.robustness,
            cfg,
            own,
            querier: true,
            other_querier: None,
            groups: BTreeMap::new(),
            counters: Counters::default(),
            silent: false,
            next_general: now,
            pending: Vec::new(),
            group_deadline: None,
        };
        let cfg = std::mem::take(&mut r.cfg.static_groups);
        let full = Config {
            static_groups: cfg,
            ..r.cfg.clone()
        };
        r.reconfigure(full, now);
        r
    }

    /// Applies new parameters without losing learned state: static groups are added and
    /// removed to match, the next general query follows the new interval.
    pub fn reconfigure(&mut self, cfg: Config, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        let old: BTreeSet<_> = self.cfg.static_groups.iter().map(|x| x.0).collect();
        let new: BTreeSet<_> = cfg.static_groups.iter().map(|x| x.0).collect();
        for g in old.difference(&new) {
            if self
                .groups
                .get(g)
                .is_some_and(|x| x.origin == Origin::Static)
            {
                self.groups.remove(g);
                out.push(Action::GroupRemoved(*g));
            }
        }
        for g in &new {
            let mut grp = Group::new(now, Origin::Static);
            for (_, s) in cfg.static_groups.iter().filter(|x| x.0 == *g) {
                match s {
                    Some(s) => {
                        grp.sources.insert(*s, None);
                    }
                    None => grp.mode = FilterMode::Exclude,
                }
            }
            if grp.mode == FilterMode::Exclude {
                grp.sources.clear();
            }
            let same = self.groups.get(g).is_some_and(|x| {
                x.origin == Origin::Static && x.mode == grp.mode && x.sources == grp.sources
            });
            if !same {
                if let Some(prev) = self.groups.get(g) {
                    grp.since = prev.since;
                }
                self.groups.insert(*g, grp);
                out.push(Action::GroupUpdated(*g));
            }
        }
        if self.cfg.query_interval_s != cfg.query_interval_s && self.querier {
            let next = now + Duration::from_secs(cfg.query_interval_s.into());
            self.next_general = self.next_general.min(next);
        }
        self.cfg = cfg;
        out
    }

    /// The earliest time the router needs a `Tick`.
    pub fn next_deadline(&self) -> Option<Time> {
        let mut d: Option<Time> = None;
        let mut take = |t: Time| d = Some(d.map_or(t, |x| x.min(t)));
        if self.querier {
            take(self.next_general);
        }
        if let Some((_, t)) = self.other_querier {
            take(t);
        }
        for p in &self.pending {
            take(p.next);
        }
        if let Some(t) = self.group_deadline {
            take(t);
        }
        d
    }

    /// Recomputes the group timer bound; call after changing `groups` from outside.
    pub fn refresh_deadlines(&mut self) {
        self.group_deadline = self.groups.values().filter_map(group_min).min();
    }

    fn note_group(&mut self, group: &Ipv6Addr) {
        if let Some(t) = self.groups.get(group).and_then(group_min) {
            self.group_deadline = Some(self.group_deadline.map_or(t, |d| d.min(t)));
        }
    }

    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Tick => self.expire(now, &mut out),
            Input::Received { .. } if self.silent => {}
            Input::Received { from, msg } => match msg {
                Message::Query(q) => {
                    self.on_query(now, from, &q, &mut out);
                    self.note_group(&q.group);
                }
                Message::V1Report { group } => {
                    self.counters.v1_reports += 1;
                    self.on_v1(now, from, group, RecordType::ModeIsExclude, &mut out);
                    self.note_group(&group);
                }
                Message::V1Done { group } => {
                    self.counters.dones += 1;
                    self.on_v1(now, from, group, RecordType::ChangeToInclude, &mut out);
                    self.note_group(&group);
                }
                Message::V2Report { records } => {
                    self.counters.v2_reports += 1;
                    // RFC 3810 §8.2: a router configured for MLDv1 ignores MLDv2 reports.
                    let records = if self.cfg.version < 2 {
                        Vec::new()
                    } else {
                        records
                    };
                    for r in records {
                        self.on_record(now, from, &r, &mut out);
                        self.note_group(&r.group);
                    }
                }
            },
        }
        self.expire(now, &mut out);
        out
    }

    /// Stops acting as MLD router: no queries from now on, received messages ignored; the
    /// group table stays and keeps aging.
    pub fn set_silent(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.silent {
            return out;
        }
        self.silent = true;
        self.pending.clear();
        self.other_querier = None;
        if self.querier {
            self.querier = false;
            out.push(Action::QuerierChanged { querier: false });
        }
        out
    }

    /// Acts as MLD router again and takes over as querier at once: a general query goes out
    /// now (then the startup queries), without waiting for another querier to time out.
    pub fn activate(&mut self, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.silent {
            return out;
        }
        self.silent = false;
        self.querier = true;
        self.other_querier = None;
        self.next_general = now;
        self.startup_left = self.cfg.robustness;
        out.push(Action::QuerierChanged { querier: true });
        self.expire(now, &mut out);
        out
    }

    /// Installs a group entry learned from the peer device, with its remaining timers
    /// already on this clock; it ages like a learned entry, and a local report for it turns
    /// it into a local entry. A static entry is never replaced; a local one only with
    /// `replace_local` (the backup of a master/backup pair, whose own entries are stale).
    /// An entry whose timers have all run out is not installed.
    pub fn install_peer(
        &mut self,
        now: Time,
        group: Ipv6Addr,
        mut entry: Group,
        replace_local: bool,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if !forwardable(&group) {
            return out;
        }
        match self.groups.get(&group).map(|g| g.origin) {
            Some(Origin::Static) => return out,
            Some(Origin::Local) if !replace_local => return out,
            _ => {}
        }
        if !entry.live(now) {
            return self.remove_peer(group, replace_local);
        }
        entry.origin = Origin::Peer;
        if let Some(prev) = self.groups.get(&group) {
            entry.since = prev.since;
            if *prev == entry {
                return out;
            }
        } else {
            entry.since = now;
        }
        self.groups.insert(group, entry);
        self.note_group(&group);
        out.push(Action::GroupUpdated(group));
        out
    }

    /// Removes a peer entry (and a local one too with `replace_local`); static entries stay.
    pub fn remove_peer(&mut self, group: Ipv6Addr, replace_local: bool) -> Vec<Action> {
        let removable = self.groups.get(&group).is_some_and(|g| {
            g.origin == Origin::Peer || (replace_local && g.origin == Origin::Local)
        });
        if !removable {
            return Vec::new();
        }
        self.groups.remove(&group);
        vec![Action::GroupRemoved(group)]
    }

    fn general_query(&self) -> Message {
        Message::Query(Query {
            max_response_ms: self.cfg.max_response_s * 1000,
            group: Ipv6Addr::UNSPECIFIED,
            v2: (self.cfg.version >= 2).then(|| QueryV2 {
                suppress_router_side: false,
                qrv: self.cfg.robustness,
                qqi_s: self.cfg.query_interval_s,
                sources: Vec::new(),
            }),
        })
    }

    fn specific_query(&self, group: Ipv6Addr, sources: Vec<Ipv6Addr>) -> Message {
        let v2 = if self.cfg.version >= 2 {
            Some(QueryV2 {
                suppress_router_side: false,
                qrv: self.cfg.robustness,
                qqi_s: self.cfg.query_interval_s,
                sources,
            })
        } else {
            None
        };
        Message::Query(Query {
            max_response_ms: self.cfg.last_listener_interval_s * 1000,
            group,
            v2,
        })
    }

    fn expire(&mut self, now: Time, out: &mut Vec<Action>) {
        if let Some((_, t)) = self.other_querier {
            if t <= now {
                self.other_querier = None;
                self.querier = true;
                self.next_general = now;
                out.push(Action::QuerierChanged { querier: true });
            }
        }
        if self.querier && self.next_general <= now {
            out.push(Action::Send {
                dst: ALL_NODES,
                msg: self.general_query(),
            });
            self.counters.queries_sent += 1;
            let interval = if self.startup_left > 1 {
                self.startup_left -= 1;
                self.cfg.startup_interval()
            } else {
                self.startup_left = 0;
                self.cfg.qi()
            };
            self.next_general = now + interval;
        }
        let mut due = Vec::new();
        for p in &mut self.pending {
            if p.next <= now {
                due.push((p.group, p.sources.clone()));
                p.left -= 1;
                p.next = now + self.cfg.llqi();
            }
        }
        self.pending.retain(|p| p.left > 0);
        for (g, s) in due {
            if self.querier {
                let msg = self.specific_query(g, s);
                out.push(Action::Send { dst: g, msg });
                self.counters.queries_sent += 1;
            }
        }
        if self.group_deadline.is_none_or(|t| t > now) {
            return;
        }
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        for (addr, g) in self.groups.iter_mut() {
            if g.origin == Origin::Static {
                continue;
            }
            let before = g.clone();
            if g.v1_host_until.is_some_and(|t| t <= now) {
                g.v1_host_until = None;
            }
            match g.mode {
                FilterMode::Include => {
                    g.sources.retain(|_, t| t.is_some_and(|t| t > now));
                    if g.sources.is_empty() {
                        removed.push(*addr);
                        continue;
                    }
                }
                FilterMode::Exclude => {
                    // A requested source whose timer ran out is excluded from now on.
                    for t in g.sources.values_mut() {
                        if t.is_some_and(|x| x <= now) {
                            *t = None;
                        }
                    }
                    if g.filter_timer.is_some_and(|t| t <= now) {
                        // §7.5: to INCLUDE with the sources still requested, or gone.
                        g.sources.retain(|_, t| t.is_some_and(|t| t > now));
                        g.mode = FilterMode::Include;
                        g.filter_timer = None;
                        if g.sources.is_empty() {
                            removed.push(*addr);
                            continue;
                        }
                    }
                }
            }
            if *g != before {
                changed.push(*addr);
            }
        }
        for a in removed {
            self.groups.remove(&a);
            out.push(Action::GroupRemoved(a));
        }
        out.extend(changed.into_iter().map(Action::GroupUpdated));
        self.refresh_deadlines();
    }

    fn on_query(&mut self, now: Time, from: Ipv6Addr, q: &Query, out: &mut Vec<Action>) {
        self.counters.queries_received += 1;
        // §7.6.2: the lowest address is querier.
        if from < self.own {
            if self.querier {
                self.querier = false;
                out.push(Action::QuerierChanged { querier: false });
            }
            self.other_querier = Some((from, now + self.cfg.other_querier_present()));
        }
        // §7.6.1: a specific query without the S flag lowers timers to LLQT.
        let suppress = q.v2.as_ref().is_some_and(|v| v.suppress_router_side);
        if q.group.is_unspecified() || suppress || self.querier {
            return;
        }
        let sources =
            q.v2.as_ref()
                .map(|v| v.sources.as_slice())
                .unwrap_or_default();
        if self.lower_to_llqt(now, q.group, sources) {
            out.push(Action::GroupUpdated(q.group));
        }
    }

    /// Lowers the group timer (no sources) or the named sources' timers to LLQT when they
    /// run longer: what a group-specific query sent or heard does (RFC 3810 §7.6).
    /// True when a timer was lowered.
    fn lower_to_llqt(&mut self, now: Time, group: Ipv6Addr, sources: &[Ipv6Addr]) -> bool {
        let llqt = now + self.cfg.llqt();
        let Some(g) = self.groups.get_mut(&group) else {
            return false;
        };
        let mut lowered = false;
        if sources.is_empty() {
            if g.filter_timer.is_some_and(|t| t > llqt) {
                g.filter_timer = Some(llqt);
                lowered = true;
            }
            return lowered;
        }
        for s in sources {
            if let Some(t) = g.sources.get_mut(s) {
                if t.is_some_and(|x| x > llqt) {
                    *t = Some(llqt);
                    lowered = true;
                }
            }
        }
        lowered
    }

    fn on_v1(
        &mut self,
        now: Time,
        from: Ipv6Addr,
        group: Ipv6Addr,
        kind: RecordType,
        out: &mut Vec<Action>,
    ) {
        let rec = Record {
            kind,
            group,
            sources: Vec::new(),
            aux: Vec::new(),
        };
        // §8.3.2: an MLDv1 report starts (or restarts) the older-version host present timer.
        let mali = now + self.cfg.mali();
        let v1_report = kind == RecordType::ModeIsExclude;
        self.on_record(now, from, &rec, out);
        if v1_report {
            if let Some(g) = self.groups.get_mut(&group) {
                g.v1_host_until = Some(mali);
            }
        }
    }

    /// Sends Q(MA) or Q(MA, sources) LLQC times and lowers the timers it asks about.
    fn schedule_query(&mut self, now: Time, group: Ipv6Addr, sources: Vec<Ipv6Addr>) {
        if !self.querier {
            return;
        }
        self.lower_to_llqt(now, group, &sources);
        self.pending
            .retain(|p| !(p.group == group && p.sources == sources));
        self.pending.push(PendingQuery {
            group,
            sources,
            left: self.cfg.robustness,
            next: now,
        });
    }

    /// Applies one group record: the tables of RFC 3810 §7.4.1 and §7.4.2.
    fn on_record(&mut self, now: Time, from: Ipv6Addr, r: &Record, out: &mut Vec<Action>) {
        let group = r.group;
        if !forwardable(&group) {
            return;
        }
        let mali = now + self.cfg.mali();
        let exists = self.groups.contains_key(&group);
        if !exists {
            // Leaving records for an unknown group change nothing.
            if matches!(
                r.kind,
                RecordType::ChangeToInclude
                    | RecordType::ModeIsInclude
                    | RecordType::BlockOldSources
            ) && r.sources.is_empty()
            {
                return;
            }
            if let Some(limit) = self.cfg.max_entries {
                // Every configured static group is in the table; the rest were learned.
                let statics: BTreeSet<_> = self.cfg.static_groups.iter().map(|x| x.0).collect();
                let learned = self.groups.len().saturating_sub(statics.len());
                if learned >= limit {
                    self.counters.limit_exceeded += 1;
                    return;
                }
            }
            self.groups.insert(group, Group::new(now, Origin::Local));
        }
        let g = self.groups.get_mut(&group).expect("inserted above");
        if g.origin == Origin::Static {
            return;
        }
        let before = g.clone();
        g.last_reporter = Some(from);
        if g.origin == Origin::Peer {
            g.origin = Origin::Local;
        }
        // §8.3.2: in MLDv1 compatibility mode BLOCK is ignored and TO_EX(x) is TO_EX({}).
        let compat = g.v1_host_until.is_some_and(|t| t > now);
        let kind = r.kind;
        let mut b = src_set(&r.sources);
        if compat {
            match kind {
                RecordType::BlockOldSources => return,
                RecordType::ChangeToExclude => b.clear(),
                _ => {}
            }
        }
        let mut queries: Vec<Vec<Ipv6Addr>> = Vec::new();
        let mut query_group = false;
        match (g.mode, kind) {
            // INCLUDE (A) + IS_IN (B) / ALLOW (B) -> INCLUDE (A+B); (B)=MALI
            (FilterMode::Include, RecordType::ModeIsInclude | RecordType::AllowNewSources) => {
                for s in &b {
                    g.sources.insert(*s, Some(mali));
                }
            }
            // INCLUDE (A) + IS_EX (B) -> EXCLUDE (A*B, B-A); (B-A)=0; Delete (A-B); FT=MALI
            // INCLUDE (A) + TO_EX (B) -> same, and Send Q(MA,A*B)
            (FilterMode::Include, RecordType::ModeIsExclude | RecordType::ChangeToExclude) => {
                let a: BTreeSet<Ipv6Addr> = g.sources.keys().copied().collect();
                g.sources.retain(|s, _| b.contains(s));
                for s in b.difference(&a) {
                    g.sources.insert(*s, None);
                }
                g.mode = FilterMode::Exclude;
                g.filter_timer = Some(mali);
                if kind == RecordType::ChangeToExclude {
                    let ab: Vec<_> = a.intersection(&b).copied().collect();
                    if !ab.is_empty() {
                        queries.push(ab);
                    }
                }
            }
            // INCLUDE (A) + BLOCK (B) -> INCLUDE (A); Send Q(MA,A*B)
            (FilterMode::Include, RecordType::BlockOldSources) => {
                let ab: Vec<_> = b
                    .iter()
                    .filter(|s| g.sources.contains_key(s))
                    .copied()
                    .collect();
                if !ab.is_empty() {
                    queries.push(ab);
                }
            }
            // INCLUDE (A) + TO_IN (B) -> INCLUDE (A+B); (B)=MALI; Send Q(MA,A-B)
            (FilterMode::Include, RecordType::ChangeToInclude) => {
                let a_minus_b: Vec<_> = g
                    .sources
                    .keys()
                    .filter(|s| !b.contains(s))
                    .copied()
                    .collect();
                for s in &b {
                    g.sources.insert(*s, Some(mali));
                }
                if !a_minus_b.is_empty() {
                    queries.push(a_minus_b);
                }
            }
            // EXCLUDE (X,Y) + IS_IN (A) / ALLOW (A) -> EXCLUDE (X+A, Y-A); (A)=MALI
            (FilterMode::Exclude, RecordType::ModeIsInclude | RecordType::AllowNewSources) => {
                for s in &b {
                    g.sources.insert(*s, Some(mali));
                }
            }
            // EXCLUDE (X,Y) + IS_EX (A) -> EXCLUDE (A-Y, Y*A); (A-X-Y)=MALI; Delete (X-A),
            // Delete (Y-A); FT=MALI
            // EXCLUDE (X,Y) + TO_EX (A) -> EXCLUDE (A-Y, Y*A); (A-X-Y)=FT; Delete (X-A),
            // Delete (Y-A); Send Q(MA,A-Y); FT=MALI
            (FilterMode::Exclude, RecordType::ModeIsExclude | RecordType::ChangeToExclude) => {
                let ft = g.filter_timer;
                let y = g.stopped(now);
                g.sources.retain(|s, _| b.contains(s));
                for s in &b {
                    if !g.sources.contains_key(s) {
                        let t = if kind == RecordType::ModeIsExclude {
                            Some(mali)
                        } else {
                            ft
                        };
                        g.sources.insert(*s, t);
                    }
                }
                g.filter_timer = Some(mali);
                if kind == RecordType::ChangeToExclude {
                    let a_minus_y: Vec<_> = b.difference(&y).copied().collect();
                    if !a_minus_y.is_empty() {
                        queries.push(a_minus_y);
                    }
                }
            }
            // EXCLUDE (X,Y) + BLOCK (A) -> EXCLUDE (X+(A-Y), Y); (A-X-Y)=FT; Send Q(MA,A-Y)
            (FilterMode::Exclude, RecordType::BlockOldSources) => {
                let ft = g.filter_timer;
                let y = g.stopped(now);
                for s in &b {
                    g.sources.entry(*s).or_insert(ft);
                }
                let a_minus_y: Vec<_> = b.difference(&y).copied().collect();
                if !a_minus_y.is_empty() {
                    queries.push(a_minus_y);
                }
            }
            // EXCLUDE (X,Y) + TO_IN (A) -> EXCLUDE (X+A, Y-A); (A)=MALI; Send Q(MA,X-A);
            // Send Q(MA)
            (FilterMode::Exclude, RecordType::ChangeToInclude) => {
                let x = g.running(now);
                for s in &b {
                    g.sources.insert(*s, Some(mali));
                }
                let x_minus_a: Vec<_> = x.difference(&b).copied().collect();
                if !x_minus_a.is_empty() {
                    queries.push(x_minus_a);
                }
                query_group = true;
            }
        }
        for q in queries {
            self.schedule_query(now, group, q);
        }
        if query_group {
            self.schedule_query(now, group, Vec::new());
        }
        // Compared after the queries, which lower timers: a backup copy must follow that too.
        let changed = self.groups.get(&group).is_some_and(|g| *g != before);
        if changed || !exists {
            out.push(Action::GroupUpdated(group));
        }
    }
}

/// The earliest timer of a learned group.
fn group_min(g: &Group) -> Option<Time> {
    if g.origin == Origin::Static {
        return None;
    }
    g.sources
        .values()
        .flatten()
        .chain(g.filter_timer.iter())
        .chain(g.v1_host_until.iter())
        .min()
        .copied()
}

/// Solicited-node and link-scope groups are never forwarded, so never tracked.
pub use crate::forwarding::forwardable;

#[cfg(test)]
mod tests {
    //! One test per row of the RFC 3810 §7.4 tables (named after the row), plus §7.5 mode
    //! switching, §7.6 querier election, §8.3.2 MLDv1 compatibility and the limits.
    use super::*;

    const MALI: Duration = Duration::from_secs(260); // 2 × 125 s + 10 s
    const LLQT: Duration = Duration::from_secs(2); // 1 s × 2
    const LLQI: Duration = Duration::from_secs(1);

    /// The instant `ms` milliseconds after the clock's zero.
    fn at(ms: u64) -> Time {
        Time::from_millis(ms)
    }

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    fn g() -> Ipv6Addr {
        a("ff05::100")
    }
    fn host() -> Ipv6Addr {
        a("fe80::10")
    }

    /// A querier router that has sent its first startup query at t=0.
    fn router() -> Router {
        let mut r = Router::new(Config::default(), a("fe80::2"), Time::ZERO);
        r.handle(at(0), Input::Tick);
        r
    }

    fn report(r: &mut Router, now: Time, kind: RecordType, sources: &[&str]) -> Vec<Action> {
        let rec = Record {
            kind,
            group: g(),
            sources: sources.iter().map(|s| a(s)).collect(),
            aux: vec![],
        };
        r.handle(
            now,
            Input::Received {
                from: host(),
                msg: Message::V2Report { records: vec![rec] },
            },
        )
    }

    type Sources = Vec<(Ipv6Addr, Option<Time>)>;

    /// (mode, filter timer, [(source, timer)]) of the test group.
    fn state(r: &Router) -> (FilterMode, Option<Time>, Sources) {
        let grp = &r.groups[&g()];
        (
            grp.mode,
            grp.filter_timer,
            grp.sources.iter().map(|(s, t)| (*s, *t)).collect(),
        )
    }

    fn queries(actions: &[Action]) -> Vec<(Ipv6Addr, Vec<Ipv6Addr>)> {
        actions
            .iter()
            .filter_map(|x| match x {
                Action::Send {
                    msg: Message::Query(q),
                    ..
                } if !q.group.is_unspecified() => Some((
                    q.group,
                    q.v2.as_ref().map(|v| v.sources.clone()).unwrap_or_default(),
                )),
                _ => None,
            })
            .collect()
    }

    /// EXCLUDE (X={s1}, Y={s2}) at t=1000.
    fn exclude_x1_y2(r: &mut Router) {
        report(r, at(0), RecordType::ModeIsInclude, &["2001:db8::1"]);
        report(
            r,
            at(1000),
            RecordType::ModeIsExclude,
            &["2001:db8::1", "2001:db8::2"],
        );
        let (m, ft, src) = state(r);
        assert_eq!(m, FilterMode::Exclude);
        assert_eq!(ft, Some(at(1000) + MALI));
        assert_eq!(
            src,
            vec![
                (a("2001:db8::1"), Some(at(0) + MALI)),
                (a("2001:db8::2"), None)
            ]
        );
    }

    #[test]
    fn row_include_a_is_in_b() {
        let mut r = router();
        report(&mut r, at(0), RecordType::ModeIsInclude, &["2001:db8::1"]);
        report(&mut r, at(500), RecordType::ModeIsInclude, &["2001:db8::2"]);
        assert_eq!(
            state(&r),
            (
                FilterMode::Include,
                None,
                vec![
                    (a("2001:db8::1"), Some(at(0) + MALI)),
                    (a("2001:db8::2"), Some(at(500) + MALI))
                ]
            )
        );
    }

    #[test]
    fn row_include_a_is_ex_b() {
        let mut r = router();
        report(
            &mut r,
            at(0),
            RecordType::ModeIsInclude,
            &["2001:db8::1", "2001:db8::2"],
        );
        let acts = report(
            &mut r,
            at(10),
            RecordType::ModeIsExclude,
            &["2001:db8::2", "2001:db8::3"],
        );
        // EXCLUDE (A*B, B-A): ::2 keeps its timer, ::3 at zero, ::1 deleted, FT = MALI.
        assert_eq!(
            state(&r),
            (
                FilterMode::Exclude,
                Some(at(10) + MALI),
                vec![
                    (a("2001:db8::2"), Some(at(0) + MALI)),
                    (a("2001:db8::3"), None)
                ]
            )
        );
        assert!(queries(&acts).is_empty());
    }

    #[test]
    fn row_exclude_xy_is_in_a() {
        let mut r = router();
        exclude_x1_y2(&mut r);
        report(
            &mut r,
            at(2000),
            RecordType::ModeIsInclude,
            &["2001:db8::2"],
        );
        // EXCLUDE (X+A, Y-A): ::2 now requested with MALI.
        let (m, _, src) = state(&r);
        assert_eq!(m, FilterMode::Exclude);
        assert_eq!(
            src,
            vec![
                (a("2001:db8::1"), Some(at(0) + MALI)),
                (a("2001:db8::2"), Some(at(2000) + MALI))
            ]
        );
    }

    #[test]
    fn row_exclude_xy_is_ex_a() {
        let mut r = router();
        exclude_x1_y2(&mut r);
        report(
            &mut r,
            at(3000),
            RecordType::ModeIsExclude,
            &["2001:db8::2", "2001:db8::9"],
        );
        // EXCLUDE (A-Y, Y*A): ::9 = MALI, ::2 stays at zero, ::1 (X-A) deleted, FT = MALI.
        assert_eq!(
            state(&r),
            (
                FilterMode::Exclude,
                Some(at(3000) + MALI),
                vec![
                    (a("2001:db8::2"), None),
                    (a("2001:db8::9"), Some(at(3000) + MALI))
                ]
            )
        );
    }

    #[test]
    fn row_include_a_allow_b() {
        let mut r = router();
        report(&mut r, at(0), RecordType::ModeIsInclude, &["2001:db8::1"]);
        let acts = report(&mut r, at(7), RecordType::AllowNewSources, &["2001:db8::5"]);
        assert_eq!(
            state(&r),
            (
                FilterMode::Include,
                None,
                vec![
                    (a("2001:db8::1"), Some(at(0) + MALI)),
                    (a("2001:db8::5"), Some(at(7) + MALI))
                ]
            )
        );
        assert!(acts.contains(&Action::GroupUpdated(g())));
    }

    #[test]
    fn row_include_a_block_b() {
        let mut r = router();
        report(
            &mut r,
            at(0),
            RecordType::ModeIsInclude,
            &["2001:db8::1", "2001:db8::2"],
        );
        let acts = report(
            &mut r,
            at(100),
            RecordType::BlockOldSources,
            &["2001:db8::2", "2001:db8::7"],
        );
        // INCLUDE (A) unchanged; Q(MA, A*B) sent now and once more after LLQI; ::2 lowered to LLQT.
        assert_eq!(queries(&acts), vec![(g(), vec![a("2001:db8::2")])]);
        assert_eq!(
            state(&r).2,
            vec![
                (a("2001:db8::1"), Some(at(0) + MALI)),
                (a("2001:db8::2"), Some(at(100) + LLQT))
            ]
        );
        assert_eq!(r.next_deadline(), Some(at(100) + LLQI));
        let acts = r.handle(at(100) + LLQI, Input::Tick);
        assert_eq!(queries(&acts), vec![(g(), vec![a("2001:db8::2")])]);
        let acts = r.handle(at(100) + LLQT, Input::Tick);
        assert!(queries(&acts).is_empty(), "only robustness retransmissions");
        assert_eq!(state(&r).2, vec![(a("2001:db8::1"), Some(at(0) + MALI))]);
    }

    #[test]
    fn row_include_a_to_ex_b() {
        let mut r = router();
        report(
            &mut r,
            at(0),
            RecordType::ModeIsInclude,
            &["2001:db8::1", "2001:db8::2"],
        );
        let acts = report(
            &mut r,
            at(10),
            RecordType::ChangeToExclude,
            &["2001:db8::2", "2001:db8::3"],
        );
        // EXCLUDE (A*B, B-A); Send Q(MA, A*B), which lowers ::2 to LLQT.
        assert_eq!(
            state(&r),
            (
                FilterMode::Exclude,
                Some(at(10) + MALI),
                vec![
                    (a("2001:db8::2"), Some(at(10) + LLQT)),
                    (a("2001:db8::3"), None)
                ]
            )
        );
        assert_eq!(queries(&acts), vec![(g(), vec![a("2001:db8::2")])]);
    }

    #[test]
    fn row_include_a_to_in_b() {
        let mut r = router();
        report(
            &mut r,
            at(0),
            RecordType::ModeIsInclude,
            &["2001:db8::1", "2001:db8::2"],
        );
        let acts = report(
            &mut r,
            at(10),
            RecordType::ChangeToInclude,
            &["2001:db8::2"],
        );
        // INCLUDE (A+B); (B)=MALI; Send Q(MA, A-B) lowering ::1 to LLQT.
        assert_eq!(
            state(&r),
            (
                FilterMode::Include,
                None,
                vec![
                    (a("2001:db8::1"), Some(at(10) + LLQT)),
                    (a("2001:db8::2"), Some(at(10) + MALI))
                ]
            )
        );
        assert_eq!(queries(&acts), vec![(g(), vec![a("2001:db8::1")])]);
    }

    #[test]
    fn row_exclude_xy_allow_a() {
        let mut r = router();
        exclude_x1_y2(&mut r);
        report(
            &mut r,
            at(5000),
            RecordType::AllowNewSources,
            &["2001:db8::2", "2001:db8::4"],
        );
        let (_, _, src) = state(&r);
        assert_eq!(
            src,
            vec![
                (a("2001:db8::1"), Some(at(0) + MALI)),
                (a("2001:db8::2"), Some(at(5000) + MALI)),
                (a("2001:db8::4"), Some(at(5000) + MALI))
            ]
        );
    }

    #[test]
    fn row_exclude_xy_block_a() {
        let mut r = router();
        exclude_x1_y2(&mut r);
        let acts = report(
            &mut r,
            at(5000),
            RecordType::BlockOldSources,
            &["2001:db8::2", "2001:db8::6"],
        );
        // EXCLUDE (X+(A-Y), Y); (A-X-Y)=FT; Send Q(MA, A-Y) which lowers ::6 to LLQT.
        let (m, ft, src) = state(&r);
        assert_eq!((m, ft), (FilterMode::Exclude, Some(at(1000) + MALI)));
        assert_eq!(
            src,
            vec![
                (a("2001:db8::1"), Some(at(0) + MALI)),
                (a("2001:db8::2"), None),
                (a("2001:db8::6"), Some(at(5000) + LLQT))
            ]
        );
        assert_eq!(queries(&acts), vec![(g(), vec![a("2001:db8::6")])]);
    }

    #[test]
    fn row_exclude_xy_to_ex_a() {
        let mut r = router();
        exclude_x1_y2(&mut r);
        let acts = report(
            &mut r,
            at(5000),
            RecordType::ChangeToExclude,
            &["2001:db8::2", "2001:db8::8"],
        );
        // EXCLUDE (A-Y, Y*A); (A-X-Y)=FT; Delete (X-A); Send Q(MA, A-Y); FT=MALI.
        let (m, ft, src) = state(&r);
        assert_eq!((m, ft), (FilterMode::Exclude, Some(at(5000) + MALI)));
        assert_eq!(
            src,
            vec![
                (a("2001:db8::2"), None),
                (a("2001:db8::8"), Some(at(5000) + LLQT))
            ]
        );
        assert_eq!(queries(&acts), vec![(g(), vec![a("2001:db8::8")])]);
    }

    #[test]
    fn row_exclude_xy_to_in_a() {
        let mut r = router();
        exclude_x1_y2(&mut r);
        let acts = report(
            &mut r,
            at(5000),
            RecordType::ChangeToInclude,
            &["2001:db8::3"],
        );
        // EXCLUDE (X+A, Y-A); (A)=MALI; Send Q(MA, X-A); Send Q(MA) lowering FT to LLQT.
        let (m, ft, src) = state(&r);
        assert_eq!((m, ft), (FilterMode::Exclude, Some(at(5000) + LLQT)));
        assert_eq!(
            src,
            vec![
                (a("2001:db8::1"), Some(at(5000) + LLQT)),
                (a("2001:db8::2"), None),
                (a("2001:db8::3"), Some(at(5000) + MALI))
            ]
        );
        assert_eq!(
            queries(&acts),
            vec![(g(), vec![a("2001:db8::1")]), (g(), vec![])]
        );
        // §7.5: when the filter timer runs out, INCLUDE with the sources still requested.
        r.handle(at(5000) + LLQT, Input::Tick);
        assert_eq!(
            state(&r),
            (
                FilterMode::Include,
                None,
                vec![(a("2001:db8::3"), Some(at(5000) + MALI))]
            )
        );
    }

    #[test]
    fn exclude_mode_source_timer_expiry_stops_forwarding_the_source() {
        let mut r = router();
        exclude_x1_y2(&mut r);
        assert!(r.groups[&g()].forwards(&a("2001:db8::1"), at(0) + MALI - Duration::from_millis(1)));
        assert_eq!(
            r.next_deadline(),
            Some(at(0) + Config::default().startup_interval())
        );
        let second = at(0) + Config::default().startup_interval() + Duration::from_secs(125);
        r.handle(at(0) + Config::default().startup_interval(), Input::Tick);
        assert_eq!(r.next_deadline(), Some(second));
        r.handle(second, Input::Tick);
        assert_eq!(r.next_deadline(), Some(at(0) + MALI));
        let acts = r.handle(at(0) + MALI, Input::Tick);
        assert!(acts.contains(&Action::GroupUpdated(g())));
        assert_eq!(
            state(&r),
            (
                FilterMode::Exclude,
                Some(at(1000) + MALI),
                vec![(a("2001:db8::1"), None), (a("2001:db8::2"), None)]
            )
        );
        assert!(!r.groups[&g()].forwards(&a("2001:db8::1"), at(0) + MALI));
        assert_eq!(r.next_deadline(), Some(at(1000) + MALI));
    }

    #[test]
    fn filter_timer_expiry_without_sources_deletes_the_group() {
        let mut r = router();
        report(&mut r, at(0), RecordType::ModeIsExclude, &[]);
        assert_eq!(
            r.next_deadline(),
            Some(at(0) + Config::default().startup_interval())
        );
        let acts = r.handle(at(0) + MALI - Duration::from_millis(1), Input::Tick);
        assert!(!acts.contains(&Action::GroupRemoved(g())));
        let acts = r.handle(at(0) + MALI, Input::Tick);
        assert!(acts.contains(&Action::GroupRemoved(g())));
        assert!(!r.groups.contains_key(&g()));
    }

    #[test]
    fn mldv1_compatibility() {
        let mut r = router();
        let v1 = |r: &mut Router, now, msg| r.handle(now, Input::Received { from: host(), msg });
        v1(&mut r, at(0), Message::V1Report { group: g() });
        assert_eq!(state(&r), (FilterMode::Exclude, Some(at(0) + MALI), vec![]));
        assert_eq!(r.groups[&g()].v1_host_until, Some(at(0) + MALI));
        // While a v1 host is present, BLOCK is ignored and TO_EX(x) acts as TO_EX({}).
        report(
            &mut r,
            at(10),
            RecordType::BlockOldSources,
            &["2001:db8::1"],
        );
        assert_eq!(state(&r).2, vec![]);
        report(
            &mut r,
            at(20),
            RecordType::ChangeToExclude,
            &["2001:db8::1"],
        );
        assert_eq!(state(&r).2, vec![]);
        // Done = TO_IN({}): group-specific queries, then the group goes at LLQT.
        let acts = v1(&mut r, at(30), Message::V1Done { group: g() });
        assert_eq!(queries(&acts), vec![(g(), vec![])]);
        assert_eq!(state(&r).1, Some(at(30) + LLQT));
        let acts = r.handle(at(30) + LLQT, Input::Tick);
        assert!(acts.contains(&Action::GroupRemoved(g())));
        // v1 done for an unknown group changes nothing.
        assert!(v1(&mut r, at(40), Message::V1Done { group: g() }).is_empty());
    }

    #[test]
    fn router_configured_for_v1_ignores_v2_reports() {
        let cfg = Config {
            version: 1,
            ..Config::default()
        };
        let mut r = Router::new(cfg, a("fe80::2"), Time::ZERO);
        let acts = report(&mut r, at(0), RecordType::ModeIsExclude, &[]);
        assert!(r.groups.is_empty());
        assert!(!acts.contains(&Action::GroupUpdated(g())));
        assert_eq!(r.counters.v2_reports, 1);
        r.handle(
            at(1),
            Input::Received {
                from: host(),
                msg: Message::V1Report { group: g() },
            },
        );
        assert!(r.groups.contains_key(&g()));
    }

    #[test]
    fn v1_host_present_timer_expires() {
        let mut r = router();
        r.handle(
            at(0),
            Input::Received {
                from: host(),
                msg: Message::V1Report { group: g() },
            },
        );
        report(&mut r, at(1000), RecordType::ModeIsExclude, &[]);
        r.handle(at(0) + MALI, Input::Tick);
        assert_eq!(r.groups[&g()].v1_host_until, None);
        // Out of compatibility mode BLOCK is processed again.
        report(
            &mut r,
            at(0) + MALI + Duration::from_millis(1),
            RecordType::ModeIsInclude,
            &["2001:db8::1"],
        );
        let acts = report(
            &mut r,
            at(0) + MALI + Duration::from_millis(2),
            RecordType::BlockOldSources,
            &["2001:db8::1"],
        );
        assert_eq!(queries(&acts), vec![(g(), vec![a("2001:db8::1")])]);
    }

    #[test]
    fn startup_then_periodic_general_queries() {
        let cfg = Config::default();
        let mut r = Router::new(cfg.clone(), a("fe80::2"), Time::ZERO);
        let general = |acts: &[Action]| {
            acts.iter()
                .filter(|x| matches!(x, Action::Send { msg: Message::Query(q), dst } if q.group.is_unspecified() && *dst == ALL_NODES))
                .count()
        };
        assert_eq!(general(&r.handle(at(0), Input::Tick)), 1);
        assert_eq!(r.next_deadline(), Some(at(0) + cfg.startup_interval()));
        assert_eq!(
            general(&r.handle(at(0) + cfg.startup_interval(), Input::Tick)),
            1
        );
        assert_eq!(
            r.next_deadline(),
            Some(at(0) + cfg.startup_interval() + Duration::from_secs(125))
        );
    }

    #[test]
    fn querier_election_by_lowest_address() {
        let mut r = router();
        let q = Message::Query(Query {
            max_response_ms: 10_000,
            group: Ipv6Addr::UNSPECIFIED,
            v2: None,
        });
        // A higher address does not take over.
        r.handle(
            at(10),
            Input::Received {
                from: a("fe80::9"),
                msg: q.clone(),
            },
        );
        assert!(r.querier);
        let acts = r.handle(
            at(20),
            Input::Received {
                from: a("fe80::1"),
                msg: q,
            },
        );
        assert!(acts.contains(&Action::QuerierChanged { querier: false }));
        let oqpi = Duration::from_millis(2 * 125_000 + 5_000);
        assert_eq!(r.next_deadline(), Some(at(20) + oqpi));
        // A non-querier sends no queries, even on leaves.
        report(&mut r, at(30), RecordType::ModeIsExclude, &[]);
        assert!(queries(&report(&mut r, at(40), RecordType::ChangeToInclude, &[])).is_empty());
        let acts = r.handle(at(20) + oqpi, Input::Tick);
        assert!(acts.contains(&Action::QuerierChanged { querier: true }));
        assert!(r.querier);
    }

    #[test]
    fn non_querier_lowers_timers_on_specific_queries() {
        let mut r = router();
        let gq = Message::Query(Query {
            max_response_ms: 10_000,
            group: Ipv6Addr::UNSPECIFIED,
            v2: None,
        });
        r.handle(
            at(0),
            Input::Received {
                from: a("fe80::1"),
                msg: gq,
            },
        );
        report(&mut r, at(0), RecordType::ModeIsExclude, &[]);
        let sq = Message::Query(Query {
            max_response_ms: 1000,
            group: g(),
            v2: Some(QueryV2 {
                suppress_router_side: false,
                qrv: 2,
                qqi_s: 125,
                sources: vec![],
            }),
        });
        r.handle(
            at(100),
            Input::Received {
                from: a("fe80::1"),
                msg: sq,
            },
        );
        assert_eq!(state(&r).1, Some(at(100) + LLQT));
    }

    #[test]
    fn entry_limit_counts_and_drops() {
        let cfg = Config {
            max_entries: Some(1),
            ..Config::default()
        };
        let mut r = Router::new(cfg, a("fe80::2"), Time::ZERO);
        report(&mut r, at(0), RecordType::ModeIsExclude, &[]);
        let rec = Record {
            kind: RecordType::ModeIsExclude,
            group: a("ff05::200"),
            sources: vec![],
            aux: vec![],
        };
        r.handle(
            at(1),
            Input::Received {
                from: host(),
                msg: Message::V2Report { records: vec![rec] },
            },
        );
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.counters.limit_exceeded, 1);
    }

    #[test]
    fn link_scope_and_solicited_node_groups_are_not_tracked() {
        for grp in ["ff02::fb", "ff02::1:ff00:1", "ff01::1", "ff05::1:ff00:1"] {
            assert!(!forwardable(&a(grp)), "{grp}");
        }
        assert!(forwardable(&a("ff05::1:3")));
        assert!(forwardable(&a("ff3e::8000:1")));
    }

    #[test]
    fn static_groups_never_expire() {
        let cfg = Config {
            static_groups: vec![(g(), None)],
            ..Config::default()
        };
        let mut r = Router::new(cfg, a("fe80::2"), Time::ZERO);
        r.handle(at(0) + 10 * MALI, Input::Tick);
        assert_eq!(r.groups[&g()].origin, Origin::Static);
        assert!(r.groups[&g()].forwards(&a("2001:db8::1"), at(0) + 10 * MALI));
    }

    #[test]
    fn reconfigure_keeps_learned_groups_and_syncs_static_ones() {
        let ssm = a("ff3e::1");
        let cfg = Config {
            static_groups: vec![(ssm, Some(a("2001:db8::1"))), (ssm, Some(a("2001:db8::2")))],
            ..Config::default()
        };
        let mut r = Router::new(cfg, a("fe80::2"), Time::ZERO);
        assert!(r.groups[&ssm].forwards(&a("2001:db8::2"), at(0) + 10 * MALI));
        assert!(!r.groups[&ssm].forwards(&a("2001:db8::3"), Time::ZERO));
        report(&mut r, at(0), RecordType::ModeIsExclude, &[]);
        let acts = r.reconfigure(
            Config {
                robustness: 3,
                ..Config::default()
            },
            at(10),
        );
        assert_eq!(acts, vec![Action::GroupRemoved(ssm)]);
        assert_eq!(r.cfg.robustness, 3);
        assert!(r.groups.contains_key(&g()));
    }
    #[test]
    fn silent_router_ignores_hosts_and_takes_over_as_querier_at_once() {
        let mut r = Router::new(Config::default(), a("fe80::2"), Time::ZERO);
        assert_eq!(
            r.set_silent(),
            vec![Action::QuerierChanged { querier: false }]
        );
        assert_eq!(r.next_deadline(), None);
        assert!(report(&mut r, at(10), RecordType::ModeIsExclude, &[]).is_empty());
        assert!(r.groups.is_empty());
        assert!(r.handle(at(50_000), Input::Tick).is_empty());
        let acts = r.activate(at(60_000));
        assert_eq!(acts[0], Action::QuerierChanged { querier: true });
        assert!(
            matches!(&acts[1], Action::Send { dst, msg: Message::Query(q) }
            if *dst == ALL_NODES && q.group.is_unspecified())
        );
        // Then the startup queries, a quarter interval apart.
        assert_eq!(
            r.next_deadline(),
            Some(at(60_000) + Config::default().startup_interval())
        );
        report(&mut r, at(60_010), RecordType::ModeIsExclude, &[]);
        assert_eq!(r.groups[&g()].origin, Origin::Local);
    }

    #[test]
    fn peer_entries_age_and_a_local_report_makes_them_local() {
        let mut r = router();
        let peer = Group {
            mode: FilterMode::Exclude,
            filter_timer: Some(at(5_000)),
            sources: BTreeMap::new(),
            v1_host_until: None,
            origin: Origin::Local,
            last_reporter: None,
            since: Time::ZERO,
        };
        assert_eq!(
            r.install_peer(at(100), g(), peer.clone(), false),
            vec![Action::GroupUpdated(g())]
        );
        assert_eq!(r.groups[&g()].origin, Origin::Peer);
        assert_eq!(r.groups[&g()].since, at(100));
        assert!(r.install_peer(at(200), g(), peer.clone(), false).is_empty());
        assert_eq!(r.next_deadline(), Some(at(5_000)));
        report(&mut r, at(1_000), RecordType::ModeIsExclude, &[]);
        assert_eq!(r.groups[&g()].origin, Origin::Local);
        assert_eq!(state(&r).1, Some(at(1_000) + MALI));
        // A local entry stays unless the caller says the peer's copy wins.
        assert!(r
            .install_peer(at(1_100), g(), peer.clone(), false)
            .is_empty());
        assert!(r.remove_peer(g(), false).is_empty());
        r.install_peer(at(1_100), g(), peer.clone(), true);
        assert_eq!(state(&r).1, Some(at(5_000)));
        let acts = r.handle(at(5_000), Input::Tick);
        assert!(acts.contains(&Action::GroupRemoved(g())));
        // An entry whose timers have run out is not installed.
        assert!(r
            .install_peer(at(6_000), g(), peer.clone(), false)
            .is_empty());
        assert!(r.groups.is_empty());
        // Static entries are never replaced.
        let cfg = Config {
            static_groups: vec![(g(), None)],
            ..Config::default()
        };
        let mut st = Router::new(cfg, a("fe80::2"), Time::ZERO);
        assert!(st.install_peer(at(0), g(), peer, true).is_empty());
        assert!(st.remove_peer(g(), true).is_empty());
        assert_eq!(st.groups[&g()].origin, Origin::Static);
    }

    #[test]
    fn lowered_timers_are_reported_as_updates() {
        let mut r = router();
        report(&mut r, at(0), RecordType::ModeIsExclude, &[]);
        // TO_IN({}) changes nothing but the filter timer, lowered to LLQT by the query.
        let acts = report(&mut r, at(10), RecordType::ChangeToInclude, &[]);
        assert!(acts.contains(&Action::GroupUpdated(g())));
        assert_eq!(state(&r).1, Some(at(10) + LLQT));
    }
}
