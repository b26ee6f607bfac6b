//! MLD report throughput and memory (DESIGN.md §6: 100k reports/s parsed and applied on one
//! core; 100k groups under 200 MB RSS). Prints figures; not a test.
//!
//! ```sh
//! cargo run --release --example mld_bench -- [--groups 100000] [--rounds 5]
//! ```
//!
//! Each report is what a Linux host sends when it joins: an MLDv2 report with one
//! CHANGE_TO_EXCLUDE({}) record, from a link-local source to ff02::16 with Router Alert and hop
//! limit 1. Every report goes through the receive rules (checksum included), the decoder and
//! the router. Phases, all on one thread:
//! - baseline: receive rules and decoding only (no router);
//! - joins: N reports for N new groups into an empty router;
//! - refreshes: N MODE_IS_EXCLUDE({}) reports for the existing groups, as answers to a general
//!   query;
//! - joins + forwarding: joins again, each resulting group change also applied to the MFIB
//!   (the (*,G) entry the driver keeps), as the agent's driver does.
//!
//! RSS is read from /proc/self/status before the router exists, after the joins, and with the
//! router and its forwarding table (the highest reading).

use mldhb::forwarding::{Domain, Forwarding};
use mldhb::mld::instance::{Action, Config, Input, Router};
use mldhb::mld::network::accept;
use mldhb::mld::packet::{encode_with_checksum, Message, Record, RecordType};
use mldhb::netio::icmp6::RxPacket;
use mldhb::time::Time;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn group(i: usize) -> Ipv6Addr {
    let i = i as u32;
    Ipv6Addr::new(0xff0e, 0, 0, 0, 0x0db8, 0, (i >> 16) as u16, i as u16)
}

fn reports(n: usize, kind: RecordType) -> Vec<RxPacket> {
    let dst: Ipv6Addr = "ff02::16".parse().expect("literal");
    (0..n)
        .map(|i| {
            let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, (i % 250) as u16 + 1);
            let msg = Message::V2Report {
                records: vec![Record {
                    kind,
                    group: group(i),
                    sources: vec![],
                    aux: vec![],
                }],
            };
            RxPacket {
                src,
                dst,
                ifindex: 2,
                hop_limit: Some(1),
                router_alert: true,
                payload: encode_with_checksum(&msg, &src, &dst),
            }
        })
        .collect()
}

fn main() {
    let n = arg("--groups", 100_000);
    let rounds = arg("--rounds", 5).max(1);
    let joins = reports(n, RecordType::ChangeToExclude);
    let refreshes = reports(n, RecordType::ModeIsExclude);
    let rss_before = rss_kib();

    let mut best_base = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut ok = 0usize;
        for p in &joins {
            ok += usize::from(accept(p, true).is_ok());
        }
        assert_eq!(ok, n);
        best_base = best_base.min(t.elapsed().as_secs_f64());
    }

    let mut best_join = f64::MAX;
    let mut best_refresh = f64::MAX;
    let mut rss_after = 0;
    let own: Ipv6Addr = "fe80::1".parse().expect("literal");
    for round in 0..rounds {
        let mut r = Router::new(Config::default(), own, Time::ZERO);
        r.handle(Time::ZERO, Input::Tick);
        let t = Instant::now();
        for (i, p) in joins.iter().enumerate() {
            let msg = accept(p, true).expect("valid report");
            // One millisecond per 100 reports on the router's clock.
            r.handle(
                Time::from_millis((i / 100) as u64),
                Input::Received { from: p.src, msg },
            );
        }
        best_join = best_join.min(t.elapsed().as_secs_f64());
        assert_eq!(r.groups.len(), n);
        let t = Instant::now();
        for (i, p) in refreshes.iter().enumerate() {
            let msg = accept(p, true).expect("valid report");
            r.handle(
                Time::from_millis(60_000 + (i / 100) as u64),
                Input::Received { from: p.src, msg },
            );
        }
        best_refresh = best_refresh.min(t.elapsed().as_secs_f64());
        if round == 0 {
            rss_after = rss_kib();
        }
        assert_eq!(r.groups.len(), n);
    }
    let mut best_fwd = f64::MAX;
    let mut rss_fwd = 0;
    for _ in 0..rounds {
        let mut r = Router::new(Config::default(), own, Time::ZERO);
        let mut fwd = Forwarding::default();
        r.handle(Time::ZERO, Input::Tick);
        let t = Instant::now();
        for (i, p) in joins.iter().enumerate() {
            let msg = accept(p, true).expect("valid report");
            let now = Time::from_millis((i / 100) as u64);
            for a in r.handle(now, Input::Received { from: p.src, msg }) {
                if let Action::GroupUpdated(g) | Action::GroupRemoved(g) = a {
                    let l = |g: &Ipv6Addr, s: &Ipv6Addr| -> BTreeMap<u32, Domain> {
                        let on = r
                            .groups
                            .get(g)
                            .is_some_and(|x| s.is_unspecified() || x.forwards(s, now));
                        if on {
                            BTreeMap::from([(2, Domain::ALWAYS)])
                        } else {
                            BTreeMap::new()
                        }
                    };
                    fwd.refresh_group(now, g, &l);
                }
            }
        }
        best_fwd = best_fwd.min(t.elapsed().as_secs_f64());
        assert_eq!(fwd.mfib.len(), n);
        rss_fwd = rss_fwd.max(rss_kib());
    }
    let rate = |secs: f64| n as f64 / secs;
    println!("MLD router, one core, {n} groups, best of {rounds} rounds");
    println!(
        "baseline (receive rules + decode only): {:>12.0} reports/s",
        rate(best_base)
    );
    println!(
        "joins (new groups):                     {:>12.0} reports/s  ({:.2}x baseline time)",
        rate(best_join),
        best_join / best_base
    );
    println!(
        "refreshes (existing groups):            {:>12.0} reports/s  ({:.2}x baseline time)",
        rate(best_refresh),
        best_refresh / best_base
    );
    println!(
        "joins + forwarding table:               {:>12.0} reports/s  ({:.2}x baseline time)",
        rate(best_fwd),
        best_fwd / best_base
    );
    println!(
        "RSS: {:.1} MB before the router (test packets included), {:.1} MB with {n} groups, {:.1} MB for the table",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        rss_after.saturating_sub(rss_before) as f64 / 1024.0
    );
    println!(
        "RSS with {n} groups and their {n} forwarding entries: {:.1} MB",
        rss_fwd as f64 / 1024.0
    );
    println!(
        "README: MLD (`examples/mld_bench.rs`, one core, {n} groups): joins {:.2} million \
         reports/s, refreshes {:.2} million/s, joins with the forwarding table {:.2} million/s \
         (receive rules and decoding alone: {:.2} million/s); RSS {:.0} MB with the groups and \
         their forwarding entries.",
        rate(best_join) / 1e6,
        rate(best_refresh) / 1e6,
        rate(best_fwd) / 1e6,
        rate(best_base) / 1e6,
        rss_fwd as f64 / 1024.0
    );
}
