//! The nftables forwarding backend programming a real kernel: in a fresh network namespace
//! (a thread that unshares its network namespace) with three veth pairs, frames sent into the
//! upstream pair with a packet socket are captured on the downstream pairs. Checks forwarding
//! with the outgoing interface's MAC and hop limit - 1, parked and activated slots, entry
//! replacement, the MTU check, the scope / link-local / hop-limit / RPF filters, the NFLOG
//! upcall of a packet without an entry (once per second per (S,G)), counters, that the
//! original packet reaches the local stack unchanged, and that the table goes away with the
//! backend's socket. Needs root; skips without it (fails instead when `CI` is set).

mod common;

use common::{add_addr, add_veth, frame, ifindex, multicast_mac, run, Port, Veth};
use mldhb::forwarding::nftables::{LinkInfo, NftBackend, TABLE};
use mldhb::forwarding::FwdAction;
use mldhb::netio::nflog::{NflogPacket, NflogSocket};
use mldhb::netio::nft::{NftSocket, NFPROTO_NETDEV, NFPROTO_UNSPEC};
use std::net::Ipv6Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

const NFLOG_GROUP: u16 = 77;

const UP0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x10, 0x00];
const UP0P_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x10, 0x01];
const DN0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x20, 0x00];
const DN0P_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x20, 0x01];
const DN1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x30, 0x00];
const DN1P_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x30, 0x01];

