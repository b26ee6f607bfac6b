//! The MLD runtime on Linux: one tokio task that drives an [`MldNode`]: MLD messages from the
//! capture packet socket in, the data plane's upcalls in, ticks at the next deadline, links and
//! addresses polled from netlink, and the node's [`Out`]s carried out as packets (the raw
//! sender socket) and forwarding actions (the data plane that runs: ip6mr or nftables). MLD
//! needs no multicast routing in the kernel; a data plane that cannot start leaves MLD running
//! and shows why in `<get>`. The commit pipeline reaches it as a config provider (MLD and
//! multicast-routing configuration) and `<get>` as an oper provider.

use super::coordinator::{settle, Coordinator, Request};
use super::events::{LinkInfo, MldNode, Out};
use super::northbound::InterfaceMld;
use crate::forwarding::backend::{self, Choice, Dataplane, Status, UpcallSource};
use crate::forwarding::rpf::Route;
use crate::forwarding::{self};
use crate::netio::icmp6::Icmp6Socket;
use crate::netio::mld_capture::MldCapture;
use crate::netio::netlink::Netlink;
use crate::time::Time;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// How often links and addresses are re-read (interfaces appearing, link-local changes).
const LINK_POLL: Duration = Duration::from_secs(1);
/// How long a routing-table snapshot serves RPF look-ups.
const ROUTES_TTL: Duration = Duration::from_secs(1);
/// How often idle forwarding entries are looked for.
const AGE_EVERY: Duration = Duration::from_secs(10);
/// How often a data plane that could not start is tried again.
const DATAPLANE_RETRY: Duration = Duration::from_secs(10);

/// The data plane's per-entry counters by (source, group).
pub type Counters =
    std::collections::HashMap<(Ipv6Addr, Ipv6Addr), forwarding::kernel::MfcCounters>;

/// The configuration a commit hands over: MLD interfaces, the routing switch, the backend.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MldConfig {
    pub mld: BTreeMap<String, InterfaceMld>,
    pub routing: bool,
    pub backend: Choice,
}

#[derive(Default)]
struct Inner {
    node: MldNode,
    /// What steers the routers from outside (hot backup), if attached: it follows the node
    /// under the same lock.
    coordinator: Option<Box<dyn Coordinator>>,
    /// Packets and kernel calls that arose outside the driver, for it to carry out.
    backlog: Vec<Out>,
    /// The applied routing switch and backend choice (the node routes only while a data
    /// plane runs).
    routing: bool,
    backend: Choice,
    routes: Vec<Route>,
    routes_at: Option<Time>,
    status: Status,
}

struct Shared {
    inner: Mutex<Inner>,
    /// The data plane that runs, if any.
    dataplane: Mutex<Option<Dataplane>>,
    wake: Notify,
    /// Wakes the driver for the backlog only.
    io: Notify,
}

impl Shared {
    /// The agent's clock, the one RBS carries with the records.
    fn now(&self) -> Time {
        crate::netio::clock::now()
    }
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn dataplane(&self) -> MutexGuard<'_, Option<Dataplane>> {
        self.dataplane.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The data plane's per-entry counters (none without a data plane).
    fn counters(&self) -> Counters {
        self.dataplane()
            .as_ref()
            .map(|d| d.counters())
            .unwrap_or_default()
    }

    /// Lets the coordinator settle the node's outputs (and its own requests); returns the IO.
    fn settle(&self, st: &mut Inner, now: Time, outs: Vec<Out>, reqs: Vec<Request>) -> Vec<Out> {
        let Inner {
            node, coordinator, ..
        } = st;
        settle(now, node, coordinator.as_deref_mut(), outs, reqs)
    }
}

/// The runtime; clones share state (one is the config provider, one the state provider).
#[derive(Clone)]
pub struct MldRuntime {
    shared: Arc<Shared>,
}

