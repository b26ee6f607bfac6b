//! MLD dual-device hot backup: remote backup profiles tie the MLD routers of downstream
//! interfaces to a role source and an RBS channel, so the backup device holds ready group and
//! forwarding state and takes over at once.

pub mod controller;
pub mod entry;
pub mod glue;
pub mod northbound;
pub mod outbox;
#[cfg(test)]
mod sim;
pub mod tasks;
