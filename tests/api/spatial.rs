//! Spatial SQL: every tenant database loads DuckDB's spatial extension (from the local
//! repository the test command prepares), so spatial functions, CRS transforms and spatial
//! joins run; without the extension the server still serves, GEOMETRY still streams, GeoJSON
//! still loads, and a spatial function answers `extension_unavailable`.

use serde_json::json;

use crate::helpers::{create_tenant, json_of, spawn_app_with};

pub const ZONES: &str = "
    CREATE TABLE zones AS SELECT * FROM (VALUES
        (1, 'west', 'POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))'::GEOMETRY),
        (2, 'east', 'POLYGON((10 0, 20 0, 20 10, 10 10, 10 0))'::GEOMETRY)) t(id, name, geom);
    CREATE TABLE places AS SELECT i AS id, ('POINT(' || (i * 2 + 1) || ' 5)')::GEOMETRY AS geom
        FROM range(10) r(i);
";

#[actix_web::test]
async fn spatial_functions_transforms_and_joins_run() {
    spatial_sql_runs(&spawn_app_with(|c| create_tenant(&c.server.data_dir, "geo", ZONES)).await)
        .await;
}

/// Tenant `geo` of `app` holds [`ZONES`]: spatial functions, a CRS transform and a spatial
/// join give their values (also run on a lake tenant: `tests/api/lake.rs`).
pub async fn spatial_sql_runs(app: &crate::helpers::TestApp) {
    let q = |sql: &str| {
        let body = json!({ "sql": sql }).to_string();
        async move { crate::helpers::read_lines(app.post("geo", &body).await).await }
    };
    let basic = q("SELECT ST_AsText(ST_Point(1, 2)) AS p, ST_Area(geom) AS a, \
                   ST_Contains(geom, ST_Point(5, 5)) AS c, ST_Intersects(geom, ST_Point(15, 5)) AS i, \
                   ST_Distance(ST_Point(0, 0), ST_Point(3, 4)) AS d FROM zones WHERE id = 1")
        .await;
    assert_eq!(basic.last()["type"], "end", "{}", basic.raw);
    assert_eq!(
        basic.rows(),
        vec![json!(["POINT (1 2)", 100.0, true, false, 5.0])]
    );

    // WGS 84 (lat, lon axis order) to Web Mercator: Amsterdam.
    let t = q(
        "SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_Transform(ST_Point(52.37, 4.89), \
               'EPSG:4326', 'EPSG:3857') AS p)",
    )
    .await;
    let row = &t.rows()[0];
    assert!(
        (row[0].as_f64().unwrap() - 544_357.0).abs() < 100.0,
        "{row}"
    );
    assert!(
        (row[1].as_f64().unwrap() - 6_867_000.0).abs() < 5_000.0,
        "{row}"
    );

    // A spatial join: each place in its zone.
    let join = q(
        "SELECT z.name, count(*) AS n FROM zones z JOIN places p ON ST_Contains(z.geom, p.geom) \
                  GROUP BY z.name ORDER BY z.name",
    )
    .await;
    assert_eq!(join.last()["type"], "end", "{}", join.raw);
    assert_eq!(join.rows(), vec![json!(["east", 5]), json!(["west", 5])]);
}

