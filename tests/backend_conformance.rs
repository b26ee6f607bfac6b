//! Backend conformance: one list of cases, each a sequence of forwarding actions
//! ([`FwdAction`]) and probes ("a frame of (S,G) with hop limit H arriving on interface X
//! leaves on exactly these interfaces, each once"), run against every data-plane backend
//! through one small trait ([`Backend`]):
//!
//! - `sim`: [`SimDataPlane`], in process; `forward()` names the interfaces;
//! - `nftables`: [`NftBackend`] programming a real kernel in a fresh network namespace;
//! - `ip6mr`: [`Ip6mr`] in the same kind of namespace, its MIFs created by the cases' own
//!   `AddMif` actions, parked slots bound to a parking veth whose peer stays down. Skipped on
//!   kernels without IPv6 multicast routing (`CONFIG_IPV6_MROUTE`).
//!
//! The kernel backends share one harness ([`Net`]): four veth pairs (`up0`, `dn0`, `dn1`,
//! `dn2`, the router's ends; `…p`, the test's ends, where frames are sent from and captured
//! with packet sockets). Every case starts from a fresh backend (a new nftables table, a new
//! multicast routing socket, a new simulated table), so no case sees another's state.
//!
//! On the kernel backends every copy captured must also carry hop limit H-1 and the source
//! MAC of the interface it left on. What a backend cannot show is not asked of it: the sim
//! does not model hop limits ([`Backend::checks_hop_limit`]: its copies' hop limits are not
//! checked, and probes whose outcome depends on the hop limit are skipped there) nor count
//! packets ([`Backend::has_counters`]: counter checks are skipped there).
//!
//! A backend that departs from a case on purpose or by a known bug says so in the case
//! ([`Known`]): the departure is printed instead of failing, and a known departure that is no
//! longer seen fails the suite, so that the list stays true.
//!
//! The kernel backends need root: without it they are skipped (they fail instead when `CI`
//! is set).

mod common;

use common::{add_veth, frame, mac_str, Port, Veth};
use mldhb::forwarding::kernel::{parse_mr_cache, Ip6mr, MfcCounters};
use mldhb::forwarding::nftables::{LinkInfo, NftBackend};
use mldhb::forwarding::sim::SimDataPlane;
use mldhb::forwarding::FwdAction;
use std::fmt;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The router's interfaces
// ---------------------------------------------------------------------------------------

/// The router's interfaces, by role: one upstream, three downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum If {
    Up,
    D0,
    D1,
    D2,
}

use If::{Up, D0, D1, D2};

const IFS: [If; 4] = [Up, D0, D1, D2];

impl If {
    /// The veth pair of the interface in the kernel backends' namespace.
    fn veth(self) -> Veth {
        let (name, peer, n) = match self {
            Up => ("up0", "up0p", 0x10),
            D0 => ("dn0", "dn0p", 0x20),
            D1 => ("dn1", "dn1p", 0x30),
            D2 => ("dn2", "dn2p", 0x40),
        };
        Veth {
            name,
            mac: [0x02, 0, 0, 0, n, 0x00],
            peer,
            peer_mac: [0x02, 0, 0, 0, n, 0x01],
        }
    }
}

impl fmt::Display for If {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.veth().name)
    }
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

/// An action of a case; MIFs name the interface by role (each backend has its own indexes).
#[derive(Debug, Clone)]
enum Act {
    Mif { mifi: u16, on: If, parked: bool },
    Fwd(FwdAction),
}

impl Act {
    fn to_fwd(&self, ifindex: impl Fn(If) -> u32) -> FwdAction {
        match self {
            Act::Mif { mifi, on, parked } => FwdAction::AddMif {
                mifi: *mifi,
                ifindex: ifindex(*on),
                parked: *parked,
            },
            Act::Fwd(a) => a.clone(),
        }
    }
}

/// A backend known to depart from one step of a case, and why.
#[derive(Debug, Clone)]
struct Known {
    backend: &'static str,
    why: &'static str,
}

/// One frame sent into the router and where it must leave.
#[derive(Debug, Clone)]
struct Probe {
    source: Ipv6Addr,
    group: Ipv6Addr,
    hop_limit: u8,
    arrive: If,
    /// Exactly these interfaces, one copy each; nothing anywhere else.
    expect: Vec<If>,
    /// The outcome depends on hop-limit rules: checked only where they are modelled.
    needs_hop_limits: bool,
    known: Vec<Known>,
}

