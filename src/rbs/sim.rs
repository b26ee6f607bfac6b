//! Two service nodes back to back on a simulated clock and a simulated TCP connection, for
//! deterministic two-device tests (of RBS here, and of the hot-backup controller on top).

use super::api::{BackupId, SyncCommand, SyncEvent};
use super::channel::{ChannelConfig, Role};
use super::node::{Input, Output, ServiceNode};
use super::sync::{self, SyncError};
use crate::time::Time;
use std::time::Duration;

/// Octets a node may have pending before the engine stops filling its connection.
pub const HIGH_WATER: usize = 256 * 1024;

/// One of the two devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// Two nodes and the wire between them. `a` connects, `b` accepts.
#[derive(Debug)]
pub struct Pair {
    pub a: ServiceNode,
    pub b: ServiceNode,
    pub now: Time,
    /// Outputs of each side not yet taken.
    pub a_out: Vec<Output>,
    pub b_out: Vec<Output>,
    connected: bool,
    /// At most this many octets cross each way per step (None: everything pending).
    pub segment: Option<usize>,
    nonces: u8,
}

impl Pair {
    pub fn new(a: ChannelConfig, b: ChannelConfig) -> Pair {
        Pair {
            a: ServiceNode::new(a),
            b: ServiceNode::new(b),
            now: Time::ZERO,
            a_out: Vec::new(),
            b_out: Vec::new(),
            connected: false,
            segment: None,
            nonces: 0,
        }
    }

    fn node(&mut self, side: Side) -> (&mut ServiceNode, &mut Vec<Output>) {
        match side {
            Side::A => (&mut self.a, &mut self.a_out),
            Side::B => (&mut self.b, &mut self.b_out),
        }
    }

    /// Opens the simulated TCP connection.
    pub fn connect(&mut self) {
        self.nonces = self.nonces.wrapping_add(2);
        let (na, nb) = ([self.nonces; 16], [self.nonces.wrapping_add(1); 16]);
        let now = self.now;
        let o = self.a.handle(
            now,
            Input::Connected {
                role: Role::Initiator,
                nonce: na,
            },
        );
        self.a_out.extend(o);
        let o = self.b.handle(
            now,
            Input::Connected {
                role: Role::Acceptor,
                nonce: nb,
            },
        );
        self.b_out.extend(o);
        self.connected = true;
    }

    /// Breaks the connection without a goodbye (both sockets see a reset).
    pub fn disconnect(&mut self) {
        let now = self.now;
        let o = self.a.handle(now, Input::Closed);
        self.a_out.extend(o);
        let o = self.b.handle(now, Input::Closed);
        self.b_out.extend(o);
        self.connected = false;
    }

    /// An owner's input on one side.
    pub fn local(&mut self, side: Side, input: sync::Input) -> Result<(), SyncError> {
        let (n, out) = self.node(side);
        out.extend(n.local(input)?);
        Ok(())
    }

    pub fn register(&mut self, side: Side, id: BackupId) {
        self.local(side, sync::Input::Register(id))
            .expect("registration");
    }

    pub fn command(&mut self, side: Side, cmd: SyncCommand) {
        self.local(side, sync::Input::Command(cmd))
            .expect("command");
    }

    /// Owner events of one side so far, taken.
    pub fn events(&mut self, side: Side) -> Vec<(BackupId, SyncEvent)> {
        let (_, out) = self.node(side);
        let mut ev = Vec::new();
        out.retain(|o| match o {
            Output::Event(id, e) => {
                ev.push((*id, e.clone()));
                false
            }
            _ => true,
        });
        ev
    }

    /// Channel outputs (up, down, batch complete) of one side so far, taken.
    pub fn outputs(&mut self, side: Side) -> Vec<Output> {
        let (_, out) = self.node(side);
        let mut kept = Vec::new();
        out.retain(|o| {
            if matches!(o, Output::Event(..)) {
                true
            } else {
                kept.push(o.clone());
                false
            }
        });
        kept
    }

