//! `progress` lines from DuckDB's own query progress, on a query long enough to have some.

use serde_json::{json, Value};

use crate::helpers::{create_tenant, read_lines, spawn_app_with, TestApp};

async fn big_app() -> TestApp {
    spawn_app_with(|c| {
        create_tenant(
            &c.server.data_dir,
            "big",
            "CREATE TABLE big AS SELECT range AS id FROM range(30000000)",
        )
    })
    .await
}

const SLOW: &str =
    "SELECT a.id % 10 AS k, count(*) AS n FROM big a JOIN big b USING (id) GROUP BY k ORDER BY k";

#[actix_web::test]
async fn a_long_query_reports_progress_that_never_goes_backwards() {
    let app = big_app().await;
    let resp = app
        .client
        .post(app.url("/v1/big/query"))
        .body(json!({"sql": SLOW, "progress": true}).to_string())
        .send()
        .await
        .unwrap();
    let out = read_lines(resp).await;
    let progress: Vec<&Value> = out
        .lines
        .iter()
        .filter(|l| l["type"] == "progress")
        .collect();
    assert!(progress.len() >= 2, "{:?}", out.kinds());
    let mut last: f64 = -1.0;
    for p in &progress {
        assert_eq!(p["query_id"], out.lines[0]["query_id"]);
        let pct = p["percentage"].as_f64().unwrap_or(last.max(0.0));
        assert!((0.0..=100.0).contains(&pct) && pct >= last, "{progress:?}");
        last = pct;
        assert!(p["rows_processed"].is_u64());
    }
    assert!(last > 0.0, "DuckDB got somewhere: {progress:?}");
    // The result is whole and ends as always; no progress after it.
    assert_eq!(out.last()["type"], "end");
    assert_eq!(out.rows().len(), 10);
    assert_eq!(out.rows()[0], json!([0, 3000000]));

    // Not asked: none (the same query over GET, and on SSE).
    let plain = app
        .client
        .get(app.url("/v1/big/query"))
        .query(&[("sql", SLOW)])
        .send()
        .await
        .unwrap();
    let plain = read_lines(plain).await;
    assert!(
        plain.kinds().iter().all(|k| *k != "progress"),
        "{:?}",
        plain.kinds()
    );
    assert_eq!(plain.rows(), out.rows());
    let asked = app
        .client
        .get(app.url("/v1/big/query"))
        .query(&[("sql", SLOW), ("progress", "true")])
        .send()
        .await
        .unwrap();
    let asked = read_lines(asked).await;
    assert!(asked.kinds().contains(&"progress"), "{:?}", asked.kinds());
}

#[actix_web::test]
async fn a_subscription_with_progress_shows_its_runs_progress() {
    use crate::helpers::{read_until, send, ws_connect, Cred};
    let app = big_app().await;
    let mut ws = ws_connect(&app, "big", &Cred::None).await.unwrap();
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "p", "sql": SLOW, "progress": true}),
    )
    .await;
    let lines = read_until(&mut ws, |l| l["type"] == "end").await;
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "subscribed", "{kinds:?}");
    let channel = lines[0]["channel"].clone();
    let progress: Vec<&Value> = lines.iter().filter(|l| l["type"] == "progress").collect();
    assert!(!progress.is_empty(), "{kinds:?}");
    assert!(progress.iter().all(|p| p["query_id"] == channel));
    // The result follows the progress, whole.
    let update = kinds.iter().position(|k| *k == "update").unwrap();
    assert!(kinds[..update]
        .iter()
        .all(|k| *k == "subscribed" || *k == "progress"));
    let rows: Vec<Value> = lines
        .iter()
        .filter(|l| l["type"] == "data")
        .flat_map(|l| l["rows"].as_array().unwrap().clone())
        .collect();
    assert_eq!(rows.len(), 10);
}
