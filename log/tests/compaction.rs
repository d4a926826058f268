//! Compaction of `compact` topics: the latest record per key survives at its offset,
//! tombstones and markers age out, the active segment and everything from the last stable
//! offset on are left alone, and aborted transactions never win.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use freshet_log::{
    Acks, Isolation, Log, LogConfig, Record, StoredRecord, TopicConfig, TransactionalProducer,
};
use proptest::prelude::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const T: &str = "table";
const HOUR: i64 = 3_600_000;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn open(dir: &Path) -> freshet_log::Result<Log> {
    Log::open_with(
        dir,
        LogConfig {
            cleaner_interval: None,
            ..LogConfig::default()
        },
    )
}

/// A compacted topic of one partition with ~3 single-record batches per segment.
fn compacted(extra: &[(&str, &str)]) -> freshet_log::Result<TopicConfig> {
    let mut c = TopicConfig::partitions(1)
        .with("cleanup.policy", "compact")?
        .with("segment.bytes", "200")?;
    for (k, v) in extra {
        c.set(k, v)?;
    }
    Ok(c)
}

fn rec(key: &str, value: &str, ts: i64) -> Record {
    Record::new(key.to_string(), value.to_string()).with_timestamp(ts)
}

fn tombstone(key: &str, ts: i64) -> Record {
    Record {
        key: Some(Bytes::from(key.to_string())),
        value: None,
        timestamp: Some(ts),
        headers: Vec::new(),
    }
}

fn put(log: &Log, record: Record) -> freshet_log::Result<i64> {
    Ok(log.append(T, 0, &[record], Acks::Written)?.base_offset)
}

/// Pushes everything written so far out of the active segment (6 distinct-key batches).
fn fill(log: &Log, ts: i64) -> freshet_log::Result<()> {
    for i in 0..6 {
        put(log, rec(&format!("filler-{i}"), "f", ts))?;
    }
    Ok(())
}

fn read_all(log: &Log, isolation: Isolation) -> freshet_log::Result<Vec<StoredRecord>> {
    let start = log.offsets(T, 0)?.start;
    log.read(T, 0, start, 1 << 30, isolation)
}

fn key(r: &StoredRecord) -> String {
    String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned()
}

fn value(r: &StoredRecord) -> Option<String> {
    r.value
        .as_deref()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Each key's records, in offset order.
fn by_key(records: &[StoredRecord]) -> BTreeMap<String, Vec<StoredRecord>> {
    let mut m: BTreeMap<String, Vec<StoredRecord>> = BTreeMap::new();
    for r in records {
        m.entry(key(r)).or_default().push(r.clone());
    }
    m
}

fn assert_strictly_increasing(records: &[StoredRecord]) {
    for w in records.windows(2) {
        assert!(
            w[0].offset < w[1].offset,
            "offsets out of order: {} then {}",
            w[0].offset,
            w[1].offset
        );
    }
}

#[test]
fn latest_value_per_key_is_kept_at_its_original_offset() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, compacted(&[])?)?;
    let ts = now();
    let mut last = BTreeMap::new();
    for round in 0..10 {
        for k in ["a", "b", "c"] {
            let v = format!("{k}{round}");
            last.insert(k, (put(&log, rec(k, &v, ts))?, v));
        }
    }
    fill(&log, ts)?;
    let offsets = log.offsets(T, 0)?;
    let before: BTreeMap<i64, StoredRecord> = read_all(&log, Isolation::ReadUncommitted)?
        .into_iter()
        .map(|r| (r.offset, r))
        .collect();

    let stats = log.run_cleaner()?;
    assert_eq!(stats.partitions_failed, 0);
    assert!(stats.segments_cleaned > 0, "{stats:?}");
    assert_eq!(
        stats.records_removed, 27,
        "9 older values of each of a, b, c"
    );
    assert!(stats.bytes_after < stats.bytes_before, "{stats:?}");

    let after = read_all(&log, Isolation::ReadCommitted)?;
    assert_strictly_increasing(&after);
    for r in &after {
        assert_eq!(
            Some(r),
            before.get(&r.offset),
            "record changed at {}",
            r.offset
        );
    }
    let keys = by_key(&after);
    for (k, (offset, v)) in &last {
        let kept = &keys[*k];
        assert_eq!(kept.len(), 1, "one record of {k} left");
        assert_eq!(
            (kept[0].offset, value(&kept[0])),
            (*offset, Some(v.clone()))
        );
    }
    assert_eq!(log.offsets(T, 0)?, offsets, "offsets do not move");

    // A second pass finds nothing to do; a reopened log reads the same.
    assert_eq!(log.run_cleaner()?.records_removed, 0);
    drop(log);
    let log = open(dir.path())?;
    assert_eq!(read_all(&log, Isolation::ReadCommitted)?, after);
    assert_eq!(log.offsets(T, 0)?, offsets);
    Ok(())
}

