//! The two-device lab: two agents, a receiver host and a multicast source on this machine.

pub mod scenario;
pub mod traffic;
