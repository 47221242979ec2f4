//! Safe wrappers over DuckDB's C API (reached through `duckdb::ffi`): the one module that calls
//! it. The engine prepares, binds, runs and interrupts through it; the encoders read data
//! chunks through [`Vector`] and the raw readers in [`values`].
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
//!   (the engine's per-query control) guarantees the connection is alive when calling it.
//! - A [`Vector`] borrows its [`DataChunk`]; the pointers it hands out are valid while the chunk
//!   lives, for rows below the chunk's size (or, for list children, within DuckDB's entries).
//! - Nothing here imports the rest of the crate but [`crate::wire::Param`], the values it binds.
//! - [`arrow`]: results as Arrow (schema and arrays made by DuckDB itself).
//! - A connection keeps its last [`STATEMENT_CACHE`] statements prepared by
//!   [`Connection::prepare_cached`], keyed by their exact text (up to [`KEEP_TEXT_MAX`]
//!   bytes): a repeated query (a dashboard's, the transaction's `BEGIN`) skips DuckDB's
//!   parser, binder and planner. DuckDB re-binds a kept statement itself when a catalog entry
//!   it read changed, or a parameter's type did; its parameters are cleared before it is
//!   handed out again. They are forgotten when the data version moves
//!   ([`Connection::plan_at`]): a kept plan can answer the data as it was.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::path::Path;
use std::sync::Arc;

use duckdb::ffi;

pub use crate::wire::Param;

pub mod arrow;

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
    // SAFETY: not null, and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Copies and frees a C string that DuckDB allocated for the caller.
