//! Port of Kafka's `KStreamKStreamLeftJoinTest` (apache/kafka `1eb7644`, 14 tests): left
//! stream–stream joins through the test driver, with Kafka's inputs and expected outputs.
//!
//! Kafka's tests capture the join's output with a mock processor; these write it to a topic
//! and read it back, comparing `(key, value, timestamp)` in order, with the exact count.
//! `TOSTRING_JOINER` is `format!("{l}+{r}")` with a missing right value printed `null`, as
//! Java's string concatenation prints it. Kafka's driver, like freshet's, turns the
//! wall-clock emit throttle off.
//!
//! Ported: `testLeftJoinDuplicates`,
//! `testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor`,
//! `testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor`,
//! `testRightNonJoinedRecordsAreNeverEmittedByTheLeftProcessor`,
//! `testRightNonJoinedRecordsAreNeverEmittedByTheRightProcessor`,
//! `testLeftJoinedRecordsWithZeroAfterAreEmitted`, `testLeftJoinWithInMemoryCustomSuppliers`
//! (Kafka's in-memory suppliers are [`Stores::window`] builders with the same settings),
//! `testLeftJoinWithDefaultSuppliers`, `testOrdering`, `testGracePeriod`, `testWindowing`
//! (with its `testUpperWindowBound` / `testLowerWindowBound` parts),
//! `shouldNotEmitLeftJoinResultForAsymmetricWindow`. Two more tests check what Kafka checks
//! elsewhere: the left-join null-key rule and `TopologyTest`'s left-join `describe()` text.
//!
//! Not ported: `testLeftJoinWithSpuriousResultFixDisabledOldApi` and
//! `testLeftJoinDuplicatesWithSpuriousResultFixDisabledOldApi` use the deprecated
//! `JoinWindows.of`, which turns Kafka's spurious-result fix off; freshet has only the
//! Kafka 3+ constructors, so the fix is always on.

use std::collections::BTreeSet;
use std::time::Duration;

use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    BigEndian, JoinWindows, Result, StoreBuilder, Stores, StreamJoined, StreamsBuilder, TopicName,
    Topology, Utf8,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `stream1.leftJoin(stream2, TOSTRING_JOINER, windows, joined)` written to `out`.
fn left_join(windows: JoinWindows, joined: StreamJoined<i32, String, String>) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let s1 = builder.stream::<i32, String>("topic1");
    let s2 = builder.stream::<i32, String>("topic2");
    s1.left_join_with(
        &s2,
        |l, r| format!("{l}+{}", r.map_or("null", String::as_str)),
        windows,
        joined,
    )
    .to("out");
    builder.build()
}

