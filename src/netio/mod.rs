//! Access to the Linux network stack: netlink for links and addresses.

pub mod netlink;
