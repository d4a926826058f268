//! Crash test of transactions: a child process runs transactions (records to 2 topics × 2
//! partitions plus a consumer-group offset commit; some aborted on purpose; some with a
//! non-transactional append in their middle) and reports each one it ended; the parent
//! SIGKILLs it at a random moment — often inside a commit — reopens the log and checks
//! that read_committed sees each transaction wholly or not at all, that acknowledged
//! commits survived, that aborted ones never show, that the group's committed offset is the
//! one sent by the newest visible transaction, that recovery left no transaction open, and
//! that a new producer with the same transactional id works.
//!
//! `FRESHET_CRASH_ROUNDS` sets the number of kill rounds (default 20).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{ChildProc, TestResult, CHILD_DIR_ENV};
use freshet_log::{
    Acks, Isolation, Log, OffsetAndMetadata, Record, StoredRecord, TopicConfig,
    TransactionalProducer,
};
use rand::Rng;

const CHILD_TEST: &str = "crash_transaction_child";
const ROUND_ENV: &str = "FRESHET_CRASH_ROUND";
const ACKS_ENV: &str = "FRESHET_CRASH_ACKS";
const TXN_ID: &str = "crash-tx";
const GROUP: &str = "crash-group";
/// The input topic whose consumed position each transaction commits for `GROUP`.
const SOURCE: &str = "crash-src";
/// The four partitions every transaction writes to.
const PARTS: [(&str, u32); 4] = [("tx-a", 0), ("tx-a", 1), ("tx-b", 0), ("tx-b", 1)];
/// Transaction numbers: `round * PER_ROUND + n` for the child's n-th transaction, and
/// `round * PER_ROUND + PARENT_TXN` for the one the parent runs after verifying the round,
/// so they ascend across rounds.
const PER_ROUND: u64 = 1_000_000;
const PARENT_TXN: u64 = PER_ROUND - 2; // committed: not a multiple of 4 plus 3
/// Key of a non-transactional record; its value is `plain:<txn>`.
const PLAIN_KEY: &str = "plain";

fn records_in(txn: u64, part: usize) -> u64 {
    1 + (txn + part as u64) % 3
}

fn record_for(txn: u64, part: usize, i: u64) -> Record {
    let pad = common::filler(txn ^ ((part as u64) << 20) ^ i, (txn % 200) as usize);
    let mut value = format!("{txn}:{part}:{i}:").into_bytes();
    value.extend_from_slice(&pad);
    Record::new(txn.to_string(), value).with_header("txn", txn.to_string())
}

/// (txn, part, i) of a transactional record.
fn identity(r: &StoredRecord) -> Option<(u64, usize, u64)> {
    let value = r.value.as_ref()?;
    let mut f = value.splitn(4, |&b| b == b':');
    let num = |b: Option<&[u8]>| std::str::from_utf8(b?).ok()?.parse::<u64>().ok();
    let txn = num(f.next())?;
    let part = num(f.next())? as usize;
    let i = num(f.next())?;
    let want = record_for(txn, part, i);
    (r.key == want.key && r.value == want.value && r.headers == want.headers)
        .then_some((txn, part, i))
}

fn aborts_on_purpose(txn: u64) -> bool {
    txn % 4 == 3
}

/// Every third transaction also appends a plain (non-transactional) record in its middle.
fn has_plain(txn: u64) -> bool {
    txn % 3 == 0
}

fn offset_sent(txn: u64) -> OffsetAndMetadata {
    OffsetAndMetadata {
        offset: txn as i64 + 1,
        metadata: format!("txn-{txn}"),
    }
}

/// One whole transaction: records to the four partitions, the group's offset, and commit
/// (or abort). `on_plain` runs after the plain append, when there is one.
fn run_txn(
    log: &Log,
    tx: &mut TransactionalProducer,
    txn: u64,
    acks: Acks,
    mut on_plain: impl FnMut() -> TestResult,
) -> TestResult {
    tx.begin()?;
    for (part, &(topic, p)) in PARTS.iter().enumerate() {
        let records: Vec<Record> = (0..records_in(txn, part))
            .map(|i| record_for(txn, part, i))
            .collect();
        tx.append(topic, p, &records)?;
        if part == 1 && has_plain(txn) {
            let plain = Record::new(PLAIN_KEY, format!("{PLAIN_KEY}:{txn}"));
            log.append(topic, p, &[plain], acks)?;
            on_plain()?;
        }
    }
    tx.send_offsets(GROUP, None, &[(SOURCE.to_string(), 0, offset_sent(txn))])?;
    if aborts_on_purpose(txn) {
        tx.abort()?;
    } else {
        tx.commit()?;
    }
    Ok(())
}

