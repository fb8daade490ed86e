//! `POST /api/v1/write`: the Remote Write 1.0 receiver's HTTP edge (status codes as
//! Prometheus's `write_handler.go`: 204, 400, 413, 415, 500). Decoding and appending run on
//! the write threads (`ingest::write_threads`), at most [`append_slots`] at once; 204 is sent
//! only after the commit returned.

use super::SharedState;
use crate::ingest::prompb::WriteRequest;
use crate::ingest::remote_write::{
    IngestError, MAX_COMPRESSED_BYTES, MAX_DECOMPRESSED_BYTES, StartTimestamps, append_body,
    append_request_with_starts,
};
use crate::ingest::remote_write_v2;
use crate::util::time::now_ms;
use argus_storage::Appendable;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Prometheus's answer when the receiver is off.
pub const REMOTE_WRITE_DISABLED: &str =
    "remote write receiver needs to be enabled with --web.enable-remote-write-receiver";

/// A plain-text answer with a trailing newline, as Prometheus's write receivers give.
pub(crate) fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m,
    )
        .into_response()
}

/// Checks `Content-Type` and `Content-Encoding`: Remote Write 1.0 or 2.0 with snappy. Returns
/// whether the body is 2.0, or the 415 message.
fn check_headers(req: &Request) -> Result<bool, String> {
    let mut v2 = false;
    let h = req.headers();
    if let Some(ct) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !media.is_empty() && media != "application/x-protobuf" {
            return Err(format!(
                "unsupported Content-Type {ct:?}, want application/x-protobuf"
            ));
        }
        if let Some(proto) = parts.find_map(|p| p.strip_prefix("proto=")) {
            v2 = proto == remote_write_v2::PROTO_V2;
            if !v2 && proto != "prometheus.WriteRequest" {
                return Err(format!(
                    "unsupported proto {proto:?}: Argus accepts prometheus.WriteRequest (1.0) \
                     and {} (2.0)",
                    remote_write_v2::PROTO_V2
                ));
            }
        }
    }
    if let Some(enc) = h.get(header::CONTENT_ENCODING)
        && enc.as_bytes() != b"snappy"
    {
        return Err(format!("unsupported Content-Encoding {enc:?}, want snappy"));
    }
    Ok(v2)
}

/// Adds the 2.0 written-count headers (Argus stores no exemplars).
fn with_v2_headers(mut resp: Response, samples: u64, histograms: u64) -> Response {
    let h = resp.headers_mut();
    h.insert("X-Prometheus-Remote-Write-Samples-Written", samples.into());
    h.insert(
        "X-Prometheus-Remote-Write-Histograms-Written",
        histograms.into(),
    );
    h.insert("X-Prometheus-Remote-Write-Exemplars-Written", 0u64.into());
    resp
}

/// Decodes and appends running at once. Each holds a write thread and its decompressed
/// body (up to [`MAX_DECOMPRESSED_BYTES`]) while it waits for the WAL's sync, so senders
/// bursting faster than the disk would otherwise grow threads and memory without bound (the
/// soak in `benches/README.md` reached 416 threads). Requests beyond it wait as async tasks
/// holding only their compressed bodies.
fn append_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new((cores * 4).max(8))
    })
}

/// `POST /api/v1/write`.
pub async fn remote_write(State(state): State<SharedState>, req: Request) -> Response {
    if !state.remote_write_enabled {
        return text(StatusCode::NOT_FOUND, REMOTE_WRITE_DISABLED);
    }
    let v2 = match check_headers(&req) {
        Ok(v2) => v2,
        Err(msg) => return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, msg),
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
    let Ok(permit) = append_slots().acquire().await else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "write slots closed");
    };
    let st = state.clone();
    let joined = crate::ingest::write_threads::pool()
        .run(move || {
            // Held until the append is done, also when the client goes away meanwhile.
            let _permit = permit;
            // This thread's decoder and appender, reused (`ingest::scratch`); given back only
            // after a commit, so an error path drops them.
            let mut scratch = crate::ingest::scratch::take();
            let storage: Arc<dyn Appendable> = st.db.clone();
            let mut wr = WriteRequest::default();
            let mut converted = None;
            let mut starts = StartTimestamps {
                enabled: st.ct_zero_ingestion,
                floats: Vec::new(),
            };
            if v2 {
                let mut req = crate::ingest::prompb_v2::Request::default();
                if let Err(e) = remote_write_v2::decode_into(
                    &mut scratch.decoder,
                    &body,
                    MAX_DECOMPRESSED_BYTES,
                    &mut req,
                ) {
                    return with_v2_headers(text(StatusCode::BAD_REQUEST, e.to_string()), 0, 0);
                }
                converted = Some(remote_write_v2::to_v1_with_starts(
                    &req,
                    &mut wr,
                    &mut starts,
                ));
            }
            let mut app = scratch.appender(&storage);
            let appended = if v2 {
                st.metadata.record(&wr.metadata);
                let limits = st.remote_write_limits;
                append_request_with_starts(app.as_mut(), &mut wr, now_ms(), &limits, &starts)
                    .map_err(Into::into)
            } else {
                // 1.0: read in place, known series appended by handle (`ingest::series_cache`).
                append_body(
                    &mut scratch.decoder,
                    &st.rw_cache,
                    &body,
                    app.as_mut(),
                    now_ms(),
                )
                .map(|done| {
                    st.metadata.record(&done.metadata);
                    wr.metadata = done.metadata;
                    done.outcome
                })
            };
            let outcome = match appended {
                Ok(mut o) => {
                    if let Some(c) = converted.take() {
                        remote_write_v2::merge_outcome(&mut o, c);
                    }
                    o
                }
                Err(IngestError::Decode(e)) => {
                    app.rollback();
                    return text(StatusCode::BAD_REQUEST, e.to_string());
                }
                Err(IngestError::Storage(e)) => {
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
            let batch = outcome.samples_written + outcome.histograms_written;
            scratch.put_back(
                &storage,
                Some(app),
                usize::try_from(batch).unwrap_or(usize::MAX),
            );
            st.rw_metrics.record(
                outcome.samples_received,
                outcome.samples_written + outcome.histograms_written,
                &outcome.rejected,
                wr.metadata.len() as u64,
            );
            let resp = match outcome.error_text() {
                Some(msg) => text(StatusCode::BAD_REQUEST, msg),
                None => StatusCode::NO_CONTENT.into_response(),
            };
            if v2 {
                with_v2_headers(resp, outcome.samples_written, outcome.histograms_written)
            } else {
                resp
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