fn default_joined() -> StreamJoined<i32, String, String> {
    StreamJoined::with(BigEndian, Utf8, Utf8)
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

    fn t2(&self, key: i32, value: &str, ts: i64) -> Result<()> {
        self.driver
            .input::<i32, String>("topic2")
            .pipe(key, value.to_string(), ts)
    }

    /// Pipes `<prefix>0..<prefix>3` for keys 0..3, all at `ts`, to topic `n`.
    fn four(&self, n: u8, prefix: &str, ts: i64) -> Result<()> {
        for k in 0..4 {
            let v = format!("{prefix}{k}");
            if n == 1 {
                self.t1(k, &v, ts)?;
            } else {
                self.t2(k, &v, ts)?;
            }
        }
        Ok(())
    }

    /// Kafka's `checkAndClearProcessResult`.
    fn check(&self, expected: &[(i32, &str, i64)]) -> Result<()> {
        let got: Vec<(i32, String, i64)> = self
            .driver
            .output::<i32, String>("out")
            .read_records()?
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
fn test_left_join_duplicates() -> Result<()> {
    let h = Harness::new(left_join(
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10))?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 0)?;
    h.t1(0, "A0-0", 0)?;
    h.t2(1, "a0", 111)?;
    h.t2(2, "dummy", 500)?;
    h.check(&[(0, "A0+null", 0), (0, "A0-0+null", 0)])?;
    h.t1(2, "A2", 1000)?;
    h.t1(2, "A2-0", 1000)?;
    h.t2(2, "a2", 1001)?;
    h.check(&[(2, "A2+a2", 1001), (2, "A2-0+a2", 1001)])?;
    h.t2(3, "a3", 315)?;
    h.check(&[])
}

#[test]
fn test_left_expired_non_joined_records_are_emitted_by_the_left_processor() -> Result<()> {
    let h = Harness::new(left_join(
        JoinWindows::of_time_difference_and_grace(ms(100), ms(0))?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 1)?;
    h.t1(1, "A1", 2)?;
    h.t1(0, "A0-0", 3)?;
    h.check(&[])?;
    h.t2(1, "a1", 3)?;
    h.check(&[(1, "A1+a1", 3)])?;
    h.t1(2, "dummy", 401)?;
    h.check(&[(0, "A0+null", 1), (0, "A0-0+null", 3)])?;
    h.t2(2, "dummy", 401)?;
    h.check(&[(2, "dummy+dummy", 401)])
}

#[test]
fn test_left_expired_non_joined_records_are_emitted_by_the_right_processor() -> Result<()> {
    let h = Harness::new(left_join(
        JoinWindows::of_time_difference_and_grace(ms(100), ms(0))?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 1)?;
    h.t1(1, "A1", 2)?;
    h.t1(0, "A0-0", 3)?;
    h.check(&[])?;
    h.t2(1, "a1", 3)?;
    h.check(&[(1, "A1+a1", 3)])?;
    h.t2(2, "dummy", 401)?;
    h.check(&[(0, "A0+null", 1), (0, "A0-0+null", 3)])?;
    h.t1(2, "dummy", 402)?;
    h.check(&[(2, "dummy+dummy", 402)])
}

#[test]
fn test_right_non_joined_records_are_never_emitted_by_the_left_processor() -> Result<()> {
    let h = Harness::new(left_join(
        JoinWindows::of_time_difference_and_grace(ms(100), ms(0))?,
        default_joined(),
    )?)?;
    h.t2(0, "A0", 1)?;
    h.t2(1, "A1", 2)?;
    h.t2(0, "A0-0", 3)?;
    h.check(&[])?;
    h.t1(1, "a1", 3)?;
    h.check(&[(1, "a1+A1", 3)])?;
    h.t1(2, "dummy", 401)?;
    h.check(&[])?;
    h.t2(2, "dummy", 402)?;
    h.check(&[(2, "dummy+dummy", 402)])
}

#[test]
fn test_right_non_joined_records_are_never_emitted_by_the_right_processor() -> Result<()> {
    let h = Harness::new(left_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
        default_joined(),
    )?)?;
    h.t2(0, "A0", 1)?;
    h.t2(1, "A1", 2)?;
    h.t2(0, "A0-0", 3)?;
    h.check(&[])?;
    h.t1(1, "a1", 3)?;
    h.check(&[(1, "a1+A1", 3)])?;
    h.t2(2, "dummy", 401)?;
    h.check(&[])?;
    h.t1(2, "dummy", 402)?;
    h.check(&[(2, "dummy+dummy", 402)])
}

#[test]
fn test_left_joined_records_with_zero_after_are_emitted() -> Result<()> {
    let topology = left_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?.after(0)?,
        default_joined(),
    )?;
    assert_copartitioned(&topology);
    let h = Harness::new(topology)?;
    for (k, v, t) in [
        (0, "A0", 1000),
        (1, "A1", 1001),
        (2, "A2", 1002),
        (3, "A3", 1003),
    ] {
        h.t1(k, v, t)?;
    }
    h.check(&[
        (0, "A0+null", 1000),
        (1, "A1+null", 1001),
        (2, "A2+null", 1002),
    ])?;
    h.four(2, "a", 999)?;
    h.check(&[
        (0, "A0+a0", 1000),
        (1, "A1+a1", 1001),
        (2, "A2+a2", 1002),
        (3, "A3+a3", 1003),
    ])?;
    h.four(2, "b", 1000)?;
    h.check(&[
        (0, "A0+b0", 1000),
        (1, "A1+b1", 1001),
        (2, "A2+b2", 1002),
        (3, "A3+b3", 1003),
    ])?;
    h.four(2, "c", 1001)?;
    h.check(&[(1, "A1+c1", 1001), (2, "A2+c2", 1002), (3, "A3+c3", 1003)])?;
    h.four(2, "d", 1002)?;
    h.check(&[(2, "A2+d2", 1002), (3, "A3+d3", 1003)])?;
    h.four(2, "e", 1003)?;
    h.check(&[(3, "A3+e3", 1003)])?;
    h.four(2, "f", 1100)?;
    h.check(&[])
}

/// Kafka's `runLeftJoin`: the common topology, two window stores and the shared store.
fn run_left_join(joined: StreamJoined<i32, String, String>, windows: JoinWindows) -> Result<()> {
    let topology = left_join(windows, joined)?;
    assert_copartitioned(&topology);
    assert_eq!(topology.stores().count(), 3);
    let h = Harness::new(topology)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 0)?;
    h.check(&[])?;
    h.t2(0, "a0", 0)?;
    h.t2(1, "a1", 0)?;
    h.check(&[(0, "A0+a0", 0), (1, "A1+a1", 0)])?;
    h.t1(0, "B0", 0)?;
    h.t1(1, "B1", 0)?;
    h.t1(2, "B2", 0)?;
    h.check(&[(0, "B0+a0", 0), (1, "B1+a1", 0)])?;
    for (k, v) in [(0, "b0"), (1, "b1"), (2, "b2"), (3, "b3")] {
        h.t2(k, v, 0)?;
    }
    h.check(&[
        (0, "A0+b0", 0),
        (0, "B0+b0", 0),
        (1, "A1+b1", 0),
        (1, "B1+b1", 0),
        (2, "B2+b2", 0),
    ])?;
    for (k, v) in [(0, "C0"), (1, "C1"), (2, "C2"), (3, "C3")] {
        h.t1(k, v, 0)?;
    }
    h.check(&[
        (0, "C0+a0", 0),
        (0, "C0+b0", 0),
        (1, "C1+a1", 0),
        (1, "C1+b1", 0),
        (2, "C2+b2", 0),
        (3, "C3+b3", 0),
    ])?;
    h.t1(0, "dummy", 1000)?;
    h.check(&[])
}

