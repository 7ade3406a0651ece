//! Duration and time arguments (`--ttl 15m`, `--unused-since 30d`, `--issued-before
//! 2030-01-01T00:00:00Z`, `--at …`): parsed, and combined with the clock, by checked
//! arithmetic only. Whatever the argument, the answer is a value or a [`TimeArgError`] that says
//! what is wrong and the accepted form; never a panic.

use std::fmt;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The accepted form of a duration argument.
pub const DURATION_FORM: &str = "a whole number followed by s, m, h or d, e.g. 90s, 15m, 1h, 30d";

/// The accepted form of a time argument.
pub const TIME_FORM: &str =
    "an RFC 3339 time between the years 0000 and 9999 in UTC, e.g. 2030-01-01T00:00:00Z";

/// The longest part of a refused argument an error message repeats.
const ECHO_MAX: usize = 48;

/// What is wrong with a duration or time argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeArgErrorKind {
    /// Not of the accepted form: no number, no unit, an unknown unit, a sign, spaces.
    Malformed,
    /// Of the accepted form, but too large to represent (in seconds, or as a time).
    OutOfRange,
}

/// A refused duration or time argument: which flag, the value (shortened), what is wrong and
/// the accepted form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeArgError {
    flag: String,
    value: String,
    kind: TimeArgErrorKind,
    detail: &'static str,
    form: &'static str,
}

impl TimeArgError {
    fn new(
        flag: &str,
        value: &str,
        kind: TimeArgErrorKind,
        detail: &'static str,
        form: &'static str,
    ) -> Self {
        let value = if value.chars().count() > ECHO_MAX {
            value.chars().take(ECHO_MAX).chain(['…']).collect()
        } else {
            value.to_owned()
        };
        Self {
            flag: flag.to_owned(),
            value,
            kind,
            detail,
            form,
        }
    }

    /// What is wrong, for a caller to match on.
    pub fn kind(&self) -> TimeArgErrorKind {
        self.kind
    }

    /// The flag the value was given to, e.g. `--ttl`.
    pub fn flag(&self) -> &str {
        &self.flag
    }
}

impl fmt::Display for TimeArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} {}; use {}",
            self.flag, self.value, self.detail, self.form
        )
    }
}

impl std::error::Error for TimeArgError {}

impl From<TimeArgError> for crate::Failure {
    fn from(e: TimeArgError) -> Self {
        crate::Failure::Usage(e.to_string())
    }
}

/// Parses a duration given to `flag`: `90s`, `15m`, `1h`, `30d`.
///
/// # Errors
/// [`TimeArgErrorKind::Malformed`] when `value` is not [`DURATION_FORM`];
/// [`TimeArgErrorKind::OutOfRange`] when its number of seconds does not fit in 64 bits.
pub fn duration(flag: &str, value: &str) -> Result<Duration, TimeArgError> {
    let malformed = |detail| {
        TimeArgError::new(
            flag,
            value,
            TimeArgErrorKind::Malformed,
            detail,
            DURATION_FORM,
        )
    };
    let too_large = || {
        TimeArgError::new(
            flag,
            value,
            TimeArgErrorKind::OutOfRange,
            "is too large a duration",
            DURATION_FORM,
        )
    };
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| malformed("has no unit"))?;
    let (number, unit) = value.split_at(split);
    if number.is_empty() {
        return Err(malformed("does not start with a number"));
    }
    let per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(malformed("has an unknown unit")),
    };
    // Only ASCII digits are left, so the one way to fail is a number above u64::MAX.
    let n: u64 = number.parse().map_err(|_| too_large())?;
    let secs = n.checked_mul(per_unit).ok_or_else(too_large)?;
    Ok(Duration::from_secs(secs))
}

/// Parses an RFC 3339 time given to `flag`, returned in UTC.
///
/// # Errors
/// [`TimeArgErrorKind::Malformed`] when `value` is not RFC 3339;
/// [`TimeArgErrorKind::OutOfRange`] when its offset carries it outside the years 0000–9999 in
/// UTC (say `9999-12-31T23:59:59-01:00`), which no store or token can hold.
pub fn time(flag: &str, value: &str) -> Result<OffsetDateTime, TimeArgError> {
    let t = OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        TimeArgError::new(
            flag,
            value,
            TimeArgErrorKind::Malformed,
            "is not an RFC 3339 time",
            TIME_FORM,
        )
    })?;
    t.checked_to_offset(UtcOffset::UTC)
        .filter(representable)
        .ok_or_else(|| {
            TimeArgError::new(
                flag,
                value,
                TimeArgErrorKind::OutOfRange,
                "is outside the years 0000 to 9999 in UTC",
                TIME_FORM,
            )
        })
}

/// The instant a duration given to `flag` before `now`: `--unused-since 30d` is 30 days ago.
///
/// # Errors
/// As [`duration`], and [`TimeArgErrorKind::OutOfRange`] when the result would fall before
/// the year 0000 (say `--unused-since 99999999d`).
pub fn before(
    flag: &str,
    value: &str,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, TimeArgError> {
    let d = duration(flag, value)?;
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|secs| now.checked_sub(time::Duration::seconds(secs)))
        .filter(representable)
        .ok_or_else(|| {
            TimeArgError::new(
                flag,
                value,
                TimeArgErrorKind::OutOfRange,
                "reaches back before the year 0000",
                DURATION_FORM,
            )
        })
}

