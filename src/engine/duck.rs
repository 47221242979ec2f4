//! Safe wrappers over DuckDB's C API (reached through `duckdb::ffi`) for the query path.
//!
//! Why not the `duckdb` crate's `Connection`/`Statement` here: the streaming path needs three
//! things the crate keeps private: the statement type *before* execution (to refuse
//! non-queries without running them), the raw data chunks with their full logical types (every
//! DuckDB type rendered exactly, without a detour through Arrow), and `duckdb_interrupt` on the
//! exact connection a query runs on. The crate is still used for the rest (demo seeding, tests).
//!
//! Invariants:
//! - Every handle is destroyed exactly once, by `Drop`.
//! - A [`Prepared`] borrows its [`Connection`], a [`Streaming`] result borrows its `Prepared`:
//!   the borrow checker keeps them from outliving what they point into.
//! - [`InterruptHandle`] is the only thing that crosses threads while a query runs; its user
//!   ([`crate::engine::control::QueryControl`]) guarantees the connection is alive when calling it.

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::path::Path;
use std::sync::Arc;

use duckdb::ffi;

/// An error reported by DuckDB, with its class when DuckDB gave one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DuckError {
    pub message: String,
    pub kind: DuckErrorKind,
}

/// The classes of DuckDB error the gateway treats differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuckErrorKind {
    /// The query was interrupted through `duckdb_interrupt`.
    Interrupted,
    /// Anything else: the message says what.
    Other,
}

impl DuckError {
    fn other(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: DuckErrorKind::Other,
        }
    }
}

