//! `POST /api/v1/otlp/v1/metrics`: the OTLP/HTTP metrics receiver's HTTP edge (status codes
//! as Prometheus's `otlpWriteHandler`: 200, 400, 404 when disabled, 413, 415, 500). Decoding,
//! translation and appending run on `spawn_blocking`; 200 is sent only after the commit.
//!
//! The 200 body is an `ExportMetricsServiceResponse` in the request's encoding; data points the
//! translation refused (delta temporality, untranslatable names, label bounds) are counted in
//! its `partial_success`. Samples the storage refuses (out of order, too old) give a 400 naming
//! them, as Prometheus answers, while the rest of the request is kept.

use super::SharedState;
use super::write::text;
use crate::ingest::otlp::decode::{self, DecodeError, Encoding};
use crate::ingest::otlp::translate::{self, Settings};
use crate::ingest::otlp::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse, MAX_SAMPLES_PER_REQUEST,
};
use crate::ingest::remote_write::{MAX_COMPRESSED_BYTES, MAX_DECOMPRESSED_BYTES};
use crate::util::time::now_ms;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Prometheus's answer when the receiver is off.
pub const OTLP_DISABLED: &str =
    "otlp write receiver needs to be enabled with --web.enable-otlp-receiver";

fn decode_error(e: DecodeError) -> Response {
    let status = match e {
        DecodeError::ContentType(_) | DecodeError::ContentEncoding(_) => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    text(status, e.to_string())
}

/// Reads `Content-Type` and `Content-Encoding`: the encoding, and whether the body is gzip.
fn check_headers(req: &Request) -> Result<(Encoding, bool), DecodeError> {
    let h = req.headers();
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let enc = Encoding::from_content_type(ct)?;
    let gzip = match h.get(header::CONTENT_ENCODING).map(|v| v.to_str()) {
        None => false,
        Some(Ok(v)) if v.eq_ignore_ascii_case("gzip") => true,
        Some(Ok(v)) if v.is_empty() || v.eq_ignore_ascii_case("identity") => false,
        Some(v) => {
            return Err(DecodeError::ContentEncoding(
                v.unwrap_or("<not ASCII>").to_string(),
            ));
        }
    };
    Ok((enc, gzip))
}

/// `POST /api/v1/otlp/v1/metrics`.
pub async fn metrics(State(state): State<SharedState>, req: Request) -> Response {
    if !state.otlp_enabled {
        return text(StatusCode::NOT_FOUND, OTLP_DISABLED);
    }
    let (enc, gzip) = match check_headers(&req) {
        Ok(x) => x,
        Err(e) => return decode_error(e),
    };
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
        let mut buf = Vec::new();
        let raw: &[u8] = if gzip {
            if let Err(e) = decode::gunzip(&body, MAX_DECOMPRESSED_BYTES, &mut buf) {
                return decode_error(e);
            }
            &buf
        } else {
            &body
        };
        let request = match decode::decode(raw, enc) {
            Ok(r) => r,
            Err(e) => return decode_error(e),
        };
        let size = translate::output_size(&request);
        if size > MAX_SAMPLES_PER_REQUEST {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "request translates to up to {size} samples, more than the limit of \
                     {MAX_SAMPLES_PER_REQUEST}; send smaller batches"
                ),
            );
        }
        let cfg = st.config.get();
        let settings = Settings {
            config: &cfg.otlp,
            limits: st.remote_write_limits,
            now_ms: now_ms(),
        };
        let mut app = st.db.appender();
        let outcome = match translate::append(app.as_mut(), &request, &settings) {
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
        if let Some(msg) = outcome.storage_error() {
            return text(StatusCode::BAD_REQUEST, msg);
        }
        let resp = ExportMetricsServiceResponse {
            partial_success: outcome.partial_message().map(|error_message| {
                ExportMetricsPartialSuccess {
                    rejected_data_points: i64::try_from(outcome.rejected_points)
                        .unwrap_or(i64::MAX),
                    error_message,
                }
            }),
        };
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, enc.media_type())],
            decode::encode_response(&resp, enc),
        )
            .into_response()
    })
    .await;
    joined.unwrap_or_else(|e| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("write failed: {e}"),
        )
    })
}
