//! Every E-Trunk, Eth-Trunk and LACP member port of the agent as one sans-IO node: hellos
//! checked (peer address, authentication, sequence) and handed to their E-Trunk, LACPDUs to
//! their member's actor, each Eth-Trunk's role derived from its E-Trunk and `e-trunk mode`,
//! the members put in sync by that role, and the roles the hot-backup controller follows.

use super::instance::{self, Action, Cause, Instance, State};
use super::packet::{DecodeError, Hello, MemberReport, TrunkMode};
use crate::bus::{Role, RoleSourceId, RoleState};
use crate::lacp::actor::{self, Actor, ActorConfig};
use crate::lacp::packet::Lacpdu;
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;

/// One E-Trunk as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ETrunkConfig {
    pub etrunk: instance::Config,
    /// Configured system ID; None uses the device's own MAC address.
    pub system_id: Option<[u8; 6]>,
    pub peer: Option<Ipv6Addr>,
    pub source: Option<Ipv6Addr>,
    pub port: u16,
    /// The clear-text security key.
    pub key: Option<Vec<u8>>,
}

/// One Eth-Trunk as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkConfig {
    pub id: u16,
    /// The interface name (Eth-Trunk<id>).
    pub name: String,
    pub etrunk: Option<u8>,
    pub mode: TrunkMode,
    /// Member ports by name.
    pub members: BTreeSet<String>,
}

/// Everything the node runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeConfig {
    pub etrunks: BTreeMap<u8, ETrunkConfig>,
    pub trunks: BTreeMap<u16, TrunkConfig>,
    /// `lacp e-trunk system-id`; None presents the device's own MAC address.
    pub lacp_system: Option<[u8; 6]>,
    pub lacp_priority: u16,
}

/// A member port's link as the node needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLink {
    pub name: String,
    pub index: u32,
    pub up: bool,
    pub mac: [u8; 6],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Send a hello datagram to the peer.
    Hello {
        etrunk: u8,
        source: Ipv6Addr,
        peer: Ipv6Addr,
        port: u16,
        payload: Vec<u8>,
    },
    /// Send a LACPDU frame on a member.
    Lacp {
        member: String,
        ifindex: u32,
        frame: Vec<u8>,
    },
    ETrunkChange {
        etrunk: u8,
        old: State,
        new: State,
        cause: Cause,
    },
    MemberChange {
        trunk: String,
        member: String,
        selected: bool,
        actor_state: u8,
        partner_state: u8,
    },
}

/// One member port's actor and link.
#[derive(Debug, Clone)]
pub struct Member {
    pub trunk: u16,
    pub link: Option<MemberLink>,
    pub actor: Actor,
}

/// The LACP actor key of an Eth-Trunk: its number plus one (never 0), the same on both
/// devices.
pub fn actor_key(trunk: u16) -> u16 {
    trunk + 1
}

/// The actor port number of a member: its ifindex mixed with the low bytes of the device's
/// MAC address, so that the two devices of an E-Trunk present different port numbers to the
/// shared partner; never 0.
pub fn actor_port(device_mac: [u8; 6], ifindex: u32) -> u16 {
    let mixed = u16::from_be_bytes([device_mac[4], device_mac[5]]) ^ (ifindex as u16);
    (mixed & 0x7fff).max(1)
}

#[derive(Debug, Default)]
pub struct Node {
    pub cfg: NodeConfig,
    pub instances: BTreeMap<u8, Instance>,
    pub members: BTreeMap<String, Member>,
    /// The device's own MAC address (system IDs when none is configured).
    pub device_mac: [u8; 6],
    /// Hellos for no configured E-Trunk or from an unknown peer.
    pub unknown_hellos: u64,
    gates: BTreeMap<RoleSourceId, bool>,
    peer_sequence: BTreeMap<u8, u64>,
    sequence_base: u64,
}

impl Node {
    /// A node whose hellos number from `sequence_base` on (the driver passes a wall-clock
    /// based value, so a restarted device's hellos are not taken for replays).
    pub fn new(device_mac: [u8; 6], sequence_base: u64) -> Node {
        Node {
            device_mac,
            sequence_base,
            ..Node::default()
        }
    }

