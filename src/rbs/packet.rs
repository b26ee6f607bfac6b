//! RBS frame codec: the header, every message body, and a total decoder with bounded lengths.
//!
//! Every frame (all integers big-endian):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Version    |     Type      |             Flags             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Body Length                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                   Sender Clock (milliseconds)                 +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Body (Body Length octets) ...              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          MAC (32 octets, present when Flags has bit 0x0001)   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Version is [`VERSION`]; other flag bits are zero on send and refused on receipt. Body
//! Length is at most [`MAX_BODY`]. The MAC (HMAC-SHA256, see `channel.rs`) covers the header
//! and body. The bodies are described on each [`Message`] variant and in `docs/rbs-protocol.md`.

use super::api::BackupId;
use crate::bytes::{Reader, Short, Trailing};

/// Protocol version this implementation speaks.
pub const VERSION: u8 = 1;
/// Octets of the fixed header.
pub const HEADER_LEN: usize = 16;
/// Octets of the MAC trailer.
pub const MAC_LEN: usize = 32;
/// Largest body accepted or sent.
pub const MAX_BODY: usize = 1 << 20;
/// Largest whole frame.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_BODY + MAC_LEN;
/// Largest record key.
pub const MAX_KEY: usize = 1024;
/// Largest record value.
pub const MAX_VALUE: usize = 16 * 1024;
/// Largest number of backup-ids in a profile announcement (the range 1..=4095).
pub const MAX_PROFILES: usize = 4095;
/// Longest error text.
pub const MAX_ERROR_TEXT: usize = 255;
/// Flag: a MAC trailer follows the body.
pub const FLAG_MAC: u16 = 0x0001;

/// Message type codes.
mod kind {
    pub const HELLO: u8 = 1;
    pub const AUTH: u8 = 2;
    pub const KEEPALIVE: u8 = 3;
    pub const PROFILES: u8 = 4;
    pub const BATCH_BEGIN: u8 = 5;
    pub const BATCH_RECORDS: u8 = 6;
    pub const BATCH_END: u8 = 7;
    pub const BATCH_ACK: u8 = 8;
    pub const DELTA: u8 = 9;
    pub const RESYNC: u8 = 10;
    pub const ERROR: u8 = 11;
}

/// One record operation in a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Upsert { key: Vec<u8>, value: Vec<u8> },
    Remove { key: Vec<u8> },
}

/// Why a closing side sends an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The frame's version is not spoken here.
    UnsupportedVersion,
    /// The peer's proof of the key was wrong.
    AuthFailure,
    /// One side has a security key, the other does not.
    AuthMismatch,
    /// A malformed or unexpected frame.
    Protocol,
    /// The service was reconfigured or removed, or the agent stops.
    Shutdown,
    /// A code this version does not know.
    Other(u8),
}

impl ErrorCode {
    fn code(self) -> u8 {
        match self {
            ErrorCode::UnsupportedVersion => 1,
            ErrorCode::AuthFailure => 2,
            ErrorCode::AuthMismatch => 3,
            ErrorCode::Protocol => 4,
            ErrorCode::Shutdown => 5,
            ErrorCode::Other(c) => c,
        }
    }
    fn from_code(c: u8) -> Self {
        match c {
            1 => ErrorCode::UnsupportedVersion,
            2 => ErrorCode::AuthFailure,
            3 => ErrorCode::AuthMismatch,
            4 => ErrorCode::Protocol,
            5 => ErrorCode::Shutdown,
            c => ErrorCode::Other(c),
        }
    }
}

/// Why a receiver asks for a full batch again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// A delta sequence number was skipped.
    Gap,
    /// A frame for this backup-id could not be applied.
    Inconsistent,
    Other(u8),
}

impl ResyncReason {
    fn code(self) -> u8 {
        match self {
            ResyncReason::Gap => 1,
            ResyncReason::Inconsistent => 2,
            ResyncReason::Other(c) => c,
        }
    }
    fn from_code(c: u8) -> Self {
        match c {
            1 => ResyncReason::Gap,
            2 => ResyncReason::Inconsistent,
            c => ResyncReason::Other(c),
        }
    }
}

