//! The protobuf scrape format (`application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited`): varint-length-delimited
//! `MetricFamily` messages (the push module's prost types, `crate::expose::proto`) → samples, as
//! Prometheus's `textparse.ProtobufParser` yields them:
//!
//! ```text
//! COUNTER / GAUGE / UNTYPED   name{labels} value
//! SUMMARY                     name{quantile="q"}, name_sum, name_count
//! HISTOGRAM, GAUGE_HISTOGRAM  native (schema/spans/zero bucket present) and native histograms
//!                             enabled: name{labels} one native histogram sample
//!                             (deltas → absolute counts; `native_histogram_bucket_limit` and
//!                             `native_histogram_min_bucket_factor` lower the schema, merging
//!                             bucket pairs, until they hold);
//!                             classic (otherwise, or also with always_scrape_classic_histograms):
//!                             name_bucket{le}, +Inf bucket added when absent, name_sum, name_count
//! ```
//!
//! Each sample carries a key (the family name, the sample's suffix and its labels, separated by
//! 0xff) that the series cache uses as it uses series text for the text formats.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::expose::proto::{Histogram, LabelPair, Metric, MetricFamily, MetricType};
use argus_storage::histogram::MIN_EXPONENTIAL_SCHEMA;
use argus_storage::{CounterResetHint, FloatHistogram, Label, Span};
use prost::Message;

/// The `Accept` media type (and `Content-Type`) of the format.
pub const MEDIA_TYPE: &str =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

/// What to make of histograms.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Options {
    /// Ingest native histograms (`scrape_native_histograms`).
    pub native_histograms: bool,
    /// Also ingest the classic buckets of native histograms (`always_scrape_classic_histograms`).
    pub always_classic: bool,
    /// Most buckets per native histogram (0: no limit).
    pub bucket_limit: u64,
    /// Lowest growth factor between adjacent buckets (≤ 1: no limit).
    pub min_bucket_factor: f64,
    /// Report created timestamps (`created-timestamp-zero-ingestion`) in [`Sample::start_ms`].
    pub ct_zero_ingestion: bool,
    /// Classic histograms become native histograms with custom buckets
    /// (`convert_classic_histograms_to_nhcb`, see `scrape::nhcb`); their classic series are
    /// kept only with `always_classic`. For text bodies too.
    pub convert_nhcb: bool,
}

/// A sample's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A float sample.
    Float(f64),
    /// A native-histogram sample.
    Histogram(Box<FloatHistogram>),
}

/// One decoded sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Identifies the series within the body (cache key).
    pub key: Vec<u8>,
    /// Labels including `__name__`, sorted by name, empty values dropped.
    pub labels: Vec<Label>,
    /// The value.
    pub value: Value,
    /// The exposed timestamp, ms.
    pub timestamp: Option<i64>,
    /// The metric's created timestamp, ms, for counters, summaries and histograms (every series
    /// of the metric), when [`Options::ct_zero_ingestion`] is on and the exposition has one.
    pub start_ms: Option<i64>,
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not length-delimited `MetricFamily` messages.
    #[error("invalid protobuf MetricFamily at byte {offset}: {msg}")]
    Protobuf {
        /// Offset of the message.
        offset: usize,
        /// prost's message.
        msg: String,
    },
    /// A native histogram whose layout is inconsistent, or over the bucket limit at the
    /// lowest schema.
    #[error("invalid native histogram {name:?}: {msg}")]
    Histogram {
        /// The family.
        name: String,
        /// What is wrong.
        msg: String,
    },
}

