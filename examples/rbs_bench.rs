//! RBS batch sync time and real-time sync latency over loopback TCP (DESIGN.md §6: batch of
//! 100k entries under 200 ms; real-time latency p99 under 1 ms at 10k records/s). Prints
//! figures; not a test.
//!
//! ```sh
//! cargo run --release --example rbs_bench -- [--entries 100000] [--rate 10000] [--seconds 2]
//! ```
//!
//! Two RBS runtimes in one process, paired over 127.0.0.1 and 127.0.0.2 (IPv4-mapped source
//! addresses) with a security key, so every frame carries its HMAC-SHA256:
//! - batch: device A holds N records (an MLD-entry-sized key of 34 octets and value of 24);
//!   B's service is configured, then A's; the time runs from configuring A (connect,
//!   handshake, batch, digest) until B's owner has taken every record and BatchComplete.
//! - real-time: A's owner sends one upsert every 1/rate s from a pacing thread, the send time
//!   in the value; B's owner notes the receive time of each event.
//!
//! Baselines in the same run, over a plain TCP socket pair without the protocol: the same
//! batch octets written by one thread and read by another; and the same delta frame octets
//! at the same rate, latency measured from write to read.

use mldhb::rbs::api::{SyncCommand, SyncEvent};
use mldhb::rbs::channel::ChannelConfig;
use mldhb::rbs::packet::{self, Message, Op};
use mldhb::rbs::tasks::{RbsHandle, ServiceConfig};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn clock_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// An MLD-entry-sized key: interface index, group, source.
fn key(i: u64) -> Vec<u8> {
    let mut k = vec![0u8; 34];
    k[0..2].copy_from_slice(&7u16.to_be_bytes());
    k[2..4].copy_from_slice(&0xff0eu16.to_be_bytes());
    k[10..18].copy_from_slice(&i.to_be_bytes());
    k
}

/// A value with a timestamp in front (filter mode, timers, origin in a real entry).
fn value(ts: u64) -> Vec<u8> {
    let mut v = vec![0u8; 24];
    v[0..8].copy_from_slice(&ts.to_be_bytes());
    v
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn svc(source: &str, peer: &str, port: u16) -> ServiceConfig {
    ServiceConfig {
        peer: peer.parse().expect("literal"),
        source: source.parse().expect("literal"),
        port,
        channel: ChannelConfig {
            key: Some(b"bench-secret".to_vec()),
            ..Default::default()
        },
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// A connected loopback pair of plain sockets with Nagle off.
fn plain_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (b, _) = l.accept().expect("accept");
    a.set_nodelay(true).expect("nodelay");
    b.set_nodelay(true).expect("nodelay");
    (a, b)
}

/// The batch octets A sends (without MACs), as the engine frames them.
fn batch_bytes(n: u64) -> Vec<u8> {
    let mut e = mldhb::rbs::sync::Engine::new();
    e.handle(mldhb::rbs::sync::Input::Register(1))
        .expect("register");
    for i in 0..n {
        e.handle(mldhb::rbs::sync::Input::Command(SyncCommand::Upsert {
            backup_id: 1,
            key: key(i),
            value: value(i),
        }))
        .expect("upsert");
    }
    e.handle(mldhb::rbs::sync::Input::ChannelUp).expect("up");
    e.handle(mldhb::rbs::sync::Input::Message {
        msg: Message::Profiles {
            backup_ids: vec![1],
        },
        sender_now: mldhb::time::Time::ZERO,
    })
    .expect("profiles");
    let mut out = Vec::new();
    while let Some(m) = e.poll_message() {
        packet::encode(&m, 0, 0, &mut out).expect("encode");
    }
    out
}

/// The same batch through two nodes back to back (simulated wire, one thread).
fn sim_batch(n: u64) -> Duration {
    use mldhb::rbs::sim::{Pair, Side};
    let cfg = ChannelConfig {
        key: Some(b"bench-secret".to_vec()),
        ..Default::default()
    };
    let mut p = Pair::new(cfg.clone(), cfg);
    p.register(Side::A, 1);
    p.register(Side::B, 1);
    for i in 0..n {
        p.command(
            Side::A,
            SyncCommand::Upsert {
                backup_id: 1,
                key: key(i),
                value: value(i),
            },
        );
    }
    p.events(Side::A);
    p.events(Side::B);
    let t0 = Instant::now();
    p.connect();
    p.drive();
    let took = t0.elapsed();
    let ev = p.events(Side::B);
    assert!(ev.contains(&(1, SyncEvent::BatchComplete)));
    took
}

fn baseline_batch(bytes: &[u8]) -> Duration {
    let (mut a, mut b) = plain_pair();
    let len = bytes.len();
    let t0 = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while got < len {
            let n = b.read(&mut buf).expect("read");
            assert!(n > 0, "closed early");
            got += n;
        }
    });
    a.write_all(bytes).expect("write");
    reader.join().expect("reader");
    t0.elapsed()
}

