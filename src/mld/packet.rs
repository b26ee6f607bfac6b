//! MLD message codec: queries, MLDv1 reports and dones, MLDv2 reports. Total: `decode` never
//! panics and rejects every malformed input with a precise error.
//!
//! ICMPv6 header shared by all messages (RFC 4443):
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! MLDv1 query (130, 24 bytes), report (131) and done (132), RFC 2710 §3:
//! ```text
//! |     Maximum Response Delay    |          Reserved             |
//! |                  Multicast Address (16 octets)                |
//! ```
//! MLDv2 query (130, 28 + 16·N bytes), RFC 3810 §5.1:
//! ```text
//! |    Maximum Response Code      |           Reserved            |
//! |                  Multicast Address (16 octets)                |
//! | Resv  |S| QRV |     QQIC      |     Number of Sources (N)     |
//! |                  Source Address [1..N] (16 octets each)       |
//! ```
//! MLDv2 report (143), RFC 3810 §5.2:
//! ```text
//! |           Reserved            |Nr of Mcast Address Records (M)|
//! |                  Multicast Address Record [1..M]              |
//! ```
//! where each record is
//! ```text
//! |  Record Type  |  Aux Data Len |     Number of Sources (N)     |
//! |                  Multicast Address (16 octets)                |
//! |                  Source Address [1..N] (16 octets each)       |
//! |                  Auxiliary Data (Aux Data Len · 4 octets)     |
//! ```

use crate::bytes::{ipv6_pseudo_header, Reader, Short};
use std::net::Ipv6Addr;

/// IPv6 next-header value of ICMPv6, which carries MLD.
const NEXT_HEADER: u8 = 58;

pub const TYPE_QUERY: u8 = 130;
pub const TYPE_V1_REPORT: u8 = 131;
pub const TYPE_V1_DONE: u8 = 132;
pub const TYPE_V2_REPORT: u8 = 143;

/// Most sources accepted in one query or record (a 1500-byte MTU holds 89).
pub const MAX_SOURCES: usize = 1024;
/// Most records accepted in one report.
pub const MAX_RECORDS: usize = 1024;

/// The six record types of RFC 3810 §5.2.12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    ModeIsInclude = 1,
    ModeIsExclude = 2,
    ChangeToInclude = 3,
    ChangeToExclude = 4,
    AllowNewSources = 5,
    BlockOldSources = 6,
}

impl RecordType {
    fn from_u8(v: u8) -> Option<RecordType> {
        Some(match v {
            1 => RecordType::ModeIsInclude,
            2 => RecordType::ModeIsExclude,
            3 => RecordType::ChangeToInclude,
            4 => RecordType::ChangeToExclude,
            5 => RecordType::AllowNewSources,
            6 => RecordType::BlockOldSources,
            _ => return None,
        })
    }
}

/// One multicast address record of an MLDv2 report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: RecordType,
    pub group: Ipv6Addr,
    pub sources: Vec<Ipv6Addr>,
    pub aux: Vec<u8>,
}

/// An MLD query; version 1 when it is 24 bytes long (RFC 3810 §8.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Maximum response delay in milliseconds (decoded from the v2 code).
    pub max_response_ms: u32,
    /// The unspecified address for a general query.
    pub group: Ipv6Addr,
    /// MLDv2 fields; None for an MLDv1 query.
    pub v2: Option<QueryV2>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryV2 {
    pub suppress_router_side: bool,
    pub qrv: u8,
    /// Querier's query interval in seconds (decoded from QQIC).
    pub qqi_s: u32,
    pub sources: Vec<Ipv6Addr>,
}

/// Every MLD message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Query(Query),
    V1Report { group: Ipv6Addr },
    V1Done { group: Ipv6Addr },
    V2Report { records: Vec<Record> },
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {0} bytes is too short")]
    TooShort(usize),
    #[error("ICMPv6 type {0} is not an MLD message")]
    NotMld(u8),
    #[error("MLD query of {0} bytes is neither 24 (v1) nor at least 28 (v2)")]
    BadQueryLength(usize),
    #[error("{what} claims {count} entries, more than the {limit} accepted")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("{what} is truncated: needs {need} bytes, has {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("record type {0} is not defined")]
    BadRecordType(u8),
    #[error("bad checksum: computed {computed:#06x}, packet has {found:#06x}")]
    Checksum { computed: u16, found: u16 },
}

