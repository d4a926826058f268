//! Changelogs for tests: an in-memory one whose records are committed when appended unless a
//! transaction is open, in which case they become visible at `commit` (and vanish at
//! `abort`), like the log under exactly-once.
#![allow(dead_code)]

use std::collections::HashMap;

use freshet_state_store::{
    ChangelogBatch, ChangelogError, ChangelogPartition, ChangelogReader, ChangelogRecord,
    ChangelogSink, StateStore,
};

/// A changelog sink that only counts offsets (stores whose tests do not read the changelog
/// back).
#[derive(Debug, Default)]
pub(crate) struct CountingSink(i64);

impl ChangelogSink for CountingSink {
    fn append(
        &mut self,
        _: &ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> Result<i64, ChangelogError> {
        self.0 += records.len() as i64;
        Ok(self.0 - 1)
    }
}

/// A whole commit of `store` into a [`CountingSink`]: send, committed, apply.
pub(crate) fn commit<S: StateStore>(store: &mut S) -> Result<(), Box<dyn std::error::Error>> {
    store.send_changelog(&mut CountingSink::default())?;
    store.committed();
    store.apply()?;
    Ok(())
}

/// One changelog partition: offsets are indexes; `None` entries are aborted records.
#[derive(Debug, Default, Clone)]
pub(crate) struct MemChangelog {
    pub(crate) topic_id: String,
    pub(crate) partitions: HashMap<(String, u32), Vec<Option<ChangelogRecord>>>,
    /// Offsets appended in the open transaction, by partition.
    pub(crate) open: Option<Vec<((String, u32), i64)>>,
}

impl MemChangelog {
    pub(crate) fn new() -> MemChangelog {
        MemChangelog {
            topic_id: "id-1".into(),
            ..MemChangelog::default()
        }
    }
    pub(crate) fn begin(&mut self) {
        self.open = Some(Vec::new());
    }
    pub(crate) fn commit(&mut self) {
        self.open = None;
    }
    pub(crate) fn abort(&mut self) {
        if let Some(open) = self.open.take() {
            for (tp, o) in open {
                if let Some(v) = self.partitions.get_mut(&tp) {
                    v[o as usize] = None;
                }
            }
        }
    }
    fn last_stable(&self, tp: &(String, u32)) -> i64 {
        let end = self.partitions.get(tp).map_or(0, |v| v.len() as i64);
        match &self.open {
            Some(open) => open
                .iter()
                .filter(|(p, _)| p == tp)
                .map(|(_, o)| *o)
                .min()
                .unwrap_or(end),
            None => end,
        }
    }
}

impl ChangelogSink for MemChangelog {
    fn append(
        &mut self,
        cl: &ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> Result<i64, ChangelogError> {
        let tp = (cl.topic.clone(), cl.partition);
        let v = self.partitions.entry(tp.clone()).or_default();
        for r in records {
            let offset = v.len() as i64;
            v.push(Some(r));
            if let Some(open) = &mut self.open {
                open.push((tp.clone(), offset));
            }
        }
        Ok(v.len() as i64 - 1)
    }
}

impl ChangelogReader for MemChangelog {
    fn topic_id(&mut self, _topic: &str) -> Result<Option<String>, ChangelogError> {
        Ok(Some(self.topic_id.clone()))
    }
    fn bounds(&mut self, cl: &ChangelogPartition) -> Result<(i64, i64), ChangelogError> {
        Ok((0, self.last_stable(&(cl.topic.clone(), cl.partition))))
    }
    fn read(
        &mut self,
        cl: &ChangelogPartition,
        from: i64,
        max_records: usize,
    ) -> Result<ChangelogBatch, ChangelogError> {
        let tp = (cl.topic.clone(), cl.partition);
        let stable = self.last_stable(&tp);
        let v = self.partitions.get(&tp).cloned().unwrap_or_default();
        let mut records = Vec::new();
        let mut next = from;
        while next < stable && records.len() < max_records {
            if let Some(r) = &v[next as usize] {
                records.push((next, r.clone()));
            }
            next += 1;
        }
        Ok(ChangelogBatch {
            records,
            next_offset: next,
        })
    }
}
