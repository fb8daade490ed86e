//! `/api/v1/targets`, `/api/v1/targets/metadata` and `/api/v1/metadata`, in Prometheus's JSON
//! shapes. The server helper merges `ScrapeManager::router` into the main router.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::error::ApiError;
use crate::ingest::metadata::MetadataStore;
use crate::scrape::ScrapeManager;
use crate::scrape::target::{DroppedTarget, Target};
use argus_storage::{Labels, Matcher};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Routes for `/api/v1/targets`, `/api/v1/targets/metadata` and `/api/v1/metadata`.
pub fn router(m: &Arc<ScrapeManager>) -> axum::Router {
    router_with_received(m, Arc::new(MetadataStore::new()))
}

/// [`router`] whose `/api/v1/metadata` also lists the metadata `received` by remote write.
pub(crate) fn router_with_received(
    m: &Arc<ScrapeManager>,
    received: Arc<MetadataStore>,
) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/targets/metadata", get(targets_metadata))
        .route("/api/v1/metadata", get(metadata))
        .with_state(m.clone())
        .layer(axum::Extension(received))
}

fn bad_data(msg: impl Into<String>) -> Response {
    ApiError::bad_data(msg).into_response()
}

fn success(data: Value) -> Response {
    super::success(&data)
}

fn labels_json<'a>(ls: impl IntoIterator<Item = &'a argus_storage::Label>) -> Value {
    let mut m = Map::new();
    for l in ls {
        m.insert(l.name.clone(), Value::String(l.value.clone()));
    }
    Value::Object(m)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The scrape URL with a loopback host replaced by this machine's name, as Prometheus's
/// `globalURL`.
fn global_url(url: &str, host: &str) -> String {
    for lo in ["localhost", "127.0.0.1", "[::1]"] {
        if let Some(i) = url.find(&format!("://{lo}")) {
            let start = i + 3;
            return format!("{}{}{}", &url[..start], host, &url[start + lo.len()..]);
        }
    }
    url.to_string()
}

fn active_json(t: &Target, host: &str) -> Value {
    let st = t.status.lock().clone();
    json!({
        "discoveredLabels": labels_json(&t.discovered),
        "labels": labels_json(t.public_labels()),
        "scrapePool": t.pool,
        "scrapeUrl": t.url,
        "globalUrl": global_url(&t.url, host),
        "lastError": st.last_error,
        "lastScrape": rfc3339(st.last_scrape),
        "lastScrapeDuration": st.last_duration.as_secs_f64(),
        "health": st.health.as_str(),
        "scrapeInterval": crate::config::PromDuration(t.interval).to_string(),
        "scrapeTimeout": crate::config::PromDuration(t.timeout).to_string(),
    })
}

fn dropped_json(d: &DroppedTarget, pool: &str) -> Value {
    json!({"discoveredLabels": labels_json(&d.discovered), "scrapePool": pool})
}

async fn targets(
    State(m): State<Arc<ScrapeManager>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let state = q.get("state").map(|s| s.to_ascii_lowercase());
    let (want_active, want_dropped) = match state.as_deref() {
        None | Some("") | Some("any") => (true, true),
        Some("active") => (true, false),
        Some("dropped") => (false, true),
        Some(other) => return bad_data(format!("invalid state {other:?}")),
    };
    let pool_filter = q.get("scrapePool").filter(|s| !s.is_empty());
    let host = hostname();
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut counts = Map::new();
    for (name, pool) in m.pools() {
        if pool_filter.is_some_and(|f| *f != name) {
            continue;
        }
        let (a, d, total) = pool.snapshot();
        counts.insert(name.clone(), json!(total));
        if want_active {
            active.extend(a.iter().map(|t| active_json(t, &host)));
        }
        if want_dropped {
            dropped.extend(d.iter().map(|t| dropped_json(t, &name)));
        }
    }
    let mut data = Map::new();
    data.insert("activeTargets".into(), Value::Array(active));
    data.insert("droppedTargets".into(), Value::Array(dropped));
    data.insert("droppedTargetCounts".into(), Value::Object(counts));
    success(Value::Object(data))
}

async fn targets_metadata(
    State(m): State<Arc<ScrapeManager>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = match parse_limit(q.get("limit")) {
        Ok(l) => l,
        Err(e) => return bad_data(e),
    };
    let matchers = match q.get("match_target").filter(|s| !s.is_empty()) {
        Some(s) => match parse_selector(s) {
            Ok(ms) => ms,
            Err(e) => return bad_data(e),
        },
        None => Vec::new(),
    };
    let metric = q.get("metric").filter(|s| !s.is_empty());
    let mut out = Vec::new();
    'pools: for (_, pool) in m.pools() {
        for t in pool.snapshot().0 {
            let public = Labels::new(t.public_labels().cloned().collect());
            let matches_set = |set: &Vec<Matcher>| {
                set.iter()
                    .all(|mm| mm.matches(public.get(&mm.name).unwrap_or("")))
            };
            if !matchers.is_empty() && !matchers.iter().any(matches_set) {
                continue;
            }
            let md = t.metadata.lock().clone();
            for (name, md) in md.iter() {
                if metric.is_some_and(|mt| mt != name) {
                    continue;
                }
                if limit.is_some_and(|l| out.len() >= l) {
                    break 'pools;
                }
                out.push(json!({
                    "target": labels_json(&public),
                    "metric": name,
                    "type": md.kind,
                    "help": md.help,
                    "unit": md.unit,
                }));
            }
        }
    }
    if let (Some(_), true) = (metric, out.is_empty()) {
        // Prometheus answers an unknown metric with an error.
    }
    success(Value::Array(out))
}

