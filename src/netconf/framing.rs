//! RFC 6242 message framing: base:1.0 end-of-message and base:1.1 chunked, sans-IO and bounded.

/// The base:1.0 end-of-message marker.
pub const EOM: &[u8] = b"]]>]]>";
/// Largest chunk-size RFC 6242 allows.
const MAX_CHUNK: u64 = 4_294_967_295;

/// Which framing a session uses at this moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    EndOfMessage,
    Chunked,
}

/// Why the byte stream can no longer be framed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("message exceeds the limit of {0} bytes")]
    TooLarge(usize),
    #[error("malformed chunked framing: {0}")]
    Malformed(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting "\n#" and a size or "#\n".
    Header,
    /// Inside a chunk with this many bytes left.
    Data(usize),
}

/// Splits a byte stream into NETCONF messages.
#[derive(Debug)]
pub struct FrameDecoder {
    mode: Framing,
    max_message: usize,
    buf: Vec<u8>,
    /// Where the end-of-message search resumes.
    scanned: usize,
    chunk_state: ChunkState,
    message: Vec<u8>,
}

impl FrameDecoder {
    pub fn new(max_message: usize) -> Self {
        FrameDecoder {
            mode: Framing::EndOfMessage,
            max_message,
            buf: Vec::new(),
            scanned: 0,
            chunk_state: ChunkState::Header,
            message: Vec::new(),
        }
    }

    pub fn mode(&self) -> Framing {
        self.mode
    }

    /// Switches framing between messages (after both hellos advertise base:1.1).
    pub fn set_mode(&mut self, mode: Framing) {
        self.mode = mode;
        self.scanned = 0;
        self.chunk_state = ChunkState::Header;
        self.message.clear();
    }

