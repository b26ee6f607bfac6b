//! One RBS connection as a sans-IO state machine: hello and version, challenge-response
//! authentication with HMAC-SHA256 and a MAC on every later frame, keepalive and hold timer,
//! and errors. Bytes from the socket go in, bytes for the socket and events come out.
//!
//! Handshake: each side sends Hello (a fresh nonce, its hold and keepalive times, whether it
//! has a key). With a key on both sides, each then sends Auth, its proof
//! `HMAC(K, "mldhb-rbs auth" | role | own nonce | peer nonce)` (role 'I' for the side that
//! connected, 'A' for the side that accepted, so a proof cannot be reflected), and from then
//! on appends to each frame `HMAC(Kdir, counter | header | body)`, where `Kdir` is derived
//! from the key, the sender's role and both nonces, and `counter` counts the frames sent in
//! that direction since Auth (so frames cannot be replayed, dropped or reordered unnoticed).
//! A key on one side only, or a wrong proof, closes the connection as an authentication
//! failure. Without a key on either side the channel comes up unauthenticated.

use super::packet::{self, DecodeError, EncodeError, ErrorCode, Message, FLAG_MAC, MAC_LEN};
use crate::bytes::{constant_time_eq, hmac_sha256, HmacKey};
use crate::time::Time;
use std::time::Duration;

/// Default interval between keepalives when nothing else is sent.
pub const KEEPALIVE_MS: u32 = 1000;
/// Default hold time: the channel goes down when nothing is received for this long.
pub const HOLD_MS: u32 = 3000;
/// Longest hold time a peer may announce.
pub const MAX_HOLD_MS: u32 = 3_600_000;

/// Which end of the TCP connection this side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opened the connection.
    Initiator,
    /// Accepted it.
    Acceptor,
}

impl Role {
    fn label(self) -> u8 {
        match self {
            Role::Initiator => b'I',
            Role::Acceptor => b'A',
        }
    }
    fn other(self) -> Role {
        match self {
            Role::Initiator => Role::Acceptor,
            Role::Acceptor => Role::Initiator,
        }
    }
}

/// Why a channel went down (the model's `channel-down-reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    ConnectFailed,
    PeerClosed,
    KeepaliveTimeout,
    AuthFailure,
    ProtocolError,
    ConfigurationChange,
    LocalShutdown,
}

impl DownReason {
    /// The enum value in mldhb-rbs.
    pub fn as_str(self) -> &'static str {
        match self {
            DownReason::ConnectFailed => "connect-failed",
            DownReason::PeerClosed => "peer-closed",
            DownReason::KeepaliveTimeout => "keepalive-timeout",
            DownReason::AuthFailure => "auth-failure",
            DownReason::ProtocolError => "protocol-error",
            DownReason::ConfigurationChange => "configuration-change",
            DownReason::LocalShutdown => "local-shutdown",
        }
    }
}

/// Settings of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// The shared secret; None runs the channel unauthenticated.
    pub key: Option<Vec<u8>>,
    pub hold_ms: u32,
    pub keepalive_ms: u32,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            key: None,
            hold_ms: HOLD_MS,
            keepalive_ms: KEEPALIVE_MS,
        }
    }
}

/// Where the handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Hello sent, waiting for the peer's.
    Hello,
    /// Proof sent, waiting for the peer's.
    Auth,
    Up,
    Closed,
}

/// What the connection tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Up {
        authenticated: bool,
    },
    /// A message for the sync engine, with the sender's clock.
    Message {
        msg: Message,
        sender_now: Time,
    },
    Down(DownReason),
}

/// Frame counters of a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub frames_rx: u64,
    pub frames_tx: u64,
    pub decode_errors: u64,
    pub auth_failures: u64,
}

/// One connection's state.
#[derive(Debug)]
pub struct Connection {
    cfg: ChannelConfig,
    role: Role,
    state: State,
    nonce: [u8; 16],
    peer_nonce: Option<[u8; 16]>,
    hold_ms: u64,
    keepalive_ms: u64,
    last_rx: Time,
    last_tx: Time,
    /// Per-direction frame keys and counters, from the moment each side sent Auth.
    tx_key: Option<HmacKey>,
    rx_key: Option<HmacKey>,
    tx_count: u64,
    rx_count: u64,
    rx: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    pub counters: Counters,
}

