//! The network-namespace harness the kernel data-plane tests share: a thread of its own in a
//! fresh network namespace, veth pairs with fixed MACs, Ethernet + IPv6 + UDP test frames
//! sent and captured with packet sockets (`AF_PACKET`), and the root check (skip without
//! root, fail instead when `CI` is set).
//!
//! Every test crate compiles this module and uses part of it.
#![allow(dead_code)]

use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::process::Command;
use std::time::{Duration, Instant};

/// First payload bytes of every test frame (after the UDP header).
pub const MAGIC: u16 = 0x6d6c;
/// UDP destination port of every test frame.
pub const UDP_PORT: u16 = 6000;
/// `sll_pkttype` of a frame the interface sent (`linux/if_packet.h`).
const PACKET_OUTGOING: u8 = 4;

pub fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs a command (`ip ...`) and fails the test when it fails.
pub fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(st.success(), "{cmd} {}", args.join(" "));
}

pub fn ifindex(name: &str) -> u32 {
    nix::net::if_::if_nametoindex(name).unwrap_or_else(|e| panic!("ifindex of {name}: {e}"))
}

pub fn multicast_mac(g: &Ipv6Addr) -> [u8; 6] {
    let o = g.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The UDP checksum over the IPv6 pseudo-header (a computed 0 is sent as 0xffff, RFC 8200 §8.1).
pub fn checksum(src: &Ipv6Addr, dst: &Ipv6Addr, udp: &[u8]) -> u16 {
    match mldhb::bytes::ipv6_checksum(src, dst, 17, udp) {
        0 => 0xffff,
        c => c,
    }
}

/// An Ethernet + IPv6 + UDP frame to a multicast group, carrying `marker`, with `pad` more
/// bytes of payload. Without padding the IPv6 packet is 52 bytes (40 + 8 + 4).
pub fn frame(
    src_mac: [u8; 6],
    src: Ipv6Addr,
    group: Ipv6Addr,
    hl: u8,
    marker: u16,
    pad: usize,
) -> Vec<u8> {
    let mut data = MAGIC.to_be_bytes().to_vec();
    data.extend_from_slice(&marker.to_be_bytes());
    data.resize(4 + pad, 0xab);
    let mut udp = 5000u16.to_be_bytes().to_vec();
    udp.extend_from_slice(&UDP_PORT.to_be_bytes());
    udp.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&data);
    let c = checksum(&src, &group, &udp);
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    let mut f = multicast_mac(&group).to_vec();
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    f.push(17);
    f.push(hl);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&group.octets());
    f.extend_from_slice(&udp);
    f
}

/// A captured test frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub hop_limit: u8,
}

/// A packet socket on one interface that keeps every test frame it received, by marker.
/// Frames the interface sent (the socket's own included) are not kept.
pub struct Port {
    sock: Socket,
    seen: HashMap<u16, Vec<Seen>>,
}

impl Port {
    pub fn open(name: &str) -> Port {
        let all = libc::ETH_P_ALL as u16;
        let sock = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(i32::from(all.to_be()))),
        )
        .expect("packet socket");
        mldhb::netio::sys::bind_packet(sock.as_fd(), ifindex(name), all).expect("bind packet");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Port {
            sock,
            seen: HashMap::new(),
        }
    }

    pub fn send(&self, f: &[u8]) {
        assert_eq!(self.sock.send(f).expect("send frame"), f.len());
    }

    /// Reads what arrived for `wait`, and then until nothing more is queued.
    pub fn pump(&mut self, wait: Duration) {
        let end = Instant::now() + wait;
        let mut buf = [0u8; 2048];
        loop {
            let Ok((n, from)) = nix::sys::socket::recvfrom::<nix::sys::socket::LinkAddr>(
                self.sock.as_raw_fd(),
                &mut buf,
            ) else {
                // Timed out: nothing queued.
                if Instant::now() >= end {
                    break;
                }
                continue;
            };
            if from.is_some_and(|a| a.pkttype() == PACKET_OUTGOING) {
                continue;
            }
            let f = &buf[..n];
            if n < 14 + 40 + 8 + 4 || f[12..14] != [0x86, 0xdd] || f[20] != 17 {
                continue;
            }
            let udp = &f[54..];
            if udp[2..4] != UDP_PORT.to_be_bytes() || udp[8..10] != MAGIC.to_be_bytes() {
                continue;
            }
            let marker = u16::from_be_bytes([udp[10], udp[11]]);
            self.seen.entry(marker).or_default().push(Seen {
                dst_mac: f[0..6].try_into().unwrap(),
                src_mac: f[6..12].try_into().unwrap(),
                hop_limit: f[21],
            });
        }
    }

    /// The frames with `marker` received so far.
    pub fn got(&self, marker: u16) -> Vec<Seen> {
        self.seen.get(&marker).cloned().unwrap_or_default()
    }
}

/// A veth pair: `name` is the router's end, `peer` the test's (frames are sent and captured
/// there).
#[derive(Debug, Clone, Copy)]
pub struct Veth {
    pub name: &'static str,
    pub mac: [u8; 6],
    pub peer: &'static str,
    pub peer_mac: [u8; 6],
}

/// Creates a veth pair with its MACs and brings the router's end up, and the peer too when
/// `peer_up` (a peer left down makes the router's end drop whatever it sends).
pub fn add_veth(v: &Veth, peer_up: bool) {
    run(
        "ip",
        &[
            "link",
            "add",
            v.name,
            "address",
            &mac_str(&v.mac),
            "type",
            "veth",
            "peer",
            "name",
            v.peer,
            "address",
            &mac_str(&v.peer_mac),
        ],
    );
    run("ip", &["link", "set", v.name, "up"]);
    if peer_up {
        run("ip", &["link", "set", v.peer, "up"]);
    }
}

/// Adds an IPv6 address to a device, without duplicate address detection.
pub fn add_addr(dev: &str, addr: &str) {
    run("ip", &["-6", "addr", "add", addr, "dev", dev, "nodad"]);
}

/// Whether the kernel tests can run: with root. Without it prints why the test is skipped
/// and returns false, or panics when `CI` is set (a CI run must not skip silently).
pub fn root_or_skip() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("needs root (network namespaces), and CI is set: not skipping");
    }
    println!("skipped: needs root (network namespaces)");
    false
}

/// Runs `f` in a fresh network namespace. A thread's network namespace is its own: `f` runs
/// in a dedicated thread that unshares it, so that its sockets and child processes (`ip`) all
/// live in the new namespace, which goes away with the thread. A panic in `f` is raised again.
pub fn in_netns<F: FnOnce() + Send + 'static>(f: F) {
    let t = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        f();
    });
    if let Err(p) = t.join() {
        std::panic::resume_unwind(p);
    }
}
