//! The lake store (`--storage lake`) against a real PostgreSQL catalog and moto as the S3
//! endpoint: replicas sharing tenants, exact invalidation and subscriptions across them,
//! concurrent and interrupted writes, a restarted catalog, the sandbox on lake paths, and
//! deleting a tenant's catalog and files.
//!
//! Everything that runs on local storage runs on the lake too: the local suites' cases
//! (sandbox refusals and allowed queries, formats, spatial and geometry, live redelivery,
//! hostile requests, streaming, the cache, per-tenant limits) are shared functions of the app,
//! called here on a lake tenant, so that both stores answer the same values.
//!
//! Each test gets a catalog database of its own in the shared PostgreSQL and a data root of
//! its own in the shared bucket, so tests run in parallel without seeing each other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    connect, json_of, read_lines, read_until, send, spawn_app_with, ServerProcess, Store, TestApp,
};
use crate::services::{Lake, Postgres, S3};
use duckstream::config::{Secret, StorageKind};
use duckstream::Config;

/// One lake cluster: a catalog database and a data root that its replicas share.
pub(crate) struct Cluster {
    catalog: String,
    root: String,
    s3_endpoint: String,
}

impl Cluster {
    /// A new catalog database and data root in the shared services.
    pub(crate) fn new() -> Self {
        Self::on(&Lake::shared().pg, &Lake::shared().s3)
    }

    fn on(pg: &Postgres, s3: &S3) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("lake_{}_{n}", std::process::id());
        pg.create_database(&name);
        Self {
            catalog: pg.dsn(&name),
            root: format!("{name}/"),
            s3_endpoint: s3.endpoint(),
        }
    }

    /// The catalog database's name.
    fn db(&self) -> &str {
        self.catalog
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("dbname="))
            .unwrap()
    }

    fn data(&self) -> String {
        format!("s3://lake/{}", self.root)
    }

    fn configure(&self, c: &mut Config) {
        let st = &mut c.storage;
        st.kind = StorageKind::Lake;
        st.lake_catalog = Some(Secret(self.catalog.clone()));
        st.lake_data = Some(self.data());
        st.s3_endpoint = Some(self.s3_endpoint.clone());
        st.s3_url_style = Some("path".into());
        st.s3_use_ssl = false;
        st.s3_region = Some("us-east-1".into());
        st.s3_key_id = Some("test".into());
        st.s3_secret = Some(Secret("test".into()));
        st.lake_role_secret = Some(Secret("tenant-roles".into()));
    }

    /// The same settings as a config file, for the binary.
    pub(crate) fn toml(&self) -> String {
        format!(
            "[storage]\nkind = \"lake\"\nlake_catalog = \"{}\"\nlake_data = \"{}\"\n\
             s3_endpoint = \"{}\"\ns3_url_style = \"path\"\ns3_use_ssl = false\n\
             s3_region = \"us-east-1\"\ns3_key_id = \"test\"\ns3_secret = \"test\"\n\
             lake_role_secret = \"tenant-roles\"\n",
            self.catalog,
            self.data(),
            self.s3_endpoint
        )
    }

    /// Tenant `name` made from `sql` run on a new local database, then imported into the lake
    /// (`duckstream lake import`, as a library call).
    async fn import(&self, name: &str, sql: &str) {
        let dir = tempfile::tempdir().unwrap();
        crate::helpers::create_tenant(dir.path(), name, sql);
        let mut config = Config::for_tests(dir.path());
        config.engine.extension_repository = Some(crate::helpers::extension_repository());
        config.engine.extension_directory = Some(crate::helpers::extension_directory());
        self.configure(&mut config);
        let command = duckstream::config::LakeCommand::Import {
            tenant: name.to_string(),
            from: None,
        };
        let out = duckstream::app::lake_command(config, command)
            .await
            .unwrap();
        assert!(out.contains("\"tables\":"), "{out}");
    }

    /// A replica in this process, subscriptions beating every second.
    async fn replica(&self) -> TestApp {
        self.replica_with(|_| {}).await
    }

    /// [`Self::replica`], with a change to the rest of its configuration.
    async fn replica_with(&self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        spawn_app_with(|c| {
            self.configure(c);
            c.websocket.heartbeat = Duration::from_secs(1);
            c.limits.min_interval_ms = Some(200);
            tweak(c);
        })
        .await
    }
}

