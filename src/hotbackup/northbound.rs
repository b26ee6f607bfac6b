//! The remote backup profiles of the data model (mldhb-rbs, with the interface binding and
//! the MLD `track-vrrp6-vrid`): configuration read into controller profiles and tracks,
//! profile state printed as the model's operational nodes, and the controller's events
//! rendered as the model's notifications.

use super::controller::{role_str, BatchState, Controller, Event, Mode, ProfileConfig, Track};
use super::tasks::HotBackupRuntime;
use crate::bus::RoleSourceId;
use crate::datastore::tree::{Node, NodeKey};
use crate::mld::balance::LoadBalance;
use crate::mld::instance::Time;
use crate::northbound::registry::OperProvider;
use crate::northbound::registry::{Changes, Provider, Subtree};
use crate::xml::Element;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::time::{Duration, SystemTime};

const RBS: &str = "mldhb-rbs";
/// Namespace of the profile model and its notifications.
pub const NS: &str = "urn:mldhb:yang:mldhb-rbs";
const IF: &str = "ietf-interfaces";
const MLD: &str = "mldhb-mld";

/// Profiles and tracking interfaces as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotBackupConfig {
    pub profiles: Vec<ProfileConfig>,
    pub tracks: Vec<Track>,
}

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

/// What the hot-backup runtime reads: the remote-backup container, and per interface its
/// profile binding and its MLD settings.
pub const SUBTREES: &[Subtree] = &[
    Subtree::whole(&[(RBS, "remote-backup")]),
    Subtree::entries(
        &[(IF, "interfaces"), (IF, "interface")],
        &[(RBS, "remote-backup-profile")],
    ),
    Subtree::entries(&[(IF, "interfaces"), (IF, "interface")], &[(MLD, "mld")]),
];

/// The runtime's configuration as its subtrees give it, and what it assembles to.
#[derive(Debug, Clone, Default)]
pub struct HotBackupSettings {
    /// The remote-backup container (a persistent tree: copied in O(1)).
    remote_backup: Option<Node>,
    /// Interface → the profile it is bound to.
    bound: BTreeMap<String, String>,
    /// Interfaces with MLD enabled → the VRRP6 router they track, if any.
    mld: BTreeMap<String, Option<u8>>,
    /// Profiles and tracks for the controller.
    pub config: HotBackupConfig,
}

impl HotBackupSettings {
    /// The settings after `changes`; refuses what the model can say but the runtime cannot do.
    pub fn decode(&self, changes: &Changes) -> Result<HotBackupSettings, String> {
        let mut next = self.clone();
        if changes.touched(0) {
            next.remote_backup = changes.subtree(0).cloned();
        }
        for (id, entry) in changes.entries(1) {
            let [name] = id.as_slice() else { continue };
            next.bound.remove(name);
            if let Some(p) = entry.and_then(|e| e.leaf_value(RBS, "remote-backup-profile")) {
                next.bound.insert(name.clone(), p.to_string());
            }
        }
        for (id, entry) in changes.entries(2) {
            let [name] = id.as_slice() else { continue };
            next.mld.remove(name);
            let Some(m) = entry.and_then(|e| e.children.get(&NodeKey::new(MLD, "mld"))) else {
                continue;
            };
            if m.leaf_value(MLD, "enable") == Some("true") {
                let vrid = m
                    .leaf_value(MLD, "track-vrrp6-vrid")
                    .map(|v| parse(Some(v), "track-vrrp6-vrid"))
                    .transpose()?;
                next.mld.insert(name.clone(), vrid);
            }
        }
        next.config = assemble(next.remote_backup.as_ref(), &next.bound, &next.mld)?;
        Ok(next)
    }
}

/// Reads profiles and tracks of the whole of `root` (for tests and the lab's checks).
#[cfg(test)]
pub fn configured(root: &Node) -> Result<HotBackupConfig, String> {
    let empty = Node::default();
    let all = Changes::everything(SUBTREES, &empty, root);
    Ok(HotBackupSettings::default().decode(&all)?.config)
}

