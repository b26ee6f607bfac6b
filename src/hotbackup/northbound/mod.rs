//! The remote backup profiles of the data model (mldhb-rbs, with the interface binding and
//! the MLD `track-vrrp6-vrid`): configuration read into controller profiles and tracks,
//! profile state printed as the model's operational nodes, and the controller's events
//! rendered as the model's notifications.

use super::controller::{role_str, BatchState, Controller, Event, Mode, ProfileConfig, Track};
use super::tasks::HotBackupRuntime;
use crate::bus::RoleSourceId;
use crate::datastore::tree::{Node, NodeKey};
use crate::mld::balance::LoadBalance;
use crate::northbound::registry::OperProvider;
use crate::northbound::registry::{Changes, Provider, Subtree};
use crate::time::Time;
use crate::xml::Element;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::time::SystemTime;

pub mod configuration;
pub mod notification;
pub mod state;

pub use configuration::*;
pub use notification::*;
pub use state::*;

const RBS: &str = "mldhb-rbs";
/// Namespace of the profile model and its notifications.
pub const NS: &str = "urn:mldhb:yang:mldhb-rbs";
const IF: &str = "ietf-interfaces";
const MLD: &str = "mldhb-mld";

fn list<'a>(n: &'a Node, name: &'a str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
    n.children
        .iter()
        .filter(move |(k, _)| k.name == name && k.id.len() == 1)
        .map(|(k, v)| (k.id[0].as_str(), v.as_ref()))
}