/// A float as the protobuf parser writes `le` and `quantile` (OpenMetrics: integers keep `.0`).
fn format_float(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.is_nan() {
        "NaN".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// True when the histogram carries native-histogram fields (client_golang's test).
pub fn is_native(h: &Histogram) -> bool {
    h.schema.is_some()
        && (!h.positive_span.is_empty()
            || !h.negative_span.is_empty()
            || h.zero_threshold.unwrap_or(0.0) > 0.0
            || h.zero_count.unwrap_or(0) > 0
            || h.zero_count_float.unwrap_or(0.0) > 0.0)
}

fn spans_and_counts(
    spans: &[crate::expose::proto::BucketSpan],
    deltas: &[i64],
    counts: &[f64],
) -> (Vec<Span>, Vec<f64>) {
    let spans: Vec<Span> = spans
        .iter()
        .map(|s| Span::new(s.offset.unwrap_or(0), s.length.unwrap_or(0)))
        .collect();
    let counts = if deltas.is_empty() {
        counts.to_vec()
    } else {
        let mut acc: i64 = 0;
        deltas
            .iter()
            .map(|d| {
                acc = acc.saturating_add(*d);
                acc as f64
            })
            .collect()
    };
    (spans, counts)
}

/// The native histogram of `h` (before any resolution reduction).
pub fn to_native(h: &Histogram, gauge: bool) -> Result<FloatHistogram, String> {
    let (positive_spans, positive_buckets) =
        spans_and_counts(&h.positive_span, &h.positive_delta, &h.positive_count);
    let (negative_spans, negative_buckets) =
        spans_and_counts(&h.negative_span, &h.negative_delta, &h.negative_count);
    let fh = FloatHistogram {
        counter_reset_hint: if gauge {
            CounterResetHint::Gauge
        } else {
            CounterResetHint::Unknown
        },
        schema: h.schema.unwrap_or(0),
        zero_threshold: h.zero_threshold.unwrap_or(0.0),
        zero_count: h
            .zero_count_float
            .unwrap_or_else(|| h.zero_count.unwrap_or(0) as f64),
        count: h.count(),
        sum: h.sample_sum.unwrap_or(0.0),
        positive_spans,
        negative_spans,
        positive_buckets,
        negative_buckets,
        custom_values: Vec::new(),
    };
    fh.check_layout()?;
    Ok(fh)
}

/// Expands spans into `(index, count)` pairs.
fn indexed(spans: &[Span], counts: &[f64]) -> Vec<(i64, f64)> {
    let mut out = Vec::with_capacity(counts.len());
    let mut idx: i64 = 0;
    let mut c = counts.iter();
    for s in spans {
        // The first offset is the first index; later ones are gaps after the previous span.
        idx += i64::from(s.offset);
        for _ in 0..s.length {
            if let Some(v) = c.next() {
                out.push((idx, *v));
            }
            idx += 1;
        }
    }
    out
}

/// Lays `(index, count)` pairs (ascending) out as spans, dropping empty buckets.
fn compact(pairs: &[(i64, f64)]) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut counts = Vec::new();
    let mut next: Option<i64> = None;
    for &(idx, c) in pairs {
        if c == 0.0 {
            continue;
        }
        match next {
            Some(n) if n == idx => {
                if let Some(s) = spans.last_mut() {
                    s.length += 1;
                }
            }
            Some(n) => spans.push(Span::new((idx - n) as i32, 1)),
            None => spans.push(Span::new(idx as i32, 1)),
        }
        counts.push(c);
        next = Some(idx + 1);
    }
    (spans, counts)
}

/// Lowers the schema by one: bucket `i` merges into `(i + 1) >> 1`.
fn halve(spans: &mut Vec<Span>, counts: &mut Vec<f64>) {
    let mut merged: Vec<(i64, f64)> = Vec::new();
    for (i, c) in indexed(spans, counts) {
        let j = (i + 1) >> 1;
        match merged.last_mut() {
            Some((last, n)) if *last == j => *n += c,
            _ => merged.push((j, c)),
        }
    }
    (*spans, *counts) = compact(&merged);
}

/// Lowers the resolution of `h` until it has at most `limit` buckets (0: none) and its bucket
/// growth factor is at least `min_factor`, as Prometheus's bucket-limit appender does.
pub fn reduce_resolution(
    h: &mut FloatHistogram,
    limit: u64,
    min_factor: f64,
) -> Result<(), String> {
    let buckets = |h: &FloatHistogram| (h.positive_buckets.len() + h.negative_buckets.len()) as u64;
    let factor = |schema: i32| 2f64.powf(2f64.powi(-schema));
    while (limit > 0 && buckets(h) > limit) || (min_factor > 1.0 && factor(h.schema) < min_factor) {
        if h.schema <= MIN_EXPONENTIAL_SCHEMA || h.uses_custom_buckets() {
            if limit > 0 && buckets(h) > limit {
                return Err(format!(
                    "{} buckets at the lowest schema, more than native_histogram_bucket_limit {limit}",
                    buckets(h)
                ));
            }
            break;
        }
        halve(&mut h.positive_spans, &mut h.positive_buckets);
        halve(&mut h.negative_spans, &mut h.negative_buckets);
        h.schema -= 1;
    }
    Ok(())
}

/// Appends the samples of one `Metric` of family `name`.
struct Emitter<'a> {
    out: &'a mut Vec<Sample>,
    base: Vec<Label>,
    timestamp: Option<i64>,
    start_ms: Option<i64>,
}

impl Emitter<'_> {
    fn push(&mut self, name: &str, extra: Option<(&str, String)>, value: Value) {
        let mut labels = self.base.clone();
        if let Some((k, v)) = extra {
            labels.push(Label::new(k, v));
        }
        labels.push(Label::new(argus_storage::METRIC_NAME, name));
        labels.retain(|l| !l.value.is_empty());
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        labels.dedup_by(|a, b| a.name == b.name);
        let mut key = Vec::with_capacity(64);
        for l in &labels {
            key.extend_from_slice(l.name.as_bytes());
            key.push(0xff);
            key.extend_from_slice(l.value.as_bytes());
            key.push(0xff);
        }
        if matches!(value, Value::Histogram(_)) {
            key.push(b'h');
        }
        self.out.push(Sample {
            key,
            labels,
            value,
            timestamp: self.timestamp,
            start_ms: self.start_ms,
        });
    }
}

