//! The ietf-interfaces runtime: admin state and IP addresses applied through netlink, interfaces
//! configured before they exist (RFC 8343 pre-provisioning) applied when they appear, and their
//! operational state for `<get>`.

use crate::datastore::tree::{Node, NodeKey};
use crate::netio::netlink::{Addr, Link, Netlink};
use crate::northbound::registry::OperProvider;
use crate::northbound::registry::{Changes, Provider, Subtree};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const IF: &str = "ietf-interfaces";
const IP: &str = "ietf-ip";

/// What the configuration asks of one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub enabled: bool,
    pub addrs: BTreeSet<Addr>,
}

/// Every configured interface's desired state. Persistent: a commit copies it in O(1) and
/// changes only the interfaces it touches.
pub type InterfacesConfig = imbl::OrdMap<String, Desired>;

/// What this runtime reads: per interface entry, `enabled` and the IPv4 and IPv6 settings.
const SUBTREES: &[Subtree] = &[
    Subtree::entries(&[(IF, "interfaces"), (IF, "interface")], &[(IF, "enabled")]),
    Subtree::entries(&[(IF, "interfaces"), (IF, "interface")], &[(IP, "ipv4")]),
    Subtree::entries(&[(IF, "interfaces"), (IF, "interface")], &[(IP, "ipv6")]),
];

/// The interfaces a commit touches, each with its new entry (None: deleted).
fn touched<'a>(changes: &Changes<'a>) -> BTreeMap<String, Option<&'a Node>> {
    (0..SUBTREES.len())
        .flat_map(|i| changes.entries(i))
        .filter_map(|(id, entry)| Some((id.into_iter().next()?, entry)))
        .collect()
}

fn desired_entry(entry: &Node) -> Desired {
    {
        let leaf = |n: &Node, m: &str, name: &str| {
            n.children
                .get(&NodeKey::new(m, name))
                .and_then(|l| l.value.clone())
        };
        let mut d = Desired {
            enabled: leaf(entry, IF, "enabled").as_deref() != Some("false"),
            addrs: BTreeSet::new(),
        };
        for family in ["ipv4", "ipv6"] {
            let Some(fam) = entry.children.get(&NodeKey::new(IP, family)) else {
                continue;
            };
            if leaf(fam, IP, "enabled").as_deref() == Some("false") {
                continue;
            }
            for (ak, a) in fam.children.iter() {
                if ak.name != "address" || ak.id.len() != 1 {
                    continue;
                }
                let ip: Option<IpAddr> = ak.id[0].parse().ok();
                let prefix: Option<u8> = leaf(a, IP, "prefix-length").and_then(|p| p.parse().ok());
                if let (Some(ip), Some(prefix)) = (ip, prefix) {
                    d.addrs.insert(Addr { ip, prefix });
                }
            }
        }
        d
    }
}

#[derive(Default)]
struct State {
    applied: BTreeMap<String, Desired>,
    /// Link index each configured interface was last applied to.
    applied_to: HashMap<String, u32>,
}

/// The runtime; clones share state (one is the config provider, one the state provider).
#[derive(Clone)]
pub struct Interfaces {
    nl: Netlink,
    state: Arc<Mutex<State>>,
}

impl Interfaces {
    pub fn start() -> Result<Interfaces, String> {
        let nl = Netlink::start().map_err(|e| e.to_string())?;
        let me = Interfaces {
            nl,
            state: Arc::new(Mutex::new(State::default())),
        };
        let watcher = me.clone();
        std::thread::Builder::new()
            .name("if-watch".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(1));
                watcher.apply_new_links();
            })
            .map_err(|e| e.to_string())?;
        Ok(me)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies configuration to links that appeared (or were re-created) since the last pass.
    fn apply_new_links(&self) {
        let Ok(links) = self.nl.links() else {
            return;
        };
        let mut st = self.lock();
        let todo: Vec<(String, Desired, u32)> = links
            .iter()
            .filter_map(|l| {
                let d = st.applied.get(&l.name)?;
                (st.applied_to.get(&l.name) != Some(&l.index))
                    .then(|| (l.name.clone(), d.clone(), l.index))
            })
            .collect();
        for (name, d, index) in todo {
            match self.apply_one(index, &links, &name, None, &d) {
                Ok(()) => {
                    tracing::info!(interface = %name, "pre-provisioned configuration applied");
                    st.applied_to.insert(name, index);
                }
                Err(e) => {
                    tracing::warn!(interface = %name, error = %e, "applying configuration failed")
                }
            }
        }
    }

    fn apply_one(
        &self,
        index: u32,
        links: &[Link],
        name: &str,
        old: Option<&Desired>,
        new: &Desired,
    ) -> Result<(), String> {
        let link = links.iter().find(|l| l.index == index);
        if link.is_none_or(|l| l.up != new.enabled) {
            self.nl
                .set_up(index, new.enabled)
                .map_err(|e| format!("{name}: {e}"))?;
        }
        let present: BTreeSet<Addr> = self
            .nl
            .addrs(index)
            .map_err(|e| format!("{name}: {e}"))?
            .into_iter()
            .collect();
        for a in new.addrs.difference(&present) {
            self.nl
                .add_addr(index, *a)
                .map_err(|e| format!("{name}: adding {}/{}: {e}", a.ip, a.prefix))?;
        }
        if let Some(old) = old {
            for a in old.addrs.difference(&new.addrs) {
                if present.contains(a) {
                    self.nl
                        .del_addr(index, *a)
                        .map_err(|e| format!("{name}: removing {}/{}: {e}", a.ip, a.prefix))?;
                }
            }
        }
        Ok(())
    }
}

