//! HTTP API (axum) with Prometheus's paths, JSON shapes, status codes and error envelope.
//!
//! [`AppState`] holds everything handlers need; [`router`] serves the endpoints implemented here;
//! `server::build_router` merges it with the routers of [`targets`], [`push`] and [`federate`].

pub(crate) mod admin;
pub mod agent;
pub(crate) mod alertmanagers;
pub(crate) mod error;
pub mod federate;
pub(crate) mod format;
pub(crate) mod lifecycle;
pub mod otlp;
pub mod params;
pub mod push;
pub mod query;
pub mod query_json;
pub mod read;
pub mod remote_status;
pub(crate) mod rules;
pub mod series;
pub(crate) mod status;
pub mod targets;
pub mod ui;
pub(crate) mod write;

use crate::config::ConfigState;
use crate::ingest::metadata::MetadataStore;
use crate::ingest::metrics::RemoteWriteMetrics;
use crate::metrics::{HttpMetrics, QueryMetrics, Registry};
use argus_query::{Engine, EngineOptions};
use argus_storage::{
    Appendable, Db, DbMetrics, Matcher, Queryable, Result as StorageResult, Timestamp, TsdbStats,
};
use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::ApiError;
use params::{MAX_FORM_BYTES, Params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::{Notify, mpsc, oneshot};

/// What the API needs from the database beyond reading and appending: the admin operations and
/// statistics. Implemented by [`Db`]; tests implement it over `MemStorage`.
pub trait Tsdb: Queryable + Appendable + 'static {
    /// See [`Db::delete_series`].
    fn delete_series(
        &self,
        matchers: &[Matcher],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> StorageResult<()>;
    /// See [`Db::clean_tombstones`].
    fn clean_tombstones(&self) -> StorageResult<()>;
    /// See [`Db::snapshot`].
    fn snapshot(&self, dir: &Path, with_head: bool) -> StorageResult<()>;
    /// See [`Db::stats`].
    fn stats(&self, limit: usize) -> TsdbStats;
    /// See [`Db::metrics`].
    fn metrics(&self) -> DbMetrics;
    /// See [`Db::wal_error`]: `Some` while WAL writes fail (`/-/ready` answers 503).
    fn wal_error(&self) -> Option<String> {
        None
    }
}

impl Tsdb for Db {
    fn delete_series(
        &self,
        matchers: &[Matcher],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> StorageResult<()> {
        Db::delete_series(self, matchers, mint, maxt)
    }
    fn clean_tombstones(&self) -> StorageResult<()> {
        Db::clean_tombstones(self)
    }
    fn snapshot(&self, dir: &Path, with_head: bool) -> StorageResult<()> {
        Db::snapshot(self, dir, with_head)
    }
    fn stats(&self, limit: usize) -> TsdbStats {
        Db::stats(self, limit)
    }
    fn metrics(&self) -> DbMetrics {
        Db::metrics(self)
    }
    fn wal_error(&self) -> Option<String> {
        Db::wal_error(self)
    }
}

/// A reload request: the reply channel receives the outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// Shared state of every handler. Immutable after construction except through the interior
/// locks of the components.
pub struct AppState {
    /// The database.
    pub db: Arc<dyn Tsdb>,
    /// Options the engine was built with (a request's `timeout` may lower the timeout).
    pub engine_opts: EngineOptions,
    /// The engine.
    pub engine: Arc<Engine>,
    /// The current config.
    pub config: Arc<ConfigState>,
    /// `--web.enable-admin-api`.
    pub admin_enabled: bool,
    /// `--web.enable-lifecycle`.
    pub lifecycle_enabled: bool,
    /// Flag values for `/api/v1/status/flags`.
    pub flags: BTreeMap<String, String>,
    /// `--storage.tsdb.path`.
    pub data_dir: PathBuf,
    /// Retention as shown by runtimeinfo.
    pub retention_text: String,
    /// Process start.
    pub start_time: SystemTime,
    /// `/metrics` registry.
    pub registry: Arc<Registry>,
    /// HTTP counters.
    pub http_metrics: Arc<HttpMetrics>,
    /// Query durations.
    pub query_metrics: Arc<QueryMetrics>,
    /// Remote-write counters.
    pub rw_metrics: Arc<RemoteWriteMetrics>,
    /// Metadata received by remote write.
    pub metadata: Arc<MetadataStore>,
    /// Sends reload requests to the server's reload loop (serialised there).
    pub reload_tx: mpsc::Sender<ReloadRequest>,
    /// Notified by `/-/quit`.
    pub quit: Arc<Notify>,
    /// Label bounds of remote-written series.
    pub remote_write_limits: crate::ingest::remote_write::LabelLimits,
    /// Remote write 1.0's series cache (refs of `db`; validated under `remote_write_limits`).
    pub rw_cache: Arc<crate::ingest::series_cache::SeriesCache>,
    /// The Alertmanager notifier (None: `/api/v1/alertmanagers` lists none).
    pub notifier: Option<Arc<crate::notifier::Notifier>>,
    /// The rule manager (None: no rules, `/api/v1/rules` and `/api/v1/alerts` answer empty).
    pub rules: Option<Arc<crate::rules::manager::RuleManager>>,
    /// `--web.enable-remote-write-receiver`: otherwise `/api/v1/write` answers 404.
    pub remote_write_enabled: bool,
    /// `--web.enable-otlp-receiver`: otherwise `/api/v1/otlp/v1/metrics` answers 404.
    pub otlp_enabled: bool,
    /// `--enable-feature=created-timestamp-zero-ingestion`: remote write 2.0 start timestamps
    /// become zero samples.
    pub ct_zero_ingestion: bool,
    /// `--query.max-concurrency` slots; a query waits for one within its timeout.
    pub query_slots: Arc<tokio::sync::Semaphore>,
    /// The remote read server's bounds (`--storage.remote.read-*`).
    pub remote_read: Arc<read::ReadGate>,
    /// `--agent`: the query API answers Prometheus's agent error (`agent::guard`).
    pub agent: bool,
}

/// Shared state handle.
pub type SharedState = Arc<AppState>;

/// A `{"status":"success","data":…}` response from pre-rendered `data` JSON.
pub fn success_json(data: &str, warnings: &[String]) -> Response {
    let mut body = String::with_capacity(data.len() + 64);
    body.push_str("{\"status\":\"success\",\"data\":");
    body.push_str(data);
    if !warnings.is_empty() {
        body.push_str(",\"warnings\":[");
        for (i, w) in warnings.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            format::push_json_str(&mut body, w);
        }
        body.push(']');
    }
    body.push('}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A success response with a serde-serialisable `data`.
pub fn success<T: serde::Serialize>(data: &T) -> Response {
    match serde_json::to_string(data) {
        Ok(s) => success_json(&s, &[]),
        Err(e) => ApiError::internal(format!("cannot encode response: {e}")).into_response(),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Reads a request's parameters: URL query plus a form body (bounded).
pub async fn read_params(req: Request) -> Result<Params, ApiError> {
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().map(str::to_string);
    let form = if is_form(&parts.headers) {
        Some(
            axum::body::to_bytes(body, MAX_FORM_BYTES)
                .await
                .map_err(|e| ApiError::bad_data(format!("error reading request body: {e}")))?,
        )
    } else {
        None
    };
    Params::new(query.as_deref(), form.as_deref())
}

/// Counts requests by matched route and status code.
async fn count_requests(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".to_string());
    let resp = next.run(req).await;
    state.http_metrics.inc(&handler, resp.status().as_u16());
    resp
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

/// The endpoints implemented in this module (everything except scrape, push and federation).
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/api/v1/query", get(query::instant).post(query::instant))
        .route("/api/v1/query_range", get(query::range).post(query::range))
        .route(
            "/api/v1/query_exemplars",
            get(query::exemplars).post(query::exemplars),
        )
        .route("/api/v1/series", get(series::series).post(series::series))
        .route("/api/v1/labels", get(series::labels).post(series::labels))
        .route("/api/v1/label/{name}/values", get(series::label_values))
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/runtimeinfo", get(status::runtimeinfo))
        .route("/api/v1/status/tsdb", get(status::tsdb))
        .route("/api/v1/status/walreplay", get(status::walreplay))
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/api/v1/alertmanagers", get(alertmanagers::list))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(admin::delete_series).put(admin::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(admin::clean_tombstones).put(admin::clean_tombstones),
        )
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(admin::snapshot).put(admin::snapshot),
        )
        .route("/api/v1/write", post(write::remote_write))
        .route("/api/v1/otlp/v1/metrics", post(otlp::metrics))
        .route("/api/v1/read", post(read::remote_read))
        .route(
            "/-/healthy",
            get(lifecycle::healthy).head(lifecycle::healthy),
        )
        .route("/-/ready", get(lifecycle::ready).head(lifecycle::ready))
        .route("/-/reload", post(lifecycle::reload).put(lifecycle::reload))
        .route("/-/quit", post(lifecycle::quit).put(lifecycle::quit))
        .route("/metrics", get(lifecycle::metrics))
        .with_state(state)
}

/// Stand-ins for the scrape manager's `/api/v1/targets`, `/api/v1/targets/metadata` and
/// `/api/v1/metadata` (remote-write metadata only) when no scrape router is mounted.
pub fn scrape_placeholder_router(state: SharedState) -> Router {
    Router::new()
        .route("/api/v1/targets", get(status::targets_placeholder))
        .route(
            "/api/v1/targets/metadata",
            get(status::targets_metadata_placeholder),
        )
        .route("/api/v1/metadata", get(series::metadata))
        .with_state(state)
}

/// Adds what every route shares: request counting, gzip, and Prometheus's 404 for unknown paths.
pub fn finish(router: Router, state: SharedState) -> Router {
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state, count_requests))
        .layer(tower_http::compression::CompressionLayer::new())
}

/// An empty body (204 responses).
pub fn no_content() -> Response {
    (StatusCode::NO_CONTENT, Body::empty()).into_response()
}

#[cfg(test)]
mod tests;
