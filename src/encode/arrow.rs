//! The Arrow IPC stream format (`format: "arrow"`): the schema message, record batch messages,
//! then the end-of-stream marker.
//!
//! DuckDB converts each chunk to Arrow itself ([`crate::duck::arrow`]: the same arrays as its
//! own Arrow export), the chunks of 2048 rows are coalesced into batches, and arrow-rs's
//! `StreamWriter` writes the IPC messages (no IPC body compression: zstd, when asked, is the
//! transport's, over the whole stream).
//!
//! Invariants:
//! - The header is the schema message, even for an empty result; `end` is the end-of-stream
//!   marker, and nothing else ends a stream: a stream cut short has none (readers that accept a
//!   stream without it are told apart by the transport, see `docs/PROTOCOL.md`). A failed
//!   stream has no words for it: its error goes beside it, and it breaks
//!   ([`super::ErrorPlace::Beside`]).
//! - A batch holds at most `rows` rows and is closed once its arrays reach `bytes` bytes (so
//!   one batch is never much larger than the byte cap plus one DuckDB chunk).
//! - The first batch is one DuckDB chunk at most ([`FIRST_BATCH_ROWS`]), and each next one
//!   may hold twice as many rows as the one before, up to `rows`: first data comes as soon as
//!   DuckDB has it, and a long result still travels in big batches.
//! - Every emitted piece is whole IPC messages (dictionaries before the batch that uses them).

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;

use super::{BatchSizes, ErrorFrame, Flow, Line, ResultEncoder, ResultLimits, Stopped};
use crate::duck::arrow::{ArrowOptions, ArrowSchema};
use crate::duck::{DataChunk, LogicalType};

/// Rows in a batch when the request does not say (`chunk_rows`).
pub const BATCH_ROWS: usize = 65_536;
/// The first batch's rows: one DuckDB chunk.
pub const FIRST_BATCH_ROWS: usize = 2_048;

/// The IPC stream's end: a continuation marker and a zero length.
const END_OF_STREAM: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

/// Turns chunks into Arrow IPC messages.
pub struct ArrowEncoder {
    options: ArrowOptions,
    schema: ArrowSchema,
    writer: StreamWriter<Vec<u8>>,
    header: Bytes,
    /// Chunks converted but not yet written, and their size.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    pending_bytes: usize,
    sizes: BatchSizes,
    /// The open batch's row cap: [`FIRST_BATCH_ROWS`], doubling per batch up to `sizes.rows`.
    target_rows: usize,
    limits: ResultLimits,
    /// Rows and IPC bytes emitted so far.
    rows: u64,
    bytes: u64,
    /// Why a flush lost rows.
    failed: Option<String>,
}

/// The result's columns have no Arrow form (DuckDB refused to make a schema).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the result has no Arrow form: {0}")]
pub struct NoArrowForm(pub String);

impl ArrowEncoder {
    pub fn new(
        columns: &[(String, LogicalType)],
        options: ArrowOptions,
        sizes: BatchSizes,
        limits: ResultLimits,
    ) -> Result<Self, NoArrowForm> {
        let schema = ArrowSchema::new(&options, columns).map_err(|e| NoArrowForm(e.message))?;
        let mut writer = StreamWriter::try_new(Vec::new(), &schema.schema)
            .map_err(|e| NoArrowForm(e.to_string()))?;
        let header = Bytes::from(std::mem::take(writer.get_mut()));
        Ok(Self {
            options,
            schema,
            writer,
            header,
            pending: Vec::new(),
            pending_rows: 0,
            pending_bytes: 0,
            sizes: BatchSizes {
                rows: sizes.rows.max(1),
                bytes: sizes.bytes.max(1),
                ..sizes
            },
            target_rows: sizes.first_rows.clamp(1, sizes.rows.max(1)),
            limits,
            rows: 0,
            bytes: 0,
            failed: None,
        })
    }