impl MldRuntime {
    /// Hands a new configuration to the driver (a commit applied it).
    pub fn configure(&self, cfg: MldConfig) {
        let mut st = self.shared.lock();
        st.node.cfg = cfg.mld;
        st.routing = cfg.routing;
        st.backend = cfg.backend;
        drop(st);
        self.shared.wake.notify_one();
    }

    /// Reads the routers, the forwarding table, the data plane's status and its per-entry
    /// counters, with the runtime's clock.
    pub fn with_state<T>(&self, f: impl FnOnce(&MldNode, &Status, &Counters, Time) -> T) -> T {
        let now = self.shared.now();
        let counters = self.shared.counters();
        let too_big = self.shared.dataplane().as_ref().and_then(|d| d.too_big());
        let st = self.shared.lock();
        let mut status = st.status.clone();
        status.too_big = too_big;
        f(&st.node, &status, &counters, now)
    }

    /// Opens the MLD sockets and starts the driver; the data plane starts when multicast
    /// routing is configured. Must be called inside a tokio runtime.
    pub fn start() -> Result<MldRuntime, String> {
        let sender = Icmp6Socket::open().map_err(|e| format!("MLD sender socket: {e}"))?;
        let capture = MldCapture::open().map_err(|e| format!("MLD capture socket: {e}"))?;
        let capture = crate::netio::sys::register(capture).map_err(|e| format!("MLD: {e}"))?;
        let nl = Netlink::start().map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            dataplane: Mutex::new(None),
            wake: Notify::new(),
            io: Notify::new(),
        });
        shared.lock().node.fwd.use_slots(true);
        let driver = Driver {
            shared: Arc::clone(&shared),
            sender,
            capture,
            nl,
            opened_for: None,
            tried_at: None,
        };
        tokio::spawn(tracing::Instrument::instrument(
            driver.run(),
            tracing::info_span!("mld"),
        ));
        Ok(MldRuntime { shared })
    }

    /// Attaches the coordinator that steers the routers; there is at most one.
    pub fn attach(&self, c: Box<dyn Coordinator>) -> Result<(), String> {
        let mut st = self.shared.lock();
        if st.coordinator.is_some() {
            return Err("the MLD runtime has a coordinator already".into());
        }
        st.coordinator = Some(c);
        Ok(())
    }

    /// Runs the attached coordinator of type `C` on this runtime's clock, under the node's
    /// lock: `f` gets it and the time and returns its requests, which are settled against the
    /// node; packets and kernel calls go to the driver. Nothing runs without one.
    pub fn coordinate<C: Coordinator>(&self, f: impl FnOnce(&mut C, Time) -> Vec<Request>) {
        let now = self.shared.now();
        let mut st = self.shared.lock();
        let Some(c) = st.coordinator.as_deref_mut() else {
            return;
        };
        let Some(c) = (c as &mut dyn std::any::Any).downcast_mut::<C>() else {
            return;
        };
        let reqs = f(c, now);
        let io = self.shared.settle(&mut st, now, Vec::new(), reqs);
        if !io.is_empty() {
            st.backlog.extend(io);
            drop(st);
            self.shared.io.notify_one();
        }
    }

    /// Reads the attached coordinator of type `C` (None without one) with this runtime's
    /// clock, under the node's lock.
    pub fn inspect<C: Coordinator, T>(&self, f: impl FnOnce(Option<&C>, Time) -> T) -> T {
        let now = self.shared.now();
        let st = self.shared.lock();
        let c = st
            .coordinator
            .as_deref()
            .and_then(|c| (c as &dyn std::any::Any).downcast_ref::<C>());
        f(c, now)
    }
}

struct Driver {
    shared: Arc<Shared>,
    sender: Icmp6Socket,
    capture: AsyncFd<MldCapture>,
    nl: Netlink,
    /// The (routing, backend) the data plane was last opened or closed for.
    opened_for: Option<(bool, Choice)>,
    /// When a data plane that failed was last tried.
    tried_at: Option<Time>,
}

/// A packet without an entry: (source, group, arrival interface (nftables), arrival MIF
/// (ip6mr)).
type Miss = (Ipv6Addr, Ipv6Addr, Option<u32>, Option<u16>);

