//! Window definitions: which windows a record belongs to, and how long a window accepts late
//! records (its grace period).
//!
//! These are the Kafka Streams 3+ constructors, with no hidden default grace:
//! `*_with_no_grace` means a grace of zero, `*_and_grace` states it. Durations come in as
//! [`std::time::Duration`] and are kept as `i64` milliseconds, Kafka's unit for timestamps, so
//! window arithmetic on record timestamps needs no conversion.
//!
//! # Examples
//!
//! ```
//! use freshet_streams::{TimeWindows, Window};
//! use std::time::Duration;
//!
//! # fn main() -> freshet_streams::Result<()> {
//! let hopping = TimeWindows::of_size_with_no_grace(Duration::from_millis(12))?
//!     .advance_by(Duration::from_millis(5))?;
//! let windows = hopping.windows_for(21);
//! assert_eq!(windows.values().copied().collect::<Vec<_>>(), vec![
//!     Window::new(10, 22),
//!     Window::new(15, 27),
//!     Window::new(20, 32),
//! ]);
//! # Ok(())
//! # }
//! ```

mod join;
mod session;
mod sliding;
mod time;

pub use join::JoinWindows;
pub use session::SessionWindows;
pub use sliding::SlidingWindows;
pub use time::TimeWindows;

use crate::error::{Error, Result};
use std::time::Duration;

/// One time window, `[start, end)` in epoch milliseconds (Kafka's `TimeWindow`); the same
/// type the state stores key windows by. Sliding windows are inclusive at both ends in Kafka
/// and are stored the same way, as `Window { start, end: start + time_difference }`; the
/// operators, not this type, decide how `end` is compared.
pub use freshet_state_store::Window;

/// Converts a duration argument to `i64` milliseconds, refusing what does not fit (Kafka's
/// `ApiUtils.validateMillisecondDuration`). Sub-millisecond parts are truncated, as Java's
/// `Duration.toMillis` does.
pub(crate) fn duration_ms(name: &'static str, duration: Duration) -> Result<i64> {
    i64::try_from(duration.as_millis()).map_err(|_| Error::DurationOverflow {
        name,
        secs: duration.as_secs(),
    })
}