/// Plain-socket latency of one delta frame per record at `rate` records/s.
fn baseline_latency(rate: u64, count: u64) -> Vec<u64> {
    let (mut a, mut b) = plain_pair();
    let frame_len = packet::to_bytes(
        &Message::Delta {
            backup_id: 1,
            first_seq: 1,
            ops: vec![Op::Upsert {
                key: key(0),
                value: value(0),
            }],
        },
        0,
    )
    .expect("encode")
    .len();
    let mut lat = Vec::with_capacity(count as usize);
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; frame_len];
        for _ in 0..count {
            b.read_exact(&mut buf).expect("read");
            let f = packet::split_frame(&buf).expect("frame").expect("whole");
            let Ok(Message::Delta { ops, .. }) = packet::decode_body(f.header.kind, f.body) else {
                panic!("not a delta");
            };
            let Op::Upsert { value, .. } = &ops[0] else {
                panic!("not an upsert");
            };
            let sent = u64::from_be_bytes(value[0..8].try_into().expect("8 octets"));
            lat.push(clock_ns() - sent);
        }
        lat
    });
    let period = 1_000_000_000 / rate;
    let start = clock_ns();
    for i in 0..count {
        pace(start + i * period);
        let now = clock_ns();
        let f = packet::to_bytes(
            &Message::Delta {
                backup_id: 1,
                first_seq: i + 1,
                ops: vec![Op::Upsert {
                    key: key(i),
                    value: value(now),
                }],
            },
            0,
        )
        .expect("encode");
        a.write_all(&f).expect("write");
    }
    reader.join().expect("reader")
}

/// Waits until the clock reaches `at` (sleeping while far, yielding the core while near).
fn pace(at: u64) {
    loop {
        let now = clock_ns();
        if now >= at {
            return;
        }
        if at - now > 300_000 {
            std::thread::sleep(Duration::from_nanos(at - now - 200_000));
        } else {
            std::thread::yield_now();
        }
    }
}

