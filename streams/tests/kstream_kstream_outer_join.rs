//! Port of Kafka's `KStreamKStreamOuterJoinTest` (apache/kafka `1eb7644`, 16 tests): outer
//! stream–stream joins through the test driver, with Kafka's inputs and expected outputs.
//!
//! As in Kafka's test, the left stream carries `String` values and the right stream `i64`
//! values (`StreamJoined.with(Integer, String, Long)`). Kafka's tests capture the join's
//! output with a mock processor; these write it to a topic and read it back, comparing
//! `(key, value, timestamp)` — and headers where Kafka does — in order, with the exact
//! count. `TOSTRING_JOINER` prints a missing side as `null`, as Java's string concatenation
//! does. Kafka's driver, like freshet's, turns the wall-clock emit throttle off.
//!
//! Ported: `testOuterJoinDuplicates`,
//! `testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor`,
//! `testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor`,
//! `testRightExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor`,
//! `testRightExpiredNonJoinedRecordsAreEmittedByTheRightProcessor`, `testOrdering`,
//! `testGracePeriod`, `testEmitAllNonJoinedResultsForAsymmetricWindow`,
//! `testOuterJoinWithInMemoryCustomSuppliers` (Kafka's in-memory suppliers are
//! [`Stores::window`] builders with the same settings), `testOuterJoinWithDefaultSuppliers`,
//! `testWindowing` (with its upper and lower window bound parts),
//! `testShouldNotEmitLeftJoinResultForAsymmetricBeforeWindow`,
//! `testShouldNotEmitLeftJoinResultForAsymmetricAfterWindow`,
//! `testShouldForwardCurrentHeaders`. Three more tests check what Kafka checks elsewhere or
//! what freshet adds: the outer-join null-key rule, `TopologyTest`'s outer-join `describe()`
//! text, and that the join's shared stream time is committed and restored.
//!
//! Not ported:
//! - `testOuterJoinDuplicatesWithFixDisabledOldApi`: uses the deprecated `JoinWindows.of`,
//!   which turns Kafka's spurious-result fix off; freshet has only the Kafka 3+
//!   constructors, so the fix is always on.
//! - `testShouldJoinWithNonTimestampedStore`: checks the class of the key-value store Kafka's
//!   store supplier builds for the shared store; freshet's stores have one layout.

use std::collections::BTreeSet;
use std::time::Duration;

use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    BigEndian, Headers, JoinWindows, Record, Result, StoreBuilder, Stores, StreamJoined,
    StreamsBuilder, TopicName, Topology, Utf8,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `TOSTRING_JOINER` over a `String` left and an `i64` right side.
fn to_string_joiner(l: Option<&String>, r: Option<&i64>) -> String {
    let l = l.map_or_else(|| "null".to_string(), String::clone);
    let r = r.map_or_else(|| "null".to_string(), i64::to_string);
    format!("{l}+{r}")
}

/// `stream1.outerJoin(stream2, TOSTRING_JOINER, windows, joined)` written to `out`.
fn outer_join(windows: JoinWindows, joined: StreamJoined<i32, String, i64>) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let s1 = builder.stream::<i32, String>("topic1");
    let s2 = builder.stream::<i32, i64>("topic2");
    s1.outer_join_with(&s2, to_string_joiner, windows, joined)
        .to("out");
    builder.build()
}

fn default_joined() -> StreamJoined<i32, String, i64> {
    StreamJoined::with(BigEndian, Utf8, BigEndian)
}

fn assert_copartitioned(topology: &Topology) {
    let expected: BTreeSet<TopicName> = [
        TopicName::External("topic1".into()),
        TopicName::External("topic2".into()),
    ]
    .into();
    assert_eq!(topology.copartition_groups(), [expected]);
}

struct Harness {
    driver: TopologyTestDriver,
}

impl Harness {
    fn new(topology: Topology) -> Result<Harness> {
        Ok(Harness {
            driver: TopologyTestDriver::new(topology)?,
        })
    }

