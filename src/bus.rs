//! Channels between runtimes: role events from the role sources (VRRP6, E-Trunk) to the
//! hot-backup controller, the controller's preemption gate back to them, and notifications
//! from any runtime to NETCONF subscribers.

use crate::xml::Element;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// One role source instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoleSourceId {
    /// A VRRP6 virtual router: interface name and VRID.
    Vrrp6 { interface: String, vrid: u8 },
    /// An E-Trunk and the Eth-Trunk it decides for.
    ETrunk { etrunk: u16, eth_trunk: u16 },
}

impl std::fmt::Display for RoleSourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoleSourceId::Vrrp6 { interface, vrid } => write!(f, "vrrp6 {vrid} on {interface}"),
            RoleSourceId::ETrunk { etrunk, eth_trunk } => {
                write!(f, "e-trunk {etrunk} eth-trunk {eth_trunk}")
            }
        }
    }
}

/// This device's role as a role source sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Not running (unconfigured, interface down, shutting down).
    #[default]
    Initialize,
    Backup,
    Master,
}

/// What a role source publishes: the role and whether it currently hears the peer device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleState {
    pub role: Role,
    /// True while the role source receives the peer's advertisements or hellos.
    pub peer_present: bool,
}

/// Per role source: its published state, and the gate the hot-backup controller holds open
/// while preempting is allowed (batch sync complete, or the channel down).
struct Slot {
    state: watch::Sender<RoleState>,
    preempt_gate: watch::Sender<bool>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            state: watch::channel(RoleState::default()).0,
            // Open by default: without a profile bound, preemption follows the role source alone.
            preempt_gate: watch::channel(true).0,
        }
    }
}

/// The shared bus one agent's runtimes talk over. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    slots: Arc<Mutex<HashMap<RoleSourceId, Slot>>>,
    notifications: mpsc::UnboundedSender<Element>,
}

impl Bus {
    /// A bus and the receiving end of its notifications, which the agent forwards to
    /// NETCONF subscribers.
    pub fn new() -> (Bus, mpsc::UnboundedReceiver<Element>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Bus {
                slots: Arc::default(),
                notifications: tx,
            },
            rx,
        )
    }

    fn with_slot<T>(&self, id: &RoleSourceId, f: impl FnOnce(&Slot) -> T) -> T {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        f(slots.entry(id.clone()).or_insert_with(Slot::new))
    }

    /// Called by a role source whenever its role or peer presence changes.
    pub fn publish_role(&self, id: &RoleSourceId, state: RoleState) {
        self.with_slot(id, |s| {
            s.state.send_if_modified(|old| {
                let changed = *old != state;
                *old = state;
                changed
            })
        });
    }

    /// Follows a role source's state; the receiver sees the current value at once.
    pub fn watch_role(&self, id: &RoleSourceId) -> watch::Receiver<RoleState> {
        self.with_slot(id, |s| s.state.subscribe())
    }

    /// The current state of a role source (Initialize when it never published).
    pub fn role(&self, id: &RoleSourceId) -> RoleState {
        self.with_slot(id, |s| *s.state.borrow())
    }

    /// Called by the hot-backup controller: may this role source take the master role back?
    pub fn set_preempt_gate(&self, id: &RoleSourceId, open: bool) {
        self.with_slot(id, |s| {
            s.preempt_gate.send_if_modified(|old| {
                let changed = *old != open;
                *old = open;
                changed
            })
        });
    }

    /// Followed by a role source before it preempts.
    pub fn watch_preempt_gate(&self, id: &RoleSourceId) -> watch::Receiver<bool> {
        self.with_slot(id, |s| s.preempt_gate.subscribe())
    }

    /// Sends a notification (the event element) to NETCONF subscribers.
    pub fn notify(&self, event: Element) {
        let _ = self.notifications.send(event);
    }

    /// Publishes a role source driver's `roles`, and Initialize for each source in
    /// `published` that is no longer among them; `published` becomes the sources of `roles`.
    pub fn publish_roles<K: Ord + Clone>(
        &self,
        published: &mut BTreeSet<K>,
        roles: Vec<(K, RoleState)>,
        id: impl Fn(&K) -> RoleSourceId,
    ) {
        let current: BTreeSet<K> = roles.iter().map(|(k, _)| k.clone()).collect();
        for (k, r) in roles {
            self.publish_role(&id(&k), r);
        }
        for gone in published.difference(&current) {
            self.publish_role(&id(gone), RoleState::default());
        }
        *published = current;
    }
}

