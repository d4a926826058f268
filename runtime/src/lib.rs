//! freshet-runtime: runs a Streams [`Topology`](freshet_streams::Topology) over a log —
//! the embedded [`freshet_log::Log`], or any [`Broker`](freshet_log::Broker) — with
//! exactly-once commits by default, restore without wipes, interactive queries and
//! metrics. [`StreamsApp`] is Kafka's `KafkaStreams`; [`StreamsConfig`] its settings.
//!
//! # Examples
//! ```no_run
//! use std::sync::Arc;
//! use freshet_log::{Log, TopicConfig};
//! use freshet_runtime::{StreamsApp, StreamsConfig};
//! use freshet_streams::{Materialized, StreamsBuilder};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let log = Arc::new(Log::open("./freshet-data")?);
//! log.create_topic("page-views", TopicConfig::partitions(4))?;
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, String>("page-views")
//!     .group_by_key()
//!     .count_with(Materialized::named("views"))
//!     .to_stream()
//!     .to("views-per-user");
//! let mut app = StreamsApp::start(StreamsConfig::new("page-counter"), builder.build()?, log).await?;
//! app.wait_until_caught_up().await?;
//! let views = app.store::<String, i64>("views")?;
//! println!("ann viewed {:?} pages", views.get(&"ann".to_string())?);
//! app.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Tasks
//! [`StreamsApp::start`] resolves the partition counts of repartition topics (fixed, or
//! the largest of the topics they derive from, through chains), sizes repartition topics
//! of co-partition groups to match their external topics, fails clearly when joined inputs
//! are not co-partitioned or an existing topic has another count, and creates repartition
//! topics, changelog topics (`<application.id>-<store>-changelog`, one partition per task,
//! compacted — windowed stores also deleted after their retention plus a day) and missing
//! sink topics (with the sub-topology's partition count, unless
//! `auto.create.sink.topics=false`). It then makes one task per (sub-topology, partition),
//! named `<sub-topology>_<partition>`. The app's consumer group (group id =
//! `application.id`) spreads the tasks over the stream threads of every running instance
//! (see "Instances and rebalancing").
//!
//! # Threading model
//! Each stream thread is a plain `std::thread` that owns its tasks; the task core is
//! synchronous and never crosses threads. The thread reaches the (async) [`Broker`](freshet_log::Broker) through
//! a small tokio runtime the app creates for itself (one worker thread, named
//! `<application.id>-io`), calling `Handle::block_on`; so the app works the same under any
//! caller runtime (multi-thread or current-thread), and the async calls of [`StreamsApp`]
//! (`start`, `close`, `wait_until_caught_up`) only await notifications from the threads.
//! The runtime is shut down in the background when the app closes.
//!
//! A thread loops: poll the group when due (see below) → fetch its tasks' input partitions
//! in one call (read_committed; it waits
//! up to `poll.ms` only when no task can process; a partition with
//! `buffered.records.per.partition` buffered records is not fetched) → hand the records to
//! their tasks → let each task process while every one of its input partitions has a
//! buffered record or is caught up to its last stable offset (SEMANTICS.md §3's rule for a
//! single-process log), up to 1000 records per task per turn → fire due wall-clock
//! punctuations → commit every `commit.interval.ms`, or sooner when the stores' write
//! buffers pass `statestore.write.buffer.max.bytes` (checked between records, never inside
//! one).
//!
//! Where the machine has more cores than the app has stream threads, reads and appends
//! overlap the processing, as Kafka's consumer and producer do on their own threads (with
//! a stream thread per core they would only add hand-overs, and the threads do them
//! inline): when a task's buffer falls below `buffered.records.per.partition` the
//! thread sends its next fetch ahead on the io runtime and takes the records when they are
//! read (kept only if the input still stands where the fetch started); and the outputs the
//! tasks wrote change hands, uncopied, to an append job on the io runtime that places them
//! in their partitions' batches and appends them (one job at a time, so each partition's
//! records stay in order; the commit waits for it before the changelogs and offsets).
//!
//! # Instances and rebalancing
//! Each stream thread is one member of the consumer group `<application.id>` on the log,
//! subscribed to every source topic of the topology; all of an instance's threads join
//! before any of them polls. The group's assignor is freshet's task assignor: it assigns
//! whole tasks — the same-numbered partition of every source topic of a sub-topology goes to
//! one member — balanced over the members (⌊tasks / members⌋ each, or one more), sticky (a
//! member keeps the tasks it had, up to its share), and a task that moves goes first to an
//! instance that has its state (it owned it before, or has its trees in its sled database).
//!
//! Several [`StreamsApp`] instances with one `application.id` may run in one process, each
//! with its own state directory (see "State on disk"): when one starts or stops, the group
//! rebalances. The log's groups are eager: every member gives up its tasks, then all get the
//! new assignment. A thread under exactly-once polls the group only with nothing
//! uncommitted — right after a commit, or when idle, at least every 50 ms — so the tasks it
//! gives up are flushed and committed before it rejoins; under at-least-once it commits
//! when its tasks are revoked. Tasks it keeps resume as they were; tasks it loses are closed
//! and released; tasks it gains are opened once no other thread of the instance holds them
//! (per-task locks), after any transaction still open on their changelogs has ended, and
//! restored from the changelogs — only the tail after what the instance's sled database
//! holds, when it had the task before. The app is `REBALANCING` from a revocation until
//! every thread has its new tasks restored, then `RUNNING` again.
//!
//! Offsets are committed with the member's group generation: a thread the group has moved
//! past (its session timed out: `session.timeout.ms`, 45 s, e.g. stuck in a long restore)
//! is refused, aborts its transaction, drops its tasks without committing and joins again —
//! their new owners redo its uncommitted work, so nothing is committed twice.
//!
//! # The commit protocol
//! Per thread, exactly as ../shared/ARCHITECTURE.md fixes it. Under `exactly_once_v2` (the
//! default) each thread has one transactional session,
//! `<application.id>-<instance id>-<thread index>` (unique per instance and thread; a
//! restarted instance fences its predecessor's sessions):
//! 1. every task flushes its caches, and what they forward joins the outputs;
//! 2. in the thread's one open transaction: every output and repartition record (appended
//!    one batch per partition; the partition is the sink's choice, else murmur2 of the key
//!    bytes, else round robin for a null key — outputs are also appended early, inside the
//!    same transaction, when more than 10 000 wait), the changelog records of every store
//!    write since the last commit, and each task's input offsets with its stream times
//!    (the task's, and each stateful operator's observed stream time) as JSON in the offset
//!    metadata, with the member's generation;
//! 3. commit the transaction;
//! 4. only then apply to sled: one batch per store tree, with that tree's changelog offset.
//!    Under exactly-once the committed writes may wait in memory (the stores' committed
//!    overlay, which reads see) and go to sled at most once a second — sooner when the
//!    thread is idle, when they would pass the write-buffer limit, before tasks are revoked
//!    or closed, and before the app reports caught up — since a sled write is the slowest
//!    step; a crash before that only means a longer changelog replay at restart. Under
//!    exactly-once the apply also runs on an apply worker (one thread per stream thread,
//!    which takes its stores' applies in turn) while the stream thread goes on processing
//!    (reads see the batch in memory until sled has it); the thread waits for it when
//!    idle, before reporting caught up, at a revocation and at close.
//!
//! So sled only holds committed data. If steps 2–3 fail the transaction is aborted and the
//! thread's tasks restart from committed state: their stores restore the committed
//! changelog after what sled holds (no wipe), their inputs rewind to the committed offsets,
//! their stream times to the committed ones. A fenced session (another instance took over
//! the transactional id) stops the app. After a commit, repartition topics are purged below
//! the committed offsets every `repartition.purge.interval.ms` (and at close).
//!
//! Under `at_least_once`, outputs and changelog records are appended without a
//! transaction, the stores apply, and the offsets (with stream times) are committed last —
//! through a transaction holding only them, the one way the log seam commits group offsets.
//! After a crash the work since the last commit is done again.
//!
//! # Restore
//! Before a task processes, each of its stores replays its changelog from the store's
//! applied offsets up to the last stable offset, read_committed; the store wipes first only
//! when its local state is missing, the changelog was recreated (its topic id changed) or
//! the applied offset is past the changelog's end. Then the task resumes from the committed
//! offsets with the committed stream times, so a restart never reopens a window that was
//! closed. A partition without a committed offset (or with one outside the partition's
//! range) starts where its source's `Consumed::with_offset_reset` says: the earliest offset
//! by default (Kafka Streams' `auto.offset.reset=earliest`), or the last stable offset for
//! `OffsetReset::Latest`; repartition topics always start at the earliest. The app is
//! `RUNNING` once every task is restored.
//!
//! # Global tables
//! Global stores (`GlobalKTable`s, global stores of the Processor API) are kept by one
//! global stream thread per instance. At launch, before any stream thread starts, it reads
//! every partition of each global topic (read_committed) from the instance's checkpoint —
//! the beginning on a fresh start — up to the last stable offsets it saw when it began;
//! then it follows the topics while the tasks run, committing every `commit.interval.ms`.
//! The stores are not logged (the topic is their changelog); the checkpoint is a tree of
//! the instance's sled database, written after the stores' own trees, holding each topic's
//! id: a recreated global topic wipes the stores and reads it again. Interactive queries
//! read global stores like the others.
//!
//! # Interactive queries
//! [`StreamsApp::store`], [`StreamsApp::window_store`] and [`StreamsApp::session_store`]
//! give typed, read-only views over the **committed** state of a store in the local tasks
//! (Kafka's `KafkaStreams#store`). A key is looked up in the task of its partition —
//! murmur2 of the key's serialized bytes over the store's task count, as the records were
//! routed — and only there. A view reads what the last commit applied to sled (never a
//! write buffer or an uncommitted write), so it lags processing by at most one commit
//! interval. Calls fail with [`Error::InvalidState`] while the app is not `RUNNING` or
//! `REBALANCING`.
//!
//! # State on disk
//! One sled database per app instance, in `<state dir>/sled`, where the state dir is
//! `<data dir>/state/<application.id>` (the data dir defaults to the embedded log's) or
//! `<state.dir>/<application.id>`; its page cache is `state.sled.cache.bytes`. Each task's
//! trees are named `<task id>/<tree>`, so tasks' stores of one name never collide; the
//! global stores' trees are `global/<tree>`.
//!
//! An instance holds its state directory from [`StreamsApp::new`] until it is closed, with
//! a lock file (`.lock`). A second live instance of the app (in this process, or any other)
//! takes `<application.id>.instance-2` beside it, a third `.instance-3`, and so on: the first
//! free one. So instances never share a database, and a restarted instance finds the state
//! it left in the first free directory. The directory also keeps the instance's id
//! (`instance.id`, made once), which names its transactional sessions and tells the assignor
//! which tasks it has state for. `freshet app reset APP_ID` (the CLI) deletes these
//! directories, the app's internal topics, and its input offsets, so the app starts over;
//! it refuses while the app runs.

mod app;
mod assignor;
mod backend;
mod changelog;
mod config;
mod error;
mod global;
mod metrics;
mod query;
mod state;
mod statedir;
mod task;
mod thread;
mod topics;

pub use crate::app::StreamsApp;
pub use crate::changelog::{BrokerChangelogReader, BrokerChangelogSink, SinkTarget};
pub use crate::config::{HandlerPolicy, ProcessingGuarantee, StreamsConfig, STREAMS_CONFIG_KEYS};
pub use crate::error::{Error, Result};
pub use crate::metrics::{AppMetrics, RestoreProgress, TaskMetricsSnapshot, ThreadMetrics};
pub use crate::query::{KeyValueStoreView, SessionStoreView, WindowStoreView};
pub use crate::state::{AppState, StateListener};
pub use crate::statedir::{
    app_state_dirs, instance_state_dir, state_dir_in_use, STATE_DIR_LOCK_FILE,
};