impl Provider for Interfaces {
    type Config = InterfacesConfig;

    fn name(&self) -> &'static str {
        "interfaces"
    }

    fn subtrees(&self) -> &'static [Subtree] {
        SUBTREES
    }

    fn decode(
        &self,
        current: &InterfacesConfig,
        changes: &Changes,
    ) -> Result<InterfacesConfig, String> {
        let mut next = current.clone();
        for (name, entry) in touched(changes) {
            match entry {
                Some(e) => next.insert(name, desired_entry(e)),
                None => next.remove(&name),
            };
        }
        Ok(next)
    }

    fn apply(
        &mut self,
        _current: &InterfacesConfig,
        next: &InterfacesConfig,
        changes: &Changes,
    ) -> Result<(), String> {
        let names: Vec<String> = touched(changes).into_keys().collect();
        if names.is_empty() {
            return Ok(());
        }
        let links = self.nl.links().map_err(|e| e.to_string())?;
        for name in names {
            let want = next.get(&name).cloned();
            let link = links.iter().find(|l| l.name == name);
            let before = self.lock().applied.get(&name).cloned();
            match (want, link) {
                (Some(d), Some(link)) => {
                    self.apply_one(link.index, &links, &name, before.as_ref(), &d)?;
                    let mut st = self.lock();
                    st.applied_to.insert(name.clone(), link.index);
                    st.applied.insert(name, d);
                }
                // Not there yet: applied when it appears.
                (Some(d), None) => {
                    let mut st = self.lock();
                    st.applied_to.remove(&name);
                    st.applied.insert(name, d);
                }
                (None, link) => {
                    // Configuration removed: take back the addresses it added.
                    if let (Some(link), Some(old)) = (link, &before) {
                        for a in &old.addrs {
                            let _ = self.nl.del_addr(link.index, *a);
                        }
                    }
                    let mut st = self.lock();
                    st.applied.remove(&name);
                    st.applied_to.remove(&name);
                }
            }
        }
        Ok(())
    }
}

impl OperProvider for Interfaces {
    fn merge_state(&self, tree: &mut Node) {
        let Ok(links) = self.nl.links() else {
            return;
        };
        let configured: Vec<String> = self.lock().applied.keys().cloned().collect();
        let ifs = tree.child_mut(NodeKey::new(IF, "interfaces"));
        for name in configured {
            let entry = ifs.child_mut(NodeKey::with_id(IF, "interface", vec![name.clone()]));
            let (status, index) = match links.iter().find(|l| l.name == name) {
                Some(l) if l.up => ("up", Some(l.index)),
                Some(l) => ("down", Some(l.index)),
                None => ("not-present", None),
            };
            entry.children.insert(
                NodeKey::new(IF, "oper-status"),
                Arc::new(Node::leaf(status)),
            );
            if let Some(i) = index {
                entry.children.insert(
                    NodeKey::new(IF, "if-index"),
                    Arc::new(Node::leaf(i.to_string())),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::northbound::edit::{apply, Operation};
    use crate::xml::parse;

    #[test]
    fn desired_state_from_config() {
        let cfg = parse(br#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
          <interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type">
            <interface><name>eth1</name><type>t:ethernetCsmacd</type><enabled>false</enabled>
              <ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"><address><ip>2001:db8:1::1</ip><prefix-length>64</prefix-length></address></ipv6>
            </interface>
            <interface><name>eth2</name><type>t:ethernetCsmacd</type>
              <ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"><enabled>false</enabled><address><ip>2001:db8:2::1</ip><prefix-length>64</prefix-length></address></ipv6>
            </interface>
          </interfaces></config>"#).unwrap();
        let mut t = Node::default();
        assert!(apply(&mut t, &cfg, Operation::Merge, false).is_empty());
        let empty = Node::default();
        let changes = Changes::everything(SUBTREES, &empty, &t);
        let d: BTreeMap<String, Desired> = touched(&changes)
            .into_iter()
            .filter_map(|(n, e)| Some((n, desired_entry(e?))))
            .collect();
        assert!(!d["eth1"].enabled);
        assert_eq!(
            d["eth1"].addrs.iter().next().unwrap(),
            &Addr {
                ip: "2001:db8:1::1".parse().unwrap(),
                prefix: 64
            }
        );
        assert!(d["eth2"].enabled);
        assert!(d["eth2"].addrs.is_empty());
    }
}
