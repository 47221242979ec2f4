//! Arrow from DuckDB: a result's schema and its chunks as Arrow arrays, converted by DuckDB
//! itself (`duckdb_to_arrow_schema`, `duckdb_data_chunk_to_arrow`) with the result's own
//! Arrow settings, so that types come out exactly as DuckDB's own Arrow export makes them
//! (GEOMETRY as `geoarrow.wkb` with its CRS, ENUM as a dictionary, HUGEINT as a decimal...).
//!
//! Invariants:
//! - The C data interface structs DuckDB fills are arrow-rs's own (`FFI_ArrowSchema`,
//!   `FFI_ArrowArray`: both `#[repr(C)]` with the specification's layout), so the arrays are
//!   imported without a copy and released by arrow-rs, once.
//! - An [`ArrowOptions`] is destroyed exactly once, by `Drop`; it does not borrow the result
//!   it came from (DuckDB copies the settings out).

use std::ffi::CString;
use std::sync::Arc;

use arrow::array::{Array, StructArray};
use arrow::datatypes::Schema;
use arrow::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use duckdb::ffi;

use super::{borrowed_str, DataChunk, DuckError, LogicalType, Streaming};

/// How DuckDB makes Arrow for a result (its client settings, copied when the result was
/// made).
pub struct ArrowOptions {
    raw: ffi::duckdb_arrow_options,
}

// SAFETY: the options are a heap copy of the client's settings that DuckDB only reads; no
// thread owns them, and they are used by one thread at a time (`&self` methods only read).
unsafe impl Send for ArrowOptions {}

impl Drop for ArrowOptions {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: owned, destroyed once.
            unsafe { ffi::duckdb_destroy_arrow_options(&mut self.raw) };
        }
    }
}

impl Streaming<'_> {
    /// The Arrow settings of this result's connection.
    pub fn arrow_options(&self) -> ArrowOptions {
        // SAFETY: the result is live; the options are a copy that is ours to destroy.
        let raw = unsafe { ffi::duckdb_result_get_arrow_options(self.as_ptr()) };
        ArrowOptions { raw }
    }
}

/// Turns DuckDB's error data into a result, destroying it.
///
/// # Safety
/// `error` must be error data DuckDB returned to the caller (null or live), not yet destroyed.
unsafe fn check(mut error: ffi::duckdb_error_data) -> Result<(), DuckError> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: live error data (the caller's contract); its message belongs to it and is copied
    // before it is destroyed, once.
    unsafe {
        let failed = ffi::duckdb_error_data_has_error(error);
        let message = borrowed_str(ffi::duckdb_error_data_message(error));
        ffi::duckdb_destroy_error_data(&mut error);
        if failed {
            return Err(DuckError::other(message));
        }
    }
    Ok(())
}

/// A result's Arrow schema, as DuckDB exports it: the schema arrow-rs reads, and the C struct
/// every chunk's import needs.
pub struct ArrowSchema {
    pub schema: Arc<Schema>,
    ffi: FFI_ArrowSchema,
}

// SAFETY: the C schema is plain owned memory (names, formats, metadata) released by its own
// release callback; it is read, never written, after it was made.
unsafe impl Send for ArrowSchema {}

impl ArrowSchema {
    /// The schema of a result of `columns`, made by DuckDB with `options`.
    pub fn new(
        options: &ArrowOptions,
        columns: &[(String, LogicalType)],
    ) -> Result<Self, DuckError> {
        let names: Vec<CString> = columns
            .iter()
            .map(|(name, _)| CString::new(name.replace('\0', "")).unwrap_or_default())
            .collect();
        let mut name_ptrs: Vec<*const std::os::raw::c_char> =
            names.iter().map(|n| n.as_ptr()).collect();
        let mut types: Vec<ffi::duckdb_logical_type> = columns.iter().map(|(_, t)| t.raw).collect();
        let mut out = FFI_ArrowSchema::empty();
        // SAFETY: `types` and `name_ptrs` hold `columns.len()` live types and NUL-terminated
        // names (both outlive the call: DuckDB copies what it keeps); `out` is an empty
        // arrow-rs C schema, the same layout as DuckDB's `ArrowSchema`, which DuckDB fills in.
        unsafe {
            check(ffi::duckdb_to_arrow_schema(
                options.raw,
                types.as_mut_ptr(),
                name_ptrs.as_mut_ptr(),
                columns.len() as ffi::idx_t,
                &mut out as *mut FFI_ArrowSchema as *mut ffi::ArrowSchema,
            ))?;
        }
        let schema = Schema::try_from(&out)
            .map_err(|e| DuckError::other(format!("DuckDB's Arrow schema: {e}")))?;
        Ok(Self {
            schema: Arc::new(schema),
            ffi: out,
        })
    }
}

impl DataChunk {
    /// The chunk's rows as one Arrow struct array (a field per column), made by DuckDB. The
    /// array owns its memory (released by arrow-rs): it outlives the chunk.
    pub fn to_arrow(
        &self,
        options: &ArrowOptions,
        schema: &ArrowSchema,
    ) -> Result<StructArray, DuckError> {
        let mut out = FFI_ArrowArray::empty();
        // SAFETY: a live chunk; `out` is an empty arrow-rs C array, the same layout as
        // DuckDB's `ArrowArray`, which DuckDB fills in (its buffers are its own copies).
        unsafe {
            check(ffi::duckdb_data_chunk_to_arrow(
                options.raw,
                self.raw,
                &mut out as *mut FFI_ArrowArray as *mut ffi::ArrowArray,
            ))?;
        }
        // SAFETY: `out` was just filled by DuckDB for the schema `schema.ffi` describes (the
        // same result's columns and options); `from_ffi` takes ownership of it.
        let data = unsafe { from_ffi(out, &schema.ffi) }
            .map_err(|e| DuckError::other(format!("DuckDB's Arrow array: {e}")))?;
        let array = StructArray::from(data);
        if array.len() != self.len() {
            return Err(DuckError::other(
                "DuckDB's Arrow array has the wrong length",
            ));
        }
        Ok(array)
    }
}
