//! [`LocalFiles`]: tenants as files in the data directory, the first [`TenantStore`].
//!
//! Layout: `<data_dir>/<tenant>.duckdb` (the database, with DuckDB's `<tenant>.duckdb.wal`
//! beside it) and `<tenant>.version` (the data version, a decimal number and a newline).
//!
//! Invariants:
//! - A tenant exists only if `<tenant>.duckdb` is a file: only [`TenantStore::create`] makes
//!   one (opening never does).
//! - The version file is replaced atomically (a temporary file renamed over it): a crash
//!   leaves the old version or the new one. Without one the version is 0.
//! - Which tables a version wrote is not kept on disk: this process is the only writer and
//!   remembers its own writes, and after a restart every table counts as written at the
//!   version found then.

use std::io;
use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

use super::{Opened, Recorded, TenantStore, WriteLock};
use crate::duck::Database;
use crate::error::GatewayError;
use crate::wire::TenantId;

/// One DuckDB file per tenant in a data directory.
#[derive(Debug)]
pub struct LocalFiles {
    data_dir: PathBuf,
}

impl LocalFiles {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// `<data_dir>/<tenant>.duckdb`.
    fn database_path(&self, id: &TenantId) -> PathBuf {
        self.data_dir.join(format!("{id}.duckdb"))
    }

    /// The file that holds the tenant's data version.
    fn version_path(&self, id: &TenantId) -> PathBuf {
        self.data_dir.join(format!("{id}.version"))
    }

    /// Writes the data version atomically.
    async fn write_version(&self, id: &TenantId, version: u64) -> io::Result<()> {
        let path = self.version_path(id);
        let tmp = path.with_extension("version.tmp");
        tokio::fs::write(&tmp, format!("{version}\n")).await?;
        tokio::fs::rename(&tmp, &path).await
    }

    /// Every `<name>.duckdb` file with a valid tenant name, sorted, with its size.
    async fn scan(&self) -> io::Result<Vec<(TenantId, u64)>> {
        let mut dir = tokio::fs::read_dir(&self.data_dir).await?;
        let mut found = Vec::new();
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".duckdb")) else {
                continue;
            };
            let (Ok(id), Ok(meta)) = (TenantId::parse(stem), entry.metadata().await) else {
                continue;
            };
            if meta.is_file() {
                found.push((id, meta.len()));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Removes the database, its WAL and its version file (each may be missing).
    fn remove(&self, id: &TenantId) -> io::Result<()> {
        let db = self.database_path(id);
        let wal = db.with_extension("duckdb.wal");
        let mut result = Ok(());
        for path in [db, wal, self.version_path(id)] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => result = Err(e),
                _ => {}
            }
        }
        result
    }
}

impl TenantStore for LocalFiles {
    fn open(&self, id: &TenantId) -> Result<Opened, GatewayError> {
        let path = self.database_path(id);
        if !path.is_file() {
            return Err(GatewayError::TenantNotFound(id.to_string()));
        }
        let db = Database::open(&path).map_err(GatewayError::TenantUnavailable)?;
        tracing::info!(tenant = %id, path = %path.display(), "opened tenant database");
        Ok(Opened {
            db,
            setup_sql: None,
            connection_sql: None,
            readable: Vec::new(),
            versions: None,
            indexes: true,
        })
    }

    fn exists<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, Result<bool, GatewayError>> {
        Box::pin(async move {
            Ok(tokio::fs::metadata(self.database_path(id))
                .await
                .map(|m| m.is_file())
                .unwrap_or(false))
        })
    }

    fn list(&self) -> BoxFuture<'_, io::Result<Vec<(TenantId, u64)>>> {
        Box::pin(self.scan())
    }

    fn size<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, u64> {
        Box::pin(async move {
            tokio::fs::metadata(self.database_path(id))
                .await
                .map(|m| m.len())
                .unwrap_or(0)
        })
    }

    fn create(&self, id: &TenantId) -> Result<Option<u64>, GatewayError> {
        let path = self.database_path(id);
        if path.exists() {
            return Err(GatewayError::TenantExists(id.to_string()));
        }
        Database::open(&path).map_err(GatewayError::TenantUnavailable)?;
        Ok(None)
    }

    fn delete(&self, id: &TenantId) -> Result<(), GatewayError> {
        self.remove(id).map_err(GatewayError::internal)
    }

    fn lock_writes<'a>(
        &'a self,
        _id: &'a TenantId,
    ) -> BoxFuture<'a, Result<WriteLock, GatewayError>> {
        Box::pin(async { Ok(Box::new(()) as WriteLock) })
    }

    fn data_version<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, Recorded> {
        Box::pin(async move {
            let version = tokio::fs::read_to_string(self.version_path(id))
                .await
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            Recorded {
                version,
                written: Default::default(),
            }
        })
    }

    fn record_write<'a>(
        &'a self,
        id: &'a TenantId,
        version: u64,
        _tables: &'a [String],
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(self.write_version(id, version))
    }
}
