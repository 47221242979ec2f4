//! The real services behind the DuckLake tests: a PostgreSQL 15 server (the tenants' catalogs)
//! and moto_server (the S3 API the Parquet data goes to), each a private process on a free
//! loopback port with its own temporary directory.
//!
//! Invariants:
//! - Every wait is bounded (at most [`WAIT`] per step, then a panic that carries the service's
//!   log tail), and every command runs with a deadline, so a stuck service fails its test
//!   instead of hanging the run.
//! - No process outlives the test process: each service has a watchdog (its own session, so a
//!   Ctrl-C or a group kill of the test run does not take it down first) that stops the
//!   service and removes its directory once the test process is gone. That covers the shared
//!   [`Lake`], which lives in a static and is never dropped, and any test killed mid-way.
//!   Dropping a service stops it at once and retires its watchdog.
//! - PostgreSQL answers in English (`lc_messages = C`, initdb `--locale=C`: DuckLake's retry
//!   matches English error text) and stores UTF-8 (`-E UTF8`, which `--locale=C` alone would
//!   leave as SQL_ASCII).
//! - Only loopback: PostgreSQL listens on 127.0.0.1 and on a socket in its own directory,
//!   never the system's /var/run/postgresql; moto binds 127.0.0.1.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Debian's PostgreSQL 15 server binaries (package postgresql-15, `scripts/test.sh`).
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The longest any single step (a start, a stop, a command, an HTTP request) may take.
const WAIT: Duration = Duration::from_secs(30);

/// A free loopback port: bound on port 0, read back, released. Another process could take it
/// before the service binds it; the service's start then fails loudly, never silently.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// `$DUCKSTREAM_TOOLS` (where `scripts/test.sh` installs the tools), or its default.
pub fn tools() -> PathBuf {
    std::env::var_os("DUCKSTREAM_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/duckstream-tools".into())
}

/// Runs `cmd` to completion with a deadline: stdin empty, stdout and stderr captured. Err when
/// it cannot start or outlives `timeout` (it is then killed).
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    // Read both pipes at once, so a chatty command never blocks on a full one.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} took more than {timeout:?}"));
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    })
}

/// `output`'s stdout when it exited 0, else Err with its status and stderr.
fn succeeded(output: Result<Output, String>) -> Result<String, String> {
    let output = output?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        ))
    }
}

/// The last lines of a service's log, for the panic that reports its failure.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(no log at {}: {e})", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Starts `sh -c script` in a session of its own, with the test process's pid as `$1` and
/// `args` after it. The script waits for the test process to end, then cleans up.
fn watchdog(script: &str, args: &[&str]) -> Child {
    let script = format!("while kill -0 \"$1\" 2>/dev/null; do sleep 1; done\n{script}");
    Command::new("setsid")
        .args(["sh", "-c", &script, "watchdog"])
        .arg(std::process::id().to_string())
        .args(args)
        // No inherited pipes: whoever reads the test's output must not wait for the watchdog.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the watchdog (setsid, from util-linux)")
}

/// Stops and reaps a watchdog whose service is already gone.
fn retire(watchdog: &mut Child) {
    let _ = watchdog.kill();
    let _ = watchdog.wait();
}

/// A PostgreSQL 15 server of its own: data directory, socket and log in one temporary
/// directory, trust authentication for `postgres` on 127.0.0.1:`port`.
pub struct Postgres {
    pub port: u16,
    dir: TempDir,
    /// initdb and the server refuse to run as root: as root, they run as the `postgres` user.
    as_root: bool,
    watchdog: Child,
}

impl Postgres {
    /// initdb into a fresh directory and start the server; returns once it accepts
    /// connections.
    pub fn start() -> Postgres {
        assert!(
            Path::new(PG_BIN).join("initdb").is_file(),
            "no PostgreSQL 15 server in {PG_BIN}: run the tests with ./scripts/test.sh, which \
             installs Debian's postgresql-15"
        );
        let dir = tempfile::Builder::new()
            .prefix("duckstream-pg-")
            .tempdir()
            .expect("temporary directory");
        let as_root = dir.path().metadata().expect("stat the directory").uid() == 0;
        if as_root {
            succeeded(run(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(dir.path()),
                WAIT,
            ))
            .unwrap_or_else(|e| panic!("chown the PostgreSQL directory: {e}"));
        }
        let port = free_port();
        let watchdog = watchdog(
            "if [ \"$5\" = root ]; then runuser -u postgres -- \"$2\" -D \"$3\" stop -m immediate -w -t 30; \
             else \"$2\" -D \"$3\" stop -m immediate -w -t 30; fi >/dev/null 2>&1\n\
             rm -rf \"$4\"",
            &[
                &format!("{PG_BIN}/pg_ctl"),
                &dir.path().join("data").to_string_lossy(),
                &dir.path().to_string_lossy(),
                if as_root { "root" } else { "user" },
            ],
        );
        let pg = Postgres {
            port,
            dir,
            as_root,
            watchdog,
        };
        succeeded(run(
            pg.command("initdb")
                .arg("-D")
                .arg(pg.data())
                .args(["-A", "trust", "-U", "postgres", "--no-sync"])
                .args(["-E", "UTF8", "--locale=C", "--lc-messages=C"]),
            WAIT,
        ))
        .unwrap_or_else(|e| panic!("initdb: {e}"));
        // In the configuration, not on pg_ctl's command line, so a restart keeps all of it.
        let mut conf = OpenOptions::new()
            .append(true)
            .open(pg.data().join("postgresql.conf"))
            .expect("open postgresql.conf");
        write!(
            conf,
            "\n# duckstream tests\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nlc_messages = 'C'\nfsync = off\n\
             max_connections = 200\n",
            pg.dir.path().display()
        )
        .expect("write postgresql.conf");
        drop(conf);
        pg.launch();
        pg
    }