    fn etrunk_cfg(&self, c: &ETrunkConfig) -> instance::Config {
        instance::Config {
            system_id: c.system_id.unwrap_or(self.device_mac),
            ..c.etrunk.clone()
        }
    }

    fn actor_cfg(&self, trunk: u16, link: Option<&MemberLink>) -> ActorConfig {
        let bound = self
            .cfg
            .trunks
            .get(&trunk)
            .is_some_and(|t| t.etrunk.is_some());
        let (system, system_priority) = if bound {
            (
                self.cfg.lacp_system.unwrap_or(self.device_mac),
                self.cfg.lacp_priority,
            )
        } else {
            (self.device_mac, self.cfg.lacp_priority)
        };
        ActorConfig {
            system_priority,
            system,
            key: actor_key(trunk),
            port_priority: 32768,
            port: actor_port(self.device_mac, link.map_or(0, |l| l.index)),
        }
    }

    /// The role of an Eth-Trunk from its E-Trunk and mode.
    pub fn trunk_role(&self, t: &TrunkConfig) -> Role {
        let up = self.trunk_up(t.id);
        let Some(inst) = t.etrunk.and_then(|e| self.instances.get(&e)) else {
            return Role::Initialize;
        };
        match t.mode {
            TrunkMode::ForceMaster if up => Role::Master,
            TrunkMode::ForceMaster | TrunkMode::ForceBackup => Role::Backup,
            TrunkMode::Auto => match inst.state {
                State::Initialize => Role::Initialize,
                State::Master if up => Role::Master,
                _ => Role::Backup,
            },
        }
    }

    /// Whether the role lets the members of this Eth-Trunk be in sync.
    fn in_sync(&self, t: &TrunkConfig) -> bool {
        match (t.etrunk.and_then(|e| self.instances.get(&e)), t.mode) {
            (None, _) => t.etrunk.is_none(),
            (Some(_), TrunkMode::ForceMaster) => true,
            (Some(_), TrunkMode::ForceBackup) => false,
            (Some(i), TrunkMode::Auto) => i.state == State::Master,
        }
    }

    /// Whether any member of the Eth-Trunk has its link up and a current partner.
    pub fn trunk_up(&self, trunk: u16) -> bool {
        self.members
            .values()
            .any(|m| m.trunk == trunk && m.actor.up())
    }

    fn trunk_selected(&self, trunk: u16) -> bool {
        self.members
            .values()
            .any(|m| m.trunk == trunk && m.actor.selected())
    }

    fn reports(&self, etrunk: u8) -> Vec<MemberReport> {
        self.cfg
            .trunks
            .values()
            .filter(|t| t.etrunk == Some(etrunk))
            .map(|t| MemberReport {
                eth_trunk: t.id,
                up: self.trunk_up(t.id),
                selected: self.trunk_selected(t.id),
                mode: t.mode,
            })
            .collect()
    }