/// Copies a C string owned by DuckDB (not freed here).
///
/// # Safety
/// `ptr` must be null or point to a NUL-terminated string.
unsafe fn borrowed_str(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Copies and frees a C string that DuckDB allocated for the caller.
///
/// # Safety
/// `ptr` must be null or a string allocated by DuckDB for the caller to free.
pub(crate) unsafe fn owned_str(ptr: *mut c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    let s = unsafe { borrowed_str(ptr) };
    unsafe { ffi::duckdb_free(ptr.cast()) };
    s
}

fn c_string(s: &str) -> Result<CString, DuckError> {
    CString::new(s).map_err(|_| DuckError::other("text contains a NUL byte"))
}

/// One DuckDB database instance (one tenant file), shared by all its connections.
pub struct Database {
    raw: ffi::duckdb_database,
}

// SAFETY: a DuckDB database instance is internally synchronized; the C API allows connecting
// to it from any thread.
unsafe impl Send for Database {}
unsafe impl Sync for Database {}

impl Database {
    /// Opens (never creates, unless `create` is set) the database at `path` with start-up
    /// `options` (DuckDB config names and values).
    pub fn open(path: &Path, options: &[(&str, String)]) -> Result<Arc<Self>, DuckError> {
        let c_path = c_string(&path.to_string_lossy())?;
        let mut config: ffi::duckdb_config = std::ptr::null_mut();
        // SAFETY: out-pointer to a local; destroyed below on every path.
        if unsafe { ffi::duckdb_create_config(&mut config) } != ffi::duckdb_state_DuckDBSuccess {
            unsafe { ffi::duckdb_destroy_config(&mut config) };
            return Err(DuckError::other("could not allocate a DuckDB config"));
        }
        for (name, value) in options {
            let (n, v) = (c_string(name)?, c_string(value)?);
            // SAFETY: config is live, n and v are NUL-terminated.
            let rc = unsafe { ffi::duckdb_set_config(config, n.as_ptr(), v.as_ptr()) };
            if rc != ffi::duckdb_state_DuckDBSuccess {
                unsafe { ffi::duckdb_destroy_config(&mut config) };
                return Err(DuckError::other(format!(
                    "invalid DuckDB setting {name} = '{value}'"
                )));
            }
        }
        let mut db: ffi::duckdb_database = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: all pointers are valid; err is freed by owned_str.
        let rc = unsafe { ffi::duckdb_open_ext(c_path.as_ptr(), &mut db, config, &mut err) };
        unsafe { ffi::duckdb_destroy_config(&mut config) };
        if rc != ffi::duckdb_state_DuckDBSuccess {
            let message = unsafe { owned_str(err) };
            return Err(DuckError::other(message));
        }
        Ok(Arc::new(Self { raw: db }))
    }

    /// A new connection to this database.
    pub fn connect(self: &Arc<Self>) -> Result<Connection, DuckError> {
        let mut con: ffi::duckdb_connection = std::ptr::null_mut();
        // SAFETY: self.raw is open for as long as self lives; the connection keeps an Arc.
        if unsafe { ffi::duckdb_connect(self.raw, &mut con) } != ffi::duckdb_state_DuckDBSuccess {
            return Err(DuckError::other("could not connect to the database"));
        }
        Ok(Connection {
            raw: con,
            _db: Arc::clone(self),
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: every connection holds an Arc<Database>, so none is left.
        unsafe { ffi::duckdb_close(&mut self.raw) };
    }
}

/// One connection: the unit the pool hands out. Used by one thread at a time.
pub struct Connection {
    raw: ffi::duckdb_connection,
    _db: Arc<Database>,
}

// SAFETY: a connection may move between threads; it is never used by two at once (not Sync).
unsafe impl Send for Connection {}

impl Connection {
    /// Runs statements for their side effects (settings), discarding any result.
    pub fn execute_batch(&self, sql: &str) -> Result<(), DuckError> {
        let c_sql = c_string(sql)?;
        // SAFETY: zeroed duckdb_result is the documented initial state; destroyed below.
        let mut result: ffi::duckdb_result = unsafe { std::mem::zeroed() };
        let rc = unsafe { ffi::duckdb_query(self.raw, c_sql.as_ptr(), &mut result) };
        let outcome = if rc == ffi::duckdb_state_DuckDBSuccess {
            Ok(())
        } else {
            Err(unsafe { result_error(&mut result) })
        };
        unsafe { ffi::duckdb_destroy_result(&mut result) };
        outcome
    }

    /// Prepares one statement. DuckDB's parser, binder and catalog errors come back here.
    pub fn prepare(&self, sql: &str) -> Result<Prepared<'_>, DuckError> {
        let c_sql = c_string(sql)?;
        let mut stmt: ffi::duckdb_prepared_statement = std::ptr::null_mut();
        // SAFETY: valid connection and out-pointer; the statement is destroyed by Prepared.
        let rc = unsafe { ffi::duckdb_prepare(self.raw, c_sql.as_ptr(), &mut stmt) };
        let prepared = Prepared {
            raw: stmt,
            _conn: PhantomData,
        };
        if rc != ffi::duckdb_state_DuckDBSuccess {
            let message = unsafe { borrowed_str(ffi::duckdb_prepare_error(stmt)) };
            return Err(DuckError::other(message));
        }
        Ok(prepared)
    }

    /// Runs a one-value query (one VARCHAR column) with one bound parameter; the first row's
    /// value, `None` for no row or NULL.
    pub fn query_text(&self, sql: &str, param: &Param) -> Result<Option<String>, DuckError> {
        let mut stmt = self.prepare(sql)?;
        stmt.bind(1, param)?;
        let mut result = stmt.execute_streaming()?;
        Ok(result.next_chunk()?.and_then(|chunk| chunk.varchar(0, 0)))
    }

    /// A handle that can interrupt whatever this connection runs, from another thread.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle { raw: self.raw }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: no statement or result borrows self any more (lifetimes).
        unsafe { ffi::duckdb_disconnect(&mut self.raw) };
    }
}

/// Interrupts a connection's running query.
#[derive(Clone, Copy)]
pub struct InterruptHandle {
    raw: ffi::duckdb_connection,
}

// SAFETY: duckdb_interrupt only sets an atomic flag in the connection's client context and is
// meant to be called from another thread.
unsafe impl Send for InterruptHandle {}
unsafe impl Sync for InterruptHandle {}

impl InterruptHandle {
    /// # Safety
    /// The connection must still be open; `QueryControl` detaches the handle (under its lock)
    /// before the connection goes back to the pool.
    pub unsafe fn interrupt(&self) {
        unsafe { ffi::duckdb_interrupt(self.raw) }
    }
}

/// Reads the error of a failed result.
///
/// # Safety
/// `result` must be a result DuckDB filled in.
unsafe fn result_error(result: &mut ffi::duckdb_result) -> DuckError {
    let message = unsafe { borrowed_str(ffi::duckdb_result_error(result)) };
    let kind = if unsafe { ffi::duckdb_result_error_type(result) }
        == ffi::duckdb_error_type_DUCKDB_ERROR_INTERRUPT
    {
        DuckErrorKind::Interrupted
    } else {
        DuckErrorKind::Other
    };
    DuckError { message, kind }
}

/// A value to bind to a prepared statement's parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
}

