//! mldhb: a NETCONF/YANG-managed network-element agent for MLD dual-device hot backup.
#![deny(unsafe_code)]

pub mod agent;
pub mod bus;
pub mod bytes;
pub mod cli;
pub mod config;
pub mod datastore;
pub mod etrunk;
pub mod forwarding;
pub mod handoff;
pub mod hotbackup;
pub mod interfaces;
pub mod lab;
pub mod lacp;
pub mod memory;
pub mod mld;
pub mod netconf;
pub mod netio;
pub mod northbound;
pub mod rbs;
pub mod rpc_error;
pub mod seckey;
pub mod time;
pub mod vrrp6;
pub mod xml;
pub mod yang;
