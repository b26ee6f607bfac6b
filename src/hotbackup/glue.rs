//! Runs the controller against an MLD node in one step: the node's group and router reports
//! go to the controller, the controller's router and forwarding requests go back to the node,
//! until both are quiet. What is left is IO for the driver: packets and kernel calls, and
//! records, gate changes and notifications for the sync engine and the bus.

use super::controller::{Action, Controller, Input};
use crate::bus::RoleSourceId;
use crate::mld::events::{MldNode, Out};
use crate::mld::instance::Time;
use crate::rbs::api::SyncCommand;
use crate::xml::Element;
use std::collections::VecDeque;

/// What the controller wants done outside the MLD runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Sync { service: String, cmd: SyncCommand },
    Gate { source: RoleSourceId, open: bool },
    Notify(Element),
}

enum Work {
    Out(Out),
    Act(Action),
}

/// Settles `outs` (from the node) and `acts` (from the controller); returns the node's IO and
/// the controller's effects, each in the order they arose.
pub fn drive(
    now: Time,
    node: &mut MldNode,
    ctl: &mut Controller,
    outs: Vec<Out>,
    acts: Vec<Action>,
) -> (Vec<Out>, Vec<Effect>) {
    let mut q: VecDeque<Work> = outs.into_iter().map(Work::Out).collect();
    q.extend(acts.into_iter().map(Work::Act));
    let mut io = Vec::new();
    let mut fx = Vec::new();
    while let Some(w) = q.pop_front() {
        match w {
            Work::Out(Out::Group {
                interface,
                group,
                state,
            }) => {
                let input = Input::Group {
                    interface,
                    group,
                    state,
                };
                q.extend(ctl.handle(now, input).into_iter().map(Work::Act));
            }
            Work::Out(Out::Running { interface, up }) => {
                let input = Input::Running { interface, up };
                q.extend(ctl.handle(now, input).into_iter().map(Work::Act));
            }
            Work::Out(o) => io.push(o),
            Work::Act(a) => {
                let outs = match a {
                    Action::Sync { service, cmd } => {
                        fx.push(Effect::Sync { service, cmd });
                        continue;
                    }
                    Action::Gate { source, open } => {
                        fx.push(Effect::Gate { source, open });
                        continue;
                    }
                    Action::Notify(e) => {
                        fx.push(Effect::Notify(e));
                        continue;
                    }
                    Action::Bind { interface, binding } => {
                        node.set_binding(now, &interface, binding)
                    }
                    Action::Silent { interface, silent } => {
                        node.set_silent(now, &interface, silent)
                    }
                    Action::InstallPeer {
                        interface,
                        group,
                        entry,
                        replace_local,
                    } => node.install_peer(now, &interface, group, entry, replace_local),
                    Action::RemovePeer {
                        interface,
                        group,
                        replace_local,
                    } => node.remove_peer(now, &interface, group, replace_local),
                    Action::Domain { domain, active } => node.set_domain_active(domain, active),
                };
                // The node's reports go first, so the controller sees what its request did.
                for o in outs.into_iter().rev() {
                    q.push_front(Work::Out(o));
                }
            }
        }
    }
    (io, fx)
}
