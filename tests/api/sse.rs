//! The SSE transport, read by a real SSE parser (eventsource-stream).

use std::io::Write;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

struct Ev {
    event: String,
    id: String,
    data: Value,
}

/// Opens an SSE stream; with `zstd`, decodes the body with a real streaming zstd decoder.
async fn open(app: &TestApp, query: &[(&str, &str)], zstd: bool) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url("/v1/t/sse"))
        .query(query)
        .header("accept", "text/event-stream");
    if zstd {
        req = req.header("accept-encoding", "zstd");
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-cache"));
    assert_eq!(resp.headers().get("content-encoding").is_some(), zstd);
    resp
}

fn events(resp: reqwest::Response, zstd: bool) -> impl futures::Stream<Item = Ev> {
    let mut decoder = zstd::stream::write::Decoder::new(Vec::new()).unwrap();
    resp.bytes_stream()
        .map(move |chunk| {
            let chunk = chunk.unwrap();
            if !zstd {
                return Ok::<_, std::io::Error>(chunk);
            }
            decoder.write_all(&chunk)?;
            decoder.flush()?;
            Ok(bytes::Bytes::from(std::mem::take(decoder.get_mut())))
        })
        .eventsource()
        .map(|e| {
            let e = e.unwrap();
            Ev {
                event: e.event,
                id: e.id,
                data: serde_json::from_str(&e.data).unwrap(),
            }
        })
}

