//! The hand-off from rule evaluation to the notifier.

use argus_storage::Labels;

/// An alert as sent to Alertmanager (FORMAT.md C.8); external labels are added by the notifier.
#[derive(Clone, Debug, PartialEq)]
pub struct OutgoingAlert {
    /// Alert labels, `alertname` included.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: Labels,
    /// `startsAt`, ms since the epoch.
    pub starts_at_ms: i64,
    /// `endsAt`, ms since the epoch.
    pub ends_at_ms: i64,
    /// Link to the expression in the UI.
    pub generator_url: String,
}

/// Where evaluated alerts go. Implemented by the notifier; must never block the caller.
pub trait AlertSender: Send + Sync {
    /// Queues alerts for delivery.
    fn send(&self, alerts: Vec<OutgoingAlert>);
}
