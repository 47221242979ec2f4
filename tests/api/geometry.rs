//! GEOMETRY out: every WKB type (Z, M, ZM, empty, nested collections) written in Rust as
//! GeoJSON, WKT or base64 WKB, checked value by value against the spatial extension's own
//! `ST_AsGeoJSON`, `ST_AsText` and `ST_AsWKB` in the same query; the CRS in the metadata; the
//! `geometry` option on HTTP, SSE and WebSocket.

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{create_tenant, read_lines, spawn_app_with, ws_connect, Cred, TestApp};

const CORPUS: &[&str] = &[
    "POINT (1 2)",
    "POINT Z (1 2 3)",
    "POINT M (1 2 4)",
    "POINT ZM (1 2 3 4)",
    "POINT EMPTY",
    "POINT (-122.4194155 37.7749295)",
    "POINT (0.1 1e-7)",
    "POINT (1e300 -2.5e-300)",
    "LINESTRING (0 0, 1 1, 2 0.5)",
    "LINESTRING Z (0 0 0, 1 1 1)",
    "LINESTRING EMPTY",
    "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (1 1, 2 1, 2 2, 1 1))",
    "POLYGON ZM ((0 0 1 2, 1 0 1 2, 1 1 1 2, 0 0 1 2))",
    "POLYGON EMPTY",
    "MULTIPOINT ((1 2), (3 4))",
    "MULTIPOINT Z ((1 2 3), (4 5 6))",
    "MULTIPOINT EMPTY",
    "MULTILINESTRING ((0 0, 1 1), (2 2, 3 3, 4 4))",
    "MULTILINESTRING EMPTY",
    "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5), (5.1 5.1, 5.2 5.1, 5.2 5.2, 5.1 5.1)))",
    "MULTIPOLYGON EMPTY",
    "GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))",
    "GEOMETRYCOLLECTION (GEOMETRYCOLLECTION (POINT (1 2)), MULTIPOINT ((3 4)), POLYGON EMPTY)",
    "GEOMETRYCOLLECTION Z (POINT Z (1 2 3))",
    "GEOMETRYCOLLECTION EMPTY",
];

/// The SQL that makes tenant `geo`'s `corpus` table: every geometry type of [`CORPUS`].
pub fn corpus_sql() -> String {
    let values: Vec<String> = CORPUS
        .iter()
        .enumerate()
        .map(|(i, wkt)| format!("({i}, '{wkt}'::GEOMETRY)"))
        .collect();
    format!(
        "CREATE TABLE corpus AS SELECT * FROM (VALUES {}) t(id, g);",
        values.join(", ")
    )
}

async fn app_with_corpus() -> TestApp {
    let sql = corpus_sql();
    spawn_app_with(move |c| create_tenant(&c.server.data_dir, "geo", &sql)).await
}

/// Numbers as f64 (DuckDB writes `1.0`, so do we, but compare values, not spellings).
fn normalized(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        other => other.clone(),
    }
}

/// WKT as words and numbers (numbers compared as f64: `1e300` and `1e+300` are the same).
fn wkt_tokens(s: &str) -> Vec<String> {
    s.replace('(', " ( ")
        .replace(')', " ) ")
        .replace(',', " , ")
        .split_whitespace()
        .map(|t| match t.parse::<f64>() {
            Ok(f) => format!("{f:e}"),
            Err(_) => t.to_string(),
        })
        .collect()
}

async fn query(app: &TestApp, body: Value) -> crate::helpers::Lines {
    read_lines(app.post("geo", &body.to_string()).await).await
}

#[actix_web::test]
async fn every_geometry_type_matches_the_spatial_extension() {
    every_geometry_type_matches(&app_with_corpus().await).await;
}

