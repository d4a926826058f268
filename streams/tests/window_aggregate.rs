//! Port of Kafka's `KStreamWindowAggregateTest`
//! (`streams/src/test/java/org/apache/kafka/streams/kstream/internals/`), with the same
//! inputs and asserted outputs, run through the `TopologyTestDriver` (or, where Kafka drives
//! the processor by hand with a mocked context and system time, through a [`Task`] with the
//! emit interval and wall clock of the Kafka test). Every test runs Kafka's four parameter
//! combinations: emit on update / on close × caching on / off.
//!
//! Ported:
//! - `testAggBasic`.
//! - `shouldLogAndMeterWhenSkippingNullKey`: the log line is not captured; the drop is
//!   checked on the task's `dropped_records` metric instead, and nothing is emitted.
//! - `shouldLogAndMeterWhenSkippingExpiredWindow` and
//!   `shouldLogAndMeterWhenSkippingExpiredWindowByGrace`: the outputs and
//!   `dropped-records-total` (here `dropped_records`, also `late_records`). Not checked:
//!   `dropped-records-rate`, `record-lateness-*` and `window-aggregate-final-emit-*`
//!   (freshet has no such sensors) and the log lines.
//! - `shouldNotEmitFinalIfNotProgressEnough`, `shouldEmitWithInterval0`,
//!   `shouldEmitWithLargeInterval`, `shouldEmitFromLastEmitTime`: Kafka builds the processor
//!   by hand on a mocked context; here the same processor comes from the DSL (store with
//!   logging and caching disabled, retention 1 day) and runs in a [`Task`] whose config sets
//!   the emit interval and whose wall clock stands in for the mocked system time. The
//!   second processor of `shouldEmitFromLastEmitTime` is a new task on the same store
//!   backend, restored with the first task's committed stream times and processor metadata.
//!
//! - `testJoin`, as `test_join_emit_final` and `test_join_emit_update`. One deviation: with
//!   emit-final, Kafka caches the time-window store when caching is on, and its cache still
//!   shows windows the store has expired, so with caching the join of step 3 finds
//!   `[0, 10)` windows of `topic1` and emits three results. freshet never caches an
//!   emit-final store (as Kafka does for sliding windows) and its caches hide expired
//!   windows, so both settings give Kafka's caching-disabled results: no join in step 3.
//!
//! Not ported:
//! - `showThrowIfEmitFinalUsedWithUnlimitedWindow`: freshet has no `UnlimitedWindows`.
//!
//! Added: the late-records topic, the retention check, Kafka's names and the
//! compatibility burn of `count_with`, and a restart that must not reopen closed windows.

use std::sync::Arc;
use std::time::Duration;

use freshet_state_store::{
    ChangelogError, ChangelogPartition, ChangelogRecord, ChangelogSink, MemoryBackend, ThreadCache,
};
use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    EmitStrategy, InputRecord, Materialized, Nullable, Record, Result, SinkRecord, StreamsBuilder,
    Task, TaskConfig, TaskEnv, TimeWindowedSerde, TimeWindows, Topology, Utf8, Windowed,
    LATE_REASON_HEADER,
};

const COMBOS: [(EmitStrategy, bool); 4] = [
    (EmitStrategy::OnWindowUpdate, true),
    (EmitStrategy::OnWindowUpdate, false),
    (EmitStrategy::OnWindowClose, true),
    (EmitStrategy::OnWindowClose, false),
];

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// `(key, window start, window end, value, timestamp)`.
type Out = (String, i64, i64, String, i64);

fn out(key: &str, start: i64, end: i64, value: &str, ts: i64) -> Out {
    (key.to_string(), start, end, value.to_string(), ts)
}

fn cached<K: 'static>(m: Materialized<K, String>, cache: bool) -> Materialized<K, String> {
    if cache {
        m.with_caching_enabled()
    } else {
        m.with_caching_disabled()
    }
}

/// Reads a windowed String → Option<String> topic.
fn read(driver: &TopologyTestDriver, topic: &str, size: i64) -> Result<Vec<Out>> {
    let keys = Arc::new(TimeWindowedSerde::new(Arc::new(Utf8), size));
    let values = Arc::new(Nullable(Utf8));
    let records: Vec<Record<Windowed<String>, Option<String>>> =
        driver.output_with(topic, keys, values).read_records()?;
    Ok(records
        .into_iter()
        .map(|r| {
            let w = r.key;
            (
                w.key,
                w.window.start,
                w.window.end,
                r.value.unwrap_or_default(),
                r.timestamp,
            )
        })
        .collect())
}

fn pipe_all(driver: &TopologyTestDriver, topic: &str, records: &[(&str, &str, i64)]) -> Result<()> {
    let input = driver.input::<String, String>(topic);
    for &(k, v, ts) in records {
        input.pipe(k.into(), v.into(), ts)?;
    }
    Ok(())
}