async fn create_tenant(app: &TestApp, name: &str) -> Value {
    let resp = app
        .client
        .post(app.url("/v1/admin/tenants"))
        .body(json!({ "name": name }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    json_of(resp).await
}

/// Uploads `csv` to dataset `dataset` of tenant `t` (`mode`: replace or append); the answer.
async fn upload(app: &TestApp, dataset: &str, mode: &str, csv: String) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/v1/t/datasets/{dataset}?format=csv&mode={mode}")))
        .body(csv)
        .send()
        .await
        .unwrap()
}

async fn upload_ok(app: &TestApp, dataset: &str, csv: &str) -> Value {
    let resp = upload(app, dataset, "replace", csv.to_string()).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    json_of(resp).await
}

/// The rows of one query on tenant `t`.
async fn rows(app: &TestApp, sql: &str) -> Vec<Value> {
    app.query(sql).await.rows()
}

/// Asks `app` until `sql` answers `want`, for at most `within`; the last answer.
async fn eventually(app: &TestApp, sql: &str, want: Value, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = Value::Array(rows(app, sql).await);
        if got == want || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_write_through_one_replica_is_read_and_invalidates_on_the_other() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.replica().await, cluster.replica().await);
    let created = create_tenant(&a, "t").await;
    assert_eq!(created["datasets"], json!([]));
    let loaded = upload_ok(&a, "scores", "id,score\n1,9\n").await;
    assert_eq!(loaded["rows"], 1);
    let sql = "SELECT sum(score) AS s FROM scores";
    assert_eq!(rows(&b, sql).await, vec![json!([9])]);
    // Answered from B's cache now; a replace through A must not leave it stale.
    assert_eq!(rows(&b, sql).await, vec![json!([9])]);
    let hits = b.metric("duckstream_cache_hits_total").await;
    assert!(hits >= 1.0, "the second query was a cache hit: {hits}");
    let replaced = upload_ok(&a, "scores", "id,score\n1,4\n2,6\n").await;
    let got = eventually(&b, sql, json!([[10]]), Duration::from_secs(5)).await;
    assert_eq!(got, json!([[10]]));
    // Both replicas name the same version: the lake's snapshot of the replace.
    let version = replaced["version"].as_u64().unwrap();
    assert!(version > loaded["version"].as_u64().unwrap());
    let info = |app: &TestApp| {
        let req = app.client.get(app.url("/v1/admin/tenants"));
        async move { json_of(req.send().await.unwrap()).await }
    };
    for app in [&a, &b] {
        let list = info(app).await;
        let t = list["tenants"]
            .as_array()
            .and_then(|l| l.iter().find(|t| t["name"] == "t"))
            .unwrap_or_else(|| panic!("{list}"))
            .clone();
        let db = cluster.db();
        let snaps = Lake::shared().pg.psql(db, "SELECT string_agg(snapshot_id || ' ' || changes_made, '; ') FROM ds_t.ducklake_snapshot_changes");
        assert_eq!(t["data_version"], version, "{list} {snaps}");
    }
    // The data is Parquet under the tenant's own prefix.
    let files = Lake::shared().s3.list(&format!("{}t/", cluster.root));
    assert!(files.iter().any(|f| f.ends_with(".parquet")), "{files:?}");
}

#[actix_web::test]
async fn subscribers_on_another_replica_get_the_writes_to_their_tables_only() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.replica().await, cluster.replica().await);
    create_tenant(&a, "t").await;
    upload_ok(&a, "people", "id\n1\n2\n3\n").await;
    upload_ok(&a, "scores", "id,score\n1,9\n").await;
    let mut ws = connect(&b, "?compression=none").await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "people", "sql": "SELECT count(*) FROM people"}),
    )
    .await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "scores", "sql": "SELECT sum(score) FROM scores"}),
    )
    .await;
    let mut ends = 0;
    let firsts = read_until(&mut ws, |l| {
        ends += usize::from(l["type"] == "end");
        ends == 2
    })
    .await;
    assert!(firsts
        .iter()
        .any(|l| l["type"] == "data" && l["rows"] == json!([[3]])));
    assert!(firsts
        .iter()
        .any(|l| l["type"] == "data" && l["rows"] == json!([[9]])));
    let scores = firsts
        .iter()
        .find(|l| l["type"] == "subscribed" && l["query_id"] == "scores")
        .map(|l| l["channel"].clone())
        .unwrap();

    upload_ok(&a, "scores", "id,score\n1,4\n2,6\n").await;
    // The new result reaches B's subscriber; people's subscription is not re-run.
    let after = read_until(&mut ws, |l| {
        l["type"] == "data" && l["rows"] == json!([[10]])
    })
    .await;
    let updates: Vec<&Value> = after.iter().filter(|l| l["type"] == "update").collect();
    assert_eq!(updates.len(), 1, "{after:?}");
    assert_eq!(updates[0]["query_id"], scores, "{after:?}");
}