///
/// # Safety
/// `ptr` must be null or a string allocated by DuckDB for the caller to free.
unsafe fn owned_str(ptr: *mut c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string DuckDB allocated (the caller's contract).
    let s = unsafe { borrowed_str(ptr) };
    // SAFETY: DuckDB allocated it for us to free; it is not used after this.
    unsafe { ffi::duckdb_free(ptr.cast()) };
    s
}

fn c_string(s: &str) -> Result<CString, DuckError> {
    CString::new(s).map_err(|_| DuckError::other("text contains a NUL byte"))
}

/// DuckDB's version, as its `version()` answers (`v1.5.5`).
pub fn library_version() -> String {
    // SAFETY: DuckDB returns a pointer to a static NUL-terminated string, never freed.
    let raw = unsafe { ffi::duckdb_library_version() };
    if raw.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated and static (above).
    unsafe { CStr::from_ptr(raw) }
        .to_string_lossy()
        .into_owned()
}

/// One DuckDB database instance (one tenant file), shared by all its connections.
pub struct Database {
    raw: ffi::duckdb_database,
}

// SAFETY: a DuckDB database instance is internally synchronized; the C API allows connecting
// to it from any thread.
unsafe impl Send for Database {}
// SAFETY: as above: `&Database` only connects, which DuckDB synchronizes.
unsafe impl Sync for Database {}

impl Database {
    /// Opens the database at `path`, creating the file if it does not exist (callers check
    /// that it does: a request never creates a tenant).
    pub fn open(path: &Path) -> Result<Arc<Self>, DuckError> {
        let c_path = c_string(&path.to_string_lossy())?;
        let mut db: ffi::duckdb_database = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: `c_path` is NUL-terminated and outlives the call; `db` and `err` are
        // out-pointers to locals; a null config means DuckDB's defaults.
        let rc = unsafe {
            ffi::duckdb_open_ext(c_path.as_ptr(), &mut db, std::ptr::null_mut(), &mut err)
        };
        if rc != ffi::duckdb_state_DuckDBSuccess {
            // SAFETY: on failure `err` is null or a message DuckDB allocated for us to free.
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
            statements: RefCell::new(Vec::new()),
            planned_at: Cell::new(None),
            _db: Arc::clone(self),
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: every connection holds an Arc<Database>, so none is left; closed once.
        unsafe { ffi::duckdb_close(&mut self.raw) };
    }
}

/// One connection: the unit the pool hands out. Used by one thread at a time.
pub struct Connection {
    raw: ffi::duckdb_connection,
    /// Statements kept prepared, most recently used first (see [`Connection::prepare_cached`]);
    /// one that is handed out is not in here until its [`Prepared`] drops.
    statements: RefCell<Vec<(Box<str>, ffi::duckdb_prepared_statement)>>,
    /// The data version the kept statements were planned at ([`Connection::plan_at`]).
    planned_at: Cell<Option<u64>>,
    _db: Arc<Database>,
}

/// How many prepared statements a connection keeps. A kept statement holds its plan (a few
/// KiB for a dashboard's query), and the pool holds up to `pool_size` connections per tenant.
pub const STATEMENT_CACHE: usize = 8;

/// Longer texts are prepared but not kept: a plan grows with its text (a list of ten
/// thousand literals), and what a connection keeps should stay small whatever clients send.
pub const KEEP_TEXT_MAX: usize = 16 * 1024;

// SAFETY: a connection may move between threads; it is never used by two at once (not Sync).
unsafe impl Send for Connection {}

impl Connection {
    /// Runs statements for their side effects (settings), discarding any result.
    pub fn execute_batch(&self, sql: &str) -> Result<(), DuckError> {
        let c_sql = c_string(sql)?;
        // SAFETY: the connection is open, `c_sql` is NUL-terminated; duckdb_query fills the
        // result in.
        unsafe { discarding(|result| ffi::duckdb_query(self.raw, c_sql.as_ptr(), result)) }
    }

    /// Prepares one statement. DuckDB's parser, binder and catalog errors come back here.
    pub fn prepare(&self, sql: &str) -> Result<Prepared<'_>, DuckError> {
        let c_sql = c_string(sql)?;
        let mut stmt: ffi::duckdb_prepared_statement = std::ptr::null_mut();
        // SAFETY: valid connection and out-pointer; the statement is destroyed by Prepared
        // (also when preparing failed: DuckDB then still allocates one holding the error).
        let rc = unsafe { ffi::duckdb_prepare(self.raw, c_sql.as_ptr(), &mut stmt) };
        let prepared = Prepared {
            raw: stmt,
            conn: self,
            keep_as: None,
        };
        if rc != ffi::duckdb_state_DuckDBSuccess {
            // SAFETY: the error string belongs to the statement, alive until `prepared` drops.
            let message = unsafe { borrowed_str(ffi::duckdb_prepare_error(stmt)) };
            return Err(DuckError::other(message));
        }
        Ok(prepared)
    }

    /// [`Connection::prepare`], but a statement this connection prepared from the same text
    /// before is reused (its parameters cleared), and the returned one is kept when it drops.
    /// A statement that failed to prepare, or whose text is longer than [`KEEP_TEXT_MAX`], is
    /// never kept.
    pub fn prepare_cached(&self, sql: &str) -> Result<Prepared<'_>, DuckError> {
        if sql.len() > KEEP_TEXT_MAX {
            return self.prepare(sql);
        }
        let kept = {
            let mut statements = self.statements.borrow_mut();
            let found = statements.iter().position(|(text, _)| **text == *sql);
            found.map(|i| statements.remove(i))
        };
        if let Some((text, raw)) = kept {
            // SAFETY: a statement this connection prepared successfully, owned by the cache
            // until now; no result of it is alive (its last `Prepared` dropped).
            unsafe { ffi::duckdb_clear_bindings(raw) };
            return Ok(Prepared {
                raw,
                conn: self,
                keep_as: Some(text),
            });
        }
        let mut prepared = self.prepare(sql)?;
        prepared.keep_as = Some(sql.into());
        Ok(prepared)
    }

    /// Runs one statement without parameters through [`Connection::prepare_cached`],
    /// discarding its result: the transaction's `BEGIN` and `ROLLBACK` of every query.
    pub fn execute_cached(&self, sql: &str) -> Result<(), DuckError> {
        let stmt = self.prepare_cached(sql)?;
        // SAFETY: a prepared statement without parameters; duckdb_execute_prepared fills the
        // result in.
        unsafe { discarding(|result| ffi::duckdb_execute_prepared(stmt.raw, result)) }
    }

    /// Says which data `version` the next statements read: the kept ones are forgotten if it
    /// is not the one they were planned at. DuckDB binds a kept statement again after a
    /// catalog change, not after rows were added, and a tenant's kept `SELECT count(*) FROM t`
    /// was seen answering the count from before an append, at every later version
    /// (`tests/api/datasets.rs`); planned again, it counts the rows there are.
    pub fn plan_at(&self, version: u64) {
        if self.planned_at.replace(Some(version)) == Some(version) {
            return;
        }
        for (_, mut raw) in self.statements.borrow_mut().drain(..) {
            // SAFETY: owned by the cache alone (handed-out statements are not in it).
            unsafe { ffi::duckdb_destroy_prepare(&mut raw) };
        }
    }

    /// Takes `raw` back into the cache, first; the least recently used beyond
    /// [`STATEMENT_CACHE`] is destroyed.
    fn keep(&self, text: Box<str>, raw: ffi::duckdb_prepared_statement) {
        let mut statements = self.statements.borrow_mut();
        statements.insert(0, (text, raw));
        while statements.len() > STATEMENT_CACHE {
            if let Some((_, mut old)) = statements.pop() {
                // SAFETY: owned by the cache alone (handed-out statements are not in it).
                unsafe { ffi::duckdb_destroy_prepare(&mut old) };
            }
        }
    }

    /// Runs a one-value query (one VARCHAR column) with one bound parameter; the first row's
    /// value, `None` for no row or NULL.
    /// Its text is the gateway's own (a parameter carries what varies): kept prepared.
    pub fn query_text(&self, sql: &str, param: &Param) -> Result<Option<String>, DuckError> {
        let mut stmt = self.prepare_cached(sql)?;
        stmt.bind(1, param)?;
        let mut result = stmt.execute_streaming()?;
        Ok(result.next_chunk()?.and_then(|chunk| chunk.varchar(0, 0)))
    }

    /// Runs a small query whose columns are all VARCHAR and returns every row (NULL: `None`).
    /// For the gateway's own catalog reads, never for client SQL.
    pub fn query_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DuckError> {
        let mut stmt = self.prepare(sql)?;
        let mut result = stmt.execute_streaming()?;
        let columns = result.column_count();
        let mut rows = Vec::new();
        while let Some(chunk) = result.next_chunk()? {
            for row in 0..chunk.len() {
                rows.push((0..columns).map(|c| chunk.varchar(c, row)).collect());
            }
        }
        Ok(rows)
    }

    /// A handle that can interrupt whatever this connection runs, from another thread.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle { raw: self.raw }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for (_, mut raw) in self.statements.get_mut().drain(..) {
            // SAFETY: kept statements belong to the cache alone; destroyed once, before their
            // connection.
            unsafe { ffi::duckdb_destroy_prepare(&mut raw) };
        }
        // SAFETY: no statement or result borrows self any more (lifetimes); disconnected once.
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
// SAFETY: as above; the handle has no other use.
unsafe impl Sync for InterruptHandle {}

/// How far DuckDB is with a connection's running query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryProgress {
    pub rows_processed: u64,
    /// `None` while DuckDB does not know.
    pub total_rows: Option<u64>,
    /// 0…100; `None` while DuckDB does not know.
    pub percentage: Option<f64>,
}

impl InterruptHandle {
    /// DuckDB's progress of the running query (needs `enable_progress_bar`, set by the init
    /// hook).
    ///
    /// # Safety
    /// As for [`InterruptHandle::interrupt`]: the connection must still be open.
    pub unsafe fn progress(&self) -> QueryProgress {
        // SAFETY: the connection is open (the caller's contract); DuckDB reads the progress of
        // the running query for other threads (its clients poll it while the query runs).
        let p = unsafe { ffi::duckdb_query_progress(self.raw) };
        QueryProgress {
            rows_processed: p.rows_processed,
            total_rows: (p.total_rows_to_process > 0).then_some(p.total_rows_to_process),
            percentage: (p.percentage >= 0.0).then_some(p.percentage.min(100.0)),
        }
    }

    /// # Safety
    /// The connection must still be open; the engine's per-query control detaches the handle
    /// (under its lock) before the connection goes back to the pool.
    pub unsafe fn interrupt(&self) {
        // SAFETY: the connection is open (the caller's contract); interrupting is thread-safe.
        unsafe { ffi::duckdb_interrupt(self.raw) }
    }
}

