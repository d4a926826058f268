//! The app's lifecycle states (Kafka's `KafkaStreams.State`) and the listener told of each
//! change.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

/// Where an app is in its life (Kafka's `KafkaStreams.State`).
///
/// ```text
/// CREATED ──start──▶ REBALANCING ──restored──▶ RUNNING
///    │                    │   ▲                   │
///    │                    │   └──tasks move───────┤ (an instance starts or stops)
///    ▼                    ▼                       ▼
/// PENDING_SHUTDOWN ◀──────┴──────close────────────┘
///    ▼
/// NOT_RUNNING            ERROR (a stream thread failed; terminal)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppState {
    /// Made, not started.
    Created,
    /// Tasks are being created and restored (or, with several instances, moved).
    Rebalancing,
    /// Every task is restored and processing.
    Running,
    /// `close` was called: threads are committing and stopping.
    PendingShutdown,
    /// Closed.
    NotRunning,
    /// A stream thread failed and the app stopped (terminal).
    Error,
}

impl AppState {
    /// Kafka's name, e.g. `PENDING_SHUTDOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Created => "CREATED",
            AppState::Rebalancing => "REBALANCING",
            AppState::Running => "RUNNING",
            AppState::PendingShutdown => "PENDING_SHUTDOWN",
            AppState::NotRunning => "NOT_RUNNING",
            AppState::Error => "ERROR",
        }
    }

    /// Whether the app's threads may be running (interactive queries are served).
    pub fn is_running_or_rebalancing(self) -> bool {
        matches!(self, AppState::Running | AppState::Rebalancing)
    }

    /// Whether `self → next` is a legal transition.
    fn may_become(self, next: AppState) -> bool {
        use AppState::*;
        matches!(
            (self, next),
            (Created, Rebalancing | PendingShutdown | Error)
                | (Rebalancing, Running | PendingShutdown | Error)
                | (Running, Rebalancing | PendingShutdown | Error)
                | (PendingShutdown, NotRunning | Error)
        )
    }
}

impl fmt::Display for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Told `(old, new)` on every state change, on the thread that made it. It must not call
/// back into the app's lifecycle (`close`, `cleanup`).
pub type StateListener = Arc<dyn Fn(AppState, AppState) + Send + Sync>;

/// The app's state, its listener, and a watch for async waiters.
pub(crate) struct StateMachine {
    /// The state and the listener, changed under one lock so listeners see changes in
    /// order.
    inner: Mutex<(AppState, Option<StateListener>)>,
    watch: watch::Sender<AppState>,
}

impl fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMachine")
            .field("state", &self.inner.lock().0)
            .finish()
    }
}

impl StateMachine {
    pub(crate) fn new() -> StateMachine {
        StateMachine {
            inner: Mutex::new((AppState::Created, None)),
            watch: watch::channel(AppState::Created).0,
        }
    }

    pub(crate) fn get(&self) -> AppState {
        self.inner.lock().0
    }

    pub(crate) fn set_listener(&self, listener: StateListener) {
        self.inner.lock().1 = Some(listener);
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<AppState> {
        self.watch.subscribe()
    }

    /// Moves to `next` if that is legal from the current state; returns whether it moved.
    pub(crate) fn transition(&self, next: AppState) -> bool {
        let mut g = self.inner.lock();
        let old = g.0;
        if old == next || !old.may_become(next) {
            return false;
        }
        g.0 = next;
        tracing::info!(from = %old, to = %next, "streams app state");
        if let Some(l) = &g.1 {
            l(old, next);
        }
        self.watch.send_replace(next);
        true
    }
}
