//! Model test of one partition through the public `Log` API: random sequences of appends,
//! fetches, time lookups, rolls, retention, delete-records, transactions and restarts,
//! checked after every step against a plain in-memory model (sled's style).
//!
//! The model is a `Vec` of every offset ever written — data records with the transaction
//! they belong to, and transaction markers — plus the log start offset. Retention deletes
//! whole segments, whose boundaries the model does not know, so after a retention pass the
//! model adopts the log's new start once it has checked that the start only moved forward,
//! to a batch boundary, and never past the last stable offset.

use std::collections::BTreeSet;
use std::path::Path;

use bytes::Bytes;
use freshet_log::{
    Acks, Error, FetchOptions, Isolation, Log, LogConfig, Record, StoredRecord, TopicConfig,
    TransactionalProducer,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const TOPIC: &str = "t";
const TXN_ID: &str = "model-txn";

/// A record as the test generates it (timestamps always explicit, so the model knows them).
#[derive(Debug, Clone)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: i64,
    headers: Vec<(String, Vec<u8>)>,
}

impl Rec {
    fn to_record(&self) -> Record {
        Record {
            key: self.key.clone().map(Bytes::from),
            value: self.value.clone().map(Bytes::from),
            timestamp: Some(self.timestamp),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Bytes::from(v.clone())))
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A non-transactional batch (also during an open transaction).
    Append(Vec<Rec>),
    /// A read from an offset chosen from `-1 ..= end + 1` by the selector; then the same
    /// range consumed by fetches of at most `budget` bytes each.
    Fetch {
        at: u16,
        committed: bool,
        budget: u16,
    },
    /// `offset_for_time`.
    SeekTime(i64),
    /// Forces a roll of the active segment (segment.ms = 1, then a cleaner pass).
    Roll,
    /// Sets `retention.bytes`, runs the cleaner, unsets it.
    Retention {
        max_bytes: u64,
    },
    /// `delete_records` below an offset chosen from `0 ..= end + 1` by the selector.
    DeleteRecords {
        below: u16,
    },
    TxnBegin,
    TxnAppend(Vec<Rec>),
    TxnCommit,
    TxnAbort,
    /// Drops every handle and opens the data directory again.
    Restart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnState {
    Open,
    Committed,
    Aborted,
}

#[derive(Debug, Clone)]
enum Entry {
    /// A data record; `txn` indexes `Model::txns` for transactional records.
    Data { rec: Rec, txn: Option<usize> },
    /// A commit or abort marker (hidden from readers, but it takes an offset).
    Marker,
}

#[derive(Debug, Default)]
struct Model {
    /// Entry `i` is at offset `i`.
    entries: Vec<Entry>,
    start: i64,
    /// First offset of every batch (data or marker).
    batch_starts: BTreeSet<i64>,
    txns: Vec<TxnState>,
    /// The transaction the producer has open: its index and first offset here, if it wrote.
    open: Option<(usize, Option<i64>)>,
}

impl Model {
    fn end(&self) -> i64 {
        self.entries.len() as i64
    }

    /// The first offset of the open transaction, never below the log start; else the end.
    fn last_stable(&self) -> i64 {
        match self.open {
            Some((_, Some(first))) => first.max(self.start),
            _ => self.end(),
        }
    }

    fn push_batch(&mut self, recs: &[Rec], txn: Option<usize>) {
        self.batch_starts.insert(self.end());
        for rec in recs {
            self.entries.push(Entry::Data {
                rec: rec.clone(),
                txn,
            });
        }
    }

    fn push_marker(&mut self) {
        self.batch_starts.insert(self.end());
        self.entries.push(Entry::Marker);
    }

    /// Ends the open transaction; a marker is written only if it wrote here.
    fn end_txn(&mut self, state: TxnState) {
        if let Some((i, first)) = self.open.take() {
            self.txns[i] = state;
            if first.is_some() {
                self.push_marker();
            }
        }
    }

    fn visible(&self, from: i64, isolation: Isolation) -> Vec<(i64, &Rec)> {
        let limit = match isolation {
            Isolation::ReadCommitted => self.last_stable(),
            Isolation::ReadUncommitted => self.end(),
        };
        (from.max(self.start)..limit)
            .filter_map(|o| match &self.entries[o as usize] {
                Entry::Data { rec, txn } => {
                    let shown = isolation == Isolation::ReadUncommitted
                        || txn.is_none_or(|t| self.txns[t] == TxnState::Committed);
                    shown.then_some((o, rec))
                }
                Entry::Marker => None,
            })
            .collect()
    }