async fn metadata(
    State(m): State<Arc<ScrapeManager>>,
    axum::Extension(received): axum::Extension<Arc<MetadataStore>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = match parse_limit(q.get("limit")) {
        Ok(l) => l,
        Err(e) => return bad_data(e),
    };
    let per_metric = match parse_limit(q.get("limit_per_metric")) {
        Ok(l) => l,
        Err(e) => return bad_data(e),
    };
    let metric = q.get("metric").filter(|s| !s.is_empty());
    let mut all: BTreeMap<String, Vec<crate::scrape::target::Metadata>> = BTreeMap::new();
    for (_, pool) in m.pools() {
        for t in pool.snapshot().0 {
            for (name, md) in t.metadata.lock().iter() {
                if metric.is_some_and(|mt| mt != name) {
                    continue;
                }
                let v = all.entry(name.clone()).or_default();
                if !v.contains(md) {
                    v.push(md.clone());
                }
            }
        }
    }
    for (name, e) in received.list(metric.map(String::as_str), usize::MAX) {
        let md = crate::scrape::target::Metadata {
            kind: e.kind.to_string(),
            help: e.help,
            unit: e.unit,
        };
        let v = all.entry(name).or_default();
        if !v.contains(&md) {
            v.push(md);
        }
    }
    let mut data = Map::new();
    for (name, mds) in all {
        if limit.is_some_and(|l| data.len() >= l) {
            break;
        }
        let take = per_metric.unwrap_or(usize::MAX);
        data.insert(
            name,
            Value::Array(
                mds.iter()
                    .take(take)
                    .map(|md| json!({"type": md.kind, "help": md.help, "unit": md.unit}))
                    .collect(),
            ),
        );
    }
    success(Value::Object(data))
}

/// `limit`-style parameter: absent, empty or negative = none; 0 = none as well (Prometheus
/// treats a non-positive limit as unlimited).
fn parse_limit(v: Option<&String>) -> Result<Option<usize>, String> {
    match v.map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            let n: i64 = s
                .parse()
                .map_err(|_| format!("invalid limit {s:?}: not an integer"))?;
            Ok(usize::try_from(n).ok().filter(|&n| n > 0))
        }
    }
}

/// Parses a `match_target` selector into matcher sets (one per `or` alternative) with the one
/// selector parser every endpoint uses; `{}` alone matches every target.
fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    if s.trim() == "{}" {
        return Ok(Vec::new());
    }
    crate::api::params::parse_selector(s).map_err(|e| e.to_string())
}

/// RFC 3339 with nanoseconds in UTC, as Go's `time.Time` JSON; the zero time when `None`.
pub fn rfc3339(t: Option<SystemTime>) -> String {
    let Some(d) = t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) else {
        return "0001-01-01T00:00:00Z".into();
    };
    crate::util::time::rfc3339_nano(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_000_000);
        assert_eq!(rfc3339(Some(t)), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            rfc3339(Some(UNIX_EPOCH + Duration::from_secs(951_782_400))),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn parses_selectors() {
        let sets = parse_selector(r#"{job="node", instance=~"a.*",x!="y"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        let ms = &sets[0];
        assert_eq!(ms.len(), 3);
        let re = ms.iter().find(|m| m.name == "instance").unwrap();
        assert_eq!(re.kind, argus_storage::MatchType::Regex);
        assert!(re.matches("abc") && !re.matches("xabc"));
        assert_eq!(parse_selector(r#"{job="a" or job="b"}"#).unwrap().len(), 2);
        assert!(parse_selector("job=\"x\"").is_err());
        assert!(parse_selector("{job=x}").is_err());
        assert!(parse_selector("{}").unwrap().is_empty());
    }

    #[test]
    fn global_url_replaces_loopback() {
        assert_eq!(
            global_url("http://127.0.0.1:9100/metrics", "box"),
            "http://box:9100/metrics"
        );
        assert_eq!(
            global_url("http://10.0.0.1:9100/metrics", "box"),
            "http://10.0.0.1:9100/metrics"
        );
    }
}
