//! Join windows for stream–stream joins.

use super::duration_ms;
use crate::error::{Error, Result};
use std::time::Duration;

/// How far apart in time two records with the same key may be and still join, for
/// stream–stream joins.
///
/// A left record at `t` joins right records with timestamps in `[t - before, t + after]`,
/// both ends inclusive; a right record at `t` joins left records in `[t - after, t + before]`.
/// `before` and `after` start equal to the time difference and can be set apart, even to
/// negative values, as long as the interval is not inverted (`before + after >= 0`).
/// Left and outer joins emit a non-joined record only once its window has closed, `grace`
/// after its end (Kafka ≥ 3.1 behaviour).
///
/// # Examples
///
/// ```
/// use freshet_streams::JoinWindows;
/// use std::time::Duration;
///
/// # fn main() -> freshet_streams::Result<()> {
/// // Right records from up to 5 s before to 1 s after each left record.
/// let w = JoinWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(2))?
///     .after(1_000)?;
/// assert_eq!((w.before_ms(), w.after_ms(), w.size(), w.grace()), (5_000, 1_000, 6_000, 2_000));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JoinWindows {
    before_ms: i64,
    after_ms: i64,
    grace_ms: i64,
}

impl JoinWindows {
    /// Records join when their timestamps differ by at most `time_difference` either way;
    /// non-joined results of left and outer joins are emitted as soon as the window ends.
    ///
    /// # Errors
    ///
    /// [`Error::DurationOverflow`] if `time_difference` does not fit in `i64` milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::JoinWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(123))?;
    /// assert_eq!((w.before_ms(), w.after_ms(), w.grace()), (123, 123, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn of_time_difference_with_no_grace(time_difference: Duration) -> Result<Self> {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }

    /// Records join when their timestamps differ by at most `time_difference` either way, and
    /// records arriving up to `grace` after a window's end still join.
    ///
    /// # Errors
    ///
    /// [`Error::DurationOverflow`] if either duration does not fit in `i64` milliseconds, or
    /// [`Error::JoinWindowInterval`] if `2 * time_difference` does not.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::JoinWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = JoinWindows::of_time_difference_and_grace(Duration::from_millis(3), Duration::from_millis(60))?;
    /// assert_eq!((w.size(), w.grace()), (6, 60));
    /// # Ok(())
    /// # }
    /// ```
    pub fn of_time_difference_and_grace(
        time_difference: Duration,
        grace: Duration,
    ) -> Result<Self> {
        let difference_ms = duration_ms("time_difference", time_difference)?;
        let grace_ms = duration_ms("grace", grace)?;
        Self::new(difference_ms, difference_ms, grace_ms)
    }

    /// Sets how many milliseconds *before* a left record's timestamp a right record may be
    /// and still join. Negative values move the lower bound after the timestamp, as in Kafka.
    ///
    /// # Errors
    ///
    /// [`Error::JoinWindowInterval`] if `before_ms + after_ms` is negative (the window would
    /// end before it starts) or overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::JoinWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(123))?;
    /// assert_eq!(w.before(-123)?.size(), 0);
    /// assert!(w.before(-124).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn before(self, before_ms: i64) -> Result<Self> {
        Self::new(before_ms, self.after_ms, self.grace_ms)
    }

    /// Sets how many milliseconds *after* a left record's timestamp a right record may be and
    /// still join. Negative values move the upper bound before the timestamp, as in Kafka.
    ///
    /// # Errors
    ///
    /// [`Error::JoinWindowInterval`] if `before_ms + after_ms` is negative or overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::JoinWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(123))?;
    /// assert_eq!(w.after(0)?.size(), 123);
    /// assert!(w.after(-124).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn after(self, after_ms: i64) -> Result<Self> {
        Self::new(self.before_ms, after_ms, self.grace_ms)
    }

    fn new(before_ms: i64, after_ms: i64, grace_ms: i64) -> Result<Self> {
        match before_ms.checked_add(after_ms) {
            Some(size) if size >= 0 => Ok(Self {
                before_ms,
                after_ms,
                grace_ms,
            }),
            _ => Err(Error::JoinWindowInterval {
                before_ms,
                after_ms,
            }),
        }
    }

    /// Milliseconds before a left record's timestamp that the window reaches.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::JoinWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(7))?.before(2)?;
    /// assert_eq!(w.before_ms(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn before_ms(&self) -> i64 {
        self.before_ms
    }

    /// Milliseconds after a left record's timestamp that the window reaches.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::JoinWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(7))?.after(2)?;
    /// assert_eq!(w.after_ms(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn after_ms(&self) -> i64 {
        self.after_ms
    }

    /// The window length `before + after` in milliseconds (never negative); with the grace it
    /// sets how long each side's store must keep records.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::JoinWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(7))?;
    /// assert_eq!(w.size(), 14);
    /// # Ok(())
    /// # }
    /// ```
    pub fn size(&self) -> i64 {
        // Cannot overflow: `new` checked the sum.
        self.before_ms.saturating_add(self.after_ms)
    }

    /// The grace period in milliseconds: how long after its end a window still takes records.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::JoinWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(7))?;
    /// assert_eq!(w.grace(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn grace(&self) -> i64 {
        self.grace_ms
    }
}
