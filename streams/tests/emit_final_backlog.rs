//! Emit-final over a backlog: a [`Task`] with the runtime's emit interval (1000 ms) and a
//! wall clock that does not move processes an hour of event time (one click a minute)
//! within one throttle interval. The windowed aggregations' stores keep only size + grace
//! (sessions: gap + grace) of stream time, so the windows that close during the backlog
//! must be emitted before later puts expire them: every closed window (tumbling, hopping,
//! sliding, session) comes out exactly once, in the order the `TopologyTestDriver` (emit
//! interval 0, Kafka's behaviour) gives for the same input.

use std::sync::Arc;
use std::time::Duration;

use freshet_state_store::{
    ChangelogError, ChangelogPartition, ChangelogRecord, ChangelogSink, MemoryBackend, ThreadCache,
};
use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    EmitStrategy, InputRecord, KTable, Materialized, Result, SessionWindows, SlidingWindows,
    StreamsBuilder, Task, TaskConfig, TaskEnv, TimeWindows, Topology, Windowed,
};

const MINUTE: i64 = 60_000;
/// Clicks at minutes 0..=59.
const CLICKS: i64 = 60;
const TOPICS: [&str; 4] = ["tumbling", "hopping", "sliding", "session"];

/// `(topic, "key@[start,end]", count, timestamp)` of an emitted final result.
type Out = (String, String, String, i64);

fn minutes(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// Writes a windowed count to `topic` as strings.
fn write(table: KTable<'_, Windowed<String>, i64>, topic: &str) {
    table
        .to_stream()
        .map(|k, v| {
            let key = format!("{}@[{},{}]", k.key, k.window.start, k.window.end);
            (key, format!("{v:?}"))
        })
        .to(topic);
}

/// The windows of [`topology`]: grace, and the session store's retention.
#[derive(Clone, Copy)]
struct Setup {
    grace: Duration,
    session_retention: Option<Duration>,
}

/// Four emit-final counts of the same clicks: tumbling 1 min, hopping 5 min by 1 min,
/// sliding 30 s, sessions with a 30 s gap, all with `setup.grace`.
fn topology(setup: Setup) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let clicks = builder.stream::<String, String>("clicks").group_by_key();
    let (close, grace) = (EmitStrategy::OnWindowClose, setup.grace);
    let tumbling = clicks
        .windowed_by(TimeWindows::of_size_and_grace(minutes(1), grace)?)
        .emit_strategy(close)
        .count();
    write(tumbling, "tumbling");
    let hopping = clicks
        .windowed_by(TimeWindows::of_size_and_grace(minutes(5), grace)?.advance_by(minutes(1))?)
        .emit_strategy(close)
        .count();
    write(hopping, "hopping");
    let sliding = clicks
        .windowed_by(SlidingWindows::of_time_difference_and_grace(
            Duration::from_secs(30),
            grace,
        )?)
        .emit_strategy(close)
        .count();
    write(sliding, "sliding");
    let sessions = clicks
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_secs(30),
            grace,
        )?)
        .emit_strategy(close);
    let session = match setup.session_retention {
        None => sessions.count(),
        Some(r) => sessions.count_with(Materialized::named("sessions").with_retention(r)),
    };
    write(session, "session");
    builder.build()
}

/// Drops changelog records (the commit protocol sends every store's buffered writes).
struct NoChangelog(i64);

impl ChangelogSink for NoChangelog {
    fn append(
        &mut self,
        _changelog: &ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> std::result::Result<i64, ChangelogError> {
        self.0 += records.len() as i64;
        Ok(self.0 - 1)
    }
}

fn text(bytes: Option<bytes::Bytes>) -> String {
    String::from_utf8_lossy(bytes.as_deref().unwrap_or_default()).into_owned()
}

/// What the task wrote since the last call.
fn outputs(task: &mut Task) -> Vec<Out> {
    task.take_outputs()
        .into_iter()
        .map(|r| (r.topic, text(r.key), text(r.value), r.timestamp))
        .collect()
}

/// `(key, timestamp)` clicks through a task with the runtime's emit interval and a wall
/// clock that moves by `ticks[i]` ms before click `i` (not at all past the end), then one
/// commit.
fn through_task(setup: Setup, clicks: &[(&str, i64)], ticks: &[i64]) -> Result<Vec<Out>> {
    let topology = topology(setup)?;
    let mut config = TaskConfig::new("backlog");
    config.windowed_emit_interval_ms = 1000;
    let mut now = 1_700_000_000_000;
    let env = TaskEnv {
        backend: Arc::new(MemoryBackend::new()),
        cache: ThreadCache::new(10 * 1024 * 1024),
        config,
        partitions_of: Arc::new(|_| Some(1)),
        wall_clock: now,
        global_stores: Default::default(),
    };
    let mut task = Task::new(&topology, "0_0", &[0], 0, env)?;
    let mut out = Vec::new();
    for (i, (key, ts)) in clicks.iter().enumerate() {
        if let Some(tick) = ticks.get(i).filter(|t| **t > 0) {
            now += tick;
            task.punctuate_wall_clock(now)?;
        }
        let record = InputRecord {
            key: Some(bytes::Bytes::copy_from_slice(key.as_bytes())),
            value: Some(bytes::Bytes::from_static(b"click")),
            timestamp: *ts,
            headers: Vec::new(),
            offset: i as i64,
        };
        task.add_records("clicks", [record])?;
        while task.process_one()? {}
        out.extend(outputs(&mut task));
    }
    // The commit flushes (sessions emit what the throttle held back): nothing twice.
    task.flush()?;
    let mut sink = NoChangelog(0);
    task.stores(|s| s.send_changelog(&mut sink).map(|_| ()))?;
    task.stores(|s| {
        s.committed();
        Ok(())
    })?;
    task.stores(|s| s.apply())?;
    out.extend(outputs(&mut task));
    Ok(out)
}

/// The clicks through the test driver (emit interval 0: Kafka's emission after every
/// record), outputs in the order they were written.
fn through_driver(setup: Setup, clicks: &[(&str, i64)]) -> Result<Vec<Out>> {
    let driver = TopologyTestDriver::new(topology(setup)?)?;
    let input = driver.input::<String, String>("clicks");
    let mut out = Vec::new();
    for (key, ts) in clicks {
        input.pipe(key.to_string(), "click".to_string(), *ts)?;
        for topic in TOPICS {
            for r in driver.output::<String, String>(topic).read_records()? {
                out.push((topic.to_string(), r.key, r.value, r.timestamp));
            }
        }
    }
    Ok(out)
}

/// The topics on which the task's outputs differ from the driver's.
fn differing(task: &[Out], driver: &[Out]) -> Vec<String> {
    TOPICS
        .iter()
        .filter(|t| of(task, t) != of(driver, t))
        .map(|t| format!("{t}: {} of {}", of(task, t).len(), of(driver, t).len()))
        .collect()
}

/// Each (topic, window) at most once.
fn assert_once(out: &[Out]) {
    let mut keys: Vec<_> = out.iter().map(|o| (&o.0, &o.1)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), out.len(), "a window was emitted twice");
}

