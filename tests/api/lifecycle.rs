//! Health, readiness, metrics, shutdown, and the drain a signal starts (a rolling restart).

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{connect, read_until, send, spawn_app, ServerProcess};

#[actix_web::test]
async fn health_ready_and_metrics_endpoints() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.query("SELECT * FROM range(10)").await;
    let m = app.metrics().await;
    assert!(
        m.contains("duckstream_queries_total{outcome=\"ok\",transport=\"http\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("duckstream_rows_sent_total{transport=\"http\"} 10"),
        "{m}"
    );
    assert!(
        m.contains("duckstream_query_ttfb_seconds_count{transport=\"http\"} 1"),
        "{m}"
    );
}

/// A fresh server, before any request, already shows every series at 0, so that a dashboard
/// shows zeros instead of "no data" (every family, every transport and outcome, every code).
#[actix_web::test]
async fn a_fresh_server_shows_every_series() {
    let app = spawn_app().await;
    let m = app.metrics().await;
    let mut expected: Vec<String> = Vec::new();
    for t in ["http", "sse", "ws"] {
        for o in ["ok", "error", "cancelled", "disconnected", "timeout"] {
            for family in [
                "duckstream_queries_total",
                "duckstream_query_duration_seconds_count",
            ] {
                expected.push(format!("{family}{{outcome=\"{o}\",transport=\"{t}\"}} 0"));
            }
        }
        for family in [
            "duckstream_rows_sent_total",
            "duckstream_bytes_sent_total",
            "duckstream_uncompressed_bytes_total",
            "duckstream_active_queries",
            "duckstream_active_connections",
            "duckstream_slow_consumer_disconnects_total",
            "duckstream_backpressure_wait_seconds_total",
            "duckstream_query_ttfb_seconds_count",
        ] {
            expected.push(format!("{family}{{transport=\"{t}\"}} 0"));
        }
    }
    for code in ["too_busy", "query_failed", "internal", "bad_message"] {
        expected.push(format!(
            "duckstream_query_errors_total{{code=\"{code}\"}} 0"
        ));
    }
    for plain in [
        "duckstream_duckdb_interrupts_total 0",
        "duckstream_connections_refused_total 0",
        "duckstream_pool_wait_seconds_count 0",
        "duckstream_auth_failures_total{reason=\"denied\"} 0",
    ] {
        expected.push(plain.to_string());
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|e| !m.lines().any(|l| l == e.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "missing on a fresh server: {missing:?}\n{m}"
    );
}

#[actix_web::test]
async fn shutdown_cancels_running_queries_and_stops_quickly() {
    let mut app = spawn_app().await;
    let resp = app
        .post("t", r#"{"sql": "SELECT i FROM range(100000000) t(i)"}"#)
        .await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"{\"type\":\"metadata\""));

    let started = std::time::Instant::now();
    app.shutdown.cancel();
    // Keep reading: the stream ends with an error line saying why.
    let mut tail = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                tail.extend_from_slice(&bytes);
                if tail.len() > 1 << 20 {
                    tail.drain(..tail.len() - 4096);
                }
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&tail);
    let last = text.lines().last().unwrap();
    assert!(
        last.contains("\"type\":\"error\"") && last.contains("shutting_down"),
        "{last}"
    );
    let stopped = tokio::time::timeout(Duration::from_secs(10), &mut app.stopped)
        .await
        .expect("server stops within seconds");
    assert!(stopped.unwrap().is_ok());
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// SIGTERM drains: a one-shot query that was running finishes whole; a WebSocket is closed
/// with 1012 (reconnect elsewhere) and an SSE subscription ends with a `reconnect` event,
/// both right away; the process then exits by itself, long before its drain deadline.
#[actix_web::test]
async fn sigterm_lets_queries_finish_and_moves_sockets_and_subscriptions_away() {
    let mut server = ServerProcess::start(&["--shutdown-timeout-secs", "60"]);
    let app = &server.app;
    let sql = "SELECT count(*) AS n FROM people";
    // A WebSocket subscriber holding its first result.
    let mut ws = connect(app, "?compression=none").await;
    send(&mut ws, json!({"type": "subscribe", "id": "p", "sql": sql})).await;
    read_until(&mut ws, |l| l["type"] == "end").await;
    // An SSE subscriber, read as a byte stream.
    let sse = app
        .client
        .get(app.url("/v1/t/sse"))
        .query(&[("sql", sql), ("subscribe", "1")])
        .send()
        .await
        .unwrap();
    let mut events = sse.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: end") {
        let chunk = events.next().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // A one-shot stream that is still running: read one piece, then hold the rest back
    // (the bounded buffers pause DuckDB meanwhile).
    let big = app
        .post("t", r#"{"sql": "SELECT i FROM range(3000000) t(i)"}"#)
        .await;
    assert_eq!(big.status(), 200);
    let mut body = big.bytes_stream();
    let mut tail = body.next().await.unwrap().unwrap().to_vec();

    server.terminate();
    // The socket is told to reconnect elsewhere.
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return Some(frame.code),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the socket is closed within seconds");
    assert_eq!(code, Some(CloseCode::Restart));
    let _ = ws.close(None).await;
    // The event stream says so, then ends.
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = events.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        seen
    })
    .await
    .expect("the event stream ends within seconds");
    assert!(
        rest.contains("event: reconnect\ndata: {\"type\":\"reconnect\""),
        "{rest}"
    );
    // The one-shot query finishes whole.
    while let Some(chunk) = body.next().await {
        tail.extend_from_slice(&chunk.expect("the stream is not cut"));
        if tail.len() > 1 << 20 {
            tail.drain(..tail.len() - 4096);
        }
    }
    let text = String::from_utf8_lossy(&tail);
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "end", "{last}");
    assert_eq!(last["rows"], 3_000_000);
    // Nothing is left: the process exits well before its 60 s deadline.
    let status = server
        .exited_within(Duration::from_secs(20))
        .await
        .expect("the process exits once drained");
    assert!(status.success(), "{status:?}");
}
