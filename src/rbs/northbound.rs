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

const RBS: &str = "mldhb-rbs";
const NS: &str = "urn:mldhb:yang:mldhb-rbs";

fn leaf<'a>(n: &'a Node, name: &str) -> Option<&'a str> {
    n.leaf_value(RBS, name)
}

fn remote_backup(root: &Node) -> Option<&Node> {
    root.children
        .get(&NodeKey::new(RBS, "remote-backup"))
        .map(|v| &**v)
}

fn addr(entry: &Node, name: &str, service: &str) -> Result<Ipv6Addr, String> {
    let v = leaf(entry, name).ok_or_else(|| format!("service {service}: {name} is missing"))?;
    let a: Ipv6Addr = v
        .parse()
        .map_err(|_| format!("service {service}: {name} {v} is not an IPv6 address"))?;
    if a.is_unspecified() || a.is_multicast() {
        return Err(format!(
            "service {service}: {name} {a} must be a unicast address"
        ));
    }
    if a.is_unicast_link_local() {
        return Err(format!(
            "service {service}: {name} {a} is link-local and needs a zone; use a global or unique-local address"
        ));
    }
    Ok(a)
}

/// The shared secret of a service entry's `security-key` container: Ok(None) when it is absent
/// (the channel then runs unauthenticated).
fn security_key(entry: &Node) -> Result<Option<Vec<u8>>, CipherError> {
    let Some(sk) = entry.children.get(&NodeKey::new(RBS, "security-key")) else {
        return Ok(None);
    };
    let cipher = leaf(sk, "key-type") == Some("cipher");
    let key = leaf(sk, "key").unwrap_or_default();
    if key.is_empty() {
        return Err(CipherError::Length);
    }
    seckey::secret(cipher, key).map(|k| Some(k.into_bytes()))
}

/// Reads and checks one service entry.
pub fn service(name: &str, entry: &Node) -> Result<ServiceConfig, String> {
    let peer = addr(entry, "peer-ipv6", name)?;
    let source = addr(entry, "source-ipv6", name)?;
    if peer == source {
        return Err(format!(
            "service {name}: peer-ipv6 and source-ipv6 are the same address"
        ));
    }
    if peer.to_ipv4_mapped().is_some() != source.to_ipv4_mapped().is_some() {
        return Err(format!(
            "service {name}: peer-ipv6 and source-ipv6 must both be IPv4-mapped or neither"
        ));
    }
    let port = leaf(entry, "port")
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| format!("service {name}: port is missing or invalid"))?;
    let key = security_key(entry).map_err(|e| format!("service {name}: security-key: {e}"))?;
    if key.is_none() {
        tracing::warn!(
            service = name,
            "no security-key: the channel will run unauthenticated"
        );
    }
    Ok(ServiceConfig {
        peer,
        source,
        port,
        channel: ChannelConfig {
            key,
            ..Default::default()
        },
    })
}

/// Every configured service, checked; services sharing a listening address are refused.
pub fn services(root: &Node) -> Result<BTreeMap<String, ServiceConfig>, String> {
    services_of(remote_backup(root))
}

/// The services of a `remote-backup` container.
fn services_of(rb: Option<&Node>) -> Result<BTreeMap<String, ServiceConfig>, String> {
    let mut out = BTreeMap::new();
    let Some(rb) = rb else {
        return Ok(out);
    };
    let mut bound: HashMap<(Ipv6Addr, u16), String> = HashMap::new();
    for (k, entry) in rb.children.iter() {
        if k.name != "service" || k.id.len() != 1 {
            continue;
        }
        let name = &k.id[0];
        let s = service(name, entry)?;
        if let Some(other) = bound.insert((s.source, s.port), name.clone()) {
            return Err(format!(
                "services {other} and {name} both use source {} port {}",
                s.source, s.port
            ));
        }
        out.insert(name.clone(), s);
    }
    Ok(out)
}

/// Profile names by (service, backup-id).
pub fn profile_names(root: &Node) -> HashMap<(String, BackupId), String> {
    profile_names_of(remote_backup(root))
}

fn profile_names_of(rb: Option<&Node>) -> HashMap<(String, BackupId), String> {
    let mut out = HashMap::new();
    let Some(rb) = rb else {
        return out;
    };
    for (k, entry) in rb.children.iter() {
        if k.name != "profile" || k.id.len() != 1 {
            continue;
        }
        let (Some(svc), Some(id)) = (
            leaf(entry, "remote-backup-service"),
            leaf(entry, "backup-id").and_then(|v| v.parse().ok()),
        ) else {
            continue;
        };
        out.insert((svc.to_string(), id), k.id[0].clone());
    }
    out
}