/// Kafka's `Stores.inMemoryWindowStore(name, 200 ms, 200 ms, true)`; the join replaces a
/// given store's serdes with its own.
fn in_memory(name: &str) -> StoreBuilder {
    Stores::window::<i32, String>(name, 200, 200, true, BigEndian, Utf8)
}

#[test]
fn test_left_join_with_in_memory_custom_suppliers() -> Result<()> {
    let joined = default_joined()
        .with_this_store(in_memory("in-memory-join-store"))
        .with_other_store(in_memory("in-memory-join-store-other"));
    run_left_join(
        joined,
        JoinWindows::of_time_difference_and_grace(ms(100), ms(0))?,
    )
}

#[test]
fn test_left_join_with_default_suppliers() -> Result<()> {
    run_left_join(
        default_joined(),
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
    )
}

#[test]
fn test_ordering() -> Result<()> {
    let h = Harness::new(left_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 100)?;
    h.check(&[])?;
    h.t2(1, "a1", 110)?;
    h.check(&[(0, "A0+null", 0), (1, "A1+a1", 110)])
}

#[test]
fn test_grace_period() -> Result<()> {
    let topology = left_join(
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10))?,
        default_joined(),
    )?;
    assert_copartitioned(&topology);
    let h = Harness::new(topology)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 0)?;
    h.check(&[])?;
    h.four(2, "a", 101)?;
    h.check(&[])?;
    h.t2(0, "dummy", 1201)?;
    h.check(&[(0, "A0+null", 0), (1, "A1+null", 0)])
}

#[test]
fn test_windowing() -> Result<()> {
    let topology = left_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
        default_joined(),
    )?;
    assert_copartitioned(&topology);
    let h = Harness::new(topology)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 0)?;
    h.check(&[])?;
    h.four(2, "a", 0)?;
    h.check(&[(0, "A0+a0", 0), (1, "A1+a1", 0)])?;

    // testUpperWindowBound
    for (k, v, t) in [
        (0, "b0", 1000),
        (1, "b1", 1001),
        (2, "b2", 1002),
        (3, "b3", 1003),
    ] {
        h.t2(k, v, t)?;
    }
    h.check(&[])?;
    h.four(1, "B", 1100)?;
    h.check(&[
        (0, "B0+b0", 1100),
        (1, "B1+b1", 1100),
        (2, "B2+b2", 1100),
        (3, "B3+b3", 1100),
    ])?;
    h.four(1, "C", 1101)?;
    h.check(&[(1, "C1+b1", 1101), (2, "C2+b2", 1101), (3, "C3+b3", 1101)])?;
    h.four(1, "D", 1102)?;
    h.check(&[(2, "D2+b2", 1102), (3, "D3+b3", 1102)])?;
    h.four(1, "E", 1103)?;
    h.check(&[(3, "E3+b3", 1103)])?;
    h.four(1, "F", 1104)?;
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
    h.four(1, "G", 899)?;
    h.check(&[
        (0, "G0+null", 899),
        (1, "G1+null", 899),
        (2, "G2+null", 899),
        (3, "G3+null", 899),
    ])?;
    h.four(1, "H", 900)?;
    h.check(&[
        (0, "H0+b0", 1000),
        (1, "H1+null", 900),
        (2, "H2+null", 900),
        (3, "H3+null", 900),
    ])?;
    h.four(1, "I", 901)?;
    h.check(&[
        (0, "I0+b0", 1000),
        (1, "I1+b1", 1001),
        (2, "I2+null", 901),
        (3, "I3+null", 901),
    ])?;
    h.four(1, "J", 902)?;
    h.check(&[
        (0, "J0+b0", 1000),
        (1, "J1+b1", 1001),
        (2, "J2+b2", 1002),
        (3, "J3+null", 902),
    ])?;
    h.four(1, "K", 903)?;
    h.check(&[
        (0, "K0+b0", 1000),
        (1, "K1+b1", 1001),
        (2, "K2+b2", 1002),
        (3, "K3+b3", 1003),
    ])?;
    h.t1(0, "dummy", 1203)?;
    h.check(&[(0, "dummy+null", 1203)])
}