/// The kinds of statement, as far as the gateway cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// Returns rows: SELECT (incl. VALUES, SHOW, DESCRIBE, SUMMARIZE), EXPLAIN.
    Query,
    /// Anything else (DDL, DML, SET, COPY, ATTACH, ...), named for the error message.
    Other(&'static str),
}

/// A prepared statement.
pub struct Prepared<'c> {
    raw: ffi::duckdb_prepared_statement,
    _conn: PhantomData<&'c Connection>,
}

impl Prepared<'_> {
    pub fn kind(&self) -> StatementKind {
        // SAFETY: raw is a successfully prepared statement.
        let t = unsafe { ffi::duckdb_prepared_statement_type(self.raw) };
        match t {
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN => StatementKind::Query,
            // CALL runs table functions, some with effects (`CHECKPOINT` is `CALL checkpoint()`);
            // the read-only ones are `SELECT * FROM f(…)`.
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL => StatementKind::Other("CALL"),
            // PRAGMA statements can change the connection past `lock_configuration`
            // (enable_profiling, disable_optimizer...); the read-only ones DuckDB rewrites to
            // SELECTs itself (`PRAGMA table_info('t')`).
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA => {
                StatementKind::Other("PRAGMA")
            }
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT => {
                StatementKind::Other("INSERT")
            }
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE => {
                StatementKind::Other("UPDATE")
            }
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE => {
                StatementKind::Other("DELETE")
            }
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE_FUNC => {
                StatementKind::Other("CREATE")
            }
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DROP => StatementKind::Other("DROP"),
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ALTER => StatementKind::Other("ALTER"),
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE => {
                StatementKind::Other("COPY")
            }
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET => {
                StatementKind::Other("SET")
            }
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION => {
                StatementKind::Other("transaction control")
            }
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ATTACH
            | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DETACH => {
                StatementKind::Other("ATTACH/DETACH")
            }
            _ => StatementKind::Other("this kind of"),
        }
    }

    pub fn param_count(&self) -> usize {
        // SAFETY: valid statement.
        unsafe { ffi::duckdb_nparams(self.raw) as usize }
    }

    /// Binds `param` to the 1-based parameter `idx`.
    pub fn bind(&mut self, idx: usize, param: &Param) -> Result<(), DuckError> {
        let i = idx as u64;
        // SAFETY: valid statement; strings are passed with their length.
        let rc = unsafe {
            match param {
                Param::Null => ffi::duckdb_bind_null(self.raw, i),
                Param::Bool(b) => ffi::duckdb_bind_boolean(self.raw, i, *b),
                Param::Int(v) => ffi::duckdb_bind_int64(self.raw, i, *v),
                Param::UInt(v) => ffi::duckdb_bind_uint64(self.raw, i, *v),
                Param::Float(v) => ffi::duckdb_bind_double(self.raw, i, *v),
                Param::Text(s) => {
                    ffi::duckdb_bind_varchar_length(self.raw, i, s.as_ptr().cast(), s.len() as u64)
                }
            }
        };
        if rc != ffi::duckdb_state_DuckDBSuccess {
            let message = unsafe { borrowed_str(ffi::duckdb_prepare_error(self.raw)) };
            let message = if message.is_empty() {
                format!("could not bind parameter ${idx}")
            } else {
                message
            };
            return Err(DuckError::other(message));
        }
        Ok(())
    }

    /// Starts executing in streaming mode: rows are produced as they are fetched.
    pub fn execute_streaming(&mut self) -> Result<Streaming<'_>, DuckError> {
        // SAFETY: zeroed is the documented initial state; the result is destroyed by Streaming.
        let mut result: ffi::duckdb_result = unsafe { std::mem::zeroed() };
        let rc = unsafe { ffi::duckdb_execute_prepared_streaming(self.raw, &mut result) };
        let streaming = Streaming {
            raw: result,
            _stmt: PhantomData,
        };
        if rc != ffi::duckdb_state_DuckDBSuccess {
            let mut s = streaming;
            return Err(unsafe { result_error(&mut s.raw) });
        }
        Ok(streaming)
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        // SAFETY: no result borrows self any more.
        unsafe { ffi::duckdb_destroy_prepare(&mut self.raw) };
    }
}

