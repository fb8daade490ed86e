//! The per-queue view behind `GET /api/v1/status/remote_write` (an Argus extension: Prometheus
//! 2.x has no such endpoint; its figures are the `argus_remote_storage_*` metrics of each
//! queue, gathered so an operator sees the lag at a glance).

use super::RemoteWrite;
use super::metrics::QueueMetrics;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicI64, Ordering};

/// A highest-timestamp gauge; `None` before the first sample (0 or `i64::MIN`).
fn ms(a: &AtomicI64) -> Option<i64> {
    match a.load(Ordering::Relaxed) {
        i64::MIN | 0 => None,
        v => Some(v),
    }
}

fn queue(name: &str, url: &str, m: &QueueMetrics) -> Value {
    let u = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (read, sent) = (ms(&m.highest_read_ms), ms(&m.highest_sent_ms));
    // How far sending trails reading, as the difference of the two highest timestamps (null
    // while nothing read has been sent yet).
    let lag = match (read, sent) {
        (None, _) => json!(0.0),
        (Some(_), None) => Value::Null,
        (Some(r), Some(s)) => json!((r.saturating_sub(s).max(0) as f64) / 1000.0),
    };
    let last_error = m
        .last_error
        .lock()
        .as_ref()
        .map(|(t, e)| json!({"time_ms": t, "error": e}));
    json!({
        "name": name,
        "url": url,
        "shards": u(&m.shards),
        "min_shards": u(&m.shards_min),
        "max_shards": u(&m.shards_max),
        "pending_samples": u(&m.samples_pending),
        "highest_timestamp_in_ms": read,
        "highest_timestamp_sent_ms": sent,
        "lag_seconds": lag,
        "samples_sent": u(&m.samples_sent),
        "samples_failed": u(&m.samples_failed),
        "samples_retried": u(&m.samples_retried),
        "samples_dropped": u(&m.samples_dropped),
        "bytes_sent": u(&m.bytes_sent),
        "histograms_sent": u(&m.histograms_sent),
        "histograms_failed": u(&m.histograms_failed),
        "histograms_dropped": u(&m.histograms_dropped),
        "metadata_sent": u(&m.metadata_sent),
        "metadata_failed": u(&m.metadata_failed),
        "failed_requests": u(&m.failed_requests),
        "wal_segments_skipped": u(&m.wal_segments_skipped),
        "last_error": last_error,
    })
}

impl RemoteWrite {
    /// `{"queues":[…]}`: one object per running queue, in queue-identity order.
    pub fn status(&self) -> Value {
        let shown = self.shown.lock().clone();
        let queues: Vec<Value> = shown
            .iter()
            .map(|(name, url, m)| queue(name, url, m))
            .collect();
        json!({ "queues": queues })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_lag_and_last_error() {
        let m = QueueMetrics::default();
        m.highest_read_ms.store(i64::MIN, Ordering::Relaxed);
        m.highest_sent_ms.store(i64::MIN, Ordering::Relaxed);
        let v = queue("q", "http://x/", &m);
        assert_eq!(v["highest_timestamp_in_ms"], Value::Null);
        assert_eq!(v["lag_seconds"], json!(0.0));
        assert_eq!(v["last_error"], Value::Null);
        m.highest_read_ms.store(10_000, Ordering::Relaxed);
        m.highest_sent_ms.store(7_500, Ordering::Relaxed);
        m.samples_pending.store(12, Ordering::Relaxed);
        m.histograms_sent.store(3, Ordering::Relaxed);
        m.metadata_sent.store(4, Ordering::Relaxed);
        m.set_error("server returned HTTP status 503");
        let v = queue("q", "http://x/", &m);
        assert_eq!(v["lag_seconds"], json!(2.5));
        assert_eq!(v["pending_samples"], json!(12));
        assert_eq!(
            (v["histograms_sent"].as_u64(), v["metadata_sent"].as_u64()),
            (Some(3), Some(4))
        );
        assert_eq!(v["last_error"]["error"], "server returned HTTP status 503");
        assert!(v["last_error"]["time_ms"].as_i64().unwrap() > 0);
    }
}
