//! `[pg]`: the PostgreSQL endpoint. On by default on loopback (`127.0.0.1:5433`, beside
//! HTTP's 8080); `bind = "off"` turns it off.
//!
//! Invariants (checked before anything binds):
//! - A certificate and a key are given together, or neither.
//! - Without a tenants file (open mode) the endpoint listens on loopback only, unless the
//!   server runs `--insecure`, exactly as HTTP's `bind`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Args;
use serde::Deserialize;

use super::{invalid, ConfigError};

/// Where the endpoint listens, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgBind {
    Off,
    At(SocketAddr),
}

impl FromStr for PgBind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        s.parse()
            .map(Self::At)
            .map_err(|_| format!("`{s}` is neither an address (host:port) nor `off`"))
    }
}

impl<'de> Deserialize<'de> for PgBind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `[pg]`, resolved.
#[derive(Debug, Clone)]
pub struct PgSection {
    pub bind: PgBind,
    /// PEM certificate chain and private key: with them, `SSLRequest` is answered `S`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Open connections the endpoint holds at most (more are refused with 53300).
    pub max_connections: usize,
}

impl Default for PgSection {
    fn default() -> Self {
        Self {
            bind: PgBind::At(SocketAddr::from(([127, 0, 0, 1], 5433))),
            tls_cert: None,
            tls_key: None,
            max_connections: 256,
        }
    }
}

/// `[pg]` as a layer.
#[derive(Debug, Default, Clone, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct PgLayer {
    /// Address of the PostgreSQL endpoint (host:port), or `off`
    #[arg(id = "pg_bind", long = "pg-bind", env = "DUCKSTREAM_PG_BIND")]
    pub bind: Option<PgBind>,
    /// PEM certificate chain for the PostgreSQL endpoint's TLS
    #[arg(
        id = "pg_tls_cert",
        long = "pg-tls-cert",
        env = "DUCKSTREAM_PG_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for the PostgreSQL endpoint's TLS
    #[arg(id = "pg_tls_key", long = "pg-tls-key", env = "DUCKSTREAM_PG_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Open PostgreSQL connections at most
    #[arg(
        id = "pg_max_connections",
        long = "pg-max-connections",
        env = "DUCKSTREAM_PG_MAX_CONNECTIONS"
    )]
    pub max_connections: Option<usize>,
}

impl PgSection {
    pub(super) fn apply(&mut self, layer: PgLayer) {
        if let Some(b) = layer.bind {
            self.bind = b;
        }
        if layer.tls_cert.is_some() {
            self.tls_cert = layer.tls_cert;
        }
        if layer.tls_key.is_some() {
            self.tls_key = layer.tls_key;
        }
        if let Some(n) = layer.max_connections {
            self.max_connections = n;
        }
    }

    /// `open`: no tenants file; `insecure`: the server may serve open off loopback.
    pub(super) fn validate(&self, open: bool, insecure: bool) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(invalid(
                "pg_tls_cert",
                "give pg_tls_cert and pg_tls_key together (or neither)",
            ));
        }
        if !(1..=65_536).contains(&self.max_connections) {
            return Err(invalid("pg_max_connections", "must be between 1 and 65536"));
        }
        if let PgBind::At(addr) = self.bind {
            if open && !insecure && !addr.ip().is_loopback() {
                return Err(invalid(
                    "pg_bind",
                    format!(
                        "{addr} is not a loopback address and there is no tenants file: every \
                         tenant would be open to the network. Add a tenants file, bind to \
                         127.0.0.1, or pass --insecure"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_is_an_address_or_off() {
        assert_eq!("off".parse::<PgBind>(), Ok(PgBind::Off));
        assert_eq!(
            "127.0.0.1:5433".parse::<PgBind>(),
            Ok(PgBind::At(SocketAddr::from(([127, 0, 0, 1], 5433))))
        );
        assert!("5433".parse::<PgBind>().is_err());
    }

    #[test]
    fn open_mode_keeps_the_endpoint_on_loopback() {
        let mut pg = PgSection::default();
        assert!(pg.validate(true, false).is_ok());
        pg.bind = "0.0.0.0:5433".parse().unwrap();
        let e = pg.validate(true, false).unwrap_err().to_string();
        assert!(e.contains("pg_bind"), "{e}");
        assert!(pg.validate(true, true).is_ok());
        assert!(pg.validate(false, false).is_ok());
        pg.tls_cert = Some("cert.pem".into());
        assert!(pg.validate(false, false).is_err());
    }
}