fn create_topics(log: &Log) -> TestResult {
    for (topic, partitions) in [("tx-a", 2), ("tx-b", 2), (SOURCE, 1)] {
        if !log.topic_exists(topic) {
            log.create_topic(topic, TopicConfig::partitions(partitions))?;
        }
    }
    Ok(())
}

/// The workload a child runs until it is killed; prints `committed <txn>`, `aborted <txn>`
/// and `plain <txn>` as each is acknowledged.
#[test]
#[ignore = "the workload of transactions_are_all_or_nothing_across_sigkill, run in a child process"]
fn crash_transaction_child() -> TestResult {
    let Some(dir) = common::child_dir() else {
        return Ok(());
    };
    let round = common::child_env_u64(ROUND_ENV)?;
    let acks = match std::env::var(ACKS_ENV).as_deref() {
        Ok("written") => Acks::Written,
        _ => Acks::Synced,
    };
    let log = Log::open(&dir)?;
    create_topics(&log)?;
    let mut tx = log.transactional_producer(TXN_ID, acks)?;
    let mut out = std::io::stdout().lock();
    // The test harness has printed "test <name> ... " without a newline: end that line.
    writeln!(out, "\nready")?;
    out.flush()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0..PARENT_TXN {
        if Instant::now() > deadline {
            break;
        }
        let txn = round * PER_ROUND + n;
        run_txn(&log, &mut tx, txn, acks, || {
            let mut out = std::io::stdout().lock();
            writeln!(out, "plain {txn}")?;
            out.flush()?;
            Ok(())
        })?;
        let word = if aborts_on_purpose(txn) {
            "aborted"
        } else {
            "committed"
        };
        writeln!(out, "{word} {txn}")?;
        out.flush()?;
    }
    Ok(())
}

/// What the parent knows from acknowledgements.
#[derive(Debug, Default)]
struct Known {
    committed: BTreeSet<u64>,
    aborted: BTreeSet<u64>,
    plain: BTreeSet<u64>,
    /// Per round, the transaction that was running when the kill came (it may or may not
    /// have committed).
    in_flight: BTreeSet<u64>,
    /// Transactions seen visible after an earlier reopen: they must stay visible.
    visible: BTreeSet<u64>,
}

fn parse_lines(lines: &[String], round: u64, known: &mut Known) -> TestResult {
    let mut ended = 0;
    for line in lines {
        let Some((word, num)) = line.split_once(' ') else {
            continue;
        };
        let set = match word {
            "committed" => &mut known.committed,
            "aborted" => &mut known.aborted,
            "plain" => &mut known.plain,
            _ => continue,
        };
        let txn: u64 = num.parse().map_err(|e| format!("bad line '{line}': {e}"))?;
        assert_eq!(
            txn / PER_ROUND,
            round,
            "line '{line}' is not from round {round}"
        );
        set.insert(txn);
        if word != "plain" {
            assert_eq!(txn, round * PER_ROUND + ended, "transactions end in order");
            ended += 1;
        }
    }
    known.in_flight.insert(round * PER_ROUND + ended);
    Ok(())
}