fn parse<T: std::str::FromStr>(v: Option<&str>, what: &str) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{what} is missing"))?;
    v.parse().map_err(|_| format!("{what} '{v}' is not valid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::northbound::edit::config_tree as tree;
    use std::sync::Arc;
    use std::time::Duration;

    const VRRP: &str = r#"<ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"><vrrp xmlns="urn:ietf:params:xml:ns:yang:ietf-vrrp" xmlns:vrrp="urn:ietf:params:xml:ns:yang:ietf-vrrp"><vrrp-instance><vrid>1</vrid><version>vrrp:vrrp-v3</version><virtual-ipv6-addresses><virtual-ipv6-address><ipv6-address>fe80::1</ipv6-address></virtual-ipv6-address></virtual-ipv6-addresses></vrrp-instance></vrrp></ipv6>"#;

    fn config(profile_extra: &str, eth1: &str) -> String {
        format!(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><remote-backup xmlns="urn:mldhb:yang:mldhb-rbs"><service><name>rbs1</name><peer-ipv6>2001:db8:10::2</peer-ipv6><source-ipv6>2001:db8:10::1</source-ipv6><port>1025</port></service><profile><name>rbp1</name><service-type>mld</service-type><backup-id>10</backup-id><remote-backup-service>rbs1</remote-backup-service><vrrp6-id>1</vrrp6-id><interface>eth1</interface>{profile_extra}</profile></remote-backup><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>eth1</name><type>t:ethernetCsmacd</type>{VRRP}{eth1}</interface><interface><name>eth3</name><type>t:ethernetCsmacd</type>{VRRP}<mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable><track-vrrp6-vrid>1</track-vrrp6-vrid></mld></interface></interfaces></config>"#
        )
    }

    const BOUND: &str = r#"<mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable><track-vrrp6-vrid>1</track-vrrp6-vrid></mld><remote-backup-profile xmlns="urn:mldhb:yang:mldhb-rbs">rbp1</remote-backup-profile>"#;

    #[test]
    fn profiles_bindings_and_tracks() {
        let t = tree(&config(
            "<backup-mode>active-active</backup-mode><load-balance>group-hash</load-balance>",
            BOUND,
        ));
        crate::northbound::validate::validate(&t).unwrap();
        let c = configured(&t).unwrap();
        assert_eq!(
            c.profiles,
            [ProfileConfig {
                name: "rbp1".into(),
                backup_id: 10,
                service: "rbs1".into(),
                role_source: RoleSourceId::Vrrp6 {
                    interface: "eth1".into(),
                    vrid: 1
                },
                mode: Mode::ActiveActive,
                lb: LoadBalance::GroupHash,
                interfaces: ["eth1".to_string()].into(),
                local_addr: "2001:db8:10::1".parse().unwrap(),
                peer_addr: "2001:db8:10::2".parse().unwrap(),
            }]
        );
        // eth3 tracks VRRP6 without a profile.
        assert_eq!(
            c.tracks,
            [Track {
                interface: "eth3".into(),
                source: RoleSourceId::Vrrp6 {
                    interface: "eth3".into(),
                    vrid: 1
                }
            }]
        );
        let defaults = configured(&tree(&config("", BOUND))).unwrap();
        assert_eq!(
            (defaults.profiles[0].mode, defaults.profiles[0].lb),
            (Mode::MasterBackup, LoadBalance::MasterOnly)
        );
    }

    #[test]
    fn binding_without_mld_is_refused_with_the_reason() {
        let t = tree(&config(
            "",
            r#"<mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>false</enable><track-vrrp6-vrid>1</track-vrrp6-vrid></mld><remote-backup-profile xmlns="urn:mldhb:yang:mldhb-rbs">rbp1</remote-backup-profile>"#,
        ));
        let e = configured(&t).unwrap_err();
        assert_eq!(
            e,
            "interface eth1 is bound to remote backup profile rbp1 but MLD is not enabled on it ('mld enable')"
        );
    }

    #[test]
    fn mismatched_vrrp6_binding_is_refused_by_the_model() {
        // Bound to the profile but tracking no VRRP6 group: the model's must refuses it.
        let t = tree(&config(
            "",
            r#"<mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable></mld><remote-backup-profile xmlns="urn:mldhb:yang:mldhb-rbs">rbp1</remote-backup-profile>"#,
        ));
        let e = crate::northbound::validate::validate(&t).unwrap_err();
        assert!(
            e.message.contains("must track that VRRP6 group"),
            "{}",
            e.message
        );
    }

    #[test]
    fn state_fits_the_model() {
        let t = tree(&config("", BOUND));
        let c = configured(&t).unwrap();
        let mut ctl = Controller::default();
        ctl.configure(c.profiles, c.tracks);
        ctl.handle(
            Time::from_millis(5_000),
            super::super::controller::Input::Role {
                source: RoleSourceId::Vrrp6 {
                    interface: "eth1".into(),
                    vrid: 1,
                },
                state: crate::bus::RoleState {
                    role: crate::bus::Role::Master,
                    peer_present: true,
                },
            },
        );
        let mut out = t.clone();
        merge_state(
            &mut out,
            &ctl,
            Time::from_millis(65_000),
            SystemTime::UNIX_EPOCH + Duration::from_secs(3600),
        );
        let xml = crate::northbound::convert::to_xml(&out);
        for part in [
            "<role>master</role>",
            "<batch-sync>idle</batch-sync>",
            "<switchovers>1</switchovers>",
            "<last-switchover-time>1970-01-01T00:59:00",
        ] {
            assert!(xml.contains(part), "{part} in {xml}");
        }
        crate::yang::assert_state_parses(&xml);
    }

    #[test]
    fn notifications_render_as_before_and_fit_the_model() {
        use super::super::controller::Cause;
        use crate::bus::Role;
        let switchover = |old_role, new_role, cause| Event::Switchover {
            profile: "rbp<&>1".into(),
            old_role,
            new_role,
            cause,
            group_count: 3,
        };
        let cases = [
            (
                switchover(Role::Initialize, Role::Backup, Cause::RoleSourceChange),
                "<switchover xmlns=\"urn:mldhb:yang:mldhb-rbs\"><profile>rbp&lt;&amp;&gt;1</profile><old-role>initialize</old-role><new-role>backup</new-role><cause>role-source-change</cause><group-count>3</group-count></switchover>",
            ),
            (
                switchover(Role::Backup, Role::Master, Cause::PeerFailure),
                "<switchover xmlns=\"urn:mldhb:yang:mldhb-rbs\"><profile>rbp&lt;&amp;&gt;1</profile><old-role>backup</old-role><new-role>master</new-role><cause>peer-failure</cause><group-count>3</group-count></switchover>",
            ),
            (
                switchover(Role::Master, Role::Initialize, Cause::DownstreamLinkDown),
                "<switchover xmlns=\"urn:mldhb:yang:mldhb-rbs\"><profile>rbp&lt;&amp;&gt;1</profile><old-role>master</old-role><new-role>initialize</new-role><cause>downstream-link-down</cause><group-count>3</group-count></switchover>",
            ),
            (
                Event::BatchSyncComplete {
                    profile: "rbp<&>1".into(),
                    entries: 0,
                },
                "<batch-sync-complete xmlns=\"urn:mldhb:yang:mldhb-rbs\"><profile>rbp&lt;&amp;&gt;1</profile><entries>0</entries></batch-sync-complete>",
            ),
        ];
        for (e, xml) in cases {
            assert_eq!(notification(&e).to_xml(), xml);
        }
        // Every cause the controller can give is one the model knows.
        for cause in [
            Cause::RoleSourceChange,
            Cause::PeerFailure,
            Cause::DownstreamLinkDown,
            Cause::Preempt,
            Cause::ConfigurationChange,
        ] {
            let e = Event::Switchover {
                profile: "rbp1".into(),
                old_role: Role::Backup,
                new_role: Role::Master,
                cause,
                group_count: 7,
            };
            crate::yang::assert_notification_parses(&notification(&e).to_xml());
        }
        let e = Event::BatchSyncComplete {
            profile: "rbp1".into(),
            entries: 100_000,
        };
        crate::yang::assert_notification_parses(&notification(&e).to_xml());
    }

    #[test]
    fn only_relevant_changes_count() {
        let a = tree(&config("", BOUND));
        let b = tree(&config("<backup-mode>active-active</backup-mode>", BOUND));
        let touched = |x: &Node, y: &Node| {
            let changes = crate::datastore::tree::diff(x, y);
            Changes::new(SUBTREES, x, y, &changes).any()
        };
        assert!(touched(&a, &b));
        let mut c = a.clone();
        c.insert(
            &[
                NodeKey::new(IF, "interfaces"),
                NodeKey::with_id(IF, "interface", vec!["eth1".into()]),
                NodeKey::new(IF, "description"),
            ],
            Arc::new(Node::leaf("x")),
        );
        assert!(!touched(&a, &c));
        // Decoded incrementally, the profile change reads as the whole tree does.
        let empty = Node::default();
        let base = HotBackupSettings::default()
            .decode(&Changes::everything(SUBTREES, &empty, &a))
            .unwrap();
        let changes = crate::datastore::tree::diff(&a, &b);
        let next = base
            .decode(&Changes::new(SUBTREES, &a, &b, &changes))
            .unwrap();
        assert_eq!(next.config, configured(&b).unwrap());
        assert_ne!(next.config, base.config);
    }
}
