//! The global stream thread (Kafka's `GlobalStreamThread`): keeps the instance's global
//! stores — one per `GlobalKTable` or global store of the topology — from every partition of
//! their topics, with the streams crate's [`GlobalTask`].
//!
//! At launch it **bootstraps** before any stream thread starts: it reads each global topic,
//! every partition, read_committed, from the instance's checkpoint (the beginning on a
//! fresh start) up to the last stable offsets it saw when it began, processes and commits.
//! Then it keeps up with the topics while the tasks run, committing every
//! `commit.interval.ms`. Every task reads the same stores.
//!
//! The global stores are not logged — their topic is their changelog — so the checkpoint is
//! local: after each commit the positions are written to a tree of the instance's sled
//! database (`global-checkpoint/offsets`, with each topic's id), after the stores' own
//! trees; a restart replays from there (replaying a topic's records is idempotent for a
//! table). When a global topic was recreated (its id changed), the global stores are wiped
//! and read again from the beginning.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_log::{Broker, FetchOptions, Isolation, Record};
use freshet_state_store::{Backend, ThreadCache, Tree};
use freshet_streams::{GlobalTask, InputRecord, TaskConfig, TaskEnv};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::backend::TaskBackend;
use crate::error::{Error, Result};
use crate::thread::Shared;

/// The checkpoint's key in its tree.
const CHECKPOINT_KEY: &[u8] = b"checkpoint";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    topics: BTreeMap<String, TopicCheckpoint>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TopicCheckpoint {
    /// The topic's id when the offsets were read.
    id: String,
    /// Next offset to read, by partition.
    offsets: BTreeMap<u32, i64>,
}

