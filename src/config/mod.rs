//! Prometheus-format YAML configuration. OWNER: server helper (this file);
//! `scrape.rs` and `relabel.rs`: scrape helper; `duration.rs`: shared (server helper).

pub mod duration;
pub mod relabel;
pub mod scrape;

pub use duration::{PromDuration, parse_duration};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `global:` section.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Default scrape interval (1m).
    pub scrape_interval: PromDuration,
    /// Default scrape timeout (10s).
    pub scrape_timeout: PromDuration,
    /// Rule evaluation interval (1m); also the push pool's default interval.
    pub evaluation_interval: PromDuration,
    /// Labels added to federation output and remote-write.
    pub external_labels: BTreeMap<String, String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        use std::time::Duration;
        Self {
            scrape_interval: PromDuration(Duration::from_secs(60)),
            scrape_timeout: PromDuration(Duration::from_secs(10)),
            evaluation_interval: PromDuration(Duration::from_secs(60)),
            external_labels: BTreeMap::new(),
        }
    }
}

/// The whole configuration file (extended by the server helper).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `global:`
    pub global: GlobalConfig,
    /// `scrape_configs:`
    pub scrape_configs: Vec<scrape::ScrapeConfig>,
}
