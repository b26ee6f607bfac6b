//! The E-Trunk hello (docs/etrunk-protocol.md): encoding with an optional HMAC-SHA256 trailer,
//! and a total decoder that checks version, type, length and the authentication.
//!
//! ```text
//!  byte 0        byte 1        byte 2        byte 3
//! +-------------+-------------+-------------+-------------+
//! | version = 1 | type = 1    |        E-Trunk ID         |
//! +-------------+-------------+-------------+-------------+
//! | priority    | state       | flags = 0   | auth type   |
//! +-------------+-------------+-------------+-------------+
//! |                 system ID (6 bytes)                   |
//! +                           +-------------+-------------+
//! |                           | hello interval (100 ms)   |
//! +-------------+-------------+-------------+-------------+
//! | hold-on-failure multiplier| member count N            |
//! +-------------+-------------+-------------+-------------+
//! |                 sequence number (8 bytes)             |
//! +-------------+-------------+-------------+-------------+
//! | N member records: Eth-Trunk ID (2), flags (1), mode (1)|
//! +-------------+-------------+-------------+-------------+
//! | HMAC-SHA256 over every byte before it (auth type 1)   |
//! +-------------------------------------------------------+
//! ```

use crate::bytes::{constant_time_eq, hmac_sha256, Reader, Short};

/// Protocol version.
pub const VERSION: u8 = 1;
/// Message type of a hello.
pub const TYPE_HELLO: u8 = 1;
/// Fixed part before the member records.
pub const HEADER_LEN: usize = 28;
/// One member record.
pub const MEMBER_LEN: usize = 4;
/// Length of the HMAC-SHA256 trailer.
pub const MAC_LEN: usize = 32;
/// Most member records one hello carries.
pub const MAX_MEMBERS: usize = 64;
/// Authentication type: none.
pub const AUTH_NONE: u8 = 0;
/// Authentication type: HMAC-SHA256 with the configured security key.
pub const AUTH_HMAC_SHA256: u8 = 1;
/// Largest valid hello.
pub const MAX_LEN: usize = HEADER_LEN + MAX_MEMBERS * MEMBER_LEN + MAC_LEN;

/// Member flag: the Eth-Trunk is up (a member with carrier and a current LACP partner).
pub const MEMBER_UP: u8 = 0x01;
/// Member flag: the Eth-Trunk's members are in sync (selected) on the sender.
pub const MEMBER_SELECTED: u8 = 0x02;

/// E-Trunk state as carried in the hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WireState {
    Initialize = 0,
    Backup = 1,
    Master = 2,
}

/// `e-trunk mode` of an Eth-Trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrunkMode {
    #[default]
    Auto = 0,
    ForceMaster = 1,
    ForceBackup = 2,
}

impl TrunkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkMode::Auto => "auto",
            TrunkMode::ForceMaster => "force-master",
            TrunkMode::ForceBackup => "force-backup",
        }
    }
}

/// One Eth-Trunk's state as the sender reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberReport {
    pub eth_trunk: u16,
    pub up: bool,
    pub selected: bool,
    pub mode: TrunkMode,
}

/// A hello's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub etrunk: u8,
    pub priority: u8,
    pub state: WireState,
    pub system_id: [u8; 6],
    /// In units of 100 ms.
    pub hello_interval: u16,
    pub multiplier: u16,
    pub sequence: u64,
    pub members: Vec<MemberReport>,
}

/// Why a datagram is not a usable hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes: shorter than the hello header")]
    TooShort(usize),
    #[error("{0} bytes: longer than any hello")]
    TooLong(usize),
    #[error("version {0}, not 1")]
    Version(u8),
    #[error("type {0}, not hello (1)")]
    Type(u8),
    #[error("{len} bytes do not hold {count} member records and the authentication data")]
    Length { len: usize, count: usize },
    #[error("state {0} unknown")]
    State(u8),
    #[error("Eth-Trunk mode {0} unknown")]
    Mode(u8),
    #[error("E-Trunk ID {0} out of range")]
    Id(u16),
    #[error("hello interval {0} or multiplier {1} out of range")]
    Timers(u16, u16),
    #[error("authentication type {0} unknown")]
    AuthType(u8),
    #[error("the hello is not authenticated but a security key is configured")]
    AuthMissing,
    #[error("the hello is authenticated but no security key is configured")]
    AuthUnexpected,
    #[error("authentication failed")]
    AuthFailed,
}

