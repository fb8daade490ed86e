//! `GET /federate`: the newest sample of every series matching any `match[]` selector within
//! the lookback window, as text format 0.0.4 (or delimited protobuf when asked), with external
//! labels added, as Prometheus's federation endpoint does.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::expose::proto::{LabelPair, Metric, MetricFamily, MetricType, Untyped};
use crate::push::body::encode_delimited;
use argus_storage::{Labels, Matcher, Queryable, is_stale_nan};
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
type Latest = BTreeMap<(String, Labels), (i64, f64)>;

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
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // Highest q first; the first acceptable entry wins.
    let mut entries: Vec<(f32, usize, &str)> = accept
        .split(',')
        .enumerate()
        .map(|(i, e)| {
            let q = e
                .split(';')
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q, i, e)
        })
        .collect();
    entries.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, e) in entries {
        let lower = e.to_ascii_lowercase();
        let media = lower.split(';').next().unwrap_or("").trim();
        if media == "application/vnd.google.protobuf"
            && lower.contains("proto=io.prometheus.client.metricfamily")
            && lower.contains("encoding=delimited")
        {
            return true;
        }
        if media == "text/plain" || media == "*/*" {
            return false;
        }
    }
    false
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
    let families = to_families(&latest, &fed.external);
    if wants_protobuf(&headers) {
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
                last = Some(it.at());
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
            if let Some((t, v)) = last
                && !is_stale_nan(v)
            {
                out.insert(key, (t, v));
            }
        }
        if let Some(e) = set.err() {
            return Err(argus_storage::Error::InvalidArgument(e.to_string()).into());
        }
    }
    Ok(out)
}

fn to_families(latest: &Latest, external: &Labels) -> Vec<MetricFamily> {
    let mut families: Vec<MetricFamily> = Vec::new();
    for ((name, labels), (t, v)) in latest {
        if families.last().is_none_or(|f| f.name() != name) {
            families.push(MetricFamily {
                name: Some(name.clone()),
                help: None,
                r#type: Some(MetricType::Untyped as i32),
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
        if let Some(f) = families.last_mut() {
            f.metric.push(Metric {
                label: pairs,
                untyped: Some(Untyped { value: Some(*v) }),
                timestamp_ms: Some(*t),
                ..Default::default()
            });
        }
    }
    families
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
}