#[actix_web::test]
async fn concurrent_appends_through_two_replicas_all_land_or_are_refused_cleanly() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.replica().await, cluster.replica().await);
    create_tenant(&a, "t").await;
    upload_ok(&a, "events", "k\n0\n").await;
    let appends = (0..6).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let csv = format!(
            "k\n{}\n",
            (1..=10)
                .map(|j| (i * 100 + j).to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        upload(app, "events", "append", csv)
    });
    let answers = futures::future::join_all(appends).await;
    let mut landed = 0;
    for resp in answers {
        match resp.status().as_u16() {
            200 => landed += 1,
            409 => assert_eq!(json_of(resp).await["code"], "write_busy"),
            other => panic!("{other}: {}", resp.text().await.unwrap()),
        }
    }
    assert!(landed >= 1);
    let want = json!([[1 + 10 * landed]]);
    for app in [&a, &b] {
        let got = eventually(
            app,
            "SELECT count(*) FROM events",
            want.clone(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(got, want);
    }
}

#[actix_web::test]
async fn a_replica_killed_mid_upload_leaves_the_old_snapshot() {
    let cluster = Cluster::new();
    let reader = cluster.replica().await;
    create_tenant(&reader, "t").await;
    upload_ok(&reader, "big", "k\n1\n2\n").await;
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), cluster.toml()).unwrap();
    let body: String = std::iter::once("k".to_string())
        .chain((0..2_000_000).map(|i| i.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    for delay_ms in [50, 400, 1500] {
        let dir = tempfile::tempdir().unwrap();
        let writer = ServerProcess::start_in(dir, &["--config", config.path().to_str().unwrap()]);
        let url = writer.app.url("/v1/t/datasets/big?format=csv");
        let send = reqwest::Client::new().put(url).body(body.clone()).send();
        let killed = async {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            writer.kill();
        };
        let (answer, ()) = tokio::join!(send, killed);
        // Whatever the writer managed, the reader sees the old table or the whole new one.
        let count = rows(&reader, "SELECT count(*) FROM big").await;
        let n = count[0][0].as_u64().unwrap();
        assert!(
            n == 2 || n == 2_000_000,
            "after a kill at {delay_ms} ms: {n} rows ({answer:?})"
        );
    }
}

#[actix_web::test]
async fn a_restarted_catalog_answers_storage_unavailable_then_recovers() {
    let lake = Lake::start();
    let cluster = Cluster::on(&lake.pg, &lake.s3);
    let (a, b) = (cluster.replica().await, cluster.replica().await);
    create_tenant(&a, "t").await;
    upload_ok(&a, "scores", "id,score\n1,9\n").await;
    assert_eq!(
        rows(&b, "SELECT sum(score) FROM scores").await,
        vec![json!([9])]
    );

    // A result B has cached.
    let cached = || {
        b.client
            .get(b.url("/v1/t/query"))
            .query(&[("sql", "SELECT max(score) FROM scores")])
            .send()
    };
    // Read to its end: the cache keeps a result only once its last line went out.
    let first = cached().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.text().await.unwrap().contains("[[9]]"));
    let readyz = || async {
        let resp = b.client.get(b.url("/readyz")).send().await.unwrap();
        (
            resp.status().as_u16(),
            json_of(resp).await["storage"].clone(),
        )
    };
    // Asks `/readyz` until it says ready with the storage `want`, for at most 10 s.
    let ready_with = |want: &'static str| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while readyz().await != (200, json!(want)) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                readyz().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(readyz().await, (200, json!("ok")));

    lake.pg.stop();
    let resp = tokio::time::timeout(
        Duration::from_secs(30),
        b.post("t", r#"{"sql": "SELECT sum(score) + 0 FROM scores"}"#),
    )
    .await
    .expect("an answer, not a hang");
    assert_eq!(resp.status(), 503);
    assert_eq!(json_of(resp).await["code"], "storage_unavailable");
    // Still ready (every replica shares the outage, and cached results still serve), and
    // says why; the cached result is served, marked stale.
    ready_with("unavailable").await;
    // The breaker may say so first (the 503 above opened it); `X-Stale` follows the change
    // feed, which finds the catalog gone at its next heartbeat (at most ~3 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let stale = loop {
        let stale = cached().await.unwrap();
        assert_eq!(stale.status(), 200);
        assert_eq!(stale.headers()["x-cache"], "hit");
        if stale.headers().contains_key("x-stale") || tokio::time::Instant::now() > deadline {
            break stale;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stale.headers()["x-stale"], "storage_unavailable");
    assert!(stale.text().await.unwrap().contains("[[9]]"));

    lake.pg.restart();
    let got = eventually(
        &b,
        "SELECT sum(score) + 1 FROM scores",
        json!([[10]]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(got, json!([[10]]));
    ready_with("ok").await;
    assert!(cached().await.unwrap().headers().get("x-stale").is_none());
    // B's change feed reconnected: a write through A reaches B's cache.
    upload_ok(&a, "scores", "id,score\n1,40\n").await;
    let got = eventually(
        &b,
        "SELECT sum(score) FROM scores",
        json!([[40]]),
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(got, json!([[40]]));
}

/// What one query answered under load: its value, or its error code.
type Answer = Result<i64, String>;

/// Queries the servers at `bases` in turn, each time a new text (no cache), until `stop`;
/// every answer, or a panic if one took more than 30 s (a hang).
async fn load(bases: Vec<String>, stop: CancellationToken, from: i64) -> Vec<Answer> {
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for n in from.. {
        if stop.is_cancelled() {
            break;
        }
        let url = format!("{}/v1/t/query", bases[n as usize % bases.len()]);
        let sql = format!(r#"{{"sql": "SELECT sum(score) + {n} FROM scores"}}"#);
        let ask = client
            .post(url)
            .header("content-type", "application/json")
            .body(sql)
            .send();
        let resp = tokio::time::timeout(Duration::from_secs(30), ask)
            .await
            .expect("an answer, not a hang")
            .unwrap();
        answers.push(if resp.status() == 200 {
            let lines = read_lines(resp).await;
            let value = lines.rows().first().and_then(|r| r[0].as_i64());
            value.map(|v| v - n).ok_or(format!("{:?}", lines.last()))
        } else {
            Err(json_of(resp).await["code"]
                .as_str()
                .unwrap_or("?")
                .to_string())
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    answers
}

/// `/readyz`'s word on the storage, from every one of `apps`, until it is `want` (15 s at
/// most).
async fn until_storage(apps: &[&TestApp], want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    for app in apps {
        loop {
            let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
            if json_of(resp).await["storage"] == want {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "storage never {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Asks `app` `n` queries at once; their status codes and error codes.
async fn burst(app: &TestApp, n: usize) -> Vec<(u16, Value)> {
    let asks = (0..n).map(|i| async move {
        let sql = format!(r#"{{"sql": "SELECT sum(score) * {i} FROM scores"}}"#);
        let resp = app.post("t", &sql).await;
        (resp.status().as_u16(), json_of(resp).await["code"].clone())
    });
    futures::future::join_all(asks).await
}

/// Runs its closure however the test ends: resumes a paused service.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[actix_web::test]
async fn a_stopped_or_stalled_catalog_under_load_refuses_at_once_and_recovers() {
    let lake = Lake::start();
    let cluster = Cluster::on(&lake.pg, &lake.s3);
    let (a, b) = (cluster.replica().await, cluster.replica().await);
    create_tenant(&a, "t").await;
    upload_ok(&a, "scores", "id,score\n1,9\n2,33\n").await;
    // A subscriber on B lives through both outages.
    let mut ws = connect(&b, "?compression=none").await;
    let subscribe =
        json!({"type": "subscribe", "id": "max", "sql": "SELECT max(score) FROM scores"});
    send(&mut ws, subscribe).await;
    read_until(&mut ws, |l| {
        l["type"] == "data" && l["rows"] == json!([[33]])
    })
    .await;
    let after = [
        ("stopped", "id,score\n1,40\n2,2\n", 40),
        ("stalled", "id,score\n1,41\n2,1\n", 41),
    ];
    for (outage, then, max) in after {
        let stop = CancellationToken::new();
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let bases = vec![a.base.clone(), b.base.clone()];
                tokio::spawn(load(bases, stop.clone(), w * 1_000_000))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let paused = match outage {
            "stopped" => {
                lake.pg.stop();
                None
            }
            _ => {
                lake.pg.pause();
                Some(OnDrop(|| lake.pg.resume()))
            }
        };
        until_storage(&[&a, &b], "unavailable").await;
        // Known down: more queries at once than there are slots, each refused at once
        // rather than queued behind the catalog (no `too_busy`, no hang).
        let refused = b.metric("duckstream_store_refused_total").await;
        let answers = tokio::time::timeout(Duration::from_secs(10), burst(&b, 24))
            .await
            .expect("refused at once, not queued");
        for (status, code) in &answers {
            assert_eq!(
                (*status, code),
                (503, &json!("storage_unavailable")),
                "{outage}"
            );
        }
        assert!(b.metric("duckstream_store_refused_total").await >= refused + 24.0);
        match paused {
            Some(p) => drop(p),
            None => lake.pg.restart(),
        }
        until_storage(&[&a, &b], "ok").await;
        // Both replicas answer again by themselves.
        for app in [&a, &b] {
            let got = eventually(
                app,
                "SELECT sum(score) FROM scores",
                json!([[42]]),
                Duration::from_secs(30),
            )
            .await;
            assert_eq!(got, json!([[42]]), "{outage}");
        }
        stop.cancel();
        for w in workers {
            let answers = w.await.unwrap();
            // Every answer under load was the right value or a clear refusal, and the load
            // got answers again after the outage.
            for answer in &answers {
                assert!(
                    matches!(answer, Ok(42))
                        || answer.as_ref().is_err_and(|c| c == "storage_unavailable"),
                    "{outage}: {answer:?} in {answers:?}"
                );
            }
            assert!(answers.contains(&Ok(42)), "{outage}: {answers:?}");
        }
        // The subscription is still live: a write after the outage reaches it, and it never
        // got an error.
        upload_ok(&a, "scores", then).await;
        let lines = read_until(&mut ws, |l| {
            l["type"] == "data" && l["rows"] == json!([[max]])
        })
        .await;
        assert!(
            lines.iter().all(|l| l["type"] != "error"),
            "{outage}: {lines:?}"
        );
    }
}

#[actix_web::test]
async fn a_stalled_object_store_answers_storage_unavailable_then_recovers() {
    let lake = Lake::start();
    let cluster = Cluster::on(&lake.pg, &lake.s3);
    let a = cluster.replica().await;
    create_tenant(&a, "t").await;
    upload_ok(&a, "scores", "id,score\n1,9\n2,33\n").await;
    // A replica that has read none of the files yet.
    let b = cluster.replica().await;
    lake.s3.pause();
    let paused = OnDrop(|| lake.s3.resume());
    let started = std::time::Instant::now();
    // DuckDB gives up on the store after two unanswered tries of 5 s each.
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        b.post("t", r#"{"sql": "SELECT sum(score) FROM scores"}"#),
    )
    .await
    .expect("an answer, not a hang");
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 503, "after {:?}: {body}", started.elapsed());
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "storage_unavailable"
    );
    // Never the store's paths.
    assert!(
        !body.contains("parquet") && !body.contains("lake_"),
        "{body}"
    );
    // Found down: the next queries are refused at once for a while, not each held ~10 s by
    // the stalled store (one of them may be let through to try it).
    let refused = b.metric("duckstream_store_refused_total").await;
    let answers = tokio::time::timeout(Duration::from_secs(30), burst(&b, 8))
        .await
        .expect("answers, not hangs");
    for (status, code) in &answers {
        assert_eq!((*status, code), (503, &json!("storage_unavailable")));
    }
    assert!(b.metric("duckstream_store_refused_total").await >= refused + 7.0);
    drop(paused);
    let got = eventually(
        &b,
        "SELECT sum(score) FROM scores",
        json!([[42]]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(got, json!([[42]]));
}

#[actix_web::test]
async fn lake_paths_and_catalog_internals_are_refused() {
    let cluster = Cluster::new();
    let app = cluster.replica().await;
    create_tenant(&app, "t").await;
    create_tenant(&app, "other").await;
    upload_ok(&app, "scores", "id,score\n1,9\n").await;
    let data = cluster.data();
    let cases = [
        format!("SELECT count(*) FROM read_parquet('{data}t/main/scores/*.parquet')"),
        format!("SELECT count(*) FROM read_parquet('{data}t/../other/main/x.parquet')"),
        format!("SELECT count(*) FROM '{data}t/../other/main/x.parquet'"),
        format!("SELECT count(*) FROM read_parquet(concat('{data}t/', '..', '/other/x.parquet'))"),
        format!("SELECT * FROM glob('{data}**')"),
        format!("SELECT * FROM read_blob('{data}t/x')"),
        format!("SELECT * FROM postgres_scan('{}', 'ds_other', 'ducklake_data_file')", cluster.catalog),
        "SELECT * FROM postgres_query('__ducklake_metadata_t', 'SELECT pg_read_file(''/etc/hostname'')')".to_string(),
        "SELECT * FROM postgres_execute('__ducklake_metadata_t', 'DROP SCHEMA ds_other CASCADE')".to_string(),
        "SELECT * FROM __ducklake_metadata_t.ds_t.ducklake_data_file".to_string(),
        "SELECT * FROM __ducklake_metadata_t.ds_other.ducklake_snapshot".to_string(),
        "SELECT * FROM \"__ducklake_metadata_t\".\"ds_t\".ducklake_metadata".to_string(),
        "SELECT * FROM ducklake_snapshots('t')".to_string(),
        "SELECT * FROM ducklake_list_files('t', 'scores')".to_string(),
        "SELECT * FROM ducklake_cleanup_old_files('t', cleanup_all => true)".to_string(),
        "SELECT * FROM ducklake_expire_snapshots('t', older_than => now())".to_string(),
        "SELECT * FROM ducklake_set_option('t', 'data_inlining_row_limit', 5)".to_string(),
        "SELECT * FROM duckdb_secrets()".to_string(),
        "SELECT * FROM duckdb_databases()".to_string(),
    ];
    for sql in cases {
        let resp = app.post("t", &json!({ "sql": sql }).to_string()).await;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(status == 403 || status == 400, "{sql}: {status} {text}");
        assert!(
            !text.contains("s3://") && !text.contains("port="),
            "{sql}: {text}"
        );
    }
    // Its own tables still answer, and the other tenant is untouched.
    assert_eq!(
        rows(&app, "SELECT sum(score) FROM scores").await,
        vec![json!([9])]
    );
    let other = Lake::shared().pg.psql(
        cluster.db(),
        "SELECT count(*) FROM ds_other.ducklake_snapshot",
    );
    assert_eq!(other, "1");
    // The tenant's database logs in as its own role: no superuser, no other tenant's schema.
    let pg = &Lake::shared().pg;
    let role = pg.psql(
        cluster.db(),
        "SELECT rolsuper::text || ' ' || has_schema_privilege('ds_t', 'ds_other', 'USAGE')::text \
         || ' ' || has_schema_privilege('ds_t', 'ds_t', 'USAGE')::text FROM pg_roles WHERE rolname = 'ds_t'",
    );
    assert_eq!(role, "false false true");
    let sessions = pg.psql(
        cluster.db(),
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE usename = 'ds_t'",
    );
    assert_eq!(sessions, "t");
}

#[actix_web::test]
async fn deleting_a_tenant_drops_its_catalog_and_its_files() {
    let cluster = Cluster::new();
    let app = cluster.replica().await;
    create_tenant(&app, "t").await;
    upload_ok(&app, "scores", "id,score\n1,9\n").await;
    let prefix = format!("{}t/", cluster.root);
    assert!(!Lake::shared().s3.list(&prefix).is_empty());
    let resp = app
        .client
        .delete(app.url("/v1/admin/tenants/t"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(Lake::shared().s3.list(&prefix), Vec::<String>::new());
    let db = cluster.db();
    assert_eq!(
        Lake::shared().pg.psql(
            db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'ds_t'"
        ),
        "0"
    );
    let resp = app.post("t", r#"{"sql": "SELECT 1"}"#).await;
    assert_eq!(resp.status(), 404);
    // The name can be used again, empty.
    let again = create_tenant(&app, "t").await;
    assert_eq!(again["datasets"], json!([]));
    let lines = read_lines(
        app.post("t", r#"{"sql": "SELECT count(*) FROM duckdb_tables()"}"#)
            .await,
    )
    .await;
    assert_eq!(lines.rows(), vec![json!([0])]);
}

#[actix_web::test]
async fn many_small_writes_are_merged_in_the_background_without_waking_anyone() {
    let cluster = Cluster::new();
    let app = spawn_app_with(|c| {
        cluster.configure(c);
        c.storage.maintenance_interval = Duration::from_secs(1);
        c.storage.maintenance_after_writes = 6;
    })
    .await;
    create_tenant(&app, "t").await;
    upload_ok(&app, "events", "k\n0\n").await;
    for k in 1..8 {
        let resp = upload(&app, "events", "append", format!("k\n{k}\n")).await;
        assert_eq!(resp.status(), 200);
    }
    let db = cluster.db();
    let files = || {
        Lake::shared().pg.psql(
            db,
            "SELECT count(*) FROM ds_t.ducklake_data_file WHERE end_snapshot IS NULL",
        )
    };
    // Eight commits made eight files; upkeep (after six, and a second after the interval)
    // leaves one.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while files() != "1" && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(files(), "1");
    let runs = app
        .metric("duckstream_store_maintenance_runs_total{outcome=\"ok\"}")
        .await;
    assert!(runs >= 1.0, "{runs}");
    // The gauge follows at the next round.
    let gauge = app
        .wait_metric("duckstream_store_data_files", |v| v == 1.0)
        .await;
    assert_eq!(gauge, 1.0);
    assert_eq!(
        rows(&app, "SELECT count(*), sum(k) FROM events").await,
        vec![json!([8, 28])]
    );
}

#[actix_web::test]
async fn a_lake_upload_is_laid_out_for_spatial_filters() {
    let cluster = Cluster::new();
    let app = cluster.replica().await;
    create_tenant(&app, "t").await;
    let csv: String = std::iter::once("id,wkt".to_string())
        .chain((0..1000).map(|i| format!("{i},POINT({} {})", i % 10, i / 10)))
        .collect::<Vec<_>>()
        .join("\n");
    let resp = app
        .client
        .put(app.url("/v1/t/datasets/pts?format=csv&geometry_columns=wkt"))
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let columns = rows(
        &app,
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'pts' ORDER BY column_index",
    )
    .await;
    assert_eq!(
        columns,
        vec![
            json!(["id", "BIGINT"]),
            json!(["wkt", "GEOMETRY"]),
            json!(["wkt_xmin", "DOUBLE"]),
            json!(["wkt_ymin", "DOUBLE"]),
            json!(["wkt_xmax", "DOUBLE"]),
            json!(["wkt_ymax", "DOUBLE"]),
        ]
    );
    let bbox = "SELECT count(*) FROM pts WHERE wkt_xmin >= 2 AND wkt_xmax <= 3 AND wkt_ymin >= 10 AND wkt_ymax <= 19";
    assert_eq!(rows(&app, bbox).await, vec![json!([20])]);
    let spatial =
        "SELECT count(*) FROM pts WHERE ST_Intersects(wkt, ST_MakeEnvelope(2, 10, 3, 19))";
    assert_eq!(rows(&app, spatial).await, vec![json!([20])]);
    // An append fills the box columns of its rows.
    let resp = app
        .client
        .put(app.url("/v1/t/datasets/pts?format=csv&mode=append&geometry_columns=wkt"))
        .body("id,wkt\n5000,POINT(2.5 15)\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(rows(&app, bbox).await, vec![json!([21])]);
}

#[actix_web::test]
async fn a_local_tenant_moves_into_the_lake_and_back_with_one_command() {
    let cluster = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::create_tenant(
        dir.path(),
        "acme",
        "CREATE TYPE kind AS ENUM ('a', 'b');
         CREATE TABLE trips AS SELECT range AS id, range * 1.5 AS km FROM range(1000);
         CREATE SCHEMA geo; CREATE TABLE geo.zones AS SELECT 'a'::kind AS name;",
    );
    let config = dir.path().join("lake.toml");
    std::fs::write(&config, cluster.toml()).unwrap();
    let duckstream = |args: &[&str]| {
        let out = crate::helpers::duckstream_command(dir.path())
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let imported = duckstream(&["lake", "import", "acme"]);
    assert_eq!(imported["tables"], 2, "{imported}");
    let app = cluster.replica().await;
    let lines = read_lines(
        app.post("acme", r#"{"sql": "SELECT count(*), sum(km) FROM trips"}"#)
            .await,
    )
    .await;
    assert_eq!(lines.rows(), vec![json!([1000, 749250.0])]);
    let lines = read_lines(
        app.post(
            "acme",
            r#"{"sql": "SELECT name, typeof(name) FROM geo.zones"}"#,
        )
        .await,
    )
    .await;
    // The ENUM arrives as its text.
    assert_eq!(lines.rows(), vec![json!(["a", "VARCHAR"])]);
    // And back into a new file.
    let back = dir.path().join("acme-back.duckdb");
    let exported = duckstream(&["lake", "export", "acme", "--to", back.to_str().unwrap()]);
    assert_eq!(exported["tables"], 2, "{exported}");
    let conn = duckdb::Connection::open(&back).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM trips", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1000);
}

#[actix_web::test]
async fn every_sandbox_case_is_refused_on_a_lake_tenant_too() {
    let cluster = Cluster::new();
    // The fixture, its ENUM column arriving as VARCHAR (DuckLake has no ENUM).
    cluster.import("t", crate::helpers::FIXTURE).await;
    let app = cluster.replica().await;
    crate::sandbox::every_escape_is_refused(&app).await;
}

#[actix_web::test]
async fn allowed_queries_answer_their_values_on_a_lake_tenant_too() {
    let cluster = Cluster::new();
    cluster.import("t", crate::helpers::FIXTURE).await;
    let app = cluster.replica().await;
    crate::sandbox::allowed_queries_answer_their_values(&app, Store::Lake).await;
}

#[actix_web::test]
async fn real_readers_decode_every_format_from_a_lake_tenant() {
    let cluster = Cluster::new();
    let app = cluster.replica().await;
    create_tenant(&app, "t").await;
    upload_ok(&app, "people", "id,name\n1,Ada\n2,Grace\n").await;
    crate::formats::readers_decode_every_format(&app).await;
    // A lake table through CSV and jsonl, exactly.
    let get = |format: &'static str| {
        let req = app.client.get(app.url("/v1/t/query")).query(&[
            ("sql", "SELECT id, name FROM people ORDER BY id"),
            ("format", format),
        ]);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(get("csv").await, "id,name\n1,Ada\n2,Grace\n");
    assert_eq!(
        get("jsonl").await,
        "{\"id\":1,\"name\":\"Ada\"}\n{\"id\":2,\"name\":\"Grace\"}\n"
    );
}

#[actix_web::test]
async fn spatial_sql_and_every_geometry_type_work_on_a_lake_tenant() {
    let cluster = Cluster::new();
    let sql = format!(
        "{} {}",
        crate::spatial::ZONES,
        crate::geometry::corpus_sql()
    );
    cluster.import("geo", &sql).await;
    let app = cluster.replica().await;
    crate::spatial::spatial_sql_runs(&app).await;
    crate::geometry::every_geometry_type_matches(&app).await;
}

#[actix_web::test]
async fn the_live_suite_s_redelivery_holds_on_a_lake_tenant() {
    let cluster = Cluster::new();
    cluster.import("t", crate::helpers::FIXTURE).await;
    crate::live::writes_redeliver_to_their_tables_subscribers(&cluster.replica().await).await;
}

#[actix_web::test]
async fn hostile_requests_get_their_answers_from_a_lake_tenant() {
    let cluster = Cluster::new();
    cluster.import("t", crate::helpers::FIXTURE).await;
    let app = spawn_app_with(|c| {
        cluster.configure(c);
        c.server.body_timeout = Duration::from_secs(1);
    })
    .await;
    let cases = crate::helpers::data_cases("hostile.tsv");
    let mut problems = Vec::new();
    for line in &cases {
        problems.extend(crate::hostile::answer_problem(&app, line).await);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let out = app.query("SELECT id, name FROM people ORDER BY id").await;
    assert_eq!(
        out.data_rows_text(),
        [r#"[[1,"Ada"],[2,"Grace"],[3,null]]"#]
    );
}

#[actix_web::test]
async fn the_streaming_suite_reads_a_lake_table_and_survives_its_hang_ups() {
    use crate::streaming::{self, Source};
    let cluster = Cluster::new();
    let rows = 300_000;
    let big = format!("CREATE TABLE big AS SELECT range AS i FROM range({rows})");
    cluster.import("t", &big).await;
    // A scan of the Parquet files behind `big`, a thousand times over: more than anyone reads.
    let src = Source {
        table: "big".into(),
        rows,
        endless: "big, range(1000)".into(),
    };
    let app = cluster.replica_with(|c| c.limits.pool_size = Some(1)).await;
    streaming::empty_and_big_results_are_complete(&app, &src).await;
    streaming::first_rows_arrive_then_a_hangup_interrupts(&app, &src).await;
    let app = cluster.replica_with(|c| c.limits.pool_size = Some(2)).await;
    streaming::hang_ups_leave_the_pool_healthy(&app, &src).await;
    let app = cluster
        .replica_with(streaming::stalls_after_two_seconds)
        .await;
    streaming::a_stalled_reader_is_stopped_as_gone(&app, &src).await;
}

#[actix_web::test]
async fn the_cache_suite_holds_on_a_lake_tenant_whose_versions_are_snapshots() {
    use crate::cache;
    let cluster = Cluster::new();
    let pairs = "CREATE TABLE pairs AS SELECT range AS i FROM range(4000);";
    cluster
        .import("t", &format!("{}{pairs}", crate::helpers::FIXTURE))
        .await;
    // A replica each, so each suite starts with an empty cache; the two that write come last.
    cache::zstd_answers_are_cached_as_zstd(&cluster.replica().await).await;
    cache::identical_cold_requests_share_an_execution(&cluster.replica().await, "pairs").await;
    cache::results_are_cached_until_their_tables_are_written(&cluster.replica().await).await;
    cache::etags_answer_304_and_412(&cluster.replica().await).await;
}

#[actix_web::test]
async fn per_tenant_limits_and_duckdb_settings_hold_on_lake_tenants() {
    use crate::helpers::{spawn_secure_app_with, ACME, GLOBEX};
    let cluster = Cluster::new();
    cluster.import("acme", ACME).await;
    cluster.import("globex", GLOBEX).await;
    let app = spawn_secure_app_with(crate::limits::ACME_LIMITS, |c| cluster.configure(c)).await;
    crate::limits::limits_and_settings_hold_per_tenant(&app).await;
}
