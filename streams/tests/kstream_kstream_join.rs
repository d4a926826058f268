//! Port of Kafka's `KStreamKStreamJoinTest` (apache/kafka `1eb7644`, 23 tests): inner
//! stream–stream joins through the test driver, with Kafka's inputs and expected outputs.
//!
//! Kafka's tests capture the join's output with a mock processor; these write it to a topic
//! and read it back, comparing `(key, value, timestamp)` in order, with the exact count.
//! `TOSTRING_JOINER` is `format!("{l}+{r}")`.
//!
//! Ported:
//! - `testJoin`, `testOuterJoin`, `testWindowing`, `testAsymmetricWindowingAfter`,
//!   `testAsymmetricWindowingBefore` (with the co-partition group assertion of each).
//! - `shouldJoinWithCustomStoreSuppliers` (Kafka's in-memory suppliers are
//!   [`Stores::window`] builders with the same name, retention, size and duplicates).
//! - The supplier validations `shouldThrowExceptionThisStoreSupplierRetentionDoNotMatchWindowsSizeAndGrace`,
//!   `…ThisStoreSupplierWindowSizeDoesNotMatchJoinWindowsWindowSize`,
//!   `…WhenThisJoinStoreSetsRetainDuplicatesFalse`,
//!   `…OtherStoreSupplierRetentionDoNotMatchWindowsSizeAndGrace`,
//!   `…OtherStoreSupplierWindowSizeDoesNotMatchJoinWindowsWindowSize`,
//!   `…WhenOtherJoinStoreSetsRetainDuplicatesFalse`,
//!   `shouldExceptionWhenJoinStoresDoNotHaveUniqueNames` and
//!   `shouldBuildJoinWithCustomStoresAndCorrectWindowSettings`: Kafka throws at the
//!   `join()` call; freshet's DSL methods do not fail, so `build()` reports the same message
//!   (the first one, as Kafka would throw it).
//! - `shouldLogAndMeterOnSkippedRecordsWithNullValueWithBuiltInMetricsVersionLatest`: the
//!   dropped-records metric is asserted instead of the log line.
//! - `shouldDisableLoggingOnStreamJoined`.
//! - `shouldEnableLoggingWithCustomConfigOnStreamJoined`: only that both stores are logged;
//!   freshet has no per-store changelog topic configs (`withLoggingEnabled(Map)`).
//! - `shouldReuseRepartitionTopicWithGeneratedName`,
//!   `shouldCreateRepartitionTopicsWithUserProvidedName`: the exact `describe()` text.
//! - `shouldThrottleEmitNonJoinedOuterRecordsEvenWhenClockDrift`: Kafka drives a hand-built
//!   right-side processor with a mock context and counts the shared store's entries; here a
//!   task runs an outer join with Kafka's default 1 000 ms emit interval and the records the
//!   join emits are asserted (an entry leaves the store exactly when it is emitted).
//!
//! Not ported:
//! - `shouldJoinWithDslStoreSuppliersIfNoStoreSupplied`,
//!   `shouldJoinWithDslStoreSuppliersFromStreamsConfig`: freshet has no `DslStoreSuppliers`
//!   (stores are chosen by the backend, not per operator).
//! - `shouldJoinWithNonTimestampedStore`: checks Kafka's store wrapper classes; freshet's
//!   window stores have one layout.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use freshet_state_store::{MemoryBackend, ThreadCache};
use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    BigEndian, Error, InputRecord, JoinWindows, KStream, Nullable, Result, Stores, StreamJoined,
    StreamsBuilder, Task, TaskConfig, TaskEnv, TopicName, Topology, Utf8,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `stream1.join(stream2, TOSTRING_JOINER, windows, StreamJoined.with(Int, String, String))`
