//! mldhb: a NETCONF/YANG-managed network-element agent for MLD dual-device hot backup.
#![deny(unsafe_code)]

pub mod agent;
pub mod bus;
pub mod config;
pub mod datastore;
pub mod forwarding;
pub mod interfaces;
pub mod mld;
pub mod netconf;
pub mod netio;
pub mod northbound;
pub mod rbs;
pub mod security_key;
pub mod yang;
