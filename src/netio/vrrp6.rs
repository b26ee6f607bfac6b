//! The sockets of VRRP6: a raw IPv6 socket for protocol 112 (advertisements to and from
//! ff02::12, hop limit 255, with the received hop limit, destination and interface), and a raw
//! ICMPv6 socket that only sends the unsolicited Neighbor Advertisements of a new master.

use super::{datagram, socket};
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Protocol, Socket};
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

const VRRP_PROTOCOL: i32 = 112;
const VRRP_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A received VRRP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxPacket {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub ifindex: u32,
    pub hop_limit: Option<u8>,
    pub payload: Vec<u8>,
}

/// The raw VRRP socket (non-blocking).
pub struct VrrpSocket {
    sock: Socket,
}

impl AsRawFd for VrrpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for VrrpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl VrrpSocket {
    pub fn open() -> io::Result<VrrpSocket> {
        let sock = socket::raw_ipv6(Protocol::from(VRRP_PROTOCOL))?;
        let fd = sock.as_fd();
        setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
        setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from)?;
        socket::hop_limit_255(&sock)?;
        Ok(VrrpSocket { sock })
    }

    /// Listens to ff02::12 on an interface.
    pub fn join(&self, ifindex: u32) -> io::Result<()> {
        socket::join(&self.sock, &VRRP_GROUP, ifindex)
    }

    pub fn leave(&self, ifindex: u32) {
        let _ = self.sock.leave_multicast_v6(&VRRP_GROUP, ifindex);
    }

    /// Receives one packet into `buf`; `WouldBlock` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<RxPacket> {
        let r = datagram::recv(self.sock.as_raw_fd(), buf)?;
        Ok(RxPacket {
            src: r.src,
            dst: r.dst,
            ifindex: r.ifindex,
            hop_limit: r.hop_limit,
            payload: buf[..r.len].to_vec(),
        })
    }

    /// Sends a VRRP message from `src` out of `ifindex` to ff02::12 with hop limit 255.
    pub fn send(&self, ifindex: u32, src: Ipv6Addr, payload: &[u8]) -> io::Result<()> {
        datagram::send_from(self.sock.as_raw_fd(), ifindex, src, VRRP_GROUP, payload)
    }
}

/// A send-only raw ICMPv6 socket for Neighbor Advertisements (hop limit 255, RFC 4861 §7.1.2).
pub struct NdSocket {
    sock: Socket,
}

impl NdSocket {
    pub fn open() -> io::Result<NdSocket> {
        // Nothing is read from this socket.
        let sock = socket::raw_icmp6_no_input()?;
        socket::hop_limit_255(&sock)?;
        Ok(NdSocket { sock })
    }

    /// Sends an ICMPv6 message (the kernel computes its checksum) to all nodes.
    pub fn send_all_nodes(&self, ifindex: u32, src: Ipv6Addr, payload: &[u8]) -> io::Result<()> {
        datagram::send_from(self.sock.as_raw_fd(), ifindex, src, ALL_NODES, payload)
    }
}