#[test]
fn tombstones_are_dropped_only_after_delete_retention() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, compacted(&[("delete.retention.ms", "60000")])?)?;
    let now = now();
    put(&log, rec("old", "1", now - HOUR))?;
    put(&log, tombstone("old", now - HOUR))?;
    put(&log, rec("young", "1", now))?;
    let young_tombstone = put(&log, tombstone("young", now - 1_000))?;
    fill(&log, now)?;

    log.run_cleaner()?;
    let keys = by_key(&read_all(&log, Isolation::ReadCommitted)?);
    assert!(
        !keys.contains_key("old"),
        "an expired tombstone goes with its key"
    );
    let young = &keys["young"];
    assert_eq!(young.len(), 1);
    assert_eq!(
        (young[0].offset, young[0].value.clone()),
        (young_tombstone, None)
    );

    log.alter_topic(T, None, &[("delete.retention.ms".into(), "500".into())])?;
    let stats = log.run_cleaner()?;
    assert_eq!(stats.records_removed, 1);
    let keys = by_key(&read_all(&log, Isolation::ReadCommitted)?);
    assert!(
        !keys.contains_key("young"),
        "the tombstone is older than 500 ms now"
    );
    Ok(())
}

#[test]
fn active_segment_is_never_compacted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    // One big active segment: nothing is sealed, nothing is cleaned.
    log.create_topic(
        T,
        TopicConfig::partitions(1).with("cleanup.policy", "compact")?,
    )?;
    let ts = now();
    for v in ["1", "2", "3"] {
        put(&log, rec("a", v, ts))?;
    }
    let stats = log.run_cleaner()?;
    assert_eq!(stats.segments_cleaned, 0);
    assert_eq!(read_all(&log, Isolation::ReadCommitted)?.len(), 3);

    // Small segments: the batch in the active segment keeps both its records.
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, compacted(&[])?)?;
    for v in ["1", "2", "3", "4", "5", "6"] {
        put(&log, rec("a", v, ts))?;
    }
    log.append(T, 0, &[rec("a", "7", ts), rec("a", "8", ts)], Acks::Written)?;
    log.run_cleaner()?;
    let values: Vec<_> = read_all(&log, Isolation::ReadCommitted)?
        .iter()
        .map(value)
        .collect();
    // a=6 is the latest in the sealed segments and stays: records of the active segment
    // supersede nothing until it is sealed (and fsynced).
    assert_eq!(
        values,
        [Some("6".into()), Some("7".into()), Some("8".into())]
    );
    Ok(())
}

#[test]
fn min_compaction_lag_keeps_young_segments_as_they_are() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, compacted(&[("min.compaction.lag.ms", "3600000")])?)?;
    let now = now();
    for v in ["1", "2", "3"] {
        put(&log, rec("old", v, now - 2 * HOUR))?;
    }
    for v in ["1", "2", "3"] {
        put(&log, rec("young", v, now))?;
    }
    fill(&log, now)?;
    log.run_cleaner()?;
    let keys = by_key(&read_all(&log, Isolation::ReadCommitted)?);
    let old: Vec<_> = keys["old"].iter().map(value).collect();
    assert_eq!(old, [Some("3".into())], "old segments are compacted");
    assert_eq!(keys["young"].len(), 3, "young segments are not");
    Ok(())
}

