//! Strict RFC 3339 date-times for PASETO time claims.
//!
//! Accepted: exactly `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS±HH:MM`, uppercase `T` and `Z`,
//! whole seconds, years 1970 to 9999 (and not before the Unix epoch once in UTC), offsets up to ±23:59, no leap second. Everything else is
//! refused deterministically (docs/threats.md B9, D3); nothing here can panic or overflow.

use time::OffsetDateTime;

/// Formats a UTC instant as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format(t: OffsetDateTime) -> String {
    let mut out = Vec::with_capacity(20);
    write(t, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `t` as `format` writes it (20 ASCII bytes for years 0000 to 9999), without going
/// through `fmt`.
pub(crate) fn write(t: OffsetDateTime, out: &mut Vec<u8>) {
    // In UTC already (as claims are) the fields are read as they are; otherwise converted.
    let t = if t.offset().is_utc() {
        t
    } else {
        OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap_or(t)
    };
    let year = t.year();
    if !(0..=9999).contains(&year) {
        // Outside what a claim may hold; written as `fmt` would, never reached from a claim.
        out.extend_from_slice(
            format!(
                "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
            .as_bytes(),
        );
        return;
    }
    let two = |n: u8| [b'0' + n / 10, b'0' + n % 10];
    // `year` is in 0..=9999 here.
    let y = u16::try_from(year).unwrap_or(0);
    out.extend_from_slice(&[
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
    ]);
    out.extend_from_slice(&two(u8::from(t.month())));
    out.push(b'-');
    out.extend_from_slice(&two(t.day()));
    out.push(b'T');
    out.extend_from_slice(&two(t.hour()));
    out.push(b':');
    out.extend_from_slice(&two(t.minute()));
    out.push(b':');
    out.extend_from_slice(&two(t.second()));
    out.push(b'Z');
}

/// Parses a strict RFC 3339 date-time into a UTC instant with whole seconds.
pub(crate) fn parse(s: &str) -> Option<OffsetDateTime> {
    let f = fields(s)?;
    if f.day > days_in_month(f.year, f.month) || f.hour > 23 || f.minute > 59 || f.second > 59 {
        return None;
    }
    let local = days_from_civil(i64::from(f.year), i64::from(f.month), i64::from(f.day)) * 86_400
        + i64::from(f.hour) * 3600
        + i64::from(f.minute) * 60
        + i64::from(f.second);
    to_utc(local, f.offset)
}

/// The fields of `YYYY-MM-DDTHH:MM:SS(Z|±HH:MM)`, with the year in 1970..=9999, the month in
/// 1..=12, a day from 1 and the offset within ±23:59; the rest of the range checks are `parse`'s.
struct Fields {
    year: u16,
    month: u16,
    day: u16,
    hour: u16,
    minute: u16,
    second: u16,
    /// East of UTC, in seconds.
    offset: i64,
}

fn fields(s: &str) -> Option<Fields> {
    let b = s.as_bytes();
    if !(b.len() == 20 || b.len() == 25) {
        return None;
    }
    let sep = |i: usize, c: u8| b[i] == c;
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let offset: i64 = match (b.len(), b[19]) {
        (20, b'Z') => 0,
        (25, sign @ (b'+' | b'-')) if b[22] == b':' => {
            let oh = digits(&b[20..22])?;
            let om = digits(&b[23..25])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let magnitude = i64::from(oh) * 3600 + i64::from(om) * 60;
            if sign == b'+' { magnitude } else { -magnitude }
        }
        _ => return None,
    };
    // The digits' values, all checked at once: a byte that is not a digit leaves a value of 10
    // or more (wrapping below `0`).
    let d: [u8; 19] = std::array::from_fn(|i| b[i].wrapping_sub(b'0'));
    let positions = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    if positions.iter().any(|&i| d[i] > 9) {
        return None;
    }
    let two = |i: usize| u16::from(d[i]) * 10 + u16::from(d[i + 1]);
    let f = Fields {
        year: two(0) * 100 + two(2),
        month: two(5),
        day: two(8),
        hour: two(11),
        minute: two(14),
        second: two(17),
        offset,
    };
    let in_range = (1970..=9999).contains(&f.year) && (1..=12).contains(&f.month) && f.day > 0;
    in_range.then_some(f)
}

/// The instant `local` seconds (as if UTC) at `offset` east of UTC, refused before the epoch.
fn to_utc(local: i64, offset: i64) -> Option<OffsetDateTime> {
    let utc = local.checked_sub(offset)?;
    if utc < 0 {
        return None;
    }
    OffsetDateTime::from_unix_timestamp(utc).ok()
}

fn days_in_month(year: u16, month: u16) -> u16 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`), for
/// years from 1 on: integer arithmetic instead of building a calendar date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn digits(b: &[u8]) -> Option<u16> {
    b.iter().try_fold(0u16, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The former date and time conversion, on the `time` crate's calendar types, kept as the
    /// reference for the arithmetic one (the syntax, `fields`, is shared).
    fn reference(s: &str) -> Option<OffsetDateTime> {
        use time::{Date, Month, Time};
        let f = fields(s)?;
        let month = Month::try_from(u8::try_from(f.month).ok()?).ok()?;
        let date = Date::from_calendar_date(i32::from(f.year), month, u8::try_from(f.day).ok()?);
        let time = Time::from_hms(
            u8::try_from(f.hour).ok()?,
            u8::try_from(f.minute).ok()?,
            u8::try_from(f.second).ok()?,
        );
        to_utc(
            date.ok()?
                .with_time(time.ok()?)
                .assume_utc()
                .unix_timestamp(),
            f.offset,
        )
    }

    proptest::proptest! {
        /// Date-shaped strings with any digits (invalid months, days, hours, leap days,
        /// offsets): the arithmetic parser answers as the calendar-based one did.
        #[test]
        fn parser_agrees_with_the_calendar_reference(
            year in proptest::sample::select(vec![1969u16, 1970, 1999, 2000, 2024, 2100, 2400, 9999]),
            month in 0u8..14,
            day in 0u8..33,
            hour in 0u8..26,
            minute in 0u8..61,
            second in 0u8..62,
            offset in proptest::option::of((proptest::bool::ANY, 0u8..25, 0u8..61)),
        ) {
            let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
            match offset {
                None => text.push('Z'),
                Some((plus, h, m)) => text.push_str(&format!("{}{h:02}:{m:02}", if plus { '+' } else { '-' })),
            }
            proptest::prop_assert_eq!(parse(&text), reference(&text), "{}", text);
        }
    }

    /// The byte writer agrees with `fmt` over the whole range a claim can hold.
    #[test]
    fn writer_agrees_with_fmt() {
        let mut t = 0i64;
        while t <= 253_402_300_799 {
            let at = OffsetDateTime::from_unix_timestamp(t).unwrap();
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            );
            assert_eq!(format(at), expected);
            assert_eq!(parse(&expected), Some(at));
            t += 86_399 * 37 + 12_345;
        }
        let last = OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap();
        assert_eq!(format(last), "9999-12-31T23:59:59Z");
    }

    /// An instant held at another offset is written as the same instant in UTC.
    #[test]
    fn writes_other_offsets_in_utc() {
        let t = OffsetDateTime::from_unix_timestamp(1_640_995_200).unwrap();
        for (h, m) in [(5, 30), (-8, 0), (14, 0), (-23, -59)] {
            let offset = time::UtcOffset::from_hms(h, m, 0).unwrap();
            assert_eq!(
                format(t.to_offset(offset)),
                "2022-01-01T00:00:00Z",
                "{offset}"
            );
        }
    }

    #[test]
    fn parses_the_accepted_forms() {
        let t = parse("2022-01-01T00:00:00+00:00").unwrap();
        assert_eq!(t.unix_timestamp(), 1_640_995_200);
        assert_eq!(parse("2022-01-01T00:00:00Z"), Some(t));
        assert_eq!(parse("2022-01-01T01:30:00+01:30"), Some(t));
        assert_eq!(parse("2021-12-31T23:00:00-01:00"), Some(t));
        assert_eq!(format(t), "2022-01-01T00:00:00Z");
        assert_eq!(parse(&format(t)), Some(t));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "2022-01-01t00:00:00Z",
            "2022-01-01T00:00:00z",
            "2022-01-01 00:00:00Z",
            "2022-01-01T00:00:00",
            "2022-01-01T00:00:00.5Z",
            "2022-01-01T00:00:00.000+00:00",
            "2016-12-31T23:59:60Z",
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "+10000-01-01T00:00:00Z",
            "2022-02-30T00:00:00Z",
            "2022-13-01T00:00:00Z",
            "2022-01-01T24:00:00Z",
            "2022-01-01T00:00:00+24:00",
            "2022-01-01T00:00:00+99:99",
            "2022-01-01T00:00:00+0000",
            "2022-01-01T00:00:00-00:60",
            "1640995200",
            "2022-01-01T00:00:00Z\n",
            "２022-01-01T00:00:00Z",
            "-022-01-01T00:00:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        // A character that is not a digit, in any digit's place, in both forms.
        for valid in ["2022-01-01T00:00:00Z", "2022-01-01T00:00:00+01:00"] {
            assert!(parse(valid).is_some());
            for at in (0..valid.len()).filter(|&i| valid.as_bytes()[i].is_ascii_digit()) {
                for c in [b'/', b':', b'a', b' ', b'+', 0x7f, b'0' - 1, b'9' + 1] {
                    let mut bytes = valid.as_bytes().to_vec();
                    bytes[at] = c;
                    let text = String::from_utf8(bytes).unwrap();
                    assert_eq!(parse(&text), None, "{text:?}");
                }
            }
        }
        // The largest offsets at the edges of the range neither panic nor leave it.
        assert!(parse("9999-12-31T23:59:59-23:59").is_none());
        assert!(parse("1970-01-01T00:00:00+23:59").is_none());
        assert!(parse("9999-12-31T23:59:59+23:59").is_some());
    }
}
