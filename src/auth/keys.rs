//! API keys: how they are made, stored and checked.
//!
//! A key is `dsk_` and 64 hex digits (256 random bits). The tenants file stores only
//! `sha256:<hex>` of a key. A fast hash is the right one here: keys are random and long, so no
//! dictionary or brute force can invert the hash, and a slow password hash (argon2, bcrypt)
//! would cost every request milliseconds for nothing.
//!
//! Invariants:
//! - A presented key is looked up by its hash. The timing of that lookup can tell an attacker
//!   at most something about the SHA-256 of their own guess, which says nothing about a key.
//! - The key itself is never stored or logged.

use sha2::{Digest, Sha256};

/// The prefix every generated key carries (so that scanners can spot leaked keys).
pub const KEY_PREFIX: &str = "dsk_";

/// The SHA-256 of an API key, as stored in the tenants file.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyHash([u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hashes are not secret, but there is no reason to spread them through logs.
        f.write_str("KeyHash(..)")
    }
}

impl KeyHash {
    /// Hashes a presented key.
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Parses the stored form, `sha256:<64 hex digits>`.
    pub fn parse(stored: &str) -> Result<Self, String> {
        let hex = stored
            .strip_prefix("sha256:")
            .ok_or_else(|| "a key hash must look like sha256:<64 hex digits>".to_string())?;
        let bytes = decode_hex(hex).filter(|b| b.len() == 32).ok_or_else(|| {
            "a key hash must have exactly 64 hex digits after sha256:".to_string()
        })?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes);
        Ok(Self(out))
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        format!("sha256:{}", encode_hex(&self.0))
    }
}

/// A new random API key.
pub fn generate_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{KEY_PREFIX}{}", encode_hex(&bytes)))
}

pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_hashes_round_trip_and_match_only_their_key() {
        let key = generate_key().unwrap();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == 68);
        let stored = KeyHash::of(&key).to_stored();
        let parsed = KeyHash::parse(&stored).unwrap();
        assert_eq!(parsed, KeyHash::of(&key));
        assert_ne!(parsed, KeyHash::of(&format!("{key}x")));
        // Known vector: sha256("abc").
        assert_eq!(
            KeyHash::of("abc").to_stored(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        for bad in [
            "",
            "sha256:",
            "md5:00",
            "sha256:zz",
            &stored[..stored.len() - 1],
        ] {
            assert!(KeyHash::parse(bad).is_err(), "{bad}");
        }
    }
}
