//! Multicast forwarding without PIM: the MFIB of (S,G) and (*,G) entries with their outgoing
//! interfaces, the choice of incoming interface by RPF, and the data-plane actions (MIFs, MFC
//! entries) that a backend carries out: the kernel's ip6mr, or a simulated table for tests.
//!
//! Every outgoing interface belongs to an activation [`Domain`]. A domain is active or standby
//! as a whole, so that flipping thousands of prepared entries is one table write; the hot
//! backup gives each bound interface (or load-balance bucket) its own domain.

pub mod backend;
pub mod kernel;
pub mod nftables;
pub mod northbound;
pub mod rpf;
pub mod sim;

use crate::time::Time;
use rpf::Route;
use std::collections::{BTreeMap, HashSet};
use std::net::Ipv6Addr;
use std::time::Duration;

/// Whether packets to `group` may leave their link: multicast of a scope wider than link-local,
/// and not a solicited-node group of any scope.
pub fn forwardable(group: &Ipv6Addr) -> bool {
    let o = group.octets();
    if o[0] != 0xff {
        return false;
    }
    let scope = o[1] & 0x0f;
    if scope <= 2 {
        return false;
    }
    // ff02::1:ffXX:XXXX is link scope already; any scope's solicited-node form is excluded too.
    !(o[2..11] == [0, 0, 0, 0, 0, 0, 0, 0, 0] && o[11] == 1 && o[12] == 0xff)
}

/// A group of outgoing interfaces activated together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(pub u32);

impl Domain {
    /// Outgoing interfaces that are always active (no hot backup on them).
    pub const ALWAYS: Domain = Domain(0);
}

/// (group, source) with the unspecified source for (*,G); ordered by group first.
pub type Key = (Ipv6Addr, Ipv6Addr);

/// One forwarding entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Interface index of the RPF interface; None when no route leads to the source.
    pub iif: Option<u32>,
    /// Outgoing interfaces by index, each in its activation domain.
    pub oifs: BTreeMap<u32, Domain>,
    pub since: Time,
}

/// The multicast forwarding information base.
#[derive(Debug, Clone, Default)]
pub struct Mfib {
    entries: BTreeMap<Key, Entry>,
    standby: HashSet<Domain>,
}

impl Mfib {
    /// Sets an entry's incoming and outgoing interfaces; true when anything changed.
    pub fn set(
        &mut self,
        key: Key,
        iif: Option<u32>,
        oifs: BTreeMap<u32, Domain>,
        now: Time,
    ) -> bool {
        match self.entries.get_mut(&key) {
            Some(e) if e.iif == iif && e.oifs == oifs => false,
            Some(e) => {
                e.iif = iif;
                e.oifs = oifs;
                true
            }
            None => {
                self.entries.insert(
                    key,
                    Entry {
                        iif,
                        oifs,
                        since: now,
                    },
                );
                true
            }
        }
    }

    pub fn remove(&mut self, key: &Key) -> Option<Entry> {
        self.entries.remove(key)
    }

    pub fn get(&self, key: &Key) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.entries.iter()
    }

    /// Entries of one group, (*,G) first.
    pub fn group(&self, group: Ipv6Addr) -> impl Iterator<Item = (&Key, &Entry)> {
        self.entries
            .range((group, Ipv6Addr::UNSPECIFIED)..=(group, Ipv6Addr::from(u128::MAX)))
    }

    /// Activates or parks every outgoing interface of a domain: O(1) whatever the entry count.
    pub fn set_domain_active(&mut self, d: Domain, active: bool) {
        if active {
            self.standby.remove(&d);
        } else if d != Domain::ALWAYS {
            self.standby.insert(d);
        }
    }

    pub fn domain_active(&self, d: Domain) -> bool {
        !self.standby.contains(&d)
    }

    /// The outgoing interfaces that forward now.
    pub fn active_oifs(&self, e: &Entry) -> Vec<u32> {
        e.oifs
            .iter()
            .filter(|(_, d)| self.domain_active(**d))
            .map(|(i, _)| *i)
            .collect()
    }

    /// Active when at least one outgoing interface forwards now; standby otherwise.
    pub fn entry_active(&self, e: &Entry) -> bool {
        !self.active_oifs(e).is_empty()
    }
}

