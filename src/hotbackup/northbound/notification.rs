//! Remote backup profiles (mldhb-rbs): the runtime's events rendered as the model's notifications.

use super::*;

/// The notification element of a controller event.
pub fn notification(e: &Event) -> Element {
    match e {
        Event::Switchover {
            profile,
            old_role,
            new_role,
            cause,
            group_count,
        } => {
            let mut n = Element::new(NS, "switchover");
            n.push(Element::with_text(NS, "profile", profile.clone()));
            n.push(Element::with_text(NS, "old-role", role_str(*old_role)));
            n.push(Element::with_text(NS, "new-role", role_str(*new_role)));
            n.push(Element::with_text(NS, "cause", cause.as_str()));
            n.push(Element::with_text(
                NS,
                "group-count",
                group_count.to_string(),
            ));
            n
        }
        Event::BatchSyncComplete { profile, entries } => {
            let mut n = Element::new(NS, "batch-sync-complete");
            n.push(Element::with_text(NS, "profile", profile.clone()));
            n.push(Element::with_text(NS, "entries", entries.to_string()));
            n
        }
    }
}
