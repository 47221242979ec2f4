//! Short-lived signed tokens for browsers, which cannot put an API key in a header of an
//! `EventSource` or a WebSocket: a JWT (RFC 7519) signed with HS256, sent as `?token=`.
//!
//! Claims: `sub` (the tenant), `iat` and `exp` (Unix seconds), `iss` = `duckstream`, and an
//! optional `tables` list that narrows what the token's queries may read.
//!
//! Invariants:
//! - Only `alg: HS256` is accepted (never `none`, never an algorithm the token picks), the
//!   signature is checked in constant time before any claim is read, and `exp` is required.
//! - A token is at most [`MAX_TOKEN_BYTES`] long; longer input is refused before decoding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The longest token accepted.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
const ISSUER: &str = "duckstream";
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct TokenSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

impl TokenSigner {
    /// `secret` must hold at least [`MIN_SECRET_BYTES`] bytes (checked by the config).
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
        }
    }

    /// A signer with a random secret: its tokens are valid in this process only.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut secret = vec![0u8; 32];
        getrandom::fill(&mut secret)?;
        Ok(Self { secret })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts keys of any length")
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = simd_json::serde::to_vec(claims).unwrap_or_default();
        let mut token = format!("{}.{}", B64.encode(HEADER), B64.encode(payload));
        let mut mac = self.mac();
        mac.update(token.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        token.push('.');
        token.push_str(&sig);
        token
    }

    /// Checks the signature, then the algorithm, issuer and expiry (against `now`, Unix
    /// seconds), and returns the claims.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..header.len() + 1 + payload.len()]);
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        // Signed by us; the content is still parsed defensively.
        let mut header = B64.decode(header).map_err(|_| TokenError::Malformed)?;
        let header: Header =
            simd_json::serde::from_slice(&mut header).map_err(|_| TokenError::Malformed)?;
        if header.alg != "HS256" {
            return Err(TokenError::Malformed);
        }
        let mut payload = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: Claims =
            simd_json::serde::from_slice(&mut payload).map_err(|_| TokenError::Malformed)?;
        if claims.iss != ISSUER {
            return Err(TokenError::Malformed);
        }
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

impl Claims {
    pub fn new(tenant: &str, now: u64, ttl_secs: u64, tables: Option<Vec<String>>) -> Self {
        Self {
            sub: tenant.to_string(),
            iat: now,
            exp: now.saturating_add(ttl_secs),
            iss: ISSUER.to_string(),
            tables,
        }
    }
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let s = signer();
        let claims = Claims::new("acme", 1000, 60, Some(vec!["trips".into()]));
        let token = s.sign(&claims);
        assert_eq!(s.verify(&token, 1000).unwrap(), claims);
        assert_eq!(s.verify(&token, 1059).unwrap().sub, "acme");
        assert_eq!(s.verify(&token, 1060), Err(TokenError::Expired));
    }

    #[test]
    fn tampered_foreign_and_unsigned_tokens_are_refused() {
        let s = signer();
        let token = s.sign(&Claims::new("acme", 1000, 60, None));
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        // Another tenant in the payload, the original signature.
        let forged =
            B64.encode(simd_json::serde::to_vec(&Claims::new("globex", 1000, 60, None)).unwrap());
        let tampered = format!("{head}.{forged}.{sig}");
        assert_eq!(s.verify(&tampered, 1000), Err(TokenError::BadSignature));
        // Signed with another secret.
        let other = TokenSigner::new(b"another secret of 32 bytes at least".to_vec());
        assert_eq!(
            s.verify(&other.sign(&Claims::new("acme", 1000, 60, None)), 1000),
            Err(TokenError::BadSignature)
        );
        // alg: none with an empty signature.
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            B64.encode(simd_json::serde::to_vec(&Claims::new("acme", 1000, 60, None)).unwrap())
        );
        assert_eq!(s.verify(&none, 1000), Err(TokenError::BadSignature));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "...",
            &"x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(s.verify(bad, 1000).is_err(), "{bad}");
        }
    }
}
