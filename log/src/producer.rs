//! The producer: partitioning, batching with linger, and acknowledgements.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;

use crate::batch::BatchEncoder;
use crate::config::Acks;
use crate::error::{Error, Result};
use crate::log::{AppendResult, Log};
use crate::partition::now_ms;
use crate::partitioner::partition_for_key;
use crate::record::{Record, RecordRef};

/// Producer settings, with Kafka's names.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// When a send is acknowledged (`acks`); default [`Acks::Written`].
    pub acks: Acks,
    /// How long a batch may wait for more records before it is written (`linger.ms`,
    /// default 5 ms as in Kafka 4). Lingering needs a tokio runtime; outside one, a send is
    /// written at once (unless a batch started inside one is already lingering: then the
    /// send joins it and is written with it).
    pub linger: Duration,
    /// A batch is written as soon as it holds this many bytes (`batch.size`, default 16384);
    /// also the sticky partitioner's switch size.
    pub batch_size: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::Written,
            linger: Duration::from_millis(5),
            batch_size: 16384,
        }
    }
}

/// Most a batch's buffer is given up front; larger `batch.size`s grow as they fill.
const MAX_PREALLOCATED: usize = 1 << 20;

/// What one batch's sends share: the batch's outcome once it is written, and the tasks
/// waiting for it. One per batch instead of a channel per record, so a send costs a
/// reference count, not an allocation; record `i` of the batch is at `base_offset + i`.
#[derive(Debug)]
struct BatchCompletion {
    partition: u32,
    /// The base offset, or why the batch was not written; [`ACKED_UNWRITTEN`] for sends
    /// acknowledged before they are written (`acks=none`).
    outcome: OnceLock<Result<i64, Error>>,
    /// Wakers of the sends polled before the outcome was set; a send keeps its slot so a
    /// repeated poll replaces its waker instead of adding one.
    wakers: Mutex<Vec<Option<Waker>>>,
}

/// The outcome of an `acks=none` send: acknowledged at once, with offset -1.
const ACKED_UNWRITTEN: i64 = -1;

