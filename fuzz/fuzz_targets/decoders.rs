//! Every decoder of bytes from the network, the kernel or the datastore file, fed arbitrary input: the first byte
//! picks the decoder, the rest is its input. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mldhb::netio::{icmp6, mld_capture, nflog, nft};
use std::net::Ipv6Addr;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = ("fe80::1".parse::<Ipv6Addr>().unwrap(), "ff02::12".parse().unwrap());
    match which % 11 {
        0 => {
            let _ = mld_capture::decode_frame(rest, 1);
        }
        1 => {
            let _ = nflog::parse(rest);
        }
        2 => {
            for m in nft::messages(rest) {
                let _ = nft::parse_counter_obj(m.payload);
                let _ = nft::parse_table(m.payload);
            }
        }
        3 => {
            let _ = icmp6::parse_upcall(rest);
        }
        4 => {
            let _ = mldhb::mld::packet::decode(rest);
        }
        5 => {
            let _ = mldhb::vrrp6::packet::Advertisement::decode(rest, &a, &b);
        }
        6 => {
            let _ = mldhb::etrunk::packet::Hello::decode(rest, Some(b"key"));
        }
        7 => {
            let _ = mldhb::lacp::packet::Lacpdu::decode(rest);
        }
        8 => {
            let _ = mldhb::rbs::packet::decode_header(rest);
            if let Some((&kind, body)) = rest.split_first() {
                let _ = mldhb::rbs::packet::decode_body(kind, body);
            }
        }
        9 => {
            // A datastore record: a key length byte splits key from value.
            if let Some((&n, kv)) = rest.split_first() {
                let (k, v) = kv.split_at((n as usize).min(kv.len()));
                let _ = mldhb::datastore::record::decode_record(k, v);
                let _ = mldhb::datastore::pages::decode(kv);
            }
        }
        _ => {
            let _ = mldhb::xml::parse(rest);
        }
    }
});
