//! `/api/v1/admin/tsdb/*`, behind `--web.enable-admin-api` (otherwise `unavailable` with
//! status 500, as Prometheus answers).

use super::error::{ApiError, ErrorType};
use super::params::{MAX_TIME_MS, MIN_TIME_MS};
use super::{SharedState, no_content, read_params, success};
use crate::util::time::compact_utc;
use crate::util::time::now_ms;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use std::hash::{BuildHasher, Hasher};

fn check_enabled(state: &SharedState) -> Result<(), ApiError> {
    if state.admin_enabled {
        Ok(())
    } else {
        Err(ApiError {
            kind: ErrorType::Unavailable,
            message: "admin APIs disabled".into(),
        })
    }
}

async fn blocking(
    f: impl FnOnce() -> Result<(), ApiError> + Send + 'static,
) -> Result<(), ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("admin task failed: {e}")))?
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series`: `match[]` (required), `start`, `end`; 204.
pub async fn delete_series(State(state): State<SharedState>, req: Request) -> Response {
    let result = async {
        check_enabled(&state)?;
        let p = read_params(req).await?;
        if p.all("match[]").is_empty() {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        let start = p.time_or("start", MIN_TIME_MS)?;
        let end = p.time_or("end", MAX_TIME_MS)?;
        let sets = p.selectors()?;
        let db = state.db.clone();
        blocking(move || {
            for set in &sets {
                db.delete_series(set, start, end)
                    .map_err(|e| ApiError::storage(&e))?;
            }
            Ok(())
        })
        .await?;
        Ok(no_content())
    }
    .await;
    result.unwrap_or_else(|e: ApiError| e.into_response())
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones`; 204.
pub async fn clean_tombstones(State(state): State<SharedState>) -> Response {
    let result = async {
        check_enabled(&state)?;
        let db = state.db.clone();
        blocking(move || db.clean_tombstones().map_err(|e| ApiError::storage(&e))).await?;
        Ok(no_content())
    }
    .await;
    result.unwrap_or_else(|e: ApiError| e.into_response())
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A snapshot name: `<YYYYMMDDTHHMMSSZ>-<16 hex digits>`, as Prometheus.
pub fn snapshot_name(now_ms: i64) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ms);
    format!(
        "{}-{:016x}",
        compact_utc(now_ms),
        h.finish() & 0x7fff_ffff_ffff_ffff
    )
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot` (`skip_head`): writes `<data>/snapshots/<name>`.
pub async fn snapshot(State(state): State<SharedState>, req: Request) -> Response {
    let result = async {
        check_enabled(&state)?;
        let p = read_params(req).await?;
        let skip_head = match p.get("skip_head") {
            None => false,
            Some(s) => parse_bool(s).ok_or_else(|| {
                ApiError::invalid_param(
                    "skip_head",
                    format!("strconv.ParseBool: parsing {s:?}: invalid syntax"),
                )
            })?,
        };
        let name = snapshot_name(now_ms());
        let parent = state.data_dir.join("snapshots");
        let dir = parent.join(&name);
        let db = state.db.clone();
        blocking(move || {
            std::fs::create_dir_all(&parent).map_err(|e| {
                ApiError::internal(format!(
                    "create snapshot: cannot create {}: {e}",
                    parent.display()
                ))
            })?;
            db.snapshot(&dir, !skip_head)
                .map_err(|e| ApiError::internal(format!("create snapshot: {e}")))
        })
        .await?;
        Ok(success(&serde_json::json!({ "name": name })))
    }
    .await;
    result.unwrap_or_else(|e: ApiError| e.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_look_like_prometheus() {
        let n = snapshot_name(1512940344000);
        let (ts, hex) = n.split_once('-').unwrap();
        assert_eq!(ts, "20171210T211224Z");
        assert_eq!(hex.len(), 16);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("yes"), None);
    }
}