/// An entry's counters after the probes before it: `None` for no entry, otherwise packets
/// accepted from the entry's incoming interface and packets from other interfaces. Bytes are
/// checked as 52 per accepted packet (every probe is a 52-byte IPv6 packet).
#[derive(Debug, Clone)]
struct CounterCheck {
    source: Ipv6Addr,
    group: Ipv6Addr,
    expect: Option<(u64, u64)>,
    known: Vec<Known>,
}

#[derive(Debug, Clone)]
enum Step {
    Apply(Vec<Act>),
    Probe(Probe),
    Counters(CounterCheck),
}

impl Step {
    /// The probe's outcome depends on the hop limit (hop limit 1 or 0 is not forwarded).
    fn needs_hop_limits(mut self) -> Step {
        if let Step::Probe(p) = &mut self {
            p.needs_hop_limits = true;
        }
        self
    }

    /// `backend` is known to depart from this step.
    fn known(mut self, backend: &'static str, why: &'static str) -> Step {
        let k = Known { backend, why };
        match &mut self {
            Step::Probe(p) => p.known.push(k),
            Step::Counters(c) => c.known.push(k),
            Step::Apply(_) => panic!("actions have no known departures"),
        }
        self
    }
}

struct Case {
    name: &'static str,
    steps: Vec<Step>,
}

const S1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x10);
const S2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x20);
const G1: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 1, 1);
const G2: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 1, 2);

/// The length of every probe's IPv6 packet (header, UDP header, 4 bytes of payload).
const PROBE_BYTES: u64 = 52;

fn apply(acts: Vec<Act>) -> Step {
    Step::Apply(acts)
}

fn mif(mifi: u16, on: If) -> Act {
    Act::Mif {
        mifi,
        on,
        parked: false,
    }
}

fn parked(mifi: u16, on: If) -> Act {
    Act::Mif {
        mifi,
        on,
        parked: true,
    }
}

fn del_mif(mifi: u16) -> Act {
    Act::Fwd(FwdAction::DelMif { mifi })
}

fn mfc(source: Ipv6Addr, group: Ipv6Addr, parent: u16, oifs: &[u16]) -> Act {
    Act::Fwd(FwdAction::SetMfc {
        source,
        group,
        parent,
        oifs: oifs.to_vec(),
    })
}

fn del_mfc(source: Ipv6Addr, group: Ipv6Addr, parent: u16) -> Act {
    Act::Fwd(FwdAction::DelMfc {
        source,
        group,
        parent,
    })
}

/// Slots 0-3 bound to up0, dn0, dn1, dn2, none parked.
fn four_mifs() -> Step {
    apply(vec![mif(0, Up), mif(1, D0), mif(2, D1), mif(3, D2)])
}

fn probe(source: Ipv6Addr, group: Ipv6Addr, hop_limit: u8, arrive: If, expect: &[If]) -> Step {
    Step::Probe(Probe {
        source,
        group,
        hop_limit,
        arrive,
        expect: expect.to_vec(),
        needs_hop_limits: false,
        known: Vec::new(),
    })
}

fn counters(source: Ipv6Addr, group: Ipv6Addr, expect: Option<(u64, u64)>) -> Step {
    Step::Counters(CounterCheck {
        source,
        group,
        expect,
        known: Vec::new(),
    })
}

