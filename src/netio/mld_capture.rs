//! MLD reception without the multicast routing socket: one packet socket on every interface
//! with a classic BPF filter that lets through only IPv6 frames carrying an MLD query, report
//! or done (directly or behind a hop-by-hop options header), whatever group they are addressed
//! to, and a total decoder from such a frame to the [`RxPacket`] the receive rules check.
//!
//! The socket is bound to the IPv6 ethertype, so the kernel hands it received frames only
//! (never the agent's own transmissions) after the device's netdev ingress hook and before
//! IPv6 input: an ip6tables rule inside the device does not hide reports from it.

use super::icmp6::{has_router_alert, RxPacket, MLD_TYPES};
use super::{socket, sys};
use crate::bytes::{Reader, Short};
use nix::sys::socket::{recvfrom, LinkAddr};
use socket2::Socket;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

const ETH_HLEN: usize = 14;
const IP6_HLEN: usize = 40;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const NEXT_HBH: u8 = 0;
const NEXT_ICMPV6: u8 = 58;
/// `sll_pkttype` of a frame this host sent.
const PACKET_OUTGOING: u8 = 4;

/// Why a captured frame is not an MLD message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame too short")]
    Short,
    #[error("not IPv6")]
    NotIpv6,
    #[error("no ICMPv6 after the IPv6 header (or its hop-by-hop options)")]
    NotIcmpv6,
    #[error("IPv6 payload length beyond the frame")]
    Truncated,
}

/// Decodes an Ethernet frame carrying IPv6 → (hop-by-hop options) → ICMPv6 into what the MLD
/// receive rules need. The ICMPv6 type is left for the rules to judge; the payload is cut to
/// the IPv6 payload length, so Ethernet padding never reaches the checksum.
pub fn decode_frame(frame: &[u8], ifindex: u32) -> Result<RxPacket, FrameError> {
    if frame.len() < ETH_HLEN + IP6_HLEN {
        return Err(FrameError::Short);
    }
    let mut r = Reader::new(frame);
    if r.skip(12)?.u16()? != ETHERTYPE_IPV6 {
        return Err(FrameError::NotIpv6);
    }
    let [version, ..] = r.array::<4>()?;
    if version >> 4 != 6 {
        return Err(FrameError::NotIpv6);
    }
    let payload_len = usize::from(r.u16()?);
    let [mut next, hop_limit] = r.array()?;
    let (src, dst) = (r.ipv6()?, r.ipv6()?);
    let truncated = |_: Short| FrameError::Truncated;
    let mut payload = Reader::new(r.take(payload_len).map_err(truncated)?);
    let mut router_alert = false;
    if next == NEXT_HBH {
        let [hbh_next, units] = payload.clone().array().map_err(truncated)?;
        let hbh = payload
            .take((usize::from(units) + 1) * 8)
            .map_err(truncated)?;
        router_alert = has_router_alert(hbh);
        next = hbh_next;
    }
    if next != NEXT_ICMPV6 {
        return Err(FrameError::NotIcmpv6);
    }
    Ok(RxPacket {
        src,
        dst,
        ifindex,
        hop_limit: Some(hop_limit),
        router_alert,
        payload: payload.rest().to_vec(),
    })
}

impl From<Short> for FrameError {
    fn from(_: Short) -> FrameError {
        FrameError::Short
    }
}

/// The classic BPF program: accept IPv6 frames whose ICMPv6 type (directly after the IPv6
/// header, or after one hop-by-hop options header) is an MLD type; drop everything else.
fn filter() -> Vec<libc::sock_filter> {
    const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const LD_B_IND: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_IND) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
    const ADD: u16 = (libc::BPF_ALU | libc::BPF_ADD | libc::BPF_K) as u16;
    const LSH: u16 = (libc::BPF_ALU | libc::BPF_LSH | libc::BPF_K) as u16;
    const TAX: u16 = (libc::BPF_MISC | libc::BPF_TAX) as u16;
    const LDX_IMM: u16 = (libc::BPF_LDX | libc::BPF_W | libc::BPF_IMM) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let icmp = (ETH_HLEN + IP6_HLEN) as u32;
    let t = |i: usize| u32::from(MLD_TYPES[i]);
    // Jump offsets count from the next instruction: accept is 18, drop 19.
    vec![
        op(LD_H_ABS, 0, 0, 12),                    // 0: ethertype
        op(JEQ, 0, 17, u32::from(ETHERTYPE_IPV6)), // 1: else drop
        op(LD_B_ABS, 0, 0, (ETH_HLEN + 6) as u32), // 2: next header
        op(JEQ, 8, 0, u32::from(NEXT_ICMPV6)),     // 3: ICMPv6 directly → 12
        op(JEQ, 0, 14, u32::from(NEXT_HBH)),       // 4: else drop
        op(LD_B_ABS, 0, 0, icmp),                  // 5: hop-by-hop's next header
        op(JEQ, 0, 12, u32::from(NEXT_ICMPV6)),    // 6: else drop
        op(LD_B_ABS, 0, 0, icmp + 1),              // 7: its length in 8-byte units - 1
        op(ADD, 0, 0, 1),                          // 8
        op(LSH, 0, 0, 3),                          // 9
        op(TAX, 0, 0, 0),                          // 10: X = its length in bytes
        op(JA, 0, 0, 1),                           // 11: → 13
        op(LDX_IMM, 0, 0, 0),                      // 12: X = 0
        op(LD_B_IND, 0, 0, icmp),                  // 13: ICMPv6 type
        op(JEQ, 3, 0, t(0)),                       // 14
        op(JEQ, 2, 0, t(1)),                       // 15
        op(JEQ, 1, 0, t(2)),                       // 16
        op(JEQ, 0, 1, t(3)),                       // 17
        op(RET, 0, 0, 0xffff),                     // 18: accept
        op(RET, 0, 0, 0),                          // 19: drop
    ]
}

