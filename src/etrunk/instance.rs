//! One E-Trunk as a sans-IO state machine: hellos every interval, the peer lost after its own
//! hello interval times its multiplier, the election (smaller priority wins, a tie goes to the
//! smaller system ID), the local and peer Eth-Trunk health, and the revert delay with the
//! hot-backup controller's preemption gate, on a clock the caller supplies.

use super::packet::{Hello, MemberReport, WireState};
use crate::time::Time;
use std::time::Duration;

/// The unit of hello intervals (on the wire and in the configuration).
pub const HELLO_UNIT: Duration = Duration::from_millis(100);
const SECOND: Duration = Duration::from_secs(1);

/// A hold time: `hello_interval` (in [`HELLO_UNIT`]s) × `multiplier`.
fn hold(hello_interval: u16, multiplier: u16) -> Duration {
    HELLO_UNIT * u32::from(hello_interval) * u32::from(multiplier)
}

/// What the configuration asks of one E-Trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub id: u8,
    /// 1 to 254; the smaller wins.
    pub priority: u8,
    /// The tie-break system ID (the device's MAC unless configured).
    pub system_id: [u8; 6],
    /// In units of 100 ms (5 to 100).
    pub hello_interval: u16,
    /// Hold-on-failure multiplier (3 to 300), carried in the hello.
    pub multiplier: u16,
    /// Revert delay in seconds; None when revert is disabled.
    pub revert_delay_s: Option<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: 1,
            priority: 100,
            system_id: [0; 6],
            hello_interval: 10,
            multiplier: 20,
            revert_delay_s: Some(120),
        }
    }
}

impl Config {
    /// The hold time this device announces: hello interval × multiplier.
    pub fn hold_time(&self) -> Duration {
        hold(self.hello_interval, self.multiplier)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Initialize,
    Backup,
    Master,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
        }
    }

    fn wire(self) -> WireState {
        match self {
            State::Initialize => WireState::Initialize,
            State::Backup => WireState::Backup,
            State::Master => WireState::Master,
        }
    }
}

/// Why the E-Trunk is in its state (mldhb-etrunk `e-trunk-cause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Initial,
    PriorityCalculation,
    PeerTimeout,
    PeerEthTrunkDown,
    LocalEthTrunkDown,
    Revert,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Initial => "initial",
            Cause::PriorityCalculation => "priority-calculation",
            Cause::PeerTimeout => "peer-timeout",
            Cause::PeerEthTrunkDown => "peer-eth-trunk-down",
            Cause::LocalEthTrunkDown => "local-eth-trunk-down",
            Cause::Revert => "revert",
        }
    }
}

/// What the peer said in its last hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub priority: u8,
    pub system_id: [u8; 6],
    pub state: WireState,
    pub hello_interval: u16,
    pub multiplier: u16,
    pub members: Vec<MemberReport>,
    /// When it counts as lost: its own hello interval × its multiplier after the hello.
    pub until: Time,
}

impl Peer {
    /// The peer's hold time, hello interval × multiplier, as it announced them.
    pub fn hold_time(&self) -> Duration {
        hold(self.hello_interval, self.multiplier)
    }

    /// Whether the peer's Eth-Trunks can carry traffic: any reported up (a peer without
    /// Eth-Trunks bound counts as up).
    pub fn trunks_up(&self) -> bool {
        self.members.is_empty() || self.members.iter().any(|m| m.up)
    }

    /// Whether the peer reports this Eth-Trunk up.
    pub fn trunk_up(&self, eth_trunk: u16) -> bool {
        self.members
            .iter()
            .any(|m| m.eth_trunk == eth_trunk && m.up)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Begin: hellos start and the peer is awaited for one hold time.
    Start,
    /// Stop: back to Initialize, no hellos.
    Stop,
    /// A decoded, authenticated hello for this E-Trunk from the configured peer.
    Hello(Hello),
    /// The local Eth-Trunks' states as the next hello reports them.
    Members(Vec<MemberReport>),
    /// Whether the hot-backup controller lets this E-Trunk take the master role back.
    PreemptGate(bool),
    /// New settings; the state machine keeps running.
    Reconfigure(Config),
    /// The clock reached `next_deadline()`.
    Timer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this hello to the peer (the driver authenticates it).
    Send(Hello),
    /// The state changed.
    StateChange {
        old: State,
        new: State,
        cause: Cause,
    },
}

/// Counters of the model's `statistics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub hellos_sent: u64,
    pub hellos_received: u64,
    pub auth_failures: u64,
    pub decode_errors: u64,
    pub state_changes: u32,
}