#[actix_web::test]
async fn without_the_extension_the_server_serves_and_says_what_is_missing() {
    // An empty repository and an empty extension directory: nothing to install or load.
    let empty = tempfile::tempdir().unwrap();
    let (repo, installed) = (empty.path().join("repo"), empty.path().join("installed"));
    let app = spawn_app_with(move |c| {
        create_tenant(&c.server.data_dir, "geo", ZONES);
        c.engine.extension_repository = Some(repo);
        c.engine.extension_directory = Some(installed);
    })
    .await;
    let resp = app
        .post(
            "geo",
            &json!({ "sql": "SELECT ST_Point(1, 2)" }).to_string(),
        )
        .await;
    assert_eq!(resp.status(), 501);
    let body = json_of(resp).await;
    assert_eq!(body["code"], "extension_unavailable", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("spatial"),
        "{body}"
    );
    let msg = body["message"].as_str().unwrap();
    assert!(
        !msg.contains(&app.dir.path().display().to_string()),
        "{msg}"
    );
    // GEOMETRY is a core type: it still streams, and the rest of SQL works.
    let ok = crate::helpers::read_lines(
        app.post(
            "geo",
            &json!({ "sql": "SELECT count(*) AS n FROM zones" }).to_string(),
        )
        .await,
    )
    .await;
    assert_eq!(ok.rows(), vec![json!([2])]);
    // GeoJSON is parsed by duckstream and its WKB made GEOMETRY by core DuckDB: it loads
    // without spatial (no R-tree index then: that is spatial's).
    let geojson = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "a"}, "geometry": {"type": "Point", "coordinates": [1.5, 2.5]}},
        {"type": "Feature", "properties": {"name": "b"}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}
    ]});
    let resp = app
        .client
        .put(app.url("/v1/geo/datasets/shapes?format=geojson"))
        .body(geojson.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(resp).await["rows"], 2);
    let q = |sql: &str| {
        let body = json!({ "sql": sql }).to_string();
        let app = &app;
        async move { crate::helpers::read_lines(app.post("geo", &body).await).await }
    };
    let out = q("SELECT name, ST_AsText(geom), typeof(geom) FROM shapes ORDER BY name").await;
    assert_eq!(
        out.rows(),
        vec![
            json!(["a", "POINT (1.5 2.5)", "GEOMETRY('EPSG:4326')"]),
            json!(["b", "LINESTRING (0 0, 1 1)", "GEOMETRY('EPSG:4326')"])
        ],
        "{}",
        out.raw
    );
    let indexes = q("SELECT count(*) FROM duckdb_indexes() WHERE table_name = 'shapes'").await;
    assert_eq!(indexes.rows(), vec![json!([0])]);
}

/// An extension installed from one repository still loads when the server is pointed at
/// another (DuckDB refuses the second INSTALL: "the origin is different").
#[actix_web::test]
async fn an_installed_extension_loads_whatever_the_repository() {
    let scratch = tempfile::tempdir().unwrap();
    let installed = scratch.path().join("installed");
    let point = |app: crate::helpers::TestApp| async move {
        crate::helpers::read_lines(
            app.post(
                "geo",
                &json!({ "sql": "SELECT ST_AsText(ST_Point(1, 2))" }).to_string(),
            )
            .await,
        )
        .await
    };
    // First from the real repository, into this test's own extension directory.
    let dir = installed.clone();
    let first = spawn_app_with(move |c| {
        create_tenant(&c.server.data_dir, "geo", ZONES);
        c.engine.extension_directory = Some(dir);
    })
    .await;
    assert_eq!(point(first).await.rows(), vec![json!(["POINT (1 2)"])]);
    // Then pointed at another (empty) repository: the installed copy loads.
    let (dir, repo) = (installed.clone(), scratch.path().join("elsewhere"));
    let second = spawn_app_with(move |c| {
        create_tenant(&c.server.data_dir, "geo", ZONES);
        c.engine.extension_directory = Some(dir);
        c.engine.extension_repository = Some(repo);
    })
    .await;
    let out = point(second).await;
    assert_eq!(out.rows(), vec![json!(["POINT (1 2)"])], "{}", out.raw);
}

/// The demo's spatial join (README): every parcel point falls in one zone of the grid, and a
/// zone's count is what a plain lon/lat range over `parcels` gives.
#[actix_web::test]
async fn the_demo_spatial_join_counts_every_parcel_once() {
    let app = spawn_app_with(|c| {
        duckstream::demo::ensure_demo(&c.server.data_dir, 20_000).unwrap();
    })
    .await;
    let q = |sql: &str| {
        let body = json!({ "sql": sql }).to_string();
        let app = &app;
        async move { crate::helpers::read_lines(app.post("demo", &body).await).await }
    };
    let join = q(
        "SELECT z.name, count(*) AS parcels FROM zones z JOIN parcel_points p \
                  ON ST_Contains(z.geom, p.geom) GROUP BY z.name ORDER BY parcels DESC, z.name",
    )
    .await;
    assert_eq!(join.last()["type"], "end", "{}", join.raw);
    let rows = join.rows();
    let total: i64 = rows.iter().map(|r| r[1].as_i64().unwrap()).sum();
    assert_eq!(total, 20_000);
    let top = &rows[0];
    let corner: Vec<i64> = top[0].as_str().unwrap()[5..]
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    let plain = q(&format!(
        "SELECT count(*) FROM parcels WHERE lon > {x} AND lon < {x} + 10 AND lat > {y} AND lat < {y} + 10",
        x = corner[0],
        y = corner[1]
    ))
    .await;
    assert_eq!(plain.rows(), vec![json!([top[1]])], "{}", top);
}