/// written to `out`.
fn int_string_join(windows: JoinWindows) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let s1 = builder.stream::<i32, String>("topic1");
    let s2 = builder.stream::<i32, String>("topic2");
    s1.join_with(
        &s2,
        |l, r| format!("{l}+{r}"),
        windows,
        StreamJoined::with(BigEndian, Utf8, Utf8),
    )
    .to("out");
    builder.build()
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

    /// Kafka's `checkAndClearProcessResult`: everything emitted since the last check, in
    /// order.
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
fn test_join() -> Result<()> {
    let topology = int_string_join(JoinWindows::of_time_difference_with_no_grace(ms(100))?)?;
    assert_copartitioned(&topology);
    let h = Harness::new(topology)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 0)?;
    h.check(&[])?;
    h.t2(0, "a0", 0)?;
    h.t2(1, "a1", 0)?;
    h.check(&[(0, "A0+a0", 0), (1, "A1+a1", 0)])?;
    for (k, v) in [(0, "B0"), (1, "B1"), (2, "B2"), (3, "B3")] {
        h.t1(k, v, 0)?;
    }
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
        (3, "B3+b3", 0),
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
    h.t2(0, "c0", 0)?;
    h.t2(1, "c1", 0)?;
    h.check(&[
        (0, "A0+c0", 0),
        (0, "B0+c0", 0),
        (0, "C0+c0", 0),
        (1, "A1+c1", 0),
        (1, "B1+c1", 0),
        (1, "C1+c1", 0),
    ])
}

#[test]
fn test_outer_join() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s1 = builder.stream::<i32, String>("topic1");
    let s2 = builder.stream::<i32, String>("topic2");
    let show = |v: Option<&String>| v.map_or_else(|| "null".to_string(), String::clone);
    s1.outer_join_with(
        &s2,
        move |l, r| format!("{}+{}", show(l), show(r)),
        JoinWindows::of_time_difference_and_grace(ms(100), Duration::from_secs(24 * 3600))?,
        StreamJoined::with(BigEndian, Utf8, Utf8),
    )
    .to("out");
    let topology = builder.build()?;
    assert_copartitioned(&topology);
    let h = Harness::new(topology)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 0)?;
    h.check(&[])?;
    h.t2(0, "a0", 0)?;
    h.t2(1, "a1", 0)?;
    h.check(&[(0, "A0+a0", 0), (1, "A1+a1", 0)])?;
    for (k, v) in [(0, "B0"), (1, "B1"), (2, "B2"), (3, "B3")] {
        h.t1(k, v, 0)?;
    }
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
        (3, "B3+b3", 0),
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
    h.t2(0, "c0", 0)?;
    h.t2(1, "c1", 0)?;
    h.check(&[
        (0, "A0+c0", 0),
        (0, "B0+c0", 0),
        (0, "C0+c0", 0),
        (1, "A1+c1", 0),
        (1, "B1+c1", 0),
        (1, "C1+c1", 0),
    ])
}

