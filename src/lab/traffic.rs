//! Sequence-numbered multicast test traffic: a sender that paces UDP datagrams to many groups,
//! and a receiver that joins them and counts, per group, what arrived, what was duplicated,
//! what is missing and the longest interval between consecutive packets.

use crate::bytes::Reader;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::ErrorKind;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Marks our datagrams, so stray traffic is not counted.
const MAGIC: u32 = 0x4d4c_4448;
/// Datagram layout: magic (4), group index (4), sequence number (8), all big-endian.
pub const PAYLOAD_LEN: usize = 16;
/// Sequence numbers remembered per group for duplicate detection.
const WINDOW: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error("no interface named {0}")]
    NoInterface(String),
    #[error("group count must be 1..=65535, not {0}")]
    GroupCount(u32),
    #[error("rate must be 1..=10000 packets per second per group, not {0}")]
    Rate(u32),
}

/// The i-th group counted from `base` (the low 32 bits are added to).
pub fn group_addr(base: Ipv6Addr, i: u32) -> Ipv6Addr {
    let v = u128::from(base);
    let low = (v as u32).wrapping_add(i);
    Ipv6Addr::from((v & !0xffff_ffff) | u128::from(low))
}

/// One datagram's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    pub group: u32,
    pub seq: u64,
}

impl Payload {
    pub fn encode(&self) -> [u8; PAYLOAD_LEN] {
        let mut b = [0u8; PAYLOAD_LEN];
        b[..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&self.group.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    /// Our datagram, or None for anything else.
    pub fn decode(b: &[u8]) -> Option<Payload> {
        let mut r = Reader::new(b);
        let (magic, group, seq) = (r.u32().ok()?, r.u32().ok()?, r.u64().ok()?);
        (magic == MAGIC && r.end().is_ok()).then_some(Payload { group, seq })
    }
}

/// What one group received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupStats {
    pub received: u64,
    pub duplicates: u64,
    pub first_seq: u64,
    pub highest_seq: u64,
    /// Distinct sequence numbers seen.
    pub unique: u64,
    /// Longest interval between two consecutive arrivals, in microseconds.
    pub max_gap_us: u64,
    last_arrival: Option<Instant>,
    /// Bit i set: `highest_seq - i` was seen (i < WINDOW).
    seen: Vec<u64>,
}

impl GroupStats {
    /// Counts one arrival.
    pub fn record(&mut self, seq: u64, at: Instant) {
        self.received += 1;
        if let Some(last) = self.last_arrival {
            let gap = at.saturating_duration_since(last).as_micros() as u64;
            self.max_gap_us = self.max_gap_us.max(gap);
        }
        self.last_arrival = Some(at);
        if self.seen.is_empty() {
            self.seen = vec![0; (WINDOW / 64) as usize];
            self.first_seq = seq;
            self.highest_seq = seq;
            self.set_bit(0);
            self.unique = 1;
            return;
        }
        if seq > self.highest_seq {
            self.shift(seq - self.highest_seq);
            self.highest_seq = seq;
            self.set_bit(0);
            self.unique += 1;
            return;
        }
        let back = self.highest_seq - seq;
        if back >= WINDOW {
            // Too old to tell: counted as a duplicate, the conservative reading.
            self.duplicates += 1;
        } else if self.bit(back) {
            self.duplicates += 1;
        } else {
            self.set_bit(back);
            self.unique += 1;
            self.first_seq = self.first_seq.min(seq);
        }
    }

    /// Starts counting afresh (after a marked moment such as a failover), keeping the time of
    /// the last arrival so the gap across the mark is measured.
    pub fn reset(&mut self) {
        *self = GroupStats {
            last_arrival: self.last_arrival,
            ..GroupStats::default()
        };
    }

    /// Sequence numbers between the first and the highest that never arrived.
    pub fn missing(&self) -> u64 {
        if self.received == 0 {
            return 0;
        }
        (self.highest_seq - self.first_seq + 1).saturating_sub(self.unique)
    }

    /// Time since the last arrival.
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        self.last_arrival.map(|t| now.saturating_duration_since(t))
    }

