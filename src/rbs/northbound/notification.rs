//! RBS services (mldhb-rbs): the runtime's events rendered as the model's notifications.

use super::*;

/// The mldhb-rbs notification that reports `event`.
pub fn notification(event: &RbsEvent) -> Element {
    let (name, leaves): (&str, [(&str, String); 2]) = match event {
        RbsEvent::ChannelUp {
            service,
            authenticated,
        } => (
            "rbs-channel-up",
            [
                ("service", service.clone()),
                ("authenticated", authenticated.to_string()),
            ],
        ),
        RbsEvent::ChannelDown { service, reason } => (
            "rbs-channel-down",
            [
                ("service", service.clone()),
                ("reason", reason.as_str().to_string()),
            ],
        ),
        RbsEvent::BatchSyncComplete { profile, entries } => (
            "batch-sync-complete",
            [
                ("profile", profile.clone()),
                ("entries", entries.to_string()),
            ],
        ),
    };
    let mut e = Element::new(NS, name);
    for (n, v) in leaves {
        e.push(Element::with_text(NS, n, v));
    }
    e
}
