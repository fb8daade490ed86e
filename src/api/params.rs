//! Request parameters as Prometheus reads them (`r.FormValue`: form body first, then the URL
//! query) and the parsers for times, durations and series selectors.

use super::error::ApiError;
use argus_query::calendar::days_from_civil;
use argus_storage::Matcher;

/// `-292273086-05-16T16:47:06Z` in ms, the default start of series/label queries.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// `292277025-08-18T07:12:54.999Z` in ms, the default end.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// Largest accepted form body (Prometheus has none; Grafana's bodies are far below this).
pub const MAX_FORM_BYTES: usize = 8 << 20;

/// All `name=value` pairs of a request, form body pairs first.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses the URL query and (when the body is a form) the body.
    pub fn new(query: Option<&str>, form_body: Option<&[u8]>) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(body) = form_body {
            pairs = serde_urlencoded::from_bytes(body)
                .map_err(|e| ApiError::bad_data(format!("error parsing form values: {e}")))?;
        }
        if let Some(q) = query {
            let more: Vec<(String, String)> = serde_urlencoded::from_str(q)
                .map_err(|e| ApiError::bad_data(format!("error parsing form values: {e}")))?;
            pairs.extend(more);
        }
        Ok(Params { pairs })
    }

    /// The first value of `name`, or None when absent or empty (like Go's `FormValue`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// An optional time parameter (Prometheus's `parseTimeParam`): parsed, or `default` when
    /// absent; errors read `Invalid time value for 'name': …`.
    pub fn time_or(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => parse_time(s).map_err(|e| {
                ApiError::invalid_param(name, format!("Invalid time value for '{name}': {e}"))
            }),
        }
    }

    /// A required time parameter.
    pub fn time(&self, name: &str) -> Result<i64, ApiError> {
        parse_time(self.get(name).unwrap_or("")).map_err(|e| ApiError::invalid_param(name, e))
    }

    /// `limit`: absent or 0 means none; negative or non-numeric is an error.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(usize::MAX),
            Some(s) => match s.parse::<i64>() {
                Ok(0) => Ok(usize::MAX),
                Ok(n) if n > 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                Ok(_) => Err(ApiError::invalid_param(
                    "limit",
                    "limit must be non-negative",
                )),
                Err(_) => Err(ApiError::invalid_param(
                    "limit",
                    format!("cannot parse {s:?} to a valid limit"),
                )),
            },
        }
    }

    /// `match[]` selectors, each as one or more matcher sets (`or` alternatives).
    pub fn selectors(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        let mut out = Vec::new();
        for s in self.all("match[]") {
            out.extend(parse_selector(s).map_err(|e| {
                if e.contains("at least one non-empty matcher") {
                    ApiError::bad_data("match[] must contain at least one non-empty matcher")
                } else {
                    ApiError::invalid_param("match[]", e)
                }
            })?);
        }
        Ok(out)
    }
}

/// `end - start` in ms, checked: `end` before `start` is an error, and so is a span that does
/// not fit in i64 (times go to ±9.2·10¹⁸ ms, so `start=-9e15&end=9e15` would wrap).
pub fn checked_span_ms(start: i64, end: i64) -> Result<i64, ApiError> {
    if end < start {
        return Err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    end.checked_sub(start).ok_or_else(|| {
        ApiError::bad_data("time range too large: end - start does not fit in 64-bit milliseconds")
    })
}

/// Prometheus's `parseTime`: Unix seconds as a float (rounded to ms), or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid timestamp");
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

/// Prometheus's `parseDuration`: float seconds or a duration string; returns ns.
pub fn parse_duration_ns(s: &str) -> Result<i128, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ns = f * 1e9;
        if !ns.is_finite() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ns as i128);
    }
    crate::config::parse_duration(s)
        .map(|d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

/// Parses a series selector (`up{job="a"}`) into matcher sets (one per `or` alternative), through
/// the engine's guarded parser: the one selector parser of every endpoint.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    argus_query::parse_selector(s).map_err(|e| e.message)
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
            assert_eq!(
                parse_time(bad),
                Err(format!("cannot parse {bad:?} to a valid timestamp")),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("15"), Ok(15_000_000_000));
        assert_eq!(parse_duration_ns("0.5"), Ok(500_000_000));
        assert_eq!(parse_duration_ns("1m30s"), Ok(90_000_000_000));
        assert_eq!(
            parse_duration_ns("x"),
            Err("cannot parse \"x\" to a valid duration".into())
        );
        assert!(parse_duration_ns("1e30").unwrap_err().contains("overflows"));
    }

    #[test]
    fn params_body_first_and_repeated() {
        let p = Params::new(Some("a=2&match[]=x&empty="), Some(b"a=1&match%5B%5D=y")).unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.all("match[]"), vec!["y", "x"]);
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.get("missing"), None);
        assert!(
            Params::new(Some("limit=-1"), None)
                .unwrap()
                .limit()
                .is_err()
        );
        assert_eq!(
            Params::new(Some("limit=0"), None).unwrap().limit().unwrap(),
            usize::MAX
        );
    }

    #[test]
    fn selectors() {
        let sets = parse_selector(r#"up{job=~"a|b"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].len(), 2);
        assert!(parse_selector("rate(up[5m])").is_err());
        assert!(parse_selector(r#"{job=~".*"}"#).is_err());
        assert!(parse_selector("up{").is_err());
    }
}