    fn offset_for_time(&self, ts: i64) -> Option<i64> {
        (self.start..self.end()).find(|&o| {
            matches!(&self.entries[o as usize], Entry::Data { rec, .. } if rec.timestamp >= ts)
        })
    }
}

fn same(stored: &StoredRecord, offset: i64, rec: &Rec) -> bool {
    stored.offset == offset
        && stored.timestamp == rec.timestamp
        && stored.key.as_deref() == rec.key.as_deref()
        && stored.value.as_deref() == rec.value.as_deref()
        && stored.headers.len() == rec.headers.len()
        && stored
            .headers
            .iter()
            .zip(&rec.headers)
            .all(|((k1, v1), (k2, v2))| k1 == k2 && v1[..] == v2[..])
}

fn check_records(
    got: &[StoredRecord],
    want: &[(i64, &Rec)],
    what: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        want.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        "offsets of {}",
        what
    );
    for (g, (o, r)) in got.iter().zip(want) {
        prop_assert!(same(g, *o, r), "{what}: at {o} got {g:?}, want {r:?}");
    }
    Ok(())
}

fn is_out_of_range(e: &Error, offset: i64, start: i64, end: i64) -> bool {
    matches!(e, Error::OffsetOutOfRange { topic, partition: 0, offset: o, start: s, end: en }
        if topic == TOPIC && *o == offset && *s == start && *en == end)
}

fn open(dir: &Path) -> Result<Log, Error> {
    Log::open_with(
        dir,
        LogConfig {
            cleaner_interval: None,
            index_interval_bytes: 128,
            ..LogConfig::default()
        },
    )
}

const ALL: usize = 1 << 30;

/// Checks offsets and the whole visible content, both isolations.
fn check_all(log: &Log, m: &Model) -> Result<(), TestCaseError> {
    let o = log.offsets(TOPIC, 0)?;
    prop_assert_eq!(
        (o.start, o.end, o.last_stable),
        (m.start, m.end(), m.last_stable()),
        "(start, end, last stable)"
    );
    for isolation in [Isolation::ReadCommitted, Isolation::ReadUncommitted] {
        let got = log.read(TOPIC, 0, m.start, ALL, isolation)?;
        check_records(
            &got,
            &m.visible(m.start, isolation),
            &format!("full read {isolation:?}"),
        )?;
    }
    Ok(())
}

/// Fetches from `offset` with a small per-partition budget until the readable limit: every
/// fetch makes progress, and together they return exactly what one big read would.
fn consume_in_small_fetches(
    log: &Log,
    m: &Model,
    offset: i64,
    isolation: Isolation,
    budget: u16,
) -> Result<(), TestCaseError> {
    let limit = match isolation {
        Isolation::ReadCommitted => m.last_stable(),
        Isolation::ReadUncommitted => m.end(),
    };
    let options = FetchOptions {
        isolation,
        max_bytes: ALL,
        max_partition_bytes: usize::from(budget),
        ..FetchOptions::default()
    };
    let mut at = offset;
    let mut got = Vec::new();
    while at < limit {
        let fetched = log.try_fetch(&[(TOPIC.to_string(), 0, at)], &options)?;
        prop_assert_eq!(fetched.len(), 1, "no progress at {} (limit {})", at, limit);
        let f = &fetched[0];
        prop_assert!(
            f.next_offset > at && f.next_offset <= limit,
            "fetch at {at} moved to {} (limit {limit})",
            f.next_offset
        );
        prop_assert!(f
            .records
            .iter()
            .all(|r| r.offset >= at && r.offset < f.next_offset));
        got.extend(f.records.iter().cloned());
        at = f.next_offset;
    }
    prop_assert!(
        log.try_fetch(&[(TOPIC.to_string(), 0, at)], &options)?
            .is_empty(),
        "data past the limit {limit}"
    );
    check_records(
        &got,
        &m.visible(offset, isolation),
        &format!("small fetches ({budget} bytes) {isolation:?} from {offset}"),
    )
}

fn set(log: &Log, key: &str, value: &str) -> Result<(), Error> {
    log.alter_topic(TOPIC, None, &[(key.to_string(), value.to_string())])
        .map(|_| ())
}

