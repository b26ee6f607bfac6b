//! E-Trunk (mldhb-etrunk): the runtime's events rendered as the model's notifications.

use super::*;

/// The notification for an [`Out`], if it is one.
pub fn event(out: &Out) -> Option<Element> {
    match out {
        Out::ETrunkChange {
            etrunk,
            old,
            new,
            cause,
        } => {
            let mut el = Element::new(NS, "e-trunk-state-change");
            el.push(Element::with_text(NS, "id", etrunk.to_string()));
            el.push(Element::with_text(NS, "old-state", old.as_str()));
            el.push(Element::with_text(NS, "new-state", new.as_str()));
            el.push(Element::with_text(NS, "cause", cause.as_str()));
            Some(el)
        }
        Out::MemberChange {
            trunk,
            member,
            selected,
            actor_state,
            partner_state,
        } => {
            let mut el = Element::new(NS, "lacp-member-state-change");
            el.push(Element::with_text(NS, "eth-trunk", trunk.clone()));
            el.push(Element::with_text(NS, "member", member.clone()));
            el.push(Element::with_text(NS, "selected", selected.to_string()));
            el.push(Element::with_text(NS, "actor-state", bits(*actor_state)));
            el.push(Element::with_text(
                NS,
                "partner-state",
                bits(*partner_state),
            ));
            Some(el)
        }
        _ => None,
    }
}