    /// Bytes buffered but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.message.len()
    }

    /// Adds received bytes. Fails once more is buffered than one message may hold.
    pub fn push(&mut self, data: &[u8]) -> Result<(), FrameError> {
        self.buf.extend_from_slice(data);
        // Framing overhead of a few header bytes is allowed beyond the message limit.
        if self.buffered() > self.max_message.saturating_add(64)
            && self.mode == Framing::EndOfMessage
        {
            // An end-of-message marker may already be inside; check before giving up.
            if find(&self.buf, EOM, 0).is_none_or(|p| p > self.max_message) {
                return Err(FrameError::TooLarge(self.max_message));
            }
        }
        Ok(())
    }

    /// Returns the next complete message, if one is buffered.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        match self.mode {
            Framing::EndOfMessage => self.next_eom(),
            Framing::Chunked => self.next_chunked(),
        }
    }

    fn next_eom(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let start = self.scanned.saturating_sub(EOM.len() - 1);
        match find(&self.buf, EOM, start) {
            Some(pos) => {
                if pos > self.max_message {
                    return Err(FrameError::TooLarge(self.max_message));
                }
                let msg = self.buf[..pos].to_vec();
                self.buf.drain(..pos + EOM.len());
                self.scanned = 0;
                Ok(Some(msg))
            }
            None => {
                if self.buf.len() > self.max_message + EOM.len() {
                    return Err(FrameError::TooLarge(self.max_message));
                }
                self.scanned = self.buf.len();
                Ok(None)
            }
        }
    }

    fn next_chunked(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let mut pos = 0;
        let result = loop {
            match self.chunk_state {
                ChunkState::Data(left) => {
                    let avail = self.buf.len() - pos;
                    let take = avail.min(left);
                    self.message.extend_from_slice(&self.buf[pos..pos + take]);
                    pos += take;
                    if take < left {
                        self.chunk_state = ChunkState::Data(left - take);
                        break Ok(None);
                    }
                    self.chunk_state = ChunkState::Header;
                }
                ChunkState::Header => {
                    let rest = &self.buf[pos..];
                    if rest.len() < 3 {
                        if !b"\n#".starts_with(&rest[..rest.len().min(2)]) {
                            break Err(FrameError::Malformed("expected LF '#'"));
                        }
                        break Ok(None);
                    }
                    if &rest[..2] != b"\n#" {
                        break Err(FrameError::Malformed("expected LF '#'"));
                    }
                    if rest[2] == b'#' {
                        if rest.len() < 4 {
                            break Ok(None);
                        }
                        if rest[3] != b'\n' {
                            break Err(FrameError::Malformed("end-of-chunks not followed by LF"));
                        }
                        if self.message.is_empty() {
                            break Err(FrameError::Malformed("end-of-chunks before any chunk"));
                        }
                        pos += 4;
                        break Ok(Some(std::mem::take(&mut self.message)));
                    }
                    // chunk-size = 1-9 then up to 9 more digits, LF.
                    let digits = &rest[2..];
                    let Some(lf) = digits.iter().take(11).position(|&b| b == b'\n') else {
                        if digits.len() >= 11 {
                            break Err(FrameError::Malformed("chunk-size too long"));
                        }
                        if !digits.iter().all(u8::is_ascii_digit) {
                            break Err(FrameError::Malformed("chunk-size is not a number"));
                        }
                        break Ok(None);
                    };
                    let size_txt = &digits[..lf];
                    if size_txt.is_empty()
                        || size_txt[0] == b'0'
                        || !size_txt.iter().all(u8::is_ascii_digit)
                    {
                        break Err(FrameError::Malformed("invalid chunk-size"));
                    }
                    let size: u64 = std::str::from_utf8(size_txt)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or(FrameError::Malformed("invalid chunk-size"))?;
                    if size > MAX_CHUNK {
                        break Err(FrameError::Malformed("chunk-size above 4294967295"));
                    }
                    if self.message.len() as u64 + size > self.max_message as u64 {
                        break Err(FrameError::TooLarge(self.max_message));
                    }
                    pos += 2 + lf + 1;
                    self.chunk_state = ChunkState::Data(size as usize);
                }
            }
        };
        self.buf.drain(..pos);
        result
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if hay.len() < needle.len() || from > hay.len() - needle.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Frames one outgoing message.
pub fn encode(mode: Framing, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 16);
    match mode {
        Framing::EndOfMessage => {
            out.extend_from_slice(msg);
            out.extend_from_slice(EOM);
        }
        Framing::Chunked => {
            if !msg.is_empty() {
                out.extend_from_slice(format!("\n#{}\n", msg.len()).as_bytes());
                out.extend_from_slice(msg);
            }
            out.extend_from_slice(b"\n##\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_message_split_anywhere() {
        let stream = b"<hello/>]]>]]><rpc/>]]>]]>";
        for split in 0..stream.len() {
            let mut d = FrameDecoder::new(1024);
            let mut got = Vec::new();
            for part in [&stream[..split], &stream[split..]] {
                d.push(part).unwrap();
                while let Some(m) = d.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(
                got,
                vec![b"<hello/>".to_vec(), b"<rpc/>".to_vec()],
                "split {split}"
            );
        }
    }

    #[test]
    fn hello_then_chunked_in_one_write() {
        let mut d = FrameDecoder::new(1024);
        d.push(b"<hello/>]]>]]>\n#4\n<rpc\n#2\n/>\n##\n").unwrap();
        assert_eq!(d.next_message().unwrap().unwrap(), b"<hello/>");
        d.set_mode(Framing::Chunked);
        assert_eq!(d.next_message().unwrap().unwrap(), b"<rpc/>");
        assert_eq!(d.next_message().unwrap(), None);
    }

    #[test]
    fn chunked_byte_by_byte() {
        let framed = encode(Framing::Chunked, b"<rpc message-id=\"1\"/>");
        let mut d = FrameDecoder::new(1024);
        d.set_mode(Framing::Chunked);
        let mut got = None;
        for b in &framed {
            d.push(&[*b]).unwrap();
            if let Some(m) = d.next_message().unwrap() {
                got = Some(m);
            }
        }
        assert_eq!(got.unwrap(), b"<rpc message-id=\"1\"/>");
    }

    #[test]
    fn chunked_errors() {
        for bad in [
            &b"\n#0\n"[..],
            b"\n#01\nx",
            b"\n#x\n",
            b"\n##\n",
            b"x",
            b"\n#12345678901\n",
            b"\n#4294967296\n",
        ] {
            let mut d = FrameDecoder::new(1 << 40);
            d.set_mode(Framing::Chunked);
            d.push(bad).unwrap();
            assert!(
                d.next_message().is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn limits_are_enforced() {
        let mut d = FrameDecoder::new(16);
        d.set_mode(Framing::Chunked);
        d.push(b"\n#17\n").unwrap();
        assert_eq!(d.next_message(), Err(FrameError::TooLarge(16)));

        let mut d = FrameDecoder::new(16);
        let r = d
            .push(&[b'a'; 200])
            .and_then(|_| d.next_message().map(|_| ()));
        assert_eq!(r, Err(FrameError::TooLarge(16)));
    }
}
