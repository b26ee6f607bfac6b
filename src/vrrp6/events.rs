//! Every VRRP6 virtual router of the agent as one sans-IO node: configuration and link state
//! in, received packets checked (RFC 9568 §7.1) and handed to their router, and the routers'
//! actions turned into [`Out`]s for the driver. Counts the global receive errors.

use super::instance::{Action, Config, Input, Instance, NewMasterReason};
use super::packet::{Advertisement, DecodeError, Header, GROUP, HOP_LIMIT};
use crate::bus::RoleState;
use crate::time::Time;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::Duration;

/// A virtual router: interface name and VRID.
pub type Key = (String, u8);

/// Configuration of one virtual router as the node needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    pub vrrp: Config,
    /// Virtual addresses that are also configured as the interface's own: this router owns
    /// them (priority 255) and never adds or removes them.
    pub owned: Vec<Ipv6Addr>,
}

/// A link as the node needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfInfo {
    pub index: u32,
    pub name: String,
    /// Administratively up and with carrier.
    pub up: bool,
    pub link_local: Option<Ipv6Addr>,
}

/// A received VRRP packet with what the receive checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rx {
    pub ifindex: u32,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: Option<u8>,
    pub payload: Vec<u8>,
}

/// Receive errors of ietf-vrrp `vrrp-error-global`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProtocolError {
    Checksum,
    IpTtl,
    Version,
    Vrid,
}

impl ProtocolError {
    pub fn identity(self) -> &'static str {
        match self {
            ProtocolError::Checksum => "checksum-error",
            ProtocolError::IpTtl => "ip-ttl-error",
            ProtocolError::Version => "version-error",
            ProtocolError::Vrid => "vrid-error",
        }
    }
}

/// Global counters of ietf-vrrp `/vrrp/statistics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalStats {
    pub checksum_errors: u64,
    pub version_errors: u64,
    pub vrid_errors: u64,
    pub ip_ttl_errors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Send a VRRP message on `ifindex` from `src` to ff02::12.
    Send {
        key: Key,
        ifindex: u32,
        src: Ipv6Addr,
        payload: Vec<u8>,
    },
    /// Listen to ff02::12 on the interface (or stop).
    Join(u32),
    Leave(u32),
    /// Install the virtual addresses of a router that became master, and announce them.
    Activate(Key),
    /// Remove them.
    Deactivate(Key),
    NewMaster {
        key: Key,
        address: Ipv6Addr,
        reason: NewMasterReason,
    },
    ProtocolError(ProtocolError),
}

/// Protocol-error notifications are sent at most once per kind in this time.
const ERROR_NOTIFY_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct VrrpNode {
    pub cfg: BTreeMap<Key, InstanceConfig>,
    pub instances: BTreeMap<Key, Instance>,
    pub links: BTreeMap<String, IfInfo>,
    pub global: GlobalStats,
    gates: BTreeMap<Key, bool>,
    error_notified: BTreeMap<ProtocolError, Time>,
    joined: std::collections::BTreeSet<u32>,
}

impl VrrpNode {
    fn usable(&self, name: &str) -> Option<(u32, Ipv6Addr)> {
        let l = self.links.get(name)?;
        Some((l.index, l.link_local.filter(|_| l.up)?))
    }

    fn owner(&self, key: &Key) -> bool {
        let Some(c) = self.cfg.get(key) else {
            return false;
        };
        let ll = self.links.get(&key.0).and_then(|l| l.link_local);
        !c.owned.is_empty() || ll.is_some_and(|ll| c.vrrp.vips.contains(&ll))
    }

    fn run(&mut self, now: Time, key: &Key, input: Input, out: &mut Vec<Out>) {
        let Some(inst) = self.instances.get_mut(key) else {
            return;
        };
        let before = inst.own;
        let actions = inst.handle(now, input);
        // A router that stops forgets its address after its last advertisement.
        let own = inst.own.or(before);
        let ifindex = self.links.get(&key.0).map_or(0, |l| l.index);
        for a in actions {
            match a {
                Action::Send(adv) => {
                    if let Some(src) = own {
                        out.push(Out::Send {
                            key: key.clone(),
                            ifindex,
                            src,
                            payload: adv.encode(&src, &GROUP),
                        });
                    }
                }
                Action::Activate => out.push(Out::Activate(key.clone())),
                Action::Deactivate => out.push(Out::Deactivate(key.clone())),
                Action::NewMaster(reason) => out.push(Out::NewMaster {
                    key: key.clone(),
                    address: own.unwrap_or(Ipv6Addr::UNSPECIFIED),
                    reason,
                }),
            }
        }
    }

