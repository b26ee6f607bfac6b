//! Channels between runtimes: role events from the role sources (VRRP6, E-Trunk) to the
//! hot-backup controller, the controller's preemption gate back to them, and notifications
//! from any runtime to NETCONF subscribers.

use crate::netconf::xml::Element;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

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

    #[test]
    fn notifications_reach_the_receiver() {
        let (bus, mut rx) = Bus::new();
        bus.notify(Element::new("urn:x", "e"));
        assert_eq!(rx.try_recv().unwrap().name, "e");
    }
}
