//! The WebSocket transport, with a real WebSocket client (tokio-tungstenite).

use std::collections::HashMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{connect, read_until, send, spawn_app, spawn_app_with, ws_rows};

fn is_final(l: &Value) -> bool {
    l["type"] == "end" || l["type"] == "error"
}

#[actix_web::test]
async fn ten_queries_share_one_socket_fairly_and_exactly() {
    let app = spawn_app().await;
    let mut ws = connect(&app, "").await;
    // A big one first, then nine small ones.
    send(
        &mut ws,
        json!({"type":"query","id":"big","sql":"SELECT i, i % 7 AS m FROM range(10000000) t(i)"}),
    )
    .await;
    for k in 1..10 {
        let n = k * 1000;
        send(&mut ws, json!({"type":"query","id":format!("q{k}"),"sql":"SELECT i FROM range(?) t(i)","params":[n],"chunk_rows":700})).await;
    }
    let mut ends = Vec::new();
    let mut rows: HashMap<String, (u64, u64)> = HashMap::new();
    let mut seqs: HashMap<String, u64> = HashMap::new();
    let lines = read_until(&mut ws, |l| {
        if is_final(l) {
            ends.push(l["query_id"].as_str().unwrap().to_string());
        }
        ends.len() == 10
    })
    .await;
    for l in &lines {
        let id = l["query_id"].as_str().unwrap().to_string();
        match l["type"].as_str().unwrap() {
            "data" => {
                let seq = seqs.entry(id.clone()).or_insert(0);
                assert_eq!(l["seq"], *seq, "seq of {id}");
                *seq += 1;
                let e = rows.entry(id).or_insert((0, 0));
                for r in l["rows"].as_array().unwrap() {
                    e.0 += 1;
                    e.1 += r[0].as_u64().unwrap();
                }
            }
            "end" => {
                let (n, sum) = rows.get(&id).copied().unwrap_or((0, 0));
                assert_eq!(l["rows"], n, "{id}");
                let expected = if id == "big" {
                    10_000_000
                } else {
                    id[1..].parse::<u64>().unwrap() * 1000
                };
                assert_eq!(n, expected, "{id}");
                assert_eq!(sum, expected * (expected - 1) / 2, "{id}");
            }
            "metadata" => {}
            other => panic!("unexpected {other}: {l}"),
        }
    }
    assert_eq!(
        ends.last().unwrap(),
        "big",
        "small queries finish before the big one: {ends:?}"
    );
    assert_eq!(ends.iter().filter(|e| e.as_str() != "big").count(), 9);
}

#[actix_web::test]
async fn cancel_interrupts_and_the_socket_stays_usable() {
    let app = spawn_app().await;
    let mut ws = connect(&app, "").await;
    send(
        &mut ws,
        json!({"type":"query","id":"c","sql":"SELECT i FROM range(100000000) t(i)"}),
    )
    .await;
    read_until(&mut ws, |l| l["type"] == "data").await;
    send(&mut ws, json!({"type":"cancel","id":"c"})).await;
    let lines = read_until(&mut ws, is_final).await;
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["code"], "cancelled");
    assert_eq!(last["query_id"], "c");
    app.wait_metric("duckstream_active_queries{transport=\"ws\"}", |v| v == 0.0)
        .await;
    assert!(app.metric("duckstream_duckdb_interrupts_total").await >= 1.0);
    assert_eq!(
        app.metric("duckstream_queries_total{outcome=\"cancelled\",transport=\"ws\"}")
            .await,
        1.0
    );

    let rows = ws_rows(&mut ws, "c", "SELECT 40 + 2 AS x").await;
    assert_eq!(rows, [json!([42])]);

    send(&mut ws, json!({"type":"ping"})).await;
    let pong = read_until(&mut ws, |_| true).await;
    assert_eq!(pong[0], json!({"type":"pong"}));

    // A client's close frame is answered with the server's (no abnormal 1006 closure).
    ws.close(None).await.unwrap();
    let reply = ws.next().await;
    assert!(matches!(reply, Some(Ok(Message::Close(_)))), "{reply:?}");
}

