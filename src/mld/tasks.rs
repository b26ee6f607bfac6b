//! The MLD runtime on Linux: one tokio task that owns the raw ICMPv6 / multicast routing
//! socket and drives an [`MldNode`]: received messages and upcalls in, ticks at the next
//! deadline, links and addresses polled from netlink, and the node's [`Out`]s carried out as
//! packets and kernel multicast routing calls. The commit pipeline reaches it as a config
//! provider (MLD and multicast-routing configuration) and `<get>` as an oper provider.

use super::events::{LinkInfo, MldNode, Out};
use super::instance::Time;
use super::northbound::{interface_mld, InterfaceMld};
use crate::datastore::tree::{Change, Node, NodeKey};
use crate::forwarding::rpf::Route;
use crate::forwarding::{self, kernel};
use crate::hotbackup::controller::{Action as HbAction, Controller};
use crate::hotbackup::glue::{drive, Effect};
use crate::netio::icmp6::{Icmp6Socket, Incoming, UpcallKind};
use crate::netio::netlink::Netlink;
use crate::northbound::commit::{ConfigProvider, OperProvider};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, Notify};

const IF: &str = "ietf-interfaces";
const MLD: &str = "mldhb-mld";
const MC: &str = "mldhb-multicast";

/// How often links and addresses are re-read (interfaces appearing, link-local changes).
const LINK_POLL: Time = 1000;
/// How long a routing-table snapshot serves RPF look-ups.
const ROUTES_TTL: Time = 1000;
/// How often idle forwarding entries are looked for.
const AGE_EVERY: Time = 10_000;

#[derive(Default)]
struct Inner {
    node: MldNode,
    /// The hot-backup controller: it works on the node under the same lock.
    hb: Controller,
    /// Packets and kernel calls that arose outside the driver, for it to carry out.
    backlog: Vec<Out>,
    /// Prepared by a commit: MLD interfaces and the routing switch.
    pending: Option<(BTreeMap<String, InterfaceMld>, bool)>,
    routes: Vec<Route>,
    routes_at: Option<Time>,
}

struct Shared {
    inner: Mutex<Inner>,
    wake: Notify,
    /// Wakes the driver for the backlog only.
    io: Notify,
    /// The controller's effects, for the hot-backup runtime.
    effects: mpsc::UnboundedSender<Effect>,
    effects_rx: Mutex<Option<mpsc::UnboundedReceiver<Effect>>>,
}

impl Shared {
    /// The agent's clock, the one RBS carries with the records.
    fn now(&self) -> Time {
        crate::netio::clock::now_ms()
    }
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets the controller settle the node's outputs (and its own actions); returns the IO
    /// and hands the effects on.
    fn settle(&self, st: &mut Inner, now: Time, outs: Vec<Out>, acts: Vec<HbAction>) -> Vec<Out> {
        let Inner { node, hb, .. } = st;
        let (io, fx) = drive(now, node, hb, outs, acts);
        for e in fx {
            let _ = self.effects.send(e);
        }
        io
    }
}

/// The runtime; clones share state (one is the config provider, one the state provider).
#[derive(Clone)]
pub struct MldRuntime {
    shared: Arc<Shared>,
}