/// Adds a service's state under `/remote-backup/service[name]` of `tree`.
pub fn merge_state(tree: &mut Node, name: &str, st: &ServiceState) {
    let entry = tree
        .child_mut(NodeKey::new(RBS, "remote-backup"))
        .list_entry_mut(RBS, "service", "name", name);
    entry.set_leaf(RBS, "state", st.state);
    entry.set_leaf(RBS, "authenticated", st.authenticated.to_string());
    if let Some(t) = st.last_up {
        entry.set_leaf(RBS, "last-up-time", date_and_time(t));
    }
    if let Some(t) = st.last_down {
        entry.set_leaf(RBS, "last-down-time", date_and_time(t));
    }
    if let Some(r) = st.last_down_reason {
        entry.set_leaf(RBS, "last-down-reason", r);
    }
    let mut s = Node::default();
    s.set_leaf(RBS, "discontinuity-time", date_and_time(st.discontinuity));
    s.set_leaf(RBS, "frames-received", st.frames_rx.to_string());
    s.set_leaf(RBS, "frames-sent", st.frames_tx.to_string());
    s.set_leaf(RBS, "auth-failures", st.auth_failures.to_string());
    s.set_leaf(RBS, "resyncs", st.resyncs.to_string());
    s.set_leaf(RBS, "digest-mismatches", st.digest_mismatches.to_string());
    s.set_leaf(RBS, "decode-errors", st.decode_errors.to_string());
    entry
        .children
        .insert(NodeKey::new(RBS, "statistics"), Arc::new(s));
}

/// The mldhb-rbs notification that reports `event`.
pub fn notification(event: &RbsEvent) -> Element {
    let (name, leaves): (&str, [(&str, String); 2]) = match event {
        RbsEvent::ChannelUp {
            service,
            authenticated,
        } => (
            "rbs-channel-up",
            [
                ("service", service.clone()),
                ("authenticated", authenticated.to_string()),
            ],
        ),
        RbsEvent::ChannelDown { service, reason } => (
            "rbs-channel-down",
            [
                ("service", service.clone()),
                ("reason", reason.as_str().to_string()),
            ],
        ),
        RbsEvent::BatchSyncComplete { profile, entries } => (
            "batch-sync-complete",
            [
                ("profile", profile.clone()),
                ("entries", entries.to_string()),
            ],
        ),
    };
    let mut e = Element::new(NS, name);
    for (n, v) in leaves {
        e.push(Element::with_text(NS, n, v));
    }
    e
}

/// The RBS runtime's configuration: the services and the profile names by (service,
/// backup-id).
#[derive(Debug, Clone, Default)]
pub struct RbsConfig {
    services: BTreeMap<String, ServiceConfig>,
    names: HashMap<(String, BackupId), String>,
}

/// What the RBS runtime reads: the remote-backup container.
const SUBTREES: &[Subtree] = &[Subtree::whole(&[(RBS, "remote-backup")])];

/// The RBS runtime as the registry sees it.
pub struct RbsProvider {
    handle: RbsHandle,
}

impl RbsProvider {
    pub fn new(handle: RbsHandle) -> RbsProvider {
        RbsProvider { handle }
    }
}

impl Provider for RbsProvider {
    type Config = RbsConfig;

    fn name(&self) -> &'static str {
        "rbs"
    }

    fn subtrees(&self) -> &'static [Subtree] {
        SUBTREES
    }

    fn decode(&self, _: &RbsConfig, changes: &Changes) -> Result<RbsConfig, String> {
        let rb = changes.subtree(0);
        Ok(RbsConfig {
            services: services_of(rb)?,
            names: profile_names_of(rb),
        })
    }

    fn apply(&mut self, _: &RbsConfig, next: &RbsConfig, _: &Changes) -> Result<(), String> {
        self.handle.set_profile_names(next.names.clone());
        for name in self.handle.configured() {
            if !next.services.contains_key(&name) {
                self.handle.configure(&name, None);
            }
        }
        for (name, cfg) in &next.services {
            self.handle.configure(name, Some(cfg.clone()));
        }
        Ok(())
    }
}

impl OperProvider for RbsHandle {
    fn merge_state(&self, tree: &mut Node) {
        for name in self.configured() {
            if let Some(st) = self.state(&name) {
                merge_state(tree, &name, &st);
            }
        }
    }
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
