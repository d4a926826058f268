//! Crash test of the commit protocol on the real log: a child process commits batch after
//! batch of writes to a sled key-value store (transaction with the changelog records,
//! commit, then apply to sled) and reports each log commit on stdout; the parent SIGKILLs it
//! at random moments — in transactions, between a log commit and its sled apply (the child
//! pauses there), in sled applies, at startup and in restore — then reopens log and sled and
//! restores. After every kill:
//!
//! - the changelog holds exactly the commits `0..=C` of the deterministic workload, each
//!   whole and once, with `C` no less than the last commit the child reported;
//! - the restored store equals the committed changelog, folded in offset order;
//! - no wipe happened (except while the changelog was still empty);
//! - restore replayed only the tail after the applied offsets: exactly the committed
//!   records past the tree's applied offset, having read (and skipped) at most the commit
//!   whose apply the kill cut in two; in rounds where the child flushes sled after each
//!   apply, at most the records of the last two commits.
//!
//! `FRESHET_CRASH_ROUNDS` sets the number of kill rounds (default 20); `FRESHET_CRASH_SEED`
//! replays the kill timings of an earlier run (each run prints its seed).

#[path = "common/log_changelog.rs"]
mod log_changelog;

#[path = "../../log/tests/common/child.rs"]
mod child;
use child::ChildProc;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_log::Log;
use freshet_state_store::{
    Backend, ChangelogPartition, ChangelogRecord, KeyValueStore, KvStore, ReadOnlyKeyValueView,
    SledBackend, StateStore, Timestamped,
};
use log_changelog::{create_changelog_topic, read_committed_from, LogChangelog};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const STORE: &str = "counts";
const TOPIC: &str = "app-counts-changelog";
const TRANSACTIONAL_ID: &str = "app-0_0";
const CHILD_TEST: &str = "crash_store_child";
/// Set (to the data dir) in a child process: tells its `#[ignore]`d test to run.
const CHILD_DIR_ENV: &str = "FRESHET_CRASH_STORE_CHILD_DIR";
/// "1" when the child flushes sled after every apply.
const FLUSH_ENV: &str = "FRESHET_CRASH_STORE_FLUSH";
/// Seeds the child's pauses between log commit and sled apply.
const SEED_ENV: &str = "FRESHET_CRASH_STORE_SEED";
/// The key each commit sets to its own number: the restored store says which commit it
/// reached, and the child numbers its next commit after it.
const COMMIT_KEY: &[u8] = b"__commit";
/// Distinct keys the workload writes.
const KEY_SPACE: u64 = 400;

fn changelog() -> ChangelogPartition {
    ChangelogPartition {
        topic: TOPIC.into(),
        partition: 0,
    }
}

/// A small deterministic mixer (splitmix64): the child and the parent derive the same
/// writes from a commit number.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A tiny random source for kill timings (no `rand` in this crate's dev-dependencies).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = mix(self.0);
        self.0 % n.max(1)
    }
}

/// The writes of commit `c`, in the order made: (key, value; `None` deletes).
fn batch(c: u64) -> Vec<(Bytes, Option<Timestamped>)> {
    let n = 5 + mix(c) % 40;
    let mut out = Vec::with_capacity(n as usize + 1);
    for j in 0..n {
        let h = mix(c << 16 | j);
        let key = Bytes::from(format!("key-{:04}", h % KEY_SPACE));
        let value = ((h >> 32) % 5 != 0).then(|| Timestamped {
            value: Bytes::from(format!("v-{c}-{j}")),
            timestamp: c as i64,
        });
        out.push((key, value));
    }
    out.push((
        Bytes::from_static(COMMIT_KEY),
        Some(Timestamped {
            value: Bytes::from(c.to_string()),
            timestamp: c as i64,
        }),
    ));
    out
}

type State = BTreeMap<Bytes, Timestamped>;

/// The state after commits `0..=last` of the workload.
fn model(last: Option<u64>) -> State {
    let mut state = State::new();
    for c in last.map_or(0..0, |l| 0..l + 1) {
        for (k, v) in batch(c) {
            match v {
                Some(v) => state.insert(k, v),
                None => state.remove(&k),
            };
        }
    }
    state
}

