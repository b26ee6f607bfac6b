//! One VRRPv3 virtual router for IPv6 as a sans-IO state machine (RFC 9568 §6): Initialize,
//! Backup and Master, its timers on a clock the caller supplies, preemption with a hold time
//! and an external gate, the address owner at priority 255, and priority lowered by tracked
//! interfaces that fail.

use super::packet::Advertisement;
use crate::bus::{Role, RoleState};
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::time::Duration;

/// One centisecond, the unit of VRRPv3 intervals on the wire and in the data model.
pub const CENTISECOND: Duration = Duration::from_millis(10);
/// [`CENTISECOND`] in microseconds, for the RFC's integer formulas.
const CENTISECOND_US: u64 = 10_000;
const SECOND: Duration = Duration::from_secs(1);

/// What the configuration asks of one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub vrid: u8,
    /// Configured priority, 1 to 254 (the owner runs at 255 whatever this says).
    pub priority: u8,
    pub preempt: bool,
    /// Seconds a higher-priority backup waits before preempting a lower-priority master.
    pub hold_time_s: u16,
    /// Whether a non-owner master accepts packets addressed to the virtual addresses.
    pub accept_mode: bool,
    /// Advertisement_Interval in centiseconds (1 to 4095).
    pub interval_cs: u16,
    /// Virtual addresses, the link-local one first.
    pub vips: Vec<Ipv6Addr>,
    /// Tracked interfaces and how much each lowers the priority while it is down.
    pub tracked: BTreeMap<String, u8>,
    /// Serve the virtual addresses with the virtual router MAC address through a macvlan.
    pub virtual_mac: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            vrid: 1,
            priority: 100,
            preempt: true,
            hold_time_s: 0,
            accept_mode: false,
            interval_cs: 100,
            vips: Vec::new(),
            tracked: BTreeMap::new(),
            virtual_mac: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Initialize,
    Backup,
    Master,
}

/// Why this router became master (ietf-vrrp `new-master-reason-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewMasterReason {
    NotMaster,
    Priority,
    Preempted,
    NoResponse,
}

impl NewMasterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            NewMasterReason::NotMaster => "not-master",
            NewMasterReason::Priority => "priority",
            NewMasterReason::Preempted => "preempted",
            NewMasterReason::NoResponse => "no-response",
        }
    }
}

/// The last protocol event (ietf-vrrp `vrrp-event-type` identities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    None,
    Startup,
    Shutdown,
    HigherPriorityBackup,
    MasterTimeout,
    InterfaceUp,
    InterfaceDown,
    PreemptHoldTimeout,
    LowerPriorityMaster,
    OwnerPreempt,
}

impl Event {
    pub fn identity(self) -> &'static str {
        match self {
            Event::None => "vrrp-event-none",
            Event::Startup => "vrrp-event-startup",
            Event::Shutdown => "vrrp-event-shutdown",
            Event::HigherPriorityBackup => "vrrp-event-higher-priority-backup",
            Event::MasterTimeout => "vrrp-event-master-timeout",
            Event::InterfaceUp => "vrrp-event-interface-up",
            Event::InterfaceDown => "vrrp-event-interface-down",
            Event::PreemptHoldTimeout => "vrrp-event-preempt-hold-timeout",
            Event::LowerPriorityMaster => "vrrp-event-lower-priority-master",
            Event::OwnerPreempt => "vrrp-event-owner-preempt",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The interface is usable with this link-local address (the Startup event). `owner` says
    /// whether a virtual address is one of the interface's own.
    Startup { link_local: Ipv6Addr, owner: bool },
    /// Administrative stop: a master resigns with a priority 0 advertisement.
    Shutdown,
    /// The interface went down or lost its link-local address: nothing can be sent.
    InterfaceDown,
    /// A valid advertisement for this VRID from another router.
    Advertisement { src: Ipv6Addr, adv: Advertisement },
    /// A tracked interface changed state.
    Tracked { interface: String, up: bool },
    /// Whether the hot-backup controller lets this router preempt now.
    PreemptGate(bool),
    /// New settings that keep the router running (same virtual addresses and owner).
    Reconfigure(Config),
    /// The clock reached `next_deadline()`.
    Timer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advertisement to ff02::12 from the link-local address.
    Send(Advertisement),
    /// Install the virtual addresses and announce them with unsolicited Neighbor Advertisements.
    Activate,
    /// Remove the virtual addresses.
    Deactivate,
    /// This router became master.
    NewMaster(NewMasterReason),
}

/// Counters of ietf-vrrp `statistics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub master_transitions: u32,
    pub adv_rcvd: u64,
    pub adv_sent: u64,
    pub prio0_rcvd: u64,
    pub prio0_sent: u64,
    pub invalid_type: u64,
    pub packet_length: u64,
}

