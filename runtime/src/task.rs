//! A task as a stream thread runs it: the task core plus where each input partition is
//! fetched to, what was committed, and the stream times committed in the offset metadata.

use std::collections::BTreeMap;

use freshet_log::{Broker, OffsetAndMetadata};
use freshet_streams::{OffsetReset, StreamTimes, Task, TaskId, TaskMetrics};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::RestoreProgress;

/// One input partition of a task.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    /// The topic (resolved name); the partition is the task's.
    pub(crate) topic: String,
    /// Whether it is a repartition topic of this app (purged after commits).
    pub(crate) internal: bool,
    /// The next offset to fetch.
    pub(crate) position: i64,
    /// The offset last committed (the next to process after a restart).
    pub(crate) committed: Option<i64>,
    /// The last stable offset last seen (it only grows).
    pub(crate) last_stable: i64,
    /// For an external topic, its end offset when the app started (the bound of
    /// `run_until_caught_up`).
    pub(crate) bound: Option<i64>,
}

impl Input {
    /// Whether the log is known to hold records past the input's position: below its
    /// bound in bounded mode (`run_until_caught_up`), else below the last stable offset
    /// last seen (a fetch reports it, so a fetch cut short by its budget leaves it above
    /// the position).
    pub(crate) fn has_more(&self, bounded: bool) -> bool {
        match self.bound {
            Some(b) if bounded => self.position < b,
            _ => self.position < self.last_stable,
        }
    }
}

/// A running task and its inputs.
#[derive(Debug)]
pub(crate) struct RuntimeTask {
    pub(crate) id: TaskId,
    pub(crate) task: Task,
    pub(crate) inputs: Vec<Input>,
    /// Counters of earlier incarnations (a task restarted after a failed commit starts its
    /// core's counters at zero).
    pub(crate) base: TaskMetrics,
    pub(crate) restore: RestoreProgress,
    pub(crate) lag: Option<i64>,
    /// The thread's id of each topic the task's outputs name (by the task's topic id;
    /// `None` until the topic's partition count is known).
    pub(crate) out_topics: Vec<Option<usize>>,
}

impl RuntimeTask {
    /// Counters over every incarnation.
    pub(crate) fn metrics(&self) -> TaskMetrics {
        let m = self.task.metrics();
        TaskMetrics {
            records_in: self.base.records_in + m.records_in,
            records_out: self.base.records_out + m.records_out,
            dropped_records: self.base.dropped_records + m.dropped_records,
            late_records: self.base.late_records + m.late_records,
            dead_lettered: self.base.dead_lettered + m.dead_lettered,
        }
    }

    /// The offsets (with the stream times as metadata) to commit for this task: every input
    /// a record was taken from, and every input committed before (re-committed with the
    /// current stream times, so all of a task's offsets carry the same metadata).
    pub(crate) fn offsets_to_commit(&self) -> Result<Vec<(String, u32, OffsetAndMetadata)>> {
        let consumed: BTreeMap<String, i64> = self.task.consumed_offsets().into_iter().collect();
        let metadata = encode_stream_times(&self.task.stream_times())?;
        Ok(self
            .inputs
            .iter()
            .filter_map(|i| {
                consumed
                    .get(&i.topic)
                    .copied()
                    .or(i.committed)
                    .map(|offset| {
                        (
                            i.topic.clone(),
                            self.id.partition,
                            OffsetAndMetadata {
                                offset,
                                metadata: metadata.clone(),
                            },
                        )
                    })
            })
            .collect())
    }
}

/// [`StreamTimes`] as committed in `OffsetAndMetadata.metadata` (JSON).
#[derive(Debug, Default, Serialize, Deserialize)]
struct StreamTimesJson {
    /// The task's stream time.
    task: i64,
    /// Observed stream time of each stateful operator, by node name (and operators'
    /// processor metadata, under keys no node name can take).
    #[serde(default)]
    nodes: BTreeMap<String, i64>,
}

pub(crate) fn encode_stream_times(t: &StreamTimes) -> Result<String> {
    serde_json::to_string(&StreamTimesJson {
        task: t.task,
        nodes: t.nodes.clone(),
    })
    .map_err(|e| Error::Serde {
        store: "(offset metadata)".into(),
        reason: e.to_string(),
    })
}

