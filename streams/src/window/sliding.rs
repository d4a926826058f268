//! Sliding windows.

use super::duration_ms;
use crate::error::Result;
use std::time::Duration;

/// Windows of a fixed time difference that slide with the records, for `windowed_by` on a
/// grouped stream: two records share a window iff their timestamps differ by at most
/// `time_difference`. Unlike hopping windows, only windows that hold records exist, so an
/// aggregate is updated once per record instead of once per hop.
///
/// A window is `[t - d, t]`, inclusive at both ends, and is admitted to while its end is
/// `>= stream_time - grace`.
///
/// # Examples
///
/// ```
/// use freshet_streams::SlidingWindows;
/// use std::time::Duration;
///
/// # fn main() -> freshet_streams::Result<()> {
/// let w = SlidingWindows::of_time_difference_and_grace(Duration::from_secs(10), Duration::from_secs(1))?;
/// assert_eq!((w.time_difference(), w.grace()), (10_000, 1_000));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlidingWindows {
    time_difference_ms: i64,
    grace_ms: i64,
}

impl SlidingWindows {
    /// Sliding windows of `time_difference` that drop records once stream time has passed
    /// their window. A zero time difference is allowed, as in Kafka: records then share a
    /// window only with records of the same timestamp.
    ///
    /// # Errors
    ///
    /// [`Error::DurationOverflow`](crate::Error::DurationOverflow) if `time_difference` does not
    /// fit in `i64` milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::SlidingWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = SlidingWindows::of_time_difference_with_no_grace(Duration::from_millis(123))?;
    /// assert_eq!((w.time_difference(), w.grace()), (123, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn of_time_difference_with_no_grace(time_difference: Duration) -> Result<Self> {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }

    /// Sliding windows of `time_difference` that still accept records up to `grace` after
    /// their end.
    ///
    /// # Errors
    ///
    /// [`Error::DurationOverflow`](crate::Error::DurationOverflow) if either duration does not
    /// fit in `i64` milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::SlidingWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = SlidingWindows::of_time_difference_and_grace(Duration::from_millis(10), Duration::from_millis(123))?;
    /// assert_eq!(w.grace(), 123);
    /// # Ok(())
    /// # }
    /// ```
    pub fn of_time_difference_and_grace(
        time_difference: Duration,
        grace: Duration,
    ) -> Result<Self> {
        Ok(Self {
            time_difference_ms: duration_ms("time_difference", time_difference)?,
            grace_ms: duration_ms("grace", grace)?,
        })
    }

    /// The maximum time difference in milliseconds between two records of one window.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::SlidingWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = SlidingWindows::of_time_difference_with_no_grace(Duration::from_secs(2))?;
    /// assert_eq!(w.time_difference(), 2_000);
    /// # Ok(())
    /// # }
    /// ```
    pub fn time_difference(&self) -> i64 {
        self.time_difference_ms
    }

    /// The grace period in milliseconds: how long after its end a window still takes records.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::SlidingWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = SlidingWindows::of_time_difference_with_no_grace(Duration::from_secs(2))?;
    /// assert_eq!(w.grace(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn grace(&self) -> i64 {
        self.grace_ms
    }
}