/// Waits for the data plane's reports of packets without an entry and reads them (at most a
/// batch); never returns without a data plane.
async fn upcalls(src: &Option<UpcallSource>, buf: &mut [u8]) -> Vec<Miss> {
    let mut seen = Vec::new();
    match src {
        Some(UpcallSource::Mroute(s)) => {
            let Ok(mut g) = s.readable().await else {
                return seen;
            };
            for _ in 0..256 {
                match g.try_io(|s| s.get_ref().recv_upcall(buf)) {
                    Ok(Ok(Some(u))) if u.kind == crate::netio::icmp6::UpcallKind::NoCache => {
                        seen.push((u.src, u.group, None, Some(u.mif)))
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "multicast routing socket receive");
                        break;
                    }
                    Err(_would_block) => break,
                }
            }
        }
        Some(UpcallSource::Nflog(s)) => {
            let Ok(mut g) = s.readable().await else {
                return seen;
            };
            for _ in 0..256 {
                match g.try_io(|s| s.get_ref().recv(buf)) {
                    Ok(Ok(pkts)) => seen.extend(
                        pkts.into_iter()
                            .map(|p| (p.src, p.dst, Some(p.indev), None)),
                    ),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "nflog receive");
                        break;
                    }
                    Err(_would_block) => break,
                }
            }
        }
        None => std::future::pending::<()>().await,
    }
    seen
}

impl Driver {
    async fn run(mut self) {
        let mut next_poll = Time::ZERO;
        let mut next_age = Time::ZERO + AGE_EVERY;
        let mut buf = vec![0u8; 65536];
        let mut ubuf = vec![0u8; 65536];
        loop {
            let now = self.shared.now();
            if now >= next_poll {
                self.reconcile();
                next_poll = self.shared.now() + LINK_POLL;
            }
            if now >= next_age {
                let counters = self.shared.counters();
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
            let wait = deadline - now;
            let sources = self.shared.dataplane().as_ref().map(|d| d.upcalls());
            tokio::select! {
                r = self.capture.readable() => match r {
                    Ok(mut guard) => {
                        // Drain what is queued, at most a batch before timers get a turn.
                        for _ in 0..1024 {
                            match guard.try_io(|s| s.get_ref().recv(&mut buf)) {
                                Ok(Ok(Some(rx))) => self.mld(rx),
                                Ok(Ok(None)) => {}
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "MLD capture receive");
                                }
                                Err(_would_block) => break,
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "MLD capture socket failed; MLD stopped");
                        return;
                    }
                },
                misses = upcalls(&sources, &mut ubuf) => self.nocache(&misses),
                _ = tokio::time::sleep(wait) => {}
                _ = self.shared.wake.notified() => next_poll = Time::ZERO,
                _ = self.shared.io.notified() => {}
            }
        }
    }

    fn mld(&self, rx: crate::netio::icmp6::RxPacket) {
        let now = self.shared.now();
        let out = {
            let mut st = self.shared.lock();
            let out = st.node.packet(now, &rx);
            self.shared.settle(&mut st, now, out, Vec::new())
        };
        self.carry_out(&out);
    }

    /// Packets of (source, group)s had no entry: each arrived on MIF `mif` (ip6mr) or on
    /// interface `indev` (nftables). Their entries go to the data plane in one update.
    fn nocache(&self, misses: &[Miss]) {
        if misses.is_empty() {
            return;
        }
        let now = self.shared.now();
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
        let mut out = Vec::new();
        for &(source, group, indev, mif) in misses {
            let Some(mif) = mif.or_else(|| indev.and_then(|i| st.node.fwd.mif_of(i))) else {
                continue;
            };
            let Inner { node, routes, .. } = &mut *st;
            let o = node.nocache(now, source, group, mif, routes);
            out.extend(self.shared.settle(&mut st, now, o, Vec::new()));
        }
        drop(st);
        self.carry_out(&out);
    }

