//! The integrity sum of running: the XOR of SHA-256 over every record (key and value), written
//! with each commit in the same batch and checked when the store is opened. A commit updates it
//! from the records it rewrites (old out, new in), so keeping it costs what the commit changes.

use sha2::{Digest, Sha256};

/// An order-independent sum of a set of records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sum(pub [u8; 32]);

impl Sum {
    /// Adds or removes one record (the same call does both).
    pub fn toggle(&mut self, key: &[u8], value: &[u8]) {
        let mut h = Sha256::new();
        h.update((key.len() as u32).to_be_bytes());
        h.update(key);
        h.update(value);
        for (s, x) in self.0.iter_mut().zip(h.finalize()) {
            *s ^= x;
        }
    }

    /// Replaces `old` (if any) with `new` (if any) for the record at `key`.
    pub fn replace(&mut self, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) {
        if let Some(v) = old {
            self.toggle(key, v);
        }
        if let Some(v) = new {
            self.toggle(key, v);
        }
    }

    pub fn from_bytes(b: &[u8]) -> Option<Sum> {
        b.try_into().ok().map(Sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_depends_on_the_set_not_the_order() {
        let mut a = Sum::default();
        a.toggle(b"k1", b"v1");
        a.toggle(b"k2", b"v2");
        let mut b = Sum::default();
        b.toggle(b"k2", b"v2");
        b.toggle(b"k1", b"v1");
        assert_eq!(a, b);
        b.replace(b"k1", Some(b"v1"), Some(b"v9"));
        assert_ne!(a, b);
        b.replace(b"k1", Some(b"v9"), Some(b"v1"));
        assert_eq!(a, b);
        b.replace(b"k2", Some(b"v2"), None);
        b.replace(b"k1", Some(b"v1"), None);
        assert_eq!(b, Sum::default());
    }
}
