//! Health, readiness, metrics and shutdown.

use std::time::Duration;

use futures::StreamExt;

use crate::helpers::spawn_app;

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
