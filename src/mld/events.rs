//! The MLD runtime's logic across interfaces, sans-IO: which interfaces run a router (from
//! configuration, links and link-local addresses), received packets through the receive rules
//! into routers, router actions into packets and forwarding updates, multicast routing upcalls
//! into forwarding entries. Drivers (Linux in `tasks.rs`, or a simulation) carry out [`Out`].

use super::balance::{bucket, LoadBalance};
use super::instance::{Action, Group, Input, Router};
use super::network::accept;
use super::northbound::InterfaceMld;
use super::packet::encode;
use crate::forwarding::rpf::Route;
use crate::forwarding::{Domain, Forwarding, FwdAction, Key};
use crate::netio::icmp6::RxPacket;
use crate::time::Time;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;
use std::time::Duration;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Send an ICMPv6 message (hop limit 1, Router Alert) out of an interface.
    Send {
        ifindex: u32,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        payload: Vec<u8>,
    },
    /// Listen to the groups routers' MLD messages go to on an interface, or stop.
    Join(u32),
    Leave(u32),
    Fwd(FwdAction),
    /// A group entry of an interface bound to a remote backup profile changed (None: gone).
    Group {
        interface: String,
        group: Ipv6Addr,
        state: Option<Group>,
    },
    /// The router of an interface bound to a remote backup profile started or stopped (its
    /// entries are gone with it).
    Running {
        interface: String,
        up: bool,
    },
}

/// How a remote backup profile holds an interface: whether its router is silent, and the
/// activation domain of each load-balance bucket its listeners go into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub silent: bool,
    pub lb: LoadBalance,
    pub domains: [Domain; 2],
}

impl Binding {
    fn domain(&self, group: &Ipv6Addr, source: &Ipv6Addr) -> Domain {
        self.domains[bucket(self.lb, group, source)]
    }
}

/// A link as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// Up with carrier: MLD runs only on such a link.
    pub up: bool,
    pub link_local: Option<Ipv6Addr>,
    pub loopback: bool,
}

/// MLD running on one interface.
#[derive(Debug, Clone)]
pub struct Iface {
    pub index: u32,
    pub own: Ipv6Addr,
    pub require_router_alert: bool,
    pub router: Router,
}

/// Every MLD interface of the device and its multicast forwarding.
#[derive(Debug, Clone, Default)]
pub struct MldNode {
    /// Applied configuration: MLD interfaces by name, and the routing switch.
    pub cfg: BTreeMap<String, InterfaceMld>,
    pub routing: bool,
    pub running: BTreeMap<String, Iface>,
    pub fwd: Forwarding,
    /// Every link's name by index.
    pub names: HashMap<u32, String>,
    /// Interfaces bound to a remote backup profile, by name.
    pub bindings: BTreeMap<String, Binding>,
}

/// The interfaces that want (S,G): MLD interfaces with a group record forwarding S (any
/// record at all when S is unspecified).
fn listeners<'a>(
    running: &'a BTreeMap<String, Iface>,
    bindings: &'a BTreeMap<String, Binding>,
    now: Time,
) -> impl Fn(&Ipv6Addr, &Ipv6Addr) -> BTreeMap<u32, Domain> + 'a {
    move |g: &Ipv6Addr, s: &Ipv6Addr| {
        running
            .iter()
            .filter(|(_, r)| {
                r.router
                    .groups
                    .get(g)
                    .is_some_and(|grp| s.is_unspecified() || grp.forwards(s, now))
            })
            .map(|(n, r)| {
                let d = bindings.get(n).map_or(Domain::ALWAYS, |b| b.domain(g, s));
                (r.index, d)
            })
            .collect()
    }
}

impl MldNode {
    /// The earliest time a router needs a tick.
    pub fn next_deadline(&self) -> Option<Time> {
        self.running
            .values()
            .filter_map(|r| r.router.next_deadline())
            .min()
    }

    /// A received MLD message: receive rules, then the router of its interface.
    pub fn packet(&mut self, now: Time, rx: &RxPacket) -> Vec<Out> {
        let Some((name, r)) = self.running.iter_mut().find(|(_, r)| r.index == rx.ifindex) else {
            return Vec::new();
        };
        let name = name.clone();
        match accept(rx, r.require_router_alert) {
            Ok(msg) => {
                let acts = r.router.handle(now, Input::Received { from: rx.src, msg });
                self.actions(&name, now, acts)
            }
            Err(e) => {
                tracing::debug!(interface = %name, from = %rx.src, reason = ?e, "MLD message dropped");
                e.count(&mut r.router.counters.errors);
                Vec::new()
            }
        }
    }