#[test]
fn test_agg_basic() -> Result<()> {
    for (emit, cache) in COMBOS {
        let builder = StreamsBuilder::new();
        builder
            .stream::<String, String>("topic1")
            .group_by_key()
            .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(100))?.advance_by(ms(5))?)
            .emit_strategy(emit)
            .aggregate_with(
                || "0".to_string(),
                |_, v, agg| format!("{agg}+{v}"),
                cached(
                    Materialized::named("topic1-Canonized").with_value_serde(Utf8),
                    cache,
                ),
            )
            .to_stream()
            .to("out");
        let driver = TopologyTestDriver::new(builder.build()?)?;
        #[rustfmt::skip]
        pipe_all(&driver, "topic1", &[
            ("A", "1", 0), ("B", "2", 1), ("C", "3", 2), ("D", "4", 3), ("A", "1", 4),
            ("A", "1", 5), ("B", "2", 6), ("D", "4", 7), ("B", "2", 8), ("C", "3", 9),
            ("A", "1", 10), ("B", "2", 11), ("D", "4", 12), ("B", "2", 13), ("C", "3", 14),
            ("B", "1", 3), ("B", "2", 2), ("B", "3", 9),
        ])?;
        let got = read(&driver, "out", 10)?;
        if emit == EmitStrategy::OnWindowClose {
            assert!(
                got.is_empty(),
                "{emit:?}/{cache}: no window closes with grace 100"
            );
            continue;
        }
        let expected = vec![
            out("A", 0, 10, "0+1", 0),
            out("B", 0, 10, "0+2", 1),
            out("C", 0, 10, "0+3", 2),
            out("D", 0, 10, "0+4", 3),
            out("A", 0, 10, "0+1+1", 4),
            out("A", 0, 10, "0+1+1+1", 5),
            out("A", 5, 15, "0+1", 5),
            out("B", 0, 10, "0+2+2", 6),
            out("B", 5, 15, "0+2", 6),
            out("D", 0, 10, "0+4+4", 7),
            out("D", 5, 15, "0+4", 7),
            out("B", 0, 10, "0+2+2+2", 8),
            out("B", 5, 15, "0+2+2", 8),
            out("C", 0, 10, "0+3+3", 9),
            out("C", 5, 15, "0+3", 9),
            out("A", 5, 15, "0+1+1", 10),
            out("A", 10, 20, "0+1", 10),
            out("B", 5, 15, "0+2+2+2", 11),
            out("B", 10, 20, "0+2", 11),
            out("D", 5, 15, "0+4+4", 12),
            out("D", 10, 20, "0+4", 12),
            out("B", 5, 15, "0+2+2+2+2", 13),
            out("B", 10, 20, "0+2+2", 13),
            out("C", 5, 15, "0+3+3", 14),
            out("C", 10, 20, "0+3", 14),
            out("B", 0, 10, "0+2+2+2+1", 8),
            out("B", 0, 10, "0+2+2+2+1+2", 8),
            out("B", 0, 10, "0+2+2+2+1+2+3", 9),
            out("B", 5, 15, "0+2+2+2+2+3", 13),
        ];
        assert_eq!(got, expected, "{emit:?}/{cache}");
    }
    Ok(())
}

/// Kafka's `testJoin` topology: two windowed aggregations and their join, each written
/// to a topic standing for Kafka's captured processors 0, 1 and 2.
fn join_topology(emit: EmitStrategy, cache: bool) -> Result<Topology> {
    let grace = if emit == EmitStrategy::OnWindowClose {
        5
    } else {
        100
    };
    let windows = TimeWindows::of_size_and_grace(ms(10), ms(grace))?.advance_by(ms(5))?;
    let builder = StreamsBuilder::new();
    let table = |topic: &str, store: &str| {
        builder
            .stream::<String, String>(topic)
            .group_by_key()
            .windowed_by(windows)
            .emit_strategy(emit)
            .aggregate_with(
                || "0".to_string(),
                |_, v, agg| format!("{agg}+{v}"),
                cached(Materialized::named(store).with_value_serde(Utf8), cache),
            )
    };
    let table1 = table("topic1", "topic1-Canonized");
    table1.to_stream().to("p0");
    let table2 = table("topic2", "topic2-Canonized");
    table2.to_stream().to("p1");
    table1
        .join(&table2, |p1, p2| format!("{p1}%{p2}"))
        .to_stream()
        .to("p2");
    builder.build()
}

#[test]
fn test_join_emit_final() -> Result<()> {
    // Kafka's expectations with caching disabled, for both settings: freshet never caches
    // an emit-final store (see the module docs).
    for cache in [true, false] {
        let driver = TopologyTestDriver::new(join_topology(EmitStrategy::OnWindowClose, cache)?)?;
        let p = |i: usize| read(&driver, &format!("p{i}"), 10);
        #[rustfmt::skip]
        pipe_all(&driver, "topic1", &[
            ("A", "1", 0), ("B", "2", 1), ("C", "3", 2), ("D", "4", 3), ("A", "1", 9),
            ("A", "1", 15),
        ])?;
        assert_eq!(
            p(0)?,
            vec![
                out("A", 0, 10, "0+1+1", 9),
                out("B", 0, 10, "0+2", 1),
                out("C", 0, 10, "0+3", 2),
                out("D", 0, 10, "0+4", 3),
            ],
            "{cache}"
        );
        assert!(p(1)?.is_empty() && p(2)?.is_empty());

        #[rustfmt::skip]
        pipe_all(&driver, "topic1", &[
            ("A", "1", 10), ("B", "2", 11), ("D", "4", 12), ("B", "2", 13), ("C", "3", 14),
            ("A", "1", 20),
        ])?;
        assert_eq!(
            p(0)?,
            vec![
                out("A", 5, 15, "0+1+1", 10),
                out("B", 5, 15, "0+2+2", 13),
                out("C", 5, 15, "0+3", 14),
                out("D", 5, 15, "0+4", 12),
            ],
            "{cache}"
        );
        assert!(p(1)?.is_empty() && p(2)?.is_empty());

        #[rustfmt::skip]
        pipe_all(&driver, "topic2", &[
            ("A", "a", 0), ("B", "b", 1), ("C", "c", 2), ("D", "d", 10), ("A", "a", 15),
        ])?;
        assert!(p(0)?.is_empty());
        assert!(p(2)?.is_empty(), "{cache}");

        #[rustfmt::skip]
        pipe_all(&driver, "topic2", &[
            ("A", "a", 5), ("B", "b", 6), ("D", "d", 7), ("D", "d", 18), ("A", "a", 21),
        ])?;
        assert!(p(0)?.is_empty());
        assert_eq!(
            p(1)?,
            vec![
                out("A", 0, 10, "0+a", 0),
                out("B", 0, 10, "0+b", 1),
                out("C", 0, 10, "0+c", 2),
                out("A", 5, 15, "0+a", 5),
                out("B", 5, 15, "0+b", 6),
                out("D", 5, 15, "0+d+d", 10),
            ],
            "{cache}"
        );
        assert_eq!(
            p(2)?,
            vec![
                out("A", 5, 15, "0+1+1%0+a", 10),
                out("B", 5, 15, "0+2+2%0+b", 13),
                out("D", 5, 15, "0+4%0+d+d", 12),
            ],
            "{cache}"
        );
    }
    Ok(())
}

