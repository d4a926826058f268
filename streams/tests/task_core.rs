//! The task core driven directly (`Task::new` over a `MemoryBackend`), as the runtime drives
//! it: record choice across input partitions, stream time, punctuation, offsets to commit,
//! stream times to commit and restore.
//!
//! Ported from Kafka's `StreamTaskTest` (same records, offsets used as timestamps, same
//! expected order and punctuation times; Kafka's mocked source nodes are processors that log
//! what they get):
//! - `shouldProcessInOrder` → [`processes_the_lowest_timestamp_first`]
//! - `shouldPunctuateOnceStreamTimeAfterGap` → [`punctuates_once_stream_time_after_gap`]
//! - `shouldPunctuateSystemTimeWhenIntervalElapsed` →
//!   [`punctuates_system_time_when_interval_elapsed`]
//!
//! The other `StreamTaskTest` methods test Kafka's task life cycle (suspend, resume, commit
//! needed, EOS producer, mocked state managers), which lives in the runtime here, not in the
//! task core.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use freshet_state_store::{MemoryBackend, ThreadCache};
use freshet_streams::{
    BigEndian, Consumed, Error, InputRecord, Processor, ProcessorContext, PunctuationType, Record,
    Result, StreamTimes, StreamsBuilder, Task, TaskConfig, TaskEnv, TimeWindows, Topology, Utf8,
};

/// Locks a test's log (a panic elsewhere does not hide what was logged).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn env(wall_clock: i64) -> TaskEnv {
    TaskEnv {
        backend: Arc::new(MemoryBackend::new()),
        cache: ThreadCache::new(1 << 20),
        config: TaskConfig::new("app"),
        partitions_of: Arc::new(|_| Some(1)),
        wall_clock,
        global_stores: Default::default(),
    }
}

/// A raw record with `offset` as its timestamp (Kafka's
/// `getConsumerRecordWithOffsetAsTimestamp`), key 1 and `value`.
fn record(offset: i64, value: i32) -> InputRecord {
    InputRecord {
        key: Some(Bytes::copy_from_slice(&1i32.to_be_bytes())),
        value: Some(Bytes::copy_from_slice(&value.to_be_bytes())),
        timestamp: offset,
        headers: Vec::new(),
        offset,
    }
}

type Log<T> = Arc<Mutex<Vec<T>>>;

/// Logs the values it gets; punctuates every 10 ms of `kind` when given one.
struct Logging {
    values: Log<i32>,
    punctuations: Log<i64>,
    kind: Option<PunctuationType>,
}

impl Processor<i32, i32, i32, i32> for Logging {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, i32, i32>) -> Result<()> {
        if let Some(kind) = self.kind {
            let log = self.punctuations.clone();
            ctx.schedule(Duration::from_millis(10), kind, move |_, now| {
                lock(&log).push(now);
                Ok(())
            })?;
        }
        Ok(())
    }
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, i32, i32>,
        r: Record<i32, i32>,
    ) -> Result<()> {
        lock(&self.values).push(r.value);
        ctx.forward(r)
    }
}

struct Two {
    topology: Topology,
    source1: Log<i32>,
    source2: Log<i32>,
    punctuations: Log<i64>,
}

/// Two sources (`topic1`, `topic2`), each into a logging processor; the first punctuates.
fn two_sources(kind: Option<PunctuationType>) -> Result<Two> {
    let (source1, source2, punctuations) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    let builder = StreamsBuilder::new();
    let (s1, p) = (source1.clone(), punctuations.clone());
    builder
        .stream_with::<i32, i32>(&["topic1"], Consumed::with(BigEndian, BigEndian))
        .process(
            move || Logging {
                values: s1.clone(),
                punctuations: p.clone(),
                kind,
            },
            &[],
        );
    let s2 = source2.clone();
    builder
        .stream_with::<i32, i32>(&["topic2"], Consumed::with(BigEndian, BigEndian))
        .process(
            move || Logging {
                values: s2.clone(),
                punctuations: Arc::new(Mutex::new(Vec::new())),
                kind: None,
            },
            &[],
        );
    Ok(Two {
        topology: builder.build()?,
        source1,
        source2,
        punctuations,
    })
}

fn task(t: &Two, wall_clock: i64) -> Result<Task> {
    let subs: Vec<u32> = t.topology.subtopologies().iter().map(|s| s.id).collect();
    assert_eq!(subs, vec![0, 1]);
    Task::new(&t.topology, "0_0", &subs, 0, env(wall_clock))
}

fn values(log: &Log<i32>) -> Vec<i32> {
    lock(log).clone()
}

#[test]
fn processes_the_lowest_timestamp_first() -> Result<()> {
    let t = two_sources(None)?;
    let mut task = task(&t, 0)?;
    task.add_records(
        "topic1",
        [record(10, 101), record(20, 102), record(30, 103)],
    )?;
    task.add_records(
        "topic2",
        [record(25, 201), record(35, 202), record(45, 203)],
    )?;
    let steps: [(usize, &[i32], &[i32]); 6] = [
        (5, &[101], &[]),
        (4, &[101, 102], &[]),
        (3, &[101, 102], &[201]),
        (2, &[101, 102, 103], &[201]),
        (1, &[101, 102, 103], &[201, 202]),
        (0, &[101, 102, 103], &[201, 202, 203]),
    ];
    for (buffered, one, two) in steps {
        assert!(task.process_one()?);
        assert_eq!(task.buffered(), buffered);
        assert_eq!(values(&t.source1), one);
        assert_eq!(values(&t.source2), two);
    }
    assert!(!task.process_one()?);
    Ok(())
}

