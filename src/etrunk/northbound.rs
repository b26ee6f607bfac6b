//! The mldhb-etrunk model: E-Trunks, Eth-Trunks and their members read into a
//! [`NodeConfig`] with precise refusals, their state printed as the model's operational
//! nodes, and the model's notifications.

use super::events::{actor_key, Node as ETrunkNode, NodeConfig, TrunkConfig};
use super::events::{ETrunkConfig, Out};
use super::instance::{self, Time};
use super::packet::TrunkMode;
use super::tasks::ETrunkRuntime;
use crate::datastore::tree::{Node, NodeKey};
use crate::lacp::packet::state;
use crate::northbound::registry::OperProvider;
use crate::northbound::registry::{Changes, Provider, Subtree};
use crate::xml::Element;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::sync::Arc;

const ET: &str = "mldhb-etrunk";
const NS: &str = "urn:mldhb:yang:mldhb-etrunk";
const IF: &str = "ietf-interfaces";
const RBS: &str = "mldhb-rbs";
/// Longest Linux interface name.
const IFNAMSIZ: usize = 15;

fn list<'a>(n: &'a Node, name: &'a str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
    n.children
        .iter()
        .filter(move |(k, _)| k.name == name && k.id.len() == 1)
        .map(|(k, v)| (k.id[0].as_str(), v.as_ref()))
}

fn parse<T: std::str::FromStr>(v: Option<&str>, default: T, what: &str) -> Result<T, String> {
    match v {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("{what} '{v}' is not valid")),
    }
}

/// Parses `00:e0:fc:12:34:56`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (o, p) in m.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

pub fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn etrunk_entry(id: u8, e: &Node) -> Result<ETrunkConfig, String> {
    let at = |what: &str| format!("e-trunk {id}: {what}");
    let mac = |name: &str| -> Result<Option<[u8; 6]>, String> {
        e.leaf_value(ET, name)
            .map(|v| parse_mac(v).ok_or_else(|| at(&format!("{name} '{v}' is not valid"))))
            .transpose()
    };
    let addr = |name: &str| -> Result<Option<Ipv6Addr>, String> {
        e.leaf_value(ET, name)
            .map(|v| {
                v.parse()
                    .map_err(|_| at(&format!("{name} '{v}' is not valid")))
            })
            .transpose()
    };
    let key = match e.children.get(&NodeKey::new(ET, "security-key")) {
        None => None,
        Some(k) => {
            let cipher = k.leaf_value(ET, "key-type") == Some("cipher");
            let text = k
                .leaf_value(ET, "key")
                .ok_or_else(|| at("security-key has no key"))?;
            let secret = crate::seckey::secret(cipher, text)
                .map_err(|err| at(&format!("security-key: {err}")))?;
            Some(secret.into_bytes())
        }
    };
    let revert = parse(e.leaf_value(ET, "revert-enable"), true, "revert-enable")?;
    Ok(ETrunkConfig {
        etrunk: instance::Config {
            id,
            priority: parse(e.leaf_value(ET, "priority"), 100, "priority")?,
            system_id: [0; 6],
            hello_interval: parse(e.leaf_value(ET, "hello-interval"), 10, "hello-interval")?,
            multiplier: parse(
                e.leaf_value(ET, "hold-on-failure-multiplier"),
                20,
                "hold-on-failure-multiplier",
            )?,
            revert_delay_s: revert
                .then(|| parse(e.leaf_value(ET, "revert-delay"), 120, "revert-delay"))
                .transpose()?,
        },
        system_id: mac("system-id")?,
        peer: addr("peer-ipv6")?,
        source: addr("source-ipv6")?,
        port: parse(e.leaf_value(ET, "port"), 1025, "port")?,
        key,
    })
}

