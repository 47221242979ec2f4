//! `progress` lines: DuckDB's progress of a running query, read from a thread of its own (the
//! executor thread is inside DuckDB while an operator works) and sent into the query's channel.
//!
//! Invariants:
//! - The sampler never blocks the query: a full channel skips one line.
//! - Its figures never go backwards (rows and percentage are the highest seen).
//! - No line is sent after [`Sampler::stop`], which the executor calls before the final line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::engine::control::QueryControl;
use crate::engine::{Frame, FrameKind};

/// The first `progress` line comes this long after the query starts...
const PROGRESS_FIRST: Duration = Duration::from_millis(500);
/// ...and the next ones at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The progress thread of one query, until [`Sampler::stop`].
pub(super) struct Sampler {
    open: Arc<Mutex<Option<mpsc::Sender<Frame>>>>,
}

impl Sampler {
    /// Starts sampling `control`'s query into `frames`; `None` if no thread could be started.
    pub fn spawn(
        frames: &mpsc::Sender<Frame>,
        control: &Arc<QueryControl>,
        query_id: &Arc<str>,
    ) -> Option<Self> {
        let open = Arc::new(Mutex::new(Some(frames.clone())));
        let (control, query_id) = (Arc::clone(control), Arc::clone(query_id));
        let lines = Arc::clone(&open);
        let spawned = std::thread::Builder::new()
            .name("query-progress".into())
            .spawn(move || sample(&lines, &control, &query_id));
        spawned.ok().map(|_| Self { open })
    }

    /// Ends the sampling: no line is sent after this returns.
    pub fn stop(self) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// The progress thread's loop: a line now and then, until the sender is taken away.
fn sample(lines: &Mutex<Option<mpsc::Sender<Frame>>>, control: &QueryControl, query_id: &str) {
    std::thread::sleep(PROGRESS_FIRST);
    let (mut rows, mut percentage) = (0u64, None::<f64>);
    loop {
        {
            let guard = lines.lock().unwrap_or_else(|p| p.into_inner());
            let Some(tx) = guard.as_ref() else { return };
            if let Some(p) = control.progress() {
                rows = rows.max(p.rows_processed);
                percentage = match (percentage, p.percentage) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                let line =
                    crate::wire::lines::progress_line(query_id, rows, p.total_rows, percentage);
                let _ = tx.try_send(Frame {
                    bytes: line,
                    rows: 0,
                    kind: FrameKind::Note,
                });
            }
        }
        std::thread::sleep(PROGRESS_EVERY);
    }
}
