//! A cluster as operators run it: three replica processes on one lake (the shared PostgreSQL
//! catalog and moto as S3) behind Debian's HAProxy with `deploy/haproxy.cfg` unchanged (its
//! addresses come from the environment).
//!
//! - Routing: while its replica is up, every request of a tenant reaches that one replica.
//! - A rolling restart and a crash: subscribers on several tenants, through the balancer,
//!   reconnect and resume by version the way README's example does. One replica gets SIGTERM
//!   (it drains: 1012), later another gets SIGKILL, while uploads go on through the balancer.
//!   Every subscriber ends with the latest result and its versions never go back; every
//!   upload either succeeded and is visible everywhere, or got a clear failure.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::helpers::ServerProcess;
use crate::lake::Cluster;
use crate::services::free_port;

/// HAProxy in front of the replicas, stopped when dropped.
struct Balancer {
    child: Child,
    base: String,
}

impl Balancer {
    /// `deploy/haproxy.cfg` with the replicas' addresses; returns once it answers.
    async fn start(replicas: &[&ServerProcess]) -> Self {
        let port = free_port();
        let mut cmd = Command::new("haproxy");
        cmd.args(["-db", "-f"])
            .arg(format!("{}/deploy/haproxy.cfg", env!("CARGO_MANIFEST_DIR")))
            .env("DUCKSTREAM_LB_PORT", port.to_string())
            .env("DUCKSTREAM_LB_STATS_PORT", free_port().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (i, r) in replicas.iter().enumerate() {
            let addr = r.app.base.trim_start_matches("http://").to_string();
            cmd.env(format!("DUCKSTREAM_REPLICA{}", i + 1), addr);
        }
        let child = cmd.spawn().expect("haproxy (installed by scripts/test.sh)");
        let lb = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{}/healthz", lb.base)).await.is_err() {
            assert!(Instant::now() < deadline, "haproxy never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        lb
    }

    fn ws(&self, tenant: &str) -> String {
        format!(
            "{}/v1/{tenant}/ws?compression=none",
            self.base.replace("http://", "ws://")
        )
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three replica processes of `cluster`.
fn replicas(cluster: &Cluster, config: &tempfile::NamedTempFile) -> Vec<ServerProcess> {
    std::fs::write(config.path(), cluster.toml()).unwrap();
    let path = config.path().to_str().unwrap();
    (0..3)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            ServerProcess::start_in(dir, &["--config", path, "--shutdown-timeout-secs", "20"])
        })
        .collect()
}

/// The count of `duckstream_queries_total` a replica shows (every transport and outcome).
async fn queries_served(replica: &ServerProcess) -> u64 {
    let text = replica.app.metrics().await;
    text.lines()
        .filter(|l| l.starts_with("duckstream_queries_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

const SUBSCRIBED: &str = "SELECT count(*) AS n, sum(k) AS s FROM d";

/// What one subscriber received: each whole result with its version, in order.
#[derive(Default)]
struct Seen {
    results: Vec<(u64, Value)>,
    reconnects: usize,
    /// Every line's type and version as it came, and each connection's start (for a
    /// failure's message).
    log: Vec<String>,
}

/// A subscriber as README's example writes one: subscribes to [`SUBSCRIBED`] through the
/// balancer and, whenever the socket closes or cannot open, reconnects after a short backoff
/// and resubscribes with the version of the last result it holds whole.
async fn subscriber(url: String, seen: Arc<Mutex<Seen>>, stop: CancellationToken) {
    let mut attempt = 0u32;
    while !stop.is_cancelled() {
        if attempt > 0 {
            let backoff = Duration::from_millis((50 << attempt.min(5)) as u64);
            tokio::time::sleep(backoff).await;
            seen.lock().unwrap().reconnects += 1;
        }
        attempt += 1;
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
            continue;
        };
        attempt = 1;
        let held = seen.lock().unwrap().results.last().map(|r| r.0);
        seen.lock()
            .unwrap()
            .log
            .push(format!("connect held={held:?}"));
        let subscribe = json!({"type": "subscribe", "id": "p", "sql": SUBSCRIBED, "version": held});
        if ws.send(Message::text(subscribe.to_string())).await.is_err() {
            continue;
        }
        follow(&mut ws, &seen, &stop).await;
    }
}

/// Reads one socket's lines until it closes (or `stop`), recording each whole result.
async fn follow(ws: &mut crate::helpers::Ws, seen: &Mutex<Seen>, stop: &CancellationToken) {
    let mut pending: Option<(u64, Vec<Value>)> = None;
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.cancelled() => return,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return,
        };
        for line in text.lines().filter(|l| !l.is_empty()) {
            let Ok(l) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if l["type"] != "data" && l["type"] != "metadata" {
                let note = format!("{} {} {}", l["type"], l["version"], l["resumed"]);
                seen.lock().unwrap().log.push(note);
            }
            match l["type"].as_str() {
                Some("update") => pending = Some((l["version"].as_u64().unwrap(), Vec::new())),
                Some("data") => {
                    if let (Some(p), Some(rows)) = (pending.as_mut(), l["rows"].as_array()) {
                        p.1.extend(rows.iter().cloned());
                    }
                }
                Some("end") => {
                    if let Some((version, rows)) = pending.take() {
                        seen.lock()
                            .unwrap()
                            .results
                            .push((version, Value::Array(rows)));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Appends the row `k` to tenant `tenant`'s `d` through the balancer: `Ok` when it answered
/// 200, else what it answered (a clear failure: a status with a code, or no answer).
async fn append(client: &reqwest::Client, base: &str, tenant: &str, k: u64) -> Result<(), String> {
    let url = format!("{base}/v1/{tenant}/datasets/d?format=csv&mode=append");
    match client.put(url).body(format!("k\n{k}\n")).send().await {
        Ok(r) if r.status() == 200 => Ok(()),
        Ok(r) => Err(format!(
            "{} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        )),
        Err(e) => Err(format!("no answer: {e}")),
    }
}

/// One tenant's row through the balancer.
async fn query(client: &reqwest::Client, base: &str, tenant: &str, sql: &str) -> Option<Value> {
    let resp = client
        .post(format!("{base}/v1/{tenant}/query"))
        .body(json!({ "sql": sql }).to_string())
        .send()
        .await
        .ok()?;
    if resp.status() != 200 {
        return None;
    }
    let text = resp.text().await.ok()?;
    let rows: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "data")
        .flat_map(|l| l["rows"].as_array().cloned().unwrap_or_default())
        .collect();
    Some(Value::Array(rows))
}

#[actix_web::test]
async fn tenants_stick_to_a_replica_and_subscribers_survive_a_rolling_restart_and_a_crash() {
    let cluster = Cluster::new();
    let config = tempfile::NamedTempFile::new().unwrap();
    let mut replicas = replicas(&cluster, &config);
    let lb = Balancer::start(&replicas.iter().collect::<Vec<_>>()).await;
    let client = reqwest::Client::new();
    let tenants: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    for t in &tenants {
        let made = client
            .post(format!("{}/v1/admin/tenants", lb.base))
            .body(json!({ "name": t }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(made.status(), 201, "{t}");
        append(&client, &lb.base, t, 1).await.unwrap();
    }

    // Routing: each tenant's queries all land on one replica.
    let mut homes = Vec::new();
    for t in &tenants {
        let mut before = Vec::new();
        for r in &replicas {
            before.push(queries_served(r).await);
        }
        for i in 0..5 {
            let sql = format!("SELECT {i} AS i, count(*) FROM d");
            assert!(query(&client, &lb.base, t, &sql).await.is_some());
        }
        let mut grew = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            grew.push(queries_served(r).await - before[i]);
        }
        let home = grew.iter().position(|g| *g == 5);
        assert!(
            home.is_some() && grew.iter().sum::<u64>() == 5,
            "{t}: {grew:?}"
        );
        homes.push(home.unwrap());
    }

    // Two subscribers per tenant, through the balancer.
    let stop = CancellationToken::new();
    let mut seen = Vec::new();
    for t in &tenants {
        for _ in 0..2 {
            let s = Arc::new(Mutex::new(Seen::default()));
            actix_web::rt::spawn(subscriber(lb.ws(t), Arc::clone(&s), stop.clone()));
            seen.push((t.clone(), s));
        }
    }
    let all_hold_a_result = || {
        seen.iter()
            .all(|(_, s)| !s.lock().unwrap().results.is_empty())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !all_hold_a_result() {
        assert!(
            Instant::now() < deadline,
            "not every subscriber got its result"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Writes go on through the balancer while the busiest replica drains, then another dies.
    let mut writes = Writes {
        client: client.clone(),
        base: lb.base.clone(),
        tenants: tenants.clone(),
        next: 10,
        answers: Vec::new(),
    };
    let drained = replicas.remove(busiest(&homes));
    drained.terminate();
    writes.round().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    writes.round().await;
    let mut drained = drained;
    let status = drained.exited_within(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the drained replica exits: {status:?}"
    );
    writes.round().await;
    let killed = replicas.remove(0);
    let crash = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        killed.kill();
    };
    let ((), ()) = tokio::join!(writes.round(), crash);
    writes.round().await;
    let answers = writes.answers;

    // Every tenant's data: every acknowledged row, plus at most the rows whose upload failed.
    for t in &tenants {
        let sql = "SELECT list(k ORDER BY k) FROM d";
        let got = eventually_some(&client, &lb.base, t, sql).await;
        let held: Vec<u64> = got[0][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        for (tt, k, r) in answers.iter().filter(|a| &a.0 == t) {
            match r {
                Ok(()) => assert!(
                    held.contains(k),
                    "{tt}: acknowledged {k} is missing: {held:?}"
                ),
                Err(why) => assert!(!why.is_empty(), "{tt}: {k} failed without a word"),
            }
        }
    }
    // ...and every subscriber ends with exactly that latest result, having seen no version twice.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (t, s) in &seen {
        let want = eventually_some(&client, &lb.base, t, SUBSCRIBED).await;
        loop {
            let last = s.lock().unwrap().results.last().map(|r| r.1.clone());
            if last.as_ref() == Some(&want) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{t}: holds {last:?}, latest is {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Versions only grow: a version is never shown twice, with the same rows or others.
        let seen = s.lock().unwrap();
        let versions: Vec<u64> = seen.results.iter().map(|r| r.0).collect();
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "{t}: a version repeated or went back: {:?}\n{:#?}",
            seen.results,
            seen.log
        );
    }
    let moved = seen
        .iter()
        .filter(|(_, s)| s.lock().unwrap().reconnects > 0)
        .count();
    assert!(moved > 0, "no subscriber had to move");
    stop.cancel();
}

/// Appends through the balancer, one row per tenant per round, each row a new number.
struct Writes {
    client: reqwest::Client,
    base: String,
    tenants: Vec<String>,
    next: u64,
    /// Each append: its tenant, its row, its answer.
    answers: Vec<(String, u64, Result<(), String>)>,
}

impl Writes {
    async fn round(&mut self) {
        for t in &self.tenants {
            self.next += 1;
            let answer = append(&self.client, &self.base, t, self.next).await;
            self.answers.push((t.clone(), self.next, answer));
        }
    }
}

/// The replica most tenants call home.
fn busiest(homes: &[usize]) -> usize {
    (0..3)
        .max_by_key(|r| homes.iter().filter(|h| *h == r).count())
        .unwrap_or(0)
}

/// `sql`'s rows on `tenant` through the balancer, asked until it answers (a failover may
/// refuse a moment).
async fn eventually_some(client: &reqwest::Client, base: &str, tenant: &str, sql: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = query(client, base, tenant, sql).await {
            return v;
        }
        assert!(Instant::now() < deadline, "{tenant}: {sql} never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
