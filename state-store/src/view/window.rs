//! The read-only view of a window store.

use std::sync::Arc;

use super::segmented::Segments;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::layers::Timestamped;
use crate::window::{
    key_query, range_query, to_start, to_windowed, WindowStoreOptions, WindowValueIter,
    WindowedIter,
};

/// A read-only view of a window store's committed, applied state, for interactive queries
/// (Kafka's `ReadOnlyWindowStore`; see the [`ReadOnlyKeyValueView`](crate::ReadOnlyKeyValueView) on what a view shows).
///
/// Fetches return what the store's own fetches would return from its applied state, in the
/// same order — segment by segment, then key bytes, then window start — and hide the windows
/// the store's committed stream time has expired. Iterators are `'static`: they hold no lock
/// and read each segment in chunks.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use freshet_state_store::{
///     MemoryBackend, SegmentedWindowStore, StateStore, Timestamped, WindowStore,
///     WindowStoreOptions,
/// };
/// # #[derive(Debug)] struct Sink;
/// # impl freshet_state_store::ChangelogSink for Sink {
/// #     fn append(&mut self, _: &freshet_state_store::ChangelogPartition, _: Vec<freshet_state_store::ChangelogRecord>)
/// #         -> Result<i64, freshet_state_store::ChangelogError> { Ok(0) }
/// # }
/// let options = WindowStoreOptions::new(3_600_000, 60_000);
/// let mut store = SegmentedWindowStore::open("counts", Arc::new(MemoryBackend::new()), None, options)?;
/// let view = store.read_only_view();
/// store.put(b"ann", Some(Timestamped { value: Bytes::from("1"), timestamp: 5 }), 0)?;
/// assert_eq!(view.fetch(b"ann", 0, 60_000)?.count(), 0, "not applied yet");
/// store.send_changelog(&mut Sink)?;
/// store.committed();
/// store.apply()?;
/// let starts: Vec<i64> = view.fetch(b"ann", 0, 60_000)?.map(|r| r.map(|(t, _)| t)).collect::<Result<_, _>>()?;
/// assert_eq!(starts, vec![0]);
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReadOnlyWindowView {
    segments: Segments,
    window_size: i64,
}

impl ReadOnlyWindowView {
    /// A view of the window store `store` in `backend`, opened with `options` (the view
    /// needs the store's retention, window size and segment interval to find, expire and
    /// shape its windows). `SegmentedWindowStore::read_only_view` makes one from the store.
    ///
    /// A store that has never applied anything reads as empty; the view creates nothing.
    ///
    /// # Errors
    /// `InvalidArgument` for options no window store accepts.
    pub fn open(
        backend: Arc<dyn Backend>,
        store: &str,
        options: WindowStoreOptions,
    ) -> Result<ReadOnlyWindowView> {
        if options.window_size_ms < 0 || options.retention_ms < options.window_size_ms {
            return Err(Error::InvalidArgument {
                store: store.to_string(),
                reason: format!(
                    "the retention ({} ms) must be at least the window size ({} ms), which must not be negative",
                    options.retention_ms, options.window_size_ms
                ),
            });
        }
        Ok(ReadOnlyWindowView {
            segments: Segments::new(
                backend,
                store,
                options.retention_ms,
                options.segment_interval_ms,
            )?,
            window_size: options.window_size_ms,
        })
    }

    /// The view of a store that is open with `options` (already checked).
    pub(crate) fn of(
        backend: Arc<dyn Backend>,
        store: &str,
        options: WindowStoreOptions,
    ) -> ReadOnlyWindowView {
        ReadOnlyWindowView {
            segments: Segments::of_open_store(
                backend,
                store,
                options.retention_ms,
                options.segment_interval_ms,
            ),
            window_size: options.window_size_ms,
        }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.segments.store
    }

    /// The store's committed stream time: the largest window start applied (-1 before any).
    pub fn observed_stream_time(&self) -> Result<i64> {
        self.segments.stream_time()
    }

    /// The changelog offset the view's data reaches (`None` before the store's first apply,
    /// and always for a store without a changelog).
    pub fn applied_offset(&self) -> Result<Option<i64>> {
        self.segments.applied_offset()
    }

    /// The committed value of `key` in the window starting at `window_start` (Kafka's
    /// `fetch(key, time)`; with duplicates, the first put of them).
    pub fn fetch_one(&self, key: &[u8], window_start: i64) -> Result<Option<Timestamped>> {
        let mut it = self.fetch(key, window_start, window_start)?;
        it.next().transpose().map(|o| o.map(|(_, v)| v))
    }

    fn values(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowValueIter<'static>> {
        let query = key_query(key, time_from, time_to, self.segments.min_live()?);
        Ok(Box::new(self.segments.scan(query, reverse)?.map(to_start)))
    }

    /// Committed values of `key` in windows starting in `[time_from, time_to]`, by ascending
    /// start.
    pub fn fetch(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowValueIter<'static>> {
        self.values(key, time_from, time_to, false)
    }

    /// [`fetch`](Self::fetch) by descending start.
    pub fn backward_fetch(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowValueIter<'static>> {
        self.values(key, time_from, time_to, true)
    }

    fn windows(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'static>> {
        let query = range_query(
            self.name(),
            key_from,
            key_to,
            time_from,
            time_to,
            self.segments.min_live()?,
        );
        let size = self.window_size;
        Ok(Box::new(
            self.segments
                .scan(query, reverse)?
                .map(move |item| to_windowed(size, item)),
        ))
    }

    /// Committed windows of keys in `[key_from, key_to]` (`None`: unbounded) starting in
    /// `[time_from, time_to]`, in the store's order. Empty when `key_from > key_to`.
    pub fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowedIter<'static>> {
        self.windows(key_from, key_to, time_from, time_to, false)
    }

    /// [`fetch_range`](Self::fetch_range) in exactly the reverse order.
    pub fn backward_fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowedIter<'static>> {
        self.windows(key_from, key_to, time_from, time_to, true)
    }

    /// Every committed window starting in `[time_from, time_to]`.
    pub fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowedIter<'static>> {
        self.windows(None, None, time_from, time_to, false)
    }

    /// [`fetch_all`](Self::fetch_all) in exactly the reverse order.
    pub fn backward_fetch_all(
        &self,
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowedIter<'static>> {
        self.windows(None, None, time_from, time_to, true)
    }

    /// Every committed live window.
    pub fn all(&self) -> Result<WindowedIter<'static>> {
        self.windows(None, None, 0, i64::MAX, false)
    }

    /// [`all`](Self::all) in exactly the reverse order.
    pub fn backward_all(&self) -> Result<WindowedIter<'static>> {
        self.windows(None, None, 0, i64::MAX, true)
    }
}
