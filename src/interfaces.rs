//! The ietf-interfaces runtime: admin state and IP addresses applied through netlink, interfaces
//! configured before they exist (RFC 8343 pre-provisioning) applied when they appear, and their
//! operational state for `<get>`.

use crate::datastore::tree::{Change, Node, NodeKey};
use crate::netio::netlink::{Addr, Link, Netlink};
use crate::northbound::commit::{ConfigProvider, OperProvider};
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

/// Reads the desired state of every configured interface.
pub fn desired(root: &Node) -> BTreeMap<String, Desired> {
    let mut out = BTreeMap::new();
    let Some(ifs) = root.children.get(&NodeKey::new(IF, "interfaces")) else {
        return out;
    };
    for (k, entry) in ifs.children.iter() {
        if k.name != "interface" || k.id.len() != 1 {
            continue;
        }
        out.insert(k.id[0].clone(), desired_entry(entry));
    }
    out
}

/// The desired state of the interface named `name`, if it is configured.
pub fn desired_one(root: &Node, name: &str) -> Option<Desired> {
    root.get(&[
        NodeKey::new(IF, "interfaces"),
        NodeKey::with_id(IF, "interface", vec![name.to_string()]),
    ])
    .map(desired_entry)
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

/// Names of the interfaces a change list touches; None when the whole list changed.
fn touched_names(changes: &[Change]) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for c in changes {
        let p = c.path();
        if p.first()
            .is_none_or(|k| k.module != IF || k.name != "interfaces")
        {
            continue;
        }
        match p.get(1) {
            Some(k) if k.name == "interface" && k.id.len() == 1 => {
                names.insert(k.id[0].clone());
            }
            Some(_) => {}
            None => return None,
        }
    }
    Some(names)
}

#[derive(Default)]
struct State {
    applied: BTreeMap<String, Desired>,
    /// Link index each configured interface was last applied to.
    applied_to: HashMap<String, u32>,
    /// Prepared changes: each touched interface and what it should become.
    pending: Option<Vec<(String, Option<Desired>)>>,
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

impl ConfigProvider for Interfaces {
    fn name(&self) -> &str {
        "interfaces"
    }

    fn prepare(&mut self, old: &Node, new: &Node, changes: &[Change]) -> Result<(), String> {
        let names = touched_names(changes).unwrap_or_else(|| {
            desired(old)
                .into_keys()
                .chain(desired(new).into_keys())
                .collect()
        });
        let pending = names
            .into_iter()
            .map(|n| {
                let d = desired_one(new, &n);
                (n, d)
            })
            .collect();
        self.lock().pending = Some(pending);
        Ok(())
    }

    fn apply(&mut self, _new: &Node, _changes: &[Change]) -> Result<(), String> {
        let Some(pending) = self.lock().pending.take() else {
            return Ok(());
        };
        if pending.is_empty() {
            return Ok(());
        }
        let links = self.nl.links().map_err(|e| e.to_string())?;
        for (name, want) in pending {
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

    fn abort(&mut self) {
        self.lock().pending = None;
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
        let d = desired(&t);
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
