//! `POST /api/v1/read`: the remote read server's HTTP edge (the logic is in `remote::read` and
//! `remote::read_stream`). Answers `SAMPLES` (one snappy-compressed `ReadResponse`, at most
//! `--storage.remote.read-sample-limit` samples) or `STREAMED_XOR_CHUNKS` (framed
//! `ChunkedReadResponse`s of at most about `--storage.remote.read-max-bytes-in-frame` bytes,
//! streamed as they are made), whichever the client lists first. At most
//! `--storage.remote.read-concurrent-limit` requests run at once (others wait); each is bounded
//! by `--query.timeout`.

use super::SharedState;
use crate::remote::read::{self, ReadError, ReadLimits, ResponseType};
use crate::remote::read_stream;
use argus_storage::Labels;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Largest accepted (compressed) body.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Frames buffered between the storage reader and the client.
const FRAMES_IN_FLIGHT: usize = 4;

/// The remote read server's bounds and its concurrency slots. Shared by all requests.
pub struct ReadGate {
    limits: ReadLimits,
    /// `None` when the concurrency is unbounded.
    slots: Option<Arc<Semaphore>>,
}

impl ReadGate {
    /// A gate enforcing `limits`.
    pub fn new(limits: ReadLimits) -> ReadGate {
        ReadGate {
            limits,
            slots: (limits.concurrent_limit > 0)
                .then(|| Arc::new(Semaphore::new(limits.concurrent_limit))),
        }
    }
}

fn text(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg + "\n",
    )
        .into_response()
}

fn error(e: &ReadError) -> Response {
    let status = match e {
        ReadError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ReadError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    text(status, e.to_string())
}

/// `POST /api/v1/read`.
pub async fn remote_read(State(state): State<SharedState>, req: Request) -> Response {
    let deadline = Instant::now() + state.engine_opts.timeout;
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read body (limit {MAX_BODY_BYTES} bytes): {e}"),
            );
        }
    };
    let request = match read::decode(&body).and_then(|r| Ok((read::response_type(&r)?, r))) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let gate = &state.remote_read;
    let permit: Option<OwnedSemaphorePermit> = match &gate.slots {
        None => None,
        Some(s) => {
            let wait = tokio::time::timeout_at(deadline.into(), s.clone().acquire_owned()).await;
            match wait {
                Ok(Ok(p)) => Some(p),
                _ => return error(&ReadError::Timeout),
            }
        }
    };
    let cfg = state.config.get();
    let ext: Vec<(&String, &String)> = cfg.global.external_labels.iter().collect();
    let external = Labels::from_pairs(&ext);
    match request {
        (ResponseType::Samples, r) => samples(state.clone(), r, external, deadline, permit).await,
        (ResponseType::StreamedXorChunks, r) => {
            if let Err(e) = read::prepare(&r, &external) {
                return error(&e);
            }
            streamed(state.clone(), r, external, deadline, permit)
        }
    }
}

async fn samples(
    state: SharedState,
    req: read::ReadRequest,
    external: Labels,
    deadline: Instant,
    permit: Option<OwnedSemaphorePermit>,
) -> Response {
    let limit = state.remote_read.limits.sample_limit;
    let st = state.clone();
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        read::answer(st.db.as_ref(), &req, &external, limit)
    });
    let joined = match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(j) => j,
        Err(_) => return error(&ReadError::Timeout),
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
        Ok(Err(e)) => error(&e),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("read failed: {e}"),
        ),
    }
}

/// Streams frames as the blocking reader makes them. A frame waits for the client at most until
/// the deadline. An error or timeout after the first frame can only abort the body (the status
/// is sent): the body then ends without its final chunk, so the client sees a broken stream,
/// never a short one.
fn streamed(
    state: SharedState,
    req: read::ReadRequest,
    external: Labels,
    deadline: Instant,
    permit: Option<OwnedSemaphorePermit>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(FRAMES_IN_FLIGHT);
    let complete = Arc::new(AtomicBool::new(false));
    let done = complete.clone();
    let max_frame = state.remote_read.limits.max_bytes_in_frame;
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut emit = |f: Vec<u8>| {
            let send = tokio::time::timeout_at(deadline.into(), tx.send(Bytes::from(f)));
            matches!(handle.block_on(send), Ok(Ok(())))
        };
        let res = read_stream::stream(
            state.db.as_ref(),
            &req,
            &external,
            max_frame,
            deadline,
            &mut emit,
        );
        match res {
            Ok(true) => done.store(true, Ordering::Release),
            Ok(false) => tracing::warn!("remote read stream stopped: client gone or too slow"),
            Err(e) => tracing::warn!(error = %e, "remote read stream aborted"),
        }
    });
    let body = futures::stream::unfold(Some(rx), move |rx| {
        let complete = complete.clone();
        async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(frame) => Some((Ok(frame), Some(rx))),
                None if complete.load(Ordering::Acquire) => None,
                None => Some((
                    Err(std::io::Error::other("remote read stream aborted")),
                    None,
                )),
            }
        }
    });
    (
        [(header::CONTENT_TYPE, read_stream::CONTENT_TYPE)],
        Body::from_stream(body),
    )
        .into_response()
}

/// The API's storage with `remote_read:` endpoints merged into queries; everything else is the
/// local storage's.
impl<L: super::Tsdb> super::Tsdb for crate::remote::read_client::Fanout<L> {
    fn delete_series(
        &self,
        matchers: &[argus_storage::Matcher],
        mint: argus_storage::Timestamp,
        maxt: argus_storage::Timestamp,
    ) -> argus_storage::Result<()> {
        self.local().delete_series(matchers, mint, maxt)
    }
    fn clean_tombstones(&self) -> argus_storage::Result<()> {
        self.local().clean_tombstones()
    }
    fn snapshot(&self, dir: &std::path::Path, with_head: bool) -> argus_storage::Result<()> {
        self.local().snapshot(dir, with_head)
    }
    fn stats(&self, limit: usize) -> argus_storage::TsdbStats {
        self.local().stats(limit)
    }
    fn metrics(&self) -> argus_storage::DbMetrics {
        self.local().metrics()
    }
    fn wal_error(&self) -> Option<String> {
        self.local().wal_error()
    }
}