    /// Starts, stops or restarts each router to match its interface, and feeds tracked
    /// interface states.
    fn evaluate(&mut self, now: Time, out: &mut Vec<Out>) {
        let keys: Vec<Key> = self.instances.keys().cloned().collect();
        for key in keys {
            let usable = self.usable(&key.0);
            let owner = self.owner(&key);
            let (running, own, was_owner) = {
                let i = &self.instances[&key];
                (
                    i.state != super::instance::State::Initialize,
                    i.own,
                    i.owner,
                )
            };
            match usable {
                Some((_, ll)) if running && (own != Some(ll) || owner != was_owner) => {
                    self.run(now, &key, Input::InterfaceDown, out);
                    self.run(
                        now,
                        &key,
                        Input::Startup {
                            link_local: ll,
                            owner,
                        },
                        out,
                    );
                }
                Some((_, ll)) if !running => {
                    self.run(
                        now,
                        &key,
                        Input::Startup {
                            link_local: ll,
                            owner,
                        },
                        out,
                    );
                }
                None if running => self.run(now, &key, Input::InterfaceDown, out),
                _ => {}
            }
            let tracked: Vec<String> = self.cfg[&key].vrrp.tracked.keys().cloned().collect();
            for t in tracked {
                let up = self.links.get(&t).is_some_and(|l| l.up);
                self.run(now, &key, Input::Tracked { interface: t, up }, out);
            }
        }
        let wanted: std::collections::BTreeSet<u32> = self
            .instances
            .keys()
            .filter_map(|k| self.usable(&k.0).map(|(i, _)| i))
            .collect();
        for i in wanted.difference(&self.joined) {
            out.push(Out::Join(*i));
        }
        for i in self.joined.difference(&wanted) {
            out.push(Out::Leave(*i));
        }
        self.joined = wanted;
    }

    /// New configuration: removed routers resign, changed ones are reconfigured in place or
    /// restarted (new virtual addresses, virtual MAC or ownership), new ones start.
    pub fn configure(&mut self, now: Time, cfg: BTreeMap<Key, InstanceConfig>) -> Vec<Out> {
        let mut out = Vec::new();
        let old = std::mem::take(&mut self.cfg);
        for key in old.keys() {
            if !cfg.contains_key(key) {
                self.run(now, key, Input::Shutdown, &mut out);
                self.instances.remove(key);
            }
        }
        self.cfg = cfg;
        let keys: Vec<Key> = self.cfg.keys().cloned().collect();
        for key in keys {
            let new = self.cfg[&key].clone();
            match old.get(&key) {
                Some(o) if *o == new => {}
                Some(o)
                    if o.owned == new.owned
                        && o.vrrp.vips == new.vrrp.vips
                        && o.vrrp.virtual_mac == new.vrrp.virtual_mac
                        && o.vrrp.accept_mode == new.vrrp.accept_mode =>
                {
                    self.run(now, &key, Input::Reconfigure(new.vrrp), &mut out);
                }
                Some(_) => {
                    self.run(now, &key, Input::Shutdown, &mut out);
                    self.new_instance(now, key, new.vrrp, &mut out);
                }
                None => self.new_instance(now, key, new.vrrp, &mut out),
            }
        }
        self.evaluate(now, &mut out);
        out
    }

    fn new_instance(&mut self, now: Time, key: Key, cfg: Config, out: &mut Vec<Out>) {
        let gate = self.gates.get(&key).copied().unwrap_or(true);
        self.instances.insert(key.clone(), Instance::new(cfg));
        self.run(now, &key, Input::PreemptGate(gate), out);
    }

    /// The current links (all of them, or at least those named by the configuration).
    pub fn set_links(&mut self, now: Time, links: Vec<IfInfo>) -> Vec<Out> {
        self.links = links.into_iter().map(|l| (l.name.clone(), l)).collect();
        let mut out = Vec::new();
        self.evaluate(now, &mut out);
        out
    }

    /// The hot-backup controller's preemption gate for one router.
    pub fn set_gate(&mut self, now: Time, key: &Key, open: bool) -> Vec<Out> {
        self.gates.insert(key.clone(), open);
        let mut out = Vec::new();
        self.run(now, key, Input::PreemptGate(open), &mut out);
        out
    }

