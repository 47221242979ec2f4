//! The shared compression pool: many streams through one worker decode exactly, a stalled
//! reader pauses only its own query, and cancel and hang-up still reach DuckDB.
//!
//! Every app here has a single compression worker, so every stream shares it.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{connect, read_until, send, spawn_app_with, ws_rows, TestApp};

async fn one_worker() -> TestApp {
    spawn_app_with(|c| {
        c.engine.compress_workers = 1;
        c.limits.pool_size = Some(16);
    })
    .await
}

/// A result of its own for stream `n`: about 1 MB of NDJSON, in a known order.
fn sql_of(n: usize) -> String {
    format!(
        "SELECT i, 'stream {n} row ' || i AS s, md5((i * {n})::VARCHAR) AS h \
         FROM range({}) t(i) ORDER BY i",
        20_000 + n * 1_000
    )
}

/// A response in a form that does not depend on where its lines were cut (a partial line is
/// sent once it is 50 ms old, so two runs of one query may cut differently under load): its
/// metadata line, each row on a line of its own, then its end line without `chunks` and
/// `elapsed_ms`. SSE's `data: ` prefixes are read through, its other lines skipped.
fn normalize(text: &str, id: &str) -> String {
    let text = text.replace(id, "QID");
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let json = line.strip_prefix("data: ").unwrap_or(line);
        let Ok(mut v) = serde_json::from_str::<Value>(json) else {
            continue;
        };
        if v["type"] == "data" {
            for row in v["rows"].as_array().unwrap() {
                out.push_str(&row.to_string());
                out.push('\n');
            }
            continue;
        }
        if let Some(end) = v.as_object_mut().filter(|o| o["type"] == "end") {
            end.remove("chunks");
            end.remove("elapsed_ms");
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

fn unzstd(compressed: &[u8]) -> String {
    let mut decoder = zstd::stream::read::Decoder::new(compressed).unwrap();
    decoder.window_log_max(23).unwrap();
    let mut out = Vec::new();
    std::io::copy(&mut decoder, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A whole response (HTTP or SSE) with and without zstd: (normalized plain, normalized
/// decoded).
async fn both_ways(app: &TestApp, path: &str, sql: &str) -> (String, String) {
    let get = |zstd: bool| {
        let mut req = app.client.get(app.url(path)).query(&[("sql", sql)]).header(
            "accept",
            if path.ends_with("sse") {
                "text/event-stream"
            } else {
                "application/x-ndjson"
            },
        );
        if zstd {
            req = req.header("accept-encoding", "zstd");
        }
        req.send()
    };
    let (plain, zstd) = futures::join!(get(false), get(true));
    let (plain, zstd) = (plain.unwrap(), zstd.unwrap());
    assert_eq!(plain.status(), 200);
    assert_eq!(zstd.status(), 200);
    assert_eq!(zstd.headers()["content-encoding"], "zstd");
    let id_of = |r: &reqwest::Response| r.headers()["x-query-id"].to_str().unwrap().to_string();
    let (plain_id, zstd_id) = (id_of(&plain), id_of(&zstd));
    let plain = String::from_utf8(plain.bytes().await.unwrap().to_vec()).unwrap();
    let decoded = unzstd(&zstd.bytes().await.unwrap());
    (normalize(&plain, &plain_id), normalize(&decoded, &zstd_id))
}

/// The data rows of a plain NDJSON body.
fn rows_of(ndjson: &str) -> Vec<Value> {
    ndjson
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "data")
        .flat_map(|l| l["rows"].as_array().unwrap().clone())
        .collect()
}

#[actix_web::test]
async fn many_streams_through_one_worker_decode_to_exactly_their_plain_lines() {
    let app = one_worker().await;
    let app = &app;
    // Twelve results at once (HTTP, SSE and WebSocket, each with its plain twin), all
    // compressed by the one worker, their turns interleaved.
    let runs = (0..12).map(|n| async move {
        let sql = sql_of(n);
        match n % 3 {
            0 | 1 => {
                let path = if n % 3 == 0 {
                    "/v1/t/query"
                } else {
                    "/v1/t/sse"
                };
                let (plain, decoded) = both_ways(app, path, &sql).await;
                assert_eq!(decoded, plain, "stream {n} ({path})");
                assert!(plain.contains("\"end\""), "stream {n} is complete");
            }
            _ => {
                let mut ws = connect(app, "?compression=zstd").await;
                let id = format!("q{n}");
                let (rows, plain) = futures::join!(ws_rows(&mut ws, &id, &sql), async {
                    let resp = app
                        .client
                        .get(app.url("/v1/t/query"))
                        .query(&[("sql", sql.as_str())])
                        .send()
                        .await
                        .unwrap();
                    String::from_utf8(resp.bytes().await.unwrap().to_vec()).unwrap()
                });
                let expected = rows_of(&plain);
                assert_eq!(expected.len(), 20_000 + n * 1_000);
                assert_eq!(rows, expected, "stream {n} (WebSocket)");
            }
        }
    });
    futures::future::join_all(runs).await;
}

/// Reads one zstd HTTP body's first chunk, then stops reading it.
async fn stalled(
    app: &TestApp,
    sql: &str,
) -> impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> {
    let resp = app
        .client
        .get(app.url("/v1/t/query"))
        .query(&[("sql", sql)])
        .header("accept-encoding", "zstd")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes_stream()
}

#[actix_web::test]
async fn a_stalled_reader_among_fast_ones_pauses_only_its_own_query() {
    let app = one_worker().await;
    // Hex digests barely compress: far more bytes than the socket buffers hold.
    const STALLED_ROWS: usize = 3_000_000;
    let sql = format!("SELECT i, md5(i::VARCHAR) AS h FROM range({STALLED_ROWS}) t(i) ORDER BY i");
    let mut slow = stalled(&app, &sql).await;
    let mut decoder = zstd::stream::write::Decoder::new(Vec::new()).unwrap();
    decoder
        .write_all(&slow.next().await.expect("a first chunk").unwrap())
        .unwrap();

    // Its pipeline fills and stops: the rows handed to its socket stop moving, short of the
    // end, while its executor waits for room (DuckDB paused).
    let sent = "duckstream_rows_sent_total{transport=\"http\"}";
    let waited = "duckstream_backpressure_wait_seconds_total{transport=\"http\"}";
    let mut before = app.metric(sent).await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = app.metric(sent).await;
        if now == before {
            break;
        }
        before = now;
    }
    assert!(
        before < STALLED_ROWS as f64,
        "paused before its end: {before}"
    );
    let waited_before = app.metric(waited).await;
    let stall_began = std::time::Instant::now();

    // Fast readers on other transports, through the same single worker, all finish.
    let fast = (0..8).map(|n| {
        let app = &app;
        async move {
            let sql = sql_of(n);
            let mut ws = connect(app, "?compression=zstd").await;
            let rows = ws_rows(&mut ws, &format!("f{n}"), &sql).await;
            assert_eq!(rows.len(), 20_000 + n * 1_000, "fast stream {n}");
            assert_eq!(rows[7], json!([7, format!("stream {n} row 7"), rows[7][2]]));
        }
    });
    tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(fast))
        .await
        .expect("the fast readers finish while one reader stalls");

    // The stalled query is still there, still paused, and still waiting for its reader.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.metric(sent).await,
        before,
        "no rows left without a reader"
    );
    assert_eq!(
        app.metric("duckstream_active_queries{transport=\"http\"}")
            .await,
        1.0
    );

    // Read again: the result resumes and is whole.
    let stall = stall_began.elapsed().as_secs_f64();
    while let Some(chunk) = slow.next().await {
        decoder.write_all(&chunk.unwrap()).unwrap();
    }
    // Its executor waited for room all along: DuckDB was paused for as long as the reader
    // stalled (a query's waits are counted when it ends, just after its last line).
    let paused = app
        .wait_metric(waited, |v| v - waited_before >= stall * 0.9)
        .await
        - waited_before;
    assert!(
        paused >= stall * 0.9,
        "paused {paused:.2} s of a {stall:.2} s stall"
    );
    decoder.flush().unwrap();
    let text = String::from_utf8(std::mem::take(decoder.get_mut())).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "end", "{last}");
    assert_eq!(last["rows"], STALLED_ROWS);
    assert_eq!(rows_of(&text).len(), STALLED_ROWS);
}

