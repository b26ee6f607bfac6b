//! The VRRP6 part of the data model: ietf-vrrp IPv6 instances (with the mldhb-vrrp additions)
//! read into router configuration, router state printed as the model's operational nodes, and
//! the ietf-vrrp notifications.

use super::events::{GlobalStats, InstanceConfig, Key, ProtocolError};
use super::instance::{Config, Instance, NewMasterReason, State, CENTISECOND};
use super::tasks::Vrrp6Runtime;
use crate::datastore::tree::{Node, NodeKey};
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

const IF: &str = "ietf-interfaces";
const IP: &str = "ietf-ip";
const VRRP: &str = "ietf-vrrp";
const MHVRRP: &str = "mldhb-vrrp";
pub const NS_VRRP: &str = "urn:ietf:params:xml:ns:yang:ietf-vrrp";

fn child<'a>(n: &'a Node, module: &str, name: &str) -> Option<&'a Node> {
    n.children.get(&NodeKey::new(module, name)).map(|c| &**c)
}

/// Entries of list `name` (module `module`) under `n`, with their key values.
fn entries<'a>(
    n: &'a Node,
    module: &'a str,
    name: &'a str,
) -> impl Iterator<Item = (&'a [String], &'a Node)> + 'a {
    n.children
        .iter()
        .filter(move |(k, _)| k.module == module && k.name == name && !k.id.is_empty())
        .map(|(k, v)| (k.id.as_slice(), &**v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vrrp: &str, addrs: &str) -> Node {
        let x = format!(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>up0</name><type>t:ethernetCsmacd</type><ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"/></interface><interface><name>eth1</name><type>t:ethernetCsmacd</type><ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip">{addrs}<vrrp xmlns="urn:ietf:params:xml:ns:yang:ietf-vrrp" xmlns:vrrp="urn:ietf:params:xml:ns:yang:ietf-vrrp"><vrrp-instance><vrid>5</vrid><version>vrrp:vrrp-v3</version>{vrrp}</vrrp-instance></vrrp></ipv6></interface></interfaces></config>"#
        );
        let t = crate::northbound::edit::config_tree(&x);
        crate::northbound::validate::validate(&t).unwrap();
        t
    }

    const VIPS: &str = "<virtual-ipv6-addresses><virtual-ipv6-address><ipv6-address>2001:db8:1::100</ipv6-address></virtual-ipv6-address><virtual-ipv6-address><ipv6-address>fe80::100</ipv6-address></virtual-ipv6-address></virtual-ipv6-addresses>";

    #[test]
    fn every_accepted_node_is_read() {
        let t = config(
            &format!(
                "<priority>150</priority><preempt><enabled>true</enabled><hold-time>30</hold-time></preempt>\
                 <accept-mode>true</accept-mode><advertise-interval-centi-sec>50</advertise-interval-centi-sec>\
                 <track><interfaces><interface><interface>up0</interface><priority-decrement>60</priority-decrement></interface></interfaces></track>\
                 {VIPS}<virtual-mac xmlns=\"urn:mldhb:yang:mldhb-vrrp\">true</virtual-mac>"
            ),
            "",
        );
        let c = configured(&t).unwrap();
        let i = &c[&("eth1".to_string(), 5)];
        assert!(i.owned.is_empty());
        let v = &i.vrrp;
        assert_eq!(
            (
                v.vrid,
                v.priority,
                v.preempt,
                v.hold_time_s,
                v.accept_mode,
                v.interval_cs
            ),
            (5, 150, true, 30, true, 50)
        );
        assert_eq!(
            v.vips,
            vec![
                "fe80::100".parse::<Ipv6Addr>().unwrap(),
                "2001:db8:1::100".parse().unwrap()
            ]
        );
        assert_eq!(v.tracked.get("up0"), Some(&60));
        assert!(v.virtual_mac);
    }

    #[test]
    fn defaults_and_ownership() {
        let t = config(
            VIPS,
            "<address><ip>2001:db8:1::100</ip><prefix-length>64</prefix-length></address>",
        );
        let c = configured(&t).unwrap();
        let i = &c[&("eth1".to_string(), 5)];
        assert_eq!(
            i.owned,
            vec!["2001:db8:1::100".parse::<Ipv6Addr>().unwrap()]
        );
        let v = &i.vrrp;
        assert_eq!(
            (
                v.priority,
                v.preempt,
                v.hold_time_s,
                v.accept_mode,
                v.interval_cs,
                v.virtual_mac
            ),
            (100, true, 0, false, 100, false)
        );
    }

    #[test]
    fn a_router_without_link_local_address_is_refused() {
        let t = config(
            "<virtual-ipv6-addresses><virtual-ipv6-address><ipv6-address>2001:db8:1::100</ipv6-address></virtual-ipv6-address></virtual-ipv6-addresses>",
            "",
        );
        assert!(configured(&t).unwrap_err().contains("link-local"));
    }

    #[test]
    fn state_and_events_fit_the_model() {
        let t = config(VIPS, "");
        let c = configured(&t).unwrap();
        let key = ("eth1".to_string(), 5);
        let mut inst = Instance::new(c[&key].vrrp.clone());
        inst.handle(
            Time::ZERO,
            super::super::instance::Input::Startup {
                link_local: "fe80::2".parse().unwrap(),
                owner: false,
            },
        );
        let mut tree = t.clone();
        let clock = Clock {
            now: Time::from_secs(5),
            wall: std::time::SystemTime::now(),
            started: Time::ZERO,
        };
        merge_instance(&mut tree, &key, &inst, &clock, Time::ZERO);
        merge_global(&mut tree, 1, 1, &GlobalStats::default(), &clock, Time::ZERO);
        let xml = crate::northbound::convert::to_xml(&tree);
        assert!(
            xml.contains("<master-down-interval>360</master-down-interval>"),
            "{xml}"
        );
        assert!(xml.contains("<skew-time>609375</skew-time>"), "{xml}");
        crate::yang::assert_state_parses(&xml);
        for el in [
            new_master_event(&"fe80::2".parse().unwrap(), NewMasterReason::Preempted),
            protocol_error_event(ProtocolError::Checksum),
        ] {
            let x = el.to_xml();
            crate::yang::assert_notification_parses(&x);
        }
    }
}
