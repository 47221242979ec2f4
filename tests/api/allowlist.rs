//! The function allowlist against the real DuckDB: every function this build and its spatial
//! extension list is reviewed in `src/engine/functions.txt`; every refused one is refused
//! by name over HTTP; the families that are in compute real values.

use duckstream::allowlist::{class_of, families, Class};
use serde_json::json;

use crate::helpers::spawn_app;

/// Every function name `duckdb_functions()` lists on a tenant (spatial loaded), lower case.
async fn listed(app: &crate::helpers::TestApp) -> Vec<String> {
    let out = app
        .query("SELECT DISTINCT lower(function_name) AS n FROM duckdb_functions() ORDER BY n")
        .await;
    assert_eq!(out.last()["type"], "end", "{}", out.raw);
    out.rows()
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn every_function_duckdb_lists_is_reviewed() {
    let app = spawn_app().await;
    let names = listed(&app).await;
    assert!(names.len() > 900, "spatial is loaded: {}", names.len());
    assert!(names.iter().any(|n| n == "st_area"));
    let unreviewed: Vec<&String> = names.iter().filter(|n| class_of(n).is_none()).collect();
    assert!(
        unreviewed.is_empty(),
        "review these (src/engine/functions.txt): {unreviewed:?}"
    );
}

#[actix_web::test]
async fn every_refused_function_is_refused_by_name() {
    let app = spawn_app().await;
    let names = listed(&app).await;
    let mut refused = 0;
    for name in names.iter().filter(|n| class_of(n) != Some(Class::Allow)) {
        // Refused on the parse tree, before DuckDB binds anything: the arguments do not matter.
        let body = json!({ "sql": format!("SELECT * FROM \"{name}\"()") }).to_string();
        let resp = app.post("t", &body).await;
        let status = resp.status().as_u16();
        let v: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
        assert_eq!(
            (status, v["code"].as_str()),
            (403, Some("forbidden")),
            "{name}: {v}"
        );
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("`{name}`")), "{name}: {message}");
        refused += 1;
    }
    assert!(refused > 100, "{refused}");
}

/// Which families are in, and why: each `allow` family says what it is for, and one of its
/// members computes a real value through the gateway.
#[actix_web::test]
async fn the_allowed_families_compute() {
    let allowed: Vec<&str> = families()
        .iter()
        .filter(|f| f.class == Class::Allow)
        .map(|f| f.title.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        allowed,
        [
            "operators",
            "spatial",
            "collation",
            "lists",
            "json",
            "aggregates",
            "catalog",
            "postgres",
            "tables",
            "time",
            "text",
            "math",
            "other"
        ]
    );
    for family in families() {
        let (name, why) = family.title.split_once(':').unwrap();
        assert!(!why.trim().is_empty(), "{name} says why");
    }
    let app = spawn_app().await;
    let cases = [
        ("SELECT 2 + 3 * 4", json!([14])),
        ("SELECT ST_Area(ST_MakeEnvelope(0, 0, 2, 3))", json!([6.0])),
        ("SELECT list_sum([1, 2, 3])", json!([6])),
        (
            "SELECT json_extract_string('{\"a\": \"b\"}', '$.a')",
            json!(["b"]),
        ),
        ("SELECT sum(id) FROM people", json!([6])),
        (
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'people'",
            json!([1]),
        ),
        ("SELECT current_database()", json!(["t"])),
        ("SELECT count(*) FROM range(7)", json!([7])),
        ("SELECT year(DATE '2026-12-07')", json!([2026])),
        ("SELECT upper('duck')", json!(["DUCK"])),
        ("SELECT greatest(3, 9, 4)", json!([9])),
        ("SELECT typeof(1::BIGINT)", json!(["BIGINT"])),
        ("SELECT current_setting('threads') > 0", json!([true])),
    ];
    for (sql, expected) in cases {
        let out = app.query(sql).await;
        assert_eq!(out.last()["type"], "end", "{sql}: {}", out.raw);
        assert_eq!(out.rows(), vec![expected], "{sql}");
    }
}
