//! `POST /api/v1/write`: the Remote Write 1.0 receiver's HTTP edge (status codes as
//! Prometheus's `write_handler.go`: 204, 400, 413, 415, 500). Decoding and appending run on
//! `spawn_blocking`; 204 is sent only after the commit returned.

use super::SharedState;
use super::query::now_ms;
use crate::ingest::prompb::WriteRequest;
use crate::ingest::remote_write::{
    Decoder, MAX_COMPRESSED_BYTES, MAX_DECOMPRESSED_BYTES, append_request_limited,
};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Prometheus's answer when the receiver is off.
pub const REMOTE_WRITE_DISABLED: &str =
    "remote write receiver needs to be enabled with --web.enable-remote-write-receiver";

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m,
    )
        .into_response()
}

/// Checks `Content-Type` and `Content-Encoding`; only Remote Write 1.0 with snappy is accepted.
/// Returns the 415 message otherwise.
fn check_headers(req: &Request) -> Result<(), String> {
    let h = req.headers();
    if let Some(ct) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !media.is_empty() && media != "application/x-protobuf" {
            return Err(format!(
                "unsupported Content-Type {ct:?}, want application/x-protobuf"
            ));
        }
        if let Some(proto) = parts.find_map(|p| p.strip_prefix("proto="))
            && proto != "prometheus.WriteRequest"
        {
            return Err(format!(
                "unsupported proto {proto:?}: Argus accepts Remote Write 1.0 \
                 (prometheus.WriteRequest) only"
            ));
        }
    }
    if let Some(enc) = h.get(header::CONTENT_ENCODING)
        && enc.as_bytes() != b"snappy"
    {
        return Err(format!("unsupported Content-Encoding {enc:?}, want snappy"));
    }
    Ok(())
}

/// `POST /api/v1/write`.
pub async fn remote_write(State(state): State<SharedState>, req: Request) -> Response {
    if !state.remote_write_enabled {
        return text(StatusCode::NOT_FOUND, REMOTE_WRITE_DISABLED);
    }
    if let Err(msg) = check_headers(&req) {
        return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, msg);
    }
    let body = match axum::body::to_bytes(req.into_body(), MAX_COMPRESSED_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read body (limit {MAX_COMPRESSED_BYTES} bytes): {e}"),
            );
        }
    };
    let st = state.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut wr = WriteRequest::default();
        if let Err(e) = Decoder::new().decode_into(&body, MAX_DECOMPRESSED_BYTES, &mut wr) {
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
        st.metadata.record(&wr.metadata);
        let mut app = st.db.appender();
        let limits = st.remote_write_limits;
        let outcome = match append_request_limited(app.as_mut(), &mut wr, now_ms(), &limits) {
            Ok(o) => o,
            Err(e) => {
                app.rollback();
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot append: {e}"),
                );
            }
        };
        if let Err(e) = app.commit() {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot commit: {e}"),
            );
        }
        st.rw_metrics.record(
            outcome.samples_received,
            outcome.samples_written,
            &outcome.rejected,
            wr.metadata.len() as u64,
        );
        match outcome.error_text() {
            Some(msg) => text(StatusCode::BAD_REQUEST, msg),
            None => StatusCode::NO_CONTENT.into_response(),
        }
    })
    .await;
    joined.unwrap_or_else(|e| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("write failed: {e}"),
        )
    })
}
