use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use duckstream::auth::keys::KeyHash;
use duckstream::config::tenants::TenantsFile;
use duckstream::config::Secret;
use duckstream::{Application, Config};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// A running server with its own data directory. Stops when dropped.
pub struct TestApp {
    pub base: String,
    /// The PostgreSQL endpoint's port.
    pub pg_port: u16,
    pub dir: TempDir,
    pub client: reqwest::Client,
    pub shutdown: CancellationToken,
    pub stopped: tokio::sync::oneshot::Receiver<std::io::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Creates `<dir>/<tenant>.duckdb` by running `sql` through the `duckdb` crate.
pub fn create_tenant(dir: &Path, tenant: &str, sql: &str) {
    let conn = duckdb::Connection::open(dir.join(format!("{tenant}.duckdb"))).unwrap();
    conn.execute_batch(sql).unwrap();
}

pub const FIXTURE: &str = "
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE TABLE people (id INTEGER, name VARCHAR, feeling mood);
    INSERT INTO people VALUES (1, 'Ada', 'happy'), (2, 'Grace', 'ok'), (3, NULL, NULL);
";

/// Where a tenant's tables live, for the few expectations that differ between the stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// A DuckDB file in the data directory.
    Local,
    /// DuckLake: a PostgreSQL catalog and Parquet files (no ENUM type: an ENUM arrives as its
    /// text, VARCHAR).
    Lake,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    duckstream::telemetry::init();
    let dir = tempfile::tempdir().unwrap();
    create_tenant(dir.path(), "t", FIXTURE);
    let mut config = Config::for_tests(dir.path());
    config.engine.extension_repository = Some(extension_repository());
    config.engine.extension_directory = Some(extension_directory());
    tweak(&mut config);
    let app = Application::build(config).await.expect("server builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let pg_port = app.pg_port().unwrap_or_default();
    let shutdown = app.shutdown_token();
    let (tx, stopped) = tokio::sync::oneshot::channel();
    actix_web::rt::spawn(async move {
        let _ = tx.send(app.run_until_stopped().await);
    });
    TestApp {
        base,
        pg_port,
        dir,
        client: reqwest::Client::new(),
        shutdown,
        stopped,
    }
}

/// The duckstream binary on `data_dir`, with the tests' extension repository and directory;
/// its other flags and subcommand follow.
pub fn duckstream_command(data_dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_duckstream"));
    // Several servers run at once: none takes the PostgreSQL endpoint's default port.
    cmd.env("DUCKSTREAM_PG_BIND", "127.0.0.1:0");
    cmd.arg("--data-dir")
        .arg(data_dir)
        .arg("--extension-repository")
        .arg(extension_repository())
        .arg("--extension-directory")
        .arg(extension_directory());
    cmd
}

/// The local DuckDB extension repository that `scripts/test.sh` prepares (spatial, from
/// PyPI's official wheel). Every test server loads spatial from it.
pub fn extension_repository() -> std::path::PathBuf {
    let dir = std::env::var_os("DUCKSTREAM_TEST_EXTENSION_REPOSITORY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/duckstream-tools/extensions".into());
    assert!(
        dir.join("v1.5.5/linux_amd64/spatial.duckdb_extension")
            .is_file(),
        "no spatial extension in {}: run the tests with ./scripts/test.sh, which prepares it \
         (scripts/extensions.sh)",
        dir.display()
    );
    dir
}

/// The DuckDB extension directory of the test servers: spatial is installed there once per
/// test process, before any server starts, so parallel servers only ever LOAD it.
pub fn extension_directory() -> std::path::PathBuf {
    static INSTALLED: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            // One directory for every run (INSTALL is idempotent), not one per process.
            let dir = std::env::temp_dir().join("duckstream-test-extensions");
            let conn = duckdb::Connection::open_in_memory().unwrap();
            conn.execute_batch(&format!(
                "SET extension_directory = '{}'; INSTALL spatial FROM '{}';",
                dir.display(),
                extension_repository().display()
            ))
            .unwrap();
            dir
        })
        .clone()
}

/// A parsed NDJSON response.
pub struct Lines {
    pub status: u16,
    pub raw: String,
    pub lines: Vec<Value>,
}

impl Lines {
    pub fn kinds(&self) -> Vec<&str> {
        self.lines
            .iter()
            .map(|l| l["type"].as_str().unwrap())
            .collect()
    }

    /// The text of the `rows` arrays of every data line, joined (exact JSON as sent).
    pub fn data_rows_text(&self) -> Vec<String> {
        self.raw
            .lines()
            .filter(|l| l.starts_with("{\"type\":\"data\""))
            .map(|l| {
                let start = l.find("\"rows\":").unwrap() + 7;
                l[start..l.len() - 1].to_string()
            })
            .collect()
    }

    pub fn last(&self) -> &Value {
        self.lines.last().unwrap()
    }

