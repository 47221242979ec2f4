//! Who is asking, and for which tenant: API keys and signed tokens, checked at the edge before
//! a request touches the engine.
//!
//! - With a tenants file, every tenant route needs a [`Credential`]: a tenant's API key (or an
//!   admin key, good for every tenant), or a token from `POST /v1/{tenant}/tokens`. HTTP sends
//!   them as `Authorization: Bearer <key or token>` or `?token=<token>` (for `EventSource` and
//!   WebSocket, which cannot set headers); a wire protocol as a login's password. The
//!   transport reads them into a [`Credential`]; this module knows no transport.
//! - Without one, duckstream is open ([`Via::Open`]); the config then refuses any bind address
//!   but loopback unless `--insecure` is given.
//!
//! Invariants:
//! - A credential for tenant A is refused on tenant B with `access_denied` (403), whether or
//!   not B exists: an outsider learns nothing about other tenants.
//! - Only API keys issue tokens; a token cannot extend itself, and its `exp` is at most
//!   `token_max_ttl_secs` away.
//! - Keys and tokens are never logged; failures are counted by a fixed `reason`.

pub mod credential;
pub mod keys;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::GatewayError;
use crate::wire::{IssuedToken, TableSet, TenantId, TokenRequest};
pub use credential::Credential;
use credential::Proof;
use keys::KeyHash;
use token::{Claims, TokenError, TokenSigner};

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// No tenants file: everyone may use every tenant.
    Open,
    ApiKey,
    AdminKey,
    Token,
}

/// What a request may do: which tenant, and (for tokens) which tables, until when.
#[derive(Debug, Clone)]
pub struct Access {
    pub tenant: TenantId,
    pub via: Via,
    pub tables: Option<Arc<TableSet>>,
    /// Unix seconds after which the credential is no longer valid (tokens).
    pub expires_at: Option<u64>,
    /// The user a wire-protocol login named ([`Credential::Password`]), for the logs: it
    /// proves nothing.
    pub user: Option<String>,
}

impl Access {
    /// What open mode (no tenants file) gives: any table of `tenant`, for ever.
    pub fn open(tenant: &TenantId) -> Self {
        Self::new(tenant, Via::Open)
    }

    /// Access to `tenant` without a table scope or an expiry.
    fn new(tenant: &TenantId, via: Via) -> Self {
        Self {
            tenant: tenant.clone(),
            via,
            tables: None,
            expires_at: None,
            user: None,
        }
    }

    /// Refuses use of a token past its expiry (a WebSocket outlives the check at connect).
    pub fn check_fresh(&self) -> Result<(), AuthError> {
        match self.expires_at {
            Some(exp) if exp <= token::now_secs() => Err(AuthError::Expired),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("credentials required: send 'Authorization: Bearer <API key>' or '?token=<token>'")]
    Missing,
    #[error("the API key is not valid")]
    InvalidKey,
    #[error("the token is not valid: {0}")]
    InvalidToken(TokenError),
    #[error("the token has expired")]
    Expired,
    #[error("these credentials do not give access to tenant '{0}'")]
    WrongTenant(String),
    #[error("tokens can only be issued with an API key")]
    TokenCannotIssue,
    #[error("the admin routes need an admin key")]
    AdminOnly,
    #[error("authentication is off (no tenants file): there are no tokens to issue")]
    Disabled,
    #[error("{0}")]
    BadTokenRequest(String),
}

impl AuthError {
    /// A fixed label for `duckstream_auth_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::InvalidKey => "invalid_key",
            Self::InvalidToken(_) => "invalid_token",
            Self::Expired => "expired",
            Self::WrongTenant(_) | Self::TokenCannotIssue | Self::AdminOnly => "denied",
            Self::Disabled | Self::BadTokenRequest(_) => "bad_request",
        }
    }
}

