//! `argus_remote_storage_*`: one [`QueueMetrics`] per queue, rendered with the queue's
//! `remote_name` and `url` labels (after Prometheus's `prometheus_remote_storage_*`).

use crate::metrics::{escape, header, sample};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters and gauges of one queue. Updated by the queue's task, read by `/metrics`.
#[derive(Debug, Default)]
pub struct QueueMetrics {
    /// Samples acknowledged by the receiver.
    pub samples_sent: AtomicU64,
    /// Samples dropped after a non-retryable answer (4xx; 429 without retries).
    pub samples_failed: AtomicU64,
    /// Samples in requests that were retried (counted per retry).
    pub samples_retried: AtomicU64,
    /// Samples read from the WAL and not sent: dropped by `write_relabel_configs`, too old
    /// for `sample_age_limit`, or of an unknown series.
    pub samples_dropped: AtomicU64,
    /// Samples read from the WAL and not yet acknowledged.
    pub samples_pending: AtomicU64,
    /// Native-histogram samples acknowledged by the receiver.
    pub histograms_sent: AtomicU64,
    /// Native-histogram samples dropped after a non-retryable answer.
    pub histograms_failed: AtomicU64,
    /// Native-histogram samples in requests that were retried (counted per retry).
    pub histograms_retried: AtomicU64,
    /// Native-histogram samples read from the WAL and not sent (as `samples_dropped`).
    pub histograms_dropped: AtomicU64,
    /// Metadata entries acknowledged by the receiver (`metadata_config`).
    pub metadata_sent: AtomicU64,
    /// Metadata entries dropped after a non-retryable answer.
    pub metadata_failed: AtomicU64,
    /// Metadata entries in requests that were retried.
    pub metadata_retried: AtomicU64,
    /// Compressed bytes of metadata requests acknowledged.
    pub metadata_bytes_sent: AtomicU64,
    /// Compressed request bytes acknowledged.
    pub bytes_sent: AtomicU64,
    /// Current shards.
    pub shards: AtomicU64,
    /// Configured bounds.
    pub shards_min: AtomicU64,
    /// Configured bounds.
    pub shards_max: AtomicU64,
    /// Highest sample timestamp read from the WAL, ms.
    pub highest_read_ms: AtomicI64,
    /// Highest sample timestamp acknowledged, ms.
    pub highest_sent_ms: AtomicI64,
    /// WAL segments the queue skipped (deleted past the backlog bound, or corrupt).
    pub wal_segments_skipped: AtomicU64,
    /// Requests that failed (each retry counts).
    pub failed_requests: AtomicU64,
    /// The last failed request: when (ms since the epoch) and why. Shown by
    /// `/api/v1/status/remote_write`.
    pub last_error: parking_lot::Mutex<Option<(i64, String)>>,
}

impl QueueMetrics {
    /// Raises a max gauge.
    pub fn raise(g: &AtomicI64, v: i64) {
        g.fetch_max(v, Ordering::Relaxed);
    }

    /// Records a failed request.
    pub fn set_error(&self, msg: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        *self.last_error.lock() = Some((now, msg.to_string()));
    }
}

type Def = (
    &'static str,
    &'static str,
    &'static str,
    fn(&QueueMetrics) -> f64,
);

