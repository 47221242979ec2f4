//! The binary's configuration: deprecated names still work and are each logged once, as a
//! warning that names the old and the new name.

/// `duckstream keygen` (it reads the whole configuration, then exits) with an old name in each
/// place: the config file, a flag, a variable and the tenants file (two tenants).
#[test]
fn each_deprecated_name_is_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(&config, "[limits]\nmax_connections = 9\n").unwrap();
    std::fs::write(
        &tenants,
        "[tenants.acme]\nmax_queries = 2\n[tenants.globex]\nmax_queries = 3\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_duckstream"))
        .arg("--config")
        .arg(&config)
        .arg("--tenants-file")
        .arg(&tenants)
        .args(["--max-queries", "2", "keygen"])
        .env("DUCKSTREAM_WS_MAX_QUERIES", "3")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    for (old, new) in [
        ("[limits] max_connections", "[limits] max_streams"),
        ("--max-queries", "--executor-threads"),
        (
            "DUCKSTREAM_WS_MAX_QUERIES",
            "DUCKSTREAM_WS_QUERIES_PER_SOCKET",
        ),
        ("max_queries (tenants file)", "pool_size (tenants file)"),
    ] {
        let named: Vec<_> = warnings.iter().filter(|l| l.contains(old)).collect();
        assert_eq!(named.len(), 1, "{old}:\n{log}");
        assert!(named[0].contains(new), "{}", named[0]);
    }
    assert_eq!(warnings.len(), 4, "{log}");
}
