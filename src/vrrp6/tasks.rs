//! The VRRP6 runtime on Linux: one tokio task owns the raw VRRP socket and drives the
//! [`VrrpNode`]: packets in, timers at the next deadline, links polled from netlink, and the
//! node's [`Out`]s carried out as advertisements, virtual addresses (or proxy neighbour
//! entries without accept mode), macvlans for the virtual MAC, unsolicited Neighbor
//! Advertisements, role events on the bus and ietf-vrrp notifications. The commit pipeline
//! reaches it as a config provider and `<get>` as an oper provider.

use super::events::{IfInfo, InstanceConfig, Key, Out, Rx, VrrpNode};
use super::northbound::{self, Clock};
use super::packet;
use crate::bus::{Bus, GateWatchers, RoleSourceId};
use crate::handoff::Handoff;
use crate::netio::netlink::{Addr, Link, Netlink};
use crate::netio::vrrp6::{NdSocket, VrrpSocket};
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// How often links and addresses are re-read, in microseconds.
const LINK_POLL: Duration = Duration::from_secs(1);

/// What the driver put into the kernel for one master.
#[derive(Debug, Default)]
struct Installed {
    /// Link carrying the virtual addresses (the interface or its macvlan).
    on: u32,
    addrs: Vec<Ipv6Addr>,
    proxies: Vec<Ipv6Addr>,
    macvlan: Option<u32>,
}

#[derive(Default)]
struct Inner {
    node: VrrpNode,
    /// The configuration the node runs, and the one a commit handed over for the driver.
    cfg: Handoff<BTreeMap<Key, InstanceConfig>>,
    installed: BTreeMap<Key, Installed>,
    /// Routers whose leftovers from an earlier run were removed.
    cleaned: BTreeSet<Key>,
    published: BTreeSet<Key>,
    gates: GateWatchers<Key>,
    stopping: bool,
    /// Why the sockets could not be opened.
    unavailable: Option<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    wake: Notify,
    stopped: Notify,
    /// When the runtime started on the agent's clock (its counters count from then).
    started: Time,
    bus: Bus,
}

impl Shared {
    fn now(&self) -> Time {
        crate::netio::clock::now()
    }
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn clock(&self) -> Clock {
        Clock {
            now: self.now(),
            wall: SystemTime::now(),
            started: self.started,
        }
    }
}

/// The runtime; clones share state (one is the config provider, one the state provider).
#[derive(Clone)]
pub struct Vrrp6Runtime {
    shared: Arc<Shared>,
}

/// The name of the macvlan carrying the virtual MAC of `vrid` on link `parent`.
pub fn macvlan_name(parent: u32, vrid: u8) -> String {
    format!("vrrp6.{vrid}.{parent}").chars().take(15).collect()
}

fn sysctl(iface: &str, key: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(format!("/proc/sys/net/ipv6/conf/{iface}/{key}"), value)
}

fn sysctl_read(iface: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{iface}/{key}"))
        .ok()
        .map(|s| s.trim().to_string())
}

impl Vrrp6Runtime {
    /// Why this runtime cannot run VRRP6 routers, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        self.shared.lock().unavailable.clone()
    }

    /// Hands a new configuration to the driver (a commit applied it).
    pub fn configure(&self, cfg: BTreeMap<Key, InstanceConfig>) {
        if self.shared.lock().cfg.offer(cfg) {
            self.shared.wake.notify_one();
        }
    }

    /// Reads the routers with the agent's clock.
    pub fn with_node<T>(&self, f: impl FnOnce(&VrrpNode, &Clock) -> T) -> T {
        let clock = self.shared.clock();
        f(&self.shared.lock().node, &clock)
    }

    /// Opens the sockets and starts the driver. Must be called inside a tokio runtime.
    /// Without the privileges for its sockets the runtime still starts, and refuses every
    /// commit that configures a VRRP6 router, saying why.
    pub fn start(bus: Bus) -> Result<Vrrp6Runtime, String> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            wake: Notify::new(),
            stopped: Notify::new(),
            started: crate::netio::clock::now(),
            bus,
        });
        let opened = VrrpSocket::open()
            .and_then(crate::netio::sys::register)
            .map_err(|e| format!("VRRP socket: {e}"))
            .and_then(|s| {
                NdSocket::open()
                    .map(|nd| (s, nd))
                    .map_err(|e| format!("neighbor discovery socket: {e}"))
            });
        let (sock, nd) = match opened {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "VRRP6 cannot run");
                shared.lock().unavailable = Some(e);
                return Ok(Vrrp6Runtime { shared });
            }
        };
        let nl = Netlink::start().map_err(|e| e.to_string())?;
        let driver = Driver {
            shared: Arc::clone(&shared),
            sock,
            nd,
            nl,
        };
        tokio::spawn(tracing::Instrument::instrument(
            driver.run(),
            tracing::info_span!("vrrp6"),
        ));
        Ok(Vrrp6Runtime { shared })
    }

    /// Every master resigns (priority 0) and every virtual address is removed; returns when
    /// done or after `timeout`.
    pub async fn shutdown(&self, timeout: Duration) {
        if self.shared.lock().unavailable.is_some() {
            return;
        }
        let done = self.shared.stopped.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        let _ = tokio::time::timeout(timeout, done).await;
    }
}

