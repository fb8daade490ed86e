//! Prometheus duration strings (`1h30m`, `15s`, `500ms`, `2d`, `1w`, `1y`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration written the Prometheus way. Serializes back to the same notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    /// Milliseconds.
    pub fn as_millis(&self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Parses a Prometheus duration: one or more `<int><unit>` with units `y w d h m s ms` in
/// descending order, or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    const UNITS: &[(&str, u64)] = &[
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("ms", 1),
        ("m", 60 * 1000),
        ("s", 1000),
    ];
    // Order of units as they must appear.
    const ORDER: &[&str] = &["y", "w", "d", "h", "m", "s", "ms"];
    let bad = || format!("not a valid duration string: {s:?}");
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_rank: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, mult) = UNITS
            .iter()
            .find(|(u, _)| rest.starts_with(u))
            .ok_or_else(bad)?;
        let rank = ORDER.iter().position(|o| o == unit).ok_or_else(bad)?;
        if last_rank.is_some_and(|r| r >= rank) {
            return Err(bad());
        }
        last_rank = Some(rank);
        rest = &rest[unit.len()..];
        total = n
            .checked_mul(*mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total))
}

impl fmt::Display for PromDuration {
    /// Formats as Prometheus's `model.Duration.String` does (`1h30m`, `0s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, mult) in [
            ("y", 365 * 24 * 3600 * 1000u64),
            ("w", 7 * 24 * 3600 * 1000),
            ("d", 24 * 3600 * 1000),
            ("h", 3600 * 1000),
            ("m", 60 * 1000),
            ("s", 1000),
            ("ms", 1),
        ] {
            if ms >= mult {
                write!(f, "{}{unit}", ms / mult)?;
                ms %= mult;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(PromDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let check = |s: &str, ms: u64, back: &str| {
            let d = parse_duration(s).unwrap();
            assert_eq!(d, Duration::from_millis(ms), "{s}");
            assert_eq!(PromDuration(d).to_string(), back);
        };
        check("15s", 15_000, "15s");
        check("1h30m", 5_400_000, "1h30m");
        check("90m", 5_400_000, "1h30m");
        check("500ms", 500, "500ms");
        check("0", 0, "0s");
        check("1d", 86_400_000, "1d");
        for bad in ["", "1", "s", "1m1h", "1.5s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
