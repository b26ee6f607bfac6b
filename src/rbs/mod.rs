//! Remote backup service: the TCP channel between the two devices and the sync of keyed
//! records per backup-id that the hot-backup controller fills and reads.
//!
//! Layers: `packet` (frames), `channel` (one connection: handshake, authentication,
//! keepalive), `sync` (tables, batch, deltas), `node` (both across connections), `sim` (two
//! nodes back to back on a simulated clock), `tasks` (the tokio driver and the owners'
//! handle), `northbound` (configuration and state). The wire protocol is written down in
//! `docs/rbs-protocol.md`.

pub mod api;
pub mod channel;
pub mod node;
pub mod northbound;
pub mod packet;
pub mod sim;
pub mod sync;
pub mod tasks;

pub use tasks::{Clock, CommandSender, Owner, RbsError, RbsHandle};
