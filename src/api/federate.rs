//! `GET /federate`: the newest sample of every series matching any `match[]` selector within
//! the lookback window, as text format 0.0.4 (or delimited protobuf when asked), with external
//! labels added, as Prometheus's federation endpoint does.
//!
//! Native histograms follow Prometheus's `web/federate.go`: exponential ones are served only in
//! the protobuf format (float counts, spans as stored) and left out of the text format;
//! histograms with custom buckets (NHCB) become classic histograms (cumulative `le` buckets) in
//! both. A new family starts whenever the name, the sample type (float or histogram) or the
//! histogram kind (counter or gauge) changes, so one name may yield several families.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::expose::proto::{self, LabelPair, Metric, MetricFamily, MetricType, Untyped};
use crate::push::body::encode_delimited;
use argus_storage::{FloatHistogram, Labels, Matcher, Queryable, SampleValue, is_stale_nan};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";
const PROTO_CONTENT_TYPE: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores";

/// Newest sample per series, keyed by (metric name, labels).
type Latest = BTreeMap<(String, Labels), (i64, SampleValue)>;

struct Fed {
    queryable: Arc<dyn Queryable>,
    external: Labels,
    lookback_ms: i64,
    /// Test seam: a fixed "now" in ms instead of the wall clock.
    now_ms: Option<i64>,
    limits: Limits,
}

/// Bounds of one federation request, from `--query.timeout` and `--query.max-samples`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest time spent reading storage; then 503.
    pub timeout: Duration,
    /// Most samples read from storage (every sample in the lookback window of every matching
    /// series); then 422.
    pub max_samples: usize,
}

impl Default for Limits {
    /// Prometheus's flag defaults: 2 minutes, 50,000,000 samples.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
        }
    }
}

/// The federation router (`GET /federate`).
pub fn router(queryable: Arc<dyn Queryable>, external_labels: Labels, lookback_ms: i64) -> Router {
    router_at(queryable, external_labels, lookback_ms, None)
}

/// [`router`] bounded by `limits`.
pub fn router_with_limits(
    queryable: Arc<dyn Queryable>,
    external_labels: Labels,
    lookback_ms: i64,
    limits: Limits,
) -> Router {
    build(queryable, external_labels, lookback_ms, None, limits)
}

/// [`router`] with a fixed evaluation time (`Some(ms)`) for tests.
pub fn router_at(
    queryable: Arc<dyn Queryable>,
    external_labels: Labels,
    lookback_ms: i64,
    now_ms: Option<i64>,
) -> Router {
    build(
        queryable,
        external_labels,
        lookback_ms,
        now_ms,
        Limits::default(),
    )
}

fn build(
    queryable: Arc<dyn Queryable>,
    external_labels: Labels,
    lookback_ms: i64,
    now_ms: Option<i64>,
    limits: Limits,
) -> Router {
    let fed = Arc::new(Fed {
        queryable,
        external: external_labels,
        lookback_ms,
        now_ms,
        limits,
    });
    Router::new()
        .route("/federate", get(federate))
        .with_state(fed)
        // gzip when the client accepts it, as Prometheus does (scrapers ask for it).
        .layer(tower_http::compression::CompressionLayer::new())
}

fn bad(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

/// The `match[]` values of a query string, decoded as a form (`+` is a space; a malformed
/// escape is kept as written, invalid UTF-8 replaced).
pub fn match_params(query: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "match[]")
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// Parses one series selector into matcher sets (one per `or` branch).
fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    crate::api::params::parse_selector(s).map_err(|e| e.to_string())
}

