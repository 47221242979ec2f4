//! Uploads a hostile client sends. GeoJSON is parsed by duckstream, never by GDAL: a VRT body
//! (reading `/etc/passwd`, the environment, or a `/vsicurl/` URL) is refused and leaves
//! nothing behind, a `crs` link is never fetched (a listener the test owns sees no
//! connection), every geometry type and property type round-trips. The CSV loader's rejects
//! tables never touch a tenant's datasets named `reject_errors` or `reject_scans`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{json_of, named, names, read_lines, spawn_app, TestApp};

async fn put(app: &TestApp, path_query: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/v1/t/datasets/{path_query}")))
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn rows(app: &TestApp, sql: &str) -> Vec<Value> {
    let out = read_lines(app.post("t", &json!({ "sql": sql }).to_string()).await).await;
    assert_eq!(out.last()["type"], "end", "{}", out.raw);
    out.rows()
}

async fn listing(app: &TestApp) -> Value {
    let resp = app
        .client
        .get(app.url("/v1/t/datasets"))
        .send()
        .await
        .unwrap();
    json_of(resp).await
}

fn spool_is_empty(app: &TestApp) -> bool {
    std::fs::read_dir(app.dir.path().join(".spool/t"))
        .map(|d| d.count() == 0)
        .unwrap_or(true)
}

/// A GDAL virtual data source whose layer reads `source`.
fn vrt(source: &str) -> String {
    format!(
        "<OGRVRTDataSource><OGRVRTLayer name=\"x\"><SrcDataSource>{source}</SrcDataSource>\
         </OGRVRTLayer></OGRVRTDataSource>"
    )
}

/// What GDAL would have read (local files, the process environment) is refused as not
/// GeoJSON: 400, no dataset, the listing and data version unchanged, no file left.
#[actix_web::test]
async fn a_vrt_body_is_refused_and_reads_nothing() {
    let app = spawn_app().await;
    let before = listing(&app).await;
    for source in ["CSV:/etc/passwd", "CSV:/proc/self/environ", "/etc/passwd"] {
        for format in ["format=geojson", "format=geojson&mode=append"] {
            let resp = put(&app, &format!("leak?{format}"), vrt(source)).await;
            assert_eq!(resp.status(), 400, "{source}");
            let e = json_of(resp).await;
            assert_eq!(e["code"], "invalid_upload", "{e}");
            let msg = e["message"].as_str().unwrap();
            // The streaming scan (not JSON) or the GeoJSON reader (not GeoJSON) refuses it.
            assert!(
                msg.contains("not a GeoJSON") || msg.contains("not JSON"),
                "{msg}"
            );
            assert!(!msg.contains("root:"), "{msg}");
        }
    }
    assert_eq!(listing(&app).await, before);
    assert!(spool_is_empty(&app));
}

/// A VRT naming a `/vsicurl/` URL, and GeoJSON with a `link` CRS (or a `name` that is a URL),
/// pointed at a listener this test owns: no connection ever arrives. The VRT is refused; the
/// GeoJSON loads, its `crs` ignored (RFC 7946: WGS 84).
#[actix_web::test]
async fn nothing_an_upload_names_is_fetched() {
    let app = spawn_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let resp = put(
        &app,
        "ssrf?format=geojson",
        vrt(&format!("/vsicurl/http://127.0.0.1:{port}/x")),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["code"], "invalid_upload");
    let feature = json!({"type": "Feature", "properties": {"n": 1},
        "geometry": {"type": "Point", "coordinates": [1.5, 2.5]}});
    for crs in [
        json!({"type": "link", "properties": {"href": format!("http://127.0.0.1:{port}/crs"), "type": "proj4"}}),
        json!({"type": "name", "properties": {"name": format!("/vsicurl/http://127.0.0.1:{port}/crs")}}),
    ] {
        let body = json!({"type": "FeatureCollection", "crs": crs, "features": [feature]});
        let resp = put(&app, "linked?format=geojson", body.to_string()).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(json_of(resp).await["rows"], 1);
        let listed = listing(&app).await;
        let linked = named(&listed["datasets"], "linked");
        assert_eq!(
            linked["geometry_columns"][0]["crs"], "EPSG:4326",
            "{linked}"
        );
        assert_eq!(
            rows(&app, "SELECT n, ST_AsText(geom) FROM linked").await,
            vec![json!([1, "POINT (1.5 2.5)"])]
        );
    }
    // Every upload has answered: a fetch would have connected by now.
    let accepted = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await;
    assert!(accepted.is_err(), "the server connected to the listener");
    assert_eq!(
        names(&listing(&app).await["datasets"]),
        ["linked", "people"]
    );
}

/// One feature of each geometry type (Z too, and none), with properties of several types:
/// the rows, the columns in order (properties, then `geom`) with their types, and each
/// geometry as DuckDB reads it back (`ST_AsText`, `ST_AsGeoJSON`).
#[actix_web::test]
async fn every_geometry_type_and_property_type_round_trips() {
    let app = spawn_app().await;
    let geometries = [
        (
            json!({"type": "Point", "coordinates": [1.5, 2.5]}),
            "POINT (1.5 2.5)",
        ),
        (
            json!({"type": "Point", "coordinates": [1.5, 2.5, 3.5]}),
            "POINT Z (1.5 2.5 3.5)",
        ),
        (
            json!({"type": "LineString", "coordinates": [[0.5, 0.5], [1.5, 1.5]]}),
            "LINESTRING (0.5 0.5, 1.5 1.5)",
        ),
        (
            json!({"type": "LineString", "coordinates": [[0.5, 0.5, 1.5], [1.5, 1.5, 2.5]]}),
            "LINESTRING Z (0.5 0.5 1.5, 1.5 1.5 2.5)",
        ),
        (
            json!({"type": "Polygon", "coordinates": [[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 0.0]], [[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 1.0]]]}),
            "POLYGON ((0 0, 10 0, 10 10, 0 0), (1 1, 2 1, 2 2, 1 1))",
        ),
        (
            json!({"type": "MultiPoint", "coordinates": [[1.5, 2.5], [3.5, 4.5]]}),
            "MULTIPOINT (1.5 2.5, 3.5 4.5)",
        ),
        (
            json!({"type": "MultiLineString", "coordinates": [[[0.0, 0.0], [1.0, 1.0]], [[2.0, 2.0], [3.0, 3.0]]]}),
            "MULTILINESTRING ((0 0, 1 1), (2 2, 3 3))",
        ),
        (
            json!({"type": "MultiPolygon", "coordinates": [[[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]], [[[5.0, 5.0], [6.0, 5.0], [6.0, 6.0], [5.0, 5.0]]]]}),
            "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))",
        ),
        (
            json!({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1.5, 2.5]}, {"type": "LineString", "coordinates": [[0.0, 0.0], [1.0, 1.0]]}]}),
            "GEOMETRYCOLLECTION (POINT (1.5 2.5), LINESTRING (0 0, 1 1))",
        ),
    ];
    // Written by hand: the properties' order is the columns' (serde_json's maps sort keys).
    let mut features: Vec<String> = geometries
        .iter()
        .enumerate()
        .map(|(i, (g, _))| {
            format!(
                r#"{{"type": "Feature", "id": {i}, "geometry": {g}, "properties": {{"id": {i},
                "f": {i}.25, "s": "s{i}", "b": {}, "o": {{"k": {i}, "tags": ["a", "b"]}}}}}}"#,
                i % 2 == 0
            )
        })
        .collect();
    // No geometry, and properties that leave some keys out.
    features.push(
        r#"{"type": "Feature", "properties": {"s": null, "id": 99}, "geometry": null}"#.into(),
    );
    let body = format!(
        r#"{{"type": "FeatureCollection", "features": [{}]}}"#,
        features.join(",\n")
    );
    let r = json_of(put(&app, "every?format=geojson", body).await).await;
    assert_eq!(r["rows"], geometries.len() + 1, "{r}");

    let listed = listing(&app).await;
    let every = named(&listed["datasets"], "every");
    let columns: Vec<(String, String)> = every["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("id", "BIGINT"),
        ("f", "DOUBLE"),
        ("s", "VARCHAR"),
        ("b", "BOOLEAN"),
        ("o", "STRUCT(k BIGINT, tags VARCHAR[])"),
        ("geom", "GEOMETRY('EPSG:4326')"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    assert_eq!(columns, want);
    assert_eq!(
        every["geometry_columns"],
        json!([{"name": "geom", "crs": "EPSG:4326"}])
    );

    let out = rows(
        &app,
        "SELECT id, f, s, b, o, ST_AsText(geom), ST_AsGeoJSON(geom) FROM every ORDER BY id",
    )
    .await;
    for (i, (geometry, wkt)) in geometries.iter().enumerate() {
        let row = &out[i];
        assert_eq!(
            row.as_array().unwrap()[..6].to_vec(),
            vec![
                json!(i),
                json!(i as f64 + 0.25),
                json!(format!("s{i}")),
                json!(i % 2 == 0),
                json!({"k": i, "tags": ["a", "b"]}),
                json!(wkt)
            ],
            "{row}"
        );
        let geojson = match &row[6] {
            Value::String(s) => serde_json::from_str(s).unwrap(),
            v => v.clone(),
        };
        assert_eq!(&geojson, geometry, "{row}");
    }
    assert_eq!(
        out[geometries.len()],
        json!([99, null, null, null, null, null, null])
    );
    // The geometry column streams as GeoJSON, Z included.
    assert_eq!(
        rows(&app, "SELECT geom FROM every WHERE id = 1").await,
        vec![json!([{"type": "Point", "coordinates": [1.5, 2.5, 3.5]}])]
    );
    assert!(spool_is_empty(&app));
}

/// An empty FeatureCollection is an empty table with its geometry column; a lone Feature is
/// one row, GeoJSON lines one a line; a `name` CRS sets the column's CRS; append adds to a
/// GeoJSON dataset.
#[actix_web::test]
async fn empty_collections_lone_features_named_crs_and_append() {
    let app = spawn_app().await;
    let r = json_of(
        put(
            &app,
            "empty?format=geojson",
            r#"{"type":"FeatureCollection","features":[]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(r["rows"], 0, "{r}");
    let listed = listing(&app).await;
    let empty = named(&listed["datasets"], "empty");
    assert_eq!(
        (empty["rows"].clone(), empty["columns"].clone()),
        (
            json!(0),
            json!([{"name": "geom", "type": "GEOMETRY('EPSG:4326')"}])
        )
    );
    assert_eq!(
        rows(&app, "SELECT count(*) FROM empty").await,
        vec![json!([0])]
    );
    // Features without geometries: a GEOMETRY column of NULLs, with its CRS.
    let none = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"a":1},"geometry":null}]}"#;
    let r = json_of(put(&app, "nogeom?format=geojson", none).await).await;
    assert_eq!(r["rows"], 1, "{r}");
    let listed = listing(&app).await;
    assert_eq!(
        named(&listed["datasets"], "nogeom")["columns"],
        json!([{"name": "a", "type": "BIGINT"}, {"name": "geom", "type": "GEOMETRY('EPSG:4326')"}])
    );
    assert_eq!(
        rows(&app, "SELECT a, geom FROM nogeom").await,
        vec![json!([1, null])]
    );

    let lone = json!({"type": "Feature", "properties": {"name": "a"},
        "geometry": {"type": "Point", "coordinates": [1.5, 2.5]}});
    let r = json_of(put(&app, "lone?format=geojson", lone.to_string()).await).await;
    assert_eq!(r["rows"], 1, "{r}");
    let r = json_of(put(&app, "lone?format=geojson&mode=append", lone.to_string()).await).await;
    assert_eq!(r["rows"], 1, "{r}");
    let r = json_of(
        put(
            &app,
            "lone?format=geojson&mode=append",
            r#"{"type":"FeatureCollection","features":[]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(r["rows"], 0, "{r}");
    assert_eq!(
        rows(&app, "SELECT name, ST_AsText(geom) FROM lone").await,
        vec![
            json!(["a", "POINT (1.5 2.5)"]),
            json!(["a", "POINT (1.5 2.5)"])
        ]
    );

    // GeoJSON lines: one Feature a line.
    let lines = format!("{lone}\n{lone}\n");
    let r = json_of(put(&app, "lines?format=geojson", lines).await).await;
    assert_eq!(r["rows"], 2, "{r}");
    assert_eq!(
        rows(&app, "SELECT count(*), min(name) FROM lines").await,
        vec![json!([2, "a"])]
    );

    let projected = json!({"type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}},
        "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [544357.5, 6867000.5]}}]});
    let r = json_of(put(&app, "mercator?format=geojson", projected.to_string()).await).await;
    assert_eq!(r["rows"], 1, "{r}");
    let listed = listing(&app).await;
    assert_eq!(
        named(&listed["datasets"], "mercator")["geometry_columns"],
        json!([{"name": "geom", "crs": "EPSG:3857"}])
    );

    // Not a FeatureCollection or a Feature, or a property taking `geom`: 400, nothing kept.
    for body in [
        json!({"type": "Point", "coordinates": [1, 2]}),
        json!({"type": "Feature", "properties": {"geom": 1}}),
        json!([lone]),
    ] {
        let resp = put(&app, "bad?format=geojson", body.to_string()).await;
        assert_eq!(resp.status(), 400, "{body}");
        assert_eq!(json_of(resp).await["code"], "invalid_upload");
    }
    assert!(listing(&app).await["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["name"] != "bad"));
    assert!(spool_is_empty(&app));
}

/// The CSV reader's rejects tables are the loader's own: datasets named `reject_errors` and
/// `reject_scans` keep their rows through uploads with and without `max_bad_rows`, and
/// `reject_errors` itself takes an upload with a skipped row.
#[actix_web::test]
async fn datasets_named_like_the_rejects_tables_survive() {
    let app = spawn_app().await;
    for (name, csv) in [("reject_errors", "v\n1\n2\n"), ("reject_scans", "v\n10\n")] {
        let r = json_of(put(&app, &format!("{name}?format=csv"), csv).await).await;
        assert_eq!(r["dataset"], name, "{r}");
    }
    assert_eq!(
        rows(&app, "SELECT v FROM reject_errors ORDER BY v").await,
        vec![json!([1]), json!([2])]
    );

    // Line 3 has a column too many.
    let bad = "v,w\n3,a\n4,b,c\n5,d\n";
    let r = json_of(put(&app, "other?format=csv&max_bad_rows=1", bad).await).await;
    assert_eq!(
        (r["rows"].clone(), r["rejected"].clone()),
        (json!(2), json!(1)),
        "{r}"
    );
    assert_eq!(r["rejects"][0]["line"], 3, "{r}");
    let r = json_of(put(&app, "other?format=csv&mode=append&max_bad_rows=1", bad).await).await;
    assert_eq!(r["rejected"], 1, "{r}");
    assert_eq!(
        rows(&app, "SELECT v FROM reject_errors ORDER BY v").await,
        vec![json!([1]), json!([2])]
    );
    assert_eq!(
        rows(&app, "SELECT v FROM reject_scans").await,
        vec![json!([10])]
    );

    // The dataset `reject_errors` itself, with a skipped row.
    let r = json_of(put(&app, "reject_errors?format=csv&max_bad_rows=1", bad).await).await;
    assert_eq!(
        (r["rows"].clone(), r["rejected"].clone()),
        (json!(2), json!(1)),
        "{r}"
    );
    assert_eq!(
        rows(&app, "SELECT v, w FROM reject_errors ORDER BY v").await,
        vec![json!([3, "a"]), json!([5, "d"])]
    );
    // More bad rows than allowed: refused, and the dataset is still the last one loaded.
    let worse = "v,w\n6,a,x\n7,b,y\n";
    let resp = put(
        &app,
        "reject_errors?format=csv&mode=append&max_bad_rows=1",
        worse,
    )
    .await;
    assert_eq!(json_of(resp).await["code"], "invalid_upload");
    assert_eq!(
        rows(&app, "SELECT count(*) FROM reject_errors").await,
        vec![json!([2])]
    );
    assert_eq!(
        rows(&app, "SELECT v FROM reject_scans").await,
        vec![json!([10])]
    );
    assert_eq!(
        names(&listing(&app).await["datasets"]),
        ["other", "people", "reject_errors", "reject_scans"]
    );
}
