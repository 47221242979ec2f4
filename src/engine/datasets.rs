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
//!   transaction; a database without indexes (a lake) gets its rows in Hilbert order and
//!   bounding-box columns (`<column>_xmin`…) instead, kept filled by appends.

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
    /// The data version the load's commit made, when the database names its own (a lake's
    /// snapshot); `None`: the gateway numbers it.
    pub version: Option<u64>,
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

    /// Whether the input's reader can yield a GEOMETRY column: DuckDB's CSV and JSON readers
    /// infer none (their candidate types are text, numbers, booleans, times, and for JSON
    /// lists and structs of them), so a lake load of those skips the `DESCRIBE` that looks
    /// for one (for a CSV, a second sniff of the file).
    fn may_hold_geometry(&self) -> bool {
        match self.reader {
            Reader::Csv | Reader::Ndjson => false,
            Reader::Parquet | Reader::GeoJsonRows(_) => true,
        }
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
        _ if tenant.storage_unreachable(&e.message) => GatewayError::storage(e),
        // A function of an extension the server could not load: the server lacks, not the
        // upload.
        Some(ext) if tenant.loads_extension(ext) => GatewayError::ExtensionUnavailable(format!(
            "this upload needs DuckDB's {ext} extension, which this server could not load"
        )),
        _ => GatewayError::InvalidUpload(tenant.redact(&e.message)),
    };
    let indexes = tenant.keeps_indexes()?;
    drop_rejects(&conn).map_err(fail)?;
    conn.execute_batch("BEGIN TRANSACTION").map_err(fail)?;
    let loaded = load_in_transaction(&conn, req, input, indexes);
    let outcome = match loaded {
        Ok(mut l) if l.rejected <= req.max_bad_rows => match conn.execute_batch("COMMIT") {
            Ok(()) => tenant.committed_version(&conn).map(|v| {
                l.version = v;
                l
            }),
            Err(e) => Err(fail(e)),
        },
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
    indexes: bool,
) -> Result<Loaded, crate::duck::DuckError> {
    let table = format!("main.\"{}\"", req.dataset.as_str());
    let src = input.source(req.max_bad_rows > 0);
    let exists = table_exists(conn, &req.dataset)?;
    let rows = if req.mode == UploadMode::Append && exists {
        let before = count(conn, &format!("SELECT count(*)::VARCHAR FROM {table}"))?;
        conn.execute_batch(&format!("INSERT INTO {table} BY NAME SELECT * FROM {src}"))?;
        if !indexes {
            fill_boxes(conn, &req.dataset)?;
        }
        count(conn, &format!("SELECT count(*)::VARCHAR FROM {table}"))? - before
    } else if indexes {
        conn.execute_batch(&format!(
            "CREATE OR REPLACE TABLE {table} AS SELECT * FROM {src}"
        ))?;
        to_geometry(conn, &req.dataset, &req.geometry_columns)?;
        index_geometry(conn, &req.dataset)?;
        count(conn, &format!("SELECT count(*)::VARCHAR FROM {table}"))?
    } else {
        let geometry = input.may_hold_geometry();
        create_staged(conn, &req.dataset, &src, geometry, &req.geometry_columns)?;
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
        version: None,
        rows,
        rejected,
        rejects,
    })
}

/// A table the load reads the columns of: the new dataset (in the tenant's database) or the
/// stage a lake's load goes through (a temporary table).
#[derive(Clone, Copy)]
struct Place<'a> {
    /// `current_database()` or `'temp'`.
    database: &'a str,
    table: &'a str,
}

impl Place<'_> {
    fn qualified(&self) -> String {
        let db = if self.database == "'temp'" {
            "temp."
        } else {
            ""
        };
        format!("{db}main.{}", quote_ident(self.table))
    }

    /// The data type of each column, in order.
    fn columns(&self, conn: &Connection) -> Result<Vec<(String, String)>, crate::duck::DuckError> {
        let rows = conn.query_rows(&format!(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = {} \
             AND schema_name = 'main' AND table_name = {} ORDER BY column_index",
            self.database,
            quote_literal(self.table)
        ))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?)))
            .collect())
    }
}

