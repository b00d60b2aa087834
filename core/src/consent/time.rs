//! FHIR `date` / `dateTime` text to Unix milliseconds (UTC) and back.
//!
//! FHIR periods are inclusive "with the precision of the value": an `end` of
//! `2027-01-15` includes every instant of that day. So a value is read as the
//! span its precision names (a year, a month, a day, a second, or a fraction
//! of one) and a `start` takes the first millisecond of the span, an `end` the
//! last. A date without a time is a UTC day. A time carries its offset
//! (FHIR requires one) and is converted to UTC.
//!
//! Writing is the exact inverse on millisecond values: a bound that falls on
//! a span boundary is written at that precision (`2027-01-15`,
//! `…T10:00:00Z`), anything else with three fraction digits, so reading what
//! was written gives back the same millisecond.

const MS_PER_DAY: i64 = 86_400_000;

/// First and last representable instants: years 0001 through 9999.
const MIN_MS: i64 = -62_135_596_800_000; // 0001-01-01T00:00:00Z
const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// Which end of a span a value stands for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Bound {
    /// First millisecond of the span (`Period.start`, `Consent.dateTime`).
    Start,
    /// Last millisecond of the span (`Period.end`).
    End,
}

/// True if `ms` can be written as a FHIR dateTime (years 0001–9999).
pub(crate) fn in_range(ms: i64) -> bool {
    (MIN_MS..=MAX_MS).contains(&ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Both values are small and non-negative by construction.
    let day = u32::try_from(day_of_year - (153 * month_from_march + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    })
    .unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads exactly `len` ASCII digits at `at`.
fn digits(bytes: &[u8], at: usize, len: usize) -> Option<u32> {
    let slice = bytes.get(at..at + len)?;
    slice.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn expect(bytes: &[u8], at: usize, byte: u8) -> Option<()> {
    (bytes.get(at) == Some(&byte)).then_some(())
}

/// Parses a FHIR `date` or `dateTime` into the first (`Start`) or last
/// (`End`) millisecond of the span it names. `None` if the text is not a
/// valid FHIR date/dateTime or falls outside years 0001–9999 once in UTC.
pub(crate) fn parse(text: &str, bound: Bound) -> Option<i64> {
    let b = text.as_bytes();
    let year = i64::from(digits(b, 0, 4)?);
    if year == 0 {
        return None;
    }
    // (first millisecond of the span, its length in milliseconds)
    let (first, span) = if b.len() == 4 {
        let start = days_from_civil(year, 1, 1) * MS_PER_DAY;
        (start, days_from_civil(year + 1, 1, 1) * MS_PER_DAY - start)
    } else {
        expect(b, 4, b'-')?;
        let month = digits(b, 5, 2)?;
        if !(1..=12).contains(&month) {
            return None;
        }
        if b.len() == 7 {
            let start = days_from_civil(year, month, 1) * MS_PER_DAY;
            let next = if month == 12 {
                days_from_civil(year + 1, 1, 1)
            } else {
                days_from_civil(year, month + 1, 1)
            };
            (start, next * MS_PER_DAY - start)
        } else {
            expect(b, 7, b'-')?;
            let day = digits(b, 8, 2)?;
            if day == 0 || day > days_in_month(year, month) {
                return None;
            }
            let midnight = days_from_civil(year, month, day) * MS_PER_DAY;
            if b.len() == 10 {
                (midnight, MS_PER_DAY)
            } else {
                parse_time(b, midnight)?
            }
        }
    };
    let ms = match bound {
        Bound::Start => first,
        Bound::End => first + span - 1,
    };
    in_range(ms).then_some(ms)
}

/// Parses `Thh:mm:ss(.f{1,9})?(Z|±hh:mm)` starting at byte 10.
fn parse_time(b: &[u8], midnight: i64) -> Option<(i64, i64)> {
    expect(b, 10, b'T')?;
    let hour = digits(b, 11, 2)?;
    expect(b, 13, b':')?;
    let minute = digits(b, 14, 2)?;
    expect(b, 16, b':')?;
    let second = digits(b, 17, 2)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut fraction_ms = 0i64;
    let mut span = 1000i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let count = at - start;
        if !(1..=9).contains(&count) {
            return None;
        }
        // Keep milliseconds; finer digits are below what the model stores.
        let mut value = 0i64;
        for i in 0..3 {
            let digit = b
                .get(start + i)
                .filter(|_| i < count)
                .map_or(0, |d| d - b'0');
            value = value * 10 + i64::from(digit);
        }
        fraction_ms = value;
        span = match count {
            1 => 100,
            2 => 10,
            _ => 1,
        };
    }
    let offset_minutes = match b.get(at) {
        Some(b'Z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let hours = digits(b, at + 1, 2)?;
            expect(b, at + 3, b':')?;
            let minutes = digits(b, at + 4, 2)?;
            if minutes > 59 || hours > 14 || (hours == 14 && minutes > 0) {
                return None;
            }
            at += 6;
            let total = i64::from(hours * 60 + minutes);
            if sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    if at != b.len() {
        return None;
    }
    let local = midnight
        + i64::from(hour) * 3_600_000
        + i64::from(minute) * 60_000
        + i64::from(second) * 1000
        + fraction_ms;
    Some((local - offset_minutes * 60_000, span))
}

/// Writes `ms` so that [`parse`] with the same `bound` gives `ms` back.
///
/// Callers keep `ms` within [`in_range`]; outside it the text is still
/// produced (no panic) but does not parse.
pub(crate) fn format(ms: i64, bound: Bound) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let date = format!("{year:04}-{month:02}-{day:02}");
    let whole_day = match bound {
        Bound::Start => in_day == 0,
        Bound::End => in_day == MS_PER_DAY - 1,
    };
    if whole_day {
        return date;
    }
    let hour = in_day / 3_600_000;
    let minute = in_day / 60_000 % 60;
    let second = in_day / 1000 % 60;
    let fraction = in_day % 1000;
    let whole_second = match bound {
        Bound::Start => fraction == 0,
        Bound::End => fraction == 999,
    };
    if whole_second {
        format!("{date}T{hour:02}:{minute:02}:{second:02}Z")
    } else {
        format!("{date}T{hour:02}:{minute:02}:{second:02}.{fraction:03}Z")
    }
}

/// `ms` as a FHIR `instant` (always with a time and `Z`).
pub(crate) fn format_instant(ms: i64) -> String {
    let text = format(ms, Bound::Start);
    if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY_2026_01_15: i64 = 1_768_435_200_000;

    #[test]
    fn dates_take_the_whole_day() {
        assert_eq!(parse("2026-01-15", Bound::Start), Some(DAY_2026_01_15));
        assert_eq!(
            parse("2026-01-15", Bound::End),
            Some(DAY_2026_01_15 + MS_PER_DAY - 1)
        );
        assert_eq!(parse("1970-01-01", Bound::Start), Some(0));
        assert_eq!(parse("1969-12-31", Bound::End), Some(-1));
    }

    #[test]
    fn partial_dates_take_their_year_or_month() {
        assert_eq!(
            parse("2024", Bound::Start),
            parse("2024-01-01", Bound::Start)
        );
        assert_eq!(parse("2024", Bound::End), parse("2024-12-31", Bound::End));
        assert_eq!(
            parse("2024-02", Bound::End),
            parse("2024-02-29", Bound::End)
        );
        assert_eq!(
            parse("2023-02", Bound::End),
            parse("2023-02-28", Bound::End)
        );
        assert_eq!(
            parse("2024-12", Bound::End),
            parse("2024-12-31", Bound::End)
        );
    }

    #[test]
    fn times_honour_offsets_and_precision() {
        let utc = parse("2026-01-15T10:00:00Z", Bound::Start);
        assert_eq!(utc, Some(DAY_2026_01_15 + 10 * 3_600_000));
        assert_eq!(parse("2026-01-15T12:30:00+02:30", Bound::Start), utc);
        assert_eq!(parse("2026-01-15T05:00:00-05:00", Bound::Start), utc);
        assert_eq!(
            parse("2026-01-15T10:00:00Z", Bound::End),
            utc.map(|t| t + 999)
        );
        assert_eq!(
            parse("2026-01-15T10:00:00.5Z", Bound::Start),
            utc.map(|t| t + 500)
        );
        assert_eq!(
            parse("2026-01-15T10:00:00.5Z", Bound::End),
            utc.map(|t| t + 599)
        );
        assert_eq!(
            parse("2026-01-15T10:00:00.12Z", Bound::End),
            utc.map(|t| t + 129)
        );
        assert_eq!(
            parse("2026-01-15T10:00:00.123456789Z", Bound::End),
            utc.map(|t| t + 123)
        );
    }

    #[test]
    fn malformed_values_are_rejected() {
        for text in [
            "",
            "0000",
            "2026-1-15",
            "2026-13-01",
            "2026-02-30",
            "2023-02-29",
            "2026-01-15T10:00Z",
            "2026-01-15T10:00:00",
            "2026-01-15T24:00:00Z",
            "2026-01-15T10:00:00+15:00",
            "2026-01-15T10:00:00+14:30",
            "2026-01-15T10:00:00.Z",
            "2026-01-15T10:00:00.1234567890Z",
            "2026-01-15 ",
            "2026-01-15T10:00:00Zx",
            "20260115",
            "0001-01-01T00:00:00+01:00",
            "٢٠٢٦",
        ] {
            assert_eq!(parse(text, Bound::Start), None, "{text}");
            assert_eq!(parse(text, Bound::End), None, "{text}");
        }
    }

    #[test]
    fn boundaries_are_written_at_their_precision() {
        assert_eq!(format(DAY_2026_01_15, Bound::Start), "2026-01-15");
        assert_eq!(format(DAY_2026_01_15 - 1, Bound::End), "2026-01-14");
        assert_eq!(
            format(DAY_2026_01_15 + 1000, Bound::Start),
            "2026-01-15T00:00:01Z"
        );
        assert_eq!(
            format(DAY_2026_01_15 + 999, Bound::End),
            "2026-01-15T00:00:00Z"
        );
        assert_eq!(
            format(DAY_2026_01_15 + 5, Bound::Start),
            "2026-01-15T00:00:00.005Z"
        );
        assert_eq!(format(MIN_MS, Bound::Start), "0001-01-01");
        assert_eq!(format(MAX_MS, Bound::End), "9999-12-31");
    }

    #[test]
    fn format_never_panics_at_the_extremes() {
        for ms in [i64::MIN, i64::MAX, MIN_MS - 1, MAX_MS + 1] {
            let text = format(ms, Bound::Start);
            assert_eq!(parse(&text, Bound::Start), None, "{text}");
        }
    }

    proptest! {
        #[test]
        fn written_values_read_back(ms in MIN_MS..=MAX_MS, end in any::<bool>()) {
            let bound = if end { Bound::End } else { Bound::Start };
            prop_assert_eq!(parse(&format(ms, bound), bound), Some(ms));
        }

        #[test]
        fn civil_days_round_trip(days in -800_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = parse(&text, Bound::Start);
            let _ = parse(&text, Bound::End);
        }
    }
}
