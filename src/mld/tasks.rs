//! The MLD runtime on Linux: one tokio task that owns the raw ICMPv6 / multicast routing
//! socket, runs a [`Router`] per MLD-enabled interface (fed by the socket, ticked at its next
//! deadline), sends the queries it asks for and keeps the kernel's multicast forwarding in step
//! with the listeners. The commit pipeline reaches it as a config provider (MLD and
//! multicast-routing configuration) and `<get>` as an oper provider.

use super::instance::{Action, Input, Router, Time};
use super::network::accept;
use super::northbound::{interface_mld, InterfaceMld};
use super::packet::encode;
use crate::datastore::tree::{Change, Node, NodeKey};
use crate::forwarding::rpf::Route;
use crate::forwarding::{self, kernel, Domain, Forwarding, FwdAction};
use crate::netio::icmp6::{Icmp6Socket, Incoming, UpcallKind};
use crate::netio::netlink::Netlink;
use crate::northbound::commit::{ConfigProvider, OperProvider};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

const IF: &str = "ietf-interfaces";
const MLD: &str = "mldhb-mld";
const MC: &str = "mldhb-multicast";

/// How often links and addresses are re-read (interfaces appearing, link-local changes).
const LINK_POLL: Time = 1000;
/// How long a routing-table snapshot serves RPF look-ups.
const ROUTES_TTL: Time = 1000;
/// How often idle forwarding entries are looked for.
const AGE_EVERY: Time = 10_000;

/// MLD running on one interface.
struct Running {
    index: u32,
    own: Ipv6Addr,
    require_router_alert: bool,
    router: Router,
}

#[derive(Default)]
struct Inner {
    /// Applied configuration: MLD interfaces by name, and the routing switch.
    cfg: BTreeMap<String, InterfaceMld>,
    routing: bool,
    pending: Option<(BTreeMap<String, InterfaceMld>, bool)>,
    running: BTreeMap<String, Running>,
    fwd: Forwarding,
    /// Every link's name by index.
    names: HashMap<u32, String>,
    routes: Vec<Route>,
    routes_at: Option<Time>,
}

struct Shared {
    inner: Mutex<Inner>,
    wake: Notify,
    start: Instant,
}

impl Shared {
    fn now(&self) -> Time {
        self.start.elapsed().as_millis() as Time
    }
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            wake: Notify::new(),
            start: Instant::now(),
        });
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
}

struct Driver {
    shared: Arc<Shared>,
    sock: AsyncFd<Icmp6Socket>,
    nl: Netlink,
}

