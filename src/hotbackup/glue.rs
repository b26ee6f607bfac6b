//! The controller as the MLD node's coordinator: the node's group and router reports go to
//! the controller, its router and forwarding requests go back to the node (which settles
//! them), and what is left for outside the MLD runtime (records for the sync engine, gate
//! changes and notifications) goes to a sink, in the order it arose.

use super::controller::{Action, Controller, Event, Input, ProfileConfig, Track};
use crate::bus::RoleSourceId;
use crate::mld::coordinator::{Coordinator, Report, Request};
use crate::rbs::api::SyncCommand;
use crate::time::Time;

/// What the controller wants done outside the MLD runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Sync { service: String, cmd: SyncCommand },
    Gate { source: RoleSourceId, open: bool },
    Notify(Event),
}

/// Where the controller's effects go.
pub trait Sink {
    fn effect(&mut self, e: Effect);
}

impl Sink for Vec<Effect> {
    fn effect(&mut self, e: Effect) {
        self.push(e);
    }
}

/// The controller and where its effects go.
#[derive(Debug, Default)]
pub struct HotBackup<S> {
    pub ctl: Controller,
    pub sink: S,
}

impl<S: Sink> HotBackup<S> {
    pub fn new(sink: S) -> Self {
        HotBackup {
            ctl: Controller::default(),
            sink,
        }
    }

    /// Hands the controller's actions on: the effects to the sink, the requests to the
    /// caller (for the node).
    fn route(&mut self, acts: Vec<Action>) -> Vec<Request> {
        let mut reqs = Vec::new();
        for a in acts {
            let r = match a {
                Action::Sync { service, cmd } => {
                    self.sink.effect(Effect::Sync { service, cmd });
                    continue;
                }
                Action::Gate { source, open } => {
                    self.sink.effect(Effect::Gate { source, open });
                    continue;
                }
                Action::Notify(e) => {
                    self.sink.effect(Effect::Notify(e));
                    continue;
                }
                Action::Node(r) => r,
            };
            reqs.push(r);
        }
        reqs
    }

    /// An input to the controller; returns its requests for the node.
    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Request> {
        let acts = self.ctl.handle(now, input);
        self.route(acts)
    }

    /// A new configuration; returns the controller's requests for the node.
    pub fn configure(&mut self, profiles: Vec<ProfileConfig>, tracks: Vec<Track>) -> Vec<Request> {
        let acts = self.ctl.configure(profiles, tracks);
        self.route(acts)
    }
}

impl<S: Sink + Send + 'static> Coordinator for HotBackup<S> {
    fn report(&mut self, now: Time, report: Report) -> Vec<Request> {
        let input = match report {
            Report::Group {
                interface,
                group,
                state,
            } => Input::Group {
                interface,
                group,
                state,
            },
            Report::Running { interface, up } => Input::Running { interface, up },
        };
        self.handle(now, input)
    }
}