    /// A packet from `source` to `group` reached the kernel on `mif` without an entry.
    pub fn nocache(
        &mut self,
        now: Time,
        source: Ipv6Addr,
        group: Ipv6Addr,
        mif: u16,
        routes: &[Route],
    ) -> Vec<Out> {
        let l = listeners(&self.running, &self.bindings, now);
        let acts = self.fwd.on_nocache(now, source, group, mif, routes, &l);
        acts.into_iter().map(Out::Fwd).collect()
    }

    /// Runs every router whose deadline has come.
    pub fn tick(&mut self, now: Time) -> Vec<Out> {
        let due: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| r.router.next_deadline().is_some_and(|d| d <= now))
            .map(|(n, _)| n.clone())
            .collect();
        let mut out = Vec::new();
        for name in due {
            if let Some(r) = self.running.get_mut(&name) {
                let acts = r.router.handle(now, Input::Tick);
                out.extend(self.actions(&name, now, acts));
            }
        }
        out
    }

    /// Removes forwarding entries whose packet count has not moved for `idle`.
    pub fn age(
        &mut self,
        now: Time,
        packets: impl Fn(&Key) -> Option<u64>,
        idle: Duration,
    ) -> Vec<Out> {
        self.fwd
            .age(now, packets, idle)
            .into_iter()
            .map(Out::Fwd)
            .collect()
    }

    fn refresh(&mut self, now: Time, group: Ipv6Addr) -> Vec<Out> {
        let l = listeners(&self.running, &self.bindings, now);
        let acts = self.fwd.refresh_group(now, group, &l);
        acts.into_iter().map(Out::Fwd).collect()
    }

    /// A router's actions: packets out, forwarding updated for changed groups.
    fn actions(&mut self, name: &str, now: Time, acts: Vec<Action>) -> Vec<Out> {
        let mut out = Vec::new();
        for a in acts {
            match a {
                Action::Send { dst, msg } => {
                    if let Some(r) = self.running.get(name) {
                        out.push(Out::Send {
                            ifindex: r.index,
                            src: r.own,
                            dst,
                            payload: encode(&msg),
                        });
                    }
                }
                Action::GroupUpdated(g) | Action::GroupRemoved(g) => {
                    if self.bindings.contains_key(name) {
                        let state = self
                            .running
                            .get(name)
                            .and_then(|r| r.router.groups.get(&g))
                            .cloned();
                        out.push(Out::Group {
                            interface: name.to_string(),
                            group: g,
                            state,
                        });
                    }
                    out.extend(self.refresh(now, g));
                }
                Action::QuerierChanged { querier } => {
                    tracing::info!(interface = %name, querier, "MLD querier changed");
                }
            }
        }
        out
    }

    /// Binds an interface to a remote backup profile (or unbinds it): its router's mode and
    /// the domains of its listeners follow the binding from now on.
    pub fn set_binding(&mut self, now: Time, name: &str, b: Option<Binding>) -> Vec<Out> {
        let old = match b {
            Some(b) => self.bindings.insert(name.to_string(), b),
            None => self.bindings.remove(name),
        };
        if old == b {
            return Vec::new();
        }
        let mut out = self.set_silent(now, name, b.is_some_and(|b| b.silent));
        if let Some(r) = self.running.get(name) {
            if old.is_none() {
                out.push(Out::Running {
                    interface: name.to_string(),
                    up: true,
                });
                for (g, e) in &r.router.groups {
                    out.push(Out::Group {
                        interface: name.to_string(),
                        group: *g,
                        state: Some(e.clone()),
                    });
                }
            }
            let groups: Vec<Ipv6Addr> = r.router.groups.keys().copied().collect();
            for g in groups {
                out.extend(self.refresh(now, g));
            }
        }
        out
    }

    /// Silences an interface's router or lets it act (and take over as querier at once).
    pub fn set_silent(&mut self, now: Time, name: &str, silent: bool) -> Vec<Out> {
        if let Some(b) = self.bindings.get_mut(name) {
            b.silent = silent;
        }
        let Some(r) = self.running.get_mut(name) else {
            return Vec::new();
        };
        let acts = if silent {
            r.router.set_silent()
        } else {
            r.router.activate(now)
        };
        self.actions(name, now, acts)
    }

    /// Installs a peer's group entry (timers on this clock) on an interface.
    pub fn install_peer(
        &mut self,
        now: Time,
        name: &str,
        group: Ipv6Addr,
        entry: Group,
        replace_local: bool,
    ) -> Vec<Out> {
        let Some(r) = self.running.get_mut(name) else {
            return Vec::new();
        };
        let acts = r.router.install_peer(now, group, entry, replace_local);
        self.actions(name, now, acts)
    }

    /// Removes a peer's group entry from an interface.
    pub fn remove_peer(
        &mut self,
        now: Time,
        name: &str,
        group: Ipv6Addr,
        replace_local: bool,
    ) -> Vec<Out> {
        let Some(r) = self.running.get_mut(name) else {
            return Vec::new();
        };
        let acts = r.router.remove_peer(group, replace_local);
        self.actions(name, now, acts)
    }

    /// Activates or parks every outgoing interface of a domain at once.
    pub fn set_domain_active(&mut self, d: Domain, active: bool) -> Vec<Out> {
        self.fwd
            .set_domain_active(d, active)
            .into_iter()
            .map(Out::Fwd)
            .collect()
    }

    /// Brings routers and multicast interfaces in line with configuration and links: MLD runs
    /// on a configured interface that is up with a link-local address.
    pub fn links(&mut self, now: Time, links: &[LinkInfo]) -> Vec<Out> {
        self.names = links.iter().map(|l| (l.index, l.name.clone())).collect();
        let ready: BTreeMap<&str, (u32, Ipv6Addr)> = links
            .iter()
            .filter(|l| l.up && self.cfg.contains_key(&l.name))
            .filter_map(|l| Some((l.name.as_str(), (l.index, l.link_local?))))
            .collect();
        let mut out = Vec::new();
        let mut changed: Vec<Ipv6Addr> = Vec::new();
        let stop: Vec<String> = self
            .running
            .iter()
            .filter(|(n, r)| ready.get(n.as_str()) != Some(&(r.index, r.own)))
            .map(|(n, _)| n.clone())
            .collect();
        for n in stop {
            if let Some(r) = self.running.remove(&n) {
                tracing::info!(interface = %n, "MLD stopped");
                out.push(Out::Leave(r.index));
                if self.bindings.contains_key(&n) {
                    out.push(Out::Running {
                        interface: n.clone(),
                        up: false,
                    });
                }
                changed.extend(r.router.groups.keys());
            }
        }
        let cfg: Vec<(String, InterfaceMld)> = self
            .cfg
            .iter()
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        for (name, c) in cfg {
            let Some(&(index, own)) = ready.get(name.as_str()) else {
                continue;
            };
            match self.running.get_mut(&name) {
                Some(r) => {
                    r.require_router_alert = c.require_router_alert;
                    if r.router.cfg != c.router {
                        let acts = r.router.reconfigure(c.router.clone(), now);
                        out.extend(self.actions(&name, now, acts));
                    }
                }
                None => {
                    tracing::info!(interface = %name, %own, "MLD started");
                    out.push(Out::Join(index));
                    let mut router = Router::new(c.router.clone(), own, now);
                    if let Some(b) = self.bindings.get(&name) {
                        if b.silent {
                            router.set_silent();
                        }
                        out.push(Out::Running {
                            interface: name.clone(),
                            up: true,
                        });
                    }
                    changed.extend(router.groups.keys());
                    self.running.insert(
                        name,
                        Iface {
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
            .filter(|l| !l.loopback)
            .map(|l| l.index)
            .collect();
        let acts = if self.fwd.enabled() != self.routing {
            tracing::info!(enabled = self.routing, "IPv6 multicast routing");
            self.fwd.set_enabled(self.routing, &mif_links)
        } else {
            self.fwd.sync_links(&mif_links)
        };
        out.extend(acts.into_iter().map(Out::Fwd));
        for g in changed {
            out.extend(self.refresh(now, g));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    //! The whole runtime on a simulated clock and data plane: a host's reports in, queries
    //! out, traffic forwarded while the host listens and no longer after it leaves.
    use super::*;

    fn ms(ms: u64) -> Time {
        Time::from_millis(ms)
    }
    use crate::forwarding::sim::SimDataPlane;
    use crate::mld::instance::Config;
    use crate::mld::packet::{
        decode, encode_with_checksum, Message, Record, RecordType, TYPE_QUERY,
    };

    const DOWN: u32 = 3;
    const UP: u32 = 2;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn links(down_ll: Option<Ipv6Addr>) -> Vec<LinkInfo> {
        let l = |index, name: &str, ll, loopback| LinkInfo {
            index,
            name: name.into(),
            up: true,
            link_local: ll,
            loopback,
        };
        vec![
            l(1, "lo", None, true),
            l(UP, "up0", Some(a("fe80::1:1")), false),
            l(DOWN, "down0", down_ll, false),
        ]
    }

    fn node() -> MldNode {
        let mut n = MldNode {
            routing: true,
            ..MldNode::default()
        };
        n.cfg.insert(
            "down0".into(),
            InterfaceMld {
                router: Config::default(),
                require_router_alert: true,
                track_vrrp6_vrid: None,
            },
        );
        n
    }

    fn report(kind: RecordType, group: &str) -> RxPacket {
        let msg = Message::V2Report {
            records: vec![Record {
                kind,
                group: a(group),
                sources: vec![],
                aux: vec![],
            }],
        };
        let (src, dst) = (a("fe80::10"), a("ff02::16"));
        RxPacket {
            src,
            dst,
            ifindex: DOWN,
            hop_limit: Some(1),
            router_alert: true,
            payload: encode_with_checksum(&msg, &src, &dst),
        }
    }

    fn apply(dp: &mut SimDataPlane, out: &[Out]) {
        let f: Vec<FwdAction> = out
            .iter()
            .filter_map(|o| match o {
                Out::Fwd(f) => Some(f.clone()),
                _ => None,
            })
            .collect();
        dp.apply(&f);
    }

    fn queries(out: &[Out]) -> Vec<(u32, Ipv6Addr, Ipv6Addr)> {
        out.iter()
            .filter_map(|o| match o {
                Out::Send {
                    ifindex,
                    src,
                    dst,
                    payload,
                } if payload[0] == TYPE_QUERY => {
                    assert!(decode(payload).is_ok());
                    Some((*ifindex, *src, *dst))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn interface_without_link_local_waits_then_starts() {
        let mut n = node();
        let out = n.links(ms(0), &links(None));
        assert!(n.running.is_empty());
        assert!(!out.contains(&Out::Join(DOWN)));
        let out = n.links(ms(1000), &links(Some(a("fe80::3:1"))));
        assert!(out.contains(&Out::Join(DOWN)));
        let q = queries(&n.tick(ms(1000)));
        assert_eq!(q, vec![(DOWN, a("fe80::3:1"), a("ff02::1"))]);
        // Configuration removed: MLD stops and leaves the router groups.
        n.cfg.clear();
        let out = n.links(ms(2000), &links(Some(a("fe80::3:1"))));
        assert!(out.contains(&Out::Leave(DOWN)));
        assert!(n.running.is_empty());
    }

    #[test]
    fn listeners_drive_kernel_entries() {
        let mut n = node();
        let mut dp = SimDataPlane::default();
        apply(&mut dp, &n.links(ms(0), &links(Some(a("fe80::3:1")))));
        assert_eq!(dp.mifs.len(), 2, "every link but loopback");
        n.tick(ms(0));
        let (s, g, other) = (a("2001:db8:2::2"), a("ff0e::5"), a("ff0e::6"));
        let routes = [Route {
            dst: a("2001:db8:2::"),
            prefix: 64,
            oif: UP,
            metric: 256,
        }];
        apply(
            &mut dp,
            &n.packet(ms(10), &report(RecordType::ChangeToExclude, "ff0e::5")),
        );
        let up_mif = n.fwd.mif_of(UP).unwrap();
        apply(&mut dp, &n.nocache(ms(20), s, g, up_mif, &routes));
        apply(&mut dp, &n.nocache(ms(20), s, other, up_mif, &routes));
        assert_eq!(dp.forward(s, g, UP), Some(vec![DOWN]));
        assert_eq!(dp.forward(s, other, UP), Some(vec![]));
        // A report failing the receive rules changes nothing and is counted.
        let mut bad = report(RecordType::ChangeToExclude, "ff0e::6");
        bad.hop_limit = Some(255);
        assert!(n.packet(ms(30), &bad).is_empty());
        assert_eq!(n.running["down0"].router.counters.errors.hop_limit, 1);
        // The host leaves: group-specific queries, then after LLQT (2 s) the entry loses DOWN.
        let out = n.packet(ms(1000), &report(RecordType::ChangeToInclude, "ff0e::5"));
        assert_eq!(queries(&out), vec![(DOWN, a("fe80::3:1"), g)]);
        apply(&mut dp, &out);
        let mut t = ms(1000);
        while let Some(d) = n.next_deadline().filter(|d| *d <= ms(3000)) {
            t = d;
            apply(&mut dp, &n.tick(d));
        }
        assert_eq!(t, ms(3000));
        assert_eq!(dp.forward(s, g, UP), Some(vec![]));
        assert!(n.running["down0"].router.groups.is_empty());
        // Routing switched off: every kernel entry and MIF goes.
        n.routing = false;
        apply(&mut dp, &n.links(ms(4000), &links(Some(a("fe80::3:1")))));
        assert_eq!(dp, SimDataPlane::default());
    }
}
