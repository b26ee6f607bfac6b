//! The LACP actor of one member port as a sans-IO state machine (IEEE 802.1AX, active mode,
//! short timeout): the receive machine (current, expired, defaulted) with its partner
//! timeout, periodic transmission fast or slow as the partner asks, need-to-transmit on any
//! change, and synchronization, collecting and distributing set as the E-Trunk role allows.
//! Its clock is the caller's.

use super::packet::{state, Lacpdu, PortInfo};
use crate::time::Time;
use std::time::Duration;

/// Fast periodic time: one second.
pub const FAST_PERIODIC: Duration = Duration::from_secs(1);
/// Slow periodic time: thirty seconds.
pub const SLOW_PERIODIC: Duration = Duration::from_secs(30);
/// Short timeout: three fast periods.
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(3 * FAST_PERIODIC.as_secs());

/// What this port presents as the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActorConfig {
    pub system_priority: u16,
    pub system: [u8; 6],
    pub key: u16,
    pub port_priority: u16,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The member's carrier.
    Link(bool),
    /// Whether the role lets this member be in sync (E-Trunk master, or force-master).
    InSync(bool),
    /// A LACPDU received on the member.
    Pdu(Lacpdu),
    /// New actor parameters.
    Reconfigure(ActorConfig),
    /// The clock reached `next_deadline()`.
    Timer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this LACPDU on the member.
    Send(Lacpdu),
    /// Selection or the actor state changed.
    Changed {
        selected: bool,
        actor_state: u8,
        partner_state: u8,
    },
}

/// Receive machine states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rx {
    /// The link is down.
    Disabled,
    /// Partner information is current.
    Current,
    /// No LACPDU within the timeout: the partner is kept, out of sync, one more timeout.
    Expired,
    /// No partner: defaulted information.
    Defaulted,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub sent: u64,
    pub errors: u64,
}

/// One member port's actor.
#[derive(Debug, Clone)]
pub struct Actor {
    pub cfg: ActorConfig,
    pub rx: Rx,
    /// The partner's information from its last LACPDU (its actor fields).
    pub partner: Option<PortInfo>,
    pub stats: Stats,
    in_sync: bool,
    /// What the partner last said it knows of us.
    partner_view: Option<PortInfo>,
    current_until: Option<Time>,
    tx_at: Option<Time>,
    reported: Option<(bool, u8, u8)>,
}

impl Actor {
    pub fn new(cfg: ActorConfig) -> Actor {
        Actor {
            cfg,
            rx: Rx::Disabled,
            partner: None,
            stats: Stats::default(),
            in_sync: false,
            partner_view: None,
            current_until: None,
            tx_at: None,
            reported: None,
        }
    }

    /// Whether the member is selected: link up, a partner known that aggregates, and the
    /// role allowing it.
    pub fn selected(&self) -> bool {
        self.in_sync
            && matches!(self.rx, Rx::Current | Rx::Expired)
            && self
                .partner
                .is_some_and(|p| p.state & state::AGGREGATION != 0)
    }

    /// Whether the member can carry traffic for the Eth-Trunk: link up and partner current,
    /// whatever the role.
    pub fn up(&self) -> bool {
        self.rx == Rx::Current
    }

    /// The partner state bits as this actor holds them (cleared sync once expired).
    pub fn partner_state(&self) -> u8 {
        match (self.rx, self.partner) {
            (Rx::Current, Some(p)) => p.state,
            (Rx::Expired, Some(p)) => (p.state & !state::SYNC) | state::TIMEOUT,
            _ => 0,
        }
    }

    /// The actor state bits sent in LACPDUs.
    pub fn actor_state(&self) -> u8 {
        let mut s = state::ACTIVITY | state::TIMEOUT | state::AGGREGATION;
        if self.selected() {
            s |= state::SYNC;
            if self.partner_state() & state::SYNC != 0 {
                s |= state::COLLECTING | state::DISTRIBUTING;
            }
        }
        match self.rx {
            Rx::Defaulted | Rx::Disabled => s |= state::DEFAULTED,
            Rx::Expired => s |= state::EXPIRED,
            Rx::Current => {}
        }
        s
    }

    /// Whether frames may be collected and distributed on the member.
    pub fn collecting_distributing(&self) -> bool {
        self.actor_state() & state::DISTRIBUTING != 0
    }

    pub fn next_deadline(&self) -> Option<Time> {
        [self.current_until, self.tx_at].into_iter().flatten().min()
    }