/// A non-blocking packet socket receiving MLD messages on every interface.
pub struct MldCapture {
    sock: Socket,
}

impl AsRawFd for MldCapture {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for MldCapture {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl MldCapture {
    pub fn open() -> io::Result<MldCapture> {
        let sock = socket::packet(ETHERTYPE_IPV6)?;
        let program: Vec<socket2::SockFilter> = filter()
            .iter()
            .map(|i| socket2::SockFilter::new(i.code, i.jt, i.jf, i.k))
            .collect();
        sock.attach_filter(&program)?;
        let _ = sock.set_recv_buffer_size(4 << 20);
        Ok(MldCapture { sock })
    }

    /// Makes `ifindex` accept every multicast frame (MLDv1 reports go to the group's own MAC
    /// address, which a NIC filters unless told otherwise).
    pub fn watch(&self, ifindex: u32) -> io::Result<()> {
        sys::packet_all_multicast(self.sock.as_fd(), ifindex, true)
    }

    pub fn unwatch(&self, ifindex: u32) {
        let _ = sys::packet_all_multicast(self.sock.as_fd(), ifindex, false);
    }

    /// Receives one frame into `buf` and decodes it: `Ok(None)` for a frame that is not an MLD
    /// message (or one this host sent), `WouldBlock` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<RxPacket>> {
        let (len, from) =
            recvfrom::<LinkAddr>(self.sock.as_raw_fd(), buf).map_err(io::Error::from)?;
        let Some(from) = from else {
            return Ok(None);
        };
        if from.pkttype() == PACKET_OUTGOING {
            return Ok(None);
        }
        let ifindex = from.ifindex() as u32;
        Ok(decode_frame(&buf[..len.min(buf.len())], ifindex).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mld::packet::{encode_with_checksum, Message, Record, RecordType};
    use std::net::Ipv6Addr;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// An Ethernet frame: IPv6 from `src` to `dst`, `hbh` (may be empty) then `icmp`.
    pub(crate) fn frame(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, hbh: &[u8], icmp: &[u8]) -> Vec<u8> {
        let mut f = vec![0x33, 0x33, 0, 0, 0, 0x16, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        let plen = (hbh.len() + icmp.len()) as u16;
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&plen.to_be_bytes());
        f.push(if hbh.is_empty() { 58 } else { 0 });
        f.push(hop);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&dst.octets());
        if !hbh.is_empty() {
            let mut h = hbh.to_vec();
            h[0] = 58;
            f.extend_from_slice(&h);
        }
        f.extend_from_slice(icmp);
        f
    }

    fn report() -> Vec<u8> {
        let m = Message::V2Report {
            records: vec![Record {
                kind: RecordType::ChangeToExclude,
                group: a("ff0e::1"),
                sources: vec![],
                aux: vec![],
            }],
        };
        encode_with_checksum(&m, &a("fe80::2"), &a("ff02::16"))
    }

    #[test]
    fn a_report_behind_router_alert_decodes_with_its_packet_info() {
        let icmp = report();
        let mut f = frame(
            a("fe80::2"),
            a("ff02::16"),
            1,
            &super::super::icmp6::ROUTER_ALERT_HBH,
            &icmp,
        );
        // Ethernet padding after the datagram is not part of the payload.
        f.extend_from_slice(&[0; 6]);
        let rx = decode_frame(&f, 7).unwrap();
        assert_eq!(rx.src, a("fe80::2"));
        assert_eq!(rx.dst, a("ff02::16"));
        assert_eq!(
            (rx.ifindex, rx.hop_limit, rx.router_alert),
            (7, Some(1), true)
        );
        assert_eq!(rx.payload, icmp);
        assert!(crate::mld::network::accept(&rx, true).is_ok());
    }

