//! An in-memory changelog partition for `freshet-bench store`: the sink the commit cycle
//! sends to, and the reader restore replays from. Every record is committed as soon as it is
//! appended (no transactions: the benchmark measures the store, not the log).

use freshet_state_store::{
    ChangelogBatch, ChangelogError, ChangelogPartition, ChangelogReader, ChangelogRecord,
    ChangelogSink,
};

/// One changelog partition held in a `Vec`; a record's offset is its index.
#[derive(Debug)]
pub(crate) struct MemChangelog {
    partition: ChangelogPartition,
    records: Vec<ChangelogRecord>,
}

impl MemChangelog {
    /// An empty changelog for `partition` (the only one it accepts).
    pub(crate) fn new(partition: ChangelogPartition) -> MemChangelog {
        MemChangelog {
            partition,
            records: Vec::new(),
        }
    }

    /// A changelog already holding `records`, at offsets `0..records.len()`.
    pub(crate) fn with_records(
        partition: ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> MemChangelog {
        MemChangelog { partition, records }
    }

    /// Records appended so far.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// The records, offset order.
    pub(crate) fn records(&self) -> &[ChangelogRecord] {
        &self.records
    }

    fn check(&self, changelog: &ChangelogPartition) -> Result<(), ChangelogError> {
        if *changelog == self.partition {
            Ok(())
        } else {
            Err(format!(
                "unknown changelog {}-{} (this one is {}-{})",
                changelog.topic,
                changelog.partition,
                self.partition.topic,
                self.partition.partition
            )
            .into())
        }
    }
}

impl ChangelogSink for MemChangelog {
    fn append(
        &mut self,
        changelog: &ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> Result<i64, ChangelogError> {
        self.check(changelog)?;
        self.records.extend(records);
        Ok(self.records.len() as i64 - 1)
    }
}

impl ChangelogReader for MemChangelog {
    fn topic_id(&mut self, _topic: &str) -> Result<Option<String>, ChangelogError> {
        Ok(Some("bench-changelog".into()))
    }

    fn bounds(&mut self, changelog: &ChangelogPartition) -> Result<(i64, i64), ChangelogError> {
        self.check(changelog)?;
        Ok((0, self.records.len() as i64))
    }

    /// Clones the records (their `Bytes` share the changelog's buffers), as a reader that
    /// hands out owned batches must.
    fn read(
        &mut self,
        changelog: &ChangelogPartition,
        from: i64,
        max_records: usize,
    ) -> Result<ChangelogBatch, ChangelogError> {
        self.check(changelog)?;
        let start = usize::try_from(from)
            .map_err(|_| format!("offset {from} out of range"))?
            .min(self.records.len());
        let end = start.saturating_add(max_records).min(self.records.len());
        let records = self.records[start..end]
            .iter()
            .enumerate()
            .map(|(i, r)| ((start + i) as i64, r.clone()))
            .collect();
        Ok(ChangelogBatch {
            records,
            next_offset: end as i64,
        })
    }
}