/// Runs `call` into a fresh result and destroys it: `Ok`, or DuckDB's error.
///
/// # Safety
/// `call` must fill in the result it is given (as `duckdb_query` and `duckdb_execute_prepared`
/// do, also when they fail).
unsafe fn discarding(
    call: impl FnOnce(*mut ffi::duckdb_result) -> ffi::duckdb_state,
) -> Result<(), DuckError> {
    // SAFETY: an all-zero duckdb_result is the documented initial state.
    let mut result: ffi::duckdb_result = unsafe { std::mem::zeroed() };
    let rc = call(&mut result);
    let outcome = if rc == ffi::duckdb_state_DuckDBSuccess {
        Ok(())
    } else {
        // SAFETY: `call` filled `result` in (with its error), the caller's contract.
        Err(unsafe { result_error(&mut result) })
    };
    // SAFETY: filled in by `call`, destroyed once.
    unsafe { ffi::duckdb_destroy_result(&mut result) };
    outcome
}

/// Reads the error of a failed result.
///
/// # Safety
/// `result` must be a result DuckDB filled in.
unsafe fn result_error(result: &mut ffi::duckdb_result) -> DuckError {
    // SAFETY: a filled-in result (the caller's contract); the message belongs to it.
    let message = unsafe { borrowed_str(ffi::duckdb_result_error(result)) };
    // SAFETY: as above.
    let kind = if unsafe { ffi::duckdb_result_error_type(result) }
        == ffi::duckdb_error_type_DUCKDB_ERROR_INTERRUPT
    {
        DuckErrorKind::Interrupted
    } else {
        DuckErrorKind::Other
    };
    DuckError { message, kind }
}

/// The kinds of statement, as far as the gateway cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// Returns rows: SELECT (incl. VALUES, SHOW, DESCRIBE, SUMMARIZE).
    Query,
    /// `EXPLAIN …`: returns the plan (and with `ANALYZE`, runs the statement first).
    Explain,
    /// Anything else (DDL, DML, SET, COPY, ATTACH, ...), named for the error message.
    Other(&'static str),
}

/// A prepared statement.
pub struct Prepared<'c> {
    raw: ffi::duckdb_prepared_statement,
    conn: &'c Connection,
    /// Given back to `conn`'s cache under this text when dropped ([`Connection::prepare_cached`]).
    keep_as: Option<Box<str>>,
}

impl Prepared<'_> {
    pub fn kind(&self) -> StatementKind {
        // SAFETY: raw is a successfully prepared statement (`prepare` returns no other).
        let t = unsafe { ffi::duckdb_prepared_statement_type(self.raw) };
        match t {
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT => StatementKind::Query,
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN => StatementKind::Explain,
            // CALL runs table functions, some with effects (`CHECKPOINT` is `CALL checkpoint()`);
            // the read-only ones are `SELECT * FROM f(…)`.
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL => StatementKind::Other("CALL"),
            // PRAGMA statements can change the connection's settings (enable_profiling,
            // disable_optimizer...); the read-only ones DuckDB rewrites to
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
        // SAFETY: a successfully prepared statement.
        unsafe { ffi::duckdb_nparams(self.raw) as usize }
    }

    /// The type DuckDB gave the 1-based parameter `idx` while preparing (from its use: `$1 +
    /// 1`, `$1::DATE`); INVALID for one it could not tell (a bare `SELECT $1`), or past the
    /// count.
    pub fn param_type(&self, idx: usize) -> LogicalType {
        // SAFETY: a successfully prepared statement; DuckDB answers null for an index out of
        // range, which `LogicalType` reads as INVALID. The type is ours to destroy.
        LogicalType::from_raw(unsafe { ffi::duckdb_param_logical_type(self.raw, idx as u64) })
    }

    /// The number of columns the statement's result has, known before it runs.
    pub fn column_count(&self) -> usize {
        // SAFETY: a successfully prepared statement.
        unsafe { ffi::duckdb_prepared_statement_column_count(self.raw) as usize }
    }

    /// The 0-based column's name, as the result will have it (empty past the count).
    pub fn column_name(&self, idx: usize) -> String {
        // SAFETY: a successfully prepared statement; DuckDB answers null past the count, and
        // otherwise a copy (`strdup`) for us to free.
        unsafe {
            owned_str(ffi::duckdb_prepared_statement_column_name(self.raw, idx as u64).cast_mut())
        }
    }

    /// The 0-based column's type as prepared: a column that depends on a parameter DuckDB
    /// could not type is UNKNOWN until the parameter is bound.
    pub fn column_type(&self, idx: usize) -> LogicalType {
        // SAFETY: a successfully prepared statement; null past the count (INVALID). The type
        // is ours to destroy.
        LogicalType::from_raw(unsafe {
            ffi::duckdb_prepared_statement_column_logical_type(self.raw, idx as u64)
        })
    }

    /// Binds `param` to the 1-based parameter `idx`. A number is bound in the type DuckDB
    /// gave the parameter when it fits it (an INTEGER parameter gets an INTEGER value): a
    /// value of another type makes DuckDB bind the statement again with that type, and its
    /// columns could then differ from the ones it was described with.
    pub fn bind(&mut self, idx: usize, param: &Param) -> Result<(), DuckError> {
        let i = idx as u64;
        // SAFETY: a prepared statement; DuckDB answers INVALID for an index out of range.
        let typed = unsafe { ffi::duckdb_param_type(self.raw, i) };
        // SAFETY: a prepared statement; DuckDB checks `i` against its parameter count; strings
        // are passed with their length and copied by DuckDB before the call returns.
        let rc = unsafe {
            match param {
                Param::Null => ffi::duckdb_bind_null(self.raw, i),
                Param::Bool(b) => ffi::duckdb_bind_boolean(self.raw, i, *b),
                Param::Int(v) => match typed {
                    type_id::INTEGER if i32::try_from(*v).is_ok() => {
                        ffi::duckdb_bind_int32(self.raw, i, *v as i32)
                    }
                    type_id::SMALLINT if i16::try_from(*v).is_ok() => {
                        ffi::duckdb_bind_int16(self.raw, i, *v as i16)
                    }
                    type_id::TINYINT if i8::try_from(*v).is_ok() => {
                        ffi::duckdb_bind_int8(self.raw, i, *v as i8)
                    }
                    _ => ffi::duckdb_bind_int64(self.raw, i, *v),
                },
                Param::UInt(v) => ffi::duckdb_bind_uint64(self.raw, i, *v),
                Param::Float(v) if typed == type_id::FLOAT => {
                    ffi::duckdb_bind_float(self.raw, i, *v as f32)
                }
                Param::Float(v) => ffi::duckdb_bind_double(self.raw, i, *v),
                Param::Text(s) => {
                    ffi::duckdb_bind_varchar_length(self.raw, i, s.as_ptr().cast(), s.len() as u64)
                }
            }
        };
        if rc != ffi::duckdb_state_DuckDBSuccess {
            // SAFETY: the statement owns its error string, alive while `self` is.
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
        // SAFETY: an all-zero duckdb_result is the documented initial state.
        let mut result: ffi::duckdb_result = unsafe { std::mem::zeroed() };
        // SAFETY: a prepared statement with its parameters bound; `result` is a local that
        // `Streaming` destroys.
        let rc = unsafe { ffi::duckdb_execute_prepared_streaming(self.raw, &mut result) };
        let mut streaming = Streaming {
            raw: result,
            _stmt: PhantomData,
        };
        if rc != ffi::duckdb_state_DuckDBSuccess {
            // SAFETY: DuckDB filled the result in with its error.
            return Err(unsafe { result_error(&mut streaming.raw) });
        }
        Ok(streaming)
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        if let Some(text) = self.keep_as.take() {
            self.conn.keep(text, self.raw);
            return;
        }
        // SAFETY: no result borrows self any more (lifetimes); destroyed once.
        unsafe { ffi::duckdb_destroy_prepare(&mut self.raw) };
    }
}

/// A streaming query result.
pub struct Streaming<'p> {
    raw: ffi::duckdb_result,
    _stmt: PhantomData<&'p mut ()>,
}