#[actix_web::test]
async fn events_carry_exact_rows_in_order_with_and_without_zstd() {
    let app = spawn_app().await;
    for zstd in [false, true] {
        let resp = open(
            &app,
            &[
                ("sql", "SELECT i, i * 2 AS j FROM range(?) t(i) ORDER BY i"),
                ("params", "[25000]"),
                ("chunk_rows", "1000"),
            ],
            zstd,
        )
        .await;
        let all: Vec<Ev> = events(resp, zstd).collect().await;
        assert_eq!(all.len(), 1 + 25 + 1);
        let qid = all[0].data["query_id"].as_str().unwrap().to_string();
        let mut next = 0u64;
        for (n, ev) in all.iter().enumerate() {
            assert_eq!(ev.id, format!("{qid}:{n}"));
            assert_eq!(ev.event, ev.data["type"].as_str().unwrap());
            if ev.event == "data" {
                for r in ev.data["rows"].as_array().unwrap() {
                    assert_eq!(r[0], next);
                    assert_eq!(r[1], next * 2);
                    next += 1;
                }
            }
        }
        assert_eq!(all[0].event, "metadata");
        assert_eq!(all.last().unwrap().event, "end");
        assert_eq!(all.last().unwrap().data["rows"], 25000);
        assert_eq!(next, 25000);
    }
    // POST takes the HTTP query's JSON body.
    let resp = app
        .client
        .post(app.url("/v1/t/sse"))
        .body(r#"{"sql": "SELECT name FROM people ORDER BY id"}"#)
        .send()
        .await
        .unwrap();
    let all: Vec<Ev> = events(resp, false).collect().await;
    assert_eq!(
        all[1].data["rows"],
        serde_json::json!([["Ada"], ["Grace"], [null]])
    );
}

#[actix_web::test]
async fn keepalive_comments_flow_while_duckdb_works() {
    let app = spawn_app_with(|c| c.sse.keepalive = Duration::from_millis(300)).await;
    let resp = open(
        &app,
        &[(
            "sql",
            "SELECT count(*) AS n FROM range(3000000000) t(i) WHERE i % 7 = 3",
        )],
        false,
    )
    .await;
    let text = resp.text().await.unwrap();
    let first_event = text.find("event: metadata").unwrap();
    assert!(
        text[..first_event].contains(": keepalive\n\n"),
        "{}",
        &text[..first_event.min(200)]
    );
    assert!(text.contains("event: end"));
}

#[actix_web::test]
async fn closing_the_stream_interrupts_the_query() {
    let app = spawn_app().await;
    let resp = open(
        &app,
        &[("sql", "SELECT i FROM range(100000000) t(i)")],
        true,
    )
    .await;
    let mut evs = Box::pin(events(resp, true));
    assert_eq!(evs.next().await.unwrap().event, "metadata");
    assert_eq!(evs.next().await.unwrap().event, "data");
    drop(evs);
    app.wait_metric(
        "duckstream_queries_total{outcome=\"disconnected\",transport=\"sse\"}",
        |v| v == 1.0,
    )
    .await;
    app.wait_metric("duckstream_active_queries{transport=\"sse\"}", |v| v == 0.0)
        .await;
    assert!(app.metric("duckstream_duckdb_interrupts_total").await >= 1.0);
}

#[actix_web::test]
async fn a_reconnect_resumes_from_the_cache_or_says_it_cannot() {
    let app = spawn_app().await;
    let sql = "SELECT range AS i FROM range(5000) ORDER BY i";
    let reconnect = |last: String| {
        app.client
            .get(app.url("/v1/t/sse"))
            .query(&[("sql", sql), ("chunk_rows", "1000")])
            .header("last-event-id", last)
            .send()
    };
    // A reconnect naming a stream whose result is not cached: told so, then a fresh result.
    let resp = reconnect("abc123:2".into()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let all: Vec<Ev> = events(resp, false).collect().await;
    assert_eq!(all[0].event, "resume_unavailable");
    assert_eq!(all[0].data["query_id"], "abc123");
    let fresh = &all[1..];
    assert_eq!(fresh[0].event, "metadata");
    assert_eq!(fresh.last().unwrap().event, "end");
    assert!(fresh[1..fresh.len() - 1].iter().all(|e| e.event == "data"));
    assert!(fresh.len() >= 7, "five lines of 1000 rows at least");
    let query_id = fresh[0].data["query_id"].as_str().unwrap().to_string();
    assert_eq!(fresh[0].id, format!("{query_id}:0"));
    let last = fresh.len() - 1;

    // That result is cached now: a reconnect that got up to event 2 gets events 3… only,
    // with the same ids, so nothing is missing or doubled.
    let resp = reconnect(format!("{query_id}:2")).await.unwrap();
    assert_eq!(resp.headers()["x-cache"], "hit");
    let rest: Vec<Ev> = events(resp, false).collect().await;
    let ids: Vec<&str> = rest.iter().map(|e| e.id.as_str()).collect();
    let expected: Vec<String> = (3..=last).map(|n| format!("{query_id}:{n}")).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(rest[0].data, fresh[3].data);
    assert_eq!(rest.last().unwrap().event, "end");
    // One that has it all: 204, which stops an EventSource from reconnecting.
    let done = reconnect(format!("{query_id}:{last}")).await.unwrap();
    assert_eq!(done.status(), 204);
    // Another stream's id: told so, then the (cached) result whole.
    let other = reconnect("someone-else:3".into()).await.unwrap();
    let all: Vec<Ev> = events(other, false).collect().await;
    assert_eq!(all[0].event, "resume_unavailable");
    assert_eq!(all.len(), fresh.len() + 1);
    assert_eq!(
        app.metric("duckstream_queries_total{outcome=\"ok\",transport=\"sse\"}")
            .await,
        1.0,
        "one execution for all of it"
    );

    // Bad input is a 4xx with a JSON body, before any stream.
    for (query, status, code) in [
        (vec![("sql", "SELEC 1")], 400, "invalid_sql"),
        (vec![], 400, "invalid_request"),
        (
            vec![("sql", "SELECT 1"), ("params", "[1]")],
            400,
            "invalid_params",
        ),
    ] {
        let resp = app
            .client
            .get(app.url("/v1/t/sse"))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status);
        let v = crate::helpers::json_of(resp).await;
        assert_eq!(v["code"], code);
    }
    let resp = app
        .client
        .get(app.url("/v1/nobody/sse?sql=SELECT%201"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// Reads events until one of type `until`.
async fn events_until(
    stream: &mut (impl futures::Stream<Item = Ev> + Unpin),
    until: &str,
) -> Vec<Ev> {
    let mut out = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("an event within 30 s")
            .expect("the stream is open");
        let done = ev.event == until;
        out.push(ev);
        if done {
            return out;
        }
    }
}

#[actix_web::test]
async fn a_subscription_streams_each_new_result_and_resumes_from_its_version() {
    let app = spawn_app_with(|c| c.websocket.heartbeat = Duration::from_secs(1)).await;
    let sql = "SELECT count(*) AS n FROM people";
    let resp = open(&app, &[("sql", sql), ("subscribe", "1")], true).await;
    let mut stream = Box::pin(events(resp, true));
    let first = events_until(&mut stream, "end").await;
    let kinds: Vec<&str> = first.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["subscribed", "update", "metadata", "data", "end"]);
    assert_eq!(first[3].data["rows"], serde_json::json!([[3]]));
    let version = first[1].data["version"].as_u64().unwrap();
    // The result's last event names its version: what a reconnect sends back.
    assert_eq!(first[4].id, version.to_string());

    // A write: the next result, with a newer version, on the same stream.
    crate::helpers::upload_csv(&app, "people", "id,name\n1,Ada\n").await;
    let next = events_until(&mut stream, "end").await;
    let update = next.iter().find(|e| e.event == "update").unwrap();
    let newer = update.data["version"].as_u64().unwrap();
    assert!(newer > version);
    let data = next.iter().find(|e| e.event == "data").unwrap();
    assert_eq!(data.data["rows"], serde_json::json!([[1]]));
    drop(stream);

    // Reconnecting with the version held: acknowledged, then only heartbeats.
    let resp = app
        .client
        .get(app.url("/v1/t/sse"))
        .query(&[("sql", sql), ("subscribe", "1")])
        .header("last-event-id", newer.to_string())
        .send()
        .await
        .unwrap();
    let mut stream = Box::pin(events(resp, false));
    let ack = events_until(&mut stream, "subscribed").await;
    assert_eq!(ack[0].data["resumed"], "unchanged");
    let quiet = events_until(&mut stream, "heartbeat").await;
    assert_eq!(quiet.len(), 1, "nothing but the heartbeat");
    assert_eq!(quiet[0].data["version"], newer);
    drop(stream);
    // With an older version (as a parameter): the current result, marked as a replacement.
    let resp = app
        .client
        .get(app.url("/v1/t/sse"))
        .query(&[
            ("sql", sql),
            ("subscribe", "1"),
            ("last_event_id", &version.to_string()),
        ])
        .send()
        .await
        .unwrap();
    let mut stream = Box::pin(events(resp, false));
    let replaced = events_until(&mut stream, "end").await;
    assert_eq!(replaced[0].data["resumed"], "replaced");
    assert_eq!(replaced[3].data["rows"], serde_json::json!([[1]]));
}