/// For each named WKT (text) or WKB (bytes) column, the expression that makes it GEOMETRY
/// (none for a column that is GEOMETRY already). A value that is not a geometry fails the
/// load (DuckDB's message names it).
fn geometry_conversions(
    conn: &Connection,
    place: Place<'_>,
    columns: &[String],
) -> Result<Vec<(String, String)>, crate::duck::DuckError> {
    let types = place.columns(conn)?;
    let mut conversions = Vec::new();
    for column in columns {
        let Some((_, data_type)) = types.iter().find(|(name, _)| name == column) else {
            return Err(crate::duck::DuckError {
                message: format!("geometry_columns: the upload has no column `{column}`"),
                kind: crate::duck::DuckErrorKind::Other,
            });
        };
        let quoted = quote_ident(column);
        match data_type.as_str() {
            t if t.starts_with("GEOMETRY") => {}
            "BLOB" => conversions.push((column.clone(), format!("ST_GeomFromWKB({quoted})"))),
            _ => conversions.push((column.clone(), format!("{quoted}::VARCHAR::GEOMETRY"))),
        }
    }
    Ok(conversions)
}

/// `* REPLACE (expr AS column, …)`, or `*`.
fn star_replacing(conversions: &[(String, String)]) -> String {
    if conversions.is_empty() {
        return "*".to_string();
    }
    let replaced: Vec<String> = conversions
        .iter()
        .map(|(c, e)| format!("{e} AS {}", quote_ident(c)))
        .collect();
    format!("* REPLACE ({})", replaced.join(", "))
}

/// Turns the named columns of a new table into GEOMETRY: the table made again from itself, in
/// the load's transaction.
fn to_geometry(
    conn: &Connection,
    dataset: &DatasetName,
    columns: &[String],
) -> Result<(), crate::duck::DuckError> {
    let place = Place {
        database: "current_database()",
        table: dataset.as_str(),
    };
    let conversions = geometry_conversions(conn, place, columns)?;
    if conversions.is_empty() {
        return Ok(());
    }
    let table = place.qualified();
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TABLE {table} AS SELECT {} FROM {table}",
        star_replacing(&conversions)
    ))
}

/// The bounding-box columns a table without indexes (a lake) keeps beside a GEOMETRY column.
const BOX_SUFFIXES: [(&str, &str); 4] = [
    ("xmin", "ST_XMin"),
    ("ymin", "ST_YMin"),
    ("xmax", "ST_XMax"),
    ("ymax", "ST_YMax"),
];

/// Whether the spatial extension is loaded (without it there is nothing to index or cluster
/// by).
fn has_spatial(conn: &Connection) -> Result<bool, crate::duck::DuckError> {
    Ok(count(
        conn,
        "SELECT count(*)::VARCHAR FROM duckdb_functions() WHERE lower(function_name) = 'st_intersects'",
    )? > 0)
}

/// The GEOMETRY columns of the dataset (none without the spatial extension).
fn geometry_columns(
    conn: &Connection,
    dataset: &DatasetName,
) -> Result<Vec<String>, crate::duck::DuckError> {
    if !has_spatial(conn)? {
        return Ok(Vec::new());
    }
    let place = Place {
        database: "current_database()",
        table: dataset.as_str(),
    };
    Ok(place
        .columns(conn)?
        .into_iter()
        .filter(|(_, t)| t.starts_with("GEOMETRY"))
        .map(|(c, _)| c)
        .collect())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The stage of a lake's load: a temporary table of the loading connection.
const STAGE: &str = "duckstream_stage";

/// A new table of a database without indexes (a lake), made in one statement from a stage:
/// its named columns made GEOMETRY, its rows in Hilbert order of its first GEOMETRY column,
/// and four columns `<column>_xmin`, `_ymin`, `_xmax`, `_ymax` per GEOMETRY column. DuckLake
/// keeps each file's minimum and maximum of every column, so a filter on the box columns skips
/// the files it cannot match (a bbox filter opened 9 of 9 files on the geometry alone, 1 with
/// the box columns: `../shared/research/lake/geo_pruning.py`). One statement, because DuckLake
/// cannot make a table again from itself within the transaction that made it (the first
/// version's files are gone before the second reads them). A source with no geometry is
/// written straight, without the stage; `geometry`: whether the source may have a GEOMETRY
/// column (when not, and no column is named, nothing is asked of it before the load).
fn create_staged(
    conn: &Connection,
    dataset: &DatasetName,
    src: &str,
    geometry: bool,
    named: &[String],
) -> Result<(), crate::duck::DuckError> {
    let spatial = !named.is_empty()
        || (geometry
            && has_spatial(conn)?
            && count(
                conn,
                &format!(
                    "SELECT count(*)::VARCHAR FROM (DESCRIBE SELECT * FROM {src}) \
                     WHERE column_type LIKE 'GEOMETRY%'"
                ),
            )? > 0);
    if !spatial {
        // Nothing to lay out: one pass, straight from the source.
        return conn.execute_batch(&format!(
            "CREATE OR REPLACE TABLE main.{} AS SELECT * FROM {src}",
            quote_ident(dataset.as_str())
        ));
    }
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS temp.main.{STAGE}; CREATE TEMP TABLE {STAGE} AS SELECT * FROM {src}"
    ))?;
    let made = create_from_stage(conn, dataset, named);
    let dropped = conn.execute_batch(&format!("DROP TABLE IF EXISTS temp.main.{STAGE}"));
    made.and(dropped)
}

