//! The HTTP edge in agent mode (`--agent`), as Prometheus's agent answers it: the local query
//! API (queries, series, labels, exemplars, rules, alerts, TSDB status and admin) is
//! `422 {"status":"error","errorType":"execution","error":"unavailable with Prometheus Agent"}`,
//! federation and remote read are `500 unsupported operation with WAL-only storage`, and the
//! UI's query, rule and alert pages lead to an agent page.

use super::error::{ApiError, ErrorType};
use axum::Router;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// Prometheus's message for the query API in agent mode.
pub const AGENT_ERROR: &str = "unavailable with Prometheus Agent";
/// Prometheus's message for reads of an agent's WAL-only storage.
pub const WAL_ONLY_ERROR: &str = "unsupported operation with WAL-only storage";

/// API paths (relative to the route prefix) an agent refuses.
const REFUSED: &[&str] = &[
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/query_exemplars",
    "/api/v1/format_query",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/rules",
    "/api/v1/alerts",
    "/api/v1/status/tsdb",
];

/// UI pages that need the local query engine or rules.
const UI_PAGES: &[&str] = &["/", "/query", "/graph", "/rules", "/alerts"];

const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Argus Agent</title></head><body>\n<h2>Argus Agent</h2>\n<p>This Argus instance is \
running in <strong>agent mode</strong>. In this mode, Argus is only used to scrape discovered \
targets, receive pushed and remote-written samples, and forward them to remote write \
endpoints.</p>\n<p>Some features are not available in this mode, such as querying and \
alerting.</p>\n<p><a href=\"targets\">Targets</a> · <a href=\"service-discovery\">Service \
discovery</a> · <a href=\"status\">Status</a></p>\n</body></html>\n";

/// The agent page (`GET /agent`).
pub fn router() -> Router {
    Router::new().route("/agent", get(|| async { Html(PAGE) }))
}

/// Middleware refusing what an agent cannot answer (installed only with `--agent`).
pub async fn guard(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if REFUSED.contains(&path)
        || path.starts_with("/api/v1/label/")
        || path.starts_with("/api/v1/admin/tsdb/")
    {
        return ApiError {
            kind: ErrorType::Execution,
            message: AGENT_ERROR.into(),
        }
        .into_response();
    }
    if path == "/federate" || path == "/api/v1/read" {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{WAL_ONLY_ERROR}\n"),
        )
            .into_response();
    }
    if req.method() == Method::GET && UI_PAGES.contains(&path) {
        return super::ui::found("agent");
    }
    next.run(req).await
}