    /// A libpq key=value connection string for database `db` (DuckDB's postgres extension and
    /// DuckLake's `ducklake:postgres:` take this form).
    pub fn dsn(&self, db: &str) -> String {
        format!(
            "dbname={db} host=127.0.0.1 port={} user=postgres",
            self.port
        )
    }

    /// CREATE DATABASE `name` (quoted as an identifier, so any name works).
    pub fn create_database(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\"")),
        );
    }

    /// Runs `sql` in database `db` with psql (unaligned, tuples only, stopping at the first
    /// error) and returns its output without the final newline: `SELECT 1` gives "1", rows
    /// are lines, columns are separated by `|`. Panics with psql's stderr when it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = succeeded(run(
            Command::new("psql")
                .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    db,
                    "-c",
                    sql,
                ])
                .env("PGCONNECT_TIMEOUT", "10"),
            WAIT,
        ))
        .unwrap_or_else(|e| panic!("psql -d {db} -c {sql:?}: {e}"));
        out.strip_suffix('\n').unwrap_or(&out).to_string()
    }

    /// Whether the server accepts connections now (pg_isready), for tests that stop it.
    pub fn accepting(&self) -> bool {
        run(
            Command::new(Path::new(PG_BIN).join("pg_isready")).args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-t",
                "5",
            ]),
            WAIT,
        )
        .is_ok_and(|o| o.status.success())
    }

    /// Stops the server cleanly (fast shutdown: open connections are cut, data is kept), as a
    /// catalog outage does. [`Postgres::restart`] brings it back.
    pub fn stop(&self) {
        succeeded(run(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["stop", "-m", "fast", "-w", "-t", "30"]),
            WAIT + Duration::from_secs(5),
        ))
        .unwrap_or_else(|e| panic!("pg_ctl stop: {e}\n{}", log_tail(&self.log())));
    }

    /// Stalls the server (SIGSTOP to the postmaster and every backend): connections stay
    /// open and nothing answers, as with a catalog that is overloaded or cut off.
    /// [`Postgres::resume`] lets it go on.
    pub fn pause(&self) {
        self.signal_all("STOP");
    }

    pub fn resume(&self) {
        self.signal_all("CONT");
    }

    /// Sends `signal` to the postmaster's children, then to the postmaster.
    fn signal_all(&self, signal: &str) {
        let pid_file =
            std::fs::read_to_string(self.data().join("postmaster.pid")).expect("postmaster.pid");
        let pid = pid_file.lines().next().expect("a pid").trim().to_string();
        let children = run(Command::new("pgrep").args(["-P", &pid]), WAIT)
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut pids: Vec<&str> = children.split_whitespace().collect();
        pids.push(&pid);
        succeeded(run(
            Command::new("kill").arg(format!("-{signal}")).args(&pids),
            WAIT,
        ))
        .unwrap_or_else(|e| panic!("kill -{signal} {pids:?}: {e}"));
    }

    /// Starts the server again on the same port and data directory (stopping it first if it
    /// runs); returns once it accepts connections.
    pub fn restart(&self) {
        if self.running() {
            self.stop();
        }
        self.launch();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A command of PG_BIN, run as `postgres` when we are root; in the server's directory,
    /// which that user can enter (the test's own directory may not be).
    fn command(&self, program: &str) -> Command {
        let program = Path::new(PG_BIN).join(program);
        let mut cmd = if self.as_root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.current_dir(self.dir.path()).env("LC_ALL", "C");
        cmd
    }

    /// pg_ctl status: whether a server runs on this data directory.
    fn running(&self) -> bool {
        run(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("status"),
            WAIT,
        )
        .is_ok_and(|o| o.status.success())
    }

    /// pg_ctl start, waiting (bounded) until the server accepts connections.
    fn launch(&self) {
        succeeded(run(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.log())
                .args(["start", "-w", "-t", "30"]),
            WAIT + Duration::from_secs(5),
        ))
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL did not start on port {}: {e}\n{}",
                self.port,
                log_tail(&self.log())
            )
        });
    }
}