/// Reopens the log and checks it against what was acknowledged.
fn verify(dir: &Path, known: &mut Known) -> TestResult<Log> {
    let log = Log::open(dir)?;
    if PARTS.iter().any(|(t, _)| !log.topic_exists(t)) {
        assert!(
            known.committed.is_empty(),
            "acknowledged commits but no topics"
        );
        return Ok(log);
    }
    // Visible transactional records per transaction: part → record indexes in order.
    let mut visible: BTreeMap<u64, BTreeMap<usize, Vec<u64>>> = BTreeMap::new();
    let mut plain_seen = BTreeSet::new();
    for (part, &(topic, p)) in PARTS.iter().enumerate() {
        let offsets = log.offsets(topic, p)?;
        assert_eq!(
            offsets.last_stable, offsets.end,
            "{topic}-{p}: recovery left a transaction open"
        );
        let mut last = None;
        for r in common::read_all(&log, topic, p, Isolation::ReadCommitted)? {
            if r.key.as_deref() == Some(PLAIN_KEY.as_bytes()) {
                let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
                let txn: u64 = v
                    .strip_prefix("plain:")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("{topic}-{p}: bad plain record {r:?}"))?;
                assert!(plain_seen.insert(txn), "plain record {txn} twice");
                continue;
            }
            let id = identity(&r).ok_or_else(|| format!("{topic}-{p}: unknown record {r:?}"))?;
            assert_eq!(
                id.1, part,
                "{topic}-{p}: record {id:?} of another partition"
            );
            assert!(
                last < Some(id),
                "{topic}-{p} offset {}: {id:?} after {last:?}",
                r.offset
            );
            last = Some(id);
            visible
                .entry(id.0)
                .or_default()
                .entry(part)
                .or_default()
                .push(id.2);
        }
        // Read uncommitted sees aborted records too, but never a marker.
        for r in common::read_all(&log, topic, p, Isolation::ReadUncommitted)? {
            assert!(
                r.key.as_deref() == Some(PLAIN_KEY.as_bytes()) || identity(&r).is_some(),
                "{topic}-{p} offset {}: read_uncommitted returned {r:?}",
                r.offset
            );
        }
    }
    // All or nothing, in every partition.
    for (&txn, parts) in &visible {
        for (part, _) in PARTS.iter().enumerate() {
            let want: Vec<u64> = (0..records_in(txn, part)).collect();
            assert_eq!(
                parts.get(&part),
                Some(&want),
                "transaction {txn} is partly visible: {parts:?}"
            );
        }
        assert!(
            !aborts_on_purpose(txn),
            "aborted transaction {txn} is visible"
        );
        assert!(
            known.committed.contains(&txn) || known.in_flight.contains(&txn),
            "transaction {txn} visible but never run to commit"
        );
    }
    let visible: BTreeSet<u64> = visible.into_keys().collect();
    let lost: Vec<_> = known.committed.difference(&visible).collect();
    assert!(lost.is_empty(), "acknowledged commits lost: {lost:?}");
    let vanished: Vec<_> = known.visible.difference(&visible).collect();
    assert!(vanished.is_empty(), "once visible, now gone: {vanished:?}");
    let lost_plain: Vec<_> = known.plain.difference(&plain_seen).collect();
    assert!(
        lost_plain.is_empty(),
        "acknowledged plain appends lost: {lost_plain:?}"
    );
    // The group's offset is the one sent by the newest visible transaction: offsets of
    // aborted or half-done transactions never took effect.
    let committed = log.committed_offset(GROUP, SOURCE, 0)?;
    assert_eq!(
        committed,
        visible.last().map(|&t| offset_sent(t)),
        "committed offset of {GROUP}"
    );
    known.visible = visible;
    Ok(log)
}

#[test]
fn transactions_are_all_or_nothing_across_sigkill() -> TestResult {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let rounds = common::rounds();
    let mut rng = rand::thread_rng();
    let mut known = Known::default();
    for round in 0..rounds {
        let acks = if round % 3 == 2 { "written" } else { "synced" };
        let mut child = ChildProc::spawn(
            CHILD_TEST,
            &[
                (CHILD_DIR_ENV, dir.path().display().to_string()),
                (ROUND_ENV, round.to_string()),
                (ACKS_ENV, acks.to_string()),
            ],
        )?;
        if round % 5 == 4 {
            // Sometimes kill early: during startup, recovery or the first transaction.
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..80)));
        } else {
            child.wait_for_line("ready", Duration::from_secs(30))?;
            let ms = if acks == "written" { 1..150 } else { 1..500 };
            std::thread::sleep(Duration::from_millis(rng.gen_range(ms)));
        }
        let lines = child.kill_and_collect()?;
        parse_lines(&lines, round, &mut known)?;
        let log = verify(dir.path(), &mut known)?;
        // A new producer with the same transactional id works on the recovered log.
        create_topics(&log)?;
        let mut tx = log.transactional_producer(TXN_ID, Acks::Written)?;
        let txn = round * PER_ROUND + PARENT_TXN;
        run_txn(&log, &mut tx, txn, Acks::Written, || Ok(()))?;
        if has_plain(txn) {
            known.plain.insert(txn);
        }
        if aborts_on_purpose(txn) {
            known.aborted.insert(txn);
        } else {
            known.committed.insert(txn);
        }
        for &(topic, p) in &PARTS {
            let o = log.offsets(topic, p)?;
            assert_eq!(
                o.last_stable, o.end,
                "{topic}-{p} after the parent's transaction"
            );
        }
    }
    drop(verify(dir.path(), &mut known)?);
    let child_commits = known
        .committed
        .iter()
        .filter(|&&t| t % PER_ROUND != PARENT_TXN)
        .count();
    assert!(
        child_commits > 0,
        "no child transaction committed; the test proves nothing"
    );
    eprintln!(
        "{rounds} rounds, {child_commits} acknowledged child commits, {} aborts, {} visible, {:?}",
        known.aborted.len(),
        known.visible.len(),
        started.elapsed()
    );
    Ok(())
}