    fn t1(&self, key: i32, value: &str, ts: i64) -> Result<()> {
        self.driver
            .input::<i32, String>("topic1")
            .pipe(key, value.to_string(), ts)
    }

    fn t2(&self, key: i32, value: i64, ts: i64) -> Result<()> {
        self.driver.input::<i32, i64>("topic2").pipe(key, value, ts)
    }

    /// Pipes `<prefix>0..<prefix>3` for keys 0..3, all at `ts`, to topic 1.
    fn four(&self, prefix: &str, ts: i64) -> Result<()> {
        for k in 0..4 {
            self.t1(k, &format!("{prefix}{k}"), ts)?;
        }
        Ok(())
    }

    fn read(&self) -> Result<Vec<Record<i32, String>>> {
        self.driver.output::<i32, String>("out").read_records()
    }

    /// Kafka's `checkAndClearProcessResult`.
    fn check(&self, expected: &[(i32, &str, i64)]) -> Result<()> {
        let got: Vec<(i32, String, i64)> = self
            .read()?
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect();
        let expected: Vec<(i32, String, i64)> = expected
            .iter()
            .map(|(k, v, t)| (*k, v.to_string(), *t))
            .collect();
        assert_eq!(got, expected);
        Ok(())
    }
}

#[test]
fn test_outer_join_duplicates() -> Result<()> {
    let h = Harness::new(outer_join(
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10))?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 0)?;
    h.t1(0, "A0-0", 0)?;
    h.t2(1, 11, 0)?;
    h.t2(1, 12, 0)?;
    h.t2(1, 10, 111)?;
    h.t2(3, 100, 211)?;
    h.check(&[
        (1, "null+11", 0),
        (1, "null+12", 0),
        (0, "A0+null", 0),
        (0, "A0-0+null", 0),
    ])?;
    h.t1(2, "A2", 200)?;
    h.t1(2, "A2-0", 200)?;
    h.t2(2, 13, 201)?;
    h.t2(2, 14, 201)?;
    h.check(&[
        (2, "A2+13", 201),
        (2, "A2-0+13", 201),
        (2, "A2+14", 201),
        (2, "A2-0+14", 201),
    ])?;
    h.t2(3, 100, 1500)?;
    h.check(&[(1, "null+10", 111), (3, "null+100", 211)])
}

#[test]
fn test_left_expired_non_joined_records_are_emitted_by_the_left_processor() -> Result<()> {
    let h = Harness::new(outer_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 1)?;
    h.t1(1, "A1", 2)?;
    h.t1(0, "A0-0", 3)?;
    h.check(&[])?;
    h.t2(1, 11, 3)?;
    h.check(&[(1, "A1+11", 3)])?;
    h.t1(2, "dummy", 401)?;
    h.check(&[(0, "A0+null", 1), (0, "A0-0+null", 3)])?;
    h.t2(2, 100, 401)?;
    h.check(&[(2, "dummy+100", 401)])
}

#[test]
fn test_left_expired_non_joined_records_are_emitted_by_the_right_processor() -> Result<()> {
    let h = Harness::new(outer_join(
        JoinWindows::of_time_difference_and_grace(ms(100), ms(0))?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 1)?;
    h.t1(1, "A1", 2)?;
    h.t1(0, "A0-0", 3)?;
    h.check(&[])?;
    h.t2(1, 11, 3)?;
    h.check(&[(1, "A1+11", 3)])?;
    h.t2(2, 100, 401)?;
    h.check(&[(0, "A0+null", 1), (0, "A0-0+null", 3)])?;
    h.t1(2, "dummy", 402)?;
    h.check(&[(2, "dummy+100", 402)])
}

#[test]
fn test_right_expired_non_joined_records_are_emitted_by_the_left_processor() -> Result<()> {
    let h = Harness::new(outer_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
        default_joined(),
    )?)?;
    h.t2(0, 10, 1)?;
    h.t2(1, 11, 2)?;
    h.t2(0, 12, 3)?;
    h.check(&[])?;
    h.t1(1, "A1", 3)?;
    h.check(&[(1, "A1+11", 3)])?;
    h.t1(2, "dummy", 401)?;
    h.check(&[(0, "null+10", 1), (0, "null+12", 3)])?;
    h.t2(2, 100, 402)?;
    h.check(&[(2, "dummy+100", 402)])
}

