//! LACP (IEEE 802.1AX) for the agent's own Eth-Trunks: the LACPDU codec and the sans-IO actor
//! of one member port.

pub mod actor;
pub mod packet;