fn wants_protobuf(headers: &HeaderMap) -> bool {
    crate::expose::accepts_protobuf(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

async fn federate(
    State(fed): State<Arc<Fed>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut selectors = Vec::new();
    for m in match_params(q.as_deref().unwrap_or("")) {
        match parse_selector(&m) {
            Ok(sets) => selectors.extend(sets),
            Err(e) => return bad(e),
        }
    }
    let now = fed.now_ms.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    });
    let fed2 = fed.clone();
    let res = tokio::task::spawn_blocking(move || collect(&fed2, &selectors, now)).await;
    let latest = match res {
        Ok(Ok(l)) => l,
        Ok(Err(CollectError::Timeout)) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "federation timed out after {:?} (--query.timeout)\n",
                    fed.limits.timeout
                ),
            )
                .into_response();
        }
        Ok(Err(CollectError::TooManySamples)) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "federation would load more than {} samples into memory (--query.max-samples)\n",
                    fed.limits.max_samples
                ),
            )
                .into_response();
        }
        Ok(Err(CollectError::Storage(e))) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
        }
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
        }
    };
    let protobuf = wants_protobuf(&headers);
    let families = to_families(&latest, &fed.external, protobuf);
    if protobuf {
        let mut buf = Vec::new();
        encode_delimited(&families, &mut buf);
        return ([(header::CONTENT_TYPE, PROTO_CONTENT_TYPE)], buf).into_response();
    }
    let mut body = String::new();
    for f in &families {
        crate::expose::text::write_family(f, &mut body);
    }
    ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], body).into_response()
}

/// Newest non-stale sample in `[now - lookback, now]` per matching series, keyed by
/// `(metric name, labels)` so output is grouped by name and sorted by labels within a name.
/// Why [`collect`] stopped.
#[derive(Debug)]
enum CollectError {
    Timeout,
    TooManySamples,
    Storage(argus_storage::Error),
}

impl From<argus_storage::Error> for CollectError {
    fn from(e: argus_storage::Error) -> Self {
        CollectError::Storage(e)
    }
}

fn collect(fed: &Fed, selectors: &[Vec<Matcher>], now: i64) -> Result<Latest, CollectError> {
    let mut out = BTreeMap::new();
    if selectors.is_empty() {
        return Ok(out);
    }
    let deadline = Instant::now().checked_add(fed.limits.timeout);
    let timed_out = || deadline.is_some_and(|d| Instant::now() >= d);
    let mut loaded = 0usize;
    let q = fed
        .queryable
        .querier(now.saturating_sub(fed.lookback_ms), now)?;
    for sel in selectors {
        let mut set = q.select(sel);
        while set.next() {
            if timed_out() {
                return Err(CollectError::Timeout);
            }
            let labels = set.labels();
            let Some(name) = labels.metric_name() else {
                continue;
            };
            let key = (name.to_string(), labels.clone());
            if out.contains_key(&key) {
                continue;
            }
            let mut it = set.samples();
            let mut last = None;
            while it.next() {
                let (t, v) = it.at();
                last = Some((t, v, it.at_histogram().cloned()));
                loaded += 1;
                if loaded > fed.limits.max_samples {
                    return Err(CollectError::TooManySamples);
                }
                if loaded.is_multiple_of(4096) && timed_out() {
                    return Err(CollectError::Timeout);
                }
            }
            if let Some(e) = it.err() {
                return Err(argus_storage::Error::InvalidArgument(e.to_string()).into());
            }
            drop(it);
            // The exposition formats have no stale markers: a series whose newest sample is one
            // is left out, as Prometheus does.
            match last {
                Some((t, _, Some(h))) if !h.is_stale() => {
                    out.insert(key, (t, SampleValue::Histogram(Box::new(h))));
                }
                Some((t, v, None)) if !is_stale_nan(v) => {
                    out.insert(key, (t, SampleValue::Float(v)));
                }
                _ => {}
            }
        }
        if let Some(e) = set.err() {
            return Err(argus_storage::Error::InvalidArgument(e.to_string()).into());
        }
    }
    Ok(out)
}

/// The family type a sample goes in: untyped for floats, histogram or gauge histogram.
fn family_type(v: &SampleValue) -> MetricType {
    match v {
        SampleValue::Float(_) => MetricType::Untyped,
        SampleValue::Histogram(h) if h.is_gauge() => MetricType::GaugeHistogram,
        SampleValue::Histogram(_) => MetricType::Histogram,
    }
}

