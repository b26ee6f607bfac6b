//! Remote backup profiles (mldhb-rbs): configuration read into the runtime's typed settings, change by change (the
//! subtrees it owns and its provider).

use super::*;

/// Profiles and tracking interfaces as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotBackupConfig {
    pub profiles: Vec<ProfileConfig>,
    pub tracks: Vec<Track>,
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
        changes.update(1, &mut next.bound, |_, e| {
            Ok(e.leaf_value(RBS, "remote-backup-profile")
                .map(str::to_string))
        })?;
        changes.update(2, &mut next.mld, |_, e| {
            let Some(m) = e.children.get(&NodeKey::new(MLD, "mld")) else {
                return Ok(None);
            };
            if m.leaf_value(MLD, "enable") != Some("true") {
                return Ok(None);
            }
            let vrid = m
                .leaf_value(MLD, "track-vrrp6-vrid")
                .map(|v| parse(Some(v), "track-vrrp6-vrid"))
                .transpose()?;
            Ok(Some(vrid))
        })?;
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
pub(super) fn assemble(
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
