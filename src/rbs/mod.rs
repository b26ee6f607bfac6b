//! Remote backup service: the TCP channel between the two devices and the sync of keyed
//! records per backup-id that the hot-backup controller fills and reads.

pub mod api;
pub mod channel;
pub mod node;
pub mod packet;
pub mod sim;
pub mod sync;
