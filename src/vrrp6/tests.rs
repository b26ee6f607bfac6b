//! Deterministic tests of the VRRP6 state machine: routers on a simulated LAN and clock, every
//! advertisement delivered at the instant it is sent, every timer asserted to the microsecond.

use super::instance::*;
use super::packet::Advertisement;
use crate::bus::Role;
use crate::time::Time;
use std::net::Ipv6Addr;
use std::time::Duration;

fn ll(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n)
}

fn cfg(priority: u8) -> Config {
    Config {
        priority,
        vips: vec![
            "fe80::100".parse().unwrap(),
            "2001:db8:1::100".parse().unwrap(),
        ],
        ..Config::default()
    }
}

struct Router {
    inst: Instance,
    addr: Ipv6Addr,
    alive: bool,
    /// Every action with the time it was taken.
    actions: Vec<(Time, Action)>,
    /// Every state entered, with its time.
    states: Vec<(Time, State)>,
}

/// Routers on one segment. `connected` false cuts the segment (nothing is delivered).
struct Lan {
    now: Time,
    routers: Vec<Router>,
    connected: bool,
}

impl Lan {
    fn new(cfgs: Vec<Config>) -> Lan {
        Lan {
            now: Time::ZERO,
            routers: cfgs
                .into_iter()
                .enumerate()
                .map(|(i, c)| Router {
                    inst: Instance::new(c),
                    addr: ll(i as u16 + 1),
                    alive: true,
                    actions: Vec::new(),
                    states: Vec::new(),
                })
                .collect(),
            connected: true,
        }
    }

    fn input(&mut self, i: usize, input: Input) {
        let mut queue = vec![(i, input)];
        while let Some((r, input)) = queue.pop() {
            if !self.routers[r].alive {
                continue;
            }
            let now = self.now;
            let before = self.routers[r].inst.state;
            let acts = self.routers[r].inst.handle(now, input);
            let after = self.routers[r].inst.state;
            if after != before {
                self.routers[r].states.push((now, after));
            }
            for a in acts {
                if let Action::Send(adv) = &a {
                    if self.connected {
                        let src = self.routers[r].addr;
                        for j in 0..self.routers.len() {
                            if j != r && self.routers[j].alive {
                                queue.insert(
                                    0,
                                    (
                                        j,
                                        Input::Advertisement {
                                            src,
                                            adv: adv.clone(),
                                        },
                                    ),
                                );
                            }
                        }
                    }
                }
                self.routers[r].actions.push((now, a));
            }
        }
    }

    fn start(&mut self, i: usize) {
        let link_local = self.routers[i].addr;
        self.input(
            i,
            Input::Startup {
                link_local,
                owner: false,
            },
        );
    }

