//! The sockets of VRRP6: a raw IPv6 socket for protocol 112 (advertisements to and from
//! ff02::12, hop limit 255, with the received hop limit, destination and interface), and a raw
//! ICMPv6 socket that only sends the unsolicited Neighbor Advertisements of a new master.

use super::sys;
use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn6,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddrV6};
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

fn send_from(
    sock: &Socket,
    ifindex: u32,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    payload: &[u8],
) -> io::Result<()> {
    let info = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr {
            s6_addr: src.octets(),
        },
        ipi6_ifindex: ifindex,
    };
    let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, ifindex));
    sendmsg(
        sock.as_raw_fd(),
        &[IoSlice::new(payload)],
        &[ControlMessage::Ipv6PacketInfo(&info)],
        MsgFlags::empty(),
        Some(&to),
    )
    .map(|_| ())
    .map_err(io::Error::from)
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
        let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(VRRP_PROTOCOL)))?;
        sock.set_nonblocking(true)?;
        let fd = sock.as_fd();
        setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
        setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from)?;
        sock.set_multicast_hops_v6(255)?;
        sock.set_unicast_hops_v6(255)?;
        sock.set_multicast_loop_v6(false)?;
        Ok(VrrpSocket { sock })
    }

    /// Listens to ff02::12 on an interface.
    pub fn join(&self, ifindex: u32) -> io::Result<()> {
        match self.sock.join_multicast_v6(&VRRP_GROUP, ifindex) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => Ok(()),
            r => r,
        }
    }

    pub fn leave(&self, ifindex: u32) {
        let _ = self.sock.leave_multicast_v6(&VRRP_GROUP, ifindex);
    }

    /// Receives one packet into `buf`; `WouldBlock` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<RxPacket> {
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrIn6>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        let src = msg.address.map(|a| a.ip()).unwrap_or(Ipv6Addr::UNSPECIFIED);
        let (mut dst, mut ifindex, mut hop_limit) = (Ipv6Addr::UNSPECIFIED, 0, None);
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv6PacketInfo(pi) => {
                        dst = Ipv6Addr::from(pi.ipi6_addr.s6_addr);
                        ifindex = pi.ipi6_ifindex;
                    }
                    ControlMessageOwned::Ipv6HopLimit(h) => hop_limit = u8::try_from(h).ok(),
                    _ => {}
                }
            }
        }
        let n = msg.bytes;
        Ok(RxPacket {
            src,
            dst,
            ifindex,
            hop_limit,
            payload: buf[..n].to_vec(),
        })
    }

    /// Sends a VRRP message from `src` out of `ifindex` to ff02::12 with hop limit 255.
    pub fn send(&self, ifindex: u32, src: Ipv6Addr, payload: &[u8]) -> io::Result<()> {
        send_from(&self.sock, ifindex, src, VRRP_GROUP, payload)
    }
}

/// A send-only raw ICMPv6 socket for Neighbor Advertisements (hop limit 255, RFC 4861 §7.1.2).
pub struct NdSocket {
    sock: Socket,
}

impl NdSocket {
    pub fn open() -> io::Result<NdSocket> {
        let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        sock.set_nonblocking(true)?;
        // Nothing is read from this socket: block every type.
        sys::icmp6_pass_only(sock.as_fd(), &[])?;
        sock.set_multicast_hops_v6(255)?;
        sock.set_unicast_hops_v6(255)?;
        sock.set_multicast_loop_v6(false)?;
        Ok(NdSocket { sock })
    }

    /// Sends an ICMPv6 message (the kernel computes its checksum) to all nodes.
    pub fn send_all_nodes(&self, ifindex: u32, src: Ipv6Addr, payload: &[u8]) -> io::Result<()> {
        send_from(&self.sock, ifindex, src, ALL_NODES, payload)
    }
}