impl BatchCompletion {
    fn new(partition: u32) -> BatchCompletion {
        BatchCompletion {
            partition,
            outcome: OnceLock::new(),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// A completion that is already done: `acks=none` sends and refused ones.
    fn done(partition: u32, outcome: Result<i64, Error>) -> BatchCompletion {
        BatchCompletion {
            partition,
            outcome: OnceLock::from(outcome),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// Record `index`'s acknowledgement, once the batch is written.
    #[inline]
    fn get(&self, index: u32) -> Option<Result<AppendResult>> {
        self.outcome.get().map(|outcome| match outcome {
            Ok(base) => {
                let offset = if *base == ACKED_UNWRITTEN {
                    ACKED_UNWRITTEN
                } else {
                    base + i64::from(index)
                };
                Ok(AppendResult {
                    partition: self.partition,
                    base_offset: offset,
                    last_offset: offset,
                })
            }
            Err(e) => Err(clone_error(e)),
        })
    }

    /// Sets the outcome (the first one wins) and wakes every waiting send.
    fn complete(&self, outcome: Result<i64, Error>) {
        let _ = self.outcome.set(outcome);
        // Taken under the lock a poller re-checks the outcome under, so no waker added
        // after the check above can be missed.
        let wakers = std::mem::take(&mut *self.wakers.lock());
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }
}

/// Completes a batch's sends with [`Error::Closed`] when the batch is dropped unwritten
/// (the producer went away with it lingering), so no send waits forever.
#[derive(Debug)]
struct Completer(Arc<BatchCompletion>);

impl Drop for Completer {
    fn drop(&mut self) {
        if self.0.outcome.get().is_none() {
            self.0.complete(Err(Error::Closed));
        }
    }
}

/// A batch being filled: its records are encoded as they are sent (as Kafka's producer
/// does), so nothing per record is kept but the bytes.
#[derive(Debug)]
struct PendingBatch {
    enc: BatchEncoder,
    /// What counts toward `batch.size` ([`record_size`] of each record).
    bytes: usize,
    created: Instant,
    completer: Completer,
    /// With `acks=none`: what the sends get instead, acknowledged at once.
    acked: Option<Arc<BatchCompletion>>,
}

/// The batches of one topic, by partition.
#[derive(Debug)]
struct TopicBatches {
    name: String,
    /// The topic's partition count as last looked up: again whenever a batch is started
    /// and when a send names a partition past it, so an `alter_topic` that adds partitions
    /// is seen by the next batch (as Kafka's producer sees it at its next metadata refresh).
    partitions: u32,
    batches: Vec<Option<PendingBatch>>,
    /// Null-key partition: (partition, bytes produced to it so far).
    sticky: Option<(u32, usize)>,
}

impl TopicBatches {
    fn set_partitions(&mut self, n: u32) {
        self.partitions = n;
        if self.batches.len() < n as usize {
            self.batches.resize_with(n as usize, || None);
        }
    }
}

#[derive(Debug, Default)]
struct Accumulator {
    /// Topics ever sent to; never removed, so an index stays valid while the lock is let go.
    topics: Vec<TopicBatches>,
    by_name: HashMap<String, usize>,
    /// The topic of the last send: a bulk load sends to one topic, and comparing its name
    /// is cheaper than hashing it.
    last: usize,
    /// Batches in `topics`.
    open: usize,
    flusher_running: bool,
}

/// `a == b` for short names without a `memcmp` call (it costs more than the comparison
/// for a topic name, and this runs on every send).
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

impl Accumulator {
    /// The index of `topic`'s batches, looking the topic up in the log the first time.
    fn topic_index(&mut self, log: &Log, topic: &str) -> Result<usize> {
        if self
            .topics
            .get(self.last)
            .is_some_and(|t| same_name(&t.name, topic))
        {
            return Ok(self.last);
        }
        let i = match self.by_name.get(topic) {
            Some(&i) => i,
            None => {
                let n = log.partition_count(topic)?;
                let mut t = TopicBatches {
                    name: topic.to_string(),
                    partitions: 0,
                    batches: Vec::new(),
                    sticky: None,
                };
                t.set_partitions(n);
                self.topics.push(t);
                self.by_name
                    .insert(topic.to_string(), self.topics.len() - 1);
                self.topics.len() - 1
            }
        };
        self.last = i;
        Ok(i)
    }

    /// Takes the batch of partition `p` of topic `t` out, if there is one.
    fn take(&mut self, t: usize, p: u32) -> Option<PendingBatch> {
        let b = self.topics.get_mut(t)?.batches.get_mut(p as usize)?.take();
        if b.is_some() {
            self.open -= 1;
        }
        b
    }

    /// Takes out every batch that `due` says is ready, with its topic and partition.
    fn take_where(
        &mut self,
        mut due: impl FnMut(&PendingBatch) -> bool,
    ) -> Vec<(String, u32, PendingBatch)> {
        let mut out = Vec::new();
        for t in &mut self.topics {
            for (p, slot) in t.batches.iter_mut().enumerate() {
                if slot.as_ref().is_some_and(&mut due) {
                    if let Some(b) = slot.take() {
                        out.push((t.name.clone(), p as u32, b));
                    }
                }
            }
        }
        self.open -= out.len();
        out
    }
}

#[derive(Debug)]
struct ProducerInner {
    log: Log,
    config: ProducerConfig,
    acc: Mutex<Accumulator>,
    /// Held from taking batches out of `acc` until they are written, so the batches of a
    /// partition reach the log in the order they were filled (the linger flusher and a
    /// send that fills a batch would otherwise race, reordering one sender's records).
    writing: Mutex<()>,
}

/// Sends records to topics: picks the partition (explicit, else Kafka's default
/// partitioner on the key bytes, else sticky for null keys), batches them, stamps records
/// without a timestamp with the time they are sent (as Kafka's producer does), and
/// acknowledges each with its partition and offset once written as `acks` requires.
///
/// A partition's batch is encoded as records are sent into it; when it is full (or has
/// lingered) one append writes it. A topic's partition count is looked up again whenever
/// a batch is started, so partitions added by [`Log::alter_topic`] are used from the next
/// batch on.
///
/// ```
/// use freshet_log::{Log, Record, TopicConfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let log = Log::open(dir.path())?;
/// log.create_topic("t", TopicConfig::partitions(4))?;
/// let producer = log.producer(Default::default());
/// let ack = producer.send("t", Record::new("foobar", "v")).await?;
/// assert_eq!((ack.partition, ack.base_offset), (2, 0)); // murmur2("foobar") % 4 == 2
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

/// Resolves when a sent record is acknowledged.
///
/// 16 bytes: a bulk sender may hold hundreds of thousands of these at once.
#[derive(Debug)]
pub struct SendFuture {
    /// The record's batch (or, for a send refused or acknowledged at once, a completion of
    /// its own that is already done).
    batch: Arc<BatchCompletion>,
    /// The record's place in its batch.
    index: u32,
    /// This send's entry in the batch's wakers, once it has waited ([`NO_SLOT`] before).
    slot: u32,
}

/// [`SendFuture::slot`] of a send that has not waited yet.
const NO_SLOT: u32 = u32::MAX;

impl Future for SendFuture {
    type Output = Result<AppendResult>;
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A send takes from the task's cooperative budget, as tokio's own channels do: a
        // task awaiting sends whose batches are already written would otherwise never
        // yield, starving the linger flusher and every other task on its worker.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        if let Some(r) = self.try_take() {
            coop.made_progress();
            return Poll::Ready(r);
        }
        let this = &mut *self;
        let mut wakers = this.batch.wakers.lock();
        // Again under the lock `complete` takes the wakers under.
        if this.batch.outcome.get().is_some() {
            drop(wakers);
            coop.made_progress();
            return Poll::Ready(this.try_take().unwrap_or(Err(Error::Closed)));
        }
        match wakers.get_mut(this.slot as usize) {
            Some(Some(w)) if w.will_wake(cx.waker()) => {}
            Some(w) => *w = Some(cx.waker().clone()),
            None => {
                this.slot = wakers.len() as u32;
                wakers.push(Some(cx.waker().clone()));
            }
        }
        Poll::Pending
    }
}

impl SendFuture {
    /// A send refused before it joined a batch.
    fn failed(e: Error) -> SendFuture {
        SendFuture {
            batch: Arc::new(BatchCompletion::done(0, Err(e))),
            index: 0,
            slot: NO_SLOT,
        }
    }

    /// The acknowledgement if it is there, without waiting.
    #[inline]
    fn try_take(&mut self) -> Option<Result<AppendResult>> {
        match self.batch.outcome.get()? {
            Ok(_) => self.batch.get(self.index),
            // The only send left holding the outcome gets the error itself (a refused send
            // always is); the others get an equivalent.
            Err(_) => match Arc::get_mut(&mut self.batch).and_then(|b| b.outcome.take()) {
                Some(Err(e)) => Some(Err(e)),
                _ => self.batch.get(self.index),
            },
        }
    }
}

impl Log {
    /// A producer writing to this log.
    pub fn producer(&self, config: ProducerConfig) -> Producer {
        Producer {
            inner: Arc::new(ProducerInner {
                log: self.clone(),
                config,
                acc: Mutex::new(Accumulator::default()),
                writing: Mutex::new(()),
            }),
        }
    }
}

/// What a record counts toward `batch.size`.
fn record_size(r: &RecordRef<'_>) -> usize {
    let mut size = 16 + r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len);
    if !r.headers.is_empty() {
        size += r
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>();
    }
    size
}

impl Producer {
    /// Sends a record, partitioned by its key; the future resolves on acknowledgement.
    #[inline]
    pub fn send(&self, topic: &str, record: Record) -> SendFuture {
        // The record is copied into its batch at once; it is dropped here, outside the lock.
        self.send_inner(topic, None, &RecordRef::from(&record))
    }

