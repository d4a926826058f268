//! What the window and session views share: finding a segmented store's committed segment
//! trees and stream time in the backend, and scanning the segments a query covers.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use super::{tree_of, Chunks};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::layers::{meta_key, Timestamped, META_TREE};
use crate::segment::{
    decode_stream_time, min_live, parse_segment, read_i64, segment_id, tree_name, KeyFilter, Query,
    META_STREAM_TIME,
};

/// A segmented store as a view sees it: its name, backend, retention and segment interval.
#[derive(Clone)]
pub(super) struct Segments {
    pub(super) store: String,
    backend: Arc<dyn Backend>,
    retention: i64,
    interval: i64,
}

impl std::fmt::Debug for Segments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segments")
            .field("store", &self.store)
            .field("retention", &self.retention)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Segments {
    /// The segments of `store`; `InvalidArgument` for options no store could have been
    /// opened with (a segment interval below 1 ms would divide by zero).
    pub(super) fn new(
        backend: Arc<dyn Backend>,
        store: &str,
        retention: i64,
        interval: i64,
    ) -> Result<Segments> {
        if retention < 0 || interval < 1 {
            return Err(Error::InvalidArgument {
                store: store.to_string(),
                reason: format!(
                    "a view needs the store's retention (>= 0, got {retention} ms) and segment interval (>= 1, got {interval} ms)"
                ),
            });
        }
        Ok(Segments::of_open_store(backend, store, retention, interval))
    }

    /// The segments of a store that is open, whose options were checked when it opened.
    pub(super) fn of_open_store(
        backend: Arc<dyn Backend>,
        store: &str,
        retention: i64,
        interval: i64,
    ) -> Segments {
        Segments {
            store: store.to_string(),
            backend,
            retention,
            interval,
        }
    }

    /// Errors of the meta tree, which every store shares, name this store instead.
    fn named(&self, e: Error) -> Error {
        match e {
            Error::Sled { store, source } if store == META_TREE => Error::Sled {
                store: self.store.clone(),
                source,
            },
            e => e,
        }
    }

    fn meta(&self, what: &str) -> Result<Option<Bytes>> {
        let read = || -> Result<Option<Bytes>> {
            match tree_of(&*self.backend, META_TREE)? {
                Some(meta) => meta.get(&meta_key(&self.store, what)),
                None => Ok(None),
            }
        };
        read().map_err(|e| self.named(e))
    }

    /// The store's committed stream time (-1 before any): what its last apply, or the last
    /// batch of a restore, persisted.
    pub(super) fn stream_time(&self) -> Result<i64> {
        decode_stream_time(&self.store, self.meta(META_STREAM_TIME)?)
    }

    /// The oldest segment time not yet expired at the committed stream time.
    pub(super) fn min_live(&self) -> Result<i64> {
        Ok(min_live(self.stream_time()?, self.retention))
    }

    /// The changelog offset the store's applied data reaches (`None` before its first
    /// apply, and always without a changelog).
    pub(super) fn applied_offset(&self) -> Result<Option<i64>> {
        match self.meta("applied")? {
            Some(b) if b.len() == 8 => Ok(Some(read_i64(&b))),
            None => Ok(None),
            Some(_) => Err(Error::Corrupt {
                store: self.store.clone(),
                reason: "applied offset is not 8 bytes".into(),
            }),
        }
    }

    /// The entries `query` matches in the committed segments (none for `None`): segment by
    /// segment, in key order inside each, all reversed when `reverse` — the store's order.
    /// Which segments exist is read now; each is read in chunks as the iterator goes.
    pub(super) fn scan(&self, query: Option<Query>, reverse: bool) -> Result<SegmentChunks> {
        let Some(query) = query else {
            return Ok(SegmentChunks::empty(self));
        };
        let mut ids = Vec::new();
        if query.time_from <= query.time_to {
            let first = segment_id(query.time_from, self.interval);
            let last = segment_id(query.time_to, self.interval);
            for name in self.backend.tree_names()? {
                if let Some(id) = parse_segment(&self.store, &name) {
                    if (first..=last).contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        ids.sort_unstable();
        if reverse {
            ids.reverse();
        }
        Ok(SegmentChunks {
            store: self.store.clone(),
            backend: self.backend.clone(),
            ids: ids.into_iter(),
            current: None,
            bounds: (to_bytes(query.lower), to_bytes(query.upper)),
            reverse,
            keep: query.keep,
        })
    }
}

fn to_bytes(b: Bound<Vec<u8>>) -> Bound<Bytes> {
    match b {
        Bound::Included(k) => Bound::Included(Bytes::from(k)),
        Bound::Excluded(k) => Bound::Excluded(Bytes::from(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The committed entries of several segments, one segment tree after the other, each read
/// in chunks (see `Chunks`); it holds no lock and borrows nothing.
pub(super) struct SegmentChunks {
    store: String,
    backend: Arc<dyn Backend>,
    ids: std::vec::IntoIter<i64>,
    current: Option<Chunks>,
    bounds: (Bound<Bytes>, Bound<Bytes>),
    reverse: bool,
    keep: KeyFilter,
}

impl SegmentChunks {
    fn empty(segments: &Segments) -> SegmentChunks {
        SegmentChunks {
            store: segments.store.clone(),
            backend: segments.backend.clone(),
            ids: Vec::new().into_iter(),
            current: None,
            bounds: (Bound::Unbounded, Bound::Unbounded),
            reverse: false,
            keep: Box::new(|_| false),
        }
    }
}

impl Iterator for SegmentChunks {
    type Item = Result<(Bytes, Timestamped)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(chunks) = &mut self.current {
                match chunks.next() {
                    Some(Ok((k, v))) => {
                        if (self.keep)(&k) {
                            return Some(Ok((k, v)));
                        }
                        continue;
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.current = None,
                }
            }
            let id = self.ids.next()?;
            self.current = Some(Chunks::new(
                &self.store,
                tree_name(&self.store, id),
                self.backend.clone(),
                self.bounds.clone(),
                self.reverse,
            ));
        }
    }
}