/// The changelog records commit `c` must consist of: one per key written, in key order
/// (the write buffer is keyed), tombstones with timestamp 0.
fn commit_records(c: u64) -> Vec<ChangelogRecord> {
    let mut last: BTreeMap<Bytes, Option<Timestamped>> = BTreeMap::new();
    for (k, v) in batch(c) {
        last.insert(k, v);
    }
    last.into_iter()
        .map(|(key, v)| ChangelogRecord {
            key,
            timestamp: v.as_ref().map_or(0, |v| v.timestamp),
            value: v.map(|v| v.value),
        })
        .collect()
}

fn commit_of(state: &State) -> TestResult<Option<u64>> {
    match state.get(COMMIT_KEY) {
        None => Ok(None),
        Some(v) => Ok(Some(std::str::from_utf8(&v.value)?.parse()?)),
    }
}

fn open_store(state: &Path) -> TestResult<(Arc<SledBackend>, KvStore)> {
    let backend = Arc::new(SledBackend::open(state, 8 << 20)?);
    let store = KvStore::open(STORE, backend.clone(), Some(changelog()))?;
    Ok((backend, store))
}

/// The workload a child runs until it is killed: restore, then commit after commit,
/// printing `committed <n>` once the log transaction is committed and `applied <n>` once
/// sled has it.
#[test]
#[ignore = "the workload of the store crash test, run in a child process"]
fn crash_store_child() -> TestResult {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV).map(PathBuf::from) else {
        return Ok(());
    };
    let flush = std::env::var(FLUSH_ENV).is_ok_and(|v| v == "1");
    let seed: u64 = std::env::var(SEED_ENV)?.parse()?;
    let mut rng = Rng(seed);
    let log = Log::open(dir.join("log"))?;
    create_changelog_topic(&log, TOPIC)?;
    let mut sink = LogChangelog::exactly_once(&log, TRANSACTIONAL_ID)?;
    let (backend, mut store) = open_store(&dir.join("state"))?;
    store.restore(&mut sink)?;
    let mut next = match store.get(COMMIT_KEY)? {
        Some(v) => std::str::from_utf8(&v.value)?.parse::<u64>()? + 1,
        None => 0,
    };
    let mut out = std::io::stdout().lock();
    // The test harness has printed "test <name> ... " without a newline: end that line.
    writeln!(out, "\nready {next}")?;
    out.flush()?;
    // A safety net: a child whose parent is gone stops on its own.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        for (k, v) in batch(next) {
            store.put(k, v)?;
        }
        sink.begin()?;
        store.send_changelog(&mut sink)?;
        sink.commit()?;
        writeln!(out, "committed {next}")?;
        out.flush()?;
        // Widen the window between log commit and sled apply, so kills land there too.
        match rng.below(4) {
            0 => {}
            1 => std::thread::yield_now(),
            _ => std::thread::sleep(Duration::from_micros(rng.below(3_000))),
        }
        store.committed();
        store.apply()?;
        if flush {
            backend.flush()?;
        }
        writeln!(out, "applied {next}")?;
        out.flush()?;
        next += 1;
    }
    Ok(())
}

/// The parent's running picture of the changelog, read once, in pieces, as it grows.
#[derive(Debug, Default)]
struct Expected {
    /// Offsets of every committed record.
    offsets: Vec<i64>,
    /// Offset of each commit's first record (its `__commit` record sorts first).
    commit_starts: Vec<i64>,
    /// The committed changelog folded in offset order.
    state: State,
    /// Where the next read starts.
    read_to: i64,
}