const IP6MR_SENDS_BACK: &str = "ip6mr forwards an (S,G) packet out of every listed MIF, the \
     arrival one included (ip6_mr_forward skips the arrival MIF for (*,G) entries only); \
     Ip6mr::apply leaves out the parent's slot, but another slot bound to the arrival interface \
     still gets a copy (Forwarding never lists one)";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "forwarding to two listeners",
            steps: vec![
                four_mifs(),
                apply(vec![mfc(S1, G1, 0, &[1, 2])]),
                probe(S1, G1, 64, Up, &[D0, D1]),
                probe(S1, G1, 64, Up, &[D0, D1]),
            ],
        },
        Case {
            name: "a parked slot forwards nothing; unparking it makes it forward",
            steps: vec![
                apply(vec![mif(0, Up), mif(1, D0), parked(2, D1), mif(3, D2)]),
                apply(vec![mfc(S1, G1, 0, &[1, 2]), mfc(S2, G1, 0, &[2])]),
                probe(S1, G1, 64, Up, &[D0]),
                probe(S2, G1, 64, Up, &[]),
                apply(vec![mif(2, D1)]),
                probe(S1, G1, 64, Up, &[D0, D1]),
                probe(S2, G1, 64, Up, &[D1]),
                // Parked again: stops again.
                apply(vec![parked(2, D1)]),
                probe(S1, G1, 64, Up, &[D0]),
                probe(S2, G1, 64, Up, &[]),
            ],
        },
        Case {
            name: "DelMif stops a slot",
            steps: vec![
                four_mifs(),
                apply(vec![mfc(S1, G1, 0, &[1, 2])]),
                probe(S1, G1, 64, Up, &[D0, D1]),
                apply(vec![del_mif(2)]),
                probe(S1, G1, 64, Up, &[D0]),
            ],
        },
        Case {
            name: "a slot bound to another interface moves its copies there",
            steps: vec![
                apply(vec![mif(0, Up), mif(1, D0), mif(2, D1)]),
                apply(vec![mfc(S1, G1, 0, &[1, 2])]),
                probe(S1, G1, 64, Up, &[D0, D1]),
                // Bound again without DelMif.
                apply(vec![mif(2, D2)]),
                probe(S1, G1, 64, Up, &[D0, D2]),
                // Deleted, then added again: entries keep listing the slot.
                apply(vec![del_mif(2)]),
                probe(S1, G1, 64, Up, &[D0]),
                apply(vec![mif(2, D1)]),
                probe(S1, G1, 64, Up, &[D0, D1]),
            ],
        },
        Case {
            name: "replacing an entry (SetMfc with other outgoing slots)",
            steps: vec![
                four_mifs(),
                apply(vec![mfc(S1, G1, 0, &[1, 2])]),
                probe(S1, G1, 64, Up, &[D0, D1]),
                apply(vec![mfc(S1, G1, 0, &[3])]),
                probe(S1, G1, 64, Up, &[D2]),
                apply(vec![mfc(S1, G1, 0, &[1, 2, 3])]),
                probe(S1, G1, 64, Up, &[D0, D1, D2]),
                apply(vec![mfc(S1, G1, 0, &[])]),
                probe(S1, G1, 64, Up, &[]),
            ],
        },
        Case {
            name: "entries are per (S,G); DelMfc stops its own entry only",
            steps: vec![
                four_mifs(),
                apply(vec![
                    mfc(S1, G1, 0, &[1, 2]),
                    mfc(S2, G1, 0, &[3]),
                    mfc(S1, G2, 0, &[1]),
                ]),
                probe(S1, G1, 64, Up, &[D0, D1]),
                probe(S2, G1, 64, Up, &[D2]),
                probe(S1, G2, 64, Up, &[D0]),
                // No entry.
                probe(S2, G2, 64, Up, &[]),
                apply(vec![del_mfc(S1, G1, 0)]),
                probe(S1, G1, 64, Up, &[]),
                probe(S2, G1, 64, Up, &[D2]),
                probe(S1, G2, 64, Up, &[D0]),
            ],
        },
        Case {
            name: "arrival on a non-parent interface is not forwarded",
            steps: vec![
                four_mifs(),
                apply(vec![mfc(S1, G1, 0, &[1, 2])]),
                // On a listed outgoing interface, and on one with a MIF not listed.
                probe(S1, G1, 64, D0, &[]),
                probe(S1, G1, 64, D2, &[]),
                probe(S1, G1, 64, Up, &[D0, D1]),
                counters(S1, G1, Some((1, 2))).known(
                    "ip6mr",
                    "ip6mr counts every packet that reaches an entry in Pkts, those from a \
                     wrong interface included (ip6_mr_forward increments pkt before its \
                     wrong-interface check); the nftables backend counts them in wrong_if only",
                ),
            ],
        },
        Case {
            name: "the incoming interface is never an outgoing one, even if listed",
            steps: vec![
                // Slot 4: a second slot on the incoming interface.
                apply(vec![mif(0, Up), mif(1, D0), mif(4, Up)]),
                apply(vec![mfc(S1, G1, 0, &[0, 1])]),
                probe(S1, G1, 64, Up, &[D0]),
                apply(vec![mfc(S1, G1, 0, &[4, 1])]),
                probe(S1, G1, 64, Up, &[D0]).known("ip6mr", IP6MR_SENDS_BACK),
            ],
        },
        Case {
            name: "a slot listed twice sends one copy",
            steps: vec![
                four_mifs(),
                apply(vec![mfc(S1, G1, 0, &[1, 1, 2])]),
                probe(S1, G1, 64, Up, &[D0, D1]),
            ],
        },
        Case {
            // The sim does not model hop limits: there only the interfaces are checked.
            name: "hop limit: a forwarded copy leaves with hop limit H-1",
            steps: vec![
                four_mifs(),
                apply(vec![mfc(S1, G1, 0, &[1, 2])]),
                probe(S1, G1, 255, Up, &[D0, D1]),
                probe(S1, G1, 64, Up, &[D0, D1]),
                probe(S1, G1, 2, Up, &[D0, D1]),
            ],
        },
        Case {
            name: "hop limit 1 (or 0) is not forwarded",
            steps: vec![
                four_mifs(),
                apply(vec![mfc(S1, G1, 0, &[1, 2])]),
                probe(S1, G1, 1, Up, &[]).needs_hop_limits(),
                probe(S1, G1, 0, Up, &[]).needs_hop_limits(),
                probe(S1, G1, 2, Up, &[D0, D1]),
            ],
        },
        Case {
            name: "per-entry packet counters count the probes",
            steps: vec![
                four_mifs(),
                apply(vec![mfc(S1, G1, 0, &[1]), mfc(S2, G1, 0, &[2])]),
                counters(S1, G1, Some((0, 0))),
                probe(S1, G1, 64, Up, &[D0]),
                probe(S1, G1, 64, Up, &[D0]),
                probe(S1, G1, 64, Up, &[D0]),
                // Accepted and counted, not forwarded.
                probe(S1, G1, 1, Up, &[]).needs_hop_limits(),
                probe(S2, G1, 64, Up, &[D1]),
                probe(S2, G1, 64, Up, &[D1]),
                counters(S1, G1, Some((4, 0))),
                counters(S2, G1, Some((2, 0))),
                // A replaced entry keeps its counters.
                apply(vec![mfc(S1, G1, 0, &[2])]),
                probe(S1, G1, 64, Up, &[D1]),
                counters(S1, G1, Some((5, 0))),
                apply(vec![del_mfc(S1, G1, 0)]),
                counters(S1, G1, None),
                counters(S2, G1, Some((2, 0))),
            ],
        },
        Case {
            name: "deleting the parent slot stops the entry; adding it again restores it",
            steps: vec![
                four_mifs(),
                apply(vec![mfc(S1, G1, 0, &[1])]),
                probe(S1, G1, 64, Up, &[D0]),
                apply(vec![del_mif(0)]),
                probe(S1, G1, 64, Up, &[]),
                apply(vec![mif(0, Up)]),
                probe(S1, G1, 64, Up, &[D0]),
            ],
        },
    ]
}

