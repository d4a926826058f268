//! What `StreamsApp::start` sets up on the log before any task runs: partition counts of
//! internal topics resolved (fixed, or the largest of the listed topics through chains of
//! internal topics), co-partition groups checked (and repartition topics in them sized to
//! match, as Kafka's `CopartitionedTopicsEnforcer`), repartition and changelog topics
//! created with their configs, sink topics created when missing, and the tasks to run.

use std::collections::{BTreeMap, BTreeSet};

use freshet_log::{Broker, TopicConfig, TOPIC_CONFIG_KEYS};
use freshet_state_store::{changelog_topic, ChangelogTopicConfig};
use freshet_streams::{InternalTopic, PartitionCount, StoreKind, TaskId, TopicName, Topology};

use crate::config::StreamsConfig;
use crate::error::{Error, Result};

/// The resolved layout of an app on the log.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// Partition count of every topic the app reads or writes (resolved names).
    pub(crate) partitions: BTreeMap<String, u32>,
    /// Resolved names of the repartition (internal) topics.
    pub(crate) internal: BTreeSet<String>,
    /// Every task, in id order.
    pub(crate) tasks: Vec<TaskId>,
    /// Per store: its sub-topology and that sub-topology's task count.
    pub(crate) stores: BTreeMap<String, (u32, u32)>,
    /// Last stable offset of every partition of the external source topics at start (the
    /// bound of `run_until_caught_up`).
    pub(crate) end_offsets: BTreeMap<(String, u32), i64>,
    /// Every source topic of a sub-topology (resolved) → its sub-topology.
    pub(crate) topic_subtopology: BTreeMap<String, u32>,
    /// The topics global stores read (all partitions of each).
    pub(crate) global_topics: Vec<String>,
}

