//! The service part of mldhb-rbs: `/remote-backup/service` read into service settings and
//! checked in prepare, handed to the runtime on apply, service state and statistics printed
//! as the model's operational nodes, and the runtime's events rendered as its notifications.

use super::api::{BackupId, RbsEvent};
use super::channel::ChannelConfig;
use super::tasks::{RbsHandle, ServiceConfig, ServiceState};
use crate::datastore::tree::{Node, NodeKey};
use crate::northbound::registry::OperProvider;
use crate::northbound::registry::{Changes, Provider, Subtree};
use crate::seckey::{self, CipherError};
use crate::xml::Element;
use crate::yang::date_and_time;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;
use std::sync::Arc;

pub mod configuration;
pub mod notification;
pub mod state;

pub use configuration::*;
pub use notification::*;
pub use state::*;

const RBS: &str = "mldhb-rbs";
const NS: &str = "urn:mldhb:yang:mldhb-rbs";

fn leaf<'a>(n: &'a Node, name: &str) -> Option<&'a str> {
    n.leaf_value(RBS, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn config(services: &str) -> Node {
        let x = format!(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><remote-backup xmlns="urn:mldhb:yang:mldhb-rbs">{services}</remote-backup></config>"#
        );
        let t = crate::northbound::edit::config_tree(&x);
        crate::northbound::validate::validate(&t).unwrap();
        t
    }

    fn svc(name: &str, peer: &str, source: &str, port: u16, key: &str) -> String {
        format!(
            "<service><name>{name}</name><peer-ipv6>{peer}</peer-ipv6><source-ipv6>{source}</source-ipv6><port>{port}</port>{key}</service>"
        )
    }

    #[test]
    fn services_are_read_with_their_keys() {
        let cipher = crate::seckey::encode("abc", crate::seckey::Origin::Cipher).unwrap();
        let t = config(&format!(
            "{}{}",
            svc(
                "a",
                "2001:db8::2",
                "2001:db8::1",
                2046,
                "<security-key><key>abc</key></security-key>"
            ),
            svc(
                "b",
                "2001:db8::1",
                "2001:db8::3",
                2047,
                &format!(
                    "<security-key><key-type>cipher</key-type><key>{cipher}</key></security-key>"
                )
            )
        ));
        let s = services(&t).unwrap();
        assert_eq!(s["a"].channel.key.as_deref(), Some(&b"abc"[..]));
        assert_eq!(s["b"].channel.key.as_deref(), Some(&b"abc"[..]));
        assert!(s["a"].initiator());
        assert!(!s["b"].initiator());
        assert_eq!(s["a"].port, 2046);
    }

    #[test]
    fn unusable_services_are_refused() {
        let refused = |x: String| services(&config(&x)).unwrap_err();
        assert!(refused(svc("a", "2001:db8::1", "2001:db8::1", 2046, "")).contains("same address"));
        assert!(refused(svc("a", "fe80::1", "2001:db8::1", 2046, "")).contains("link-local"));
        assert!(
            refused(svc("a", "::ffff:127.0.0.1", "2001:db8::1", 2046, "")).contains("IPv4-mapped")
        );
        assert!(refused(svc(
            "a",
            "2001:db8::2",
            "2001:db8::1",
            2046,
            "<security-key><key-type>cipher</key-type><key>nope</key></security-key>"
        ))
        .contains("security-key"));
        assert!(refused(format!(
            "{}{}",
            svc("a", "2001:db8::2", "2001:db8::1", 2046, ""),
            svc("b", "2001:db8::3", "2001:db8::1", 2046, "")
        ))
        .contains("both use source"));
    }

    #[test]
    fn state_fits_the_model() {
        let mut tree = config(&svc("a", "2001:db8::2", "2001:db8::1", 2046, ""));
        let st = ServiceState {
            state: "up",
            authenticated: false,
            last_up: Some(SystemTime::now()),
            last_down: Some(SystemTime::now()),
            last_down_reason: Some("keepalive-timeout"),
            discontinuity: SystemTime::now(),
            frames_rx: 1,
            frames_tx: 2,
            auth_failures: 3,
            resyncs: 4,
            digest_mismatches: 5,
            decode_errors: 6,
        };
        merge_state(&mut tree, "a", &st);
        let xml = crate::northbound::convert::to_xml(&tree);
        assert!(
            xml.contains("<digest-mismatches>5</digest-mismatches>"),
            "{xml}"
        );
        crate::yang::assert_state_parses(&xml);
    }

    #[test]
    fn notifications_fit_the_model() {
        use crate::rbs::channel::DownReason;
        let cases = [
            (
                RbsEvent::ChannelUp {
                    service: "s".into(),
                    authenticated: true,
                },
                "rbs-channel-up",
                [("service", "s"), ("authenticated", "true")],
            ),
            (
                RbsEvent::ChannelDown {
                    service: "s".into(),
                    reason: DownReason::KeepaliveTimeout,
                },
                "rbs-channel-down",
                [("service", "s"), ("reason", "keepalive-timeout")],
            ),
            (
                RbsEvent::BatchSyncComplete {
                    profile: "p".into(),
                    entries: 100_000,
                },
                "batch-sync-complete",
                [("profile", "p"), ("entries", "100000")],
            ),
        ];
        for (event, name, leaves) in cases {
            let e = notification(&event);
            let xml = e.to_xml();
            crate::yang::assert_notification_parses(&xml);
            assert_eq!((e.ns.as_str(), e.name.as_str()), (NS, name), "{xml}");
            let children: Vec<(&str, &str, &str)> = e
                .children
                .iter()
                .map(|c| (c.ns.as_str(), c.name.as_str(), c.text.as_str()))
                .collect();
            let want: Vec<(&str, &str, &str)> = leaves.iter().map(|(n, v)| (NS, *n, *v)).collect();
            assert_eq!(children, want, "{xml}");
            let body: String = leaves
                .iter()
                .map(|(n, v)| format!("<{n}>{v}</{n}>"))
                .collect();
            assert_eq!(xml, format!(r#"<{name} xmlns="{NS}">{body}</{name}>"#));
        }
        // Every reason is a value of the model's enumeration.
        for reason in [
            DownReason::ConnectFailed,
            DownReason::PeerClosed,
            DownReason::KeepaliveTimeout,
            DownReason::AuthFailure,
            DownReason::ProtocolError,
            DownReason::ConfigurationChange,
            DownReason::LocalShutdown,
        ] {
            let e = notification(&RbsEvent::ChannelDown {
                service: "s".into(),
                reason,
            });
            crate::yang::assert_notification_parses(&e.to_xml());
        }
    }
}