    fn run_etrunk(&mut self, now: Time, id: u8, input: instance::Input, out: &mut Vec<Out>) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let actions = inst.handle(now, input);
        let Some(c) = self.cfg.etrunks.get(&id) else {
            return;
        };
        for a in actions {
            match a {
                Action::Send(h) => {
                    if let (Some(source), Some(peer)) = (c.source, c.peer) {
                        out.push(Out::Hello {
                            etrunk: id,
                            source,
                            peer,
                            port: c.port,
                            payload: h.encode(c.key.as_deref()),
                        });
                    }
                }
                Action::StateChange { old, new, cause } => out.push(Out::ETrunkChange {
                    etrunk: id,
                    old,
                    new,
                    cause,
                }),
            }
        }
    }

    fn run_member(&mut self, now: Time, name: &str, input: actor::Input, out: &mut Vec<Out>) {
        let Some(m) = self.members.get_mut(name) else {
            return;
        };
        let actions = m.actor.handle(now, input);
        let (ifindex, mac) = m.link.as_ref().map_or((0, [0; 6]), |l| (l.index, l.mac));
        let trunk = self
            .cfg
            .trunks
            .get(&m.trunk)
            .map(|t| t.name.clone())
            .unwrap_or_default();
        for a in actions {
            match a {
                actor::Action::Send(pdu) => out.push(Out::Lacp {
                    member: name.to_string(),
                    ifindex,
                    frame: pdu.encode(mac),
                }),
                actor::Action::Changed {
                    selected,
                    actor_state,
                    partner_state,
                } => out.push(Out::MemberChange {
                    trunk: trunk.clone(),
                    member: name.to_string(),
                    selected,
                    actor_state,
                    partner_state,
                }),
            }
        }
    }

    /// Brings roles, sync bits, member reports and gates into agreement; repeats until
    /// nothing moves (an E-Trunk change moves sync bits, which move the reports).
    fn settle(&mut self, now: Time, out: &mut Vec<Out>) {
        for _ in 0..4 {
            let before = out.len();
            let names: Vec<(String, u16)> = self
                .members
                .iter()
                .map(|(n, m)| (n.clone(), m.trunk))
                .collect();
            for (name, trunk) in names {
                let sync = self.cfg.trunks.get(&trunk).is_some_and(|t| self.in_sync(t));
                self.run_member(now, &name, actor::Input::InSync(sync), out);
            }
            let ids: Vec<u8> = self.instances.keys().copied().collect();
            for id in ids {
                let gate = self
                    .cfg
                    .trunks
                    .values()
                    .filter(|t| t.etrunk == Some(id))
                    .all(|t| self.gates.get(&role_id(id, t.id)).copied().unwrap_or(true));
                if self.instances[&id].gate_open() != gate {
                    self.run_etrunk(now, id, instance::Input::PreemptGate(gate), out);
                }
                let reports = self.reports(id);
                self.run_etrunk(now, id, instance::Input::Members(reports), out);
            }
            if out.len() == before {
                break;
            }
        }
    }

    /// New configuration: E-Trunks and members start, change or stop.
    pub fn configure(&mut self, now: Time, cfg: NodeConfig) -> Vec<Out> {
        let mut out = Vec::new();
        let old = std::mem::replace(&mut self.cfg, cfg);
        let gone: Vec<u8> = self
            .instances
            .keys()
            .filter(|id| !self.cfg.etrunks.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            self.run_etrunk(now, id, instance::Input::Stop, &mut out);
            self.instances.remove(&id);
            self.peer_sequence.remove(&id);
        }
        let ids: Vec<u8> = self.cfg.etrunks.keys().copied().collect();
        for id in ids {
            let c = self.etrunk_cfg(&self.cfg.etrunks[&id]);
            let restart = old.etrunks.get(&id).is_some_and(|o| {
                (o.peer, o.source, o.port, &o.key) != {
                    let n = &self.cfg.etrunks[&id];
                    (n.peer, n.source, n.port, &n.key)
                }
            });
            match self.instances.get(&id) {
                Some(_) if restart => {
                    self.run_etrunk(now, id, instance::Input::Stop, &mut out);
                    self.peer_sequence.remove(&id);
                    self.run_etrunk(now, id, instance::Input::Reconfigure(c), &mut out);
                    self.run_etrunk(now, id, instance::Input::Start, &mut out);
                }
                Some(i) if i.cfg != c => {
                    self.run_etrunk(now, id, instance::Input::Reconfigure(c), &mut out)
                }
                Some(_) => {}
                None => {
                    let base = self.sequence_base;
                    self.instances
                        .insert(id, Instance::new(c).with_sequence(base));
                    let reports = self.reports(id);
                    self.run_etrunk(now, id, instance::Input::Members(reports), &mut out);
                    self.run_etrunk(now, id, instance::Input::Start, &mut out);
                }
            }
        }
        // Members.
        let wanted: BTreeMap<String, u16> = self
            .cfg
            .trunks
            .values()
            .flat_map(|t| t.members.iter().map(move |m| (m.clone(), t.id)))
            .collect();
        self.members.retain(|n, m| wanted.get(n) == Some(&m.trunk));
        for (name, trunk) in wanted {
            if let Some(m) = self.members.get(&name) {
                let c = self.actor_cfg(trunk, m.link.as_ref());
                if m.actor.cfg != c {
                    self.run_member(now, &name, actor::Input::Reconfigure(c), &mut out);
                }
                continue;
            }
            let c = self.actor_cfg(trunk, None);
            self.members.insert(
                name,
                Member {
                    trunk,
                    link: None,
                    actor: Actor::new(c),
                },
            );
        }
        self.settle(now, &mut out);
        out
    }

    /// The member links as they are now (absent ones are down).
    pub fn set_links(&mut self, now: Time, links: &[MemberLink]) -> Vec<Out> {
        let mut out = Vec::new();
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            let link = links.iter().find(|l| l.name == name).cloned();
            let m = &self.members[&name];
            if m.link != link {
                let trunk = m.trunk;
                let c = self.actor_cfg(trunk, link.as_ref());
                let m = self.members.get_mut(&name).expect("present");
                m.link = link.clone();
                self.run_member(now, &name, actor::Input::Reconfigure(c), &mut out);
            }
            let up = link.is_some_and(|l| l.up);
            self.run_member(now, &name, actor::Input::Link(up), &mut out);
        }
        self.settle(now, &mut out);
        out
    }

    /// A datagram on an E-Trunk socket from `src`.
    pub fn hello(&mut self, now: Time, src: Ipv6Addr, payload: &[u8]) -> Vec<Out> {
        let mut out = Vec::new();
        let id = match payload.get(2..4) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]),
            None => 0,
        };
        let Some(c) = u8::try_from(id).ok().and_then(|id| {
            self.cfg
                .etrunks
                .get(&id)
                .filter(|c| c.peer == Some(src))
                .map(|c| (id, c.key.clone()))
        }) else {
            self.unknown_hellos += 1;
            tracing::debug!(%src, etrunk = id, "hello for no E-Trunk with that peer");
            return out;
        };
        let (id, key) = c;
        let Some(inst) = self.instances.get_mut(&id) else {
            return out;
        };
        match Hello::decode(payload, key.as_deref()) {
            Ok(h) => {
                let last = self.peer_sequence.get(&id).copied();
                // Sequence numbers start from the sender's wall clock, so they grow across its
                // restarts too: an old one is a replay, whether or not the peer is alive.
                if last.is_some_and(|l| h.sequence <= l) {
                    inst.stats.auth_failures += 1;
                    tracing::debug!(etrunk = id, sequence = h.sequence, "replayed hello dropped");
                    return out;
                }
                self.peer_sequence.insert(id, h.sequence);
                self.run_etrunk(now, id, instance::Input::Hello(h), &mut out);
                self.settle(now, &mut out);
            }
            Err(e) => {
                if e.is_auth() {
                    inst.stats.auth_failures += 1;
                } else {
                    inst.stats.decode_errors += 1;
                }
                log_drop(id, e);
            }
        }
        out
    }

    /// A frame from a member's packet socket.
    pub fn lacpdu(&mut self, now: Time, member: &str, frame: &[u8]) -> Vec<Out> {
        let mut out = Vec::new();
        let Some(m) = self.members.get_mut(member) else {
            return out;
        };
        match Lacpdu::decode(frame) {
            Ok(f) => {
                self.run_member(now, member, actor::Input::Pdu(f.pdu), &mut out);
                self.settle(now, &mut out);
            }
            Err(e) => {
                m.actor.stats.errors += 1;
                tracing::debug!(member, error = %e, "LACPDU dropped");
            }
        }
        out
    }

    /// The hot-backup controller's preemption gate for one role source.
    pub fn set_gate(&mut self, now: Time, id: &RoleSourceId, open: bool) -> Vec<Out> {
        self.gates.insert(id.clone(), open);
        let mut out = Vec::new();
        self.settle(now, &mut out);
        out
    }

    /// Runs every timer that is due.
    pub fn tick(&mut self, now: Time) -> Vec<Out> {
        let mut out = Vec::new();
        let due: Vec<u8> = self
            .instances
            .iter()
            .filter(|(_, i)| i.next_deadline().is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        for id in due {
            self.run_etrunk(now, id, instance::Input::Timer, &mut out);
        }
        let due: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.actor.next_deadline().is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for name in due {
            self.run_member(now, &name, actor::Input::Timer, &mut out);
        }
        self.settle(now, &mut out);
        out
    }

    pub fn next_deadline(&self) -> Option<Time> {
        self.instances
            .values()
            .filter_map(|i| i.next_deadline())
            .chain(
                self.members
                    .values()
                    .filter_map(|m| m.actor.next_deadline()),
            )
            .min()
    }

    /// Every E-Trunk stops (the agent stops).
    pub fn shutdown(&mut self, now: Time) -> Vec<Out> {
        let mut out = Vec::new();
        let ids: Vec<u8> = self.instances.keys().copied().collect();
        for id in ids {
            self.run_etrunk(now, id, instance::Input::Stop, &mut out);
        }
        out
    }

    /// The role each Eth-Trunk bound to an E-Trunk publishes. The peer counts as present
    /// only while its hellos arrive *and* it reports this Eth-Trunk up: a peer whose member
    /// link failed cannot forward its share, so the survivor must take it.
    pub fn roles(&self) -> Vec<(RoleSourceId, RoleState)> {
        self.cfg
            .trunks
            .values()
            .filter_map(|t| {
                let e = t.etrunk?;
                let inst = self.instances.get(&e);
                let peer_present = inst
                    .and_then(|i| i.peer.as_ref())
                    .is_some_and(|p| p.trunk_up(t.id));
                Some((
                    role_id(e, t.id),
                    RoleState {
                        role: self.trunk_role(t),
                        peer_present,
                    },
                ))
            })
            .collect()
    }
}