// ---------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------

/// One copy of a probe that left the router.
#[derive(Debug, Clone)]
struct Egress {
    /// The interface it left on (None: an interface outside [`IFS`], by index).
    out: Option<If>,
    ifindex: u32,
    /// As captured; None where the backend has no frames (the sim).
    hop_limit: Option<u8>,
    src_mac: Option<[u8; 6]>,
}

/// What the suite needs of a data plane.
trait Backend {
    fn name(&self) -> &'static str;
    /// Whether the backend models hop limits: a copy leaves with hop limit H-1, and hop limit
    /// 1 or 0 is not forwarded. The sim does not (its `forward()` sees no packet header), so
    /// its copies' hop limits are not checked and probes whose outcome depends on the hop
    /// limit are skipped there.
    fn checks_hop_limit(&self) -> bool;
    /// Whether the backend keeps per-entry packet counters (the sim keeps none).
    fn has_counters(&self) -> bool;
    /// Starts a case from nothing: no MIF, no entry, zero counters.
    fn fresh(&mut self);
    fn ifindex(&self, i: If) -> u32;
    /// Carries out actions; returns how many failed.
    fn apply(&mut self, actions: &[FwdAction]) -> usize;
    /// Sends the probes (in order) and returns the copies of each. `expected` is the number
    /// of copies the probes should make in all (a kernel backend waits for them and then
    /// some more for any copy not expected).
    fn send(&mut self, probes: &[&Probe], expected: usize) -> Vec<Vec<Egress>>;
    /// The counters of an entry; None when there is no such entry.
    fn counters(&self, source: Ipv6Addr, group: Ipv6Addr) -> Option<MfcCounters>;
}

