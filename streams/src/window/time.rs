//! Tumbling and hopping windows.

use super::{duration_ms, Window};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// Fixed-size windows aligned to the epoch, for `windowed_by` on a grouped stream: tumbling
/// when the advance equals the size, hopping (overlapping) when it is smaller.
///
/// Window `n` is `[n * advance, n * advance + size)`, so with size 5000 and advance 3000 the
/// windows are `[0, 5000)`, `[3000, 8000)`, … — never shifted to the first record. A record
/// is admitted to a window while `window.end > stream_time - grace`.
///
/// # Examples
///
/// ```
/// use freshet_streams::TimeWindows;
/// use std::time::Duration;
///
/// # fn main() -> freshet_streams::Result<()> {
/// let per_minute = TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(5))?;
/// assert_eq!((per_minute.size(), per_minute.advance(), per_minute.grace()), (60_000, 60_000, 5_000));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeWindows {
    size_ms: i64,
    advance_ms: i64,
    grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size` that close as soon as stream time passes their end: late
    /// records are dropped.
    ///
    /// # Errors
    ///
    /// [`Error::WindowSize`] if `size` is under one millisecond, [`Error::DurationOverflow`]
    /// if it does not fit in `i64` milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::TimeWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(123))?;
    /// assert_eq!((w.size(), w.grace()), (123, 0));
    /// assert!(TimeWindows::of_size_with_no_grace(Duration::ZERO).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn of_size_with_no_grace(size: Duration) -> Result<Self> {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Tumbling windows of `size` that still accept records up to `grace` after their end.
    ///
    /// # Errors
    ///
    /// [`Error::WindowSize`] if `size` is under one millisecond, [`Error::DurationOverflow`]
    /// if `size` or `grace` does not fit in `i64` milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::TimeWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = TimeWindows::of_size_and_grace(Duration::from_millis(3), Duration::from_millis(1024))?;
    /// assert_eq!(w.grace(), 1024);
    /// # Ok(())
    /// # }
    /// ```
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Result<Self> {
        let size_ms = duration_ms("size", size)?;
        let grace_ms = duration_ms("grace", grace)?;
        if size_ms <= 0 {
            return Err(Error::WindowSize { size_ms });
        }
        Ok(Self {
            size_ms,
            advance_ms: size_ms,
            grace_ms,
        })
    }

    /// The same windows but starting every `advance` instead of every `size`: hopping windows,
    /// where one record lands in up to `ceil(size / advance)` windows.
    ///
    /// # Errors
    ///
    /// [`Error::WindowAdvance`] unless `0 < advance <= size` in milliseconds,
    /// [`Error::DurationOverflow`] if `advance` does not fit in `i64` milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::TimeWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(123))?;
    /// assert_eq!(w.advance_by(Duration::from_millis(4))?.advance(), 4);
    /// assert!(w.advance_by(Duration::from_millis(124)).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn advance_by(self, advance: Duration) -> Result<Self> {
        let advance_ms = duration_ms("advance", advance)?;
        if advance_ms <= 0 || advance_ms > self.size_ms {
            return Err(Error::WindowAdvance {
                advance_ms,
                size_ms: self.size_ms,
            });
        }
        Ok(Self { advance_ms, ..self })
    }

    /// The windows a record with `timestamp` belongs to, keyed by window start, exactly as
    /// Kafka's `TimeWindows.windowsFor`: the first start is
    /// `max(0, timestamp - size + advance) / advance * advance`, then one window every
    /// `advance` while the start is `<= timestamp`. Windows never start before the epoch, so
    /// a record near 0 (or before it) belongs to fewer windows, possibly none.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::{TimeWindows, Window};
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let tumbling = TimeWindows::of_size_with_no_grace(Duration::from_millis(12))?;
    /// let windows = tumbling.windows_for(21);
    /// assert_eq!(windows.len(), 1);
    /// assert_eq!(windows[&12], Window::new(12, 24));
    /// # Ok(())
    /// # }
    /// ```
    pub fn windows_for(&self, timestamp: i64) -> BTreeMap<i64, Window> {
        // i128 so that timestamps near i64::MIN/MAX cannot overflow; the result is back in
        // range because it lies in [0, max(0, timestamp)].
        let lowest = i128::from(timestamp) - i128::from(self.size_ms) + i128::from(self.advance_ms);
        let advance = i128::from(self.advance_ms);
        let first = lowest.max(0) / advance * advance;
        let mut windows = BTreeMap::new();
        let Ok(mut start) = i64::try_from(first) else {
            return windows;
        };
        while start <= timestamp {
            windows.insert(
                start,
                Window::new(start, start.saturating_add(self.size_ms)),
            );
            match start.checked_add(self.advance_ms) {
                Some(next) => start = next,
                None => break,
            }
        }
        windows
    }

    /// The window size in milliseconds, which is also how long each window covers.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::TimeWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// assert_eq!(TimeWindows::of_size_with_no_grace(Duration::from_secs(1))?.size(), 1_000);
    /// # Ok(())
    /// # }
    /// ```
    pub fn size(&self) -> i64 {
        self.size_ms
    }

    /// The advance ("hop") in milliseconds; equal to [`size`](Self::size) for tumbling windows.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::TimeWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// assert_eq!(TimeWindows::of_size_with_no_grace(Duration::from_secs(1))?.advance(), 1_000);
    /// # Ok(())
    /// # }
    /// ```
    pub fn advance(&self) -> i64 {
        self.advance_ms
    }

    /// The grace period in milliseconds: how long after its end a window still takes records.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::TimeWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// assert_eq!(TimeWindows::of_size_with_no_grace(Duration::from_secs(1))?.grace(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn grace(&self) -> i64 {
        self.grace_ms
    }
}
