//! Time as the Prometheus APIs read and write it: `parseTime` (float seconds or RFC 3339), Go's
//! `time.Time` JSON (RFC 3339 with trimmed nanoseconds), RFC 3339 with milliseconds and the
//! compact snapshot form. Calendar arithmetic is `argus_query::calendar`'s.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use argus_query::calendar::{civil_from_days, days_from_civil};
use std::fmt::Write as _;

/// `-292273086-05-16T16:47:06Z` in ms, the default start of series/label queries.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// `292277025-08-18T07:12:54.999Z` in ms, the default end.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// A time parameter that is neither float seconds nor RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {0:?} to a valid timestamp")]
pub struct BadTimestamp(pub String);

/// Current time in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Prometheus's `parseTime`: Unix seconds as a float (rounded to ms), or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, BadTimestamp> {
    let bad = || BadTimestamp(s.to_string());
    let looks_numeric = s
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    if let Some(f) = Some(s)
        .filter(|s| looks_numeric && !s.is_empty())
        .and_then(|s| s.parse::<f64>().ok())
    {
        let secs = f.trunc();
        if !f.is_finite() || secs.abs() > 9.0e15 {
            return Err(bad());
        }
        let ms = ((f - secs) * 1000.0).round();
        return Ok(secs as i64 * 1000 + ms as i64);
    }
    match s {
        "-292273086-05-16T16:47:06Z" => return Ok(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(MAX_TIME_MS),
        _ => {}
    }
    parse_rfc3339(s).ok_or_else(bad)
}

fn num(s: &str, range: std::ops::Range<usize>) -> Option<u32> {
    let part = s.get(range)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` → ms.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (y, mo, d) = (num(s, 0..4)?, num(s, 5..7)?, num(s, 8..10)?);
    let (h, mi, sec) = (num(s, 11..13)?, num(s, 14..16)?, num(s, 17..19)?);
    let days_in_month = [
        31,
        if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) {
            29
        } else {
            28
        },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let dim = *days_in_month.get(usize::try_from(mo).ok()?.checked_sub(1)?)?;
    if d == 0 || d > dim || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut ms: i64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        let digits = frac.get(..n)?;
        let padded = format!("{digits:0<9}");
        let ns: i64 = padded.parse().ok()?;
        ms = ns / 1_000_000;
        rest = frac.get(n..)?;
    }
    let offset_s: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let (oh, om) = (num(rest, 1..3)?, num(rest, 4..6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * i64::from(oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset_s;
    Some(secs * 1000 + ms)
}

/// Formats nanoseconds since the epoch as Go's `time.Time` JSON (RFC 3339 with trimmed
/// fractional seconds, UTC `Z`).
pub fn rfc3339_nano(unix_nanos: i64) -> String {
    let secs = unix_nanos.div_euclid(1_000_000_000);
    let nanos = unix_nanos.rem_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Splits ms since the epoch into (year, month, day, hour, minute, second, ms) in UTC.
fn split_utc(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    (
        y,
        mo,
        d,
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ms.rem_euclid(1000) as u32,
    )
}

/// RFC 3339 in UTC with milliseconds when non-zero (`2024-01-02T03:04:05.678Z`).
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s, frac) = split_utc(ms);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
    out.push('Z');
    out
}

/// The compact form Prometheus uses for snapshot names (`20171210T211224Z`).
pub fn compact_utc(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split_utc(ms);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let check = |s: &str, want: i64| assert_eq!(parse_time(s), Ok(want), "{s}");
        check("1435781451.781", 1435781451781);
        check("1435781451", 1435781451000);
        check("1.0006", 1001);
        check("1.0004", 1000);
        check("-1.5", -1500);
        check("2015-07-01T20:10:51.781Z", 1435781451781);
        check("2015-07-01T22:10:51.781+02:00", 1435781451781);
        check("2015-07-01T20:10:51Z", 1435781451000);
        check("1970-01-01T00:00:00.123456789Z", 123);
        check("-292273086-05-16T16:47:06Z", MIN_TIME_MS);
        for bad in [
            "",
            "abc",
            "2015-07-01",
            "2015-13-01T00:00:00Z",
            "2015-02-30T00:00:00Z",
            "NaN",
            "inf",
            "1e300",
            "2015-07-01T20:10:51",
        ] {
            assert_eq!(parse_time(bad), Err(BadTimestamp(bad.to_string())), "{bad}");
        }
        assert_eq!(
            BadTimestamp("x".into()).to_string(),
            "cannot parse \"x\" to a valid timestamp"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1435781451781), "2015-07-01T20:10:51.781Z");
        assert_eq!(compact_utc(1512940344000), "20171210T211224Z");
    }
}