#[test]
fn punctuates_once_stream_time_after_gap() -> Result<()> {
    let t = two_sources(Some(PunctuationType::StreamTime))?;
    let mut task = task(&t, 0)?;
    task.add_records(
        "topic1",
        [
            record(20, 0),
            record(142, 0),
            record(155, 0),
            record(160, 0),
        ],
    )?;
    task.add_records(
        "topic2",
        [
            record(25, 0),
            record(145, 0),
            record(159, 0),
            record(161, 0),
        ],
    )?;
    // (stream time after the record, punctuated)
    let steps = [
        (20, true),
        (25, false),
        (142, true),
        (145, false),
        (155, true),
        (159, false),
        (160, true),
        (161, false),
    ];
    for (i, (st, punctuated)) in steps.into_iter().enumerate() {
        let before = lock(&t.punctuations).len();
        assert!(task.process_one()?);
        assert_eq!(task.buffered(), 7 - i);
        assert_eq!(task.stream_time(), st);
        assert_eq!(
            lock(&t.punctuations).len(),
            before + usize::from(punctuated),
            "at {st}"
        );
    }
    assert_eq!(*lock(&t.punctuations), vec![20, 142, 155, 160]);
    Ok(())
}

#[test]
fn punctuates_system_time_when_interval_elapsed() -> Result<()> {
    let now = 1_000;
    let t = two_sources(Some(PunctuationType::WallClockTime))?;
    let mut task = task(&t, now)?;
    task.init()?;
    let mut clock = now;
    for (sleep, fired) in [(10, 1), (10, 1), (9, 0), (1, 1), (20, 1)] {
        clock += sleep;
        assert_eq!(task.punctuate_wall_clock(clock)?, fired, "at {clock}");
    }
    // Nothing more is due at the same time.
    assert_eq!(task.punctuate_wall_clock(clock)?, 0);
    assert_eq!(
        *lock(&t.punctuations),
        vec![now + 10, now + 20, now + 30, now + 50]
    );
    Ok(())
}

#[test]
fn stream_time_never_goes_back() -> Result<()> {
    let t = two_sources(None)?;
    let mut task = task(&t, 0)?;
    assert_eq!(task.stream_time(), -1);
    task.add_records("topic1", [record(50, 1), record(60, 2)])?;
    task.add_records("topic2", [record(10, 3)])?;
    let mut times = Vec::new();
    while task.process_one()? {
        times.push(task.stream_time());
    }
    // topic2's record (10) goes first; then 50, 60.
    assert_eq!(times, vec![10, 50, 60]);
    // An out-of-order record later does not move stream time back.
    task.add_records(
        "topic1",
        [InputRecord {
            offset: 61,
            ..record(5, 4)
        }],
    )?;
    assert!(task.process_one()?);
    assert_eq!(task.stream_time(), 60);
    assert_eq!(values(&t.source1), vec![1, 2, 4]);
    Ok(())
}

#[test]
fn consumed_offsets_are_the_next_offsets_to_read() -> Result<()> {
    let t = two_sources(None)?;
    let mut task = task(&t, 0)?;
    assert!(task.consumed_offsets().is_empty());
    task.add_records("topic1", [record(10, 1), record(20, 2)])?;
    task.add_records("topic2", [record(30, 3)])?;
    assert_eq!(task.buffered_in("topic1"), 2);
    assert!(task.process_one()?);
    assert_eq!(task.consumed_offsets(), vec![("topic1".to_string(), 11)]);
    while task.process_one()? {}
    let mut offsets = task.consumed_offsets();
    offsets.sort();
    assert_eq!(
        offsets,
        vec![("topic1".to_string(), 21), ("topic2".to_string(), 31)]
    );
    assert_eq!(task.metrics().records_in, 3);
    Ok(())
}

/// Undecodable records are skipped under `LogAndContinue`, and their offsets still count as
/// consumed.
#[test]
fn skipped_records_are_consumed_too() -> Result<()> {
    let t = two_sources(None)?;
    let mut e = env(0);
    e.config.deserialization = freshet_streams::ErrorPolicy::LogAndContinue;
    let mut task = Task::new(&t.topology, "0_0", &[0, 1], 0, e)?;
    task.add_records(
        "topic1",
        [
            InputRecord {
                value: Some(Bytes::from_static(b"xx")),
                ..record(5, 0)
            },
            record(6, 7),
        ],
    )?;
    assert!(task.process_one()?);
    assert_eq!(values(&t.source1), vec![7]);
    assert_eq!(task.consumed_offsets(), vec![("topic1".to_string(), 7)]);
    assert_eq!(task.metrics().dropped_records, 1);
    Ok(())
}

