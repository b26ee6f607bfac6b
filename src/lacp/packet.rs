//! The LACPDU (IEEE 802.1AX-2014 §6.4.2, version 1) in its Ethernet frame: encoding, and a
//! total decoder that checks the slow-protocols subtype, the TLV types and lengths.
//!
//! ```text
//! dst 01:80:c2:00:00:02 | src | ethertype 0x8809
//! subtype=1 | version=1
//! TLV 1 (actor, 20):   system priority(2) system(6) key(2) port priority(2) port(2) state(1) rsvd(3)
//! TLV 2 (partner, 20): the same fields as the sender sees its partner
//! TLV 3 (collector, 16): max delay(2) rsvd(12)
//! TLV 0 (terminator, 0), 50 reserved bytes
//! ```

use crate::bytes::{Reader, Short};

/// Slow protocols ethertype.
pub const ETHERTYPE: u16 = 0x8809;
/// The slow protocols multicast address LACPDUs are sent to.
pub const DEST: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x02];
/// Slow protocols subtype of LACP.
pub const SUBTYPE: u8 = 1;
/// Length of the LACPDU after the ethertype.
pub const PDU_LEN: usize = 110;
/// Length of the whole frame (without the FCS).
pub const FRAME_LEN: usize = 14 + PDU_LEN;

/// Actor and partner state bits.
pub mod state {
    pub const ACTIVITY: u8 = 0x01;
    pub const TIMEOUT: u8 = 0x02;
    pub const AGGREGATION: u8 = 0x04;
    pub const SYNC: u8 = 0x08;
    pub const COLLECTING: u8 = 0x10;
    pub const DISTRIBUTING: u8 = 0x20;
    pub const DEFAULTED: u8 = 0x40;
    pub const EXPIRED: u8 = 0x80;

    /// The names of the set bits, in the order of mldhb-etrunk `lacp-state`.
    pub fn names(s: u8) -> Vec<&'static str> {
        [
            "activity",
            "timeout",
            "aggregation",
            "synchronization",
            "collecting",
            "distributing",
            "defaulted",
            "expired",
        ]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| s & (1 << i) != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

/// One side's information as a LACPDU carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortInfo {
    pub system_priority: u16,
    pub system: [u8; 6],
    pub key: u16,
    pub port_priority: u16,
    pub port: u16,
    pub state: u8,
}

/// A LACPDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lacpdu {
    pub actor: PortInfo,
    pub partner: PortInfo,
    /// Collector max delay, tens of microseconds.
    pub max_delay: u16,
}

/// A received frame with its source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub src: [u8; 6],
    pub pdu: Lacpdu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes: shorter than a LACPDU frame")]
    TooShort(usize),
    #[error("ethertype {0:#06x}, not slow protocols")]
    Ethertype(u16),
    #[error("slow protocols subtype {0}, not LACP")]
    Subtype(u8),
    #[error("LACP version 0")]
    Version,
    #[error("TLV {tlv} at offset {offset}: type {found} or length {len} wrong")]
    Tlv {
        tlv: &'static str,
        offset: usize,
        found: u8,
        len: u8,
    },
}

fn put_info(b: &mut Vec<u8>, t: u8, i: &PortInfo) {
    b.push(t);
    b.push(20);
    b.extend_from_slice(&i.system_priority.to_be_bytes());
    b.extend_from_slice(&i.system);
    b.extend_from_slice(&i.key.to_be_bytes());
    b.extend_from_slice(&i.port_priority.to_be_bytes());
    b.extend_from_slice(&i.port.to_be_bytes());
    b.push(i.state);
    b.extend_from_slice(&[0; 3]);
}

impl From<Short> for DecodeError {
    fn from(s: Short) -> DecodeError {
        DecodeError::TooShort(s.have)
    }
}

/// Checks the next TLV header: type `t` and length `len`.
fn tlv(r: &mut Reader<'_>, tlv: &'static str, t: u8, len: u8) -> Result<(), DecodeError> {
    let offset = r.offset();
    let [found, found_len] = r.array()?;
    if found != t || found_len != len {
        return Err(DecodeError::Tlv {
            tlv,
            offset,
            found,
            len: found_len,
        });
    }
    Ok(())
}

/// The body of an actor or partner TLV.
fn get_info(r: &mut Reader<'_>) -> Result<PortInfo, Short> {
    let info = PortInfo {
        system_priority: r.u16()?,
        system: r.array()?,
        key: r.u16()?,
        port_priority: r.u16()?,
        port: r.u16()?,
        state: r.u8()?,
    };
    r.skip(3)?;
    Ok(info)
}