/// A streaming query result.
pub struct Streaming<'p> {
    raw: ffi::duckdb_result,
    _stmt: PhantomData<&'p mut ()>,
}

impl Streaming<'_> {
    pub fn column_count(&self) -> usize {
        // SAFETY: the result is live. The C API takes a pointer but does not modify it.
        unsafe { ffi::duckdb_column_count(&self.raw as *const _ as *mut _) as usize }
    }

    /// The column's name (copied out of the result).
    pub fn column_name(&self, idx: usize) -> String {
        unsafe {
            borrowed_str(ffi::duckdb_column_name(
                &self.raw as *const _ as *mut _,
                idx as u64,
            ))
        }
    }

    /// The column's type as executed (parameter types resolved).
    pub fn column_type(&self, idx: usize) -> LogicalType {
        LogicalType::from_raw(unsafe {
            ffi::duckdb_column_logical_type(&self.raw as *const _ as *mut _, idx as u64)
        })
    }

    /// The next chunk of rows, `None` at the end. Blocks while DuckDB computes it.
    pub fn next_chunk(&mut self) -> Result<Option<DataChunk>, DuckError> {
        // SAFETY: the result is live; duckdb_fetch_chunk takes the struct by value (it holds a
        // pointer to the internal state).
        let chunk = unsafe { ffi::duckdb_fetch_chunk(self.raw) };
        if chunk.is_null() {
            let has_error = !unsafe { ffi::duckdb_result_error(&mut self.raw) }.is_null();
            return if has_error {
                Err(unsafe { result_error(&mut self.raw) })
            } else {
                Ok(None)
            };
        }
        let chunk = DataChunk { raw: chunk };
        if chunk.is_empty() {
            let has_error = !unsafe { ffi::duckdb_result_error(&mut self.raw) }.is_null();
            if has_error {
                return Err(unsafe { result_error(&mut self.raw) });
            }
            return Ok(None);
        }
        Ok(Some(chunk))
    }
}

impl Drop for Streaming<'_> {
    fn drop(&mut self) {
        // SAFETY: chunks own their data independently of the result.
        unsafe { ffi::duckdb_destroy_result(&mut self.raw) };
    }
}

/// A chunk of up to 2048 rows. Its vectors are flat (DuckDB flattens before handing it out).
pub struct DataChunk {
    raw: ffi::duckdb_data_chunk,
}

// SAFETY: a chunk owns its memory and is used by one thread at a time.
unsafe impl Send for DataChunk {}

