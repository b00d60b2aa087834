//! Instants on the command line: consent periods are typed as calendar dates
//! (UTC) or RFC 3339 instants and stored as Unix milliseconds; every instant
//! the CLI prints has one fixed form and width ([`format_instant`]).

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

/// Unix milliseconds as the CLI prints every instant, in tables, in text and
/// in `--json`: RFC 3339 in UTC with exactly three fractional digits
/// (`2026-12-02T20:40:01.500Z`). One width for every instant of the years
/// 0000–9999 keeps aligned columns aligned whatever the clock says; an
/// instant outside them (not expressible in RFC 3339) prints as
/// `<ms> ms`.
pub fn format_instant(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .filter(|instant| (0..=9999).contains(&instant.year()))
        .and_then(|instant| {
            instant
                .format(format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                ))
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// [`format_instant`] of an unsigned millisecond count (entry times).
pub fn format_instant_u64(ms: u64) -> String {
    i64::try_from(ms).map_or_else(|_| format!("{ms} ms"), format_instant)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Width of every instant the CLI prints: `2026-12-02T20:40:01.500Z`.
    const INSTANT_WIDTH: usize = 24;

    #[test]
    fn dates_are_whole_utc_days() {
        let start = parse_instant("2026-01-15", Bound::Start).unwrap();
        let end = parse_instant("2026-01-15", Bound::End).unwrap();
        assert_eq!(start, 1_768_435_200_000);
        assert_eq!(end - start, 86_400_000 - 1);
        assert_eq!(format_instant(start as i64), "2026-01-15T00:00:00.000Z");
        assert_eq!(format_instant(end as i64), "2026-01-15T23:59:59.999Z");
    }

    #[test]
    fn instants_keep_their_offset() {
        let ms = parse_instant("2026-01-15T10:30:00+02:00", Bound::Start).unwrap();
        assert_eq!(ms, 1_768_435_200_000 + (8 * 60 + 30) * 60_000);
        assert_eq!(format_instant(ms as i64), "2026-01-15T08:30:00.000Z");
    }

    #[test]
    fn every_instant_has_three_fractional_digits_and_one_width() {
        // The clock's milliseconds decide how many fractional digits plain
        // RFC 3339 prints (`.5`, `.05`, none): here they never change the width.
        let base = parse_instant("2026-12-02T20:40:01Z", Bound::Start).unwrap() as i64;
        let printed: Vec<String> = [0, 5, 50, 500, 999, 1]
            .iter()
            .map(|extra| format_instant(base + extra))
            .collect();
        assert_eq!(
            printed,
            [
                "2026-12-02T20:40:01.000Z",
                "2026-12-02T20:40:01.005Z",
                "2026-12-02T20:40:01.050Z",
                "2026-12-02T20:40:01.500Z",
                "2026-12-02T20:40:01.999Z",
                "2026-12-02T20:40:01.001Z",
            ]
        );
        for ms in [0, 1, 86_399_999, 253_402_300_799_999] {
            assert_eq!(format_instant(ms).chars().count(), INSTANT_WIDTH, "{ms}");
        }
        // Back through the parser: the printed text is a valid instant.
        assert_eq!(
            parse_instant(&format_instant(base + 5), Bound::Start).unwrap() as i64,
            base + 5
        );
    }

    #[test]
    fn instants_outside_rfc_3339_say_so() {
        assert_eq!(format_instant(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_instant(253_402_300_800_000), "253402300800000 ms");
        assert_eq!(format_instant(i64::MIN), format!("{} ms", i64::MIN));
        assert_eq!(format_instant_u64(u64::MAX), format!("{} ms", u64::MAX));
    }

    #[test]
    fn nonsense_and_pre_epoch_are_refused() {
        let error = parse_instant("next tuesday", Bound::Start).unwrap_err();
        assert!(error.to_string().contains("neither a date"), "{error}");
        assert!(parse_instant("2026-02-30", Bound::Start).is_err());
        assert!(parse_instant("1969-12-31", Bound::Start).is_err());
    }
}