/// A message: the body of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Type 1. `nonce(16) | hold-ms(4) | keepalive-ms(4) | auth(1)`; auth is 1 when the sender
    /// has a security key.
    Hello {
        nonce: [u8; 16],
        hold_ms: u32,
        keepalive_ms: u32,
        auth: bool,
    },
    /// Type 2. `mac(32)`: the sender's proof of the key over both nonces.
    Auth { mac: [u8; 32] },
    /// Type 3. Empty.
    Keepalive,
    /// Type 4. `count(2) | backup-id(2) * count`: the backup-ids registered on the sender.
    Profiles { backup_ids: Vec<BackupId> },
    /// Type 5. `backup-id(2) | batch(4) | seq(8) | count(4)`: a full table follows; `seq` is
    /// the last delta sequence number the table includes.
    BatchBegin {
        backup_id: BackupId,
        batch: u32,
        seq: u64,
        count: u32,
    },
    /// Type 6. `backup-id(2) | batch(4) | { key-len(2) key value-len(2) value }*`.
    BatchRecords {
        backup_id: BackupId,
        batch: u32,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Type 7. `backup-id(2) | batch(4) | count(4) | digest(32)`.
    BatchEnd {
        backup_id: BackupId,
        batch: u32,
        count: u32,
        digest: [u8; 32],
    },
    /// Type 8. `backup-id(2) | batch(4) | ok(1)`: whether the receiver's digest matched.
    BatchAck {
        backup_id: BackupId,
        batch: u32,
        ok: bool,
    },
    /// Type 9. `backup-id(2) | first-seq(8) | { op(1) key-len(2) key [value-len(2) value] }*`;
    /// op 1 is upsert (with a value), 2 remove; the n-th op has sequence number first-seq + n.
    Delta {
        backup_id: BackupId,
        first_seq: u64,
        ops: Vec<Op>,
    },
    /// Type 10. `backup-id(2) | reason(1)`: asks the peer for a full batch.
    Resync {
        backup_id: BackupId,
        reason: ResyncReason,
    },
    /// Type 11. `code(1) | text-len(1) | text`: the sender closes the connection.
    Error { code: ErrorCode, text: String },
}

impl Message {
    fn kind(&self) -> u8 {
        match self {
            Message::Hello { .. } => kind::HELLO,
            Message::Auth { .. } => kind::AUTH,
            Message::Keepalive => kind::KEEPALIVE,
            Message::Profiles { .. } => kind::PROFILES,
            Message::BatchBegin { .. } => kind::BATCH_BEGIN,
            Message::BatchRecords { .. } => kind::BATCH_RECORDS,
            Message::BatchEnd { .. } => kind::BATCH_END,
            Message::BatchAck { .. } => kind::BATCH_ACK,
            Message::Delta { .. } => kind::DELTA,
            Message::Resync { .. } => kind::RESYNC,
            Message::Error { .. } => kind::ERROR,
        }
    }

    /// Octets of the encoded body.
    pub fn body_len(&self) -> usize {
        match self {
            Message::Hello { .. } => 25,
            Message::Auth { .. } => 32,
            Message::Keepalive => 0,
            Message::Profiles { backup_ids } => 2 + 2 * backup_ids.len(),
            Message::BatchBegin { .. } => 18,
            Message::BatchRecords { records, .. } => {
                6 + records.iter().map(|(k, v)| record_len(k, v)).sum::<usize>()
            }
            Message::BatchEnd { .. } => 42,
            Message::BatchAck { .. } => 7,
            Message::Delta { ops, .. } => 10 + ops.iter().map(op_len).sum::<usize>(),
            Message::Resync { .. } => 3,
            Message::Error { text, .. } => 2 + truncate_utf8(text, MAX_ERROR_TEXT).len(),
        }
    }
}

/// Encoded size of a batch record.
pub fn record_len(key: &[u8], value: &[u8]) -> usize {
    4 + key.len() + value.len()
}

/// Encoded size of a delta operation.
pub fn op_len(op: &Op) -> usize {
    match op {
        Op::Upsert { key, value } => 1 + record_len(key, value),
        Op::Remove { key } => 3 + key.len(),
    }
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("unknown flags {0:#06x}")]
    UnknownFlags(u16),
    #[error("body length {0} exceeds the limit")]
    TooLong(usize),
    #[error("body truncated")]
    Truncated,
    #[error("{0} octets after the body")]
    Trailing(usize),
    #[error("{0}")]
    Invalid(&'static str),
}

/// Why a message cannot be encoded (a caller bug or an oversized record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("body of {0} octets exceeds the limit")]
    TooLong(usize),
    #[error("record key or value exceeds the limit")]
    RecordTooLarge,
    #[error("too many backup-ids")]
    TooManyProfiles,
}

