//! Punctuations: callbacks scheduled by stream time or wall-clock time, with Kafka's rules
//! (`PunctuationQueue`, `PunctuationSchedule`).
//!
//! - Stream-time schedules are aligned to 0: the first fires as soon as stream time is known
//!   (after the first record); they are checked after each processed record.
//! - Wall-clock schedules first fire at `now + interval`.
//! - A schedule fires when its time is `<=` the current time; the punctuator gets the
//!   **current** time, not the scheduled one. The next time is `scheduled + interval`, or, if
//!   intervals were missed, `scheduled + (missed + 1) * interval`, so one punctuation fires
//!   after a gap.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::task::node::NodeContext;

/// What drives a punctuation (Kafka's `PunctuationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunctuationType {
    /// The task's stream time.
    StreamTime,
    /// The wall clock.
    WallClockTime,
}

/// A scheduled callback at the level of the task: gets the node's context and the current
/// time.
pub(crate) type Punctuator = Box<dyn FnMut(&mut NodeContext<'_>, i64) -> Result<()> + Send>;

/// Cancels a scheduled punctuation (Kafka's `Cancellable`).
#[derive(Debug, Clone)]
pub struct Cancellable(Arc<AtomicBool>);

impl Cancellable {
    /// Stops the punctuation; it never fires again.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub(crate) struct Schedule {
    pub(crate) node: usize,
    pub(crate) kind: PunctuationType,
    pub(crate) interval: i64,
    pub(crate) next: i64,
    pub(crate) cancelled: Arc<AtomicBool>,
    pub(crate) punctuator: Option<Punctuator>,
}

impl Schedule {
    /// Kafka's `PunctuationSchedule.next`.
    fn advance(&mut self, now: i64) {
        let mut next = self.next.saturating_add(self.interval);
        if now >= next {
            let missed = (now - self.next) / self.interval;
            next = self
                .next
                .saturating_add((missed + 1).saturating_mul(self.interval));
        }
        self.next = next;
    }
}

/// The task's schedules.
#[derive(Default)]
pub(crate) struct Punctuations {
    pub(crate) schedules: Vec<Schedule>,
    /// The wall clock when a schedule is made (for the first wall-clock time).
    pub(crate) now: i64,
}

impl Punctuations {
    pub(crate) fn schedule(
        &mut self,
        node: usize,
        interval: Duration,
        kind: PunctuationType,
        punctuator: Punctuator,
    ) -> Result<Cancellable> {
        let interval = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        if interval < 1 {
            return Err(Error::InvalidArgument(
                "punctuation interval must be at least 1 ms".into(),
            ));
        }
        let next = match kind {
            PunctuationType::StreamTime => 0,
            PunctuationType::WallClockTime => self.now.saturating_add(interval),
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        self.schedules.push(Schedule {
            node,
            kind,
            interval,
            next,
            cancelled: cancelled.clone(),
            punctuator: Some(punctuator),
        });
        Ok(Cancellable(cancelled))
    }

    /// The index of the schedule of `kind` due at `now` that comes first (earliest time,
    /// then first scheduled), dropping cancelled ones.
    pub(crate) fn next_due(&mut self, kind: PunctuationType, now: i64) -> Option<usize> {
        self.schedules
            .retain(|s| !s.cancelled.load(Ordering::Relaxed));
        self.schedules
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == kind && s.next <= now && s.punctuator.is_some())
            .min_by_key(|(i, s)| (s.next, *i))
            .map(|(i, _)| i)
    }

    /// Takes schedule `i`'s punctuator out to run it, moving its time on.
    pub(crate) fn take(
        &mut self,
        i: usize,
        now: i64,
    ) -> Option<(usize, Punctuator, Arc<AtomicBool>)> {
        let s = self.schedules.get_mut(i)?;
        s.advance(now);
        let p = s.punctuator.take()?;
        Some((s.node, p, s.cancelled.clone()))
    }

    /// Puts a punctuator back after it ran.
    pub(crate) fn put_back(&mut self, cancelled: &Arc<AtomicBool>, punctuator: Punctuator) {
        if let Some(s) = self
            .schedules
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s.cancelled, cancelled))
        {
            s.punctuator = Some(punctuator);
        }
    }
}
