//! VRRPv3 for IPv6 (RFC 9568): packet codec, the per-router state machine, the node that runs
//! every virtual router of the agent, the ietf-vrrp model mapping and the Linux driver.

pub mod events;
pub mod instance;
pub mod northbound;
pub mod packet;
pub mod tasks;

#[cfg(test)]
mod tests;
