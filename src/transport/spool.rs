//! An upload's body to its spool file: received on the runtime, then decoded
//! ([`super::decode`]), checked ([`crate::wire::upload_scan`]) and written on blocking
//! threads, so that DuckDB only ever reads a file that passed.
//!
//! Invariants:
//! - One pass, bounded memory: chunks are gathered up to [`BATCH`] bytes of body, then one
//!   blocking hop decodes, counts, scans and writes them while the next batch is gathered (one
//!   hop in flight at most); memory is two batches, the decoder's state and output piece, the
//!   scan's counters and the file's 1 MiB buffer. No thread waits on the network.
//! - Decoded bytes are counted before they are written: past `limit` the answer is 413.
//! - A compressed body that does not end cleanly, or bytes the scan refuses, or a Parquet
//!   footer whose schema is too deep, is a 400 `invalid_upload`; a body that breaks off or
//!   pauses past `idle` is refused too.
//! - Whatever fails, the spool file is removed before the error is answered (and when the
//!   request is dropped half-way, soon after): nothing of a refused body is kept, and DuckDB
//!   never runs on it.

use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::web;
use bytes::Bytes;
use futures_util::StreamExt;

use super::decode::{BodyDecoder, Encoding};
use crate::error::GatewayError;
use crate::wire::datasets::UploadFormat;
use crate::wire::upload_scan::{check_parquet_footer, UploadScan};

/// Body bytes gathered before a blocking hop (a hop per network chunk would cost more than
/// the work it carries).
pub const BATCH: usize = 256 * 1024;

/// How one upload's body is taken in.
#[derive(Debug, Clone)]
pub struct Spooling {
    pub encoding: Encoding,
    pub format: UploadFormat,
    /// The most decoded bytes (the tenant's `max_upload_bytes`).
    pub limit: u64,
    /// The longest record (NDJSON line, CSV record, GeoJSON feature).
    pub max_record_bytes: u64,
    /// How long the body may pause.
    pub idle: Duration,
}

/// Streams the body into `path`: its decoded size. On any error the file is gone before
/// the error is returned.
///
/// Receipt and writing overlap: while one batch is decoded, checked and written on a
/// blocking thread, the next is gathered from the network (at most one write in flight, so
/// memory stays two batches, and no thread waits on the network).
pub async fn spool_body(
    payload: web::Payload,
    path: &Path,
    how: Spooling,
) -> Result<u64, GatewayError> {
    let idle = how.idle;
    let target = path.to_path_buf();
    let mut spool = Writing::Idle(blocking(move || Spool::create(target, &how)).await?);
    let mut body = payload.into_inner();
    let (mut batch, mut batched) = (Vec::new(), 0);
    loop {
        let next = match tokio::time::timeout(idle, body.next()).await {
            Ok(next) => next,
            Err(_) => {
                let e = GatewayError::RequestTimeout(idle.as_secs());
                return Err(spool.discard(e).await);
            }
        };
        let end = match next {
            None => true,
            Some(Ok(chunk)) => {
                batched += chunk.len();
                batch.push(chunk);
                false
            }
            Some(Err(e)) => {
                let e = GatewayError::InvalidRequest(format!("the body broke off: {e}"));
                return Err(spool.discard(e).await);
            }
        };
        if end || batched >= BATCH {
            let pieces = std::mem::take(&mut batch);
            batched = 0;
            let ready = spool.ready().await?;
            spool = Writing::Busy(tokio::task::spawn_blocking(move || ready.write(&pieces)));
        }
        if end {
            let ready = spool.ready().await?;
            return blocking(move || ready.finish()).await;
        }
    }
}

/// The spool file between batches: free, or writing one on the blocking pool.
enum Writing {
    Idle(Spool),
    Busy(tokio::task::JoinHandle<Result<Spool, GatewayError>>),
}

impl Writing {
    /// The spool once its write in flight is done; a failed write has removed the file.
    async fn ready(self) -> Result<Spool, GatewayError> {
        match self {
            Self::Idle(spool) => Ok(spool),
            Self::Busy(write) => write.await.map_err(GatewayError::internal)?,
        }
    }

    /// Removes the spool file (after its write in flight), then gives back `e`, or the
    /// write's own error if it failed first.
    async fn discard(self, e: GatewayError) -> GatewayError {
        match self.ready().await {
            Ok(spool) => discard(spool, e).await,
            Err(first) => first,
        }
    }
}

/// `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GatewayError> + Send + 'static,
) -> Result<T, GatewayError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(GatewayError::internal)?
}