impl Streaming<'_> {
    /// The result as the C API's getters take it: they ask for `*mut` but do not modify it.
    fn as_ptr(&self) -> *mut ffi::duckdb_result {
        &self.raw as *const _ as *mut _
    }

    pub fn column_count(&self) -> usize {
        // SAFETY: the result is live.
        unsafe { ffi::duckdb_column_count(self.as_ptr()) as usize }
    }

    /// The column's name (copied out of the result).
    pub fn column_name(&self, idx: usize) -> String {
        // SAFETY: the result is live; DuckDB returns null for an index out of range, and the
        // name belongs to the result.
        unsafe { borrowed_str(ffi::duckdb_column_name(self.as_ptr(), idx as u64)) }
    }

    /// The column's type as executed (parameter types resolved).
    pub fn column_type(&self, idx: usize) -> LogicalType {
        // SAFETY: the result is live; the returned type is ours to destroy (LogicalType's Drop).
        LogicalType::from_raw(unsafe { ffi::duckdb_column_logical_type(self.as_ptr(), idx as u64) })
    }

    /// The next chunk of rows, `None` at the end. Blocks while DuckDB computes it.
    pub fn next_chunk(&mut self) -> Result<Option<DataChunk>, DuckError> {
        // SAFETY: the result is live; duckdb_fetch_chunk takes the struct by value (it holds a
        // pointer to the internal state); the chunk is ours to destroy (DataChunk's Drop).
        let chunk = unsafe { ffi::duckdb_fetch_chunk(self.raw) };
        let chunk = (!chunk.is_null()).then_some(DataChunk { raw: chunk });
        if chunk.as_ref().is_some_and(|c| !c.is_empty()) {
            return Ok(chunk);
        }
        // No chunk, or an empty one: the end, or an error.
        // SAFETY: the result is live; its error is null unless the query failed.
        let has_error = !unsafe { ffi::duckdb_result_error(&mut self.raw) }.is_null();
        if has_error {
            // SAFETY: a result DuckDB filled in with an error.
            return Err(unsafe { result_error(&mut self.raw) });
        }
        Ok(None)
    }
}

