//! The crate's only unsafe code: socket options whose values are C structs or byte buffers that
//! no safe wrapper covers. IPv6 multicast routing (`linux/mroute6.h`: MRT6_INIT, MIF and MFC
//! entries), the ICMPv6 type filter and the sticky hop-by-hop options header. Each function
//! passes a pointer to a value it owns, with that value's exact size, to `setsockopt(2)`;
//! likewise the `sockaddr_ll` and `packet_mreq` of the LACP packet sockets.
//! Also the registration of netio's sockets with tokio's reactor, which tokio marks unsafe
//! because it cannot see who owns the descriptor, and one read of libyang's compiled union
//! types, which its Rust binding does not expose.
#![allow(unsafe_code)]

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

const MRT6_INIT: libc::c_int = 200;
const MRT6_DONE: libc::c_int = 201;
const MRT6_ADD_MIF: libc::c_int = 202;
const MRT6_DEL_MIF: libc::c_int = 203;
const MRT6_ADD_MFC: libc::c_int = 204;
const MRT6_DEL_MFC: libc::c_int = 205;
const ICMP6_FILTER: libc::c_int = 1;

/// Most multicast interfaces the kernel supports (MAXMIFS).
pub const MAX_MIFS: u16 = 32;

/// `struct mif6ctl`.
#[repr(C)]
struct Mif6Ctl {
    mifi: u16,
    flags: u8,
    threshold: u8,
    pifi: u16,
    rate_limit: u32,
}

/// `struct mf6cctl`: origin, group, parent MIF and the set of outgoing MIFs.
#[repr(C)]
struct Mf6cCtl {
    origin: libc::sockaddr_in6,
    group: libc::sockaddr_in6,
    parent: u16,
    ifset: [u32; 8],
}

fn sockaddr(a: &Ipv6Addr) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: 0,
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: a.octets(),
        },
        sin6_scope_id: 0,
    }
}

