//! Fetching a stream thread's input, with the next fetch sent while records are processed.
//!
//! Kafka's consumer pipelines its fetches: before `poll` hands records to the application it
//! sends the next round of fetch requests, so the broker reads while the application
//! processes. A stream thread does the same on the app's runtime: when a task's buffer falls
//! below the prefetch mark (`buffered.records.per.partition` plus [`PREFETCH_AHEAD`]
//! records) during processing, the thread starts a [`Prefetch`] of every input below that
//! mark, each input getting its share of a poll's records; its next fetch takes the
//! prefetched records (waiting for the read only if an input with more records in the log
//! has nothing left to process) instead of reading then. This moves the log reads off the
//! thread that processes, onto a core the stream threads leave free; without one
//! (`Shared::pipelined` false: as many stream threads as cores) there is no prefetch.
//!
//! A prefetched partition's records are kept only if the input still stands where the
//! prefetch started (the task may have been closed, reopened elsewhere or reset since);
//! otherwise they are dropped and fetched again. A plain fetch still skips inputs at or
//! above `buffered.records.per.partition`, so a task holds at most the prefetch mark plus
//! one share of a poll.

use std::time::Duration;

use freshet_log::{Broker, FetchOptions, FetchPosition, FetchedBatches, Isolation};
use tokio::task::JoinHandle;

use super::{LogRecords, StreamThread};
use crate::error::{Error, Result};

/// A fetch sent ahead, running on the app's runtime.
pub(super) struct Prefetch {
    /// Where each fetched partition started.
    positions: Vec<FetchPosition>,
    handle: JoinHandle<freshet_log::Result<Vec<FetchedBatches>>>,
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // A prefetch nobody will take (the thread closes or fails) stops reading.
        self.handle.abort();
    }
}

/// How many records past the pause mark (`buffered.records.per.partition`) the prefetch
/// keeps an input filled: four task turns. With one turn ahead, the stream thread ran out
/// of records before the prefetch came back and fetched them itself, doing the io thread's
/// reading and indexing on the busier core: four turns ahead took 10 % off W1 and 5–10 %
/// off W2 and W4 back to back (W3 within the noise); eight and sixteen did no better.
/// Kafka's consumer, too, fetches ahead of what Streams buffers (up to
/// `max.partition.fetch.bytes`, 1 MiB, per partition).
const PREFETCH_AHEAD: usize = 4 * super::RECORDS_PER_TASK_TURN;

impl<B: Broker> StreamThread<B> {
    /// The inputs to fetch: below `max_buffered` records and, in bounded mode, short of
    /// their bound.
    fn fetch_positions(&self, max_buffered: usize) -> Vec<FetchPosition> {
        let bounded = self.shared.is_bounded();
        let mut positions = Vec::new();
        for t in &self.tasks {
            for i in &t.inputs {
                if t.task.buffered_in(&i.topic) >= max_buffered {
                    continue;
                }
                if bounded && i.bound.is_some_and(|b| i.position >= b) {
                    continue;
                }
                positions.push((i.topic.clone(), t.id.partition, i.position));
            }
        }
        positions
    }

    /// Below how many buffered records an input is prefetched: [`PREFETCH_AHEAD`] above the
    /// pause mark.
    fn prefetch_mark(&self) -> usize {
        self.shared.config.buffered_records_per_partition() + PREFETCH_AHEAD
    }

    /// Whether an input known to have records to fetch has none buffered: below its bound
    /// (bounded mode) or below the last stable offset last seen.
    ///
    /// An input that read all there was when it was last fetched is not starving: waiting
    /// for it gains nothing, and its new records come with the next prefetch. (A
    /// repartition topic read under exactly-once is caught up between commits most of the
    /// time: counting it starving made the thread wait for every prefetch, and read the
    /// inputs below the pause mark itself.)
    fn starving(&self) -> bool {
        let bounded = self.shared.is_bounded();
        self.tasks.iter().any(|t| {
            t.inputs
                .iter()
                .any(|i| i.has_more(bounded) && t.task.buffered_in(&i.topic) == 0)
        })
    }