    fn error(&mut self, now: Time, e: ProtocolError, out: &mut Vec<Out>) {
        let g = &mut self.global;
        match e {
            ProtocolError::Checksum => g.checksum_errors += 1,
            ProtocolError::IpTtl => g.ip_ttl_errors += 1,
            ProtocolError::Version => g.version_errors += 1,
            ProtocolError::Vrid => g.vrid_errors += 1,
        }
        let last = self.error_notified.get(&e).copied();
        if last.is_none_or(|t| now >= t + ERROR_NOTIFY_EVERY) {
            self.error_notified.insert(e, now);
            tracing::warn!(error = e.identity(), "VRRP packet discarded");
            out.push(Out::ProtocolError(e));
        }
    }

    /// A packet from the raw socket.
    pub fn packet(&mut self, now: Time, rx: &Rx) -> Vec<Out> {
        let mut out = Vec::new();
        let Some(name) = self
            .links
            .values()
            .find(|l| l.index == rx.ifindex)
            .map(|l| l.name.clone())
        else {
            return out;
        };
        if !self.instances.keys().any(|k| k.0 == name) {
            return out;
        }
        if rx.dst != GROUP {
            return out;
        }
        if rx.hop_limit != Some(HOP_LIMIT) {
            self.error(now, ProtocolError::IpTtl, &mut out);
            return out;
        }
        let Ok(h) = Header::read(&rx.payload) else {
            return out;
        };
        if h.version != 3 {
            self.error(now, ProtocolError::Version, &mut out);
            return out;
        }
        let key = (name, h.vrid);
        if !self.instances.contains_key(&key) {
            self.error(now, ProtocolError::Vrid, &mut out);
            return out;
        }
        match Advertisement::decode(&rx.payload, &rx.src, &rx.dst) {
            Ok(adv) if rx.src.is_unicast_link_local() => {
                self.run(
                    now,
                    &key,
                    Input::Advertisement { src: rx.src, adv },
                    &mut out,
                );
            }
            Ok(_) => {
                tracing::debug!(src = %rx.src, "VRRP advertisement from a non-link-local source")
            }
            Err(DecodeError::Checksum) => self.error(now, ProtocolError::Checksum, &mut out),
            Err(DecodeError::Type(_)) => {
                if let Some(i) = self.instances.get_mut(&key) {
                    i.stats.invalid_type += 1;
                }
            }
            Err(e @ (DecodeError::Length { .. } | DecodeError::NoAddress)) => {
                if let Some(i) = self.instances.get_mut(&key) {
                    i.stats.packet_length += 1;
                }
                tracing::debug!(error = %e, "VRRP packet discarded");
            }
            Err(e) => tracing::debug!(error = %e, "VRRP packet discarded"),
        }
        out
    }

    /// Runs every timer that is due.
    pub fn tick(&mut self, now: Time) -> Vec<Out> {
        let mut out = Vec::new();
        let due: Vec<Key> = self
            .instances
            .iter()
            .filter(|(_, i)| i.next_deadline().is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.run(now, &key, Input::Timer, &mut out);
        }
        out
    }

    pub fn next_deadline(&self) -> Option<Time> {
        self.instances
            .values()
            .filter_map(|i| i.next_deadline())
            .min()
    }

    /// Every router resigns (the agent stops).
    pub fn shutdown(&mut self, now: Time) -> Vec<Out> {
        let mut out = Vec::new();
        let keys: Vec<Key> = self.instances.keys().cloned().collect();
        for key in keys {
            self.run(now, &key, Input::Shutdown, &mut out);
        }
        out
    }

