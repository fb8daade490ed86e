//! The Pushgateway HTTP API on axum: push/delete endpoints, `/api/v1/{metrics,status}`, admin
//! wipe, and (standalone) `GET /metrics`.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::expose::proto::{Metric, MetricFamily, MetricType};
use crate::expose::text::{rfc3339_nano, write_family};
use crate::push::PushError;
use crate::push::body::{BodyError, decode_body, decode_content_encoding};
use crate::push::service::{GroupEntry, PUSH_FAILURE_TIME, PUSH_TIME, PushService};
use crate::push::store::GroupingKey;
use argus_query::gofloat::format_g as go_float_string;
use argus_query::names::is_legacy_label_name as valid_label_name;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

type Svc = State<Arc<PushService>>;

fn text_error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

fn error_response(e: &PushError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(error = %e, "push failed");
    }
    text_error(status, &e.to_string())
}

/// URL-safe base64 with or without padding, as Pushgateway decodes it
/// (`base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))`: non-zero trailing bits are
/// ignored, as Go's non-strict decoder does). The value must be UTF-8.
pub(crate) fn decode_base64url(s: &str) -> Result<String, String> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const RAW_URL: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    let s = s.trim_end_matches('=');
    let out = RAW_URL.decode(s).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(i, _)
            | base64::DecodeError::InvalidLastSymbol(i, _) => i,
            base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => s.len(),
        };
        format!("illegal base64 data at input byte {at}")
    })?;
    String::from_utf8(out).map_err(|_| "decoded value is not valid UTF-8".to_string())
}

/// Percent-decodes a URL path; a `%` not followed by two hex digits, or a result that is not
/// UTF-8, is an error (Go's `url.PathUnescape`).
fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let bad_escape = b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && !b
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if bad_escape {
        return Err(format!("invalid URL escape in {s:?}"));
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| format!("invalid UTF-8 in URL path {s:?}"))
}

/// Parses `…/metrics/job[@base64]/<job>[/<name>/<value>…]` into a grouping key.
pub(crate) fn grouping_key_from_path(raw_path: &str) -> Result<GroupingKey, PushError> {
    let bad = PushError::BadRequest;
    let path = percent_decode(raw_path).map_err(bad)?;
    let at = path
        .find("/metrics/job")
        .ok_or_else(|| bad("not a push path".into()))?;
    let rest = path.get(at + "/metrics/job".len()..).unwrap_or("");
    let (b64, rest) = match rest.strip_prefix("@base64") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (job, labels) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
        None => (rest, ""),
    };
    let job = if b64 {
        decode_base64url(job)
            .map_err(|e| bad(format!("invalid base64 encoding in job name {job:?}: {e}")))?
    } else {
        job.to_string()
    };
    let mut key = GroupingKey::new();
    if labels.len() > 1 {
        let comps: Vec<&str> = labels.get(1..).unwrap_or("").split('/').collect();
        if !comps.len().is_multiple_of(2) {
            return Err(bad(format!(
                "odd number of components in label string {labels:?}"
            )));
        }
        for pair in comps.chunks(2) {
            let (name, value) = match pair {
                [n, v] => (*n, *v),
                _ => unreachable!("BUG: chunks(2) of an even-length slice"),
            };
            let trimmed = name.strip_suffix("@base64").unwrap_or(name);
            if !valid_label_name(trimmed) || trimmed.starts_with("__") {
                return Err(bad(format!("improper label name {trimmed:?}")));
            }
            let value = if trimmed.len() == name.len() {
                value.to_string()
            } else {
                decode_base64url(value).map_err(|e| {
                    bad(format!(
                        "invalid base64 encoding for label {trimmed}={value:?}: {e}"
                    ))
                })?
            };
            key.insert(trimmed.to_string(), value);
        }
    }
    if job.is_empty() {
        return Err(bad("job name is required".into()));
    }
    key.insert("job".into(), job);
    Ok(key)
}