#[test]
fn test_windowing() -> Result<()> {
    let topology = int_string_join(JoinWindows::of_time_difference_with_no_grace(ms(100))?)?;
    assert_copartitioned(&topology);
    let h = Harness::new(topology)?;
    h.t1(0, "A0", 0)?;
    h.t1(1, "A1", 0)?;
    h.check(&[])?;
    h.t2(0, "a0", 0)?;
    h.t2(1, "a1", 0)?;
    h.check(&[(0, "A0+a0", 0), (1, "A1+a1", 0)])?;

    // Left records at 1000..1003; right records probe around them.
    for (k, v, t) in [
        (0, "B0", 1000),
        (1, "B1", 1001),
        (2, "B2", 1002),
        (3, "B3", 1003),
    ] {
        h.t1(k, v, t)?;
    }
    h.check(&[])?;
    h.four(2, "b", 1100)?;
    h.check(&[
        (0, "B0+b0", 1100),
        (1, "B1+b1", 1100),
        (2, "B2+b2", 1100),
        (3, "B3+b3", 1100),
    ])?;
    h.four(2, "c", 1101)?;
    h.check(&[(1, "B1+c1", 1101), (2, "B2+c2", 1101), (3, "B3+c3", 1101)])?;
    h.four(2, "d", 1102)?;
    h.check(&[(2, "B2+d2", 1102), (3, "B3+d3", 1102)])?;
    h.four(2, "e", 1103)?;
    h.check(&[(3, "B3+e3", 1103)])?;
    h.four(2, "f", 1104)?;
    h.check(&[])?;
    h.four(2, "g", 899)?;
    h.check(&[])?;
    h.four(2, "h", 900)?;
    h.check(&[(0, "B0+h0", 1000)])?;
    h.four(2, "i", 901)?;
    h.check(&[(0, "B0+i0", 1000), (1, "B1+i1", 1001)])?;
    h.four(2, "j", 902)?;
    h.check(&[(0, "B0+j0", 1000), (1, "B1+j1", 1001), (2, "B2+j2", 1002)])?;
    h.four(2, "k", 903)?;
    h.check(&[
        (0, "B0+k0", 1000),
        (1, "B1+k1", 1001),
        (2, "B2+k2", 1002),
        (3, "B3+k3", 1003),
    ])?;

    // Right records at 2000..2003; left records probe around them.
    for (k, v, t) in [
        (0, "l0", 2000),
        (1, "l1", 2001),
        (2, "l2", 2002),
        (3, "l3", 2003),
    ] {
        h.t2(k, v, t)?;
    }
    h.check(&[])?;
    h.four(1, "C", 2100)?;
    h.check(&[
        (0, "C0+l0", 2100),
        (1, "C1+l1", 2100),
        (2, "C2+l2", 2100),
        (3, "C3+l3", 2100),
    ])?;
    h.four(1, "D", 2101)?;
    h.check(&[(1, "D1+l1", 2101), (2, "D2+l2", 2101), (3, "D3+l3", 2101)])?;
    h.four(1, "E", 2102)?;
    h.check(&[(2, "E2+l2", 2102), (3, "E3+l3", 2102)])?;
    h.four(1, "F", 2103)?;
    h.check(&[(3, "F3+l3", 2103)])?;
    h.four(1, "G", 2104)?;
    h.check(&[])?;
    h.four(1, "H", 1899)?;
    h.check(&[])?;
    h.four(1, "I", 1900)?;
    h.check(&[(0, "I0+l0", 2000)])?;
    h.four(1, "J", 1901)?;
    h.check(&[(0, "J0+l0", 2000), (1, "J1+l1", 2001)])?;
    h.four(1, "K", 1902)?;
    h.check(&[(0, "K0+l0", 2000), (1, "K1+l1", 2001), (2, "K2+l2", 2002)])?;
    h.four(1, "L", 1903)?;
    h.check(&[
        (0, "L0+l0", 2000),
        (1, "L1+l1", 2001),
        (2, "L2+l2", 2002),
        (3, "L3+l3", 2003),
    ])
}

#[test]
fn test_asymmetric_windowing_after() -> Result<()> {
    let windows = JoinWindows::of_time_difference_with_no_grace(ms(0))?.after(100)?;
    let topology = int_string_join(windows)?;
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
    h.check(&[])?;
    h.four(2, "a", 999)?;
    h.check(&[])?;
    h.four(2, "b", 1000)?;
    h.check(&[(0, "A0+b0", 1000)])?;
    h.four(2, "c", 1001)?;
    h.check(&[(0, "A0+c0", 1001), (1, "A1+c1", 1001)])?;
    h.four(2, "d", 1002)?;
    h.check(&[(0, "A0+d0", 1002), (1, "A1+d1", 1002), (2, "A2+d2", 1002)])?;
    h.four(2, "e", 1003)?;
    h.check(&[
        (0, "A0+e0", 1003),
        (1, "A1+e1", 1003),
        (2, "A2+e2", 1003),
        (3, "A3+e3", 1003),
    ])?;
    h.four(2, "f", 1100)?;
    h.check(&[
        (0, "A0+f0", 1100),
        (1, "A1+f1", 1100),
        (2, "A2+f2", 1100),
        (3, "A3+f3", 1100),
    ])?;
    h.four(2, "g", 1101)?;
    h.check(&[(1, "A1+g1", 1101), (2, "A2+g2", 1101), (3, "A3+g3", 1101)])?;
    h.four(2, "h", 1102)?;
    h.check(&[(2, "A2+h2", 1102), (3, "A3+h3", 1102)])?;
    h.four(2, "i", 1103)?;
    h.check(&[(3, "A3+i3", 1103)])?;
    h.four(2, "j", 1104)?;
    h.check(&[])
}