#[test]
fn test_right_expired_non_joined_records_are_emitted_by_the_right_processor() -> Result<()> {
    let h = Harness::new(outer_join(
        JoinWindows::of_time_difference_and_grace(ms(100), ms(0))?,
        default_joined(),
    )?)?;
    h.t2(0, 10, 1)?;
    h.t2(1, 11, 2)?;
    h.t2(0, 12, 3)?;
    h.check(&[])?;
    h.t1(1, "A1", 3)?;
    h.check(&[(1, "A1+11", 3)])?;
    h.t2(2, 100, 401)?;
    h.check(&[(0, "null+10", 1), (0, "null+12", 3)])?;
    h.t1(2, "dummy", 402)?;
    h.check(&[(2, "dummy+100", 402)])
}

#[test]
fn test_ordering() -> Result<()> {
    let h = Harness::new(outer_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 100)?;
    h.check(&[])?;
    h.t2(1, 11, 110)?;
    h.check(&[(0, "A0+null", 0), (1, "A1+11", 110)])
}

#[test]
fn test_grace_period() -> Result<()> {
    let topology = outer_join(
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10))?,
        default_joined(),
    )?;
    assert_copartitioned(&topology);
    let h = Harness::new(topology)?;
    h.t1(0, "A0", 0)?;
    h.t2(1, 11, 0)?;
    h.check(&[])?;
    h.t1(1, "A1", 101)?;
    h.t2(0, 10, 101)?;
    h.check(&[])?;
    h.t2(0, 100, 112)?;
    h.check(&[(1, "null+11", 0), (0, "A0+null", 0)])
}

#[test]
fn test_emit_all_non_joined_results_for_asymmetric_window() -> Result<()> {
    let topology = outer_join(
        JoinWindows::of_time_difference_with_no_grace(ms(5))?.after(20)?,
        default_joined(),
    )?;
    assert_copartitioned(&topology);
    let h = Harness::new(topology)?;
    h.t1(0, "A0", 29)?;
    h.check(&[])?;
    h.t1(1, "A1", 30)?;
    h.check(&[])?;
    h.t2(2, 12, 31)?;
    h.check(&[])?;
    h.t2(3, 13, 36)?;
    h.check(&[])?;
    h.t2(4, 14, 37)?;
    h.check(&[(2, "null+12", 31)])?;
    h.t2(5, 15, 50)?;
    h.check(&[(0, "A0+null", 29), (3, "null+13", 36), (4, "null+14", 37)])
}

/// Kafka's `runOuterJoin`: the common topology, two window stores and the shared store.
fn run_outer_join(joined: StreamJoined<i32, String, i64>, windows: JoinWindows) -> Result<()> {
    let topology = outer_join(windows, joined)?;
    assert_copartitioned(&topology);
    assert_eq!(topology.stores().count(), 3);
    let h = Harness::new(topology)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 0)?;
    h.check(&[])?;
    h.t2(0, 10, 0)?;
    h.t2(1, 11, 0)?;
    h.check(&[(0, "A0+10", 0), (1, "A1+11", 0)])?;
    h.t1(0, "B0", 0)?;
    h.t1(1, "B1", 0)?;
    h.t1(2, "B2", 0)?;
    h.check(&[(0, "B0+10", 0), (1, "B1+11", 0)])?;
    for (k, v) in [(0, 20), (1, 21), (2, 22), (3, 23)] {
        h.t2(k, v, 0)?;
    }
    h.check(&[
        (0, "A0+20", 0),
        (0, "B0+20", 0),
        (1, "A1+21", 0),
        (1, "B1+21", 0),
        (2, "B2+22", 0),
    ])?;
    for (k, v) in [(0, "C0"), (1, "C1"), (2, "C2"), (3, "C3")] {
        h.t1(k, v, 0)?;
    }
    h.check(&[
        (0, "C0+10", 0),
        (0, "C0+20", 0),
        (1, "C1+11", 0),
        (1, "C1+21", 0),
        (2, "C2+22", 0),
        (3, "C3+23", 0),
    ])?;
    h.t1(0, "dummy", 400)?;
    h.check(&[])
}