impl Drop for Streaming<'_> {
    fn drop(&mut self) {
        // SAFETY: chunks own their data independently of the result; destroyed once.
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
        // SAFETY: a live chunk.
        unsafe { ffi::duckdb_data_chunk_get_size(self.raw) as usize }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vector of column `idx`, or `None` past the last column.
    pub fn vector(&self, idx: usize) -> Option<Vector<'_>> {
        // SAFETY: a live chunk.
        let columns = unsafe { ffi::duckdb_data_chunk_get_column_count(self.raw) } as usize;
        if idx >= columns {
            return None;
        }
        // SAFETY: a live chunk and a column index below its column count; the vector
        // belongs to the chunk, which the returned `Vector` borrows.
        let raw = unsafe { ffi::duckdb_data_chunk_get_vector(self.raw, idx as u64) };
        Some(Vector {
            raw,
            _chunk: PhantomData,
        })
    }

    /// The text in row `row` of column `col`, which must be a VARCHAR column; `None` for NULL
    /// (or a row or column that does not exist).
    pub fn varchar(&self, col: usize, row: usize) -> Option<String> {
        if row >= self.len() {
            return None;
        }
        let vector = self.vector(col)?;
        // SAFETY: `row` is below the chunk's size, the vector lives as long as the chunk, and
        // the column is a VARCHAR (the caller's query selects one).
        unsafe {
            if !values::is_valid(vector.validity(), row) {
                return None;
            }
            let bytes = values::string_at(vector.data(), row);
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

impl Drop for DataChunk {
    fn drop(&mut self) {
        // SAFETY: fetched by us, destroyed once; no `Vector` borrows it any more (lifetimes).
        unsafe { ffi::duckdb_destroy_data_chunk(&mut self.raw) };
    }
}

/// One column of a [`DataChunk`] (or a child of one), for the encoders: where its values
/// and validity mask are, and its children for nested types.
#[derive(Clone, Copy)]
pub struct Vector<'c> {
    raw: ffi::duckdb_vector,
    _chunk: PhantomData<&'c DataChunk>,
}

impl<'c> Vector<'c> {
    /// The values, laid out as DuckDB's physical type for the column (read with [`values`]).
    pub fn data(&self) -> *const u8 {
        // SAFETY: a vector of a live chunk (the borrow); the data lives as long as the chunk.
        unsafe { ffi::duckdb_vector_get_data(self.raw) as *const u8 }
    }

    /// The validity mask (one bit per row, set = valid), or null when every row is valid.
    pub fn validity(&self) -> *const u64 {
        // SAFETY: as for `data`.
        unsafe { ffi::duckdb_vector_get_validity(self.raw) }
    }

    /// The child vector of a LIST or MAP vector (MAP: a STRUCT of key and value).
    ///
    /// # Safety
    /// `self` must be a LIST or MAP vector.
    pub unsafe fn list_child(&self) -> Vector<'c> {
        // SAFETY: a LIST/MAP vector of a live chunk (the caller's contract); the child
        // belongs to it.
        self.wrap(unsafe { ffi::duckdb_list_vector_get_child(self.raw) })
    }

    /// The child vector of an ARRAY vector.
    ///
    /// # Safety
    /// `self` must be an ARRAY vector.
    pub unsafe fn array_child(&self) -> Vector<'c> {
        // SAFETY: an ARRAY vector of a live chunk (the caller's contract).
        self.wrap(unsafe { ffi::duckdb_array_vector_get_child(self.raw) })
    }

    /// Field `idx` of a STRUCT vector (a UNION is a STRUCT whose field 0 holds the tags).
    ///
    /// # Safety
    /// `self` must be a STRUCT (or UNION) vector with more than `idx` fields.
    pub unsafe fn struct_child(&self, idx: usize) -> Vector<'c> {
        // SAFETY: a STRUCT vector with a field `idx` (the caller's contract).
        self.wrap(unsafe { ffi::duckdb_struct_vector_get_child(self.raw, idx as u64) })
    }

    fn wrap(&self, raw: ffi::duckdb_vector) -> Vector<'c> {
        Vector {
            raw,
            _chunk: PhantomData,
        }
    }
}

/// Readers of one value in a flat vector's data, by physical type: the layouts of DuckDB's
/// C API (`duckdb.h`), decoded in this one place.
///
/// The contract of every reader: `data`/`validity` come from a live [`Vector`] whose physical
/// type is the one read, and `row` is a row of it: below the chunk's size, or for a list child,
/// inside the range a list entry of its parent gives.
pub mod values {
    use duckdb::ffi;

    /// Whether `row` is valid (not NULL).
    ///
    /// # Safety
    /// The module's contract: a live vector of this physical type, and a row of it.
    #[inline(always)]
    pub unsafe fn is_valid(validity: *const u64, row: usize) -> bool {
        // SAFETY: the mask has a bit for every row of the vector (the module's contract).
        validity.is_null() || unsafe { (*validity.add(row / 64) >> (row % 64)) & 1 == 1 }
    }

    /// A fixed-width value (`T` is the column's physical type).
    ///
    /// # Safety
    /// The module's contract: a live vector of this physical type, and a row of it.
    #[inline(always)]
    pub unsafe fn get<T: Copy>(data: *const u8, row: usize) -> T {
        // SAFETY: `row` is within the vector and `T` its physical type (the module's
        // contract); unaligned reads make no assumption about DuckDB's alignment.
        unsafe { (data as *const T).add(row).read_unaligned() }
    }

    /// The bytes of a VARCHAR, BLOB or BIT value: a 16-byte `duckdb_string_t`, its length
    /// first, then the bytes inline (up to 12) or a prefix and a pointer to them.
    ///
    /// # Safety
    /// The module's contract: a live vector of this physical type, and a row of it.
    #[inline(always)]
    pub unsafe fn string_at<'a>(data: *const u8, row: usize) -> &'a [u8] {
        // SAFETY: row `row` of a string vector holds a `duckdb_string_t` (the module's
        // contract); the bytes it points to live as long as the vector.
        unsafe {
            let p = data.add(row * 16);
            let len = (p as *const u32).read_unaligned() as usize;
            if len <= 12 {
                std::slice::from_raw_parts(p.add(4), len)
            } else {
                let ptr = (p.add(8) as *const *const u8).read_unaligned();
                std::slice::from_raw_parts(ptr, len)
            }
        }
    }

    /// A HUGEINT (or a DECIMAL stored as one).
    ///
    /// # Safety
    /// The module's contract: a live vector of this physical type, and a row of it.
    #[inline(always)]
    pub unsafe fn i128_at(data: *const u8, row: usize) -> i128 {
        // SAFETY: a HUGEINT vector (the module's contract).
        let h: ffi::duckdb_hugeint = unsafe { get(data, row) };
        ((h.upper as i128) << 64) | h.lower as i128
    }

    /// A UHUGEINT.
    ///
    /// # Safety
    /// The module's contract: a live vector of this physical type, and a row of it.
    #[inline(always)]
    pub unsafe fn u128_at(data: *const u8, row: usize) -> u128 {
        // SAFETY: a UHUGEINT vector (the module's contract).
        let h: ffi::duckdb_uhugeint = unsafe { get(data, row) };
        ((h.upper as u128) << 64) | h.lower as u128
    }

    /// A UUID, as DuckDB stores it: a HUGEINT whose top bit is flipped, as `(lower, upper)`.
    ///
    /// # Safety
    /// The module's contract: a live vector of this physical type, and a row of it.
    #[inline(always)]
    pub unsafe fn uuid_at(data: *const u8, row: usize) -> (u64, i64) {
        // SAFETY: a UUID vector, stored as a HUGEINT (the module's contract).
        let h: ffi::duckdb_hugeint = unsafe { get(data, row) };
        (h.lower, h.upper)
    }

    /// A LIST or MAP entry: `(offset, length)` of its values in the child vector.
    ///
    /// # Safety
    /// The module's contract: a live vector of this physical type, and a row of it.
    #[inline(always)]
    pub unsafe fn list_entry_at(data: *const u8, row: usize) -> (usize, usize) {
        // SAFETY: a LIST/MAP vector (the module's contract).
        let e: ffi::duckdb_list_entry = unsafe { get(data, row) };
        (e.offset as usize, e.length as usize)
    }

