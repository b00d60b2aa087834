//! FHIR `date`, `dateTime` and `instant` text to comparable numbers.
//!
//! Only what feature extraction needs: a partial date stands for its first
//! moment, a time without a zone is read as UTC, and everything becomes
//! milliseconds since 1970-01-01T00:00:00Z so that values written in
//! different zones compare correctly.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

/// Exactly `n` ASCII digits as a number.
fn digits(text: &str, n: usize) -> Option<u32> {
    if text.len() != n || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` → days since the epoch of its first day.
fn partial_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let year = i64::from(digits(parts.next()?, 4)?);
    let month = match parts.next() {
        Some(m) => digits(m, 2)?,
        None => 1,
    };
    let day = match parts.next() {
        Some(d) => digits(d, 2)?,
        None => 1,
    };
    if parts.next().is_some() || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// A full `YYYY-MM-DD` date → days since the epoch.
pub(crate) fn parse_date(text: &str) -> Option<i64> {
    if text.len() != 10 {
        return None;
    }
    partial_date(text)
}

/// A FHIR date (possibly partial) → days since the epoch of its first day.
pub(crate) fn parse_partial_date(text: &str) -> Option<i64> {
    partial_date(text)
}

/// A FHIR `dateTime` or `instant` → milliseconds since the epoch (UTC).
pub(crate) fn parse_date_time(text: &str) -> Option<i64> {
    // Byte-index slicing below is safe only on ASCII text.
    if !text.is_ascii() {
        return None;
    }
    let Some((date, time)) = text.split_once('T') else {
        return partial_date(text).map(|days| days * 86_400_000);
    };
    if date.len() != 10 {
        return None;
    }
    let days = partial_date(date)?;
    // Split the zone off: `Z`, `+hh:mm` or `-hh:mm`.
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0i64)
    } else if time.len() > 6 {
        let (clock, zone) = time.split_at(time.len() - 6);
        let sign = match zone.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let hours = digits(&zone[1..3], 2)?;
        let minutes = digits(&zone[4..6], 2)?;
        if &zone[3..4] != ":" || hours > 14 || minutes > 59 {
            return None;
        }
        (clock, sign * i64::from(hours * 60 + minutes))
    } else {
        (time, 0)
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (clock, None),
    };
    let mut fields = hms.split(':');
    let hour = digits(fields.next()?, 2)?;
    let minute = digits(fields.next()?, 2)?;
    let second = match fields.next() {
        Some(s) => digits(s, 2)?,
        None => 0,
    };
    if fields.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let millis = match fraction {
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded: String = f.chars().chain("000".chars()).take(3).collect();
            i64::from(padded.parse::<u32>().ok()?)
        }
        Some(_) => return None,
        None => 0,
    };
    let seconds =
        days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second)
            - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(11_017));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2023-13-01"), None);
        assert_eq!(parse_date("2023-1-01"), None);
        assert_eq!(parse_date("2023"), None);
        assert_eq!(parse_partial_date("2023"), parse_date("2023-01-01"));
        assert_eq!(parse_partial_date("2023-07"), parse_date("2023-07-01"));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
    }

    #[test]
    fn date_times_compare_across_zones() {
        let utc = parse_date_time("2020-05-01T10:00:00Z").unwrap();
        assert_eq!(parse_date_time("2020-05-01T12:00:00+02:00"), Some(utc));
        assert_eq!(parse_date_time("2020-05-01T05:30:00-04:30"), Some(utc));
        assert_eq!(parse_date_time("2020-05-01T10:00:00.5Z"), Some(utc + 500));
        assert_eq!(
            parse_date_time("2020-05-01T10:00:00.123456Z"),
            Some(utc + 123)
        );
        assert_eq!(parse_date_time("2020-05-01"), Some(18_383 * 86_400_000));
        assert_eq!(
            parse_date_time("2020"),
            parse_date_time("2020-01-01T00:00:00Z")
        );
        assert_eq!(parse_date_time("2020-05-01T25:00:00Z"), None);
        assert_eq!(parse_date_time("2020-05-01T10:00:00+2:00"), None);
        assert_eq!(parse_date_time("garbage"), None);
        assert_eq!(parse_date_time(""), None);
        assert_eq!(parse_date_time("2020-05-01T10:00:00é+02:00"), None);
        assert_eq!(parse_date_time("2020-05-01T"), None);
        assert_eq!(parse_date_time("2020-05-01T10:00:00.Z"), None);
    }
}