/// Kafka's `Stores.inMemoryWindowStore(name, 200 ms, 200 ms, true)`; the join replaces a
/// given store's serdes with its own.
fn in_memory(name: &str) -> StoreBuilder {
    Stores::window::<i32, String>(name, 200, 200, true, BigEndian, Utf8)
}

#[test]
fn test_outer_join_with_in_memory_custom_suppliers() -> Result<()> {
    let joined = default_joined()
        .with_this_store(in_memory("in-memory-join-store"))
        .with_other_store(in_memory("in-memory-join-store-other"));
    run_outer_join(
        joined,
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
    )
}

#[test]
fn test_outer_join_with_default_suppliers() -> Result<()> {
    run_outer_join(
        default_joined(),
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
    )
}

#[test]
fn test_windowing() -> Result<()> {
    let topology = outer_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
        default_joined(),
    )?;
    assert_copartitioned(&topology);
    let h = Harness::new(topology)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 0)?;
    h.check(&[])?;
    for (k, v) in [(0, 10), (1, 11), (2, 12), (3, 13)] {
        h.t2(k, v, 0)?;
    }
    h.check(&[(0, "A0+10", 0), (1, "A1+11", 0)])?;

    // testUpperWindowBound
    for (k, v, t) in [(0, 20, 1000), (1, 21, 1001), (2, 22, 1002), (3, 23, 1003)] {
        h.t2(k, v, t)?;
    }
    h.check(&[(2, "null+12", 0), (3, "null+13", 0)])?;
    h.four("B", 1100)?;
    h.check(&[
        (0, "B0+20", 1100),
        (1, "B1+21", 1100),
        (2, "B2+22", 1100),
        (3, "B3+23", 1100),
    ])?;
    h.four("C", 1101)?;
    h.check(&[(1, "C1+21", 1101), (2, "C2+22", 1101), (3, "C3+23", 1101)])?;
    h.four("D", 1102)?;
    h.check(&[(2, "D2+22", 1102), (3, "D3+23", 1102)])?;
    h.four("E", 1103)?;
    h.check(&[(3, "E3+23", 1103)])?;
    h.four("F", 1104)?;
    h.check(&[])?;
    h.t1(0, "dummy", 1405)?;
    h.check(&[
        (0, "C0+null", 1101),
        (0, "D0+null", 1102),
        (1, "D1+null", 1102),
        (0, "E0+null", 1103),
        (1, "E1+null", 1103),
        (2, "E2+null", 1103),
        (0, "F0+null", 1104),
        (1, "F1+null", 1104),
        (2, "F2+null", 1104),
        (3, "F3+null", 1104),
    ])?;

    // testLowerWindowBound (the shared stream time is 1405 now)
    h.four("G", 899)?;
    h.check(&[
        (0, "G0+null", 899),
        (1, "G1+null", 899),
        (2, "G2+null", 899),
        (3, "G3+null", 899),
    ])?;
    h.four("H", 900)?;
    h.check(&[
        (0, "H0+20", 1000),
        (1, "H1+null", 900),
        (2, "H2+null", 900),
        (3, "H3+null", 900),
    ])?;
    h.four("I", 901)?;
    h.check(&[
        (0, "I0+20", 1000),
        (1, "I1+21", 1001),
        (2, "I2+null", 901),
        (3, "I3+null", 901),
    ])?;
    h.four("J", 902)?;
    h.check(&[
        (0, "J0+20", 1000),
        (1, "J1+21", 1001),
        (2, "J2+22", 1002),
        (3, "J3+null", 902),
    ])?;
    h.four("K", 903)?;
    h.check(&[
        (0, "K0+20", 1000),
        (1, "K1+21", 1001),
        (2, "K2+22", 1002),
        (3, "K3+23", 1003),
    ])?;
    h.t1(0, "dummy", 1103)?;
    h.check(&[(0, "dummy+null", 1103)])
}