#[test]
fn should_not_emit_left_join_result_for_asymmetric_window() -> Result<()> {
    let h = Harness::new(left_join(
        JoinWindows::of_time_difference_with_no_grace(ms(100))?.before(0)?,
        default_joined(),
    )?)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 1)?;
    h.check(&[])?;
    h.t2(0, "a0", 100)?;
    h.check(&[(0, "A0+a0", 100)])?;
    h.t2(1, "a1", 102)?;
    h.check(&[(1, "A1+null", 1)])
}

#[test]
fn a_null_key_left_record_is_emitted_at_once() -> Result<()> {
    // Not a Kafka test: the null-key rule of left joins (`KStreamKStreamJoin.process`).
    let builder = StreamsBuilder::new();
    let s1 = builder.stream::<Option<i32>, String>("topic1");
    let s2 = builder.stream::<Option<i32>, String>("topic2");
    s1.left_join(
        &s2,
        |l, r| format!("{l}+{}", r.map_or("null", String::as_str)),
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
    )
    .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver
        .input::<Option<i32>, String>("topic1")
        .pipe(None, "A".into(), 5)?;
    driver
        .input::<Option<i32>, String>("topic2")
        .pipe(None, "a".into(), 6)?;
    let out = driver.output::<Option<i32>, String>("out").read_records()?;
    let out: Vec<_> = out
        .iter()
        .map(|r| (r.key, r.value.as_str(), r.timestamp))
        .collect();
    assert_eq!(out, vec![(None, "A+null", 5)]);
    // The right record with a null key was dropped.
    assert_eq!(driver.metrics(0).map(|m| m.dropped_records), Some(1));
    Ok(())
}

#[test]
fn describe_matches_kafkas_left_join_topology() -> Result<()> {
    // Not a test of this Kafka class: `TopologyTest.streamStreamLeftJoinTopologyWithDefaultStoresNames`
    // and `…WithCustomStoresNames`, the names and stores of a left join.
    let topology = |joined: StreamJoined<i32, String, String>| {
        let builder = StreamsBuilder::new();
        let s1 = builder.stream::<i32, String>("input-topic1");
        let s2 = builder.stream::<i32, String>("input-topic2");
        s1.left_join_with(
            &s2,
            |l, _| l.clone(),
            JoinWindows::of_time_difference_with_no_grace(ms(100))?,
            joined,
        );
        builder.build()
    };
    let expected = "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [KSTREAM-JOINTHIS-0000000004-store])
      --> KSTREAM-JOINTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [KSTREAM-OUTEROTHER-0000000005-store])
      --> KSTREAM-OUTEROTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-JOINTHIS-0000000004 (stores: [KSTREAM-OUTEROTHER-0000000005-store, KSTREAM-OUTERSHARED-0000000004-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-OUTEROTHER-0000000005 (stores: [KSTREAM-JOINTHIS-0000000004-store, KSTREAM-OUTERSHARED-0000000004-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005

";
    assert_eq!(topology(default_joined())?.describe().to_string(), expected);
    let custom = expected
        .replace(
            "[KSTREAM-OUTEROTHER-0000000005-store, KSTREAM-OUTERSHARED-0000000004-store]",
            "[custom-name-outer-other-join-store, custom-name-left-shared-join-store]",
        )
        .replace(
            "[KSTREAM-JOINTHIS-0000000004-store, KSTREAM-OUTERSHARED-0000000004-store]",
            "[custom-name-this-join-store, custom-name-left-shared-join-store]",
        )
        .replace(
            "[KSTREAM-JOINTHIS-0000000004-store]",
            "[custom-name-this-join-store]",
        )
        .replace(
            "[KSTREAM-OUTEROTHER-0000000005-store]",
            "[custom-name-outer-other-join-store]",
        );
    let named = topology(default_joined().with_store_name("custom-name"))?;
    assert_eq!(named.describe().to_string(), custom);
    Ok(())
}