#[test]
fn records_of_an_unknown_topic_are_refused() -> Result<()> {
    let t = two_sources(None)?;
    let mut task = task(&t, 0)?;
    match task.add_records("topic3", [record(1, 1)]) {
        Err(Error::UnknownTopic(topic)) => assert_eq!(topic, "topic3"),
        other => panic!("expected UnknownTopic, got {other:?}"),
    }
    Ok(())
}

#[test]
fn a_task_of_one_subtopology_reads_only_its_topics() -> Result<()> {
    let t = two_sources(None)?;
    let mut task = Task::new(&t.topology, "1_0", &[1], 0, env(0))?;
    assert_eq!(task.input_topics(), vec!["topic2".to_string()]);
    assert!(matches!(
        task.add_records("topic1", [record(1, 1)]),
        Err(Error::UnknownTopic(_))
    ));
    assert!(matches!(
        Task::new(&t.topology, "9_0", &[9], 0, env(0)),
        Err(Error::InvalidArgument(_))
    ));
    Ok(())
}

/// Internal topics are read under their real name, `<application.id>-<name>`.
#[test]
fn internal_topics_are_prefixed_with_the_application_id() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream_with::<String, String>(&["in"], Consumed::with(Utf8, Utf8))
        .select_key(|_, v| v.clone())
        .group_by_key()
        .count();
    let topology = builder.build()?;
    let task = Task::new(&topology, "1_0", &[1], 0, env(0))?;
    assert_eq!(
        task.input_topics(),
        vec!["app-KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition".to_string()]
    );
    assert_eq!(
        topology.subtopology_of_topic(
            "app-KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition",
            "app"
        ),
        Some(1)
    );
    Ok(())
}

/// What sinks write is collected for the caller, with the partition the sink chose: none
/// without a partitioner (the producer's default partitioner hashes the key bytes, as Kafka's
/// record collector leaves it to the producer).
#[test]
fn outputs_are_taken_by_the_caller() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream_with::<i32, i32>(&["in"], Consumed::with(BigEndian, BigEndian))
        .map_values(|v| v + 1)
        .to("out");
    let topology = builder.build()?;
    let mut task = Task::new(&topology, "0_0", &[0], 0, env(0))?;
    task.add_records("in", [record(3, 41)])?;
    assert!(task.process_one()?);
    let out = task.take_outputs();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "out");
    assert_eq!(out[0].partition, None);
    assert_eq!(out[0].value.as_deref(), Some(&42i32.to_be_bytes()[..]));
    assert_eq!(out[0].timestamp, 3);
    assert!(task.take_outputs().is_empty());
    assert_eq!(task.metrics().records_out, 1);
    Ok(())
}

fn windowed_count() -> Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream_with::<i32, i32>(&["in"], Consumed::with(BigEndian, BigEndian))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(
            10,
        ))?)
        .count()
        .to_stream()
        .map(|k, v| (k.key, v.unwrap_or(0)))
        .to("counts");
    builder.build()
}

#[test]
fn stream_times_are_restored_before_the_first_record() -> Result<()> {
    let topology = windowed_count()?;
    let mut first = Task::new(&topology, "0_0", &[0], 0, env(0))?;
    first.add_records("in", [record(100, 1)])?;
    assert!(first.process_one()?);
    first.flush()?;
    let committed = first.stream_times();
    assert_eq!(committed.task, 100);
    assert_eq!(
        committed.nodes.get("KSTREAM-AGGREGATE-0000000002"),
        Some(&100)
    );

    // A new task (its store empty) restores the stream times: the window [0, 10) stays
    // closed, so a record at 5 is dropped as late instead of counted.
    let mut second = Task::new(&topology, "0_0", &[0], 0, env(0))?;
    second.restore_stream_times(&committed)?;
    assert_eq!(second.stream_time(), 100);
    second.add_records(
        "in",
        [InputRecord {
            offset: 101,
            ..record(5, 1)
        }],
    )?;
    assert!(second.process_one()?);
    second.flush()?;
    assert!(second.take_outputs().is_empty());
    assert_eq!(second.metrics().late_records, 1);

    // Without the restore, the same record is counted.
    let mut third = Task::new(&topology, "0_0", &[0], 0, env(0))?;
    third.add_records("in", [record(5, 1)])?;
    assert!(third.process_one()?);
    third.flush()?;
    assert_eq!(third.take_outputs().len(), 1);
    Ok(())
}

#[test]
fn restored_task_time_only_moves_forward() -> Result<()> {
    let t = two_sources(None)?;
    let mut task = task(&t, 0)?;
    task.restore_stream_times(&StreamTimes {
        task: 40,
        ..Default::default()
    })?;
    task.add_records("topic1", [record(30, 1)])?;
    assert!(task.process_one()?);
    assert_eq!(task.stream_time(), 40);
    task.add_records("topic1", [record(50, 2)])?;
    assert!(task.process_one()?);
    assert_eq!(task.stream_time(), 50);
    assert_eq!(task.stream_times().task, 50);
    Ok(())
}
