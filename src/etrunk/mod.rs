//! E-Trunk and Eth-Trunk: the inter-chassis hello protocol (docs/etrunk-protocol.md), its
//! election, the Eth-Trunks whose LACP members follow it, the mldhb-etrunk model mapping and
//! the Linux driver.

pub mod events;
pub mod instance;
pub mod northbound;
pub mod packet;
pub mod tasks;
