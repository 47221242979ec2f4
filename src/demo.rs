//! The demo tenant: a deterministic synthetic `parcels` table (the shape of the geospatial
//! service duckstream comes from), with real geometry beside it: `parcel_points` (each
//! parcel's location as a GEOMETRY point) and `zones` (648 polygons, a 10° grid over the
//! world); created at start when `demo.duckdb` is missing. `parcels` keeps the shape the
//! benchmarks use.
//!
//! Invariants: the file appears atomically (built under a temporary name, then renamed), so a
//! crash never leaves a half-built demo; the same row count gives the same data (every value is
//! derived from `hash(id, salt)`), matching `../shared/bench/data.py`.

use std::path::Path;

const CITIES: &[&str] = &[
    "Amsterdam",
    "Athens",
    "Auckland",
    "Bangkok",
    "Barcelona",
    "Beijing",
    "Berlin",
    "Bogota",
    "Boston",
    "Brussels",
    "Budapest",
    "Buenos Aires",
    "Cairo",
    "Cape Town",
    "Chicago",
    "Copenhagen",
    "Delhi",
    "Dubai",
    "Dublin",
    "Helsinki",
    "Hong Kong",
    "Istanbul",
    "Jakarta",
    "Kyiv",
    "Lagos",
    "Lima",
    "Lisbon",
    "London",
    "Los Angeles",
    "Madrid",
    "Manila",
    "Melbourne",
    "Mexico City",
    "Montreal",
    "Moscow",
    "Mumbai",
    "Nairobi",
    "New York",
    "Oslo",
    "Paris",
    "Prague",
    "Rome",
    "Santiago",
    "Sao Paulo",
    "Seoul",
    "Singapore",
    "Stockholm",
    "Sydney",
    "Tokyo",
    "Vienna",
];
const TAGS: &[&str] = &[
    "residential",
    "commercial",
    "industrial",
    "historic",
    "vacant",
    "park",
    "mixed",
    "retail",
    "office",
    "farm",
    "school",
    "coastal",
];

fn sql_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// The statement that builds `parcels` with `rows` rows.
pub fn parcels_sql(rows: u64) -> String {
    let (cities, tags) = (sql_list(CITIES), sql_list(TAGS));
    format!(
        "CREATE TABLE parcels AS
SELECT
    i::BIGINT AS id,
    list_element({cities}, (hash(i, 1) % 50)::INTEGER + 1) AS city,
    ((hash(i, 2) % 1000) * (hash(i, 3) % 1000) // 10)::INTEGER AS population,
    (hash(i, 4) % 100000000)::DOUBLE / 1000 AS area,
    ((hash(i, 5) % 360000000)::BIGINT - 180000000)::DOUBLE / 1e6 AS lon,
    ((hash(i, 6) % 180000000)::BIGINT - 90000000)::DOUBLE / 1e6 AS lat,
    DATE '1900-01-01' + (hash(i, 7) % 45000)::INTEGER AS built,
    TIMESTAMP '2000-01-01' + to_microseconds((hash(i, 8) % 788400000000000)::BIGINT) AS updated,
    CASE WHEN hash(i, 9) % 20 = 0 THEN NULL
         ELSE list_element({tags}, (hash(i, 10) % 12)::INTEGER + 1) || ',' ||
              list_element({tags}, (hash(i, 11) % 12)::INTEGER + 1) END AS tags
FROM range({rows}) t(i)
ORDER BY i"
    )
}

/// The geometry beside `parcels`: a point per parcel, and a 10° grid of zones named by their
/// south-west corner (`cell 0,40`). Core DuckDB builds both (WKT casts): no extension needed.
pub const GEOMETRY_SQL: &str = "
CREATE TABLE parcel_points AS
SELECT id, ('POINT(' || lon || ' ' || lat || ')')::GEOMETRY AS geom FROM parcels ORDER BY id;
CREATE TABLE zones AS
SELECT x * 18 + y AS id,
       'cell ' || (x * 10 - 180) || ',' || (y * 10 - 90) AS name,
       ('POLYGON((' || (x * 10 - 180) || ' ' || (y * 10 - 90) || ', '
                    || (x * 10 - 170) || ' ' || (y * 10 - 90) || ', '
                    || (x * 10 - 170) || ' ' || (y * 10 - 80) || ', '
                    || (x * 10 - 180) || ' ' || (y * 10 - 80) || ', '
                    || (x * 10 - 180) || ' ' || (y * 10 - 90) || '))')::GEOMETRY AS geom
FROM range(36) a(x), range(18) b(y)
ORDER BY id;
";

/// Creates `<data_dir>/demo.duckdb` unless it exists. Blocking (DuckDB work): call it from a
/// blocking thread.
pub fn ensure_demo(data_dir: &Path, rows: u64) -> Result<(), duckdb::Error> {
    let path = data_dir.join("demo.duckdb");
    if path.exists() {
        return Ok(());
    }
    let tmp = data_dir.join("demo.duckdb.building");
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(data_dir.join("demo.duckdb.building.wal"));
    tracing::info!(rows, path = %path.display(), "creating the demo tenant (once)");
    let started = std::time::Instant::now();
    {
        let conn = duckdb::Connection::open(&tmp)?;
        conn.execute_batch(&parcels_sql(rows))?;
        conn.execute_batch(GEOMETRY_SQL)?;
        conn.execute_batch("CHECKPOINT")?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "demo tenant ready"
    );
    Ok(())
}
