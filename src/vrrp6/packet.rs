//! The VRRPv3 advertisement for IPv6 (RFC 9568 §5) and the unsolicited Neighbor Advertisement
//! a new master sends: encoding, and a total decoder that checks version, type, length and the
//! checksum over the IPv6 pseudo-header.
//!
//! ```text
//!  byte 0        byte 1          byte 2        byte 3
//! +-------+-------+---------------+---------------+---------------+
//! | ver=3 | type=1|     VRID      |   priority    | address count |
//! +-------+-------+---------------+---------------+---------------+
//! | rsvd  | max advert interval (12 bits, cs) |      checksum     |
//! +-------+-------------------------------------+-----------------+
//! | IPv6 address 1 (16 bytes; the link-local virtual address)     |
//! | ...                                                           |
//! +---------------------------------------------------------------+
//! ```

use crate::bytes::{ipv6_checksum, Reader, Short};
use std::net::Ipv6Addr;

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The all-VRRP-routers group every advertisement goes to.
pub const GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The hop limit every advertisement is sent with and must arrive with.
pub const HOP_LIMIT: u8 = 255;
/// Fixed part of the header.
pub const HEADER_LEN: usize = 8;
/// Largest interval the 12-bit field holds, in centiseconds.
pub const MAX_INTERVAL_CS: u16 = 4095;

/// One advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    pub vrid: u8,
    pub priority: u8,
    /// Max Advertise Interval in centiseconds (1 to 4095).
    pub interval_cs: u16,
    /// Virtual addresses, the link-local one first.
    pub addrs: Vec<Ipv6Addr>,
}

/// Why a received packet is not a usable advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes: shorter than the VRRP header")]
    TooShort(usize),
    #[error("version {0}, not 3")]
    Version(u8),
    #[error("type {0}, not advertisement (1)")]
    Type(u8),
    #[error("{len} bytes do not hold {count} IPv6 addresses")]
    Length { len: usize, count: u8 },
    #[error("bad checksum")]
    Checksum,
    #[error("no virtual address")]
    NoAddress,
    #[error("the first virtual address is not link-local")]
    FirstNotLinkLocal,
    #[error("advertisement interval 0")]
    ZeroInterval,
}

impl From<Short> for DecodeError {
    fn from(s: Short) -> DecodeError {
        DecodeError::TooShort(s.have)
    }
}

impl Advertisement {
    /// The message as sent from `src` to `dst` (normally [`GROUP`]), checksum filled in.
    /// Addresses beyond 255 are not sent; the interval is clamped to 12 bits.
    pub fn encode(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
        let addrs = &self.addrs[..self.addrs.len().min(255)];
        let interval = self.interval_cs.min(MAX_INTERVAL_CS);
        let mut b = Vec::with_capacity(HEADER_LEN + 16 * addrs.len());
        b.push(0x31);
        b.push(self.vrid);
        b.push(self.priority);
        b.push(addrs.len() as u8);
        b.extend_from_slice(&interval.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        for a in addrs {
            b.extend_from_slice(&a.octets());
        }
        let c = ipv6_checksum(src, dst, PROTOCOL, &b);
        b[6..8].copy_from_slice(&c.to_be_bytes());
        b
    }

    /// Reads an advertisement received from `src` for `dst`. Never panics.
    pub fn decode(b: &[u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<Advertisement, DecodeError> {
        let header = Header::read(b)?;
        if header.version != 3 {
            return Err(DecodeError::Version(header.version));
        }
        if header.kind != 1 {
            return Err(DecodeError::Type(header.kind));
        }
        let count = header.count;
        if b.len() != HEADER_LEN + 16 * count as usize {
            return Err(DecodeError::Length {
                len: b.len(),
                count,
            });
        }
        if ipv6_checksum(src, dst, PROTOCOL, b) != 0 {
            return Err(DecodeError::Checksum);
        }
        if count == 0 {
            return Err(DecodeError::NoAddress);
        }
        let mut r = Reader::new(b);
        let interval_cs = r.skip(4)?.u16()? & 0x0fff;
        let addrs = r.skip(2)?.ipv6_list(count as usize)?;
        if !addrs.first().is_some_and(Ipv6Addr::is_unicast_link_local) {
            return Err(DecodeError::FirstNotLinkLocal);
        }
        if interval_cs == 0 {
            return Err(DecodeError::ZeroInterval);
        }
        Ok(Advertisement {
            vrid: header.vrid,
            priority: header.priority,
            interval_cs,
            addrs,
        })
    }
}

/// The fixed fields, readable before the rest is checked (to count errors per VRID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub kind: u8,
    pub vrid: u8,
    pub priority: u8,
    pub count: u8,
}

impl Header {
    pub fn read(b: &[u8]) -> Result<Header, DecodeError> {
        let [vt, vrid, priority, count, ..] = Reader::new(b).array::<HEADER_LEN>()?;
        Ok(Header {
            version: vt >> 4,
            kind: vt & 0x0f,
            vrid,
            priority,
            count,
        })
    }
}

/// An unsolicited Neighbor Advertisement (RFC 4861 §4.4) for `target`, with the Router and
/// Override flags and the target link-layer address option. The kernel fills in the ICMPv6
/// checksum of a raw ICMPv6 socket.
pub fn neighbor_advertisement(target: &Ipv6Addr, mac: &[u8; 6]) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(&[136, 0, 0, 0]);
    // R (router) and O (override); S is clear in an unsolicited advertisement.
    b.extend_from_slice(&[0xa0, 0, 0, 0]);
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(&[2, 1]);
    b.extend_from_slice(mac);
    b
}

/// The virtual router MAC address for IPv6 (RFC 9568 §7.3): 00-00-5E-00-02-{VRID}.
pub fn virtual_mac(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x02, vrid]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn sample() -> Advertisement {
        Advertisement {
            vrid: 7,
            priority: 200,
            interval_cs: 100,
            addrs: vec![a("fe80::1"), a("2001:db8:1::100")],
        }
    }