impl DecodeError {
    /// Whether the error counts as an authentication failure rather than a decode error.
    pub fn is_auth(self) -> bool {
        matches!(
            self,
            DecodeError::AuthMissing | DecodeError::AuthUnexpected | DecodeError::AuthFailed
        )
    }
}

impl From<Short> for DecodeError {
    fn from(s: Short) -> DecodeError {
        DecodeError::TooShort(s.have)
    }
}

impl Hello {
    /// The datagram, authenticated with `key` when one is given. At most [`MAX_MEMBERS`]
    /// member records are written.
    pub fn encode(&self, key: Option<&[u8]>) -> Vec<u8> {
        let members = &self.members[..self.members.len().min(MAX_MEMBERS)];
        let mut b = Vec::with_capacity(HEADER_LEN + members.len() * MEMBER_LEN + MAC_LEN);
        b.push(VERSION);
        b.push(TYPE_HELLO);
        b.extend_from_slice(&(self.etrunk as u16).to_be_bytes());
        b.push(self.priority);
        b.push(self.state as u8);
        b.push(0);
        b.push(if key.is_some() {
            AUTH_HMAC_SHA256
        } else {
            AUTH_NONE
        });
        b.extend_from_slice(&self.system_id);
        b.extend_from_slice(&self.hello_interval.to_be_bytes());
        b.extend_from_slice(&self.multiplier.to_be_bytes());
        b.extend_from_slice(&(members.len() as u16).to_be_bytes());
        b.extend_from_slice(&self.sequence.to_be_bytes());
        for m in members {
            b.extend_from_slice(&m.eth_trunk.to_be_bytes());
            b.push(if m.up { MEMBER_UP } else { 0 } | if m.selected { MEMBER_SELECTED } else { 0 });
            b.push(m.mode as u8);
        }
        if let Some(k) = key {
            let t = hmac_sha256(k, &[&b]);
            b.extend_from_slice(&t);
        }
        b
    }

    /// Decodes and authenticates a datagram: with `key`, only a hello carrying a valid
    /// HMAC-SHA256 under that key is accepted; without, only an unauthenticated one.
    pub fn decode(b: &[u8], key: Option<&[u8]>) -> Result<Hello, DecodeError> {
        if b.len() < HEADER_LEN {
            return Err(DecodeError::TooShort(b.len()));
        }
        if b.len() > MAX_LEN {
            return Err(DecodeError::TooLong(b.len()));
        }
        let mut r = Reader::new(b);
        let [version, kind] = r.array()?;
        let etrunk = r.u16()?;
        let [priority, state, _flags, auth] = r.array()?;
        let system_id = r.array()?;
        let (hello_interval, multiplier, count) = (r.u16()?, r.u16()?, r.u16()? as usize);
        let sequence = r.u64()?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        if kind != TYPE_HELLO {
            return Err(DecodeError::Type(kind));
        }
        let trailer = match auth {
            AUTH_NONE => 0,
            AUTH_HMAC_SHA256 => MAC_LEN,
            t => return Err(DecodeError::AuthType(t)),
        };
        if count > MAX_MEMBERS || b.len() != HEADER_LEN + count * MEMBER_LEN + trailer {
            return Err(DecodeError::Length {
                len: b.len(),
                count,
            });
        }
        match (key, auth) {
            (Some(_), AUTH_NONE) => return Err(DecodeError::AuthMissing),
            (None, AUTH_HMAC_SHA256) => return Err(DecodeError::AuthUnexpected),
            (Some(k), _) => {
                // The length check above counted the trailer in.
                let (signed, tag) = b.split_at(b.len() - MAC_LEN);
                if !constant_time_eq(&hmac_sha256(k, &[signed]), tag) {
                    return Err(DecodeError::AuthFailed);
                }
            }
            (None, _) => {}
        }
        if !(1..=128).contains(&etrunk) {
            return Err(DecodeError::Id(etrunk));
        }
        let state = match state {
            0 => WireState::Initialize,
            1 => WireState::Backup,
            2 => WireState::Master,
            s => return Err(DecodeError::State(s)),
        };
        if !(5..=100).contains(&hello_interval) || !(3..=300).contains(&multiplier) {
            return Err(DecodeError::Timers(hello_interval, multiplier));
        }
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let eth_trunk = r.u16()?;
            let [flags, mode] = r.array()?;
            let mode = match mode {
                0 => TrunkMode::Auto,
                1 => TrunkMode::ForceMaster,
                2 => TrunkMode::ForceBackup,
                m => return Err(DecodeError::Mode(m)),
            };
            members.push(MemberReport {
                eth_trunk,
                up: flags & MEMBER_UP != 0,
                selected: flags & MEMBER_SELECTED != 0,
                mode,
            });
        }
        Ok(Hello {
            etrunk: etrunk as u8,
            priority,
            state,
            system_id,
            hello_interval,
            multiplier,
            sequence,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            etrunk: 1,
            priority: 10,
            state: WireState::Master,
            system_id: [0x02, 0, 0, 0, 0, 0x0a],
            hello_interval: 10,
            multiplier: 3,
            sequence: 7,
            members: vec![MemberReport {
                eth_trunk: 1,
                up: true,
                selected: true,
                mode: TrunkMode::Auto,
            }],
        }
    }

