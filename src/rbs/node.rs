//! One service's sans-IO state across connections: the current connection and the sync
//! engine, the channel state shown in displays, and counters kept across connections. The
//! tokio driver and the simulated pair both drive this.

use super::api::{BackupId, SyncEvent};
use super::channel::{self, ChannelConfig, Connection, Counters, DownReason, Role};
use super::packet::ErrorCode;
use super::sync::{self, Engine, SyncError};
use crate::time::Time;

/// The model's `channel-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    Down,
    Connecting,
    Authenticating,
    Up,
}

impl ChannelState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Down => "down",
            ChannelState::Connecting => "connecting",
            ChannelState::Authenticating => "authenticating",
            ChannelState::Up => "up",
        }
    }
}

/// What the driver hands the node about the socket and time.
#[derive(Debug)]
pub enum Input<'a> {
    /// A connect attempt started, or the listener waits for the peer.
    Connecting,
    /// A TCP connection to the peer is established.
    Connected { role: Role, nonce: [u8; 16] },
    /// Octets read from the socket.
    Bytes(&'a [u8]),
    /// The socket reached end of file or failed.
    Closed,
    /// A connect attempt failed.
    ConnectFailed,
    /// A deadline passed.
    Timeout,
    /// This side closes the connection (reconfigured, removed, stopping).
    Shutdown(DownReason),
}

/// What the node tells the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// For the owner of a backup-id.
    Event(BackupId, SyncEvent),
    Up {
        authenticated: bool,
    },
    /// The connection is gone: the driver drops the socket after writing
    /// [`ServiceNode::take_farewell`]. `was_up` tells whether the channel had come up.
    Down {
        reason: DownReason,
        was_up: bool,
    },
    /// The peer's table of a backup-id arrived completely and matched its digest.
    BatchComplete {
        backup_id: BackupId,
        entries: u32,
    },
}

/// The node of one service.
#[derive(Debug)]
pub struct ServiceNode {
    cfg: ChannelConfig,
    conn: Option<Connection>,
    pub engine: Engine,
    state: ChannelState,
    authenticated: bool,
    last_reason: Option<DownReason>,
    /// Counters of connections that are gone.
    past: Counters,
    /// Refusals before a connection exists (unknown peers).
    refused: u64,
    farewell: Vec<u8>,
}

impl ServiceNode {
    pub fn new(cfg: ChannelConfig) -> ServiceNode {
        ServiceNode {
            cfg,
            conn: None,
            engine: Engine::new(),
            state: ChannelState::Down,
            authenticated: false,
            last_reason: None,
            past: Counters::default(),
            refused: 0,
            farewell: Vec::new(),
        }
    }

    pub fn config(&self) -> &ChannelConfig {
        &self.cfg
    }

    /// Takes new settings; they apply from the next connection.
    pub fn set_config(&mut self, cfg: ChannelConfig) {
        self.cfg = cfg;
    }

    pub fn state(&self) -> ChannelState {
        self.state
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    pub fn last_down_reason(&self) -> Option<DownReason> {
        self.last_reason
    }

    /// Counters over every connection so far, the current one included.
    pub fn counters(&self) -> Counters {
        let mut c = self.past;
        if let Some(conn) = &self.conn {
            c.frames_rx += conn.counters.frames_rx;
            c.frames_tx += conn.counters.frames_tx;
            c.decode_errors += conn.counters.decode_errors;
            c.auth_failures += conn.counters.auth_failures;
        }
        c.auth_failures += self.refused;
        c
    }

    /// Counts a connection refused before the protocol started (an unknown peer address).
    pub fn refuse_unknown_peer(&mut self) {
        self.refused += 1;
    }

    pub fn next_deadline(&self) -> Option<Time> {
        self.conn.as_ref().and_then(Connection::next_deadline)
    }

    /// Octets to write to the socket.
    pub fn pending(&self) -> &[u8] {
        self.conn.as_ref().map_or(&[], |c| c.pending())
    }

    pub fn consume(&mut self, n: usize) {
        if let Some(c) = &mut self.conn {
            c.consume(n);
        }
    }

    /// The last octets of a connection that went down (its error frame), to write before
    /// closing the socket.
    pub fn take_farewell(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.farewell)
    }

