//! Rendering pushed families the way Pushgateway does: text format 0.0.4 (Go's `expfmt`
//! encoder, Go float formatting) and the `/api/v1/metrics` JSON values.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::expose::proto::{LabelPair, Metric, MetricFamily, MetricType};
use argus_query::gofloat::push_g;
use argus_query::names;
use std::fmt::Write as _;

fn escape(s: &str, quote: bool, dst: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => dst.push_str("\\\\"),
            '\n' => dst.push_str("\\n"),
            '"' if quote => dst.push_str("\\\""),
            c => dst.push(c),
        }
    }
}

/// Appends `name` as text format 0.0.4 allows it: unchanged when it is a legacy name
/// (`[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics, no `:` for labels), otherwise with every other
/// character (and a leading digit) replaced by `_`, as Prometheus's `escaping=underscores`
/// does. No stored name (newlines, quotes, `{`, UTF-8) can break the line structure.
pub fn push_name(dst: &mut String, name: &str, metric: bool) {
    // `escaping=underscores` (`argus_query::names::escape_name`), with `:` escaped in label
    // names too, which the text format's label grammar does not allow.
    let ok = |i: usize, c: char| names::is_legacy_rune(c, i) && (metric || c != ':');
    if name.is_empty() {
        dst.push('_');
    } else if name.char_indices().all(|(i, c)| ok(i, c)) {
        dst.push_str(name);
    } else {
        dst.extend(
            name.char_indices()
                .map(|(i, c)| if ok(i, c) { c } else { '_' }),
        );
    }
}

/// Writes one sample line: `name{labels[,extra="x"]} value[ ts]\n`. Labels are written as
/// given, including empty values (as `expfmt` does); names are escaped by [`push_name`].
pub fn write_sample(
    dst: &mut String,
    name: &str,
    suffix: &str,
    labels: &[LabelPair],
    extra: Option<(&str, f64)>,
    value: f64,
    ts: Option<i64>,
) {
    push_name(dst, name, true);
    dst.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        let mut sep = '{';
        for l in labels {
            dst.push(sep);
            sep = ',';
            push_name(dst, l.name.as_deref().unwrap_or(""), false);
            dst.push_str("=\"");
            escape(l.value.as_deref().unwrap_or(""), true, dst);
            dst.push('"');
        }
        if let Some((n, v)) = extra {
            dst.push(sep);
            dst.push_str(n);
            dst.push_str("=\"");
            push_g(dst, v);
            dst.push('"');
        }
        dst.push('}');
    }
    dst.push(' ');
    push_g(dst, value);
    if let Some(ts) = ts {
        let _ = write!(dst, " {ts}");
    }
    dst.push('\n');
}

/// Appends one family in text format 0.0.4. Families without metrics are skipped.
pub fn write_family(f: &MetricFamily, dst: &mut String) {
    if f.metric.is_empty() {
        return;
    }
    let name = f.name();
    if let Some(help) = &f.help {
        dst.push_str("# HELP ");
        push_name(dst, name, true);
        dst.push(' ');
        escape(help, false, dst);
        dst.push('\n');
    }
    let kind = f.kind();
    let t = match kind {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Summary => "summary",
        MetricType::Untyped => "untyped",
        MetricType::Histogram | MetricType::GaugeHistogram => "histogram",
    };
    dst.push_str("# TYPE ");
    push_name(dst, name, true);
    let _ = writeln!(dst, " {t}");
    for m in &f.metric {
        write_metric(name, kind, m, dst);
    }
}

fn write_metric(name: &str, kind: MetricType, m: &Metric, dst: &mut String) {
    let ts = m.timestamp_ms;
    let l = &m.label;
    match kind {
        MetricType::Counter => {
            let v = m.counter.as_ref().and_then(|c| c.value).unwrap_or(0.0);
            write_sample(dst, name, "", l, None, v, ts);
        }
        MetricType::Gauge => {
            let v = m.gauge.as_ref().and_then(|c| c.value).unwrap_or(0.0);
            write_sample(dst, name, "", l, None, v, ts);
        }
        MetricType::Untyped => {
            let v = m.untyped.as_ref().and_then(|c| c.value).unwrap_or(0.0);
            write_sample(dst, name, "", l, None, v, ts);
        }
        MetricType::Summary => {
            let s = m.summary.clone().unwrap_or_default();
            for q in &s.quantile {
                let extra = Some(("quantile", q.quantile.unwrap_or(0.0)));
                write_sample(dst, name, "", l, extra, q.value.unwrap_or(0.0), ts);
            }
            write_sample(dst, name, "_sum", l, None, s.sample_sum.unwrap_or(0.0), ts);
            let count = s.sample_count.unwrap_or(0) as f64;
            write_sample(dst, name, "_count", l, None, count, ts);
        }
        MetricType::Histogram | MetricType::GaugeHistogram => {
            let h = m.histogram.clone().unwrap_or_default();
            let mut inf_seen = false;
            for b in &h.bucket {
                let ub = b.upper_bound.unwrap_or(0.0);
                write_sample(dst, name, "_bucket", l, Some(("le", ub)), b.count(), ts);
                inf_seen |= ub == f64::INFINITY;
            }
            if !inf_seen {
                let extra = Some(("le", f64::INFINITY));
                write_sample(dst, name, "_bucket", l, extra, h.count(), ts);
            }
            write_sample(dst, name, "_sum", l, None, h.sample_sum.unwrap_or(0.0), ts);
            write_sample(dst, name, "_count", l, None, h.count(), ts);
        }
    }
}

