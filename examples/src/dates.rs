//! Instants on the command line: consent periods are typed as calendar dates
//! (UTC) or RFC 3339 instants and stored as Unix milliseconds.

use anyhow::{bail, Context as _, Result};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

const DAY_MS: i128 = 86_400_000;

/// Which end of a period a date stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A date means its first millisecond.
    Start,
    /// A date means its last millisecond.
    End,
}

/// `YYYY-MM-DD` (UTC; the first or last millisecond of the day, by `bound`)
/// or an RFC 3339 instant, as Unix milliseconds.
pub fn parse_instant(text: &str, bound: Bound) -> Result<u64> {
    let text = text.trim();
    let ms: i128 = match Date::parse(text, format_description!("[year]-[month]-[day]")) {
        Ok(date) => {
            let start = i128::from(date.midnight().assume_utc().unix_timestamp()) * 1000;
            match bound {
                Bound::Start => start,
                Bound::End => start + DAY_MS - 1,
            }
        }
        Err(_) => {
            let instant = OffsetDateTime::parse(text, &Rfc3339).with_context(|| {
                format!("`{text}` is neither a date (YYYY-MM-DD) nor an RFC 3339 instant")
            })?;
            instant.unix_timestamp_nanos() / 1_000_000
        }
    };
    if ms < 0 {
        bail!("`{text}` is before 1970, which a consent period cannot express here");
    }
    u64::try_from(ms).with_context(|| format!("`{text}` is out of range"))
}

/// Unix milliseconds for people: the date alone when the instant is the
/// first (`Bound::Start`) or last (`Bound::End`) millisecond of a UTC day,
/// else RFC 3339.
pub fn format_instant(ms: i64, bound: Bound) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let Ok(instant) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return format!("{ms} ms");
    };
    let at_day_edge = match bound {
        Bound::Start => i128::from(ms).rem_euclid(DAY_MS) == 0,
        Bound::End => (i128::from(ms) + 1).rem_euclid(DAY_MS) == 0,
    };
    let formatted = if at_day_edge {
        instant
            .date()
            .format(format_description!("[year]-[month]-[day]"))
    } else {
        instant.format(&Rfc3339)
    };
    formatted.unwrap_or_else(|_| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_utc_days() {
        let start = parse_instant("2026-01-15", Bound::Start).unwrap();
        let end = parse_instant("2026-01-15", Bound::End).unwrap();
        assert_eq!(start, 1_768_435_200_000);
        assert_eq!(end - start, 86_400_000 - 1);
        assert_eq!(format_instant(start as i64, Bound::Start), "2026-01-15");
        assert_eq!(format_instant(end as i64, Bound::End), "2026-01-15");
        // The same instant at the other bound is not a whole day.
        assert_eq!(
            format_instant(start as i64, Bound::End),
            "2026-01-15T00:00:00Z"
        );
    }

    #[test]
    fn instants_keep_their_offset() {
        let ms = parse_instant("2026-01-15T10:30:00+02:00", Bound::Start).unwrap();
        assert_eq!(ms, 1_768_435_200_000 + (8 * 60 + 30) * 60_000);
        assert_eq!(
            format_instant(ms as i64, Bound::Start),
            "2026-01-15T08:30:00Z"
        );
    }

    #[test]
    fn nonsense_and_pre_epoch_are_refused() {
        let error = parse_instant("next tuesday", Bound::Start).unwrap_err();
        assert!(error.to_string().contains("neither a date"), "{error}");
        assert!(parse_instant("2026-02-30", Bound::Start).is_err());
        assert!(parse_instant("1969-12-31", Bound::Start).is_err());
    }
}
