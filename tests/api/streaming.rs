//! Streaming behaviour: incremental delivery, zstd, completeness, disconnects.
//!
//! The cases that read a store (first rows then a hang-up, complete results, healthy
//! connections after hang-ups, a stalled reader) take a [`Source`] and also run against a lake
//! table (`tests/api/lake.rs`): there the rows come from Parquet files in S3 through a
//! PostgreSQL catalog, and an interrupted scan must leave that connection as healthy as a
//! local one.

use std::io::Write;

use futures::StreamExt;

use crate::helpers::{read_lines, spawn_app, spawn_app_with, TestApp};

/// Where the store cases read their rows: a column `i` (BIGINT) of distinct values from 0.
pub struct Source {
    /// A FROM clause of `rows` rows, `i` from 0 to `rows - 1`.
    pub table: String,
    pub rows: u64,
    /// A FROM clause of far more rows than any client here reads (hundreds of MB as NDJSON).
    pub endless: String,
}

impl Source {
    /// DuckDB's `range`, on a local tenant.
    fn local() -> Self {
        Self {
            table: "range(1234567) t(i)".into(),
            rows: 1_234_567,
            endless: "range(50000000) t(i)".into(),
        }
    }

    /// `SELECT i, i * 2 AS j, 'row ' || i AS s` from the endless rows.
    fn big(&self) -> String {
        format!(
            "SELECT i, i * 2 AS j, 'row ' || i AS s FROM {}",
            self.endless
        )
    }

    /// A query that answers `[[n]]` by reading the table (a new text for every `n`: the result
    /// cache cannot answer it for the connection).
    fn probe(&self, n: u64) -> String {
        format!("SELECT {n} + min(i) AS v FROM {}", self.table)
    }
}

