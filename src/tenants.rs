//! The tenants file (TOML): who may use which tenant, and each tenant's limits.
//!
//! ```toml
//! admin_keys = ["sha256:…"]            # optional: may query every tenant, issue any token
//!
//! [tenants.acme]
//! keys = ["sha256:…", "sha256:…"]      # several keys, so that one can be rotated out
//! query_timeout_secs = 30              # every limit is optional: absent = the global value
//! max_result_rows = 1000000
//! max_result_bytes = 1073741824
//! max_queries = 4                      # concurrent queries (= pooled DuckDB connections)
//! max_connections = 32                 # open HTTP/SSE streams and WebSockets
//! queue_size = 16                      # queries that may wait for one of max_queries
//! memory_limit = "2GB"                 # DuckDB memory_limit of the tenant's database
//! max_temp_size = "20GB"               # DuckDB max_temp_directory_size (spill to disk)
//! threads = 2                          # DuckDB threads of the tenant's database
//! ```
//!
//! Invariants:
//! - The file holds key *hashes* only (`duckstream keygen` prints a key and its hash).
//! - A file that exists has been checked whole: unknown fields, bad tenant names, bad hashes,
//!   and a key used by two tenants are refused at start, naming the place.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use crate::auth::keys::KeyHash;
use crate::engine::tenant::LimitOverrides;
use crate::wire::TenantId;

/// The parsed, checked tenants file.
#[derive(Debug, Clone, Default)]
pub struct TenantsFile {
    pub admin_keys: Vec<KeyHash>,
    pub tenants: HashMap<TenantId, TenantEntry>,
}

#[derive(Debug, Clone, Default)]
pub struct TenantEntry {
    pub keys: Vec<KeyHash>,
    pub limits: LimitOverrides,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    admin_keys: Vec<String>,
    #[serde(default)]
    tenants: BTreeMap<String, RawTenant>,
}

/// A tenant's entry as written. The limit fields repeat [`LimitOverrides`]'s on purpose:
/// serde cannot refuse unknown fields of a struct that `flatten`s another, and a misspelt
/// limit must fail at start, not be ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    #[serde(default)]
    keys: Vec<String>,
    query_timeout_secs: Option<u64>,
    max_result_rows: Option<u64>,
    max_result_bytes: Option<u64>,
    max_queries: Option<u32>,
    max_connections: Option<usize>,
    queue_size: Option<usize>,
    memory_limit: Option<String>,
    max_temp_size: Option<String>,
    threads: Option<u32>,
}

impl RawTenant {
    fn limits(&self) -> LimitOverrides {
        LimitOverrides {
            query_timeout_secs: self.query_timeout_secs,
            max_result_rows: self.max_result_rows,
            max_result_bytes: self.max_result_bytes,
            max_queries: self.max_queries,
            max_connections: self.max_connections,
            queue_size: self.queue_size,
            memory_limit: self.memory_limit.clone(),
            max_temp_size: self.max_temp_size.clone(),
            threads: self.threads,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TenantsFileError {
    #[error("cannot read tenants file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid tenants file: {0}")]
    Parse(String),
    #[error("invalid tenants file: {place}: {reason}")]
    Invalid { place: String, reason: String },
}

impl TenantsFile {
    pub fn load(path: &Path) -> Result<Self, TenantsFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TenantsFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Self, TenantsFileError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| TenantsFileError::Parse(e.to_string()))?;
        let invalid = |place: String, reason: String| TenantsFileError::Invalid { place, reason };
        let mut seen: HashMap<KeyHash, String> = HashMap::new();
        let mut hashes = |owner: &str, list: &[String]| -> Result<Vec<KeyHash>, TenantsFileError> {
            let mut out = Vec::with_capacity(list.len());
            for (i, stored) in list.iter().enumerate() {
                let place = format!("{owner} key {}", i + 1);
                let hash = KeyHash::parse(stored).map_err(|r| invalid(place.clone(), r))?;
                if let Some(other) = seen.insert(hash.clone(), owner.to_string()) {
                    return Err(invalid(
                        place,
                        format!("the same key is also listed for {other}"),
                    ));
                }
                out.push(hash);
            }
            Ok(out)
        };
        let admin_keys = hashes("admin_keys", &raw.admin_keys)?;
        let mut tenants = HashMap::with_capacity(raw.tenants.len());
        for (name, t) in raw.tenants {
            let place = format!("tenants.{name}");
            let id = TenantId::parse(&name).map_err(|e| invalid(place.clone(), e.to_string()))?;
            let keys = hashes(&place, &t.keys)?;
            let limits = t.limits();
            limits
                .validate()
                .map_err(|reason| invalid(place.clone(), reason))?;
            tenants.insert(id, TenantEntry { keys, limits });
        }
        Ok(Self {
            admin_keys,
            tenants,
        })
    }

    /// Each tenant's limit overrides (for the engine).
    pub fn limit_overrides(&self) -> HashMap<TenantId, LimitOverrides> {
        self.tenants
            .iter()
            .map(|(id, t)| (id.clone(), t.limits.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn a_tenants_file_parses_with_limits() {
        let f = TenantsFile::from_toml(&format!(
            "admin_keys = []\n[tenants.acme]\nkeys = [\"{A}\"]\nmax_queries = 2\nmemory_limit = \"1GB\"\n[tenants.globex]\n"
        ))
        .unwrap();
        let acme = &f.tenants[&TenantId::parse("acme").unwrap()];
        assert_eq!(acme.keys, vec![KeyHash::of("abc")]);
        assert_eq!(acme.limits.max_queries, Some(2));
        assert_eq!(acme.limits.memory_limit.as_deref(), Some("1GB"));
        assert!(f.tenants[&TenantId::parse("globex").unwrap()]
            .keys
            .is_empty());
    }

    #[test]
    fn mistakes_are_refused_by_place() {
        for (text, needle) in [
            ("[tenants.\"../x\"]\n", "tenants.../x"),
            ("[tenants.a]\nkeys = [\"plain\"]\n", "tenants.a key 1"),
            (
                &format!("admin_keys = [\"{A}\"]\n[tenants.a]\nkeys = [\"{A}\"]\n"),
                "also listed for admin_keys",
            ),
            ("[tenants.a]\nmax_querys = 2\n", "unknown field"),
            ("[tenants.a]\nmax_queries = 0\n", "max_queries"),
            ("[tenants.a]\nmemory_limit = \"lots\"\n", "memory_limit"),
            ("bogus = 1\n", "unknown field"),
        ] {
            let e = TenantsFile::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
