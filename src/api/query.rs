//! `/api/v1/query`, `/api/v1/query_range`, `/api/v1/query_exemplars`.
//!
//! Parameters are checked here with Prometheus's messages; the expression is parsed once here
//! (so a syntax error is `invalid parameter "query": …`), then evaluated by the engine on
//! `spawn_blocking`.
//!
//! Bounds, as Prometheus's engine: a query first waits for one of `--query.max-concurrency`
//! slots, and that wait counts against its timeout (503 `timeout`, "query timed out in query
//! queue"); the rest of the timeout is enforced inside evaluation. When the client goes away
//! the handler's future is dropped, which cancels the evaluation (`canceled`); the slot is
//! held until the evaluation has actually stopped.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::error::ApiError;
use super::error::ErrorType;
use super::format::{QUERY_DATA_CHUNK, push_query_data, push_query_data_chunked};
use super::params::{MAX_TIME_MS, MIN_TIME_MS, Params, parse_duration_ns};
use super::{SharedState, read_params, success_json};
use argus_query::{CancelToken, Engine, Value};
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use promql_parser::parser::value::ValueType;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prometheus's limit on points per series of a range query.
pub const MAX_POINTS_PER_SERIES: i128 = 11_000;

use crate::util::time::now_ms;

fn parse_query(p: &Params) -> Result<(String, promql_parser::parser::Expr), ApiError> {
    let q = p.get("query").unwrap_or("").to_string();
    let expr =
        argus_query::parse_expr(&q).map_err(|e| ApiError::invalid_param("query", e.message))?;
    Ok((q, expr))
}

/// The engine for this request: the shared one, or one with the request's lower `timeout`.
fn engine_for(state: &SharedState, p: &Params) -> Result<Arc<Engine>, ApiError> {
    let Some(t) = p.get("timeout") else {
        return Ok(state.engine.clone());
    };
    let ns = parse_duration_ns(t).map_err(|e| ApiError::invalid_param("timeout", e))?;
    let requested = Duration::from_nanos(u64::try_from(ns.max(0)).unwrap_or(u64::MAX));
    if requested.is_zero() || requested >= state.engine_opts.timeout {
        return Ok(state.engine.clone());
    }
    let mut opts = state.engine_opts.clone();
    opts.timeout = requested;
    Ok(Arc::new(Engine::new(opts)))
}

/// Cancels the evaluation when dropped: the handler's future is dropped when the client
/// disconnects, and this guard lives in it.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

async fn evaluate(
    state: &SharedState,
    engine: Arc<Engine>,
    range: bool,
    run: impl FnOnce(
        &Engine,
        &dyn argus_storage::Queryable,
        &CancelToken,
    ) -> Result<(Value, argus_query::Annotations), argus_query::Error>
    + Send
    + 'static,
) -> Response {
    let db = state.db.clone();
    let started = Instant::now();
    let timeout = engine.options().timeout;
    let slot = tokio::time::timeout(timeout, state.query_slots.clone().acquire_owned()).await;
    let Ok(Ok(slot)) = slot else {
        state
            .query_metrics
            .observe(range, started.elapsed().as_secs_f64(), false);
        return ApiError {
            kind: ErrorType::Timeout,
            message: "query timed out in query queue".into(),
        }
        .into_response();
    };
    // The time spent queued counts against the timeout.
    let waited = started.elapsed();
    let engine = if waited > Duration::from_millis(1) {
        let mut opts = engine.options().clone();
        opts.timeout = timeout.saturating_sub(waited);
        Arc::new(Engine::new(opts))
    } else {
        engine
    };
    let cancel = CancelToken::new();
    let _guard = CancelOnDrop(cancel.clone());
    let joined = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let result = run(&engine, &*db, &cancel);
        let evaluated = started.elapsed();
        (result.map(|(v, annos)| Answer::new(v, annos)), evaluated)
    })
    .await;
    let (result, evaluated) = match joined {
        Ok((Ok(v), evaluated)) => (Ok(v), evaluated),
        Ok((Err(e), evaluated)) => (Err(ApiError::query(&e)), evaluated),
        Err(e) => (
            Err(ApiError::internal(format!("query evaluation failed: {e}"))),
            started.elapsed(),
        ),
    };
    state
        .query_metrics
        .observe(range, evaluated.as_secs_f64(), result.is_ok());
    match result {
        Ok(answer) => answer.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The start of every success body.
const HEAD: &str = "{\"status\":\"success\",\"data\":";

/// A query's answer, made on the evaluating thread: a small one is encoded there at once, so
/// the result's many small allocations (labels) are freed by the thread that made them, which
/// the allocator does from its local free lists (freed from another thread, each goes through
/// a cross-thread list and comes back cold); a large one is kept for streaming.
enum Answer {
    /// A complete JSON body.
    Body(String),
    /// A result of [`QUERY_DATA_CHUNK`] bytes or more, with its annotations.
    Large(Value, argus_query::Annotations),
}

impl Answer {
    fn new(v: Value, annos: argus_query::Annotations) -> Self {
        let hint = body_size_hint(&v);
        if hint >= QUERY_DATA_CHUNK {
            return Answer::Large(v, annos);
        }
        let mut body = String::with_capacity(hint);
        body.push_str(HEAD);
        push_query_data(&mut body, &v);
        super::query_json::push_annotations(&mut body, &annos);
        body.push('}');
        Answer::Body(body)
    }

    fn into_response(self) -> Response {
        let json = [(header::CONTENT_TYPE, "application/json")];
        match self {
            Answer::Body(body) => (json, body).into_response(),
            Answer::Large(v, annos) => stream_response(v, annos),
        }
    }
}

/// The success response for a large `v` (a range query over 10,000 series answers millions of
/// points, ~100 MB of JSON): written on a blocking thread in [`QUERY_DATA_CHUNK`] pieces
/// streamed to the client, so memory stays bounded and the allocator reuses the same few
/// buffers: building it whole, then copying it into the envelope, faulted in three times its
/// size, which was more than half of the CPU profile of such a query (kernel page clearing).
fn stream_response(v: Value, annos: argus_query::Annotations) -> Response {
    let json = [(header::CONTENT_TYPE, "application/json")];
    let (tx, rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(2);
    tokio::task::spawn_blocking(move || {
        let fresh = || String::with_capacity(QUERY_DATA_CHUNK + QUERY_DATA_CHUNK / 4);
        let mut buf = fresh();
        buf.push_str(HEAD);
        let mut send = |b: &mut String| {
            let chunk = std::mem::replace(b, fresh());
            tx.blocking_send(axum::body::Bytes::from(chunk)).is_ok()
        };
        if push_query_data_chunked(&mut buf, &v, Some(&mut send)) {
            super::query_json::push_annotations(&mut buf, &annos);
            buf.push('}');
            let _ = tx.blocking_send(axum::body::Bytes::from(buf));
        }
    });
    // `poll_recv` keeps answering `None` once the channel is done, so layers that poll a body
    // again after its end (the gzip encoder does) are safe.
    let mut rx = rx;
    let chunks = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|b| b.map(Ok::<_, std::convert::Infallible>))
    });
    (json, axum::body::Body::from_stream(chunks)).into_response()
}

