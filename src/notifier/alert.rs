//! The wire format of `POST /api/v2/alerts` (Alertmanager's `postableAlert`): keys in the order
//! Prometheus emits them, `annotations` omitted when empty, times RFC 3339 UTC with exactly three
//! fractional digits. Strings are escaped as Go's `json.Marshal` does (`<`, `>`, `&` as `\u00XX`).

use crate::rules::OutgoingAlert;
use crate::util::json::{push_json_str, push_labels};
use argus_storage::Labels;

/// Appends one alert as a JSON object to `out`, with `labels` in place of `alert.labels` (the
/// relabeled set).
pub(crate) fn encode_into(out: &mut String, alert: &OutgoingAlert, labels: &Labels) {
    out.push('{');
    if !alert.annotations.is_empty() {
        out.push_str("\"annotations\":");
        push_labels(out, &alert.annotations);
        out.push(',');
    }
    out.push_str("\"endsAt\":\"");
    push_time(out, alert.ends_at_ms);
    out.push_str("\",\"startsAt\":\"");
    push_time(out, alert.starts_at_ms);
    out.push('"');
    if !alert.generator_url.is_empty() {
        out.push_str(",\"generatorURL\":");
        push_json_str(out, &alert.generator_url);
    }
    out.push_str(",\"labels\":");
    push_labels(out, labels);
    out.push('}');
}

/// A JSON array of already-encoded alerts.
pub(crate) fn batch_body<'a>(alerts: impl Iterator<Item = &'a str>) -> String {
    let mut body = String::from("[");
    for (i, a) in alerts.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(a);
    }
    body.push(']');
    body
}

/// `2026-12-06T02:16:15.886Z` (Go's `strfmt.DateTime`).
fn push_time(out: &mut String, ms: i64) {
    let secs = ms.div_euclid(1000);
    let whole = crate::util::time::rfc3339_nano(secs.saturating_mul(1_000_000_000));
    out.push_str(whole.trim_end_matches('Z'));
    out.push_str(&format!(".{:03}Z", ms.rem_euclid(1000)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(annotations: &[(&str, &str)]) -> OutgoingAlert {
        OutgoingAlert {
            labels: Labels::from_pairs(&[("alertname", "AlwaysFiring"), ("severity", "page")]),
            annotations: Labels::from_pairs(annotations),
            starts_at_ms: 1_796_523_353_886,
            ends_at_ms: 1_796_523_375_886,
            generator_url: "http://prom.example:9090/graph?g0.expr=vector%281%29&g0.tab=1".into(),
        }
    }

    #[test]
    fn body_has_prometheus_shape() {
        let a = alert(&[("summary", "value \"1\"")]);
        let mut one = String::new();
        let labels = a.labels.clone();
        encode_into(&mut one, &a, &labels);
        assert_eq!(
            one,
            r#"{"annotations":{"summary":"value \"1\""},"endsAt":"2026-12-06T02:16:15.886Z","startsAt":"2026-12-06T02:15:53.886Z","generatorURL":"http://prom.example:9090/graph?g0.expr=vector%281%29\u0026g0.tab=1","labels":{"alertname":"AlwaysFiring","severity":"page"}}"#,
            "strings are escaped as Go's json.Marshal does (`&` as \\u0026)"
        );
        // No annotations, no generator URL: both keys absent; whole seconds keep ".000".
        let mut b = alert(&[]);
        b.generator_url.clear();
        b.ends_at_ms = 1_796_523_375_000;
        let mut two = String::new();
        encode_into(&mut two, &b, &Labels::from_pairs(&[("alertname", "X")]));
        assert_eq!(
            two,
            r#"{"endsAt":"2026-12-06T02:16:15.000Z","startsAt":"2026-12-06T02:15:53.886Z","labels":{"alertname":"X"}}"#
        );
        let body = batch_body([one.as_str(), two.as_str()].into_iter());
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        assert_eq!(batch_body(std::iter::empty()), "[]");
    }
}
