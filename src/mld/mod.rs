//! MLD router side (RFC 2710, RFC 3810): packet codec; the state machine and drivers build on it.

pub mod instance;
pub mod northbound;
pub mod packet;