impl Expected {
    /// Reads what was committed since the last call and checks it is the workload's next
    /// commits, whole and in order.
    fn catch_up(&mut self, log: &Log) -> TestResult {
        let records = read_committed_from(log, &changelog(), self.read_to)?;
        let stable = log.offsets(TOPIC, 0)?.last_stable;
        let mut i = 0;
        while i < records.len() {
            let c = self.commit_starts.len() as u64;
            let want = commit_records(c);
            let got: Vec<&ChangelogRecord> = records[i..]
                .iter()
                .take(want.len())
                .map(|(_, r)| r)
                .collect();
            let want: Vec<&ChangelogRecord> = want.iter().collect();
            assert_eq!(
                got, want,
                "commit {c} at offset {} is not the workload's commit {c}, whole",
                records[i].0
            );
            self.commit_starts.push(records[i].0);
            for (offset, r) in &records[i..i + want.len()] {
                self.offsets.push(*offset);
                match &r.value {
                    Some(value) => self.state.insert(
                        r.key.clone(),
                        Timestamped {
                            value: value.clone(),
                            timestamp: r.timestamp,
                        },
                    ),
                    None => self.state.remove(&r.key),
                };
            }
            i += want.len();
        }
        self.read_to = self.read_to.max(stable);
        Ok(())
    }

    fn last_commit(&self) -> Option<u64> {
        (self.commit_starts.len() as u64).checked_sub(1)
    }

    /// Committed records after `offset`.
    fn records_after(&self, offset: Option<i64>) -> u64 {
        let from = offset.map_or(i64::MIN, |o| o + 1);
        (self.offsets.len() - self.offsets.partition_point(|o| *o < from)) as u64
    }

    /// Records of the last `n` commits.
    fn records_of_last_commits(&self, n: usize) -> u64 {
        let k = self.commit_starts.len().saturating_sub(n);
        match self.commit_starts.get(k) {
            Some(start) => self.records_after(Some(start - 1)),
            None => 0,
        }
    }
}

/// What one round's verification found.
#[derive(Debug)]
struct Verified {
    replayed: u64,
    skipped: u64,
    replayed_commits: u64,
}

/// Reopens the log and the store after a kill and checks everything the module promises.
/// Unless `in_place`, the store is checked on a copy of the sled directory, so the next
/// child finds the tail unreplayed and restores it itself (and may be killed doing it).
fn verify(
    dir: &Path,
    in_place: bool,
    expected: &mut Expected,
    reported: Option<u64>,
    flushed: bool,
    wipe_allowed: bool,
) -> TestResult<Verified> {
    let log = Log::open(dir.join("log"))?;
    if !log.topic_exists(TOPIC) {
        assert!(reported.is_none(), "commits reported but no changelog");
        return Ok(Verified {
            replayed: 0,
            skipped: 0,
            replayed_commits: 0,
        });
    }
    expected.catch_up(&log)?;
    let last = expected.last_commit();
    assert!(
        last >= reported,
        "the child reported commit {reported:?} but the changelog ends at {last:?}"
    );
    assert_eq!(expected.state, model(last), "the changelog is the workload");

    let state = if in_place {
        dir.join("state")
    } else {
        let copy = dir.join("state-copy");
        if copy.exists() {
            std::fs::remove_dir_all(&copy)?;
        }
        copy_dir(&dir.join("state"), &copy)?;
        copy
    };
    // What sled held when the child died.
    let applied = {
        let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(&state, 8 << 20)?);
        ReadOnlyKeyValueView::open(backend, STORE)?.applied_offset()?
    };
    let (_backend, mut store) = open_store(&state)?;
    let mut reader = LogChangelog::reader(&log);
    let stats = store.restore(&mut reader)?;
    assert!(
        !stats.wiped || wipe_allowed,
        "restore wiped the store (applied offset {applied:?}): {stats:?}"
    );
    // Restore starts after the store's applied offset (kept beside the tree's), which may
    // trail the tree's by the commit whose apply the kill cut between the two: those
    // records are read and skipped, never applied twice. It may also lead the tree's, past
    // aborted transactions only. Either way nothing committed after the tree's applied
    // offset is missed, and nothing before it is replayed.
    let tail = expected.records_after(if stats.wiped { None } else { applied });
    let read = expected.records_after(Some(stats.from_offset - 1));
    assert!(
        read >= tail,
        "restore started at {} and missed committed records after the tree's applied \
         offset {applied:?}: {stats:?}",
        stats.from_offset
    );
    assert_eq!(
        stats.records_applied, tail,
        "restore replays exactly the committed records after applied offset {applied:?}: {stats:?}"
    );
    assert_eq!(stats.records_skipped, read - tail, "{stats:?}");
    assert!(
        stats.records_skipped <= expected.records_of_last_commits(2),
        "restore read more than the last commits before the tail: {stats:?}"
    );
    if flushed && !stats.wiped {
        let bound = expected.records_of_last_commits(2);
        assert!(
            stats.records_applied <= bound,
            "restore replayed {} records, more than the last two commits ({bound}): {stats:?}",
            stats.records_applied
        );
    }
    let mut got = State::new();
    for item in store.all()? {
        let (k, v) = item?;
        got.insert(k, v);
    }
    assert_eq!(
        got, expected.state,
        "the restored store is the committed changelog"
    );
    assert_eq!(commit_of(&got)?, last);
    let replayed_commits = expected
        .commit_starts
        .iter()
        .filter(|s| **s > applied.unwrap_or(-1))
        .count() as u64;
    Ok(Verified {
        replayed: stats.records_applied,
        skipped: stats.records_skipped,
        replayed_commits,
    })
}