    /// Sends a record to an explicit partition.
    #[inline]
    pub fn send_to(&self, topic: &str, partition: u32, record: Record) -> SendFuture {
        self.send_inner(topic, Some(partition), &RecordRef::from(&record))
    }

    /// Sends a borrowed record, partitioned by its key, like [`Producer::send`].
    ///
    /// A record is encoded into its batch when it is sent, so the producer never needs to
    /// own it: a sender that serializes keys and values into a buffer of its own can send
    /// from there, with nothing allocated or reference-counted per record (a [`Record`]
    /// holds two `Bytes`).
    ///
    /// ```
    /// use freshet_log::{Log, RecordRef, TopicConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("t", TopicConfig::partitions(4))?;
    /// let producer = log.producer(Default::default());
    /// let mut buf = Vec::new();
    /// buf.extend_from_slice(b"foobar");
    /// let ack = producer.send_ref("t", RecordRef::new(&buf, b"v")).await?;
    /// assert_eq!((ack.partition, ack.base_offset), (2, 0));
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn send_ref(&self, topic: &str, record: RecordRef<'_>) -> SendFuture {
        self.send_inner(topic, None, &record)
    }

    /// Sends a borrowed record to an explicit partition, like [`Producer::send_to`].
    #[inline]
    pub fn send_ref_to(&self, topic: &str, partition: u32, record: RecordRef<'_>) -> SendFuture {
        self.send_inner(topic, Some(partition), &record)
    }