    /// Writes the pending chunks as one batch (coalesced: one copy of their buffers).
    fn write_pending(&mut self) -> Result<Option<Line>, String> {
        if self.pending_rows == 0 {
            return Ok(None);
        }
        let batch = if self.pending.len() == 1 {
            self.pending
                .pop()
                .unwrap_or_else(|| RecordBatch::new_empty(self.schema.schema.clone()))
        } else {
            let merged =
                concat_batches(&self.schema.schema, &self.pending).map_err(|e| e.to_string())?;
            self.pending.clear();
            merged
        };
        self.pending.clear();
        let rows = std::mem::take(&mut self.pending_rows);
        self.pending_bytes = 0;
        self.target_rows = (self.target_rows * 2).min(self.sizes.rows);
        self.writer.write(&batch).map_err(|e| e.to_string())?;
        let bytes = Bytes::from(std::mem::take(self.writer.get_mut()));
        self.rows += rows as u64;
        self.bytes += bytes.len() as u64;
        Ok(Some(Line { bytes, rows }))
    }
}

/// The bytes of a batch's values (a slice counts its own rows, not its parent's buffers).
fn slice_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            let data = c.to_data();
            data.get_slice_memory_size()
                .unwrap_or_else(|_| data.get_array_memory_size())
        })
        .sum()
}

impl ResultEncoder for ArrowEncoder {
    fn header(&mut self) -> Bytes {
        self.header.clone()
    }

    fn push(
        &mut self,
        chunk: &DataChunk,
        emit: &mut dyn FnMut(Line) -> Result<(), Stopped>,
    ) -> Result<Flow, Stopped> {
        let seen = self.rows + self.pending_rows as u64;
        if seen >= self.limits.max_rows
            || self.bytes + self.pending_bytes as u64 >= self.limits.max_bytes
        {
            return Ok(Flow::LimitReached);
        }
        let array = match chunk.to_arrow(&self.options, &self.schema) {
            Ok(a) => a,
            Err(e) => return Ok(Flow::Failed(e.message)),
        };
        let batch = match RecordBatch::try_new(self.schema.schema.clone(), array.columns().to_vec())
        {
            Ok(b) => b,
            Err(e) => return Ok(Flow::Failed(format!("DuckDB's Arrow batch: {e}"))),
        };
        let room = self.limits.max_rows - seen;
        let (batch, limited) = if batch.num_rows() as u64 > room {
            (batch.slice(0, room as usize), true)
        } else {
            (batch, false)
        };
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.bytes + self.pending_bytes as u64 >= self.limits.max_bytes {
                return Ok(Flow::LimitReached);
            }
            // Cut the chunk where the open batch is full, so no batch passes `rows`.
            let take = (self.target_rows - self.pending_rows).min(batch.num_rows() - offset);
            let part = batch.slice(offset, take);
            offset += take;
            self.pending_bytes += slice_bytes(&part);
            self.pending_rows += take;
            self.pending.push(part);
            if self.pending_rows >= self.target_rows || self.pending_bytes >= self.sizes.bytes {
                match self.write_pending() {
                    Ok(Some(line)) => emit(line)?,
                    Ok(None) => {}
                    Err(e) => return Ok(Flow::Failed(e)),
                }
            }
        }
        Ok(if limited {
            Flow::LimitReached
        } else {
            Flow::Continue
        })
    }

    fn pending_rows(&self) -> usize {
        self.pending_rows
    }

    fn flush(&mut self) -> Option<Line> {
        // Writing fails only on a schema mismatch, which `push` already ruled out; if it ever
        // does, the rows are lost and `failure` makes the result end as failed.
        match self.write_pending() {
            Ok(line) => line,
            Err(e) => {
                self.failed.get_or_insert(e);
                None
            }
        }
    }

    fn end(&mut self, _elapsed_ms: u64) -> Bytes {
        Bytes::from_static(&END_OF_STREAM)
    }

    fn failure(&mut self) -> Option<String> {
        self.failed.take()
    }

    fn fail(&mut self, query_id: &str, code: &str, message: &str) -> ErrorFrame {
        error_frame(query_id, code, message)
    }
}

/// What ends a failed result: an IPC stream has no message for a failure, and a reader takes
/// every stream that ends for complete, so the stream breaks.
pub fn error_frame(query_id: &str, code: &str, message: &str) -> ErrorFrame {
    ErrorFrame::beside(query_id, code, message)
}