/// One E-Trunk.
#[derive(Debug, Clone)]
pub struct Instance {
    pub cfg: Config,
    pub state: State,
    pub cause: Cause,
    pub peer: Option<Peer>,
    pub members: Vec<MemberReport>,
    pub stats: Stats,
    running: bool,
    /// Until then a starting E-Trunk waits for the peer's first hello.
    wait_until: Option<Time>,
    hello_at: Option<Time>,
    /// A pending revert: when the delay has passed.
    revert_at: Option<Time>,
    revert_done: bool,
    gate_open: bool,
    sequence: u64,
}

impl Instance {
    pub fn new(cfg: Config) -> Instance {
        Instance {
            cfg,
            state: State::Initialize,
            cause: Cause::Initial,
            peer: None,
            members: Vec::new(),
            stats: Stats::default(),
            running: false,
            wait_until: None,
            hello_at: None,
            revert_at: None,
            revert_done: false,
            gate_open: true,
            sequence: 0,
        }
    }

    /// Starts the sequence numbers above `base` (the driver passes wall-clock based values so
    /// that a restarted device is not taken for a replay).
    pub fn with_sequence(mut self, base: u64) -> Instance {
        self.sequence = base;
        self
    }

    pub fn next_deadline(&self) -> Option<Time> {
        [
            self.wait_until,
            self.hello_at,
            self.revert_at,
            self.peer.as_ref().map(|p| p.until),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn gate_open(&self) -> bool {
        self.gate_open
    }

    /// Whether the peer's hellos arrive within its hold time.
    pub fn peer_alive(&self) -> bool {
        self.peer.is_some()
    }

    /// Whether the local Eth-Trunks can carry traffic (none bound counts as up).
    pub fn trunks_up(&self) -> bool {
        self.members.is_empty() || self.members.iter().any(|m| m.up)
    }

    /// Seconds left of a pending revert, and whether only the gate holds it.
    pub fn revert_wait(&self, now: Time) -> Option<(u32, bool)> {
        if let Some(t) = self.revert_at {
            let left = (t - now).as_micros().div_ceil(SECOND.as_micros());
            return Some((left as u32, false));
        }
        (self.revert_done && !self.gate_open).then_some((0, true))
    }

    /// The last sequence number sent.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    fn hello(&mut self) -> Hello {
        self.sequence += 1;
        Hello {
            etrunk: self.cfg.id,
            priority: self.cfg.priority,
            state: self.state.wire(),
            system_id: self.cfg.system_id,
            hello_interval: self.cfg.hello_interval,
            multiplier: self.cfg.multiplier,
            sequence: self.sequence,
            members: self.members.clone(),
        }
    }

    fn send(&mut self, now: Time, out: &mut Vec<Action>) {
        let h = self.hello();
        self.stats.hellos_sent += 1;
        out.push(Action::Send(h));
        self.hello_at = Some(now + HELLO_UNIT * u32::from(self.cfg.hello_interval));
    }

    /// Whether this device wins the election against the peer.
    fn wins(&self, p: &Peer) -> bool {
        (self.cfg.priority, self.cfg.system_id) < (p.priority, p.system_id)
    }

    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        let mut hello_due = false;
        match input {
            Input::Start => {
                if self.running {
                    return out;
                }
                self.running = true;
                self.wait_until = Some(now + self.cfg.hold_time());
                self.send(now, &mut out);
            }
            Input::Stop => {
                self.running = false;
                self.peer = None;
                self.wait_until = None;
                self.hello_at = None;
                self.revert_at = None;
                self.revert_done = false;
                self.set(State::Initialize, Cause::Initial, &mut out);
                return out;
            }
            Input::Hello(h) => {
                if !self.running || h.etrunk != self.cfg.id {
                    return out;
                }
                self.stats.hellos_received += 1;
                // The peer's own hold time, but no longer than ours or three of its hellos,
                // whichever is longer: a hello cannot keep a silent peer alive for 50 minutes.
                let cap = self.cfg.hold_time().max(hold(h.hello_interval, 3));
                let until = now + hold(h.hello_interval, h.multiplier).min(cap);
                self.peer = Some(Peer {
                    priority: h.priority,
                    system_id: h.system_id,
                    state: h.state,
                    hello_interval: h.hello_interval,
                    multiplier: h.multiplier,
                    members: h.members,
                    until,
                });
                self.wait_until = None;
            }
            Input::Members(m) => {
                if self.members == m {
                    return out;
                }
                self.members = m;
                // The peer learns at once.
                if self.running {
                    self.evaluate(now, &mut out);
                    self.send(now, &mut out);
                    return out;
                }
            }
            Input::PreemptGate(open) => self.gate_open = open,
            Input::Reconfigure(cfg) => {
                let timers = cfg.hello_interval != self.cfg.hello_interval;
                let announce = cfg.priority != self.cfg.priority
                    || cfg.system_id != self.cfg.system_id
                    || cfg.multiplier != self.cfg.multiplier
                    || timers;
                if cfg.revert_delay_s != self.cfg.revert_delay_s {
                    self.revert_at = None;
                    self.revert_done = false;
                }
                self.cfg = cfg;
                if self.running {
                    self.evaluate(now, &mut out);
                    if announce {
                        self.send(now, &mut out);
                    }
                    return out;
                }
            }
            Input::Timer => {
                if self.peer.as_ref().is_some_and(|p| p.until <= now) {
                    self.peer = None;
                }
                if self.wait_until.is_some_and(|t| t <= now) {
                    self.wait_until = None;
                }
                if self.revert_at.is_some_and(|t| t <= now) {
                    self.revert_at = None;
                    self.revert_done = true;
                }
                hello_due = self.hello_at.is_some_and(|t| t <= now);
            }
        }
        if self.running {
            let before = self.state;
            self.evaluate(now, &mut out);
            // A state change is announced at once rather than at the next interval; a hello
            // that falls due carries the state just decided.
            if hello_due
                || (self.state != before && !out.iter().any(|a| matches!(a, Action::Send(_))))
            {
                self.send(now, &mut out);
            }
        }
        out
    }

