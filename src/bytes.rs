//! The wire-byte helpers every codec shares: bounded reading, the IPv6 checksum, HMAC tags.
//!
//! A cursor that reads fields and never panics ([`Reader`]), the internet checksum over the
//! IPv6 pseudo-header ([`ipv6_checksum`]), and HMAC-SHA256 tags with their constant-time
//! check. It imports nothing of the crate, so any layer may use it: the protocol codecs
//! (sans-IO, so they do not reach into `netio`), the RBS and hot-backup record codecs, and
//! `netio`'s own decoders of kernel messages.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::Ipv6Addr;

/// A read needed more bytes than the buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("needs {need} bytes, has {have}")]
pub struct Short {
    /// Bytes from the start of the buffer the read needed (saturating).
    pub need: usize,
    /// Bytes the whole buffer holds.
    pub have: usize,
}

/// Bytes were left after what a decoder expected to be the last field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} bytes after the end")]
pub struct Trailing(pub usize);

/// Appends `n` as an unsigned LEB128 number (seven bits per byte, low first).
pub fn put_varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A cursor over a byte buffer. Every read either returns the whole field and moves on, or
/// fails with [`Short`] and leaves the cursor where it was; none can panic. Integers are big
/// endian (network order) unless the method says `_ne` (host order, for kernel structs).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    len: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            rest: buf,
            len: buf.len(),
        }
    }

    /// Bytes read so far.
    pub fn offset(&self) -> usize {
        self.len - self.rest.len()
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// An unsigned LEB128 number of at most 64 bits (see [`put_varint`]); None when it is cut
    /// short or longer than that.
    pub fn varint(&mut self) -> Option<usize> {
        let mut r = self.clone();
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = r.u8().ok()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                let n = usize::try_from(n).ok()?;
                *self = r;
                return Some(n);
            }
        }
        None
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        if n > self.rest.len() {
            return Err(Short {
                need: self.offset().saturating_add(n),
                have: self.len,
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Steps over `n` bytes; returns the cursor so that a read can follow.
    pub fn skip(&mut self, n: usize) -> Result<&mut Self, Short> {
        self.take(n)?;
        Ok(self)
    }

    /// Every byte not read yet (maybe none).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, Short> {
        let [b] = self.array()?;
        Ok(b)
    }

    pub fn u16(&mut self) -> Result<u16, Short> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, Short> {
        self.array().map(u32::from_be_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, Short> {
        self.array().map(u64::from_be_bytes)
    }

    /// A 16-bit integer in host order.
    pub fn u16_ne(&mut self) -> Result<u16, Short> {
        self.array().map(u16::from_ne_bytes)
    }

    /// A 32-bit integer in host order.
    pub fn u32_ne(&mut self) -> Result<u32, Short> {
        self.array().map(u32::from_ne_bytes)
    }

    pub fn ipv6(&mut self) -> Result<Ipv6Addr, Short> {
        self.array::<16>().map(Ipv6Addr::from)
    }

    /// `n` consecutive IPv6 addresses (all of them, or none read).
    pub fn ipv6_list(&mut self, n: usize) -> Result<Vec<Ipv6Addr>, Short> {
        let bytes = self.take(n.saturating_mul(16))?;
        Ok(bytes
            .chunks_exact(16)
            .map(|c| {
                let mut a = [0u8; 16];
                a.copy_from_slice(c);
                Ipv6Addr::from(a)
            })
            .collect())
    }

    /// Ends the reading: fails when bytes are left.
    pub fn end(self) -> Result<(), Trailing> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(Trailing(n)),
        }
    }
}

/// The internet checksum (RFC 1071): the one's-complement sum of 16-bit big-endian words over
/// data added in pieces, which count as one buffer (a piece may end in the middle of a word).
#[derive(Debug, Clone, Default)]
pub struct Checksum {
    /// Sum of whole words; a u64 holds 2^48 of them before it could overflow.
    sum: u64,
    /// The first byte of a word the next piece completes.
    odd: Option<u8>,
}

impl Checksum {
    pub fn new() -> Checksum {
        Checksum::default()
    }

    pub fn add(&mut self, mut b: &[u8]) -> &mut Self {
        if let Some(high) = self.odd.take() {
            match b.split_first() {
                Some((&low, rest)) => {
                    self.sum += u64::from(u16::from_be_bytes([high, low]));
                    b = rest;
                }
                None => {
                    self.odd = Some(high);
                    return self;
                }
            }
        }
        let mut words = b.chunks_exact(2);
        for w in &mut words {
            self.sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            self.odd = Some(*last);
        }
        self
    }

    /// The checksum: the complement of the folded sum, a final odd byte padded with zero.
    pub fn finish(&self) -> u16 {
        let mut sum = self.sum + self.odd.map_or(0, |b| u64::from(b) << 8);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}

/// A checksum started with the IPv6 pseudo-header (RFC 8200 §8.1) of an upper-layer packet of
/// `len` bytes; add the packet to it.
pub fn ipv6_pseudo_header(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize, next_header: u8) -> Checksum {
    let mut c = Checksum::new();
    c.add(&src.octets())
        .add(&dst.octets())
        .add(&(len as u32).to_be_bytes())
        .add(&[0, 0, 0, next_header]);
    c
}

/// The checksum of an upper-layer packet (ICMPv6, UDP, VRRP …) from `src` to `dst` over the
/// pseudo-header and `packet`, whose checksum field counts as it stands: zero when filling it
/// in, and when checking a received packet, a correct one gives 0.
pub fn ipv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, packet: &[u8]) -> u16 {
    ipv6_pseudo_header(src, dst, packet.len(), next_header)
        .add(packet)
        .finish()
}

/// HMAC-SHA256 (RFC 2104) over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    HmacKey::new(key).mac(parts)
}

