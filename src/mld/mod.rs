//! MLD router side (RFC 2710, RFC 3810): packet codec, the per-interface state
//! machine, receive rules, the model mapping and the driver that runs it on the raw socket.

pub mod events;
pub mod instance;
pub mod network;
pub mod northbound;
pub mod packet;
pub mod tasks;