/// The interfaces that want (S,G): MLD interfaces with a group record forwarding S (any
/// record at all when S is unspecified).
fn listeners<'a>(
    running: &'a BTreeMap<String, Running>,
    now: Time,
) -> impl Fn(&Ipv6Addr, &Ipv6Addr) -> BTreeMap<u32, Domain> + 'a {
    move |g: &Ipv6Addr, s: &Ipv6Addr| {
        running
            .values()
            .filter(|r| {
                r.router
                    .groups
                    .get(g)
                    .is_some_and(|grp| s.is_unspecified() || grp.forwards(s, now))
            })
            .map(|r| (r.index, Domain::ALWAYS))
            .collect()
    }
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
                let mut st = self.shared.lock();
                let acts = st.fwd.age(
                    now,
                    |(g, s)| counters.get(&(*s, *g)).map(|c| c.packets),
                    forwarding::IDLE_TIMEOUT,
                );
                self.program(&acts);
                next_age = now + AGE_EVERY;
            }
            let now = self.shared.now();
            self.tick(now);
            let deadline = {
                let st = self.shared.lock();
                st.running
                    .values()
                    .filter_map(|r| r.router.next_deadline())
                    .min()
                    .unwrap_or(Time::MAX)
                    .min(next_poll)
            };
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
            }
        }
    }

    fn incoming(&self, m: Incoming) {
        let now = self.shared.now();
        match m {
            Incoming::Mld(rx) => {
                let mut st = self.shared.lock();
                let Some((name, r)) = st.running.iter_mut().find(|(_, r)| r.index == rx.ifindex)
                else {
                    return;
                };
                let name = name.clone();
                match accept(&rx, r.require_router_alert) {
                    Ok(msg) => {
                        let acts = r.router.handle(now, Input::Received { from: rx.src, msg });
                        self.actions(&mut st, &name, now, acts);
                    }
                    Err(e) => {
                        tracing::debug!(interface = %name, from = %rx.src, reason = ?e, "MLD message dropped");
                        e.count(&mut r.router.counters.errors);
                    }
                }
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
                let Inner {
                    running,
                    fwd,
                    routes,
                    ..
                } = &mut *st;
                let acts =
                    fwd.on_nocache(now, u.src, u.group, u.mif, routes, &listeners(running, now));
                self.program(&acts);
            }
            Incoming::Upcall(_) => {}
        }
    }

    fn program(&self, acts: &[FwdAction]) {
        if !acts.is_empty() {
            kernel::apply(self.sock.get_ref(), acts);
        }
    }

    /// Carries out a router's actions: packets out, forwarding updated for changed groups.
    fn actions(&self, st: &mut Inner, name: &str, now: Time, acts: Vec<Action>) {
        for a in acts {
            match a {
                Action::Send { dst, msg } => {
                    let Some(r) = st.running.get(name) else {
                        continue;
                    };
                    if let Err(e) = self.sock.get_ref().send(r.index, r.own, dst, &encode(&msg)) {
                        tracing::warn!(interface = %name, error = %e, "sending MLD query failed");
                    }
                }
                Action::GroupUpdated(g) | Action::GroupRemoved(g) => {
                    let Inner { running, fwd, .. } = &mut *st;
                    let fa = fwd.refresh_group(now, g, &listeners(running, now));
                    self.program(&fa);
                }
                Action::QuerierChanged { querier } => {
                    tracing::info!(interface = %name, querier, "MLD querier changed");
                }
            }
        }
    }

    fn tick(&self, now: Time) {
        let mut st = self.shared.lock();
        let due: Vec<String> = st
            .running
            .iter()
            .filter(|(_, r)| r.router.next_deadline().is_some_and(|d| d <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let Some(r) = st.running.get_mut(&name) else {
                continue;
            };
            let acts = r.router.handle(now, Input::Tick);
            self.actions(&mut st, &name, now, acts);
        }
    }

    /// Brings running routers and MIFs in line with configuration, links and addresses.
    fn reconcile(&self) {
        let Ok(links) = self.nl.links() else {
            return;
        };
        let wanted: Vec<(String, InterfaceMld)> = {
            let st = self.shared.lock();
            st.cfg.iter().map(|(n, c)| (n.clone(), c.clone())).collect()
        };
        // Link-local address of each configured interface that is up.
        let mut ready: BTreeMap<String, (u32, Ipv6Addr)> = BTreeMap::new();
        for (name, _) in &wanted {
            let Some(l) = links.iter().find(|l| &l.name == name && l.up) else {
                continue;
            };
            let ll = self.nl.addrs(l.index).ok().and_then(|addrs| {
                addrs.iter().find_map(|a| match a.ip {
                    IpAddr::V6(ip) if ip.is_unicast_link_local() => Some(ip),
                    _ => None,
                })
            });
            if let Some(ll) = ll {
                ready.insert(name.clone(), (l.index, ll));
            }
        }
        let now = self.shared.now();
        let mut st = self.shared.lock();
        st.names = links.iter().map(|l| (l.index, l.name.clone())).collect();
        let mut changed_groups: Vec<Ipv6Addr> = Vec::new();
        // Stop routers whose interface went, lost its address or lost its configuration.
        let stop: Vec<String> = st
            .running
            .iter()
            .filter(|(n, r)| ready.get(*n) != Some(&(r.index, r.own)))
            .map(|(n, _)| n.clone())
            .collect();
        for n in stop {
            if let Some(r) = st.running.remove(&n) {
                tracing::info!(interface = %n, "MLD stopped");
                self.sock.get_ref().leave_router_groups(r.index);
                changed_groups.extend(r.router.groups.keys());
            }
        }
        for (name, c) in &wanted {
            let Some(&(index, own)) = ready.get(name) else {
                continue;
            };
            match st.running.get_mut(name) {
                Some(r) => {
                    r.require_router_alert = c.require_router_alert;
                    if r.router.cfg != c.router {
                        let acts = r.router.reconfigure(c.router.clone(), now);
                        self.actions(&mut st, name, now, acts);
                    }
                }
                None => {
                    if let Err(e) = self.sock.get_ref().join_router_groups(index) {
                        tracing::warn!(interface = %name, error = %e, "joining router groups failed");
                        continue;
                    }
                    tracing::info!(interface = %name, %own, "MLD started");
                    let router = Router::new(c.router.clone(), own, now);
                    changed_groups.extend(router.groups.keys());
                    st.running.insert(
                        name.clone(),
                        Running {
                            index,
                            own,
                            require_router_alert: c.require_router_alert,
                            router,
                        },
                    );
                }
            }
        }
        // Multicast interfaces: every link but loopback, while routing is on.
        let mif_links: Vec<u32> = links
            .iter()
            .filter(|l| l.name != "lo")
            .map(|l| l.index)
            .collect();
        let routing = st.routing;
        let acts = if st.fwd.enabled() != routing {
            tracing::info!(enabled = routing, "IPv6 multicast routing");
            st.fwd.set_enabled(routing, &mif_links)
        } else {
            st.fwd.sync_links(&mif_links)
        };
        self.program(&acts);
        let Inner { running, fwd, .. } = &mut *st;
        for g in changed_groups {
            let fa = fwd.refresh_group(now, g, &listeners(running, now));
            self.program(&fa);
        }
    }
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
    if let Some(v) = m.track_vrrp6_vrid {
        return Err(format!(
            "{name}: MLD cannot track VRRP6 group {v}: no VRRP6 role source runs in this agent"
        ));
    }
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
                let mut cfg = st.cfg.clone();
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
                    st.routing
                };
                (cfg, routing)
            }
        };
        for (n, m) in &cfg {
            if st.cfg.get(n) != Some(m) {
                check(n, m)?;
            }
        }
        st.pending = Some((cfg, routing));
        Ok(())
    }

    fn apply(&mut self, _new: &Node, _changes: &[Change]) -> Result<(), String> {
        let mut st = self.shared.lock();
        if let Some((cfg, routing)) = st.pending.take() {
            st.cfg = cfg;
            st.routing = routing;
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
        for name in st.cfg.keys() {
            match st.running.get(name) {
                Some(r) => super::northbound::merge_state(tree, name, &r.router, now),
                None => super::northbound::merge_down(tree, name),
            }
        }
        if st.fwd.enabled() {
            forwarding::northbound::merge_state(tree, &st.fwd.mfib, &st.names, &counters, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netconf::xml::parse;
    use crate::northbound::edit::{apply, Operation};

    fn tree(x: &str) -> Node {
        let mut t = Node::default();
        assert!(apply(
            &mut t,
            &parse(x.as_bytes()).unwrap(),
            Operation::Merge,
            false
        )
        .is_empty());
        t
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
        let m = InterfaceMld {
            track_vrrp6_vrid: Some(3),
            router: Default::default(),
            require_router_alert: true,
        };
        assert!(check("eth1", &m).unwrap_err().contains("VRRP6"));
    }
}
