//! RBS services (mldhb-rbs): configuration read into the runtime's typed settings, change by change (the
//! subtrees it owns and its provider).

use super::*;

#[cfg(test)]
pub(super) fn remote_backup(root: &Node) -> Option<&Node> {
    root.children
        .get(&NodeKey::new(RBS, "remote-backup"))
        .map(|v| &**v)
}

pub(super) fn addr(entry: &Node, name: &str, service: &str) -> Result<Ipv6Addr, String> {
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
pub(super) fn security_key(entry: &Node) -> Result<Option<Vec<u8>>, CipherError> {
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

/// Every configured service of a whole tree, checked (for tests; the runtime decodes the
/// remote-backup container it is handed).
#[cfg(test)]
pub fn services(root: &Node) -> Result<BTreeMap<String, ServiceConfig>, String> {
    services_of(remote_backup(root))
}

/// The services of a `remote-backup` container.
pub(super) fn services_of(rb: Option<&Node>) -> Result<BTreeMap<String, ServiceConfig>, String> {
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

pub(super) fn profile_names_of(rb: Option<&Node>) -> HashMap<(String, BackupId), String> {
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

/// The RBS runtime's configuration: the services and the profile names by (service,
/// backup-id).
#[derive(Debug, Clone, Default)]
pub struct RbsConfig {
    services: BTreeMap<String, ServiceConfig>,
    names: HashMap<(String, BackupId), String>,
}

/// What the RBS runtime reads: the remote-backup container.
pub(super) const SUBTREES: &[Subtree] = &[Subtree::whole(&[(RBS, "remote-backup")])];

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
