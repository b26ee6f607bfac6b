//! The MLD group record as RBS carries it: the key names the interface and the group, the
//! value holds the filter mode and every timer as an absolute time on the sender's clock (ms).
//! Decoding is total: any byte string gives a record or a [`DecodeError`], never a panic.
//!
//! ```text
//! key:   name length (1 byte, 1..=255) | interface name (UTF-8) | group (16 bytes)
//! value: format (1 byte, = 1) | mode (1 byte: 0 include, 1 exclude)
//!        | filter timer (8 bytes) | older-version host present timer (8 bytes)
//!        | last reporter present (1 byte, 0 or 1) | last reporter (16 bytes, if present)
//!        | source count (2 bytes, at most MAX_SOURCES)
//!        | per source: address (16 bytes) | source timer (8 bytes)
//! ```
//! Integers are big-endian; a timer is whole milliseconds on the sender's clock ([`Time`] in
//! memory, converted here), all ones meaning "not running".

use crate::bytes::{Reader, Short, Trailing};
use crate::mld::instance::{FilterMode, Group, Origin};
use crate::time::Time;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

/// The value format this code writes and reads.
pub const FORMAT: u8 = 1;
/// Most sources carried for one group; a record with more carries the first ones in order.
pub const MAX_SOURCES: usize = 4096;
const NONE: u64 = u64::MAX;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record truncated")]
    Truncated,
    #[error("{0} trailing bytes")]
    Trailing(usize),
    #[error("interface name is empty or not UTF-8")]
    BadName,
    #[error("{0} is not a multicast group")]
    NotMulticast(Ipv6Addr),
    #[error("unknown value format {0}")]
    Format(u8),
    #[error("unknown filter mode {0}")]
    Mode(u8),
    #[error("bad flag {0}")]
    Flag(u8),
    #[error("{0} sources, more than {MAX_SOURCES}")]
    TooManySources(usize),
}

/// Encodes a record key.
pub fn encode_key(interface: &str, group: &Ipv6Addr) -> Vec<u8> {
    let name = &interface.as_bytes()[..interface.len().min(255)];
    let mut k = Vec::with_capacity(1 + name.len() + 16);
    k.push(name.len() as u8);
    k.extend_from_slice(name);
    k.extend_from_slice(&group.octets());
    k
}

impl From<Short> for DecodeError {
    fn from(_: Short) -> DecodeError {
        DecodeError::Truncated
    }
}

impl From<Trailing> for DecodeError {
    fn from(Trailing(n): Trailing) -> DecodeError {
        DecodeError::Trailing(n)
    }
}

/// A timer: an absolute time, or all ones for "not running".
fn timer(r: &mut Reader<'_>) -> Result<Option<Time>, Short> {
    Ok(Some(r.u64()?)
        .filter(|ms| *ms != NONE)
        .map(Time::from_millis))
}

/// Decodes a record key into the interface name and the group.
pub fn decode_key(key: &[u8]) -> Result<(String, Ipv6Addr), DecodeError> {
    let mut r = Reader::new(key);
    let n = r.u8()? as usize;
    let name = std::str::from_utf8(r.take(n)?).map_err(|_| DecodeError::BadName)?;
    if name.is_empty() {
        return Err(DecodeError::BadName);
    }
    let group = r.ipv6()?;
    if !group.is_multicast() {
        return Err(DecodeError::NotMulticast(group));
    }
    r.end()?;
    Ok((name.to_string(), group))
}

/// A timer: milliseconds on the wire (sub-millisecond parts dropped).
fn put_timer(v: &mut Vec<u8>, t: Option<Time>) {
    let ms = t.map_or(NONE, |t| t.as_millis().min(NONE - 1));
    v.extend_from_slice(&ms.to_be_bytes());
}

/// Encodes a group's state; its timers are absolute times on this device's clock.
pub fn encode_value(g: &Group) -> Vec<u8> {
    let n = g.sources.len().min(MAX_SOURCES);
    let mut v = Vec::with_capacity(36 + n * 24);
    v.push(FORMAT);
    v.push(match g.mode {
        FilterMode::Include => 0,
        FilterMode::Exclude => 1,
    });
    put_timer(&mut v, g.filter_timer);
    put_timer(&mut v, g.v1_host_until);
    match g.last_reporter {
        Some(a) => {
            v.push(1);
            v.extend_from_slice(&a.octets());
        }
        None => v.push(0),
    }
    v.extend_from_slice(&(n as u16).to_be_bytes());
    for (s, t) in g.sources.iter().take(n) {
        v.extend_from_slice(&s.octets());
        put_timer(&mut v, *t);
    }
    v
}

