//! The packet socket of one Eth-Trunk member: whole Ethernet frames of one ethertype to and
//! from one multicast group on that port only (for LACPDUs: slow protocols, 01:80:c2:00:00:02,
//! which the caller names), non-blocking.

use super::{socket, sys};
use socket2::Socket;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, RawFd};

/// A bound, non-blocking packet socket on one member port.
pub struct LacpSocket {
    sock: Socket,
    pub ifindex: u32,
}

impl AsRawFd for LacpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl LacpSocket {
    /// Opens the socket on port `ifindex` for frames of `ethertype`, joined to the Ethernet
    /// multicast `group`.
    pub fn open(ifindex: u32, ethertype: u16, group: [u8; 6]) -> io::Result<LacpSocket> {
        let sock = socket::packet(ethertype)?;
        sys::bind_packet(sock.as_fd(), ifindex, ethertype)?;
        sys::packet_add_membership(sock.as_fd(), ifindex, group)?;
        Ok(LacpSocket { sock, ifindex })
    }

    /// Sends a whole Ethernet frame on the port.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.sock.send(frame).map(|_| ())
    }

    /// Receives one frame into `buf`; returns its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.sock).read(buf)
    }
}