struct Driver {
    shared: Arc<Shared>,
    sock: AsyncFd<VrrpSocket>,
    nd: NdSocket,
    nl: Netlink,
}

impl Driver {
    async fn run(self) {
        let mut next_poll = Time::ZERO;
        let mut buf = vec![0u8; 65536];
        loop {
            if self.shared.lock().stopping {
                let now = self.shared.now();
                let out = self.shared.lock().node.shutdown(now);
                self.carry_out(out);
                self.publish_roles(now);
                self.shared.stopped.notify_waiters();
                return;
            }
            let cfg = self.shared.lock().cfg.take();
            if let Some(cfg) = cfg {
                self.reconcile_links();
                self.cleanup_leftovers(&cfg);
                let now = self.shared.now();
                let out = self.shared.lock().node.configure(now, cfg);
                self.carry_out(out);
                self.follow_gates();
            }
            let now = self.shared.now();
            if now >= next_poll {
                self.reconcile_links();
                next_poll = self.shared.now() + LINK_POLL;
            }
            self.check_gates();
            let now = self.shared.now();
            let out = self.shared.lock().node.tick(now);
            self.carry_out(out);
            self.publish_roles(now);
            let deadline = self
                .shared
                .lock()
                .node
                .next_deadline()
                .unwrap_or(Time::MAX)
                .min(next_poll);
            let wait = deadline - self.shared.now();
            tokio::select! {
                r = self.sock.readable() => match r {
                    Ok(mut guard) => {
                        for _ in 0..256 {
                            match guard.try_io(|s| s.get_ref().recv(&mut buf)) {
                                Ok(Ok(p)) => {
                                    let rx = Rx {
                                        ifindex: p.ifindex,
                                        src: p.src,
                                        dst: p.dst,
                                        hop_limit: p.hop_limit,
                                        payload: p.payload,
                                    };
                                    let now = self.shared.now();
                                    let out = self.shared.lock().node.packet(now, &rx);
                                    self.carry_out(out);
                                }
                                Ok(Err(e)) => tracing::debug!(error = %e, "VRRP socket receive"),
                                Err(_would_block) => break,
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "VRRP socket failed; VRRP6 stopped");
                        return;
                    }
                },
                _ = tokio::time::sleep(wait) => {}
                _ = self.shared.wake.notified() => {}
            }
        }
    }

    /// Publishes every router's role; routers that went away publish Initialize.
    fn publish_roles(&self, now: Time) {
        let mut st = self.shared.lock();
        let roles = st.node.roles(now);
        self.shared
            .bus
            .publish_roles(&mut st.published, roles, role_id);
    }

    /// Follows the preemption gate of every configured router: a watcher per router wakes the
    /// driver when its gate moves.
    fn follow_gates(&self) {
        let mut st = self.shared.lock();
        let keys: Vec<Key> = st.node.instances.keys().cloned().collect();
        let shared = Arc::clone(&self.shared);
        st.gates.follow(&self.shared.bus, keys, role_id, move || {
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

    /// Reads the links the routers use or track, and the link-local address of each router's
    /// interface (never one of the virtual addresses).
    fn reconcile_links(&self) {
        let Ok(links) = self.nl.links() else {
            return;
        };
        let vips: BTreeMap<String, Vec<Ipv6Addr>> = {
            let st = self.shared.lock();
            let mut m: BTreeMap<String, Vec<Ipv6Addr>> = BTreeMap::new();
            let cfg = st.cfg.current();
            for (k, c) in cfg {
                m.entry(k.0.clone())
                    .or_default()
                    .extend(c.vrrp.vips.iter().copied());
            }
            m
        };
        let infos: Vec<IfInfo> = links
            .iter()
            .map(|l| {
                let link_local = match vips.get(&l.name) {
                    Some(v) if l.up => self.link_local(l.index, v),
                    _ => None,
                };
                IfInfo {
                    index: l.index,
                    name: l.name.clone(),
                    up: l.up && l.running,
                    link_local,
                }
            })
            .collect();
        let now = self.shared.now();
        let out = self.shared.lock().node.set_links(now, infos);
        self.carry_out(out);
    }

    fn link_local(&self, index: u32, vips: &[Ipv6Addr]) -> Option<Ipv6Addr> {
        let addrs = self.nl.addrs(index).ok()?;
        let lls: Vec<(Ipv6Addr, u8)> = addrs
            .iter()
            .filter_map(|a| match a.ip {
                IpAddr::V6(ip) if ip.is_unicast_link_local() => Some((ip, a.prefix)),
                _ => None,
            })
            .collect();
        // The interface's own link-local, unless a virtual address is the interface's own.
        lls.iter()
            .find(|(ip, p)| *p == 64 && !vips.contains(ip))
            .or_else(|| lls.iter().find(|(ip, _)| !vips.contains(ip)))
            .or_else(|| lls.iter().find(|(_, p)| *p == 64))
            .map(|(ip, _)| *ip)
    }

    fn links_by_name(&self) -> BTreeMap<String, Link> {
        self.nl
            .links()
            .unwrap_or_default()
            .into_iter()
            .map(|l| (l.name.clone(), l))
            .collect()
    }

    /// Removes what an earlier run (a crash included) left for routers that are starting now:
    /// their macvlan, their proxy entries and their virtual addresses (never an address the
    /// interface owns).
    fn cleanup_leftovers(&self, cfg: &BTreeMap<Key, InstanceConfig>) {
        let todo: Vec<(Key, InstanceConfig)> = {
            let st = self.shared.lock();
            cfg.iter()
                .filter(|(k, _)| !st.cleaned.contains(*k) && !st.installed.contains_key(*k))
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect()
        };
        if todo.is_empty() {
            return;
        }
        let links = self.links_by_name();
        for (key, c) in &todo {
            let Some(link) = links.get(&key.0) else {
                continue;
            };
            if let Some(m) = links.get(&macvlan_name(link.index, key.1)) {
                let _ = self.nl.del_link(m.index);
            }
            let own_ll = self.link_local(link.index, &c.vrrp.vips);
            let present = self.nl.addrs(link.index).unwrap_or_default();
            for v in &c.vrrp.vips {
                if c.owned.contains(v) || Some(*v) == own_ll {
                    continue;
                }
                for a in present.iter().filter(|a| a.ip == IpAddr::V6(*v)) {
                    if self.nl.del_addr(link.index, *a).is_ok() {
                        tracing::info!(interface = %key.0, address = %v, "removed a virtual address left by an earlier run");
                    }
                }
                let _ = self.nl.set_proxy(link.index, *v, false);
            }
        }
        let mut st = self.shared.lock();
        st.cleaned.extend(todo.into_iter().map(|(k, _)| k));
    }

    fn carry_out(&self, out: Vec<Out>) {
        for o in out {
            match o {
                Out::Send {
                    key,
                    ifindex,
                    src,
                    payload,
                } => {
                    // With the virtual MAC, a master sends through its macvlan.
                    let via = self
                        .shared
                        .lock()
                        .installed
                        .get(&key)
                        .and_then(|i| i.macvlan)
                        .unwrap_or(ifindex);
                    if let Err(e) = self.sock.get_ref().send(via, src, &payload) {
                        tracing::warn!(interface = %key.0, vrid = key.1, error = %e, "sending a VRRP advertisement failed");
                    }
                }
                Out::Join(i) => {
                    if let Err(e) = self.sock.get_ref().join(i) {
                        tracing::warn!(ifindex = i, error = %e, "joining ff02::12 failed");
                    }
                }
                Out::Leave(i) => self.sock.get_ref().leave(i),
                Out::Activate(key) => self.activate(&key),
                Out::Deactivate(key) => self.deactivate(&key),
                Out::NewMaster {
                    key,
                    address,
                    reason,
                } => {
                    tracing::info!(interface = %key.0, vrid = key.1, reason = reason.as_str(), "became master");
                    self.shared
                        .bus
                        .notify(northbound::new_master_event(&address, reason));
                }
                Out::ProtocolError(e) => {
                    self.shared.bus.notify(northbound::protocol_error_event(e))
                }
            }
        }
    }

    fn activate(&self, key: &Key) {
        let (cfg, own_ll) = {
            let st = self.shared.lock();
            let Some(c) = st.node.cfg.get(key).cloned() else {
                return;
            };
            let ll = st.node.instances.get(key).and_then(|i| i.own);
            (c, ll)
        };
        let Some(own_ll) = own_ll else { return };
        let links = self.links_by_name();
        let Some(link) = links.get(&key.0) else {
            return;
        };
        let mut inst = Installed {
            on: link.index,
            ..Default::default()
        };
        let mut mac = link.mac;
        let mut on_name = key.0.clone();
        if cfg.vrrp.virtual_mac {
            match self.create_macvlan(link, key.1, own_ll) {
                Ok((index, name)) => {
                    inst.on = index;
                    inst.macvlan = Some(index);
                    mac = Some(packet::virtual_mac(key.1));
                    on_name = name;
                }
                Err(e) => {
                    tracing::error!(interface = %key.0, vrid = key.1, error = %e, "cannot create the virtual MAC interface; using the interface's own MAC")
                }
            }
        }
        let owner = !cfg.owned.is_empty() || cfg.vrrp.vips.contains(&own_ll);
        for v in &cfg.vrrp.vips {
            if cfg.owned.contains(v) || *v == own_ll {
                continue;
            }
            if cfg.vrrp.accept_mode || owner {
                let a = Addr {
                    ip: IpAddr::V6(*v),
                    prefix: 128,
                };
                match self.nl.add_virtual_addr(inst.on, a) {
                    Ok(()) => inst.addrs.push(*v),
                    Err(e) => {
                        tracing::error!(interface = %on_name, address = %v, error = %e, "adding a virtual address failed")
                    }
                }
            } else {
                // Without accept mode the master answers Neighbor Solicitations for the
                // address but does not accept packets sent to it: a proxy entry.
                let _ = sysctl(&on_name, "proxy_ndp", "1");
                if sysctl_read(&on_name, "forwarding").as_deref() == Some("0") {
                    tracing::warn!(interface = %on_name, "IPv6 forwarding is off: without accept mode the virtual addresses are not answered for");
                }
                match self.nl.set_proxy(inst.on, *v, true) {
                    Ok(()) => inst.proxies.push(*v),
                    Err(e) => {
                        tracing::error!(interface = %on_name, address = %v, error = %e, "adding a proxy neighbour entry failed")
                    }
                }
            }
        }
        if let Some(mac) = mac {
            for v in &cfg.vrrp.vips {
                let na = packet::neighbor_advertisement(v, &mac);
                if let Err(e) = self.nd.send_all_nodes(inst.on, own_ll, &na) {
                    tracing::warn!(interface = %on_name, address = %v, error = %e, "sending a Neighbor Advertisement failed");
                }
            }
        }
        self.shared.lock().installed.insert(key.clone(), inst);
    }

    /// Creates the macvlan with the virtual MAC, without addresses of its own but the
    /// interface's link-local one (the source of what the master sends), and brings it up.
    fn create_macvlan(
        &self,
        link: &Link,
        vrid: u8,
        own_ll: Ipv6Addr,
    ) -> Result<(u32, String), String> {
        let name = macvlan_name(link.index, vrid);
        let find = |name: &str| self.links_by_name().get(name).map(|l| l.index);
        let index = match find(&name) {
            Some(i) => i,
            None => {
                self.nl
                    .add_macvlan(link.index, &name, packet::virtual_mac(vrid))
                    .map_err(|e| e.to_string())?;
                find(&name).ok_or("the macvlan vanished")?
            }
        };
        // No address generated from the virtual MAC: both routers would make the same one.
        sysctl(&name, "addr_gen_mode", "1").map_err(|e| format!("{name}: {e}"))?;
        self.nl.set_up(index, true).map_err(|e| e.to_string())?;
        self.nl
            .add_virtual_addr(
                index,
                Addr {
                    ip: IpAddr::V6(own_ll),
                    prefix: 64,
                },
            )
            .map_err(|e| e.to_string())?;
        Ok((index, name))
    }

    fn deactivate(&self, key: &Key) {
        let Some(inst) = self.shared.lock().installed.remove(key) else {
            return;
        };
        for v in &inst.addrs {
            let a = Addr {
                ip: IpAddr::V6(*v),
                prefix: 128,
            };
            if let Err(e) = self.nl.del_addr(inst.on, a) {
                tracing::warn!(interface = %key.0, address = %v, error = %e, "removing a virtual address failed");
            }
        }
        for v in &inst.proxies {
            let _ = self.nl.set_proxy(inst.on, *v, false);
        }
        if let Some(m) = inst.macvlan {
            if let Err(e) = self.nl.del_link(m) {
                tracing::warn!(interface = %key.0, error = %e, "removing the virtual MAC interface failed");
            }
        }
    }
}

fn role_id(k: &Key) -> RoleSourceId {
    RoleSourceId::Vrrp6 {
        interface: k.0.clone(),
        vrid: k.1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macvlan_names_fit_the_kernel_limit() {
        assert_eq!(macvlan_name(4, 1), "vrrp6.1.4");
        assert!(macvlan_name(4_000_000_000, 255).len() <= 15);
    }
}
