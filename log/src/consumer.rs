//! Fetching: many partitions at once, awaiting data without busy polling; and a consumer
//! that keeps positions and seeks.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::fetched::{ReadOut, RecordBatches};
use crate::log::Log;
use crate::partition::{Isolation, ReadEnd};
use crate::record::StoredRecord;

/// Limits and isolation of a fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// About how many bytes in all (`fetch.max.bytes`, default 50 MiB).
    pub max_bytes: usize,
    /// About how many bytes per partition (`max.partition.fetch.bytes`, default 1 MiB).
    pub max_partition_bytes: usize,
    /// At most this many records in all (`max.poll.records`; default 10000).
    pub max_records: usize,
    /// Which records are visible (default read_committed).
    pub isolation: Isolation,
    /// How long to wait for data when none is there (`fetch.max.wait.ms`, default 500 ms).
    pub timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_bytes: 50 << 20,
            max_partition_bytes: 1 << 20,
            max_records: 10_000,
            isolation: Isolation::ReadCommitted,
            timeout: Duration::from_millis(500),
        }
    }
}

/// Records fetched from one partition.
#[derive(Debug, Clone)]
pub struct FetchedRecords {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The records, in offset order.
    pub records: Vec<StoredRecord>,
    /// Where the next fetch of this partition should start (past skipped markers and aborted
    /// batches too).
    pub next_offset: i64,
    /// Where the partition's readable records ended when it was read (as Kafka's fetch
    /// response carries the last stable offset): the last stable offset under
    /// read_committed, the log end otherwise. Above `next_offset`, more records wait.
    pub readable_end: i64,
}

/// Records fetched from one partition, kept in the log's batches ([`Log::fetch_batches`]).
#[derive(Debug, Clone)]
pub struct FetchedBatches {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The records, in offset order.
    pub records: RecordBatches,
    /// Where the next fetch of this partition should start (past skipped markers and aborted
    /// batches too).
    pub next_offset: i64,
    /// Where the partition's readable records ended when it was read (as Kafka's fetch
    /// response carries the last stable offset): the last stable offset under
    /// read_committed, the log end otherwise. Above `next_offset`, more records wait.
    pub readable_end: i64,
}

impl From<FetchedRecords> for FetchedBatches {
    fn from(f: FetchedRecords) -> Self {
        FetchedBatches {
            topic: f.topic,
            partition: f.partition,
            records: RecordBatches::from(f.records),
            next_offset: f.next_offset,
            readable_end: f.readable_end,
        }
    }
}

/// A fetch position: (topic, partition, offset).
pub type FetchPosition = (String, u32, i64);