/// The E-Trunk runtime's configuration as its subtrees give it, entry by entry, and the
/// [`NodeConfig`] assembled from them.
#[derive(Debug, Clone, Default)]
pub struct ETrunkSettings {
    lacp_system: Option<[u8; 6]>,
    lacp_priority: Option<u16>,
    etrunks: BTreeMap<u8, ETrunkConfig>,
    /// Interface → the Eth-Trunk it is a member of.
    member_of: BTreeMap<String, u16>,
    /// Interface → the Eth-Trunk it is (members filled in when assembling).
    trunk_ifs: BTreeMap<String, TrunkConfig>,
    /// Remote backup profiles bound to an Eth-Trunk: (profile, e-trunk, eth-trunk,
    /// active-active, load-balance).
    profiles: Vec<(String, String, u16, bool, String)>,
    /// What the node runs.
    pub node: NodeConfig,
}

/// What the E-Trunk runtime reads: the LACP settings, the E-Trunks, each interface's Eth-Trunk
/// membership or Eth-Trunk settings, and the remote backup profiles (the force-master check).
pub const SUBTREES: &[Subtree] = &[
    Subtree::whole(&[(ET, "lacp")]),
    Subtree::entries(&[(ET, "e-trunk")], &[]),
    Subtree::entries(
        &[(IF, "interfaces"), (IF, "interface")],
        &[(ET, "member-of-eth-trunk")],
    ),
    Subtree::entries(
        &[(IF, "interfaces"), (IF, "interface")],
        &[(ET, "eth-trunk")],
    ),
    Subtree::whole(&[(RBS, "remote-backup")]),
];

impl ETrunkSettings {
    /// The settings after `changes`; refuses what the model allows but this agent cannot run.
    pub fn decode(&self, changes: &Changes) -> Result<ETrunkSettings, String> {
        let mut next = self.clone();
        if changes.touched(0) {
            next.lacp_system = None;
            next.lacp_priority = None;
            if let Some(l) = changes.subtree(0) {
                if let Some(v) = l.leaf_value(ET, "e-trunk-system-id") {
                    next.lacp_system = Some(
                        parse_mac(v)
                            .ok_or_else(|| format!("lacp e-trunk-system-id '{v}' is not valid"))?,
                    );
                }
                next.lacp_priority = Some(parse(
                    l.leaf_value(ET, "e-trunk-priority"),
                    32768,
                    "e-trunk-priority",
                )?);
            }
        }
        for (id, e) in changes.entries(1) {
            let [id] = id.as_slice() else { continue };
            let id: u8 = id
                .parse()
                .map_err(|_| format!("e-trunk '{id}' is not valid"))?;
            match e {
                Some(e) => next.etrunks.insert(id, etrunk_entry(id, e)?),
                None => next.etrunks.remove(&id),
            };
        }
        for (id, entry) in changes.entries(2) {
            let [name] = id.as_slice() else { continue };
            next.member_of.remove(name);
            if let Some(t) = entry.and_then(|e| e.leaf_value(ET, "member-of-eth-trunk")) {
                let t: u16 = parse(Some(t), 0, "member-of-eth-trunk")?;
                next.member_of.insert(name.clone(), t);
            }
        }
        for (id, entry) in changes.entries(3) {
            let [name] = id.as_slice() else { continue };
            next.trunk_ifs.remove(name);
            if let Some(et) = entry.and_then(|e| e.children.get(&NodeKey::new(ET, "eth-trunk"))) {
                next.trunk_ifs.insert(name.clone(), trunk_entry(name, et)?);
            }
        }
        if changes.touched(4) {
            next.profiles = changes.subtree(4).map(bound_profiles).unwrap_or_default();
        }
        next.node = next.assemble()?;
        Ok(next)
    }

