//! The deployment files, checked without Docker (no engine runs here): the compose file is
//! validated by docker-compose itself (`config -q`, which needs no engine), the Prometheus
//! config by `promtool`, every path the compose file mounts exists, and the dashboard is
//! well-formed and wired to the provisioned datasource.

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
}

#[test]
fn prometheus_config_passes_promtool() {
    let out = run(
        "promtool",
        &["check", "config", "prometheus/prometheus.yml"],
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn dashboard_is_provisioned_and_every_panel_has_queries() {
    let text = std::fs::read_to_string(root().join("grafana/dashboards/duckstream.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 12);
    for p in panels {
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            assert!(
                t["expr"].as_str().unwrap().contains("duckstream_")
                    || t["expr"].as_str().unwrap().contains("process_")
            );
            assert_eq!(t["datasource"]["uid"], "prometheus");
        }
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
