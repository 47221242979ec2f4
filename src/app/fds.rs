//! The process's file-descriptor limit against the connections it is configured to hold.
//!
//! Every client connection is a socket, and each tenant database holds a few files, so a
//! server meant for thousands of streams needs as many descriptors. The soft limit is often
//! 1024 while the hard one is far higher: at start it is raised to the hard limit (what Go and
//! nginx do), and if even that cannot hold a tenant's `max_streams` plus [`RESERVED`]
//! the operator is warned (the server still starts: connections past the limit fail to be
//! accepted, one by one, and are logged by actix).
//!
//! Invariant: only [`check`] touches the limit, once, before the listener accepts.

/// Descriptors kept for everything but client sockets: the listener, DuckDB's database, WAL
/// and temporary files, extensions, the spool, logs.
pub const RESERVED: u64 = 256;

/// The limit found (and raised), and what the configuration needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit in force after raising it.
    pub soft: u64,
    pub hard: u64,
    /// A tenant's `max_streams` plus [`RESERVED`].
    pub needed: u64,
}

impl FdLimit {
    pub fn enough(&self) -> bool {
        self.soft >= self.needed
    }
}

/// Raises the soft limit to the hard one and compares it with `max_streams` (one tenant's
/// open streams and WebSockets, the most the configuration lets one tenant hold); `None` if
/// the limit cannot be read.
pub fn check(max_streams: u64) -> Option<FdLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for getrlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one needs
        // no privilege, and a failure leaves the old limit in force (read again below).
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Some(FdLimit {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
        needed: max_streams.saturating_add(RESERVED),
    })
}