fn run(segment_bytes: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir()?;
    let mut log = open(dir.path())?;
    let config = TopicConfig::partitions(1)
        .with("segment.bytes", &segment_bytes.to_string())?
        .with("retention.ms", "-1")?;
    log.create_topic(TOPIC, config)?;
    let mut producer: Option<TransactionalProducer> = None;
    let mut m = Model::default();

    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append(recs) => {
                let records: Vec<Record> = recs.iter().map(Rec::to_record).collect();
                let at = log.append(TOPIC, 0, &records, Acks::Written)?;
                prop_assert_eq!(
                    (at.base_offset, at.last_offset),
                    (m.end(), m.end() + recs.len() as i64 - 1)
                );
                m.push_batch(&recs, None);
            }
            Op::Fetch {
                at,
                committed,
                budget,
            } => {
                let offset = i64::from(at) % (m.end() + 3) - 1;
                let isolation = if committed {
                    Isolation::ReadCommitted
                } else {
                    Isolation::ReadUncommitted
                };
                let in_range = offset >= m.start && offset <= m.end();
                match log.read(TOPIC, 0, offset, ALL, isolation) {
                    Ok(got) => {
                        prop_assert!(in_range, "read at {offset} should be out of range");
                        check_records(
                            &got,
                            &m.visible(offset, isolation),
                            &format!("read {isolation:?} at {offset}"),
                        )?;
                    }
                    Err(e) => prop_assert!(
                        !in_range && is_out_of_range(&e, offset, m.start, m.end()),
                        "read at {offset}: {e}"
                    ),
                }
                // The fetch path: same records, and the next position past markers and
                // aborted batches up to the readable limit.
                let options = FetchOptions {
                    isolation,
                    max_bytes: ALL,
                    max_partition_bytes: ALL,
                    ..FetchOptions::default()
                };
                match log.try_fetch(&[(TOPIC.to_string(), 0, offset)], &options) {
                    Ok(fetched) => {
                        prop_assert!(in_range, "fetch at {offset} should be out of range");
                        let want = m.visible(offset, isolation);
                        let limit = match isolation {
                            Isolation::ReadCommitted => m.last_stable(),
                            Isolation::ReadUncommitted => m.end(),
                        };
                        let next = offset.max(limit);
                        if want.is_empty() && next == offset {
                            prop_assert!(fetched.is_empty(), "fetch at {offset}: {fetched:?}");
                        } else {
                            prop_assert_eq!(fetched.len(), 1);
                            check_records(&fetched[0].records, &want, "fetch")?;
                            prop_assert_eq!(fetched[0].next_offset, next, "next offset");
                        }
                    }
                    Err(e) => prop_assert!(
                        !in_range && is_out_of_range(&e, offset, m.start, m.end()),
                        "fetch at {offset}: {e}"
                    ),
                }
                if in_range {
                    consume_in_small_fetches(&log, &m, offset, isolation, budget)?;
                }
            }
            Op::SeekTime(ts) => {
                prop_assert_eq!(
                    log.offset_for_time(TOPIC, 0, ts)?,
                    m.offset_for_time(ts),
                    "offset_for_time({})",
                    ts
                );
            }
            Op::Roll => {
                let before = log.describe_topic(TOPIC)?.partitions[0].segments;
                set(&log, "segment.ms", "1")?;
                std::thread::sleep(std::time::Duration::from_millis(3));
                log.run_cleaner()?;
                set(&log, "segment.ms", &(7 * 24 * 3600 * 1000i64).to_string())?;
                let after = log.describe_topic(TOPIC)?.partitions[0].segments;
                prop_assert!(after >= before, "a roll lost segments: {before} → {after}");
            }
            Op::Retention { max_bytes } => {
                let old_stable = m.last_stable();
                set(&log, "retention.bytes", &max_bytes.to_string())?;
                log.run_cleaner()?;
                set(&log, "retention.bytes", "-1")?;
                let o = log.offsets(TOPIC, 0)?;
                prop_assert_eq!(o.end, m.end(), "retention changed the end");
                prop_assert!(
                    o.start >= m.start,
                    "start moved back: {} → {}",
                    m.start,
                    o.start
                );
                if o.start != m.start {
                    prop_assert!(
                        o.start <= old_stable,
                        "retention passed the last stable offset {old_stable}: start {}",
                        o.start
                    );
                    prop_assert!(
                        m.batch_starts.contains(&o.start) || o.start == m.end(),
                        "new start {} is not a batch boundary",
                        o.start
                    );
                }
                m.start = o.start;
            }
            Op::DeleteRecords { below } => {
                let below = i64::from(below) % (m.end() + 2);
                match log.delete_records(TOPIC, 0, below) {
                    Ok(start) => {
                        prop_assert!(below <= m.end());
                        m.start = m.start.max(below);
                        prop_assert_eq!(start, m.start);
                    }
                    Err(e) => prop_assert!(
                        below > m.end() && is_out_of_range(&e, below, m.start, m.end()),
                        "delete_records below {below}: {e}"
                    ),
                }
            }
            Op::TxnBegin => {
                if producer.is_none() {
                    producer = Some(log.transactional_producer(TXN_ID, Acks::Written)?);
                }
                let p = producer.as_mut().expect("just created");
                match p.begin() {
                    Ok(()) => {
                        prop_assert!(m.open.is_none(), "begin inside a transaction");
                        m.txns.push(TxnState::Open);
                        m.open = Some((m.txns.len() - 1, None));
                    }
                    Err(e) => prop_assert!(
                        m.open.is_some() && matches!(e, Error::InvalidTxnState { .. }),
                        "begin: {e}"
                    ),
                }
            }
            Op::TxnAppend(recs) => {
                let records: Vec<Record> = recs.iter().map(Rec::to_record).collect();
                let result = match producer.as_mut() {
                    Some(p) => p.append(TOPIC, 0, &records),
                    None => {
                        prop_assert!(m.open.is_none());
                        continue;
                    }
                };
                match (result, m.open) {
                    (Ok(at), Some((i, first))) => {
                        prop_assert_eq!(at.base_offset, m.end());
                        m.open = Some((i, first.or(Some(m.end()))));
                        m.push_batch(&recs, Some(i));
                    }
                    (Err(Error::InvalidTxnState { .. }), None) => {}
                    (r, open) => prop_assert!(false, "txn append with open={open:?}: {r:?}"),
                }
            }
            Op::TxnCommit | Op::TxnAbort => {
                let commit = matches!(op, Op::TxnCommit);
                let Some(p) = producer.as_mut() else {
                    prop_assert!(m.open.is_none());
                    continue;
                };
                let result = if commit { p.commit() } else { p.abort() };
                match (result, m.open) {
                    (Ok(()), Some(_)) => m.end_txn(if commit {
                        TxnState::Committed
                    } else {
                        TxnState::Aborted
                    }),
                    (Err(Error::InvalidTxnState { .. }), None) => {}
                    (r, open) => prop_assert!(false, "txn end with open={open:?}: {r:?}"),
                }
            }
            Op::Restart => {
                // Every handle must go, the producer's clone of the log included.
                drop(producer.take());
                drop(log);
                log = open(dir.path())?;
                // Recovery aborts a transaction the dead owner left open.
                m.end_txn(TxnState::Aborted);
            }
        }
        check_all(&log, &m).map_err(|e| TestCaseError::fail(format!("after step {step}: {e}")))?;
    }
    // One last restart: everything still reads back the same.
    drop(producer);
    drop(log);
    let log = open(dir.path())?;
    m.end_txn(TxnState::Aborted);
    check_all(&log, &m)
}