/// Skew_Time: ((256 - priority) * interval) / 256, the interval in centiseconds (RFC 9568
/// §6.1), computed in whole microseconds (rounded down).
pub fn skew_time(priority: u8, interval_cs: u16) -> Duration {
    let us = (256 - u64::from(priority)) * u64::from(interval_cs) * CENTISECOND_US / 256;
    Duration::from_micros(us)
}

/// Master_Down_Interval: 3 * interval + Skew_Time (RFC 9568 §6.1).
pub fn master_down_interval(priority: u8, interval_cs: u16) -> Duration {
    CENTISECOND * 3 * u32::from(interval_cs) + skew_time(priority, interval_cs)
}

/// One virtual router.
#[derive(Debug, Clone)]
pub struct Instance {
    pub cfg: Config,
    pub state: State,
    /// This router's link-local address (its primary address) while running.
    pub own: Option<Ipv6Addr>,
    pub owner: bool,
    /// Master_Adver_Interval: the master's interval as last adopted, in centiseconds.
    pub master_interval_cs: u16,
    master_down_at: Option<Time>,
    adver_at: Option<Time>,
    /// A lower-priority master is heard and the hold time runs until then.
    hold_until: Option<Time>,
    /// The hold time has passed while a lower-priority master is heard.
    hold_done: bool,
    gate_open: bool,
    /// Advertisements of a lower-priority master are being discarded.
    preempting: bool,
    peer_until: Option<Time>,
    tracked_down: BTreeSet<String>,
    pub last_adv_source: Option<Ipv6Addr>,
    pub last_event: Event,
    pub reason: NewMasterReason,
    pub stats: Stats,
    /// When it left Initialize.
    pub up_since: Option<Time>,
}

impl Instance {
    pub fn new(cfg: Config) -> Instance {
        Instance {
            master_interval_cs: cfg.interval_cs,
            cfg,
            state: State::Initialize,
            own: None,
            owner: false,
            master_down_at: None,
            adver_at: None,
            hold_until: None,
            hold_done: false,
            gate_open: true,
            preempting: false,
            peer_until: None,
            tracked_down: BTreeSet::new(),
            last_adv_source: None,
            last_event: Event::None,
            reason: NewMasterReason::NotMaster,
            stats: Stats::default(),
            up_since: None,
        }
    }

    /// The priority in effect: 255 for the owner, else the configured one lowered by the
    /// tracked interfaces that are down (never below 1).
    pub fn priority(&self) -> u8 {
        if self.owner {
            return 255;
        }
        let down: u32 = self
            .tracked_down
            .iter()
            .filter_map(|i| self.cfg.tracked.get(i))
            .map(|d| *d as u32)
            .sum();
        (self.cfg.priority as u32)
            .saturating_sub(down)
            .clamp(1, 254) as u8
    }