fn create_from_stage(
    conn: &Connection,
    dataset: &DatasetName,
    named: &[String],
) -> Result<(), crate::duck::DuckError> {
    let stage = Place {
        database: "'temp'",
        table: STAGE,
    };
    let conversions = geometry_conversions(conn, stage, named)?;
    // Every GEOMETRY column of the result, as an expression over the stage.
    let geometries: Vec<(String, String)> = if has_spatial(conn)? {
        stage
            .columns(conn)?
            .into_iter()
            .filter_map(|(c, t)| match conversions.iter().find(|(n, _)| *n == c) {
                Some((_, e)) => Some((c, e.clone())),
                None => t
                    .starts_with("GEOMETRY")
                    .then(|| (c.clone(), quote_ident(&c))),
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut select = vec![star_replacing(&conversions)];
    for (column, expr) in &geometries {
        for (suffix, f) in BOX_SUFFIXES {
            select.push(format!(
                "{f}({expr}) AS {}",
                quote_ident(&format!("{column}_{suffix}"))
            ));
        }
    }
    let from = stage.qualified();
    let order = match geometries.first() {
        Some((_, e)) => {
            format!(" ORDER BY ST_Hilbert({e}, (SELECT ST_Extent(ST_Extent_Agg({e})) FROM {from}))")
        }
        None => String::new(),
    };
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TABLE main.{} AS SELECT {} FROM {from}{order}",
        quote_ident(dataset.as_str()),
        select.join(", ")
    ))
}

/// Fills the box columns of rows an append added (a table without them is left alone).
fn fill_boxes(conn: &Connection, dataset: &DatasetName) -> Result<(), crate::duck::DuckError> {
    let place = Place {
        database: "current_database()",
        table: dataset.as_str(),
    };
    let columns: Vec<String> = place.columns(conn)?.into_iter().map(|(c, _)| c).collect();
    let table = place.qualified();
    for column in geometry_columns(conn, dataset)? {
        if !columns.contains(&format!("{column}_xmin")) {
            continue;
        }
        let sets: Vec<String> = BOX_SUFFIXES
            .iter()
            .map(|(suffix, f)| {
                format!(
                    "{} = {f}({})",
                    quote_ident(&format!("{column}_{suffix}")),
                    quote_ident(&column)
                )
            })
            .collect();
        conn.execute_batch(&format!(
            "UPDATE {table} SET {} WHERE {} IS NULL AND {} IS NOT NULL",
            sets.join(", "),
            quote_ident(&format!("{column}_xmin")),
            quote_ident(&column)
        ))?;
    }
    Ok(())
}

/// An R-tree index on every GEOMETRY column of a new table (the spatial extension's
/// `RTREE`): a bounding-box filter on 10M points went from 0.84 s to 0.002 s with it
/// (docs/BENCHMARKS.md). Appends keep it up to date. Without the spatial extension no index
/// is built (and none is needed to load).
fn index_geometry(conn: &Connection, dataset: &DatasetName) -> Result<(), crate::duck::DuckError> {
    for column in geometry_columns(conn, dataset)? {
        let index = format!("{}_{}_rtree", dataset.as_str(), column).replace('"', "");
        conn.execute_batch(&format!(
            "CREATE INDEX \"{index}\" ON main.\"{}\" USING RTREE ({})",
            dataset.as_str(),
            quote_ident(&column)
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

/// Drops the dataset: `None` if there was none, else the data version the drop made when the
/// database names its own (`Some(None)`: the gateway numbers it).
pub fn drop(tenant: &Tenant, name: &DatasetName) -> Result<Option<Option<u64>>, GatewayError> {
    let conn = tenant.connection()?;
    let exists = table_exists(&conn, name).map_err(GatewayError::internal)?;
    if !exists {
        return Ok(None);
    }
    conn.execute_batch(&format!("DROP TABLE main.\"{}\"", name.as_str()))
        .map_err(GatewayError::internal)?;
    Ok(Some(tenant.committed_version(&conn)?))
}