/// Removes the spool file (on the blocking pool), then gives back `e`.
async fn discard(spool: Spool, e: GatewayError) -> GatewayError {
    let _ = blocking(move || {
        spool.discard();
        Ok(())
    })
    .await;
    e
}

/// A spool file being written: the body's decoder, the check of its bytes, the file.
/// Each step that fails removes the file itself (it runs on a blocking thread).
struct Spool {
    decoder: BodyDecoder,
    out: Checked,
    format: UploadFormat,
    path: RemoveOnDrop,
}

/// What the decoded bytes go through: the count, the scan, the file.
struct Checked {
    file: BufWriter<std::fs::File>,
    scan: UploadScan,
    total: u64,
    limit: u64,
}

impl Checked {
    fn take(&mut self, decoded: &[u8]) -> Result<(), GatewayError> {
        self.total += decoded.len() as u64;
        if self.total > self.limit {
            return Err(GatewayError::PayloadTooLarge(self.limit as usize));
        }
        self.scan.feed(decoded)?;
        self.file.write_all(decoded).map_err(GatewayError::internal)
    }
}

impl Spool {
    fn create(path: PathBuf, how: &Spooling) -> Result<Self, GatewayError> {
        let decoder = BodyDecoder::new(how.encoding)?;
        let path = RemoveOnDrop { path, keep: false };
        let file = std::fs::File::create(&path.path).map_err(GatewayError::internal)?;
        Ok(Self {
            decoder,
            out: Checked {
                file: BufWriter::with_capacity(1 << 20, file),
                scan: UploadScan::new(how.format, how.max_record_bytes),
                total: 0,
                limit: how.limit,
            },
            format: how.format,
            path,
        })
    }

    /// Decodes, checks and writes the next pieces of the body.
    fn write(mut self, pieces: &[Bytes]) -> Result<Self, GatewayError> {
        let out = &mut self.out;
        let written = pieces
            .iter()
            .try_for_each(|p| self.decoder.push(p, &mut |d: &[u8]| out.take(d)));
        match written {
            Ok(()) => Ok(self),
            Err(e) => Err(self.discard_for(e)),
        }
    }

    /// The body ended: its size, once the decoder ended cleanly, the file is flushed (no
    /// fsync: it is transient, removed at start after a crash) and, for Parquet, its footer
    /// passed.
    fn finish(mut self) -> Result<u64, GatewayError> {
        match self.complete() {
            Ok(total) => {
                self.path.keep = true;
                Ok(total)
            }
            Err(e) => Err(self.discard_for(e)),
        }
    }

    fn complete(&mut self) -> Result<u64, GatewayError> {
        let out = &mut self.out;
        self.decoder.finish(&mut |d: &[u8]| out.take(d))?;
        out.file.flush().map_err(GatewayError::internal)?;
        if self.format == UploadFormat::Parquet {
            check_parquet(&self.path.path)?;
        }
        Ok(out.total)
    }

    fn discard_for(self, e: GatewayError) -> GatewayError {
        self.discard();
        e
    }

    /// Closes and removes the file, here and now.
    fn discard(self) {
        let Self { out, mut path, .. } = self;
        drop(out);
        path.keep = true;
        let _ = std::fs::remove_file(&path.path);
    }
}

/// Checks the schema in a Parquet file's footer (`…footer, its length (u32 LE), PAR1`).
/// A file without that tail is left to DuckDB, which refuses it as not Parquet.
fn check_parquet(path: &Path) -> Result<(), GatewayError> {
    let mut file = std::fs::File::open(path).map_err(GatewayError::internal)?;
    let len = file.metadata().map_err(GatewayError::internal)?.len();
    if len < 12 {
        return Ok(());
    }
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::End(-8))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(GatewayError::internal)?;
    let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if &tail[4..] != b"PAR1" || footer + 12 > len {
        return Ok(());
    }
    file.seek(SeekFrom::Start(len - 8 - footer))
        .map_err(GatewayError::internal)?;
    Ok(check_parquet_footer(file.take(footer))?)
}

/// The spool file's path: the file is removed on drop unless kept, for a request dropped
/// half-way (its steps remove the file themselves otherwise). Removal is file work, so it
/// goes to the blocking pool when there is a runtime.
struct RemoveOnDrop {
    path: PathBuf,
    keep: bool,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let path = std::mem::take(&mut self.path);
        let remove = move || {
            let _ = std::fs::remove_file(path);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}