#[test]
fn test_asymmetric_windowing_before() -> Result<()> {
    let windows = JoinWindows::of_time_difference_with_no_grace(ms(0))?.before(100)?;
    let topology = int_string_join(windows)?;
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
    h.check(&[])?;
    h.four(2, "a", 899)?;
    h.check(&[])?;
    h.four(2, "b", 900)?;
    h.check(&[(0, "A0+b0", 1000)])?;
    h.four(2, "c", 901)?;
    h.check(&[(0, "A0+c0", 1000), (1, "A1+c1", 1001)])?;
    h.four(2, "d", 902)?;
    h.check(&[(0, "A0+d0", 1000), (1, "A1+d1", 1001), (2, "A2+d2", 1002)])?;
    h.four(2, "e", 903)?;
    h.check(&[
        (0, "A0+e0", 1000),
        (1, "A1+e1", 1001),
        (2, "A2+e2", 1002),
        (3, "A3+e3", 1003),
    ])?;
    h.four(2, "f", 1000)?;
    h.check(&[
        (0, "A0+f0", 1000),
        (1, "A1+f1", 1001),
        (2, "A2+f2", 1002),
        (3, "A3+f3", 1003),
    ])?;
    h.four(2, "g", 1001)?;
    h.check(&[(1, "A1+g1", 1001), (2, "A2+g2", 1002), (3, "A3+g3", 1003)])?;
    h.four(2, "h", 1002)?;
    h.check(&[(2, "A2+h2", 1002), (3, "A3+h3", 1003)])?;
    h.four(2, "i", 1003)?;
    h.check(&[(3, "A3+i3", 1003)])?;
    h.four(2, "j", 1004)?;
    h.check(&[])
}

// ---- Kafka's `runJoin` helper and the store-supplier tests --------------------------------

/// `left.join(right, Integer::sum, windows, joined)` over `left`/`right` (String, Integer).
fn run_join(joined: StreamJoined<String, i32, i32>, windows: JoinWindows) -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.stream::<String, i32>("left");
    let right = builder.stream::<String, i32>("right");
    left.join_with(&right, |a, b| a + b, windows, joined)
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let l = driver.input::<String, i32>("left");
    let r = driver.input::<String, i32>("right");
    l.pipe("A".into(), 1, 1)?;
    l.pipe("B".into(), 1, 2)?;
    r.pipe("A".into(), 1, 1)?;
    r.pipe("B".into(), 2, 2)?;
    let got: Vec<(String, i32, i64)> = driver
        .output::<String, i32>("out")
        .read_records()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(got, vec![("A".into(), 2, 1), ("B".into(), 3, 2)]);
    Ok(())
}

fn window_supplier(
    name: &str,
    retention: i64,
    size: i64,
    dups: bool,
) -> freshet_streams::StoreBuilder {
    Stores::window::<String, i32>(name, retention, size, dups, Utf8, BigEndian)
}

fn string_int_joined() -> StreamJoined<String, i32, i32> {
    StreamJoined::with(Utf8, BigEndian, BigEndian)
}

#[test]
fn should_join_with_custom_store_suppliers() -> Result<()> {
    let windows = JoinWindows::of_time_difference_with_no_grace(ms(100))?;
    let this = || window_supplier("in-memory-join-store", 200, 200, true);
    let other = || window_supplier("in-memory-join-store-other", 200, 200, true);
    run_join(
        string_int_joined()
            .with_this_store(this())
            .with_other_store(other()),
        windows,
    )?;
    run_join(string_int_joined().with_this_store(this()), windows)?;
    run_join(string_int_joined().with_other_store(other()), windows)
}