impl From<Short> for DecodeError {
    /// A read past the end of a part the length checks already vouched for.
    fn from(s: Short) -> DecodeError {
        truncated("MLD message")(s)
    }
}

/// The error for a part of the message that is cut short (`need` counts from its start).
fn truncated(what: &'static str) -> impl Fn(Short) -> DecodeError {
    move |s| DecodeError::Truncated {
        what,
        need: s.need,
        have: s.have,
    }
}

/// `n` source addresses, at most [`MAX_SOURCES`].
fn sources(r: &mut Reader<'_>, what: &'static str, n: usize) -> Result<Vec<Ipv6Addr>, DecodeError> {
    if n > MAX_SOURCES {
        return Err(DecodeError::TooMany {
            what,
            count: n,
            limit: MAX_SOURCES,
        });
    }
    r.ipv6_list(n).map_err(truncated(what))
}

/// Decodes the 16-bit Maximum Response Code into milliseconds (RFC 3810 §5.1.3).
pub fn decode_max_resp_code(code: u16) -> u32 {
    if code < 0x8000 {
        code as u32
    } else {
        let exp = ((code >> 12) & 0x7) as u32;
        let mant = (code & 0x0fff) as u32;
        (mant | 0x1000) << (exp + 3)
    }
}

/// Encodes milliseconds into the nearest Maximum Response Code not above it.
pub fn encode_max_resp_code(ms: u32) -> u16 {
    if ms < 0x8000 {
        return ms as u16;
    }
    for exp in 0..8u32 {
        let mant = (ms >> (exp + 3)).saturating_sub(0x1000);
        if (ms >> (exp + 3)) < 0x2000 {
            return 0x8000 | ((exp as u16) << 12) | (mant as u16 & 0x0fff);
        }
    }
    0xffff
}

/// Decodes QQIC into seconds (RFC 3810 §5.1.9).
pub fn decode_qqic(code: u8) -> u32 {
    if code < 0x80 {
        code as u32
    } else {
        let exp = ((code >> 4) & 0x7) as u32;
        let mant = (code & 0x0f) as u32;
        (mant | 0x10) << (exp + 3)
    }
}

/// Encodes seconds into the nearest QQIC not above it.
pub fn encode_qqic(s: u32) -> u8 {
    if s < 0x80 {
        return s as u8;
    }
    for exp in 0..8u32 {
        if (s >> (exp + 3)) < 0x20 {
            let mant = (s >> (exp + 3)).saturating_sub(0x10);
            return 0x80 | ((exp as u8) << 4) | (mant as u8 & 0x0f);
        }
    }
    0xff
}

/// The ICMPv6 checksum over the IPv6 pseudo-header and `msg` (whose checksum field counts as 0).
pub fn checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum = ipv6_pseudo_header(src, dst, msg.len(), NEXT_HEADER);
    match (msg.get(..2), msg.get(4..)) {
        (Some(head), Some(tail)) => sum.add(head).add(tail),
        _ => sum.add(msg),
    }
    .finish()
}

/// Checks the checksum of a received message.
pub fn verify_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> Result<(), DecodeError> {
    let found = Reader::new(msg)
        .skip(2)
        .and_then(Reader::u16)
        .map_err(|s| DecodeError::TooShort(s.have))?;
    let computed = checksum(src, dst, msg);
    if computed != found {
        return Err(DecodeError::Checksum { computed, found });
    }
    Ok(())
}

/// Decodes one MLD message (the ICMPv6 payload of the IPv6 packet).
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader::new(buf);
    let [kind, _code, _checksum, _, _, _, _, _] =
        r.array::<8>().map_err(|s| DecodeError::TooShort(s.have))?;
    match kind {
        TYPE_QUERY => decode_query(buf),
        TYPE_V1_REPORT | TYPE_V1_DONE => {
            let group = r.ipv6().map_err(truncated("MLDv1 message"))?;
            Ok(if kind == TYPE_V1_REPORT {
                Message::V1Report { group }
            } else {
                Message::V1Done { group }
            })
        }
        TYPE_V2_REPORT => decode_v2_report(buf),
        t => Err(DecodeError::NotMld(t)),
    }
}