/// The fixed header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub flags: u16,
    pub body_len: usize,
    /// The sender's clock in milliseconds.
    pub sender_now: u64,
}

impl Header {
    /// Octets of the whole frame this header starts.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN
            + self.body_len
            + if self.flags & FLAG_MAC != 0 {
                MAC_LEN
            } else {
                0
            }
    }
}

/// Decodes a header from the first [`HEADER_LEN`] octets; Ok(None) when fewer are there.
pub fn decode_header(buf: &[u8]) -> Result<Option<Header>, DecodeError> {
    if buf.len() < HEADER_LEN {
        // A bad version is refused as soon as its octet is there.
        if let Some(&v) = buf.first() {
            if v != VERSION {
                return Err(DecodeError::UnsupportedVersion(v));
            }
        }
        return Ok(None);
    }
    let mut r = Reader::new(buf);
    let (version, kind, flags) = (r.u8()?, r.u8()?, r.u16()?);
    let (body_len, sender_now) = (r.u32()? as usize, r.u64()?);
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    if !(kind::HELLO..=kind::ERROR).contains(&kind) {
        return Err(DecodeError::UnknownType(kind));
    }
    if flags & !FLAG_MAC != 0 {
        return Err(DecodeError::UnknownFlags(flags));
    }
    if body_len > MAX_BODY {
        return Err(DecodeError::TooLong(body_len));
    }
    Ok(Some(Header {
        kind,
        flags,
        body_len,
        sender_now,
    }))
}

/// Writes a frame's header and body to `out` (the MAC, when wanted, is appended by the
/// caller over the octets written here). Returns the offset where the frame starts.
pub fn encode(
    msg: &Message,
    sender_now: u64,
    flags: u16,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let body_len = msg.body_len();
    if body_len > MAX_BODY {
        return Err(EncodeError::TooLong(body_len));
    }
    check_limits(msg)?;
    let start = out.len();
    out.reserve(HEADER_LEN + body_len + MAC_LEN);
    out.push(VERSION);
    out.push(msg.kind());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    out.extend_from_slice(&sender_now.to_be_bytes());
    match msg {
        Message::Hello {
            nonce,
            hold_ms,
            keepalive_ms,
            auth,
        } => {
            out.extend_from_slice(nonce);
            out.extend_from_slice(&hold_ms.to_be_bytes());
            out.extend_from_slice(&keepalive_ms.to_be_bytes());
            out.push(u8::from(*auth));
        }
        Message::Auth { mac } => out.extend_from_slice(mac),
        Message::Keepalive => {}
        Message::Profiles { backup_ids } => {
            out.extend_from_slice(&(backup_ids.len() as u16).to_be_bytes());
            for id in backup_ids {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        Message::BatchBegin {
            backup_id,
            batch,
            seq,
            count,
        } => {
            out.extend_from_slice(&backup_id.to_be_bytes());
            out.extend_from_slice(&batch.to_be_bytes());
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&count.to_be_bytes());
        }
        Message::BatchRecords {
            backup_id,
            batch,
            records,
        } => {
            out.extend_from_slice(&backup_id.to_be_bytes());
            out.extend_from_slice(&batch.to_be_bytes());
            for (k, v) in records {
                put_bytes(out, k);
                put_bytes(out, v);
            }
        }
        Message::BatchEnd {
            backup_id,
            batch,
            count,
            digest,
        } => {
            out.extend_from_slice(&backup_id.to_be_bytes());
            out.extend_from_slice(&batch.to_be_bytes());
            out.extend_from_slice(&count.to_be_bytes());
            out.extend_from_slice(digest);
        }
        Message::BatchAck {
            backup_id,
            batch,
            ok,
        } => {
            out.extend_from_slice(&backup_id.to_be_bytes());
            out.extend_from_slice(&batch.to_be_bytes());
            out.push(u8::from(*ok));
        }
        Message::Delta {
            backup_id,
            first_seq,
            ops,
        } => {
            out.extend_from_slice(&backup_id.to_be_bytes());
            out.extend_from_slice(&first_seq.to_be_bytes());
            for op in ops {
                encode_op(op, out);
            }
        }
        Message::Resync { backup_id, reason } => {
            out.extend_from_slice(&backup_id.to_be_bytes());
            out.push(reason.code());
        }
        Message::Error { code, text } => {
            let text = truncate_utf8(text, MAX_ERROR_TEXT);
            out.push(code.code());
            out.push(text.len() as u8);
            out.extend_from_slice(text.as_bytes());
        }
    }
    debug_assert_eq!(out.len() - start, HEADER_LEN + body_len);
    Ok(start)
}

/// Encodes one delta operation (also used to size deltas before they are framed).
pub fn encode_op(op: &Op, out: &mut Vec<u8>) {
    match op {
        Op::Upsert { key, value } => {
            out.push(1);
            put_bytes(out, key);
            put_bytes(out, value);
        }
        Op::Remove { key } => {
            out.push(2);
            put_bytes(out, key);
        }
    }
}

fn check_limits(msg: &Message) -> Result<(), EncodeError> {
    let ok = |k: &[u8], v: &[u8]| k.len() <= MAX_KEY && v.len() <= MAX_VALUE;
    match msg {
        Message::Profiles { backup_ids } if backup_ids.len() > MAX_PROFILES => {
            Err(EncodeError::TooManyProfiles)
        }
        Message::BatchRecords { records, .. } if !records.iter().all(|(k, v)| ok(k, v)) => {
            Err(EncodeError::RecordTooLarge)
        }
        Message::Delta { ops, .. }
            if !ops.iter().all(|op| match op {
                Op::Upsert { key, value } => ok(key, value),
                Op::Remove { key } => ok(key, &[]),
            }) =>
        {
            Err(EncodeError::RecordTooLarge)
        }
        _ => Ok(()),
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
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

/// The body fields RBS adds to what [`Reader`] reads.
trait BodyReader {
    /// A record key or value: a 2-octet length and at most `max` octets.
    fn bytes(&mut self, max: usize) -> Result<Vec<u8>, DecodeError>;
    /// An octet that is 0 or 1.
    fn bool(&mut self) -> Result<bool, DecodeError>;
    fn backup_id(&mut self) -> Result<BackupId, DecodeError>;
}

impl BodyReader for Reader<'_> {
    fn bytes(&mut self, max: usize) -> Result<Vec<u8>, DecodeError> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(DecodeError::Invalid("record key or value too long"));
        }
        Ok(self.take(n)?.to_vec())
    }
    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid("boolean octet is neither 0 nor 1")),
        }
    }
    fn backup_id(&mut self) -> Result<BackupId, DecodeError> {
        let id = self.u16()?;
        if !(1..=4095).contains(&id) {
            return Err(DecodeError::Invalid("backup-id outside 1..4095"));
        }
        Ok(id)
    }
}