/// An estimate of the JSON size of `v`: ~32 bytes per point (`[1700000000.123,"…"]`)
/// plus the label set of each series.
fn body_size_hint(v: &Value) -> usize {
    let labels = |l: &argus_storage::Labels| -> usize {
        l.iter()
            .map(|p| p.name.len() + p.value.len() + 8)
            .sum::<usize>()
            + 16
    };
    let histogram = |h: &argus_storage::FloatHistogram| -> usize {
        96 + 72 * (h.positive_buckets.len() + h.negative_buckets.len() + 1)
    };
    128 + match v {
        Value::Matrix(series) => series
            .iter()
            .map(|s| {
                labels(&s.labels)
                    + 32 * s.points.len()
                    + s.histograms
                        .iter()
                        .map(|(_, h)| histogram(h))
                        .sum::<usize>()
                    + 16
            })
            .sum::<usize>(),
        Value::Vector(samples) => samples
            .iter()
            .map(|s| labels(&s.labels) + 48 + s.h.as_ref().map_or(0, |h| histogram(h)))
            .sum(),
        Value::Scalar(..) | Value::String(..) => 64,
    }
}

/// `GET|POST /api/v1/query`.
pub async fn instant(State(state): State<SharedState>, req: Request) -> Response {
    let p = match read_params(req).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let checked = (|| {
        let t = p.time_or("time", now_ms())?;
        let engine = engine_for(&state, &p)?;
        let (q, _) = parse_query(&p)?;
        Ok::<_, ApiError>((t, engine, q))
    })();
    match checked {
        Ok((t, engine, q)) => {
            evaluate(&state, engine, false, move |e, db, cancel| {
                e.instant_query_annotated(db, &q, t, cancel)
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// Checks range parameters as Prometheus does; returns `(start, end, step)` in ms.
pub fn range_params(p: &Params) -> Result<(i64, i64, i64), ApiError> {
    let start = p.time("start")?;
    let end = p.time("end")?;
    let span_ms = super::params::checked_span_ms(start, end)?;
    let step_ns = parse_duration_ns(p.get("step").unwrap_or(""))
        .map_err(|e| ApiError::invalid_param("step", e))?;
    if step_ns <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    let span_ns = i128::from(span_ms) * 1_000_000;
    if span_ns / step_ns > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let step_ms = i64::try_from(step_ns / 1_000_000)
        .unwrap_or(i64::MAX)
        .max(1);
    Ok((start, end, step_ms))
}

/// `GET|POST /api/v1/query_range`.
pub async fn range(State(state): State<SharedState>, req: Request) -> Response {
    let p = match read_params(req).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let checked = (|| {
        let (start, end, step) = range_params(&p)?;
        let engine = engine_for(&state, &p)?;
        let (q, expr) = parse_query(&p)?;
        let kind = match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => None,
            ValueType::Matrix => Some("range vector"),
            ValueType::String => Some("string"),
        };
        if let Some(kind) = kind {
            return Err(ApiError::bad_data(format!(
                "invalid expression type {kind:?} for range query, must be Scalar or instant Vector"
            )));
        }
        Ok::<_, ApiError>((start, end, step, engine, q))
    })();
    match checked {
        Ok((start, end, step, engine, q)) => {
            evaluate(&state, engine, true, move |e, db, cancel| {
                e.range_query_annotated(db, &q, start, end, step, cancel)
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// `GET|POST /api/v1/query_exemplars`: Argus stores no exemplars, so valid requests get `[]`.
pub async fn exemplars(req: Request) -> Response {
    let p = match read_params(req).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let checked = (|| {
        let start = p.time_or("start", MIN_TIME_MS)?;
        let end = p.time_or("end", MAX_TIME_MS)?;
        if end < start {
            return Err(ApiError::invalid_param(
                "end",
                "end timestamp must not be before start time",
            ));
        }
        parse_query(&p)?;
        Ok(())
    })();
    match checked {
        Ok(()) => success_json("[]", &[]),
        Err(e) => e.into_response(),
    }
}
