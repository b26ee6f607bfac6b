//! Which kernel data plane carries out the forwarding table: the configured choice, opening
//! the backend it names (ip6mr, or the agent's nftables netdev table), and the status `<get>`
//! shows: the backend running and why, or why none runs.

use super::kernel::{Ip6mr, MfcCounters};
use super::nftables::{LinkInfo, NftBackend};
use super::FwdAction;
use crate::netio::nflog::NflogSocket;
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;

/// The NFLOG group the nftables backend sends packets of unknown (S,G)s to.
pub const UPCALL_GROUP: u16 = 4242;

/// The configured backend (`/multicast/forwarding-backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    #[default]
    Auto,
    Ip6mr,
    Nftables,
}

impl Choice {
    pub fn parse(s: &str) -> Choice {
        match s {
            "ip6mr" => Choice::Ip6mr,
            "nftables" => Choice::Nftables,
            _ => Choice::Auto,
        }
    }
}

/// What `<get>` shows of the data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `ip6mr`, `nftables`, or `none`.
    pub backend: &'static str,
    /// `up`, `down` or `disabled`.
    pub state: &'static str,
    pub reason: String,
    /// Copies dropped for the outgoing MTU, where the backend counts them.
    pub too_big: Option<u64>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            backend: "none",
            state: "disabled",
            reason: "multicast routing is not enabled".into(),
            too_big: None,
        }
    }
}

/// A running data plane.
pub enum Dataplane {
    Ip6mr(Ip6mr),
    Nftables(Box<NftBackend>, Arc<AsyncFd<NflogSocket>>),
}

/// Where a data plane's reports of packets without an entry arrive.
#[derive(Clone)]
pub enum UpcallSource {
    /// ip6mr's NOCACHE upcalls on the multicast routing socket.
    Mroute(Arc<AsyncFd<crate::netio::icmp6::Icmp6Socket>>),
    /// The nftables table's rate-limited NFLOG copies.
    Nflog(Arc<AsyncFd<NflogSocket>>),
}

impl Dataplane {
    pub fn name(&self) -> &'static str {
        match self {
            Dataplane::Ip6mr(_) => "ip6mr",
            Dataplane::Nftables(..) => "nftables",
        }
    }

    pub fn upcalls(&self) -> UpcallSource {
        match self {
            Dataplane::Ip6mr(k) => UpcallSource::Mroute(k.socket()),
            Dataplane::Nftables(_, log) => UpcallSource::Nflog(Arc::clone(log)),
        }
    }

    pub fn apply(&mut self, actions: &[FwdAction]) -> usize {
        match self {
            Dataplane::Ip6mr(k) => k.apply(actions),
            Dataplane::Nftables(n, _) => n.apply(actions),
        }
    }

    /// Tells the backend the links it may forward on (nftables needs names, MACs and MTUs).
    pub fn links(&mut self, links: &[crate::netio::netlink::Link]) {
        if let Dataplane::Nftables(n, _) = self {
            let infos: Vec<LinkInfo> = links
                .iter()
                .map(|l| LinkInfo {
                    ifindex: l.index,
                    name: l.name.clone(),
                    mac: l.mac.unwrap_or([0; 6]),
                    mtu: l.mtu,
                })
                .collect();
            n.set_links(&infos);
        }
    }

    /// Copies dropped because they exceeded the outgoing MTU (nftables only).
    pub fn too_big(&self) -> Option<u64> {
        match self {
            Dataplane::Ip6mr(_) => None,
            Dataplane::Nftables(n, _) => n.mtu_drops().ok(),
        }
    }

    /// Per-entry counters: (source, group) → counters.
    pub fn counters(&self) -> HashMap<(Ipv6Addr, Ipv6Addr), MfcCounters> {
        match self {
            Dataplane::Ip6mr(_) => super::kernel::read_counters(),
            Dataplane::Nftables(n, _) => n.counters(),
        }
    }
}

/// Opens the backend `choice` names; `parking` makes the ip6mr parking device when ip6mr
/// is tried. Returns the data plane (None when none could start) and its status.
pub fn open(
    choice: Choice,
    parking: impl Fn() -> Result<u32, String>,
) -> (Option<Dataplane>, Status) {
    let ip6mr = || -> Result<Dataplane, String> {
        let p = parking()?;
        Ip6mr::open(p)
            .map(Dataplane::Ip6mr)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOPROTOOPT) => {
                    "the kernel has no IPv6 multicast routing (CONFIG_IPV6_MROUTE)".to_string()
                }
                Some(libc::EADDRINUSE) => {
                    "another multicast router holds this namespace's ip6mr socket".to_string()
                }
                _ => format!("ip6mr socket: {e}"),
            })
    };
    let nft = || -> Result<Dataplane, String> {
        let b = NftBackend::open(UPCALL_GROUP).map_err(|e| format!("nftables: {e}"))?;
        let log = NflogSocket::open(UPCALL_GROUP).map_err(|e| format!("nflog: {e}"))?;
        let log = crate::netio::sys::register(log).map_err(|e| format!("nflog: {e}"))?;
        Ok(Dataplane::Nftables(Box::new(b), Arc::new(log)))
    };
    let up = |d: Dataplane, reason: String| {
        let status = Status {
            backend: d.name(),
            state: "up",
            reason,
            too_big: None,
        };
        (Some(d), status)
    };
    let down = |reason: String| {
        (
            None,
            Status {
                backend: "none",
                state: "down",
                reason,
                too_big: None,
            },
        )
    };
    match choice {
        Choice::Ip6mr => match ip6mr() {
            Ok(d) => up(d, "configured".into()),
            Err(e) => down(e),
        },
        Choice::Nftables => match nft() {
            Ok(d) => up(d, "configured".into()),
            Err(e) => down(e),
        },
        Choice::Auto => match ip6mr() {
            Ok(d) => up(d, "auto: the kernel has IPv6 multicast routing".into()),
            Err(why) => match nft() {
                Ok(d) => up(d, format!("auto: {why}")),
                Err(e) => down(format!("{why}; {e}")),
            },
        },
    }
}
