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
//! The applies of one backend (the runtime gives each stream thread its own) run one at a
//! time, in the order they were handed over, on one worker thread started with the first:
//! however many stores a thread has, it adds one thread, and sled takes one batch at a time.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

/// Work for the worker thread.
type Job = Box<dyn FnOnce() + Send>;

/// The applies in flight against one backend, the first failure among them, and the worker
/// that runs them.
#[derive(Debug, Default)]
pub struct Applies {
    state: Mutex<State>,
    done: Condvar,
    /// The worker's queue (`None` until the first apply). The worker stops once this is
    /// dropped and the queue is empty.
    worker: Mutex<Option<Sender<Job>>>,
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

    /// Hands `apply` (of `store`) to the worker, which is started if it is not running; it
    /// counts as in flight until it has run. `None` when no worker thread can be started:
    /// the caller applies inline.
    pub(crate) fn submit(
        self: &Arc<Self>,
        store: &str,
        apply: impl FnOnce() -> Result<()> + Send + 'static,
    ) -> Option<Applying> {
        let (completion, applying) = self.completion(store);
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(apply)).unwrap_or_else(|_| {
                Err(Error::Background {
                    store: completion.store.clone(),
                    reason: "the apply panicked".into(),
                })
            });
            completion.finish(result);
        });
        let mut worker = self.worker.lock();
        let job = match worker.as_ref() {
            Some(w) => match w.send(job) {
                Ok(()) => return Some(applying),
                // A worker that is gone is replaced (it stops only when its queue closes).
                Err(unsent) => unsent.0,
            },
            None => job,
        };
        let (tx, rx) = channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("freshet-apply".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
        match spawned {
            Ok(_) => {
                // The receiver lives as long as the thread, which just started.
                let sent = tx.send(job).is_ok();
                *worker = Some(tx);
                sent.then_some(applying)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the apply worker");
                // The job is dropped unrun: its completion ends it (the caller applies
                // inline and does not wait for it).
                None
            }
        }
    }
}

/// Where the worker leaves an apply's result.
#[derive(Debug, Default)]
struct Outcome {
    result: Mutex<Option<Result<()>>>,
    ready: Condvar,
}

impl Applies {
    /// A new apply of `store`, in flight until its completion is finished or dropped, and
    /// the handle that waits for it.
    fn completion(self: &Arc<Self>, store: &str) -> (Completion, Applying) {
        let outcome = Arc::new(Outcome::default());
        let completion = Completion {
            outcome: outcome.clone(),
            store: store.to_string(),
            running: self.start(),
        };
        (completion, Applying { outcome })
    }
}

/// The worker's side of an apply: sets its outcome. Dropped without
/// [`finish`](Completion::finish) (a job that never ran), it sets a failure, so that no
/// one waits for it forever.
struct Completion {
    outcome: Arc<Outcome>,
    store: String,
    /// Dropped after the outcome is set: whoever `settle` wakes finds it set.
    running: Running,
}

impl Completion {
    /// The apply ran: its result for the waiter, and a failure for `settle` too.
    fn finish(self, result: Result<()>) {
        if let Err(e) = &result {
            self.running.failed(&self.store, e);
        }
        self.set(result);
    }

    fn set(&self, result: Result<()>) {
        let mut slot = self.outcome.result.lock();
        if slot.is_none() {
            *slot = Some(result);
            self.outcome.ready.notify_all();
        }
    }
}

impl Drop for Completion {
    /// A job dropped unrun fails its waiter only (it poisons its store); nothing was
    /// written, so `settle` has nothing to report, and a caller that applied inline instead
    /// (no worker could start) is not told of a failure that did not happen.
    fn drop(&mut self) {
        self.set(Err(Error::Background {
            store: self.store.clone(),
            reason: "the apply was dropped before it ran".into(),
        }));
    }
}

/// An apply handed to the worker ([`Applies::submit`]).
#[derive(Debug)]
pub(crate) struct Applying {
    outcome: Arc<Outcome>,
}

impl Applying {
    /// Whether the apply has run.
    pub(crate) fn is_finished(&self) -> bool {
        self.outcome.result.lock().is_some()
    }

    /// Waits until the apply has run; its result.
    pub(crate) fn wait(self) -> Result<()> {
        let mut result = self.outcome.result.lock();
        loop {
            if let Some(r) = result.take() {
                return r;
            }
            self.outcome.ready.wait(&mut result);
        }
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn applies_run_one_at_a_time_in_order_on_one_worker() {
        let applies = Applies::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (concurrent, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let jobs: Vec<Applying> = (0..20)
            .map(|i| {
                let (order, concurrent, most, threads) = (
                    order.clone(),
                    concurrent.clone(),
                    most.clone(),
                    threads.clone(),
                );
                applies
                    .submit("s", move || {
                        let now = concurrent.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        threads
                            .lock()
                            .insert(format!("{:?}", std::thread::current().id()));
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        order.lock().push(i);
                        concurrent.fetch_sub(1, Ordering::SeqCst);
                        if i == 7 {
                            Err(Error::Poisoned { store: "s".into() })
                        } else {
                            Ok(())
                        }
                    })
                    .expect("a worker starts")
            })
            .collect();
        let results: Vec<bool> = jobs.into_iter().map(|j| j.wait().is_ok()).collect();
        assert_eq!(*order.lock(), (0..20).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert_eq!(threads.lock().len(), 1);
        assert_eq!(results.iter().filter(|ok| !**ok).count(), 1);
        assert!(!results[7]);
        // The failure is reported by `settle` once, after every apply has run.
        assert!(matches!(applies.settle(), Err(Error::Background { .. })));
        assert!(applies.settle().is_ok());
    }

    #[test]
    fn an_apply_dropped_unrun_fails_instead_of_being_waited_for_forever() {
        let applies = Applies::new();
        let (completion, applying) = applies.completion("s");
        assert!(applies.busy());
        drop(completion);
        assert!(applying.is_finished());
        assert!(matches!(applying.wait(), Err(Error::Background { .. })));
        assert!(!applies.busy());
        assert!(applies.settle().is_ok());
    }

    #[test]
    fn a_panicking_apply_is_a_failure_and_the_worker_goes_on() {
        let applies = Applies::new();
        let failed = applies
            .submit("s", || panic!("boom"))
            .expect("a worker starts");
        let next = applies.submit("s", || Ok(())).expect("the worker goes on");
        assert!(matches!(failed.wait(), Err(Error::Background { .. })));
        assert!(next.wait().is_ok());
        assert!(applies.settle().is_err());
        assert!(!applies.busy());
    }

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