/// Whether RFC 3339 (and so every token, store row and message) can write `t`.
fn representable(t: &OffsetDateTime) -> bool {
    (0..=9999).contains(&t.year())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap()
    }

    #[test]
    fn durations_in_every_unit() {
        for (text, secs) in [
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("30d", 2_592_000),
            ("0s", 0),
            ("18446744073709551615s", u64::MAX),
            ("213503982334601d", 213_503_982_334_601 * 86_400),
        ] {
            assert_eq!(
                duration("--ttl", text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_durations_say_the_accepted_form() {
        for text in [
            "", "15", "m", "15 m", " 15m", "15m ", "-5m", "+5m", "1.5h", "15M", "15min", "1w",
            "١٥m", "15mm", "0x10s",
        ] {
            let e = duration("--ttl", text).unwrap_err();
            assert_eq!(e.kind(), TimeArgErrorKind::Malformed, "{text:?}");
            let m = e.to_string();
            assert!(m.starts_with("--ttl: "), "{m}");
            assert!(m.contains(DURATION_FORM), "{m}");
        }
    }

    #[test]
    fn huge_durations_are_out_of_range_not_a_panic() {
        for text in [
            "99999999999999999999d",
            "18446744073709551616s",
            "213503982334602d",
            "307445734561825861m",
            "5124095576030432h",
            &"9".repeat(10_000),
        ] {
            let text = format!("{text}{}", if text.ends_with('9') { "s" } else { "" });
            let e = duration("--ttl", &text).unwrap_err();
            assert_eq!(e.kind(), TimeArgErrorKind::OutOfRange, "{text}");
            assert!(e.to_string().contains("too large"), "{e}");
            // A long value is shortened in the message.
            assert!(e.to_string().len() < 200, "{e}");
        }
    }

    #[test]
    fn cut_offs_before_now() {
        assert_eq!(
            before("--unused-since", "30d", now()).unwrap(),
            now() - time::Duration::days(30)
        );
        for text in ["99999999999d", "18446744073709551615s", "5000000d"] {
            let e = before("--unused-since", text, now()).unwrap_err();
            assert_eq!(e.kind(), TimeArgErrorKind::OutOfRange, "{text}");
            assert!(e.to_string().starts_with("--unused-since: "), "{e}");
        }
        assert_eq!(
            before("--unused-since", "30x", now()).unwrap_err().kind(),
            TimeArgErrorKind::Malformed
        );
    }

    #[test]
    fn times_in_utc_and_out_of_range_offsets() {
        let t = time("--at", "2030-01-01T01:00:00+01:00").unwrap();
        assert_eq!(t.offset(), UtcOffset::UTC);
        assert_eq!(t.unix_timestamp(), 1_893_456_000);
        for text in ["9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00+00:01"] {
            let e = time("--at", text).unwrap_err();
            assert_eq!(e.kind(), TimeArgErrorKind::OutOfRange, "{text}");
            assert!(e.to_string().contains(TIME_FORM), "{e}");
        }
        for text in [
            "",
            "2030-01-01",
            "2030-13-01T00:00:00Z",
            "now",
            "1893456000",
        ] {
            let e = time("--issued-before", text).unwrap_err();
            assert_eq!(e.kind(), TimeArgErrorKind::Malformed, "{text:?}");
            assert!(e.to_string().starts_with("--issued-before: "), "{e}");
        }
    }

    /// Strings shaped like the accepted forms, so that the cases reach past the first check.
    fn near_duration() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[0-9]{0,30}[smhdSMHDwy ]{0,2}",
            (any::<u64>(), "[smhd]").prop_map(|(n, u)| format!("{n}{u}")),
        ]
    }

    fn near_time() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
        ]
    }

    proptest! {
        #[test]
        fn any_duration_argument_is_a_value_or_the_typed_error(value in near_duration(), at in any::<i64>()) {
            let now = OffsetDateTime::from_unix_timestamp(at.rem_euclid(253_402_300_800))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            match duration("--ttl", &value) {
                Ok(d) => prop_assert_eq!(format!("{}s", d.as_secs()), {
                    let (n, u) = value.split_at(value.len() - 1);
                    let per = match u { "s" => 1u128, "m" => 60, "h" => 3600, _ => 86_400 };
                    format!("{}s", n.parse::<u128>().unwrap() * per)
                }),
                Err(e) => {
                    prop_assert_eq!(e.flag(), "--ttl");
                    prop_assert!(e.to_string().contains(DURATION_FORM));
                }
            }
            match before("--unused-since", &value, now) {
                Ok(t) => prop_assert!(t <= now),
                Err(e) => prop_assert!(e.to_string().contains(DURATION_FORM)),
            }
        }

        #[test]
        fn any_number_in_any_unit_is_a_value_or_out_of_range(n in any::<u128>(), unit in "[smhd]") {
            let per = match unit.as_str() { "s" => 1u128, "m" => 60, "h" => 3600, _ => 86_400 };
            let value = format!("{n}{unit}");
            match (duration("--ttl", &value), n.checked_mul(per).and_then(|s| u64::try_from(s).ok())) {
                (Ok(d), Some(secs)) => prop_assert_eq!(d.as_secs(), secs),
                (Err(e), None) => prop_assert_eq!(e.kind(), TimeArgErrorKind::OutOfRange),
                (got, want) => prop_assert!(false, "{value}: {got:?}, expected {want:?}"),
            }
        }

        #[test]
        fn any_time_argument_is_a_utc_value_or_the_typed_error(value in near_time()) {
            match time("--at", &value) {
                Ok(t) => prop_assert_eq!(t.offset(), UtcOffset::UTC),
                Err(e) => {
                    prop_assert_eq!(e.flag(), "--at");
                    prop_assert!(e.to_string().contains(TIME_FORM));
                }
            }
        }
    }
}