impl From<AuthError> for GatewayError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::InvalidKey | AuthError::InvalidToken(_) => {
                GatewayError::Unauthenticated(e.to_string())
            }
            AuthError::Expired => GatewayError::TokenExpired,
            AuthError::WrongTenant(_) | AuthError::TokenCannotIssue | AuthError::AdminOnly => {
                GatewayError::AccessDenied(e.to_string())
            }
            AuthError::Disabled | AuthError::BadTokenRequest(_) => {
                GatewayError::InvalidRequest(e.to_string())
            }
        }
    }
}

/// Who a key belongs to.
#[derive(Debug, Clone)]
enum Owner {
    Admin,
    Tenant(TenantId),
}

/// Token lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct TokenTtl {
    pub default_secs: u64,
    pub max_secs: u64,
}

/// Whose keys are whose: the admin keys and each tenant's (from the tenants file).
#[derive(Debug, Clone, Default)]
pub struct KeyBook {
    pub admin: Vec<KeyHash>,
    pub tenants: Vec<(TenantId, Vec<KeyHash>)>,
}

pub struct Authenticator {
    /// `None`: no tenants file, open.
    keys: Option<HashMap<KeyHash, Owner>>,
    signer: TokenSigner,
    ttl: TokenTtl,
}

impl Authenticator {
    /// With `keys`, every request needs a credential; without, the server is open.
    pub fn new(keys: Option<KeyBook>, signer: TokenSigner, ttl: TokenTtl) -> Self {
        let keys = keys.map(|book| {
            let admins = book.admin.into_iter().map(|k| (k, Owner::Admin));
            let tenants = book.tenants.into_iter().flat_map(|(id, keys)| {
                keys.into_iter()
                    .map(move |k| (k, Owner::Tenant(id.clone())))
            });
            admins.chain(tenants).collect()
        });
        Self { keys, signer, ttl }
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_none()
    }

    /// Checks `credential` for `tenant`. An open server (no tenants file) takes any.
    pub fn authorize(
        &self,
        credential: &Credential,
        tenant: &TenantId,
    ) -> Result<Access, AuthError> {
        let access = self.check(credential, tenant)?;
        Ok(Access {
            user: credential.user().map(str::to_string),
            ..access
        })
    }

    fn check(&self, credential: &Credential, tenant: &TenantId) -> Result<Access, AuthError> {
        let Some(keys) = &self.keys else {
            return Ok(Access::new(tenant, Via::Open));
        };
        match credential.proof()? {
            Proof::Key(key) => match keys.get(&KeyHash::of(key)) {
                None => Err(AuthError::InvalidKey),
                Some(Owner::Admin) => Ok(Access::new(tenant, Via::AdminKey)),
                Some(Owner::Tenant(owner)) if owner == tenant => {
                    Ok(Access::new(tenant, Via::ApiKey))
                }
                Some(Owner::Tenant(_)) => Err(AuthError::WrongTenant(tenant.to_string())),
            },
            Proof::Token(t) => self.token_access(t, tenant),
        }
    }

    /// What a token gives on `tenant`: its table scope, until its expiry.
    fn token_access(&self, token: &str, tenant: &TenantId) -> Result<Access, AuthError> {
        let claims = self
            .signer
            .verify(token, token::now_secs())
            .map_err(|e| match e {
                TokenError::Expired => AuthError::Expired,
                e => AuthError::InvalidToken(e),
            })?;
        if claims.sub != tenant.as_str() {
            return Err(AuthError::WrongTenant(tenant.to_string()));
        }
        let tables = match &claims.tables {
            Some(names) => {
                Some(Arc::new(TableSet::parse(names).map_err(|_| {
                    AuthError::InvalidToken(TokenError::Malformed)
                })?))
            }
            None => None,
        };
        Ok(Access {
            tables,
            expires_at: Some(claims.exp),
            ..Access::new(tenant, Via::Token)
        })
    }

