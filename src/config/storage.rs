//! `[storage]`: where tenants' data lives. `local` (the default): one DuckDB file per tenant in
//! the data directory, nothing else to run. `lake`: each tenant a DuckLake whose catalog is a
//! schema of one PostgreSQL database (`lake_catalog`) and whose data is Parquet under
//! `lake_data` (`s3://bucket/prefix/` or a directory every replica shares).
//!
//! Invariants:
//! - Object-store credentials never come from the command line: the AWS SDKs' own variables
//!   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or the config file's
//!   `s3_key_id` / `s3_secret`. `AWS_ENDPOINT_URL` and `AWS_REGION` are read the same way.
//! - `lake` is validated before anything binds: a catalog and a data root are given, the
//!   root is an `s3://` URL or an absolute directory, and it ends with `/`.

use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::{invalid, ConfigError, Secret};

/// Which store keeps tenants' data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    Local,
    Lake,
}

/// `[storage]`, resolved.
#[derive(Debug, Clone)]
pub struct StorageSection {
    pub kind: StorageKind,
    /// The lakes' catalog database (libpq connection string).
    pub lake_catalog: Option<Secret>,
    /// The lakes' data root, ending with `/`.
    pub lake_data: Option<String>,
    /// Derives each tenant's own catalog role's password; `None`: tenants use the catalog's
    /// role.
    pub lake_role_secret: Option<Secret>,
    /// `host:port` of an S3-compatible endpoint; default: `AWS_ENDPOINT_URL`, else AWS.
    pub s3_endpoint: Option<String>,
    /// `path` or `vhost`.
    pub s3_url_style: Option<String>,
    pub s3_use_ssl: bool,
    pub s3_region: Option<String>,
    pub s3_key_id: Option<String>,
    pub s3_secret: Option<Secret>,
    pub s3_session_token: Option<Secret>,
    /// How long a write waits for another replica's write to the same tenant.
    pub lock_wait: Duration,
    /// Upkeep of a written tenant at the latest this long after its last (zero: no upkeep).
    pub maintenance_interval: Duration,
    /// Upkeep as soon as this many writes landed.
    pub maintenance_after_writes: u64,
    /// How long old snapshots and their files are kept.
    pub snapshot_retention: Duration,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            kind: StorageKind::Local,
            lake_catalog: None,
            lake_data: None,
            lake_role_secret: None,
            s3_endpoint: None,
            s3_url_style: None,
            s3_use_ssl: true,
            s3_region: None,
            s3_key_id: None,
            s3_secret: None,
            s3_session_token: None,
            lock_wait: Duration::from_secs(5),
            maintenance_interval: Duration::from_secs(300),
            maintenance_after_writes: 50,
            snapshot_retention: Duration::from_secs(86_400),
        }
    }
}

/// `[storage]` as a layer. The credentials are not flags (a command line is visible to every
/// user of the machine): environment or config file only.
#[derive(Debug, Default, Clone, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct StorageLayer {
    /// Where tenants' data lives: local (one DuckDB file each, default) or lake (DuckLake)
    #[arg(long = "storage", env = "DUCKSTREAM_STORAGE", value_enum)]
    #[serde(rename = "kind")]
    pub kind: Option<StorageKind>,
    /// The lakes' catalog: a PostgreSQL connection string (libpq key=value or postgres:// URL)
    #[arg(long, env = "DUCKSTREAM_LAKE_CATALOG", hide_env_values = true)]
    pub lake_catalog: Option<Secret>,
    /// The lakes' data root: s3://bucket/prefix/ or a directory every replica shares
    #[arg(long, env = "DUCKSTREAM_LAKE_DATA")]
    pub lake_data: Option<String>,
    /// Secret from which each tenant's own catalog role's password is derived (the role its
    /// queries log in as: no superuser, only its schema); unset: the catalog's role
    #[arg(long, env = "DUCKSTREAM_LAKE_ROLE_SECRET", hide_env_values = true)]
    pub lake_role_secret: Option<Secret>,
    /// S3 endpoint (host:port or URL) for MinIO and others; default: AWS_ENDPOINT_URL, else AWS
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub s3_endpoint: Option<String>,
    /// S3 URL style: path or vhost
    #[arg(long, env = "DUCKSTREAM_S3_URL_STYLE")]
    pub s3_url_style: Option<String>,
    /// Whether S3 is reached over TLS (default: true; an http:// endpoint turns it off)
    #[arg(long, env = "DUCKSTREAM_S3_USE_SSL")]
    pub s3_use_ssl: Option<bool>,
    /// S3 region
    #[arg(long, env = "AWS_REGION")]
    pub s3_region: Option<String>,
    /// S3 access key id (environment or config file only)
    #[arg(skip)]
    pub s3_key_id: Option<String>,
    /// S3 secret key (environment or config file only)
    #[arg(skip)]
    pub s3_secret: Option<Secret>,
    /// S3 session token (environment or config file only)
    #[arg(skip)]
    pub s3_session_token: Option<Secret>,
    /// Seconds a write waits for another replica's write to the same tenant (at most 8)
    #[arg(long, env = "DUCKSTREAM_LAKE_LOCK_WAIT_SECS")]
    pub lock_wait_secs: Option<u64>,
    /// Seconds after which a written tenant's lake is maintained (merge small files, expire
    /// old snapshots); 0: never
    #[arg(long, env = "DUCKSTREAM_LAKE_MAINTENANCE_INTERVAL_SECS")]
    pub maintenance_interval_secs: Option<u64>,
    /// Maintain a tenant's lake as soon as this many writes landed
    #[arg(long, env = "DUCKSTREAM_LAKE_MAINTENANCE_AFTER_WRITES")]
    pub maintenance_after_writes: Option<u64>,
    /// Seconds old snapshots (and the files only they use) are kept
    #[arg(long, env = "DUCKSTREAM_LAKE_SNAPSHOT_RETENTION_SECS")]
    pub snapshot_retention_secs: Option<u64>,
}