/// Decodes a peer's group state; timers stay on the sender's clock (see [`to_local`]).
pub fn decode_value(value: &[u8]) -> Result<Group, DecodeError> {
    let mut r = Reader::new(value);
    let format = r.u8()?;
    if format != FORMAT {
        return Err(DecodeError::Format(format));
    }
    let mode = match r.u8()? {
        0 => FilterMode::Include,
        1 => FilterMode::Exclude,
        m => return Err(DecodeError::Mode(m)),
    };
    let filter_timer = timer(&mut r)?;
    let v1_host_until = timer(&mut r)?;
    let last_reporter = match r.u8()? {
        0 => None,
        1 => Some(r.ipv6()?),
        f => return Err(DecodeError::Flag(f)),
    };
    let n = r.u16()? as usize;
    if n > MAX_SOURCES {
        return Err(DecodeError::TooManySources(n));
    }
    let mut sources = BTreeMap::new();
    for _ in 0..n {
        let s = r.ipv6()?;
        sources.insert(s, timer(&mut r)?);
    }
    r.end()?;
    Ok(Group {
        mode,
        filter_timer,
        sources,
        v1_host_until,
        origin: Origin::Peer,
        last_reporter,
        since: Time::ZERO,
    })
}

/// Moves a peer's timers from its clock to this one: `sender_now` on the peer's clock is
/// `now` here; a timer already run out at the sender is due now.
pub fn to_local(mut g: Group, sender_now: Time, now: Time) -> Group {
    let conv = |t: Time| now + (t - sender_now);
    g.filter_timer = g.filter_timer.map(conv);
    g.v1_host_until = g.v1_host_until.map(conv);
    for t in g.sources.values_mut() {
        *t = t.map(conv);
    }
    g.since = now;
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn ms(ms: u64) -> Time {
        Time::from_millis(ms)
    }

    fn sample() -> Group {
        let mut sources = BTreeMap::new();
        sources.insert(a("2001:db8::1"), Some(ms(70_000)));
        sources.insert(a("2001:db8::2"), None);
        Group {
            mode: FilterMode::Exclude,
            filter_timer: Some(ms(260_000)),
            sources,
            v1_host_until: None,
            origin: Origin::Local,
            last_reporter: Some(a("fe80::10")),
            since: ms(5),
        }
    }

    #[test]
    fn round_trip_and_byte_layout() {
        let k = encode_key("eth1", &a("ff0e::5"));
        assert_eq!(&k[..5], b"\x04eth1");
        assert_eq!(k.len(), 21);
        assert_eq!(decode_key(&k).unwrap(), ("eth1".to_string(), a("ff0e::5")));
        let v = encode_value(&sample());
        assert_eq!(v.len(), 1 + 1 + 8 + 8 + 1 + 16 + 2 + 2 * 24);
        assert_eq!(&v[..10], &[1, 1, 0, 0, 0, 0, 0, 0x03, 0xf7, 0xa0]);
        assert_eq!(&v[10..18], &[0xff; 8]);
        let back = decode_value(&v).unwrap();
        assert_eq!(
            back,
            Group {
                origin: Origin::Peer,
                since: Time::ZERO,
                ..sample()
            }
        );
    }

    #[test]
    fn timers_move_to_the_receivers_clock() {
        let g = decode_value(&encode_value(&sample())).unwrap();
        // Sent at 60 s on the peer's clock, received at 1000 s here.
        let l = to_local(g, ms(60_000), ms(1_000_000));
        assert_eq!(l.filter_timer, Some(ms(1_200_000)));
        assert_eq!(l.sources[&a("2001:db8::1")], Some(ms(1_010_000)));
        assert_eq!(l.sources[&a("2001:db8::2")], None);
        // A timer that ran out at the sender is due at once.
        let l = to_local(
            decode_value(&encode_value(&sample())).unwrap(),
            ms(300_000),
            ms(7),
        );
        assert_eq!(l.filter_timer, Some(ms(7)));
    }

    #[test]
    fn decoding_is_total() {
        let v = encode_value(&sample());
        for n in 0..v.len() {
            assert_eq!(decode_value(&v[..n]), Err(DecodeError::Truncated), "{n}");
        }
        let mut long = v.clone();
        long.push(0);
        assert_eq!(decode_value(&long), Err(DecodeError::Trailing(1)));
        let mut bad = v.clone();
        bad[1] = 9;
        assert_eq!(decode_value(&bad), Err(DecodeError::Mode(9)));
        bad = v.clone();
        bad[0] = 2;
        assert_eq!(decode_value(&bad), Err(DecodeError::Format(2)));
        let mut many = v[..35].to_vec();
        many.extend_from_slice(&(MAX_SOURCES as u16 + 1).to_be_bytes());
        assert_eq!(
            decode_value(&many),
            Err(DecodeError::TooManySources(MAX_SOURCES + 1))
        );
        assert_eq!(decode_key(b""), Err(DecodeError::Truncated));
        assert_eq!(decode_key(&[0; 17]), Err(DecodeError::BadName));
        let mut k = encode_key("eth1", &a("2001:db8::1"));
        assert_eq!(
            decode_key(&k),
            Err(DecodeError::NotMulticast(a("2001:db8::1")))
        );
        k[1] = 0xff;
        assert_eq!(decode_key(&k), Err(DecodeError::BadName));
        // Pseudo-random garbage never panics.
        let mut x: u64 = 0x1234_5678;
        for len in 0..400 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 56) as u8
                })
                .collect();
            let _ = decode_value(&buf);
            let _ = decode_key(&buf);
        }
    }
}