/// Tenant `geo` of `app` holds [`corpus_sql`]'s table: each geometry streams as the spatial
/// extension's own GeoJSON (also run on a lake tenant: `tests/api/lake.rs`).
pub async fn every_geometry_type_matches(app: &TestApp) {
    let sql = "SELECT id, g, ST_AsGeoJSON(g) AS ref FROM corpus ORDER BY id";
    let out = query(app, json!({ "sql": sql })).await;
    assert_eq!(out.last()["type"], "end", "{}", out.raw);
    assert_eq!(out.lines[0]["columns"][1]["type"], "GEOMETRY");
    let rows = out.rows();
    assert_eq!(rows.len(), CORPUS.len());
    for row in &rows {
        let reference: Value = serde_json::from_str(row[2].as_str().unwrap()).unwrap();
        assert_eq!(
            normalized(&row[1]),
            normalized(&reference),
            "{}",
            CORPUS[row[0].as_u64().unwrap() as usize]
        );
    }

    let sql = "SELECT id, g, ST_AsText(g) AS ref FROM corpus ORDER BY id";
    let out = query(app, json!({ "sql": sql, "geometry": "wkt" })).await;
    assert_eq!(out.last()["type"], "end", "{}", out.raw);
    for row in out.rows() {
        assert_eq!(
            wkt_tokens(row[1].as_str().unwrap()),
            wkt_tokens(row[2].as_str().unwrap()),
            "{}",
            CORPUS[row[0].as_u64().unwrap() as usize]
        );
    }

    let sql = "SELECT id, g, ST_AsWKB(g) AS ref FROM corpus ORDER BY id";
    let out = query(app, json!({ "sql": sql, "geometry": "wkb" })).await;
    for row in out.rows() {
        let ours = base64::engine::general_purpose::STANDARD
            .decode(row[1].as_str().unwrap())
            .unwrap();
        let theirs = base64::engine::general_purpose::STANDARD
            .decode(row[2].as_str().unwrap())
            .unwrap();
        assert_eq!(
            ours,
            theirs,
            "{}",
            CORPUS[row[0].as_u64().unwrap() as usize]
        );
    }

    // NULL stays null; geometry inside a list or struct is GeoJSON too.
    let out = query(
        app,
        json!({ "sql": "SELECT NULL::GEOMETRY AS n, [g] AS l, {'g': g} AS s FROM corpus WHERE id = 0" }),
    )
    .await;
    let point = json!({"type": "Point", "coordinates": [1.0, 2.0]});
    assert_eq!(
        normalized(&out.rows()[0]),
        normalized(&json!([null, [point], {"g": point}]))
    );
}

#[actix_web::test]
async fn the_crs_is_in_the_metadata() {
    let app = app_with_corpus().await;
    let out = query(
        &app,
        json!({ "sql": "SELECT ST_SetCRS(ST_Point(4.89, 52.37), 'EPSG:4326') AS g, g AS plain FROM corpus LIMIT 1" }),
    )
    .await;
    let columns = &out.lines[0]["columns"];
    assert_eq!(columns[0]["type"], "GEOMETRY('EPSG:4326')", "{}", out.raw);
    assert_eq!(columns[0]["crs"], "EPSG:4326", "{}", out.raw);
    assert!(columns[1].get("crs").is_none(), "{}", out.raw);
}

#[actix_web::test]
async fn the_geometry_option_works_on_every_transport() {
    let app = app_with_corpus().await;
    let sql = "SELECT g FROM corpus WHERE id = 1";
    // HTTP GET and SSE take it as a query parameter.
    let get = app
        .client
        .get(app.url("/v1/geo/query"))
        .query(&[("sql", sql), ("geometry", "wkt")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        read_lines(get).await.rows(),
        vec![json!(["POINT Z (1 2 3)"])]
    );
    let sse = app
        .client
        .get(app.url("/v1/geo/sse"))
        .query(&[("sql", sql), ("geometry", "wkb")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = sse
        .lines()
        .find(|l| l.starts_with("data: {\"type\":\"data\""))
        .unwrap();
    let line: Value = serde_json::from_str(&data[6..]).unwrap();
    assert_eq!(
        line["rows"][0][0],
        base64::engine::general_purpose::STANDARD.encode(
            [
                &[1u8, 0xe9, 3, 0, 0][..],
                &1f64.to_le_bytes(),
                &2f64.to_le_bytes(),
                &3f64.to_le_bytes()
            ]
            .concat()
        )
    );
    // WebSocket: a field of the query message.
    let mut ws = ws_connect(&app, "geo", &Cred::None).await.unwrap();
    ws.send(Message::text(
        json!({"type": "query", "id": "g", "sql": sql, "geometry": "geojson"}).to_string(),
    ))
    .await
    .unwrap();
    let mut rows = Vec::new();
    while let Some(Ok(Message::Text(t))) = ws.next().await {
        let done = t.lines().any(|l| l.contains("\"type\":\"end\""));
        for l in t.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            if v["type"] == "data" {
                rows.extend(v["rows"].as_array().unwrap().clone());
            }
        }
        if done {
            break;
        }
    }
    assert_eq!(
        normalized(&Value::Array(rows)),
        normalized(&json!([[{"type": "Point", "coordinates": [1, 2, 3]}]]))
    );
    // A form that does not exist is the client's mistake, before anything runs.
    let bad = app
        .post("geo", &json!({ "sql": sql, "geometry": "kml" }).to_string())
        .await;
    assert_eq!(bad.status(), 400);
    let body = crate::helpers::json_of(bad).await;
    assert_eq!(body["code"], "invalid_request");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("geojson, wkt or wkb"));
}