    pub fn rows(&self) -> Vec<Value> {
        self.lines
            .iter()
            .filter(|l| l["type"] == "data")
            .flat_map(|l| l["rows"].as_array().unwrap().clone())
            .collect()
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, tenant: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/{tenant}/query")))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Runs `sql` on tenant `t` and reads the whole (uncompressed) response.
    pub async fn query(&self, sql: &str) -> Lines {
        self.query_on("t", sql).await
    }

    /// Runs `sql` on `tenant` and reads the whole (uncompressed) response.
    pub async fn query_on(&self, tenant: &str, sql: &str) -> Lines {
        let body = serde_json::json!({ "sql": sql }).to_string();
        read_lines(self.post(tenant, &body).await).await
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one sample (`name{labels}` exactly as rendered), 0 if absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.metrics().await, sample)
    }

    /// Polls a metric until `pred` holds (or panics after 10 s).
    pub async fn wait_metric(&self, sample: &str, pred: impl Fn(f64) -> bool) -> f64 {
        for _ in 0..200 {
            let v = self.metric(sample).await;
            if pred(v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "metric {sample} never satisfied the condition: {}",
            self.metrics().await
        );
    }
}

/// The case lines of a file in `tests/data/` (without `#` comments and blank lines).
pub fn data_cases(file: &str) -> Vec<String> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|r| r.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// The `name` of every item of a JSON array (a listing's datasets or tenants), in order.
pub fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

/// The item of a JSON array whose `name` is `name`.
pub fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|item| item["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// A JSON response body (an error's `{code, message}`, the token endpoint's answer).
pub async fn json_of(resp: reqwest::Response) -> Value {
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

pub async fn read_lines(resp: reqwest::Response) -> Lines {
    let status = resp.status().as_u16();
    let raw = resp.text().await.unwrap();
    let lines = raw
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect();
    Lines { status, raw, lines }
}

/// The real `duckstream` binary in a child process (for measurements of the server alone).
pub struct ServerProcess {
    pub app: TestApp,
    child: std::process::Child,
}

impl ServerProcess {
    /// Starts the binary on a free port with a temporary data dir holding tenant `t`.
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        create_tenant(dir.path(), "t", FIXTURE);
        Self::start_in(dir, extra)
    }

    /// Starts the binary on the data dir `dir` (a restart after [`Self::kill`]).
    pub fn start_in(dir: TempDir, extra: &[&str]) -> Self {
        Self::start_at(dir, 0, extra)
    }

    /// Starts the binary on `dir` and the loopback `port` (0: any free one): a restart that
    /// its clients find at the same address, as behind a balancer.
    pub fn start_at(dir: TempDir, port: u16, extra: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = duckstream_command(dir.path())
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--demo", "false"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the duckstream binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let port = loop {
            let line = lines.next().expect("server output").unwrap();
            if let Some(rest) = line
                .split("port=")
                .nth(1)
                .filter(|_| line.contains("listening"))
            {
                let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
                break digits.parse::<u16>().unwrap();
            }
        };
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let app = TestApp {
            base: format!("http://127.0.0.1:{port}"),
            // Its PostgreSQL endpoint listens on a port the tests do not read.
            pg_port: 0,
            dir,
            client: reqwest::Client::new(),
            shutdown: CancellationToken::new(),
            stopped: tokio::sync::oneshot::channel().1,
        };
        Self { app, child }
    }

    fn status_mib(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap();
        kb / 1024.0
    }

    /// `kill -9`: the process gets no chance to clean up. Returns its data dir.
    pub fn kill(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.app.dir, tempfile::tempdir().unwrap())
    }

    /// Sends SIGTERM (a rolling restart's stop).
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit; its exit status, or `None` if it still runs.
    pub async fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub fn rss_mib(&self) -> f64 {
        self.status_mib("VmRSS:")
    }

