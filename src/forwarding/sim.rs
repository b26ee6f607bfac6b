//! A simulated data plane: the MIF and MFC tables a kernel would hold, and what it would do
//! with a packet, for deterministic tests.

use super::FwdAction;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimDataPlane {
    /// MIF → interface index.
    pub mifs: BTreeMap<u16, u32>,
    /// MIFs bound parked: listed in entries, forwarding nothing.
    pub parked: BTreeSet<u16>,
    /// (source, group) → (parent MIF, outgoing MIFs).
    pub mfc: BTreeMap<(Ipv6Addr, Ipv6Addr), (u16, Vec<u16>)>,
}

impl SimDataPlane {
    pub fn apply(&mut self, actions: &[FwdAction]) {
        for a in actions {
            match a {
                FwdAction::AddMif {
                    mifi,
                    ifindex,
                    parked,
                } => {
                    self.mifs.insert(*mifi, *ifindex);
                    if *parked {
                        self.parked.insert(*mifi);
                    } else {
                        self.parked.remove(mifi);
                    }
                }
                // Like the kernel, entries keep the slot: a MIF added again in the same slot
                // is forwarded to by every entry that lists it.
                FwdAction::DelMif { mifi } => {
                    self.mifs.remove(mifi);
                    self.parked.remove(mifi);
                }
                FwdAction::SetMfc {
                    source,
                    group,
                    parent,
                    oifs,
                } => {
                    self.mfc.insert((*source, *group), (*parent, oifs.clone()));
                }
                FwdAction::DelMfc { source, group, .. } => {
                    self.mfc.remove(&(*source, *group));
                }
            }
        }
    }

    /// Where a packet arriving on interface `ifindex` goes: None when it has no entry (the
    /// kernel would upcall NOCACHE), otherwise the interfaces it is sent out of, each once and
    /// never the one it came in on.
    pub fn forward(&self, source: Ipv6Addr, group: Ipv6Addr, ifindex: u32) -> Option<Vec<u32>> {
        let (parent, oifs) = self.mfc.get(&(source, group))?;
        if self.mifs.get(parent) != Some(&ifindex) {
            return Some(Vec::new());
        }
        Some(
            oifs.iter()
                .filter(|m| !self.parked.contains(m))
                .filter_map(|m| self.mifs.get(m).copied())
                .filter(|i| *i != ifindex)
                .collect::<std::collections::BTreeSet<u32>>()
                .into_iter()
                .collect(),
        )
    }
}
