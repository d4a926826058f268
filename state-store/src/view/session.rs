//! The read-only view of a session store.

use std::sync::Arc;

use super::segmented::Segments;
use crate::backend::Backend;
use crate::error::Result;
use crate::layers::Timestamped;
use crate::session::{exact_query, find_query, find_range_query, to_windowed, SessionStoreOptions};
use crate::window::WindowedIter;

/// A read-only view of a session store's committed, applied state, for interactive queries
/// (Kafka's `ReadOnlySessionStore`; see the [`ReadOnlyKeyValueView`](crate::ReadOnlyKeyValueView) on what a view shows).
///
/// Finds return what the store's own finds would return from its applied state, in the same
/// order — segment by segment (session end), then key bytes, end, start — and hide the
/// sessions the store's committed stream time has expired. Iterators are `'static`: they
/// hold no lock and read each segment in chunks.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use freshet_state_store::{
///     MemoryBackend, SegmentedSessionStore, SessionStore, SessionStoreOptions, StateStore,
///     Timestamped, Window,
/// };
/// # #[derive(Debug)] struct Sink;
/// # impl freshet_state_store::ChangelogSink for Sink {
/// #     fn append(&mut self, _: &freshet_state_store::ChangelogPartition, _: Vec<freshet_state_store::ChangelogRecord>)
/// #         -> Result<i64, freshet_state_store::ChangelogError> { Ok(0) }
/// # }
/// let mut store = SegmentedSessionStore::open(
///     "clicks", Arc::new(MemoryBackend::new()), None, SessionStoreOptions::new(3_600_000))?;
/// let view = store.read_only_view();
/// let v = Timestamped { value: Bytes::from("2"), timestamp: 5_000 };
/// store.put(b"ann", Window { start: 1_000, end: 5_000 }, Some(v))?;
/// assert_eq!(view.fetch(b"ann")?.count(), 0, "not applied yet");
/// store.send_changelog(&mut Sink)?;
/// store.committed();
/// store.apply()?;
/// let found: Vec<_> = view.find_sessions(b"ann", 4_000, 6_000)?.collect::<Result<_, _>>()?;
/// assert_eq!(found[0].0.window, Window { start: 1_000, end: 5_000 });
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReadOnlySessionView {
    segments: Segments,
}

impl ReadOnlySessionView {
    /// A view of the session store `store` in `backend`, opened with `options` (the view
    /// needs the store's retention and segment interval to find and expire its sessions).
    /// `SegmentedSessionStore::read_only_view` makes one from the store.
    ///
    /// A store that has never applied anything reads as empty; the view creates nothing.
    ///
    /// # Errors
    /// `InvalidArgument` for options no session store accepts.
    pub fn open(
        backend: Arc<dyn Backend>,
        store: &str,
        options: SessionStoreOptions,
    ) -> Result<ReadOnlySessionView> {
        Ok(ReadOnlySessionView {
            segments: Segments::new(
                backend,
                store,
                options.retention_ms,
                options.segment_interval_ms,
            )?,
        })
    }

    /// The view of a store that is open with `options` (already checked).
    pub(crate) fn of(
        backend: Arc<dyn Backend>,
        store: &str,
        options: SessionStoreOptions,
    ) -> ReadOnlySessionView {
        ReadOnlySessionView {
            segments: Segments::of_open_store(
                backend,
                store,
                options.retention_ms,
                options.segment_interval_ms,
            ),
        }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.segments.store
    }

    /// The store's committed stream time: the largest session end applied (-1 before any).
    pub fn observed_stream_time(&self) -> Result<i64> {
        self.segments.stream_time()
    }

    /// The changelog offset the view's data reaches (`None` before the store's first apply,
    /// and always for a store without a changelog).
    pub fn applied_offset(&self) -> Result<Option<i64>> {
        self.segments.applied_offset()
    }

    /// The committed aggregate of `key` in exactly the session `[start, end]`.
    pub fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Timestamped>> {
        let query = exact_query(key, start, end, self.segments.min_live()?);
        let mut it = self.segments.scan(query, false)?;
        it.next().transpose().map(|o| o.map(|(_, v)| v))
    }

    fn find(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'static>> {
        let query = find_query(
            key,
            earliest_session_end,
            latest_session_start,
            self.segments.min_live()?,
        );
        Ok(Box::new(
            self.segments.scan(query, reverse)?.map(to_windowed),
        ))
    }

    /// Committed sessions of `key` with `end >= earliest_session_end` and
    /// `start <= latest_session_start`, in the store's order.
    pub fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<WindowedIter<'static>> {
        self.find(key, earliest_session_end, latest_session_start, false)
    }

    /// [`find_sessions`](Self::find_sessions) in exactly the reverse order.
    pub fn backward_find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<WindowedIter<'static>> {
        self.find(key, earliest_session_end, latest_session_start, true)
    }

    fn find_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        earliest_session_end: i64,
        latest_session_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'static>> {
        let query = find_range_query(
            self.name(),
            key_from,
            key_to,
            earliest_session_end,
            latest_session_start,
            self.segments.min_live()?,
        );
        Ok(Box::new(
            self.segments.scan(query, reverse)?.map(to_windowed),
        ))
    }

    /// Committed sessions of keys in `[key_from, key_to]` (`None`: unbounded) with
    /// `end >= earliest_session_end` and `start <= latest_session_start`, in the store's
    /// order. Empty when `key_from > key_to`.
    pub fn find_sessions_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<WindowedIter<'static>> {
        self.find_range(
            key_from,
            key_to,
            earliest_session_end,
            latest_session_start,
            false,
        )
    }

    /// [`find_sessions_range`](Self::find_sessions_range) in exactly the reverse order.
    pub fn backward_find_sessions_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<WindowedIter<'static>> {
        self.find_range(
            key_from,
            key_to,
            earliest_session_end,
            latest_session_start,
            true,
        )
    }

    /// Every committed live session of `key`.
    pub fn fetch(&self, key: &[u8]) -> Result<WindowedIter<'static>> {
        self.find(key, 0, i64::MAX, false)
    }

    /// [`fetch`](Self::fetch) in reverse.
    pub fn backward_fetch(&self, key: &[u8]) -> Result<WindowedIter<'static>> {
        self.find(key, 0, i64::MAX, true)
    }

    /// Every committed live session of keys in `[key_from, key_to]` (`None`: unbounded).
    pub fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
    ) -> Result<WindowedIter<'static>> {
        self.find_range(key_from, key_to, 0, i64::MAX, false)
    }

    /// [`fetch_range`](Self::fetch_range) in reverse.
    pub fn backward_fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
    ) -> Result<WindowedIter<'static>> {
        self.find_range(key_from, key_to, 0, i64::MAX, true)
    }
}