fn log_drop(etrunk: u8, e: DecodeError) {
    if e.is_auth() {
        tracing::warn!(etrunk, error = %e, "hello dropped");
    } else {
        tracing::debug!(etrunk, error = %e, "hello dropped");
    }
}

/// The bus identity of an Eth-Trunk's role.
pub fn role_id(etrunk: u8, trunk: u16) -> RoleSourceId {
    RoleSourceId::ETrunk {
        etrunk: etrunk as u16,
        eth_trunk: trunk,
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::WireState;
    use super::*;
    use crate::lacp::packet::{state, PortInfo};

    use std::time::Duration;

    /// One millisecond in microseconds.
    const MS: u64 = 1_000;

    /// The instant `us` microseconds after the simulated clock's zero.
    fn at(us: u64) -> Time {
        Time::from_micros(us)
    }

    fn us(us: u64) -> Duration {
        Duration::from_micros(us)
    }
    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const SHARED: [u8; 6] = [0x00, 0xe0, 0xfc, 0x12, 0x34, 0x56];
    const CE: [u8; 6] = [2, 0, 0, 0, 0, 0xce];

    fn addr(n: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, n)
    }

    fn node_cfg(priority: u8, me: u16, peer: u16, mode: TrunkMode) -> NodeConfig {
        let mut c = NodeConfig {
            lacp_system: Some(SHARED),
            lacp_priority: 1,
            ..Default::default()
        };
        c.etrunks.insert(
            1,
            ETrunkConfig {
                etrunk: instance::Config {
                    priority,
                    hello_interval: 10,
                    multiplier: 3,
                    revert_delay_s: Some(0),
                    ..Default::default()
                },
                system_id: None,
                peer: Some(addr(peer)),
                source: Some(addr(me)),
                port: 1025,
                key: Some(b"k".to_vec()),
            },
        );
        c.trunks.insert(
            1,
            TrunkConfig {
                id: 1,
                name: "Eth-Trunk1".into(),
                etrunk: Some(1),
                mode,
                members: ["eth1".to_string()].into(),
            },
        );
        c
    }

    /// Two nodes, each with its member to one port of a customer edge that answers every
    /// LACPDU as an active, fast partner would; one clock.
    struct Pair {
        now: Time,
        nodes: [Node; 2],
        alive: [bool; 2],
        /// Hellos in flight: (arrival, to, from address, payload).
        hellos: Vec<(Time, usize, Ipv6Addr, Vec<u8>)>,
        /// The last LACPDU each node's member sent.
        to_ce: [Option<Lacpdu>; 2],
        changes: Vec<(usize, State, Cause)>,
    }

    impl Pair {
        fn new(mode: TrunkMode) -> Pair {
            let mut p = Pair {
                now: Time::ZERO,
                nodes: [Node::new(A, 1000), Node::new(B, 1000)],
                alive: [true; 2],
                hellos: Vec::new(),
                to_ce: [None, None],
                changes: Vec::new(),
            };
            let out = p.nodes[0].configure(at(0), node_cfg(10, 1, 2, mode));
            p.carry(0, out);
            let out = p.nodes[1].configure(at(0), node_cfg(20, 2, 1, mode));
            p.carry(1, out);
            for (i, mac) in [(0, A), (1, B)] {
                let out = p.nodes[i].set_links(
                    Time::ZERO,
                    &[MemberLink {
                        name: "eth1".into(),
                        index: 3,
                        up: true,
                        mac,
                    }],
                );
                p.carry(i, out);
            }
            p
        }

        fn carry(&mut self, from: usize, out: Vec<Out>) {
            for o in out {
                match o {
                    Out::Hello {
                        source, payload, ..
                    } => self
                        .hellos
                        .push((self.now + us(MS), 1 - from, source, payload)),
                    Out::Lacp { frame, .. } => {
                        self.to_ce[from] = Some(Lacpdu::decode(&frame).unwrap().pdu)
                    }
                    Out::ETrunkChange { new, cause, .. } => self.changes.push((from, new, cause)),
                    Out::MemberChange { .. } => {}
                }
            }
        }

        /// The customer edge's LACPDU to node `i`: it is in sync with whoever is in sync.
        fn ce_pdu(&self, i: usize) -> Option<Lacpdu> {
            let ours = self.to_ce[i]?;
            let sync = ours.actor.state & state::SYNC != 0;
            let mut st = state::ACTIVITY | state::TIMEOUT | state::AGGREGATION;
            if sync {
                st |= state::SYNC | state::COLLECTING | state::DISTRIBUTING;
            }
            Some(Lacpdu {
                actor: PortInfo {
                    system_priority: 65534,
                    system: CE,
                    key: 5,
                    port_priority: 65535,
                    port: 1 + i as u16,
                    state: st,
                },
                partner: ours.actor,
                max_delay: 0,
            })
        }

        /// Runs to `until`; the edge answers each node every 100 ms.
        fn run_until(&mut self, until: Time) {
            let mut next_ce = at((self.now.as_micros() / (100 * MS) + 1) * 100 * MS);
            loop {
                let mut t: Vec<Time> = self.hellos.iter().map(|h| h.0).collect();
                for i in 0..2 {
                    if self.alive[i] {
                        t.extend(self.nodes[i].next_deadline());
                    }
                }
                t.push(next_ce);
                let Some(t) = t.into_iter().min().filter(|t| *t <= until) else {
                    break;
                };
                self.now = t;
                let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.hellos)
                    .into_iter()
                    .partition(|h| h.0 <= t);
                self.hellos = rest;
                for (_, to, src, payload) in due {
                    if self.alive[to] {
                        let out = self.nodes[to].hello(t, src, &payload);
                        self.carry(to, out);
                    }
                }
                for i in 0..2 {
                    if self.alive[i] && self.nodes[i].next_deadline().is_some_and(|d| d <= t) {
                        let out = self.nodes[i].tick(t);
                        self.carry(i, out);
                    }
                }
                if t == next_ce {
                    next_ce += us(100 * MS);
                    for i in 0..2 {
                        if self.alive[i] {
                            if let Some(pdu) = self.ce_pdu(i) {
                                let f = pdu.encode(CE);
                                let out = self.nodes[i].lacpdu(t, "eth1", &f);
                                self.carry(i, out);
                            }
                        }
                    }
                }
            }
            self.now = until;
        }

        fn role(&self, i: usize) -> RoleState {
            self.nodes[i].roles()[0].1
        }

        fn selected(&self, i: usize) -> bool {
            self.nodes[i].members["eth1"].actor.selected()
        }
    }

    #[test]
    fn master_backup_selects_only_the_masters_member() {
        let mut p = Pair::new(TrunkMode::Auto);
        p.run_until(at(2_000 * MS));
        assert_eq!(p.nodes[0].instances[&1].state, State::Master);
        assert_eq!(p.nodes[1].instances[&1].state, State::Backup);
        assert_eq!((p.selected(0), p.selected(1)), (true, false));
        assert_eq!(
            p.role(0),
            RoleState {
                role: Role::Master,
                peer_present: true
            }
        );
        assert_eq!(p.role(1).role, Role::Backup);
        // Both present the shared system ID and the same key, with different port numbers.
        let (a, b) = (p.to_ce[0].unwrap().actor, p.to_ce[1].unwrap().actor);
        assert_eq!((a.system, a.system_priority, a.key), (SHARED, 1, 2));
        assert_eq!((b.system, b.key), (SHARED, 2));
        assert_ne!(a.port, b.port);
        assert_ne!(a.state & state::DISTRIBUTING, 0);
        assert_eq!(b.state & state::SYNC, 0);
    }

    #[test]
    fn member_link_failure_moves_the_role_and_the_selection() {
        let mut p = Pair::new(TrunkMode::Auto);
        p.run_until(at(2_000 * MS));
        let out = p.nodes[0].set_links(
            p.now,
            &[MemberLink {
                name: "eth1".into(),
                index: 3,
                up: false,
                mac: A,
            }],
        );
        p.carry(0, out);
        p.run_until(at(2_300 * MS));
        assert_eq!(
            (
                p.nodes[0].instances[&1].state,
                p.nodes[0].instances[&1].cause
            ),
            (State::Backup, Cause::LocalEthTrunkDown)
        );
        assert_eq!(
            (
                p.nodes[1].instances[&1].state,
                p.nodes[1].instances[&1].cause
            ),
            (State::Master, Cause::PeerEthTrunkDown)
        );
        assert!(p.selected(1));
        // B hears A, but A's member is down: A is not a present peer.
        assert_eq!(
            p.role(1),
            RoleState {
                role: Role::Master,
                peer_present: false
            }
        );
    }

    #[test]
    fn force_master_on_both_selects_both_and_a_dead_peer_is_absent() {
        let mut p = Pair::new(TrunkMode::ForceMaster);
        p.run_until(at(2_000 * MS));
        assert_eq!((p.selected(0), p.selected(1)), (true, true));
        for i in 0..2 {
            assert_eq!(
                p.role(i),
                RoleState {
                    role: Role::Master,
                    peer_present: true
                }
            );
        }
        // A dies: B stays master and after exactly 3 s of silence the peer is gone.
        p.alive[0] = false;
        p.run_until(at(5_000 * MS));
        assert!(!p.role(1).peer_present);
        assert_eq!(p.role(1).role, Role::Master);
    }

    #[test]
    fn force_backup_is_never_in_sync() {
        let mut p = Pair::new(TrunkMode::Auto);
        let mut c = node_cfg(10, 1, 2, TrunkMode::ForceBackup);
        c.trunks.get_mut(&1).unwrap().mode = TrunkMode::ForceBackup;
        let out = p.nodes[0].configure(at(0), c);
        p.carry(0, out);
        p.run_until(at(2_000 * MS));
        // A wins the E-Trunk but its Eth-Trunk is forced to backup.
        assert_eq!(p.nodes[0].instances[&1].state, State::Master);
        assert!(!p.selected(0));
        assert_eq!(p.role(0).role, Role::Backup);
    }

    #[test]
    fn the_gate_holds_a_revert() {
        let mut p = Pair::new(TrunkMode::Auto);
        p.run_until(at(2_000 * MS));
        let down = |up| {
            [MemberLink {
                name: "eth1".into(),
                index: 3,
                up,
                mac: A,
            }]
        };
        let out = p.nodes[0].set_links(p.now, &down(false));
        p.carry(0, out);
        p.run_until(at(2_500 * MS));
        let out = p.nodes[0].set_gate(p.now, &role_id(1, 1), false);
        p.carry(0, out);
        let out = p.nodes[0].set_links(p.now, &down(true));
        p.carry(0, out);
        p.run_until(at(10_000 * MS));
        assert_eq!(p.nodes[0].instances[&1].state, State::Backup);
        assert_eq!(p.nodes[1].instances[&1].state, State::Master);
        let out = p.nodes[0].set_gate(p.now, &role_id(1, 1), true);
        p.carry(0, out);
        p.run_until(at(10_500 * MS));
        assert_eq!(
            (
                p.nodes[0].instances[&1].state,
                p.nodes[0].instances[&1].cause
            ),
            (State::Master, Cause::Revert)
        );
        assert_eq!((p.selected(0), p.selected(1)), (true, false));
    }

    #[test]
    fn bad_hellos_are_counted_and_replays_dropped() {
        let mut p = Pair::new(TrunkMode::Auto);
        p.run_until(at(2_000 * MS));
        let h = Hello {
            etrunk: 1,
            priority: 1,
            state: WireState::Master,
            system_id: B,
            hello_interval: 10,
            multiplier: 3,
            sequence: 1,
            members: vec![],
        };
        // Wrong key, no key, garbage, unknown peer, a replayed sequence number.
        p.nodes[0].hello(p.now, addr(2), &h.encode(Some(b"x")));
        p.nodes[0].hello(p.now, addr(2), &h.encode(None));
        p.nodes[0].hello(p.now, addr(2), &[1, 1, 0, 1, 0]);
        p.nodes[0].hello(p.now, addr(9), &h.encode(Some(b"k")));
        p.nodes[0].hello(p.now, addr(2), &h.encode(Some(b"k")));
        let s = &p.nodes[0].instances[&1].stats;
        assert_eq!((s.auth_failures, s.decode_errors), (3, 1));
        assert_eq!(p.nodes[0].unknown_hellos, 1);
        assert_eq!(p.nodes[0].instances[&1].state, State::Master);
    }

    #[test]
    fn hellos_replayed_after_the_peer_died_are_dropped() {
        let mut p = Pair::new(TrunkMode::Auto);
        p.run_until(at(2_000 * MS));
        assert_eq!(p.nodes[0].instances[&1].state, State::Master);
        assert_eq!(p.nodes[1].instances[&1].state, State::Backup);
        // A's last hello as recorded on the wire; then A dies.
        let recorded = Hello {
            etrunk: 1,
            priority: 10,
            state: WireState::Master,
            system_id: A,
            hello_interval: 10,
            multiplier: 3,
            sequence: p.nodes[0].instances[&1].sequence(),
            members: vec![],
        }
        .encode(Some(b"k"));
        p.alive[0] = false;
        // The recording is played to B every second, before and after A's hold time ran out.
        for t in [2_500, 3_500, 4_500, 5_500, 6_500] {
            p.run_until(at(t * MS));
            let out = p.nodes[1].hello(p.now, addr(1), &recorded);
            p.carry(1, out);
        }
        p.run_until(at(8_000 * MS));
        assert_eq!(p.nodes[1].instances[&1].state, State::Master);
        assert!(
            !p.role(1).peer_present,
            "a replay brought the dead peer back"
        );
        assert_eq!(p.nodes[1].instances[&1].stats.auth_failures, 5);
    }
}