impl Drop for Postgres {
    /// Immediate shutdown (nothing to keep), then the directory goes with the TempDir.
    fn drop(&mut self) {
        let stopped = run(
            self.command("pg_ctl").arg("-D").arg(self.data()).args([
                "stop",
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
            ]),
            WAIT + Duration::from_secs(5),
        );
        if self.running() {
            // Leave the watchdog to try again when the test process ends.
            eprintln!(
                "PostgreSQL on port {} did not stop ({stopped:?}):\n{}",
                self.port,
                log_tail(&self.log())
            );
            return;
        }
        retire(&mut self.watchdog);
    }
}

/// A moto_server (S3 API over plain HTTP, any credentials accepted) with one bucket.
pub struct S3 {
    pub port: u16,
    pub bucket: String,
    child: Child,
    dir: TempDir,
    watchdog: Child,
}

impl S3 {
    /// Starts moto_server on a free port, waits until it answers and creates `bucket`.
    pub fn start(bucket: &str) -> S3 {
        let moto = tools().join("venv/bin/moto_server");
        assert!(
            moto.is_file(),
            "no {}: run the tests with ./scripts/test.sh, which installs moto[server] into \
             $DUCKSTREAM_TOOLS/venv",
            moto.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("duckstream-s3-")
            .tempdir()
            .expect("temporary directory");
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("create moto.log");
        let port = free_port();
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", moto.display()));
        let watchdog = watchdog(
            "kill \"$2\" 2>/dev/null\nrm -rf \"$3\"",
            &[&child.id().to_string(), &dir.path().to_string_lossy()],
        );
        let mut s3 = S3 {
            port,
            bucket: bucket.to_string(),
            child,
            dir,
            watchdog,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = s3.child.try_wait() {
                panic!("moto_server exited ({status}):\n{}", s3.log_tail());
            }
            match http(reqwest::Method::GET, &s3.url("/"), Vec::new()) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => panic!(
                    "moto_server did not answer on port {port} within {WAIT:?} ({e}):\n{}",
                    s3.log_tail()
                ),
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
        let (status, body) = http(
            reqwest::Method::PUT,
            &s3.url(&format!("/{bucket}")),
            Vec::new(),
        )
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {e}"));
        assert_eq!(status, 200, "create bucket {bucket}: {body}");
        s3
    }

    /// The endpoint as DuckDB's S3 settings take it (`s3_endpoint`, no scheme; plain HTTP).
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stores an object (a plain unsigned PUT, which moto accepts).
    pub fn put(&self, key: &str, body: &[u8]) {
        let url = self.url(&format!("/{}/{}", self.bucket, encode(key, false)));
        let (status, text) = http(reqwest::Method::PUT, &url, body.to_vec())
            .unwrap_or_else(|e| panic!("PUT {key}: {e}"));
        assert_eq!(status, 200, "PUT {key}: {text}");
    }

    /// The keys of the bucket's objects under `prefix`, in S3's (lexicographic) order, every
    /// page of ListObjectsV2.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = self.url(&format!(
                "/{}?list-type=2&prefix={}",
                self.bucket,
                encode(prefix, true)
            ));
            if let Some(token) = &token {
                url.push_str(&format!("&continuation-token={}", encode(token, true)));
            }
            let (status, xml) = http(reqwest::Method::GET, &url, Vec::new())
                .unwrap_or_else(|e| panic!("list {prefix:?}: {e}"));
            assert_eq!(status, 200, "list {prefix:?}: {xml}");
            keys.extend(elements(&xml, "Key"));
            if elements(&xml, "IsTruncated").first().map(String::as_str) != Some("true") {
                return keys;
            }
            token = elements(&xml, "NextContinuationToken").pop();
            assert!(
                token.is_some(),
                "a truncated listing without a token: {xml}"
            );
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log_tail(&self) -> String {
        log_tail(&self.dir.path().join("moto.log"))
    }
}

impl S3 {
    /// Stalls moto_server (SIGSTOP): connections are accepted by the kernel and nothing
    /// answers, as with an object store that is overloaded or cut off. Its objects are kept
    /// (moto keeps them in memory: a restart would lose them). [`S3::resume`] lets it go on.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        succeeded(run(
            Command::new("kill").arg(format!("-{signal}")).arg(&pid),
            WAIT,
        ))
        .unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        retire(&mut self.watchdog);
    }
}

