//! Password hashes for agent users: PBKDF2-HMAC-SHA256 in `$pbkdf2-sha256$ITER$SALT$HASH` form.

use rand::RngCore;

const DEFAULT_ITERATIONS: u32 = 100_000;

/// Hashes a password with a fresh random salt.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    hash_with(password, &salt, DEFAULT_ITERATIONS)
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt, iterations, &mut out);
    format!(
        "$pbkdf2-sha256${iterations}${}${}",
        hex::encode(salt),
        hex::encode(out)
    )
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, "pbkdf2-sha256", iter, salt, expected] = parts.as_slice() else {
        return false;
    };
    let (Ok(iterations), Ok(salt), Ok(expected)) = (
        iter.parse::<u32>(),
        hex::decode(salt),
        hex::decode(expected),
    ) else {
        return false;
    };
    if iterations == 0 || iterations > 10_000_000 || expected.len() != 32 {
        return false;
    }
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, iterations, &mut out);
    crate::bytes::constant_time_eq(&out, &expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_with("secret", b"0123456789abcdef", 1000);
        assert!(verify("secret", &h));
        assert!(!verify("Secret", &h));
        assert!(!verify("secret", "$pbkdf2-sha256$x$00$00"));
        assert!(!verify("secret", "plain"));
    }
}