/// Decodes a body of the type the header names. Total: any input gives a message or an error.
pub fn decode_body(kind: u8, body: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader::new(body);
    let msg = match kind {
        kind::HELLO => Message::Hello {
            nonce: r.array()?,
            hold_ms: r.u32()?,
            keepalive_ms: r.u32()?,
            auth: r.bool()?,
        },
        kind::AUTH => Message::Auth { mac: r.array()? },
        kind::KEEPALIVE => Message::Keepalive,
        kind::PROFILES => {
            let n = r.u16()? as usize;
            if n > MAX_PROFILES {
                return Err(DecodeError::Invalid("too many backup-ids"));
            }
            let mut backup_ids = Vec::with_capacity(n);
            for _ in 0..n {
                backup_ids.push(r.backup_id()?);
            }
            Message::Profiles { backup_ids }
        }
        kind::BATCH_BEGIN => Message::BatchBegin {
            backup_id: r.backup_id()?,
            batch: r.u32()?,
            seq: r.u64()?,
            count: r.u32()?,
        },
        kind::BATCH_RECORDS => {
            let backup_id = r.backup_id()?;
            let batch = r.u32()?;
            let mut records = Vec::new();
            while !r.is_empty() {
                let k = r.bytes(MAX_KEY)?;
                let v = r.bytes(MAX_VALUE)?;
                records.push((k, v));
            }
            Message::BatchRecords {
                backup_id,
                batch,
                records,
            }
        }
        kind::BATCH_END => Message::BatchEnd {
            backup_id: r.backup_id()?,
            batch: r.u32()?,
            count: r.u32()?,
            digest: r.array()?,
        },
        kind::BATCH_ACK => Message::BatchAck {
            backup_id: r.backup_id()?,
            batch: r.u32()?,
            ok: r.bool()?,
        },
        kind::DELTA => {
            let backup_id = r.backup_id()?;
            let first_seq = r.u64()?;
            let mut ops = Vec::new();
            while !r.is_empty() {
                ops.push(match r.u8()? {
                    1 => Op::Upsert {
                        key: r.bytes(MAX_KEY)?,
                        value: r.bytes(MAX_VALUE)?,
                    },
                    2 => Op::Remove {
                        key: r.bytes(MAX_KEY)?,
                    },
                    _ => return Err(DecodeError::Invalid("unknown delta operation")),
                });
            }
            if ops.is_empty() {
                return Err(DecodeError::Invalid("delta without operations"));
            }
            if first_seq.checked_add(ops.len() as u64).is_none() {
                return Err(DecodeError::Invalid("delta sequence numbers overflow"));
            }
            Message::Delta {
                backup_id,
                first_seq,
                ops,
            }
        }
        kind::RESYNC => Message::Resync {
            backup_id: r.backup_id()?,
            reason: ResyncReason::from_code(r.u8()?),
        },
        kind::ERROR => {
            let code = ErrorCode::from_code(r.u8()?);
            let n = r.u8()? as usize;
            let text = std::str::from_utf8(r.take(n)?)
                .map_err(|_| DecodeError::Invalid("error text is not UTF-8"))?
                .to_string();
            Message::Error { code, text }
        }
        k => return Err(DecodeError::UnknownType(k)),
    };
    r.end()?;
    Ok(msg)
}