#[actix_web::test]
async fn cancel_and_hang_up_interrupt_duckdb_with_the_pool_in_place() {
    let app = one_worker().await;
    let big = "SELECT i, md5(i::VARCHAR) AS h FROM range(100000000) t(i)";

    // A hang-up of a zstd HTTP stream and of a zstd SSE stream.
    for path in ["/v1/t/query", "/v1/t/sse"] {
        let resp = app
            .client
            .get(app.url(path))
            .query(&[("sql", big)])
            .header("accept-encoding", "zstd")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.bytes_stream();
        body.next().await.expect("a first chunk").unwrap();
        drop(body);
    }
    app.wait_metric("duckstream_duckdb_interrupts_total", |v| v >= 2.0)
        .await;

    // A client `cancel` on a zstd WebSocket.
    let mut ws = connect(&app, "?compression=zstd").await;
    send(&mut ws, json!({"type": "query", "id": "big", "sql": big})).await;
    read_until(&mut ws, |l| l["type"] == "data").await;
    send(&mut ws, json!({"type": "cancel", "id": "big"})).await;
    let lines = read_until(&mut ws, |l| l["type"] == "error").await;
    assert_eq!(lines.last().unwrap()["code"], "cancelled");
    app.wait_metric("duckstream_duckdb_interrupts_total", |v| v >= 3.0)
        .await;
    for transport in ["http", "sse", "ws"] {
        app.wait_metric(
            &format!("duckstream_active_queries{{transport=\"{transport}\"}}"),
            |v| v == 0.0,
        )
        .await;
    }

    // The pool and the pooled connections are healthy: the same socket and a fresh stream
    // both answer.
    let rows = ws_rows(&mut ws, "after", "SELECT 42 AS answer").await;
    assert_eq!(rows, [json!([42])]);
    let (plain, decoded) = both_ways(&app, "/v1/t/query", &sql_of(3)).await;
    assert_eq!(decoded, plain);
    assert!(plain.lines().last().unwrap().contains("\"type\":\"end\""));
}
