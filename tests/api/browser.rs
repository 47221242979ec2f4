//! A real browser: headless Chromium opens an `EventSource` on a zstd-encoded stream and counts
//! the rows. Needs node, playwright-core and /usr/bin/chromium, which `scripts/test.sh` installs
//! (it sets DUCKSTREAM_TOOLS to where playwright-core lives).

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::helpers::spawn_app_with;
use crate::helpers::{issue, spawn_secure_app_with};

/// Serves one HTML page (any path) from a thread, on another origin than the gateway.
fn serve_page(html: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                html.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(html.as_bytes());
        }
    });
    format!("http://{addr}/")
}

/// Serves `html` and loads it in headless Chromium; returns the page's `window.result`.
async fn run_page(html: String) -> serde_json::Value {
    let page = serve_page(html);
    run_driver("sse_page.cjs", &[&page]).await
}

#[actix_web::test]
async fn chromium_eventsource_reads_a_zstd_stream() {
    let app = spawn_app_with(|c| c.server.cors_allow_origins = vec!["*".into()]).await;
    let rows = 150_000;
    let sse = format!(
        "{}/v1/t/sse?sql={}&chunk_rows=2000",
        app.base,
        "SELECT%20i%2C%20'r'%20%7C%7C%20i%20AS%20s%20FROM%20range(150000)%20t(i)%20ORDER%20BY%20i"
    );
    let html = format!(
        r#"<!doctype html><meta charset="utf-8"><script>
const es = new EventSource({sse:?});
let rows = 0, first = null, metadata = 0, data = 0, empty = 0;
es.addEventListener("metadata", () => metadata++);
es.addEventListener("data", (e) => {{
  data++;
  const m = JSON.parse(e.data);
  if (m.rows.length === 0) empty++;
  if (first === null) first = m.rows[0];
  rows += m.rows.length;
}});
es.addEventListener("end", (e) => {{
  es.close();
  window.result = {{ rows, first, metadata, data, empty, end: JSON.parse(e.data) }};
}});
es.addEventListener("error", (e) => {{
  es.close();
  window.result = {{ error: e.data || "connection error", rows }};
}});
</script>"#
    );
    let result = run_page(html).await;
    assert_eq!(result["rows"], rows, "{result}");
    assert_eq!(result["first"], serde_json::json!([0, "r0"]), "{result}");
    assert_eq!(result["end"]["rows"], rows);
    // One metadata event, then data events of at most 2000 rows each and none empty. How many
    // depends on DuckDB's vectors and the partial-chunk flush timer, so only the bounds are fixed.
    assert_eq!(result["metadata"], 1, "{result}");
    assert_eq!(result["empty"], 0, "{result}");
    let data = result["data"].as_u64().unwrap();
    assert!(
        (rows / 2000..=rows / 100).contains(&data),
        "{data} data events for {rows} rows: {result}"
    );
    // The browser got it zstd-encoded: far fewer bytes on the wire than NDJSON produced.
    let sent = app
        .metric("duckstream_bytes_sent_total{transport=\"sse\"}")
        .await;
    let raw = app
        .metric("duckstream_uncompressed_bytes_total{transport=\"sse\"}")
        .await;
    assert!(
        raw > 0.0 && sent < raw / 2.0,
        "sent {sent} of {raw} bytes: not compressed?"
    );
}

