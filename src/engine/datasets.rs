//! Writing datasets: loading an upload's spool file into a table, listing a tenant's tables,
//! dropping one. Runs on an executor thread (blocking DuckDB work) with one of the tenant's
//! slots, on one of its pooled connections.
//!
//! Invariants:
//! - A write is one DuckDB transaction: a replace is `CREATE OR REPLACE TABLE … AS` inside it,
//!   so concurrent readers see the old table or the new one, never a mix or none, and a failed
//!   load (a bad row, too many skipped rows, an unreadable file) rolls back to the old one.
//! - The spool file is read through DuckDB's readers, which may read only the tenant's spool
//!   directory (`allowed_directories`, set with the database's settings; no query can change
//!   it, `SET` never runs).
//! - A GeoJSON upload is never given to GDAL (`ST_Read` opens a file by its content: a VRT
//!   body reads other files or URLs): duckstream converts it to NDJSON rows beside the spool
//!   file ([`Input::prepare`], off the async runtime, the file removed with the [`Input`]),
//!   and DuckDB's JSON reader loads those; the WKB becomes GEOMETRY with core functions, so it
//!   loads without the spatial extension too.
//! - The CSV reader's rejects tables are temporary tables of the loading connection, with
//!   names of their own, read and dropped only as `temp.main.…`: a tenant's tables (in `main`)
//!   of any name are never touched.
//! - Messages shown to the client have server paths redacted.
//! - A new table's GEOMETRY columns get an R-tree index (with spatial loaded), inside the same
//!   transaction.

use std::path::{Path, PathBuf};

use super::tenant::Tenant;
use crate::duck::Connection;
use crate::error::GatewayError;
use crate::wire::admin::DatasetInfo;
use crate::wire::datasets::{
    ColumnInfo, DatasetDetail, DatasetName, GeometryColumn, RejectedRow, UploadFormat, UploadMode,
    UploadRequest,
};
use crate::wire::geojson::{self, GeoJsonError, GEOMETRY_COLUMN};

/// What a load did (the transport adds bytes, timing and the new version).
#[derive(Debug)]
pub struct Loaded {
    pub rows: u64,
    pub rejected: u64,
    pub rejects: Vec<RejectedRow>,
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// What DuckDB loads for an upload: the spool file, or the rows a GeoJSON upload became.
pub struct Input {
    path: PathBuf,
    reader: Reader,
}

enum Reader {
    Csv,
    Ndjson,
    Parquet,
    /// NDJSON rows converted from GeoJSON; the file is removed when the input is dropped.
    GeoJsonRows(geojson::Converted),
}

impl Input {
    /// What to load for an upload of `format` spooled at `spool`. A GeoJSON body is converted
    /// here, to `<spool>.rows.ndjson` in the same directory (DuckDB may read only there):
    /// blocking file and CPU work, to run off the async runtime. A body that is no GeoJSON
    /// FeatureCollection or Features is `invalid_upload`.
    pub fn prepare(format: UploadFormat, spool: PathBuf) -> Result<Self, GatewayError> {
        let reader = match format {
            UploadFormat::Csv => Reader::Csv,
            UploadFormat::Ndjson => Reader::Ndjson,
            UploadFormat::Parquet => Reader::Parquet,
            UploadFormat::GeoJson => return Self::from_geojson(spool),
        };
        Ok(Self {
            path: spool,
            reader,
        })
    }

    fn from_geojson(spool: PathBuf) -> Result<Self, GatewayError> {
        let rows = spool.with_extension("rows.ndjson");
        let input = std::fs::File::open(&spool).map_err(GatewayError::internal)?;
        let output = RemoveOnError(Some(&rows));
        let file = std::fs::File::create(&rows).map_err(GatewayError::internal)?;
        let converted = geojson::to_rows(input, file).map_err(|e| match e {
            GeoJsonError::Invalid(m) => GatewayError::InvalidUpload(m),
            GeoJsonError::Io(e) => GatewayError::internal(e),
        })?;
        output.keep();
        Ok(Self {
            path: rows,
            reader: Reader::GeoJsonRows(converted),
        })
    }

