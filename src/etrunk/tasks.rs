//! The E-Trunk runtime on Linux: one tokio task drives the [`Node`]: hellos over UDP, LACPDUs
//! over a packet socket per member, timers at the next deadline, member links polled from
//! netlink, each Eth-Trunk's Linux interface (a macvlan named after the Eth-Trunk on its one
//! member, carrying the addresses and MLD), roles and notifications on the bus. The commit
//! pipeline reaches it as a config provider and `<get>` as an oper provider.

use super::events::{MemberLink, Node, NodeConfig, Out};
use super::northbound;
use crate::bus::{Bus, GateWatchers, RoleSourceId};
use crate::handoff::Handoff;
use crate::netio::lacp::LacpSocket;
use crate::netio::netlink::{Link, Netlink};
use crate::time::Time;
use socket2::{Domain, Socket, Type};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// How often member links are re-read, in microseconds.
const LINK_POLL: Duration = Duration::from_millis(200);
/// Largest datagram or frame read.
const MAX_RX: usize = 2048;

#[derive(Default)]
struct Inner {
    node: Node,
    /// The configuration the node runs, and the one a commit handed over for the driver.
    cfg: Handoff<NodeConfig>,
    published: BTreeSet<RoleSourceId>,
    gates: GateWatchers<RoleSourceId>,
    unavailable: Option<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    wake: Notify,
    bus: Bus,
}

impl Shared {
    fn now(&self) -> Time {
        crate::netio::clock::now()
    }
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The runtime; clones share state (one is the config provider, one the state provider).
#[derive(Clone)]
pub struct ETrunkRuntime {
    shared: Arc<Shared>,
}

/// The MAC address of an Eth-Trunk's macvlan: the member's, made locally administered and
/// with the last bit flipped (the kernel refuses a macvlan with its parent's address).
pub fn trunk_mac(member: [u8; 6]) -> [u8; 6] {
    let mut m = member;
    m[0] = (m[0] | 0x02) & 0xfe;
    m[5] ^= 0x01;
    m
}

/// What the driver receives from its reader tasks.
enum Rx {
    Hello { src: Ipv6Addr, payload: Vec<u8> },
    Lacp { member: String, frame: Vec<u8> },
}

impl ETrunkRuntime {
    /// Why this runtime cannot run Eth-Trunk members, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        self.shared.lock().unavailable.clone()
    }

    /// Hands a new configuration to the driver (a commit applied it).
    pub fn configure(&self, cfg: NodeConfig) {
        if self.shared.lock().cfg.offer(cfg) {
            self.shared.wake.notify_one();
        }
    }

    /// Reads the node with the runtime's clock.
    pub fn with_node<T>(&self, f: impl FnOnce(&Node, Time) -> T) -> T {
        let now = self.shared.now();
        f(&self.shared.lock().node, now)
    }

    /// Opens netlink and starts the driver (inside a tokio runtime). Without the privileges
    /// for packet sockets the runtime still starts, and refuses every commit that configures
    /// an Eth-Trunk member, saying why.
    pub fn start(bus: Bus) -> Result<ETrunkRuntime, String> {
        let nl = Netlink::start().map_err(|e| e.to_string())?;
        let links = nl.links().unwrap_or_default();
        let device_mac = device_mac(&links);
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                node: Node::new(device_mac, wall),
                ..Inner::default()
            }),
            wake: Notify::new(),
            bus,
        });
        // Packet sockets need CAP_NET_RAW: find out now rather than at the first member.
        if let Err(e) = Socket::new(Domain::PACKET, Type::RAW, None) {
            let why = format!("packet socket: {e}");
            tracing::warn!(error = %why, "Eth-Trunk members cannot run LACP");
            shared.lock().unavailable = Some(why);
        }
        let (tx, rx) = mpsc::channel(1024);
        let driver = Driver {
            shared: Arc::clone(&shared),
            nl,
            tx,
            udp: BTreeMap::new(),
            lacp: BTreeMap::new(),
            macvlans: BTreeMap::new(),
        };
        tokio::spawn(tracing::Instrument::instrument(
            driver.run(rx),
            tracing::info_span!("etrunk"),
        ));
        Ok(ETrunkRuntime { shared })
    }
}

