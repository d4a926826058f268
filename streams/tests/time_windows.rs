//! Port of Kafka's `TimeWindowsTest` (`streams/src/test/java/org/apache/kafka/streams/kstream/`).
//!
//! Ported, with the same inputs and asserted outputs: `shouldSetWindowSize`,
//! `shouldSetWindowAdvance`, `windowSizeMustNotBeZero`, `advanceIntervalMustNotBeZero`,
//! `advanceIntervalMustNotBeLargerThanWindowSize`, `gracePeriodShouldEnforceBoundaries` (the
//! accepted zero grace), `shouldComputeWindowsForHoppingWindows`,
//! `shouldComputeWindowsForBarelyOverlappingHoppingWindows`,
//! `shouldComputeWindowsForTumblingWindows`.
//!
//! Not ported:
//! - `windowSizeMustNotBeNegative`, `advanceIntervalMustNotBeNegative` and the negative half of
//!   `gracePeriodShouldEnforceBoundaries`: a `std::time::Duration` cannot be negative, so the
//!   type already rejects these inputs.
//! - `graceShouldNotCalledAfterGraceSet`, `oldAPIShouldSetDefaultGracePeriod` and the
//!   `TimeWindows.of` line of `shouldSetWindowSize`: they test the deprecated `of` / `grace`
//!   API (24 h default grace) that freshet does not offer.
//! - `equalsAndHashcodeShouldBeValidFor{Positive,Negative}Cases`: equality is derived.
//!
//! Added: overflow of `i64` milliseconds, records at or before the epoch, and a property test
//! of `windows_for` against a brute-force model.

use freshet_streams::{Error, TimeWindows, Window};
use proptest::prelude::*;
use std::time::Duration;

const ANY_SIZE: u64 = 123;
const ANY_GRACE: u64 = 1024;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn should_set_window_size() -> freshet_streams::Result<()> {
    assert_eq!(
        TimeWindows::of_size_with_no_grace(ms(ANY_SIZE))?.size(),
        123
    );
    assert_eq!(
        TimeWindows::of_size_and_grace(ms(ANY_SIZE), ms(ANY_GRACE))?.size(),
        123
    );
    Ok(())
}

#[test]
fn should_set_window_advance() -> freshet_streams::Result<()> {
    let w = TimeWindows::of_size_with_no_grace(ms(ANY_SIZE))?.advance_by(ms(4))?;
    assert_eq!(w.advance(), 4);
    Ok(())
}

#[test]
fn window_size_must_not_be_zero() {
    assert!(matches!(
        TimeWindows::of_size_with_no_grace(ms(0)),
        Err(Error::WindowSize { size_ms: 0 })
    ));
    // Below one millisecond truncates to zero, as Java's Duration.toMillis does.
    assert!(TimeWindows::of_size_with_no_grace(Duration::from_micros(999)).is_err());
}

#[test]
fn advance_interval_must_not_be_zero() -> freshet_streams::Result<()> {
    let spec = TimeWindows::of_size_with_no_grace(ms(ANY_SIZE))?;
    assert!(matches!(
        spec.advance_by(ms(0)),
        Err(Error::WindowAdvance {
            advance_ms: 0,
            size_ms: 123
        })
    ));
    Ok(())
}

#[test]
fn advance_interval_must_not_be_larger_than_window_size() -> freshet_streams::Result<()> {
    let spec = TimeWindows::of_size_with_no_grace(ms(ANY_SIZE))?;
    assert!(matches!(
        spec.advance_by(ms(ANY_SIZE + 1)),
        Err(Error::WindowAdvance {
            advance_ms: 124,
            size_ms: 123
        })
    ));
    assert_eq!(spec.advance_by(ms(ANY_SIZE))?.advance(), 123);
    Ok(())
}

#[test]
fn grace_period_should_enforce_boundaries() -> freshet_streams::Result<()> {
    assert_eq!(TimeWindows::of_size_and_grace(ms(3), ms(0))?.grace(), 0);
    Ok(())
}

#[test]
fn should_compute_windows_for_hopping_windows() -> freshet_streams::Result<()> {
    let windows = TimeWindows::of_size_with_no_grace(ms(12))?.advance_by(ms(5))?;
    let matched = windows.windows_for(21);
    assert_eq!(matched.len(), (12 / 5 + 1) as usize);
    assert_eq!(matched.get(&10), Some(&Window::new(10, 22)));
    assert_eq!(matched.get(&15), Some(&Window::new(15, 27)));
    assert_eq!(matched.get(&20), Some(&Window::new(20, 32)));
    Ok(())
}

#[test]
fn should_compute_windows_for_barely_overlapping_hopping_windows() -> freshet_streams::Result<()> {
    let windows = TimeWindows::of_size_with_no_grace(ms(6))?.advance_by(ms(5))?;
    let matched = windows.windows_for(7);
    assert_eq!(matched.len(), 1);
    assert_eq!(matched.get(&5), Some(&Window::new(5, 11)));
    Ok(())
}

#[test]
fn should_compute_windows_for_tumbling_windows() -> freshet_streams::Result<()> {
    let matched = TimeWindows::of_size_with_no_grace(ms(12))?.windows_for(21);
    assert_eq!(matched.len(), 1);
    assert_eq!(matched.get(&12), Some(&Window::new(12, 24)));
    Ok(())
}

#[test]
fn windows_never_start_before_the_epoch() -> freshet_streams::Result<()> {
    let windows = TimeWindows::of_size_with_no_grace(ms(12))?.advance_by(ms(5))?;
    let starts: Vec<i64> = windows.windows_for(3).into_keys().collect();
    assert_eq!(starts, vec![0]);
    assert!(windows.windows_for(-1).is_empty());
    assert!(windows.windows_for(i64::MIN).is_empty());
    Ok(())
}

#[test]
fn durations_beyond_i64_milliseconds_are_refused() {
    assert!(matches!(
        TimeWindows::of_size_with_no_grace(Duration::MAX),
        Err(Error::DurationOverflow { name: "size", .. })
    ));
    assert!(matches!(
        TimeWindows::of_size_and_grace(ms(1), Duration::MAX),
        Err(Error::DurationOverflow { name: "grace", .. })
    ));
    let max = Duration::from_millis(i64::MAX as u64);
    assert!(TimeWindows::of_size_with_no_grace(max).is_ok());
}

#[test]
fn huge_sizes_do_not_overflow() -> freshet_streams::Result<()> {
    let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(i64::MAX as u64))?;
    let matched = w.windows_for(i64::MAX - 1);
    assert_eq!(matched.get(&0), Some(&Window::new(0, i64::MAX)));
    // The next window starts at i64::MAX; its end saturates instead of wrapping.
    let starts: Vec<i64> = w.windows_for(i64::MAX).into_keys().collect();
    assert_eq!(starts, vec![i64::MAX]);
    Ok(())
}

proptest! {
    #[test]
    fn windows_for_matches_a_brute_force_model(
        size in 1u64..50,
        advance_pick in 1u64..50,
        timestamp in -20i64..500,
    ) {
        let advance = advance_pick.min(size);
        let w = TimeWindows::of_size_with_no_grace(ms(size))?.advance_by(ms(advance))?;
        let expected: Vec<Window> = (0..=timestamp.max(0))
            .step_by(advance as usize)
            .map(|s| Window::new(s, s + size as i64))
            .filter(|win| win.contains(timestamp))
            .collect();
        let got: Vec<Window> = w.windows_for(timestamp).into_values().collect();
        prop_assert_eq!(got, expected);
    }
}