    /// Runs every timer up to and including `until`.
    fn run_until(&mut self, until: Time) {
        loop {
            let next = self
                .routers
                .iter()
                .filter(|r| r.alive)
                .filter_map(|r| r.inst.next_deadline())
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = t;
                    for i in 0..self.routers.len() {
                        if self.routers[i].alive
                            && self.routers[i].inst.next_deadline().is_some_and(|d| d <= t)
                        {
                            self.input(i, Input::Timer);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn state(&self, i: usize) -> State {
        self.routers[i].inst.state
    }

    /// The first time router `i` entered `s` at or after `from`.
    fn entered(&self, i: usize, s: State, from: Time) -> Option<Time> {
        self.routers[i]
            .states
            .iter()
            .find(|(t, st)| *st == s && *t >= from)
            .map(|(t, _)| *t)
    }

    /// Times at which router `i` sent an advertisement with a priority other than 0.
    fn adverts(&self, i: usize) -> Vec<Time> {
        self.routers[i]
            .actions
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Send(adv) if adv.priority > 0 => Some(*t),
                _ => None,
            })
            .collect()
    }

    fn last_advert_before(&self, i: usize, t: Time) -> Time {
        *self
            .adverts(i)
            .iter()
            .rfind(|x| **x <= t)
            .expect("an advertisement")
    }
}

/// One second in microseconds.
const S: u64 = 1_000_000;

/// The instant `us` microseconds after the simulated clock's zero.
fn at(us: u64) -> Time {
    Time::from_micros(us)
}

fn us(us: u64) -> Duration {
    Duration::from_micros(us)
}

#[test]
fn timers_follow_the_rfc_formulas() {
    assert_eq!(skew_time(100, 100), us(609_375));
    assert_eq!(skew_time(200, 100), us(218_750));
    assert_eq!(skew_time(255, 100), us(3_906));
    assert_eq!(master_down_interval(100, 100), us(3_609_375));
    assert_eq!(master_down_interval(1, 1), us(39_960));
    assert_eq!(master_down_interval(254, 4095), us(122_850_000 + 319_921));
}

#[test]
fn election_by_priority() {
    let mut lan = Lan::new(vec![cfg(200), cfg(100)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(at(20 * S));
    // The higher priority's Master_Down_Interval runs out first: 3 s + (56 * 1 s) / 256.
    assert_eq!(
        lan.entered(0, State::Master, Time::ZERO),
        Some(at(3_218_750))
    );
    assert_eq!(lan.state(0), State::Master);
    assert_eq!(lan.state(1), State::Backup);
    assert_eq!(lan.entered(1, State::Master, Time::ZERO), None);
    assert_eq!(lan.routers[0].inst.reason, NewMasterReason::NoResponse);
    // The master installs the addresses once and advertises every second.
    let acts = &lan.routers[0].actions;
    assert_eq!(
        acts.iter().filter(|(_, a)| *a == Action::Activate).count(),
        1
    );
    let adverts = lan.adverts(0);
    assert!(adverts.windows(2).all(|w| w[1] - w[0] == us(S)));
    // The backup hears the master: its peer is present.
    let rs = lan.routers[1].inst.role_state(lan.now);
    assert_eq!((rs.role, rs.peer_present), (Role::Backup, true));
    assert_eq!(lan.routers[1].inst.last_adv_source, Some(ll(1)));
}

#[test]
fn election_by_address_on_a_tie() {
    let mut lan = Lan::new(vec![cfg(100), cfg(100)]);
    lan.connected = false;
    lan.start(0);
    lan.start(1);
    lan.run_until(at(5 * S));
    assert_eq!((lan.state(0), lan.state(1)), (State::Master, State::Master));
    lan.connected = true;
    lan.run_until(at(10 * S));
    // At the next advertisement of the lower address (fe80::1), the higher address answers at
    // once and the lower one steps back.
    let t = lan.adverts(0)[lan.adverts(0).partition_point(|x| *x <= at(5 * S))];
    assert_eq!(lan.entered(0, State::Backup, at(5 * S)), Some(t));
    assert_eq!(lan.state(0), State::Backup);
    assert_eq!(lan.state(1), State::Master);
    assert!(lan.adverts(1).contains(&t));
    assert!(lan.routers[0]
        .actions
        .iter()
        .any(|(at, a)| *at == t && *a == Action::Deactivate));
}

#[test]
fn master_loss_detected_at_exactly_the_master_down_interval() {
    let mut lan = Lan::new(vec![cfg(200), cfg(100)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(at(10 * S + 500_000));
    lan.routers[0].alive = false;
    let last = lan.last_advert_before(0, lan.now);
    lan.run_until(at(20 * S));
    assert_eq!(
        lan.entered(1, State::Master, Time::ZERO),
        Some(last + us(3_609_375))
    );
    assert_eq!(lan.routers[1].inst.reason, NewMasterReason::NoResponse);
}

#[test]
fn peer_presence_ends_at_the_heard_masters_down_interval() {
    let mut lan = Lan::new(vec![cfg(200), cfg(100)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(at(10 * S + 500_000));
    lan.routers[0].alive = false;
    let last = lan.last_advert_before(0, lan.now);
    lan.run_until(last + us(3_218_749));
    assert!(lan.routers[1].inst.role_state(lan.now).peer_present);
    lan.run_until(last + us(3_218_750));
    assert!(!lan.routers[1].inst.role_state(lan.now).peer_present);
    assert_eq!(lan.state(1), State::Backup);
}

#[test]
fn priority_zero_gives_fast_takeover_at_skew_time() {
    let mut lan = Lan::new(vec![cfg(200), cfg(100)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(at(10 * S + 300_000));
    let t = lan.now;
    lan.input(0, Input::Shutdown);
    let zero: Vec<_> = lan.routers[0]
        .actions
        .iter()
        .filter(|(_, a)| matches!(a, Action::Send(adv) if adv.priority == 0))
        .collect();
    assert_eq!(zero.len(), 1);
    assert_eq!(zero[0].0, t);
    assert_eq!(lan.state(0), State::Initialize);
    assert_eq!(lan.routers[0].actions.last().unwrap().1, Action::Deactivate);
    lan.run_until(at(20 * S));
    // Skew_Time of priority 100 at the adopted 1 s interval: 156/256 s.
    assert_eq!(
        lan.entered(1, State::Master, Time::ZERO),
        Some(t + us(609_375))
    );
    assert_eq!(lan.routers[1].inst.stats.prio0_rcvd, 1);
    assert_eq!(lan.routers[0].inst.stats.prio0_sent, 1);
    // The resigned master is no longer a present peer.
    assert!(lan.routers[1].inst.role_state(t + us(1)).role == Role::Master);
}

#[test]
fn a_backup_adopts_the_masters_interval() {
    let mut fast = cfg(200);
    fast.interval_cs = 50;
    let mut lan = Lan::new(vec![fast, cfg(100)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(at(10 * S + 100_000));
    assert_eq!(lan.routers[1].inst.master_interval_cs, 50);
    // 3 * 0.5 s + (156 * 0.5 s) / 256
    assert_eq!(lan.routers[1].inst.master_down_interval(), us(1_804_687));
    assert_eq!(lan.routers[1].inst.skew_time(), us(304_687));
    lan.routers[0].alive = false;
    let last = lan.last_advert_before(0, lan.now);
    lan.run_until(at(20 * S));
    assert_eq!(
        lan.entered(1, State::Master, Time::ZERO),
        Some(last + us(1_804_687))
    );
    // As master it advertises at its own configured interval again.
    let a = lan.adverts(1);
    assert_eq!(a[1] - a[0], us(S));
}

#[test]
fn preemption_waits_for_the_hold_time() {
    // B (priority 100, 0.7 s interval) is master alone; A (200, hold 5 s) joins at 10 s.
    let mut b = cfg(100);
    b.interval_cs = 70;
    let mut a = cfg(200);
    a.hold_time_s = 5;
    let mut lan = Lan::new(vec![a, b]);
    lan.start(1);
    lan.run_until(at(10 * S));
    // B: Master_Down_Interval 2.1 s + 156 * 0.7 s / 256 = 2_526_562 µs.
    assert_eq!(
        lan.entered(1, State::Master, Time::ZERO),
        Some(at(2_526_562))
    );
    lan.start(0);
    let first = at(2_526_562 + 11 * 700_000);
    lan.run_until(first);
    assert_eq!(lan.routers[0].inst.preempt_wait(first), Some((5, false)));
    lan.run_until(first + us(4 * S));
    assert_eq!(lan.state(0), State::Backup);
    assert_eq!(lan.routers[0].inst.preempt_wait(lan.now), Some((1, false)));
    lan.run_until(at(30 * S));
    // The last advertisement accepted is the one before the hold ends (at first + 5 s); from it
    // A's Master_Down_Interval at B's 0.7 s interval is 2.1 s + 56 * 0.7 s / 256.
    let accepted = lan.last_advert_before(1, first + us(5 * S - 1));
    assert_eq!(accepted, first + us(7 * 700_000));
    assert_eq!(
        lan.entered(0, State::Master, Time::ZERO),
        Some(accepted + us(2_253_125))
    );
    assert_eq!(lan.routers[0].inst.reason, NewMasterReason::Preempted);
    assert_eq!(
        lan.entered(1, State::Backup, first),
        Some(accepted + us(2_253_125))
    );
    assert_eq!(lan.state(1), State::Backup);
}

#[test]
fn preemption_needs_the_gate_open() {
    let mut lan = Lan::new(vec![cfg(200), cfg(100)]);
    lan.start(1);
    lan.run_until(at(10 * S));
    lan.input(0, Input::PreemptGate(false));
    lan.start(0);
    lan.run_until(at(60 * S));
    assert_eq!(
        lan.state(0),
        State::Backup,
        "a closed gate holds preemption"
    );
    assert_eq!(lan.state(1), State::Master);
    assert_eq!(lan.routers[0].inst.preempt_wait(lan.now), Some((0, true)));
    lan.input(0, Input::PreemptGate(true));
    let opened = lan.now;
    lan.run_until(at(80 * S));
    let accepted = lan.last_advert_before(1, opened);
    assert_eq!(
        lan.entered(0, State::Master, Time::ZERO),
        Some(accepted + us(3_218_750))
    );
    assert_eq!(lan.state(1), State::Backup);
}

#[test]
fn without_preempt_a_higher_priority_backup_stays_backup() {
    let mut a = cfg(200);
    a.preempt = false;
    let mut lan = Lan::new(vec![a, cfg(100)]);
    lan.start(1);
    lan.run_until(at(10 * S));
    lan.start(0);
    lan.run_until(at(60 * S));
    assert_eq!((lan.state(0), lan.state(1)), (State::Backup, State::Master));
}

#[test]
fn tracked_interface_failure_hands_over() {
    let mut a = cfg(200);
    a.tracked.insert("up0".into(), 150);
    let mut lan = Lan::new(vec![a, cfg(100)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(at(10 * S + 400_000));
    assert_eq!(lan.state(0), State::Master);
    let prev = lan.last_advert_before(0, lan.now);
    lan.input(
        0,
        Input::Tracked {
            interface: "up0".into(),
            up: false,
        },
    );
    let t = lan.now;
    assert_eq!(lan.routers[0].inst.priority(), 50);
    // The master announces its lower priority at once; the backup discards it and takes over
    // one Master_Down_Interval after the last advertisement it accepted.
    assert!(lan.adverts(0).contains(&t));
    lan.run_until(at(30 * S));
    assert_eq!(
        lan.entered(1, State::Master, Time::ZERO),
        Some(prev + us(3_609_375))
    );
    assert_eq!(lan.entered(0, State::Backup, t), Some(prev + us(3_609_375)));
    assert_eq!(lan.routers[1].inst.reason, NewMasterReason::Preempted);
    // The link returns: A is back at 200 and preempts again.
    lan.input(
        0,
        Input::Tracked {
            interface: "up0".into(),
            up: true,
        },
    );
    lan.run_until(at(50 * S));
    assert_eq!((lan.state(0), lan.state(1)), (State::Master, State::Backup));
    // Untracked interfaces change nothing.
    lan.input(
        0,
        Input::Tracked {
            interface: "other".into(),
            up: false,
        },
    );
    assert_eq!(lan.routers[0].inst.priority(), 200);
}

#[test]
fn the_address_owner_is_master_at_once_with_priority_255() {
    let mut lan = Lan::new(vec![cfg(100), cfg(254)]);
    lan.start(1);
    lan.run_until(at(10 * S));
    assert_eq!(lan.state(1), State::Master);
    let t = lan.now;
    lan.input(
        0,
        Input::Startup {
            link_local: ll(1),
            owner: true,
        },
    );
    assert_eq!(lan.entered(0, State::Master, Time::ZERO), Some(t));
    assert_eq!(lan.entered(1, State::Backup, t), Some(t));
    assert_eq!(lan.routers[0].inst.reason, NewMasterReason::Priority);
    let first = lan.routers[0]
        .actions
        .iter()
        .find_map(|(_, a)| match a {
            Action::Send(adv) => Some(adv.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(first.priority, 255);
    // Tracking never lowers the owner.
    lan.routers[0].inst.cfg.tracked.insert("x".into(), 100);
    lan.input(
        0,
        Input::Tracked {
            interface: "x".into(),
            up: false,
        },
    );
    assert_eq!(lan.routers[0].inst.priority(), 255);
}

#[test]
fn a_master_answers_a_lower_priority_advertisement_at_once() {
    let mut lan = Lan::new(vec![cfg(200), cfg(100)]);
    lan.start(0);
    lan.run_until(at(5 * S));
    let t = lan.now;
    let adv = Advertisement {
        vrid: 1,
        priority: 100,
        interval_cs: 100,
        addrs: vec!["fe80::100".parse().unwrap()],
    };
    lan.routers[1].alive = false;
    lan.input(0, Input::Advertisement { src: ll(2), adv });
    assert!(lan.adverts(0).contains(&t));
    assert_eq!(lan.state(0), State::Master);
}

#[test]
fn backup_shutdown_sends_nothing_and_own_packets_are_ignored() {
    let mut lan = Lan::new(vec![cfg(200), cfg(100)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(at(5 * S));
    let n = lan.routers[1].actions.len();
    lan.input(1, Input::Shutdown);
    assert_eq!(lan.routers[1].actions.len(), n);
    assert_eq!(lan.state(1), State::Initialize);
    assert_eq!(lan.routers[1].inst.next_deadline(), None);
    let own = lan.routers[0].addr;
    let adv = Advertisement {
        vrid: 1,
        priority: 254,
        interval_cs: 100,
        addrs: vec!["fe80::100".parse().unwrap()],
    };
    lan.input(0, Input::Advertisement { src: own, adv });
    assert_eq!(lan.state(0), State::Master);
}

#[test]
fn reconfigured_priority_is_announced_by_a_master() {
    let mut lan = Lan::new(vec![cfg(200), cfg(100)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(at(5 * S + 10));
    let t = lan.now;
    lan.input(0, Input::Reconfigure(cfg(50)));
    assert!(lan.adverts(0).contains(&t));
    lan.run_until(at(20 * S));
    assert_eq!((lan.state(0), lan.state(1)), (State::Backup, State::Master));
}
