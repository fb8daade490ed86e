//! Service discovery: target groups from static, file and Kubernetes providers.

pub mod kubernetes;

use std::collections::BTreeMap;

/// A set of targets sharing labels, as Prometheus's `targetgroup.Group`.
///
/// Providers send groups on a `tokio::sync::mpsc::Sender<Vec<TargetGroup>>`; each message holds
/// the groups that changed, keyed by `source`. A group with no targets means the group is gone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// Unique id of the group within its provider (e.g. `pod/default/web-1`).
    pub source: String,
    /// One label set per target; each has at least `__address__`.
    pub targets: Vec<BTreeMap<String, String>>,
    /// Labels common to every target of the group (`__meta_*` included).
    pub labels: BTreeMap<String, String>,
}

pub(crate) mod file_sd;
pub(crate) mod static_sd;
