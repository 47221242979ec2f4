//! Live subscriptions over a real WebSocket: results pushed on change, shared executions,
//! nothing for unchanged re-runs, heartbeats, resume, unsubscribe and the hostile cases.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    connect, lines_of, read_until, send, spawn_app_with, upload_csv, TestApp, Ws,
};

const EXECUTIONS: &str = "duckstream_duckdb_executions_total";

/// A server whose subscriptions beat every second and may re-run every 200 ms.
async fn app() -> TestApp {
    spawn_app_with(|c| {
        c.websocket.heartbeat = Duration::from_secs(1);
        c.limits.min_interval_ms = Some(200);
    })
    .await
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
    writes_redeliver_to_their_tables_subscribers(&app().await).await;
}

/// Tenant `t` of `app` has the fixture's three `people` and beats every second: a write to
/// one table re-delivers its subscribers only (also run on a lake tenant: `tests/api/lake.rs`).
pub async fn writes_redeliver_to_their_tables_subscribers(app: &TestApp) {
    upload_csv(app, "scores", "id,score\n1,9\n").await;
    let mut ws = connect(app, "?compression=none").await;
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
    upload_csv(app, "scores", "id,score\n1,4\n2,6\n").await;
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
    upload_csv(&app, "people", "id,name\n1,Ada\n").await;
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
    upload_csv(&app, "people", "id,name\n1,Grace\n").await;
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
async fn a_thousand_subscriptions_on_one_socket_are_bounded() {
    let app = spawn_app_with(|_| {}).await;
    let mut ws = connect(&app, "?compression=none").await;
    for i in 0..1000 {
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
        refused + results == 1000
    })
    .await;
    // The socket's default limit: 256 subscriptions.
    assert_eq!((refused, results), (744, 256));
    // The socket still serves queries.
    send(
        &mut ws,
        json!({"type": "query", "id": "q", "sql": "SELECT 42"}),
    )
    .await;
    let lines = read_until(&mut ws, |l| l["query_id"] == "q" && l["type"] == "end").await;
    assert!(lines
        .iter()
        .any(|l| l["query_id"] == "q" && l["rows"] == json!([[42]])));
}

#[actix_web::test]
async fn a_tenant_limit_covers_all_its_sockets() {
    let app = spawn_app_with(|c| c.limits.max_subscriptions = Some(3)).await;
    let mut a = connect(&app, "?compression=none").await;
    let mut b = connect(&app, "?compression=none").await;
    for i in 0..2 {
        subscribe(&mut a, &format!("a{i}"), "SELECT 1").await;
        subscribe(&mut b, &format!("b{i}"), "SELECT 1").await;
    }
    let mut codes = Vec::new();
    for ws in [&mut a, &mut b] {
        let mut seen = 0;
        read_until(ws, |l| {
            if l["type"] == "end" || l["type"] == "error" {
                codes.push(l["code"].as_str().unwrap_or("ok").to_string());
                seen += 1;
            }
            seen == 2
        })
        .await;
    }
    codes.sort();
    assert_eq!(codes, ["ok", "ok", "ok", "too_many_subscriptions"]);
    // One ends: its place is free again.
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    subscribe(&mut b, "b9", "SELECT 2").await;
    let lines = read_until(&mut b, |l| l["type"] == "end" || l["type"] == "error").await;
    assert_eq!(lines.last().unwrap()["type"], "end", "{lines:?}");
}

#[actix_web::test]
async fn tokens_of_different_scopes_get_different_channels() {
    use crate::helpers::{issue, spawn_secure_app, ws_connect, Cred, ACME_KEY};
    let app = spawn_secure_app("").await;
    let narrow = issue(&app, "acme", json!({"tables": ["trips"]})).await;
    let mut wide = ws_connect(&app, "acme", &Cred::Header(ACME_KEY.into()))
        .await
        .unwrap();
    let mut scoped = ws_connect(&app, "acme", &Cred::Query(narrow))
        .await
        .unwrap();
    let mut wide2 = ws_connect(&app, "acme", &Cred::Header(ACME_KEY.into()))
        .await
        .unwrap();
    let sql = "SELECT count(*) FROM trips";
    let mut channels = Vec::new();
    for ws in [&mut wide, &mut scoped, &mut wide2] {
        subscribe(ws, "p", sql).await;
        let lines = read_until(ws, |l| l["type"] == "end").await;
        let ack = lines.iter().find(|l| l["type"] == "subscribed").unwrap();
        channels.push(ack["channel"].as_str().unwrap().to_string());
        assert!(lines.iter().any(|l| l["rows"] == json!([[7]])), "{lines:?}");
    }
    assert_eq!(channels[0], channels[2], "one scope, one channel");
    assert_ne!(channels[0], channels[1], "another scope, another channel");
    // The token's refusals stay its own.
    subscribe(&mut scoped, "secret", "SELECT * FROM secret").await;
    let lines = read_until(&mut scoped, |l| l["type"] == "error").await;
    assert_eq!(lines.last().unwrap()["code"], "forbidden");
}

