//! A changelog over the real log (freshet-log), as the runtime will build it: the sink
//! appends through a [`TransactionalProducer`] whose transactions the test drives
//! (exactly-once), or with plain [`Log::append`] (at-least-once); the reader restores
//! read_committed, up to the last stable offset.
//!
//! Include it with `#[path = "common/log_changelog.rs"] mod log_changelog;`.
#![allow(dead_code)]

use freshet_log::{Acks, FetchOptions, Isolation, Log, Record, TopicConfig, TransactionalProducer};
use freshet_state_store::{
    ChangelogBatch, ChangelogError, ChangelogPartition, ChangelogReader, ChangelogRecord,
    ChangelogSink,
};

/// How the sink writes.
#[derive(Debug)]
enum Mode {
    /// Inside the transactions of one transactional producer.
    ExactlyOnce(TransactionalProducer),
    /// Plain appends, visible at once.
    AtLeastOnce(Acks),
}

/// A store's changelog on the real log: sink and reader in one.
#[derive(Debug)]
pub(crate) struct LogChangelog {
    log: Log,
    mode: Mode,
    fetch: FetchOptions,
}

/// Creates a compacted changelog topic with one partition (as Kafka creates KV changelogs),
/// unless it exists; returns its id.
pub(crate) fn create_changelog_topic(log: &Log, topic: &str) -> Result<String, ChangelogError> {
    if !log.topic_exists(topic) {
        let config = TopicConfig::partitions(1).with("cleanup.policy", "compact")?;
        log.create_topic(topic, config)?;
    }
    Ok(log.describe_topic(topic)?.id.to_string())
}

impl LogChangelog {
    /// A sink writing inside transactions of `transactional_id` (begun and committed by the
    /// test through [`LogChangelog::begin`] and [`LogChangelog::commit`]).
    pub(crate) fn exactly_once(
        log: &Log,
        transactional_id: &str,
    ) -> Result<LogChangelog, ChangelogError> {
        let producer = log.transactional_producer(transactional_id, Acks::Written)?;
        Ok(LogChangelog::with_mode(log, Mode::ExactlyOnce(producer)))
    }

    /// A sink appending outside transactions.
    pub(crate) fn at_least_once(log: &Log) -> LogChangelog {
        LogChangelog::with_mode(log, Mode::AtLeastOnce(Acks::Written))
    }

    /// A reader only (its sink appends at-least-once).
    pub(crate) fn reader(log: &Log) -> LogChangelog {
        LogChangelog::at_least_once(log)
    }

    fn with_mode(log: &Log, mode: Mode) -> LogChangelog {
        LogChangelog {
            log: log.clone(),
            mode,
            fetch: FetchOptions {
                isolation: Isolation::ReadCommitted,
                max_bytes: 64 << 20,
                max_partition_bytes: 16 << 20,
                ..FetchOptions::default()
            },
        }
    }

    /// The log underneath.
    pub(crate) fn log(&self) -> &Log {
        &self.log
    }

    fn producer(&mut self) -> Result<&mut TransactionalProducer, ChangelogError> {
        match &mut self.mode {
            Mode::ExactlyOnce(p) => Ok(p),
            Mode::AtLeastOnce(_) => Err("an at-least-once changelog has no transactions".into()),
        }
    }

    /// Starts a transaction (exactly-once only).
    pub(crate) fn begin(&mut self) -> Result<(), ChangelogError> {
        self.producer()?.begin()?;
        Ok(())
    }

    /// Commits the open transaction (exactly-once only).
    pub(crate) fn commit(&mut self) -> Result<(), ChangelogError> {
        self.producer()?.commit()?;
        Ok(())
    }

    /// Aborts the open transaction (exactly-once only).
    pub(crate) fn abort(&mut self) -> Result<(), ChangelogError> {
        self.producer()?.abort()?;
        Ok(())
    }
}

impl ChangelogSink for LogChangelog {
    fn append(
        &mut self,
        changelog: &ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> Result<i64, ChangelogError> {
        let records: Vec<Record> = records
            .into_iter()
            .map(|r| Record {
                key: Some(r.key),
                value: r.value,
                timestamp: Some(r.timestamp),
                headers: Vec::new(),
            })
            .collect();
        let at = match &mut self.mode {
            Mode::ExactlyOnce(p) => p.append(&changelog.topic, changelog.partition, &records)?,
            Mode::AtLeastOnce(acks) => {
                self.log
                    .append(&changelog.topic, changelog.partition, &records, *acks)?
            }
        };
        Ok(at.last_offset)
    }
}

impl ChangelogReader for LogChangelog {
    fn topic_id(&mut self, topic: &str) -> Result<Option<String>, ChangelogError> {
        if !self.log.topic_exists(topic) {
            return Ok(None);
        }
        Ok(Some(self.log.describe_topic(topic)?.id.to_string()))
    }

    fn bounds(&mut self, changelog: &ChangelogPartition) -> Result<(i64, i64), ChangelogError> {
        let o = self.log.offsets(&changelog.topic, changelog.partition)?;
        Ok((o.start, o.last_stable))
    }

    fn read(
        &mut self,
        changelog: &ChangelogPartition,
        from: i64,
        max_records: usize,
    ) -> Result<ChangelogBatch, ChangelogError> {
        let options = FetchOptions {
            max_records: max_records.max(1),
            ..self.fetch.clone()
        };
        let position = (changelog.topic.clone(), changelog.partition, from);
        let fetched = self.log.try_fetch(&[position], &options)?;
        let Some(f) = fetched.into_iter().next() else {
            // Nothing committed past `from`.
            return Ok(ChangelogBatch {
                records: Vec::new(),
                next_offset: from,
            });
        };
        let mut records = Vec::with_capacity(f.records.len());
        for r in f.records {
            let key = r.key.ok_or_else(|| {
                format!(
                    "{}-{} offset {}: changelog record without a key",
                    changelog.topic, changelog.partition, r.offset
                )
            })?;
            records.push((
                r.offset,
                ChangelogRecord {
                    key,
                    value: r.value,
                    timestamp: r.timestamp,
                },
            ));
        }
        Ok(ChangelogBatch {
            records,
            next_offset: f.next_offset,
        })
    }
}

/// Every committed record of a changelog partition, read_committed from the start to the
/// last stable offset.
pub(crate) fn read_committed(
    log: &Log,
    changelog: &ChangelogPartition,
) -> Result<Vec<(i64, ChangelogRecord)>, ChangelogError> {
    read_committed_from(
        log,
        changelog,
        log.offsets(&changelog.topic, changelog.partition)?.start,
    )
}

/// The committed records of a changelog partition from `from` to the last stable offset.
pub(crate) fn read_committed_from(
    log: &Log,
    changelog: &ChangelogPartition,
    from: i64,
) -> Result<Vec<(i64, ChangelogRecord)>, ChangelogError> {
    let mut reader = LogChangelog::reader(log);
    let stable = log
        .offsets(&changelog.topic, changelog.partition)?
        .last_stable;
    let mut out = Vec::new();
    let mut pos = from;
    while pos < stable {
        let batch = reader.read(changelog, pos, 50_000)?;
        if batch.next_offset <= pos {
            break;
        }
        out.extend(batch.records.into_iter().filter(|(o, _)| *o < stable));
        pos = batch.next_offset;
    }
    Ok(out)
}