#[test]
fn test_join_emit_update() -> Result<()> {
    for cache in [true, false] {
        let driver = TopologyTestDriver::new(join_topology(EmitStrategy::OnWindowUpdate, cache)?)?;
        let p = |i: usize| read(&driver, &format!("p{i}"), 10);
        #[rustfmt::skip]
        pipe_all(&driver, "topic1", &[
            ("A", "1", 0), ("B", "2", 1), ("C", "3", 2), ("D", "4", 3), ("A", "1", 9),
        ])?;
        assert_eq!(
            p(0)?,
            vec![
                out("A", 0, 10, "0+1", 0),
                out("B", 0, 10, "0+2", 1),
                out("C", 0, 10, "0+3", 2),
                out("D", 0, 10, "0+4", 3),
                out("A", 0, 10, "0+1+1", 9),
                out("A", 5, 15, "0+1", 9),
            ],
            "{cache}"
        );
        assert!(p(1)?.is_empty() && p(2)?.is_empty());

        #[rustfmt::skip]
        pipe_all(&driver, "topic1", &[
            ("A", "1", 5), ("B", "2", 6), ("D", "4", 7), ("B", "2", 8), ("C", "3", 9),
        ])?;
        assert_eq!(
            p(0)?,
            vec![
                out("A", 0, 10, "0+1+1+1", 9),
                out("A", 5, 15, "0+1+1", 9),
                out("B", 0, 10, "0+2+2", 6),
                out("B", 5, 15, "0+2", 6),
                out("D", 0, 10, "0+4+4", 7),
                out("D", 5, 15, "0+4", 7),
                out("B", 0, 10, "0+2+2+2", 8),
                out("B", 5, 15, "0+2+2", 8),
                out("C", 0, 10, "0+3+3", 9),
                out("C", 5, 15, "0+3", 9),
            ],
            "{cache}"
        );
        assert!(p(1)?.is_empty() && p(2)?.is_empty());

        #[rustfmt::skip]
        pipe_all(&driver, "topic2", &[
            ("A", "a", 0), ("B", "b", 1), ("C", "c", 2), ("D", "d", 20), ("A", "a", 20),
        ])?;
        assert!(p(0)?.is_empty());
        assert_eq!(
            p(1)?,
            vec![
                out("A", 0, 10, "0+a", 0),
                out("B", 0, 10, "0+b", 1),
                out("C", 0, 10, "0+c", 2),
                out("D", 15, 25, "0+d", 20),
                out("D", 20, 30, "0+d", 20),
                out("A", 15, 25, "0+a", 20),
                out("A", 20, 30, "0+a", 20),
            ],
            "{cache}"
        );
        assert_eq!(
            p(2)?,
            vec![
                out("A", 0, 10, "0+1+1+1%0+a", 9),
                out("B", 0, 10, "0+2+2+2%0+b", 8),
                out("C", 0, 10, "0+3+3%0+c", 9),
            ],
            "{cache}"
        );

        #[rustfmt::skip]
        pipe_all(&driver, "topic2", &[
            ("A", "a", 5), ("B", "b", 6), ("D", "d", 7), ("D", "d", 18), ("A", "a", 21),
        ])?;
        assert!(p(0)?.is_empty());
        assert_eq!(
            p(1)?,
            vec![
                out("A", 0, 10, "0+a+a", 5),
                out("A", 5, 15, "0+a", 5),
                out("B", 0, 10, "0+b+b", 6),
                out("B", 5, 15, "0+b", 6),
                out("D", 0, 10, "0+d", 7),
                out("D", 5, 15, "0+d", 7),
                out("D", 10, 20, "0+d", 18),
                out("D", 15, 25, "0+d+d", 20),
                out("A", 15, 25, "0+a+a", 21),
                out("A", 20, 30, "0+a+a", 21),
            ],
            "{cache}"
        );
        assert_eq!(
            p(2)?,
            vec![
                out("A", 0, 10, "0+1+1+1%0+a+a", 9),
                out("A", 5, 15, "0+1+1%0+a", 9),
                out("B", 0, 10, "0+2+2+2%0+b+b", 8),
                out("B", 5, 15, "0+2+2%0+b", 8),
                out("D", 0, 10, "0+4+4%0+d", 7),
                out("D", 5, 15, "0+4%0+d", 7),
            ],
            "{cache}"
        );
    }
    Ok(())
}

#[test]
fn should_log_and_meter_when_skipping_null_key() -> Result<()> {
    for (emit, cache) in COMBOS {
        let builder = StreamsBuilder::new();
        builder
            .stream::<Option<String>, String>("topic")
            .group_by_key()
            .windowed_by(TimeWindows::of_size_with_no_grace(ms(10))?.advance_by(ms(5))?)
            .emit_strategy(emit)
            .aggregate_with(
                || "0".to_string(),
                |_, v, agg| format!("{agg}+{v}"),
                cached(
                    Materialized::named("topic1-Canonicalized").with_value_serde(Utf8),
                    cache,
                ),
            )
            .to_stream()
            .to("out");
        let driver = TopologyTestDriver::new(builder.build()?)?;
        driver
            .input::<Option<String>, String>("topic")
            .pipe(None, "1".into(), 0)?;
        let metrics = driver.metrics(0).expect("task 0");
        assert_eq!(metrics.dropped_records, 1, "{emit:?}");
        assert_eq!(metrics.late_records, 0, "{emit:?}");
        assert!(driver.output::<String, String>("out").is_empty());
    }
    Ok(())
}

/// The topology of the two `shouldLogAndMeterWhenSkippingExpiredWindow*` tests.
fn expired_window_topology(
    windows: TimeWindows,
    emit: EmitStrategy,
    cache: bool,
    retention: Option<Duration>,
) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let mut materialized = Materialized::named("topic1-Canonicalized")
        .with_value_serde(Utf8)
        .with_logging_disabled();
    if let Some(r) = retention {
        materialized = materialized.with_retention(r);
    }
    builder
        .stream::<String, String>("topic")
        .group_by_key()
        .windowed_by(windows)
        .emit_strategy(emit)
        .aggregate_with(
            String::new,
            |_, v, agg| format!("{agg}+{v}"),
            cached(materialized, cache),
        )
        .to_stream()
        .map(|w, v| {
            let key = format!("[{}@{}/{}]", w.key, w.window.start, w.window.end);
            (key, v.clone().unwrap_or_default())
        })
        .to("output");
    builder.build()
}

