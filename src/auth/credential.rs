//! What a client presents to prove who it is, as its transport read it: HTTP's
//! `Authorization: Bearer` header and `?token=` parameter, or a wire protocol's user and
//! password (a PostgreSQL login). The authenticator checks all of them against the same keys
//! and tokens, so every transport has the same tenants, table scopes and admin rights.
//!
//! Invariants:
//! - A credential holds no transport type: a transport turns what it received into one, and
//!   refuses what it cannot read (with an [`AuthError`]) before the authenticator sees it.
//! - A `?token=` value is only ever a token; a bearer value or a password is a token when it
//!   has a token's shape (three dot-separated parts), else an API key.
//! - An empty bearer value or password is no credential (`Missing`).

use super::AuthError;

/// What a client presented.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Nothing.
    Absent,
    /// `Authorization: Bearer <value>`: an API key, or a token.
    Bearer(String),
    /// `?token=<value>` (`EventSource` and WebSocket cannot set headers): a token, never a key.
    QueryToken(String),
    /// A wire protocol's login. The password is checked exactly as a [`Credential::Bearer`]
    /// value is (an API key, or a token), and alone decides the access: the user is not
    /// checked (a client must send one; tools send the OS user's name), only recorded in
    /// [`super::Access::user`] for the logs.
    Password { user: String, password: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and tokens are never logged: only the kind of credential.
        f.write_str(match self {
            Self::Absent => "Credential::Absent",
            Self::Bearer(_) => "Credential::Bearer(..)",
            Self::QueryToken(_) => "Credential::QueryToken(..)",
            Self::Password { .. } => "Credential::Password(..)",
        })
    }
}

/// What a credential is checked as.
pub(super) enum Proof<'a> {
    Key(&'a str),
    Token(&'a str),
}

impl Credential {
    /// The key or token to check, or `Missing`.
    pub(super) fn proof(&self) -> Result<Proof<'_>, AuthError> {
        match self {
            Self::Absent => Err(AuthError::Missing),
            Self::Bearer(value)
            | Self::Password {
                password: value, ..
            } => bearer(value),
            Self::QueryToken(token) => Ok(Proof::Token(token)),
        }
    }

    /// The user a wire-protocol login named.
    pub(super) fn user(&self) -> Option<&str> {
        match self {
            Self::Password { user, .. } => Some(user),
            _ => None,
        }
    }
}

/// A bearer value: a token (three dot-separated parts), else an API key.
fn bearer(value: &str) -> Result<Proof<'_>, AuthError> {
    if value.split('.').count() == 3 {
        Ok(Proof::Token(value))
    } else if !value.is_empty() {
        Ok(Proof::Key(value))
    } else {
        Err(AuthError::Missing)
    }
}