/// Starts the global thread; `ready` gets the bootstrap's outcome (the stores are then in
/// `shared.global_stores`).
pub(crate) fn spawn_global<B: Broker>(
    shared: Arc<Shared<B>>,
    ready: oneshot::Sender<Result<()>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let name = format!("{}-GlobalStreamThread", shared.config.application_id());
    std::thread::Builder::new().name(name).spawn(move || {
        let bootstrapped =
            crate::error::catching_panics(|| GlobalThread::bootstrap(shared.clone()));
        let mut g = match bootstrapped.and_then(|r| r) {
            Ok(g) => g,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let result = crate::error::catching_panics(|| g.run())
            .and_then(|r| r)
            .and_then(|()| g.task.close().map_err(task_err));
        if let Err(e) = result {
            shared.global_failed(&e);
        }
    })
}

struct GlobalThread<B: Broker> {
    shared: Arc<Shared<B>>,
    task: GlobalTask,
    /// Next offset to fetch, per (topic, partition).
    positions: BTreeMap<(String, u32), i64>,
    /// Each global topic's id.
    ids: BTreeMap<String, String>,
    checkpoint: Arc<dyn Tree>,
    dirty: bool,
    last_commit: Instant,
}

fn task_err(source: freshet_streams::Error) -> Error {
    Error::Task {
        task: "global".into(),
        source,
    }
}

impl<B: Broker> GlobalThread<B> {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.shared.handle.block_on(f)
    }

    fn bootstrap(shared: Arc<Shared<B>>) -> Result<GlobalThread<B>> {
        let started = Instant::now();
        let checkpoint =
            TaskBackend::new(shared.backend.clone(), "global-checkpoint").open_tree("offsets")?;
        let mut cp: Checkpoint = checkpoint
            .get(CHECKPOINT_KEY)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut ids = BTreeMap::new();
        let mut wipe = false;
        for topic in &shared.plan.global_topics {
            let d = shared
                .handle
                .block_on(shared.broker.describe_topic(topic))?;
            let id = d.id.to_string();
            if cp.topics.get(topic).is_some_and(|t| t.id != id) {
                tracing::warn!(
                    topic,
                    "global topic was recreated; wiping the global stores"
                );
                wipe = true;
            }
            ids.insert(topic.clone(), id);
        }
        let backend = TaskBackend::new(shared.backend.clone(), "global");
        if wipe {
            for tree in backend.tree_names()? {
                backend.drop_tree(&tree)?;
            }
            cp = Checkpoint::default();
        }
        let config = &shared.config;
        let partitions = shared.partitions.clone();
        let env = TaskEnv {
            backend: Arc::new(backend),
            cache: ThreadCache::new(0),
            config: TaskConfig {
                application_id: config.application_id().to_string(),
                windowed_emit_interval_ms: 1000,
                outer_join_emit_interval_ms: 1000,
                deserialization: config.deserialization_policy(),
                processing: config.processing_policy(),
            },
            partitions_of: Arc::new(move |t: &str| partitions.get(t).copied()),
            wall_clock: 0,
            global_stores: Default::default(),
        };
        let mut task = GlobalTask::new(&shared.topology, env).map_err(task_err)?;
        task.init().map_err(task_err)?;
        let mut positions = BTreeMap::new();
        let mut bounds = BTreeMap::new();
        for topic in &shared.plan.global_topics {
            let n = shared.partitions.get(topic).copied().unwrap_or(0);
            for p in 0..n {
                let o = shared.handle.block_on(shared.broker.offsets(topic, p))?;
                let from = cp
                    .topics
                    .get(topic)
                    .and_then(|t| t.offsets.get(&p))
                    .copied()
                    .filter(|&c| c >= o.start && c <= o.end)
                    .unwrap_or(o.start);
                positions.insert((topic.clone(), p), from);
                bounds.insert((topic.clone(), p), o.last_stable);
            }
        }
        let mut g = GlobalThread {
            shared: shared.clone(),
            task,
            positions,
            ids,
            checkpoint,
            dirty: false,
            last_commit: Instant::now(),
        };
        let mut read = 0;
        loop {
            let behind: Vec<(String, u32, i64)> = g
                .positions
                .iter()
                .filter(|(k, &pos)| bounds.get(*k).is_some_and(|&b| pos < b))
                .map(|((t, p), &pos)| (t.clone(), *p, pos))
                .collect();
            if behind.is_empty() || shared.shutdown.load(Ordering::SeqCst) {
                break;
            }
            read += g.fetch(&behind, Duration::from_millis(100), Some(&bounds))?;
            g.process()?;
            if g.last_commit.elapsed() >= Duration::from_millis(config.commit_interval_ms()) {
                g.commit()?;
            }
        }
        g.dirty = true;
        g.commit()?;
        let _ = shared.global_stores.set(g.task.global_stores());
        tracing::info!(
            topics = shared.plan.global_topics.len(),
            records = read,
            ms = started.elapsed().as_millis() as u64,
            "global stores bootstrapped"
        );
        Ok(g)
    }

    /// Keeps the stores up to date until the app closes.
    fn run(&mut self) -> Result<()> {
        let commit_every = Duration::from_millis(self.shared.config.commit_interval_ms());
        let poll = Duration::from_millis(self.shared.config.poll_ms());
        while !self.shared.shutdown.load(Ordering::SeqCst) {
            let all: Vec<(String, u32, i64)> = self
                .positions
                .iter()
                .map(|((t, p), &pos)| (t.clone(), *p, pos))
                .collect();
            self.fetch(&all, poll, None)?;
            self.process()?;
            if self.dirty && self.last_commit.elapsed() >= commit_every {
                self.commit()?;
            }
        }
        if self.dirty {
            self.commit()?;
        }
        Ok(())
    }

    /// Fetches from `positions` (waiting up to `wait`, waking for close) and buffers the
    /// records, below `bounds` when given; returns how many.
    fn fetch(
        &mut self,
        positions: &[(String, u32, i64)],
        wait: Duration,
        bounds: Option<&BTreeMap<(String, u32), i64>>,
    ) -> Result<usize> {
        let options = FetchOptions {
            isolation: Isolation::ReadCommitted,
            timeout: wait,
            ..FetchOptions::default()
        };
        let shared = self.shared.clone();
        let fetched = shared.fetch_until_closed(shared.broker.fetch(positions, &options));
        let fetched = match fetched {
            Ok(f) => f,
            Err(freshet_log::Error::OffsetOutOfRange {
                topic,
                partition,
                start,
                ..
            }) => {
                tracing::warn!(
                    topic,
                    partition,
                    "global topic position out of range; resuming at its start"
                );
                self.positions.insert((topic, partition), start);
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        let mut n = 0;
        for f in fetched {
            let key = (f.topic.clone(), f.partition);
            let bound = bounds.and_then(|b| b.get(&key)).copied();
            let records: Vec<InputRecord> = f
                .records
                .into_iter()
                .filter(|r| bound.is_none_or(|b| r.offset < b))
                .map(|r| InputRecord {
                    key: r.key,
                    value: r.value,
                    timestamp: r.timestamp,
                    headers: r.headers,
                    offset: r.offset,
                })
                .collect();
            let next = match bound {
                Some(b) => f.next_offset.min(b),
                None => f.next_offset,
            };
            let pos = self.positions.entry(key).or_insert(next);
            *pos = (*pos).max(next);
            if !records.is_empty() {
                n += records.len();
                self.dirty = true;
                self.task
                    .add_records(&f.topic, f.partition, records)
                    .map_err(task_err)?;
            }
        }
        Ok(n)
    }

    /// Processes what is buffered and writes what it produced (dead-lettered records).
    fn process(&mut self) -> Result<()> {
        self.task.process().map_err(task_err)?;
        let out = self.task.take_outputs();
        if out.is_empty() {
            return Ok(());
        }
        let mut batches: BTreeMap<(String, u32), Vec<Record>> = BTreeMap::new();
        for r in out {
            let n = self
                .shared
                .partitions
                .get(&r.topic)
                .copied()
                .unwrap_or(1)
                .max(1);
            let p = match (r.partition, &r.key) {
                (Some(p), _) if p < n => p,
                (_, Some(k)) => freshet_streams::partition_for_key(k, n),
                _ => 0,
            };
            batches.entry((r.topic, p)).or_default().push(Record {
                key: r.key,
                value: r.value,
                timestamp: Some(r.timestamp),
                headers: r.headers,
            });
        }
        let acks = self.shared.config.durability();
        for ((topic, p), records) in batches {
            self.block_on(self.shared.broker.append(&topic, p, &records, acks))?;
        }
        Ok(())
    }

    /// Moves the stores' writes to sled, then records the positions in the checkpoint.
    fn commit(&mut self) -> Result<()> {
        self.task.commit().map_err(task_err)?;
        let mut cp = Checkpoint::default();
        for ((topic, p), pos) in &self.positions {
            let t = cp
                .topics
                .entry(topic.clone())
                .or_insert_with(|| TopicCheckpoint {
                    id: self.ids.get(topic).cloned().unwrap_or_default(),
                    offsets: BTreeMap::new(),
                });
            t.offsets.insert(*p, *pos);
        }
        let json = serde_json::to_vec(&cp).map_err(|e| Error::Serde {
            store: "(global checkpoint)".into(),
            reason: e.to_string(),
        })?;
        self.checkpoint.apply(
            &[(Bytes::from_static(CHECKPOINT_KEY), Some(Bytes::from(json)))],
            None,
        )?;
        self.dirty = false;
        self.last_commit = Instant::now();
        Ok(())
    }
}
