//! Pushgateway-compatible push ingest.
//!
//! [`PushService`] keeps pushed groups (crash-safe, one file per group), serves the Pushgateway
//! HTTP API (`PushService::router`) and, in [`PushService::run`], appends every group's samples
//! to storage each interval, labelled as a Pushgateway scraped with `honor_labels: true` would
//! be, with stale markers for series that disappear (delete, replace, TTL expiry).
//!
//! ```no_run
//! # async fn demo(storage: std::sync::Arc<dyn argus_storage::Appendable>) -> Result<(), argus::push::PushError> {
//! use argus::push::{PushOptions, PushService};
//! use std::time::Duration;
//! let svc = PushService::open(
//!     std::path::Path::new("/var/lib/argus/push"),
//!     PushOptions { interval: Duration::from_secs(15), ..PushOptions::default() },
//!     storage,
//! )?;
//! let app = argus::api::push::router(&svc); // mount on the main HTTP port
//! let (_tx, rx) = tokio::sync::watch::channel(false);
//! tokio::spawn(svc.run(rx));
//! # let _ = app; Ok(()) }
//! ```

pub mod body;
mod check;
mod pool;
pub(crate) mod service;
pub(crate) mod store;
pub mod text;

pub use service::PushService;

/// Renders families in text format 0.0.4 as Pushgateway's `/metrics` does (for tests and fuzzing).
pub fn text_exposition(families: &[crate::expose::proto::MetricFamily]) -> String {
    let mut s = String::new();
    for f in families {
        crate::expose::text::write_family(f, &mut s);
    }
    s
}

use std::time::Duration;

/// Settings of the push subsystem.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Remove a group not pushed to within this time (its series get stale markers).
    pub group_ttl: Option<Duration>,
    /// How often pushed samples are appended to storage (default: the global scrape interval).
    pub interval: Duration,
    /// Largest accepted request body, before and after decompression (bytes).
    pub max_body_bytes: usize,
    /// Most groups kept; a push creating one more is refused.
    pub max_groups: usize,
    /// Most float series (after expanding summaries/histograms) one group may hold.
    pub max_series_per_group: usize,
    /// Serve `PUT /api/v1/admin/wipe`.
    pub enable_admin: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            group_ttl: None,
            interval: Duration::from_secs(60),
            max_body_bytes: 16 << 20,
            max_groups: 10_000,
            max_series_per_group: 100_000,
            enable_admin: false,
        }
    }
}

/// Errors of the push subsystem; [`PushError::status`] maps them to HTTP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// Malformed URL or body (answered before the store is involved).
    #[error("{0}")]
    BadRequest(String),
    /// Refused by the store's consistency rules; recorded as a push failure.
    #[error("pushed metrics are invalid or inconsistent with existing metrics: {0}")]
    Rejected(String),
    /// Body larger than `max_body_bytes`.
    #[error("{0}")]
    TooLarge(String),
    /// A group or series limit would be exceeded; nothing was changed.
    #[error("push refused: {0}")]
    Limit(String),
    /// Disk failure; nothing was changed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl PushError {
    /// HTTP status for the error.
    pub fn status(&self) -> u16 {
        match self {
            PushError::BadRequest(_) | PushError::Rejected(_) => 400,
            PushError::TooLarge(_) => 413,
            PushError::Limit(_) => 400,
            PushError::Io { .. } => 500,
        }
    }
}

impl From<store::StoreError> for PushError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Io { context, source } => PushError::Io { context, source },
        }
    }
}
