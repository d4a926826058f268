//! Sliding-window count / reduce / aggregate (Kafka's `KStreamSlidingWindowAggregate`).
//!
//! A window is `[start, start + d]`, inclusive at both ends, stored under its start with
//! the window size `d`. Windows exist only where they hold records: each record's left
//! window `[t - d, t]`, and its right window `[t + 1, t + 1 + d]` once a record falls in
//! it. Records earlier than `d` ("early" records) share the window `[0, d]` instead of a
//! left window with a negative start. The window store is scanned per record over the
//! starts `[t - 2d, t + 1]` (`[0, t + 1]` for early records), newest first, as Kafka's
//! reverse-iterator path does.
//!
//! Lateness, with the close time `observed stream time - grace` (the processor's own
//! stream time, advanced before the checks): a record is dropped entirely when
//! `t + d < close`; otherwise each window it would update is skipped when its end is
//! `< close`. A current record's right window is created from an existing aggregate with
//! no lateness check, as in Kafka. Emit-final (not after an early record, as in Kafka)
//! emits the windows with start in `[max(0, last close - d), close - d - 1]`.

use std::collections::{BTreeMap, HashSet};

use freshet_state_store::Timestamped;

use crate::error::{Error, Result};
use crate::ops::window_aggregate::{Current, WindowedCore};
use crate::serde::{SerdeRef, Window};
use crate::task::node::{Data, InFlight, Node, NodeContext};
use crate::window::SlidingWindows;

/// The sliding-window aggregation node.
pub(crate) struct SlidingAggregateNode<K, V, VA> {
    pub(crate) core: WindowedCore<K, V, VA>,
    pub(crate) windows: SlidingWindows,
    /// Detects null values (dropped, as Kafka does for sliding windows), when known.
    pub(crate) input_values: Option<SerdeRef<V>>,
}

impl<K: Data, V: Data, VA: Data> SlidingAggregateNode<K, V, VA> {
    fn d(&self) -> i64 {
        self.windows.time_difference()
    }

    fn window(&self, start: i64) -> Window {
        Window::new(start, start.saturating_add(self.d()))
    }

    /// A value from the store with its timestamp, decoded.
    fn decoded(&self, v: &Timestamped) -> Result<(VA, i64)> {
        Ok((self.core.decode_value(&v.value)?, v.timestamp))
    }

    /// The initializer's aggregate at the record's timestamp (`None`: Kafka's null).
    fn initial(&self, ts: i64) -> Option<(VA, i64)> {
        (self.core.initializer)().map(|a| (a, ts))
    }

    /// Kafka's `updateWindowAndForward`: folds the record into `window` unless the window
    /// has closed.
    fn update(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        window: Window,
        old: Option<(VA, i64)>,
        close: i64,
    ) -> Result<()> {
        if window.end >= close {
            self.core.aggregate_into(ctx, cur, window, old)
        } else {
            let reason = format!(
                "window closed: window end {} < stream time {} - grace {}",
                window.end, self.core.observed, self.core.grace
            );
            let shown = format!("[{},{}]", window.start, window.end);
            self.core.drop_late(ctx, cur, &shown, close, reason);
            Ok(())
        }
    }

    /// Creates the current record's right window from the aggregate of the records after
    /// it (no lateness check, old value null, as Kafka).
    fn create_right_window(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        right: Timestamped,
    ) -> Result<()> {
        let window = self.window(cur.record.timestamp.saturating_add(1));
        let (value, ts) = (right.value.clone(), right.timestamp);
        self.core
            .put(ctx, &cur.key, window.start, right.value, ts)?;
        if self.core.emit == crate::dsl::windowed::EmitStrategy::OnWindowUpdate
            && !self.core.caching
        {
            let new = self.core.decode_value(&value)?;
            self.core.forward_update(ctx, cur, window, None, new, ts)?;
        }
        Ok(())
    }

    /// Creates the right window of the previous record, which holds the current record.
    fn create_previous_right_window(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        start: i64,
        close: i64,
    ) -> Result<()> {
        let initial = self.initial(cur.record.timestamp);
        self.update(ctx, cur, self.window(start), initial, close)
    }

    fn unexpected(&self, ctx: &NodeContext<'_>, start: i64, ts: i64) -> Error {
        Error::Processing {
            node: ctx.name().to_string(),
            message: format!(
                "unexpected window with start {start} found when processing a record at {ts} in sliding windows"
            ),
        }
    }