    /// Moves one segment each way; true when something moved.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        for from in [Side::A, Side::B] {
            let limit = self.segment.unwrap_or(usize::MAX);
            let (n, _) = self.node(from);
            n.transmit(now, HIGH_WATER);
            let mut bytes = n.take_farewell();
            let p = n.pending();
            let take = p.len().min(limit);
            bytes.extend_from_slice(&p[..take]);
            n.consume(take);
            if bytes.is_empty() || !self.connected {
                continue;
            }
            moved = true;
            let to = if from == Side::A { Side::B } else { Side::A };
            let (m, out) = self.node(to);
            let o = m.handle(now, Input::Bytes(&bytes));
            out.extend(o);
        }
        moved
    }

    /// Steps until nothing moves.
    pub fn drive(&mut self) {
        while self.step() {}
    }

    /// Moves the clock forward by `by`, running every deadline on the way and delivering
    /// what each produces.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            self.drive();
            let next = [self.a.next_deadline(), self.b.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = t.max(self.now);
                    let now = self.now;
                    let o = self.a.handle(now, Input::Timeout);
                    self.a_out.extend(o);
                    let o = self.b.handle(now, Input::Timeout);
                    self.b_out.extend(o);
                }
                _ => break,
            }
        }
        self.now = end;
        self.drive();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbs::channel::{DownReason, HOLD_MS};
    use crate::rbs::node::ChannelState;

    fn keyed(k: &str) -> ChannelConfig {
        ChannelConfig {
            key: Some(k.as_bytes().to_vec()),
            ..Default::default()
        }
    }

    fn up(id: BackupId, n: usize) -> Pair {
        let mut p = Pair::new(keyed("secret"), keyed("secret"));
        p.register(Side::A, id);
        p.register(Side::B, id);
        for i in 0..n {
            p.command(
                Side::A,
                SyncCommand::Upsert {
                    backup_id: id,
                    key: format!("g{i:06}").into_bytes(),
                    value: (i as u64 * 1000).to_be_bytes().to_vec(),
                },
            );
        }
        p.connect();
        p
    }

    #[test]
    fn two_nodes_authenticate_and_sync_a_batch_over_the_wire() {
        let mut p = up(7, 20_000);
        p.segment = Some(1500);
        p.drive();
        assert_eq!(p.a.state(), ChannelState::Up);
        assert!(p.a.authenticated() && p.b.authenticated());
        let out = p.outputs(Side::B);
        assert!(out.contains(&Output::Up {
            authenticated: true
        }));
        assert!(out.contains(&Output::BatchComplete {
            backup_id: 7,
            entries: 20_000
        }));
        assert_eq!(p.b.engine.peer(7).unwrap().len(), 20_000);
        assert!(p.a.engine.status(7).unwrap().peer_in_sync);
        let c = p.a.counters();
        assert!(c.frames_tx > 5 && c.auth_failures == 0);
        // Real-time changes follow in order.
        p.command(
            Side::A,
            SyncCommand::Remove {
                backup_id: 7,
                key: b"g000003".to_vec(),
            },
        );
        p.events(Side::B);
        p.drive();
        assert_eq!(
            p.events(Side::B),
            vec![(
                7,
                SyncEvent::Remove {
                    key: b"g000003".to_vec()
                }
            )]
        );
    }

    #[test]
    fn silent_peer_is_dropped_at_hold_time_and_reconnect_resyncs() {
        let mut p = up(1, 10);
        p.drive();
        assert_eq!(p.b.state(), ChannelState::Up);
        // The wire goes silent (a cable pulled): nothing crosses, no reset is seen.
        p.connected = false;
        let t0 = p.now;
        p.advance(Duration::from_millis(HOLD_MS as u64 - 1));
        assert_eq!(p.a.state(), ChannelState::Up);
        p.advance(Duration::from_millis(1));
        assert_eq!(p.now, t0 + Duration::from_millis(HOLD_MS as u64));
        assert_eq!(p.a.state(), ChannelState::Down);
        assert_eq!(p.b.state(), ChannelState::Down);
        assert_eq!(p.a.last_down_reason(), Some(DownReason::KeepaliveTimeout));
        assert!(p.outputs(Side::A).contains(&Output::Down {
            reason: DownReason::KeepaliveTimeout,
            was_up: true
        }));
        assert!(p.events(Side::B).contains(&(1, SyncEvent::ChannelDown)));
        // b keeps the backup entries; a changes while down, then the link heals.
        assert_eq!(p.b.engine.peer(1).unwrap().len(), 10);
        p.command(
            Side::A,
            SyncCommand::Remove {
                backup_id: 1,
                key: b"g000000".to_vec(),
            },
        );
        p.connect();
        p.drive();
        assert_eq!(p.b.engine.peer(1).unwrap().len(), 9);
        let ev = p.events(Side::B);
        assert!(ev.contains(&(
            1,
            SyncEvent::Remove {
                key: b"g000000".to_vec()
            }
        )));
        assert_eq!(ev.last(), Some(&(1, SyncEvent::BatchComplete)));
    }

    #[test]
    fn one_sided_key_keeps_the_channel_down() {
        let mut p = Pair::new(keyed("secret"), ChannelConfig::default());
        p.register(Side::A, 1);
        p.register(Side::B, 1);
        p.connect();
        p.drive();
        assert_eq!(p.a.state(), ChannelState::Down);
        assert_eq!(p.b.last_down_reason(), Some(DownReason::AuthFailure));
        assert_eq!(p.a.counters().auth_failures, 1);
        assert_eq!(p.b.counters().auth_failures, 1);
        assert!(!p.events(Side::A).contains(&(1, SyncEvent::ChannelUp)));
    }

    #[test]
    fn reset_mid_batch_then_reconnect_converges() {
        let mut p = up(2, 30_000);
        p.segment = Some(64 * 1024);
        for _ in 0..4 {
            p.step();
        }
        assert_eq!(
            p.b.engine.status(2).unwrap().batch,
            crate::rbs::sync::BatchState::InProgress
        );
        p.disconnect();
        for i in 0..5000 {
            p.command(
                Side::A,
                SyncCommand::Remove {
                    backup_id: 2,
                    key: format!("g{i:06}").into_bytes(),
                },
            );
        }
        p.connect();
        p.drive();
        let peer = p.b.engine.peer(2).unwrap();
        assert_eq!(peer.len(), 25_000);
        let local = p.a.engine.local(2).unwrap();
        assert!(local.iter().all(|(k, v)| peer.holds(k, v)));
    }
}
