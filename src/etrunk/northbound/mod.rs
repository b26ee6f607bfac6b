//! The mldhb-etrunk model: E-Trunks, Eth-Trunks and their members read into a
//! [`NodeConfig`] with precise refusals, their state printed as the model's operational
//! nodes, and the model's notifications.

use super::events::{actor_key, Node as ETrunkNode, NodeConfig, TrunkConfig};
use super::events::{ETrunkConfig, Out};
use super::instance;
use super::packet::TrunkMode;
use super::tasks::ETrunkRuntime;
use crate::datastore::tree::{Node, NodeKey};
use crate::lacp::packet::state as lacp_state;
use crate::northbound::registry::OperProvider;
use crate::northbound::registry::{Changes, Provider, Subtree};
use crate::time::Time;
use crate::xml::Element;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::sync::Arc;

pub mod configuration;
pub mod notification;
pub mod state;

pub use configuration::*;
pub use notification::*;
pub use state::*;

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

fn bits(s: u8) -> String {
    lacp_state::names(s).join(" ")
}

fn role_str(r: crate::bus::Role) -> &'static str {
    match r {
        crate::bus::Role::Initialize => "initialize",
        crate::bus::Role::Backup => "backup",
        crate::bus::Role::Master => "master",
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
        let mut outs = node.configure(Time::ZERO, c);
        outs.extend(node.set_links(
            Time::ZERO,
            &[super::super::events::MemberLink {
                name: "eth1".into(),
                index: 3,
                up: true,
                mac: [2, 0, 0, 0, 0, 1],
            }],
        ));
        let t_end = Time::from_micros(4_000_000);
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