    /// Sends and waits for the acknowledgement without an async runtime (flushes at once).
    pub fn send_blocking(&self, topic: &str, record: Record) -> Result<AppendResult> {
        let mut fut = self.send(topic, record);
        self.flush()?;
        fut.try_take().unwrap_or(Err(Error::Closed))
    }

    fn send_inner(
        &self,
        topic: &str,
        partition: Option<u32>,
        record: &RecordRef<'_>,
    ) -> SendFuture {
        let inner = &*self.inner;
        let size = record_size(record);
        let mut acc = inner.acc.lock();
        let (t, p) = match place(
            &mut acc,
            &inner.log,
            &inner.config,
            topic,
            partition,
            record,
            size,
        ) {
            Ok(tp) => tp,
            Err(e) => return SendFuture::failed(e),
        };
        let Accumulator {
            topics,
            open,
            flusher_running,
            ..
        } = &mut *acc;
        let slot = &mut topics[t].batches[p as usize];
        let batch = match slot {
            Some(b) => b,
            None => {
                *open += 1;
                let mut enc = BatchEncoder::new(0, None, false);
                // Room for a full batch up front (as Kafka's producer allocates `batch.size`
                // per batch), so a filling batch is not copied as it grows.
                enc.reserve(inner.config.batch_size.min(MAX_PREALLOCATED));
                slot.insert(PendingBatch {
                    enc,
                    bytes: 0,
                    created: Instant::now(),
                    completer: Completer(Arc::new(BatchCompletion::new(p))),
                    acked: (inner.config.acks == Acks::None)
                        .then(|| Arc::new(BatchCompletion::done(p, Ok(ACKED_UNWRITTEN)))),
                })
            }
        };
        // Kafka's producer stamps a record without a timestamp when it is sent, too.
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let index = batch.enc.len();
        batch.enc.push(
            i64::from(index),
            timestamp,
            record.key,
            record.value,
            record.headers,
        );
        batch.bytes += size;
        let fut = SendFuture {
            batch: batch.acked.as_ref().unwrap_or(&batch.completer.0).clone(),
            index,
            slot: NO_SLOT,
        };
        let mut write_now = batch.bytes >= inner.config.batch_size || inner.config.linger.is_zero();
        // A lingering batch needs the flusher; the runtime is looked up only to start it,
        // not on every send.
        if !write_now && !*flusher_running {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    *flusher_running = true;
                    rt.spawn(linger_flusher(Arc::downgrade(&self.inner)));
                }
                Err(_) => write_now = true,
            }
        }
        if write_now {
            drop(acc);
            let _writing = inner.writing.lock();
            let batch = inner.acc.lock().take(t, p);
            if let Some(b) = batch {
                // A failure reaches every waiter of the batch through its future.
                let _ = write_batch(inner, topic, p, b);
            }
        }
        fut
    }

    /// Writes every lingering batch now and waits for them to be acknowledged.
    pub fn flush(&self) -> Result<()> {
        let _writing = self.inner.writing.lock();
        let batches = self.inner.acc.lock().take_where(|_| true);
        let mut first_err = None;
        for (topic, p, b) in batches {
            if let Err(e) = write_batch(&self.inner, &topic, p, b) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The producer's settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }
}

/// Picks the topic's batches and the partition for a send: explicit, else Kafka's default
/// partitioner on the key, else sticky. The partition count is the cached one unless the
/// send needs a new batch or names a partition past it; then it is looked up again.
fn place(
    acc: &mut Accumulator,
    log: &Log,
    config: &ProducerConfig,
    topic: &str,
    partition: Option<u32>,
    record: &RecordRef<'_>,
    size: usize,
) -> Result<(usize, u32)> {
    let t = acc.topic_index(log, topic)?;
    let tb = &mut acc.topics[t];
    let mut refreshed = false;
    loop {
        let n = tb.partitions;
        let p = match (partition, record.key) {
            (Some(p), _) if p >= n && !refreshed => {
                refreshed = true;
                tb.set_partitions(log.partition_count(topic)?);
                continue;
            }
            (Some(p), _) if p >= n => {
                return Err(Error::UnknownPartition {
                    topic: topic.to_string(),
                    partition: p,
                    partitions: n,
                })
            }
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, n),
            (None, None) => sticky_partition(&mut tb.sticky, n, size, config.batch_size),
        };
        let has_batch = tb.batches.get(p as usize).is_some_and(Option::is_some);
        if has_batch || refreshed {
            return Ok((t, p));
        }
        // A new batch: the topic may have grown (or been deleted) since the last look.
        refreshed = true;
        let fresh = log.partition_count(topic)?;
        if fresh == n {
            return Ok((t, p));
        }
        tb.set_partitions(fresh);
    }
}