impl MldRuntime {
    /// Opens the socket (becoming this namespace's multicast router) and starts the driver.
    /// Must be called inside a tokio runtime.
    pub fn start() -> Result<MldRuntime, String> {
        let sock = Icmp6Socket::open().map_err(|e| format!("MLD socket: {e}"))?;
        let sock = crate::netio::sys::register(sock).map_err(|e| format!("MLD socket: {e}"))?;
        let nl = Netlink::start().map_err(|e| e.to_string())?;
        let parking = parking_link(&nl)?;
        let (effects, effects_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            wake: Notify::new(),
            io: Notify::new(),
            effects,
            effects_rx: Mutex::new(Some(effects_rx)),
        });
        shared.lock().node.fwd.set_parking(Some(parking));
        let driver = Driver {
            shared: Arc::clone(&shared),
            sock,
            nl,
        };
        tokio::spawn(tracing::Instrument::instrument(
            driver.run(),
            tracing::info_span!("mld"),
        ));
        Ok(MldRuntime { shared })
    }

    /// Runs the hot-backup controller on this runtime's clock: `f` gets it and the time and
    /// returns its actions, which are settled against the MLD node; packets and kernel calls
    /// go to the driver.
    pub fn hot_backup(&self, f: impl FnOnce(&mut Controller, Time) -> Vec<HbAction>) {
        let now = self.shared.now();
        let mut st = self.shared.lock();
        let acts = f(&mut st.hb, now);
        let io = self.shared.settle(&mut st, now, Vec::new(), acts);
        if !io.is_empty() {
            st.backlog.extend(io);
            drop(st);
            self.shared.io.notify_one();
        }
    }

    /// Reads the hot-backup controller with this runtime's clock.
    pub fn with_controller<T>(&self, f: impl FnOnce(&Controller, Time) -> T) -> T {
        let now = self.shared.now();
        f(&self.shared.lock().hb, now)
    }

    /// The controller's effects (records for the peer, gate changes, notifications); the
    /// first caller gets them.
    pub fn take_effects(&self) -> Option<mpsc::UnboundedReceiver<Effect>> {
        self.shared
            .effects_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

struct Driver {
    shared: Arc<Shared>,
    sock: AsyncFd<Icmp6Socket>,
    nl: Netlink,
}

impl Driver {
    async fn run(self) {
        let mut next_poll: Time = 0;
        let mut next_age: Time = AGE_EVERY;
        let mut buf = vec![0u8; 65536];
        loop {
            let now = self.shared.now();
            if now >= next_poll {
                self.reconcile();
                next_poll = self.shared.now() + LINK_POLL;
            }
            if now >= next_age {
                let counters = kernel::read_counters();
                let out = {
                    let mut st = self.shared.lock();
                    let out = st.node.age(
                        now,
                        |(g, s)| counters.get(&(*s, *g)).map(|c| c.packets),
                        forwarding::IDLE_TIMEOUT,
                    );
                    self.shared.settle(&mut st, now, out, Vec::new())
                };
                self.carry_out(&out);
                next_age = now + AGE_EVERY;
            }
            let now = self.shared.now();
            let out = {
                let mut st = self.shared.lock();
                let mut out = std::mem::take(&mut st.backlog);
                let ticked = st.node.tick(now);
                out.extend(self.shared.settle(&mut st, now, ticked, Vec::new()));
                out
            };
            self.carry_out(&out);
            let deadline = self
                .shared
                .lock()
                .node
                .next_deadline()
                .unwrap_or(Time::MAX)
                .min(next_poll)
                .min(next_age);
            let wait = Duration::from_millis(deadline.saturating_sub(now));
            tokio::select! {
                r = self.sock.readable() => match r {
                    Ok(mut guard) => {
                        // Drain what is queued, at most a batch before timers get a turn.
                        for _ in 0..1024 {
                            match guard.try_io(|s| s.get_ref().recv(&mut buf)) {
                                Ok(Ok(m)) => self.incoming(m),
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "MLD socket receive");
                                }
                                Err(_would_block) => break,
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "MLD socket failed; MLD stopped");
                        return;
                    }
                },
                _ = tokio::time::sleep(wait) => {}
                _ = self.shared.wake.notified() => next_poll = 0,
                _ = self.shared.io.notified() => {}
            }
        }
    }

    fn incoming(&self, m: Incoming) {
        let now = self.shared.now();
        match m {
            Incoming::Mld(rx) => {
                let out = {
                    let mut st = self.shared.lock();
                    let out = st.node.packet(now, &rx);
                    self.shared.settle(&mut st, now, out, Vec::new())
                };
                self.carry_out(&out);
            }
            Incoming::Upcall(u) if u.kind == UpcallKind::NoCache => {
                let fresh = {
                    let st = self.shared.lock();
                    st.routes_at.is_some_and(|t| now < t + ROUTES_TTL)
                };
                let routes = if fresh { None } else { self.nl.routes6().ok() };
                let mut st = self.shared.lock();
                if let Some(r) = routes {
                    st.routes = r;
                    st.routes_at = Some(now);
                }
                let Inner { node, routes, .. } = &mut *st;
                let out = node.nocache(now, u.src, u.group, u.mif, routes);
                let out = self.shared.settle(&mut st, now, out, Vec::new());
                drop(st);
                self.carry_out(&out);
            }
            Incoming::Upcall(_) => {}
        }
    }

    fn carry_out(&self, out: &[Out]) {
        let sock = self.sock.get_ref();
        let mut fwd = Vec::new();
        for o in out {
            match o {
                Out::Send {
                    ifindex,
                    src,
                    dst,
                    payload,
                } => {
                    if let Err(e) = sock.send(*ifindex, *src, *dst, payload) {
                        tracing::warn!(ifindex, error = %e, "sending MLD message failed");
                    }
                }
                Out::Join(i) => {
                    if let Err(e) = sock.join_router_groups(*i) {
                        tracing::warn!(ifindex = i, error = %e, "joining router groups failed");
                    }
                }
                Out::Leave(i) => sock.leave_router_groups(*i),
                Out::Fwd(f) => fwd.push(f.clone()),
                // Reports for the hot-backup controller, consumed before IO.
                Out::Group { .. } | Out::Running { .. } => {}
            }
        }
        if !fwd.is_empty() {
            kernel::apply(sock, &fwd);
        }
    }

    /// Reads links and the link-local addresses of configured interfaces, and lets the node
    /// bring routers and multicast interfaces in line.
    fn reconcile(&self) {
        let Ok(links) = self.nl.links() else {
            return;
        };
        let configured: Vec<String> = self.shared.lock().node.cfg.keys().cloned().collect();
        let infos: Vec<LinkInfo> = links
            .iter()
            .filter(|l| !PARKING.contains(&l.name.as_str()))
            .map(|l| {
                let link_local = if serves(l) && configured.contains(&l.name) {
                    self.nl.addrs(l.index).ok().and_then(|addrs| {
                        addrs.iter().find_map(|a| match a.ip {
                            IpAddr::V6(ip) if ip.is_unicast_link_local() => Some(ip),
                            _ => None,
                        })
                    })
                } else {
                    None
                };
                LinkInfo {
                    index: l.index,
                    name: l.name.clone(),
                    up: serves(l),
                    link_local,
                    loopback: l.name == "lo",
                }
            })
            .collect();
        let now = self.shared.now();
        let out = {
            let mut st = self.shared.lock();
            let out = st.node.links(now, &infos);
            self.shared.settle(&mut st, now, out, Vec::new())
        };
        self.carry_out(&out);
    }
}