#[test]
fn open_transaction_and_everything_after_it_are_not_compacted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, compacted(&[])?)?;
    let ts = now();
    for v in ["1", "2", "3"] {
        put(&log, rec("a", v, ts))?;
    }
    let mut tx = log.transactional_producer("tx", Acks::Written)?;
    tx.begin()?;
    let in_txn = tx.append(T, 0, &[rec("a", "txn", ts)])?.base_offset;
    put(&log, rec("b", "1", ts))?;
    put(&log, rec("b", "2", ts))?;
    fill(&log, ts)?;
    let lso = log.offsets(T, 0)?.last_stable;
    assert_eq!(lso, in_txn);
    let unstable: Vec<_> = read_all(&log, Isolation::ReadUncommitted)?
        .into_iter()
        .filter(|r| r.offset >= lso)
        .collect();

    log.run_cleaner()?;
    let all = read_all(&log, Isolation::ReadUncommitted)?;
    let tail: Vec<_> = all.iter().filter(|r| r.offset >= lso).cloned().collect();
    assert_eq!(
        tail, unstable,
        "nothing from the last stable offset on is touched"
    );
    let a: Vec<_> = by_key(&all)["a"].iter().map(value).collect();
    assert_eq!(
        a,
        [Some("3".into()), Some("txn".into())],
        "a=3 stays: the transaction may still abort"
    );

    tx.commit()?;
    fill(&log, ts)?;
    log.run_cleaner()?;
    let keys = by_key(&read_all(&log, Isolation::ReadCommitted)?);
    let a: Vec<_> = keys["a"].iter().map(value).collect();
    let b: Vec<_> = keys["b"].iter().map(value).collect();
    assert_eq!(a, [Some("txn".into())]);
    assert_eq!(b, [Some("2".into())]);
    Ok(())
}

#[test]
fn aborted_value_is_never_kept_as_latest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, compacted(&[])?)?;
    let ts = now();
    let committed = put(&log, rec("a", "committed", ts))?;
    let mut tx = log.transactional_producer("tx", Acks::Written)?;
    tx.begin()?;
    tx.append(T, 0, &[rec("a", "aborted", ts), rec("x", "aborted", ts)])?;
    tx.abort()?;
    put(&log, rec("b", "1", ts))?;
    put(&log, rec("b", "2", ts))?;
    fill(&log, ts)?;

    let stats = log.run_cleaner()?;
    assert_eq!(stats.records_removed, 3, "two aborted records and b=1");
    for isolation in [Isolation::ReadCommitted, Isolation::ReadUncommitted] {
        let records = read_all(&log, isolation)?;
        assert!(records
            .iter()
            .all(|r| value(r).as_deref() != Some("aborted")));
        let keys = by_key(&records);
        assert_eq!(keys["a"].len(), 1);
        assert_eq!(keys["a"][0].offset, committed);
        assert!(!keys.contains_key("x"));
    }
    let latest: BTreeMap<_, _> = read_all(&log, Isolation::ReadCommitted)?
        .iter()
        .map(|r| (key(r), value(r)))
        .collect();
    let mut model: BTreeMap<String, Option<String>> = BTreeMap::new();
    model.insert("a".into(), Some("committed".into()));
    model.insert("b".into(), Some("2".into()));
    for i in 0..6 {
        model.insert(format!("filler-{i}"), Some("f".into()));
    }
    assert_eq!(latest, model);

    // A newer committed value supersedes the old one as usual.
    put(&log, rec("a", "newer", ts))?;
    fill(&log, ts)?;
    log.run_cleaner()?;
    let keys = by_key(&read_all(&log, Isolation::ReadCommitted)?);
    let a: Vec<_> = keys["a"].iter().map(value).collect();
    assert_eq!(a, [Some("newer".into())]);
    Ok(())
}