    /// Moves sync messages into the connection until `high_water` octets are pending.
    pub fn transmit(&mut self, now: Time, high_water: usize) {
        let Some(conn) = &mut self.conn else {
            return;
        };
        if conn.state() != channel::State::Up {
            return;
        }
        while conn.pending().len() < high_water {
            let Some(msg) = self.engine.poll_message() else {
                break;
            };
            if let Err(e) = conn.send(now, &msg) {
                tracing::error!(error = %e, "sync message could not be encoded");
            }
        }
    }

    /// An owner's input: a record change or a registration.
    pub fn local(&mut self, input: sync::Input) -> Result<Vec<Output>, SyncError> {
        let ev = self.engine.handle(input)?;
        Ok(self.wrap(ev))
    }

    fn wrap(&self, ev: sync::Events) -> Vec<Output> {
        let mut out = Vec::with_capacity(ev.len());
        for (id, e) in ev {
            let done = e == SyncEvent::BatchComplete;
            out.push(Output::Event(id, e));
            if done {
                let entries = self.engine.status(id).map_or(0, |s| s.last_batch_entries);
                out.push(Output::BatchComplete {
                    backup_id: id,
                    entries,
                });
            }
        }
        out
    }

    /// Acts on a socket or timer input.
    pub fn handle(&mut self, now: Time, input: Input<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        let events = match input {
            Input::Connecting => {
                if self.conn.is_none() {
                    self.state = ChannelState::Connecting;
                }
                return out;
            }
            Input::ConnectFailed => {
                if self.conn.is_none() {
                    self.state = ChannelState::Down;
                    // Why the last connection ended says more than the retries after it.
                    if self.last_reason.is_none() {
                        self.last_reason = Some(DownReason::ConnectFailed);
                    }
                }
                return out;
            }
            Input::Connected { role, nonce } => {
                if let Some(c) = &mut self.conn {
                    // A new connection replaces the old one (the peer restarted).
                    let ev = c.closed_by_peer().into_iter().collect();
                    self.conn_events(now, ev, &mut out);
                }
                self.farewell.clear();
                self.conn = Some(Connection::new(now, self.cfg.clone(), role, nonce));
                self.state = ChannelState::Authenticating;
                return out;
            }
            Input::Bytes(b) => match &mut self.conn {
                Some(c) => c.handle_bytes(now, b),
                None => return out,
            },
            Input::Closed => match &mut self.conn {
                Some(c) => c.closed_by_peer().into_iter().collect(),
                None => return out,
            },
            Input::Timeout => match &mut self.conn {
                Some(c) => c.handle_timeout(now),
                None => return out,
            },
            Input::Shutdown(reason) => match &mut self.conn {
                Some(c) => vec![c.close(now, ErrorCode::Shutdown, reason, reason.as_str())],
                None => {
                    self.state = ChannelState::Down;
                    return out;
                }
            },
        };
        self.conn_events(now, events, &mut out);
        out
    }

    fn conn_events(&mut self, _now: Time, events: Vec<channel::Event>, out: &mut Vec<Output>) {
        for e in events {
            match e {
                channel::Event::Up { authenticated } => {
                    self.state = ChannelState::Up;
                    self.authenticated = authenticated;
                    out.push(Output::Up { authenticated });
                    let ev = self
                        .engine
                        .handle(sync::Input::ChannelUp)
                        .unwrap_or_default();
                    out.extend(self.wrap(ev));
                }
                channel::Event::Message { msg, sender_now } => {
                    let ev = self
                        .engine
                        .handle(sync::Input::Message { msg, sender_now })
                        .unwrap_or_default();
                    out.extend(self.wrap(ev));
                }
                channel::Event::Down(reason) => {
                    let was_up = self.state == ChannelState::Up;
                    if let Some(c) = self.conn.take() {
                        self.farewell = c.pending().to_vec();
                        self.past.frames_rx += c.counters.frames_rx;
                        self.past.frames_tx += c.counters.frames_tx;
                        self.past.decode_errors += c.counters.decode_errors;
                        self.past.auth_failures += c.counters.auth_failures;
                    }
                    self.state = ChannelState::Down;
                    self.authenticated = false;
                    self.last_reason = Some(reason);
                    out.push(Output::Down { reason, was_up });
                    if was_up {
                        let ev = self
                            .engine
                            .handle(sync::Input::ChannelDown)
                            .unwrap_or_default();
                        out.extend(self.wrap(ev));
                    }
                    // Events after a Down belong to a connection that is gone.
                    break;
                }
            }
        }
    }
}
