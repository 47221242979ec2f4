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
//! pool_size = 4                        # pooled DuckDB connections (= concurrent queries)
//! max_streams = 32                     # open HTTP/SSE streams and WebSockets
//! queue_size = 16                      # queries that may wait for one of pool_size
//! memory_limit = "2GB"                 # DuckDB memory_limit of the tenant's database
//! max_temp_size = "20GB"               # DuckDB max_temp_directory_size (spill to disk)
//! threads = 2                          # DuckDB threads of the tenant's database
//! ```
//!
//! The limit keys are those of the config file's `[limits]` section ([`Limits`]), with the
//! same meaning (0 = none, "" = DuckDB's default), and the same deprecated aliases
//! (`max_queries`, `max_connections`), noted in [`TenantsFile::deprecated`].
//!
//! Invariants:
//! - The file holds key *hashes* only (`duckstream keygen` prints a key and its hash).
//! - A file that exists has been checked whole: unknown fields, bad tenant names, bad hashes,
//!   invalid limits and a key used by two tenants are refused at start, naming the place.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use super::deprecated::{self, Deprecation};
use super::limits::Limits;
use crate::auth::keys::KeyHash;
use crate::wire::TenantId;

/// The parsed, checked tenants file.
#[derive(Debug, Clone, Default)]
pub struct TenantsFile {
    pub admin_keys: Vec<KeyHash>,
    pub tenants: HashMap<TenantId, TenantEntry>,
    /// The deprecated keys the file used, each once.
    pub deprecated: Vec<Deprecation>,
}

/// One `[tenants.<name>]` table.
#[derive(Debug, Clone, Default)]
pub struct TenantEntry {
    pub keys: Vec<KeyHash>,
    /// The tenant's own limits; absent fields come from the global `[limits]`.
    pub limits: Limits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    admin_keys: Vec<String>,
    /// Each tenant's table as written: `keys` is taken out, the rest must be [`Limits`].
    #[serde(default)]
    tenants: BTreeMap<String, toml::Table>,
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
        let mut deprecated = Vec::new();
        for (name, mut table) in raw.tenants {
            let place = format!("tenants.{name}");
            let id = TenantId::parse(&name).map_err(|e| invalid(place.clone(), e.to_string()))?;
            let listed: Vec<String> = match table.remove("keys") {
                None => Vec::new(),
                Some(v) => v.try_into().map_err(|e: toml::de::Error| {
                    invalid(place.clone(), format!("keys: {}", e.to_string().trim_end()))
                })?,
            };
            let keys = hashes(&place, &listed)?;
            deprecated::rename_tenant_keys(&mut table, &mut deprecated);
            // What is left are the limits: `Limits` refuses unknown fields.
            let limits: Limits = table.try_into().map_err(|e: toml::de::Error| {
                invalid(place.clone(), e.to_string().trim_end().into())
            })?;
            if let Some(p) = limits.problem() {
                return Err(invalid(format!("{place}.{}", p.key), p.reason));
            }
            tenants.insert(id, TenantEntry { keys, limits });
        }
        Ok(Self {
            admin_keys,
            tenants,
            deprecated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn a_tenants_file_parses_with_limits() {
        let f = TenantsFile::from_toml(&format!(
            "admin_keys = []\n[tenants.acme]\nkeys = [\"{A}\"]\npool_size = 2\nmemory_limit = \"1GB\"\n[tenants.globex]\n"
        ))
        .unwrap();
        let acme = &f.tenants[&TenantId::parse("acme").unwrap()];
        assert_eq!(acme.keys, vec![KeyHash::of("abc")]);
        assert_eq!(acme.limits.pool_size, Some(2));
        assert_eq!(acme.limits.memory_limit.as_deref(), Some("1GB"));
        let globex = &f.tenants[&TenantId::parse("globex").unwrap()];
        assert!(globex.keys.is_empty());
        assert_eq!(globex.limits, Limits::default());
    }

    #[test]
    fn mistakes_are_refused_by_place() {
        for (text, needle) in [
            ("[tenants.\"../x\"]\n", "tenants.../x"),
            ("[tenants.a]\nkeys = [\"plain\"]\n", "tenants.a key 1"),
            ("[tenants.a]\nkeys = \"plain\"\n", "tenants.a: keys"),
            (
                &format!("admin_keys = [\"{A}\"]\n[tenants.a]\nkeys = [\"{A}\"]\n"),
                "also listed for admin_keys",
            ),
            ("[tenants.a]\nmax_querys = 2\n", "unknown field"),
            ("[tenants.a]\nmax_querys = 2\n", "tenants.a"),
            ("[tenants.a]\npool_size = 0\n", "tenants.a.pool_size"),
            (
                "[tenants.a]\nmemory_limit = \"lots\"\n",
                "tenants.a.memory_limit",
            ),
            ("bogus = 1\n", "unknown field"),
        ] {
            let e = TenantsFile::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
