//! Idle tenants: a tenant nothing has used for `tenant_idle_secs` is unloaded (its database
//! closed, its memory and threads given back) and loads again on its next request, with its
//! data and its version; a tenant that an open WebSocket holds stays loaded.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{connect, read_until, send, spawn_app_with, upload_csv, TestApp};

const UNLOADED: &str = "duckstream_tenants_unloaded_total";

async fn idle_after_one_second() -> TestApp {
    spawn_app_with(|c| c.engine.tenant_idle = Duration::from_secs(1)).await
}

/// The rows and the `X-Data-Version` of one query on tenant `t`.
async fn answer(app: &TestApp, sql: &str) -> (serde_json::Value, String) {
    let resp = app
        .client
        .get(app.url("/v1/t/query"))
        .query(&[("sql", sql)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let version = resp.headers()["x-data-version"]
        .to_str()
        .unwrap()
        .to_string();
    let text = resp.text().await.unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["type"] == "data")
        .flat_map(|l| l["rows"].as_array().unwrap().clone())
        .collect();
    (json!(rows), version)
}

#[actix_web::test]
async fn an_idle_tenant_is_unloaded_and_loads_again_with_its_data_and_version() {
    let app = idle_after_one_second().await;
    upload_csv(&app, "scores", "id,score\n1,9\n2,33\n").await;
    let before = answer(&app, "SELECT sum(score) FROM scores").await;
    assert_eq!(before.0, json!([[42]]));
    app.wait_metric(UNLOADED, |v| v >= 1.0).await;
    // Loaded again by the next request: the same data at the same version (not from the
    // cache: the tenant's results are keyed by its incarnation, which is new).
    let resp = app
        .client
        .get(app.url("/v1/t/query"))
        .query(&[("sql", "SELECT sum(score) FROM scores")])
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("x-cache").is_none_or(|c| c != "hit"));
    assert_eq!(answer(&app, "SELECT sum(score) FROM scores").await, before);
    // And written again: the version goes on from where it was.
    upload_csv(&app, "scores", "id,score\n1,1\n").await;
    let after = answer(&app, "SELECT sum(score) FROM scores").await;
    assert_eq!(after.0, json!([[1]]));
    let (b, a): (u64, u64) = (before.1.parse().unwrap(), after.1.parse().unwrap());
    assert!(a > b, "version {b} then {a}");
}

#[actix_web::test]
async fn an_open_websocket_keeps_its_tenant_loaded_and_its_subscription_live() {
    let app = idle_after_one_second().await;
    upload_csv(&app, "scores", "id,score\n1,9\n").await;
    let mut ws = connect(&app, "?compression=none").await;
    let subscribe = json!({"type": "subscribe", "id": "s", "sql": "SELECT sum(score) FROM scores"});
    send(&mut ws, subscribe).await;
    read_until(&mut ws, |l| {
        l["type"] == "data" && l["rows"] == json!([[9]])
    })
    .await;
    // Four sweeps' worth of idle time: the subscription holds the tenant.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(app.metric(UNLOADED).await, 0.0);
    upload_csv(&app, "scores", "id,score\n1,5\n").await;
    read_until(&mut ws, |l| {
        l["type"] == "data" && l["rows"] == json!([[5]])
    })
    .await;
    // Closed, the socket lets it go.
    drop(ws);
    app.wait_metric(UNLOADED, |v| v >= 1.0).await;
}