    #[test]
    fn without_hop_by_hop_no_router_alert_and_the_rules_count_it() {
        let icmp = report();
        let rx = decode_frame(&frame(a("fe80::2"), a("ff02::16"), 1, &[], &icmp), 3).unwrap();
        assert!(!rx.router_alert);
        assert_eq!(
            crate::mld::network::accept(&rx, true),
            Err(crate::mld::network::RxError::NoRouterAlert)
        );
    }

    #[test]
    fn short_truncated_and_foreign_frames_are_refused() {
        let icmp = report();
        let f = frame(a("fe80::2"), a("ff02::16"), 1, &[], &icmp);
        assert_eq!(decode_frame(&f[..40], 1), Err(FrameError::Short));
        assert_eq!(
            decode_frame(&f[..f.len() - 1], 1),
            Err(FrameError::Truncated)
        );
        let mut ipv4 = f.clone();
        ipv4[12] = 8;
        ipv4[13] = 0;
        assert_eq!(decode_frame(&ipv4, 1), Err(FrameError::NotIpv6));
        let mut udp = f.clone();
        udp[ETH_HLEN + 6] = 17;
        assert_eq!(decode_frame(&udp, 1), Err(FrameError::NotIcmpv6));
        // A hop-by-hop header claiming more than the frame holds.
        let mut h = frame(
            a("fe80::2"),
            a("ff02::16"),
            1,
            &[0, 0, 5, 2, 0, 0, 1, 0],
            &[],
        );
        h[ETH_HLEN + IP6_HLEN + 1] = 9;
        assert_eq!(decode_frame(&h, 1), Err(FrameError::Truncated));
    }

    #[test]
    fn no_input_makes_the_decoder_panic() {
        let f = frame(
            a("fe80::2"),
            a("ff02::16"),
            1,
            &[0, 0, 5, 2, 0, 0, 1, 0],
            &report(),
        );
        for cut in 0..f.len() {
            let _ = decode_frame(&f[..cut], 1);
            for b in [0u8, 1, 0xff] {
                let mut g = f.clone();
                g[cut] = b;
                let _ = decode_frame(&g, 1);
            }
        }
    }

    /// Runs the BPF program the way the kernel does, on bytes: true when it accepts.
    fn run_filter(p: &[libc::sock_filter], pkt: &[u8]) -> bool {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        loop {
            let i = p[pc];
            let code = u32::from(i.code);
            pc += 1;
            match code & 0x07 {
                libc::BPF_LD => {
                    let size = if code & 0x18 == libc::BPF_H { 2 } else { 1 };
                    let at = if code & 0xe0 == libc::BPF_IND {
                        (x + i.k) as usize
                    } else {
                        i.k as usize
                    };
                    let Some(b) = pkt.get(at..at + size) else {
                        return false;
                    };
                    a = b.iter().fold(0, |v, b| (v << 8) | u32::from(*b));
                }
                libc::BPF_LDX => x = i.k,
                libc::BPF_ALU if code & 0xf0 == libc::BPF_ADD => a += i.k,
                libc::BPF_ALU => a <<= i.k,
                libc::BPF_MISC => x = a,
                libc::BPF_JMP if code & 0xf0 == libc::BPF_JA => pc += i.k as usize,
                libc::BPF_JMP => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                _ => return i.k != 0,
            }
        }
    }

    #[test]
    fn the_filter_passes_mld_only() {
        let p = filter();
        let icmp = report();
        let ra = super::super::icmp6::ROUTER_ALERT_HBH;
        assert!(run_filter(
            &p,
            &frame(a("fe80::2"), a("ff02::16"), 1, &ra, &icmp)
        ));
        assert!(run_filter(
            &p,
            &frame(a("fe80::2"), a("ff02::16"), 1, &[], &icmp)
        ));
        // A longer hop-by-hop header (16 bytes) is followed to the type.
        let long = [0, 1, 5, 2, 0, 0, 1, 8, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(run_filter(
            &p,
            &frame(a("fe80::2"), a("ff0e::1"), 1, &long, &icmp)
        ));
        for t in [128u8, 135, 136] {
            let mut other = icmp.clone();
            other[0] = t;
            assert!(!run_filter(
                &p,
                &frame(a("fe80::2"), a("ff02::1"), 1, &ra, &other)
            ));
            assert!(!run_filter(
                &p,
                &frame(a("fe80::2"), a("ff02::1"), 1, &[], &other)
            ));
        }
        let mut udp = frame(a("2001:db8::1"), a("ff0e::1"), 9, &[], &[0; 12]);
        udp[ETH_HLEN + 6] = 17;
        assert!(!run_filter(&p, &udp));
    }
}
