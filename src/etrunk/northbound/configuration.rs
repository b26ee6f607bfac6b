//! E-Trunk (mldhb-etrunk): configuration read into the runtime's typed settings, change by change (the
//! subtrees it owns and its provider).

use super::*;

pub(super) fn etrunk_entry(id: u8, e: &Node) -> Result<ETrunkConfig, String> {
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
        changes.update(2, &mut next.member_of, |_, e| {
            e.leaf_value(ET, "member-of-eth-trunk")
                .map(|t| parse(Some(t), 0, "member-of-eth-trunk"))
                .transpose()
        })?;
        changes.update(3, &mut next.trunk_ifs, |name, e| {
            e.children
                .get(&NodeKey::new(ET, "eth-trunk"))
                .map(|et| trunk_entry(name, et))
                .transpose()
        })?;
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

pub(super) fn trunk_entry(name: &str, et: &Node) -> Result<TrunkConfig, String> {
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
pub(super) fn bound_profiles(rb: &Node) -> Vec<(String, String, u16, bool, String)> {
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
pub(super) fn refuse_two_forwarders(
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
