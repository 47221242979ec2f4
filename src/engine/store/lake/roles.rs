//! Each tenant's own catalog role: the PostgreSQL role its database logs in as, so that what
//! runs on its catalog connections can reach only its own schema.
//!
//! Invariants:
//! - The role is `ds_<tenant>`, no superuser (so no `pg_read_file`), granted only the tenant's
//!   schema; the store's own role (`lake_catalog`) creates lakes, listens and locks.
//! - Its password is derived from the configured secret (HMAC-SHA256 of the tenant's name):
//!   every replica with the same secret computes the same one, and none is stored.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::wire::TenantId;

/// The tenant's role name.
pub fn role_of(id: &TenantId) -> String {
    format!("ds_{id}")
}

/// The tenant's role's password: hex of HMAC-SHA256(secret, tenant).
pub fn password(id: &TenantId, secret: &str) -> String {
    // An HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(b"duckstream-lake-role:");
    mac.update(id.as_str().as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `catalog` (a libpq `key=value` string or a `postgres://` URL) logging in as the tenant's
/// role: the user and password are replaced, everything else kept.
pub fn tenant_dsn(catalog: &str, id: &TenantId, secret: &str) -> String {
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let login = format!(
        "user={} password={}",
        quote(&role_of(id)),
        quote(&password(id, secret))
    );
    // libpq takes the last value of a repeated keyword; a URL is followed by none, so it is
    // given as `dbname=<url>` (libpq expands a URL there) before the login.
    if catalog.contains("://") {
        format!("dbname={} {login}", quote(catalog))
    } else {
        format!("{catalog} {login}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_logs_in_as_its_own_role_with_a_derived_password() {
        let t = TenantId::parse("acme").unwrap();
        let p = password(&t, "s3cret");
        assert_eq!(p.len(), 64);
        assert_eq!(p, password(&t, "s3cret"));
        assert_ne!(p, password(&TenantId::parse("globex").unwrap(), "s3cret"));
        assert_ne!(p, password(&t, "other"));
        assert_eq!(
            tenant_dsn("host=db dbname=lakes user=admin", &t, "s3cret"),
            format!("host=db dbname=lakes user=admin user='ds_acme' password='{p}'")
        );
        assert_eq!(
            tenant_dsn("postgres://admin@db/lakes", &t, "s3cret"),
            format!("dbname='postgres://admin@db/lakes' user='ds_acme' password='{p}'")
        );
    }
}