    fn set(&mut self, state: State, cause: Cause, out: &mut Vec<Action>) {
        if state == self.state {
            if state != State::Initialize {
                self.cause = cause;
            }
            return;
        }
        let old = self.state;
        self.state = state;
        self.cause = cause;
        self.stats.state_changes += 1;
        out.push(Action::StateChange {
            old,
            new: state,
            cause,
        });
    }

    /// The election.
    fn evaluate(&mut self, now: Time, out: &mut Vec<Action>) {
        let mut reverting = false;
        let (state, cause) = if !self.trunks_up() {
            (State::Backup, Cause::LocalEthTrunkDown)
        } else {
            match &self.peer {
                None if self.wait_until.is_some() => (State::Initialize, Cause::Initial),
                None => (State::Master, Cause::PeerTimeout),
                Some(p) if !p.trunks_up() => (State::Master, Cause::PeerEthTrunkDown),
                Some(p) if self.wins(p) => {
                    if p.state == WireState::Master && self.state != State::Master {
                        // The peer serves; take the role back after the revert delay, once
                        // the hot-backup controller's batch is complete.
                        match self.cfg.revert_delay_s {
                            None => (State::Backup, Cause::PriorityCalculation),
                            Some(d) => {
                                reverting = true;
                                if !self.revert_done && self.revert_at.is_none() {
                                    if d == 0 {
                                        self.revert_done = true;
                                    } else {
                                        self.revert_at = Some(now + SECOND * u32::from(d));
                                    }
                                }
                                if self.revert_done && self.gate_open {
                                    (State::Master, Cause::Revert)
                                } else {
                                    (State::Backup, Cause::PriorityCalculation)
                                }
                            }
                        }
                    } else if self.state == State::Master {
                        (State::Master, self.cause)
                    } else {
                        (State::Master, Cause::PriorityCalculation)
                    }
                }
                Some(p) => {
                    if self.state == State::Master && p.state != WireState::Master {
                        // The better peer waits for its revert delay while this one serves.
                        (State::Master, self.cause)
                    } else {
                        (State::Backup, Cause::PriorityCalculation)
                    }
                }
            }
        };
        if !reverting {
            self.revert_at = None;
            self.revert_done = false;
        } else if state == State::Master {
            self.revert_done = false;
        }
        self.set(state, cause, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::TrunkMode;
    use super::*;

    /// One millisecond in microseconds.
    const MS: u64 = 1_000;

    /// The instant `us` microseconds after the simulated clock's zero.
    fn at(us: u64) -> Time {
        Time::from_micros(us)
    }

    fn us(us: u64) -> Duration {
        Duration::from_micros(us)
    }

    fn cfg(priority: u8, last: u8) -> Config {
        Config {
            id: 1,
            priority,
            system_id: [0, 0, 0, 0, 0, last],
            hello_interval: 10,
            multiplier: 3,
            revert_delay_s: Some(5),
        }
    }

    fn member(up: bool) -> Vec<MemberReport> {
        vec![MemberReport {
            eth_trunk: 1,
            up,
            selected: false,
            mode: TrunkMode::Auto,
        }]
    }

    /// Two E-Trunks joined by a lossless link with a one-millisecond delay, on one clock.
    struct Pair {
        now: Time,
        a: Instance,
        b: Instance,
        /// Hellos in flight: (arrival, to a?, hello).
        wire: Vec<(Time, bool, Hello)>,
        link_up: bool,
        a_alive: bool,
        b_alive: bool,
        changes: Vec<(char, State, Cause, Time)>,
        /// When A last received a hello.
        a_heard: Time,
    }

    impl Pair {
        fn new(a: Config, b: Config) -> Pair {
            let mut p = Pair {
                now: Time::ZERO,
                a: Instance::new(a),
                b: Instance::new(b),
                wire: Vec::new(),
                link_up: true,
                a_alive: true,
                b_alive: true,
                changes: Vec::new(),
                a_heard: Time::ZERO,
            };
            p.input(true, Input::Members(member(true)));
            p.input(false, Input::Members(member(true)));
            p.input(true, Input::Start);
            p.input(false, Input::Start);
            p
        }

        fn input(&mut self, to_a: bool, i: Input) {
            let alive = if to_a { self.a_alive } else { self.b_alive };
            if !alive {
                return;
            }
            let inst = if to_a { &mut self.a } else { &mut self.b };
            for a in inst.handle(self.now, i) {
                match a {
                    Action::Send(h) => {
                        if self.link_up {
                            self.wire.push((self.now + us(MS), !to_a, h));
                        }
                    }
                    Action::StateChange { new, cause, .. } => {
                        self.changes
                            .push((if to_a { 'a' } else { 'b' }, new, cause, self.now))
                    }
                }
            }
        }

        fn next(&self) -> Option<Time> {
            let mut t: Vec<Time> = self.wire.iter().map(|w| w.0).collect();
            if self.a_alive {
                t.extend(self.a.next_deadline());
            }
            if self.b_alive {
                t.extend(self.b.next_deadline());
            }
            t.into_iter().min()
        }

        /// Runs every event up to and including `until`.
        fn run_until(&mut self, until: Time) {
            while let Some(t) = self.next().filter(|t| *t <= until) {
                self.now = t;
                let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.wire)
                    .into_iter()
                    .partition(|w| w.0 <= t);
                self.wire = rest;
                for (_, to_a, h) in due {
                    if to_a && self.a_alive {
                        self.a_heard = t;
                    }
                    self.input(to_a, Input::Hello(h));
                }
                if self.a.next_deadline().is_some_and(|d| d <= t) {
                    self.input(true, Input::Timer);
                }
                if self.b.next_deadline().is_some_and(|d| d <= t) {
                    self.input(false, Input::Timer);
                }
            }
            self.now = until;
        }

        fn states(&self) -> (State, State) {
            (self.a.state, self.b.state)
        }
    }

    #[test]
    fn smaller_priority_wins() {
        let mut p = Pair::new(cfg(10, 9), cfg(20, 1));
        p.run_until(at(10 * MS));
        assert_eq!(p.states(), (State::Master, State::Backup));
        assert_eq!(p.a.cause, Cause::PriorityCalculation);
        assert_eq!(p.b.cause, Cause::PriorityCalculation);
        // Stays so.
        p.run_until(at(60_000 * MS));
        assert_eq!(p.states(), (State::Master, State::Backup));
        assert_eq!(p.a.stats.state_changes, 1);
        // One hello per second each.
        assert_eq!(p.a.stats.hellos_sent, 61);
    }

    #[test]
    fn a_priority_tie_goes_to_the_smaller_system_id() {
        let mut p = Pair::new(cfg(100, 9), cfg(100, 3));
        p.run_until(at(10 * MS));
        assert_eq!(p.states(), (State::Backup, State::Master));
    }

    #[test]
    fn the_peer_is_lost_at_exactly_its_hello_times_its_multiplier() {
        // B announces 1 s × 3; A's own timers differ and do not matter.
        let mut a = cfg(20, 1);
        a.hello_interval = 5;
        a.multiplier = 50;
        let mut p = Pair::new(a, cfg(10, 2));
        p.run_until(at(10_000 * MS));
        assert_eq!(p.states(), (State::Backup, State::Master));
        // B dies; A heard its last hello at `last`.
        p.run_until(at(10_000 * MS + 500 * MS));
        p.b_alive = false;
        let last = p.a_heard;
        assert!(last > at(9_500 * MS));
        p.run_until(last + us(3_000 * MS - 1));
        assert_eq!(p.a.state, State::Backup);
        assert!(p.a.peer_alive());
        p.run_until(last + us(3_000 * MS));
        assert_eq!(p.a.state, State::Master);
        assert_eq!(p.a.cause, Cause::PeerTimeout);
        assert!(!p.a.peer_alive());
        assert_eq!(
            p.changes.last(),
            Some(&(
                'a',
                State::Master,
                Cause::PeerTimeout,
                last + us(3_000 * MS)
            ))
        );
    }

    #[test]
    fn alone_a_device_waits_one_hold_time_then_serves() {
        let mut p = Pair::new(cfg(10, 1), cfg(20, 2));
        p.b_alive = false;
        p.link_up = false;
        p.wire.clear();
        p.run_until(at(3_000 * MS - 1));
        assert_eq!(p.a.state, State::Initialize);
        p.run_until(at(3_000 * MS));
        assert_eq!((p.a.state, p.a.cause), (State::Master, Cause::PeerTimeout));
    }

    #[test]
    fn revert_waits_for_the_delay_and_the_gate() {
        let mut p = Pair::new(cfg(10, 1), cfg(20, 2));
        p.run_until(at(2_000 * MS));
        assert_eq!(p.states(), (State::Master, State::Backup));
        // A's Eth-Trunk fails: B takes over at once.
        p.input(true, Input::Members(member(false)));
        p.run_until(at(2_010 * MS));
        assert_eq!(p.states(), (State::Backup, State::Master));
        assert_eq!(p.a.cause, Cause::LocalEthTrunkDown);
        assert_eq!(p.b.cause, Cause::PeerEthTrunkDown);
        // It recovers at 3 s; the gate is closed (batch in progress).
        p.input(true, Input::PreemptGate(false));
        p.now = at(3_000 * MS);
        p.input(true, Input::Members(member(true)));
        p.run_until(at(3_010 * MS));
        assert_eq!(p.states(), (State::Backup, State::Master));
        assert_eq!(p.a.revert_wait(p.now), Some((5, false)));
        p.run_until(at(8_000 * MS - 1));
        assert_eq!(p.a.state, State::Backup);
        p.run_until(at(8_000 * MS));
        // The delay passed; only the gate holds it.
        assert_eq!(p.a.state, State::Backup);
        assert_eq!(p.a.revert_wait(p.now), Some((0, true)));
        p.now = at(9_000 * MS);
        p.input(true, Input::PreemptGate(true));
        assert_eq!((p.a.state, p.a.cause), (State::Master, Cause::Revert));
        p.run_until(at(9_010 * MS));
        assert_eq!(p.states(), (State::Master, State::Backup));
        assert_eq!(p.a.revert_wait(p.now), None);
    }

    #[test]
    fn revert_delay_starts_when_the_better_device_returns() {
        let mut p = Pair::new(cfg(10, 1), cfg(20, 2));
        p.run_until(at(1_000 * MS));
        // A crashes: B serves after the hold time.
        p.a_alive = false;
        p.run_until(at(10_000 * MS));
        assert_eq!(p.b.state, State::Master);
        // A restarts.
        p.a_alive = true;
        p.a = Instance::new(cfg(10, 1));
        p.input(true, Input::Members(member(true)));
        p.input(true, Input::Start);
        p.run_until(at(10_010 * MS));
        assert_eq!(p.states(), (State::Backup, State::Master));
        p.run_until(at(15_000 * MS + 5 * MS));
        assert_eq!(
            p.states(),
            (State::Master, State::Backup),
            "{:?}",
            p.changes
        );
        assert_eq!(p.a.cause, Cause::Revert);
    }

    #[test]
    fn without_revert_the_serving_device_keeps_the_role() {
        let mut a = cfg(10, 1);
        a.revert_delay_s = None;
        let mut p = Pair::new(a, cfg(20, 2));
        p.run_until(at(1_000 * MS));
        p.input(true, Input::Members(member(false)));
        p.run_until(at(2_000 * MS));
        p.input(true, Input::Members(member(true)));
        p.run_until(at(600_000 * MS));
        assert_eq!(p.states(), (State::Backup, State::Master));
        assert_eq!(p.a.revert_wait(p.now), None);
    }

    #[test]
    fn both_trunks_down_leaves_both_backup() {
        let mut p = Pair::new(cfg(10, 1), cfg(20, 2));
        p.run_until(at(1_000 * MS));
        p.input(true, Input::Members(member(false)));
        p.input(false, Input::Members(member(false)));
        p.run_until(at(1_100 * MS));
        assert_eq!(p.states(), (State::Backup, State::Backup));
        assert_eq!(p.a.cause, Cause::LocalEthTrunkDown);
    }

    #[test]
    fn stop_returns_to_initialize_and_silences_hellos() {
        let mut p = Pair::new(cfg(10, 1), cfg(20, 2));
        p.run_until(at(1_000 * MS));
        p.input(true, Input::Stop);
        assert_eq!(p.a.state, State::Initialize);
        assert_eq!(p.a.next_deadline(), None);
        p.run_until(at(5_000 * MS));
        assert_eq!((p.b.state, p.b.cause), (State::Master, Cause::PeerTimeout));
    }

    #[test]
    fn a_peer_announcing_a_long_hold_time_is_lost_after_ours() {
        let mut a = Instance::new(cfg(20, 1));
        let t0 = at(0);
        a.handle(t0, Input::Start);
        // The peer says 10 s hellos times 300: 50 minutes.
        let hello = Hello {
            etrunk: 1,
            priority: 10,
            state: WireState::Master,
            system_id: [0, 0, 0, 0, 0, 2],
            hello_interval: 100,
            multiplier: 300,
            sequence: 1,
            members: vec![],
        };
        a.handle(t0, Input::Hello(hello));
        assert!(a.peer_alive());
        // Our hold time is 3 s; three of its hellos, 30 s: lost after 30 s of silence.
        a.handle(at(30_000 * MS - 1), Input::Timer);
        assert!(a.peer_alive());
        a.handle(at(30_000 * MS), Input::Timer);
        assert!(!a.peer_alive());
        assert_eq!(a.state, State::Master);
    }
}