/// The preemption gates a role source driver follows, each with a task that wakes the driver
/// when its gate moves.
pub struct GateWatchers<K> {
    gates: BTreeMap<K, (watch::Receiver<bool>, JoinHandle<()>)>,
}

impl<K> Default for GateWatchers<K> {
    fn default() -> Self {
        GateWatchers {
            gates: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone> GateWatchers<K> {
    /// Follows the gates of exactly `keys` (named on `bus` by `id`), calling `wake` when one
    /// moves; a newly followed gate counts as moved.
    pub fn follow(
        &mut self,
        bus: &Bus,
        keys: Vec<K>,
        id: impl Fn(&K) -> RoleSourceId,
        wake: impl Fn() + Clone + Send + 'static,
    ) {
        self.gates.retain(|k, (_, task)| {
            let keep = keys.contains(k);
            if !keep {
                task.abort();
            }
            keep
        });
        for k in keys {
            if let std::collections::btree_map::Entry::Vacant(e) = self.gates.entry(k) {
                let mut rx = bus.watch_preempt_gate(&id(e.key()));
                rx.mark_changed();
                let mut watcher = rx.clone();
                let wake = wake.clone();
                let task = tokio::spawn(async move {
                    while watcher.changed().await.is_ok() {
                        wake();
                    }
                });
                e.insert((rx, task));
            }
        }
    }

    /// The gates that moved since the last call, each with whether it is open now.
    pub fn moved(&mut self) -> Vec<(K, bool)> {
        let mut out = Vec::new();
        for (k, (rx, _)) in self.gates.iter_mut() {
            if rx.has_changed().unwrap_or(false) {
                out.push((k.clone(), *rx.borrow_and_update()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_watchers_see_changes_and_gate_defaults_open() {
        let (bus, _rx) = Bus::new();
        let id = RoleSourceId::Vrrp6 {
            interface: "eth1".into(),
            vrid: 1,
        };
        let mut w = bus.watch_role(&id);
        assert_eq!(w.borrow().role, Role::Initialize);
        bus.publish_role(
            &id,
            RoleState {
                role: Role::Master,
                peer_present: true,
            },
        );
        assert!(w.has_changed().unwrap());
        assert_eq!(w.borrow_and_update().role, Role::Master);
        assert!(*bus.watch_preempt_gate(&id).borrow());
        bus.set_preempt_gate(&id, false);
        assert!(!*bus.watch_preempt_gate(&id).borrow());
    }

    fn trunk(etrunk: u16) -> RoleSourceId {
        RoleSourceId::ETrunk {
            etrunk,
            eth_trunk: 1,
        }
    }

    #[test]
    fn sources_that_go_away_publish_initialize() {
        let (bus, _rx) = Bus::new();
        let master = RoleState {
            role: Role::Master,
            peer_present: true,
        };
        let mut published = BTreeSet::new();
        bus.publish_roles(&mut published, vec![(1, master), (2, master)], |k| {
            trunk(*k)
        });
        assert_eq!(bus.role(&trunk(2)), master);
        bus.publish_roles(&mut published, vec![(1, master)], |k| trunk(*k));
        assert_eq!(bus.role(&trunk(1)), master);
        assert_eq!(bus.role(&trunk(2)), RoleState::default());
        assert_eq!(published, BTreeSet::from([1]));
    }

    #[tokio::test]
    async fn gate_watchers_wake_on_moves_and_drop_unfollowed_gates() {
        let (bus, _rx) = Bus::new();
        let wake = Arc::new(tokio::sync::Notify::new());
        let mut gates = GateWatchers::default();
        let w = Arc::clone(&wake);
        gates.follow(&bus, vec![1, 2], |k| trunk(*k), move || w.notify_one());
        assert_eq!(gates.moved(), vec![(1, true), (2, true)]);
        assert!(gates.moved().is_empty());
        bus.set_preempt_gate(&trunk(2), false);
        tokio::time::timeout(std::time::Duration::from_secs(5), wake.notified())
            .await
            .expect("a moved gate wakes the driver");
        assert_eq!(gates.moved(), vec![(2, false)]);
        let w = Arc::clone(&wake);
        gates.follow(&bus, vec![1], |k| trunk(*k), move || w.notify_one());
        bus.set_preempt_gate(&trunk(2), true);
        assert!(gates.moved().is_empty());
    }

    #[test]
    fn notifications_reach_the_receiver() {
        let (bus, mut rx) = Bus::new();
        bus.notify(Element::new("urn:x", "e"));
        assert_eq!(rx.try_recv().unwrap().name, "e");
    }
}
