//! The agent's raw ICMPv6 sockets: one sends MLD messages (hop limit 1, Router Alert) and
//! receives nothing (reception is the packet socket of `mld_capture`, which needs no
//! multicast routing); where the kernel has ip6mr, another is the namespace's IPv6 multicast
//! routing socket (MRT6_INIT), on which the kernel queues its upcalls (NOCACHE, WRONGMIF). An
//! upcall starts with a zero byte, which no ICMPv6 type has.

use super::{datagram, socket, sys};
use crate::bytes::Reader;
use socket2::Socket;
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// ICMPv6 types let through: MLD query, v1 report, v1 done, v2 report.
pub const MLD_TYPES: [u8; 4] = [130, 131, 132, 143];

/// Hop-by-hop options header with the Router Alert option for MLD (RFC 2711, value 0), padded
/// to 8 bytes with a PadN option. The kernel fills in the next-header byte.
pub const ROUTER_ALERT_HBH: [u8; 8] = [0, 0, 5, 2, 0, 0, 1, 0];

/// An MLD message as received, with what the receive rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxPacket {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub ifindex: u32,
    pub hop_limit: Option<u8>,
    pub router_alert: bool,
    pub payload: Vec<u8>,
}

/// Kinds of multicast routing upcalls (`MRT6MSG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpcallKind {
    NoCache,
    WrongMif,
    WholePacket,
}

/// A multicast routing upcall (`struct mrt6msg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upcall {
    pub kind: UpcallKind,
    pub mif: u16,
    pub src: Ipv6Addr,
    pub group: Ipv6Addr,
}

/// Reads an upcall: mbz(1) type(1) mif(2, host order) pad(4) src(16) dst(16).
pub fn parse_upcall(b: &[u8]) -> Option<Upcall> {
    let mut r = Reader::new(b);
    let [mbz, kind] = r.array().ok()?;
    let mif = r.u16_ne().ok()?;
    let (src, group) = (r.skip(4).ok()?.ipv6().ok()?, r.ipv6().ok()?);
    let kind = match (mbz, kind) {
        (0, 1) => UpcallKind::NoCache,
        (0, 2) => UpcallKind::WrongMif,
        (0, 3) => UpcallKind::WholePacket,
        _ => return None,
    };
    Some(Upcall {
        kind,
        mif,
        src,
        group,
    })
}

/// Whether a hop-by-hop options header carries a Router Alert option.
pub fn has_router_alert(hbh: &[u8]) -> bool {
    if hbh.len() < 2 {
        return false;
    }
    let end = ((hbh[1] as usize) + 1) * 8;
    let end = end.min(hbh.len());
    let mut at = 2;
    while at < end {
        match hbh[at] {
            0 => at += 1,
            t => {
                let Some(&len) = hbh.get(at + 1) else {
                    return false;
                };
                if t == 5 && len == 2 {
                    return true;
                }
                at += 2 + len as usize;
            }
        }
    }
    false
}

/// A raw ICMPv6 socket (non-blocking): the MLD sender, or the multicast routing socket.
pub struct Icmp6Socket {
    sock: Socket,
    mroute: bool,
}

impl AsRawFd for Icmp6Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for Icmp6Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl Icmp6Socket {
    /// Opens the MLD sender: it sends with hop limit 1 and the Router Alert option and lets
    /// no ICMPv6 message in.
    pub fn open() -> io::Result<Icmp6Socket> {
        let sock = socket::raw_icmp6_no_input()?;
        sys::set_hop_options(sock.as_fd(), &ROUTER_ALERT_HBH)?;
        sock.set_multicast_hops_v6(1)?;
        sock.set_multicast_loop_v6(false)?;
        Ok(Icmp6Socket {
            sock,
            mroute: false,
        })
    }