fn main() {
    let entries = arg("--entries", 100_000);
    let rate = arg("--rate", 10_000);
    let seconds = arg("--seconds", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    clock_ns();
    let port = free_port();
    let (a, b) = rt.block_on(async { (RbsHandle::new(None), RbsHandle::new(None)) });
    let (a_owner, mut b_owner) = rt.block_on(async {
        (
            a.register("bench", 1).expect("register"),
            b.register("bench", 1).expect("register"),
        )
    });
    // A's table, filled while the channel is down.
    for i in 0..entries {
        a_owner
            .commands
            .blocking_send(SyncCommand::Upsert {
                backup_id: 1,
                key: key(i),
                value: value(i),
            })
            .expect("send");
    }
    while a.status("bench", 1).map_or(0, |s| s.local_entries) < entries as usize {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Batch.
    let (batch_time, upserts) = rt.block_on(async {
        b.configure(
            "bench",
            Some(svc("::ffff:127.0.0.2", "::ffff:127.0.0.1", port)),
        );
        // Let B's listener come up before A connects.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        a.configure(
            "bench",
            Some(svc("::ffff:127.0.0.1", "::ffff:127.0.0.2", port)),
        );
        let mut upserts = 0u64;
        loop {
            match b_owner.events.recv().await.expect("events") {
                SyncEvent::Upsert { .. } => upserts += 1,
                SyncEvent::BatchComplete => break,
                _ => {}
            }
        }
        (t0.elapsed(), upserts)
    });
    assert_eq!(upserts, entries, "every record arrived");
    let sim = sim_batch(entries);
    let bytes = batch_bytes(entries);
    let base = baseline_batch(&bytes);
    println!(
        "batch sync, {entries} entries ({:.1} MB framed), authenticated, loopback TCP:",
        bytes.len() as f64 / 1e6
    );
    println!(
        "  rbs      {:8.1} ms  (connect, handshake, batch, digest, owner took every record)",
        batch_time.as_secs_f64() * 1e3
    );
    println!(
        "  sans-IO  {:8.1} ms  (both nodes on one thread, no sockets: the CPU cost)",
        sim.as_secs_f64() * 1e3
    );
    println!(
        "  baseline {:8.1} ms  (same octets, plain socket pair)",
        base.as_secs_f64() * 1e3
    );
    println!(
        "README: RBS batch sync of {entries} entries (`examples/rbs_bench.rs`, authenticated, \
         loopback TCP): {:.0} ms; the sans-IO CPU cost of both sides {:.0} ms; plain-socket \
         baseline of the same octets {:.1} ms.",
        batch_time.as_secs_f64() * 1e3,
        sim.as_secs_f64() * 1e3,
        base.as_secs_f64() * 1e3
    );
    // DESIGN.md: 100k entries under 200 ms, 1M under 1 s.
    let budget = Duration::from_millis(if entries >= 1_000_000 { 1000 } else { 200 });
    println!(
        "  ratio    {:8.1}x   budget < {} ms: {}",
        batch_time.as_secs_f64() / base.as_secs_f64(),
        budget.as_millis(),
        if batch_time < budget {
            "met"
        } else {
            "NOT met"
        }
    );

    // Real-time. The receiver's buffer is allocated before the clock runs: a large allocation
    // right after the batch can stall for tens of milliseconds while glibc merges the small
    // blocks the batch's events freed, which would be the bench's cost, not the sync's.
    let count = rate * seconds;
    let mut lat = Vec::with_capacity(count as usize);
    let receiver = rt.spawn(async move {
        while (lat.len() as u64) < count {
            if let SyncEvent::Upsert { value, .. } = b_owner.events.recv().await.expect("events") {
                let sent = u64::from_be_bytes(value[0..8].try_into().expect("8 octets"));
                lat.push(clock_ns() - sent);
            }
        }
        lat
    });
    let period = 1_000_000_000 / rate;
    let start = clock_ns();
    for i in 0..count {
        pace(start + i * period);
        a_owner
            .commands
            .blocking_send(SyncCommand::Upsert {
                backup_id: 1,
                key: key(i),
                value: value(clock_ns()),
            })
            .expect("send");
    }
    let sent_in = clock_ns() - start;
    let mut lat = rt.block_on(receiver).expect("receiver");
    lat.sort_unstable();
    let mut base = baseline_latency(rate, count);
    base.sort_unstable();
    println!(
        "real-time sync, {count} upserts at {rate}/s (sent in {:.2} s), owner to owner:",
        sent_in as f64 / 1e9
    );
    for (name, l) in [("rbs     ", &lat), ("baseline", &base)] {
        println!(
            "  {name} p50 {:7.1} us  p99 {:7.1} us  max {:8.1} us",
            us(percentile(l, 0.5)),
            us(percentile(l, 0.99)),
            us(*l.last().unwrap_or(&0))
        );
    }
    let p99 = percentile(&lat, 0.99);
    println!(
        "  ratio    p50 {:7.1}x     p99 {:7.1}x     budget p99 < 1 ms: {}",
        percentile(&lat, 0.5) as f64 / percentile(&base, 0.5).max(1) as f64,
        p99 as f64 / percentile(&base, 0.99).max(1) as f64,
        if p99 < 1_000_000 { "met" } else { "NOT met" }
    );
    let st = a.state("bench").expect("state");
    println!(
        "  channel: {} authenticated={} frames sent {} received {}",
        st.state, st.authenticated, st.frames_tx, st.frames_rx
    );
    println!(
        "README: RBS real-time sync (`examples/rbs_bench.rs`, authenticated, loopback TCP), {count} \
         upserts at {rate}/s: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs (plain-socket baseline in \
         the same run: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs).",
        us(percentile(&lat, 0.5)),
        us(p99),
        us(*lat.last().unwrap_or(&0)),
        us(percentile(&base, 0.5)),
        us(percentile(&base, 0.99)),
        us(*base.last().unwrap_or(&0))
    );
}