#[test]
fn the_store_equals_the_committed_changelog_after_sigkill_at_any_point() -> TestResult {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let rounds: u64 = std::env::var("FRESHET_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(20);
    let seed: u64 = match std::env::var("FRESHET_CRASH_SEED") {
        Ok(s) => s.trim().parse()?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    };
    eprintln!("crash_store: {rounds} rounds, FRESHET_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let mut expected = Expected::default();
    let mut reported: Option<u64> = None;
    let (mut between, mut replays, mut skips, mut max_commits_replayed) = (0u64, 0u64, 0u64, 0u64);
    let mut restored = false;
    for round in 0..rounds {
        // Every fourth round leaves sled to its own background flush, which a kill can
        // outrun: the replayed tail is longer, but still exactly the tail.
        let flush = round % 4 != 3;
        let mut child = ChildProc::spawn(
            CHILD_TEST,
            &[
                (CHILD_DIR_ENV, dir.path().display().to_string()),
                (FLUSH_ENV, if flush { "1" } else { "0" }.to_string()),
                (SEED_ENV, rng.below(u64::MAX).to_string()),
            ],
        )?;
        if round % 7 == 5 {
            // Sometimes kill early: in log recovery, sled's open, or the restore.
            std::thread::sleep(Duration::from_millis(rng.below(150)));
        } else {
            child.wait_for_line_starting("ready", Duration::from_secs(30))?;
            std::thread::sleep(Duration::from_millis(1 + rng.below(250)));
        }
        let lines = child.kill_and_collect()?;
        let mut last_applied = None;
        for line in &lines {
            if let Some(n) = line.strip_prefix("committed ") {
                reported = reported.max(Some(n.parse()?));
            } else if let Some(n) = line.strip_prefix("applied ") {
                last_applied = Some(n.parse::<u64>()?);
            }
        }
        if reported.is_some() && last_applied < reported {
            between += 1;
        }
        let in_place = round % 3 != 1;
        let v = verify(
            dir.path(),
            in_place,
            &mut expected,
            reported,
            flush,
            !restored,
        )?;
        // A restore in place of a non-empty changelog records the store's applied offset:
        // from then on, sled is never missing and never wiped.
        restored |= in_place && !expected.offsets.is_empty();
        if v.replayed > 0 {
            replays += 1;
        }
        if v.skipped > 0 {
            skips += 1;
        }
        max_commits_replayed = max_commits_replayed.max(v.replayed_commits);
    }
    let commits = expected.commit_starts.len();
    assert!(
        commits as u64 >= rounds,
        "only {commits} commits in {rounds} rounds; the test proves little"
    );
    eprintln!(
        "crash_store: {rounds} rounds, {commits} commits, {} records; killed after a \
         reported log commit and before its reported apply in {between} rounds; {replays} restores replayed \
         a tail (at most {max_commits_replayed} commits), {skips} read records a kill had \
         applied to the tree but not to the store's offset; {:?}",
        expected.offsets.len(),
        started.elapsed()
    );
    Ok(())
}

/// Copies a (closed) sled directory.
fn copy_dir(from: &Path, to: &Path) -> TestResult {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