/// What a data-plane backend is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FwdAction {
    /// Binds slot `mifi` to interface `ifindex` (replacing an earlier binding of the slot).
    /// A parked slot stays listed in entries but forwards nothing until bound unparked.
    AddMif {
        mifi: u16,
        ifindex: u32,
        parked: bool,
    },
    DelMif {
        mifi: u16,
    },
    /// Adds or replaces the kernel entry (source, group) arriving on MIF `parent`.
    SetMfc {
        source: Ipv6Addr,
        group: Ipv6Addr,
        parent: u16,
        oifs: Vec<u16>,
    },
    DelMfc {
        source: Ipv6Addr,
        group: Ipv6Addr,
        parent: u16,
    },
}

/// The interfaces (by index, with their domain) that want traffic from a source to a group;
/// asked with the unspecified source, the interfaces with any listener for the group.
pub trait Listeners {
    fn wants(&self, group: &Ipv6Addr, source: &Ipv6Addr) -> BTreeMap<u32, Domain>;
}

impl<F: Fn(&Ipv6Addr, &Ipv6Addr) -> BTreeMap<u32, Domain>> Listeners for F {
    fn wants(&self, group: &Ipv6Addr, source: &Ipv6Addr) -> BTreeMap<u32, Domain> {
        self(group, source)
    }
}

/// Multicast routing state: the MFIB, the MIF of each interface and what the kernel holds.
#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    pub mfib: Mfib,
    enabled: bool,
    mifs: BTreeMap<u32, u16>,
    /// Kernel entries installed: (group, source) → parent MIF.
    installed: BTreeMap<Key, u16>,
    /// Per installed entry: the kernel's packet count when last seen changing, and when.
    activity: BTreeMap<Key, (u64, Time)>,
    /// Whether standby domains use their own slots (bound parked or unparked) so that
    /// activation re-binds slots instead of rewriting entries.
    slotted: bool,
    /// The MIF slot of each (domain, interface) outside [`Domain::ALWAYS`].
    slots: BTreeMap<(Domain, u32), u16>,
}

/// How long an (S,G) entry stays without traffic before it is removed (PIM's keepalive
/// period, RFC 7761 §4.11), so that sources that stopped do not fill the kernel table.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(210);

impl Forwarding {
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn mif_of(&self, ifindex: u32) -> Option<u16> {
        self.mifs.get(&ifindex).copied()
    }

    pub fn ifindex_of(&self, mif: u16) -> Option<u32> {
        self.mifs.iter().find(|(_, m)| **m == mif).map(|(i, _)| *i)
    }

    fn free_mif(&self) -> Option<u16> {
        let used: HashSet<u16> = self
            .mifs
            .values()
            .chain(self.slots.values())
            .copied()
            .collect();
        (0..crate::netio::sys::MAX_MIFS).find(|m| !used.contains(m))
    }

    /// From now on every (domain, interface) pair outside [`Domain::ALWAYS`] gets its own MIF
    /// slot, listed in the entries whether the domain is active or not and bound parked or
    /// unparked: flipping a domain re-binds its slots and leaves every entry alone. Call
    /// before domains are used. Backends carry a parked binding out their own way (ip6mr:
    /// the slot bound to a parking device; nftables: the slot out of the `active` set).
    pub fn use_slots(&mut self, on: bool) {
        self.slotted = on;
    }