    /// The node's configuration from the pieces: O(E-Trunks + Eth-Trunk interfaces).
    fn assemble(&self) -> Result<NodeConfig, String> {
        let mut cfg = NodeConfig {
            lacp_system: self.lacp_system,
            lacp_priority: self.lacp_priority.unwrap_or(32768),
            etrunks: self.etrunks.clone(),
            trunks: BTreeMap::new(),
        };
        for t in self.trunk_ifs.values() {
            cfg.trunks.insert(t.id, t.clone());
        }
        let mut members: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
        for (name, t) in &self.member_of {
            members.entry(*t).or_default().insert(name.clone());
        }
        for (t, m) in members {
            let trunk = cfg
                .trunks
                .get_mut(&t)
                .ok_or_else(|| format!("no Eth-Trunk {t} for members {m:?}"))?;
            if m.len() > 1 {
                return Err(format!(
                    "Eth-Trunk {t} ({}) has members {}: this agent runs one member per device \
                     (the kernel has no bonding driver; the member carries the Eth-Trunk)",
                    trunk.name,
                    m.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            trunk.members = m;
        }
        refuse_two_forwarders(&self.profiles, &cfg)?;
        Ok(cfg)
    }
}

fn trunk_entry(name: &str, et: &Node) -> Result<TrunkConfig, String> {
    let id: u16 = parse(et.leaf_value(ET, "trunk-id"), 0, "trunk-id")?;
    if name.len() > IFNAMSIZ {
        return Err(format!(
            "Eth-Trunk interface name '{name}' is longer than {IFNAMSIZ} characters, \
             the longest Linux interface name"
        ));
    }
    let etrunk = et
        .leaf_value(ET, "e-trunk")
        .map(|v| parse(Some(v), 0u8, "e-trunk"))
        .transpose()?;
    let mode = match et.leaf_value(ET, "e-trunk-mode") {
        Some("force-master") => TrunkMode::ForceMaster,
        Some("force-backup") => TrunkMode::ForceBackup,
        _ => TrunkMode::Auto,
    };
    Ok(TrunkConfig {
        id,
        name: name.to_string(),
        etrunk,
        mode,
        members: BTreeSet::new(),
    })
}

/// The remote backup profiles that name an Eth-Trunk.
fn bound_profiles(rb: &Node) -> Vec<(String, String, u16, bool, String)> {
    list(rb, "profile")
        .filter_map(|(name, p)| {
            let e = p.leaf_value(RBS, "e-trunk-id")?;
            let t = p.leaf_value(RBS, "eth-trunk-id")?.parse::<u16>().ok()?;
            let aa = p.leaf_value(RBS, "backup-mode") == Some("active-active");
            let lb = p.leaf_value(RBS, "load-balance").unwrap_or("master-only");
            Some((name.to_string(), e.to_string(), t, aa, lb.to_string()))
        })
        .collect()
}

/// Reads the whole E-Trunk configuration of `root` (for tests).
#[cfg(test)]
pub fn configured(root: &Node) -> Result<NodeConfig, String> {
    let empty = Node::default();
    let all = Changes::everything(SUBTREES, &empty, root);
    Ok(ETrunkSettings::default().decode(&all)?.node)
}

/// A force-master Eth-Trunk makes both devices master: a profile bound to it must be
/// active-active with a load-balance that splits the groups, or both would forward.
fn refuse_two_forwarders(
    profiles: &[(String, String, u16, bool, String)],
    cfg: &NodeConfig,
) -> Result<(), String> {
    for (name, e, t, aa, lb) in profiles {
        let Some(trunk) = cfg.trunks.get(t) else {
            continue;
        };
        if trunk.mode != TrunkMode::ForceMaster
            || trunk.etrunk.map(|x| x.to_string()).as_ref() != Some(e)
        {
            continue;
        }
        if !aa || lb == "master-only" {
            return Err(format!(
                "remote backup profile {name}: {} is in e-trunk mode force-master, so both \
                 devices are master; the profile must be 'backup-mode active-active' with \
                 'load-balance group-hash' or 'source-group-hash', else both devices forward \
                 every group",
                trunk.name
            ));
        }
    }
    Ok(())
}

fn bits(s: u8) -> String {
    state::names(s).join(" ")
}

fn role_str(r: crate::bus::Role) -> &'static str {
    match r {
        crate::bus::Role::Initialize => "initialize",
        crate::bus::Role::Backup => "backup",
        crate::bus::Role::Master => "master",
    }
}

/// Adds every E-Trunk's and Eth-Trunk's state to `tree`.
pub fn merge_state(tree: &mut Node, node: &ETrunkNode, now: Time) {
    for (id, inst) in &node.instances {
        let e = tree.child_mut(NodeKey::with_id(ET, "e-trunk", vec![id.to_string()]));
        e.set_leaf(ET, "id", id.to_string());
        e.set_leaf(ET, "state", inst.state.as_str());
        e.set_leaf(ET, "cause", inst.cause.as_str());
        e.set_leaf(ET, "local-system-id", mac_str(&inst.cfg.system_id));
        if let Some(p) = &inst.peer {
            let st = match p.state {
                super::packet::WireState::Initialize => "initialize",
                super::packet::WireState::Backup => "backup",
                super::packet::WireState::Master => "master",
            };
            e.set_leaf(ET, "peer-state", st);
            e.set_leaf(ET, "peer-priority", p.priority.to_string());
            e.set_leaf(ET, "peer-system-id", mac_str(&p.system_id));
            e.set_leaf(ET, "peer-hold-time", (p.hold_time() / 1000).to_string());
        }
        let authenticated = node.cfg.etrunks.get(id).is_some_and(|c| c.key.is_some());
        e.set_leaf(ET, "authenticated", authenticated.to_string());
        if let Some((left, _)) = inst.revert_wait(now) {
            e.set_leaf(ET, "revert-delay-remaining", left.to_string());
        }
        let s = &inst.stats;
        let mut st = Node::default();
        st.set_leaf(ET, "hellos-sent", s.hellos_sent.to_string());
        st.set_leaf(ET, "hellos-received", s.hellos_received.to_string());
        st.set_leaf(ET, "auth-failures", s.auth_failures.to_string());
        st.set_leaf(ET, "decode-errors", s.decode_errors.to_string());
        st.set_leaf(ET, "state-changes", s.state_changes.to_string());
        e.children
            .insert(NodeKey::new(ET, "statistics"), Arc::new(st));
    }
    if node.cfg.trunks.is_empty() {
        return;
    }
    let ifs = tree.child_mut(NodeKey::new(IF, "interfaces"));
    for t in node.cfg.trunks.values() {
        let et = ifs
            .list_entry_mut(IF, "interface", "name", &t.name)
            .child_mut(NodeKey::new(ET, "eth-trunk"));
        if t.etrunk.is_some() {
            et.set_leaf(ET, "oper-role", role_str(node.trunk_role(t)));
        }
        let mut system = None;
        for name in &t.members {
            let Some(m) = node.members.get(name) else {
                continue;
            };
            system = Some(m.actor.cfg.system);
            let me = et.child_mut(NodeKey::with_id(ET, "member", vec![name.clone()]));
            let a = &m.actor;
            me.set_leaf(ET, "name", name.clone());
            me.set_leaf(ET, "selected", a.selected().to_string());
            me.set_leaf(ET, "actor-state", bits(a.actor_state()));
            me.set_leaf(ET, "actor-port-priority", a.cfg.port_priority.to_string());
            me.set_leaf(ET, "actor-port-number", a.cfg.port.to_string());
            if let Some(p) = a.partner.filter(|_| a.up() || a.partner_state() != 0) {
                me.set_leaf(ET, "partner-system-id", mac_str(&p.system));
                me.set_leaf(ET, "partner-system-priority", p.system_priority.to_string());
                me.set_leaf(ET, "partner-key", p.key.to_string());
                me.set_leaf(ET, "partner-port-number", p.port.to_string());
            }
            me.set_leaf(ET, "partner-state", bits(a.partner_state()));
            me.set_leaf(ET, "lacpdus-received", a.stats.received.to_string());
            me.set_leaf(ET, "lacpdus-sent", a.stats.sent.to_string());
            me.set_leaf(ET, "lacpdu-errors", a.stats.errors.to_string());
        }
        if let Some(s) = system {
            et.set_leaf(ET, "actor-system-id", mac_str(&s));
        }
        et.set_leaf(ET, "actor-key", actor_key(t.id).to_string());
    }
}

/// The notification for an [`Out`], if it is one.
pub fn event(out: &Out) -> Option<Element> {
    match out {
        Out::ETrunkChange {
            etrunk,
            old,
            new,
            cause,
        } => {
            let mut el = Element::new(NS, "e-trunk-state-change");
            el.push(Element::with_text(NS, "id", etrunk.to_string()));
            el.push(Element::with_text(NS, "old-state", old.as_str()));
            el.push(Element::with_text(NS, "new-state", new.as_str()));
            el.push(Element::with_text(NS, "cause", cause.as_str()));
            Some(el)
        }
        Out::MemberChange {
            trunk,
            member,
            selected,
            actor_state,
            partner_state,
        } => {
            let mut el = Element::new(NS, "lacp-member-state-change");
            el.push(Element::with_text(NS, "eth-trunk", trunk.clone()));
            el.push(Element::with_text(NS, "member", member.clone()));
            el.push(Element::with_text(NS, "selected", selected.to_string()));
            el.push(Element::with_text(NS, "actor-state", bits(*actor_state)));
            el.push(Element::with_text(
                NS,
                "partner-state",
                bits(*partner_state),
            ));
            Some(el)
        }
        _ => None,
    }
}

impl Provider for ETrunkRuntime {
    type Config = ETrunkSettings;

    fn name(&self) -> &'static str {
        "e-trunk"
    }

    fn subtrees(&self) -> &'static [Subtree] {
        SUBTREES
    }