#[test]
fn should_log_and_meter_when_skipping_expired_window() -> Result<()> {
    for (emit, cache) in COMBOS {
        let windows = TimeWindows::of_size_and_grace(ms(10), ms(90))?.advance_by(ms(5))?;
        let topology = expired_window_topology(windows, emit, cache, Some(ms(100)))?;
        let driver = TopologyTestDriver::new(topology)?;
        #[rustfmt::skip]
        pipe_all(&driver, "topic", &[
            ("k", "100", 100), ("k", "0", 0), ("k", "1", 1), ("k", "2", 2), ("k", "3", 3),
            ("k", "4", 4), ("k", "5", 5), ("k", "6", 6), ("k", "105", 105), ("k", "106", 106),
        ])?;
        let metrics = driver.metrics(0).expect("task 0");
        assert_eq!(metrics.dropped_records, 7, "{emit:?}/{cache}");
        assert_eq!(metrics.late_records, 7, "{emit:?}/{cache}");
        let got = driver.output::<String, String>("output").read_records()?;
        let got: Vec<(String, String, i64)> = got
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect();
        let expected: Vec<(&str, &str, i64)> = if emit == EmitStrategy::OnWindowClose {
            // Window close time is 15 when the timestamp is 105.
            vec![("[k@5/15]", "+5+6", 6)]
        } else {
            vec![
                ("[k@95/105]", "+100", 100),
                ("[k@100/110]", "+100", 100),
                ("[k@5/15]", "+5", 5),
                ("[k@5/15]", "+5+6", 6),
                ("[k@100/110]", "+100+105", 105),
                ("[k@105/115]", "+105", 105),
                ("[k@100/110]", "+100+105+106", 106),
                ("[k@105/115]", "+105+106", 106),
            ]
        };
        let expected: Vec<(String, String, i64)> = expected
            .into_iter()
            .map(|(k, v, t)| (k.to_string(), v.to_string(), t))
            .collect();
        assert_eq!(got, expected, "{emit:?}/{cache}");
    }
    Ok(())
}

#[test]
fn should_log_and_meter_when_skipping_expired_window_by_grace() -> Result<()> {
    for (emit, cache) in COMBOS {
        let windows = TimeWindows::of_size_and_grace(ms(10), ms(90))?.advance_by(ms(10))?;
        let topology = expired_window_topology(windows, emit, cache, None)?;
        let driver = TopologyTestDriver::new(topology)?;
        #[rustfmt::skip]
        pipe_all(&driver, "topic", &[
            ("k", "100", 200), ("k", "0", 100), ("k", "1", 101), ("k", "2", 102),
            ("k", "3", 103), ("k", "4", 104), ("k", "5", 105), ("k", "6", 6),
        ])?;
        let metrics = driver.metrics(0).expect("task 0");
        assert_eq!(metrics.dropped_records, 7, "{emit:?}/{cache}");
        let output = driver.output::<String, String>("output");
        if emit == EmitStrategy::OnWindowUpdate {
            let got = output.read_records()?;
            let got: Vec<(String, String, i64)> = got
                .into_iter()
                .map(|r| (r.key, r.value, r.timestamp))
                .collect();
            assert_eq!(
                got,
                vec![("[k@200/210]".to_string(), "+100".to_string(), 200)]
            );
            assert!(output.is_empty());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Kafka's direct-processor tests, through a task.

/// A task running the processor of Kafka's direct tests: `TimeWindows.ofSizeAndGrace(10,
/// 5).advanceBy(5)`, init "0", `agg + "+" + v`, store "dummy-store-name" with logging and
/// caching disabled and a retention of one day.
struct DirectTask {
    topology: Topology,
    task: Task,
    backend: Arc<MemoryBackend>,
    offset: i64,
}

fn direct_topology(emit: EmitStrategy) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("topic")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5))?.advance_by(ms(5))?)
        .emit_strategy(emit)
        .aggregate_with(
            || "0".to_string(),
            |_, v, agg| format!("{agg}+{v}"),
            Materialized::named("dummy-store-name")
                .with_value_serde(Utf8)
                .with_logging_disabled()
                .with_caching_disabled()
                .with_retention(Duration::from_secs(24 * 3600)),
        )
        .to_stream()
        .to("forwarded");
    builder.build()
}

fn env(backend: Arc<MemoryBackend>, interval: i64, wall_clock: i64) -> TaskEnv {
    let mut config = TaskConfig::new("direct-test");
    config.windowed_emit_interval_ms = interval;
    TaskEnv {
        backend,
        cache: ThreadCache::new(10 * 1024 * 1024),
        config,
        partitions_of: Arc::new(|_| Some(1)),
        wall_clock,
        global_stores: Default::default(),
    }
}

/// Counts changelog records (the stores of these tests have no changelog, but the commit
/// protocol sends every store's buffered writes).
struct CountingChangelog(i64);

impl ChangelogSink for CountingChangelog {
    fn append(
        &mut self,
        _changelog: &ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> std::result::Result<i64, ChangelogError> {
        self.0 += records.len() as i64;
        Ok(self.0 - 1)
    }
}

impl DirectTask {
    fn new(emit: EmitStrategy, interval: i64) -> Result<DirectTask> {
        let topology = direct_topology(emit)?;
        let backend = Arc::new(MemoryBackend::new());
        let task = Task::new(&topology, "0_0", &[0], 0, env(backend.clone(), interval, 0))?;
        Ok(DirectTask {
            topology,
            task,
            backend,
            offset: 0,
        })
    }

    /// A second processor on the same store, restored with what the first committed.
    fn restarted(mut self, interval: i64) -> Result<DirectTask> {
        self.commit()?;
        let times = self.task.stream_times();
        let env = env(self.backend.clone(), interval, 0);
        let mut task = Task::new(&self.topology, "0_0", &[0], 0, env)?;
        task.restore_stream_times(&times)?;
        Ok(DirectTask { task, ..self })
    }

    fn set_system_time(&mut self, now: i64) -> Result<()> {
        self.task.punctuate_wall_clock(now)?;
        Ok(())
    }

    fn process(&mut self, key: &str, value: &str, ts: i64) -> Result<()> {
        let record = InputRecord {
            key: Some(key.as_bytes().to_vec().into()),
            value: Some(value.as_bytes().to_vec().into()),
            timestamp: ts,
            headers: Vec::new(),
            offset: self.offset,
        };
        self.offset += 1;
        self.task.add_records("topic", [record])?;
        while self.task.process_one()? {}
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.task.flush()?;
        let mut sink = CountingChangelog(0);
        self.task
            .stores(|s| s.send_changelog(&mut sink).map(|_| ()))?;
        self.task.stores(|s| {
            s.committed();
            Ok(())
        })?;
        self.task.stores(|s| s.apply())
    }

