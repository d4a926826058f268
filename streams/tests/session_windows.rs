//! Port of Kafka's `SessionWindowsTest`.
//!
//! Ported: `shouldSetWindowGap`, `gracePeriodShouldEnforceBoundaries` (the accepted zero
//! grace), `noGraceAPIShouldNotSetGracePeriod`, `withGraceAPIShouldSetGracePeriod`,
//! `windowSizeMustNotBeZero`.
//!
//! Not ported:
//! - `windowSizeMustNotBeNegative` and the negative half of
//!   `gracePeriodShouldEnforceBoundaries`: a `std::time::Duration` cannot be negative.
//! - `oldAPIShouldSetDefaultGracePeriod`, `graceShouldNotCalledAfterGraceSet`: deprecated
//!   `with` / `grace` API with its 24 h default grace, which freshet does not offer.
//! - `equalsAndHashcode*`: equality is derived.

use freshet_streams::{Error, SessionWindows};
use std::time::Duration;

const ANY_SIZE: u64 = 123;
const ANY_OTHER_SIZE: u64 = 456;
const ANY_GRACE: u64 = 1024;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn should_set_window_gap() -> freshet_streams::Result<()> {
    assert_eq!(
        SessionWindows::of_inactivity_gap_with_no_grace(ms(42))?.inactivity_gap(),
        42
    );
    assert_eq!(
        SessionWindows::of_inactivity_gap_and_grace(ms(42), ms(ANY_GRACE))?.inactivity_gap(),
        42
    );
    Ok(())
}

#[test]
fn grace_period_should_enforce_boundaries() -> freshet_streams::Result<()> {
    assert_eq!(
        SessionWindows::of_inactivity_gap_and_grace(ms(3), ms(0))?.grace(),
        0
    );
    Ok(())
}

#[test]
fn no_grace_api_should_not_set_grace_period() -> freshet_streams::Result<()> {
    for gap in [3, ANY_SIZE, ANY_OTHER_SIZE] {
        assert_eq!(
            SessionWindows::of_inactivity_gap_with_no_grace(ms(gap))?.grace(),
            0
        );
    }
    Ok(())
}

#[test]
fn with_grace_api_should_set_grace_period() -> freshet_streams::Result<()> {
    for gap in [3, ANY_SIZE, ANY_OTHER_SIZE] {
        let w = SessionWindows::of_inactivity_gap_and_grace(ms(gap), ms(ANY_GRACE))?;
        assert_eq!(w.grace(), 1024);
    }
    Ok(())
}

#[test]
fn window_size_must_not_be_zero() {
    assert!(matches!(
        SessionWindows::of_inactivity_gap_with_no_grace(ms(0)),
        Err(Error::InactivityGap { gap_ms: 0 })
    ));
}

#[test]
fn durations_beyond_i64_milliseconds_are_refused() {
    assert!(matches!(
        SessionWindows::of_inactivity_gap_with_no_grace(Duration::MAX),
        Err(Error::DurationOverflow {
            name: "inactivity_gap",
            ..
        })
    ));
}
