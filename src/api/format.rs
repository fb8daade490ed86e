//! Number, time and result formatting exactly as Prometheus's JSON API writes them.
//!
//! Values: Go's `strconv.FormatFloat(v, 'f', -1, 64)` with `NaN`, `+Inf`, `-Inf`. Timestamps: seconds with the
//! millisecond fraction written as three digits when non-zero (`jsonutil.MarshalTimestamp`).

use argus_query::Value;
use argus_query::calendar::civil_from_days;
use argus_storage::Labels;
use std::fmt::Write as _;

/// Appends `v` formatted as Prometheus writes sample values (without quotes): Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)`, i.e. the shortest round-trip digits and never an
/// exponent (checked against Prometheus 2.42: `1e-7` → `0.0000001`, `1e21` →
/// `1000000000000000000000`), plus `NaN`, `+Inf`, `-Inf`.
pub fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // Rust's `Display` for f64 is the shortest round-trip decimal without exponent, the
        // same digits as Go's 'f' with precision -1 ("-0" for negative zero).
        let _ = write!(out, "{v}");
    }
}

/// `v` as a string, see [`push_float`].
pub fn float_string(v: f64) -> String {
    let mut s = String::new();
    push_float(&mut s, v);
    s
}

/// Appends a ms timestamp as float seconds (`1435781451.781`, `1435781451`, `-1.500`).
pub fn push_timestamp(out: &mut String, t: i64) {
    let abs = t.unsigned_abs();
    if t < 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a label set as a JSON object in label order.
pub fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, &l.name);
        out.push(':');
        push_json_str(out, &l.value);
    }
    out.push('}');
}

fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_timestamp(out, t);
    out.push_str(",\"");
    push_float(out, v);
    out.push_str("\"]");
}

/// Appends the `data` object of a query response: `{"resultType":…,"result":…}`.
pub fn push_query_data(out: &mut String, v: &Value) {
    match v {
        Value::Scalar(t, x) => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            push_point(out, *t, *x);
        }
        Value::String(t, s) => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            push_timestamp(out, *t);
            out.push(',');
            push_json_str(out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(out, &s.labels);
                match &s.h {
                    Some(h) => {
                        out.push_str(",\"histogram\":");
                        super::query_json::push_histogram_point(out, s.t, h);
                    }
                    None => {
                        out.push_str(",\"value\":");
                        push_point(out, s.t, s.v);
                    }
                }
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(out, &s.labels);
                if !s.points.is_empty() || s.histograms.is_empty() {
                    out.push_str(",\"values\":[");
                    for (j, (t, v)) in s.points.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        push_point(out, *t, *v);
                    }
                    out.push(']');
                }
                if !s.histograms.is_empty() {
                    out.push_str(",\"histograms\":[");
                    for (j, (t, h)) in s.histograms.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        super::query_json::push_histogram_point(out, *t, h);
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push(']');
        }
    }
    out.push('}');
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
    use argus_query::{MatrixSeries, VectorSample};

    #[test]
    fn floats_like_go() {
        let check = |v: f64, want: &str| assert_eq!(float_string(v), want, "{v:e}");
        check(0.0, "0");
        check(-0.0, "-0");
        check(1.0, "1");
        check(1.5, "1.5");
        check(0.1 + 0.2, "0.30000000000000004");
        check(123456789.0, "123456789");
        check(1e20, "100000000000000000000");
        check(1e21, "1000000000000000000000");
        check(1.5e22, "15000000000000000000000");
        check(0.000001, "0.000001");
        check(0.0000001, "0.0000001");
        check(-2.5e-10, "-0.00000000025");
        check(f64::NAN, "NaN");
        check(f64::INFINITY, "+Inf");
        check(f64::NEG_INFINITY, "-Inf");
        assert_eq!(float_string(f64::MAX).len(), 309);
        assert!(
            float_string(5e-324).starts_with("0.0000") && float_string(5e-324).ends_with("0005")
        );
    }

    #[test]
    fn timestamps_like_prometheus() {
        let check = |t: i64, want: &str| {
            let mut s = String::new();
            push_timestamp(&mut s, t);
            assert_eq!(s, want);
        };
        check(1435781451781, "1435781451.781");
        check(1435781451000, "1435781451");
        check(1500, "1.500");
        check(5, "0.005");
        check(-1500, "-1.500");
        check(0, "0");
    }

    #[test]
    fn query_results_json() {
        let l = Labels::from_pairs(&[("__name__", "up"), ("job", "a\"b")]);
        let check = |v: Value, want: &str| {
            let mut s = String::new();
            push_query_data(&mut s, &v);
            assert_eq!(s, want);
            serde_json::from_str::<serde_json::Value>(&s).unwrap();
        };
        check(
            Value::Scalar(1000, 2.0),
            r#"{"resultType":"scalar","result":[1,"2"]}"#,
        );
        check(
            Value::String(1, "a<b".into()),
            r#"{"resultType":"string","result":[0.001,"a\u003cb"]}"#,
        );
        check(
            Value::Vector(vec![VectorSample {
                labels: l.clone(),
                t: 1500,
                v: f64::NAN,
                h: None,
            }]),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1.500,"NaN"]}]}"#,
        );
        check(
            Value::Matrix(vec![MatrixSeries {
                labels: l,
                points: vec![(0, 1.0), (15000, 0.5)],
                histograms: vec![],
            }]),
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\"b"},"values":[[0,"1"],[15,"0.5"]]}]}"#,
        );
        check(
            Value::Vector(vec![]),
            r#"{"resultType":"vector","result":[]}"#,
        );
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1435781451781), "2015-07-01T20:10:51.781Z");
        assert_eq!(compact_utc(1512940344000), "20171210T211224Z");
    }
}
