//! The deployment files, checked without Docker (no engine runs here): the compose file is
//! validated by docker-compose itself (`config -q`, which needs no engine), with and without
//! its `cluster` profile, the Prometheus configs by `promtool`, every path the compose file
//! mounts exists, the dashboard is well-formed and wired to the provisioned datasource, and the
//! cluster's front ends (deploy/haproxy.cfg, deploy/nginx.conf) pass HAProxy's and nginx's own
//! checks and keep what makes them fit (tenant affinity, readiness checks, stream timeouts, no
//! buffering).

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{cmd} (installed by scripts/test.sh): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd} {args:?} failed: {text}");
    text
}

#[test]
fn compose_file_is_valid_and_its_mounts_exist() {
    run(
        "docker-compose",
        &["-f", "docker-compose.yml", "config", "-q"],
    );
    run(
        "docker-compose",
        &[
            "-f",
            "docker-compose.yml",
            "--profile",
            "cluster",
            "config",
            "-q",
        ],
    );
    let compose = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let mounts: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- ./"))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert!(mounts.len() >= 3, "{mounts:?}");
    for m in &mounts {
        assert!(
            root().join(m).exists(),
            "compose mounts ./{m}, which does not exist"
        );
    }
    assert!(compose.contains("build: ."));
    assert!(root().join("Dockerfile").exists());
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.matches("FROM ").count() >= 2, "multi-stage");
    // Every file the build stage copies from the context exists (e.g. .cargo/config.toml,
    // which makes DuckDB a release build).
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(
                root().join(src).exists(),
                "Dockerfile copies {src}, which does not exist"
            );
        }
    }
    assert!(
        dockerfile.contains("COPY .cargo"),
        "the image must build DuckDB with NDEBUG"
    );
    // The cluster profile mounts the front end and its own Prometheus config; the replicas run
    // on the lake.
    for mount in [
        "./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro",
        "./deploy/prometheus-cluster.yml:/etc/prometheus/prometheus.yml:ro",
    ] {
        assert!(compose.contains(mount), "compose lacks the mount {mount}");
    }
    for needle in [
        "profiles: [cluster]",
        "DUCKSTREAM_STORAGE: lake",
        "DUCKSTREAM_LAKE_CATALOG:",
        "DUCKSTREAM_LAKE_DATA:",
        "AWS_ENDPOINT_URL:",
        "replica1:",
        "replica2:",
        "replica3:",
    ] {
        assert!(compose.contains(needle), "compose lacks `{needle}`");
    }
}

#[test]
fn prometheus_config_passes_promtool() {
    for config in ["prometheus/prometheus.yml", "deploy/prometheus-cluster.yml"] {
        let out = run("promtool", &["check", "config", config]);
        assert!(out.contains("SUCCESS"), "{out}");
    }
    // The cluster's Prometheus scrapes every replica as the `duckstream` job (the dashboard's
    // panels filter on it).
    let cluster = std::fs::read_to_string(root().join("deploy/prometheus-cluster.yml")).unwrap();
    assert!(cluster.contains("job_name: duckstream"));
    for replica in ["replica1:8080", "replica2:8080", "replica3:8080"] {
        assert!(cluster.contains(replica), "{replica} is not scraped");
    }
}

#[test]
fn dashboard_is_provisioned_and_every_panel_has_queries() {
    let text = std::fs::read_to_string(root().join("grafana/dashboards/duckstream.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 12);
    for p in panels {
        let targets = p["targets"].as_array().unwrap();
        if p["type"] == "row" {
            // A row only heads the panels below it.
            assert!(targets.is_empty(), "{}", p["title"]);
            continue;
        }
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            assert!(
                t["expr"].as_str().unwrap().contains("duckstream_")
                    || t["expr"].as_str().unwrap().contains("process_")
            );
            assert_eq!(t["datasource"]["uid"], "prometheus");
        }
    }
    // The cluster row: each replica on its own line, and the lake's health.
    assert!(
        panels
            .iter()
            .any(|p| p["type"] == "row" && p["title"].as_str().unwrap().starts_with("Cluster")),
        "no Cluster row"
    );
    for metric in [
        "duckstream_store_feed_lag_seconds_bucket",
        "duckstream_store_feed_connected",
        "duckstream_store_catalog_errors_total",
        "duckstream_store_refused_total",
        "duckstream_store_maintenance_runs_total",
        "duckstream_store_maintenance_last_run_timestamp_seconds",
        "duckstream_store_data_files",
        "duckstream_store_data_bytes",
        "by (instance) (rate(duckstream_queries_total",
        "by (le, instance) (rate(duckstream_query_duration_seconds_bucket",
        "by (instance) (duckstream_active_connections)",
    ] {
        assert!(text.contains(metric), "the dashboard lacks {metric}");
    }
    let ds =
        std::fs::read_to_string(root().join("grafana/provisioning/datasources/prometheus.yml"))
            .unwrap();
    assert!(ds.contains("uid: prometheus") && ds.contains("http://prometheus:9090"));
    let provider =
        std::fs::read_to_string(root().join("grafana/provisioning/dashboards/duckstream.yml"))
            .unwrap();
    let compose = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    // The provider reads the directory the compose file mounts the dashboards into.
    assert!(provider.contains("path: /var/lib/grafana/dashboards"));
    assert!(compose.contains("./grafana/dashboards:/var/lib/grafana/dashboards"));
}

/// A Debian tool that lives in /usr/sbin (haproxy, nginx), which a user's PATH may lack.
fn sbin(name: &str) -> String {
    let full = format!("/usr/sbin/{name}");
    if Path::new(&full).exists() {
        full
    } else {
        name.to_string()
    }
}

/// The file's directives: each line without its comment (`#` onwards), trimmed, blank ones
/// dropped.
fn directives(path: &str) -> Vec<String> {
    std::fs::read_to_string(root().join(path))
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn assert_has(lines: &[String], path: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            lines.iter().any(|l| l.contains(needle)),
            "{path} lacks `{needle}`"
        );
    }
}

