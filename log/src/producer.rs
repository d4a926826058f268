//! The producer: partitioning, batching with linger, and acknowledgements.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::oneshot;

use crate::config::Acks;
use crate::error::{Error, Result};
use crate::log::{AppendResult, Log};
use crate::partitioner::partition_for_key;
use crate::record::Record;

/// Producer settings, with Kafka's names.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// When a send is acknowledged (`acks`); default [`Acks::Written`].
    pub acks: Acks,
    /// How long a batch may wait for more records before it is written (`linger.ms`,
    /// default 5 ms as in Kafka 4). Lingering needs a tokio runtime; outside one, every send
    /// is written at once.
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

type Waiter = oneshot::Sender<Result<AppendResult>>;

#[derive(Debug)]
struct PendingBatch {
    records: Vec<Record>,
    bytes: usize,
    created: Instant,
    waiters: Vec<Option<Waiter>>,
}

#[derive(Debug, Default)]
struct Accumulator {
    batches: HashMap<(String, u32), PendingBatch>,
    /// Null-key partition per topic: (partition, bytes produced to it so far).
    sticky: HashMap<String, (u32, usize)>,
    flusher_running: bool,
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
/// without a timestamp with the append time, and acknowledges
/// each with its partition and offset once written as `acks` requires.
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
#[derive(Debug)]
pub struct SendFuture {
    state: SendState,
}

#[derive(Debug)]
enum SendState {
    Ready(Option<Result<AppendResult>>),
    Waiting(oneshot::Receiver<Result<AppendResult>>),
}

impl Future for SendFuture {
    type Output = Result<AppendResult>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            SendState::Ready(r) => Poll::Ready(r.take().unwrap_or(Err(Error::Closed))),
            SendState::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(Error::Closed))),
        }
    }
}

impl SendFuture {
    fn ready(r: Result<AppendResult>) -> SendFuture {
        SendFuture {
            state: SendState::Ready(Some(r)),
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

fn record_size(r: &Record) -> usize {
    16 + r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + r.headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>()
}

impl Producer {
    /// Sends a record, partitioned by its key; the future resolves on acknowledgement.
    pub fn send(&self, topic: &str, record: Record) -> SendFuture {
        self.send_inner(topic, None, record)
    }

    /// Sends a record to an explicit partition.
    pub fn send_to(&self, topic: &str, partition: u32, record: Record) -> SendFuture {
        self.send_inner(topic, Some(partition), record)
    }

    /// Sends and waits for the acknowledgement without an async runtime (flushes at once).
    pub fn send_blocking(&self, topic: &str, record: Record) -> Result<AppendResult> {
        let mut fut = self.send(topic, record);
        self.flush()?;
        match &mut fut.state {
            SendState::Ready(r) => r.take().unwrap_or(Err(Error::Closed)),
            SendState::Waiting(rx) => rx.try_recv().unwrap_or(Err(Error::Closed)),
        }
    }

    fn send_inner(&self, topic: &str, partition: Option<u32>, record: Record) -> SendFuture {
        let inner = &self.inner;
        let n = match inner.log.partition_count(topic) {
            Ok(n) => n,
            Err(e) => return SendFuture::ready(Err(e)),
        };
        let size = record_size(&record);
        let mut acc = inner.acc.lock();
        let partition = match (partition, record.key.as_deref()) {
            (Some(p), _) if p >= n => {
                return SendFuture::ready(Err(Error::UnknownPartition {
                    topic: topic.to_string(),
                    partition: p,
                    partitions: n,
                }))
            }
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, n),
            (None, None) => sticky_partition(&mut acc, topic, n, size, inner.config.batch_size),
        };
        let batch = acc
            .batches
            .entry((topic.to_string(), partition))
            .or_insert_with(|| PendingBatch {
                records: Vec::new(),
                bytes: 0,
                created: Instant::now(),
                waiters: Vec::new(),
            });
        batch.records.push(record);
        batch.bytes += size;
        let fut = if inner.config.acks == Acks::None {
            batch.waiters.push(None);
            SendFuture::ready(Ok(AppendResult {
                partition,
                base_offset: -1,
                last_offset: -1,
            }))
        } else {
            let (tx, rx) = oneshot::channel();
            batch.waiters.push(Some(tx));
            SendFuture {
                state: SendState::Waiting(rx),
            }
        };
        let full = batch.bytes >= inner.config.batch_size;
        let runtime = tokio::runtime::Handle::try_current().ok();
        if full || inner.config.linger.is_zero() || runtime.is_none() {
            let key = (topic.to_string(), partition);
            drop(acc);
            let _writing = inner.writing.lock();
            let batch = inner.acc.lock().batches.remove(&key);
            if let Some(b) = batch {
                // A failure reaches every waiter of the batch through its future.
                let _ = write_batch(inner, &key.0, key.1, b);
            }
        } else if !acc.flusher_running {
            acc.flusher_running = true;
            if let Some(rt) = runtime {
                rt.spawn(linger_flusher(Arc::downgrade(&self.inner)));
            }
        }
        fut
    }

    /// Writes every lingering batch now and waits for them to be acknowledged.
    pub fn flush(&self) -> Result<()> {
        let _writing = self.inner.writing.lock();
        let batches: Vec<((String, u32), PendingBatch)> =
            self.inner.acc.lock().batches.drain().collect();
        let mut first_err = None;
        for ((topic, p), b) in batches {
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

fn sticky_partition(
    acc: &mut Accumulator,
    topic: &str,
    n: u32,
    size: usize,
    batch_size: usize,
) -> u32 {
    let mut rng = rand::thread_rng();
    let entry = acc
        .sticky
        .entry(topic.to_string())
        .or_insert_with(|| (rng.gen_range(0..n), 0));
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

/// Appends a batch and resolves its waiters; returns the append's error, if any.
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
    match inner.log.append(topic, partition, &batch.records, acks) {
        Ok(res) => {
            for (i, w) in batch.waiters.into_iter().enumerate() {
                if let Some(w) = w {
                    let offset = res.base_offset + i as i64;
                    let _ = w.send(Ok(AppendResult {
                        partition,
                        base_offset: offset,
                        last_offset: offset,
                    }));
                }
            }
            Ok(())
        }
        Err(e) => {
            let text = e.to_string();
            tracing::warn!(topic, partition, error = %text, "produce failed");
            for w in batch.waiters.into_iter().flatten() {
                let _ = w.send(Err(clone_error(&e)));
            }
            Err(e)
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
    let due: Vec<((String, u32), PendingBatch)>;
    let next_wake;
    {
        let mut acc = inner.acc.lock();
        if acc.batches.is_empty() {
            acc.flusher_running = false;
            return None;
        }
        let keys: Vec<(String, u32)> = acc
            .batches
            .iter()
            .filter(|(_, b)| now.duration_since(b.created) >= linger)
            .map(|(k, _)| k.clone())
            .collect();
        due = keys
            .into_iter()
            .filter_map(|k| acc.batches.remove(&k).map(|b| (k, b)))
            .collect();
        next_wake = acc
            .batches
            .values()
            .map(|b| (b.created + linger).saturating_duration_since(now))
            .min()
            .unwrap_or(linger);
    }
    for ((topic, p), b) in due {
        let _ = write_batch(inner, &topic, p, b);
    }
    Some(next_wake)
}