/// Resolves, checks and creates everything (see the module docs).
pub(crate) async fn prepare<B: Broker>(
    config: &StreamsConfig,
    topology: &Topology,
    log: &B,
) -> Result<Plan> {
    let app = config.application_id();
    let mut plan = Plan::default();
    let internal: BTreeMap<TopicName, &InternalTopic> = topology
        .internal_topics()
        .iter()
        .map(|t| (t.name.clone(), t))
        .collect();

    // External topics the counts depend on: every source, and every topic a count lists.
    let mut external: BTreeSet<String> = BTreeSet::new();
    for sub in topology.subtopologies() {
        for t in &sub.source_topics {
            if let TopicName::External(name) = t {
                external.insert(name.clone());
            }
        }
    }
    for t in topology.internal_topics() {
        if let PartitionCount::MaxOf(list) = &t.partitions {
            for l in list {
                if let TopicName::External(name) = l {
                    external.insert(name.clone());
                }
            }
        }
    }
    for g in topology.copartition_groups() {
        for t in g {
            if let TopicName::External(name) = t {
                external.insert(name.clone());
            }
        }
    }
    for g in topology.global_stores() {
        let name = g.topic.resolve(app);
        if !plan.global_topics.contains(&name) {
            plan.global_topics.push(name.clone());
        }
        external.insert(name);
    }
    for name in &external {
        match log.describe_topic(name).await {
            Ok(d) => {
                plan.partitions.insert(name.clone(), d.config.partitions);
            }
            Err(freshet_log::Error::UnknownTopic { .. }) => {
                return Err(Error::MissingSourceTopic {
                    topic: name.clone(),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }

    // Internal topics: resolve, enforce co-partitioning, resolve again with the overrides.
    let mut overrides: BTreeMap<TopicName, u32> = BTreeMap::new();
    let mut counts = resolve_all(app, &internal, &plan.partitions, &overrides)?;
    for group in topology.copartition_groups() {
        enforce_copartitioning(
            app,
            group,
            &internal,
            &plan.partitions,
            &counts,
            &mut overrides,
        )?;
    }
    if !overrides.is_empty() {
        counts = resolve_all(app, &internal, &plan.partitions, &overrides)?;
        for group in topology.copartition_groups() {
            check_group(app, group, &plan.partitions, &counts)?;
        }
    }
    for t in topology.internal_topics() {
        let name = t.name.resolve(app);
        let n = counts.get(&t.name).copied().unwrap_or(1);
        let mut topic_config = TopicConfig::partitions(n);
        for (k, v) in &t.config {
            if TOPIC_CONFIG_KEYS.contains(&k.as_str()) {
                topic_config.set(k, v)?;
            } else {
                tracing::warn!(topic = %name, setting = %k, "the log has no such topic setting; ignored");
            }
        }
        ensure_topic(log, &name, topic_config, "repartition topic").await?;
        plan.partitions.insert(name.clone(), n);
        plan.internal.insert(name);
    }

    // Tasks, changelogs, sinks.
    for sub in topology.subtopologies() {
        let tasks = sub
            .source_topics
            .iter()
            .filter_map(|t| plan.partitions.get(&t.resolve(app)).copied())
            .max()
            .unwrap_or(0);
        for p in 0..tasks {
            plan.tasks.push(TaskId {
                subtopology: sub.id,
                partition: p,
            });
        }
        for store in &sub.stores {
            plan.stores.insert(store.clone(), (sub.id, tasks));
        }
        for store in topology
            .stores()
            .filter(|s| sub.stores.iter().any(|n| n == s.name()))
        {
            if !store.logging_enabled() || tasks == 0 {
                continue;
            }
            let settings = match store.kind() {
                StoreKind::KeyValue | StoreKind::Buffer => ChangelogTopicConfig::key_value(),
                StoreKind::Window(o) => ChangelogTopicConfig::windowed(o.retention_ms),
                StoreKind::Session(o) => ChangelogTopicConfig::windowed(o.retention_ms),
            };
            let mut topic_config = TopicConfig::partitions(tasks);
            for (k, v) in settings.settings() {
                topic_config.set(&k, &v)?;
            }
            let name = changelog_topic(app, store.name());
            ensure_topic(log, &name, topic_config, "changelog topic").await?;
            plan.partitions.insert(name, tasks);
        }
        for sink in &sub.sink_topics {
            let name = sink.resolve(app);
            if plan.partitions.contains_key(&name) {
                continue;
            }
            let n = ensure_sink(config, log, &name, tasks.max(1)).await?;
            plan.partitions.insert(name, n);
        }
    }
    if let Some(dlq) = config.dead_letter_topic() {
        if !plan.partitions.contains_key(dlq) {
            let n = ensure_sink(config, log, dlq, 1).await?;
            plan.partitions.insert(dlq.to_string(), n);
        }
    }
    plan.tasks.sort();
    for sub in topology.subtopologies() {
        for t in &sub.source_topics {
            let name = t.resolve(app);
            if let Some(other) = plan.topic_subtopology.get(&name) {
                if *other != sub.id {
                    return Err(Error::Streams(freshet_streams::Error::Topology(format!(
                        "topic {name} is read by sub-topologies {other} and {}: a topic can be the source of one only",
                        sub.id
                    ))));
                }
            }
            plan.topic_subtopology.insert(name, sub.id);
        }
    }

    // The bound of the bounded mode.
    for sub in topology.subtopologies() {
        for t in &sub.source_topics {
            if let TopicName::External(name) = t {
                let n = plan.partitions.get(name).copied().unwrap_or(0);
                for p in 0..n {
                    let o = log.offsets(name, p).await?;
                    plan.end_offsets.insert((name.clone(), p), o.last_stable);
                }
            }
        }
    }
    Ok(plan)
}

/// The partition count of every internal topic.
fn resolve_all(
    app: &str,
    internal: &BTreeMap<TopicName, &InternalTopic>,
    external: &BTreeMap<String, u32>,
    overrides: &BTreeMap<TopicName, u32>,
) -> Result<BTreeMap<TopicName, u32>> {
    let mut done = BTreeMap::new();
    for name in internal.keys() {
        let mut visiting = BTreeSet::new();
        resolve(
            app,
            name,
            internal,
            external,
            overrides,
            &mut done,
            &mut visiting,
        )?;
    }
    Ok(done)
}

fn resolve(
    app: &str,
    name: &TopicName,
    internal: &BTreeMap<TopicName, &InternalTopic>,
    external: &BTreeMap<String, u32>,
    overrides: &BTreeMap<TopicName, u32>,
    done: &mut BTreeMap<TopicName, u32>,
    visiting: &mut BTreeSet<TopicName>,
) -> Result<u32> {
    if let Some(&n) = done.get(name) {
        return Ok(n);
    }
    let unresolved = |reason: String| Error::UnresolvedPartitions {
        topic: name.resolve(app),
        reason,
    };
    let n = match name {
        TopicName::External(t) => external
            .get(t)
            .copied()
            .ok_or_else(|| Error::MissingSourceTopic { topic: t.clone() })?,
        TopicName::Internal(_) => {
            if let Some(&n) = overrides.get(name) {
                n
            } else {
                let spec = internal
                    .get(name)
                    .ok_or_else(|| unresolved("it is not declared as an internal topic".into()))?;
                match &spec.partitions {
                    PartitionCount::Fixed(n) => *n,
                    PartitionCount::MaxOf(list) => {
                        if !visiting.insert(name.clone()) {
                            return Err(unresolved("its count depends on itself".into()));
                        }
                        let mut max = 0;
                        // A topic read by the sub-topology that writes it (a join of a
                        // stream with a re-keyed copy of itself) or a longer cycle: its count
                        // comes from the other topics.
                        let others: Vec<&TopicName> =
                            list.iter().filter(|t| !visiting.contains(*t)).collect();
                        for t in others {
                            max = max.max(resolve(
                                app, t, internal, external, overrides, done, visiting,
                            )?);
                        }
                        visiting.remove(name);
                        if max == 0 {
                            return Err(unresolved("no upstream topic gives a count".into()));
                        }
                        max
                    }
                }
            }
        }
    };
    if matches!(name, TopicName::Internal(_)) {
        done.insert(name.clone(), n);
    }
    Ok(n)
}

fn count_of(
    app: &str,
    t: &TopicName,
    external: &BTreeMap<String, u32>,
    counts: &BTreeMap<TopicName, u32>,
) -> Option<u32> {
    match t {
        TopicName::External(name) => external.get(name).copied(),
        TopicName::Internal(_) => counts
            .get(t)
            .copied()
            .or_else(|| external.get(&t.resolve(app)).copied()),
    }
}

fn describe_group(
    app: &str,
    group: &BTreeSet<TopicName>,
    external: &BTreeMap<String, u32>,
    counts: &BTreeMap<TopicName, u32>,
) -> String {
    group
        .iter()
        .map(|t| {
            let n = count_of(app, t, external, counts).map_or("?".to_string(), |n| n.to_string());
            format!("{} ({n})", t.resolve(app))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Kafka's `CopartitionedTopicsEnforcer`: external topics of a group must agree; internal
/// topics without a fixed count take that count (or the group's largest); fixed ones must
/// match it.
fn enforce_copartitioning(
    app: &str,
    group: &BTreeSet<TopicName>,
    internal: &BTreeMap<TopicName, &InternalTopic>,
    external: &BTreeMap<String, u32>,
    counts: &BTreeMap<TopicName, u32>,
    overrides: &mut BTreeMap<TopicName, u32>,
) -> Result<()> {
    let not_copartitioned = || Error::NotCopartitioned {
        topics: describe_group(app, group, external, counts),
    };
    let externals: BTreeSet<u32> = group
        .iter()
        .filter(|t| !internal.contains_key(*t))
        .filter_map(|t| count_of(app, t, external, counts))
        .collect();
    if externals.len() > 1 {
        return Err(not_copartitioned());
    }
    let fixed: BTreeSet<u32> = group
        .iter()
        .filter_map(|t| match internal.get(t).map(|s| &s.partitions) {
            Some(PartitionCount::Fixed(n)) => Some(*n),
            _ => None,
        })
        .collect();
    let target = match (externals.iter().next(), fixed.iter().next()) {
        (Some(&e), _) => e,
        (None, Some(&f)) => f,
        (None, None) => group
            .iter()
            .filter_map(|t| count_of(app, t, external, counts))
            .max()
            .unwrap_or(1),
    };
    if fixed.iter().any(|&f| f != target) {
        return Err(not_copartitioned());
    }
    for t in group {
        if let Some(spec) = internal.get(t) {
            if matches!(spec.partitions, PartitionCount::MaxOf(_))
                && counts.get(t).copied() != Some(target)
            {
                overrides.insert(t.clone(), target);
            }
        }
    }
    Ok(())
}

fn check_group(
    app: &str,
    group: &BTreeSet<TopicName>,
    external: &BTreeMap<String, u32>,
    counts: &BTreeMap<TopicName, u32>,
) -> Result<()> {
    let all: BTreeSet<u32> = group
        .iter()
        .filter_map(|t| count_of(app, t, external, counts))
        .collect();
    if all.len() > 1 {
        return Err(Error::NotCopartitioned {
            topics: describe_group(app, group, external, counts),
        });
    }
    Ok(())
}

/// Creates `name` with `config`, or checks that the existing topic has its partition count.
async fn ensure_topic<B: Broker>(
    log: &B,
    name: &str,
    config: TopicConfig,
    what: &str,
) -> Result<()> {
    match log.describe_topic(name).await {
        Ok(d) if d.config.partitions == config.partitions => Ok(()),
        Ok(d) => Err(Error::PartitionMismatch {
            topic: name.to_string(),
            actual: d.config.partitions,
            expected: config.partitions,
            why: format!("{what} of the topology"),
        }),
        Err(freshet_log::Error::UnknownTopic { .. }) => {
            tracing::info!(
                topic = name,
                partitions = config.partitions,
                "creating {what}"
            );
            match log.create_topic(name, config).await {
                Ok(_) | Err(freshet_log::Error::TopicExists { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The partition count of sink topic `name`, creating it with `partitions` when it is
/// missing and `auto.create.sink.topics` allows.
async fn ensure_sink<B: Broker>(
    config: &StreamsConfig,
    log: &B,
    name: &str,
    partitions: u32,
) -> Result<u32> {
    match log.describe_topic(name).await {
        Ok(d) => Ok(d.config.partitions),
        Err(freshet_log::Error::UnknownTopic { .. }) if config.auto_create_sink_topics() => {
            tracing::info!(topic = name, partitions, "creating missing sink topic");
            match log
                .create_topic(name, TopicConfig::partitions(partitions))
                .await
            {
                Ok(d) => Ok(d.config.partitions),
                Err(freshet_log::Error::TopicExists { .. }) => {
                    Ok(log.describe_topic(name).await?.config.partitions)
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(freshet_log::Error::UnknownTopic { .. }) => Err(Error::MissingSinkTopic {
            topic: name.to_string(),
            hint: " and auto.create.sink.topics is false: create it first",
        }),
        Err(e) => Err(e.into()),
    }
}