    /// The role each router publishes.
    pub fn roles(&self, now: Time) -> Vec<(Key, RoleState)> {
        self.instances
            .iter()
            .map(|(k, i)| (k.clone(), i.role_state(now)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_with(vrid: u8) -> VrrpNode {
        let mut n = VrrpNode::default();
        let mut cfg = BTreeMap::new();
        cfg.insert(
            ("eth1".to_string(), vrid),
            InstanceConfig {
                vrrp: Config {
                    vrid,
                    vips: vec!["fe80::100".parse().unwrap()],
                    ..Config::default()
                },
                owned: vec![],
            },
        );
        n.configure(Time::from_micros(0), cfg);
        n
    }

    fn link(up: bool) -> Vec<IfInfo> {
        vec![IfInfo {
            index: 4,
            name: "eth1".into(),
            up,
            link_local: Some("fe80::2".parse().unwrap()),
        }]
    }

    fn rx(payload: Vec<u8>, hop: u8) -> Rx {
        Rx {
            ifindex: 4,
            src: "fe80::9".parse().unwrap(),
            dst: GROUP,
            hop_limit: Some(hop),
            payload,
        }
    }

    fn adv(vrid: u8, priority: u8) -> Vec<u8> {
        Advertisement {
            vrid,
            priority,
            interval_cs: 100,
            addrs: vec!["fe80::100".parse().unwrap()],
        }
        .encode(&"fe80::9".parse().unwrap(), &GROUP)
    }

    #[test]
    fn routers_start_with_their_interface_and_join_the_group() {
        let mut n = node_with(1);
        assert_eq!(
            n.instances[&("eth1".into(), 1)].state,
            super::super::instance::State::Initialize
        );
        let out = n.set_links(Time::from_micros(0), link(true));
        assert!(out.contains(&Out::Join(4)));
        assert_eq!(
            n.instances[&("eth1".into(), 1)].state,
            super::super::instance::State::Backup
        );
        let out = n.set_links(Time::from_micros(1), link(false));
        assert!(out.contains(&Out::Leave(4)));
        assert_eq!(
            n.instances[&("eth1".into(), 1)].state,
            super::super::instance::State::Initialize
        );
    }

    #[test]
    fn receive_checks_count_global_errors() {
        let mut n = node_with(1);
        n.set_links(Time::from_micros(0), link(true));
        let out = n.packet(Time::from_micros(1), &rx(adv(1, 100), 64));
        assert_eq!(out, vec![Out::ProtocolError(ProtocolError::IpTtl)]);
        // Rate-limited: the second one in the same second is counted, not notified.
        assert!(n
            .packet(Time::from_micros(2), &rx(adv(1, 100), 1))
            .is_empty());
        assert_eq!(n.global.ip_ttl_errors, 2);
        n.packet(Time::from_micros(3), &rx(adv(9, 100), 255));
        assert_eq!(n.global.vrid_errors, 1);
        let mut bad = adv(1, 100);
        bad[7] ^= 0xff;
        n.packet(Time::from_micros(4), &rx(bad, 255));
        assert_eq!(n.global.checksum_errors, 1);
        let mut v2 = adv(1, 100);
        v2[0] = 0x21;
        n.packet(Time::from_micros(5), &rx(v2, 255));
        assert_eq!(n.global.version_errors, 1);
        assert_eq!(n.instances[&("eth1".into(), 1)].stats.adv_rcvd, 0);
        n.packet(Time::from_micros(6), &rx(adv(1, 100), 255));
        assert_eq!(n.instances[&("eth1".into(), 1)].stats.adv_rcvd, 1);
    }

    #[test]
    fn unconfigured_routers_resign() {
        let mut n = node_with(1);
        n.set_links(Time::from_micros(0), link(true));
        // Priority 255 would be the owner; make this one master by timing out.
        let t = n.next_deadline().unwrap();
        let out = n.tick(t);
        assert!(out.iter().any(|o| matches!(o, Out::Activate(_))));
        let out = n.configure(t + Duration::from_micros(1), BTreeMap::new());
        assert!(out
            .iter()
            .any(|o| matches!(o, Out::Send { payload, .. } if payload[2] == 0)));
        assert!(out.contains(&Out::Deactivate(("eth1".into(), 1))));
        assert!(out.contains(&Out::Leave(4)));
        assert!(n.instances.is_empty());
    }

    #[test]
    fn owning_the_link_local_address_makes_the_owner() {
        let mut n = VrrpNode::default();
        let mut cfg = BTreeMap::new();
        cfg.insert(
            ("eth1".to_string(), 1),
            InstanceConfig {
                vrrp: Config {
                    vips: vec!["fe80::2".parse().unwrap()],
                    ..Config::default()
                },
                owned: vec![],
            },
        );
        n.configure(Time::from_micros(0), cfg);
        let out = n.set_links(Time::from_micros(0), link(true));
        assert!(out.iter().any(|o| matches!(
            o,
            Out::NewMaster {
                reason: NewMasterReason::Priority,
                ..
            }
        )));
        assert_eq!(n.instances[&("eth1".into(), 1)].priority(), 255);
    }
}