#[actix_web::test]
async fn a_cancel_while_the_statement_is_checked_and_prepared_still_cancels() {
    // 4,000 columns: DuckDB parses, explains and prepares it for about 100 milliseconds
    // before it runs, and forgets an interrupt when its next statement starts.
    let sql = format!(
        "SELECT {}",
        (0..4_000)
            .map(|i| format!("{i} + 1 AS c{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let app = spawn_app().await;
    let mut ws = connect(&app, "?compression=none").await;
    let executions = app.metric("duckstream_duckdb_executions_total").await;
    send(&mut ws, json!({"type":"query","id":"w","sql":sql})).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    send(&mut ws, json!({"type":"cancel","id":"w"})).await;
    let lines = read_until(&mut ws, is_final).await;
    let last = lines.last().unwrap();
    assert_eq!(
        (&last["type"], &last["code"]),
        (&json!("error"), &json!("cancelled")),
        "{:?}",
        lines.iter().map(|l| &l["type"]).collect::<Vec<_>>()
    );
    assert!(
        lines.iter().all(|l| l["type"] != "data"),
        "no data after the cancel"
    );
    // DuckDB never executed it: the checks before it (its parse tree, its plan) stop at the
    // cancel, whichever of them it interrupts.
    app.wait_metric("duckstream_active_queries{transport=\"ws\"}", |v| v == 0.0)
        .await;
    assert_eq!(
        app.metric("duckstream_duckdb_executions_total").await,
        executions,
        "the cancelled statement was executed"
    );
    // The connection goes back healthy.
    let rows = ws_rows(&mut ws, "n", "SELECT 6 * 7 AS x").await;
    assert_eq!(rows, [json!([42])]);
}

#[actix_web::test]
async fn dropping_the_connection_interrupts_its_queries() {
    let app = spawn_app_with(|c| c.limits.pool_size = Some(1)).await;
    let mut ws = connect(&app, "?compression=none").await;
    send(
        &mut ws,
        json!({"type":"query","id":"a","sql":"SELECT i FROM range(100000000) t(i)"}),
    )
    .await;
    let first = read_until(&mut ws, |l| l["type"] == "data").await;
    assert_eq!(first[0]["type"], "metadata");
    drop(ws); // TCP closed without a close frame
    app.wait_metric(
        "duckstream_queries_total{outcome=\"disconnected\",transport=\"ws\"}",
        |v| v == 1.0,
    )
    .await;
    app.wait_metric("duckstream_active_queries{transport=\"ws\"}", |v| v == 0.0)
        .await;
    assert!(app.metric("duckstream_duckdb_interrupts_total").await >= 1.0);
    // The tenant's only pooled connection is back and healthy.
    let out = app.query("SELECT count(*) AS n FROM people").await;
    assert_eq!(out.data_rows_text(), ["[[3]]"]);
}

#[actix_web::test]
async fn a_paused_reader_pauses_duckdb_and_a_stuck_one_is_closed() {
    // The real binary in its own process, so that its RSS is the server's alone.
    let server = crate::helpers::ServerProcess::start(&["--ws-slow-consumer-secs", "5"]);
    let app = &server.app;
    let mut ws = connect(app, "").await;
    let sql = "SELECT i, 'some text to make rows wider ' || i AS s FROM range(10000000) t(i)";
    send(&mut ws, json!({"type":"query","id":"slow","sql":sql})).await;
    let mut count = 0u64;
    let mut sum = 0u64;
    let mut tally = |l: &Value| {
        if l["type"] == "data" {
            for r in l["rows"].as_array().unwrap() {
                count += 1;
                sum += r[0].as_u64().unwrap();
            }
        }
    };
    for l in read_until(&mut ws, |l| l["type"] == "data").await {
        tally(&l);
    }
    let idle = server.rss_mib();
    // Stop reading (at most 4 s, under the 5 s timeout): the server must hold, not buffer.
    // Once the socket buffers are full, nothing more is sent: two samples 0.5 s apart agree
    // (on a busy machine the buffers take longer to fill, hence up to 4 s).
    let paused_at = std::time::Instant::now();
    let mut sent = app
        .metric("duckstream_rows_sent_total{transport=\"ws\"}")
        .await;
    let mut held = false;
    while !held && paused_at.elapsed() < Duration::from_millis(4000) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = app
            .metric("duckstream_rows_sent_total{transport=\"ws\"}")
            .await;
        held |= now == sent;
        sent = now;
    }
    assert!(held, "the server kept sending while the reader was paused");
    let paused = server.rss_mib();
    assert!(
        paused - idle < 64.0,
        "RSS grew {idle:.0} -> {paused:.0} MiB while paused"
    );
    assert!(sent < 10_000_000.0, "the stream had not finished: {sent}");
    // Resume: the stream completes, exactly.
    let lines = read_until(&mut ws, is_final).await;
    for l in &lines {
        tally(l);
    }
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end", "{end}");
    assert_eq!(end["rows"], 10_000_000);
    assert_eq!(count, 10_000_000);
    assert_eq!(sum, 10_000_000 * 9_999_999 / 2);
    assert!(server.peak_rss_mib() - idle < 64.0);

    // Now a client that never reads again: closed with 1008 after the timeout. Plain text
    // rows, so that the stream outgrows what the kernel's socket buffers can absorb (up to
    // 36 MiB on loopback here).
    let mut stuck = connect(app, "?compression=none").await;
    let wide = "SELECT i, repeat('x', 200) AS s FROM range(100000000) t(i)";
    send(&mut stuck, json!({"type":"query","id":"stuck","sql":wide})).await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(server.rss_mib() - idle < 64.0, "bounded while stuck");
    let mut code = None;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), stuck.next()).await;
        match next {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                code = Some((frame.code, frame.reason.to_string()));
                break;
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                assert!(
                    !t.contains("\"type\":\"end\""),
                    "not closed: {}",
                    &t[t.len().saturating_sub(300)..]
                )
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    assert_eq!(code, Some((CloseCode::Policy, "slow consumer".to_string())));
    app.wait_metric("duckstream_active_queries{transport=\"ws\"}", |v| v == 0.0)
        .await;
    let slow = "duckstream_slow_consumer_disconnects_total{transport=\"ws\"}";
    assert_eq!(app.metric(slow).await, 1.0);
    let waited = "duckstream_backpressure_wait_seconds_total{transport=\"ws\"}";
    assert!(app.metric(waited).await > 1.0);
}

#[actix_web::test]
async fn bad_messages_get_bad_message_and_the_socket_keeps_working() {
    let app = spawn_app().await;
    let mut ws = connect(&app, "?compression=none").await;
    let bad = [
        "{not json".to_string(),
        json!({"type":"nope","id":"x"}).to_string(),
        json!({"type":"query","id":"x"}).to_string(),
        json!({"type":"query","sql":"SELECT 1"}).to_string(),
        json!({"type":"query","id":"x","sql":1}).to_string(),
        json!({"type":"query","id":"x","sql":"SELECT 1","chunk_rows":"many"}).to_string(),
        json!({"type":"query","id":7,"sql":"SELECT 1"}).to_string(),
        json!({"type":"cancel"}).to_string(),
        json!(["query"]).to_string(),
    ];
    for text in &bad {
        ws.send(Message::text(text.clone())).await.unwrap();
        let lines = read_until(&mut ws, |_| true).await;
        assert_eq!(lines[0]["type"], "error", "{text}");
        assert_eq!(lines[0]["code"], "bad_message", "{text}: {}", lines[0]);
        assert!(!lines[0]["message"].as_str().unwrap().is_empty());
    }
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let lines = read_until(&mut ws, |_| true).await;
    assert_eq!(lines[0]["code"], "bad_message");

    // SQL errors arrive as error lines for that id.
    send(&mut ws, json!({"type":"query","id":"e","sql":"SELEC 1"})).await;
    let lines = read_until(&mut ws, is_final).await;
    assert_eq!(lines.last().unwrap()["code"], "invalid_sql");
    assert_eq!(lines.last().unwrap()["query_id"], "e");

    // Still usable.
    send(
        &mut ws,
        json!({"type":"query","id":"ok","sql":"SELECT 'fine' AS v"}),
    )
    .await;
    let lines = read_until(&mut ws, is_final).await;
    assert_eq!(lines[1]["rows"], json!([["fine"]]));

    // Too big: closed with 1009.
    let huge = json!({"type":"query","id":"h","sql": "x".repeat(2 << 20)}).to_string();
    ws.send(Message::text(huge)).await.unwrap();
    let mut code = None;
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Close(Some(frame)) = msg {
            code = Some(frame.code);
            break;
        }
    }
    assert_eq!(code, Some(CloseCode::Size));
}

