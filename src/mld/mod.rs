//! MLD router side (RFC 2710, RFC 3810): packet codec, the per-interface state
//! machine, receive rules, the load-balance split, the interface for whatever steers the
//! routers from outside, the model mapping and the driver that runs it on the raw socket.

pub mod balance;
pub mod coordinator;
pub mod events;
pub mod instance;
pub mod network;
pub mod northbound;
pub mod packet;
pub mod tasks;