fn decode_query(buf: &[u8]) -> Result<Message, DecodeError> {
    let len = buf.len();
    if len < 24 || (len > 24 && len < 28) {
        return Err(DecodeError::BadQueryLength(len));
    }
    let mut r = Reader::new(buf);
    let code = r.skip(4)?.u16()?;
    let group = r.skip(2)?.ipv6()?;
    if r.is_empty() {
        return Ok(Message::Query(Query {
            max_response_ms: code as u32,
            group,
            v2: None,
        }));
    }
    let [flags, qqic] = r.array()?;
    let n = r.u16()? as usize;
    let sources = sources(&mut r, "MLDv2 query sources", n)?;
    Ok(Message::Query(Query {
        max_response_ms: decode_max_resp_code(code),
        group,
        v2: Some(QueryV2 {
            suppress_router_side: flags & 0x08 != 0,
            qrv: flags & 0x07,
            qqi_s: decode_qqic(qqic),
            sources,
        }),
    }))
}

fn decode_v2_report(buf: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader::new(buf);
    let m = r.skip(6)?.u16()? as usize;
    if m > MAX_RECORDS {
        return Err(DecodeError::TooMany {
            what: "MLDv2 report records",
            count: m,
            limit: MAX_RECORDS,
        });
    }
    let mut records = Vec::with_capacity(m.min(64));
    for _ in 0..m {
        let [kind, aux_words, n_high, n_low, group @ ..] =
            r.array::<20>().map_err(truncated("MLDv2 record header"))?;
        let kind = RecordType::from_u8(kind).ok_or(DecodeError::BadRecordType(kind))?;
        let n = u16::from_be_bytes([n_high, n_low]) as usize;
        let sources = sources(&mut r, "MLDv2 record sources", n)?;
        let aux = r
            .take(aux_words as usize * 4)
            .map_err(truncated("MLDv2 record auxiliary data"))?;
        records.push(Record {
            kind,
            group: Ipv6Addr::from(group),
            sources,
            aux: aux.to_vec(),
        });
    }
    Ok(Message::V2Report { records })
}

/// Encodes a message with a zero checksum (the kernel fills it in on raw ICMPv6 sockets;
/// use `checksum` to fill it in yourself).
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(28);
    match msg {
        Message::Query(q) => {
            out.extend_from_slice(&[TYPE_QUERY, 0, 0, 0]);
            let code = match &q.v2 {
                Some(_) => encode_max_resp_code(q.max_response_ms),
                None => q.max_response_ms.min(u16::MAX as u32) as u16,
            };
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&q.group.octets());
            if let Some(v2) = &q.v2 {
                let flags = (u8::from(v2.suppress_router_side) << 3) | (v2.qrv & 0x07);
                out.push(flags);
                out.push(encode_qqic(v2.qqi_s));
                out.extend_from_slice(&(v2.sources.len() as u16).to_be_bytes());
                for s in &v2.sources {
                    out.extend_from_slice(&s.octets());
                }
            }
        }
        Message::V1Report { group } | Message::V1Done { group } => {
            let t = if matches!(msg, Message::V1Report { .. }) {
                TYPE_V1_REPORT
            } else {
                TYPE_V1_DONE
            };
            out.extend_from_slice(&[t, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&group.octets());
        }
        Message::V2Report { records } => {
            out.extend_from_slice(&[TYPE_V2_REPORT, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&(records.len() as u16).to_be_bytes());
            for r in records {
                out.push(r.kind as u8);
                out.push((r.aux.len() / 4) as u8);
                out.extend_from_slice(&(r.sources.len() as u16).to_be_bytes());
                out.extend_from_slice(&r.group.octets());
                for s in &r.sources {
                    out.extend_from_slice(&s.octets());
                }
                out.extend_from_slice(&r.aux[..r.aux.len() / 4 * 4]);
            }
        }
    }
    out
}