/// The simulated data plane, with made-up interface indexes.
#[derive(Default)]
struct Sim {
    dp: SimDataPlane,
}

impl Backend for Sim {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn checks_hop_limit(&self) -> bool {
        false
    }

    fn has_counters(&self) -> bool {
        false
    }

    fn fresh(&mut self) {
        self.dp = SimDataPlane::default();
    }

    fn ifindex(&self, i: If) -> u32 {
        100 + i as u32
    }

    fn apply(&mut self, actions: &[FwdAction]) -> usize {
        self.dp.apply(actions);
        0
    }

    fn send(&mut self, probes: &[&Probe], _expected: usize) -> Vec<Vec<Egress>> {
        probes
            .iter()
            .map(|p| {
                // None: no entry (the kernel would report it); nothing leaves.
                let outs = self
                    .dp
                    .forward(p.source, p.group, self.ifindex(p.arrive))
                    .unwrap_or_default();
                outs.into_iter()
                    .map(|ifindex| Egress {
                        out: IFS.into_iter().find(|i| self.ifindex(*i) == ifindex),
                        ifindex,
                        hop_limit: None,
                        src_mac: None,
                    })
                    .collect()
            })
            .collect()
    }

    fn counters(&self, _: Ipv6Addr, _: Ipv6Addr) -> Option<MfcCounters> {
        None
    }
}

/// How long a kernel backend waits for the copies of a batch of probes, at most.
const DEADLINE: Duration = Duration::from_secs(2);
/// How long it waits after the last expected copy (or after sending, when none is expected)
/// for copies that should not come.
const GRACE: Duration = Duration::from_millis(250);

/// The kernel backends' namespace: the veth pairs and a packet socket on each test end.
struct Net {
    ports: Vec<(If, Port)>,
    next_marker: u16,
}

impl Net {
    /// Sets up the current (fresh) network namespace. The test ends have IPv6 turned off, so
    /// that copies arriving there are captured and go no further: no stack on them answers,
    /// and ip6mr (which takes every IPv6 multicast packet of the namespace) does not see the
    /// copies a second time as arrivals on a wrong interface.
    fn setup() -> Net {
        common::run("ip", &["link", "set", "lo", "up"]);
        let mut ports = Vec::new();
        for i in IFS {
            let v = i.veth();
            add_veth(&v, true);
            let knob = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", v.peer);
            std::fs::write(&knob, "1").unwrap_or_else(|e| panic!("{knob}: {e}"));
            ports.push((i, Port::open(v.peer)));
        }
        Net {
            ports,
            next_marker: 1,
        }
    }

    fn ifindex(i: If) -> u32 {
        common::ifindex(i.veth().name)
    }

    fn send(&mut self, probes: &[&Probe], expected: usize) -> Vec<Vec<Egress>> {
        let mut markers = Vec::new();
        for p in probes {
            let m = self.next_marker;
            self.next_marker += 1;
            let v = p.arrive.veth();
            let port = &self.ports.iter().find(|(i, _)| *i == p.arrive).unwrap().1;
            port.send(&frame(v.peer_mac, p.source, p.group, p.hop_limit, m, 0));
            markers.push(m);
        }
        let start = Instant::now();
        let mut complete: Option<Instant> = None;
        loop {
            for (_, port) in &mut self.ports {
                port.pump(Duration::ZERO);
            }
            let seen: usize = markers
                .iter()
                .map(|m| {
                    self.ports
                        .iter()
                        .map(|(_, p)| p.got(*m).len())
                        .sum::<usize>()
                })
                .sum();
            if complete.is_none() && seen >= expected {
                complete = Some(Instant::now());
            }
            if complete.is_some_and(|t| t.elapsed() >= GRACE) || start.elapsed() >= DEADLINE {
                break;
            }
        }
        markers
            .iter()
            .map(|m| {
                let mut copies = Vec::new();
                for (i, port) in &self.ports {
                    for s in port.got(*m) {
                        copies.push(Egress {
                            out: Some(*i),
                            ifindex: Net::ifindex(*i),
                            hop_limit: Some(s.hop_limit),
                            src_mac: Some(s.src_mac),
                        });
                    }
                }
                copies
            })
            .collect()
    }
}