/// A browser cannot put a key in a header of an EventSource or a WebSocket: it gets a token
/// (issued here, as a dashboard's backend would) and sends it as `?token=`. The same token
/// opens nothing on another tenant.
#[actix_web::test]
async fn chromium_uses_a_token_for_eventsource_and_websocket() {
    let app = spawn_secure_app_with("", |c| c.server.cors_allow_origins = vec!["*".into()]).await;
    let token = issue(&app, "acme", serde_json::json!({ "tables": ["trips"] })).await;
    let sql = "SELECT%20id%20FROM%20trips%20ORDER%20BY%20id";
    let sse = format!("{}/v1/acme/sse?sql={sql}&token={token}", app.base);
    let foreign = format!("{}/v1/globex/sse?sql=SELECT%201&token={token}", app.base);
    let ws = format!(
        "{}/v1/acme/ws?compression=none&token={token}",
        app.base.replace("http://", "ws://")
    );
    let html = format!(
        r#"<!doctype html><meta charset="utf-8"><script>
const out = {{}};
const done = () => {{ if ("sse" in out && "ws" in out && "foreign" in out) window.result = out; }};
const es = new EventSource({sse:?});
let sseRows = [];
es.addEventListener("data", (e) => {{ sseRows = sseRows.concat(JSON.parse(e.data).rows); }});
es.addEventListener("end", () => {{ es.close(); out.sse = sseRows; done(); }});
es.addEventListener("error", (e) => {{ es.close(); out.sse = "error: " + (e.data || "connection"); done(); }});
// Another tenant: the handshake is refused (401/403), which EventSource reports as an error.
const other = new EventSource({foreign:?});
other.onmessage = () => {{ out.foreign = "got data"; }};
other.onerror = () => {{ other.close(); if (!("foreign" in out)) out.foreign = "refused"; done(); }};
const ws = new WebSocket({ws:?});
let wsRows = [];
ws.onopen = () => ws.send(JSON.stringify({{ type: "query", id: "q", sql: "SELECT count(*) FROM trips" }}));
ws.onmessage = (m) => {{
  for (const line of m.data.split("\n").filter(Boolean)) {{
    const v = JSON.parse(line);
    if (v.type === "data") wsRows = wsRows.concat(v.rows);
    if (v.type === "end" || v.type === "error") {{ out.ws = v.type === "end" ? wsRows : v.code; ws.close(); done(); }}
  }}
}};
ws.onerror = () => {{ out.ws = "socket error"; done(); }};
</script>"#
    );
    let result = run_page(html).await;
    assert_eq!(
        result["sse"],
        serde_json::json!([[0], [1], [2], [3], [4], [5], [6]]),
        "{result}"
    );
    assert_eq!(result["ws"], serde_json::json!([[7]]), "{result}");
    assert_eq!(result["foreign"], "refused", "{result}");
    assert!(
        app.metric("duckstream_auth_failures_total{reason=\"denied\"}")
            .await
            >= 1.0
    );
}

