//! The scrape manager's counters of limit violations, named after Prometheus's
//! `prometheus_target_scrapes_exceeded_*` and `prometheus_target_scrape_pool_exceeded_*`.

use super::Error;
use crate::metrics::{Collect, header, sample};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every pool and loop of one [`super::ScrapeManager`]; lock-free.
#[derive(Default)]
pub struct ScrapeMetrics {
    sample_limit: AtomicU64,
    body_size_limit: AtomicU64,
    label_limits: AtomicU64,
    target_limit: AtomicU64,
}

impl ScrapeMetrics {
    /// Counts a failed scrape by the limit it broke (other failures are not counted here).
    pub(crate) fn scrape_failed(&self, e: &Error) {
        let c = match e {
            Error::SampleLimit => &self.sample_limit,
            Error::BodySizeLimit => &self.body_size_limit,
            Error::LabelLimit(_) => &self.label_limits,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a pool sync that found more targets than `target_limit`.
    pub(crate) fn target_limit_exceeded(&self) {
        self.target_limit.fetch_add(1, Ordering::Relaxed);
    }
}

impl Collect for ScrapeMetrics {
    fn collect(&self, out: &mut String) {
        let rows = [
            (
                "argus_target_scrapes_exceeded_sample_limit_total",
                "Scrapes that hit the sample limit and were rejected.",
                &self.sample_limit,
            ),
            (
                "argus_target_scrapes_exceeded_body_size_limit_total",
                "Scrapes that hit the body size limit and were rejected.",
                &self.body_size_limit,
            ),
            (
                "argus_target_scrape_pool_exceeded_label_limits_total",
                "Scrapes that hit a label limit and were rejected.",
                &self.label_limits,
            ),
            (
                "argus_target_scrape_pool_exceeded_target_limit_total",
                "Pool syncs that found more targets than the target limit.",
                &self.target_limit,
            ),
        ];
        for (name, help, c) in rows {
            header(out, name, "counter", help);
            sample(out, name, "", c.load(Ordering::Relaxed) as f64);
        }
    }
}