    /// An INTERVAL: `(months, days, micros)`.
    ///
    /// # Safety
    /// The module's contract: a live vector of this physical type, and a row of it.
    #[inline(always)]
    pub unsafe fn interval_at(data: *const u8, row: usize) -> (i32, i32, i64) {
        // SAFETY: an INTERVAL vector (the module's contract).
        let iv: ffi::duckdb_interval = unsafe { get(data, row) };
        (iv.months, iv.days, iv.micros)
    }

    /// A TIME WITH TIME ZONE: `(microseconds of the day, offset in seconds)`.
    ///
    /// # Safety
    /// The module's contract: a live vector of this physical type, and a row of it.
    #[inline(always)]
    pub unsafe fn time_tz_at(data: *const u8, row: usize) -> (i64, i32) {
        // SAFETY: a TIME_TZ vector (the module's contract).
        let bits: u64 = unsafe { get(data, row) };
        // SAFETY: a pure function of the value's bits.
        let tz = unsafe { ffi::duckdb_from_time_tz(ffi::duckdb_time_tz { bits }) };
        let t = tz.time;
        let micros = ((i64::from(t.hour) * 60 + i64::from(t.min)) * 60 + i64::from(t.sec))
            * 1_000_000
            + i64::from(t.micros);
        (micros, tz.offset)
    }
}

/// DuckDB's type ids (`DUCKDB_TYPE`), under short names.
pub mod type_id {
    pub use duckdb::ffi::DUCKDB_TYPE as TypeId;
    pub use duckdb::ffi::{
        DUCKDB_TYPE_DUCKDB_TYPE_ARRAY as ARRAY, DUCKDB_TYPE_DUCKDB_TYPE_BIGINT as BIGINT,
        DUCKDB_TYPE_DUCKDB_TYPE_BIGNUM as BIGNUM, DUCKDB_TYPE_DUCKDB_TYPE_BIT as BIT,
        DUCKDB_TYPE_DUCKDB_TYPE_BLOB as BLOB, DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN as BOOLEAN,
        DUCKDB_TYPE_DUCKDB_TYPE_DATE as DATE, DUCKDB_TYPE_DUCKDB_TYPE_DECIMAL as DECIMAL,
        DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE as DOUBLE, DUCKDB_TYPE_DUCKDB_TYPE_ENUM as ENUM,
        DUCKDB_TYPE_DUCKDB_TYPE_FLOAT as FLOAT, DUCKDB_TYPE_DUCKDB_TYPE_GEOMETRY as GEOMETRY,
        DUCKDB_TYPE_DUCKDB_TYPE_HUGEINT as HUGEINT, DUCKDB_TYPE_DUCKDB_TYPE_INTEGER as INTEGER,
        DUCKDB_TYPE_DUCKDB_TYPE_INTERVAL as INTERVAL, DUCKDB_TYPE_DUCKDB_TYPE_INVALID as INVALID,
        DUCKDB_TYPE_DUCKDB_TYPE_LIST as LIST, DUCKDB_TYPE_DUCKDB_TYPE_MAP as MAP,
        DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT as SMALLINT, DUCKDB_TYPE_DUCKDB_TYPE_SQLNULL as SQLNULL,
        DUCKDB_TYPE_DUCKDB_TYPE_STRUCT as STRUCT, DUCKDB_TYPE_DUCKDB_TYPE_TIME as TIME,
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP as TIMESTAMP,
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_MS as TIMESTAMP_MS,
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_NS as TIMESTAMP_NS,
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_S as TIMESTAMP_S,
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_TZ as TIMESTAMP_TZ,
        DUCKDB_TYPE_DUCKDB_TYPE_TIME_NS as TIME_NS, DUCKDB_TYPE_DUCKDB_TYPE_TIME_TZ as TIME_TZ,
        DUCKDB_TYPE_DUCKDB_TYPE_TINYINT as TINYINT, DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT as UBIGINT,
        DUCKDB_TYPE_DUCKDB_TYPE_UHUGEINT as UHUGEINT, DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER as UINTEGER,
        DUCKDB_TYPE_DUCKDB_TYPE_UNION as UNION, DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT as USMALLINT,
        DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT as UTINYINT, DUCKDB_TYPE_DUCKDB_TYPE_UUID as UUID,
        DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR as VARCHAR, DUCKDB_TYPE_DUCKDB_TYPE_VARIANT as VARIANT,
    };
}

use type_id::TypeId;

/// An owned DuckDB logical type.
pub struct LogicalType {
    raw: ffi::duckdb_logical_type,
}

impl LogicalType {
    /// Takes ownership of `raw` (null stands for "no type": its id is INVALID).
    fn from_raw(raw: ffi::duckdb_logical_type) -> Self {
        Self { raw }
    }

    pub fn id(&self) -> TypeId {
        if self.raw.is_null() {
            return type_id::INVALID;
        }
        // SAFETY: a live, non-null logical type.
        unsafe { ffi::duckdb_get_type_id(self.raw) }
    }

    /// The type's alias (such as `JSON`), if it has one.
    pub fn alias(&self) -> Option<String> {
        if self.raw.is_null() {
            return None;
        }
        // SAFETY: a live logical type; the alias (or null) is allocated for us to free.
        let s = unsafe { owned_str(ffi::duckdb_logical_type_get_alias(self.raw)) };
        (!s.is_empty()).then_some(s)
    }

    /// Width of a DECIMAL (DuckDB answers 0 for other types).
    pub fn decimal_width(&self) -> u8 {
        // SAFETY: a live logical type; DuckDB checks the type id itself.
        unsafe { ffi::duckdb_decimal_width(self.raw) }
    }

    /// Scale of a DECIMAL (0 for other types).
    pub fn decimal_scale(&self) -> u8 {
        // SAFETY: as for `decimal_width`.
        unsafe { ffi::duckdb_decimal_scale(self.raw) }
    }

    /// The physical type a DECIMAL is stored as (INVALID for other types).
    pub fn decimal_internal(&self) -> TypeId {
        // SAFETY: as for `decimal_width`.
        unsafe { ffi::duckdb_decimal_internal_type(self.raw) }
    }