    /// The table function (or subquery) that reads the input.
    fn source(&self, store_rejects: bool) -> String {
        let p = quote_literal(&self.path.display().to_string());
        match &self.reader {
            Reader::Csv if store_rejects => format!(
                "read_csv({p}, store_rejects = true, rejects_table = '{REJECTS_TABLE}', \
                 rejects_scan = '{REJECTS_SCAN}')"
            ),
            Reader::Csv => format!("read_csv({p})"),
            Reader::Ndjson => format!("read_json({p}, format = 'newline_delimited')"),
            Reader::Parquet => format!("read_parquet({p})"),
            Reader::GeoJsonRows(rows) => geojson_source(&p, rows),
        }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        if let Reader::GeoJsonRows(_) = self.reader {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes a file being written unless [`RemoveOnError::keep`] is called.
struct RemoveOnError<'a>(Option<&'a Path>);

impl RemoveOnError<'_> {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnError<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The converted rows as a table: the properties as DuckDB's JSON reader infers them (every
/// row sampled, so a key or a type first seen late is not missed), then the WKB as GEOMETRY
/// with the upload's CRS. Core DuckDB functions only: no extension needed.
fn geojson_source(path: &str, rows: &geojson::Converted) -> String {
    let g = GEOMETRY_COLUMN;
    let crs = quote_literal(&rows.crs);
    if rows.features == 0 {
        // No rows to infer columns from: the geometry column alone. (From a column: DuckDB
        // 1.5.5 folds `ST_SetCRS` of a NULL constant into a NULL without the CRS.)
        return format!(
            "(SELECT ST_SetCRS(ST_GeomFromWKB(wkb), {crs}) AS {g} \
             FROM (VALUES (NULL::BLOB)) AS none(wkb) LIMIT 0)"
        );
    }
    // DuckDB's default, or the longest row (its type caps it at u32).
    let size = rows.longest_row.clamp(16 << 20, u32::MAX as usize);
    format!(
        "(SELECT * EXCLUDE ({g}), ST_SetCRS(ST_GeomFromWKB(from_base64({g}::VARCHAR)), {crs}) AS {g} \
         FROM read_json({path}, format = 'newline_delimited', sample_size = -1, \
         maximum_object_size = {size}))"
    )
}

/// The CSV reader's rejects tables (`store_rejects`), in the connection's temporary catalog.
const REJECTS_TABLE: &str = "duckstream_reject_errors";
const REJECTS_SCAN: &str = "duckstream_reject_scans";

/// Drops the rejects tables: before a load (a leftover would make the reader refuse) and
/// after it. Qualified, so it can only ever drop the temporary ones.
fn drop_rejects(conn: &Connection) -> Result<(), crate::duck::DuckError> {
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS temp.main.{REJECTS_TABLE}; \
         DROP TABLE IF EXISTS temp.main.{REJECTS_SCAN};"
    ))
}

fn count(conn: &Connection, sql: &str) -> Result<u64, crate::duck::DuckError> {
    Ok(conn
        .query_rows(sql)?
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Whether the dataset's table exists.
fn table_exists(conn: &Connection, name: &DatasetName) -> Result<bool, crate::duck::DuckError> {
    let sql = format!(
        "SELECT count(*)::VARCHAR FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' AND table_name = {}",
        quote_literal(name.as_str())
    );
    Ok(count(conn, &sql)? > 0)
}

/// Loads `input` into the dataset, in one transaction.
pub fn load(tenant: &Tenant, req: &UploadRequest, input: &Input) -> Result<Loaded, GatewayError> {
    let conn = tenant.connection()?;
    let fail = |e: crate::duck::DuckError| match super::tenant::missing_extension(&e.message) {
        // A function of an extension the server could not load: the server lacks, not the
        // upload.
        Some(ext) if tenant.loads_extension(ext) => GatewayError::ExtensionUnavailable(format!(
            "this upload needs DuckDB's {ext} extension, which this server could not load"
        )),
        _ => GatewayError::InvalidUpload(tenant.redact(&e.message)),
    };
    drop_rejects(&conn).map_err(fail)?;
    conn.execute_batch("BEGIN TRANSACTION").map_err(fail)?;
    let loaded = load_in_transaction(&conn, req, input);
    let outcome = match loaded {
        Ok(l) if l.rejected <= req.max_bad_rows => {
            conn.execute_batch("COMMIT").map(|()| l).map_err(fail)
        }
        Ok(l) => {
            let _ = conn.execute_batch("ROLLBACK");
            let first = l
                .rejects
                .first()
                .map(|r| format!(" (first: line {}: {})", r.line, r.message))
                .unwrap_or_default();
            Err(GatewayError::InvalidUpload(tenant.redact(&format!(
                "{} rows could not be read, more than max_bad_rows = {}{first}; nothing was loaded",
                l.rejected, req.max_bad_rows
            ))))
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(fail(e))
        }
    };
    // The rejects tables are temporary tables of this pooled connection.
    let _ = drop_rejects(&conn);
    outcome
}

fn load_in_transaction(
    conn: &Connection,
    req: &UploadRequest,
    input: &Input,
) -> Result<Loaded, crate::duck::DuckError> {
    let table = format!("main.\"{}\"", req.dataset.as_str());
    let src = input.source(req.max_bad_rows > 0);
    let exists = table_exists(conn, &req.dataset)?;
    let rows = if req.mode == UploadMode::Append && exists {
        let before = count(conn, &format!("SELECT count(*)::VARCHAR FROM {table}"))?;
        conn.execute_batch(&format!("INSERT INTO {table} BY NAME SELECT * FROM {src}"))?;
        count(conn, &format!("SELECT count(*)::VARCHAR FROM {table}"))? - before
    } else {
        conn.execute_batch(&format!(
            "CREATE OR REPLACE TABLE {table} AS SELECT * FROM {src}"
        ))?;
        to_geometry(conn, &req.dataset, &req.geometry_columns)?;
        index_geometry(conn, &req.dataset)?;
        count(conn, &format!("SELECT count(*)::VARCHAR FROM {table}"))?
    };
    let (rejected, rejects) = if req.max_bad_rows > 0 {
        let n = count(
            conn,
            &format!("SELECT count(*)::VARCHAR FROM temp.main.{REJECTS_TABLE}"),
        )?;
        let first = conn
            .query_rows(&format!(
                "SELECT line::VARCHAR, error_message FROM temp.main.{REJECTS_TABLE} ORDER BY line LIMIT 10"
            ))?
            .into_iter()
            .map(|r| RejectedRow {
                line: r
                    .first()
                    .cloned()
                    .flatten()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0),
                message: r.get(1).cloned().flatten().unwrap_or_default(),
            })
            .collect();
        (n, first)
    } else {
        (0, Vec::new())
    };
    Ok(Loaded {
        rows,
        rejected,
        rejects,
    })
}

/// Turns the named WKT (text) or WKB (bytes) columns of a new table into GEOMETRY. A value
/// that is not a geometry fails the load (DuckDB's message names it).
fn to_geometry(
    conn: &Connection,
    dataset: &DatasetName,
    columns: &[String],
) -> Result<(), crate::duck::DuckError> {
    for column in columns {
        let types = conn.query_rows(&format!(
            "SELECT data_type FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main' \
             AND table_name = {} AND column_name = {}",
            quote_literal(dataset.as_str()),
            quote_literal(column)
        ))?;
        let Some(data_type) = types
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
        else {
            return Err(crate::duck::DuckError {
                message: format!("geometry_columns: the upload has no column `{column}`"),
                kind: crate::duck::DuckErrorKind::Other,
            });
        };
        let quoted = format!("\"{}\"", column.replace('"', "\"\""));
        let using = match data_type.as_str() {
            t if t.starts_with("GEOMETRY") => continue,
            "BLOB" => format!("ST_GeomFromWKB({quoted})"),
            _ => format!("{quoted}::VARCHAR::GEOMETRY"),
        };
        conn.execute_batch(&format!(
            "ALTER TABLE main.\"{}\" ALTER COLUMN {quoted} SET DATA TYPE GEOMETRY USING {using}",
            dataset.as_str()
        ))?;
    }
    Ok(())
}

/// An R-tree index on every GEOMETRY column of a new table (the spatial extension's
/// `RTREE`): a bounding-box filter on 10M points went from 0.84 s to 0.002 s with it
/// (docs/BENCHMARKS.md). Appends keep it up to date. Without the spatial extension no index
/// is built (and none is needed to load).
fn index_geometry(conn: &Connection, dataset: &DatasetName) -> Result<(), crate::duck::DuckError> {
    let has_spatial = count(
        conn,
        "SELECT count(*)::VARCHAR FROM duckdb_functions() WHERE lower(function_name) = 'st_intersects'",
    )? > 0;
    if !has_spatial {
        return Ok(());
    }
    let columns = conn.query_rows(&format!(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main' \
         AND table_name = {} AND data_type LIKE 'GEOMETRY%' ORDER BY column_index",
        quote_literal(dataset.as_str())
    ))?;
    for column in columns
        .into_iter()
        .filter_map(|c| c.into_iter().next().flatten())
    {
        let index = format!("{}_{}_rtree", dataset.as_str(), column).replace('"', "");
        conn.execute_batch(&format!(
            "CREATE INDEX \"{index}\" ON main.\"{}\" USING RTREE (\"{}\")",
            dataset.as_str(),
            column.replace('"', "\"\"")
        ))?;
    }
    Ok(())
}

/// Every table of the tenant's database (`schema.table` outside `main`) with its row count, for
/// the admin listing.
pub fn catalog(tenant: &Tenant) -> Result<Vec<DatasetInfo>, GatewayError> {
    let conn = tenant.connection()?;
    let rows = conn
        .query_rows(
            "SELECT CASE WHEN schema_name = 'main' THEN table_name \
             ELSE schema_name || '.' || table_name END, estimated_size::VARCHAR \
             FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal AND NOT temporary ORDER BY 1",
        )
        .map_err(GatewayError::internal)?;
    Ok(rows
        .into_iter()
        .map(|r| DatasetInfo {
            name: r.first().cloned().flatten().unwrap_or_default(),
            rows: r
                .get(1)
                .cloned()
                .flatten()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        })
        .collect())
}

/// The tenant's datasets (tables of `main`), with columns, geometry columns and row counts.
pub fn list(tenant: &Tenant) -> Result<Vec<DatasetDetail>, GatewayError> {
    let conn = tenant.connection()?;
    let tables = conn
        .query_rows(
            "SELECT table_name, estimated_size::VARCHAR FROM duckdb_tables() \
             WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal AND NOT temporary ORDER BY 1",
        )
        .map_err(GatewayError::internal)?;
    let columns = conn
        .query_rows(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() \
             WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal ORDER BY table_name, column_index",
        )
        .map_err(GatewayError::internal)?;
    let version = tenant.data_version();
    Ok(tables
        .into_iter()
        .map(|t| {
            let name = t.first().cloned().flatten().unwrap_or_default();
            let cols: Vec<ColumnInfo> = columns
                .iter()
                .filter(|c| c.first().and_then(|n| n.as_deref()) == Some(name.as_str()))
                .map(|c| ColumnInfo {
                    name: c.get(1).cloned().flatten().unwrap_or_default(),
                    type_name: c.get(2).cloned().flatten().unwrap_or_default(),
                })
                .collect();
            let geometry_columns = cols
                .iter()
                .filter(|c| c.type_name.starts_with("GEOMETRY"))
                .map(|c| GeometryColumn {
                    name: c.name.clone(),
                    crs: c
                        .type_name
                        .strip_prefix("GEOMETRY('")
                        .and_then(|r| r.strip_suffix("')"))
                        .map(|crs| crs.replace("''", "'")),
                })
                .collect();
            DatasetDetail {
                rows: t
                    .get(1)
                    .cloned()
                    .flatten()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                name,
                columns: cols,
                geometry_columns,
                data_version: version,
            }
        })
        .collect())
}

/// Drops the dataset; `false` if there was none.
pub fn drop(tenant: &Tenant, name: &DatasetName) -> Result<bool, GatewayError> {
    let conn = tenant.connection()?;
    let exists = table_exists(&conn, name).map_err(GatewayError::internal)?;
    if exists {
        conn.execute_batch(&format!("DROP TABLE main.\"{}\"", name.as_str()))
            .map_err(GatewayError::internal)?;
    }
    Ok(exists)
}