/// Groups the samples into families (see the module docs); `protobuf` says whether exponential
/// histograms can be served.
fn to_families(latest: &Latest, external: &Labels, protobuf: bool) -> Vec<MetricFamily> {
    let mut families: Vec<MetricFamily> = Vec::new();
    for ((name, labels), (t, v)) in latest {
        if let SampleValue::Histogram(h) = v
            && !h.uses_custom_buckets()
            && !protobuf
        {
            continue;
        }
        let kind = family_type(v);
        if families
            .last()
            .is_none_or(|f| f.name() != name || f.kind() != kind)
        {
            families.push(MetricFamily {
                name: Some(name.clone()),
                help: None,
                r#type: Some(kind as i32),
                metric: Vec::new(),
                unit: None,
            });
        }
        let mut pairs: Vec<LabelPair> = labels
            .iter()
            .filter(|l| l.name != "__name__")
            .map(|l| LabelPair::new(&l.name, &l.value))
            .collect();
        let mut ext: Vec<(&str, &str)> = external
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        if external.get("instance").is_none() {
            ext.push(("instance", ""));
            ext.sort();
        }
        for (n, val) in ext {
            if labels.get(n).is_none() {
                pairs.push(LabelPair::new(n, val));
            }
        }
        let mut metric = Metric {
            label: pairs,
            timestamp_ms: Some(*t),
            ..Default::default()
        };
        match v {
            SampleValue::Float(f) => metric.untyped = Some(Untyped { value: Some(*f) }),
            SampleValue::Histogram(h) if h.uses_custom_buckets() => {
                metric.histogram = Some(classic_histogram(h));
            }
            SampleValue::Histogram(h) => metric.histogram = Some(native_histogram(h)),
        }
        if let Some(f) = families.last_mut() {
            f.metric.push(metric);
        }
    }
    families
}

fn proto_spans(spans: &[argus_storage::Span]) -> Vec<proto::BucketSpan> {
    spans
        .iter()
        .map(|s| proto::BucketSpan {
            offset: Some(s.offset),
            length: Some(s.length),
        })
        .collect()
}

/// An exponential native histogram as the client model carries it: float counts, absolute
/// bucket counts (`positive_count`), spans as stored (Prometheus's `makeNativeHistogram`).
pub fn native_histogram(h: &FloatHistogram) -> proto::Histogram {
    proto::Histogram {
        sample_count_float: Some(h.count),
        sample_sum: Some(h.sum),
        schema: Some(h.schema),
        zero_threshold: Some(h.zero_threshold),
        zero_count_float: Some(h.zero_count),
        negative_span: proto_spans(&h.negative_spans),
        negative_count: h.negative_buckets.clone(),
        positive_span: proto_spans(&h.positive_spans),
        positive_count: h.positive_buckets.clone(),
        ..Default::default()
    }
}