fn bytes_strategy(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        6 => proptest::collection::vec(any::<u8>(), 0..max).prop_map(Some),
    ]
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    (
        // Few distinct keys, some null.
        prop_oneof![1 => Just(None), 4 => (0u8..6).prop_map(|k| Some(vec![b'k', k]))],
        bytes_strategy(40),
        0i64..10_000,
        proptest::collection::vec(
            ("[a-c]{1,3}", proptest::collection::vec(any::<u8>(), 0..4)),
            0..3,
        ),
    )
        .prop_map(|(key, value, timestamp, headers)| Rec {
            key,
            value,
            timestamp,
            headers,
        })
}

fn batch_strategy() -> impl Strategy<Value = Vec<Rec>> {
    proptest::collection::vec(rec_strategy(), 1..=5)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => batch_strategy().prop_map(Op::Append),
        6 => (any::<u16>(), any::<bool>(), 1u16..400).prop_map(|(at, committed, budget)| Op::Fetch {
            at,
            committed,
            budget
        }),
        3 => (0i64..11_000).prop_map(Op::SeekTime),
        1 => Just(Op::Roll),
        2 => (0u64..1500).prop_map(|max_bytes| Op::Retention { max_bytes }),
        2 => any::<u16>().prop_map(|below| Op::DeleteRecords { below }),
        3 => Just(Op::TxnBegin),
        5 => batch_strategy().prop_map(Op::TxnAppend),
        2 => Just(Op::TxnCommit),
        2 => Just(Op::TxnAbort),
        2 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn partition_matches_a_vec_model(
        segment_bytes in 256u64..1024,
        ops in proptest::collection::vec(op_strategy(), 1..60),
    ) {
        run(segment_bytes, ops)?;
    }
}