    fn decode(
        &self,
        current: &ETrunkSettings,
        changes: &Changes,
    ) -> Result<ETrunkSettings, String> {
        current.decode(changes)
    }

    fn prepare(&mut self, next: &ETrunkSettings) -> Result<(), String> {
        let has_members = next.node.trunks.values().any(|t| !t.members.is_empty());
        match self.unavailable() {
            Some(why) if has_members => {
                Err(format!("Eth-Trunk members cannot run in this agent: {why}"))
            }
            _ => Ok(()),
        }
    }

    fn apply(
        &mut self,
        _: &ETrunkSettings,
        next: &ETrunkSettings,
        _: &Changes,
    ) -> Result<(), String> {
        self.configure(next.node.clone());
        Ok(())
    }
}

impl OperProvider for ETrunkRuntime {
    fn merge_state(&self, tree: &mut Node) {
        self.with_node(|node, now| merge_state(tree, node, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::northbound::edit::config_tree as tree;

    /// Scenario 3 (or 4 with `mode` force-master and an active-active profile).
    fn scenario(mode: &str, profile: &str) -> String {
        format!(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
<lacp xmlns="urn:mldhb:yang:mldhb-etrunk"><e-trunk-system-id>00:e0:fc:12:34:56</e-trunk-system-id><e-trunk-priority>1</e-trunk-priority></lacp>
<e-trunk xmlns="urn:mldhb:yang:mldhb-etrunk"><id>1</id><priority>10</priority><peer-ipv6>2001:db8:10::2</peer-ipv6><source-ipv6>2001:db8:10::1</source-ipv6><hello-interval>10</hello-interval><hold-on-failure-multiplier>3</hold-on-failure-multiplier><security-key><key-type>simple</key-type><key>mldhb-example-key</key></security-key></e-trunk>
<remote-backup xmlns="urn:mldhb:yang:mldhb-rbs"><service><name>rbs1</name><peer-ipv6>2001:db8:10::2</peer-ipv6><source-ipv6>2001:db8:10::1</source-ipv6><port>1025</port></service><profile><name>rbp1</name><service-type>mld</service-type><backup-id>10</backup-id><remote-backup-service>rbs1</remote-backup-service><e-trunk-id>1</e-trunk-id><eth-trunk-id>1</eth-trunk-id>{profile}</profile></remote-backup>
<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type">
<interface><name>eth1</name><type>t:ethernetCsmacd</type><member-of-eth-trunk xmlns="urn:mldhb:yang:mldhb-etrunk">1</member-of-eth-trunk></interface>
<interface><name>Eth-Trunk1</name><type>t:ieee8023adLag</type><eth-trunk xmlns="urn:mldhb:yang:mldhb-etrunk"><trunk-id>1</trunk-id><mode>lacp-static</mode><e-trunk>1</e-trunk>{mode}</eth-trunk><mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable></mld><remote-backup-profile xmlns="urn:mldhb:yang:mldhb-rbs">rbp1</remote-backup-profile></interface>
</interfaces></config>"#
        )
    }

    #[test]
    fn scenario_three_reads() {
        let t = tree(&scenario("", ""));
        crate::northbound::validate::validate(&t).unwrap();
        let c = configured(&t).unwrap();
        assert_eq!(c.lacp_system, Some([0x00, 0xe0, 0xfc, 0x12, 0x34, 0x56]));
        assert_eq!(c.lacp_priority, 1);
        let e = &c.etrunks[&1];
        assert_eq!(
            (
                e.etrunk.priority,
                e.etrunk.hello_interval,
                e.etrunk.multiplier
            ),
            (10, 10, 3)
        );
        assert_eq!(e.etrunk.revert_delay_s, Some(120));
        assert_eq!(e.port, 1025);
        assert_eq!(e.key.as_deref(), Some(&b"mldhb-example-key"[..]));
        assert_eq!(e.peer, Some("2001:db8:10::2".parse().unwrap()));
        let t1 = &c.trunks[&1];
        assert_eq!(t1.name, "Eth-Trunk1");
        assert_eq!(t1.etrunk, Some(1));
        assert_eq!(t1.mode, TrunkMode::Auto);
        assert_eq!(t1.members, ["eth1".to_string()].into());
    }

    #[test]
    fn force_master_needs_a_splitting_active_active_profile() {
        let fm = "<e-trunk-mode>force-master</e-trunk-mode>";
        let e = configured(&tree(&scenario(fm, ""))).unwrap_err();
        assert!(
            e.contains("force-master") && e.contains("both devices forward"),
            "{e}"
        );
        let e = configured(&tree(&scenario(
            fm,
            "<backup-mode>active-active</backup-mode>",
        )))
        .unwrap_err();
        assert!(e.contains("rbp1"), "{e}");
        let c = configured(&tree(&scenario(
            fm,
            "<backup-mode>active-active</backup-mode><load-balance>group-hash</load-balance>",
        )))
        .unwrap();
        assert_eq!(c.trunks[&1].mode, TrunkMode::ForceMaster);
    }

    #[test]
    fn two_members_are_refused() {
        let x = scenario("", "").replace(
            "</interfaces>",
            r#"<interface><name>eth3</name><type>t:ethernetCsmacd</type><member-of-eth-trunk xmlns="urn:mldhb:yang:mldhb-etrunk">1</member-of-eth-trunk></interface></interfaces>"#,
        );
        let e = configured(&tree(&x)).unwrap_err();
        assert!(e.contains("eth1, eth3") && e.contains("one member"), "{e}");
    }

    #[test]
    fn state_and_notifications_fit_the_model() {
        let t = tree(&scenario("", ""));
        let c = configured(&t).unwrap();
        let mut node = ETrunkNode::new([2, 0, 0, 0, 0, 1], 0);
        let mut outs = node.configure(0, c);
        outs.extend(node.set_links(
            0,
            &[super::super::events::MemberLink {
                name: "eth1".into(),
                index: 3,
                up: true,
                mac: [2, 0, 0, 0, 0, 1],
            }],
        ));
        let t_end = 4_000_000;
        outs.extend(node.tick(t_end));
        let mut out = t.clone();
        merge_state(&mut out, &node, t_end);
        let xml = crate::northbound::convert::to_xml(&out);
        for part in [
            // No LACP partner: the Eth-Trunk is down, so the E-Trunk is backup.
            "<state>backup</state>",
            "<cause>local-eth-trunk-down</cause>",
            "<authenticated>true</authenticated>",
            "<oper-role>backup</oper-role>",
            "<actor-system-id>00:e0:fc:12:34:56</actor-system-id>",
            "<actor-key>2</actor-key>",
            "<actor-state>activity timeout aggregation defaulted</actor-state>",
        ] {
            assert!(xml.contains(part), "{part} in {xml}");
        }
        crate::yang::assert_state_parses(&xml);
        let events: Vec<Element> = outs.iter().filter_map(event).collect();
        let change = events
            .iter()
            .find(|e| e.name == "e-trunk-state-change")
            .expect("a state change");
        let x = change.to_xml();
        assert!(x.contains("<new-state>backup</new-state>"), "{x}");
        assert!(events.iter().any(|e| e.name == "lacp-member-state-change"));
        for e in &events {
            let x = e.to_xml();
            crate::yang::assert_notification_parses(&x);
        }
    }
}
