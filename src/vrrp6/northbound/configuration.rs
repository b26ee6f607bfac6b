//! VRRP6 (ietf-vrrp): configuration read into the runtime's typed settings, change by change (the
//! subtrees it owns and its provider).

use super::*;

/// Reads one `vrrp-instance` entry. Errors name what cannot run.
pub(super) fn instance(
    entry: &Node,
    vrid: u8,
    own_addrs: &[Ipv6Addr],
) -> Result<InstanceConfig, String> {
    let d = Config::default();
    let preempt = child(entry, VRRP, "preempt");
    let mut vips: Vec<Ipv6Addr> = Vec::new();
    if let Some(v) = child(entry, VRRP, "virtual-ipv6-addresses") {
        for (id, _) in entries(v, VRRP, "virtual-ipv6-address") {
            let a: Ipv6Addr = id[0]
                .parse()
                .map_err(|_| format!("virtual address {} is not an IPv6 address", id[0]))?;
            if a.is_multicast() || a.is_unspecified() || a.is_loopback() {
                return Err(format!("virtual address {a} is not a unicast address"));
            }
            vips.push(a);
        }
    }
    // RFC 9568 §5.2.9: the link-local virtual address is sent first.
    let Some(first) = vips.iter().position(|a| a.is_unicast_link_local()) else {
        return Err("needs a link-local virtual address (RFC 9568 §5.2.9)".into());
    };
    let ll = vips.remove(first);
    vips.insert(0, ll);
    let mut tracked = BTreeMap::new();
    if let Some(ifs) = child(entry, VRRP, "track").and_then(|t| child(t, VRRP, "interfaces")) {
        for (id, e) in entries(ifs, VRRP, "interface") {
            let dec = e
                .leaf_value(VRRP, "priority-decrement")
                .and_then(|v| v.parse().ok())
                .unwrap_or(10u8);
            tracked.insert(id[0].clone(), dec);
        }
    }
    let owned = vips
        .iter()
        .filter(|v| own_addrs.contains(v))
        .copied()
        .collect();
    Ok(InstanceConfig {
        vrrp: Config {
            vrid,
            priority: entry
                .leaf_value(VRRP, "priority")
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.priority),
            preempt: preempt.and_then(|p| p.leaf_value(VRRP, "enabled")) != Some("false"),
            hold_time_s: preempt
                .and_then(|p| p.leaf_value(VRRP, "hold-time"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            accept_mode: entry.leaf_value(VRRP, "accept-mode") == Some("true"),
            interval_cs: entry
                .leaf_value(VRRP, "advertise-interval-centi-sec")
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.interval_cs),
            vips,
            tracked,
            virtual_mac: entry.leaf_value(MHVRRP, "virtual-mac") == Some("true"),
        },
        owned,
    })
}

pub(super) fn ipv6_addresses(ipv6: &Node) -> Vec<Ipv6Addr> {
    entries(ipv6, IP, "address")
        .filter_map(|(id, _)| id[0].parse().ok())
        .collect()
}

/// The VRRP6 routers of one interface entry.
pub fn interface_instances(
    name: &str,
    entry: &Node,
) -> Result<BTreeMap<Key, InstanceConfig>, String> {
    let mut out = BTreeMap::new();
    let Some(ipv6) = child(entry, IP, "ipv6") else {
        return Ok(out);
    };
    let Some(vrrp) = child(ipv6, VRRP, "vrrp") else {
        return Ok(out);
    };
    let own = ipv6_addresses(ipv6);
    for (id, e) in entries(vrrp, VRRP, "vrrp-instance") {
        let vrid: u8 = id[0]
            .parse()
            .map_err(|_| format!("{name}: VRID {} is not 1 to 255", id[0]))?;
        let c = instance(e, vrid, &own).map_err(|m| format!("{name} VRID {vrid}: {m}"))?;
        out.insert((name.to_string(), vrid), c);
    }
    Ok(out)
}

/// Every configured VRRP6 router (the whole tree: for tests).
#[cfg(test)]
pub fn configured(root: &Node) -> Result<BTreeMap<Key, InstanceConfig>, String> {
    let mut out = BTreeMap::new();
    let Some(ifs) = child(root, IF, "interfaces") else {
        return Ok(out);
    };
    for (id, entry) in entries(ifs, IF, "interface") {
        out.extend(interface_instances(&id[0], entry)?);
    }
    Ok(out)
}

/// What the VRRP6 runtime reads: each interface's IPv6 settings (its routers and addresses).
pub(super) const SUBTREES: &[Subtree] = &[Subtree::entries(
    &[(IF, "interfaces"), (IF, "interface")],
    &[(IP, "ipv6")],
)];

impl Provider for Vrrp6Runtime {
    type Config = BTreeMap<Key, InstanceConfig>;

    fn name(&self) -> &'static str {
        "vrrp6"
    }

    fn subtrees(&self) -> &'static [Subtree] {
        SUBTREES
    }

    fn decode(&self, current: &Self::Config, changes: &Changes) -> Result<Self::Config, String> {
        let mut next = current.clone();
        for (id, entry) in changes.entries(0) {
            let [name] = id.as_slice() else { continue };
            next.retain(|k, _| &k.0 != name);
            if let Some(e) = entry {
                next.extend(interface_instances(name, e)?);
            }
        }
        Ok(next)
    }

    fn prepare(&mut self, next: &Self::Config) -> Result<(), String> {
        match self.unavailable() {
            Some(why) if !next.is_empty() => Err(format!("VRRP6 cannot run in this agent: {why}")),
            _ => Ok(()),
        }
    }

    fn apply(&mut self, _: &Self::Config, next: &Self::Config, _: &Changes) -> Result<(), String> {
        self.configure(next.clone());
        Ok(())
    }
}
