//! Receive rules for MLD messages (RFC 3810 §5, §7; RFC 2710 §3): link-local source, hop limit
//! 1, Router Alert when required, a valid checksum and a decodable message. Each drop has a
//! reason that the router counts.

use super::instance::ErrorCounters;
use super::packet::{decode, verify_checksum, DecodeError, Message};
use crate::netio::icmp6::RxPacket;

/// Why a received message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxError {
    BadSource,
    HopLimit,
    NoRouterAlert,
    Checksum,
    Malformed,
}

impl RxError {
    pub fn count(self, c: &mut ErrorCounters) {
        let n = match self {
            RxError::BadSource => &mut c.bad_source,
            RxError::HopLimit => &mut c.hop_limit,
            RxError::NoRouterAlert => &mut c.no_router_alert,
            RxError::Checksum => &mut c.checksum,
            RxError::Malformed => &mut c.too_short,
        };
        *n += 1;
    }
}

/// Applies the receive rules to a packet and decodes it.
pub fn accept(rx: &RxPacket, require_router_alert: bool) -> Result<Message, RxError> {
    if !rx.src.is_unicast_link_local() {
        return Err(RxError::BadSource);
    }
    if rx.hop_limit != Some(1) {
        return Err(RxError::HopLimit);
    }
    if require_router_alert && !rx.router_alert {
        return Err(RxError::NoRouterAlert);
    }
    let reason = |e: DecodeError| match e {
        DecodeError::Checksum { .. } => RxError::Checksum,
        _ => RxError::Malformed,
    };
    verify_checksum(&rx.src, &rx.dst, &rx.payload).map_err(reason)?;
    decode(&rx.payload).map_err(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mld::packet::{encode_with_checksum, Record, RecordType};
    use std::net::Ipv6Addr;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn good() -> RxPacket {
        let msg = Message::V2Report {
            records: vec![Record {
                kind: RecordType::ChangeToExclude,
                group: a("ff0e::1"),
                sources: vec![],
                aux: vec![],
            }],
        };
        let (src, dst) = (a("fe80::10"), a("ff02::16"));
        RxPacket {
            src,
            dst,
            ifindex: 2,
            hop_limit: Some(1),
            router_alert: true,
            payload: encode_with_checksum(&msg, &src, &dst),
        }
    }

    #[test]
    fn each_rule_has_its_reason() {
        assert!(accept(&good(), true).is_ok());
        let mut p = good();
        p.src = a("2001:db8::10");
        assert_eq!(accept(&p, true), Err(RxError::BadSource));
        let mut p = good();
        p.hop_limit = Some(2);
        assert_eq!(accept(&p, true), Err(RxError::HopLimit));
        let mut p = good();
        p.router_alert = false;
        assert_eq!(accept(&p, true), Err(RxError::NoRouterAlert));
        assert!(accept(&p, false).is_ok());
        let mut p = good();
        p.payload[2] ^= 0xff;
        assert_eq!(accept(&p, true), Err(RxError::Checksum));
        let mut p = good();
        p.payload.truncate(10);
        assert!(matches!(
            accept(&p, true),
            Err(RxError::Checksum | RxError::Malformed)
        ));
        let mut c = ErrorCounters::default();
        RxError::NoRouterAlert.count(&mut c);
        RxError::Malformed.count(&mut c);
        assert_eq!((c.no_router_alert, c.too_short), (1, 1));
    }
}