impl Connection {
    /// A new connection that has just been established; its Hello is queued.
    pub fn new(now: Time, cfg: ChannelConfig, role: Role, nonce: [u8; 16]) -> Connection {
        let mut c = Connection {
            hold_ms: cfg.hold_ms as u64,
            keepalive_ms: cfg.keepalive_ms as u64,
            cfg,
            role,
            state: State::Hello,
            nonce,
            peer_nonce: None,
            last_rx: now,
            last_tx: now,
            tx_key: None,
            rx_key: None,
            tx_count: 0,
            rx_count: 0,
            rx: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            counters: Counters::default(),
        };
        let hello = Message::Hello {
            nonce,
            hold_ms: c.cfg.hold_ms,
            keepalive_ms: c.cfg.keepalive_ms,
            auth: c.cfg.key.is_some(),
        };
        c.push(now, &hello).expect("a hello always encodes");
        c
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// True once up with a security key.
    pub fn authenticated(&self) -> bool {
        self.state == State::Up && self.rx_key.is_some()
    }

    /// The hold time in force (the smaller of both sides' once the peer's Hello arrived).
    pub fn hold_ms(&self) -> u64 {
        self.hold_ms
    }

    /// Octets waiting to be written to the socket.
    pub fn pending(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Marks `n` pending octets as written.
    pub fn consume(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > 64 * 1024 && self.out_pos * 2 > self.out.len() {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// When `handle_timeout` must run next; None once closed.
    pub fn next_deadline(&self) -> Option<Time> {
        (self.state != State::Closed)
            .then(|| (self.last_rx + self.hold()).min(self.last_tx + self.keepalive()))
    }

    fn hold(&self) -> Duration {
        Duration::from_millis(self.hold_ms)
    }

    fn keepalive(&self) -> Duration {
        Duration::from_millis(self.keepalive_ms)
    }

    fn push(&mut self, now: Time, msg: &Message) -> Result<(), EncodeError> {
        let flags = if self.tx_key.is_some() { FLAG_MAC } else { 0 };
        // Frames carry the sender's clock in milliseconds.
        let start = packet::encode(msg, now.as_millis(), flags, &mut self.out)?;
        if let Some(k) = &self.tx_key {
            let mac = k.mac(&[&self.tx_count.to_be_bytes(), &self.out[start..]]);
            self.out.extend_from_slice(&mac);
            self.tx_count += 1;
        }
        self.counters.frames_tx += 1;
        self.last_tx = now;
        Ok(())
    }

    /// Queues a sync message; only while up (before, sync messages are not allowed and are
    /// dropped).
    pub fn send(&mut self, now: Time, msg: &Message) -> Result<(), EncodeError> {
        if self.state != State::Up {
            return Ok(());
        }
        self.push(now, msg)
    }

    /// Closes the connection, telling the peer why; the returned event is the Down.
    pub fn close(&mut self, now: Time, code: ErrorCode, reason: DownReason, text: &str) -> Event {
        if self.state != State::Closed {
            let _ = self.push(
                now,
                &Message::Error {
                    code,
                    text: text.to_string(),
                },
            );
            self.state = State::Closed;
        }
        Event::Down(reason)
    }

    /// The socket reached end of file or failed.
    pub fn closed_by_peer(&mut self) -> Option<Event> {
        if self.state == State::Closed {
            return None;
        }
        self.state = State::Closed;
        Some(Event::Down(DownReason::PeerClosed))
    }

    /// Runs the timers: keepalive to send, hold time expired.
    pub fn handle_timeout(&mut self, now: Time) -> Vec<Event> {
        if self.state == State::Closed {
            return Vec::new();
        }
        if now >= self.last_rx + self.hold() {
            self.state = State::Closed;
            return vec![Event::Down(DownReason::KeepaliveTimeout)];
        }
        // Keepalives only once up: before that, the handshake has one hold time to complete.
        if self.state == State::Up && now >= self.last_tx + self.keepalive() {
            let _ = self.push(now, &Message::Keepalive);
        }
        Vec::new()
    }

    /// Takes octets read from the socket; complete frames are decoded and acted on.
    pub fn handle_bytes(&mut self, now: Time, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        if self.state == State::Closed {
            return events;
        }
        self.rx.extend_from_slice(bytes);
        let mut pos = 0;
        while self.state != State::Closed {
            // Everything about the frame is read first; acting on it needs `self` mutably.
            let (len, mac_ok, sender_now, decoded) = {
                let frame = match packet::split_frame(&self.rx[pos..]) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        self.counters.decode_errors += 1;
                        events.push(self.refuse_undecodable(now, &e));
                        break;
                    }
                };
                // The MAC is checked before anything else of the frame is believed.
                let mac_ok = match (&self.rx_key, frame.mac) {
                    (Some(k), Some(mac)) => {
                        Some(k.verify(&[&self.rx_count.to_be_bytes(), frame.signed], mac))
                    }
                    (Some(_), None) => Some(false),
                    (None, Some(_)) => None,
                    (None, None) => Some(true),
                };
                (
                    frame.header.frame_len(),
                    mac_ok,
                    Time::from_millis(frame.header.sender_now),
                    packet::decode_body(frame.header.kind, frame.body),
                )
            };
            self.counters.frames_rx += 1;
            self.last_rx = now;
            match mac_ok {
                Some(true) => {}
                Some(false) => {
                    self.counters.auth_failures += 1;
                    events.push(self.close(
                        now,
                        ErrorCode::AuthFailure,
                        DownReason::AuthFailure,
                        "frame MAC missing or wrong",
                    ));
                    break;
                }
                None => {
                    self.counters.decode_errors += 1;
                    events.push(self.close(
                        now,
                        ErrorCode::Protocol,
                        DownReason::ProtocolError,
                        "MAC on a frame before authentication",
                    ));
                    break;
                }
            }
            if self.rx_key.is_some() {
                self.rx_count += 1;
            }
            let msg = match decoded {
                Ok(m) => m,
                Err(e) => {
                    self.counters.decode_errors += 1;
                    events.push(self.refuse_undecodable(now, &e));
                    break;
                }
            };
            pos += len;
            self.on_message(now, msg, sender_now, &mut events);
        }
        if self.state == State::Closed {
            self.rx.clear();
        } else {
            self.rx.drain(..pos);
        }
        events
    }

    fn refuse_undecodable(&mut self, now: Time, e: &DecodeError) -> Event {
        let code = match e {
            DecodeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            _ => ErrorCode::Protocol,
        };
        self.close(now, code, DownReason::ProtocolError, &e.to_string())
    }

    fn protocol_error(&mut self, now: Time, text: &str, events: &mut Vec<Event>) {
        events.push(self.close(now, ErrorCode::Protocol, DownReason::ProtocolError, text));
    }

    fn on_message(&mut self, now: Time, msg: Message, sender_now: Time, events: &mut Vec<Event>) {
        match (self.state, msg) {
            (_, Message::Error { code, text }) => {
                tracing::warn!(?code, %text, "peer closed the channel with an error");
                let reason = match code {
                    ErrorCode::AuthFailure | ErrorCode::AuthMismatch => {
                        self.counters.auth_failures += 1;
                        DownReason::AuthFailure
                    }
                    ErrorCode::Shutdown => DownReason::PeerClosed,
                    _ => DownReason::ProtocolError,
                };
                self.state = State::Closed;
                events.push(Event::Down(reason));
            }
            (
                State::Hello,
                Message::Hello {
                    nonce,
                    hold_ms,
                    keepalive_ms,
                    auth,
                },
            ) => {
                if hold_ms == 0 || hold_ms > MAX_HOLD_MS || keepalive_ms == 0 {
                    return self.protocol_error(now, "hold or keepalive time out of range", events);
                }
                if nonce == self.nonce {
                    return self.protocol_error(now, "the peer echoed this side's nonce", events);
                }
                self.hold_ms = self.hold_ms.min(hold_ms as u64);
                self.keepalive_ms = self.keepalive_ms.min((self.hold_ms / 3).max(1));
                self.peer_nonce = Some(nonce);
                match (&self.cfg.key, auth) {
                    (None, false) => {
                        tracing::warn!("channel up without a security key: unauthenticated");
                        self.state = State::Up;
                        events.push(Event::Up {
                            authenticated: false,
                        });
                    }
                    (Some(k), true) => {
                        let k = k.clone();
                        let proof = self.proof(&k, self.role, &self.nonce, &nonce);
                        let _ = self.push(now, &Message::Auth { mac: proof });
                        self.tx_key = Some(HmacKey::new(&self.frame_key(
                            &k,
                            self.role,
                            &self.nonce,
                            &nonce,
                        )));
                        self.state = State::Auth;
                    }
                    (mine, _) => {
                        self.counters.auth_failures += 1;
                        let text = if mine.is_some() {
                            "this side requires a security key; the peer has none"
                        } else {
                            "the peer requires a security key; this side has none"
                        };
                        events.push(self.close(
                            now,
                            ErrorCode::AuthMismatch,
                            DownReason::AuthFailure,
                            text,
                        ));
                    }
                }
            }
            (State::Auth, Message::Auth { mac }) => {
                let (Some(k), Some(pn)) = (self.cfg.key.clone(), self.peer_nonce) else {
                    return self.protocol_error(now, "unexpected Auth", events);
                };
                let proof = self.proof(&k, self.role.other(), &pn, &self.nonce);
                if !constant_time_eq(&proof, &mac) {
                    self.counters.auth_failures += 1;
                    events.push(self.close(
                        now,
                        ErrorCode::AuthFailure,
                        DownReason::AuthFailure,
                        "wrong proof of the security key",
                    ));
                    return;
                }
                self.rx_key = Some(HmacKey::new(&self.frame_key(
                    &k,
                    self.role.other(),
                    &pn,
                    &self.nonce,
                )));
                self.state = State::Up;
                events.push(Event::Up {
                    authenticated: true,
                });
            }
            (State::Up, Message::Keepalive) => {}
            (State::Up, Message::Hello { .. } | Message::Auth { .. }) => {
                self.protocol_error(now, "handshake message after the handshake", events)
            }
            (State::Up, msg) => events.push(Event::Message { msg, sender_now }),
            // Nothing but the handshake before it completes: a keepalive from a side without
            // the key must not keep its connection open.
            (State::Hello | State::Auth, _) => {
                self.protocol_error(now, "message before the handshake completed", events)
            }
            (State::Closed, _) => {}
        }
    }

    fn proof(&self, key: &[u8], role: Role, a: &[u8; 16], b: &[u8; 16]) -> [u8; 32] {
        hmac_sha256(key, &[b"mldhb-rbs auth", &[role.label()], a, b])
    }

    fn frame_key(&self, key: &[u8], role: Role, a: &[u8; 16], b: &[u8; 16]) -> [u8; 32] {
        hmac_sha256(key, &[b"mldhb-rbs frames", &[role.label()], a, b])
    }
}

/// Octets a MAC adds to each frame once authenticated.
pub const MAC_OVERHEAD: usize = MAC_LEN;

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Time {
        Time::from_millis(ms)
    }

    fn cfg(key: Option<&str>) -> ChannelConfig {
        ChannelConfig {
            key: key.map(|k| k.as_bytes().to_vec()),
            ..Default::default()
        }
    }

    /// Moves every pending octet both ways until nothing moves; returns the events per side.
    fn exchange(now: Time, a: &mut Connection, b: &mut Connection) -> (Vec<Event>, Vec<Event>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        loop {
            let (pa, pb) = (a.pending().to_vec(), b.pending().to_vec());
            if pa.is_empty() && pb.is_empty() {
                return (ea, eb);
            }
            a.consume(pa.len());
            b.consume(pb.len());
            eb.extend(b.handle_bytes(now, &pa));
            ea.extend(a.handle_bytes(now, &pb));
        }
    }

    fn pair(ka: Option<&str>, kb: Option<&str>) -> (Connection, Connection) {
        (
            Connection::new(Time::ZERO, cfg(ka), Role::Initiator, [1; 16]),
            Connection::new(Time::ZERO, cfg(kb), Role::Acceptor, [2; 16]),
        )
    }

    #[test]
    fn same_key_authenticates_and_frames_carry_macs() {
        let (mut a, mut b) = pair(Some("k"), Some("k"));
        let (ea, eb) = exchange(Time::ZERO, &mut a, &mut b);
        assert_eq!(
            ea,
            vec![Event::Up {
                authenticated: true
            }]
        );
        assert_eq!(
            eb,
            vec![Event::Up {
                authenticated: true
            }]
        );
        assert!(a.authenticated() && b.authenticated());
        a.send(
            ms(5),
            &Message::Resync {
                backup_id: 1,
                reason: packet::ResyncReason::Gap,
            },
        )
        .unwrap();
        assert_eq!(a.pending().len(), packet::HEADER_LEN + 3 + MAC_LEN);
        let (_, eb) = exchange(ms(5), &mut a, &mut b);
        assert_eq!(
            eb,
            vec![Event::Message {
                msg: Message::Resync {
                    backup_id: 1,
                    reason: packet::ResyncReason::Gap
                },
                sender_now: ms(5)
            }]
        );
    }

    #[test]
    fn nothing_but_the_handshake_is_accepted_before_it_completes() {
        // A peer that sends a hello and then only keepalives, never the proof of the key.
        let (mut a, mut b) = pair(Some("k"), Some("k"));
        let hello = a.pending().to_vec();
        a.consume(hello.len());
        assert!(b.handle_bytes(ms(1), &hello).is_empty());
        let mut keepalive = Vec::new();
        packet::encode(&Message::Keepalive, 2, 0, &mut keepalive).unwrap();
        let ev = b.handle_bytes(ms(2), &keepalive);
        assert_eq!(ev, vec![Event::Down(DownReason::ProtocolError)]);
        // Silence instead: closed after one hold time, and no keepalive was sent meanwhile.
        let (_, mut c) = pair(Some("k"), Some("k"));
        let sent = c.pending().len();
        let hold = c.hold().as_millis() as u64;
        assert!(c.handle_timeout(ms(hold - 1)).is_empty());
        assert_eq!(c.pending().len(), sent, "a keepalive before the handshake");
        assert_eq!(
            c.handle_timeout(ms(hold)),
            vec![Event::Down(DownReason::KeepaliveTimeout)]
        );
    }

    #[test]
    fn wrong_key_is_refused_and_counted_on_both_sides() {
        let (mut a, mut b) = pair(Some("k1"), Some("k2"));
        let (ea, eb) = exchange(Time::ZERO, &mut a, &mut b);
        assert!(ea.contains(&Event::Down(DownReason::AuthFailure)), "{ea:?}");
        assert!(eb.contains(&Event::Down(DownReason::AuthFailure)), "{eb:?}");
        assert!(!ea.iter().any(|e| matches!(e, Event::Up { .. })));
        assert!(a.counters.auth_failures >= 1 && b.counters.auth_failures >= 1);
        assert_eq!((a.state(), b.state()), (State::Closed, State::Closed));
    }

    #[test]
    fn key_on_one_side_only_is_an_auth_failure() {
        for (ka, kb) in [(Some("k"), None), (None, Some("k"))] {
            let (mut a, mut b) = pair(ka, kb);
            let (ea, eb) = exchange(Time::ZERO, &mut a, &mut b);
            assert_eq!(ea, vec![Event::Down(DownReason::AuthFailure)]);
            assert_eq!(eb, vec![Event::Down(DownReason::AuthFailure)]);
            assert_eq!(a.counters.auth_failures, 1);
        }
    }

    #[test]
    fn no_key_runs_unauthenticated() {
        let (mut a, mut b) = pair(None, None);
        let (ea, _) = exchange(Time::ZERO, &mut a, &mut b);
        assert_eq!(
            ea,
            vec![Event::Up {
                authenticated: false
            }]
        );
        assert!(!a.authenticated());
    }

    #[test]
    fn tampered_and_replayed_frames_are_refused() {
        let (mut a, mut b) = pair(Some("k"), Some("k"));
        exchange(Time::ZERO, &mut a, &mut b);
        a.send(
            ms(1),
            &Message::Profiles {
                backup_ids: vec![3],
            },
        )
        .unwrap();
        let frame = a.pending().to_vec();
        a.consume(frame.len());
        let mut bad = frame.clone();
        bad[packet::HEADER_LEN + 3] ^= 1;
        let mut b2 = {
            let (mut a2, mut b2) = pair(Some("k"), Some("k"));
            exchange(Time::ZERO, &mut a2, &mut b2);
            b2
        };
        assert_eq!(
            b2.handle_bytes(ms(1), &bad),
            vec![Event::Down(DownReason::AuthFailure)]
        );
        // The genuine frame passes once; the same octets again (a replay) do not.
        assert_eq!(b.handle_bytes(ms(1), &frame).len(), 1);
        assert_eq!(
            b.handle_bytes(ms(1), &frame),
            vec![Event::Down(DownReason::AuthFailure)]
        );
        assert_eq!(b.counters.auth_failures, 1);
    }

    #[test]
    fn hold_timer_fires_exactly_at_hold_time_and_keepalives_keep_it_up() {
        let (mut a, mut b) = pair(None, None);
        exchange(Time::ZERO, &mut a, &mut b);
        assert_eq!(a.hold_ms(), HOLD_MS as u64);
        // a keeps sending keepalives but b's are lost: a's hold runs from the last receipt.
        let hold = ms(HOLD_MS as u64);
        let mut now = Time::ZERO;
        while now < hold - Duration::from_millis(1) {
            now = a
                .next_deadline()
                .unwrap()
                .min(hold - Duration::from_millis(1));
            assert!(a.handle_timeout(now).is_empty(), "down early at {now:?}");
            let pa = a.pending().to_vec();
            a.consume(pa.len());
            assert!(b.handle_bytes(now, &pa).is_empty());
            b.handle_timeout(now);
            let pb = b.pending().len();
            b.consume(pb);
        }
        assert_eq!(a.next_deadline(), Some(hold));
        assert_eq!(
            a.handle_timeout(hold),
            vec![Event::Down(DownReason::KeepaliveTimeout)]
        );
        // b heard a's keepalives all along and is still up.
        assert!(b.handle_timeout(hold).is_empty());
        assert_eq!(b.state(), State::Up);
    }

    #[test]
    fn smaller_hold_time_wins() {
        let mut a = Connection::new(
            Time::ZERO,
            ChannelConfig {
                hold_ms: 900,
                ..cfg(None)
            },
            Role::Initiator,
            [1; 16],
        );
        let mut b = Connection::new(Time::ZERO, cfg(None), Role::Acceptor, [2; 16]);
        exchange(Time::ZERO, &mut a, &mut b);
        assert_eq!((a.hold_ms(), b.hold_ms()), (900, 900));
        assert_eq!(b.next_deadline(), Some(ms(300)));
    }

    #[test]
    fn garbage_and_early_messages_close_with_protocol_error() {
        let (mut a, _) = pair(None, None);
        assert_eq!(
            a.handle_bytes(Time::ZERO, &[7, 0, 0]),
            vec![Event::Down(DownReason::ProtocolError)]
        );
        assert_eq!(a.counters.decode_errors, 1);
        let (mut a, _) = pair(None, None);
        let early = packet::to_bytes(
            &Message::Profiles {
                backup_ids: vec![1],
            },
            0,
        )
        .unwrap();
        assert_eq!(
            a.handle_bytes(Time::ZERO, &early),
            vec![Event::Down(DownReason::ProtocolError)]
        );
        // The refusal is told to the peer.
        let sent = a.pending().to_vec();
        let f = packet::split_frame(&sent[packet::HEADER_LEN + 25..])
            .unwrap()
            .unwrap();
        assert!(matches!(
            packet::decode_body(f.header.kind, f.body),
            Ok(Message::Error {
                code: ErrorCode::Protocol,
                ..
            })
        ));
    }

    #[test]
    fn byte_at_a_time_delivery_works() {
        let (mut a, mut b) = pair(Some("k"), Some("k"));
        let mut ups = 0;
        for _ in 0..4 {
            let pa = a.pending().to_vec();
            a.consume(pa.len());
            for byte in pa {
                ups += b.handle_bytes(Time::ZERO, &[byte]).len();
            }
            let pb = b.pending().to_vec();
            b.consume(pb.len());
            for byte in pb {
                ups += a.handle_bytes(Time::ZERO, &[byte]).len();
            }
        }
        assert_eq!(ups, 2);
        assert!(a.authenticated() && b.authenticated());
    }
}