/// The NFLOG group of the nftables backend's upcalls (nobody listens in this test).
const NFLOG_GROUP: u16 = 78;

struct Nft {
    net: Net,
    nft: Option<NftBackend>,
}

impl Nft {
    fn setup() -> Nft {
        Nft {
            net: Net::setup(),
            nft: None,
        }
    }

    fn nft(&self) -> &NftBackend {
        self.nft.as_ref().expect("a case runs")
    }
}

impl Backend for Nft {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn checks_hop_limit(&self) -> bool {
        true
    }

    fn has_counters(&self) -> bool {
        true
    }

    fn fresh(&mut self) {
        // The table goes with its owner socket: close the old one before opening anew.
        self.nft = None;
        let mut b = NftBackend::open(NFLOG_GROUP).expect("open the nftables backend");
        let links: Vec<LinkInfo> = IFS
            .iter()
            .map(|i| LinkInfo {
                ifindex: Net::ifindex(*i),
                name: i.veth().name.into(),
                mac: i.veth().mac,
                mtu: 1500,
            })
            .collect();
        b.set_links(&links);
        self.nft = Some(b);
    }

    fn ifindex(&self, i: If) -> u32 {
        Net::ifindex(i)
    }

    fn apply(&mut self, actions: &[FwdAction]) -> usize {
        self.nft.as_mut().expect("a case runs").apply(actions)
    }

    fn send(&mut self, probes: &[&Probe], expected: usize) -> Vec<Vec<Egress>> {
        self.net.send(probes, expected)
    }

    fn counters(&self, source: Ipv6Addr, group: Ipv6Addr) -> Option<MfcCounters> {
        self.nft().counters().get(&(source, group)).copied()
    }
}

const IP6MR_SKIP: &str =
    "skipped: ip6mr: the kernel has no IPv6 multicast routing (CONFIG_IPV6_MROUTE)";

/// The parking device: parked slots are bound to it; its peer stays down, so that whatever
/// is sent out of it goes nowhere.
const PARKING: Veth = Veth {
    name: "park0",
    mac: [0x02, 0, 0, 0, 0x50, 0x00],
    peer: "park0p",
    peer_mac: [0x02, 0, 0, 0, 0x50, 0x01],
};

struct Mroute {
    net: Net,
    parking: u32,
    mr: Option<Ip6mr>,
    /// Ip6mr registers its socket with tokio's reactor.
    rt: tokio::runtime::Runtime,
}

impl Mroute {
    /// Sets up the namespace and checks that the kernel has ip6mr; Err: why the backend
    /// cannot run here (a skip, not a failure).
    fn setup() -> Result<Mroute, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("tokio runtime");
        let net = Net::setup();
        add_veth(&PARKING, false);
        let parking = common::ifindex(PARKING.name);
        let first = {
            let _rt = rt.enter();
            Ip6mr::open(parking)
        };
        match first {
            Ok(mr) => {
                let _rt = rt.enter();
                drop(mr);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {
                return Err(IP6MR_SKIP.into());
            }
            Err(e) => panic!("ip6mr: MRT6_INIT: {e}"),
        }
        Ok(Mroute {
            net,
            parking,
            mr: None,
            rt,
        })
    }
}

impl Backend for Mroute {
    fn name(&self) -> &'static str {
        "ip6mr"
    }

    fn checks_hop_limit(&self) -> bool {
        true
    }

    fn has_counters(&self) -> bool {
        true
    }

    fn fresh(&mut self) {
        let _rt = self.rt.enter();
        // Closing the socket (MRT6_DONE) drops every MIF and entry of the namespace, and
        // the queue of packets waiting for an entry.
        self.mr = None;
        self.mr = Some(Ip6mr::open(self.parking).expect("open the ip6mr socket"));
    }

    fn ifindex(&self, i: If) -> u32 {
        Net::ifindex(i)
    }

    fn apply(&mut self, actions: &[FwdAction]) -> usize {
        self.mr.as_ref().expect("a case runs").apply(actions)
    }

    fn send(&mut self, probes: &[&Probe], expected: usize) -> Vec<Vec<Egress>> {
        self.net.send(probes, expected)
    }

    /// Read from the namespace of this thread: `/proc/net` (which
    /// `kernel::read_counters` reads) shows the namespace of the process's main thread.
    fn counters(&self, source: Ipv6Addr, group: Ipv6Addr) -> Option<MfcCounters> {
        let text = std::fs::read_to_string("/proc/thread-self/net/ip6_mr_cache")
            .expect("/proc/thread-self/net/ip6_mr_cache");
        parse_mr_cache(&text).get(&(source, group)).copied()
    }
}