#[test]
fn transaction_markers_are_dropped_after_delete_retention() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, compacted(&[])?)?;
    let ts = now();
    let mut tx = log.transactional_producer("tx", Acks::Written)?;
    for i in 0..4 {
        tx.begin()?;
        tx.append(T, 0, &[rec(&format!("k{i}"), "v", ts)])?;
        tx.commit()?;
    }
    fill(&log, ts)?;
    let before = read_all(&log, Isolation::ReadCommitted)?;
    assert_eq!(log.run_cleaner()?.records_removed, 0, "markers are young");

    log.alter_topic(T, None, &[("delete.retention.ms".into(), "0".into())])?;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let stats = log.run_cleaner()?;
    assert_eq!(stats.records_removed, 4, "the four commit markers");
    assert_eq!(read_all(&log, Isolation::ReadCommitted)?, before);
    drop(tx);
    drop(log);
    let log = open(dir.path())?;
    assert_eq!(read_all(&log, Isolation::ReadCommitted)?, before);
    Ok(())
}

#[test]
fn fetch_moves_past_a_segment_whose_last_batch_was_dropped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    // Room for a 60-byte value and a tombstone, not for a third batch.
    log.create_topic(
        T,
        compacted(&[("segment.bytes", "260"), ("delete.retention.ms", "60000")])?,
    )?;
    let big = "v".repeat(60);
    let old = now() - HOUR;
    put(&log, rec("a", &big, old))?;
    put(&log, tombstone("a", old))?;
    // An open transaction starts the next segment: the last stable offset is its base.
    let mut tx = log.transactional_producer("tx", Acks::Written)?;
    tx.begin()?;
    let txn_start = tx.append(T, 0, &[rec("b", &big, now())])?.base_offset;
    assert_eq!(log.offsets(T, 0)?.last_stable, txn_start);

    let stats = log.run_cleaner()?;
    assert_eq!(
        stats.records_removed, 2,
        "a's value and its expired tombstone"
    );
    let options = freshet_log::FetchOptions::default();
    for from in 0..txn_start {
        let got = log.try_fetch(&[(T.to_string(), 0, from)], &options)?;
        assert_eq!(got.len(), 1, "a fetch at {from} moves");
        assert!(got[0].records.is_empty());
        assert_eq!(got[0].next_offset, txn_start);
    }
    tx.commit()?;
    let records = read_all(&log, Isolation::ReadCommitted)?;
    assert_eq!(records.iter().map(key).collect::<Vec<_>>(), ["b"]);
    Ok(())
}

#[test]
fn rewritten_batch_keeps_its_whole_offset_range() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, compacted(&[])?)?;
    let ts = now();
    let batch = log.append(T, 0, &[rec("a", "1", ts), rec("b", "1", ts)], Acks::Written)?;
    put(&log, rec("b", "2", ts))?;
    fill(&log, ts)?;
    log.run_cleaner()?;
    // One batch per fetch: the rewritten batch holds a=1 only, yet the next fetch starts
    // past b=1's offset too.
    let options = freshet_log::FetchOptions {
        max_partition_bytes: 1,
        ..Default::default()
    };
    let got = log.try_fetch(&[(T.to_string(), 0, batch.base_offset)], &options)?;
    let values: Vec<_> = got[0].records.iter().map(value).collect();
    assert_eq!(values, [Some("1".into())]);
    assert_eq!(got[0].next_offset, batch.last_offset + 1);
    Ok(())
}