/// One complete frame at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: Header,
    /// Header and body: the octets a MAC covers.
    pub signed: &'a [u8],
    pub body: &'a [u8],
    pub mac: Option<&'a [u8]>,
}

/// Splits the first frame off `buf`: Ok(None) until it is complete.
pub fn split_frame(buf: &[u8]) -> Result<Option<Frame<'_>>, DecodeError> {
    let Some(header) = decode_header(buf)? else {
        return Ok(None);
    };
    let len = header.frame_len();
    if buf.len() < len {
        return Ok(None);
    }
    let signed = &buf[..HEADER_LEN + header.body_len];
    let mac = (header.flags & FLAG_MAC != 0).then(|| &buf[signed.len()..len]);
    Ok(Some(Frame {
        header,
        signed,
        body: &signed[HEADER_LEN..],
        mac,
    }))
}

/// Encodes a frame without a MAC (for tests and unauthenticated channels).
pub fn to_bytes(msg: &Message, sender_now: u64) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode(msg, sender_now, 0, &mut out)?;
    Ok(out)
}

/// Decodes one whole frame without a MAC (for tests and tools).
pub fn from_bytes(buf: &[u8]) -> Result<(Message, u64), DecodeError> {
    let f = split_frame(buf)?.ok_or(DecodeError::Truncated)?;
    let len = f.header.frame_len();
    if buf.len() > len {
        return Err(DecodeError::Trailing(buf.len() - len));
    }
    Ok((decode_body(f.header.kind, f.body)?, f.header.sender_now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn samples() -> Vec<Message> {
        vec![
            Message::Hello {
                nonce: [7; 16],
                hold_ms: 3000,
                keepalive_ms: 1000,
                auth: true,
            },
            Message::Auth { mac: [9; 32] },
            Message::Keepalive,
            Message::Profiles {
                backup_ids: vec![1, 4095],
            },
            Message::BatchBegin {
                backup_id: 10,
                batch: 3,
                seq: 77,
                count: 2,
            },
            Message::BatchRecords {
                backup_id: 10,
                batch: 3,
                records: vec![(b"k1".to_vec(), b"v1".to_vec()), (b"k2".to_vec(), vec![])],
            },
            Message::BatchEnd {
                backup_id: 10,
                batch: 3,
                count: 2,
                digest: [1; 32],
            },
            Message::BatchAck {
                backup_id: 10,
                batch: 3,
                ok: false,
            },
            Message::Delta {
                backup_id: 10,
                first_seq: 78,
                ops: vec![
                    Op::Upsert {
                        key: b"k3".to_vec(),
                        value: b"v3".to_vec(),
                    },
                    Op::Remove {
                        key: b"k1".to_vec(),
                    },
                ],
            },
            Message::Resync {
                backup_id: 10,
                reason: ResyncReason::Gap,
            },
            Message::Error {
                code: ErrorCode::AuthFailure,
                text: "bad key".into(),
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            let b = to_bytes(&m, 123_456).unwrap();
            assert_eq!(b.len(), HEADER_LEN + m.body_len());
            assert_eq!(from_bytes(&b).unwrap(), (m.clone(), 123_456), "{m:?}");
        }
    }

    #[test]
    fn byte_vectors() {
        let b = to_bytes(&Message::Keepalive, 0x0102).unwrap();
        assert_eq!(b, [1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
        let b = to_bytes(
            &Message::Delta {
                backup_id: 5,
                first_seq: 9,
                ops: vec![
                    Op::Upsert {
                        key: vec![0xaa],
                        value: vec![0xbb, 0xcc],
                    },
                    Op::Remove { key: vec![0xaa] },
                ],
            },
            1,
        )
        .unwrap();
        assert_eq!(
            b,
            [
                1, 9, 0, 0, 0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 1, // header
                0, 5, 0, 0, 0, 0, 0, 0, 0, 9, // backup-id, first-seq
                1, 0, 1, 0xaa, 0, 2, 0xbb, 0xcc, // upsert
                2, 0, 1, 0xaa, // remove
            ]
        );
        let b = to_bytes(
            &Message::Profiles {
                backup_ids: vec![1, 0x0fff],
            },
            0,
        )
        .unwrap();
        assert_eq!(&b[HEADER_LEN..], [0, 2, 0, 1, 0x0f, 0xff]);
    }

    #[test]
    fn bad_headers_are_refused_precisely() {
        let mut b = to_bytes(&Message::Keepalive, 0).unwrap();
        b[0] = 2;
        assert_eq!(split_frame(&b), Err(DecodeError::UnsupportedVersion(2)));
        assert_eq!(split_frame(&[9]), Err(DecodeError::UnsupportedVersion(9)));
        let mut b = to_bytes(&Message::Keepalive, 0).unwrap();
        b[1] = 99;
        assert_eq!(split_frame(&b), Err(DecodeError::UnknownType(99)));
        let mut b = to_bytes(&Message::Keepalive, 0).unwrap();
        b[3] = 2;
        assert_eq!(split_frame(&b), Err(DecodeError::UnknownFlags(2)));
        let mut b = to_bytes(&Message::Keepalive, 0).unwrap();
        b[4..8].copy_from_slice(&((MAX_BODY + 1) as u32).to_be_bytes());
        assert_eq!(split_frame(&b), Err(DecodeError::TooLong(MAX_BODY + 1)));
        // A body that is a prefix of a valid one.
        let b = to_bytes(
            &Message::Resync {
                backup_id: 1,
                reason: ResyncReason::Gap,
            },
            0,
        )
        .unwrap();
        assert_eq!(
            decode_body(10, &b[HEADER_LEN..HEADER_LEN + 2]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode_body(4, &[0, 1, 0, 0]),
            Err(DecodeError::Invalid("backup-id outside 1..4095"))
        );
        assert_eq!(decode_body(3, &[0]), Err(DecodeError::Trailing(1)));
    }

    #[test]
    fn oversized_records_are_not_encoded() {
        let m = Message::Delta {
            backup_id: 1,
            first_seq: 1,
            ops: vec![Op::Remove {
                key: vec![0; MAX_KEY + 1],
            }],
        };
        assert_eq!(to_bytes(&m, 0), Err(EncodeError::RecordTooLarge));
    }

    #[test]
    fn truncated_frames_wait_and_garbage_never_panics() {
        for m in samples() {
            let b = to_bytes(&m, 5).unwrap();
            for cut in 0..b.len() {
                assert_eq!(split_frame(&b[..cut]), Ok(None));
                // A short body under a header that claims it is refused, never read past.
                let _ = decode_body(b[1], &b[HEADER_LEN.min(cut)..cut]);
            }
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..128);
            let mut b: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if rng.gen_bool(0.5) && !b.is_empty() {
                b[0] = VERSION;
            }
            let _ = split_frame(&b);
            let _ = decode_body(rng.gen_range(0..13), &b);
        }
        // Mutations of valid frames.
        for m in samples() {
            let good = to_bytes(&m, 5).unwrap();
            for _ in 0..2000 {
                let mut b = good.clone();
                let i = rng.gen_range(0..b.len());
                b[i] = rng.gen();
                if let Ok(Some(f)) = split_frame(&b) {
                    let _ = decode_body(f.header.kind, f.body);
                }
            }
        }
    }
}