/// The device's own MAC address: the first Ethernet link by index that is not an
/// Eth-Trunk or a VRRP macvlan of this agent.
fn device_mac(links: &[Link]) -> [u8; 6] {
    let mut sorted: Vec<&Link> = links.iter().collect();
    sorted.sort_by_key(|l| l.index);
    sorted
        .into_iter()
        .filter(|l| !l.name.starts_with("Eth-Trunk") && !l.name.starts_with("vrrp6."))
        .filter_map(|l| l.mac)
        .find(|m| *m != [0; 6])
        .unwrap_or_else(|| {
            let mut m: [u8; 6] = rand::random();
            m[0] = (m[0] | 0x02) & 0xfe;
            m
        })
}

type UdpKey = (Ipv6Addr, u16);
/// A member's packet socket: its ifindex, the socket and its reader task.
type MemberSocket = (u32, Arc<AsyncFd<LacpSocket>>, JoinHandle<()>);

struct Driver {
    shared: Arc<Shared>,
    nl: Netlink,
    tx: mpsc::Sender<Rx>,
    udp: BTreeMap<UdpKey, (Arc<tokio::net::UdpSocket>, JoinHandle<()>)>,
    /// Member name → (ifindex, socket, reader).
    lacp: BTreeMap<String, MemberSocket>,
    /// Eth-Trunk interface name → the member ifindex its macvlan sits on.
    macvlans: BTreeMap<String, u32>,
}