    /// What the processor forwarded since the last call.
    fn forwarded(&mut self) -> Result<Vec<Out>> {
        let keys = TimeWindowedSerde::new(Arc::new(Utf8), 10);
        let raw: Vec<SinkRecord> = self.task.take_outputs();
        raw.into_iter()
            .map(|r| {
                let w = freshet_streams::Serde::deserialize(&keys, r.key.as_deref().unwrap_or(&[]))
                    .map_err(freshet_streams::Error::InvalidArgument)?;
                let v = String::from_utf8(r.value.map(|b| b.to_vec()).unwrap_or_default())
                    .map_err(|e| freshet_streams::Error::InvalidArgument(e.to_string()))?;
                Ok((w.key, w.window.start, w.window.end, v, r.timestamp))
            })
            .collect()
    }
}

#[test]
fn should_not_emit_final_if_not_progress_enough() -> Result<()> {
    for (emit, _cache) in COMBOS {
        let mut t = DirectTask::new(emit, 0)?;
        t.set_system_time(0)?;
        t.process("A", "1", 0)?;
        t.process("B", "2", 5)?;
        t.process("C", "3", 15)?;
        let expected = if emit == EmitStrategy::OnWindowClose {
            vec![out("A", 0, 10, "0+1", 0), out("B", 0, 10, "0+2", 5)]
        } else {
            vec![
                out("A", 0, 10, "0+1", 0),
                out("B", 0, 10, "0+2", 5),
                out("B", 5, 15, "0+2", 5),
                out("C", 10, 20, "0+3", 15),
                out("C", 15, 25, "0+3", 15),
            ]
        };
        assert_eq!(t.forwarded()?, expected, "{emit:?}");
        // Stream time does not progress.
        t.process("D", "4", 15)?;
        let expected = if emit == EmitStrategy::OnWindowClose {
            vec![]
        } else {
            vec![out("D", 10, 20, "0+4", 15), out("D", 15, 25, "0+4", 15)]
        };
        assert_eq!(t.forwarded()?, expected, "{emit:?}");
        // Stream time does not progress enough to close new windows.
        t.process("E", "5", 19)?;
        let expected = if emit == EmitStrategy::OnWindowClose {
            vec![]
        } else {
            vec![out("E", 10, 20, "0+5", 19), out("E", 15, 25, "0+5", 19)]
        };
        assert_eq!(t.forwarded()?, expected, "{emit:?}");
    }
    Ok(())
}

#[test]
fn should_emit_with_interval_0() -> Result<()> {
    for (emit, _cache) in COMBOS {
        let mut t = DirectTask::new(emit, 0)?;
        t.set_system_time(0)?;
        t.process("A", "1", 0)?;
        t.process("A", "1", 5)?;
        t.process("B", "2", 10)?;
        t.process("C", "3", 15)?;
        t.process("D", "4", 20)?;
        let expected = if emit == EmitStrategy::OnWindowClose {
            vec![
                out("A", 0, 10, "0+1+1", 5),
                out("A", 5, 15, "0+1", 5),
                out("B", 5, 15, "0+2", 10),
            ]
        } else {
            vec![
                out("A", 0, 10, "0+1", 0),
                out("A", 0, 10, "0+1+1", 5),
                out("A", 5, 15, "0+1", 5),
                out("B", 5, 15, "0+2", 10),
                out("B", 10, 20, "0+2", 10),
                out("C", 10, 20, "0+3", 15),
                out("C", 15, 25, "0+3", 15),
                out("D", 15, 25, "0+4", 20),
                out("D", 20, 30, "0+4", 20),
            ]
        };
        assert_eq!(t.forwarded()?, expected, "{emit:?}");
    }
    Ok(())
}

#[test]
fn should_emit_with_large_interval() -> Result<()> {
    for (emit, _cache) in COMBOS {
        let mut t = DirectTask::new(emit, 1000)?;
        t.set_system_time(0)?;
        t.process("A", "1", 0)?;
        t.process("A", "1", 5)?;
        t.process("B", "2", 10)?;
        t.process("C", "3", 15)?;
        let expected = if emit == EmitStrategy::OnWindowClose {
            vec![]
        } else {
            vec![
                out("A", 0, 10, "0+1", 0),
                out("A", 0, 10, "0+1+1", 5),
                out("A", 5, 15, "0+1", 5),
                out("B", 5, 15, "0+2", 10),
                out("B", 10, 20, "0+2", 10),
                out("C", 10, 20, "0+3", 15),
                out("C", 15, 25, "0+3", 15),
            ]
        };
        assert_eq!(t.forwarded()?, expected, "{emit:?}");
        t.set_system_time(10_000)?;
        t.process("D", "4", 20)?;
        let expected = if emit == EmitStrategy::OnWindowClose {
            vec![
                out("A", 0, 10, "0+1+1", 5),
                out("A", 5, 15, "0+1", 5),
                out("B", 5, 15, "0+2", 10),
            ]
        } else {
            vec![out("D", 15, 25, "0+4", 20), out("D", 20, 30, "0+4", 20)]
        };
        assert_eq!(t.forwarded()?, expected, "{emit:?}");
        // Throttled: 10 100 < 10 000 + 1 000.
        t.set_system_time(10_100)?;
        t.process("E", "5", 40)?;
        let expected = if emit == EmitStrategy::OnWindowClose {
            vec![]
        } else {
            vec![out("E", 35, 45, "0+5", 40), out("E", 40, 50, "0+5", 40)]
        };
        assert_eq!(t.forwarded()?, expected, "{emit:?}");
    }
    Ok(())
}

#[test]
fn should_emit_from_last_emit_time() -> Result<()> {
    for (emit, _cache) in COMBOS {
        let mut t = DirectTask::new(emit, 0)?;
        t.set_system_time(0)?;
        t.process("A", "1", 0)?;
        t.process("B", "2", 5)?;
        t.process("C", "3", 15)?;
        let expected = if emit == EmitStrategy::OnWindowClose {
            vec![out("A", 0, 10, "0+1", 0), out("B", 0, 10, "0+2", 5)]
        } else {
            vec![
                out("A", 0, 10, "0+1", 0),
                out("B", 0, 10, "0+2", 5),
                out("B", 5, 15, "0+2", 5),
                out("C", 10, 20, "0+3", 15),
                out("C", 15, 25, "0+3", 15),
            ]
        };
        assert_eq!(t.forwarded()?, expected, "{emit:?}");
        let mut t = t.restarted(0)?;
        t.process("D", "4", 25)?;
        let expected = if emit == EmitStrategy::OnWindowClose {
            // Windows emitted before the restart are not emitted again.
            vec![out("B", 5, 15, "0+2", 5), out("C", 10, 20, "0+3", 15)]
        } else {
            vec![out("D", 20, 30, "0+4", 25), out("D", 25, 35, "0+4", 25)]
        };
        assert_eq!(t.forwarded()?, expected, "{emit:?}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Added.

#[test]
fn late_records_go_to_the_late_topic_once_with_every_closed_window() -> Result<()> {
    for (emit, cache) in COMBOS {
        let builder = StreamsBuilder::new();
        builder
            .stream::<String, String>("in")
            .group_by_key()
            .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5))?.advance_by(ms(5))?)
            .emit_strategy(emit)
            .late_records_to("late")
            .aggregate_with(
                String::new,
                |_, v, agg| format!("{agg}{v}"),
                cached(Materialized::named("s"), cache),
            );
        let driver = TopologyTestDriver::new(builder.build()?)?;
        let input = driver.input::<String, String>("in");
        input.pipe("k".into(), "a".into(), 30)?;
        // 12 is in [5, 15) and [10, 20): both closed at 30 - 5.
        input.pipe_record(
            Record::new("k".to_string(), "b".to_string(), 12).with_header("trace", "t1"),
            None,
        )?;
        // 22 is in [15, 25) (closed) and [20, 30) (open).
        input.pipe("k".into(), "c".into(), 22)?;
        // On time.
        input.pipe("k".into(), "d".into(), 29)?;
        let late = driver.output::<String, String>("late").read_records()?;
        assert_eq!(late.len(), 2, "{emit:?}/{cache}");
        assert_eq!(
            (
                late[0].key.as_str(),
                late[0].value.as_str(),
                late[0].timestamp
            ),
            ("k", "b", 12)
        );
        assert_eq!(
            late[0].header("trace").map(|b| b.as_ref()),
            Some(b"t1".as_ref())
        );
        assert_eq!(
            late[0].header(LATE_REASON_HEADER).map(|b| b.as_ref()),
            Some(
                b"window closed: window end 15 <= stream time 30 - grace 5; window closed: window end 20 <= stream time 30 - grace 5"
                    .as_ref()
            )
        );
        assert_eq!((late[1].value.as_str(), late[1].timestamp), ("c", 22));
        assert_eq!(
            late[1].header(LATE_REASON_HEADER).map(|b| b.as_ref()),
            Some(b"window closed: window end 25 <= stream time 30 - grace 5".as_ref())
        );
        let metrics = driver.metrics(0).expect("task 0");
        assert_eq!((metrics.dropped_records, metrics.late_records), (3, 3));
        let store = driver.window_store::<String, String>("s")?;
        assert_eq!(
            store.fetch(&"k".to_string(), 0, 100)?,
            vec![
                (20, "cd".to_string(), 29),
                (25, "ad".to_string(), 30),
                (30, "a".to_string(), 30)
            ]
        );
        assert!(driver.produced_topic_names().contains("late"));
    }
    Ok(())
}

#[test]
fn the_late_topic_is_created_like_a_sink_topic() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10))?)
        .late_records_to("late")
        .count();
    let topology = builder.build()?;
    let sub = &topology.subtopologies()[0];
    assert!(
        sub.sink_topics.iter().any(|t| t.shown() == "late"),
        "{sub:?}"
    );
    Ok(())
}