    fn info(&self) -> PortInfo {
        PortInfo {
            system_priority: self.cfg.system_priority,
            system: self.cfg.system,
            key: self.cfg.key,
            port_priority: self.cfg.port_priority,
            port: self.cfg.port,
            state: self.actor_state(),
        }
    }

    /// The LACPDU this actor sends now.
    pub fn pdu(&self) -> Lacpdu {
        let partner = match (self.rx, self.partner) {
            (Rx::Current | Rx::Expired, Some(p)) => PortInfo {
                state: self.partner_state(),
                ..p
            },
            _ => PortInfo::default(),
        };
        Lacpdu {
            actor: self.info(),
            partner,
            max_delay: 0,
        }
    }

    fn periodic(&self) -> Duration {
        match (self.rx, self.partner) {
            (Rx::Current, Some(p)) if p.state & state::TIMEOUT == 0 => SLOW_PERIODIC,
            _ => FAST_PERIODIC,
        }
    }

    fn send(&mut self, now: Time, out: &mut Vec<Action>) {
        self.stats.sent += 1;
        out.push(Action::Send(self.pdu()));
        self.tx_at = Some(now + self.periodic());
    }

    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        let before = self.info();
        let mut ntt = false;
        match input {
            Input::Link(up) => {
                if up && self.rx == Rx::Disabled {
                    self.rx = Rx::Defaulted;
                    ntt = true;
                } else if !up && self.rx != Rx::Disabled {
                    self.rx = Rx::Disabled;
                    self.partner = None;
                    self.partner_view = None;
                    self.current_until = None;
                    self.tx_at = None;
                }
            }
            Input::InSync(s) => self.in_sync = s,
            Input::Pdu(pdu) => {
                if self.rx == Rx::Disabled {
                    return out;
                }
                self.stats.received += 1;
                let periodic_before = self.periodic();
                self.partner = Some(pdu.actor);
                self.partner_view = Some(pdu.partner);
                self.rx = Rx::Current;
                self.current_until = Some(now + SHORT_TIMEOUT);
                // The partner's view of us is out of date: tell it at once.
                ntt |= pdu.partner != self.info();
                ntt |= self.periodic() < periodic_before;
            }
            Input::Reconfigure(cfg) => self.cfg = cfg,
            Input::Timer => {
                if self.current_until.is_some_and(|t| t <= now) {
                    match self.rx {
                        Rx::Current => {
                            self.rx = Rx::Expired;
                            self.current_until = Some(now + SHORT_TIMEOUT);
                        }
                        _ => {
                            self.rx = Rx::Defaulted;
                            self.partner = None;
                            self.partner_view = None;
                            self.current_until = None;
                        }
                    }
                }
                if self.tx_at.is_some_and(|t| t <= now) {
                    ntt = true;
                }
            }
        }
        if self.rx != Rx::Disabled && (ntt || self.info() != before) {
            self.send(now, &mut out);
        }
        let now_report = (self.selected(), self.actor_state(), self.partner_state());
        if self.reported != Some(now_report) {
            let first = self.reported.is_none();
            let changed_sel =
                self.reported.map(|r| (r.0, r.1)) != Some((now_report.0, now_report.1));
            self.reported = Some(now_report);
            if first || changed_sel {
                out.push(Action::Changed {
                    selected: now_report.0,
                    actor_state: now_report.1,
                    partner_state: now_report.2,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One millisecond in microseconds.
    const MS: u64 = 1_000;

    /// The instant `us` microseconds after the simulated clock's zero.
    fn at(us: u64) -> Time {
        Time::from_micros(us)
    }

    fn cfg() -> ActorConfig {
        ActorConfig {
            system_priority: 1,
            system: [0x00, 0xe0, 0xfc, 0x12, 0x34, 0x56],
            key: 0x101,
            port_priority: 32768,
            port: 5,
        }
    }

    /// What a fast, active partner (like a bond with lacp-time=fast) sends.
    fn partner_pdu(a: &Actor, sync: bool) -> Lacpdu {
        let mut st = state::ACTIVITY | state::TIMEOUT | state::AGGREGATION;
        if sync {
            st |= state::SYNC | state::COLLECTING | state::DISTRIBUTING;
        }
        Lacpdu {
            actor: PortInfo {
                system_priority: 65534,
                system: [2, 0, 0, 0, 0, 9],
                key: 3,
                port_priority: 65535,
                port: 1,
                state: st,
            },
            partner: a.pdu().actor,
            max_delay: 0,
        }
    }

    fn sent(out: &[Action]) -> Vec<Lacpdu> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn sync_follows_the_role() {
        let mut a = Actor::new(cfg());
        let out = a.handle(at(0), Input::Link(true));
        let first = sent(&out);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].actor.system, cfg().system);
        assert_ne!(first[0].actor.state & state::DEFAULTED, 0);
        // Backup: a partner is known but the member stays out of sync.
        let p = partner_pdu(&a, false);
        a.handle(at(10 * MS), Input::Pdu(p));
        assert!(a.up());
        assert!(!a.selected());
        assert_eq!(a.actor_state() & state::SYNC, 0);
        // Master: in sync at once, announced at once.
        let out = a.handle(at(20 * MS), Input::InSync(true));
        let s = sent(&out);
        assert_eq!(s.len(), 1);
        assert_ne!(s[0].actor.state & state::SYNC, 0);
        assert_eq!(s[0].actor.state & state::COLLECTING, 0);
        assert!(out
            .iter()
            .any(|o| matches!(o, Action::Changed { selected: true, .. })));
        // The partner in sync too: collecting and distributing.
        let p = partner_pdu(&a, true);
        a.handle(at(30 * MS), Input::Pdu(p));
        assert!(a.collecting_distributing());
        // Backup again: out of sync, announced at once.
        let out = a.handle(at(40 * MS), Input::InSync(false));
        assert_eq!(sent(&out)[0].actor.state & state::SYNC, 0);
        assert!(!a.collecting_distributing());
    }

    #[test]
    fn fast_periodic_and_partner_timeout() {
        let mut a = Actor::new(cfg());
        a.handle(at(0), Input::Link(true));
        a.handle(at(0), Input::InSync(true));
        let p = partner_pdu(&a, true);
        a.handle(at(0), Input::Pdu(p));
        assert!(a.selected());
        // The partner asks for the short timeout: one LACPDU per second.
        let mut sends = Vec::new();
        let mut now = Time::ZERO;
        while let Some(t) = a.next_deadline().filter(|t| *t < at(3_000 * MS)) {
            now = t;
            if !sent(&a.handle(now, Input::Timer)).is_empty() {
                sends.push(now);
            }
        }
        assert_eq!(sends, [at(1_000 * MS), at(2_000 * MS)]);
        // No LACPDU for three seconds: expired at exactly 3 s, defaulted at 6 s.
        assert!(now < at(3_000 * MS));
        a.handle(at(3_000 * MS - 1), Input::Timer);
        assert_eq!(a.rx, Rx::Current);
        a.handle(at(3_000 * MS), Input::Timer);
        assert_eq!(a.rx, Rx::Expired);
        assert!(!a.up());
        assert_ne!(a.actor_state() & state::EXPIRED, 0);
        assert!(!a.collecting_distributing());
        a.handle(at(6_000 * MS - 1), Input::Timer);
        assert_eq!(a.rx, Rx::Expired);
        let out = a.handle(at(6_000 * MS), Input::Timer);
        assert_eq!(a.rx, Rx::Defaulted);
        assert!(!a.selected());
        assert!(out.iter().any(|o| matches!(
            o,
            Action::Changed {
                selected: false,
                ..
            }
        )));
    }

    #[test]
    fn slow_partner_gets_slow_periodic() {
        let mut a = Actor::new(cfg());
        a.handle(at(0), Input::Link(true));
        let mut p = partner_pdu(&a, false);
        p.actor.state &= !state::TIMEOUT;
        a.handle(at(0), Input::Pdu(p));
        assert_eq!(a.tx_at, Some(Time::ZERO + SLOW_PERIODIC));
    }

    #[test]
    fn link_down_stops_everything() {
        let mut a = Actor::new(cfg());
        a.handle(at(0), Input::Link(true));
        a.handle(at(0), Input::InSync(true));
        let p = partner_pdu(&a, true);
        a.handle(at(0), Input::Pdu(p));
        let out = a.handle(at(5 * MS), Input::Link(false));
        assert!(sent(&out).is_empty());
        assert!(!a.selected());
        assert_eq!(a.next_deadline(), None);
        // LACPDUs on a down link are ignored.
        assert!(a.handle(at(6 * MS), Input::Pdu(p)).is_empty());
    }

    #[test]
    fn a_stale_partner_view_is_corrected_at_once() {
        let mut a = Actor::new(cfg());
        a.handle(at(0), Input::Link(true));
        let mut p = partner_pdu(&a, false);
        p.partner = PortInfo::default();
        let out = a.handle(at(500 * MS), Input::Pdu(p));
        assert_eq!(sent(&out).len(), 1);
        // A partner that already knows us gets nothing extra.
        let p = partner_pdu(&a, false);
        let out = a.handle(at(600 * MS), Input::Pdu(p));
        assert!(sent(&out).is_empty());
    }
}