#[actix_web::test]
async fn caps_and_duplicate_ids_are_refused() {
    let app = spawn_app_with(|c| c.websocket.queries_per_socket = 2).await;
    let mut ws = connect(&app, "?compression=none").await;
    let long = "SELECT i FROM range(1000000000) t(i)";
    send(&mut ws, json!({"type":"query","id":"a","sql":long})).await;
    send(&mut ws, json!({"type":"query","id":"a","sql":"SELECT 1"})).await;
    send(&mut ws, json!({"type":"query","id":"b","sql":long})).await;
    send(&mut ws, json!({"type":"query","id":"c","sql":"SELECT 1"})).await;
    let mut codes = HashMap::new();
    read_until(&mut ws, |l| {
        if l["type"] == "error" {
            codes.insert(
                l["code"].as_str().unwrap().to_string(),
                l["query_id"].clone(),
            );
        }
        codes.len() == 2
    })
    .await;
    assert_eq!(codes["duplicate_id"], "a");
    assert_eq!(codes["too_many_queries"], "c");
    // An unknown tenant is refused before the upgrade.
    let url = format!("{}/v1/nobody/ws", app.base.replace("http://", "ws://"));
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[actix_web::test]
async fn floods_and_foreign_cancels_are_harmless() {
    let app = spawn_app().await;
    // A flood: 2000 messages at once, each answered in order, then a normal query.
    let mut ws = connect(&app, "?compression=none").await;
    for i in 0..2000 {
        let text = if i % 2 == 0 {
            "{\"type\":\"ping\"}".to_string()
        } else {
            format!("garbage {i}")
        };
        ws.feed(Message::text(text)).await.unwrap();
    }
    ws.flush().await.unwrap();
    let mut replies = 0;
    read_until(&mut ws, |l| {
        replies += 1;
        assert!(l["type"] == "pong" || l["code"] == "bad_message", "{l}");
        replies == 2000
    })
    .await;
    send(
        &mut ws,
        json!({"type":"query","id":"after","sql":"SELECT 7 AS n"}),
    )
    .await;
    let lines = read_until(&mut ws, is_final).await;
    assert_eq!(lines[1]["rows"], json!([[7]]));

    // Another connection cannot cancel this one's query by guessing its id.
    let mut other = connect(&app, "?compression=none").await;
    send(
        &mut ws,
        json!({"type":"query","id":"mine","sql":"SELECT i FROM range(100000000) t(i)"}),
    )
    .await;
    read_until(&mut ws, |l| l["type"] == "data").await;
    send(&mut other, json!({"type":"cancel","id":"mine"})).await;
    let reply = read_until(&mut other, |_| true).await;
    assert_eq!(reply[0]["code"], "unknown_query");
    // The victim's query keeps streaming.
    let more = read_until(&mut ws, |l| {
        l["type"] == "data" && l["seq"].as_u64() > Some(5)
    })
    .await;
    assert!(
        more.iter().all(|l| l["type"] == "data"),
        "no error line for the victim"
    );
}

/// The code of the close frame in raw server-to-client WebSocket bytes (unmasked frames).
fn close_code(mut raw: &[u8]) -> Option<u16> {
    while raw.len() >= 2 {
        let opcode = raw[0] & 0x0f;
        let (len, head) = match raw[1] & 0x7f {
            126 => (u16::from_be_bytes([raw[2], raw[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(raw[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = &raw[head..head + len];
        if opcode == 0x8 {
            return Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
        raw = &raw[head + len..];
    }
    None
}

/// The heartbeat: a client that answers the server's pings (tungstenite does while it reads)
/// stays connected past the pong timeout; one that goes silent is closed with 1001.
#[actix_web::test]
async fn silent_clients_are_closed_and_answering_ones_stay() {
    let app = spawn_app_with(|c| {
        c.websocket.ping_interval = Duration::from_secs(1);
        c.websocket.pong_timeout = Duration::from_secs(2);
    })
    .await;
    // Answering: read (and so pong) for three pong timeouts, then run a query.
    let mut ws = connect(&app, "?compression=none").await;
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    while let Ok(Some(msg)) = tokio::time::timeout_at(until, ws.next()).await {
        match msg.unwrap() {
            Message::Ping(_) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 2, "{pings} pings in 6 s");
    send(
        &mut ws,
        json!({"type": "query", "id": "a", "sql": "SELECT 42"}),
    )
    .await;
    let lines = read_until(&mut ws, is_final).await;
    assert_eq!(lines.last().unwrap()["type"], "end", "{lines:?}");

    // Silent: read nothing (no pongs) past the timeout; then the socket holds a close 1001.
    // Read as raw bytes: a WebSocket client answers each buffered ping while reading, and
    // writing that pong to the socket the server has closed fails before the close is read.
    let silent = connect(&app, "?compression=none").await;
    let tokio_tungstenite::MaybeTlsStream::Plain(mut tcp) = silent.into_inner() else {
        panic!("plain TCP expected")
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut raw))
        .await
        .expect("the server closes a silent client")
        .unwrap();
    let code = close_code(&raw).map(CloseCode::from);
    assert_eq!(code, Some(CloseCode::Away));
}

/// A socket whose reader stalls can spend the process's WebSocket budget whole; another
/// socket with nothing queued still gets its answers (each connection's one-message floor).
#[actix_web::test]
async fn a_stalled_socket_holding_the_shared_budget_does_not_hold_up_another() {
    let app = spawn_app_with(|c| {
        c.websocket.send_budget_bytes = 64 * 1024;
        c.websocket.total_budget_bytes = 64 * 1024;
        // The stalled socket is not closed for being slow while the other one asks.
        c.websocket.slow_consumer_timeout = Duration::from_secs(600);
    })
    .await;
    let mut stalled = connect(&app, "?compression=none").await;
    send(
        &mut stalled,
        json!({"type":"query","id":"big","sql":"SELECT i, md5(i::VARCHAR) AS h FROM range(100000000) t(i)"}),
    )
    .await;
    // Its first messages arrive, then it reads no more: its queue and the socket buffers
    // fill, and it holds the whole shared budget.
    read_until(&mut stalled, |l| l["type"] == "data").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut other = connect(&app, "?compression=none").await;
    for i in 0..3 {
        send(
            &mut other,
            json!({"type":"query","id":format!("q{i}"),"sql":format!("SELECT {i} AS v")}),
        )
        .await;
        let lines = tokio::time::timeout(Duration::from_secs(10), read_until(&mut other, is_final))
            .await
            .expect("answered while the other socket holds the shared budget");
        let last = lines.last().unwrap();
        assert_eq!(last["type"], "end", "{last}");
        let data: Vec<_> = lines.iter().filter(|l| l["type"] == "data").collect();
        assert_eq!(data[0]["rows"], json!([[i]]));
    }
    drop(stalled);
}