/// The veth pair whose first end parks standby forwarding: multicast interface slots of
/// standby domains are bound to it, so activating a domain re-binds slots instead of rewriting
/// every kernel entry. Its peer stays down, so nothing sent there goes anywhere. This kernel has
/// no dummy driver, hence a veth.
/// Whether MLD may run on a link: up and with carrier (IFF_RUNNING). A link that loses its
/// carrier while staying administratively up (a cable pulled, a veth whose peer went down, an
/// Eth-Trunk's macvlan whose member failed) serves no listener, so its router stops as if the
/// link were shut down; a remote backup profile then tells its peer this device no longer
/// serves the segment.
fn serves(l: &crate::netio::netlink::Link) -> bool {
    l.up && l.running
}

const PARKING: [&str; 2] = ["mldhb-park", "mldhb-park1"];

/// The parking link's index, creating the pair when it is missing (a restart reuses it).
fn parking_link(nl: &Netlink) -> Result<u32, String> {
    let find = |nl: &Netlink| -> Result<Option<u32>, String> {
        Ok(nl
            .links()
            .map_err(|e| e.to_string())?
            .iter()
            .find(|l| l.name == PARKING[0])
            .map(|l| l.index))
    };
    if let Some(i) = find(nl)? {
        return Ok(i);
    }
    nl.add_veth(PARKING[0], PARKING[1])
        .map_err(|e| format!("creating the parking interface {}: {e}", PARKING[0]))?;
    find(nl)?.ok_or_else(|| format!("the parking interface {} did not appear", PARKING[0]))
}

/// What a change list touches: None when everything may have changed, otherwise the touched
/// interface names and whether the routing switch was touched.
fn touched(changes: &[Change]) -> Option<(Vec<String>, bool)> {
    let mut names = Vec::new();
    let mut routing = false;
    for c in changes {
        let p = c.path();
        let first = p.first()?;
        if first.module == MC {
            routing = true;
            continue;
        }
        if first.module != IF || first.name != "interfaces" {
            continue;
        }
        match p.get(1) {
            None => return None,
            Some(k) if k.name == "interface" && k.id.len() == 1 => {
                if p.len() == 2 || p[2].module == MLD {
                    names.push(k.id[0].clone());
                }
            }
            Some(_) => {}
        }
    }
    names.sort();
    names.dedup();
    Some((names, routing))
}

fn check(name: &str, m: &InterfaceMld) -> Result<(), String> {
    for (g, _) in &m.router.static_groups {
        if !super::instance::forwardable(g) {
            return Err(format!(
                "{name}: static group {g} is link-scope or solicited-node and is never forwarded"
            ));
        }
    }
    Ok(())
}

