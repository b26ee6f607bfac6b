//! The ip6mr backend: forwarding actions carried out through the namespace's multicast routing
//! socket, and the kernel's per-entry counters read from `/proc/net/ip6_mr_cache`.

use super::FwdAction;
use crate::netio::icmp6::Icmp6Socket;
use std::collections::HashMap;
use std::io;
use std::net::Ipv6Addr;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;

/// The multicast routing socket and the device parked slots are bound to.
pub struct Ip6mr {
    sock: Arc<AsyncFd<Icmp6Socket>>,
    parking: u32,
}

impl Ip6mr {
    /// Becomes this namespace's multicast router; `parking` is a device that forwards nothing
    /// (one end of a veth pair whose peer stays down). Must run inside a tokio runtime.
    pub fn open(parking: u32) -> io::Result<Ip6mr> {
        let sock = crate::netio::sys::register(Icmp6Socket::open_mroute()?)?;
        Ok(Ip6mr {
            sock: Arc::new(sock),
            parking,
        })
    }

    /// The socket the kernel's upcalls arrive on.
    pub fn socket(&self) -> Arc<AsyncFd<Icmp6Socket>> {
        Arc::clone(&self.sock)
    }

    /// Carries out actions; failures are logged and counted, the table stays as decided. A
    /// slot bound again is deleted first (MRT6_DEL_MIF + MRT6_ADD_MIF): the kernel keeps an
    /// entry's per-slot thresholds across that and looks only at the slot's current device
    /// when forwarding, so re-binding a slot to the parking device parks every entry using it.
    pub fn apply(&self, actions: &[FwdAction]) -> usize {
        let sock = self.sock.get_ref();
        let mut failed = 0;
        for a in actions {
            let r = match a {
                FwdAction::AddMif {
                    mifi,
                    ifindex,
                    parked,
                } => {
                    let _ = sock.del_mif(*mifi);
                    sock.add_mif(*mifi, if *parked { self.parking } else { *ifindex })
                }
                FwdAction::DelMif { mifi } => sock.del_mif(*mifi),
                FwdAction::SetMfc {
                    source,
                    group,
                    parent,
                    oifs,
                } => {
                    // The kernel leaves out the arrival slot for (*,G) only: an (S,G) listing
                    // its parent would send copies back upstream.
                    let oifs: Vec<u16> = oifs.iter().copied().filter(|m| m != parent).collect();
                    sock.add_mfc(source, group, *parent, &oifs)
                }
                FwdAction::DelMfc {
                    source,
                    group,
                    parent,
                } => sock.del_mfc(source, group, *parent),
            };
            if let Err(e) = r {
                failed += 1;
                tracing::warn!(action = ?a, error = %e, "multicast routing update failed");
            }
        }
        failed
    }
}

/// Packets, bytes and wrong-interface packets of a kernel entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MfcCounters {
    pub packets: u64,
    pub bytes: u64,
    pub wrong_if: u64,
}

/// The kernel prints addresses in full (`%pI6`, with colons); older kernels without them.
fn hex_addr(s: &str) -> Option<Ipv6Addr> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok().map(Ipv6Addr::from)
}

/// Parses `/proc/net/ip6_mr_cache`: (source, group) → counters.
pub fn parse_mr_cache(text: &str) -> HashMap<(Ipv6Addr, Ipv6Addr), MfcCounters> {
    let mut out = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let (Some(g), Some(s)) = (hex_addr(f[0]), hex_addr(f[1])) else {
            continue;
        };
        let n = |i: usize| f[i].parse().unwrap_or(0);
        out.insert(
            (s, g),
            MfcCounters {
                packets: n(3),
                bytes: n(4),
                wrong_if: n(5),
            },
        );
    }
    out
}

pub fn read_counters() -> HashMap<(Ipv6Addr, Ipv6Addr), MfcCounters> {
    // The calling thread's namespace (`/proc/net` follows the process's main thread).
    std::fs::read_to_string("/proc/thread-self/net/ip6_mr_cache")
        .map(|t| parse_mr_cache(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mr_cache_lines() {
        let t = "Group                            Origin                           Iif      Pkts  Bytes     Wrong  Oifs\n\
                 ff0e00000000000000000000000000aa 20010db8000000000000000000000001 0         3      300        1  1:1 \n\
                 ff0e:0000:0000:0000:0000:0000:0000:00bb 2001:0db8:0000:0000:0000:0000:0000:0001 0 4 400 0 1:1\n";
        let c = parse_mr_cache(t);
        let k = ("2001:db8::1".parse().unwrap(), "ff0e::aa".parse().unwrap());
        assert_eq!(
            c[&k],
            MfcCounters {
                packets: 3,
                bytes: 300,
                wrong_if: 1
            }
        );
        let k = ("2001:db8::1".parse().unwrap(), "ff0e::bb".parse().unwrap());
        assert_eq!(c[&k].packets, 4);
    }
}
