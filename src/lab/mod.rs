//! The two-device lab: two agents, a receiver host and a multicast source on this machine.

pub mod control;
pub mod ovs;
pub mod procs;
pub mod scenario;
pub mod status;
pub mod topology;
pub mod traffic;