fn pairs(labels: &[LabelPair]) -> Vec<Label> {
    labels
        .iter()
        .map(|l| {
            Label::new(
                l.name.clone().unwrap_or_default(),
                l.value.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn metric(
    name: &str,
    kind: MetricType,
    m: &Metric,
    opts: &Options,
    out: &mut Vec<Sample>,
) -> Result<(), DecodeError> {
    let start = match kind {
        MetricType::Counter => m.counter.as_ref().and_then(|c| c.start_timestamp.as_ref()),
        MetricType::Summary => m.summary.as_ref().and_then(|s| s.start_timestamp.as_ref()),
        MetricType::Histogram | MetricType::GaugeHistogram => m
            .histogram
            .as_ref()
            .and_then(|h| h.start_timestamp.as_ref()),
        MetricType::Gauge | MetricType::Untyped => None,
    };
    let mut e = Emitter {
        out,
        base: pairs(&m.label),
        timestamp: m.timestamp_ms,
        start_ms: start
            .filter(|_| opts.ct_zero_ingestion)
            .map(|ts| {
                ts.seconds
                    .saturating_mul(1000)
                    .saturating_add(i64::from(ts.nanos) / 1_000_000)
            })
            .filter(|&ms| ms != 0),
    };
    match kind {
        MetricType::Counter => {
            let v = m.counter.as_ref().and_then(|c| c.value).unwrap_or(0.0);
            e.push(name, None, Value::Float(v));
        }
        MetricType::Gauge => {
            let v = m.gauge.as_ref().and_then(|g| g.value).unwrap_or(0.0);
            e.push(name, None, Value::Float(v));
        }
        MetricType::Untyped => {
            let v = m.untyped.as_ref().and_then(|u| u.value).unwrap_or(0.0);
            e.push(name, None, Value::Float(v));
        }
        MetricType::Summary => {
            let Some(s) = m.summary.as_ref() else {
                return Ok(());
            };
            for q in &s.quantile {
                let qs = format_float(q.quantile.unwrap_or(0.0));
                e.push(
                    name,
                    Some(("quantile", qs)),
                    Value::Float(q.value.unwrap_or(0.0)),
                );
            }
            e.push(
                &format!("{name}_sum"),
                None,
                Value::Float(s.sample_sum.unwrap_or(0.0)),
            );
            e.push(
                &format!("{name}_count"),
                None,
                Value::Float(s.sample_count.unwrap_or(0) as f64),
            );
        }
        MetricType::Histogram | MetricType::GaugeHistogram => {
            let Some(h) = m.histogram.as_ref() else {
                return Ok(());
            };
            let native = opts.native_histograms && is_native(h);
            if native {
                let err = |msg: String| DecodeError::Histogram {
                    name: name.to_string(),
                    msg,
                };
                let mut fh = to_native(h, kind == MetricType::GaugeHistogram).map_err(err)?;
                reduce_resolution(&mut fh, opts.bucket_limit, opts.min_bucket_factor)
                    .map_err(err)?;
                e.push(name, None, Value::Histogram(Box::new(fh)));
            }
            let nhcb = !native && opts.convert_nhcb && kind == MetricType::Histogram;
            if nhcb && let Some(fh) = super::nhcb::from_protobuf(h) {
                e.push(name, None, Value::Histogram(Box::new(fh)));
            }
            if (!native && (!nhcb || opts.always_classic))
                || (opts.always_classic && !h.bucket.is_empty())
            {
                let bucket = format!("{name}_bucket");
                let mut has_inf = false;
                for b in &h.bucket {
                    let ub = b.upper_bound.unwrap_or(0.0);
                    has_inf |= ub == f64::INFINITY;
                    let c = b
                        .cumulative_count_float
                        .unwrap_or_else(|| b.cumulative_count.unwrap_or(0) as f64);
                    e.push(&bucket, Some(("le", format_float(ub))), Value::Float(c));
                }
                if !has_inf {
                    e.push(
                        &bucket,
                        Some(("le", "+Inf".into())),
                        Value::Float(h.count()),
                    );
                }
                e.push(
                    &format!("{name}_sum"),
                    None,
                    Value::Float(h.sample_sum.unwrap_or(0.0)),
                );
                e.push(&format!("{name}_count"), None, Value::Float(h.count()));
            }
        }
    }
    Ok(())
}

/// Decodes a whole body into `out` (cleared first).
pub fn decode(body: &[u8], opts: &Options, out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    out.clear();
    let mut rest = body;
    while !rest.is_empty() {
        let offset = body.len() - rest.len();
        let mf = MetricFamily::decode_length_delimited(&mut rest).map_err(|e| {
            DecodeError::Protobuf {
                offset,
                msg: e.to_string(),
            }
        })?;
        let name = mf.name.clone().unwrap_or_default();
        let kind = mf
            .r#type
            .and_then(|t| MetricType::try_from(t).ok())
            .unwrap_or(MetricType::Untyped);
        for m in &mf.metric {
            metric(&name, kind, m, opts, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
