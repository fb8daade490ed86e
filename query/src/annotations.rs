//! Warnings and infos a query collects while it runs (Prometheus's `util/annotations`), returned
//! next to the result. Messages carry Prometheus's `PromQL warning: ` / `PromQL info: ` prefix;
//! Argus's parser keeps no source positions, so the ` (line:column)` suffix is absent.

use std::cell::RefCell;

/// The annotations of one query, each message once, in the order first seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    /// `PromQL warning: …` messages.
    pub warnings: Vec<String>,
    /// `PromQL info: …` messages.
    pub infos: Vec<String>,
}

impl Annotations {
    /// True when there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.warnings.is_empty() && self.infos.is_empty()
    }
}

/// Collector used by the evaluator (single-threaded per query).
#[derive(Debug, Default)]
pub(crate) struct Collector(RefCell<Annotations>);

impl Collector {
    pub(crate) fn warn(&self, msg: impl AsRef<str>) {
        let m = format!("PromQL warning: {}", msg.as_ref());
        let mut a = self.0.borrow_mut();
        if !a.warnings.contains(&m) {
            a.warnings.push(m);
        }
    }

    pub(crate) fn info(&self, msg: impl AsRef<str>) {
        let m = format!("PromQL info: {}", msg.as_ref());
        let mut a = self.0.borrow_mut();
        if !a.infos.contains(&m) {
            a.infos.push(m);
        }
    }

    pub(crate) fn take(&self) -> Annotations {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

/// `encountered a mix of histograms and floats for metric name "…"`.
pub(crate) fn mixed_floats_histograms(metric: &str) -> String {
    format!("encountered a mix of histograms and floats for metric name {metric:?}")
}

/// `vector contains a mix of histograms with exponential and custom buckets schemas …`.
pub(crate) fn mixed_exponential_custom(metric: &str) -> String {
    format!(
        "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {metric:?}"
    )
}

/// `this native histogram metric is not a counter: "…"`.
pub(crate) fn not_counter(metric: &str) -> String {
    format!("this native histogram metric is not a counter: {metric:?}")
}

/// `this native histogram metric is not a gauge: "…"`.
pub(crate) fn not_gauge(metric: &str) -> String {
    format!("this native histogram metric is not a gauge: {metric:?}")
}

/// `ignored histograms in a range containing both floats and histograms for metric name "…"`.
pub(crate) fn ignored_in_mixed_range(metric: &str) -> String {
    format!(
        "ignored histograms in a range containing both floats and histograms for metric name {metric:?}"
    )
}

/// `mismatched custom buckets were reconciled during <op>`.
pub(crate) fn custom_buckets_reconciled(op: &str) -> String {
    format!("mismatched custom buckets were reconciled during {op}")
}

/// `conflicting counter resets during histogram <op>`.
pub(crate) fn counter_reset_collision(op: &str) -> String {
    format!("conflicting counter resets during histogram {op}")
}