/// A histogram with custom bounds (NHCB) as a classic histogram: one cumulative bucket per
/// bound, `+Inf` left implicit (Prometheus's `makeClassicHistogram`).
pub fn classic_histogram(h: &FloatHistogram) -> proto::Histogram {
    // Bucket index → count (custom buckets have non-negative indexes).
    let mut counts = vec![0.0; h.custom_values.len()];
    let mut idx: i64 = 0;
    let mut buckets = h.positive_buckets.iter();
    for s in &h.positive_spans {
        idx += i64::from(s.offset);
        for _ in 0..s.length {
            let c = buckets.next().copied().unwrap_or(0.0);
            if let Some(slot) = usize::try_from(idx).ok().and_then(|i| counts.get_mut(i)) {
                *slot += c;
            }
            idx += 1;
        }
    }
    let mut cumulative = 0.0;
    let bucket = h
        .custom_values
        .iter()
        .zip(counts)
        .map(|(le, c)| {
            cumulative += c;
            proto::Bucket {
                upper_bound: Some(*le),
                cumulative_count_float: Some(cumulative),
                ..Default::default()
            }
        })
        .collect();
    proto::Histogram {
        sample_count_float: Some(h.count),
        sample_sum: Some(h.sum),
        bucket,
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        assert_eq!(
            match_params("match[]=up&x=1&match%5B%5D=%7Bjob%3D%22a+b%22%7D"),
            vec!["up".to_string(), "{job=\"a b\"}".to_string()]
        );
        assert!(match_params("").is_empty());
    }

    #[test]
    fn selectors() {
        assert_eq!(parse_selector("up").expect("ok")[0].len(), 1);
        assert_eq!(
            parse_selector("up{a=\"b\",c=~\"d.*\"}").expect("ok")[0].len(),
            3
        );
        assert!(parse_selector("-up").is_err());
        assert!(parse_selector("rate(up[5m])").is_err());
        assert!(parse_selector("{a=~\".*\"}").is_err());
        assert!(parse_selector("up offset 5m").is_err());
        assert_eq!(parse_selector("{a=\"1\" or b=\"2\"}").expect("or").len(), 2);
    }

    #[test]
    fn families_split_by_sample_type_and_exponential_histograms_need_protobuf() {
        let l = |s: &str| Labels::from_pairs(&[("__name__", "m"), ("s", s)]);
        let exp = FloatHistogram {
            schema: 1,
            count: 2.0,
            positive_spans: vec![argus_storage::Span::new(-1, 2)],
            positive_buckets: vec![1.0, 1.0],
            ..Default::default()
        };
        let gauge = FloatHistogram {
            counter_reset_hint: argus_storage::CounterResetHint::Gauge,
            ..exp.clone()
        };
        let mut latest = Latest::new();
        for (s, v) in [
            ("a", SampleValue::Histogram(Box::new(exp.clone()))),
            ("b", SampleValue::Histogram(Box::new(exp.clone()))),
            ("c", SampleValue::Float(1.0)),
            ("d", SampleValue::Histogram(Box::new(gauge))),
            ("e", SampleValue::Histogram(Box::new(exp))),
        ] {
            latest.insert(("m".into(), l(s)), (5, v));
        }
        let shape = |protobuf| -> Vec<(MetricType, usize)> {
            to_families(&latest, &Labels::default(), protobuf)
                .iter()
                .map(|f| (f.kind(), f.metric.len()))
                .collect()
        };
        use MetricType::{GaugeHistogram as G, Histogram as H, Untyped as U};
        assert_eq!(shape(true), [(H, 2), (U, 1), (G, 1), (H, 1)]);
        assert_eq!(shape(false), [(U, 1)]);
    }

    #[test]
    fn custom_buckets_become_cumulative_classic_buckets() {
        let h = FloatHistogram {
            schema: argus_storage::histogram::CUSTOM_BUCKETS_SCHEMA,
            count: 10.0,
            sum: 3.0,
            // Buckets 0, 2 and 3 (the overflow bucket, above the last bound).
            positive_spans: vec![
                argus_storage::Span::new(0, 1),
                argus_storage::Span::new(1, 2),
            ],
            positive_buckets: vec![1.0, 2.0, 7.0],
            custom_values: vec![0.1, 1.0, 10.0],
            ..Default::default()
        };
        let c = classic_histogram(&h);
        let got: Vec<(f64, f64)> = c
            .bucket
            .iter()
            .map(|b| (b.upper_bound.unwrap(), b.count()))
            .collect();
        assert_eq!(got, [(0.1, 1.0), (1.0, 1.0), (10.0, 3.0)]);
        assert_eq!((c.count(), c.sample_sum, c.schema), (10.0, Some(3.0), None));
        let mut text = String::new();
        crate::expose::text::write_family(
            &MetricFamily {
                name: Some("x".into()),
                r#type: Some(MetricType::Histogram as i32),
                metric: vec![Metric {
                    histogram: Some(c),
                    ..Default::default()
                }],
                ..Default::default()
            },
            &mut text,
        );
        assert_eq!(
            text,
            "# TYPE x histogram\nx_bucket{le=\"0.1\"} 1\nx_bucket{le=\"1\"} 1\n\
             x_bucket{le=\"10\"} 3\nx_bucket{le=\"+Inf\"} 10\nx_sum 3\nx_count 10\n"
        );
    }
}
