//! Port of Kafka's `JoinWindowsTest`.
//!
//! The stored copy of the Kafka test uses the deprecated `JoinWindows.of(d)` with `grace(g)`;
//! each is ported onto `of_time_difference_with_no_grace(d)` / `of_time_difference_and_grace`
//! with the same inputs and outputs, as Kafka's own 3.x test migrated them. `before` / `after`
//! take signed milliseconds here because Kafka accepts negative values for them.
//!
//! Ported: `validWindows`, `endTimeShouldNotBeBeforeStart`, `startTimeShouldNotBeAfterEnd`,
//! `untilShouldSetGraceDuration`, `gracePeriodShouldEnforceBoundaries` (the accepted zero
//! grace), and `beforeShouldNotModifyGrace` / `afterShouldNotModifyGrace` (from an older copy).
//!
//! Not ported:
//! - `timeDifferenceMustNotBeNegative` and the negative half of
//!   `gracePeriodShouldEnforceBoundaries`: a `std::time::Duration` cannot be negative.
//! - `equalsAndHashcode*`: equality is derived.

use freshet_streams::{Error, JoinWindows};
use std::time::Duration;

const ANY_SIZE: i64 = 123;
const ANY_OTHER_SIZE: i64 = 456;

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.unsigned_abs())
}

#[test]
fn valid_windows() -> freshet_streams::Result<()> {
    let w = JoinWindows::of_time_difference_with_no_grace(ms(ANY_OTHER_SIZE))? // [-456; 456]
        .before(ANY_SIZE)? // [-123; 456]
        .before(0)? // [0; 456]
        .before(-ANY_SIZE)? // [123; 456]
        .before(-ANY_OTHER_SIZE)?; // [456; 456]
    assert_eq!((w.before_ms(), w.after_ms(), w.size()), (-456, 456, 0));

    let w = JoinWindows::of_time_difference_with_no_grace(ms(ANY_OTHER_SIZE))? // [-456; 456]
        .after(ANY_SIZE)? // [-456; 123]
        .after(0)? // [-456; 0]
        .after(-ANY_SIZE)? // [-456; -123]
        .after(-ANY_OTHER_SIZE)?; // [-456; -456]
    assert_eq!((w.before_ms(), w.after_ms(), w.size()), (456, -456, 0));
    Ok(())
}

#[test]
fn before_should_not_modify_grace() -> freshet_streams::Result<()> {
    let w = JoinWindows::of_time_difference_and_grace(ms(ANY_SIZE), ms(ANY_OTHER_SIZE))?
        .before(ANY_SIZE * 1000)?;
    assert_eq!(w.grace(), ANY_OTHER_SIZE);
    Ok(())
}

#[test]
fn after_should_not_modify_grace() -> freshet_streams::Result<()> {
    let w = JoinWindows::of_time_difference_and_grace(ms(ANY_SIZE), ms(ANY_OTHER_SIZE))?
        .after(ANY_SIZE * 1000)?;
    assert_eq!(w.grace(), ANY_OTHER_SIZE);
    Ok(())
}

#[test]
fn end_time_should_not_be_before_start() -> freshet_streams::Result<()> {
    let spec = JoinWindows::of_time_difference_with_no_grace(ms(ANY_SIZE))?;
    assert!(matches!(
        spec.after(-ANY_SIZE - 1),
        Err(Error::JoinWindowInterval {
            before_ms: 123,
            after_ms: -124
        })
    ));
    Ok(())
}

#[test]
fn start_time_should_not_be_after_end() -> freshet_streams::Result<()> {
    let spec = JoinWindows::of_time_difference_with_no_grace(ms(ANY_SIZE))?;
    assert!(matches!(
        spec.before(-ANY_SIZE - 1),
        Err(Error::JoinWindowInterval {
            before_ms: -124,
            after_ms: 123
        })
    ));
    Ok(())
}

#[test]
fn until_should_set_grace_duration() -> freshet_streams::Result<()> {
    let size = JoinWindows::of_time_difference_with_no_grace(ms(ANY_SIZE))?.size();
    let w = JoinWindows::of_time_difference_and_grace(ms(ANY_SIZE), ms(size))?;
    assert_eq!(w.grace(), size);
    assert_eq!(size, 246);
    Ok(())
}

#[test]
fn grace_period_should_enforce_boundaries() -> freshet_streams::Result<()> {
    assert_eq!(
        JoinWindows::of_time_difference_and_grace(ms(3), ms(0))?.grace(),
        0
    );
    Ok(())
}

#[test]
fn overflowing_intervals_are_refused() -> freshet_streams::Result<()> {
    let max = Duration::from_millis(i64::MAX as u64);
    assert!(matches!(
        JoinWindows::of_time_difference_with_no_grace(max),
        Err(Error::JoinWindowInterval { .. })
    ));
    assert!(matches!(
        JoinWindows::of_time_difference_with_no_grace(Duration::MAX),
        Err(Error::DurationOverflow {
            name: "time_difference",
            ..
        })
    ));
    let w = JoinWindows::of_time_difference_with_no_grace(ms(1))?;
    assert!(w.before(i64::MAX).is_err());
    assert_eq!(w.before(i64::MAX - 1)?.size(), i64::MAX);
    Ok(())
}