    /// The physical type an ENUM is stored as (INVALID for other types).
    pub fn enum_internal(&self) -> TypeId {
        // SAFETY: a live logical type; DuckDB checks the type id itself.
        unsafe { ffi::duckdb_enum_internal_type(self.raw) }
    }

    /// An ENUM's values, in dictionary order (empty for other types).
    pub fn enum_values(&self) -> Vec<String> {
        // SAFETY: a live logical type; 0 for a type that is not an ENUM.
        let n = unsafe { ffi::duckdb_enum_dictionary_size(self.raw) } as u64;
        (0..n)
            // SAFETY: `i` is below the dictionary size; each value is ours to free.
            .map(|i| unsafe { owned_str(ffi::duckdb_enum_dictionary_value(self.raw, i)) })
            .collect()
    }

    /// The coordinate reference system of a GEOMETRY type (`EPSG:4326`), if it has one.
    pub fn geometry_crs(&self) -> Option<String> {
        if self.id() != type_id::GEOMETRY {
            return None;
        }
        // SAFETY: a live GEOMETRY type; the CRS (or null) is allocated for us to free.
        let crs = unsafe { owned_str(ffi::duckdb_geometry_type_get_crs(self.raw)) };
        (!crs.is_empty()).then_some(crs)
    }

    /// A LIST's element type.
    pub fn list_child(&self) -> LogicalType {
        // SAFETY: a live logical type; DuckDB answers null for other types, which `id` reads
        // as INVALID. The child is ours to destroy.
        Self::from_raw(unsafe { ffi::duckdb_list_type_child_type(self.raw) })
    }

    /// An ARRAY's element type.
    pub fn array_child(&self) -> LogicalType {
        // SAFETY: as for `list_child`.
        Self::from_raw(unsafe { ffi::duckdb_array_type_child_type(self.raw) })
    }

    /// An ARRAY's fixed size (0 for other types).
    pub fn array_size(&self) -> usize {
        // SAFETY: a live logical type; DuckDB checks the type id itself.
        unsafe { ffi::duckdb_array_type_array_size(self.raw) as usize }
    }

    /// A MAP's key type.
    pub fn map_key(&self) -> LogicalType {
        // SAFETY: as for `list_child`.
        Self::from_raw(unsafe { ffi::duckdb_map_type_key_type(self.raw) })
    }

    /// A MAP's value type.
    pub fn map_value(&self) -> LogicalType {
        // SAFETY: as for `list_child`.
        Self::from_raw(unsafe { ffi::duckdb_map_type_value_type(self.raw) })
    }

    /// A STRUCT's fields, with their names (empty for other types).
    pub fn struct_children(&self) -> Vec<(String, LogicalType)> {
        self.named_children(
            ffi::duckdb_struct_type_child_count,
            ffi::duckdb_struct_type_child_name,
            ffi::duckdb_struct_type_child_type,
        )
    }

    /// A UNION's members, with their names (empty for other types).
    pub fn union_members(&self) -> Vec<(String, LogicalType)> {
        self.named_children(
            ffi::duckdb_union_type_member_count,
            ffi::duckdb_union_type_member_name,
            ffi::duckdb_union_type_member_type,
        )
    }

    /// The named children of a STRUCT or UNION, through its C API triple (count, name, type).
    fn named_children(
        &self,
        count: unsafe extern "C" fn(ffi::duckdb_logical_type) -> ffi::idx_t,
        name: unsafe extern "C" fn(ffi::duckdb_logical_type, ffi::idx_t) -> *mut c_char,
        child: unsafe extern "C" fn(
            ffi::duckdb_logical_type,
            ffi::idx_t,
        ) -> ffi::duckdb_logical_type,
    ) -> Vec<(String, LogicalType)> {
        // SAFETY: a live logical type; DuckDB answers 0 for a type of another kind.
        let n = unsafe { count(self.raw) };
        (0..n)
            // SAFETY: `i` is below the count; names and types are ours to free.
            .map(|i| unsafe {
                (
                    owned_str(name(self.raw, i)),
                    Self::from_raw(child(self.raw, i)),
                )
            })
            .collect()
    }
}