fn open_udp(source: Ipv6Addr, port: u16) -> std::io::Result<tokio::net::UdpSocket> {
    let s = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
    s.set_only_v6(true)?;
    s.set_reuse_address(true)?;
    // The source address may not be configured yet (the interfaces runtime adds it).
    s.set_freebind_v6(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V6(SocketAddrV6::new(source, port, 0, 0)).into())?;
    tokio::net::UdpSocket::from_std(s.into())
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::Receiver<Rx>) {
        let mut next_poll = Time::ZERO;
        loop {
            let cfg = self.shared.lock().cfg.take();
            if let Some(cfg) = cfg {
                self.sockets(&cfg);
                let now = self.shared.now();
                let out = self.shared.lock().node.configure(now, cfg);
                self.carry_out(out);
                self.follow_gates();
                next_poll = Time::ZERO;
            }
            if self.shared.now() >= next_poll {
                self.reconcile_links();
                next_poll = self.shared.now() + LINK_POLL;
            }
            self.check_gates();
            let now = self.shared.now();
            let out = self.shared.lock().node.tick(now);
            self.carry_out(out);
            self.publish_roles();
            let deadline = self
                .shared
                .lock()
                .node
                .next_deadline()
                .unwrap_or(Time::MAX)
                .min(next_poll);
            let wait = deadline - self.shared.now();
            tokio::select! {
                m = rx.recv() => {
                    let Some(m) = m else { return };
                    let now = self.shared.now();
                    let out = match m {
                        Rx::Hello { src, payload } => self.shared.lock().node.hello(now, src, &payload),
                        Rx::Lacp { member, frame } => self.shared.lock().node.lacpdu(now, &member, &frame),
                    };
                    self.carry_out(out);
                }
                _ = tokio::time::sleep(wait) => {}
                _ = self.shared.wake.notified() => {}
            }
        }
    }

    /// Opens the UDP sockets the configuration needs and closes the others.
    fn sockets(&mut self, cfg: &NodeConfig) {
        let wanted: BTreeSet<UdpKey> = cfg
            .etrunks
            .values()
            .filter_map(|e| e.source.map(|s| (s, e.port)))
            .collect();
        self.udp.retain(|k, (_, task)| {
            let keep = wanted.contains(k);
            if !keep {
                task.abort();
            }
            keep
        });
        for k in wanted {
            if self.udp.contains_key(&k) {
                continue;
            }
            match open_udp(k.0, k.1) {
                Ok(s) => {
                    let s = Arc::new(s);
                    let reader = Arc::clone(&s);
                    let tx = self.tx.clone();
                    let task = tokio::spawn(async move {
                        let mut buf = vec![0u8; MAX_RX];
                        loop {
                            match reader.recv_from(&mut buf).await {
                                Ok((n, SocketAddr::V6(from))) => {
                                    let m = Rx::Hello {
                                        src: *from.ip(),
                                        payload: buf[..n].to_vec(),
                                    };
                                    if tx.send(m).await.is_err() {
                                        return;
                                    }
                                }
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::debug!(error = %e, "E-Trunk socket receive");
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                }
                            }
                        }
                    });
                    self.udp.insert(k, (s, task));
                }
                Err(e) => {
                    tracing::error!(source = %k.0, port = k.1, error = %e, "cannot open the E-Trunk socket")
                }
            }
        }
    }

    /// Reads the member links, keeps one packet socket per member, and each Eth-Trunk's
    /// macvlan on its member.
    fn reconcile_links(&mut self) {
        let idle = {
            let st = self.shared.lock();
            st.node.members.is_empty() && st.node.cfg.trunks.is_empty()
        };
        if idle && self.macvlans.is_empty() && self.lacp.is_empty() {
            return;
        }
        let Ok(links) = self.nl.links() else {
            return;
        };
        let by_name: BTreeMap<&str, &Link> = links.iter().map(|l| (l.name.as_str(), l)).collect();
        let (members, trunks) = {
            let st = self.shared.lock();
            let members: Vec<String> = st.node.members.keys().cloned().collect();
            let trunks: Vec<(String, Option<String>)> = st
                .node
                .cfg
                .trunks
                .values()
                .map(|t| (t.name.clone(), t.members.iter().next().cloned()))
                .collect();
            (members, trunks)
        };
        let mut infos = Vec::new();
        for name in &members {
            let Some(l) = by_name.get(name.as_str()) else {
                continue;
            };
            infos.push(MemberLink {
                name: name.clone(),
                index: l.index,
                up: l.up && l.running,
                mac: l.mac.unwrap_or([0; 6]),
            });
        }
        // Packet sockets follow the members' ifindexes.
        self.lacp.retain(|name, (index, _, task)| {
            let keep = infos.iter().any(|i| &i.name == name && i.index == *index);
            if !keep {
                task.abort();
            }
            keep
        });
        for i in &infos {
            if self.lacp.contains_key(&i.name) {
                continue;
            }
            let (ethertype, group) = (crate::lacp::packet::ETHERTYPE, crate::lacp::packet::DEST);
            match LacpSocket::open(i.index, ethertype, group).and_then(crate::netio::sys::register)
            {
                Ok(s) => {
                    let s = Arc::new(s);
                    let reader = Arc::clone(&s);
                    let tx = self.tx.clone();
                    let member = i.name.clone();
                    let task = tokio::spawn(async move {
                        let mut buf = vec![0u8; MAX_RX];
                        loop {
                            let Ok(mut guard) = reader.readable().await else {
                                return;
                            };
                            match guard.try_io(|s| s.get_ref().recv(&mut buf)) {
                                Ok(Ok(n)) => {
                                    let m = Rx::Lacp {
                                        member: member.clone(),
                                        frame: buf[..n].to_vec(),
                                    };
                                    if tx.send(m).await.is_err() {
                                        return;
                                    }
                                }
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "LACP socket receive");
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                }
                                Err(_would_block) => {}
                            }
                        }
                    });
                    self.lacp.insert(i.name.clone(), (i.index, s, task));
                }
                Err(e) => {
                    tracing::error!(member = %i.name, error = %e, "cannot open the LACP socket")
                }
            }
        }
        // Each Eth-Trunk's interface: a macvlan on its member.
        let wanted: BTreeMap<String, u32> = trunks
            .iter()
            .filter_map(|(t, m)| {
                let m = by_name.get(m.as_deref()?)?;
                Some((t.clone(), m.index))
            })
            .collect();
        let gone: Vec<String> = self
            .macvlans
            .keys()
            .filter(|t| !trunks.iter().any(|(n, _)| n == *t))
            .cloned()
            .collect();
        for t in gone {
            if let Some(l) = by_name.get(t.as_str()) {
                let _ = self.nl.del_link(l.index);
            }
            self.macvlans.remove(&t);
        }
        for (t, parent) in wanted {
            let exists = by_name.get(t.as_str());
            if exists.is_some() && self.macvlans.get(&t).is_none_or(|p| *p == parent) {
                // Present (possibly from an earlier run of the agent): keep it.
                self.macvlans.insert(t, parent);
                continue;
            }
            if let Some(l) = exists {
                let _ = self.nl.del_link(l.index);
            }
            let mac = by_name
                .values()
                .find(|l| l.index == parent)
                .and_then(|l| l.mac)
                .map(trunk_mac)
                .unwrap_or_else(|| trunk_mac(rand::random()));
            match self.nl.add_macvlan(parent, &t, mac) {
                Ok(()) => {
                    tracing::info!(interface = %t, parent, "Eth-Trunk interface created");
                    if let Some(l) = self
                        .nl
                        .links()
                        .ok()
                        .and_then(|ls| ls.into_iter().find(|l| l.name == t))
                    {
                        let _ = self.nl.set_up(l.index, true);
                    }
                    self.macvlans.insert(t, parent);
                }
                Err(e) => {
                    tracing::error!(interface = %t, error = %e, "cannot create the Eth-Trunk interface")
                }
            }
        }
        let now = self.shared.now();
        let out = self.shared.lock().node.set_links(now, &infos);
        self.carry_out(out);
    }

    fn carry_out(&self, out: Vec<Out>) {
        for o in out {
            match &o {
                Out::Hello {
                    source,
                    peer,
                    port,
                    payload,
                    etrunk,
                } => {
                    let Some((s, _)) = self.udp.get(&(*source, *port)) else {
                        continue;
                    };
                    let to = SocketAddr::V6(SocketAddrV6::new(*peer, *port, 0, 0));
                    if let Err(e) = s.try_send_to(payload, to) {
                        tracing::debug!(etrunk, error = %e, "sending a hello failed");
                    }
                }
                Out::Lacp { member, frame, .. } => {
                    if let Some((_, s, _)) = self.lacp.get(member) {
                        if let Err(e) = s.get_ref().send(frame) {
                            tracing::debug!(member, error = %e, "sending a LACPDU failed");
                        }
                    }
                }
                Out::ETrunkChange {
                    etrunk,
                    old,
                    new,
                    cause,
                } => {
                    tracing::info!(
                        etrunk,
                        old = old.as_str(),
                        new = new.as_str(),
                        cause = cause.as_str(),
                        "E-Trunk state change"
                    );
                }
                Out::MemberChange {
                    trunk,
                    member,
                    selected,
                    ..
                } => tracing::info!(%trunk, %member, selected, "LACP member state change"),
            }
            if let Some(ev) = northbound::event(&o) {
                self.shared.bus.notify(ev);
            }
        }
    }

    fn publish_roles(&self) {
        let mut st = self.shared.lock();
        let roles = st.node.roles();
        self.shared
            .bus
            .publish_roles(&mut st.published, roles, Clone::clone);
    }

    /// A watcher per role source wakes the driver when its preemption gate moves.
    fn follow_gates(&self) {
        let mut st = self.shared.lock();
        let ids: Vec<RoleSourceId> = st.node.roles().into_iter().map(|(k, _)| k).collect();
        let shared = Arc::clone(&self.shared);
        st.gates
            .follow(&self.shared.bus, ids, Clone::clone, move || {
                shared.wake.notify_one()
            });
    }

    fn check_gates(&self) {
        let now = self.shared.now();
        let mut st = self.shared.lock();
        let mut out = Vec::new();
        for (k, open) in st.gates.moved() {
            out.extend(st.node.set_gate(now, &k, open));
        }
        drop(st);
        self.carry_out(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_mac_differs_from_the_member_and_is_unicast_local() {
        let m = trunk_mac([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(m, [0x02, 0x11, 0x22, 0x33, 0x44, 0x54]);
        let m = trunk_mac([0x03, 0, 0, 0, 0, 0]);
        assert_eq!(m[0] & 0x01, 0);
        assert_ne!(m, [0x03, 0, 0, 0, 0, 0]);
    }
}
