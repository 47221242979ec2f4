//! Result formats other than the protocol: Arrow IPC, CSV and jsonl, read by real readers
//! (pyarrow, pandas, DuckDB through httpfs: `tests/readers/formats.py`) and byte for byte here;
//! negotiation, refusals, HEAD, and the cache.

use serde_json::Value;

use crate::helpers::{connect, read_until, send, spawn_app, TestApp};

async fn get(app: &TestApp, query: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .get(app.url("/v1/t/query"))
        .query(query)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn real_readers_decode_every_format_value_for_value() {
    readers_decode_every_format(&spawn_app().await).await;
}

/// pyarrow, pandas and DuckDB read every format of tenant `t` of `app`, value for value (also
/// run on a lake tenant: `tests/api/lake.rs`).
pub async fn readers_decode_every_format(app: &TestApp) {
    let tools = std::env::var("DUCKSTREAM_TOOLS").expect(
        "DUCKSTREAM_TOOLS (set by scripts/test.sh) points at the venv with pyarrow and pandas",
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/readers/formats.py");
    let repository = crate::helpers::extension_repository();
    let out = tokio::process::Command::new(format!("{tools}/venv/bin/python"))
        .args([script, &app.base, "t", &repository.display().to_string()])
        .output()
        .await
        .expect("the tools' Python runs (scripts/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 14, "{report}");
    // Each reader's own error for a result that failed after it began.
    let failures = checks.iter().find(|c| c.is_object()).unwrap();
    for reader in [
        "pyarrow",
        "pyarrow+zstd",
        "pandas csv",
        "pandas jsonl",
        "duckdb read_csv",
        "duckdb read_json",
    ] {
        assert!(failures[reader].is_string(), "{reader}: {failures}");
    }
}

#[actix_web::test]
async fn csv_and_jsonl_are_exact_text() {
    let app = spawn_app().await;
    let sql = r#"SELECT NULL::VARCHAR AS "null", '' AS empty, 'x,y' AS comma, 'say "hi"' AS quote,
                 'a
b' AS newline, 1.50::DECIMAL(4,2) AS dec, [1, NULL] AS list, 'ok'::VARCHAR AS "name, odd""#;
    let resp = get(&app, &[("sql", sql), ("format", "csv")]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/csv; charset=utf-8; header=present"
    );
    assert_eq!(
        resp.text().await.unwrap(),
        "null,empty,comma,quote,newline,dec,list,\"name, odd\"\n\
         ,\"\",\"x,y\",\"say \"\"hi\"\"\",\"a\nb\",1.50,\"[1,null]\",ok\n"
    );

    let resp = get(&app, &[("sql", sql), ("format", "jsonl")]).await;
    assert_eq!(
        resp.headers()["content-type"],
        "application/jsonl; charset=utf-8"
    );
    assert_eq!(
        resp.text().await.unwrap(),
        "{\"null\":null,\"empty\":\"\",\"comma\":\"x,y\",\"quote\":\"say \\\"hi\\\"\",\
         \"newline\":\"a\\nb\",\"dec\":1.50,\"list\":[1,null],\"name, odd\":\"ok\"}\n"
    );

    // Enums, dates and timestamps unwrap to their text; GEOMETRY is GeoJSON unless asked.
    let resp = get(
        &app,
        &[
            ("sql", "SELECT feeling, DATE '2024-01-02' AS d, 'POINT (1 2)'::GEOMETRY AS g FROM people WHERE id = 1"),
            ("format", "csv"),
        ],
    )
    .await;
    assert_eq!(
        resp.text().await.unwrap(),
        "feeling,d,g\nhappy,2024-01-02,\"{\"\"type\"\":\"\"Point\"\",\"\"coordinates\"\":[1.0,2.0]}\"\n"
    );
}

#[actix_web::test]
async fn formats_are_negotiated_and_refused_where_they_have_no_place() {
    let app = spawn_app().await;
    // `Accept` picks the format when the request names none; `format` wins over it.
    for (accept, format, want) in [
        (
            "application/vnd.apache.arrow.stream",
            None,
            "application/vnd.apache.arrow.stream",
        ),
        ("text/csv", None, "text/csv; charset=utf-8; header=present"),
        ("text/csv;q=0, */*", None, "application/x-ndjson"),
        ("text/html,*/*", None, "application/x-ndjson"),
        (
            "text/csv",
            Some("jsonl"),
            "application/jsonl; charset=utf-8",
        ),
    ] {
        let mut body = serde_json::json!({"sql": "SELECT 1 AS x"});
        if let Some(f) = format {
            body["format"] = f.into();
        }
        let resp = app
            .client
            .post(app.url("/v1/t/query"))
            .header("accept", accept)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{accept}");
        assert_eq!(resp.headers()["content-type"], want, "{accept} {format:?}");
    }
    let refused = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        (
            status,
            body["code"].as_str().unwrap().to_string(),
            body["message"].to_string(),
        )
    };
    let (status, code, message) =
        refused(get(&app, &[("sql", "SELECT 1"), ("format", "xml")]).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    assert!(message.contains("ndjson, arrow, csv or jsonl"), "{message}");
    // Progress lines exist only in NDJSON.
    let (status, code, _) = refused(
        get(
            &app,
            &[("sql", "SELECT 1"), ("format", "arrow"), ("progress", "1")],
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    // SSE and WebSocket messages carry the protocol's lines.
    let resp = app
        .client
        .get(app.url("/v1/t/sse"))
        .query(&[("sql", "SELECT 1"), ("format", "csv")])
        .send()
        .await
        .unwrap();
    let (status, code, message) = refused(resp).await;
    assert_eq!(
        (status, code.as_str()),
        (400, "invalid_request"),
        "{message}"
    );
    let mut ws = connect(&app, "?compression=none").await;
    send(
        &mut ws,
        serde_json::json!({"type": "query", "id": "q", "sql": "SELECT 1", "format": "csv"}),
    )
    .await;
    let lines = read_until(&mut ws, |l| l["type"] == "error").await;
    let last = lines.last().unwrap();
    assert_eq!(
        (last["query_id"].as_str(), last["code"].as_str()),
        (Some("q"), Some("invalid_request"))
    );
}

#[actix_web::test]
async fn head_answers_like_get_without_running_the_query() {
    let app = spawn_app().await;
    let before = app.metric("duckstream_duckdb_executions_total").await;
    let resp = app
        .client
        .head(app.url("/v1/t/query"))
        .query(&[("sql", "SELECT * FROM people"), ("format", "csv")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/csv; charset=utf-8; header=present"
    );
    assert!(resp.headers().get("content-length").is_none());
    assert_eq!(resp.headers()["accept-ranges"], "none");
    assert_eq!(
        app.metric("duckstream_duckdb_executions_total").await,
        before
    );
    // The same checks as GET: a bad request is refused.
    let resp = app
        .client
        .head(app.url("/v1/t/query"))
        .query(&[("format", "csv")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[actix_web::test]
async fn arrow_results_are_cached_apart_from_ndjson() {
    let app = spawn_app().await;
    let sql = "SELECT id, name FROM people ORDER BY id";
    let first = get(&app, &[("sql", sql), ("format", "arrow")]).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let bytes = first.bytes().await.unwrap();
    // The IPC stream: a schema message first, the end-of-stream marker last.
    assert_eq!(&bytes[..4], &[0xFF; 4]);
    assert_eq!(
        &bytes[bytes.len() - 8..],
        &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]
    );
    let again = get(&app, &[("sql", sql), ("format", "arrow")]).await;
    assert_eq!(again.headers()["x-cache"], "hit");
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(again.bytes().await.unwrap(), bytes);
    let ndjson = get(&app, &[("sql", sql)]).await;
    assert!(ndjson.headers().get("x-cache").is_none());
    assert_ne!(ndjson.headers()["etag"].to_str().unwrap(), etag);
}

/// One Arrow query's messages on a WebSocket: the lines (text) and the IPC bytes (binary
/// messages, each decoded on its own when compressed), in order, until its `end` or `error`.
struct WsArrow {
    lines: Vec<Value>,
    ipc: Vec<u8>,
    binary_messages: usize,
}

/// Reads a socket until `ids` have all ended, giving each query's Arrow messages; binary
/// messages belong to the query whose `arrow` line came last.
async fn read_arrow(
    ws: &mut crate::helpers::Ws,
    ids: &[&str],
    zstd: bool,
) -> std::collections::HashMap<String, WsArrow> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut out: std::collections::HashMap<String, WsArrow> = std::collections::HashMap::new();
    let mut current: Option<String> = None;
    let mut open: std::collections::HashSet<String> = ids.iter().map(|s| s.to_string()).collect();
    while !open.is_empty() {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(60), ws.next())
            .await
            .expect("a message within 60 s")
            .unwrap()
            .unwrap();
        let bytes = match msg {
            Message::Text(t) => t.as_bytes().to_vec(),
            // Compressed NDJSON lines and Arrow IPC are both binary: told apart once decoded
            // (a line starts with `{`, an IPC message with its continuation marker).
            Message::Binary(b) if zstd => zstd::decode_all(&b[..]).expect("a zstd frame"),
            Message::Binary(b) => b.to_vec(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        };
        if bytes[0] != b'{' {
            let id = current
                .clone()
                .expect("binary messages follow an arrow line");
            // Whole IPC messages: each starts with the continuation marker.
            assert_eq!(&bytes[..4], &[0xFF; 4], "an IPC message");
            let entry = out.get_mut(&id).unwrap();
            entry.ipc.extend_from_slice(&bytes);
            entry.binary_messages += 1;
            continue;
        }
        for line in std::str::from_utf8(&bytes).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let id = v["query_id"].as_str().unwrap().to_string();
            let entry = out.entry(id.clone()).or_insert(WsArrow {
                lines: Vec::new(),
                ipc: Vec::new(),
                binary_messages: 0,
            });
            match v["type"].as_str().unwrap() {
                "arrow" => current = Some(id.clone()),
                "end" | "error" => {
                    open.remove(&id);
                    if current.as_deref() == Some(id.as_str()) {
                        current = None;
                    }
                }
                _ => {}
            }
            entry.lines.push(v);
        }
    }
    out
}

fn decode_ipc(bytes: &[u8]) -> Vec<arrow::array::RecordBatch> {
    arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[actix_web::test]
async fn arrow_over_websocket_is_binary_ipc_between_text_lines() {
    use arrow::array::{Array, Int64Array};
    let app = spawn_app().await;
    for (query, zstd) in [("?compression=none", false), ("", true)] {
        let mut ws = connect(&app, query).await;
        // Two Arrow queries and an NDJSON one at once: each Arrow result's binary messages
        // come together after its `arrow` line.
        for (id, format) in [("a", Some("arrow")), ("n", None), ("b", Some("arrow"))] {
            let mut msg = serde_json::json!({"type": "query", "id": id,
                "sql": "SELECT i FROM range(200000) t(i) ORDER BY i"});
            if let Some(f) = format {
                msg["format"] = f.into();
            }
            send(&mut ws, msg).await;
        }
        let results = read_arrow(&mut ws, &["a", "b", "n"], zstd).await;
        for id in ["a", "b"] {
            let r = &results[id];
            let kinds: Vec<_> = r
                .lines
                .iter()
                .map(|l| l["type"].as_str().unwrap())
                .collect();
            assert_eq!(kinds, ["arrow", "end"], "{id}: {:?}", r.lines);
            assert_eq!(r.lines[1]["rows"], 200_000);
            let batches = decode_ipc(&r.ipc);
            let values: Vec<i64> = batches
                .iter()
                .flat_map(|b| {
                    let c = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                    (0..c.len()).map(|i| c.value(i)).collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(values, (0..200_000).collect::<Vec<_>>(), "{id}");
            // The schema, the batches, the end-of-stream marker: one message each.
            assert_eq!(r.binary_messages, batches.len() + 2);
            assert_eq!(
                &r.ipc[r.ipc.len() - 8..],
                &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]
            );
        }
        let n = &results["n"];
        assert_eq!(
            n.lines.last().unwrap()["type"],
            "end",
            "{:?}",
            n.lines.last()
        );
        assert!(n.ipc.is_empty());

        // A failure after the first batches: an `error` line, no `end`, no end-of-stream.
        send(
            &mut ws,
            serde_json::json!({"type": "query", "id": "f", "format": "arrow",
                "sql": "SELECT CASE WHEN i = 1500000 THEN error('boom') ELSE i END AS v FROM range(2000000) t(i)"}),
        )
        .await;
        let failed = read_arrow(&mut ws, &["f"], zstd).await;
        let f = &failed["f"];
        let last = f.lines.last().unwrap();
        assert_eq!(last["type"], "error", "{:?}", f.lines);
        assert_eq!(last["code"], "query_failed");
        assert!(!f.ipc.ends_with(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]));
    }
}