impl Log {
    /// Fetches from many partitions at once. Returns as soon as any partition has records
    /// (or moved past markers), or empty after `options.timeout`.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] names the first partition whose position is outside
    /// its valid range; unknown topics and partitions are errors too.
    ///
    /// # Cancel safety
    /// Cancel safe: a fetch has no side effects.
    pub async fn fetch(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedRecords>> {
        self.fetch_with(positions, options, |p, o| self.try_fetch(p, o))
            .await
    }

    /// [`fetch`](Log::fetch), the records kept in their batches: for readers that take
    /// records one at a time (a stream thread), with no record materialized. A batch is
    /// returned whole: `max_records` ends the fetch at the batch that reaches it (so a
    /// batch is read from the file once, not once per `max_records` of it).
    ///
    /// # Errors
    /// As [`fetch`](Log::fetch).
    ///
    /// # Cancel safety
    /// Cancel safe: a fetch has no side effects.
    pub async fn fetch_batches(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedBatches>> {
        self.fetch_with(positions, options, |p, o| self.try_fetch_batches(p, o))
            .await
    }

    /// Passes of `attempt` until one returns data or the timeout passes.
    async fn fetch_with<T>(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
        attempt: impl Fn(&[FetchPosition], &FetchOptions) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let deadline = Instant::now() + options.timeout;
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let out = attempt(positions, options)?;
            if !out.is_empty() {
                return Ok(out);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(out);
            }
            if self.is_read_only() {
                // Another process writes: nothing wakes us, so look again shortly.
                tokio::time::sleep((deadline - now).min(Duration::from_millis(50))).await;
            } else {
                let _ = tokio::time::timeout_at(deadline, notified).await;
            }
        }
    }

    /// One non-waiting pass of [`Log::fetch`].
    pub fn try_fetch(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedRecords>> {
        self.try_fetch_into(
            positions,
            options,
            |topic, partition, records: Vec<_>, end: ReadEnd| FetchedRecords {
                topic,
                partition,
                records,
                next_offset: end.next_offset,
                readable_end: end.readable_end,
            },
        )
    }

    /// One non-waiting pass of [`Log::fetch_batches`].
    pub fn try_fetch_batches(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedBatches>> {
        self.try_fetch_into(
            positions,
            options,
            |topic, partition, records: RecordBatches, end: ReadEnd| FetchedBatches {
                topic,
                partition,
                records,
                next_offset: end.next_offset,
                readable_end: end.readable_end,
            },
        )
    }

    /// One pass reading each partition into an `O`, made into a `T` with its topic,
    /// partition and where the read ended.
    fn try_fetch_into<O: ReadOut + Default + Sized, T>(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
        make: impl Fn(String, u32, O, ReadEnd) -> T,
    ) -> Result<Vec<T>> {
        let which: Vec<(&str, u32)> = positions.iter().map(|(t, p, _)| (t.as_str(), *p)).collect();
        self.refresh_partitions(&which)?;
        let mut out = Vec::new();
        let mut bytes_left = options.max_bytes;
        let mut records_left = options.max_records;
        for (topic, partition, offset) in positions {
            if bytes_left == 0 || records_left == 0 {
                break;
            }
            let p = self.partition(topic, *partition)?;
            let budget = options.max_partition_bytes.min(bytes_left);
            // Decodes no more than the poll can return.
            let mut records = O::default();
            let end = p.read_into(
                *offset,
                budget,
                records_left,
                options.isolation,
                &mut records,
            )?;
            if records.count() == 0 && end.next_offset <= *offset {
                continue;
            }
            bytes_left = bytes_left.saturating_sub(records.size().max(1));
            records_left = records_left.saturating_sub(records.count());
            out.push(make(topic.clone(), *partition, records, end));
        }
        Ok(out)
    }

    /// A consumer with its own positions over this log.
    pub fn consumer(&self, options: FetchOptions) -> Consumer {
        Consumer {
            log: self.clone(),
            options,
            positions: BTreeMap::new(),
        }
    }
}

/// Where a consumer starts in a partition it has no position for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// The log start offset.
    Beginning,
    /// The end: the last stable offset under read_committed, else the log end offset.
    End,
    /// An exact offset.
    Offset(i64),
    /// The first offset whose timestamp is ≥ this (the end when none is).
    Timestamp(i64),
}

/// Reads assigned partitions from positions it keeps; `poll` advances them.
///
/// ```
/// use freshet_log::{Acks, FetchOptions, Log, Record, SeekTo, TopicConfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let log = Log::open(dir.path())?;
/// log.create_topic("t", TopicConfig::partitions(1))?;
/// log.append("t", 0, &[Record::new("k", "v1"), Record::new("k", "v2")], Acks::Written)?;
/// let mut consumer = log.consumer(FetchOptions::default());
/// consumer.assign("t", 0, SeekTo::Offset(1))?;
/// let batch = consumer.poll().await?;
/// assert_eq!(batch[0].records[0].value.as_deref(), Some(&b"v2"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Consumer {
    log: Log,
    options: FetchOptions,
    positions: BTreeMap<(String, u32), i64>,
}

impl Consumer {
    /// Adds a partition, positioned as `start` says.
    pub fn assign(&mut self, topic: &str, partition: u32, start: SeekTo) -> Result<()> {
        let offset = self.resolve(topic, partition, start)?;
        self.positions
            .insert((topic.to_string(), partition), offset);
        Ok(())
    }

    /// Removes a partition.
    pub fn unassign(&mut self, topic: &str, partition: u32) {
        self.positions.remove(&(topic.to_string(), partition));
    }

    /// The assigned partitions and their positions.
    pub fn positions(&self) -> &BTreeMap<(String, u32), i64> {
        &self.positions
    }

    /// Moves an assigned partition's position.
    pub fn seek(&mut self, topic: &str, partition: u32, to: SeekTo) -> Result<()> {
        self.assign(topic, partition, to)
    }

    fn resolve(&self, topic: &str, partition: u32, to: SeekTo) -> Result<i64> {
        let offsets = self.log.offsets(topic, partition)?;
        let end = match self.options.isolation {
            Isolation::ReadCommitted => offsets.last_stable,
            Isolation::ReadUncommitted => offsets.end,
        };
        Ok(match to {
            SeekTo::Beginning => offsets.start,
            SeekTo::End => end,
            SeekTo::Offset(o) => {
                if o < offsets.start || o > offsets.end {
                    return Err(Error::OffsetOutOfRange {
                        topic: topic.to_string(),
                        partition,
                        offset: o,
                        start: offsets.start,
                        end: offsets.end,
                    });
                }
                o
            }
            SeekTo::Timestamp(ts) => self
                .log
                .offset_for_time(topic, partition, ts)?
                .unwrap_or(offsets.end),
        })
    }

    /// Whether every assigned partition's position has reached its end (the last stable
    /// offset under read_committed).
    pub fn caught_up(&self) -> Result<bool> {
        for ((topic, p), &pos) in &self.positions {
            let o = self.log.offsets(topic, *p)?;
            let end = match self.options.isolation {
                Isolation::ReadCommitted => o.last_stable,
                Isolation::ReadUncommitted => o.end,
            };
            if pos < end {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Fetches from every assigned partition, waiting up to the fetch timeout for data, and
    /// advances positions past what it returns.
    pub async fn poll(&mut self) -> Result<Vec<FetchedRecords>> {
        let positions: Vec<_> = self
            .positions
            .iter()
            .map(|((t, p), o)| (t.clone(), *p, *o))
            .collect();
        let fetched = self.log.fetch(&positions, &self.options).await?;
        for f in &fetched {
            self.positions
                .insert((f.topic.clone(), f.partition), f.next_offset);
        }
        Ok(fetched)
    }
}