    /// Starts a prefetch of every input below the prefetch mark, unless one runs already.
    pub(super) fn prefetch(&mut self) {
        if !self.shared.pipelined || self.prefetch.is_some() || self.stopping() {
            return;
        }
        let positions = self.fetch_positions(self.prefetch_mark());
        if positions.is_empty() {
            return;
        }
        // Each input gets its share of a poll's records, so that all of them have records
        // when the prefetch is taken (one fetch fills its first partitions first).
        let defaults = FetchOptions::default();
        let share = (defaults.max_records / positions.len())
            .max(self.shared.config.buffered_records_per_partition());
        let options = FetchOptions {
            isolation: Isolation::ReadCommitted,
            timeout: Duration::ZERO,
            max_records: share,
            ..defaults
        };
        let broker = self.shared.broker.clone();
        let sent = positions.clone();
        let handle = self.shared.handle.spawn(async move {
            let mut fetched = Vec::with_capacity(sent.len());
            for position in sent.chunks(1) {
                fetched.extend(broker.fetch_batches(position, &options).await?);
            }
            Ok(fetched)
        });
        self.prefetch = Some(Prefetch { positions, handle });
    }

    /// Whether task `ti`'s buffer has fallen below the prefetch mark (time to prefetch).
    pub(super) fn wants_prefetch(&self, ti: usize) -> bool {
        self.prefetch.is_none() && self.tasks[ti].task.buffered() < self.prefetch_mark()
    }