#[actix_web::test]
async fn a_slow_subscriber_skips_to_the_newest_result() {
    // A small socket budget and big results: a subscriber that does not read falls behind.
    let app = spawn_app_with(|c| {
        c.websocket.send_budget_bytes = 64 * 1024;
        c.websocket.heartbeat = Duration::from_secs(30);
    })
    .await;
    upload_csv(&app, "big", &big_csv(0)).await;
    let sql = "SELECT id, pad FROM big ORDER BY id";
    let mut slow = connect(&app, "?compression=none").await;
    let mut fast = connect(&app, "?compression=none").await;
    subscribe(&mut slow, "s", sql).await;
    subscribe(&mut fast, "f", sql).await;
    let (_, rows) = next_result(&mut fast).await;
    assert_eq!(rows[0][1], json!("v0"));
    // Eight writes while `slow` reads nothing; `fast` keeps up with each.
    for v in 1..=8 {
        upload_csv(&app, "big", &big_csv(v)).await;
        let (_, rows) = tokio::time::timeout(Duration::from_secs(30), next_result(&mut fast))
            .await
            .expect("the fast subscriber is not held back");
        assert_eq!(rows[0][1], json!(format!("v{v}")));
    }
    // The slow one now reads: a few results, the last of them the newest, not all nine.
    let mut firsts = Vec::new();
    loop {
        let (_, rows) = next_result(&mut slow).await;
        firsts.push(rows[0][1].clone());
        if rows[0][1] == json!("v8") {
            break;
        }
    }
    assert!(firsts.len() < 9, "skipped some: {firsts:?}");
    assert_eq!(firsts[0], json!("v0"), "{firsts:?}");
}

/// 20,000 rows (~2 MB as JSON) whose `pad` says which version they are.
fn big_csv(v: u32) -> String {
    let mut out = String::from("id,pad\n");
    for i in 0..20_000 {
        out.push_str(&format!(
            "{i},v{v}{}\n",
            if i == 0 {
                String::new()
            } else {
                "x".repeat(90)
            }
        ));
    }
    out
}

#[actix_web::test]
async fn deleting_the_tenant_ends_its_subscriptions() {
    use crate::helpers::{ws_connect, Cred};
    let app = app().await;
    let resp = app
        .client
        .post(app.url("/v1/admin/tenants"))
        .body(r#"{"name": "gone"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mut ws = ws_connect(&app, "gone", &Cred::None).await.unwrap();
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "sql": "SELECT 1 AS one", "interval_ms": 200}),
    )
    .await;
    let _ = next_result(&mut ws).await;
    let resp = app
        .client
        .delete(app.url("/v1/admin/tenants/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let lines = read_until(&mut ws, |l| l["type"] == "error").await;
    let last = lines.last().unwrap();
    assert_eq!(
        (last["query_id"].as_str(), last["code"].as_str()),
        (Some("s"), Some("tenant_deleted"))
    );
    // Its channel stopped: no more runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = app.metric(EXECUTIONS).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.metric(EXECUTIONS).await, after);
}

#[actix_web::test]
async fn an_sse_subscriber_that_leaves_stops_the_work() {
    let app = app().await;
    let resp = app
        .client
        .get(app.url("/v1/t/sse"))
        .query(&[
            ("sql", "SELECT count(*) FROM people"),
            ("subscribe", "1"),
            ("interval_ms", "200"),
        ])
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: end") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(body);
    // The server learns of it when it next writes: a heartbeat, at most a second later.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = app.metric(EXECUTIONS).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        app.metric(EXECUTIONS).await,
        after,
        "no runs once the stream is gone"
    );
}
