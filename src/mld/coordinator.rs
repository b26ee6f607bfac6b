//! What steers the MLD routers from outside the MLD runtime, in MLD's own terms: the node's
//! group and router reports go to a [`Coordinator`], its requests (bind, silence, peer entries,
//! domains) come back to the node, and [`settle`] runs the two against each other until both
//! are quiet.

use super::events::{Binding, MldNode, Out};
use super::instance::Group;
use crate::forwarding::Domain;
use crate::time::Time;
use std::any::Any;
use std::collections::VecDeque;
use std::net::Ipv6Addr;

/// A report of the node about an interface bound by a coordinator.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A group entry changed (None: gone).
    Group {
        interface: String,
        group: Ipv6Addr,
        state: Option<Group>,
    },
    /// The router started or stopped (its entries are gone with it).
    Running { interface: String, up: bool },
}

/// What a coordinator asks of the node.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Binds an interface (router mode and listener domains), or unbinds it.
    Bind {
        interface: String,
        binding: Option<Binding>,
    },
    /// Silences an interface's router, or lets it act and take over as querier at once.
    Silent { interface: String, silent: bool },
    /// Installs an entry learned elsewhere, in place of a local one when `replace_local`.
    InstallPeer {
        interface: String,
        group: Ipv6Addr,
        entry: Group,
        replace_local: bool,
    },
    /// Removes an entry learned elsewhere.
    RemovePeer {
        interface: String,
        group: Ipv6Addr,
        replace_local: bool,
    },
    /// Lets a forwarding domain forward, or parks it.
    Domain { domain: Domain, active: bool },
}

/// Follows the node's reports and steers its routers. Called on the node's clock, under the
/// lock that guards the node, so that it sees every change in the order the node made it.
pub trait Coordinator: Any + Send {
    fn report(&mut self, now: Time, report: Report) -> Vec<Request>;
}

/// Carries out one request on the node; returns what the node reports and does.
pub fn apply(now: Time, node: &mut MldNode, req: Request) -> Vec<Out> {
    match req {
        Request::Bind { interface, binding } => node.set_binding(now, &interface, binding),
        Request::Silent { interface, silent } => node.set_silent(now, &interface, silent),
        Request::InstallPeer {
            interface,
            group,
            entry,
            replace_local,
        } => node.install_peer(now, &interface, group, entry, replace_local),
        Request::RemovePeer {
            interface,
            group,
            replace_local,
        } => node.remove_peer(now, &interface, group, replace_local),
        Request::Domain { domain, active } => node.set_domain_active(domain, active),
    }
}

enum Work {
    Out(Out),
    Req(Request),
}

