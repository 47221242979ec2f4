//! [`Breaker`]: after the storage failed a query (`storage_unavailable`: an object store that
//! does not answer, a catalog call that failed), the next ones are refused at once for a
//! cool-off instead of each holding a DuckDB thread until the storage's own timeouts give up;
//! then one query at a time tries the storage again.
//!
//! Invariants:
//! - Closed until a query or a write ends with `storage_unavailable`; then open for
//!   `cool_off`, refusing everything; then a single trial runs while the others are still
//!   refused: its success closes the breaker, its `storage_unavailable` opens it again, any
//!   other end (or a trial dropped unfinished) lets the next query be the trial.
//! - Whatever outcome reaches it, a trial is always given back: a [`Pass`] that is dropped
//!   without an outcome frees the trial place.
//! - Store-agnostic: the local store never answers `storage_unavailable`, so it never opens.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::GatewayError;

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    /// Refusing until `until`; then the next query is a trial.
    Open {
        until: Instant,
    },
    /// One query is trying the storage.
    Trial,
}

/// Refuses work while the storage has just been found unreachable.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    cool_off: Duration,
}

/// Leave to go on, held until the work's outcome is known ([`Breaker::record`]).
#[must_use]
pub struct Pass<'a> {
    breaker: &'a Breaker,
    trial: bool,
}

impl Breaker {
    pub fn new(cool_off: Duration) -> Self {
        Self {
            state: Mutex::new(State::Closed),
            cool_off,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leave to go on, or `None`: refuse at once.
    pub fn admit(&self) -> Option<Pass<'_>> {
        let mut state = self.lock();
        let trial = match *state {
            State::Closed => false,
            State::Open { until } if Instant::now() >= until => {
                *state = State::Trial;
                true
            }
            State::Open { .. } | State::Trial => return None,
        };
        Some(Pass {
            breaker: self,
            trial,
        })
    }

    /// Whether work is being refused now (or only a trial let through).
    pub fn is_open(&self) -> bool {
        *self.lock() != State::Closed
    }

    /// The work `pass` let through ended with `outcome`.
    pub fn record<T>(&self, mut pass: Pass<'_>, outcome: &Result<T, GatewayError>) {
        let mut state = self.lock();
        match outcome {
            Err(GatewayError::StorageUnavailable(_)) => {
                *state = State::Open {
                    until: Instant::now() + self.cool_off,
                };
            }
            // The storage answered.
            Ok(_) => *state = State::Closed,
            // Told nothing about the storage: a trial lets the next query try.
            Err(_) if pass.trial => {
                *state = State::Open {
                    until: Instant::now(),
                }
            }
            Err(_) => {}
        }
        drop(state);
        // Its outcome is recorded: nothing left for its drop to give back.
        pass.trial = false;
    }
}

impl Drop for Pass<'_> {
    /// A trial dropped before its outcome (its client went away): the next query tries.
    fn drop(&mut self) {
        if self.trial {
            let mut state = self.breaker.lock();
            if *state == State::Trial {
                *state = State::Open {
                    until: Instant::now(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> Result<(), GatewayError> {
        Err(GatewayError::storage("down"))
    }

    #[test]
    fn one_failure_refuses_until_the_cool_off_then_one_trial_decides() {
        let b = Breaker::new(Duration::from_millis(30));
        let pass = b.admit().expect("closed");
        b.record(pass, &unavailable());
        assert!(b.is_open());
        assert!(b.admit().is_none(), "refused during the cool-off");
        std::thread::sleep(Duration::from_millis(40));
        let trial = b.admit().expect("a trial after the cool-off");
        assert!(b.admit().is_none(), "one trial at a time");
        b.record(trial, &unavailable());
        assert!(b.admit().is_none(), "the failed trial opened it again");
        std::thread::sleep(Duration::from_millis(40));
        let trial = b.admit().expect("another trial");
        b.record(trial, &Ok::<(), GatewayError>(()));
        assert!(!b.is_open());
        assert!(
            b.admit().is_some() && b.admit().is_some(),
            "closed: everyone passes"
        );
    }

    #[test]
    fn a_trial_that_says_nothing_about_the_storage_lets_the_next_one_try() {
        let b = Breaker::new(Duration::ZERO);
        b.record(b.admit().unwrap(), &unavailable());
        let trial = b.admit().expect("trial");
        b.record(trial, &Err::<(), _>(GatewayError::TooBusy));
        let trial = b.admit().expect("the next query is the trial");
        drop(trial);
        assert!(b.admit().is_some(), "a dropped trial gives its place back");
    }

    #[test]
    fn other_errors_never_open_it() {
        let b = Breaker::new(Duration::from_secs(60));
        b.record(b.admit().unwrap(), &Err::<(), _>(GatewayError::TooBusy));
        assert!(!b.is_open());
        assert!(b.admit().is_some());
    }
}