    /// Checks `credential` for the admin routes: an admin key (with a tenants file).
    /// `Ok(false)`: the server is open, and the caller must restrict the request itself (to
    /// loopback).
    pub fn authorize_admin(&self, credential: &Credential) -> Result<bool, AuthError> {
        let Some(keys) = &self.keys else {
            return Ok(false);
        };
        match credential.proof()? {
            Proof::Key(key) => match keys.get(&KeyHash::of(key)) {
                None => Err(AuthError::InvalidKey),
                Some(Owner::Admin) => Ok(true),
                Some(Owner::Tenant(_)) => Err(AuthError::AdminOnly),
            },
            Proof::Token(_) => Err(AuthError::AdminOnly),
        }
    }

    /// Issues a token for `access`'s tenant (which an API key must have proved).
    pub fn issue(&self, access: &Access, request: TokenRequest) -> Result<IssuedToken, AuthError> {
        match access.via {
            Via::ApiKey | Via::AdminKey => {}
            Via::Token => return Err(AuthError::TokenCannotIssue),
            Via::Open => return Err(AuthError::Disabled),
        }
        let ttl = request.ttl_secs.unwrap_or(self.ttl.default_secs);
        if ttl == 0 || ttl > self.ttl.max_secs {
            return Err(AuthError::BadTokenRequest(format!(
                "ttl_secs must be between 1 and {}",
                self.ttl.max_secs
            )));
        }
        let tables = match &request.tables {
            Some(names) => Some(
                TableSet::parse(names)
                    .map_err(AuthError::BadTokenRequest)?
                    .names(),
            ),
            None => None,
        };
        let claims = Claims::new(access.tenant.as_str(), token::now_secs(), ttl, tables);
        Ok(IssuedToken {
            token: self.signer.sign(&claims),
            tenant: claims.sub.clone(),
            expires_at: claims.exp,
            tables: claims.tables,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        let tenant =
            |name: &str, key: &str| (TenantId::parse(name).unwrap(), vec![KeyHash::of(key)]);
        let book = KeyBook {
            admin: vec![KeyHash::of("root")],
            tenants: vec![tenant("acme", "acme-key"), tenant("globex", "globex-key")],
        };
        Authenticator::new(
            Some(book),
            TokenSigner::new(vec![7u8; 32]),
            TokenTtl {
                default_secs: 60,
                max_secs: 600,
            },
        )
    }

    fn bearer(v: &str) -> Credential {
        Credential::Bearer(v.to_string())
    }

    fn password(v: &str) -> Credential {
        Credential::Password {
            user: "analyst".to_string(),
            password: v.to_string(),
        }
    }

    /// A token for acme, limited to the table `trips`.
    fn trips_token(a: &Authenticator) -> String {
        let acme = TenantId::parse("acme").unwrap();
        let key = a.authorize(&bearer("acme-key"), &acme).unwrap();
        let request = TokenRequest {
            ttl_secs: None,
            tables: Some(vec!["Trips".into()]),
        };
        a.issue(&key, request).unwrap().token
    }

    #[test]
    fn keys_and_tokens_open_their_own_tenant_only() {
        let a = auth();
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        let none = Credential::Absent;
        assert_eq!(a.authorize(&none, &acme).unwrap_err(), AuthError::Missing);
        let got = a.authorize(&bearer("acme-key"), &acme).unwrap();
        assert_eq!(got.via, Via::ApiKey);
        assert!(matches!(
            a.authorize(&bearer("acme-key"), &globex),
            Err(AuthError::WrongTenant(_))
        ));
        assert_eq!(
            a.authorize(&bearer("nope"), &acme).unwrap_err(),
            AuthError::InvalidKey
        );
        assert_eq!(
            a.authorize(&bearer("root"), &globex).unwrap().via,
            Via::AdminKey
        );

        let issued = a
            .issue(
                &got,
                TokenRequest {
                    ttl_secs: None,
                    tables: Some(vec!["Trips".into()]),
                },
            )
            .unwrap();
        assert_eq!(issued.tables, Some(vec!["trips".to_string()]));
        let q = Credential::QueryToken(issued.token.clone());
        let via_token = a.authorize(&q, &acme).unwrap();
        assert_eq!(via_token.via, Via::Token);
        assert!(via_token.tables.is_some());
        assert!(a.authorize(&bearer(&issued.token), &acme).is_ok());
        assert!(matches!(
            a.authorize(&q, &globex),
            Err(AuthError::WrongTenant(_))
        ));
        // A token cannot mint tokens; lifetimes are bounded.
        assert_eq!(
            a.issue(&via_token, TokenRequest::default()).unwrap_err(),
            AuthError::TokenCannotIssue
        );
        let too_long = TokenRequest {
            ttl_secs: Some(601),
            tables: None,
        };
        assert!(a.issue(&got, too_long).is_err());
        // An API key passed as ?token= is not a token.
        assert!(matches!(
            a.authorize(&Credential::QueryToken("acme-key".into()), &acme),
            Err(AuthError::InvalidToken(_))
        ));
    }

    #[test]
    fn admin_routes_take_only_an_admin_key() {
        let a = auth();
        assert_eq!(a.authorize_admin(&bearer("root")), Ok(true));
        assert_eq!(
            a.authorize_admin(&bearer("acme-key")),
            Err(AuthError::AdminOnly)
        );
        assert_eq!(
            a.authorize_admin(&bearer("nope")),
            Err(AuthError::InvalidKey)
        );
        assert_eq!(
            a.authorize_admin(&Credential::Absent),
            Err(AuthError::Missing)
        );
        let token = Credential::QueryToken(trips_token(&a));
        assert_eq!(a.authorize_admin(&token), Err(AuthError::AdminOnly));
    }

    #[test]
    fn an_open_server_takes_any_credential() {
        let a = Authenticator::new(
            None,
            TokenSigner::new(vec![7u8; 32]),
            TokenTtl {
                default_secs: 60,
                max_secs: 600,
            },
        );
        let acme = TenantId::parse("acme").unwrap();
        for c in [Credential::Absent, bearer("nope"), password("")] {
            assert_eq!(a.authorize(&c, &acme).unwrap().via, Via::Open);
            assert_eq!(a.authorize_admin(&c), Ok(false));
        }
    }

    #[test]
    fn a_login_password_is_checked_as_a_bearer_value() {
        let a = auth();
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        // A tenant's key as the password: that tenant only; the user is recorded.
        let got = a.authorize(&password("acme-key"), &acme).unwrap();
        assert_eq!(got.via, Via::ApiKey);
        assert_eq!(got.user.as_deref(), Some("analyst"));
        assert!(got.tables.is_none());
        assert!(matches!(
            a.authorize(&password("acme-key"), &globex),
            Err(AuthError::WrongTenant(_))
        ));
        // The admin key: every tenant, and the admin routes.
        assert_eq!(
            a.authorize(&password("root"), &globex).unwrap().via,
            Via::AdminKey
        );
        assert_eq!(a.authorize_admin(&password("root")), Ok(true));
        assert_eq!(
            a.authorize_admin(&password("acme-key")),
            Err(AuthError::AdminOnly)
        );
        // A token: its table scope and expiry apply, and it cannot mint tokens.
        let token = trips_token(&a);
        let scoped = a.authorize(&password(&token), &acme).unwrap();
        assert_eq!(scoped.via, Via::Token);
        let tables = scoped.tables.as_ref().expect("the token's scope");
        assert_eq!(tables.names(), vec!["trips".to_string()]);
        assert!(scoped.expires_at.is_some());
        assert_eq!(
            a.issue(&scoped, TokenRequest::default()).unwrap_err(),
            AuthError::TokenCannotIssue
        );
        // A wrong password fails exactly as a wrong bearer value: same error, same code.
        for wrong in ["nope", "a.b.c", ""] {
            let by_password = a.authorize(&password(wrong), &acme).unwrap_err();
            let by_bearer = a.authorize(&bearer(wrong), &acme).unwrap_err();
            assert_eq!(by_password, by_bearer, "{wrong}");
            assert_eq!(by_password.reason(), by_bearer.reason());
            let (p, b) = (
                GatewayError::from(by_password),
                GatewayError::from(by_bearer),
            );
            assert_eq!(p.code(), b.code());
            assert_eq!(p.code(), "unauthenticated");
        }
    }
}