/// Encodes a message and fills in its checksum for the given addresses.
pub fn encode_with_checksum(msg: &Message, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
    let mut out = encode(msg);
    let c = checksum(src, dst, &out);
    out[2..4].copy_from_slice(&c.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn v2_report_byte_vector() {
        // One CHANGE_TO_EXCLUDE({}) record for ff05::1:3, as a host joining sends it.
        let mut bytes = vec![143, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0];
        bytes.extend_from_slice(&a("ff05::1:3").octets());
        let m = decode(&bytes).unwrap();
        assert_eq!(
            m,
            Message::V2Report {
                records: vec![Record {
                    kind: RecordType::ChangeToExclude,
                    group: a("ff05::1:3"),
                    sources: vec![],
                    aux: vec![],
                }]
            }
        );
        assert_eq!(encode(&m), bytes);
    }

    #[test]
    fn query_versions_by_length() {
        let v1 = Message::Query(Query {
            max_response_ms: 10_000,
            group: Ipv6Addr::UNSPECIFIED,
            v2: None,
        });
        let b = encode(&v1);
        assert_eq!(b.len(), 24);
        assert_eq!(decode(&b).unwrap(), v1);
        let v2 = Message::Query(Query {
            max_response_ms: 10_000,
            group: a("ff0e::1"),
            v2: Some(QueryV2 {
                suppress_router_side: true,
                qrv: 2,
                qqi_s: 125,
                sources: vec![a("2001:db8::1"), a("2001:db8::2")],
            }),
        });
        let b = encode(&v2);
        assert_eq!(b.len(), 28 + 32);
        assert_eq!(b[24], 0x0a);
        assert_eq!(decode(&b).unwrap(), v2);
        assert_eq!(decode(&b[..26]), Err(DecodeError::BadQueryLength(26)));
    }

    #[test]
    fn exponential_codes() {
        assert_eq!(decode_max_resp_code(0x7fff), 0x7fff);
        assert_eq!(decode_max_resp_code(0x8000), 0x1000 << 3);
        assert_eq!(decode_max_resp_code(0xffff), 0x1fff << 10);
        for ms in [0, 1, 32767, 32768, 40_000, 125_000, 8_000_000] {
            let c = encode_max_resp_code(ms);
            let back = decode_max_resp_code(c);
            assert!(
                back <= ms && ms - back <= (ms >> 9).max(1) * 2,
                "{ms} -> {c:#x} -> {back}"
            );
        }
        assert_eq!(decode_qqic(125), 125);
        assert_eq!(decode_qqic(0x80), 0x10 << 3);
        for s in [0, 127, 128, 200, 1000, 31744] {
            let back = decode_qqic(encode_qqic(s));
            assert!(back <= s && s - back < (s >> 3).max(1) * 2, "{s} -> {back}");
        }
    }

    #[test]
    fn checksum_round_trip_and_detection() {
        let src = a("fe80::1");
        let dst = a("ff02::16");
        let m = Message::V2Report {
            records: vec![Record {
                kind: RecordType::AllowNewSources,
                group: a("ff3e::8000:1"),
                sources: vec![a("2001:db8:100::10")],
                aux: vec![],
            }],
        };
        let mut b = encode_with_checksum(&m, &src, &dst);
        verify_checksum(&src, &dst, &b).unwrap();
        b[10] ^= 1;
        assert!(matches!(
            verify_checksum(&src, &dst, &b),
            Err(DecodeError::Checksum { .. })
        ));
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        assert_eq!(decode(&[]), Err(DecodeError::TooShort(0)));
        assert_eq!(
            decode(&[128, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::NotMld(128))
        );
        // A record claiming 3 sources with none present.
        let mut b = vec![143, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 3];
        b.extend_from_slice(&a("ff05::1").octets());
        assert!(matches!(decode(&b), Err(DecodeError::Truncated { .. })));
        b[8] = 9;
        assert_eq!(decode(&b), Err(DecodeError::BadRecordType(9)));
        let many = [143, 0, 0, 0, 0, 0, 0xff, 0xff];
        assert!(matches!(decode(&many), Err(DecodeError::TooMany { .. })));
        // Every prefix of valid messages, and pseudo-random bytes, decode without panicking.
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 120) as usize;
            let mut buf: Vec<u8> = (0..len).map(|i| (seed >> (i % 56)) as u8).collect();
            if let Some(t) = buf.first_mut() {
                *t = [130, 131, 132, 143][(seed % 4) as usize];
            }
            let _ = decode(&buf);
            for cut in 0..buf.len() {
                let _ = decode(&buf[..cut]);
            }
        }
    }
}
