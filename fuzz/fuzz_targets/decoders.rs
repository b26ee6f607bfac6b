//! Every decoder of bytes from the network or the kernel, fed arbitrary input: the first byte
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
    match which % 10 {
        0 => drop(mld_capture::decode_frame(rest, 1)),
        1 => drop(nflog::parse(rest)),
        2 => {
            for m in nft::messages(rest) {
                drop(nft::parse_counter_obj(m.payload));
                drop(nft::parse_table(m.payload));
            }
        }
        3 => drop(icmp6::parse_upcall(rest)),
        4 => drop(mldhb::mld::packet::decode(rest)),
        5 => drop(mldhb::vrrp6::packet::Advertisement::decode(rest, &a, &b)),
        6 => drop(mldhb::etrunk::packet::Hello::decode(rest, Some(b"key"))),
        7 => drop(mldhb::lacp::packet::Lacpdu::decode(rest)),
        8 => {
            if let Ok(Some(h)) = mldhb::rbs::packet::decode_header(rest) {
                drop(h);
            }
            if let Some((&kind, body)) = rest.split_first() {
                drop(mldhb::rbs::packet::decode_body(kind, body));
            }
        }
        _ => drop(mldhb::netconf::xml::parse(rest)),
    }
});
