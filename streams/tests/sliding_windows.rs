//! Port of Kafka's `SlidingWindowsTest`.
//!
//! Ported: `shouldSetTimeDifference` (the 3+ constructors), `shouldSetGracePeriod`.
//!
//! Not ported:
//! - `timeDifferenceMustNotBeNegative`, `gracePeriodMustNotBeNegative`: a
//!   `std::time::Duration` cannot be negative, so the type rejects these inputs.
//! - The `withTimeDifferenceAndGrace` line of `shouldSetTimeDifference`: deprecated API.
//! - `equalsAndHashcode*`: equality is derived.
//!
//! Added: zero time difference is accepted (Kafka only refuses negatives) and overflow.

use freshet_streams::{Error, SlidingWindows};
use std::time::Duration;

const ANY_SIZE: u64 = 123;
const ANY_GRACE: u64 = 1024;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn should_set_time_difference() -> freshet_streams::Result<()> {
    let a = SlidingWindows::of_time_difference_and_grace(ms(ANY_SIZE), ms(ANY_GRACE))?;
    assert_eq!(a.time_difference(), 123);
    let b = SlidingWindows::of_time_difference_with_no_grace(ms(ANY_SIZE))?;
    assert_eq!((b.time_difference(), b.grace()), (123, 0));
    Ok(())
}

#[test]
fn should_set_grace_period() -> freshet_streams::Result<()> {
    let w = SlidingWindows::of_time_difference_and_grace(ms(10), ms(ANY_SIZE))?;
    assert_eq!(w.grace(), 123);
    Ok(())
}

#[test]
fn zero_time_difference_is_accepted() -> freshet_streams::Result<()> {
    assert_eq!(
        SlidingWindows::of_time_difference_with_no_grace(ms(0))?.time_difference(),
        0
    );
    Ok(())
}

#[test]
fn durations_beyond_i64_milliseconds_are_refused() {
    assert!(matches!(
        SlidingWindows::of_time_difference_with_no_grace(Duration::MAX),
        Err(Error::DurationOverflow {
            name: "time_difference",
            ..
        })
    ));
    assert!(matches!(
        SlidingWindows::of_time_difference_and_grace(ms(1), Duration::MAX),
        Err(Error::DurationOverflow { name: "grace", .. })
    ));
}