#[test]
fn retention_shorter_than_size_plus_grace_is_a_build_error() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5))?)
        .count_with(Materialized::named("c").with_retention(ms(14)));
    let err = builder.build().expect_err("retention 14 < 10 + 5");
    assert!(
        err.to_string().contains(
            "The retention period of the window store c must be no smaller than its window size plus the grace period. Got size=[10], grace=[5], retention=[14]"
        ),
        "{err}"
    );
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5))?)
        .count_with(Materialized::named("c").with_retention(ms(15)));
    assert!(builder.build().is_ok());
    Ok(())
}

#[test]
fn names_follow_kafka() -> Result<()> {
    let windows = TimeWindows::of_size_with_no_grace(ms(10))?;
    let builder = StreamsBuilder::new();
    let grouped = builder.stream::<String, String>("in").group_by_key();
    let count = grouped.windowed_by(windows).count();
    let count_with = grouped
        .windowed_by(windows)
        .count_with(Materialized::default());
    let reduce = grouped.windowed_by(windows).reduce(|a, b| a + &b);
    let aggregate = grouped
        .windowed_by(windows)
        .aggregate(String::new, |_, v, a| a + v);
    // source 0; count: store 1, processor 2; count_with: burn 3, store 4, processor 5;
    // reduce: store 6, processor 7; aggregate: store 8, processor 9.
    assert_eq!(
        count.queryable_store_name(),
        Some("KSTREAM-AGGREGATE-STATE-STORE-0000000001")
    );
    assert_eq!(
        count_with.queryable_store_name(),
        Some("KSTREAM-AGGREGATE-STATE-STORE-0000000004")
    );
    assert_eq!(
        reduce.queryable_store_name(),
        Some("KSTREAM-REDUCE-STATE-STORE-0000000006")
    );
    assert_eq!(
        aggregate.queryable_store_name(),
        Some("KSTREAM-AGGREGATE-STATE-STORE-0000000008")
    );
    let described = builder.build()?.describe().to_string();
    for name in [
        "KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])",
        "KSTREAM-AGGREGATE-0000000005 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000004])",
        "KSTREAM-REDUCE-0000000007 (stores: [KSTREAM-REDUCE-STATE-STORE-0000000006])",
        "KSTREAM-AGGREGATE-0000000009 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000008])",
    ] {
        assert!(described.contains(name), "{name} in\n{described}");
    }

    // Re-keyed: the repartition topic is named after the store.
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .select_key(|_, v| v.clone())
        .group_by_key()
        .windowed_by(windows)
        .count_with(Materialized::named("counts"));
    let described = builder.build()?.describe().to_string();
    assert!(described.contains("counts-repartition"), "{described}");
    Ok(())
}

