//! Status snapshots of groups, rules and alerts for `/api/v1/rules` and `/api/v1/alerts`.

pub use super::alerting::AlertState;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Health of a rule's last evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// The last evaluation succeeded.
    Ok,
    /// The last evaluation failed (see `last_error`).
    Err,
}

impl Health {
    /// `unknown`, `ok` or `err`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// A group's state.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupStatus {
    /// Group name.
    pub name: String,
    /// File path as loaded.
    pub file: String,
    /// Effective interval, ms.
    pub interval_ms: i64,
    /// `limit` (0 = none).
    pub limit: usize,
    /// Duration of the last evaluation of the whole group, seconds.
    pub evaluation_time_secs: f64,
    /// Wall-clock start of the last evaluation.
    pub last_evaluation: Option<SystemTime>,
    /// Rules in file order.
    pub rules: Vec<RuleStatus>,
}

/// A rule's state.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleStatus {
    /// A recording rule.
    Recording {
        /// `record`.
        name: String,
        /// Canonical expression.
        query: String,
        /// Configured labels (group labels merged in).
        labels: BTreeMap<String, String>,
        /// Health of the last evaluation.
        health: Health,
        /// Error of the last evaluation.
        last_error: Option<String>,
        /// Duration of the last evaluation, seconds.
        evaluation_time_secs: f64,
        /// Wall-clock time of the last evaluation.
        last_evaluation: Option<SystemTime>,
    },
    /// An alerting rule.
    Alerting {
        /// `alert`.
        name: String,
        /// Canonical expression.
        query: String,
        /// `for`, seconds.
        for_secs: f64,
        /// `keep_firing_for`, seconds.
        keep_firing_for_secs: f64,
        /// Configured labels (group labels merged in, templates unexpanded).
        labels: BTreeMap<String, String>,
        /// Configured annotations (unexpanded).
        annotations: BTreeMap<String, String>,
        /// Highest instance state (`Unknown` before the first evaluation).
        state: AlertState,
        /// Pending and firing instances.
        alerts: Vec<AlertStatus>,
        /// Health of the last evaluation.
        health: Health,
        /// Error of the last evaluation.
        last_error: Option<String>,
        /// Duration of the last evaluation, seconds.
        evaluation_time_secs: f64,
        /// Wall-clock time of the last evaluation.
        last_evaluation: Option<SystemTime>,
    },
}

/// One pending or firing alert instance.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertStatus {
    /// Expanded labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// Pending or firing.
    pub state: AlertState,
    /// Evaluation time at which the instance became active, ms.
    pub active_at_ms: i64,
    /// Set while the instance is kept firing by `keep_firing_for`, ms.
    pub keep_firing_since_ms: Option<i64>,
    /// The sample value of the last evaluation.
    pub value: f64,
}
