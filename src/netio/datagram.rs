//! Sending and receiving raw IPv6 datagrams with their packet info: interface, source,
//! destination, hop limit and the Router Alert option.

use super::icmp6::has_router_alert;
use nix::sys::socket::{
    recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn6,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::RawFd;

/// What arrived with a datagram; the payload is the first `len` bytes of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub ifindex: u32,
    pub hop_limit: Option<u8>,
    /// The hop-by-hop options carried a Router Alert (only on sockets that ask for them).
    pub router_alert: bool,
}

/// Receives one datagram into `buf`; `WouldBlock` when none is queued.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int, [u8; 256]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrIn6>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let mut r = Received {
        len: msg.bytes,
        src: msg.address.map(|a| a.ip()).unwrap_or(Ipv6Addr::UNSPECIFIED),
        dst: Ipv6Addr::UNSPECIFIED,
        ifindex: 0,
        hop_limit: None,
        router_alert: false,
    };
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv6PacketInfo(pi) => {
                    r.dst = Ipv6Addr::from(pi.ipi6_addr.s6_addr);
                    r.ifindex = pi.ipi6_ifindex;
                }
                ControlMessageOwned::Ipv6HopLimit(h) => r.hop_limit = u8::try_from(h).ok(),
                ControlMessageOwned::Unknown(u)
                    if u.cmsg_header.cmsg_level == libc::IPPROTO_IPV6
                        && u.cmsg_header.cmsg_type == libc::IPV6_HOPOPTS =>
                {
                    r.router_alert = has_router_alert(&u.data_bytes);
                }
                _ => {}
            }
        }
    }
    Ok(r)
}

/// Sends `payload` from `src` out of `ifindex` to `dst`.
pub fn send_from(
    fd: RawFd,
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
        fd,
        &[IoSlice::new(payload)],
        &[ControlMessage::Ipv6PacketInfo(&info)],
        MsgFlags::empty(),
        Some(&to),
    )
    .map(|_| ())
    .map_err(io::Error::from)
}
