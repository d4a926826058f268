//! Applies running in the background: a store hands its committed overlay to a thread that
//! writes it to sled while the stream thread goes on processing.
//!
//! sled writes are the slowest step of a commit (a few µs each); under exactly-once a
//! thread applies about once a second, and each apply writes every key committed since.
//! Doing that on another core overlaps it with processing. Reads stay exact: the store keeps
//! the batch being applied as a layer of its own until the apply has finished.
//!
//! [`Applies`] counts the applies in flight against one backend, so that whoever needs the
//! backend current (interactive queries after an idle commit, a caught-up report, a close)
//! can wait for them: [`Applies::settle`].
//!
//! Each apply runs on a short-lived thread of its own: one per store per apply, which the
//! runtime does about once a second per store. That is cheap next to sled's writes for the
//! stores of a few tasks; an app with hundreds of stores per stream thread would be better
//! served by one worker per stream thread taking applies from a queue (not built yet).

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

/// The applies in flight against one backend, and the first failure among them.
#[derive(Debug, Default)]
pub struct Applies {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    /// The store and message of a failed apply not reported by `settle` yet.
    failed: Option<(String, String)>,
}

impl Applies {
    /// A tracker with nothing in flight.
    pub fn new() -> Arc<Applies> {
        Arc::new(Applies::default())
    }

    /// Registers an apply; it counts as running until the returned guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> Running {
        self.state.lock().running += 1;
        Running {
            applies: self.clone(),
        }
    }

    /// Waits until no apply is in flight. Fails if one failed since the last call (its
    /// store is poisoned and reports the failure itself as well; the caller restarts from
    /// committed state).
    pub fn settle(&self) -> Result<()> {
        let mut state = self.state.lock();
        while state.running > 0 {
            self.done.wait(&mut state);
        }
        match state.failed.take() {
            None => Ok(()),
            Some((store, reason)) => Err(Error::Background { store, reason }),
        }
    }

    /// Whether an apply is in flight.
    pub fn busy(&self) -> bool {
        self.state.lock().running > 0
    }
}

/// One apply in flight (see [`Applies::start`]).
#[derive(Debug)]
pub(crate) struct Running {
    applies: Arc<Applies>,
}

impl Running {
    /// Records that the apply failed.
    pub(crate) fn failed(&self, store: &str, error: &Error) {
        let mut state = self.applies.state.lock();
        if state.failed.is_none() {
            state.failed = Some((store.to_string(), error.to_string()));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut state = self.applies.state.lock();
        state.running -= 1;
        if state.running == 0 {
            self.applies.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_waits_for_every_apply_and_reports_a_failure_once() {
        let applies = Applies::new();
        let a = applies.start();
        let b = applies.start();
        assert!(applies.busy());
        let waiter = {
            let applies = applies.clone();
            std::thread::spawn(move || applies.settle())
        };
        b.failed("s", &Error::Poisoned { store: "s".into() });
        drop(b);
        drop(a);
        let first = waiter.join().map_err(|_| "waiter panicked");
        assert!(matches!(first, Ok(Err(Error::Background { .. }))));
        assert!(!applies.busy());
        assert!(applies.settle().is_ok());
    }
}