/// Collects upcalls for `wait`.
fn upcalls(log: &NflogSocket, wait: Duration) -> Vec<NflogPacket> {
    let end = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        match log.recv(&mut buf) {
            Ok(p) => out.extend(p),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    out
}

fn link(name: &str, mac: [u8; 6], mtu: u32) -> LinkInfo {
    LinkInfo {
        ifindex: ifindex(name),
        name: name.into(),
        mac,
        mtu,
    }
}

fn our_table_exists() -> bool {
    let s = NftSocket::open().expect("nft socket");
    s.tables(NFPROTO_UNSPEC)
        .expect("list tables")
        .iter()
        .any(|(f, n, _)| *f == NFPROTO_NETDEV && n == TABLE)
}

fn scenario() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    run("ip", &["link", "set", "lo", "up"]);
    for (name, mac, peer, peer_mac) in [
        ("up0", UP0_MAC, "up0p", UP0P_MAC),
        ("dn0", DN0_MAC, "dn0p", DN0P_MAC),
        ("dn1", DN1_MAC, "dn1p", DN1P_MAC),
    ] {
        add_veth(
            &Veth {
                name,
                mac,
                peer,
                peer_mac,
            },
            true,
        );
    }
    for (dev, addr) in [
        ("up0", "2001:db8:1::1/64"),
        ("up0p", "2001:db8:1::2/64"),
        ("dn0", "2001:db8:2::1/64"),
        ("dn0p", "2001:db8:2::2/64"),
        ("dn1", "2001:db8:3::1/64"),
        ("dn1p", "2001:db8:3::2/64"),
    ] {
        add_addr(dev, addr);
    }

    let (up0, dn0, dn1) = (ifindex("up0"), ifindex("dn0"), ifindex("dn1"));
    let s: Ipv6Addr = "2001:db8:100::10".parse().unwrap();
    let s2: Ipv6Addr = "2001:db8:100::20".parse().unwrap();
    let g: Ipv6Addr = "ff0e::1:1".parse().unwrap();
    let g_link: Ipv6Addr = "ff02::1:3".parse().unwrap();
    let s_ll: Ipv6Addr = "fe80::10".parse().unwrap();

    let mut nft = NftBackend::open(NFLOG_GROUP).expect("open the nftables backend");
    assert!(our_table_exists());
    let again = NftBackend::open(NFLOG_GROUP)
        .err()
        .expect("a second table is refused");
    assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists, "{again}");
    assert!(again.to_string().contains("already exists"), "{again}");
    let log = NflogSocket::open(NFLOG_GROUP).expect("bind the NFLOG group");

    let links = [
        link("up0", UP0_MAC, 1500),
        link("dn0", DN0_MAC, 1500),
        link("dn1", DN1_MAC, 1500),
    ];
    nft.set_links(&links);
    let failed = nft.apply(&[
        FwdAction::AddMif {
            mifi: 0,
            ifindex: up0,
            parked: false,
        },
        FwdAction::AddMif {
            mifi: 1,
            ifindex: dn0,
            parked: false,
        },
        FwdAction::AddMif {
            mifi: 2,
            ifindex: dn1,
            parked: true,
        },
        FwdAction::SetMfc {
            source: s,
            group: g,
            parent: 0,
            oifs: vec![1, 2],
        },
        // Entries the filters must stop before they are looked up.
        FwdAction::SetMfc {
            source: s,
            group: g_link,
            parent: 0,
            oifs: vec![1, 2],
        },
        FwdAction::SetMfc {
            source: s_ll,
            group: g,
            parent: 0,
            oifs: vec![1, 2],
        },
    ]);
    assert_eq!(failed, 0, "every action carried out");

    let mut up0p = Port::open("up0p");
    let mut dn0p = Port::open("dn0p");
    let mut dn1p = Port::open("dn1p");
    // The local stack of the upstream interface listens to the group too.
    let local = std::net::UdpSocket::bind("[::]:6000").expect("udp socket");
    local.join_multicast_v6(&g, up0).expect("join");
    local.set_nonblocking(true).unwrap();
    nix::sys::socket::setsockopt(&local, nix::sys::socket::sockopt::Ipv6RecvHopLimit, &true)
        .expect("IPV6_RECVHOPLIMIT");
    let settle = Duration::from_millis(300);

    // Forwarded out of dn0 with dn0's MAC and hop limit 63; dn1's slot is parked.
    up0p.send(&frame(UP0P_MAC, s, g, 64, 1, 0));
    dn0p.pump(settle);
    dn1p.pump(Duration::ZERO);
    let got = dn0p.got(1);
    assert_eq!(got.len(), 1, "exactly one copy on dn0p: {got:?}");
    assert_eq!(got[0].src_mac, DN0_MAC);
    assert_eq!(got[0].dst_mac, multicast_mac(&g));
    assert_eq!(got[0].hop_limit, 63);
    assert!(dn1p.got(1).is_empty(), "nothing out of a parked slot");

    // The original went on to the local stack as it arrived (hop limit restored).
    {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrIn6};
        let mut data = [0u8; 256];
        let mut cmsg = nix::cmsg_space!(libc::c_int);
        let mut hops = Vec::new();
        let end = Instant::now() + settle;
        while Instant::now() < end {
            let mut iov = [std::io::IoSliceMut::new(&mut data)];
            match recvmsg::<SockaddrIn6>(
                local.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::empty(),
            ) {
                Ok(m) => {
                    for c in m.cmsgs().expect("cmsgs") {
                        if let ControlMessageOwned::Ipv6HopLimit(h) = c {
                            hops.push(h);
                        }
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        assert_eq!(hops, vec![64], "the local copy keeps hop limit 64");
    }

    // Activating the slot is one element; now both get it.
    assert_eq!(
        nft.apply(&[FwdAction::AddMif {
            mifi: 2,
            ifindex: dn1,
            parked: false,
        }]),
        0
    );
    up0p.send(&frame(UP0P_MAC, s, g, 64, 2, 0));
    dn0p.pump(settle);
    dn1p.pump(Duration::ZERO);
    assert_eq!(dn0p.got(2).len(), 1);
    let got = dn1p.got(2);
    assert_eq!(got.len(), 1, "activated slot forwards: {got:?}");
    assert_eq!(got[0].src_mac, DN1_MAC);
    assert_eq!(got[0].hop_limit, 63);

    // Hop limit 2 leaves with 1.
    up0p.send(&frame(UP0P_MAC, s, g, 2, 3, 0));
    dn0p.pump(settle);
    assert_eq!(
        dn0p.got(3).iter().map(|x| x.hop_limit).collect::<Vec<_>>(),
        vec![1]
    );

    let c = nft.counters();
    let e = c.get(&(s, g)).copied().expect("counters of (S,G)");
    assert_eq!(e.packets, 3, "{e:?}");
    assert!(e.bytes >= 3 * 52, "{e:?}");
    assert_eq!(e.wrong_if, 0);

    // Not forwarded: link-scope group, link-local source, hop limit 1, the wrong interface.
    up0p.send(&frame(UP0P_MAC, s, g_link, 64, 10, 0));
    up0p.send(&frame(UP0P_MAC, s_ll, g, 64, 11, 0));
    up0p.send(&frame(UP0P_MAC, s, g, 1, 12, 0));
    dn0p.send(&frame(DN0P_MAC, s, g, 64, 13, 0));
    dn0p.pump(settle);
    dn1p.pump(Duration::ZERO);
    up0p.pump(Duration::ZERO);
    for m in [10, 11, 12] {
        assert!(dn0p.got(m).is_empty(), "marker {m} forwarded to dn0p");
        assert!(dn1p.got(m).is_empty(), "marker {m} forwarded to dn1p");
    }
    assert!(
        dn1p.got(13).is_empty(),
        "frame from the wrong interface forwarded"
    );
    assert!(
        up0p.got(13).is_empty(),
        "frame from the wrong interface forwarded"
    );
    let e = nft.counters()[&(s, g)];
    assert_eq!(e.wrong_if, 1, "{e:?}");
    assert_eq!(
        e.packets, 4,
        "hop limit 1 is accepted, counted, not forwarded: {e:?}"
    );
    assert!(
        !nft.counters().contains_key(&(s, g_link)) || nft.counters()[&(s, g_link)].packets == 0,
        "a link-scope group never reaches its entry"
    );

    // No entry: not forwarded, reported once (the second within a second is not).
    up0p.send(&frame(UP0P_MAC, s2, g, 64, 20, 0));
    up0p.send(&frame(UP0P_MAC, s2, g, 64, 21, 0));
    let ups = upcalls(&log, settle);
    assert_eq!(
        ups,
        vec![NflogPacket {
            indev: up0,
            src: s2,
            dst: g
        }],
        "one upcall for (S2,G), none for the filtered frames"
    );
    dn0p.pump(Duration::ZERO);
    dn1p.pump(Duration::ZERO);
    assert!(dn0p.got(20).is_empty() && dn0p.got(21).is_empty());
    assert!(dn1p.got(20).is_empty() && dn1p.got(21).is_empty());

    // Replacing the entry: only dn1 now.
    assert_eq!(
        nft.apply(&[FwdAction::SetMfc {
            source: s,
            group: g,
            parent: 0,
            oifs: vec![2],
        }]),
        0
    );
    up0p.send(&frame(UP0P_MAC, s, g, 64, 30, 0));
    dn1p.pump(settle);
    dn0p.pump(Duration::ZERO);
    assert_eq!(dn1p.got(30).len(), 1);
    assert!(
        dn0p.got(30).is_empty(),
        "replaced entry still forwards to dn0"
    );
    assert_eq!(
        nft.counters()[&(s, g)].packets,
        5,
        "counters survive a replacement"
    );

    // A link's MTU: too long for dn1 is dropped and counted, short still goes.
    nft.set_links(&[
        link("up0", UP0_MAC, 1500),
        link("dn0", DN0_MAC, 1500),
        link("dn1", DN1_MAC, 100),
    ]);
    up0p.send(&frame(UP0P_MAC, s, g, 64, 40, 200));
    up0p.send(&frame(UP0P_MAC, s, g, 64, 41, 0));
    dn1p.pump(settle);
    assert!(dn1p.got(40).is_empty(), "packet above the MTU forwarded");
    assert_eq!(dn1p.got(41).len(), 1);
    assert_eq!(nft.mtu_drops().expect("mtu_drop counter"), 1);
    nft.set_links(&links);

    // Renaming the upstream device hooks its base chain again under the new name.
    let rename = |from: &str, to: &str| {
        run("ip", &["link", "set", from, "down"]);
        run("ip", &["link", "set", from, "name", to]);
        run("ip", &["link", "set", to, "up"]);
    };
    rename("up0", "up0x");
    let mut renamed = links.to_vec();
    renamed[0].name = "up0x".into();
    nft.set_links(&renamed);
    up0p.send(&frame(UP0P_MAC, s, g, 64, 45, 0));
    dn1p.pump(settle);
    assert_eq!(dn1p.got(45).len(), 1, "forwarded after the rename");
    rename("up0x", "up0");
    nft.set_links(&links);
    up0p.send(&frame(UP0P_MAC, s, g, 64, 46, 0));
    dn1p.pump(settle);
    assert_eq!(dn1p.got(46).len(), 1, "forwarded after renaming back");

    // A bad action in a batch loses no other action: the kernel refuses the hook of a
    // device name longer than IFNAMSIZ, the whole transaction fails, the actions are retried
    // one by one. (An interface without link information is refused before the kernel.)
    let mut with_bogus = links.to_vec();
    with_bogus.push(LinkInfo {
        ifindex: 999_999,
        name: "a-name-longer-than-ifnamsiz".into(),
        mac: [2, 0, 0, 0, 0, 9],
        mtu: 1500,
    });
    nft.set_links(&with_bogus);
    let failed = nft.apply(&[
        FwdAction::AddMif {
            mifi: 9,
            ifindex: 888_888,
            parked: false,
        },
        FwdAction::AddMif {
            mifi: 9,
            ifindex: 999_999,
            parked: false,
        },
        FwdAction::SetMfc {
            source: s,
            group: g,
            parent: 0,
            oifs: vec![1, 2],
        },
    ]);
    assert_eq!(failed, 2);
    nft.set_links(&links);
    up0p.send(&frame(UP0P_MAC, s, g, 64, 50, 0));
    dn0p.pump(settle);
    dn1p.pump(Duration::ZERO);
    assert_eq!(dn0p.got(50).len(), 1);
    assert_eq!(dn1p.got(50).len(), 1);

    // Deleting the entry: no longer forwarded, and reported.
    assert_eq!(
        nft.apply(&[FwdAction::DelMfc {
            source: s,
            group: g,
            parent: 0,
        }]),
        0
    );
    assert!(!nft.counters().contains_key(&(s, g)));
    up0p.send(&frame(UP0P_MAC, s, g, 64, 60, 0));
    let ups = upcalls(&log, settle);
    assert_eq!(
        ups,
        vec![NflogPacket {
            indev: up0,
            src: s,
            dst: g
        }]
    );
    dn0p.pump(Duration::ZERO);
    dn1p.pump(Duration::ZERO);
    assert!(dn0p.got(60).is_empty() && dn1p.got(60).is_empty());

    // Slots and base chains go; the table stays until the socket closes.
    assert_eq!(
        nft.apply(&[
            FwdAction::DelMif { mifi: 0 },
            FwdAction::DelMif { mifi: 1 },
            FwdAction::DelMif { mifi: 2 },
        ]),
        0
    );
    assert!(our_table_exists());

    drop(nft);
    assert!(!our_table_exists(), "the table goes with its owner socket");
    if let Ok(out) = Command::new("nft").args(["list", "tables"]).output() {
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                !text.contains(TABLE),
                "nft list tables still shows it: {text}"
            );
        }
    }
}

#[test]
fn nft_backend_forwards_in_a_namespace() {
    if !common::root_or_skip() {
        return;
    }
    common::in_netns(scenario);
}
