//! The notifier's self-metrics, named `argus_notifications_*` after Prometheus's
//! `prometheus_notifications_*`.

use crate::metrics::{Collect, Histogram, escape, header, sample};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Request latency buckets (seconds).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters of one Alertmanager (by its POST URL).
struct PerAlertmanager {
    /// Alerts delivered (2xx answers).
    sent: u64,
    /// Alerts in batches that failed (non-2xx, network error, timeout).
    errors: u64,
    /// Seconds per POST, successful or not.
    latency: Histogram,
}

/// Counters and gauges of the notifier. Shared by `send`, the sender tasks and discovery.
pub struct NotifierMetrics {
    /// `--alertmanager.notification-queue-capacity`; immutable.
    capacity: u64,
    /// Alerts dropped: queue overflow (oldest first) and failed batches (no retry).
    dropped: AtomicU64,
    /// Alerts waiting in all queues.
    queued: AtomicU64,
    /// Active Alertmanagers over all sets.
    discovered: AtomicU64,
    /// By URL. Lock: this mutex (short, never across I/O).
    per_am: Mutex<BTreeMap<String, PerAlertmanager>>,
}

impl NotifierMetrics {
    /// Metrics for queues of `capacity` alerts each.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity as u64,
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            discovered: AtomicU64::new(0),
            per_am: Mutex::new(BTreeMap::new()),
        }
    }

    /// Alerts dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// (sent, errors) alert counts of the Alertmanager at `url`.
    pub fn counts(&self, url: &str) -> (u64, u64) {
        self.per_am
            .lock()
            .get(url)
            .map_or((0, 0), |p| (p.sent, p.errors))
    }

    pub(crate) fn add_dropped(&self, n: usize) {
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_queued(&self, n: usize) {
        self.queued.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn sub_queued(&self, n: usize) {
        // Never below zero even if a caller miscounts; the gauge is informational.
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(n as u64))
            });
    }

    pub(crate) fn add_discovered(&self, delta: i64) {
        let _ = self
            .discovered
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_add_signed(delta))
            });
    }

    /// Makes the counters of `url` exist (at 0), as Prometheus does for a new Alertmanager.
    pub(crate) fn register(&self, url: &str) {
        self.per_am
            .lock()
            .entry(url.to_string())
            .or_insert_with(|| PerAlertmanager {
                sent: 0,
                errors: 0,
                latency: Histogram::new(LATENCY_BUCKETS),
            });
    }

    /// Records one POST of `n` alerts to `url`.
    pub(crate) fn record(&self, url: &str, n: usize, ok: bool, seconds: f64) {
        self.register(url);
        let mut m = self.per_am.lock();
        if let Some(p) = m.get_mut(url) {
            if ok {
                p.sent += n as u64;
            } else {
                p.errors += n as u64;
            }
            p.latency.observe(seconds);
        }
    }
}

impl Collect for NotifierMetrics {
    fn collect(&self, out: &mut String) {
        let per_am = self.per_am.lock();
        let name = "argus_notifications_sent_total";
        header(out, name, "counter", "Alerts sent, by Alertmanager.");
        for (url, p) in per_am.iter() {
            sample(out, name, &am_label(url), p.sent as f64);
        }
        let name = "argus_notifications_errors_total";
        header(
            out,
            name,
            "counter",
            "Alerts in batches that failed to be sent (not retried), by Alertmanager.",
        );
        for (url, p) in per_am.iter() {
            sample(out, name, &am_label(url), p.errors as f64);
        }
        let name = "argus_notifications_latency_seconds";
        header(
            out,
            name,
            "histogram",
            "Time to send a batch, by Alertmanager.",
        );
        for (url, p) in per_am.iter() {
            p.latency.render(out, name, &am_label(url));
        }
        drop(per_am);
        let gauges = [
            (
                "argus_notifications_dropped_total",
                "counter",
                "Alerts dropped: queue overflow (oldest first) or a failed batch.",
                self.dropped.load(Ordering::Relaxed),
            ),
            (
                "argus_notifications_queue_length",
                "gauge",
                "Alerts waiting in the Alertmanager queues.",
                self.queued.load(Ordering::Relaxed),
            ),
            (
                "argus_notifications_queue_capacity",
                "gauge",
                "Capacity of each Alertmanager's queue.",
                self.capacity,
            ),
            (
                "argus_notifications_alertmanagers_discovered",
                "gauge",
                "Alertmanagers discovered and active.",
                self.discovered.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, v) in gauges {
            header(out, name, kind, help);
            sample(out, name, "", v as f64);
        }
    }
}

fn am_label(url: &str) -> String {
    format!("alertmanager=\"{}\"", escape(url))
}