/// One HTTP request with reqwest, from synchronous code that may itself run inside an async
/// test: on a thread of its own with its own runtime (blocking on the caller's runtime would
/// panic). Returns the status and the body.
fn http(method: reqwest::Method, url: &str, body: Vec<u8>) -> Result<(u16, String), String> {
    let url = url.to_string();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .map_err(|e| e.to_string())?;
            let response = client
                .request(method, &url)
                .body(body)
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let status = response.status().as_u16();
            let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
            Ok((status, text))
        })
    })
    .join()
    .map_err(|_| "the HTTP thread panicked".to_string())?
}

/// Percent-encodes everything but S3's unreserved characters (and `/` unless `slash`: keys
/// keep their `/` in a path, a query value encodes it).
fn encode(text: &str, slash: bool) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b'/' if !slash => "/".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The texts of every `<name>…</name>` element of a flat S3 XML answer, unescaped.
fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let end = after
            .find(&close)
            .unwrap_or_else(|| panic!("unclosed <{name}> in {xml}"));
        found.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    found
}

/// A DuckLake's two services: the catalog database `lakes` in PostgreSQL and the bucket
/// `lake` in S3.
pub struct Lake {
    pub pg: Postgres,
    pub s3: S3,
    /// libpq DSN of the catalog database, `lakes`.
    pub catalog: String,
    /// The data path, `s3://lake/`.
    pub data: String,
}

impl Lake {
    /// The lake every test of this process shares, started on first use. Tests that stop or
    /// restart the catalog take a private one ([`Lake::start`]) instead.
    pub fn shared() -> &'static Lake {
        static SHARED: OnceLock<Lake> = OnceLock::new();
        SHARED.get_or_init(Lake::start)
    }

    /// A private lake, stopped and removed when dropped. Both services start at once.
    pub fn start() -> Lake {
        let (pg, s3) = thread::scope(|scope| {
            let s3 = scope.spawn(|| S3::start("lake"));
            let pg = Postgres::start();
            (
                pg,
                s3.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            )
        });
        pg.create_database("lakes");
        Lake {
            catalog: pg.dsn("lakes"),
            data: "s3://lake/".to_string(),
            pg,
            s3,
        }
    }
}

#[test]
fn the_services_start_and_answer() {
    let lake = Lake::start();
    assert_eq!(lake.pg.psql("postgres", "SELECT 1"), "1");
    assert_eq!(lake.pg.psql("lakes", "SELECT current_database()"), "lakes");
    assert_eq!(
        lake.catalog,
        format!(
            "dbname=lakes host=127.0.0.1 port={} user=postgres",
            lake.pg.port
        )
    );
    // English messages and UTF-8 text, whatever the machine's locale.
    assert_eq!(lake.pg.psql("lakes", "SHOW lc_messages"), "C");
    assert_eq!(lake.pg.psql("lakes", "SHOW server_encoding"), "UTF8");
    lake.pg.psql(
        "lakes",
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('é|1')",
    );

    assert_eq!(lake.data, "s3://lake/");
    assert_eq!(lake.s3.endpoint(), format!("127.0.0.1:{}", lake.s3.port));
    assert_eq!(lake.s3.list(""), Vec::<String>::new());
    lake.s3.put("t1/main/a b.parquet", b"PAR1");
    lake.s3.put("t1/main/c.parquet", b"PAR1");
    lake.s3.put("t2/d.parquet", b"PAR1");
    assert_eq!(
        lake.s3.list("t1/"),
        ["t1/main/a b.parquet", "t1/main/c.parquet"]
    );
    assert_eq!(lake.s3.list("t2"), ["t2/d.parquet"]);
    assert_eq!(lake.s3.list("t3/"), Vec::<String>::new());

    lake.pg.stop();
    assert!(!lake.pg.accepting());
    lake.pg.restart();
    assert!(lake.pg.accepting());
    assert_eq!(lake.pg.psql("lakes", "SELECT 1"), "1");
    assert_eq!(lake.pg.psql("lakes", "SELECT v FROM kept"), "é|1");
    // restart() on a running server stops it first.
    lake.pg.restart();
    assert_eq!(lake.pg.psql("lakes", "SELECT count(*) FROM kept"), "1");
}

#[test]
fn the_shared_lake_is_one_per_process() {
    let lake = Lake::shared();
    assert!(std::ptr::eq(lake, Lake::shared()));
    assert_eq!(lake.pg.psql("lakes", "SELECT current_database()"), "lakes");
    assert_eq!(lake.s3.bucket, "lake");
    assert_eq!(lake.s3.list("the-shared-lake-test/"), Vec::<String>::new());
}