/// `left.join(right, ...)` must fail (at `build()` in freshet) with a message starting with
/// `prefix`.
fn build_join_that_should_fail(
    joined: StreamJoined<String, i32, i32>,
    windows: JoinWindows,
    prefix: &str,
) -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.stream::<String, i32>("left");
    let right = builder.stream::<String, i32>("right");
    left.join_with(&right, |a, b| a + b, windows, joined)
        .to("out");
    match builder.build() {
        Err(Error::Topology(message)) => {
            assert!(message.starts_with(prefix), "{message}");
            Ok(())
        }
        other => panic!("expected a topology error, got {other:?}"),
    }
}

const MISMATCH: &str = "Window settings mismatch. WindowBytesStoreSupplier settings";
const DUPLICATES: &str =
    "The StoreSupplier must set retainDuplicates=true, found retainDuplicates=false";

fn class_windows() -> Result<JoinWindows> {
    JoinWindows::of_time_difference_and_grace(ms(50), ms(50))
}

#[test]
fn should_throw_exception_this_store_supplier_retention_do_not_match_windows_size_and_grace(
) -> Result<()> {
    let joined = string_int_joined()
        .with_this_store(window_supplier("in-memory-join-store", 500, 100, true))
        .with_other_store(window_supplier(
            "in-memory-join-store-other",
            150,
            100,
            true,
        ));
    build_join_that_should_fail(joined, class_windows()?, MISMATCH)
}

#[test]
fn should_throw_exception_this_store_supplier_window_size_does_not_match_join_windows_window_size(
) -> Result<()> {
    let joined = string_int_joined()
        .with_this_store(window_supplier("in-memory-join-store", 150, 150, true))
        .with_other_store(window_supplier(
            "in-memory-join-store-other",
            150,
            100,
            true,
        ));
    build_join_that_should_fail(joined, class_windows()?, MISMATCH)
}

#[test]
fn should_throw_exception_when_this_join_store_sets_retain_duplicates_false() -> Result<()> {
    let joined = string_int_joined()
        .with_this_store(window_supplier("in-memory-join-store", 150, 100, false))
        .with_other_store(window_supplier(
            "in-memory-join-store-other",
            150,
            100,
            true,
        ));
    build_join_that_should_fail(joined, class_windows()?, DUPLICATES)
}

#[test]
fn should_throw_exception_other_store_supplier_retention_do_not_match_windows_size_and_grace(
) -> Result<()> {
    let joined = string_int_joined()
        .with_this_store(window_supplier("in-memory-join-store", 150, 100, true))
        .with_other_store(window_supplier(
            "in-memory-join-store-other",
            500,
            100,
            true,
        ));
    build_join_that_should_fail(joined, class_windows()?, MISMATCH)
}

#[test]
fn should_throw_exception_other_store_supplier_window_size_does_not_match_join_windows_window_size(
) -> Result<()> {
    let joined = string_int_joined()
        .with_this_store(window_supplier("in-memory-join-store", 150, 100, true))
        .with_other_store(window_supplier(
            "in-memory-join-store-other",
            150,
            150,
            true,
        ));
    build_join_that_should_fail(joined, class_windows()?, MISMATCH)
}

#[test]
fn should_throw_exception_when_other_join_store_sets_retain_duplicates_false() -> Result<()> {
    let joined = string_int_joined()
        .with_this_store(window_supplier("in-memory-join-store", 150, 100, true))
        .with_other_store(window_supplier(
            "in-memory-join-store-other",
            150,
            100,
            false,
        ));
    build_join_that_should_fail(joined, class_windows()?, DUPLICATES)
}

#[test]
fn should_build_join_with_custom_stores_and_correct_window_settings() -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.stream::<String, i32>("left");
    let right = builder.stream::<String, i32>("right");
    left.join_with(&right, |a, b| a + b, class_windows()?, string_int_joined())
        .to("out");
    builder.build()?;
    Ok(())
}

#[test]
fn should_exception_when_join_stores_do_not_have_unique_names() -> Result<()> {
    let windows = JoinWindows::of_time_difference_and_grace(ms(100), ms(50))?;
    let joined = string_int_joined()
        .with_this_store(window_supplier("in-memory-join-store", 150, 100, true))
        .with_other_store(window_supplier("in-memory-join-store", 150, 100, true));
    build_join_that_should_fail(
        joined,
        windows,
        "Both StoreSuppliers have the same name.  StoreSuppliers must provide unique names",
    )
}