impl ConfigProvider for MldRuntime {
    fn name(&self) -> &str {
        "mld"
    }

    fn prepare(&mut self, _old: &Node, new: &Node, changes: &[Change]) -> Result<(), String> {
        let mut st = self.shared.lock();
        let (applied, applied_routing) = (st.node.cfg.clone(), st.node.routing);
        let (cfg, routing) = match touched(changes) {
            None => (
                super::northbound::configured(new),
                forwarding::northbound::routing_enabled(new),
            ),
            Some((names, routing_touched)) => {
                if names.is_empty() && !routing_touched {
                    st.pending = None;
                    return Ok(());
                }
                let mut cfg = applied.clone();
                for n in names {
                    let entry = new.get(&[
                        NodeKey::new(IF, "interfaces"),
                        NodeKey::with_id(IF, "interface", vec![n.clone()]),
                    ]);
                    match entry.and_then(interface_mld) {
                        Some(m) => {
                            cfg.insert(n, m);
                        }
                        None => {
                            cfg.remove(&n);
                        }
                    }
                }
                let routing = if routing_touched {
                    forwarding::northbound::routing_enabled(new)
                } else {
                    applied_routing
                };
                (cfg, routing)
            }
        };
        for (n, m) in &cfg {
            if applied.get(n) != Some(m) {
                check(n, m)?;
            }
        }
        st.pending = Some((cfg, routing));
        Ok(())
    }

    fn apply(&mut self, _new: &Node, _changes: &[Change]) -> Result<(), String> {
        let mut st = self.shared.lock();
        if let Some((cfg, routing)) = st.pending.take() {
            st.node.cfg = cfg;
            st.node.routing = routing;
            drop(st);
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    fn abort(&mut self) {
        self.shared.lock().pending = None;
    }
}

impl OperProvider for MldRuntime {
    fn merge_state(&self, tree: &mut Node) {
        let now = self.shared.now();
        let counters = kernel::read_counters();
        let st = self.shared.lock();
        let node = &st.node;
        for name in node.cfg.keys() {
            match node.running.get(name) {
                Some(r) => super::northbound::merge_state(tree, name, &r.router, now),
                None => super::northbound::merge_down(tree, name),
            }
        }
        if node.fwd.enabled() {
            forwarding::northbound::merge_state(tree, &node.fwd.mfib, &node.names, &counters, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::northbound::edit::config_tree as tree;

    #[test]
    fn a_link_serves_only_when_up_with_carrier() {
        let link = |up, running| crate::netio::netlink::Link {
            index: 8,
            name: "Eth-Trunk1".into(),
            up,
            running,
            mac: None,
        };
        assert!(serves(&link(true, true)));
        // Admin up, no carrier: the member under an Eth-Trunk's macvlan is down.
        assert!(!serves(&link(true, false)));
        assert!(!serves(&link(false, false)));
    }

    #[test]
    fn changes_touch_only_mld_interfaces_and_the_switch() {
        let old = Node::default();
        let new = tree(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type><mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable></mld></interface></interfaces></config>"#,
        );
        let ch = crate::datastore::tree::diff(&old, &new);
        assert_eq!(touched(&ch), None);
        let newer = tree(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type><description>x</description><mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable><version>1</version></mld></interface></interfaces><multicast xmlns="urn:mldhb:yang:mldhb-multicast"><ipv6-routing-enable>true</ipv6-routing-enable></multicast></config>"#,
        );
        let ch = crate::datastore::tree::diff(&new, &newer);
        let (names, routing) = touched(&ch).unwrap();
        assert!(routing);
        assert_eq!(names, vec!["eth1".to_string()]);
    }

    #[test]
    fn unappliable_configuration_is_refused() {
        let m = InterfaceMld {
            router: super::super::instance::Config {
                static_groups: vec![("ff02::1:3".parse().unwrap(), None)],
                ..Default::default()
            },
            require_router_alert: true,
            track_vrrp6_vrid: None,
        };
        assert!(check("eth1", &m).unwrap_err().contains("link-scope"));
        // Tracking VRRP6 is applied (by the hot-backup controller), not refused.
        let m = InterfaceMld {
            track_vrrp6_vrid: Some(3),
            router: Default::default(),
            require_router_alert: true,
        };
        assert_eq!(check("eth1", &m), Ok(()));
    }
}
