//! Request parameters as Prometheus reads them (`r.FormValue`: form body first, then the URL
//! query) and the parsers for times, durations and series selectors.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::error::ApiError;
use argus_storage::Matcher;

use crate::util::time::parse_time;
pub use crate::util::time::{MAX_TIME_MS, MIN_TIME_MS};

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
            out.extend(parse_selector(s).map_err(|e| match e {
                SelectorError::MatchesEmpty(_) => {
                    ApiError::bad_data("match[] must contain at least one non-empty matcher")
                }
                SelectorError::Invalid(msg) => ApiError::invalid_param("match[]", msg),
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

/// Why a series selector was refused. `Display` is the engine's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// Every matcher (of some `or` alternative) matches the empty string: a selector that would
    /// select every series. `/api/v1/series` and friends answer it with their own wording.
    #[error("{0}")]
    MatchesEmpty(String),
    /// Not a selector, or a malformed one.
    #[error("{0}")]
    Invalid(String),
}

/// Parses a series selector (`up{job="a"}`) into matcher sets (one per `or` alternative), through
/// the engine's guarded parser: the one selector parser of every endpoint.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, SelectorError> {
    argus_query::parse_selector(s).map_err(|e| {
        // The engine words this case (its parser's or storage's check) but does not type it.
        if e.message.contains("at least one non-empty matcher") {
            SelectorError::MatchesEmpty(e.message)
        } else {
            SelectorError::Invalid(e.message)
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

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
    fn selector_errors_are_typed() {
        assert_eq!(parse_selector("{a=\"1\" or b=\"2\"}").unwrap().len(), 2);
        for s in ["{a=~\".*\"}", "{a=\"\"}", "{a=\"1\" or b=~\".*\"}"] {
            let e = parse_selector(s).unwrap_err();
            assert!(matches!(e, SelectorError::MatchesEmpty(_)), "{s}: {e:?}");
            assert!(
                e.to_string().contains("at least one non-empty matcher"),
                "{e}"
            );
        }
        for s in ["up{", "rate(up[5m])", "up offset 5m"] {
            let e = parse_selector(s).unwrap_err();
            assert!(matches!(e, SelectorError::Invalid(_)), "{s}: {e:?}");
        }
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