// ---- null values, logging, describe ----------------------------------------------------------

#[test]
fn should_log_and_meter_on_skipped_records_with_null_value() -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.stream::<String, Option<i32>>("left");
    let right = builder.stream::<String, Option<i32>>("right");
    left.join_with(
        &right,
        |a: &Option<i32>, b: &Option<i32>| a.unwrap_or(0) + b.unwrap_or(0),
        JoinWindows::of_time_difference_with_no_grace(ms(100))?,
        StreamJoined::with(Utf8, Nullable(BigEndian), Nullable(BigEndian)),
    )
    .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver
        .input::<String, Option<i32>>("left")
        .pipe("A".into(), None, 0)?;
    assert_eq!(driver.metrics(0).map(|m| m.dropped_records), Some(1));
    assert!(driver.output::<String, i32>("out").is_empty());
    Ok(())
}

fn logging_join(joined: StreamJoined<String, i32, i32>) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let left = builder.stream::<String, i32>("left");
    let right = builder.stream::<String, i32>("right");
    left.join_with(
        &right,
        |a, b| a + b,
        JoinWindows::of_time_difference_and_grace(ms(100), ms(50))?,
        joined,
    )
    .to("out");
    builder.build()
}

#[test]
fn should_disable_logging_on_stream_joined() -> Result<()> {
    let topology = logging_join(
        string_int_joined()
            .with_store_name("store")
            .with_logging_disabled(),
    )?;
    let stores: Vec<(&str, bool)> = topology
        .stores()
        .map(|s| (s.name(), s.logging_enabled()))
        .collect();
    assert_eq!(
        stores,
        vec![
            ("store-other-join-store", false),
            ("store-this-join-store", false)
        ]
    );
    Ok(())
}

#[test]
fn should_enable_logging_on_stream_joined() -> Result<()> {
    let topology = logging_join(
        string_int_joined()
            .with_store_name("store")
            .with_logging_enabled(),
    )?;
    let stores: Vec<(&str, bool)> = topology
        .stores()
        .map(|s| (s.name(), s.logging_enabled()))
        .collect();
    assert_eq!(
        stores,
        vec![
            ("store-other-join-store", true),
            ("store-this-join-store", true)
        ]
    );
    assert_eq!(topology.subtopologies()[0].stores.len(), 2);
    Ok(())
}

/// Kafka's `stream1.map((k, v) -> (v, k))` joined twice.
fn rekeyed_twice(names: Option<(&str, &str)>, second_sink: &str) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let s1 = builder.stream::<String, String>("topic");
    let s2 = builder.stream::<String, String>("topic2");
    let s3 = builder.stream::<String, String>("topic3");
    let rekeyed: KStream<'_, String, String> = s1.map(|k, v| (v.clone(), k.clone()));
    let windows = JoinWindows::of_time_difference_with_no_grace(ms(100))?;
    let joined = |n: Option<&str>| {
        let j = StreamJoined::with(Utf8, Utf8, Utf8);
        match n {
            Some(n) => j.with_name(n),
            None => j,
        }
    };
    rekeyed
        .join_with(
            &s2,
            |a, b| format!("{a}{b}"),
            windows,
            joined(names.map(|n| n.0)),
        )
        .to("out-one");
    rekeyed
        .join_with(
            &s3,
            |a, b| format!("{a}{b}"),
            windows,
            joined(names.map(|n| n.1)),
        )
        .to(second_sink);
    builder.build()
}