/// Removes every segment's index files: what a crash between swapping in a cleaned segment
/// and writing its new indexes leaves (and, for the original, a crash just before the swap).
fn remove_indexes(pdir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(pdir)? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str());
        if matches!(ext, Some("index" | "timeindex")) {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

#[test]
fn interrupted_clean_loses_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pdir = dir.path().join("topics").join(T).join("0");
    let log = open(dir.path())?;
    log.create_topic(T, compacted(&[])?)?;
    let ts = now();
    for v in ["1", "2", "3"] {
        put(&log, rec("a", v, ts))?;
    }
    fill(&log, ts)?;
    let before = read_all(&log, Isolation::ReadUncommitted)?;
    let offsets = log.offsets(T, 0)?;
    drop(log);

    // Crash before the swap: a half-written cleaned file, the original without indexes.
    let stray = pdir.join(format!("{:020}.log.cleaned", 0));
    std::fs::write(&stray, b"half a segment")?;
    remove_indexes(&pdir)?;
    let log = open(dir.path())?;
    assert_eq!(read_all(&log, Isolation::ReadUncommitted)?, before);
    log.run_cleaner()?;
    assert!(!stray.exists(), "the leftover is deleted");
    let after = read_all(&log, Isolation::ReadUncommitted)?;
    let a: Vec<_> = by_key(&after)["a"].iter().map(value).collect();
    assert_eq!(a, [Some("3".into())]);
    drop(log);

    // Crash after the swap, before the new indexes: a rescan finds the same records and ends.
    remove_indexes(&pdir)?;
    let log = open(dir.path())?;
    assert_eq!(read_all(&log, Isolation::ReadUncommitted)?, after);
    assert_eq!(log.offsets(T, 0)?, offsets);
    Ok(())
}

// ---- model test -------------------------------------------------------------------------

/// One record of an op: key (`None` = null key), value (`None` = tombstone), and whether
/// its timestamp is older than `delete.retention.ms`.
type Rec = (Option<u8>, Option<u8>, bool);