#[test]
fn emit_final_restart_does_not_reopen_closed_windows() -> Result<()> {
    // The observed stream time is committed too: after a restart a record for a window
    // that had closed is still dropped.
    let t = DirectTask::new(EmitStrategy::OnWindowClose, 0)?;
    let mut t = t;
    t.process("A", "1", 30)?;
    let _ = t.forwarded()?;
    let mut t = t.restarted(0)?;
    t.process("A", "2", 3)?;
    assert_eq!(t.task.metrics().dropped_records, 1, "[0, 10) is closed");
    t.process("A", "3", 40)?;
    assert_eq!(t.forwarded()?, vec![out("A", 25, 35, "0+1", 30)]);
    Ok(())
}

/// A value serde that refuses to serialize strings longer than 5 bytes.
#[derive(Debug, Clone, Copy)]
struct Short;

impl freshet_state_store::Serde<String> for Short {
    fn serialize(&self, value: &String) -> std::result::Result<Vec<u8>, String> {
        if value.len() > 5 {
            return Err(format!("{value:?} is longer than 5 bytes"));
        }
        Ok(value.as_bytes().to_vec())
    }

    fn deserialize(&self, bytes: &[u8]) -> std::result::Result<String, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
    }
}

/// Pipes three values of key `A` into `topic1` of `builder`'s topology: the aggregates
/// "0+1" and "0+1+2" fit [`Short`], "0+1+2+3" does not. The third record's error.
fn third_aggregate_fails(builder: StreamsBuilder) -> Result<Option<String>> {
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, String>("topic1");
    input.pipe("A".into(), "1".into(), 0)?;
    input.pipe("A".into(), "2".into(), 1)?;
    Ok(input
        .pipe("A".into(), "3".into(), 2)
        .err()
        .map(|e| e.to_string()))
}

/// An aggregate the store cannot take fails the record with an error naming the store,
/// whether the update goes through the cache or straight to the store; the windows before
/// it keep their aggregates.
#[test]
fn an_aggregate_that_does_not_serialize_fails_the_record_naming_the_store() -> Result<()> {
    for (emit, cache) in COMBOS {
        let builder = StreamsBuilder::new();
        builder
            .stream::<String, String>("topic1")
            .group_by_key()
            .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(100))?)
            .emit_strategy(emit)
            .aggregate_with(
                || "0".to_string(),
                |_, v, agg| format!("{agg}+{v}"),
                cached(
                    Materialized::named("short-agg").with_value_serde(Short),
                    cache,
                ),
            )
            .to_stream()
            .to("out");
        let err = third_aggregate_fails(builder)?;
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("short-agg") && e.contains("longer")),
            "{emit:?}/{cache}: {err:?}"
        );
    }
    Ok(())
}

/// The same for the key-value aggregation.
#[test]
fn a_key_value_aggregate_that_does_not_serialize_fails_the_record_naming_the_store() -> Result<()> {
    for cache in [true, false] {
        let builder = StreamsBuilder::new();
        builder
            .stream::<String, String>("topic1")
            .group_by_key()
            .aggregate_with(
                || "0".to_string(),
                |_, v, agg| format!("{agg}+{v}"),
                cached(
                    Materialized::named("short-kv").with_value_serde(Short),
                    cache,
                ),
            )
            .to_stream()
            .to("out");
        let err = third_aggregate_fails(builder)?;
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("short-kv") && e.contains("longer")),
            "cache {cache}: {err:?}"
        );
    }
    Ok(())
}

/// Reads the count of the record's 10 ms window from the store `counts` and forwards it.
struct WindowReader;

impl freshet_streams::Processor<String, String, String, i64> for WindowReader {
    fn process(
        &mut self,
        ctx: &mut freshet_streams::ProcessorContext<'_, '_, String, i64>,
        r: Record<String, String>,
    ) -> Result<()> {
        let store = ctx.window_store::<String, i64>("counts")?;
        let start = r.timestamp - r.timestamp % 10;
        let n = store
            .fetch(&r.key, start, start)?
            .first()
            .map_or(0, |(_, n, _)| *n);
        ctx.forward(r.with_value(n))
    }
}

/// A processor connected to a windowed count's store sees each update of the record
/// before it, as Kafka's caching store shows them: with another reader the count's updates
/// go through the record cache one by one (its typed front cache stays off), and the
/// cache's flushes still forward them.
#[test]
fn a_processor_connected_to_the_store_reads_every_update() -> Result<()> {
    let builder = StreamsBuilder::new();
    let input = builder.stream::<String, String>("in");
    input
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10))?)
        .count_with(Materialized::named("counts").with_caching_enabled())
        .to_stream()
        .map(|k, v| (k.key.clone(), *v))
        .to("counts-out");
    input.process(|| WindowReader, &["counts"]).to("read");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let pipe = driver.input::<String, String>("in");
    for (k, ts) in [("a", 1), ("a", 2), ("b", 3), ("a", 12), ("a", 14)] {
        pipe.pipe(k.into(), "x".into(), ts)?;
    }
    let want: Vec<(String, i64)> = [("a", 1), ("a", 2), ("b", 1), ("a", 1), ("a", 2)]
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
    assert_eq!(
        driver.output::<String, i64>("read").read_key_values()?,
        want
    );
    assert_eq!(
        driver
            .output::<String, i64>("counts-out")
            .read_key_values()?,
        want
    );
    Ok(())
}

/// The same for a key-value count read by a stream-table join: each record is counted,
/// then joined with the count table, and the join reads the count including it, as it
/// reads Kafka's caching store. (With the typed front cache on, the join would read the
/// store as of the last commit: no count for a new key, an old one for the rest.)
#[test]
fn a_join_reading_a_cached_count_sees_every_update() -> Result<()> {
    let builder = StreamsBuilder::new();
    let input = builder.stream::<String, String>("in");
    let counts = input
        .group_by_key()
        .count_with(Materialized::named("kv-counts").with_caching_enabled());
    input
        .join_table(&counts, |v, n| format!("{v}:{n}"))
        .to("joined");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let pipe = driver.input::<String, String>("in");
    for (k, v, ts) in [("a", "x", 1), ("a", "y", 2), ("b", "z", 3), ("a", "w", 4)] {
        pipe.pipe(k.into(), v.into(), ts)?;
    }
    let want: Vec<(String, String)> = [("a", "x:1"), ("a", "y:2"), ("b", "z:1"), ("a", "w:3")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        driver
            .output::<String, String>("joined")
            .read_key_values()?,
        want
    );
    Ok(())
}

