//! The `duckstream` binary: set up logging, load config (warning once about each deprecated
//! name it used), build the application, serve.

use duckstream::config::Command;
use duckstream::{telemetry, Application, Config};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    let (config, command) = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("duckstream: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    for deprecation in &config.deprecated {
        tracing::warn!("{deprecation}");
    }
    if let Command::Load(args) = command {
        return match duckstream::app::load_offline(config, args).await {
            Ok(result) => {
                println!(
                    "{}",
                    simd_json::serde::to_string(&result).unwrap_or_default()
                );
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("duckstream: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    if let Command::Lake(lake) = command {
        return match duckstream::app::lake_command(config, lake).await {
            Ok(result) => {
                println!("{result}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("duckstream: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    if command == Command::Keygen {
        return match duckstream::auth::keys::generate_key() {
            Ok(key) => {
                let hash = duckstream::auth::keys::KeyHash::of(&key).to_stored();
                println!("key:  {key}\nhash: {hash}");
                println!("Give the key to the client; put the hash in the tenants file:");
                println!("  [tenants.<name>]\n  keys = [\"{hash}\"]");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("duckstream: no randomness for a key: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    if command == Command::SeedDemo {
        let (dir, rows) = (config.server.data_dir.clone(), config.server.demo_rows);
        let seeded = std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| duckstream::demo::ensure_demo(&dir, rows).map_err(|e| e.to_string()));
        return match seeded {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("duckstream: cannot create the demo tenant: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    let demo = config.server.demo;
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("duckstream: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let port = app.port();
    tracing::info!(port, "duckstream listening");
    if demo && app.is_open() {
        println!(
            "duckstream is serving the demo tenant. Try:\n  \
             curl -sS 'http://127.0.0.1:{port}/v1/demo/query' -d '{{\"sql\": \"SELECT * FROM parcels LIMIT 5\"}}'\n  \
             curl -sS --compressed -H 'Accept-Encoding: zstd' 'http://127.0.0.1:{port}/v1/demo/query' \
             -d '{{\"sql\": \"SELECT * FROM parcels\"}}' | wc -l"
        );
    }
    match app.run_until_stopped().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duckstream: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