#[test]
fn test_should_not_emit_left_join_result_for_asymmetric_before_window() -> Result<()> {
    let h = Harness::new(outer_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?.before(0)?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 1)?;
    h.check(&[])?;
    h.t2(0, 10, 100)?;
    h.check(&[(0, "A0+10", 100)])?;
    h.t2(1, 11, 102)?;
    h.check(&[(1, "A1+null", 1)])?;
    h.t2(2, 12, 103)?;
    h.check(&[(1, "null+11", 102)])?;
    h.t1(2, "A2", 103)?;
    h.check(&[(2, "A2+12", 103)])
}

#[test]
fn test_should_not_emit_left_join_result_for_asymmetric_after_window() -> Result<()> {
    let h = Harness::new(outer_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?.after(0)?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 1)?;
    h.check(&[(0, "A0+null", 0)])?;
    h.t2(1, 11, 1)?;
    h.check(&[(1, "A1+11", 1)])?;
    h.t2(2, 12, 101)?;
    h.check(&[])?;
    h.t2(3, 13, 101)?;
    h.check(&[])?;
    h.t1(2, "A2", 201)?;
    h.check(&[(2, "A2+12", 201)])
}

fn header(n: u8) -> Headers {
    vec![("h".to_string(), bytes::Bytes::from(vec![n]))]
}

#[test]
fn test_should_forward_current_headers() -> Result<()> {
    let h = Harness::new(outer_join(
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10))?,
        default_joined(),
    )?)?;
    let t1 = h.driver.input::<i32, String>("topic1");
    let t2 = h.driver.input::<i32, i64>("topic2");
    t1.pipe_record(
        Record::new(0, "A0".to_string(), 0).with_headers(header(1)),
        None,
    )?;
    t2.pipe_record(Record::new(1, 10, 0).with_headers(header(2)), None)?;
    t2.pipe_record(Record::new(3, 100, 211).with_headers(header(3)), None)?;
    let expect =
        |k: i32, v: &str, ts: i64, h: u8| Record::new(k, v.to_string(), ts).with_headers(header(h));
    assert_eq!(
        h.read()?,
        vec![expect(1, "null+10", 0, 3), expect(0, "A0+null", 0, 3)]
    );
    t1.pipe_record(
        Record::new(2, "A2".to_string(), 200).with_headers(header(4)),
        None,
    )?;
    t2.pipe_record(Record::new(2, 12, 200).with_headers(header(5)), None)?;
    assert_eq!(h.read()?, vec![expect(2, "A2+12", 200, 5)]);
    Ok(())
}

#[test]
fn a_null_key_record_of_either_side_is_emitted_at_once() -> Result<()> {
    // Not a Kafka test: the null-key rule of outer joins (`KStreamKStreamJoin.process`).
    let builder = StreamsBuilder::new();
    let s1 = builder.stream::<Option<i32>, String>("topic1");
    let s2 = builder.stream::<Option<i32>, i64>("topic2");
    s1.outer_join(
        &s2,
        to_string_joiner,
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
    )
    .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver
        .input::<Option<i32>, String>("topic1")
        .pipe(None, "A".into(), 5)?;
    driver
        .input::<Option<i32>, i64>("topic2")
        .pipe(None, 7, 6)?;
    let out = driver.output::<Option<i32>, String>("out").read_records()?;
    let out: Vec<_> = out
        .iter()
        .map(|r| (r.key, r.value.as_str(), r.timestamp))
        .collect();
    assert_eq!(out, vec![(None, "A+null", 5), (None, "null+7", 6)]);
    Ok(())
}