/// What one task forwarded under a thread cache of `cache_bytes`, for 600 records over
/// five keys between two commits: a hopping-window count's `(key, window start, count)`
/// and a key-value count's `(key, count)`, in the order sent.
#[allow(clippy::type_complexity)]
fn counts_under_cache(cache_bytes: usize) -> Result<(Vec<(String, i64, i64)>, Vec<(String, i64)>)> {
    let builder = StreamsBuilder::new();
    let input = builder.stream::<String, String>("in");
    let grouped = input.group_by_key();
    grouped
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(100))?.advance_by(ms(5))?)
        .count_with(Materialized::named("windowed").with_caching_enabled())
        .to_stream()
        .to("windowed-out");
    grouped
        .count_with(Materialized::named("totals").with_caching_enabled())
        .to_stream()
        .to("totals-out");
    let topology = builder.build()?;
    let mut t = DirectTask {
        task: Task::new(&topology, "0_0", &[0], 0, {
            let mut e = env(Arc::new(MemoryBackend::new()), 0, 0);
            e.cache = ThreadCache::new(cache_bytes);
            e
        })?,
        topology,
        backend: Arc::new(MemoryBackend::new()),
        offset: 0,
    };
    for i in 0..600i64 {
        let key = ["a", "b", "c", "d", "e"][(i * 7 % 5) as usize];
        let record = InputRecord {
            key: Some(key.as_bytes().to_vec().into()),
            value: Some(b"x".to_vec().into()),
            timestamp: i / 3,
            headers: Vec::new(),
            offset: t.offset,
        };
        t.offset += 1;
        t.task.add_records("in", [record])?;
        while t.task.process_one()? {}
        if i == 299 {
            t.commit()?;
        }
    }
    t.commit()?;
    let keys = TimeWindowedSerde::new(Arc::new(Utf8), 10);
    let count = |r: &SinkRecord| -> Result<i64> {
        let v: [u8; 8] = r
            .value
            .as_deref()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| freshet_streams::Error::InvalidArgument("not a count".into()))?;
        Ok(i64::from_be_bytes(v))
    };
    let (mut windowed, mut totals) = (Vec::new(), Vec::new());
    for r in t.task.take_outputs() {
        let k = r.key.as_deref().unwrap_or(&[]);
        if r.topic == "windowed-out" {
            let w = freshet_streams::Serde::deserialize(&keys, k)
                .map_err(freshet_streams::Error::InvalidArgument)?;
            windowed.push((w.key, w.window.start, count(&r)?));
        } else {
            totals.push((String::from_utf8_lossy(k).into_owned(), count(&r)?));
        }
    }
    Ok((windowed, totals))
}

/// A thread cache too small for the updates between two commits: the aggregations' typed
/// front caches hand everything to the record cache whenever they pass its budget, and
/// the record cache evicts. Every count still reaches downstream in order (never an older
/// count of a window or key after a newer one), and the last of each is the one a large
/// cache ends with.
#[test]
fn a_cache_too_small_for_a_commit_still_forwards_every_count_in_order() -> Result<()> {
    let (big_windowed, big_totals) = counts_under_cache(10 * 1024 * 1024)?;
    // With room for everything, each commit forwards what was updated since the one
    // before, once, in the order of the latest updates (a record updates its windows in
    // start order), as Kafka's record cache does.
    let (mut want_windowed, mut want_totals) = (Vec::new(), Vec::new());
    let mut counts: std::collections::BTreeMap<(String, i64), i64> = Default::default();
    let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
    let mut touched: std::collections::BTreeMap<(String, i64), usize> = Default::default();
    let mut touched_keys: std::collections::BTreeMap<String, usize> = Default::default();
    let mut n = 0;
    for i in 0..600i64 {
        let key = ["a", "b", "c", "d", "e"][(i * 7 % 5) as usize].to_string();
        let ts = i / 3;
        for start in (0..=ts).filter(|s| s % 5 == 0 && s + 10 > ts) {
            *counts.entry((key.clone(), start)).or_default() += 1;
            touched.insert((key.clone(), start), n);
            n += 1;
        }
        *totals.entry(key.clone()).or_default() += 1;
        touched_keys.insert(key, i as usize);
        if i == 299 || i == 599 {
            let mut w: Vec<_> = std::mem::take(&mut touched).into_iter().collect();
            w.sort_by_key(|(_, at)| *at);
            want_windowed.extend(
                w.into_iter()
                    .map(|((k, s), _)| (k.clone(), s, counts[&(k, s)])),
            );
            let mut t: Vec<_> = std::mem::take(&mut touched_keys).into_iter().collect();
            t.sort_by_key(|(_, at)| *at);
            want_totals.extend(t.into_iter().map(|(k, _)| (k.clone(), totals[&k])));
        }
    }
    assert_eq!(big_windowed, want_windowed);
    assert_eq!(big_totals, want_totals);
    for cache_bytes in [1, 200, 500, 2_000] {
        let (windowed, totals) = counts_under_cache(cache_bytes)?;
        // The windows of a commit need ≈ 8 KB; the five keys' totals ≈ 400 bytes.
        assert!(
            windowed.len() > big_windowed.len(),
            "{cache_bytes} bytes: evictions forward windows more often"
        );
        assert!(
            cache_bytes > 400 || totals.len() > big_totals.len(),
            "{cache_bytes} bytes: evictions forward totals more often"
        );
        let mut last = std::collections::BTreeMap::new();
        for (k, start, n) in windowed {
            let before = last.insert((k.clone(), start), n);
            assert!(
                before.is_none_or(|b| b < n),
                "{cache_bytes} bytes: {k}@{start} went {before:?} -> {n}"
            );
        }
        let want: std::collections::BTreeMap<_, _> = big_windowed
            .iter()
            .map(|(k, s, n)| ((k.clone(), *s), *n))
            .collect();
        assert_eq!(
            last, want,
            "{cache_bytes} bytes: the last count of each window"
        );
        let mut last = std::collections::BTreeMap::new();
        for (k, n) in totals {
            let before = last.insert(k.clone(), n);
            assert!(
                before.is_none_or(|b| b < n),
                "{cache_bytes} bytes: {k} went {before:?} -> {n}"
            );
        }
        let want: std::collections::BTreeMap<_, _> = big_totals.iter().cloned().collect();
        assert_eq!(
            last, want,
            "{cache_bytes} bytes: the last count of each key"
        );
        assert_eq!(last.values().sum::<i64>(), 600);
    }
    Ok(())
}