/// A loopback TCP proxy in front of `upstream` that cuts a first request (one without
/// `Last-Event-ID`) once the server has sent a whole result (`event: end`), and says when a
/// resumed one (with it) got `subscribed`. Told apart by the request, not by the order of
/// connections: Chromium may open a spare connection first and never use it.
/// Requests lose `zstd` from Accept-Encoding so the proxy can read the events it forwards.
async fn cutting_proxy(upstream: String) -> (String, std::sync::Arc<tokio::sync::Notify>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resumed = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = std::sync::Arc::clone(&resumed);
    actix_web::rt::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let notify = std::sync::Arc::clone(&notify);
            let upstream = upstream.clone();
            actix_web::rt::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let resume = std::cell::Cell::new(false);
                let up = async {
                    let mut buf = vec![0u8; 16384];
                    while let Ok(k) = cr.read(&mut buf).await {
                        if k == 0 {
                            break;
                        }
                        let text = String::from_utf8_lossy(&buf[..k]).replace("zstd", "none");
                        if text.to_ascii_lowercase().contains("last-event-id:") {
                            resume.set(true);
                        }
                        if sw.write_all(text.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async {
                    let mut buf = vec![0u8; 16384];
                    let mut seen = String::new();
                    while let Ok(k) = sr.read(&mut buf).await {
                        if k == 0 || cw.write_all(&buf[..k]).await.is_err() {
                            break;
                        }
                        seen.push_str(&String::from_utf8_lossy(&buf[..k]));
                        if !resume.get() && seen.contains("event: end") {
                            // Cut: the browser sees the stream break and reconnects.
                            break;
                        }
                        if resume.get() && seen.contains("event: subscribed") {
                            notify.notify_one();
                        }
                    }
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    (format!("http://{addr}"), resumed)
}

/// A real `EventSource` whose connection breaks reconnects by itself with `Last-Event-ID`: the
/// gateway sees it holds the current result and sends nothing until the data changes.
#[actix_web::test]
async fn chromium_eventsource_resumes_a_subscription_after_a_cut() {
    let app = spawn_app_with(|c| c.server.cors_allow_origins = vec!["*".into()]).await;
    let (proxy, resumed) = cutting_proxy(app.base.trim_start_matches("http://").to_string()).await;
    let sse = format!(
        "{proxy}/v1/t/sse?subscribe=1&sql={}",
        "SELECT%20count(*)%20AS%20n%20FROM%20people"
    );
    let html = format!(
        r#"<!doctype html><meta charset="utf-8"><script>
const es = new EventSource({sse:?});
const out = {{ acks: [], results: [], errors: 0 }};
let rows = [];
es.addEventListener("subscribed", (e) => out.acks.push(JSON.parse(e.data).resumed || null));
es.addEventListener("data", (e) => {{ rows = rows.concat(JSON.parse(e.data).rows); }});
es.addEventListener("end", (e) => {{
  out.results.push({{ rows, id: e.lastEventId }});
  rows = [];
  if (out.results.length === 2) {{ es.close(); window.result = out; }}
}});
es.onerror = () => {{ out.errors++; }};
</script>"#
    );
    // Once the browser is back and acknowledged, the data changes.
    let writer = async {
        resumed.notified().await;
        crate::helpers::upload_csv(&app, "people", "id,name\n1,Ada\n").await;
    };
    let (result, ()) = futures_util::join!(run_page(html), writer);
    assert_eq!(
        result["acks"],
        serde_json::json!([null, "unchanged"]),
        "{result}"
    );
    assert_eq!(
        result["results"][0]["rows"],
        serde_json::json!([[3]]),
        "{result}"
    );
    assert_eq!(
        result["results"][1]["rows"],
        serde_json::json!([[1]]),
        "{result}"
    );
    assert!(result["errors"].as_u64().unwrap() >= 1, "{result}");
    let (before, after) = (
        result["results"][0]["id"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        result["results"][1]["id"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap(),
    );
    assert!(after > before, "{result}");
}

/// Runs a Playwright driver of `tests/browser/` with `args`; its JSON report.
async fn run_driver(script: &str, args: &[&str]) -> serde_json::Value {
    let tools = std::env::var("DUCKSTREAM_TOOLS").expect(
        "DUCKSTREAM_TOOLS (set by scripts/test.sh) points at the installed playwright-core",
    );
    let path = format!("{}/tests/browser/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new("node")
        .arg(&path)
        .args(args)
        .env("NODE_PATH", format!("{tools}/node_modules"))
        .current_dir(&tools)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

/// The page at `/`, embedded in the binary, in Chromium: a query's rows fill the table and
/// draw a chart, the demo's zones draw a map, a long query is cancelled from the page (and
/// the server interrupts DuckDB), the metrics panel shows numbers; zstd is the browser's own.
#[actix_web::test]
async fn the_dashboard_page_streams_charts_maps_and_cancels() {
    let app = spawn_app_with(|c| {
        duckstream::demo::ensure_demo(&c.server.data_dir, 20_000).unwrap();
    })
    .await;
    let shot = tempfile::NamedTempFile::with_suffix(".png").unwrap();
    let report = run_driver(
        "dashboard_page.cjs",
        &[&app.base, "-", shot.path().to_str().unwrap()],
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["table_rows"].as_u64().unwrap() > 0, "{report}");
    assert!(report["chart_marks"].as_u64().unwrap() > 0, "{report}");
    assert!(report["map_shapes"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["cancelled"], true);
    assert_eq!(report["server_cancelled"], true);
    assert_eq!(report["zstd"], true, "{report}");
    assert_eq!(report["console_errors"], serde_json::json!([]));
    assert!(std::fs::metadata(shot.path()).unwrap().len() > 10_000);
}

/// The vgplot example (`examples/mosaic-dashboard`, Mosaic's own npm packages) on another
/// origin, through the Mosaic endpoint over REST: it renders, and its brushes pre-aggregate.
#[actix_web::test]
async fn a_vgplot_dashboard_runs_on_the_mosaic_endpoint() {
    let app = spawn_app_with(|c| {
        c.server.cors_allow_origins = vec!["*".into()];
        duckstream::demo::ensure_demo(&c.server.data_dir, 20_000).unwrap();
    })
    .await;
    let server = format!("{}/v1/demo/mosaic", app.base);
    let report = run_driver("mosaic_dashboard.cjs", &[&server]).await;
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert!(report["marks"].as_u64().unwrap() > 0, "{report}");
    for preflight in report["preflights"].as_array().unwrap() {
        assert!(preflight["status"].as_u64().unwrap() < 300, "{preflight}");
    }
    let sql: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["sql"].as_array().into_iter().flatten())
        .filter_map(|q| q.as_str())
        .collect();
    assert!(
        sql.iter()
            .any(|q| q.contains("CREATE TABLE IF NOT EXISTS \"mosaic\".\"preagg_")),
        "the brushes pre-aggregated: {sql:?}"
    );
    assert!(sql.iter().any(|q| q.contains("FROM \"mosaic\".\"preagg_")));
}

/// `tests/browser/live_page.cjs` in a child process, driven one step at a time: the test
/// restarts the gateway and changes the data between the steps.
struct LivePage {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl LivePage {
    /// Opens `/` of `base` and turns Live on for `sql` on `tenant`.
    fn open(base: &str, tenant: &str, sql: &str) -> Self {
        use tokio::io::AsyncBufReadExt;
        let tools = std::env::var("DUCKSTREAM_TOOLS").expect(
            "DUCKSTREAM_TOOLS (set by scripts/test.sh) points at the installed playwright-core",
        );
        let path = format!("{}/tests/browser/live_page.cjs", env!("CARGO_MANIFEST_DIR"));
        let mut child = tokio::process::Command::new("node")
            .args([path.as_str(), base, tenant, sql])
            .env("NODE_PATH", format!("{tools}/node_modules"))
            .current_dir(&tools)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().unwrap();
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// Sends one command; the driver's answer.
    async fn ask(&mut self, command: serde_json::Value) -> serde_json::Value {
        use tokio::io::AsyncWriteExt;
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        self.answer().await
    }

    async fn answer(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(40), self.lines.next_line())
            .await
            .expect("the driver answers")
            .unwrap()
            .expect("the driver is still running (its errors are on stderr)");
        serde_json::from_str(&line).unwrap()
    }

    /// Waits until the page's Live report has at least `want`; its report.
    async fn until(&mut self, want: serde_json::Value) -> serde_json::Value {
        let answer = self
            .ask(serde_json::json!({ "until": want, "timeout_ms": 15000 }))
            .await;
        assert_eq!(answer["ok"], true, "waited for {want}: {answer}");
        answer["live"].clone()
    }

    /// Closes the browser; the driver's last report.
    async fn close(mut self) -> serde_json::Value {
        drop(self.stdin);
        let report = {
            let line = self.lines.next_line().await.unwrap().unwrap();
            serde_json::from_str(&line).unwrap()
        };
        assert!(self.child.wait().await.unwrap().success());
        report
    }
}

/// Sends SIGTERM (the server drains and closes its sockets with 1012) and waits for the exit;
/// the data dir, for the restart.
async fn stop(mut server: crate::helpers::ServerProcess) -> tempfile::TempDir {
    server.terminate();
    let status = server
        .exited_within(std::time::Duration::from_secs(10))
        .await
        .expect("the server drains and exits");
    assert!(status.success(), "{status:?}");
    server.kill()
}

/// `duckstream load` (offline, the server stopped): appends `csv` to `people` of tenant `t`.
fn load_offline(dir: &std::path::Path, csv: &str) {
    let file = dir.join("more.csv");
    std::fs::write(&file, csv).unwrap();
    let out = crate::helpers::duckstream_command(dir)
        .args(["--demo", "false", "load", "t", "people"])
        .arg(&file)
        .args(["--mode", "append"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The versions of the whole results the page showed, in order.
fn versions(live: &serde_json::Value) -> Vec<u64> {
    live["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_u64().unwrap())
        .collect()
}

/// The page at `/` in Live mode, across two restarts of the real binary on one port: a
/// rolling one (SIGTERM: closed with 1012) with the data changed while the page was away (it
/// resumes `replaced` and shows the new result), then a crash (`kill -9`: the socket drops)
/// without a change (it resumes `unchanged` and receives nothing); then a change once it is
/// back. It reconnected each time, never showed a version twice, and ends with the current
/// result on screen.
#[actix_web::test]
async fn the_dashboard_page_resumes_its_live_query_across_restarts() {
    use crate::helpers::{create_tenant, ServerProcess, FIXTURE};
    use serde_json::json;
    let port = crate::services::free_port();
    let dir = tempfile::tempdir().unwrap();
    create_tenant(dir.path(), "t", FIXTURE);
    let server = ServerProcess::start_at(dir, port, &[]);
    let base = server.app.base.clone();
    let mut page = LivePage::open(&base, "t", "SELECT count(*) AS n FROM people");

    let first = page.until(json!({ "results": 1, "socket": "open" })).await;
    assert_eq!(first["acks"], json!([null]), "{first}");
    assert_eq!(first["results"][0]["head"], json!([[3]]), "{first}");
    assert_eq!(first["table"], json!([["3"]]), "{first}");
    assert_eq!(first["status"], "live", "{first}");
    let v1 = versions(&first)[0];

    // 1. A rolling restart, and a row loaded while the page is away.
    let dir = stop(server).await;
    load_offline(dir.path(), "id,name,feeling\n4,Linus,ok\n");
    let server = ServerProcess::start_at(dir, port, &[]);
    let back = page.until(json!({ "results": 2, "acks": 2 })).await;
    assert_eq!(back["acks"], json!([null, "replaced"]), "{back}");
    assert_eq!(back["results"][1]["head"], json!([[4]]), "{back}");
    assert_eq!(back["table"], json!([["4"]]), "{back}");
    assert!(versions(&back)[1] > v1, "{back}");
    assert!(back["reconnects"].as_u64().unwrap() >= 1, "{back}");
    assert_eq!(
        back["closes"][0], 1012,
        "closed by the draining server: {back}"
    );

    // 2. The replica dies (`kill -9`: the socket just drops) and comes back, the data
    // unchanged: resumed unchanged, and nothing is sent again.
    let closed = back["closes"].as_array().unwrap().len();
    let dir = server.kill();
    let server = ServerProcess::start_at(dir, port, &[]);
    let resumed = page.until(json!({ "acks": 3, "socket": "open" })).await;
    assert_eq!(resumed["acks"][2], "unchanged", "{resumed}");
    assert_eq!(
        resumed["closes"][closed], 1006,
        "dropped, not closed: {resumed}"
    );
    let quiet = page.ask(json!({ "quiet_ms": 1500 })).await["live"].clone();
    assert_eq!(quiet["results"].as_array().unwrap().len(), 2, "{quiet}");
    assert_eq!(quiet["table"], json!([["4"]]), "{quiet}");
    assert_eq!(quiet["status"], "live", "{quiet}");
    assert!(quiet["reconnects"].as_u64().unwrap() >= 2, "{quiet}");

    // 3. A change once the page is back: it follows, on the socket it reopened.
    let resp = server
        .app
        .client
        .put(
            server
                .app
                .url("/v1/t/datasets/people?format=csv&mode=append"),
        )
        .body("id,name,feeling\n5,Barbara,happy\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let last = page.until(json!({ "results": 3 })).await;
    assert_eq!(last["results"][2]["head"], json!([[5]]), "{last}");
    assert_eq!(last["table"], json!([["5"]]), "{last}");
    assert_eq!(last["version"], json!(versions(&last)[2]), "{last}");
    // No duplicate: every whole result shown is a newer version than the one before.
    let seen = versions(&last);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(
        last["acks"],
        json!([null, "replaced", "unchanged"]),
        "{last}"
    );

    let report = page.close().await;
    assert_eq!(report["page_errors"], json!([]), "{report}");
    drop(server);
}
