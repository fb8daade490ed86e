//! `GET /api/v1/alertmanagers`: the notifier's active and dropped Alertmanagers.

use super::{SharedState, success};
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

#[derive(Serialize)]
struct Url {
    url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Discovered {
    active_alertmanagers: Vec<Url>,
    dropped_alertmanagers: Vec<Url>,
}

/// `{"activeAlertmanagers":[{"url":…}],"droppedAlertmanagers":[{"url":…}]}`, each URL the full
/// POST URL, as Prometheus.
pub async fn list(State(state): State<SharedState>) -> Response {
    let urls = state
        .notifier
        .as_ref()
        .map(|n| n.alertmanagers())
        .unwrap_or_default();
    let wrap = |v: Vec<String>| v.into_iter().map(|url| Url { url }).collect();
    success(&Discovered {
        active_alertmanagers: wrap(urls.active),
        dropped_alertmanagers: wrap(urls.dropped),
    })
}
