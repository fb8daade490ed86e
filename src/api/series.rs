//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values`, `/api/v1/metadata`.
//! Storage reads run on `spawn_blocking`.

use super::error::ApiError;
use super::format::{push_json_str, push_labels};
use super::params::{MAX_TIME_MS, MIN_TIME_MS, Params};
use super::{SharedState, read_params, success_json};
use argus_storage::{Labels, Matcher};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;

const TRUNCATED: &str = "results truncated due to limit";

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("storage read failed: {e}")))?
}

fn time_range(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((
        p.time_or("start", MIN_TIME_MS)?,
        p.time_or("end", MAX_TIME_MS)?,
    ))
}

fn render_strings(values: &BTreeSet<String>, limit: usize) -> (String, Vec<String>) {
    let mut out = String::from("[");
    for (i, v) in values.iter().take(limit).enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, v);
    }
    out.push(']');
    let warnings = if values.len() > limit {
        vec![TRUNCATED.to_string()]
    } else {
        vec![]
    };
    (out, warnings)
}

/// `GET|POST /api/v1/series`.
pub async fn series(State(state): State<SharedState>, req: Request) -> Response {
    let result = async {
        let p = read_params(req).await?;
        if p.all("match[]").is_empty() {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        let (start, end) = time_range(&p)?;
        let limit = p.limit()?;
        let sets = p.selectors()?;
        let db = state.db.clone();
        let found = blocking(move || {
            let q = db.querier(start, end).map_err(|e| ApiError::storage(&e))?;
            let mut found: BTreeSet<Labels> = BTreeSet::new();
            for set in &sets {
                // Each set comes sorted, so its first `limit + 1` series hold every series of
                // the union's first `limit + 1`: stop there (memory bounded by the limit).
                let mut ss = q.select(set);
                let mut taken = 0usize;
                while taken <= limit && ss.next() {
                    found.insert(ss.labels().clone());
                    taken += 1;
                }
                if let Some(e) = ss.err() {
                    return Err(ApiError::storage(e));
                }
            }
            Ok((found, q.warnings()))
        })
        .await?;
        let (found, mut warnings) = found;
        let mut out = String::from("[");
        for (i, l) in found.iter().take(limit).enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_labels(&mut out, l);
        }
        out.push(']');
        if found.len() > limit {
            warnings.push(TRUNCATED.to_string());
        }
        Ok(success_json(&out, &warnings))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Union over the `match[]` sets (or all series) of `f(querier, matchers, limit + 1)`: the
/// first `limit + 1` strings, so the caller can tell whether the answer was truncated, and the
/// storage's warnings.
async fn collect_strings(
    state: &SharedState,
    p: &Params,
    f: impl Fn(&dyn argus_storage::Querier, &[Matcher], usize) -> argus_storage::Result<Vec<String>>
    + Send
    + 'static,
) -> Result<(BTreeSet<String>, Vec<String>), ApiError> {
    let (start, end) = time_range(p)?;
    let want = p.limit()?.saturating_add(1);
    let mut sets = p.selectors()?;
    if sets.is_empty() {
        sets.push(Vec::new());
    }
    let db = state.db.clone();
    blocking(move || {
        let q = db.querier(start, end).map_err(|e| ApiError::storage(&e))?;
        let mut out = BTreeSet::new();
        for set in &sets {
            // Storage stops at `want` per set (sorted), and the union keeps only its first
            // `want`: memory is bounded by the limit, not by the number of values.
            let got = f(&*q, set, want).map_err(|e| ApiError::storage(&e))?;
            out.extend(got);
            while out.len() > want {
                out.pop_last();
            }
        }
        Ok((out, q.warnings()))
    })
    .await
}

/// `GET|POST /api/v1/labels`.
pub async fn labels(State(state): State<SharedState>, req: Request) -> Response {
    let result = async {
        let p = read_params(req).await?;
        let limit = p.limit()?;
        let (names, mut warnings) =
            collect_strings(&state, &p, |q, m, n| q.label_names_limited(m, n)).await?;
        let (data, truncated) = render_strings(&names, limit);
        warnings.extend(truncated);
        Ok(success_json(&data, &warnings))
    }
    .await;
    result.unwrap_or_else(|e: ApiError| e.into_response())
}

/// `GET /api/v1/label/<name>/values`.
pub async fn label_values(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let result = async {
        if name.is_empty() {
            return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
        }
        let p = read_params(req).await?;
        let limit = p.limit()?;
        let (values, mut warnings) = collect_strings(&state, &p, move |q, m, n| {
            q.label_values_limited(&name, m, n)
        })
        .await?;
        let (data, truncated) = render_strings(&values, limit);
        warnings.extend(truncated);
        Ok(success_json(&data, &warnings))
    }
    .await;
    result.unwrap_or_else(|e: ApiError| e.into_response())
}

/// `GET /api/v1/metadata`: metadata received by remote write (`metric`, `limit`,
/// `limit_per_metric` as Prometheus).
pub async fn metadata(State(state): State<SharedState>, req: Request) -> Response {
    let result = async {
        let p = read_params(req).await?;
        let limit = p.limit()?;
        let entries = state.metadata.list(p.get("metric"), limit);
        let mut out = String::from("{");
        for (i, (name, e)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, name);
            out.push_str(":[{\"type\":");
            push_json_str(&mut out, e.kind);
            out.push_str(",\"help\":");
            push_json_str(&mut out, &e.help);
            out.push_str(",\"unit\":");
            push_json_str(&mut out, &e.unit);
            out.push_str("}]");
        }
        out.push('}');
        Ok(success_json(&out, &[]))
    }
    .await;
    result.unwrap_or_else(|e: ApiError| e.into_response())
}
