//! The whole chain, end to end: the gateway under a short k6 load (HTTP, SSE, WebSocket), a
//! real Prometheus (Debian's `prometheus`) scraping it every second, and every PromQL
//! expression of every Grafana panel evaluated through Prometheus's HTTP API. The figures must
//! agree with what k6 measured. Needs `prometheus` and `k6`, installed by `scripts/test.sh`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{create_tenant, spawn_app_with};

struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(target: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: duckstream\n    static_configs:\n      - targets: [\"{target}\"]\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (installed by scripts/test.sh) starts");
    Prometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// Runs one k6 script against the gateway; returns k6's exported summary.
fn k6(script: &str, base: &str, out: &Path) -> Value {
    let summary = out.join(format!("{script}.json"));
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new("k6")
        .args([
            "run",
            "--quiet",
            "--no-usage-report",
            "--summary-trend-stats",
            "med,p(95),p(99)",
        ])
        .arg("--summary-export")
        .arg(&summary)
        .arg(format!("{root}/load-tests/{script}.js"))
        .env("BASE", base)
        .env("TENANT", "load")
        .env("DURATION", "4s")
        .env("VUS", "4")
        .env("SQL", "SELECT * FROM parcels LIMIT 20000")
        .stdout(Stdio::null())
        .status()
        .expect("k6 (installed by scripts/test.sh) runs");
    assert!(status.success(), "k6 {script}: thresholds or checks failed");
    serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap()
}

async fn promql(client: &reqwest::Client, prom: &str, expr: &str) -> Vec<Value> {
    let resp = client
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .unwrap();
    let v = crate::helpers::json_of(resp).await;
    assert_eq!(v["status"], "success", "{expr}: {v}");
    v["data"]["result"].as_array().unwrap().clone()
}

fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

#[actix_web::test]
async fn prometheus_sees_what_k6_measured_and_every_panel_has_data() {
    let app = spawn_app_with(|c| c.limits.pool_size = Some(16)).await;
    create_tenant(
        app.dir.path(),
        "load",
        &duckstream::demo::parcels_sql(200_000),
    );
    let target = app.base.trim_start_matches("http://").to_string();
    let prom = start_prometheus(&target);
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let ready = client.get(format!("{}/-/ready", prom.base)).send().await;
        if ready.map(|r| r.status().is_success()).unwrap_or(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let out = tempfile::tempdir().unwrap();
    let base = app.base.clone();
    let dir = out.path().to_path_buf();
    // k6 blocks: run it on a blocking thread while the server keeps serving.
    let summaries =
        tokio::task::spawn_blocking(move || ["http", "sse", "ws"].map(|s| k6(s, &base, &dir)))
            .await
            .unwrap();
    // Two more scrapes after the load.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Every panel's every query returns data.
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/grafana/dashboards/duckstream.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m");
            let result = promql(&client, &prom.base, &expr).await;
            assert!(
                !result.is_empty(),
                "panel {:?}: no data for {expr}",
                panel["title"]
            );
        }
    }

    // Rows: what the gateway counted for HTTP and SSE equals what k6 received (k6 counts rows
    // of finished queries; an iteration cut at the very end could only make the server's larger).
    let k6_rows: f64 = summaries[..2]
        .iter()
        .map(|s| s["metrics"]["rows_received"]["count"].as_f64().unwrap())
        .sum();
    let served = promql(
        &client,
        &prom.base,
        "sum(duckstream_rows_sent_total{transport=~\"http|sse\"})",
    )
    .await;
    let served = value(&served[0]);
    assert!(k6_rows > 0.0);
    assert!(
        served >= k6_rows && served <= k6_rows * 1.1,
        "prometheus {served} vs k6 {k6_rows}"
    );

    // Time to first data: Prometheus's median (histogram, factor-2 buckets) agrees with k6's.
    let k6_med = summaries[0]["metrics"]["time_to_first_data"]["med"]
        .as_f64()
        .unwrap()
        / 1000.0;
    let prom_med = promql(
        &client,
        &prom.base,
        "histogram_quantile(0.5, sum by (le) (duckstream_query_ttfb_seconds_bucket{transport=\"http\"}))",
    )
    .await;
    let prom_med = value(&prom_med[0]);
    assert!(
        (prom_med - k6_med).abs() <= 0.02 + 2.0 * k6_med.min(prom_med),
        "TTFB median: prometheus {prom_med:.4}s vs k6 {k6_med:.4}s"
    );
    // Throughput as a rate is there too.
    let rate = promql(
        &client,
        &prom.base,
        "sum(rate(duckstream_rows_sent_total[1m]))",
    )
    .await;
    assert!(value(&rate[0]) > 0.0);
}
