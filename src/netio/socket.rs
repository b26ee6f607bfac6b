//! The setup steps netio's sockets share: opening them, their hop limit, joining groups.

use super::sys;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::AsFd;
use std::time::Duration;

/// A non-blocking raw IPv6 socket for `protocol`.
pub fn raw_ipv6(protocol: Protocol) -> io::Result<Socket> {
    let sock = Socket::new(Domain::IPV6, Type::RAW, Some(protocol))?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// A non-blocking raw ICMPv6 socket that lets no ICMPv6 message in: for sending, or for the
/// kernel's multicast routing upcalls (which the type filter does not hold back).
pub fn raw_icmp6_no_input() -> io::Result<Socket> {
    let sock = raw_ipv6(Protocol::ICMPV6)?;
    sys::icmp6_pass_only(sock.as_fd(), &[])?;
    Ok(sock)
}

/// Sends with hop limit 255, unicast and multicast, and keeps multicast from looping back:
/// for link-local protocols whose receivers check that no router forwarded the packet
/// (Neighbor Discovery, RFC 4861 §7.1.2; VRRP, RFC 9568 §5.1.1.3).
pub fn hop_limit_255(sock: &Socket) -> io::Result<()> {
    sock.set_multicast_hops_v6(255)?;
    sock.set_unicast_hops_v6(255)?;
    sock.set_multicast_loop_v6(false)
}

/// Joins `group` on `ifindex`; a group already joined counts as joined.
pub fn join(sock: &Socket, group: &Ipv6Addr, ifindex: u32) -> io::Result<()> {
    match sock.join_multicast_v6(group, ifindex) {
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => Ok(()),
        r => r,
    }
}

/// A non-blocking packet socket (`AF_PACKET`) for Ethernet frames of `ethertype`.
pub fn packet(ethertype: u16) -> io::Result<Socket> {
    let proto = Protocol::from(i32::from(ethertype.to_be()));
    let sock = Socket::new(Domain::PACKET, Type::RAW, Some(proto))?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// A blocking netfilter netlink socket (`NETLINK_NETFILTER`) whose reads give up after
/// `timeout`.
pub fn netfilter(timeout: Duration) -> io::Result<Socket> {
    let sock = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW,
        Some(Protocol::from(libc::NETLINK_NETFILTER)),
    )?;
    sock.set_read_timeout(Some(timeout))?;
    Ok(sock)
}