#[test]
fn should_reuse_repartition_topic_with_generated_name() -> Result<()> {
    let topology = rekeyed_twice(None, "out-to")?;
    let expected = "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])
      --> KSTREAM-MAP-0000000003
    Processor: KSTREAM-MAP-0000000003 (stores: [])
      --> KSTREAM-FILTER-0000000005
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-FILTER-0000000005 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-MAP-0000000003
    Sink: KSTREAM-SINK-0000000004 (topic: KSTREAM-MAP-0000000003-repartition)
      <-- KSTREAM-FILTER-0000000005

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [KSTREAM-MAP-0000000003-repartition])
      --> KSTREAM-WINDOWED-0000000007, KSTREAM-WINDOWED-0000000016
    Source: KSTREAM-SOURCE-0000000001 (topics: [topic2])
      --> KSTREAM-WINDOWED-0000000008
    Source: KSTREAM-SOURCE-0000000002 (topics: [topic3])
      --> KSTREAM-WINDOWED-0000000017
    Processor: KSTREAM-WINDOWED-0000000007 (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> KSTREAM-JOINTHIS-0000000009
      <-- KSTREAM-SOURCE-0000000006
    Processor: KSTREAM-WINDOWED-0000000008 (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> KSTREAM-JOINOTHER-0000000010
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-WINDOWED-0000000016 (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> KSTREAM-JOINTHIS-0000000018
      <-- KSTREAM-SOURCE-0000000006
    Processor: KSTREAM-WINDOWED-0000000017 (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> KSTREAM-JOINOTHER-0000000019
      <-- KSTREAM-SOURCE-0000000002
    Processor: KSTREAM-JOINOTHER-0000000010 (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> KSTREAM-MERGE-0000000011
      <-- KSTREAM-WINDOWED-0000000008
    Processor: KSTREAM-JOINOTHER-0000000019 (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> KSTREAM-MERGE-0000000020
      <-- KSTREAM-WINDOWED-0000000017
    Processor: KSTREAM-JOINTHIS-0000000009 (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> KSTREAM-MERGE-0000000011
      <-- KSTREAM-WINDOWED-0000000007
    Processor: KSTREAM-JOINTHIS-0000000018 (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> KSTREAM-MERGE-0000000020
      <-- KSTREAM-WINDOWED-0000000016
    Processor: KSTREAM-MERGE-0000000011 (stores: [])
      --> KSTREAM-SINK-0000000012
      <-- KSTREAM-JOINTHIS-0000000009, KSTREAM-JOINOTHER-0000000010
    Processor: KSTREAM-MERGE-0000000020 (stores: [])
      --> KSTREAM-SINK-0000000021
      <-- KSTREAM-JOINTHIS-0000000018, KSTREAM-JOINOTHER-0000000019
    Sink: KSTREAM-SINK-0000000012 (topic: out-one)
      <-- KSTREAM-MERGE-0000000011
    Sink: KSTREAM-SINK-0000000021 (topic: out-to)
      <-- KSTREAM-MERGE-0000000020

";
    assert_eq!(topology.describe().to_string(), expected);
    Ok(())
}

#[test]
fn should_create_repartition_topics_with_user_provided_name() -> Result<()> {
    let topology = rekeyed_twice(Some(("first-join", "second-join")), "out-two")?;
    let expected = "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])
      --> KSTREAM-MAP-0000000003
    Processor: KSTREAM-MAP-0000000003 (stores: [])
      --> second-join-left-repartition-filter, first-join-left-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: first-join-left-repartition-filter (stores: [])
      --> first-join-left-repartition-sink
      <-- KSTREAM-MAP-0000000003
    Processor: second-join-left-repartition-filter (stores: [])
      --> second-join-left-repartition-sink
      <-- KSTREAM-MAP-0000000003
    Sink: first-join-left-repartition-sink (topic: first-join-left-repartition)
      <-- first-join-left-repartition-filter
    Sink: second-join-left-repartition-sink (topic: second-join-left-repartition)
      <-- second-join-left-repartition-filter

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000001 (topics: [topic2])
      --> first-join-other-windowed
    Source: first-join-left-repartition-source (topics: [first-join-left-repartition])
      --> first-join-this-windowed
    Processor: first-join-other-windowed (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> first-join-other-join
      <-- KSTREAM-SOURCE-0000000001
    Processor: first-join-this-windowed (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> first-join-this-join
      <-- first-join-left-repartition-source
    Processor: first-join-other-join (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> first-join-merge
      <-- first-join-other-windowed
    Processor: first-join-this-join (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> first-join-merge
      <-- first-join-this-windowed
    Processor: first-join-merge (stores: [])
      --> KSTREAM-SINK-0000000012
      <-- first-join-this-join, first-join-other-join
    Sink: KSTREAM-SINK-0000000012 (topic: out-one)
      <-- first-join-merge

  Sub-topology: 2
    Source: KSTREAM-SOURCE-0000000002 (topics: [topic3])
      --> second-join-other-windowed
    Source: second-join-left-repartition-source (topics: [second-join-left-repartition])
      --> second-join-this-windowed
    Processor: second-join-other-windowed (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> second-join-other-join
      <-- KSTREAM-SOURCE-0000000002
    Processor: second-join-this-windowed (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> second-join-this-join
      <-- second-join-left-repartition-source
    Processor: second-join-other-join (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> second-join-merge
      <-- second-join-other-windowed
    Processor: second-join-this-join (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> second-join-merge
      <-- second-join-this-windowed
    Processor: second-join-merge (stores: [])
      --> KSTREAM-SINK-0000000021
      <-- second-join-this-join, second-join-other-join
    Sink: KSTREAM-SINK-0000000021 (topic: out-two)
      <-- second-join-merge

";
    assert_eq!(topology.describe().to_string(), expected);
    Ok(())
}

// ---- the emit throttle ------------------------------------------------------------------------

#[test]
fn should_throttle_emit_non_joined_outer_records_even_when_clock_drift() -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.stream::<String, String>("left");
    let right = builder.stream::<String, String>("right");
    let show = |v: Option<&String>| v.map_or_else(|| "null".to_string(), String::clone);
    left.outer_join(
        &right,
        move |l, r| format!("{}{}", show(l), show(r)),
        JoinWindows::of_time_difference_with_no_grace(ms(1000))?,
    )
    .to("out");
    let topology = builder.build()?;
    let subs: Vec<u32> = topology.subtopologies().iter().map(|s| s.id).collect();
    // Kafka's default emit interval (1 000 ms of wall-clock time), unlike the test driver.
    let env = TaskEnv {
        backend: Arc::new(MemoryBackend::new()),
        cache: ThreadCache::new(1 << 20),
        config: TaskConfig::new("throttle"),
        partitions_of: Arc::new(|_| Some(1)),
        wall_clock: 0,
        global_stores: Default::default(),
    };
    assert_eq!(env.config.outer_join_emit_interval_ms, 1000);
    let mut task = Task::new(&topology, "0_0", &subs, 0, env)?;
    task.init()?;
    let mut offset = 0;
    let mut process = |task: &mut Task, system_time: i64, key: &str, value: &str, ts: i64| {
        task.punctuate_wall_clock(system_time)?;
        task.add_records(
            "right",
            [InputRecord {
                key: Some(Bytes::copy_from_slice(key.as_bytes())),
                value: Some(Bytes::copy_from_slice(value.as_bytes())),
                timestamp: ts,
                headers: Vec::new(),
                offset,
            }],
        )?;
        offset += 1;
        assert!(task.process_one()?);
        let emitted: Vec<(String, String, i64)> = task
            .take_outputs()
            .into_iter()
            .map(|r| {
                let text =
                    |b: Option<Bytes>| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned();
                (text(r.key), text(r.value), r.timestamp)
            })
            .collect();
        Ok::<_, Error>(emitted)
    };
    // key1 waits in the shared store.
    assert_eq!(process(&mut task, 1000, "key1", "value1", 10_000)?, vec![]);
    // key1's window has closed: emitted (the next emission is due at 2 100 + 1 000).
    assert_eq!(
        process(&mut task, 2100, "key2", "value2", 13_000)?,
        vec![("key1".into(), "nullvalue1".into(), 10_000)]
    );
    // key2's window has closed too, but the emission is throttled: key2 and key3 wait.
    assert_eq!(process(&mut task, 2500, "key3", "value3", 15_000)?, vec![]);
    // Both go out; key4 waits.
    assert_eq!(
        process(&mut task, 4000, "key4", "value4", 17_000)?,
        vec![
            ("key2".into(), "nullvalue2".into(), 13_000),
            ("key3".into(), "nullvalue3".into(), 15_000)
        ]
    );
    Ok(())
}