impl Lacpdu {
    /// The Ethernet frame from `src`.
    pub fn encode(&self, src: [u8; 6]) -> Vec<u8> {
        let mut b = Vec::with_capacity(FRAME_LEN);
        b.extend_from_slice(&DEST);
        b.extend_from_slice(&src);
        b.extend_from_slice(&ETHERTYPE.to_be_bytes());
        b.push(SUBTYPE);
        b.push(1);
        put_info(&mut b, 1, &self.actor);
        put_info(&mut b, 2, &self.partner);
        b.push(3);
        b.push(16);
        b.extend_from_slice(&self.max_delay.to_be_bytes());
        b.extend_from_slice(&[0; 12]);
        b.push(0);
        b.push(0);
        b.extend_from_slice(&[0; 50]);
        b
    }

    /// Decodes an Ethernet frame (any destination; trailing padding is ignored).
    pub fn decode(b: &[u8]) -> Result<Frame, DecodeError> {
        if b.len() < FRAME_LEN {
            return Err(DecodeError::TooShort(b.len()));
        }
        let mut r = Reader::new(b);
        let src = r.skip(6)?.array()?;
        let et = r.u16()?;
        if et != ETHERTYPE {
            return Err(DecodeError::Ethertype(et));
        }
        let [subtype, version] = r.array()?;
        if subtype != SUBTYPE {
            return Err(DecodeError::Subtype(subtype));
        }
        if version == 0 {
            return Err(DecodeError::Version);
        }
        tlv(&mut r, "actor", 1, 20)?;
        let actor = get_info(&mut r)?;
        tlv(&mut r, "partner", 2, 20)?;
        let partner = get_info(&mut r)?;
        tlv(&mut r, "collector", 3, 16)?;
        let max_delay = r.u16()?;
        r.skip(12)?;
        tlv(&mut r, "terminator", 0, 0)?;
        Ok(Frame {
            src,
            pdu: Lacpdu {
                actor,
                partner,
                max_delay,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdu() -> Lacpdu {
        Lacpdu {
            actor: PortInfo {
                system_priority: 1,
                system: [0x00, 0xe0, 0xfc, 0x12, 0x34, 0x56],
                key: 0x0101,
                port_priority: 32768,
                port: 7,
                state: state::ACTIVITY | state::TIMEOUT | state::AGGREGATION | state::SYNC,
            },
            partner: PortInfo {
                system_priority: 65534,
                system: [0x02, 1, 2, 3, 4, 5],
                key: 3,
                port_priority: 65535,
                port: 2,
                state: 0x3f,
            },
            max_delay: 0,
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let f = pdu().encode([0x02, 0, 0, 0, 0, 1]);
        assert_eq!(f.len(), FRAME_LEN);
        assert_eq!(&f[..6], &DEST);
        assert_eq!(&f[12..16], &[0x88, 0x09, 1, 1]);
        // Actor TLV: type, length, system priority, system ID.
        assert_eq!(
            &f[16..26],
            &[1, 20, 0, 1, 0x00, 0xe0, 0xfc, 0x12, 0x34, 0x56]
        );
        assert_eq!(f[16 + 16], 0x0f);
        let d = Lacpdu::decode(&f).unwrap();
        assert_eq!(d.pdu, pdu());
        assert_eq!(d.src, [0x02, 0, 0, 0, 0, 1]);
        // Ethernet padding after the PDU is ignored.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 4]);
        assert_eq!(Lacpdu::decode(&padded).unwrap().pdu, pdu());
    }

    #[test]
    fn errors_are_named_and_decoding_is_total() {
        let f = pdu().encode([2, 0, 0, 0, 0, 1]);
        let with = |i: usize, v: u8| {
            let mut b = f.clone();
            b[i] = v;
            Lacpdu::decode(&b)
        };
        assert_eq!(with(14, 2), Err(DecodeError::Subtype(2)));
        assert_eq!(with(15, 0), Err(DecodeError::Version));
        assert_eq!(with(13, 0x00), Err(DecodeError::Ethertype(0x8800)));
        assert!(matches!(
            with(37, 19),
            Err(DecodeError::Tlv { tlv: "partner", .. })
        ));
        for n in 0..f.len() {
            assert_eq!(Lacpdu::decode(&f[..n]), Err(DecodeError::TooShort(n)));
        }
        for i in 0..f.len() {
            for v in [0u8, 0xff] {
                let _ = with(i, v);
            }
        }
    }

    #[test]
    fn state_names() {
        assert_eq!(
            state::names(state::ACTIVITY | state::SYNC | state::EXPIRED),
            ["activity", "synchronization", "expired"]
        );
    }
}