/// Settles `outs` (from the node) and `reqs` (from the coordinator) until both are quiet;
/// returns the node's IO (packets and forwarding), in the order it arose. Without a
/// coordinator the node's reports go nowhere.
pub fn settle<C: Coordinator + ?Sized>(
    now: Time,
    node: &mut MldNode,
    mut coordinator: Option<&mut C>,
    outs: Vec<Out>,
    reqs: Vec<Request>,
) -> Vec<Out> {
    let mut q: VecDeque<Work> = outs.into_iter().map(Work::Out).collect();
    q.extend(reqs.into_iter().map(Work::Req));
    let mut io = Vec::new();
    while let Some(w) = q.pop_front() {
        let report = match w {
            Work::Out(Out::Group {
                interface,
                group,
                state,
            }) => Report::Group {
                interface,
                group,
                state,
            },
            Work::Out(Out::Running { interface, up }) => Report::Running { interface, up },
            Work::Out(o) => {
                io.push(o);
                continue;
            }
            Work::Req(r) => {
                // The node's reports go first, so the coordinator sees what its request did.
                for o in apply(now, node, r).into_iter().rev() {
                    q.push_front(Work::Out(o));
                }
                continue;
            }
        };
        if let Some(c) = coordinator.as_deref_mut() {
            q.extend(c.report(now, report).into_iter().map(Work::Req));
        }
    }
    io
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mld::balance::LoadBalance;
    use crate::mld::events::LinkInfo;
    use crate::mld::instance::{Config, FilterMode, Origin};
    use crate::mld::northbound::InterfaceMld;

    fn g(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn install(group: &str) -> Request {
        Request::InstallPeer {
            interface: "eth1".into(),
            group: g(group),
            entry: Group {
                mode: FilterMode::Exclude,
                filter_timer: Some(Time::from_millis(100_000)),
                sources: Default::default(),
                v1_host_until: None,
                origin: Origin::Peer,
                last_reporter: None,
                since: Time::ZERO,
            },
            replace_local: true,
        }
    }

    /// Installs ff0e::1 on its first report and records every report it gets.
    #[derive(Default)]
    struct Recorder {
        seen: Vec<Report>,
    }

    impl Coordinator for Recorder {
        fn report(&mut self, _now: Time, report: Report) -> Vec<Request> {
            let first = self.seen.is_empty();
            self.seen.push(report);
            if first {
                vec![install("ff0e::1")]
            } else {
                Vec::new()
            }
        }
    }

    impl Recorder {
        /// The reports in order, as (group or None for a running report).
        fn order(&self) -> Vec<Option<Ipv6Addr>> {
            self.seen
                .iter()
                .map(|r| match r {
                    Report::Group { group, state, .. } => {
                        assert!(state.as_ref().is_some_and(|s| s.origin == Origin::Peer));
                        Some(*group)
                    }
                    Report::Running { up, .. } => {
                        assert!(*up);
                        None
                    }
                })
                .collect()
        }
    }

    fn node() -> MldNode {
        let mut n = MldNode::default();
        n.cfg.insert(
            "eth1".into(),
            InterfaceMld {
                router: Config::default(),
                require_router_alert: true,
                track_vrrp6_vrid: None,
            },
        );
        n
    }

    fn link() -> Vec<LinkInfo> {
        vec![LinkInfo {
            index: 3,
            name: "eth1".into(),
            up: true,
            link_local: Some(g("fe80::a")),
            loopback: false,
        }]
    }

    fn bind() -> Request {
        Request::Bind {
            interface: "eth1".into(),
            binding: Some(Binding {
                silent: true,
                lb: LoadBalance::MasterOnly,
                domains: [Domain::ALWAYS; 2],
            }),
        }
    }

    #[test]
    fn reports_come_in_order_and_requests_run_in_the_order_asked() {
        let mut n = node();
        let mut c = Recorder::default();
        let outs = n.links(Time::ZERO, &link());
        let io = settle(
            Time::ZERO,
            &mut n,
            Some(&mut c),
            outs,
            vec![bind(), install("ff0e::2")],
        );
        assert!(io
            .iter()
            .all(|o| !matches!(o, Out::Group { .. } | Out::Running { .. })));
        // The binding's report (the router runs) comes before the second request's; the
        // coordinator's own request, made on that first report, runs after what was asked
        // before it.
        assert_eq!(c.order(), [None, Some(g("ff0e::2")), Some(g("ff0e::1"))]);
        let groups = &n.running["eth1"].router.groups;
        assert!(groups.contains_key(&g("ff0e::1")) && groups.contains_key(&g("ff0e::2")));
    }

    #[test]
    fn without_a_coordinator_reports_go_nowhere() {
        let mut n = node();
        let outs = n.links(Time::ZERO, &link());
        let io = settle::<Recorder>(
            Time::ZERO,
            &mut n,
            None,
            outs,
            vec![bind(), install("ff0e::2")],
        );
        assert!(!io.is_empty());
        assert!(io
            .iter()
            .all(|o| !matches!(o, Out::Group { .. } | Out::Running { .. })));
        assert!(n.running["eth1"].router.groups.contains_key(&g("ff0e::2")));
    }
}
