//! `GET /api/v1/status/remote_write`: per-queue state of the remote-write sender (an Argus
//! extension; see `remote::status`).

use super::success_json;
use crate::remote::RemoteWrite;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;

async fn status(State(remote): State<Arc<RemoteWrite>>) -> Response {
    success_json(&remote.status().to_string(), &[])
}

/// The route, over the server's queues.
pub fn router(remote: Arc<RemoteWrite>) -> Router {
    Router::new()
        .route("/api/v1/status/remote_write", get(status))
        .with_state(remote)
}
