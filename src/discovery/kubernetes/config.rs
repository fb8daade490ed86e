//! `kubernetes_sd_configs:` entry. OWNER: kubernetes helper (expand freely).

use serde::{Deserialize, Serialize};

/// One Kubernetes SD config.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSdConfig {
    /// `pod`, `endpoints`, `endpointslice`, `service`, `node`.
    pub role: String,
}
