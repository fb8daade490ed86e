//! One `scrape_configs:` entry. OWNER: scrape helper (expand freely; keep `job_name`).

use serde::{Deserialize, Serialize};

/// A scrape job.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// `job_name`, required and unique.
    pub job_name: String,
}
