//! Remote-write receiver.
//!
//! [`remote_write`] decodes snappy + protobuf bodies under size limits and appends them through
//! `argus_storage::Appender`; [`prompb`] holds the hand-written prost messages. The HTTP handler
//! lives in `api::write`.

pub(crate) mod metadata;
pub(crate) mod metrics;
pub mod otlp;
pub mod prompb;
pub mod prompb_v2;
pub mod remote_write;
pub mod remote_write_histogram;
pub mod remote_write_scan;
pub mod scratch;
pub mod series_cache;
pub mod write_threads;

/// Runs `f`, which may block on disk (a WAL commit's fdatasync), without stalling the async
/// worker that calls it: on the multi-threaded runtime the worker's other tasks move to another
/// thread for the duration (`block_in_place`). On a current-thread runtime (some tests) `f` just
/// runs.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
pub mod remote_write_v2;