    /// Opens a socket and makes it the multicast routing socket of this namespace: it
    /// receives the kernel's upcalls only. Fails with `ENOPROTOOPT` on a kernel without ip6mr
    /// and `EADDRINUSE` when another process routes multicast here.
    pub fn open_mroute() -> io::Result<Icmp6Socket> {
        let sock = socket::raw_icmp6_no_input()?;
        let _ = sock.set_recv_buffer_size(4 << 20);
        sys::mrt6_init(sock.as_fd())?;
        Ok(Icmp6Socket { sock, mroute: true })
    }

    /// Listens to the groups MLD messages for routers go to on an interface: all MLDv2 routers
    /// (reports) and all routers (MLDv1 done). Reports sent to the group itself arrive through
    /// the Router Alert delivery.
    pub fn join_router_groups(&self, ifindex: u32) -> io::Result<()> {
        for g in [
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16),
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2),
        ] {
            socket::join(&self.sock, &g, ifindex)?;
        }
        Ok(())
    }

    pub fn leave_router_groups(&self, ifindex: u32) {
        for g in [
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16),
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2),
        ] {
            let _ = self.sock.leave_multicast_v6(&g, ifindex);
        }
    }

    /// Receives one upcall using `buf` as scratch space; `Ok(None)` for anything else,
    /// `WouldBlock` when nothing is queued.
    pub fn recv_upcall(&self, buf: &mut [u8]) -> io::Result<Option<Upcall>> {
        let r = datagram::recv(self.sock.as_raw_fd(), buf)?;
        Ok(parse_upcall(&buf[..r.len]))
    }

    /// Sends an ICMPv6 message (the kernel computes its checksum) from `src` out of `ifindex`,
    /// with hop limit 1 and the Router Alert option.
    pub fn send(
        &self,
        ifindex: u32,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        payload: &[u8],
    ) -> io::Result<()> {
        datagram::send_from(self.sock.as_raw_fd(), ifindex, src, dst, payload)
    }

    pub fn add_mif(&self, mifi: u16, ifindex: u32) -> io::Result<()> {
        sys::add_mif(self.sock.as_fd(), mifi, ifindex)
    }

    pub fn del_mif(&self, mifi: u16) -> io::Result<()> {
        sys::del_mif(self.sock.as_fd(), mifi)
    }

    pub fn add_mfc(&self, s: &Ipv6Addr, g: &Ipv6Addr, parent: u16, oifs: &[u16]) -> io::Result<()> {
        sys::add_mfc(self.sock.as_fd(), s, g, parent, oifs)
    }

    pub fn del_mfc(&self, s: &Ipv6Addr, g: &Ipv6Addr, parent: u16) -> io::Result<()> {
        sys::del_mfc(self.sock.as_fd(), s, g, parent)
    }
}

impl Drop for Icmp6Socket {
    fn drop(&mut self) {
        if self.mroute {
            let _ = sys::mrt6_done(self.sock.as_fd());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upcall_layout() {
        let mut b = vec![0u8, 1];
        b.extend_from_slice(&3u16.to_ne_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&"ff0e::5".parse::<Ipv6Addr>().unwrap().octets());
        let u = parse_upcall(&b).unwrap();
        assert_eq!(u.kind, UpcallKind::NoCache);
        assert_eq!(u.mif, 3);
        assert_eq!(u.group, "ff0e::5".parse::<Ipv6Addr>().unwrap());
        assert!(parse_upcall(&b[..39]).is_none());
        assert!(parse_upcall(&[130; 40]).is_none());
    }

    #[test]
    fn router_alert_option() {
        assert!(has_router_alert(&ROUTER_ALERT_HBH));
        // Pad1, then Router Alert.
        assert!(has_router_alert(&[58, 0, 0, 5, 2, 0, 0, 0]));
        assert!(!has_router_alert(&[58, 0, 1, 4, 0, 0, 0, 0]));
        assert!(!has_router_alert(&[58, 0, 7, 200]));
        assert!(!has_router_alert(&[]));
    }
}