    #[test]
    fn round_trip_with_and_without_key() {
        let h = hello();
        let plain = h.encode(None);
        assert_eq!(plain.len(), HEADER_LEN + MEMBER_LEN);
        assert_eq!(Hello::decode(&plain, None), Ok(h.clone()));
        let signed = h.encode(Some(b"k"));
        assert_eq!(signed.len(), HEADER_LEN + MEMBER_LEN + MAC_LEN);
        assert_eq!(Hello::decode(&signed, Some(b"k")), Ok(h));
    }

    #[test]
    fn byte_vector() {
        let b = hello().encode(None);
        assert_eq!(
            b,
            [
                1, 1, 0, 1, 10, 2, 0, 0, 2, 0, 0, 0, 0, 0x0a, 0, 10, 0, 3, 0, 1, 0, 0, 0, 0, 0, 0,
                0, 7, 0, 1, 3, 0
            ]
        );
    }

    #[test]
    fn authentication_is_enforced_both_ways() {
        let h = hello();
        assert_eq!(
            Hello::decode(&h.encode(None), Some(b"k")),
            Err(DecodeError::AuthMissing)
        );
        assert_eq!(
            Hello::decode(&h.encode(Some(b"k")), None),
            Err(DecodeError::AuthUnexpected)
        );
        assert_eq!(
            Hello::decode(&h.encode(Some(b"other")), Some(b"k")),
            Err(DecodeError::AuthFailed)
        );
        let mut tampered = h.encode(Some(b"k"));
        tampered[4] = 1;
        assert_eq!(
            Hello::decode(&tampered, Some(b"k")),
            Err(DecodeError::AuthFailed)
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let good = hello().encode(None);
        let with = |i: usize, v: u8| {
            let mut b = good.clone();
            b[i] = v;
            Hello::decode(&b, None)
        };
        assert_eq!(with(0, 2), Err(DecodeError::Version(2)));
        assert_eq!(with(1, 9), Err(DecodeError::Type(9)));
        assert_eq!(with(5, 3), Err(DecodeError::State(3)));
        assert_eq!(with(31, 7), Err(DecodeError::Mode(7)));
        assert_eq!(with(7, 5), Err(DecodeError::AuthType(5)));
        assert_eq!(with(15, 1), Err(DecodeError::Timers(1, 3)));
        assert_eq!(with(3, 0), Err(DecodeError::Id(0)));
        assert_eq!(
            with(19, 2),
            Err(DecodeError::Length {
                len: good.len(),
                count: 2
            })
        );
        assert_eq!(
            Hello::decode(&good[..10], None),
            Err(DecodeError::TooShort(10))
        );
    }

    #[test]
    fn decoding_is_total() {
        // Every prefix and every single-byte corruption of a valid hello decodes or errs.
        let good = hello().encode(Some(b"k"));
        for n in 0..=good.len() {
            let _ = Hello::decode(&good[..n], Some(b"k"));
            let _ = Hello::decode(&good[..n], None);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                let _ = Hello::decode(&b, Some(b"k"));
                let _ = Hello::decode(&b, None);
            }
        }
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let len = (seed % 400) as usize;
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = Hello::decode(&b, None);
        }
    }
}
