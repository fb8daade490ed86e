//! `POST /api/v1/read`: the remote read server's HTTP edge (`SAMPLES` responses; the logic is in
//! `remote::read`). Bounded by the query limits: `--query.max-samples` samples per request and
//! `--query.timeout`.

use super::SharedState;
use crate::remote::read::{self, ReadError};
use argus_storage::Labels;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Largest accepted (compressed) body.
const MAX_BODY_BYTES: usize = 1 << 20;

fn text(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg + "\n",
    )
        .into_response()
}

/// `POST /api/v1/read`.
pub async fn remote_read(State(state): State<SharedState>, req: Request) -> Response {
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read body (limit {MAX_BODY_BYTES} bytes): {e}"),
            );
        }
    };
    let cfg = state.config.get();
    let ext: Vec<(&String, &String)> = cfg.global.external_labels.iter().collect();
    let external = Labels::from_pairs(&ext);
    let max_samples = state.engine_opts.max_samples;
    let st = state.clone();
    let work = tokio::task::spawn_blocking(move || {
        let req = read::decode(&body)?;
        read::answer(st.db.as_ref(), &req, &external, max_samples)
    });
    let joined = match tokio::time::timeout(state.engine_opts.timeout, work).await {
        Ok(j) => j,
        Err(_) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "remote read timed out (--query.timeout)".into(),
            );
        }
    };
    match joined {
        Ok(Ok(resp)) => (
            [
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "snappy"),
            ],
            read::encode(&resp),
        )
            .into_response(),
        Ok(Err(e @ ReadError::Storage(_))) => {
            text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Ok(Err(e)) => text(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("read failed: {e}"),
        ),
    }
}