    /// Skew_Time for the current priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        skew_time(self.priority(), self.master_interval_cs)
    }

    /// Master_Down_Interval for the current priority and Master_Adver_Interval.
    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(self.priority(), self.master_interval_cs)
    }

    pub fn next_deadline(&self) -> Option<Time> {
        [
            self.master_down_at,
            self.adver_at,
            self.hold_until,
            self.peer_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether another router's advertisements arrive within its master-down interval.
    pub fn peer_present(&self, now: Time) -> bool {
        self.peer_until.is_some_and(|t| now < t)
    }

    /// What the role bus publishes for this router.
    pub fn role_state(&self, now: Time) -> RoleState {
        RoleState {
            role: match self.state {
                State::Initialize => Role::Initialize,
                State::Backup => Role::Backup,
                State::Master => Role::Master,
            },
            peer_present: self.state != State::Initialize && self.peer_present(now),
        }
    }

    /// A pending preemption: seconds of hold time left, and whether only the gate holds it.
    pub fn preempt_wait(&self, now: Time) -> Option<(u32, bool)> {
        if self.state != State::Backup {
            return None;
        }
        if let Some(t) = self.hold_until {
            let left = (t - now).as_micros().div_ceil(SECOND.as_micros());
            return Some((left as u32, false));
        }
        (self.hold_done && !self.gate_open).then_some((0, true))
    }

    pub fn gate_open(&self) -> bool {
        self.gate_open
    }

    fn advertisement(&self, priority: u8) -> Advertisement {
        Advertisement {
            vrid: self.cfg.vrid,
            priority,
            interval_cs: self.cfg.interval_cs,
            addrs: self.cfg.vips.clone(),
        }
    }

    fn send(&mut self, out: &mut Vec<Action>, priority: u8) {
        self.stats.adv_sent += 1;
        if priority == 0 {
            self.stats.prio0_sent += 1;
        }
        out.push(Action::Send(self.advertisement(priority)));
    }

    fn interval(&self) -> Duration {
        CENTISECOND * u32::from(self.cfg.interval_cs)
    }

    fn clear_preemption(&mut self) {
        self.hold_until = None;
        self.hold_done = false;
        self.preempting = false;
    }

    fn become_master(&mut self, now: Time, reason: NewMasterReason, out: &mut Vec<Action>) {
        self.state = State::Master;
        self.master_down_at = None;
        self.clear_preemption();
        self.master_interval_cs = self.cfg.interval_cs;
        let p = self.priority();
        self.send(out, p);
        out.push(Action::Activate);
        self.adver_at = Some(now + self.interval());
        self.stats.master_transitions += 1;
        self.reason = reason;
        out.push(Action::NewMaster(reason));
    }

    fn become_backup(&mut self, now: Time, interval_cs: u16, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(Action::Deactivate);
        }
        self.state = State::Backup;
        self.adver_at = None;
        self.master_interval_cs = interval_cs;
        self.master_down_at = Some(now + self.master_down_interval());
    }

    fn stop(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(Action::Deactivate);
        }
        self.state = State::Initialize;
        self.master_down_at = None;
        self.adver_at = None;
        self.peer_until = None;
        self.clear_preemption();
        self.own = None;
        self.up_since = None;
    }

    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Startup { link_local, owner } => {
                if self.state != State::Initialize {
                    return out;
                }
                self.own = Some(link_local);
                self.owner = owner;
                self.up_since = Some(now);
                self.last_event = Event::Startup;
                if self.priority() == 255 {
                    self.become_master(now, NewMasterReason::Priority, &mut out);
                } else {
                    self.become_backup(now, self.cfg.interval_cs, &mut out);
                }
            }
            Input::Shutdown => {
                if self.state == State::Master {
                    self.send(&mut out, 0);
                }
                if self.state != State::Initialize {
                    self.last_event = Event::Shutdown;
                }
                self.stop(&mut out);
            }
            Input::InterfaceDown => {
                if self.state != State::Initialize {
                    self.last_event = Event::InterfaceDown;
                }
                self.stop(&mut out);
            }
            Input::Advertisement { src, adv } => self.received(now, src, adv, &mut out),
            Input::Tracked { interface, up } => {
                if !self.cfg.tracked.contains_key(&interface) {
                    return out;
                }
                let before = self.priority();
                if up {
                    self.tracked_down.remove(&interface);
                } else {
                    self.tracked_down.insert(interface);
                }
                if self.priority() != before {
                    self.priority_changed(now, &mut out);
                }
            }
            Input::PreemptGate(open) => self.gate_open = open,
            Input::Reconfigure(cfg) => {
                let before = (self.priority(), self.cfg.interval_cs);
                self.cfg = cfg;
                self.tracked_down
                    .retain(|i| self.cfg.tracked.contains_key(i));
                if !self.cfg.preempt {
                    self.clear_preemption();
                }
                if (self.priority(), self.cfg.interval_cs) != before {
                    self.priority_changed(now, &mut out);
                }
            }
            Input::Timer => self.timers(now, &mut out),
        }
        out
    }

    /// A master announces a new priority at once, so that a backup can preempt (or stop
    /// preempting) without waiting for the next advertisement.
    fn priority_changed(&mut self, now: Time, out: &mut Vec<Action>) {
        if self.state == State::Master {
            let p = self.priority();
            self.send(out, p);
            self.adver_at = Some(now + self.interval());
        }
    }

    fn timers(&mut self, now: Time, out: &mut Vec<Action>) {
        if self.peer_until.is_some_and(|t| t <= now) {
            self.peer_until = None;
        }
        if self.hold_until.is_some_and(|t| t <= now) {
            self.hold_until = None;
            self.hold_done = true;
            self.last_event = Event::PreemptHoldTimeout;
        }
        match self.state {
            State::Backup if self.master_down_at.is_some_and(|t| t <= now) => {
                let reason = if self.preempting {
                    NewMasterReason::Preempted
                } else {
                    NewMasterReason::NoResponse
                };
                self.last_event = Event::MasterTimeout;
                self.become_master(now, reason, out);
            }
            State::Master if self.adver_at.is_some_and(|t| t <= now) => {
                let p = self.priority();
                self.send(out, p);
                self.adver_at = Some(now + self.interval());
            }
            _ => {}
        }
    }

    fn received(&mut self, now: Time, src: Ipv6Addr, adv: Advertisement, out: &mut Vec<Action>) {
        if self.state == State::Initialize || Some(src) == self.own {
            return;
        }
        self.stats.adv_rcvd += 1;
        self.last_adv_source = Some(src);
        let local = self.priority();
        if adv.priority == 0 {
            self.stats.prio0_rcvd += 1;
            // The sender resigned: it is no longer a present peer.
            self.peer_until = None;
            match self.state {
                State::Backup => self.master_down_at = Some(now + self.skew_time()),
                State::Master => {
                    self.send(out, local);
                    self.adver_at = Some(now + self.interval());
                }
                State::Initialize => {}
            }
            return;
        }
        self.peer_until = Some(now + master_down_interval(adv.priority, adv.interval_cs));
        match self.state {
            State::Backup => {
                let lower = adv.priority < local;
                if self.cfg.preempt && lower {
                    if !self.hold_done && self.hold_until.is_none() {
                        self.last_event = Event::LowerPriorityMaster;
                        if self.cfg.hold_time_s == 0 {
                            self.hold_done = true;
                        } else {
                            self.hold_until = Some(now + SECOND * u32::from(self.cfg.hold_time_s));
                        }
                    }
                    if self.hold_done && self.gate_open {
                        // Preempting: the lower-priority master's advertisement is discarded,
                        // so the Master_Down_Timer runs out.
                        self.preempting = true;
                        return;
                    }
                } else {
                    self.clear_preemption();
                }
                self.preempting = false;
                self.master_interval_cs = adv.interval_cs;
                self.master_down_at = Some(now + self.master_down_interval());
            }
            State::Master => {
                let own = self.own.map_or(0, u128::from);
                if adv.priority > local || (adv.priority == local && u128::from(src) > own) {
                    self.last_event = Event::HigherPriorityBackup;
                    self.become_backup(now, adv.interval_cs, out);
                } else {
                    // RFC 9568 §6.4.3: assert mastership at once, which also refreshes
                    // learning bridges.
                    self.send(out, local);
                }
            }
            State::Initialize => {}
        }
    }
}