    /// Kafka's `processReverse`: the record's windows, newest first.
    fn process_reverse(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        close: i64,
    ) -> Result<()> {
        let ts = cur.record.timestamp;
        let d = self.d();
        let from = ts.saturating_sub(d.saturating_mul(2)).max(0);
        let found = self
            .core
            .fetch(&cur.key, from, ts.saturating_add(1), true)?;
        let mut starts = HashSet::new();
        let mut left_agg: Option<Timestamped> = None;
        let mut right_agg: Option<Timestamped> = None;
        let mut left_created = false;
        let mut right_created = false;
        let mut previous: Option<i64> = None;
        for (start, v) in found {
            starts.insert(start);
            let end = start.saturating_add(d);
            let max_ts = v.timestamp;
            if start == ts.saturating_add(1) {
                right_created = true;
            } else if end > ts {
                let old = self.decoded(&v)?;
                if right_agg.is_none() {
                    right_agg = Some(v);
                }
                self.update(ctx, cur, self.window(start), Some(old), close)?;
            } else if end == ts {
                left_created = true;
                let old = self.decoded(&v)?;
                self.update(ctx, cur, self.window(start), Some(old), close)?;
                if max_ts < ts {
                    previous = Some(max_ts);
                } else {
                    // The previous record's right window and this record's windows exist.
                    return Ok(());
                }
            } else if end < ts {
                left_agg = Some(v);
                previous = Some(max_ts);
                break;
            } else {
                return Err(self.unexpected(ctx, start, ts));
            }
        }
        // The previous record's right window, if it holds this record and is missing.
        if let Some(p) = previous {
            let start = p.saturating_add(1);
            if !starts.contains(&start) && start.saturating_add(d) >= ts {
                self.create_previous_right_window(ctx, cur, start, close)?;
            }
        }
        // This record's left window.
        if !left_created {
            let left_not_empty = previous.is_some_and(|p| ts - d <= p);
            let old = match (&left_agg, left_not_empty) {
                (Some(agg), true) => Some((self.core.decode_value(&agg.value)?, ts)),
                _ => self.initial(ts),
            };
            self.update(ctx, cur, self.window(ts - d), old, close)?;
        }
        // This record's right window, if records follow it within d.
        if let Some(right) = right_agg {
            if !right_created && right.timestamp > ts {
                self.create_right_window(ctx, cur, right)?;
            }
        }
        Ok(())
    }

    /// Kafka's `processEarly`: a record before `d` goes into the window `[0, d]`.
    fn process_early(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        close: i64,
    ) -> Result<()> {
        let ts = cur.record.timestamp;
        if ts < 0 || ts >= self.d() {
            return Err(Error::Processing {
                node: ctx.name().to_string(),
                message: format!(
                    "early record for sliding windows must fall within [0, {}), got timestamp {ts}",
                    self.d()
                ),
            });
        }
        let found = self.core.fetch(&cur.key, 0, ts + 1, false)?;
        let mut combined: Option<Timestamped> = None;
        let mut right_agg: Option<Timestamped> = None;
        let mut right_created = false;
        let mut starts = HashSet::new();
        let mut previous: Option<i64> = None;
        for (start, v) in found {
            starts.insert(start);
            if start == 0 {
                if v.timestamp < ts {
                    previous = Some(v.timestamp);
                }
                combined = Some(v);
            } else if start <= ts {
                let old = self.decoded(&v)?;
                right_agg = Some(v);
                self.update(ctx, cur, self.window(start), Some(old), close)?;
            } else if start == ts + 1 {
                right_created = true;
            } else {
                return Err(self.unexpected(ctx, start, ts));
            }
        }
        // With no right window found, the combined window holds exactly the records of
        // this record's right window when its newest record is later than this one.
        if right_agg.is_none() {
            if let Some(c) = &combined {
                if c.timestamp > ts {
                    right_agg = Some(c.clone());
                }
            }
        }
        if let Some(right) = right_agg {
            if !right_created && right.timestamp > ts {
                self.create_right_window(ctx, cur, right)?;
            }
        }
        if let Some(p) = previous {
            if !starts.contains(&(p + 1)) {
                self.create_previous_right_window(ctx, cur, p + 1, close)?;
            }
        }
        match combined {
            None => {
                let initial = self.initial(ts);
                self.update(ctx, cur, self.window(0), initial, close)
            }
            Some(c) => {
                let old = self.decoded(&c)?;
                self.update(ctx, cur, self.window(0), Some(old), close)
            }
        }
    }
}

impl<K: Data, V: Data, VA: Data> Node for SlidingAggregateNode<K, V, VA> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.core.init(ctx)
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let nulls = self.input_values.clone();
        let mut slot = None;
        self.core
            .take(ctx, record, true, nulls.as_ref(), &mut slot)?;
        let Some(cur) = slot else {
            return Ok(());
        };
        let ts = cur.record.timestamp;
        let d = self.d();
        let close = self.core.observe(ts);
        let end = ts.saturating_add(d);
        if end < close {
            let reason = format!(
                "window closed: window end {end} < stream time {} - grace {}",
                self.core.observed, self.core.grace
            );
            self.core
                .drop_late(ctx, &cur, &format!("[{ts},{end}]"), close, reason);
            return self.core.send_late(ctx, &cur);
        }
        if ts < d {
            self.process_early(ctx, &cur, close)?;
            // Kafka returns before emitting after an early record.
            return self.core.send_late(ctx, &cur);
        }
        let bounds = move |last: Option<i64>, close: i64| {
            let upper = close.checked_sub(d)?.checked_sub(1)?;
            if upper < 0 {
                return None;
            }
            let lower = last.map_or(0, |l| l.saturating_sub(d).max(0));
            Some((lower, upper))
        };
        // No window the record puts starts after its right window, at `ts + 1`.
        self.core
            .emit_before_expiry(ctx, &cur, close, ts.saturating_add(1), bounds)?;
        self.process_reverse(ctx, &cur, close)?;
        self.core.send_late(ctx, &cur)?;
        self.core.maybe_emit_final(ctx, &cur, close, bounds)?;
        self.core.done(cur);
        Ok(())
    }

    fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.core.flush(ctx)
    }

    fn observed_stream_time(&self) -> Option<i64> {
        Some(self.core.observed)
    }

    fn restore_stream_time(&mut self, time: i64) {
        self.core.observed = self.core.observed.max(time);
    }

    fn processor_metadata(&self) -> Vec<(String, i64)> {
        self.core.processor_metadata()
    }

    fn restore_processor_metadata(&mut self, metadata: &BTreeMap<String, i64>) {
        self.core.restore_processor_metadata(metadata);
    }
}
