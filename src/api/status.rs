//! `/api/v1/status/*`, `/api/v1/alertmanagers`, and the targets
//! placeholders used while no scrape router is mounted.

use super::error::ApiError;
use super::{SharedState, read_params, success, success_json};
use crate::util::time::rfc3339;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// `GET /api/v1/status/buildinfo`.
pub async fn buildinfo() -> Response {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct BuildInfo {
        version: &'static str,
        revision: &'static str,
        branch: &'static str,
        build_user: &'static str,
        build_date: &'static str,
        go_version: &'static str,
    }
    success(&BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        revision: option_env!("ARGUS_REVISION").unwrap_or("unknown"),
        branch: option_env!("ARGUS_BRANCH").unwrap_or("unknown"),
        build_user: "unknown",
        build_date: "unknown",
        go_version: "none (Rust)",
    })
}

/// `GET /api/v1/status/config`, secrets shown as `<secret>` as Prometheus shows them.
pub async fn config(State(state): State<SharedState>) -> Response {
    success(&json!({ "yaml": hide_secrets(&state.config.get().to_yaml()) }))
}

/// Keys whose values are secrets (Prometheus's `config.Secret` fields).
const SECRET_KEYS: &[&str] = &["password", "credentials", "bearer_token", "client_secret"];

/// Replaces every secret value in a YAML document by `<secret>`.
fn hide_secrets(yaml: &str) -> String {
    use serde_yaml_ng::Value;
    fn walk(v: &mut Value) {
        match v {
            Value::Mapping(m) => {
                for (k, val) in m.iter_mut() {
                    if k.as_str().is_some_and(|k| SECRET_KEYS.contains(&k)) && !val.is_null() {
                        *val = Value::String("<secret>".into());
                    } else {
                        walk(val);
                    }
                }
            }
            Value::Sequence(s) => s.iter_mut().for_each(walk),
            Value::Tagged(t) => walk(&mut t.value),
            _ => {}
        }
    }
    match serde_yaml_ng::from_str::<Value>(yaml) {
        Ok(mut v) => {
            walk(&mut v);
            serde_yaml_ng::to_string(&v).unwrap_or_default()
        }
        Err(e) => format!("# cannot render config: {e}\n"),
    }
}

/// `GET /api/v1/status/flags`.
pub async fn flags(State(state): State<SharedState>) -> Response {
    success(&state.flags)
}

/// `GET /api/v1/status/runtimeinfo`.
pub async fn runtimeinfo(State(state): State<SharedState>) -> Response {
    let start_ms = state
        .start_time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let corruptions = {
        let db = state.db.clone();
        tokio::task::spawn_blocking(move || db.metrics().wal_corruptions)
            .await
            .unwrap_or(0)
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    success(&json!({
        "startTime": rfc3339(start_ms),
        "CWD": cwd,
        "reloadConfigSuccess": state.config.last_reload_ok(),
        "lastConfigTime": rfc3339(state.config.loaded_at_ms()),
        "corruptionCount": corruptions,
        "goroutineCount": 0,
        "GOMAXPROCS": threads,
        "GOMEMLIMIT": i64::MAX,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": state.retention_text,
    }))
}

/// `GET /api/v1/status/tsdb` (`limit`, default 10).
pub async fn tsdb(State(state): State<SharedState>, req: Request) -> Response {
    let result = async {
        let p = read_params(req).await?;
        let limit = match p.get("limit") {
            None => 10,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_data(format!(
                        "limit must be a positive number between 1 and 10000, got {s:?}"
                    )));
                }
            },
        };
        let db = state.db.clone();
        let stats = tokio::task::spawn_blocking(move || db.stats(limit))
            .await
            .map_err(|e| ApiError::internal(format!("cannot read tsdb stats: {e}")))?;
        let list = |v: &[(String, u64)]| {
            v.iter()
                .map(|(n, c)| json!({"name": n, "value": c}))
                .collect::<Vec<_>>()
        };
        let empty = stats.num_series == 0;
        Ok(success(&json!({
            "headStats": {
                "numSeries": stats.num_series,
                "numLabelPairs": stats.series_count_by_label_value_pair.len(),
                "chunkCount": stats.num_chunks,
                "minTime": if empty { i64::MAX } else { stats.min_time },
                "maxTime": if empty { i64::MIN } else { stats.max_time },
            },
            "seriesCountByMetricName": list(&stats.series_count_by_metric_name),
            "labelValueCountByLabelName": list(&stats.label_value_count_by_label_name),
            "memoryInBytesByLabelName": list(&stats.memory_in_bytes_by_label_name),
            "seriesCountByLabelValuePair": list(&stats.series_count_by_label_value_pair),
        })))
    }
    .await;
    result.unwrap_or_else(|e: ApiError| e.into_response())
}

/// `GET /api/v1/status/walreplay`: replay happens before the listener opens, so it is done.
pub async fn walreplay() -> Response {
    success_json(r#"{"min":0,"max":0,"current":0}"#, &[])
}

/// `GET /api/v1/targets` while no scrape manager is mounted.
pub async fn targets_placeholder() -> Response {
    success_json(
        r#"{"activeTargets":[],"droppedTargets":[],"droppedTargetCounts":{}}"#,
        &[],
    )
}

/// `GET /api/v1/targets/metadata` while no scrape manager is mounted.
pub async fn targets_metadata_placeholder() -> Response {
    success_json("[]", &[])
}

#[cfg(test)]
mod tests {
    #[test]
    fn hides_secrets() {
        let y = "scrape_configs:\n- job_name: a\n  basic_auth:\n    username: u\n    password: hunter2\n  authorization:\n    credentials: tok\n";
        let out = super::hide_secrets(y);
        assert!(!out.contains("hunter2") && !out.contains("tok"), "{out}");
        assert!(out.contains("password: <secret>"), "{out}");
        assert!(out.contains("username: u"), "{out}");
    }
}