impl Drop for LogicalType {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: owned (from_raw's contract), destroyed once.
            unsafe { ffi::duckdb_destroy_logical_type(&mut self.raw) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Connection {
        Database::open(Path::new(":memory:"))
            .and_then(|db| db.connect())
            .expect("an in-memory database")
    }

    fn one(conn: &Connection, sql: &str, param: Option<&Param>) -> Option<String> {
        let mut stmt = conn.prepare_cached(sql).expect("prepared");
        if let Some(p) = param {
            stmt.bind(1, p).expect("bound");
        }
        let mut result = stmt.execute_streaming().expect("executed");
        result.next_chunk().expect("a chunk")?.varchar(0, 0)
    }

    #[test]
    fn a_kept_statement_follows_the_catalog_and_forgets_its_parameters() {
        let conn = memory();
        conn.execute_batch("CREATE TABLE t AS SELECT 'first' AS v")
            .unwrap();
        let sql = "SELECT v::VARCHAR FROM t";
        assert_eq!(one(&conn, sql, None).as_deref(), Some("first"));
        assert_eq!(conn.statements.borrow().len(), 1);
        // A new table of another type under the same name: DuckDB binds the kept statement
        // again.
        conn.execute_batch("DROP TABLE t; CREATE TABLE t AS SELECT 42 AS v")
            .unwrap();
        assert_eq!(one(&conn, sql, None).as_deref(), Some("42"));
        conn.execute_batch("DROP TABLE t").unwrap();
        let mut stmt = conn.prepare_cached(sql).unwrap();
        assert!(stmt.execute_streaming().is_err(), "the table is gone");
        drop(stmt);

        let param = "SELECT ?::VARCHAR";
        assert_eq!(
            one(&conn, param, Some(&Param::Int(7))).as_deref(),
            Some("7")
        );
        // Reused with its parameter cleared: executing it unbound fails, never runs with 7.
        let mut stmt = conn.prepare_cached(param).unwrap();
        assert!(stmt.execute_streaming().is_err());
        drop(stmt);
        assert_eq!(
            one(&conn, param, Some(&Param::Text("x".into()))).as_deref(),
            Some("x")
        );
    }

    #[test]
    fn kept_statements_are_planned_again_when_the_data_moved() {
        let db = Database::open(Path::new(":memory:")).unwrap();
        let (reader, writer) = (db.connect().unwrap(), db.connect().unwrap());
        writer
            .execute_batch("CREATE TABLE t AS SELECT * FROM range(3) r(i)")
            .unwrap();
        let sql = "SELECT count(*)::VARCHAR FROM t";
        reader.plan_at(1);
        assert_eq!(one(&reader, sql, None).as_deref(), Some("3"));
        reader.plan_at(1);
        assert_eq!(
            reader.statements.borrow().len(),
            1,
            "the same version keeps them"
        );
        writer.execute_batch("INSERT INTO t VALUES (3)").unwrap();
        reader.plan_at(2);
        assert!(
            reader.statements.borrow().is_empty(),
            "a new version forgets them"
        );
        assert_eq!(one(&reader, sql, None).as_deref(), Some("4"));
        assert_eq!(reader.statements.borrow().len(), 1);
    }

    #[test]
    fn an_interrupted_kept_statement_runs_again() {
        let conn = memory();
        let sql = "SELECT count(*)::VARCHAR FROM range(?) t(i)";
        let handle = conn.interrupt_handle();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::clone(&done);
        // Again and again until it worked: an interrupt before the execution began is lost.
        let interrupter = std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                std::thread::sleep(std::time::Duration::from_millis(50));
                // SAFETY: `conn` outlives this thread (joined below, before it drops).
                unsafe { handle.interrupt() };
            }
        });
        {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            stmt.bind(1, &Param::Int(1 << 50)).unwrap();
            // The aggregate runs within the execution (a blocking operator).
            let Err(e) = stmt.execute_streaming() else {
                panic!("the count ran to its end");
            };
            assert_eq!(e.kind, DuckErrorKind::Interrupted, "{e}");
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        interrupter.join().unwrap();
        // Kept, and healthy: the same statement runs to its end with another parameter.
        assert!(conn.statements.borrow().iter().any(|(t, _)| **t == *sql));
        assert_eq!(
            one(&conn, sql, Some(&Param::Int(10))).as_deref(),
            Some("10")
        );
    }

    #[test]
    fn the_cache_keeps_the_most_recent_statements_and_transactions_rerun() {
        let conn = memory();
        for i in 0..STATEMENT_CACHE + 3 {
            assert_eq!(
                one(&conn, &format!("SELECT {i}::VARCHAR"), None),
                Some(i.to_string())
            );
        }
        let kept: Vec<_> = conn
            .statements
            .borrow()
            .iter()
            .map(|(text, _)| text.to_string())
            .collect();
        let newest = STATEMENT_CACHE + 2;
        assert_eq!(kept.len(), STATEMENT_CACHE);
        assert_eq!(kept[0], format!("SELECT {newest}::VARCHAR"));
        assert!(!kept.contains(&"SELECT 0::VARCHAR".to_string()));

        // A long text runs, but is not kept.
        let long = format!("SELECT 'long'::VARCHAR {}", " ".repeat(KEEP_TEXT_MAX));
        assert_eq!(one(&conn, &long, None).as_deref(), Some("long"));
        assert!(conn.statements.borrow().iter().all(|(t, _)| **t != *long));
        assert_eq!(conn.statements.borrow().len(), STATEMENT_CACHE);

        // The same prepared BEGIN and ROLLBACK, again and again; the transaction is real.
        conn.execute_batch("CREATE TABLE w (i INTEGER)").unwrap();
        for _ in 0..3 {
            conn.execute_cached("BEGIN TRANSACTION READ ONLY").unwrap();
            let write = conn.execute_batch("INSERT INTO w VALUES (1)");
            assert!(write.is_err(), "a read-only transaction refuses writes");
            conn.execute_cached("ROLLBACK").unwrap();
        }
        assert!(
            conn.execute_cached("ROLLBACK").is_err(),
            "no transaction is open"
        );
        conn.execute_batch("INSERT INTO w VALUES (1)").unwrap();
    }

    #[test]
    fn a_prepared_statement_tells_its_parameter_and_column_types() {
        let conn = memory();
        let sql = "SELECT $1::INTEGER + 1 AS n, lower($2) AS s, [1, 2] AS l, DATE '2024-01-02' d";
        let stmt = conn.prepare(sql).unwrap();
        assert_eq!(stmt.param_count(), 2);
        assert_eq!(stmt.param_type(1).id(), type_id::INTEGER);
        assert_eq!(stmt.param_type(2).id(), type_id::VARCHAR);
        let past = stmt.param_type(3);
        assert_eq!(past.id(), type_id::INVALID, "past the count");
        assert_eq!(past.alias(), None, "no type, no alias");
        assert_eq!(stmt.column_count(), 4);
        let names: Vec<_> = (0..4).map(|i| stmt.column_name(i)).collect();
        assert_eq!(names, ["n", "s", "l", "d"]);
        assert_eq!(stmt.column_type(0).id(), type_id::INTEGER);
        assert_eq!(stmt.column_type(2).id(), type_id::LIST);
        assert_eq!(stmt.column_type(2).list_child().id(), type_id::INTEGER);
        assert_eq!(stmt.column_type(3).id(), type_id::DATE);
        assert_eq!(stmt.column_name(9), "");
        assert_eq!(stmt.column_type(9).id(), type_id::INVALID);
        // A parameter DuckDB cannot type leaves it, and the columns, unknown until bound.
        let free = conn.prepare("SELECT $1 AS v, $2::DATE AS d").unwrap();
        assert_eq!(free.param_type(1).id(), type_id::INVALID);
        assert_eq!(free.column_count(), 1);
        assert_ne!(free.column_type(0).id(), type_id::VARCHAR);
        // Nor does a function of several overloads, even of a parameter with a cast.
        let overloaded = conn.prepare("SELECT len($1::VARCHAR[]) AS n").unwrap();
        assert_eq!(overloaded.param_type(1).id(), type_id::LIST);
        assert_eq!(overloaded.column_name(0), "unknown");
    }
}