    fn carry_out(&self, out: &[Out]) {
        let mut fwd = Vec::new();
        for o in out {
            match o {
                Out::Send {
                    ifindex,
                    src,
                    dst,
                    payload,
                } => {
                    if let Err(e) = self.sender.send(*ifindex, *src, *dst, payload) {
                        tracing::warn!(ifindex, error = %e, "sending MLD message failed");
                    }
                }
                Out::Join(i) => {
                    if let Err(e) = self.sender.join_router_groups(*i) {
                        tracing::warn!(ifindex = i, error = %e, "joining router groups failed");
                    }
                    if let Err(e) = self.capture.get_ref().watch(*i) {
                        tracing::warn!(ifindex = i, error = %e, "receiving all multicast failed");
                    }
                }
                Out::Leave(i) => {
                    self.sender.leave_router_groups(*i);
                    self.capture.get_ref().unwatch(*i);
                }
                Out::Fwd(f) => fwd.push(f.clone()),
                // Reports for the coordinator, consumed before IO.
                Out::Group { .. } | Out::Running { .. } => {}
            }
        }
        if !fwd.is_empty() {
            if let Some(d) = self.shared.dataplane().as_mut() {
                d.apply(&fwd);
            }
        }
    }

    /// Opens, replaces or closes the data plane to match the applied configuration; a data
    /// plane that failed is tried again every [`DATAPLANE_RETRY`].
    fn reconcile_dataplane(&mut self) {
        let now = self.shared.now();
        let (routing, choice) = {
            let st = self.shared.lock();
            (st.routing, st.backend)
        };
        let want = (routing, choice);
        let running = self.shared.dataplane().is_some();
        let retry = routing && !running && self.tried_at.is_none_or(|t| now - t >= DATAPLANE_RETRY);
        if self.opened_for == Some(want) && !retry {
            return;
        }
        // Close what runs: the node forgets its kernel state, the old backend is dropped.
        let old = self.shared.dataplane().take();
        if let Some(mut old) = old {
            let out = {
                let mut st = self.shared.lock();
                st.node.routing = false;
                st.node.fwd.set_enabled(false, &[])
            };
            old.apply(&out);
        }
        self.opened_for = Some(want);
        let status = if routing {
            self.tried_at = Some(now);
            let nl = self.nl.clone();
            let (dp, status) = backend::open(choice, || parking_link(&nl));
            match &dp {
                Some(d) => {
                    tracing::info!(backend = d.name(), reason = %status.reason, "multicast data plane up")
                }
                None => {
                    tracing::warn!(reason = %status.reason, "multicast data plane down; routing configuration not applied")
                }
            }
            *self.shared.dataplane() = dp;
            status
        } else {
            Status::default()
        };
        self.shared.lock().status = status;
    }

    /// Reads links and the link-local addresses of configured interfaces, and lets the node
    /// bring routers and multicast interfaces in line.
    fn reconcile(&mut self) {
        let Ok(links) = self.nl.links() else {
            return;
        };
        let links: Vec<_> = links
            .into_iter()
            .filter(|l| !PARKING.contains(&l.name.as_str()))
            .collect();
        self.reconcile_dataplane();
        // A data plane opened just now learns the links here too.
        if let Some(d) = self.shared.dataplane().as_mut() {
            d.links(&links);
        }
        let configured: Vec<String> = self.shared.lock().node.cfg.keys().cloned().collect();
        let infos: Vec<LinkInfo> = links
            .iter()
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
            st.node.routing = st.routing && self.shared.dataplane().is_some();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_serves_only_when_up_with_carrier() {
        let link = |up, running| crate::netio::netlink::Link {
            index: 8,
            name: "Eth-Trunk1".into(),
            up,
            running,
            mac: None,
            mtu: 1500,
        };
        assert!(serves(&link(true, true)));
        // Admin up, no carrier: the member under an Eth-Trunk's macvlan is down.
        assert!(!serves(&link(true, false)));
        assert!(!serves(&link(false, false)));
    }
}