/// An HMAC-SHA256 key with its key schedule done once: each MAC starts from a copy, so a
/// connection that signs every frame pays for the key only when it is set.
#[derive(Clone)]
pub struct HmacKey(Hmac<Sha256>);

impl HmacKey {
    pub fn new(key: &[u8]) -> HmacKey {
        HmacKey(<Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length"))
    }

    /// The MAC of the concatenation of `parts`.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `parts` (compared in constant time).
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.verify_slice(tag).is_ok()
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

/// Whether `a` and `b` are equal, taking a time that depends on their lengths only (for
/// authentication tags and passwords).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method that reads, applied to a cursor.
    fn read_all_kinds(r: &mut Reader<'_>, kind: usize) -> Result<usize, Short> {
        Ok(match kind {
            0 => r.u8().map(|_| 1)?,
            1 => r.u16().map(|_| 2)?,
            2 => r.u32().map(|_| 4)?,
            3 => r.u64().map(|_| 8)?,
            4 => r.u16_ne().map(|_| 2)?,
            5 => r.u32_ne().map(|_| 4)?,
            6 => r.array::<3>().map(|_| 3)?,
            7 => r.ipv6().map(|_| 16)?,
            8 => r.ipv6_list(2).map(|_| 32)?,
            9 => r.take(5).map(|_| 5)?,
            10 => r.skip(7).map(|_| 7)?,
            _ => r.ipv6_list(usize::MAX / 8).map(|_| 0)?,
        })
    }

    #[test]
    fn fields_are_read_in_order_and_big_endian() {
        let mut b = vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 0]);
        b.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&[0xaa, 0xbb]);
        let mut r = Reader::new(&b);
        assert_eq!(r.u8(), Ok(0x01));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.offset(), 7);
        assert_eq!(r.u64(), Ok(256));
        assert_eq!(r.ipv6(), Ok("2001:db8::1".parse().unwrap()));
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.clone().u16_ne(), Ok(u16::from_ne_bytes([0xaa, 0xbb])));
        assert_eq!(r.rest(), &[0xaa, 0xbb]);
        assert!(r.is_empty());
        assert_eq!(r.rest(), &[] as &[u8]);
        assert_eq!(r.end(), Ok(()));
    }

    #[test]
    fn short_reads_name_the_need_and_leave_the_cursor() {
        let b = [1u8, 2, 3, 4, 5];
        let mut r = Reader::new(&b);
        r.skip(2).unwrap();
        assert_eq!(r.u32(), Err(Short { need: 6, have: 5 }));
        assert_eq!(r.offset(), 2);
        assert_eq!(r.ipv6_list(1), Err(Short { need: 18, have: 5 }));
        assert_eq!(
            r.ipv6_list(usize::MAX),
            Err(Short {
                need: usize::MAX,
                have: 5
            })
        );
        assert_eq!(r.array::<3>(), Ok([3, 4, 5]));
        assert_eq!(r.u8(), Err(Short { need: 6, have: 5 }));
        assert_eq!(r.skip(0).map(|r| r.offset()), Ok(5));
        let mut r = Reader::new(&b);
        assert_eq!(r.skip(1).and_then(|r| r.u16()), Ok(0x0203));
        assert_eq!(r.end(), Err(Trailing(2)));
        assert_eq!(Reader::new(&[]).ipv6_list(0), Ok(vec![]));
        assert_eq!(
            Short { need: 6, have: 5 }.to_string(),
            "needs 6 bytes, has 5"
        );
    }

    #[test]
    fn no_read_panics_on_any_short_input() {
        // Every buffer length up to 40, every starting offset, every kind of read, twice over:
        // a read succeeds exactly when the bytes are there, and a failed one moves nothing.
        let data: Vec<u8> = (0..40u8).collect();
        for len in 0..=data.len() {
            for start in 0..=len {
                for kind in 0..12 {
                    let mut r = Reader::new(&data[..len]);
                    r.skip(start).unwrap();
                    for _ in 0..2 {
                        let before = r.offset();
                        match read_all_kinds(&mut r, kind) {
                            Ok(n) => assert_eq!(r.offset(), before + n),
                            Err(s) => {
                                assert_eq!(r.offset(), before);
                                assert_eq!(s.have, len);
                                assert!(s.need > len, "{s:?} at {before}, kind {kind}");
                            }
                        }
                        assert_eq!(r.offset() + r.remaining(), len);
                    }
                }
            }
        }
    }

    #[test]
    fn checksum_of_pieces_is_the_checksum_of_the_whole() {
        let data: Vec<u8> = (0..=255u8).map(|b| b.wrapping_mul(37)).collect();
        let whole = Checksum::new().add(&data).finish();
        for cut in 0..data.len() {
            for cut2 in [cut, (cut + 1).min(data.len()), data.len()] {
                let c = Checksum::new()
                    .add(&data[..cut])
                    .add(&data[cut..cut2])
                    .add(&[])
                    .add(&data[cut2..])
                    .finish();
                assert_eq!(c, whole, "cut at {cut} and {cut2}");
            }
        }
        // RFC 1071 §3's example: words 0001 f203 f4f5 f6f7 sum to ddf2 (after the carry).
        assert_eq!(
            Checksum::new()
                .add(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])
                .finish(),
            !0xddf2
        );
        // An odd final byte is the high half of a word.
        assert_eq!(Checksum::new().add(&[0x12]).finish(), !0x1200);
        assert_eq!(Checksum::new().finish(), 0xffff);
    }

    #[test]
    fn ipv6_checksum_known_vector_and_self_check() {
        // A UDP datagram fe80::1 → ff02::1, ports 5000 → 6000, payload "ab"; the words summed
        // by hand: pseudo-header fe80 0001 ff02 0001 000a 0011, UDP 1388 1770 000a 0000 6162.
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1".parse().unwrap();
        let mut udp = vec![0x13, 0x88, 0x17, 0x70, 0x00, 0x0a, 0, 0, b'a', b'b'];
        let words: u32 = [
            0xfe80u32, 0x0001, 0xff02, 0x0001, 0x000a, 0x0011, 0x1388, 0x1770, 0x000a, 0x6162,
        ]
        .iter()
        .sum();
        let folded = (words & 0xffff) + (words >> 16);
        let c = ipv6_checksum(&src, &dst, 17, &udp);
        assert_eq!(c, !(folded as u16));
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(ipv6_checksum(&src, &dst, 17, &udp), 0);
        assert_ne!(ipv6_checksum(&dst, &src, 58, &udp), 0);
        let mut pieces = ipv6_pseudo_header(&src, &dst, udp.len(), 17);
        assert_eq!(pieces.add(&udp[..3]).add(&udp[3..]).finish(), 0);
    }

    #[test]
    fn hmac_matches_rfc_4231_and_tags_compare() {
        // RFC 4231 test case 2.
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(constant_time_eq(&tag, &tag));
        let mut other = tag;
        other[31] ^= 1;
        assert!(!constant_time_eq(&tag, &other));
        assert!(!constant_time_eq(&tag, &tag[..31]));
        assert!(constant_time_eq(&[], &[]));
    }

    #[test]
    fn varints_round_trip_and_refuse_what_is_cut_or_too_long() {
        for n in [
            0usize,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as usize,
            usize::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(n, &mut out);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint(), Some(n));
            assert!(r.is_empty());
            let mut cut = Reader::new(&out[..out.len() - 1]);
            assert_eq!(cut.varint(), None);
            assert_eq!(cut.offset(), 0, "a failed read leaves the cursor");
        }
        assert_eq!(Reader::new(&[0xff; 11]).varint(), None);
    }
}