fn of(out: &[Out], topic: &str) -> Vec<Out> {
    out.iter().filter(|o| o.0 == topic).cloned().collect()
}

fn expected_tumbling() -> Vec<Out> {
    (0..CLICKS - 1)
        .map(|i| {
            let (start, end) = (i * MINUTE, (i + 1) * MINUTE);
            let key = format!("user@[{start},{end}]");
            ("tumbling".to_string(), key, "Some(1)".to_string(), start)
        })
        .collect()
}

fn expected_session() -> Vec<Out> {
    (0..CLICKS - 1)
        .map(|i| {
            let t = i * MINUTE;
            let key = format!("user@[{t},{t}]");
            ("session".to_string(), key, "Some(1)".to_string(), t)
        })
        .collect()
}

#[test]
fn every_closed_window_is_emitted_once_in_kafka_order() -> Result<()> {
    let setup = Setup {
        grace: Duration::ZERO,
        session_retention: None,
    };
    let clicks: Vec<(&str, i64)> = (0..CLICKS).map(|i| ("user", i * MINUTE)).collect();
    let driver = through_driver(setup, &clicks)?;
    let task = through_task(setup, &clicks, &[])?;
    // What Kafka's emission after every record gives.
    assert_eq!(of(&driver, "tumbling"), expected_tumbling());
    assert_eq!(of(&driver, "session"), expected_session());
    // Hopping: windows starting at minutes 0..=54 have closed at minute 59.
    assert_eq!(of(&driver, "hopping").len(), 55);
    // Sliding: each click's left window, all but the last closed.
    assert_eq!(of(&driver, "sliding").len(), 59);
    // Across topics the throttle batches emissions: only each operator's order is kept.
    let differing = differing(&task, &driver);
    assert!(differing.is_empty(), "lost or reordered: {differing:?}");
    assert_once(&task);
    Ok(())
}

/// Three keys, steps of up to 20 s, some records late within the grace, and a wall clock
/// that sometimes passes the interval: the same final results, in the same order per
/// operator, as without the throttle. (The steps are small enough, and the session store's
/// retention long enough, that the unthrottled emission itself loses no window.)
#[test]
fn throttled_emission_equals_unthrottled_with_grace_and_late_records() -> Result<()> {
    let setup = Setup {
        grace: Duration::from_secs(10),
        session_retention: Some(minutes(10)),
    };
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % n
    };
    let mut clicks = Vec::new();
    let mut ticks = Vec::new();
    let mut time = 0i64;
    for _ in 0..600 {
        let key = ["a", "b", "c"][next(3) as usize];
        let ts = if next(5) == 0 {
            (time - next(9_000) as i64).max(0)
        } else {
            time += next(20_000) as i64;
            time
        };
        clicks.push((key, ts));
        ticks.push(if next(40) == 0 { 1_500 } else { 0 });
    }
    // Past the interval, a record that closes nothing new lets the task emit what the
    // throttle held back at the end (the driver has emitted it already).
    clicks.push(("a", time));
    ticks.push(1_500);
    let driver = through_driver(setup, &clicks)?;
    let task = through_task(setup, &clicks, &ticks)?;
    for topic in TOPICS {
        assert!(of(&driver, topic).len() > 50, "{topic}");
    }
    let differing = differing(&task, &driver);
    assert!(differing.is_empty(), "lost or reordered: {differing:?}");
    assert_once(&task);
    Ok(())
}