impl DataChunk {
    pub fn len(&self) -> usize {
        unsafe { ffi::duckdb_data_chunk_get_size(self.raw) as usize }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vector of column `idx`; valid while `self` lives.
    pub fn vector(&self, idx: usize) -> ffi::duckdb_vector {
        unsafe { ffi::duckdb_data_chunk_get_vector(self.raw, idx as u64) }
    }

    /// The text in row `row` of column `col`, which must be a VARCHAR column; `None` for NULL.
    pub fn varchar(&self, col: usize, row: usize) -> Option<String> {
        if row >= self.len() {
            return None;
        }
        let vector = self.vector(col);
        // SAFETY: `row` is within the chunk; a VARCHAR vector holds 16-byte duckdb_string_t
        // values (inlined up to 12 bytes, else a pointer), valid while the chunk lives.
        unsafe {
            let validity = ffi::duckdb_vector_get_validity(vector);
            if !validity.is_null() && !ffi::duckdb_validity_row_is_valid(validity, row as u64) {
                return None;
            }
            let p = (ffi::duckdb_vector_get_data(vector) as *const u8).add(row * 16);
            let len = (p as *const u32).read_unaligned() as usize;
            let bytes = if len <= 12 {
                std::slice::from_raw_parts(p.add(4), len)
            } else {
                let ptr = (p.add(8) as *const *const u8).read_unaligned();
                std::slice::from_raw_parts(ptr, len)
            };
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

impl Drop for DataChunk {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_destroy_data_chunk(&mut self.raw) };
    }
}

/// An owned DuckDB logical type.
pub struct LogicalType {
    raw: ffi::duckdb_logical_type,
}

impl LogicalType {
    fn from_raw(raw: ffi::duckdb_logical_type) -> Self {
        Self { raw }
    }

    pub fn id(&self) -> ffi::DUCKDB_TYPE {
        if self.raw.is_null() {
            return ffi::DUCKDB_TYPE_DUCKDB_TYPE_INVALID;
        }
        unsafe { ffi::duckdb_get_type_id(self.raw) }
    }

    /// The type's alias (such as `JSON`), if it has one.
    pub fn alias(&self) -> Option<String> {
        let s = unsafe { owned_str(ffi::duckdb_logical_type_get_alias(self.raw)) };
        (!s.is_empty()).then_some(s)
    }

    pub fn decimal_width(&self) -> u8 {
        unsafe { ffi::duckdb_decimal_width(self.raw) }
    }

    pub fn decimal_scale(&self) -> u8 {
        unsafe { ffi::duckdb_decimal_scale(self.raw) }
    }

    pub fn decimal_internal(&self) -> ffi::DUCKDB_TYPE {
        unsafe { ffi::duckdb_decimal_internal_type(self.raw) }
    }

    pub fn enum_internal(&self) -> ffi::DUCKDB_TYPE {
        unsafe { ffi::duckdb_enum_internal_type(self.raw) }
    }

    pub fn enum_values(&self) -> Vec<String> {
        let n = unsafe { ffi::duckdb_enum_dictionary_size(self.raw) } as u64;
        (0..n)
            .map(|i| unsafe { owned_str(ffi::duckdb_enum_dictionary_value(self.raw, i)) })
            .collect()
    }

    pub fn list_child(&self) -> LogicalType {
        Self::from_raw(unsafe { ffi::duckdb_list_type_child_type(self.raw) })
    }

    pub fn array_child(&self) -> LogicalType {
        Self::from_raw(unsafe { ffi::duckdb_array_type_child_type(self.raw) })
    }

    pub fn array_size(&self) -> usize {
        unsafe { ffi::duckdb_array_type_array_size(self.raw) as usize }
    }

    pub fn map_key(&self) -> LogicalType {
        Self::from_raw(unsafe { ffi::duckdb_map_type_key_type(self.raw) })
    }

    pub fn map_value(&self) -> LogicalType {
        Self::from_raw(unsafe { ffi::duckdb_map_type_value_type(self.raw) })
    }

    pub fn struct_children(&self) -> Vec<(String, LogicalType)> {
        let n = unsafe { ffi::duckdb_struct_type_child_count(self.raw) };
        (0..n)
            .map(|i| unsafe {
                (
                    owned_str(ffi::duckdb_struct_type_child_name(self.raw, i)),
                    Self::from_raw(ffi::duckdb_struct_type_child_type(self.raw, i)),
                )
            })
            .collect()
    }

    pub fn union_members(&self) -> Vec<(String, LogicalType)> {
        let n = unsafe { ffi::duckdb_union_type_member_count(self.raw) };
        (0..n)
            .map(|i| unsafe {
                (
                    owned_str(ffi::duckdb_union_type_member_name(self.raw, i)),
                    Self::from_raw(ffi::duckdb_union_type_member_type(self.raw, i)),
                )
            })
            .collect()
    }
}

impl Drop for LogicalType {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            unsafe { ffi::duckdb_destroy_logical_type(&mut self.raw) };
        }
    }
}
