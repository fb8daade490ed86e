//! Number, time and result formatting exactly as Prometheus's JSON API writes them.
//!
//! Values: `argus_query::gofloat::push_f` (Go's `strconv.FormatFloat(v, 'f', -1, 64)`). Timestamps: seconds with the
//! millisecond fraction written as three digits when non-zero (`jsonutil.MarshalTimestamp`).

pub use crate::util::json::{push_json_str, push_labels};
use argus_query::Value;
use argus_query::gofloat::push_json as push_f;
use std::fmt::Write as _;

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

fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_timestamp(out, t);
    out.push_str(",\"");
    push_f(out, v);
    out.push_str("\"]");
}

/// Appends the `data` object of a query response: `{"resultType":…,"result":…}`.
pub fn push_query_data(out: &mut String, v: &Value) {
    push_query_data_chunked(out, v, None);
}

/// Size at which [`push_query_data_chunked`] hands the buffer to its `flush`.
pub const QUERY_DATA_CHUNK: usize = 256 * 1024;

/// As [`push_query_data`], but between two series (or samples) where `out` holds at least
/// [`QUERY_DATA_CHUNK`] bytes, calls `flush(out)`, which takes the bytes away (to send them) and
/// returns `false` to stop early (the client went away). Returns `false` when stopped.
pub fn push_query_data_chunked(
    out: &mut String,
    v: &Value,
    mut flush: Option<&mut dyn FnMut(&mut String) -> bool>,
) -> bool {
    let mut full = |out: &mut String| match flush.as_mut() {
        Some(f) if out.len() >= QUERY_DATA_CHUNK => f(out),
        _ => true,
    };
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
                if !full(out) {
                    return false;
                }
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
                if !full(out) {
                    return false;
                }
            }
            out.push(']');
        }
    }
    out.push('}');
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_query::{MatrixSeries, VectorSample};
    use argus_storage::Labels;

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
}