    fn bit(&self, i: u64) -> bool {
        self.seen[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set_bit(&mut self, i: u64) {
        self.seen[(i / 64) as usize] |= 1 << (i % 64);
    }

    /// Moves the window forward by `n` sequence numbers.
    fn shift(&mut self, n: u64) {
        if n >= WINDOW {
            self.seen.iter_mut().for_each(|w| *w = 0);
            return;
        }
        let words = (n / 64) as usize;
        let bits = (n % 64) as u32;
        let len = self.seen.len();
        for i in (0..len).rev() {
            let src = i.checked_sub(words);
            let hi = src.map_or(0, |s| self.seen[s] << bits);
            let lo = match (src, bits) {
                (Some(s), b) if b > 0 && s > 0 => self.seen[s - 1] >> (64 - b),
                _ => 0,
            };
            self.seen[i] = hi | lo;
        }
    }
}

fn ifindex(name: &str) -> Result<u32, TrafficError> {
    nix::net::if_::if_nametoindex(name).map_err(|_| TrafficError::NoInterface(name.into()))
}

fn udp_socket() -> Result<Socket, TrafficError> {
    Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| TrafficError::Io("udp socket", e))
}

/// What the sender does.
#[derive(Debug, Clone)]
pub struct SendSpec {
    pub interface: String,
    pub base: Ipv6Addr,
    pub groups: u32,
    pub port: u16,
    /// Datagrams per second to each group.
    pub rate: u32,
    pub duration: Option<Duration>,
}

/// Datagrams sent back to back before the sender checks its pace within a round.
const PACE_CHUNK: usize = 50;

/// Sends to every group `rate` times a second until the duration ends (or forever). Each round
/// is spread evenly over its period, in chunks of [`PACE_CHUNK`]: a burst of every group at
/// once would overflow the receive queues of a user-space switch on the way (the E-Trunk lab's
/// customer edge) and show up as loss that no router caused.
pub fn send(spec: &SendSpec) -> Result<u64, TrafficError> {
    if spec.groups == 0 || spec.groups > 65535 {
        return Err(TrafficError::GroupCount(spec.groups));
    }
    if spec.rate == 0 || spec.rate > 10_000 {
        return Err(TrafficError::Rate(spec.rate));
    }
    let index = ifindex(&spec.interface)?;
    let sock = udp_socket()?;
    sock.set_multicast_if_v6(index)
        .map_err(|e| TrafficError::Io("IPV6_MULTICAST_IF", e))?;
    sock.set_multicast_hops_v6(64)
        .map_err(|e| TrafficError::Io("IPV6_MULTICAST_HOPS", e))?;
    sock.set_multicast_loop_v6(false)
        .map_err(|e| TrafficError::Io("IPV6_MULTICAST_LOOP", e))?;
    let _ = sock.set_send_buffer_size(4 << 20);
    let dests: Vec<SockAddr> = (0..spec.groups)
        .map(|i| SocketAddrV6::new(group_addr(spec.base, i), spec.port, 0, index).into())
        .collect();
    let period = Duration::from_secs(1) / spec.rate;
    let start = Instant::now();
    let mut sent = 0u64;
    for seq in 0u64.. {
        let due = start + period * (seq as u32);
        if let Some(d) = spec.duration {
            if due.saturating_duration_since(start) >= d {
                break;
            }
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        for (i, dest) in dests.iter().enumerate() {
            if i > 0 && i % PACE_CHUNK == 0 {
                let slot = due + period.mul_f64(i as f64 / dests.len() as f64);
                let now = Instant::now();
                if slot > now {
                    std::thread::sleep(slot - now);
                }
            }
            let p = Payload {
                group: i as u32,
                seq,
            }
            .encode();
            loop {
                match sock.send_to(&p, dest) {
                    Ok(_) => break,
                    // A full queue is waited out rather than counted as the network's loss.
                    Err(e)
                        if e.kind() == ErrorKind::WouldBlock || e.raw_os_error() == Some(105) =>
                    {
                        std::thread::sleep(Duration::from_micros(200))
                    }
                    // No route yet (the link is coming up): this datagram is lost at the source.
                    Err(_) => break,
                }
            }
            sent += 1;
        }
    }
    Ok(sent)
}

/// What the receiver does.
#[derive(Debug, Clone)]
pub struct ReceiveSpec {
    pub interface: String,
    pub base: Ipv6Addr,
    pub groups: u32,
    pub port: u16,
    pub duration: Option<Duration>,
    /// Rewritten (atomically) every second and at the end. A file beside it with the
    /// extension `reset` makes the receiver start counting afresh (and is removed).
    pub report: Option<PathBuf>,
}

/// The receiver's tally, written as JSON.
#[derive(Debug, Clone)]
pub struct Report {
    pub base: Ipv6Addr,
    pub groups: Vec<GroupStats>,
    pub elapsed: Duration,
    /// Datagrams per second over the last reporting second.
    pub rate: f64,
}

impl Report {
    /// Groups that received something within the last second.
    pub fn flowing(&self, now: Instant) -> usize {
        self.groups
            .iter()
            .filter(|g| {
                g.silent_for(now)
                    .is_some_and(|d| d < Duration::from_secs(1))
            })
            .count()
    }

    /// The summary fields come first, so a reader can take them without parsing the groups.
    pub fn to_json(&self, now: Instant) -> String {
        let max_gap = self.groups.iter().map(|g| g.max_gap_us).max().unwrap_or(0);
        let mut s = format!(
            "{{\"elapsed_s\":{:.3},\"rate_pps\":{:.1},\"groups_flowing\":{},\"missing\":{},\"duplicates\":{},\"max_gap_ms\":{:.3},\"groups\":[",
            self.elapsed.as_secs_f64(),
            self.rate,
            self.flowing(now),
            self.groups.iter().map(GroupStats::missing).sum::<u64>(),
            self.groups.iter().map(|g| g.duplicates).sum::<u64>(),
            max_gap as f64 / 1000.0,
        );
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let silent = g
                .silent_for(now)
                .map_or("null".to_string(), |d| d.as_millis().to_string());
            s.push_str(&format!(
                "{{\"group\":\"{}\",\"received\":{},\"duplicates\":{},\"missing\":{},\"first_seq\":{},\"highest_seq\":{},\"max_gap_ms\":{:.3},\"silent_ms\":{}}}",
                group_addr(self.base, i as u32),
                g.received,
                g.duplicates,
                g.missing(),
                g.first_seq,
                g.highest_seq,
                g.max_gap_us as f64 / 1000.0,
                silent
            ));
        }
        s.push_str("]}\n");
        s
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<(), TrafficError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| TrafficError::Io("writing the report", e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrafficError::Io("writing the report", e))
}

/// Joins every group on the interface and counts arrivals until the duration ends (or
/// forever). Memberships beyond what one socket may hold go on extra sockets that are never
/// read: the counting socket receives every group joined on the host.
pub fn receive(spec: &ReceiveSpec) -> Result<Report, TrafficError> {
    if spec.groups == 0 || spec.groups > 65535 {
        return Err(TrafficError::GroupCount(spec.groups));
    }
    let index = ifindex(&spec.interface)?;
    let sock = udp_socket()?;
    sock.set_reuse_address(true)
        .map_err(|e| TrafficError::Io("SO_REUSEADDR", e))?;
    let _ = sock.set_recv_buffer_size(8 << 20);
    let bind: SockAddr = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, spec.port, 0, 0).into();
    sock.bind(&bind).map_err(|e| TrafficError::Io("bind", e))?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| TrafficError::Io("SO_RCVTIMEO", e))?;
    let mut joiners: Vec<Socket> = Vec::new();
    let mut current = None::<Socket>;
    for i in 0..spec.groups {
        let g = group_addr(spec.base, i);
        let mut fresh = false;
        loop {
            let target = current.as_ref().unwrap_or(&sock);
            match target.join_multicast_v6(&g, index) {
                Ok(()) => break,
                // A socket's option memory is full (ENOMEM or ENOBUFS): continue on a new one,
                // unless even a new socket cannot take one membership.
                Err(e)
                    if !fresh && matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ENOMEM)) =>
                {
                    if let Some(full) = current.take() {
                        joiners.push(full);
                    }
                    current = Some(udp_socket()?);
                    fresh = true;
                }
                Err(e) => return Err(TrafficError::Io("IPV6_JOIN_GROUP", e)),
            }
        }
    }
    let start = Instant::now();
    let mut stats = vec![GroupStats::default(); spec.groups as usize];
    let sock: std::net::UdpSocket = sock.into();
    let mut buf = [0u8; 64];
    let mut next_report = start + Duration::from_secs(1);
    let mut window_count = 0u64;
    let mut rate = 0.0;
    loop {
        let now = Instant::now();
        if now >= next_report {
            if let Some(mark) = spec.report.as_ref().map(|p| p.with_extension("reset")) {
                if std::fs::remove_file(&mark).is_ok() {
                    stats.iter_mut().for_each(GroupStats::reset);
                }
            }
            rate = window_count as f64;
            window_count = 0;
            next_report += Duration::from_secs(1);
            if let Some(p) = &spec.report {
                let r = Report {
                    base: spec.base,
                    groups: stats.clone(),
                    elapsed: now - start,
                    rate,
                };
                write_atomically(p, &r.to_json(now))?;
            }
        }
        if spec.duration.is_some_and(|d| now - start >= d) {
            break;
        }
        match sock.recv(&mut buf) {
            Ok(n) => {
                if let Some(p) = Payload::decode(&buf[..n]) {
                    if let Some(g) = stats.get_mut(p.group as usize) {
                        g.record(p.seq, Instant::now());
                        window_count += 1;
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(TrafficError::Io("recv", e)),
        }
    }
    drop(joiners);
    let now = Instant::now();
    let report = Report {
        base: spec.base,
        groups: stats,
        elapsed: now - start,
        rate,
    };
    if let Some(p) = &spec.report {
        write_atomically(p, &report.to_json(now))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_rejects_strangers() {
        let p = Payload {
            group: 7,
            seq: 1 << 40,
        };
        assert_eq!(Payload::decode(&p.encode()), Some(p));
        assert_eq!(Payload::decode(&p.encode()[..15]), None);
        assert_eq!(Payload::decode(&[&p.encode()[..], &[0]].concat()), None);
        let mut other = p.encode();
        other[0] ^= 1;
        assert_eq!(Payload::decode(&other), None);
    }

    #[test]
    fn group_addresses_count_up_from_the_base() {
        let base: Ipv6Addr = "ff3e::1:0".parse().unwrap();
        assert_eq!(group_addr(base, 0), base);
        assert_eq!(
            group_addr(base, 0x1_0005),
            "ff3e::2:5".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn stats_count_duplicates_missing_and_gaps() {
        let t0 = Instant::now();
        let mut g = GroupStats::default();
        for (seq, ms) in [
            (10, 0),
            (11, 10),
            (11, 20),
            (14, 520),
            (12, 530),
            (100, 540),
        ] {
            g.record(seq, t0 + Duration::from_millis(ms));
        }
        assert_eq!(g.received, 6);
        assert_eq!(g.duplicates, 1);
        assert_eq!(g.unique, 5);
        // 10..=100 is 91 numbers, 5 of them seen.
        assert_eq!(g.missing(), 86);
        assert_eq!(g.max_gap_us, 500_000);
    }

    #[test]
    fn window_shifts_keep_old_bits_across_words() {
        let t0 = Instant::now();
        let mut g = GroupStats::default();
        g.record(0, t0);
        g.record(70, t0);
        g.record(200, t0);
        // 0 and 70 are still remembered after two shifts that cross word boundaries.
        g.record(0, t0);
        g.record(70, t0);
        assert_eq!(g.duplicates, 2);
        g.record(69, t0);
        assert_eq!(g.duplicates, 2);
        // Beyond the window a repeat is counted as a duplicate.
        g.record(10_000, t0);
        g.record(70, t0);
        assert_eq!(g.duplicates, 3);
    }

    #[test]
    fn reset_keeps_the_gap_across_the_mark() {
        let t0 = Instant::now();
        let mut g = GroupStats::default();
        g.record(1, t0);
        g.record(1, t0);
        g.reset();
        assert_eq!((g.received, g.duplicates, g.max_gap_us), (0, 0, 0));
        g.record(9, t0 + Duration::from_millis(300));
        assert_eq!(g.max_gap_us, 300_000);
        assert_eq!(g.missing(), 0);
    }
}