#[derive(Debug, Clone)]
enum Op {
    /// A non-transactional batch.
    Put(Vec<Rec>),
    Begin,
    /// A batch in the open transaction (ignored when none is open).
    TxnPut(Vec<Rec>),
    End(bool),
    Clean,
    Restart,
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    (
        prop_oneof![9 => (0u8..6).prop_map(Some), 1 => Just(None)],
        prop_oneof![4 => any::<u8>().prop_map(Some), 1 => Just(None)],
        any::<bool>(),
    )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let batch = || prop::collection::vec(rec_strategy(), 1..4);
    prop_oneof![
        6 => batch().prop_map(Op::Put),
        2 => Just(Op::Begin),
        4 => batch().prop_map(Op::TxnPut),
        2 => any::<bool>().prop_map(Op::End),
        2 => Just(Op::Clean),
        1 => Just(Op::Restart),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Committed,
    Open,
    Aborted,
}

/// What was written at each offset, and what became of it.
#[derive(Debug, Clone)]
struct Written {
    key: Option<Bytes>,
    value: Option<Bytes>,
    timestamp: i64,
    state: State,
}

struct Harness {
    dir: tempfile::TempDir,
    log: Option<Log>,
    tx: Option<TransactionalProducer>,
    open: bool,
    model: BTreeMap<i64, Written>,
}

fn to_record((k, v, old): &Rec, now: i64) -> Record {
    Record {
        key: k.map(|k| Bytes::from(format!("k{k}"))),
        value: v.map(|v| Bytes::from(vec![v; 3])),
        timestamp: Some(if *old { now - 2 * HOUR } else { now }),
        headers: vec![("h".into(), Bytes::from_static(b"x"))],
    }
}

impl Harness {
    fn new() -> Result<Harness, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path())?;
        log.create_topic(T, compacted(&[("delete.retention.ms", "3600000")])?)?;
        let tx = log.transactional_producer("model", Acks::Written)?;
        Ok(Harness {
            dir,
            log: Some(log),
            tx: Some(tx),
            open: false,
            model: BTreeMap::new(),
        })
    }

    fn log(&self) -> &Log {
        self.log.as_ref().expect("log is open")
    }

    fn note(&mut self, base: i64, records: &[Record], state: State) {
        for (i, r) in records.iter().enumerate() {
            self.model.insert(
                base + i as i64,
                Written {
                    key: r.key.clone(),
                    value: r.value.clone(),
                    timestamp: r.timestamp.unwrap_or_default(),
                    state,
                },
            );
        }
    }

    fn end_open(&mut self, state: State) {
        for w in self.model.values_mut() {
            if w.state == State::Open {
                w.state = state;
            }
        }
        self.open = false;
    }

    fn apply(&mut self, op: &Op) -> TestResult {
        let now = now();
        match op {
            Op::Put(recs) => {
                let records: Vec<_> = recs.iter().map(|r| to_record(r, now)).collect();
                let at = self.log().append(T, 0, &records, Acks::Written)?;
                self.note(at.base_offset, &records, State::Committed);
            }
            Op::Begin if !self.open => {
                self.tx.as_mut().expect("producer").begin()?;
                self.open = true;
            }
            Op::TxnPut(recs) if self.open => {
                let records: Vec<_> = recs.iter().map(|r| to_record(r, now)).collect();
                let at = self.tx.as_mut().expect("producer").append(T, 0, &records)?;
                self.note(at.base_offset, &records, State::Open);
            }
            Op::End(commit) if self.open => {
                let tx = self.tx.as_mut().expect("producer");
                if *commit {
                    tx.commit()?;
                    self.end_open(State::Committed);
                } else {
                    tx.abort()?;
                    self.end_open(State::Aborted);
                }
            }
            Op::Clean => {
                let stats = self.log().run_cleaner()?;
                assert_eq!(stats.partitions_failed, 0);
                self.check(now)?;
            }
            Op::Restart => {
                let before = read_all(self.log(), Isolation::ReadUncommitted)?;
                self.tx = None;
                self.log = None;
                let log = open(self.dir.path())?;
                // Recovery aborts what was open.
                self.end_open(State::Aborted);
                assert_eq!(read_all(&log, Isolation::ReadUncommitted)?, before);
                self.tx = Some(log.transactional_producer("model", Acks::Written)?);
                self.log = Some(log);
            }
            _ => {}
        }
        Ok(())
    }

    /// The invariants that hold at any time, open transaction or not.
    fn check(&self, now: i64) -> TestResult {
        let log = self.log();
        let offsets = log.offsets(T, 0)?;
        let uncommitted = read_all(log, Isolation::ReadUncommitted)?;
        let committed = read_all(log, Isolation::ReadCommitted)?;
        assert_strictly_increasing(&uncommitted);
        assert_strictly_increasing(&committed);
        for r in &uncommitted {
            let w = &self.model[&r.offset];
            assert_eq!((&r.key, &r.value), (&w.key, &w.value), "at {}", r.offset);
        }
        for r in &committed {
            assert_eq!(
                self.model[&r.offset].state,
                State::Committed,
                "at {}",
                r.offset
            );
        }
        let present: std::collections::BTreeSet<i64> =
            uncommitted.iter().map(|r| r.offset).collect();
        // Each key's latest committed record, if a value (or a young tombstone), is there.
        let mut latest: BTreeMap<Option<Bytes>, (i64, &Written)> = BTreeMap::new();
        for (&o, w) in &self.model {
            if w.state == State::Committed && w.key.is_some() {
                latest.insert(w.key.clone(), (o, w));
            }
        }
        for (o, w) in latest.values() {
            let young = w.timestamp >= now - HOUR;
            if w.value.is_some() || young {
                assert!(present.contains(o), "latest of {:?} at {o} is gone", w.key);
            }
        }
        for (&o, w) in &self.model {
            // Null-key committed records, open transactions and everything from the last
            // stable offset on stay.
            let kept = (w.state == State::Committed && w.key.is_none())
                || w.state == State::Open
                || (o >= offsets.last_stable && w.state != State::Aborted);
            if kept {
                assert!(
                    present.contains(&o),
                    "record at {o} ({:?}) is gone",
                    w.state
                );
            }
        }
        // Read-committed output ends with the latest committed value per key below the
        // last stable offset.
        let mut stable: BTreeMap<Option<Bytes>, &Written> = BTreeMap::new();
        for w in self.model.range(..offsets.last_stable).map(|(_, w)| w) {
            if w.state == State::Committed && w.key.is_some() {
                stable.insert(w.key.clone(), w);
            }
        }
        let mut seen: BTreeMap<Option<Bytes>, Option<Bytes>> = BTreeMap::new();
        for r in committed.iter().filter(|r| r.key.is_some()) {
            seen.insert(r.key.clone(), r.value.clone());
        }
        for (k, w) in &stable {
            match &w.value {
                Some(v) => assert_eq!(seen.get(k), Some(&Some(v.clone()))),
                None => assert!(matches!(seen.get(k), None | Some(None))),
            }
        }
        // From every offset below the last stable one, a fetch moves forward.
        let options = freshet_log::FetchOptions {
            max_partition_bytes: 1,
            ..Default::default()
        };
        for o in offsets.start..offsets.last_stable {
            let got = log.try_fetch(&[(T.to_string(), 0, o)], &options)?;
            let next = got.first().map_or(o, |f| f.next_offset);
            assert!(next > o, "a fetch at {o} does not move");
        }
        Ok(())
    }

    fn finish(&mut self) -> TestResult {
        if self.open {
            self.tx.as_mut().expect("producer").abort()?;
            self.end_open(State::Aborted);
        }
        let now = now();
        self.log().run_cleaner()?;
        self.check(now)?;
        let committed = read_all(self.log(), Isolation::ReadCommitted)?;
        let uncommitted = read_all(self.log(), Isolation::ReadUncommitted)?;
        let stats = self.log().run_cleaner()?;
        assert_eq!(stats.records_removed, 0, "a second pass changes nothing");
        self.tx = None;
        self.log = None;
        let log = open(self.dir.path())?;
        assert_eq!(read_all(&log, Isolation::ReadCommitted)?, committed);
        assert_eq!(read_all(&log, Isolation::ReadUncommitted)?, uncommitted);
        self.log = Some(log);
        self.check(now)?;
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn compaction_keeps_what_readers_must_see(ops in prop::collection::vec(op_strategy(), 1..40)) {
        let run = || -> TestResult {
            let mut h = Harness::new()?;
            for op in &ops {
                h.apply(op)?;
            }
            h.finish()
        };
        if let Err(e) = run() {
            return Err(TestCaseError::fail(e.to_string()));
        }
    }
}

