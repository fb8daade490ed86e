//! `/-/healthy`, `/-/ready`, `/-/reload`, `/-/quit` and `/metrics`.

use super::SharedState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

/// `GET|HEAD /-/healthy`.
pub async fn healthy() -> Response {
    (StatusCode::OK, "Argus Server is Healthy.\n").into_response()
}

/// `GET|HEAD /-/ready`: the listener opens only after the TSDB is open, so ready unless WAL
/// writes fail (a full disk): then 503, so a load balancer stops sending writes that would be
/// refused. Reading the flag never waits for the WAL.
pub async fn ready(State(state): State<SharedState>) -> Response {
    match state.db.wal_error() {
        None => (StatusCode::OK, "Argus Server is Ready.\n").into_response(),
        Some(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Argus Server is not ready: WAL writes fail: {e}\n"),
        )
            .into_response(),
    }
}

fn lifecycle_disabled() -> Response {
    (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n").into_response()
}

/// `POST|PUT /-/reload` (with `--web.enable-lifecycle`): 200, or 500 keeping the old config.
pub async fn reload(State(state): State<SharedState>) -> Response {
    if !state.lifecycle_enabled {
        return lifecycle_disabled();
    }
    let (tx, rx) = oneshot::channel();
    if state.reload_tx.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down\n").into_response(),
    }
}

/// `POST|PUT /-/quit` (with `--web.enable-lifecycle`): starts a graceful shutdown.
pub async fn quit(State(state): State<SharedState>) -> Response {
    if !state.lifecycle_enabled {
        return lifecycle_disabled();
    }
    state.quit.notify_one();
    (StatusCode::OK, "Requesting termination... Goodbye!\n").into_response()
}

/// `GET /metrics`: Argus's own metrics, text format 0.0.4.
pub async fn metrics(State(state): State<SharedState>) -> Response {
    let registry = state.registry.clone();
    let text = tokio::task::spawn_blocking(move || registry.render())
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
