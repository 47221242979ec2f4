//! One client connection's state: its place among the endpoint's connections, its login and
//! session, the query a `CancelRequest` reaches, its statements, portals and cursors. The
//! protocol's handlers ([`super::startup`], [`super::simple`], [`super::extended`]) are
//! implemented on it.
//!
//! Invariant: [`Connection::close`] ends everything the connection holds (its place, its
//! cancel registration, its portals' and cursors' queries), once, when its socket ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use tokio::sync::OwnedSemaphorePermit;

use super::cancel::Running;
use super::portals::{Cursor, Extended};
use super::session::Session;
use super::Shared;

/// One client connection: its login, session and running query.
pub struct Connection {
    pub(super) shared: Arc<Shared>,
    pub(super) peer: SocketAddr,
    /// The connection's place among `max_connections`; `None`: refused at startup.
    pub(super) permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// Set once the login succeeded.
    pub(super) session: OnceLock<Mutex<Session>>,
    /// What a `CancelRequest` for this connection cancels.
    pub(super) running: Arc<Running>,
    /// The backend's process id, once registered for cancels.
    pub(super) pid: OnceLock<i32>,
    /// The extended protocol's statements and portals.
    extended: Mutex<Extended>,
    /// Open cursors (`DECLARE`), by name.
    cursors: Mutex<HashMap<String, Cursor>>,
}

impl Connection {
    pub fn new(
        shared: Arc<Shared>,
        peer: SocketAddr,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Self {
        Self {
            shared,
            peer,
            permit: Mutex::new(permit),
            session: OnceLock::new(),
            running: Arc::new(Running::default()),
            pid: OnceLock::new(),
            extended: Mutex::default(),
            cursors: Mutex::default(),
        }
    }

    /// The logged-in session.
    pub(super) fn session(&self) -> PgWireResult<MutexGuard<'_, Session>> {
        let session = self.session.get().ok_or_else(|| {
            PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "08P01".into(),
                "the connection has not logged in".into(),
            )))
        })?;
        Ok(session.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The extended protocol's statements and portals.
    pub(super) fn extended(&self) -> MutexGuard<'_, Extended> {
        self.extended.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open cursors.
    pub(super) fn cursors(&self) -> MutexGuard<'_, HashMap<String, Cursor>> {
        self.cursors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection ended: it can no longer be cancelled, and frees its place.
    pub fn close(&self) {
        if let Some(pid) = self.pid.get() {
            self.shared.cancels.remove(*pid);
        }
        self.running.end();
        // Open portals' and cursors' queries end with the connection.
        *self.extended() = Extended::default();
        self.cursors().clear();
        drop(self.permit.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}