/// Decodes committed metadata; `None` for empty or foreign metadata.
pub(crate) fn decode_stream_times(s: &str) -> Option<StreamTimes> {
    if s.is_empty() {
        return None;
    }
    match serde_json::from_str::<StreamTimesJson>(s) {
        Ok(j) => Some(StreamTimes {
            task: j.task,
            nodes: j.nodes,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring offset metadata that is not freshet stream times");
            None
        }
    }
}

/// The element-wise maximum (stream times and the processor metadata kept with them never
/// go back, so the newest commit of any of a task's inputs wins).
pub(crate) fn merge_stream_times(into: &mut StreamTimes, other: StreamTimes) {
    into.task = into.task.max(other.task);
    for (k, v) in other.nodes {
        let e = into.nodes.entry(k).or_insert(v);
        *e = (*e).max(v);
    }
}

/// Where a task resumes on `topic`: its committed offset, with the stream times committed
/// with it; without one — or when it is out of the partition's range (a purged or recreated
/// topic) — where `reset` says: the partition's start, or its last stable offset (the end
/// a read_committed reader sees).
pub(crate) async fn committed_input<B: Broker>(
    broker: &B,
    group: &str,
    topic: &str,
    partition: u32,
    reset: OffsetReset,
) -> Result<(Input, Option<StreamTimes>)> {
    let committed = broker.committed_offset(group, topic, partition).await?;
    let o = broker.offsets(topic, partition).await?;
    let reset_to = match reset {
        OffsetReset::Earliest => o.start,
        OffsetReset::Latest => o.last_stable,
    };
    let (position, times, committed_offset) = match committed {
        Some(c) if c.offset >= o.start && c.offset <= o.end => {
            (c.offset, decode_stream_times(&c.metadata), Some(c.offset))
        }
        Some(c) => {
            tracing::warn!(
                topic,
                partition,
                committed = c.offset,
                start = o.start,
                end = o.end,
                reset = ?reset,
                "committed offset out of range; resetting"
            );
            (reset_to, None, None)
        }
        None => (reset_to, None, None),
    };
    Ok((
        Input {
            topic: topic.to_string(),
            internal: false,
            position,
            committed: committed_offset,
            last_stable: o.last_stable,
            bound: None,
        },
        times,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_has_more_below_its_bound_or_the_last_stable_offset_seen() {
        let input = |position, last_stable, bound| Input {
            topic: "t".into(),
            internal: false,
            position,
            committed: None,
            last_stable,
            bound,
        };
        // Caught up with what the log showed: nothing more known.
        assert!(!input(10, 10, None).has_more(false));
        assert!(!input(10, 10, None).has_more(true));
        // A fetch stopped by its budget short of the stable offset.
        assert!(input(10, 25, None).has_more(false));
        // Bounded: the bound decides, whatever the log holds past it.
        assert!(input(10, 10, Some(20)).has_more(true));
        assert!(!input(20, 25, Some(20)).has_more(true));
        // Unbounded runs ignore the bound.
        assert!(input(20, 25, Some(20)).has_more(false));
        assert!(!input(10, 10, Some(20)).has_more(false));
    }

    #[test]
    fn stream_times_round_trip_through_offset_metadata() {
        let mut t = StreamTimes {
            task: 42,
            ..StreamTimes::default()
        };
        t.nodes.insert("KSTREAM-AGGREGATE-0000000002".into(), 40);
        let s = encode_stream_times(&t).unwrap();
        assert_eq!(decode_stream_times(&s), Some(t.clone()));
        assert_eq!(decode_stream_times(""), None);
        assert_eq!(decode_stream_times("not json"), None);
        let mut older = StreamTimes {
            task: 7,
            ..StreamTimes::default()
        };
        older
            .nodes
            .insert("KSTREAM-AGGREGATE-0000000002".into(), 50);
        merge_stream_times(&mut t, older);
        assert_eq!(t.task, 42);
        assert_eq!(t.nodes["KSTREAM-AGGREGATE-0000000002"], 50);
    }
}