impl Drop for Mroute {
    fn drop(&mut self) {
        let _rt = self.rt.enter();
        self.mr = None;
    }
}

// ---------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------

fn list(ifs: &[If]) -> String {
    let names: Vec<String> = ifs.iter().map(|i| i.to_string()).collect();
    format!("[{}]", names.join(", "))
}

fn describe_copies(copies: &[Egress]) -> String {
    if copies.is_empty() {
        return "nothing".into();
    }
    let parts: Vec<String> = copies
        .iter()
        .map(|c| {
            let mut s = match c.out {
                Some(i) => i.to_string(),
                None => format!("ifindex {}", c.ifindex),
            };
            let mut attrs = Vec::new();
            if let Some(h) = c.hop_limit {
                attrs.push(format!("hop limit {h}"));
            }
            if let Some(m) = c.src_mac {
                attrs.push(format!("source MAC {}", mac_str(&m)));
            }
            if !attrs.is_empty() {
                s.push_str(&format!(" ({})", attrs.join(", ")));
            }
            s
        })
        .collect();
    parts.join("; ")
}

/// Whether the copies of `p` are as expected; Err: what is wrong.
fn check_probe(p: &Probe, copies: &[Egress], hop_limits: bool) -> Result<(), String> {
    let mut wrong = Vec::new();
    for i in &p.expect {
        let n = copies.iter().filter(|c| c.out == Some(*i)).count();
        if n != 1 {
            wrong.push(format!("{n} copies on {i}"));
        }
    }
    for c in copies {
        if !c.out.is_some_and(|i| p.expect.contains(&i)) {
            let at = c
                .out
                .map(|i| i.to_string())
                .unwrap_or_else(|| format!("ifindex {}", c.ifindex));
            wrong.push(format!("a copy on {at}"));
        }
        if hop_limits {
            let want = p.hop_limit.wrapping_sub(1);
            if c.hop_limit.is_some_and(|h| h != want) {
                wrong.push(format!("hop limit {:?} instead of {want}", c.hop_limit));
            }
        }
        if let (Some(i), Some(mac)) = (c.out, c.src_mac) {
            if mac != i.veth().mac {
                wrong.push(format!(
                    "source MAC {} on {i} instead of {i}'s {}",
                    mac_str(&mac),
                    mac_str(&i.veth().mac)
                ));
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        wrong.sort();
        wrong.dedup();
        Err(format!(
            "arrived: {} ({})",
            describe_copies(copies),
            wrong.join(", ")
        ))
    }
}

fn describe_probe(n: usize, p: &Probe, hop_limits: bool) -> String {
    let expected = if p.expect.is_empty() {
        "expected nothing to leave".to_string()
    } else {
        let hl = if hop_limits {
            format!(" with hop limit {}", p.hop_limit.wrapping_sub(1))
        } else {
            String::new()
        };
        format!(
            "expected exactly one copy on each of {}{hl} and nothing elsewhere",
            list(&p.expect)
        )
    };
    format!(
        "step {n}: probe ({}, {}) hop limit {} arriving on {}: {expected}",
        p.source, p.group, p.hop_limit, p.arrive
    )
}

#[derive(Default)]
struct Report {
    failures: Vec<String>,
    departures: Vec<String>,
    probes: usize,
    skipped: usize,
    counter_checks: usize,
}

impl Report {
    /// Records the result of one step; `what` names the case, backend and step.
    fn judge(&mut self, what: String, result: Result<(), String>, backend: &str, known: &[Known]) {
        match (result, known.iter().find(|k| k.backend == backend)) {
            (Ok(()), None) => {}
            (Err(e), None) => self.failures.push(format!("{what}; {e}")),
            (Err(e), Some(k)) => self
                .departures
                .push(format!("{what}; {e} — known: {}", k.why)),
            (Ok(()), Some(k)) => self.failures.push(format!(
                "{what}; conforms now, but the case lists a known departure ({}): remove it",
                k.why
            )),
        }
    }
}

fn run_suite(b: &mut dyn Backend) {
    let backend = b.name();
    let hop_limits = b.checks_hop_limit();
    let mut r = Report::default();
    let all = cases();
    for case in &all {
        b.fresh();
        let steps = &case.steps;
        let mut n = 0;
        while n < steps.len() {
            match &steps[n] {
                Step::Apply(acts) => {
                    let actions: Vec<FwdAction> =
                        acts.iter().map(|a| a.to_fwd(|i| b.ifindex(i))).collect();
                    let failed = b.apply(&actions);
                    if failed > 0 {
                        r.failures.push(format!(
                            "case \"{}\", backend {backend}, step {}: {failed} of {} actions \
                             failed: {actions:?}",
                            case.name,
                            n + 1,
                            actions.len()
                        ));
                    }
                    n += 1;
                }
                Step::Probe(_) => {
                    // Consecutive probes go out together.
                    let mut batch: Vec<(usize, &Probe)> = Vec::new();
                    while let Some(Step::Probe(p)) = steps.get(n) {
                        if p.needs_hop_limits && !hop_limits {
                            r.skipped += 1;
                        } else {
                            batch.push((n + 1, p));
                        }
                        n += 1;
                    }
                    if batch.is_empty() {
                        continue;
                    }
                    let probes: Vec<&Probe> = batch.iter().map(|(_, p)| *p).collect();
                    let expected = probes.iter().map(|p| p.expect.len()).sum();
                    let outcomes = b.send(&probes, expected);
                    for ((step, p), copies) in batch.iter().zip(&outcomes) {
                        r.probes += 1;
                        let what = format!(
                            "case \"{}\", backend {backend}, {}",
                            case.name,
                            describe_probe(*step, p, hop_limits)
                        );
                        r.judge(what, check_probe(p, copies, hop_limits), backend, &p.known);
                    }
                }
                Step::Counters(c) => {
                    n += 1;
                    if !b.has_counters() {
                        r.skipped += 1;
                        continue;
                    }
                    r.counter_checks += 1;
                    let got = b.counters(c.source, c.group);
                    let want = c.expect.map(|(packets, wrong_if)| MfcCounters {
                        packets,
                        bytes: packets * PROBE_BYTES,
                        wrong_if,
                    });
                    let what = format!(
                        "case \"{}\", backend {backend}, step {n}: counters of ({}, {}): \
                         expected {}",
                        case.name,
                        c.source,
                        c.group,
                        match want {
                            Some(w) => format!("{w:?}"),
                            None => "no entry".into(),
                        }
                    );
                    let result = if got == want {
                        Ok(())
                    } else {
                        Err(format!("got {got:?}"))
                    };
                    r.judge(what, result, backend, &c.known);
                }
            }
        }
    }
    for d in &r.departures {
        println!("known departure: {d}");
    }
    println!(
        "{backend}: {} cases, {} probes and {} counter checks, {} steps not applicable, {} \
         known departures, {} failures",
        all.len(),
        r.probes,
        r.counter_checks,
        r.skipped,
        r.departures.len(),
        r.failures.len()
    );
    assert!(
        r.failures.is_empty(),
        "{backend} does not conform:\n{}",
        r.failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[test]
fn sim_conforms() {
    run_suite(&mut Sim::default());
}

#[test]
fn nftables_conforms() {
    if !common::root_or_skip() {
        return;
    }
    common::in_netns(|| {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        run_suite(&mut Nft::setup());
    });
}

#[test]
fn ip6mr_conforms() {
    // Without ip6mr in the kernel there is nothing to test, root or not, CI or not.
    if !std::path::Path::new("/proc/net/ip6_mr_vif").exists() {
        println!("{IP6MR_SKIP}");
        return;
    }
    if !common::root_or_skip() {
        return;
    }
    common::in_netns(|| {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        match Mroute::setup() {
            Ok(mut b) => run_suite(&mut b),
            Err(skip) => println!("{skip}"),
        }
    });
}