    /// Takes the prefetched records, if a prefetch ran and found any; a prefetch that failed
    /// counts as none (the fetch after it meets the failure itself, if it still holds).
    fn take_prefetch(&mut self) -> Result<bool> {
        let Some(mut prefetch) = self.prefetch.take() else {
            return Ok(false);
        };
        let fetched = match self.block_on(&mut prefetch.handle) {
            Ok(Ok(fetched)) if !fetched.is_empty() => fetched,
            Ok(Ok(_)) => return Ok(false),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "prefetch failed; fetching again");
                return Ok(false);
            }
            Err(e) => {
                tracing::debug!(error = %e, "prefetch did not finish; fetching again");
                return Ok(false);
            }
        };
        let positions = std::mem::take(&mut prefetch.positions);
        let kept = still_wanted(&positions, fetched, |topic, partition| {
            let &(ti, ii) = self.route.get(&(topic.to_string(), partition))?;
            Some(self.tasks[ti].inputs[ii].position)
        });
        let any = !kept.is_empty();
        for f in kept {
            self.add_fetched(f)?;
        }
        Ok(any)
    }

    /// Fetches records for the tasks' inputs, waiting up to `wait` when none are there: the
    /// prefetched ones if a prefetch found any, and with a fetch now for inputs that still
    /// have nothing buffered.
    ///
    /// A prefetch still reading is left to read while every input has records to process;
    /// an input with none that has more to fetch ([`starving`](Self::starving)) waits for
    /// it (and is fetched now if it brought none), so no task
    /// falls behind the others in event time while they process (records re-keyed into a
    /// repartition topic from tasks far apart in event time can be later than the grace
    /// period downstream).
    pub(super) fn fetch(&mut self, wait: Duration) -> Result<()> {
        let reading = self
            .prefetch
            .as_ref()
            .is_some_and(|p| !p.handle.is_finished());
        if reading && wait.is_zero() && !self.starving() {
            return Ok(());
        }
        let wait = if self.take_prefetch()? {
            if !self.starving() {
                return Ok(());
            }
            Duration::ZERO
        } else {
            wait
        };
        let positions = self.fetch_positions(self.shared.config.buffered_records_per_partition());
        if positions.is_empty() {
            if !wait.is_zero() {
                // Nothing to fetch (no tasks, or every buffer full): wait, waking for close.
                self.wait(wait);
            }
            return Ok(());
        }
        let options = FetchOptions {
            isolation: Isolation::ReadCommitted,
            timeout: wait,
            ..FetchOptions::default()
        };
        let shared = self.shared.clone();
        let fetched = shared.fetch_until_closed(shared.broker.fetch_batches(&positions, &options));
        let fetched = match fetched {
            Ok(f) => f,
            Err(freshet_log::Error::OffsetOutOfRange {
                topic,
                partition,
                offset,
                start,
                end,
            }) => {
                tracing::warn!(
                    topic,
                    partition,
                    offset,
                    start,
                    end,
                    "fetch position out of range; resuming at the start"
                );
                if let Some(&(ti, ii)) = self.route.get(&(topic.clone(), partition)) {
                    self.tasks[ti].inputs[ii].position = start;
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        for f in fetched {
            self.add_fetched(f)?;
        }
        Ok(())
    }

    /// Hands one partition's fetched records to its task and moves the input's position past
    /// them (in bounded mode, not past its bound).
    fn add_fetched(&mut self, f: FetchedBatches) -> Result<()> {
        let Some(&(ti, ii)) = self.route.get(&(f.topic.clone(), f.partition)) else {
            return Ok(());
        };
        let bound = if self.shared.is_bounded() {
            self.tasks[ti].inputs[ii].bound
        } else {
            None
        };
        let t = &mut self.tasks[ti];
        let input = &mut t.inputs[ii];
        input.position = match bound {
            Some(b) => f.next_offset.min(b.max(input.position)),
            None => f.next_offset,
        };
        input.last_stable = input.last_stable.max(input.position).max(f.readable_end);
        let mut records = f.records;
        if let Some(b) = bound {
            records.truncate_at(b);
        }
        if !records.is_empty() {
            // Read by the task in place, in the log's batches.
            t.task
                .add_raw_records(&f.topic, Box::new(LogRecords(records)))
                .map_err(|source| Error::Task {
                    task: t.id.to_string(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// The prefetched partitions to keep: those whose input (`position_now`: `None` when the
/// thread no longer has the partition) still stands where the prefetch started. An input
/// that moved meanwhile (reset, or its task closed and reopened) is fetched again from where
/// it stands now.
fn still_wanted(
    sent: &[FetchPosition],
    fetched: Vec<FetchedBatches>,
    position_now: impl Fn(&str, u32) -> Option<i64>,
) -> Vec<FetchedBatches> {
    fetched
        .into_iter()
        .filter(|f| {
            let started = sent
                .iter()
                .find(|(t, p, _)| *p == f.partition && *t == f.topic)
                .map(|&(_, _, offset)| offset);
            started.is_some() && started == position_now(&f.topic, f.partition)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use freshet_log::RecordBatches;

    use super::*;

    fn fetched(topic: &str, partition: u32, next_offset: i64) -> FetchedBatches {
        FetchedBatches {
            topic: topic.to_string(),
            partition,
            records: RecordBatches::from(Vec::new()),
            next_offset,
            readable_end: next_offset,
        }
    }

    fn kept(
        sent: &[FetchPosition],
        fetched: Vec<FetchedBatches>,
        now: &[FetchPosition],
    ) -> Vec<(String, u32)> {
        let position_now = |topic: &str, partition: u32| {
            now.iter()
                .find(|(t, p, _)| t == topic && *p == partition)
                .map(|&(_, _, o)| o)
        };
        still_wanted(sent, fetched, position_now)
            .into_iter()
            .map(|f| (f.topic, f.partition))
            .collect()
    }

    #[test]
    fn prefetched_records_are_kept_only_where_the_input_has_not_moved() {
        let sent = vec![("a".to_string(), 0, 10), ("a".to_string(), 1, 20)];
        let all = || vec![fetched("a", 0, 15), fetched("a", 1, 25)];
        // Nothing moved: both kept.
        assert_eq!(
            kept(&sent, all(), &sent),
            vec![("a".to_string(), 0), ("a".to_string(), 1)]
        );
        // Partition 1 was reset to its start meanwhile: only partition 0 is kept.
        let reset = vec![("a".to_string(), 0, 10), ("a".to_string(), 1, 0)];
        assert_eq!(kept(&sent, all(), &reset), vec![("a".to_string(), 0)]);
        // Partition 0's task was closed (no longer this thread's): dropped.
        let revoked = vec![("a".to_string(), 1, 20)];
        assert_eq!(kept(&sent, all(), &revoked), vec![("a".to_string(), 1)]);
    }

    #[test]
    fn a_partition_the_prefetch_did_not_ask_for_is_dropped() {
        let sent = vec![("a".to_string(), 0, 10)];
        let now = vec![("a".to_string(), 0, 10), ("b".to_string(), 0, 10)];
        let got = kept(&sent, vec![fetched("b", 0, 12), fetched("a", 0, 11)], &now);
        assert_eq!(got, vec![("a".to_string(), 0)]);
    }
}
