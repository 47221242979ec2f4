//! Datasets over HTTP: `PUT /v1/{tenant}/datasets/{name}?format=…&mode=…&max_bad_rows=…`
//! (the data as the body), `GET /v1/{tenant}/datasets`, `DELETE /v1/{tenant}/datasets/{name}`.
//!
//! Invariants:
//! - Writes need the tenant's API key or an admin key (in open mode: a loopback client); a
//!   token never writes, and queries stay read-only.
//! - The body streams to a spool file ([`super::spool`]): decoded strictly when it is
//!   `Content-Encoding: gzip` or `zstd`, checked for nesting depth and record size as it
//!   streams, memory bounded whatever the size. Past the tenant's `max_upload_bytes`
//!   (decoded) the answer is 413; a compressed body that does not end cleanly, or a body too
//!   deep or with too long a record, is 400 `invalid_upload`; a body that stops arriving for
//!   `body_timeout_secs`, or breaks, is refused too. Then nothing is kept and DuckDB never runs.
//! - The spool file is removed whatever happens; DuckDB loads it on an executor thread.
//! - With `Accept: application/x-ndjson` the answer streams: `progress` lines every second
//!   while DuckDB loads, then one `result` (or `error`) line.

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::decode::Encoding;
use super::edge::{is_loopback, Authorized};
use super::spool::{spool_body, Spooling};
use super::Settings;
use crate::auth::{Access, Via};
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::wire::datasets::{DatasetName, UploadRequest, UploadResult};

#[derive(Debug, Deserialize)]
pub struct UploadParams {
    format: Option<String>,
    mode: Option<String>,
    max_bad_rows: Option<String>,
    geometry_columns: Option<String>,
}

/// Writes are for keys: the tenant's API key, an admin key, or (open mode) loopback.
fn may_write(access: &Access, req: &HttpRequest) -> Result<(), GatewayError> {
    match access.via {
        Via::ApiKey | Via::AdminKey => Ok(()),
        Via::Open if is_loopback(req) => Ok(()),
        Via::Open => Err(GatewayError::AccessDenied(
            "without a tenants file, datasets are written from loopback clients only".into(),
        )),
        Via::Token => Err(GatewayError::AccessDenied(
            "tokens cannot write datasets: use an API key".into(),
        )),
    }
}

pub async fn put_dataset(
    Authorized(access): Authorized,
    req: HttpRequest,
    params: web::Query<UploadParams>,
    payload: web::Payload,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, GatewayError> {
    may_write(&access, &req)?;
    let started = Instant::now();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let request = UploadRequest::new(
        req.match_info().get("name").unwrap_or_default(),
        params.format.as_deref(),
        content_type,
        params.mode.as_deref(),
        params.max_bad_rows.as_deref(),
    )?
    .with_geometry_columns(params.geometry_columns.as_deref())?;
    let encoding = Encoding::from_headers(req.headers())?;
    let limit = engine.tenant_limits(&access.tenant).await?.max_upload_bytes;
    let spool = engine
        .spool_file(&access.tenant, request.format.extension())
        .await?;
    let how = Spooling {
        encoding,
        format: request.format,
        limit,
        max_record_bytes: settings.max_upload_record_bytes,
        idle: settings.body_timeout,
    };
    let bytes = spool_body(payload, &spool, how).await?;
    tracing::info!(tenant = %access.tenant, bytes, elapsed_ms = started.elapsed().as_millis() as u64, "upload body received");
    let job = Load {
        engine: engine.into_inner(),
        tenant: access.tenant.clone(),
        request,
        spool,
        bytes,
        started,
    };
    if wants_progress(&req) {
        return Ok(progress_response(job));
    }
    let result = job.run().await?;
    let body = simd_json::serde::to_vec(&result).map_err(GatewayError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("X-Data-Version", result.version.to_string()))
        .body(body))
}

/// An upload whose body is spooled: what is left is DuckDB's load.
struct Load {
    engine: std::sync::Arc<Engine>,
    tenant: crate::wire::TenantId,
    request: UploadRequest,
    spool: std::path::PathBuf,
    bytes: u64,
    started: Instant,
}

impl Load {
    async fn run(self) -> Result<UploadResult, GatewayError> {
        let dataset = self.request.dataset.as_str().to_string();
        let loaded = self
            .engine
            .upload(&self.tenant, self.request, self.spool.clone())
            .await;
        let _ = tokio::fs::remove_file(&self.spool).await;
        let (loaded, version) = loaded?;
        tracing::info!(tenant = %self.tenant, %dataset, rows = loaded.rows, bytes = self.bytes, version, "dataset written");
        Ok(UploadResult {
            dataset,
            rows: loaded.rows,
            rejected: loaded.rejected,
            rejects: loaded.rejects,
            bytes: self.bytes,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            version,
        })
    }
}

/// Whether the client asked for the NDJSON answer with progress lines.
fn wants_progress(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/x-ndjson"))
}

/// The NDJSON answer: a `progress` line at once and every second while DuckDB loads (so the
/// client, and every proxy between, sees the upload is alive), then the `result` or `error`
/// line. The load goes on if the client leaves: it is committed or rolled back either way.
fn progress_response(job: Load) -> HttpResponse {
    use crate::wire::datasets::UploadLine;
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let (bytes, started) = (job.bytes, job.started);
    actix_web::rt::spawn(async move {
        let load = job.run();
        tokio::pin!(load);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let outcome = loop {
            tokio::select! {
                r = &mut load => break r,
                _ = tick.tick() => {
                    let line = UploadLine::Progress {
                        phase: "loading",
                        bytes,
                        elapsed_ms: started.elapsed().as_millis() as u64,
                    };
                    // A client that stopped reading still lets the load finish.
                    let _ = tx.try_send(line.to_line().into());
                }
            }
        };
        let last = match outcome {
            Ok(result) => UploadLine::Result(result),
            Err(e) => UploadLine::Error {
                code: e.code(),
                message: e.client_message(),
            },
        };
        let _ = tx.send(last.to_line().into()).await;
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body)
}

pub async fn list_datasets(
    Authorized(access): Authorized,
    engine: web::Data<Engine>,
) -> Result<HttpResponse, GatewayError> {
    #[derive(serde::Serialize)]
    struct List {
        datasets: Vec<crate::wire::datasets::DatasetDetail>,
        data_version: u64,
    }
    let mut datasets = engine.datasets(&access.tenant).await?;
    // A table-limited token sees only its tables (names are what it must not learn).
    if let Some(tables) = &access.tables {
        datasets.retain(|d| tables.allows("", "main", &d.name, access.tenant.as_str()));
    }
    let data_version = engine.data_version(&access.tenant).await?;
    let body = simd_json::serde::to_vec(&List {
        datasets,
        data_version,
    })
    .map_err(GatewayError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("X-Data-Version", data_version.to_string()))
        .body(body))
}

pub async fn delete_dataset(
    Authorized(access): Authorized,
    req: HttpRequest,
    engine: web::Data<Engine>,
) -> Result<HttpResponse, GatewayError> {
    may_write(&access, &req)?;
    let name = DatasetName::parse(req.match_info().get("name").unwrap_or_default())?;
    let version = engine.delete_dataset(&access.tenant, name).await?;
    Ok(HttpResponse::NoContent()
        .insert_header(("X-Data-Version", version.to_string()))
        .finish())
}
