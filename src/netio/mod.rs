//! Access to the Linux network stack: netlink for links, addresses and routes; the raw ICMPv6
//! socket that carries MLD and programs IPv6 multicast routing; the VRRP6 sockets; the one module of unsafe
//! socket options.

pub mod clock;
pub mod datagram;
pub mod icmp6;
pub mod lacp;
pub mod mld_capture;
pub mod netlink;
pub mod nflog;
pub mod nft;
pub mod socket;
pub mod sys;
pub mod vrrp6;