async fn push_handler(State(svc): Svc, req: Request) -> Response {
    let replace = req.method() == Method::PUT;
    let (parts, body) = req.into_parts();
    // Read the body first (bounded), so that early errors do not reset the connection under a
    // client that is still sending.
    let limit = svc.opts.max_body_bytes;
    let raw = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(&PushError::TooLarge(
                BodyError::TooLarge { limit }.to_string(),
            ));
        }
    };
    let key = match grouping_key_from_path(parts.uri.path()) {
        Ok(k) => k,
        Err(e) => return error_response(&e),
    };
    let header = |n: header::HeaderName| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let families =
        decode_content_encoding(header(header::CONTENT_ENCODING).as_deref(), &raw, limit)
            .and_then(|body| decode_body(header(header::CONTENT_TYPE).as_deref(), &body));
    let families = match families {
        Ok(f) => f,
        Err(BodyError::TooLarge { limit }) => {
            return error_response(&PushError::TooLarge(
                BodyError::TooLarge { limit }.to_string(),
            ));
        }
        Err(e) => return error_response(&PushError::BadRequest(e.to_string())),
    };
    match svc.push(key, families, replace).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error_response(&e),
    }
}

async fn delete_handler(State(svc): Svc, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // The body is ignored, but drained (bounded) like Go's server does.
    let _ = axum::body::to_bytes(body, svc.opts.max_body_bytes).await;
    let key = match grouping_key_from_path(parts.uri.path()) {
        Ok(k) => k,
        Err(e) => return error_response(&e),
    };
    match svc.delete(&key).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => error_response(&e),
    }
}

async fn wipe_handler(State(svc): Svc) -> Response {
    match svc.wipe().await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => error_response(&e),
    }
}

fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        (
            "access-control-allow-headers",
            "Accept, Authorization, Content-Type, Origin",
        ),
        ("access-control-allow-methods", "GET, POST, DELETE, OPTIONS"),
        ("access-control-allow-origin", "*"),
        ("access-control-expose-headers", "Date"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn json_response(data: Value) -> Response {
    cors(super::success(&data))
}

fn metric_json(m: &Metric, kind: MetricType) -> Value {
    let mut o = Map::new();
    let labels: Map<String, Value> = m
        .label
        .iter()
        .map(|l| {
            (
                l.name.clone().unwrap_or_default(),
                Value::String(l.value.clone().unwrap_or_default()),
            )
        })
        .collect();
    o.insert("labels".into(), Value::Object(labels));
    let s = |v: f64| Value::String(go_float_string(v));
    match kind {
        MetricType::Summary => {
            let sum = m.summary.clone().unwrap_or_default();
            let q: Map<String, Value> = sum
                .quantile
                .iter()
                .map(|q| {
                    (
                        go_float_string(q.quantile.unwrap_or(0.0)),
                        s(q.value.unwrap_or(0.0)),
                    )
                })
                .collect();
            o.insert("quantiles".into(), Value::Object(q));
            o.insert(
                "count".into(),
                Value::String(sum.sample_count.unwrap_or(0).to_string()),
            );
            o.insert("sum".into(), s(sum.sample_sum.unwrap_or(0.0)));
        }
        MetricType::Histogram => {
            let h = m.histogram.clone().unwrap_or_default();
            o.insert("sum".into(), s(h.sample_sum.unwrap_or(0.0)));
            let b: Map<String, Value> = h
                .bucket
                .iter()
                .map(|b| {
                    let count = match b.cumulative_count_float {
                        Some(f) if f > 0.0 => go_float_string(f),
                        _ => b.cumulative_count.unwrap_or(0).to_string(),
                    };
                    (
                        go_float_string(b.upper_bound.unwrap_or(0.0)),
                        Value::String(count),
                    )
                })
                .collect();
            o.insert("buckets".into(), Value::Object(b));
            let count = match h.sample_count_float {
                Some(f) if f > 0.0 => go_float_string(f),
                _ => h.sample_count.unwrap_or(0).to_string(),
            };
            o.insert("count".into(), Value::String(count));
        }
        _ => {
            let v = m
                .gauge
                .as_ref()
                .and_then(|g| g.value)
                .or_else(|| m.counter.as_ref().and_then(|c| c.value))
                .or_else(|| m.untyped.as_ref().and_then(|u| u.value))
                .unwrap_or(0.0);
            o.insert("value".into(), s(v));
        }
    }
    Value::Object(o)
}

/// The `/api/v1/metrics` `data` array, groups in grouping-key order.
pub(crate) fn metrics_json(groups: &[Arc<GroupEntry>]) -> Value {
    let mut out = Vec::with_capacity(groups.len());
    for e in groups {
        let g = &e.group;
        let mut o = Map::new();
        let labels: Map<String, Value> = g
            .key
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        o.insert("labels".into(), Value::Object(labels));
        let ok = g.gauge(PUSH_FAILURE_TIME) <= g.gauge(PUSH_TIME);
        o.insert("last_push_successful".into(), Value::Bool(ok));
        for (name, sf) in &g.families {
            let Some(f) = &sf.family else { continue };
            let kind = f.kind();
            let mut fo = Map::new();
            fo.insert(
                "time_stamp".into(),
                Value::String(rfc3339_nano(sf.ts_nanos)),
            );
            fo.insert("type".into(), Value::String(kind.go_name().into()));
            if let Some(h) = f.help.as_deref().filter(|h| !h.is_empty()) {
                fo.insert("help".into(), Value::String(h.into()));
            }
            let ms: Vec<Value> = f.metric.iter().map(|m| metric_json(m, kind)).collect();
            fo.insert("metrics".into(), Value::Array(ms));
            o.insert(name.clone(), Value::Object(fo));
        }
        out.push(Value::Object(o));
    }
    Value::Array(out)
}

/// Go's metric sort for exposition: fewer labels first, then label values pairwise.
fn metric_order(a: &Metric, b: &Metric) -> std::cmp::Ordering {
    a.label.len().cmp(&b.label.len()).then_with(|| {
        for (x, y) in a.label.iter().zip(&b.label) {
            let o = x.value.cmp(&y.value);
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    })
}

/// All groups merged into one exposition, families sorted by name, as Pushgateway's
/// `GET /metrics` shows them (the help text of the first group in key order wins).
pub(crate) fn merged_families(groups: &[Arc<GroupEntry>]) -> Vec<MetricFamily> {
    let mut by_name: BTreeMap<&str, MetricFamily> = BTreeMap::new();
    for e in groups {
        for (name, sf) in &e.group.families {
            let Some(f) = &sf.family else { continue };
            match by_name.get_mut(name.as_str()) {
                Some(acc) => acc.metric.extend(f.metric.iter().cloned()),
                None => {
                    by_name.insert(name, f.clone());
                }
            }
        }
    }
    let mut out: Vec<MetricFamily> = by_name
        .into_values()
        .filter(|f| !f.metric.is_empty())
        .collect();
    for f in &mut out {
        f.metric.sort_by(metric_order);
    }
    out
}

/// `GET /metrics` of the push port: delimited protobuf when the client asks for it (the only
/// format that carries native histograms), text format 0.0.4 otherwise, as Pushgateway does.
async fn metrics_exposition(State(svc): Svc, headers: HeaderMap) -> Response {
    let families = merged_families(&svc.snapshot());
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if crate::expose::accepts_protobuf(accept) {
        let mut body = Vec::new();
        crate::push::body::encode_delimited(&families, &mut body);
        return (
            [(header::CONTENT_TYPE, crate::expose::PROTOBUF_CONTENT_TYPE)],
            body,
        )
            .into_response();
    }
    let mut body = String::new();
    for f in families {
        write_family(&f, &mut body);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn api_metrics(State(svc): Svc) -> Response {
    json_response(metrics_json(&svc.snapshot()))
}

async fn api_status(State(svc): Svc) -> Response {
    let o = &svc.opts;
    let flags = json!({
        "push.group-ttl": o.group_ttl.map(|d| format!("{}s", d.as_secs())).unwrap_or_else(|| "0s".into()),
        "push.interval": format!("{}s", o.interval.as_secs()),
        "push.max-body-bytes": o.max_body_bytes.to_string(),
        "push.max-groups": o.max_groups.to_string(),
        "push.max-series-per-group": o.max_series_per_group.to_string(),
        "web.enable-admin-api": o.enable_admin.to_string(),
    });
    json_response(json!({
        "flags": flags,
        "start_time": rfc3339_nano(svc.start_nanos),
        "build_information": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        },
    }))
}

async fn options() -> Response {
    cors(StatusCode::OK.into_response())
}

fn push_routes(svc: &Arc<PushService>) -> Router {
    let m = axum::routing::put(push_handler)
        .post(push_handler)
        .delete(delete_handler);
    let mut r = Router::new()
        .route("/metrics/job/{*rest}", m.clone())
        .route("/metrics/job@base64/{*rest}", m)
        .route("/api/v1/metrics", get(api_metrics).options(options))
        .route("/api/v1/status", get(api_status).options(options));
    if svc.opts.enable_admin {
        r = r.route("/api/v1/admin/wipe", put(wipe_handler).options(options));
    }
    r.with_state(svc.clone())
}

/// The Pushgateway API for the main port: `/metrics/job/…`, `/api/v1/metrics`,
/// `/api/v1/status` and, with `enable_admin`, `PUT /api/v1/admin/wipe`.
pub fn router(svc: &Arc<PushService>) -> Router {
    push_routes(svc)
}

/// [`router`] plus `GET /metrics` (all groups as one exposition), `/-/healthy`, `/-/ready` and
/// CORS pre-flight on `/api/v1/*`, for a dedicated push port.
pub fn standalone_router(svc: &Arc<PushService>) -> Router {
    let extra = Router::new()
        .route("/metrics", get(metrics_exposition))
        .route("/-/healthy", get(|| async { "OK" }))
        .route("/-/ready", get(|| async { "OK" }))
        .route("/api/v1/{*path}", any(options_or_404))
        .with_state(svc.clone());
    push_routes(svc).merge(extra)
}

async fn options_or_404(req: Request<Body>) -> Response {
    if req.method() == Method::OPTIONS {
        options().await
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn base64url() {
        let check = |s: &str, want: Option<&str>| {
            assert_eq!(decode_base64url(s).ok().as_deref(), want, "{s}");
        };
        check("=", Some(""));
        check("", Some(""));
        check("L3Zhci90bXA=", Some("/var/tmp"));
        check("L3Zhci90bXA", Some("/var/tmp"));
        check("w6k", Some("é"));
        check("Zm9v", Some("foo"));
        check("Zm9v!", None);
        check("Z", None);
        check("L3Zhci90bXA+", None);
        check("Zm9vY", None);
    }

    #[test]
    fn grouping_keys() {
        let check = |p: &str, want: Result<&[(&str, &str)], ()>| {
            let got = grouping_key_from_path(p);
            match want {
                Ok(pairs) => {
                    let k: GroupingKey = pairs
                        .iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect();
                    assert_eq!(got.ok(), Some(k), "{p}");
                }
                Err(()) => assert!(got.is_err(), "{p} should fail"),
            }
        };
        check("/metrics/job/j", Ok(&[("job", "j")]));
        check("/metrics/job/j/", Ok(&[("job", "j")]));
        check(
            "/metrics/job/j/a/1/b/2",
            Ok(&[("job", "j"), ("a", "1"), ("b", "2")]),
        );
        check("/metrics/job/j/a/1/b", Err(()));
        check("/metrics/job/j/a/1/", Err(()));
        check(
            "/metrics/job@base64/L3Zhci90bXA=",
            Ok(&[("job", "/var/tmp")]),
        );
        check("/metrics/job@base64/=", Err(()));
        check(
            "/metrics/job/j/path@base64/=",
            Ok(&[("job", "j"), ("path", "")]),
        );
        check("/metrics/job/j/__x/1", Err(()));
        check("/metrics/job/j/1a/1", Err(()));
        check("/metrics/job/j/job/other", Ok(&[("job", "j")]));
        check("/metrics/job/j%20k/a/b%2Fc", Err(()));
        check(
            "/metrics/job/j%20k/a/b%20c",
            Ok(&[("job", "j k"), ("a", "b c")]),
        );
    }
}
