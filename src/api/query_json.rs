//! Query-result JSON for native histograms and the `warnings`/`infos` envelope, as
//! Prometheus's HTTP API writes them:
//!
//! ```text
//! vector sample: {"metric":{…},"histogram":[<t>,{"count":"12","sum":"3.5","buckets":[[<rule>,"<lower>","<upper>","<count>"],…]}]}
//! matrix series: {"metric":{…},"values":[[<t>,"<v>"],…],"histograms":[[<t>,{…}],…]}   (each key only when non-empty)
//! rule:          0 = (lower, upper]   1 = [lower, upper)   2 = (lower, upper)   3 = [lower, upper]
//! ```
//!
//! Only populated buckets are written, from the most negative to the most positive, with the
//! zero bucket between them; all numbers are strings formatted like float sample values.

use super::format::{push_json_str, push_timestamp};
use argus_query::gofloat::push_json as push_float;
use argus_storage::FloatHistogram;
use argus_storage::histogram::ops;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Appends one histogram object `{"count":…,"sum":…,"buckets":[…]}`.
pub fn push_histogram(out: &mut String, h: &FloatHistogram) {
    out.push_str("{\"count\":\"");
    push_float(out, h.count);
    out.push_str("\",\"sum\":\"");
    push_float(out, h.sum);
    out.push('"');
    let mut first = true;
    for b in ops::all_buckets(h) {
        if b.count == 0.0 {
            continue;
        }
        out.push_str(if first { ",\"buckets\":[" } else { "," });
        first = false;
        let rule = match (b.lower_inclusive, b.upper_inclusive) {
            (true, true) => 3,
            (true, false) => 1,
            (false, true) => 0,
            (false, false) => 2,
        };
        out.push('[');
        out.push_str(match rule {
            0 => "0",
            1 => "1",
            2 => "2",
            _ => "3",
        });
        for v in [b.lower, b.upper, b.count] {
            out.push_str(",\"");
            push_float(out, v);
            out.push('"');
        }
        out.push(']');
    }
    if !first {
        out.push(']');
    }
    out.push('}');
}

/// Appends `[<t>,{histogram}]`.
pub fn push_histogram_point(out: &mut String, t: i64, h: &FloatHistogram) {
    out.push('[');
    push_timestamp(out, t);
    out.push(',');
    push_histogram(out, h);
    out.push(']');
}

/// A `{"status":"success","data":…}` response with the query's `warnings` and `infos`
/// (each key only when non-empty).
pub fn success_annotated(data: &str, annos: &argus_query::Annotations) -> Response {
    let mut body = String::with_capacity(data.len() + 64);
    body.push_str("{\"status\":\"success\",\"data\":");
    body.push_str(data);
    push_annotations(&mut body, annos);
    body.push('}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Appends `,"warnings":[…]` and `,"infos":[…]` for the non-empty lists of `annos`.
pub fn push_annotations(body: &mut String, annos: &argus_query::Annotations) {
    for (key, list) in [("warnings", &annos.warnings), ("infos", &annos.infos)] {
        if list.is_empty() {
            continue;
        }
        body.push_str(",\"");
        body.push_str(key);
        body.push_str("\":[");
        for (i, w) in list.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            push_json_str(body, w);
        }
        body.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_storage::Span;

    /// The shape of Prometheus's HTTP API documentation ("Native histograms"): negative buckets
    /// "open right" (rule 1), the zero bucket "closed both" (3), positive buckets "open left" (0).
    /// Schema 1, index -8: `(2^-4.5, 2^-4]`.
    #[test]
    fn documented_shape() {
        let h = FloatHistogram {
            schema: 1,
            zero_threshold: 0.001,
            zero_count: 2.0,
            count: 6.0,
            sum: 0.25,
            positive_spans: vec![Span::new(-8, 1)],
            positive_buckets: vec![1.0],
            negative_spans: vec![Span::new(-8, 1)],
            negative_buckets: vec![3.0],
            ..Default::default()
        };
        let mut out = String::new();
        push_histogram_point(&mut out, 1500, &h);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0], serde_json::json!(1.5));
        assert_eq!(v[1]["count"], "6");
        assert_eq!(v[1]["sum"], "0.25");
        let b = v[1]["buckets"].as_array().unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b[0][0], 1);
        assert_eq!(b[0][1], "-0.0625");
        assert!(b[0][2].as_str().unwrap().starts_with("-0.04419417"));
        assert_eq!(b[0][3], "3");
        assert_eq!(b[1], serde_json::json!([3, "-0.001", "0.001", "2"]));
        assert_eq!(b[2][0], 0);
        assert!(b[2][1].as_str().unwrap().starts_with("0.04419417"));
        assert_eq!(b[2][2], "0.0625");
    }

    #[test]
    fn custom_buckets_and_empty_histograms() {
        let h = FloatHistogram {
            schema: argus_storage::histogram::CUSTOM_BUCKETS_SCHEMA,
            count: 3.0,
            sum: 4.0,
            custom_values: vec![1.0, 5.0],
            positive_spans: vec![Span::new(0, 3)],
            positive_buckets: vec![1.0, 0.0, 2.0],
            ..Default::default()
        };
        let mut out = String::new();
        push_histogram(&mut out, &h);
        assert_eq!(
            out,
            r#"{"count":"3","sum":"4","buckets":[[3,"-Inf","1","1"],[0,"5","+Inf","2"]]}"#
        );
        let mut out = String::new();
        push_histogram(&mut out, &FloatHistogram::default());
        assert_eq!(out, r#"{"count":"0","sum":"0"}"#);
    }
}