impl StorageSection {
    pub(super) fn apply(&mut self, layer: StorageLayer) {
        set!(self, layer; kind, s3_use_ssl);
        macro_rules! some {
            ($($f:ident),*) => { $( if layer.$f.is_some() { self.$f = layer.$f; } )* };
        }
        some!(
            lake_catalog,
            lake_data,
            lake_role_secret,
            s3_url_style,
            s3_region,
            s3_key_id,
            s3_secret,
            s3_session_token
        );
        if let Some(e) = layer.s3_endpoint {
            // An endpoint URL says its scheme; DuckDB wants host:port and USE_SSL.
            if let Some(rest) = e.strip_prefix("http://") {
                self.s3_use_ssl = false;
                self.s3_endpoint = Some(rest.trim_end_matches('/').to_string());
            } else {
                let rest = e.strip_prefix("https://").unwrap_or(&e);
                self.s3_endpoint = Some(rest.trim_end_matches('/').to_string());
            }
        }
        set_secs!(self, layer;
            lock_wait_secs => lock_wait,
            maintenance_interval_secs => maintenance_interval,
            snapshot_retention_secs => snapshot_retention,
        );
        set!(self, layer; maintenance_after_writes);
    }

    /// The credentials of the AWS SDKs' own environment variables, under what the file set.
    pub(super) fn apply_aws_env(&mut self) {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        if let Some(k) = var("AWS_ACCESS_KEY_ID") {
            self.s3_key_id = Some(k);
        }
        if let Some(s) = var("AWS_SECRET_ACCESS_KEY") {
            self.s3_secret = Some(Secret(s));
        }
        if let Some(t) = var("AWS_SESSION_TOKEN") {
            self.s3_session_token = Some(Secret(t));
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.kind == StorageKind::Local {
            return Ok(());
        }
        if self
            .lake_catalog
            .as_ref()
            .is_none_or(|c| c.0.trim().is_empty())
        {
            return Err(invalid(
                "lake_catalog",
                "--storage lake needs --lake-catalog",
            ));
        }
        let Some(data) = &self.lake_data else {
            return Err(invalid("lake_data", "--storage lake needs --lake-data"));
        };
        if !(data.starts_with("s3://") || data.starts_with('/')) {
            return Err(invalid(
                "lake_data",
                "use s3://bucket/prefix/ or an absolute directory",
            ));
        }
        if !data.ends_with('/') {
            return Err(invalid("lake_data", "must end with '/'"));
        }
        if let Some(style) = &self.s3_url_style {
            if style != "path" && style != "vhost" {
                return Err(invalid("s3_url_style", "use path or vhost"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lake(catalog: Option<&str>, data: Option<&str>) -> StorageSection {
        StorageSection {
            kind: StorageKind::Lake,
            lake_catalog: catalog.map(|c| Secret(c.into())),
            lake_data: data.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn a_lake_needs_a_catalog_and_a_data_root_ending_with_a_slash() {
        assert!(StorageSection::default().validate().is_ok());
        assert!(lake(Some("dbname=lakes"), Some("s3://b/p/"))
            .validate()
            .is_ok());
        assert!(lake(Some("dbname=lakes"), Some("/srv/lakes/"))
            .validate()
            .is_ok());
        for (catalog, data, name) in [
            (None, Some("s3://b/p/"), "lake_catalog"),
            (Some(" "), Some("s3://b/p/"), "lake_catalog"),
            (Some("dbname=lakes"), None, "lake_data"),
            (Some("dbname=lakes"), Some("s3://b/p"), "lake_data"),
            (Some("dbname=lakes"), Some("relative/dir/"), "lake_data"),
        ] {
            match lake(catalog, data).validate() {
                Err(ConfigError::Invalid { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{catalog:?} {data:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_endpoint_url_says_whether_tls_is_used() {
        let mut s = StorageSection::default();
        s.apply(StorageLayer {
            s3_endpoint: Some("http://127.0.0.1:9000/".into()),
            ..Default::default()
        });
        assert_eq!(s.s3_endpoint.as_deref(), Some("127.0.0.1:9000"));
        assert!(!s.s3_use_ssl);
        s.apply(StorageLayer {
            s3_endpoint: Some("https://s3.example".into()),
            s3_use_ssl: Some(true),
            ..Default::default()
        });
        assert_eq!(s.s3_endpoint.as_deref(), Some("s3.example"));
        assert!(s.s3_use_ssl);
    }
}
