//! Session windows.

use super::duration_ms;
use crate::error::{Error, Result};
use std::time::Duration;

/// Windows of activity separated by gaps of inactivity, for `windowed_by` on a grouped
/// stream: a session per key grows while records keep arriving within `inactivity_gap` of it,
/// and sessions that a new record bridges are merged.
///
/// A session is `[first, last]`, inclusive; a record exactly `inactivity_gap` after a session's
/// end still joins it. A session stays open to late records while
/// `end >= stream_time - grace - inactivity_gap`.
///
/// # Examples
///
/// ```
/// use freshet_streams::SessionWindows;
/// use std::time::Duration;
///
/// # fn main() -> freshet_streams::Result<()> {
/// let w = SessionWindows::of_inactivity_gap_and_grace(Duration::from_secs(300), Duration::from_secs(10))?;
/// assert_eq!((w.inactivity_gap(), w.grace()), (300_000, 10_000));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionWindows {
    gap_ms: i64,
    grace_ms: i64,
}

impl SessionWindows {
    /// Sessions closed by `inactivity_gap`, with late records dropped once a session closes.
    ///
    /// # Errors
    ///
    /// [`Error::InactivityGap`] if the gap is under one millisecond,
    /// [`Error::DurationOverflow`] if it does not fit in `i64` milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::SessionWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(42))?;
    /// assert_eq!((w.inactivity_gap(), w.grace()), (42, 0));
    /// assert!(SessionWindows::of_inactivity_gap_with_no_grace(Duration::ZERO).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn of_inactivity_gap_with_no_grace(inactivity_gap: Duration) -> Result<Self> {
        Self::of_inactivity_gap_and_grace(inactivity_gap, Duration::ZERO)
    }

    /// Sessions closed by `inactivity_gap` that still accept records up to `grace` later.
    ///
    /// # Errors
    ///
    /// [`Error::InactivityGap`] if the gap is under one millisecond,
    /// [`Error::DurationOverflow`] if either duration does not fit in `i64` milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use freshet_streams::SessionWindows;
    /// use std::time::Duration;
    ///
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = SessionWindows::of_inactivity_gap_and_grace(Duration::from_millis(3), Duration::from_millis(1024))?;
    /// assert_eq!(w.grace(), 1024);
    /// # Ok(())
    /// # }
    /// ```
    pub fn of_inactivity_gap_and_grace(inactivity_gap: Duration, grace: Duration) -> Result<Self> {
        let gap_ms = duration_ms("inactivity_gap", inactivity_gap)?;
        let grace_ms = duration_ms("grace", grace)?;
        if gap_ms <= 0 {
            return Err(Error::InactivityGap { gap_ms });
        }
        Ok(Self { gap_ms, grace_ms })
    }

    /// The inactivity gap in milliseconds that ends a session.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::SessionWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_secs(1))?;
    /// assert_eq!(w.inactivity_gap(), 1_000);
    /// # Ok(())
    /// # }
    /// ```
    pub fn inactivity_gap(&self) -> i64 {
        self.gap_ms
    }

    /// The grace period in milliseconds: how long after it closes a session still takes records.
    ///
    /// # Examples
    ///
    /// ```
    /// # use freshet_streams::SessionWindows; use std::time::Duration;
    /// # fn main() -> freshet_streams::Result<()> {
    /// let w = SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_secs(1))?;
    /// assert_eq!(w.grace(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn grace(&self) -> i64 {
        self.grace_ms
    }
}