#[test]
fn stream_times_are_committed_and_restored() -> Result<()> {
    // Not a Kafka test: both join nodes report the join's shared stream time.
    use freshet_state_store::{MemoryBackend, ThreadCache};
    use freshet_streams::{InputRecord, StreamTimes, Task, TaskConfig, TaskEnv};
    use std::sync::Arc;

    let topology = outer_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
        default_joined(),
    )?;
    let subs: Vec<u32> = topology.subtopologies().iter().map(|s| s.id).collect();
    let env = || {
        let mut config = TaskConfig::new("restore");
        config.outer_join_emit_interval_ms = 0;
        TaskEnv {
            backend: Arc::new(MemoryBackend::new()),
            cache: ThreadCache::new(1 << 20),
            config,
            partitions_of: Arc::new(|_| Some(1)),
            wall_clock: 0,
            global_stores: Default::default(),
        }
    };
    let mut task = Task::new(&topology, "0_0", &subs, 0, env())?;
    task.add_records(
        "topic1",
        [InputRecord {
            key: Some(bytes::Bytes::from(1i32.to_be_bytes().to_vec())),
            value: Some(bytes::Bytes::from_static(b"A")),
            timestamp: 500,
            headers: Vec::new(),
            offset: 0,
        }],
    )?;
    assert!(task.process_one()?);
    let times = task.stream_times();
    let joins: Vec<(&str, i64)> = times
        .nodes
        .iter()
        .filter(|(n, _)| n.contains("OUTERTHIS") || n.contains("OUTEROTHER"))
        .map(|(n, t)| (n.as_str(), *t))
        .collect();
    assert_eq!(
        joins,
        vec![
            ("KSTREAM-OUTEROTHER-0000000005", 500),
            ("KSTREAM-OUTERTHIS-0000000004", 500)
        ]
    );
    task.close()?;

    // A new task (empty stores) restored to stream time 500: a right record at 10 is late
    // (10 + 100 < 500) and goes out at once instead of waiting.
    let mut task = Task::new(&topology, "0_0", &subs, 0, env())?;
    task.restore_stream_times(&StreamTimes {
        task: 500,
        nodes: times.nodes.clone(),
    })?;
    task.add_records(
        "topic2",
        [InputRecord {
            key: Some(bytes::Bytes::from(2i32.to_be_bytes().to_vec())),
            value: Some(bytes::Bytes::from(7i64.to_be_bytes().to_vec())),
            timestamp: 10,
            headers: Vec::new(),
            offset: 0,
        }],
    )?;
    assert!(task.process_one()?);
    let out: Vec<(Option<bytes::Bytes>, i64)> = task
        .take_outputs()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    assert_eq!(out, vec![(Some(bytes::Bytes::from_static(b"null+7")), 10)]);
    Ok(())
}

#[test]
fn describe_matches_kafkas_outer_join_topology() -> Result<()> {
    // Not a test of this Kafka class: `TopologyTest.streamStreamOuterJoinTopologyWithCustomStoresNames`.
    let builder = StreamsBuilder::new();
    let s1 = builder.stream::<i32, String>("input-topic1");
    let s2 = builder.stream::<i32, String>("input-topic2");
    s1.outer_join_with(
        &s2,
        |l, _| l.cloned().unwrap_or_default(),
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
        StreamJoined::with(BigEndian, Utf8, Utf8).with_store_name("custom-name"),
    );
    let expected = "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [custom-name-outer-this-join-store])
      --> KSTREAM-OUTERTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [custom-name-outer-other-join-store])
      --> KSTREAM-OUTEROTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-OUTEROTHER-0000000005 (stores: [custom-name-outer-this-join-store, custom-name-outer-shared-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-OUTERTHIS-0000000004 (stores: [custom-name-outer-other-join-store, custom-name-outer-shared-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-OUTERTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005

";
    assert_eq!(builder.build()?.describe().to_string(), expected);
    Ok(())
}
