//! The MLD part of the data model (mldhb-mld): configuration read into router parameters, and
//! router state printed as the model's operational nodes.

use super::instance::{Config, FilterMode, Origin, Router};
use super::tasks::{MldConfig, MldRuntime};
use crate::datastore::tree::{Node, NodeKey};
use crate::forwarding;
use crate::northbound::registry::OperProvider;
use crate::northbound::registry::{Changes, Provider, Subtree};
use crate::time::Time;
#[cfg(test)]
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::sync::Arc;

pub mod configuration;
pub mod state;

pub use configuration::*;
pub use state::*;

const IF: &str = "ietf-interfaces";
const MLD: &str = "mldhb-mld";
const MC: &str = "mldhb-multicast";

fn leaf<'a>(n: &'a Node, name: &str) -> Option<&'a str> {
    n.leaf_value(MLD, name)
}

fn num<T: std::str::FromStr>(n: &Node, name: &str, default: T) -> T {
    leaf(n, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mld::instance::Input;
    use crate::mld::packet::{Message, Record, RecordType};

    fn config(mld: &str) -> Node {
        let x = format!(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type><mld xmlns="urn:mldhb:yang:mldhb-mld">{mld}</mld></interface></interfaces></config>"#
        );
        let t = crate::northbound::edit::config_tree(&x);
        crate::northbound::validate::validate(&t).unwrap();
        t
    }

    #[test]
    fn defaults_and_overrides() {
        assert!(configured(&config("<enable>false</enable>")).is_empty());
        let c = configured(&config("<enable>true</enable>"));
        assert_eq!(c["eth1"].router, Config::default());
        assert!(c["eth1"].require_router_alert);
        let c = configured(&config(
            "<enable>true</enable><version>1</version><robust-count>3</robust-count><query-interval>60</query-interval>\
             <static-group><group>ff05::1</group><source>::</source></static-group>\
             <static-group><group>ff05::2</group><source>2001:db8::1</source></static-group>",
        ));
        let r = &c["eth1"].router;
        assert_eq!((r.version, r.robustness, r.query_interval_s), (1, 3, 60));
        assert_eq!(
            r.static_groups,
            vec![
                ("ff05::1".parse().unwrap(), None),
                (
                    "ff05::2".parse().unwrap(),
                    Some("2001:db8::1".parse().unwrap())
                )
            ]
        );
    }

    #[test]
    fn state_fits_the_model() {
        let own: Ipv6Addr = "fe80::2".parse().unwrap();
        let mut r = Router::new(Config::default(), own, Time::ZERO);
        let rec = Record {
            kind: RecordType::ModeIsInclude,
            group: "ff05::1:3".parse().unwrap(),
            sources: vec!["2001:db8:100::10".parse().unwrap()],
            aux: vec![],
        };
        r.handle(
            Time::ZERO,
            Input::Received {
                from: "fe80::10".parse().unwrap(),
                msg: Message::V2Report { records: vec![rec] },
            },
        );
        let mut tree = config("<enable>true</enable>");
        merge_state(&mut tree, "eth1", &r, Time::from_millis(5000));
        let xml = crate::northbound::convert::to_xml(&tree);
        assert!(xml.contains("<address>ff05::1:3</address>"), "{xml}");
        assert!(xml.contains("<expiry>255</expiry>"), "{xml}");
        // Every printed node exists in the schema with the right type.
        crate::yang::assert_state_parses(&xml);
    }

    #[test]
    fn changes_reach_mld_only_for_mld_settings_and_the_switches() {
        use crate::northbound::edit::config_tree as tree;
        let old = Node::default();
        let new = tree(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type><mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable></mld></interface></interfaces></config>"#,
        );
        let ch = crate::datastore::tree::diff(&old, &new);
        let first = decode(
            &MldConfig::default(),
            &Changes::new(SUBTREES, &old, &new, &ch),
        )
        .unwrap();
        assert_eq!(first.mld.keys().collect::<Vec<_>>(), ["eth1"]);
        assert!(!first.routing);
        // A description alone concerns nobody here.
        let described = tree(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type><description>x</description><mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable></mld></interface></interfaces></config>"#,
        );
        let ch = crate::datastore::tree::diff(&new, &described);
        assert!(!Changes::new(SUBTREES, &new, &described, &ch).any());
        let newer = tree(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type><description>x</description><mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable><version>1</version></mld></interface></interfaces><multicast xmlns="urn:mldhb:yang:mldhb-multicast"><ipv6-routing-enable>true</ipv6-routing-enable></multicast></config>"#,
        );
        let ch = crate::datastore::tree::diff(&described, &newer);
        let next = decode(&first, &Changes::new(SUBTREES, &described, &newer, &ch)).unwrap();
        assert!(next.routing);
        assert_eq!(next.mld["eth1"].router.version, 1);
    }

    #[test]
    fn unappliable_configuration_is_refused() {
        let m = InterfaceMld {
            router: Config {
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
