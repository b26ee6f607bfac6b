//! The NFLOG socket of the nftables forwarding backend: it binds one NFLOG group
//! (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_ULOG`), asks for the first bytes of each
//! logged packet and hands back, per packet, the interface it arrived on and its IPv6 source
//! and destination. In the netdev ingress hook the logged payload starts at the IPv6 header.
//! It owns only this socket and its decoding; what an upcall means is the forwarding code's.
//!
//! Decoding is total ([`parse`] never panics, whatever the bytes).
//!
//! ```text
//!  nlmsghdr (type NFNL_SUBSYS_ULOG<<8 | NFULNL_MSG_PACKET) · nfgenmsg (family, 0, res_id=group)
//!  attributes: NFULA_PACKET_HDR, NFULA_IFINDEX_INDEV (be32), …, NFULA_PAYLOAD (the packet)
//! ```

use super::nft::{self, AttrWriter, NlMsg};
use super::socket;
use crate::bytes::Reader;
use socket2::Socket;
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;

const NFULA_IFINDEX_INDEV: u16 = 4;
const NFULA_PAYLOAD: u16 = 9;

const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULA_CFG_QTHRESH: u16 = 5;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;

/// Bytes of each packet copied to us: the IPv6 header (40) and a little more.
pub const COPY_RANGE: u32 = 64;

/// One logged packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NflogPacket {
    /// The interface the packet arrived on.
    pub indev: u32,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
}

/// The IPv6 source and destination at the start of `p`, when it is an IPv6 header.
fn ipv6_addrs(p: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr)> {
    let mut r = Reader::new(p);
    let [version, ..] = r.array::<8>().ok()?;
    let (src, dst) = (r.ipv6().ok()?, r.ipv6().ok()?);
    (version >> 4 == 6).then_some((src, dst))
}