fn sticky_partition(
    sticky: &mut Option<(u32, usize)>,
    n: u32,
    size: usize,
    batch_size: usize,
) -> u32 {
    let mut rng = rand::thread_rng();
    let entry = sticky.get_or_insert_with(|| (rng.gen_range(0..n), 0));
    if entry.0 >= n || entry.1 >= batch_size {
        let mut next = rng.gen_range(0..n);
        if n > 1 && next == entry.0 {
            next = (next + 1) % n;
        }
        *entry = (next, 0);
    }
    entry.1 += size;
    entry.0
}

/// Appends a batch and resolves its sends; returns the append's error, if any.
fn write_batch(
    inner: &ProducerInner,
    topic: &str,
    partition: u32,
    batch: PendingBatch,
) -> Result<()> {
    let acks = if inner.config.acks == Acks::Synced {
        Acks::Synced
    } else {
        Acks::Written
    };
    let PendingBatch { enc, completer, .. } = batch;
    match inner.log.append_encoded(topic, partition, enc, acks) {
        Ok(res) => {
            completer.0.complete(Ok(res.base_offset));
            Ok(())
        }
        Err(e) => {
            let text = e.to_string();
            tracing::warn!(topic, partition, error = %text, "produce failed");
            let returned = clone_error(&e);
            completer.0.complete(Err(e));
            Err(returned)
        }
    }
}

/// Errors are not `Clone` (they may hold an `io::Error`); each waiter gets an equivalent.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::Io { op, path, source } => Error::Io {
            op,
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::DiskFull { path } => Error::DiskFull { path: path.clone() },
        Error::UnknownTopic { topic } => Error::UnknownTopic {
            topic: topic.clone(),
        },
        Error::Poisoned { topic, partition } => Error::Poisoned {
            topic: topic.clone(),
            partition: *partition,
        },
        Error::RecordTooLarge {
            topic,
            partition,
            size,
            max,
        } => Error::RecordTooLarge {
            topic: topic.clone(),
            partition: *partition,
            size: *size,
            max: *max,
        },
        other => Error::SendFailed {
            reason: other.to_string(),
        },
    }
}

async fn linger_flusher(weak: Weak<ProducerInner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let Some(next_wake) = write_due(&inner) else {
            return;
        };
        drop(inner);
        tokio::time::sleep(next_wake.max(Duration::from_micros(100))).await;
    }
}

/// Writes the batches that have lingered long enough; returns how long until the next is
/// due, or `None` (and marks the flusher stopped) when nothing is left.
fn write_due(inner: &ProducerInner) -> Option<Duration> {
    let linger = inner.config.linger;
    let _writing = inner.writing.lock();
    let now = Instant::now();
    let due;
    let mut next_wake = linger;
    {
        let mut acc = inner.acc.lock();
        if acc.open == 0 {
            acc.flusher_running = false;
            return None;
        }
        due = acc.take_where(|b| {
            let lingered = now.duration_since(b.created);
            if lingered >= linger {
                return true;
            }
            next_wake = next_wake.min(linger - lingered);
            false
        });
    }
    for (topic, p, b) in due {
        let _ = write_batch(inner, &topic, p, b);
    }
    Some(next_wake)
}
