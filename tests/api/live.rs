//! Live subscriptions over a real WebSocket: results pushed on change, shared executions,
//! nothing for unchanged re-runs, heartbeats, resume, unsubscribe and the hostile cases.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{connect, lines_of, read_until, send, spawn_app_with, TestApp, Ws};

const EXECUTIONS: &str = "duckstream_duckdb_executions_total";

/// A server whose subscriptions beat every second and may re-run every 200 ms.
async fn app() -> TestApp {
    spawn_app_with(|c| {
        c.websocket.heartbeat = Duration::from_secs(1);
        c.limits.min_interval_ms = Some(200);
    })
    .await
}

async fn upload(app: &TestApp, dataset: &str, csv: &str) {
    let resp = app
        .client
        .put(app.url(&format!("/v1/t/datasets/{dataset}?format=csv")))
        .body(csv.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

async fn subscribe(ws: &mut Ws, id: &str, sql: &str) {
    send(ws, json!({"type": "subscribe", "id": id, "sql": sql})).await;
}

/// One delivered result: `update` up to its final line. Returns (version, rows).
async fn next_result(ws: &mut Ws) -> (u64, Vec<Value>) {
    let mut version = None;
    let lines = read_until(ws, |l| {
        if l["type"] == "update" {
            version = l["version"].as_u64();
        }
        version.is_some() && (l["type"] == "end" || l["type"] == "error")
    })
    .await;
    let start = lines.iter().position(|l| l["type"] == "update").unwrap();
    let result = &lines[start..];
    assert_eq!(result[1]["type"], "metadata", "{result:?}");
    let channel = &result[0]["query_id"];
    assert!(
        result.iter().all(|l| &l["query_id"] == channel),
        "{result:?}"
    );
    let rows = result
        .iter()
        .filter(|l| l["type"] == "data")
        .flat_map(|l| l["rows"].as_array().unwrap().clone())
        .collect();
    (version.unwrap(), rows)
}

/// Every line that arrives within `wait`.
async fn lines_within(ws: &mut Ws, wait: Duration) -> Vec<Value> {
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if matches!(msg, Message::Ping(_) | Message::Pong(_)) {
            continue;
        }
        all.extend(lines_of(&msg));
    }
    all
}

#[actix_web::test]
async fn a_write_redelivers_to_the_subscribers_of_its_table_only() {
    let app = app().await;
    upload(&app, "scores", "id,score\n1,9\n").await;
    let mut ws = connect(&app, "?compression=none").await;
    subscribe(&mut ws, "people", "SELECT count(*) FROM people").await;
    subscribe(&mut ws, "scores", "SELECT sum(score) FROM scores").await;
    // Each is acknowledged with its channel, then its first result, exactly like a query's.
    let mut ends = 0;
    let firsts = read_until(&mut ws, |l| {
        ends += usize::from(l["type"] == "end");
        ends == 2
    })
    .await;
    let channel_of = |id: &str| {
        firsts
            .iter()
            .find(|l| l["type"] == "subscribed" && l["query_id"] == id)
            .map(|l| l["channel"].as_str().unwrap().to_string())
            .unwrap()
    };
    let (people, scores) = (channel_of("people"), channel_of("scores"));
    assert_ne!(people, scores);
    let rows_of = |channel: &str| -> Vec<Value> {
        firsts
            .iter()
            .filter(|l| l["type"] == "data" && l["query_id"] == channel)
            .map(|l| l["rows"].clone())
            .collect()
    };
    assert_eq!(rows_of(&people), vec![json!([[3]])]);
    assert_eq!(rows_of(&scores), vec![json!([[9]])]);
    let scores_version = firsts
        .iter()
        .find(|l| l["type"] == "update" && l["query_id"] == scores.as_str())
        .and_then(|l| l["version"].as_u64())
        .unwrap();

    // A write to scores re-delivers scores, with a newer version; people gets nothing.
    upload(&app, "scores", "id,score\n1,4\n2,6\n").await;
    let seen = lines_within(&mut ws, Duration::from_millis(2500)).await;
    let updates: Vec<&Value> = seen.iter().filter(|l| l["type"] == "update").collect();
    assert_eq!(updates.len(), 1, "{seen:?}");
    assert_eq!(updates[0]["query_id"], scores.as_str());
    assert!(updates[0]["version"].as_u64().unwrap() > scores_version);
    assert!(seen
        .iter()
        .any(|l| l["type"] == "data" && l["rows"] == json!([[10]])));
    // The quiet one beat, at its old version.
    assert!(
        seen.iter()
            .any(|l| l["type"] == "heartbeat" && l["query_id"] == people.as_str()),
        "{seen:?}"
    );
}

#[actix_web::test]
async fn a_hundred_subscribers_share_one_execution_per_change() {
    let app = app().await;
    let before = app.metric(EXECUTIONS).await;
    let sql = "SELECT id, name FROM people ORDER BY id";
    let mut sockets = Vec::new();
    for _ in 0..10 {
        let mut ws = connect(&app, "").await;
        for i in 0..10 {
            subscribe(&mut ws, &format!("p{i}"), sql).await;
        }
        sockets.push(ws);
    }
    for ws in &mut sockets {
        for _ in 0..10 {
            let (_, rows) = next_result(ws).await;
            assert_eq!(rows.len(), 3);
        }
    }
    assert_eq!(
        app.metric(EXECUTIONS).await - before,
        1.0,
        "one execution for 100"
    );
    upload(&app, "people", "id,name\n1,Ada\n").await;
    for ws in &mut sockets {
        for _ in 0..10 {
            let (_, rows) = next_result(ws).await;
            assert_eq!(rows, vec![json!([1, "Ada"])]);
        }
    }
    assert_eq!(
        app.metric(EXECUTIONS).await - before,
        2.0,
        "one more for the change"
    );
    assert!(app.metric("duckstream_executions_saved_total").await >= 198.0);
}

#[actix_web::test]
async fn an_unchanged_rerun_delivers_nothing_and_closing_stops_the_work() {
    let app = app().await;
    let mut ws = connect(&app, "?compression=none").await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "sql": "SELECT count(*) FROM people", "interval_ms": 200}),
    )
    .await;
    let (version, rows) = next_result(&mut ws).await;
    assert_eq!(rows, vec![json!([3])]);
    let before = app.metric(EXECUTIONS).await;
    let seen = lines_within(&mut ws, Duration::from_millis(1500)).await;
    let reruns = app.metric(EXECUTIONS).await - before;
    assert!(reruns >= 3.0, "it re-ran on its interval: {reruns}");
    assert!(seen.iter().all(|l| l["type"] == "heartbeat"), "{seen:?}");
    assert!(seen.iter().all(|l| l["version"] == version));
    // Gone: its DuckDB work stops.
    drop(ws);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = app.metric(EXECUTIONS).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        app.metric(EXECUTIONS).await,
        after,
        "no runs without subscribers"
    );
}