    pub fn peak_rss_mib(&self) -> f64 {
        self.status_mib("VmHWM:")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Secured servers (a tenants file), their credentials and clients, shared by the auth,
// browser and limits tests.

pub const SECRET: &str = "test secret: thirty-two bytes or more, fine";
pub const ACME_KEY: &str = "acme-key-0123456789";
pub const GLOBEX_KEY: &str = "globex-key-0123456789";
pub const ADMIN_KEY: &str = "admin-key-0123456789";

/// The secured servers' tenant `acme`: trips (7 rows), secret, a view over secret, geo.zones, a
/// sequence and a macro.
pub const ACME: &str = "CREATE TABLE trips AS SELECT range AS id FROM range(7);
    CREATE TABLE secret (v VARCHAR); INSERT INTO secret VALUES ('acme-secret');
    CREATE VIEW leak AS SELECT * FROM secret;
    CREATE SCHEMA geo; CREATE TABLE geo.zones AS SELECT 1 AS z;
    CREATE SEQUENCE seq1;
    CREATE MACRO cnt() AS (SELECT count(*) FROM secret);";

/// The secured servers' tenant `globex`.
pub const GLOBEX: &str = "CREATE TABLE ledger AS SELECT 'globex-data' AS v;";

/// A server with a tenants file: `acme` (trips, secret, a view over secret, geo.zones) and
/// `globex` (ledger), each with its own key, and an admin key. `extra` goes into acme's entry.
pub async fn spawn_secure_app(acme_extra: &str) -> TestApp {
    spawn_secure_app_with(acme_extra, |_| {}).await
}

/// [`spawn_secure_app`], with a change to the rest of the configuration.
pub async fn spawn_secure_app_with(
    acme_extra: &str,
    tweak: impl FnOnce(&mut duckstream::Config),
) -> TestApp {
    let tenants = format!(
        "admin_keys = [\"{}\"]\n[tenants.acme]\nkeys = [\"{}\"]\n{acme_extra}\n[tenants.globex]\nkeys = [\"{}\"]\n",
        KeyHash::of(ADMIN_KEY).to_stored(),
        KeyHash::of(ACME_KEY).to_stored(),
        KeyHash::of(GLOBEX_KEY).to_stored(),
    );
    spawn_app_with(|c| {
        create_tenant(&c.server.data_dir, "acme", ACME);
        create_tenant(&c.server.data_dir, "globex", GLOBEX);
        c.auth.tenants = Some(Arc::new(TenantsFile::from_toml(&tenants).unwrap()));
        c.auth.token_secret = Some(Secret(SECRET.into()));
        tweak(c);
    })
    .await
}

/// How a request carries its credential.
pub enum Cred {
    None,
    Header(String),
    Query(String),
    /// `(header, query)`.
    Both(String, String),
}

/// A token from the real endpoint, issued to `tenant`'s key.
pub async fn issue(app: &TestApp, tenant: &str, body: Value) -> String {
    let key = match tenant {
        "acme" => ACME_KEY,
        _ => GLOBEX_KEY,
    };
    let resp = app
        .client
        .post(app.url(&format!("/v1/{tenant}/tokens")))
        .bearer_auth(key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = json_of(resp).await;
    v["token"].as_str().unwrap().to_string()
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket (uncompressed) with `cred`; `Err((status, code))` if the handshake is refused.
pub async fn ws_connect(app: &TestApp, tenant: &str, cred: &Cred) -> Result<Ws, (u16, String)> {
    let mut url = format!(
        "{}/v1/{tenant}/ws?compression=none",
        app.base.replace("http://", "ws://")
    );
    if let Cred::Query(t) | Cred::Both(_, t) = cred {
        url.push_str(&format!("&token={t}"));
    }
    let mut request = url.into_client_request().unwrap();
    if let Cred::Header(h) | Cred::Both(h, _) = cred {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {h}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            Err((
                resp.status().as_u16(),
                body["code"].as_str().unwrap().to_string(),
            ))
        }
        Err(e) => panic!("websocket: {e}"),
    }
}

/// Opens a WebSocket on tenant `t` with `query` (`?compression=none`...).
pub async fn connect(app: &TestApp, query: &str) -> Ws {
    let url = format!("{}/v1/t/ws{query}", app.base.replace("http://", "ws://"));
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects");
    ws
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// Decodes one server message into its NDJSON lines: a binary message must be one
/// independent zstd frame that records its content size.
pub fn lines_of(msg: &Message) -> Vec<Value> {
    let text = match msg {
        Message::Binary(b) => {
            let size = zstd::zstd_safe::get_frame_content_size(b).expect("a zstd frame");
            let decoded = zstd::decode_all(&b[..]).expect("decodes with a fresh decoder");
            assert_eq!(size, Some(decoded.len() as u64), "content size recorded");
            String::from_utf8(decoded).unwrap()
        }
        Message::Text(t) => t.to_string(),
        other => panic!("unexpected message {other:?}"),
    };
    assert!(text.ends_with('\n'), "whole lines only: {text:?}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Reads lines until `done` says stop; returns them in arrival order.
pub async fn read_until(ws: &mut Ws, mut done: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a message within 60 s")
            .expect("socket open")
            .unwrap();
        if matches!(msg, Message::Ping(_) | Message::Pong(_)) {
            continue;
        }
        let mut stop = false;
        for line in lines_of(&msg) {
            stop |= done(&line);
            all.push(line);
        }
        if stop {
            return all;
        }
    }
}

/// Uploads `csv` as `dataset` of tenant `t` (open mode, loopback) and checks it loaded.
pub async fn upload_csv(app: &TestApp, dataset: &str, csv: &str) {
    let resp = app
        .client
        .put(app.url(&format!("/v1/t/datasets/{dataset}?format=csv")))
        .body(csv.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// The data rows of one WebSocket query that must end with `end`, every message decoded on
/// its own.
pub async fn ws_rows(ws: &mut Ws, id: &str, sql: &str) -> Vec<Value> {
    send(ws, json!({"type": "query", "id": id, "sql": sql})).await;
    let lines = read_until(ws, |l| l["type"] == "end" || l["type"] == "error").await;
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "end", "{last}");
    lines
        .iter()
        .filter(|l| l["type"] == "data")
        .flat_map(|l| l["rows"].as_array().unwrap().clone())
        .collect()
}