fn packet(m: &NlMsg<'_>) -> Option<NflogPacket> {
    if m.ty != (nft::NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET {
        return None;
    }
    let a = nft::nfnl_attrs(m.payload);
    let indev = nft::find_attr(a, NFULA_IFINDEX_INDEV).and_then(nft::be32)?;
    let (src, dst) = ipv6_addrs(nft::find_attr(a, NFULA_PAYLOAD)?)?;
    Some(NflogPacket { indev, src, dst })
}

/// The IPv6 packets logged in one datagram; anything else (other messages, packets without an
/// input interface or an IPv6 header) is skipped.
pub fn parse(buf: &[u8]) -> Vec<NflogPacket> {
    nft::messages(buf).filter_map(|m| packet(&m)).collect()
}

/// A non-blocking socket bound to one NFLOG group.
pub struct NflogSocket {
    sock: Socket,
    pub group: u16,
}

impl AsRawFd for NflogSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for NflogSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// The config message binding `group` in packet copy mode (`COPY_RANGE` bytes), each packet
/// sent at once (queue threshold 1).
pub fn bind_message(group: u16, seq: u32) -> Vec<u8> {
    let mut w = AttrWriter::new();
    w.u8(NFULA_CFG_CMD, NFULNL_CFG_CMD_BIND);
    let mut mode = COPY_RANGE.to_be_bytes().to_vec();
    mode.extend_from_slice(&[NFULNL_COPY_PACKET, 0]);
    w.bytes(NFULA_CFG_MODE, &mode);
    w.be32(NFULA_CFG_QTHRESH, 1);
    let mut out = Vec::new();
    nft::put_message(
        &mut out,
        (nft::NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG,
        nft::NLM_F_REQUEST | nft::NLM_F_ACK,
        seq,
        nft::NFPROTO_UNSPEC,
        group,
        w.as_bytes(),
    );
    out
}

impl NflogSocket {
    /// Binds `group` (in this thread's network namespace). Fails with `EBUSY` when another
    /// socket holds the group.
    pub fn open(group: u16) -> io::Result<NflogSocket> {
        let sock = socket::netfilter(std::time::Duration::from_secs(5))?;
        let seq = 1;
        sock.send(&bind_message(group, seq))?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = nix::sys::socket::recv(
                sock.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            )
            .map_err(io::Error::from)?;
            let acked = nft::messages(&buf[..n])
                .filter(|m| m.seq == seq)
                .find_map(|m| nft::ack_errno(&m));
            match acked {
                Some(0) => break,
                Some(e) => {
                    let err = io::Error::from_raw_os_error(e);
                    return Err(io::Error::new(
                        err.kind(),
                        format!("binding NFLOG group {group}: {err}"),
                    ));
                }
                None => continue,
            }
        }
        sock.set_nonblocking(true)?;
        Ok(NflogSocket { sock, group })
    }

    /// Reads one datagram into `buf` and returns the packets logged in it (maybe none).
    /// `WouldBlock` when nothing is queued. An overrun receive queue (`ENOBUFS`: packets were
    /// lost) reads as no packets: the table sends the upcall again after its pending timeout.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Vec<NflogPacket>> {
        match nix::sys::socket::recv(
            self.sock.as_raw_fd(),
            buf,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => Ok(parse(&buf[..n.min(buf.len())])),
            Err(nix::Error::ENOBUFS) => {
                tracing::debug!(group = self.group, "NFLOG receive queue overrun");
                Ok(Vec::new())
            }
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(indev: u32, payload: &[u8]) -> Vec<u8> {
        let mut w = AttrWriter::new();
        w.bytes(1, &[0x86, 0xdd, 0, 0]); // NFULA_PACKET_HDR
        w.be32(NFULA_IFINDEX_INDEV, indev);
        w.bytes(NFULA_PAYLOAD, payload);
        let mut out = Vec::new();
        nft::put_message(
            &mut out,
            (nft::NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET,
            0,
            0,
            nft::NFPROTO_NETDEV,
            4242,
            w.as_bytes(),
        );
        out
    }

    fn ipv6(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&[0x12, 0x34, 0x56, 0x78, 0, 8, 0, 0]);
        p
    }

    #[test]
    fn packets_are_decoded() {
        let s: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let g: Ipv6Addr = "ff0e::1:1".parse().unwrap();
        let mut d = logged(7, &ipv6(s, g));
        d.extend(logged(9, &ipv6(g, s)));
        // A DONE trailer after a multi-part batch.
        d.extend_from_slice(&20u32.to_ne_bytes());
        d.extend_from_slice(&nft::NLMSG_DONE.to_ne_bytes());
        d.extend_from_slice(&[0; 14]);
        let p = parse(&d);
        assert_eq!(
            p,
            vec![
                NflogPacket {
                    indev: 7,
                    src: s,
                    dst: g
                },
                NflogPacket {
                    indev: 9,
                    src: g,
                    dst: s
                }
            ]
        );
    }

    #[test]
    fn non_ipv6_and_short_payloads_are_skipped() {
        let s: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let mut v4 = ipv6(s, s);
        v4[0] = 0x45;
        assert!(parse(&logged(1, &v4)).is_empty());
        assert!(parse(&logged(1, &ipv6(s, s)[..39])).is_empty());
        assert_eq!(parse(&logged(1, &ipv6(s, s)[..40])).len(), 1);
    }

    #[test]
    fn decoding_is_total() {
        let s: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let d = logged(3, &ipv6(s, s));
        for n in 0..=d.len() {
            let _ = parse(&d[..n]);
        }
        for i in 0..d.len() {
            for v in [0u8, 1, 0x28, 0x7f, 0x80, 0xff] {
                let mut c = d.clone();
                c[i] = v;
                let _ = parse(&c);
            }
        }
        // Pseudo-random garbage.
        let mut x: u32 = 0x1234_5678;
        for len in 0..300usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse(&bytes);
        }
    }

    #[test]
    fn bind_message_layout() {
        let m = bind_message(4242, 9);
        let msgs: Vec<NlMsg> = nft::messages(&m).collect();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].ty, 0x0401);
        assert_eq!(msgs[0].seq, 9);
        assert_eq!(&msgs[0].payload[..4], &[0, 0, 0x10, 0x92]);
        let a = nft::nfnl_attrs(msgs[0].payload);
        assert_eq!(nft::find_attr(a, NFULA_CFG_CMD), Some(&[1u8][..]));
        assert_eq!(
            nft::find_attr(a, NFULA_CFG_MODE),
            Some(&[0, 0, 0, 64, 2, 0][..])
        );
        assert_eq!(
            nft::find_attr(a, NFULA_CFG_QTHRESH).and_then(nft::be32),
            Some(1)
        );
    }
}