    /// Turns routing on (MIFs for `links`) or off (every kernel entry and MIF removed).
    pub fn set_enabled(&mut self, on: bool, links: &[u32]) -> Vec<FwdAction> {
        self.enabled = on;
        if on {
            return self.sync_links(links);
        }
        let mut out = Vec::new();
        self.activity.clear();
        for ((group, source), parent) in std::mem::take(&mut self.installed) {
            out.push(FwdAction::DelMfc {
                source,
                group,
                parent,
            });
        }
        for (_, mifi) in std::mem::take(&mut self.mifs) {
            out.push(FwdAction::DelMif { mifi });
        }
        for (_, mifi) in std::mem::take(&mut self.slots) {
            out.push(FwdAction::DelMif { mifi });
        }
        let keys: Vec<Key> = self
            .mfib
            .iter()
            .filter(|(k, _)| !k.1.is_unspecified())
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.mfib.remove(&k);
        }
        out
    }

    /// Gives every interface in `links` a MIF and removes the MIFs of interfaces gone.
    pub fn sync_links(&mut self, links: &[u32]) -> Vec<FwdAction> {
        let mut out = Vec::new();
        if !self.enabled {
            return out;
        }
        let gone: Vec<u32> = self
            .mifs
            .keys()
            .filter(|i| !links.contains(i))
            .copied()
            .collect();
        for i in gone {
            if let Some(mifi) = self.mifs.remove(&i) {
                out.push(FwdAction::DelMif { mifi });
            }
        }
        let stale: Vec<(Domain, u32)> = self
            .slots
            .keys()
            .filter(|(_, i)| !links.contains(i))
            .copied()
            .collect();
        for k in stale {
            if let Some(mifi) = self.slots.remove(&k) {
                out.push(FwdAction::DelMif { mifi });
            }
        }
        for &i in links {
            if self.mifs.contains_key(&i) {
                continue;
            }
            let Some(mifi) = self.free_mif() else {
                tracing::warn!(ifindex = i, "no free multicast interface slot");
                continue;
            };
            self.mifs.insert(i, mifi);
            out.push(FwdAction::AddMif {
                mifi,
                ifindex: i,
                parked: false,
            });
        }
        out
    }

    /// A packet from `source` to `group` arrived on `mif` with no kernel entry: decide the
    /// entry (RPF interface in, listening interfaces out) and install it.
    pub fn on_nocache(
        &mut self,
        now: Time,
        source: Ipv6Addr,
        group: Ipv6Addr,
        mif: u16,
        routes: &[Route],
        listeners: &impl Listeners,
    ) -> Vec<FwdAction> {
        // Interface- and link-scope groups stay on their link, and so do packets from a
        // link-local or unspecified source: no entry is made for them.
        if !self.enabled
            || !forwardable(&group)
            || source.is_unicast_link_local()
            || source.is_unspecified()
        {
            return Vec::new();
        }
        let iif = rpf::rpf_interface(routes, &source);
        let oifs = self.oifs_for(&group, &source, iif, listeners);
        self.mfib.set((group, source), iif, oifs, now);
        self.activity.insert((group, source), (0, now));
        self.install((group, source), mif)
    }

    /// Removes the (S,G) entries whose kernel packet count (`packets`) has not moved for
    /// `idle`; a later packet from the source makes a new upcall and a fresh entry.
    pub fn age(
        &mut self,
        now: Time,
        packets: impl Fn(&Key) -> Option<u64>,
        idle: Duration,
    ) -> Vec<FwdAction> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (key, (count, since)) in self.activity.iter_mut() {
            let seen = packets(key).unwrap_or(*count);
            if seen != *count {
                *count = seen;
                *since = now;
            } else if now - *since >= idle {
                gone.push(*key);
            }
        }
        for key in gone {
            self.activity.remove(&key);
            self.mfib.remove(&key);
            if let Some(parent) = self.installed.remove(&key) {
                out.push(FwdAction::DelMfc {
                    source: key.1,
                    group: key.0,
                    parent,
                });
            }
        }
        out
    }

    /// Listener changes for a group: recompute (*,G) and every (S,G) of it.
    pub fn refresh_group(
        &mut self,
        now: Time,
        group: Ipv6Addr,
        listeners: &impl Listeners,
    ) -> Vec<FwdAction> {
        let any = listeners.wants(&group, &Ipv6Addr::UNSPECIFIED);
        let star = (group, Ipv6Addr::UNSPECIFIED);
        if any.is_empty() {
            self.mfib.remove(&star);
        } else {
            self.mfib.set(star, None, any, now);
        }
        let mut out = Vec::new();
        let sgs: Vec<(Key, Option<u32>)> = self
            .mfib
            .group(group)
            .filter(|(k, _)| !k.1.is_unspecified())
            .map(|(k, e)| (*k, e.iif))
            .collect();
        for (key, iif) in sgs {
            let oifs = self.oifs_for(&key.0, &key.1, iif, listeners);
            if self.mfib.set(key, iif, oifs, now) {
                let fallback = self.installed.get(&key).copied().unwrap_or(0);
                out.extend(self.install(key, fallback));
            }
        }
        out
    }

    /// Activates or parks a domain. With slots ([`Forwarding::use_slots`]) it re-binds the
    /// domain's slots, one action per slot whatever the entry count. Without slots the
    /// entries that use the domain are rewritten, one kernel call each: fine for configuration
    /// changes, too slow for a switchover (about 4.5 µs per entry on ip6mr).
    pub fn set_domain_active(&mut self, d: Domain, active: bool) -> Vec<FwdAction> {
        self.mfib.set_domain_active(d, active);
        if self.slotted {
            let mut out = Vec::new();
            let slots: Vec<((Domain, u32), u16)> = self
                .slots
                .range((d, 0)..=(d, u32::MAX))
                .map(|(k, m)| (*k, *m))
                .collect();
            for ((_, i), mifi) in slots {
                out.push(FwdAction::AddMif {
                    mifi,
                    ifindex: i,
                    parked: !active,
                });
            }
            return out;
        }
        let keys: Vec<Key> = self
            .mfib
            .iter()
            .filter(|(k, e)| !k.1.is_unspecified() && e.oifs.values().any(|x| *x == d))
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        for k in keys {
            let fallback = self.installed.get(&k).copied().unwrap_or(0);
            out.extend(self.install(k, fallback));
        }
        out
    }

    fn oifs_for(
        &self,
        group: &Ipv6Addr,
        source: &Ipv6Addr,
        iif: Option<u32>,
        listeners: &impl Listeners,
    ) -> BTreeMap<u32, Domain> {
        let Some(iif) = iif else {
            return BTreeMap::new();
        };
        let mut oifs = listeners.wants(group, source);
        oifs.remove(&iif);
        oifs.retain(|i, _| self.mifs.contains_key(i));
        oifs
    }

    /// The kernel entry for `key`: parent is the RPF interface's MIF (or `arrival` when the
    /// source has no route through a MIF, with no outgoing interface).
    fn install(&mut self, key: Key, arrival: u16) -> Vec<FwdAction> {
        let mut out = Vec::new();
        let Some(e) = self.mfib.get(&key) else {
            return out;
        };
        let rpf_mif = e.iif.and_then(|i| self.mifs.get(&i).copied());
        let oifs: Vec<(u32, Domain)> = e.oifs.iter().map(|(i, d)| (*i, *d)).collect();
        let (parent, oifs) = match rpf_mif {
            Some(p) => {
                let mut mifs = Vec::new();
                for (i, d) in oifs {
                    if d == Domain::ALWAYS || !self.slotted {
                        if self.mfib.domain_active(d) {
                            mifs.extend(self.mifs.get(&i).copied());
                        }
                        continue;
                    }
                    let slot = match self.slots.get(&(d, i)) {
                        Some(m) => *m,
                        None => {
                            let Some(m) = self.free_mif() else {
                                tracing::warn!(ifindex = i, "no free multicast interface slot");
                                continue;
                            };
                            self.slots.insert((d, i), m);
                            out.push(FwdAction::AddMif {
                                mifi: m,
                                ifindex: i,
                                parked: !self.mfib.domain_active(d),
                            });
                            m
                        }
                    };
                    mifs.push(slot);
                }
                (p, mifs)
            }
            None => (arrival, Vec::new()),
        };
        if let Some(old) = self.installed.insert(key, parent) {
            if old != parent {
                out.push(FwdAction::DelMfc {
                    source: key.1,
                    group: key.0,
                    parent: old,
                });
            }
        }
        out.push(FwdAction::SetMfc {
            source: key.1,
            group: key.0,
            parent,
            oifs,
        });
        out
    }
}

#[cfg(test)]
mod tests;