fn set<T>(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised T and the length passed is exactly its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    v: &[u8],
) -> io::Result<()> {
    // SAFETY: the pointer and length describe the slice `v`.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            v.as_ptr() as *const libc::c_void,
            v.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes a raw ICMPv6 socket the namespace's multicast routing socket (turns mc_forwarding on).
pub fn mrt6_init(fd: BorrowedFd<'_>) -> io::Result<()> {
    set(fd, libc::IPPROTO_IPV6, MRT6_INIT, &1 as &libc::c_int)
}

/// Gives up multicast routing; the kernel drops every MIF and MFC entry.
pub fn mrt6_done(fd: BorrowedFd<'_>) -> io::Result<()> {
    set(fd, libc::IPPROTO_IPV6, MRT6_DONE, &0 as &libc::c_int)
}

pub fn add_mif(fd: BorrowedFd<'_>, mifi: u16, ifindex: u32) -> io::Result<()> {
    let pifi = u16::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex above 65535"))?;
    let c = Mif6Ctl {
        mifi,
        flags: 0,
        threshold: 1,
        pifi,
        rate_limit: 0,
    };
    set(fd, libc::IPPROTO_IPV6, MRT6_ADD_MIF, &c)
}

pub fn del_mif(fd: BorrowedFd<'_>, mifi: u16) -> io::Result<()> {
    set(fd, libc::IPPROTO_IPV6, MRT6_DEL_MIF, &mifi)
}

fn mfc(origin: &Ipv6Addr, group: &Ipv6Addr, parent: u16, oifs: &[u16]) -> Mf6cCtl {
    let mut ifset = [0u32; 8];
    for &m in oifs {
        if m < 256 {
            ifset[(m / 32) as usize] |= 1 << (m % 32);
        }
    }
    Mf6cCtl {
        origin: sockaddr(origin),
        group: sockaddr(group),
        parent,
        ifset,
    }
}

/// Adds or replaces the MFC entry (origin, group) arriving on `parent`, out of `oifs`.
pub fn add_mfc(
    fd: BorrowedFd<'_>,
    origin: &Ipv6Addr,
    group: &Ipv6Addr,
    parent: u16,
    oifs: &[u16],
) -> io::Result<()> {
    set(
        fd,
        libc::IPPROTO_IPV6,
        MRT6_ADD_MFC,
        &mfc(origin, group, parent, oifs),
    )
}

pub fn del_mfc(
    fd: BorrowedFd<'_>,
    origin: &Ipv6Addr,
    group: &Ipv6Addr,
    parent: u16,
) -> io::Result<()> {
    set(
        fd,
        libc::IPPROTO_IPV6,
        MRT6_DEL_MFC,
        &mfc(origin, group, parent, &[]),
    )
}

/// A socket that owns its descriptor: `as_raw_fd` returns the same open descriptor for as
/// long as the value lives, and only dropping the value closes it.
///
/// # Safety
///
/// Implementors guarantee the above; [`register`] hands the descriptor to tokio's reactor on
/// the strength of it.
pub unsafe trait OwnsFd: AsRawFd {}

// SAFETY (each impl): the type holds a `socket2::Socket` it never replaces, returns that
// socket's descriptor from `as_raw_fd` and closes it only when dropped.
unsafe impl OwnsFd for super::icmp6::Icmp6Socket {}
unsafe impl OwnsFd for super::vrrp6::VrrpSocket {}
unsafe impl OwnsFd for super::mld_capture::MldCapture {}
unsafe impl OwnsFd for super::nflog::NflogSocket {}
unsafe impl OwnsFd for super::lacp::LacpSocket {}

/// Registers one of netio's sockets with the tokio reactor (must run inside a runtime).
pub fn register<T: OwnsFd>(sock: T) -> io::Result<tokio::io::unix::AsyncFd<T>> {
    // SAFETY: `T: OwnsFd`: the descriptor stays open and the same until the AsyncFd, which
    // owns the socket, deregisters it and drops it.
    unsafe { tokio::io::unix::AsyncFd::register(sock) }.map_err(io::Error::from)
}

/// Binds a packet socket to one interface and ethertype (`struct sockaddr_ll`).
pub fn bind_packet(fd: BorrowedFd<'_>, ifindex: u32, ethertype: u16) -> io::Result<()> {
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: ethertype.to_be(),
        sll_ifindex: ifindex as libc::c_int,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a live sockaddr_ll and the length passed is exactly its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the interface accept frames to a multicast MAC address for a packet socket
/// (`PACKET_ADD_MEMBERSHIP` with `struct packet_mreq`).
pub fn packet_add_membership(fd: BorrowedFd<'_>, ifindex: u32, mac: [u8; 6]) -> io::Result<()> {
    let mut address = [0u8; 8];
    address[..6].copy_from_slice(&mac);
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: libc::PACKET_MR_MULTICAST as libc::c_ushort,
        mr_alen: 6,
        mr_address: address,
    };
    set(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
}

/// Makes the interface accept every multicast frame for a packet socket, or stops it
/// (`PACKET_ADD_MEMBERSHIP` / `PACKET_DROP_MEMBERSHIP` with `PACKET_MR_ALLMULTI`).
pub fn packet_all_multicast(fd: BorrowedFd<'_>, ifindex: u32, on: bool) -> io::Result<()> {
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: libc::PACKET_MR_ALLMULTI as libc::c_ushort,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    let name = if on {
        libc::PACKET_ADD_MEMBERSHIP
    } else {
        libc::PACKET_DROP_MEMBERSHIP
    };
    set(fd, libc::SOL_PACKET, name, &mreq)
}

/// Lets only the given ICMPv6 types through to the socket (`struct icmp6_filter`).
pub fn icmp6_pass_only(fd: BorrowedFd<'_>, types: &[u8]) -> io::Result<()> {
    // A set bit blocks the type.
    let mut filter = [u32::MAX; 8];
    for &t in types {
        filter[(t >> 5) as usize] &= !(1u32 << (t & 31));
    }
    set(fd, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter)
}

/// Sets the hop-by-hop options header sent with every packet (`IPV6_HOPOPTS`).
pub fn set_hop_options(fd: BorrowedFd<'_>, header: &[u8]) -> io::Result<()> {
    set_bytes(fd, libc::IPPROTO_IPV6, libc::IPV6_HOPOPTS, header)
}

/// Whether a leaf's compiled type is, or is a union with a member that is (at any depth), a
/// leafref or instance-identifier: the types whose values point at other data.
pub fn type_may_reference(t: &yang3::schema::SchemaLeafType<'_>) -> bool {
    // SAFETY: the type belongs to a compiled schema of the global context, never freed.
    unsafe { references(t.as_raw()) }
}

/// Reads `lysc_type` and, for a union, its member array (a libyang sized array whose element
/// count is stored as a u64 just before element 0).
unsafe fn references(t: *const libyang3_sys::lysc_type) -> bool {
    use libyang3_sys::LY_DATA_TYPE::{LY_TYPE_INST, LY_TYPE_LEAFREF, LY_TYPE_UNION};
    if t.is_null() {
        return true;
    }
    match (*t).basetype {
        LY_TYPE_LEAFREF | LY_TYPE_INST => true,
        LY_TYPE_UNION => {
            let members = (*(t as *const libyang3_sys::lysc_type_union)).types;
            if members.is_null() {
                return false;
            }
            let count = *(members as *const u64).sub(1) as usize;
            (0..count).any(|i| references(*members.add(i)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_have_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<Mif6Ctl>(), 12);
        assert_eq!(std::mem::size_of::<Mf6cCtl>(), 92);
        let m = mfc(
            &Ipv6Addr::UNSPECIFIED,
            &Ipv6Addr::UNSPECIFIED,
            1,
            &[0, 3, 33],
        );
        assert_eq!(m.ifset[0], 0b1001);
        assert_eq!(m.ifset[1], 0b10);
    }
}
