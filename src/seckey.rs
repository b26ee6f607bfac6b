//! The cipher-text form of `security-key` values: a reversible encoding that keeps keys out of
//! sight in displays and configuration files, and tells a key entered as clear text apart.
//!
//! Cipher text is `%^%#` + base64(salt ‖ origin ‖ masked key ‖ tag) + `%^%#`. The mask is a
//! SHA-256 keystream over a fixed project secret and the salt; the tag (8 bytes of SHA-256)
//! rejects text that was mistyped or not produced here. This hides keys from onlookers, as
//! vendor "cipher" keys do; it is not protection against anyone holding this program.
//!
//! `origin` records how the key was configured: a key stored as `simple` (clear text) is shown
//! as cipher text whose origin is `simple`, and the command line stores such text back as
//! clear text, so a displayed configuration fed back reproduces the datastore exactly.

use sha2::{Digest, Sha256};

const MARK: &str = "%^%#";
const SECRET: &[u8] = b"mldhb security-key cipher text, version 1";
const SALT_LEN: usize = 8;
const TAG_LEN: usize = 8;
/// Longest key (clear text) that can be encoded.
pub const MAX_KEY: usize = 255;

/// How a key was configured before it was shown as cipher text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Stored as clear text (`key-type simple`).
    Simple,
    /// Stored as cipher text (`key-type cipher`).
    Cipher,
}

/// Why a text is not a valid cipher-text key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("cipher text must start and end with {MARK}")]
    Marks,
    #[error("cipher text holds a character outside base64")]
    Alphabet,
    #[error("cipher text is truncated")]
    Short,
    #[error("cipher text does not check out (mistyped or not produced by mldhb)")]
    Tag,
    #[error("the key is empty or longer than {MAX_KEY} bytes")]
    Length,
}

fn keystream_block(salt: &[u8], counter: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(SECRET);
    h.update(b"stream");
    h.update(salt);
    h.update(counter.to_be_bytes());
    h.finalize().into()
}

fn mask(salt: &[u8], data: &mut [u8]) {
    for (i, chunk) in data.chunks_mut(32).enumerate() {
        let ks = keystream_block(salt, i as u32);
        for (b, k) in chunk.iter_mut().zip(ks.iter()) {
            *b ^= k;
        }
    }
}

fn tag(salt: &[u8], origin: u8, key: &[u8]) -> [u8; TAG_LEN] {
    let mut h = Sha256::new();
    h.update(SECRET);
    h.update(b"tag");
    h.update(salt);
    h.update([origin]);
    h.update(key);
    let d = h.finalize();
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&d[..TAG_LEN]);
    t
}

fn origin_byte(o: Origin) -> u8 {
    match o {
        Origin::Simple => b's',
        Origin::Cipher => b'c',
    }
}

/// Encodes a clear-text key. The same key and origin always give the same text.
pub fn encode(key: &str, origin: Origin) -> Result<String, CipherError> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(CipherError::Length);
    }
    let o = origin_byte(origin);
    let mut h = Sha256::new();
    h.update(SECRET);
    h.update(b"salt");
    h.update([o]);
    h.update(key.as_bytes());
    let salt = &h.finalize()[..SALT_LEN];
    let mut body = key.as_bytes().to_vec();
    mask(salt, &mut body);
    let mut raw = Vec::with_capacity(SALT_LEN + 1 + body.len() + TAG_LEN);
    raw.extend_from_slice(salt);
    raw.push(o);
    raw.extend_from_slice(&body);
    raw.extend_from_slice(&tag(salt, o, key.as_bytes()));
    Ok(format!("{MARK}{}{MARK}", base64(&raw)))
}

/// True when `text` has the outer form of cipher text (it may still fail to decode).
pub fn looks_like_cipher(text: &str) -> bool {
    text.len() >= 2 * MARK.len() && text.starts_with(MARK) && text.ends_with(MARK)
}

/// Decodes cipher text into the clear-text key and the origin it records.
pub fn decode(text: &str) -> Result<(String, Origin), CipherError> {
    if !looks_like_cipher(text) {
        return Err(CipherError::Marks);
    }
    let inner = &text[MARK.len()..text.len() - MARK.len()];
    let raw = unbase64(inner)?;
    if raw.len() < SALT_LEN + 1 + 1 + TAG_LEN {
        return Err(CipherError::Short);
    }
    let (salt, rest) = raw.split_at(SALT_LEN);
    let o = rest[0];
    let (body, t) = rest[1..].split_at(rest.len() - 1 - TAG_LEN);
    let origin = match o {
        b's' => Origin::Simple,
        b'c' => Origin::Cipher,
        _ => return Err(CipherError::Tag),
    };
    let mut key = body.to_vec();
    mask(salt, &mut key);
    if tag(salt, o, &key) != t {
        return Err(CipherError::Tag);
    }
    if key.len() > MAX_KEY {
        return Err(CipherError::Length);
    }
    let key = String::from_utf8(key).map_err(|_| CipherError::Tag)?;
    Ok((key, origin))
}

/// The clear-text secret of a configured key, whatever its `key-type`.
pub fn secret(key_type_cipher: bool, key: &str) -> Result<String, CipherError> {
    if key_type_cipher {
        decode(key).map(|(k, _)| k)
    } else {
        Ok(key.to_string())
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn unbase64(text: &str) -> Result<Vec<u8>, CipherError> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .ok_or(CipherError::Alphabet)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err(CipherError::Short);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_origin() {
        for key in ["k", "mldhb-rbs-key", &"x".repeat(MAX_KEY), "a b;c\"d"] {
            for origin in [Origin::Simple, Origin::Cipher] {
                let c = encode(key, origin).unwrap();
                assert!(looks_like_cipher(&c));
                assert!(!c.contains(key) || key.len() < 3, "{c}");
                assert_eq!(decode(&c).unwrap(), (key.to_string(), origin));
                assert_eq!(encode(key, origin).unwrap(), c, "deterministic");
            }
        }
    }

    #[test]
    fn rejects_damaged_text() {
        let c = encode("mldhb-rbs-key", Origin::Simple).unwrap();
        assert_eq!(decode("plain"), Err(CipherError::Marks));
        assert_eq!(decode("%^%#%^%#"), Err(CipherError::Short));
        assert_eq!(decode("%^%#ab!d%^%#"), Err(CipherError::Alphabet));
        let mut bytes = c.clone().into_bytes();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        assert!(decode(std::str::from_utf8(&bytes).unwrap()).is_err());
        let truncated = format!("{}{MARK}", &c[..c.len() - MARK.len() - 4]);
        assert!(decode(&truncated).is_err());
        assert_eq!(encode("", Origin::Simple), Err(CipherError::Length));
    }

    #[test]
    fn decoding_never_panics_on_any_short_input() {
        let alphabet = b"AB+/%^#";
        let mut text = Vec::new();
        for n in 0..2000u32 {
            text.clear();
            text.extend_from_slice(MARK.as_bytes());
            let mut x = n;
            while x > 0 {
                text.push(alphabet[(x % 7) as usize]);
                x /= 7;
            }
            text.extend_from_slice(MARK.as_bytes());
            let _ = decode(std::str::from_utf8(&text).unwrap());
        }
    }

    #[test]
    fn secret_of_either_key_type() {
        let c = encode("s3cret", Origin::Cipher).unwrap();
        assert_eq!(secret(true, &c).unwrap(), "s3cret");
        assert_eq!(secret(false, "s3cret").unwrap(), "s3cret");
    }
}