/// One float sample of a metric: name suffix, extra label (`le`/`quantile`), value.
pub type FloatSample = (&'static str, Option<(&'static str, f64)>, f64);

/// The float series a metric contributes when scraped from the text exposition: `(suffix, extra
/// label, value)` triples, in exposition order.
pub fn float_samples(kind: MetricType, m: &Metric, out: &mut Vec<FloatSample>) {
    match kind {
        MetricType::Counter => out.push((
            "",
            None,
            m.counter.as_ref().and_then(|c| c.value).unwrap_or(0.0),
        )),
        MetricType::Gauge => out.push((
            "",
            None,
            m.gauge.as_ref().and_then(|c| c.value).unwrap_or(0.0),
        )),
        MetricType::Untyped => out.push((
            "",
            None,
            m.untyped.as_ref().and_then(|c| c.value).unwrap_or(0.0),
        )),
        MetricType::Summary => {
            if let Some(s) = &m.summary {
                for q in &s.quantile {
                    out.push((
                        "",
                        Some(("quantile", q.quantile.unwrap_or(0.0))),
                        q.value.unwrap_or(0.0),
                    ));
                }
                out.push(("_sum", None, s.sample_sum.unwrap_or(0.0)));
                out.push(("_count", None, s.sample_count.unwrap_or(0) as f64));
            } else {
                out.push(("_sum", None, 0.0));
                out.push(("_count", None, 0.0));
            }
        }
        MetricType::Histogram | MetricType::GaugeHistogram => {
            let h = m.histogram.clone().unwrap_or_default();
            let mut inf_seen = false;
            for b in &h.bucket {
                let ub = b.upper_bound.unwrap_or(0.0);
                out.push(("_bucket", Some(("le", ub)), b.count()));
                inf_seen |= ub == f64::INFINITY;
            }
            if !inf_seen {
                out.push(("_bucket", Some(("le", f64::INFINITY)), h.count()));
            }
            out.push(("_sum", None, h.sample_sum.unwrap_or(0.0)));
            out.push(("_count", None, h.count()));
        }
    }
}

pub use crate::util::time::rfc3339_nano;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_cannot_break_the_exposition() {
        let check = |name: &str, metric: bool, want: &str| {
            let mut s = String::new();
            push_name(&mut s, name, metric);
            assert_eq!(s, want, "{name:?}");
        };
        check("up", true, "up");
        check("job:rate5m", true, "job:rate5m");
        check("job:rate5m", false, "job_rate5m");
        check("a\nb", true, "a_b");
        check("x\"} 1\nevil 2", true, "x___1_evil_2");
        check("{", false, "_");
        check("0abc", true, "_abc");
        check("héllo", true, "h_llo");
        check("", false, "_");
        let fam = MetricFamily {
            name: Some("bad\nname{\"é".into()),
            help: Some("line1\nline2 \\".into()),
            r#type: Some(MetricType::Gauge as i32),
            metric: vec![Metric {
                label: vec![
                    LabelPair::new("l\"a}", "v\"\n\\"),
                    LabelPair::new("ok", "é"),
                ],
                gauge: Some(crate::expose::proto::Gauge { value: Some(1.0) }),
                ..Default::default()
            }],
            unit: None,
        };
        let mut text = String::new();
        write_family(&fam, &mut text);
        assert_eq!(
            text,
            "# HELP bad_name___ line1\\nline2 \\\\\n\
             # TYPE bad_name___ gauge\n\
             bad_name___{l_a_=\"v\\\"\\n\\\\\",ok=\"é\"} 1\n"
        );
        let parsed = crate::push::text::parse_text(text.as_bytes()).expect("valid exposition");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].name(), "bad_name___");
        let m = &parsed[0].metric[0];
        assert_eq!(m.label[0].value.as_deref(), Some("v\"\n\\"));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_700_000_000_500_000_000),
            "2023-11-14T22:13:20.5Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }
}