#[actix_web::test]
async fn zstd_body_decodes_to_the_plain_stream() {
    let app = spawn_app().await;
    let body = serde_json::json!({
        "sql": "SELECT i, i::VARCHAR AS s, i / 7 AS f FROM range(100000) t(i) ORDER BY i",
        "chunk_rows": 777
    })
    .to_string();
    let plain = app
        .client
        .post(app.url("/v1/t/query"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_id = plain.headers()["x-query-id"].to_str().unwrap().to_string();
    let plain = plain.bytes().await.unwrap();

    let zstd = app
        .client
        .post(app.url("/v1/t/query"))
        .header("accept-encoding", "gzip, zstd")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(zstd.headers()["content-encoding"], "zstd");
    assert_eq!(zstd.headers()["content-type"], "application/x-ndjson");
    let zstd_id = zstd.headers()["x-query-id"].to_str().unwrap().to_string();
    let compressed = zstd.bytes().await.unwrap();
    assert!(
        compressed.len() * 3 < plain.len(),
        "zstd should shrink NDJSON"
    );

    // A real zstd decoder, limited to an 8 MiB window as browsers are.
    let mut decoder = zstd::stream::read::Decoder::new(&compressed[..]).unwrap();
    decoder.window_log_max(23).unwrap();
    let mut decoded = Vec::new();
    std::io::copy(&mut decoder, &mut decoded).unwrap();

    let normalize = |text: &str, id: &str| {
        let text = text.replace(id, "QID");
        // elapsed_ms is the only other field that differs between two runs.
        let end = text.rfind("\"elapsed_ms\":").unwrap();
        text[..end].to_string()
    };
    let plain_text = String::from_utf8(plain.to_vec()).unwrap();
    let decoded_text = String::from_utf8(decoded).unwrap();
    assert_eq!(
        normalize(&decoded_text, &zstd_id),
        normalize(&plain_text, &plain_id)
    );
    assert!(plain_text.ends_with("}\n"));
    // 100000 rows in lines of 777.
    assert_eq!(
        plain_text.lines().count(),
        1 + 100_000usize.div_ceil(777) + 1
    );
}

#[actix_web::test]
async fn first_rows_arrive_while_the_query_runs_then_a_hangup_interrupts_it() {
    let app = spawn_app_with(|c| c.limits.pool_size = Some(1)).await;
    first_rows_arrive_then_a_hangup_interrupts(&app, &Source::local()).await;
}

/// `app`'s tenant `t` has one pooled connection: the first rows of `src`'s endless query arrive
/// while it runs, plain and zstd, then a hang-up interrupts it and frees the connection.
pub async fn first_rows_arrive_then_a_hangup_interrupts(app: &TestApp, src: &Source) {
    let disconnected = "duckstream_queries_total{outcome=\"disconnected\",transport=\"http\"}";
    let interrupts = "duckstream_duckdb_interrupts_total";
    let (disconnects_before, interrupts_before) =
        (app.metric(disconnected).await, app.metric(interrupts).await);
    for (round, compressed) in [false, true].into_iter().enumerate() {
        let mut req = app
            .client
            .post(app.url("/v1/t/query"))
            .body(serde_json::json!({ "sql": src.big() }).to_string());
        if compressed {
            req = req.header("accept-encoding", "zstd");
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut stream = resp.bytes_stream();
        let mut decoder = zstd::stream::write::Decoder::new(Vec::new()).unwrap();
        let mut plain = Vec::new();
        // Read until the first data line has arrived.
        loop {
            let bytes = stream.next().await.expect("stream ended early").unwrap();
            let text = if compressed {
                decoder.write_all(&bytes).unwrap();
                decoder.flush().unwrap();
                decoder.get_ref().clone()
            } else {
                plain.extend_from_slice(&bytes);
                plain.clone()
            };
            let text = String::from_utf8_lossy(&text).to_string();
            if let Some(line) = text
                .lines()
                .nth(1)
                .filter(|_| text.matches('\n').count() >= 2)
            {
                let data: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!((&data["type"], &data["seq"]), (&"data".into(), &0.into()));
                let row = &data["rows"][0];
                let i = row[0].as_u64().unwrap();
                assert_eq!(row, &serde_json::json!([i, 2 * i, format!("row {i}")]));
                break;
            }
        }
        // The query is still running: 50M rows cannot have been produced yet.
        assert_eq!(
            app.metric("duckstream_active_queries{transport=\"http\"}")
                .await,
            1.0
        );
        drop(stream);
        // The hang-up cancels it: counted as a disconnect, DuckDB interrupted, slot freed.
        let n = round as f64 + 1.0;
        app.wait_metric(disconnected, |v| v == disconnects_before + n)
            .await;
        app.wait_metric(interrupts, |v| v >= interrupts_before + n)
            .await;
        // The single pooled connection answers the next query.
        slot_is_back(app, src, 42 + round as u64).await;
    }
}

/// No HTTP query runs any more, and the tenant's only slot answers `src`'s probe `n`.
async fn slot_is_back(app: &TestApp, src: &Source, n: u64) {
    app.wait_metric("duckstream_active_queries{transport=\"http\"}", |v| {
        v == 0.0
    })
    .await;
    let next = app.query(&src.probe(n)).await;
    assert_eq!(next.data_rows_text(), [format!("[[{n}]]")], "{}", next.raw);
}

#[actix_web::test]
async fn empty_results_and_big_results_are_complete() {
    empty_and_big_results_are_complete(&spawn_app().await, &Source::local()).await;
}

/// An empty result of `src`'s table is its metadata and end; all of it, in lines of 5000, is
/// every row exactly once, counted and numbered.
pub async fn empty_and_big_results_are_complete(app: &TestApp, src: &Source) {
    let empty = app
        .query(&format!("SELECT i FROM {} WHERE i < 0", src.table))
        .await;
    assert_eq!(empty.kinds(), ["metadata", "end"]);
    assert_eq!(empty.last()["rows"], 0);
    assert_eq!(empty.last()["chunks"], 0);
    assert_eq!(empty.lines[0]["columns"][0]["name"], "i");
    assert_eq!(empty.lines[0]["columns"][0]["type"], "BIGINT");

    let n = src.rows;
    let resp = app
        .post(
            "t",
            &serde_json::json!({
                "sql": format!("SELECT i, i * 3 AS j FROM {}", src.table),
                "chunk_rows": 5000
            })
            .to_string(),
        )
        .await;
    let out = read_lines(resp).await;
    let qid = out.lines[0]["query_id"].as_str().unwrap().to_string();
    let (mut count, mut sum_i, mut sum_j, mut seq) = (0u64, 0u64, 0u64, 0u64);
    for line in &out.lines[1..out.lines.len() - 1] {
        assert_eq!(line["type"], "data");
        assert_eq!(line["query_id"], qid.as_str());
        assert_eq!(line["seq"], seq);
        seq += 1;
        let rows = line["rows"].as_array().unwrap();
        assert!(rows.len() <= 5000);
        for r in rows {
            count += 1;
            sum_i += r[0].as_u64().unwrap();
            sum_j += r[1].as_u64().unwrap();
        }
    }
    let end = out.last();
    assert_eq!(end["type"], "end");
    assert_eq!(count, n);
    assert_eq!(end["rows"], n);
    assert_eq!(end["chunks"], seq);
    assert_eq!(sum_i, n * (n - 1) / 2);
    assert_eq!(sum_j, 3 * n * (n - 1) / 2);
    assert!(end["elapsed_ms"].as_u64().is_some());
}

#[actix_web::test]
async fn first_lines_are_small_and_double_unless_chunk_rows_is_asked() {
    let app = spawn_app().await;
    let sql = "SELECT i FROM range(5000) t(i) ORDER BY i";
    let sizes = |out: &crate::helpers::Lines| -> Vec<usize> {
        let mut next = 0u64;
        out.lines
            .iter()
            .filter(|l| l["type"] == "data")
            .map(|l| {
                let rows = l["rows"].as_array().unwrap();
                for r in rows {
                    assert_eq!(r[0].as_u64(), Some(next), "rows in order, none lost");
                    next += 1;
                }
                rows.len()
            })
            .collect()
    };
    // The server's default of 1,000 rows per line, reached by doubling from 128.
    let ramped = app.query(sql).await;
    assert_eq!(ramped.last()["type"], "end");
    assert_eq!(sizes(&ramped), [128, 256, 512, 1000, 1000, 1000, 1000, 104]);
    // Asked for: every line but the last holds what was asked.
    let body = serde_json::json!({"sql": sql, "chunk_rows": 1000}).to_string();
    let asked = read_lines(app.post("t", &body).await).await;
    assert_eq!(sizes(&asked), [1000; 5]);
}

#[actix_web::test]
async fn get_requests_stream_too() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/v1/t/query"))
        .query(&[
            ("sql", "SELECT ? + i AS v FROM range(3) t(i)"),
            ("params", "[10]"),
            ("chunk_rows", "2"),
        ])
        .send()
        .await
        .unwrap();
    let out = read_lines(resp).await;
    assert_eq!(out.status, 200, "{}", out.raw);
    assert_eq!(out.data_rows_text(), ["[[10],[11]]", "[[12]]"]);
}

/// Clients that hang up mid-result (the query is interrupted, its read-only transaction rolled
/// back) leave every pooled connection healthy: the queries after them all succeed.
#[actix_web::test]
async fn hang_ups_leave_the_pooled_connections_healthy() {
    let app = spawn_app_with(|c| c.limits.pool_size = Some(2)).await;
    hang_ups_leave_the_pool_healthy(&app, &Source::local()).await;
}

/// Six hang-ups mid-way through `src`'s endless query, each followed by four probes of its
/// table, all answered.
pub async fn hang_ups_leave_the_pool_healthy(app: &TestApp, src: &Source) {
    for round in 0..6 {
        let resp = app
            .post("t", &serde_json::json!({ "sql": src.big() }).to_string())
            .await;
        assert_eq!(resp.status(), 200);
        let mut stream = resp.bytes_stream();
        stream.next().await.expect("a first chunk").unwrap();
        drop(stream);
        app.wait_metric("duckstream_active_queries{transport=\"http\"}", |v| {
            v == 0.0
        })
        .await;
        for i in 0..4 {
            let n = round * 4 + i;
            let out = app.query(&src.probe(n)).await;
            assert_eq!(out.status, 200, "round {round}, query {i}: {}", out.raw);
            assert_eq!(out.data_rows_text(), [format!("[[{n}]]")]);
        }
    }
}

/// A burst of new queries on a tenant that has no connection yet: each needs a pooled
/// connection created for it, at once, and every one is answered with its own result (the
/// connections are created in parallel; one creator thread for every tenant once answered
/// such a burst on a slow machine with `internal` "no pooled connection: timed out").
#[actix_web::test]
async fn a_burst_of_new_queries_gets_a_connection_each() {
    const BURST: usize = 96;
    let app = spawn_app_with(|c| {
        c.engine.executor_threads = BURST;
        c.limits.pool_size = Some(BURST as u32);
        c.engine.queue_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let answers = futures::future::join_all((0..BURST).map(|i| {
        let app = &app;
        async move {
            let sql = format!("SELECT {i} AS n, sum(x) AS s FROM range(3000000) t(x)");
            (i, app.query(&sql).await)
        }
    }))
    .await;
    let sum: u64 = (0..3_000_000u64).sum();
    for (i, out) in answers {
        assert_eq!(out.status, 200, "query {i}: {}", out.raw);
        assert_eq!(out.last()["type"], "end", "query {i}: {}", out.raw);
        assert_eq!(
            out.data_rows_text(),
            [format!("[[{i},{sum}]]")],
            "query {i}"
        );
    }
}

#[actix_web::test]
async fn a_reader_that_takes_nothing_for_the_stall_timeout_is_stopped_as_gone() {
    let app = spawn_app_with(stalls_after_two_seconds).await;
    a_stalled_reader_is_stopped_as_gone(&app, &Source::local()).await;
}

/// A stall timeout of 2 s, and one query and one connection for the tenant.
pub fn stalls_after_two_seconds(c: &mut duckstream::Config) {
    c.engine.stall_timeout = std::time::Duration::from_secs(2);
    c.limits.pool_size = Some(1);
    c.limits.max_streams = Some(1);
}

/// `app` is configured by [`stalls_after_two_seconds`]: a reader that takes nothing of `src`'s
/// endless query is stopped as gone, its slots free while its response is still open.
pub async fn a_stalled_reader_is_stopped_as_gone(app: &TestApp, src: &Source) {
    let slow = "duckstream_slow_consumer_disconnects_total{transport=\"http\"}";
    let disconnected = "duckstream_queries_total{outcome=\"disconnected\",transport=\"http\"}";
    let (slow_before, disconnects_before) =
        (app.metric(slow).await, app.metric(disconnected).await);
    // Wide plain rows: the stream outgrows what the socket buffers on loopback absorb.
    let wide = format!("SELECT i, repeat('x', 200) AS s FROM {}", src.endless);
    let resp = app
        .client
        .get(app.url("/v1/t/query"))
        .query(&[("sql", wide)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.expect("a first chunk").unwrap();
    assert!(first.starts_with(b"{\"type\":\"metadata\""));
    // Hold the response without reading: the query is stopped as gone, its slot freed.
    app.wait_metric(slow, |v| v == slow_before + 1.0).await;
    app.wait_metric(disconnected, |v| v == disconnects_before + 1.0)
        .await;
    // The tenant's only query slot and only connection slot answer the next query, while the
    // stalled response is still open.
    slot_is_back(app, src, 42).await;
    // Read what was sent: the body breaks, it never ends cleanly.
    let mut tail = Vec::new();
    let mut broke = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => tail.extend_from_slice(&b[b.len().saturating_sub(4096)..]),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    let tail = String::from_utf8_lossy(&tail);
    assert!(
        broke,
        "the body ended cleanly: {}",
        &tail[tail.len().saturating_sub(300)..]
    );
    assert!(!tail.contains("\"type\":\"end\""));
}