#[actix_web::test]
async fn unsubscribe_resume_and_refusals() {
    let app = app().await;
    let mut ws = connect(&app, "?compression=none").await;
    subscribe(&mut ws, "a", "SELECT name FROM people WHERE id = 1").await;
    let (version, _) = next_result(&mut ws).await;
    send(&mut ws, json!({"type": "unsubscribe", "id": "a"})).await;
    let lines = read_until(&mut ws, |l| l["type"] == "unsubscribed").await;
    assert_eq!(lines.last().unwrap()["query_id"], "a");
    send(&mut ws, json!({"type": "unsubscribe", "id": "nope"})).await;
    let lines = read_until(&mut ws, |l| l["type"] == "error").await;
    assert_eq!(lines.last().unwrap()["code"], "unknown_query");

    // Resume with the version held: nothing but the acknowledgement.
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "b", "sql": "SELECT name FROM people WHERE id = 1", "version": version}),
    )
    .await;
    let lines = read_until(&mut ws, |l| l["type"] == "subscribed").await;
    assert_eq!(lines.last().unwrap()["resumed"], "unchanged");
    let quiet = lines_within(&mut ws, Duration::from_millis(1500)).await;
    assert!(quiet.iter().all(|l| l["type"] == "heartbeat"), "{quiet:?}");
    // After a write, the version held is old: the current result, marked as replacing it.
    send(&mut ws, json!({"type": "unsubscribe", "id": "b"})).await;
    read_until(&mut ws, |l| l["type"] == "unsubscribed").await;
    upload(&app, "people", "id,name\n1,Grace\n").await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "c", "sql": "SELECT name FROM people WHERE id = 1", "version": version}),
    )
    .await;
    let lines = read_until(&mut ws, |l| l["type"] == "subscribed").await;
    assert_eq!(lines.last().unwrap()["resumed"], "replaced");
    let (newer, rows) = next_result(&mut ws).await;
    assert_eq!(rows, vec![json!(["Grace"])]);
    assert!(newer > version);

    // Refusals end only that subscription, with its own id and code.
    for (id, msg, code) in [
        (
            "bad",
            json!({"type": "subscribe", "id": "bad", "sql": "SELECT * FROM missing"}),
            "invalid_sql",
        ),
        (
            "fast",
            json!({"type": "subscribe", "id": "fast", "sql": "SELECT 1", "interval_ms": 1}),
            "invalid_request",
        ),
        (
            "c",
            json!({"type": "subscribe", "id": "c", "sql": "SELECT 1"}),
            "duplicate_id",
        ),
    ] {
        send(&mut ws, msg).await;
        let lines = read_until(&mut ws, |l| l["type"] == "error" && l["query_id"] == id).await;
        assert_eq!(lines.last().unwrap()["code"], code, "{id}");
    }
}

#[actix_web::test]
async fn a_subscription_flood_is_bounded_per_socket() {
    let app = spawn_app_with(|c| c.websocket.max_subscriptions = 50).await;
    let mut ws = connect(&app, "?compression=none").await;
    for i in 0..60 {
        subscribe(&mut ws, &format!("s{i}"), &format!("SELECT {i} AS n")).await;
    }
    let mut refused = 0;
    let mut results = 0;
    read_until(&mut ws, |l| {
        if l["type"] == "error" {
            assert_eq!(l["code"], "too_many_subscriptions");
            refused += 1;
        }
        if l["type"] == "end" {
            results += 1;
        }
        refused + results == 60
    })
    .await;
    assert_eq!((refused, results), (10, 50));
}