/// Profiles and tracks from the pieces: O(profiles + bound and MLD interfaces).
fn assemble(
    rb: Option<&Node>,
    bound_by_interface: &BTreeMap<String, String>,
    mld: &BTreeMap<String, Option<u8>>,
) -> Result<HotBackupConfig, String> {
    let mut services: BTreeMap<&str, (Ipv6Addr, Ipv6Addr)> = BTreeMap::new();
    let mut bound: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (i, p) in bound_by_interface {
        bound.entry(p.clone()).or_default().insert(i.clone());
    }
    if let Some(rb) = rb {
        for (name, s) in list(rb, "service") {
            let local = parse(s.leaf_value(RBS, "source-ipv6"), "source-ipv6")?;
            let peer = parse(s.leaf_value(RBS, "peer-ipv6"), "peer-ipv6")?;
            services.insert(name, (local, peer));
        }
    }
    let mut out = HotBackupConfig::default();
    if let Some(rb) = rb {
        for (name, p) in list(rb, "profile") {
            let service = p
                .leaf_value(RBS, "remote-backup-service")
                .ok_or_else(|| format!("profile {name}: remote-backup-service is missing"))?;
            let &(local_addr, peer_addr) = services
                .get(service)
                .ok_or_else(|| format!("profile {name}: no remote-backup-service {service}"))?;
            let role_source = match p.leaf_value(RBS, "vrrp6-id") {
                Some(v) => RoleSourceId::Vrrp6 {
                    interface: parse(p.leaf_value(RBS, "interface"), "interface")?,
                    vrid: parse(Some(v), "vrrp6-id")?,
                },
                None => RoleSourceId::ETrunk {
                    etrunk: parse(p.leaf_value(RBS, "e-trunk-id"), "e-trunk-id")?,
                    eth_trunk: parse(p.leaf_value(RBS, "eth-trunk-id"), "eth-trunk-id")?,
                },
            };
            let mode = match p.leaf_value(RBS, "backup-mode") {
                Some("active-active") => Mode::ActiveActive,
                _ => Mode::MasterBackup,
            };
            let lb = match p.leaf_value(RBS, "load-balance") {
                Some("group-hash") => LoadBalance::GroupHash,
                Some("source-group-hash") => LoadBalance::SourceGroupHash,
                _ => LoadBalance::MasterOnly,
            };
            let interfaces = bound.remove(name).unwrap_or_default();
            if let Some(i) = interfaces.iter().find(|i| !mld.contains_key(*i)) {
                return Err(format!(
                    "interface {i} is bound to remote backup profile {name} but MLD is not \
                     enabled on it ('mld enable')"
                ));
            }
            out.profiles.push(ProfileConfig {
                name: name.to_string(),
                backup_id: parse(p.leaf_value(RBS, "backup-id"), "backup-id")?,
                service: service.to_string(),
                role_source,
                mode,
                lb,
                interfaces,
                local_addr,
                peer_addr,
            });
        }
    }
    let in_profiles: BTreeSet<&String> = out.profiles.iter().flat_map(|p| &p.interfaces).collect();
    for (i, vrid) in mld {
        if let (Some(vrid), false) = (vrid, in_profiles.contains(i)) {
            out.tracks.push(Track {
                interface: i.clone(),
                source: RoleSourceId::Vrrp6 {
                    interface: i.clone(),
                    vrid: *vrid,
                },
            });
        }
    }
    Ok(out)
}

fn put(n: &mut Node, name: &str, value: impl Into<String>) {
    n.set_leaf(RBS, name, value);
}

/// Adds every profile's state under `/remote-backup/profile[name]` of `tree`; `wall` is the
/// wall-clock time at `now`.
pub fn merge_state(tree: &mut Node, ctl: &Controller, now: Time, wall: SystemTime) {
    if ctl.profiles().next().is_none() {
        return;
    }
    let rb = tree.child_mut(NodeKey::new(RBS, "remote-backup"));
    for p in ctl.profiles() {
        let st = p.state(now);
        let e = rb.child_mut(NodeKey::with_id(RBS, "profile", vec![st.name.clone()]));
        put(e, "name", st.name.clone());
        put(e, "role", role_str(st.role));
        let batch = match st.batch {
            BatchState::Idle => "idle",
            BatchState::InProgress => "in-progress",
            BatchState::Complete => "complete",
        };
        put(e, "batch-sync", batch);
        put(e, "backup-id-mismatch", st.mismatch.to_string());
        put(e, "local-entries", st.local_entries.to_string());
        put(e, "peer-entries", st.peer_entries.to_string());
        put(e, "switchovers", st.switchovers.to_string());
        if let Some(t) = st.last_switchover {
            let at = wall - Duration::from_millis(now.saturating_sub(t));
            put(e, "last-switchover-time", crate::yang::date_and_time(at));
        }
    }
}

/// The notification element of a controller event.
pub fn notification(e: &Event) -> Element {
    match e {
        Event::Switchover {
            profile,
            old_role,
            new_role,
            cause,
            group_count,
        } => {
            let mut n = Element::new(NS, "switchover");
            n.push(Element::with_text(NS, "profile", profile.clone()));
            n.push(Element::with_text(NS, "old-role", role_str(*old_role)));
            n.push(Element::with_text(NS, "new-role", role_str(*new_role)));
            n.push(Element::with_text(NS, "cause", cause.as_str()));
            n.push(Element::with_text(
                NS,
                "group-count",
                group_count.to_string(),
            ));
            n
        }
        Event::BatchSyncComplete { profile, entries } => {
            let mut n = Element::new(NS, "batch-sync-complete");
            n.push(Element::with_text(NS, "profile", profile.clone()));
            n.push(Element::with_text(NS, "entries", entries.to_string()));
            n
        }
    }
}

impl Provider for HotBackupRuntime {
    type Config = HotBackupSettings;

    fn name(&self) -> &'static str {
        "hot-backup"
    }

    fn subtrees(&self) -> &'static [Subtree] {
        SUBTREES
    }

    fn decode(
        &self,
        current: &HotBackupSettings,
        changes: &Changes,
    ) -> Result<HotBackupSettings, String> {
        current.decode(changes)
    }

    fn apply(
        &mut self,
        current: &HotBackupSettings,
        next: &HotBackupSettings,
        _: &Changes,
    ) -> Result<(), String> {
        if next.config != current.config {
            self.configure(&next.config);
        }
        Ok(())
    }
}

impl OperProvider for HotBackupRuntime {
    fn merge_state(&self, tree: &mut Node) {
        self.with_controller(|c, now| merge_state(tree, c, now, SystemTime::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::northbound::edit::config_tree as tree;
    use std::sync::Arc;

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
            5_000,
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
            65_000,
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