    #[test]
    fn round_trip_and_bytes() {
        let src = a("fe80::2");
        let b = sample().encode(&src, &GROUP);
        assert_eq!(b.len(), 8 + 32);
        assert_eq!(&b[..6], &[0x31, 7, 200, 2, 0x00, 100]);
        assert_eq!(&b[8..24], &a("fe80::1").octets());
        assert_eq!(Advertisement::decode(&b, &src, &GROUP).unwrap(), sample());
    }

    #[test]
    fn checksum_known_vector() {
        // The 16-bit words that are not zero, summed independently of the encoder.
        let src = a("fe80::1");
        let adv = Advertisement {
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            addrs: vec![a("fe80::100")],
        };
        let b = adv.encode(&src, &GROUP);
        let words: u32 = [
            0xfe80u32, 0x0001, 0xff02, 0x0012, 0x0018, 0x0070, 0x3101, 0x6401, 0x0064, 0xfe80,
            0x0100,
        ]
        .iter()
        .sum();
        let folded = (words & 0xffff) + (words >> 16);
        let folded = (folded & 0xffff) + (folded >> 16);
        assert_eq!(u16::from_be_bytes([b[6], b[7]]), !(folded as u16));
    }

    #[test]
    fn rejects_what_the_rfc_discards() {
        let src = a("fe80::2");
        let good = sample().encode(&src, &GROUP);
        assert_eq!(
            Advertisement::decode(&good[..7], &src, &GROUP),
            Err(DecodeError::TooShort(7))
        );
        let mut v2 = good.clone();
        v2[0] = 0x21;
        assert_eq!(
            Advertisement::decode(&v2, &src, &GROUP),
            Err(DecodeError::Version(2))
        );
        let mut t = good.clone();
        t[0] = 0x32;
        assert_eq!(
            Advertisement::decode(&t, &src, &GROUP),
            Err(DecodeError::Type(2))
        );
        assert_eq!(
            Advertisement::decode(&good[..39], &src, &GROUP),
            Err(DecodeError::Length { len: 39, count: 2 })
        );
        // The checksum covers the pseudo-header: another source breaks it.
        assert_eq!(
            Advertisement::decode(&good, &a("fe80::3"), &GROUP),
            Err(DecodeError::Checksum)
        );
        let mut flipped = good.clone();
        flipped[2] ^= 1;
        assert_eq!(
            Advertisement::decode(&flipped, &src, &GROUP),
            Err(DecodeError::Checksum)
        );
        let global_first = Advertisement {
            addrs: vec![a("2001:db8::1")],
            ..sample()
        }
        .encode(&src, &GROUP);
        assert_eq!(
            Advertisement::decode(&global_first, &src, &GROUP),
            Err(DecodeError::FirstNotLinkLocal)
        );
        let none = Advertisement {
            addrs: vec![],
            ..sample()
        }
        .encode(&src, &GROUP);
        assert_eq!(
            Advertisement::decode(&none, &src, &GROUP),
            Err(DecodeError::NoAddress)
        );
        let zero = Advertisement {
            interval_cs: 0,
            ..sample()
        }
        .encode(&src, &GROUP);
        assert_eq!(
            Advertisement::decode(&zero, &src, &GROUP),
            Err(DecodeError::ZeroInterval)
        );
    }

    #[test]
    fn reserved_bits_are_ignored_and_interval_is_twelve_bits() {
        let src = a("fe80::2");
        let mut b = Advertisement {
            interval_cs: 4095,
            ..sample()
        }
        .encode(&src, &GROUP);
        assert_eq!(&b[4..6], &[0x0f, 0xff]);
        b[4] |= 0xf0;
        b[6..8].copy_from_slice(&[0, 0]);
        let c = ipv6_checksum(&src, &GROUP, PROTOCOL, &b);
        b[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            Advertisement::decode(&b, &src, &GROUP).unwrap().interval_cs,
            4095
        );
        let big = Advertisement {
            interval_cs: 5000,
            ..sample()
        }
        .encode(&src, &GROUP);
        assert_eq!(&big[4..6], &[0x0f, 0xff]);
    }

    #[test]
    fn decoder_is_total() {
        // Every length up to a few addresses, every first byte: never a panic.
        let src = a("fe80::2");
        let mut b = sample().encode(&src, &GROUP);
        for n in 0..b.len() + 20 {
            b.resize(n, 0x5a);
            for first in [0x31u8, 0x30, 0x00, 0xff] {
                if let Some(x) = b.first_mut() {
                    *x = first;
                }
                let _ = Advertisement::decode(&b, &src, &GROUP);
                let _ = Header::read(&b);
            }
        }
        let mut x: u32 = 1;
        for _ in 0..5000 {
            let len = (x % 80) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|i| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345 + i as u32);
                    (x >> 16) as u8
                })
                .collect();
            let _ = Advertisement::decode(&buf, &src, &GROUP);
        }
    }

    #[test]
    fn neighbor_advertisement_layout() {
        let na = neighbor_advertisement(&a("2001:db8::100"), &virtual_mac(9));
        assert_eq!(na.len(), 32);
        assert_eq!(&na[..5], &[136, 0, 0, 0, 0xa0]);
        assert_eq!(&na[8..24], &a("2001:db8::100").octets());
        assert_eq!(&na[24..], &[2, 1, 0, 0, 0x5e, 0, 2, 9]);
    }
}