fn u(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

fn secs(a: &AtomicI64) -> f64 {
    match a.load(Ordering::Relaxed) {
        i64::MIN => 0.0,
        ms => ms as f64 / 1000.0,
    }
}

const DEFS: &[Def] = &[
    (
        "argus_remote_storage_samples_total",
        "counter",
        "Samples sent to remote storage and acknowledged.",
        |m| u(&m.samples_sent),
    ),
    (
        "argus_remote_storage_samples_failed_total",
        "counter",
        "Samples dropped after a non-recoverable answer from remote storage.",
        |m| u(&m.samples_failed),
    ),
    (
        "argus_remote_storage_samples_retried_total",
        "counter",
        "Samples in requests retried after a recoverable error.",
        |m| u(&m.samples_retried),
    ),
    (
        "argus_remote_storage_samples_dropped_total",
        "counter",
        "Samples read from the WAL and not sent (relabeling, age limit, unknown series).",
        |m| u(&m.samples_dropped),
    ),
    (
        "argus_remote_storage_samples_pending",
        "gauge",
        "Samples read from the WAL and not yet acknowledged.",
        |m| u(&m.samples_pending),
    ),
    (
        "argus_remote_storage_histograms_total",
        "counter",
        "Native-histogram samples sent to remote storage and acknowledged.",
        |m| u(&m.histograms_sent),
    ),
    (
        "argus_remote_storage_histograms_failed_total",
        "counter",
        "Native-histogram samples dropped after a non-recoverable answer from remote storage.",
        |m| u(&m.histograms_failed),
    ),
    (
        "argus_remote_storage_histograms_retried_total",
        "counter",
        "Native-histogram samples in requests retried after a recoverable error.",
        |m| u(&m.histograms_retried),
    ),
    (
        "argus_remote_storage_histograms_dropped_total",
        "counter",
        "Native-histogram samples read from the WAL and not sent (relabeling, age limit, unknown series).",
        |m| u(&m.histograms_dropped),
    ),
    (
        "argus_remote_storage_metadata_total",
        "counter",
        "Metadata entries sent to remote storage and acknowledged.",
        |m| u(&m.metadata_sent),
    ),
    (
        "argus_remote_storage_metadata_failed_total",
        "counter",
        "Metadata entries dropped after a non-recoverable answer from remote storage.",
        |m| u(&m.metadata_failed),
    ),
    (
        "argus_remote_storage_metadata_retried_total",
        "counter",
        "Metadata entries in requests retried after a recoverable error.",
        |m| u(&m.metadata_retried),
    ),
    (
        "argus_remote_storage_metadata_bytes_total",
        "counter",
        "Compressed bytes of metadata requests acknowledged by remote storage.",
        |m| u(&m.metadata_bytes_sent),
    ),
    (
        "argus_remote_storage_bytes_total",
        "counter",
        "Compressed request bytes acknowledged by remote storage.",
        |m| u(&m.bytes_sent),
    ),
    (
        "argus_remote_storage_failed_requests_total",
        "counter",
        "Requests to remote storage that failed (each retry counts).",
        |m| u(&m.failed_requests),
    ),
    (
        "argus_remote_storage_shards",
        "gauge",
        "Shards sending concurrently.",
        |m| u(&m.shards),
    ),
    (
        "argus_remote_storage_shards_min",
        "gauge",
        "Configured min_shards.",
        |m| u(&m.shards_min),
    ),
    (
        "argus_remote_storage_shards_max",
        "gauge",
        "Configured max_shards.",
        |m| u(&m.shards_max),
    ),
    (
        "argus_remote_storage_highest_timestamp_in_seconds",
        "gauge",
        "Highest sample timestamp the queue read from the WAL.",
        |m| secs(&m.highest_read_ms),
    ),
    (
        "argus_remote_storage_queue_highest_sent_timestamp_seconds",
        "gauge",
        "Highest sample timestamp acknowledged by remote storage.",
        |m| secs(&m.highest_sent_ms),
    ),
    (
        "argus_remote_storage_wal_segments_skipped_total",
        "counter",
        "WAL segments the queue skipped (deleted past the backlog bound, or corrupt).",
        |m| u(&m.wal_segments_skipped),
    ),
];

/// Renders the queues' metrics: `(remote_name, url, metrics)`.
pub fn render(out: &mut String, queues: &[(String, String, std::sync::Arc<QueueMetrics>)]) {
    for (name, kind, help, get) in DEFS {
        header(out, name, kind, help);
        for (rn, url, m) in queues {
            let labels = format!("remote_name=\"{}\",url=\"{}\"", escape(rn), escape(url));
            sample(out, name, &labels, get(m));
        }
    }
}