#[test]
fn haproxy_front_end_passes_its_check_and_keeps_tenant_affinity() {
    let haproxy = sbin("haproxy");
    // Valid with its defaults, without a warning.
    let out = run(&haproxy, &["-c", "-f", "deploy/haproxy.cfg"]);
    assert!(out.contains("Configuration file is valid"), "{out}");
    assert!(!out.contains("WARNING") && !out.contains("ALERT"), "{out}");
    // The replicas' addresses come from the environment: a wrong one is refused.
    let bad = Command::new(&haproxy)
        .args(["-c", "-f", "deploy/haproxy.cfg"])
        .current_dir(root())
        .env("DUCKSTREAM_REPLICA2", "127.0.0.1:not-a-port")
        .output()
        .unwrap();
    assert!(
        !bad.status.success(),
        "deploy/haproxy.cfg does not read DUCKSTREAM_REPLICA2"
    );
    let lines = directives("deploy/haproxy.cfg");
    assert_has(
        &lines,
        "deploy/haproxy.cfg",
        &[
            // Affinity: a consistent hash of the tenant segment of /v1/<tenant>/...
            "balance hash path,field(3,/)",
            "hash-type consistent",
            // Readiness, polled fast.
            "option httpchk GET /readyz",
            "http-check expect status 200",
            "default-server check inter 1s",
            "fall 2 rise 2",
            // A replica that stopped listening: the request goes to another.
            "option redispatch",
            "retries 2",
            // Every piece of a stream forwarded at once (no MSG_MORE delay).
            "option http-no-delay",
            // Long streams, idle WebSockets.
            "timeout tunnel 1h",
            "timeout server 1h",
            "timeout client 1h",
            "server replica1 \"${DUCKSTREAM_REPLICA1}\"",
            "server replica2 \"${DUCKSTREAM_REPLICA2}\"",
            "server replica3 \"${DUCKSTREAM_REPLICA3}\"",
            "bind \"${DUCKSTREAM_LB_ADDR}:${DUCKSTREAM_LB_PORT}\"",
        ],
    );
    // Nothing that buffers a streamed body: no compression, no request buffering.
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("compression") || l.contains("http-buffer-request")),
        "deploy/haproxy.cfg buffers streams"
    );
}

#[test]
fn nginx_front_end_passes_its_check_and_keeps_tenant_affinity() {
    let prefix = tempfile::tempdir().unwrap();
    let dir = prefix.path().display().to_string();
    let conf = root().join("deploy/nginx.conf").display().to_string();
    let pid = format!("pid {dir}/nginx.pid;");
    let out = run(
        &sbin("nginx"),
        &["-t", "-p", &dir, "-e", "stderr", "-g", &pid, "-c", &conf],
    );
    assert!(out.contains("test is successful"), "{out}");
    assert!(!out.contains("[warn]"), "{out}");
    let lines = directives("deploy/nginx.conf");
    assert_has(
        &lines,
        "deploy/nginx.conf",
        &[
            // Affinity: a consistent hash of the tenant segment of /v1/<tenant>/...
            "~^/v1/(?<tenant>[^/]+) $tenant;",
            "hash $duckstream_tenant consistent;",
            // WebSocket upgrades pass through.
            "proxy_http_version 1.1;",
            "proxy_set_header Upgrade $http_upgrade;",
            "proxy_set_header Connection $duckstream_connection;",
            // Streamed bodies both ways, no size limit of its own.
            "proxy_buffering off;",
            "proxy_request_buffering off;",
            "client_max_body_size 0;",
            // Long streams, idle WebSockets.
            "proxy_read_timeout 1h;",
            "proxy_send_timeout 1h;",
            // No active checks in nginx open source: failures take a replica out, and a
            // refused connection is retried on the next one.
            "max_fails=2 fail_timeout=5s",
            "proxy_next_upstream error timeout;",
            // The addresses a harness substitutes.
            "listen 127.0.0.1:8080",
            "server 127.0.0.1:8081",
            "server 127.0.0.1:8082",
            "server 127.0.0.1:8083",
        ],
    );
    // `-g 'pid …;'` (unprivileged runs) clashes with a pid in the file.
    assert!(!lines.iter().any(|l| l.starts_with("pid ")));
    // A retry after the replica got the request could apply an upload twice.
    assert!(!lines.iter().any(|l| l.contains("non_idempotent")));
}