/// The owning process lends fetched batches from a mapping of the segment files: they stay
/// readable after the files are compacted (a cleaned copy renamed over them) and deleted
/// (records below a new log start), and reads after that see the new files.
#[tokio::test]
async fn batches_lent_before_compaction_and_deletion_stay_readable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, compacted(&[])?)?;
    let old = now() - HOUR;
    for i in 0..30 {
        put(&log, rec(&format!("k{}", i % 3), &format!("v{i}"), old + i))?;
    }
    put(&log, rec("last", "x", now()))?;
    let options = freshet_log::FetchOptions {
        max_records: 1000,
        ..freshet_log::FetchOptions::default()
    };
    let position = [(T.to_string(), 0, 0)];
    let mut lent = Vec::new();
    let mut at = 0;
    while at < 31 {
        let fetched = log.try_fetch_batches(&[(T.to_string(), 0, at)], &options)?;
        at = fetched[0].next_offset;
        lent.push(fetched.into_iter().next().map(|f| f.records));
    }
    let before: Vec<StoredRecord> = lent
        .iter()
        .flatten()
        .flat_map(|r| r.clone().into_records())
        .collect();
    assert_eq!(before.len(), 31);
    let stats = log.run_cleaner()?;
    assert!(stats.segments_cleaned > 0, "{stats:?}");
    log.delete_records(T, 0, 27)?;
    // What was lent still reads as it did.
    let after: Vec<StoredRecord> = lent
        .iter()
        .flatten()
        .flat_map(|r| r.clone().into_records())
        .collect();
    assert_eq!(after, before);
    // New reads see the cleaned log: from the new start, the survivors.
    let now_read = log.try_fetch(&position, &options);
    assert!(now_read.is_err(), "offset 0 is below the log start now");
    let fresh = log.try_fetch(&[(T.to_string(), 0, 27)], &options)?;
    let values: Vec<_> = fresh[0]
        .records
        .iter()
        .map(|r| r.value.clone().unwrap_or_default())
        .collect();
    assert_eq!(values.first().map(|v| &v[..]), Some(&b"v27"[..]));
    Ok(())
}
