//! Prometheus-format YAML configuration.
//!
//! Loading is two-stage: serde (`deny_unknown_fields`, so a misspelt field is an error naming the
//! field and its line) and then `Config::validate`, run once per load.

pub(crate) mod alerting;
mod defaults;
pub(crate) mod duration;
pub mod http_client;
pub(crate) mod kubernetes;
pub mod otlp;
pub mod relabel;
pub mod remote_read;
pub(crate) mod remote_write;
pub mod scrape;
pub(crate) mod secret;

pub use duration::{PromDuration, parse_duration};
pub use secret::Secret;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The `global:` section.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Default scrape interval (1m).
    #[serde(default = "defaults::unset")]
    pub scrape_interval: PromDuration,
    /// Default scrape timeout (10s, or the scrape interval when that is shorter).
    #[serde(default = "defaults::unset")]
    pub scrape_timeout: PromDuration,
    /// Rule evaluation interval (1m); also the push pool's default interval.
    #[serde(default = "defaults::unset")]
    pub evaluation_interval: PromDuration,
    /// Labels added to federation output and remote-write.
    pub external_labels: BTreeMap<String, String>,
    /// Accepted for compatibility, unused: `query_log_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_log_file: Option<String>,
    /// Default `query_offset` of rule groups (0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_query_offset: Option<PromDuration>,
    /// `utf8` (default) or `legacy`: which metric and label names rule files may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name_validation_scheme: Option<String>,
    /// Default `scrape_protocols` of jobs that set none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<String>>,
    /// Default `body_size_limit` of jobs (`0` = none).
    #[serde(skip_serializing_if = "is_default")]
    pub body_size_limit: scrape::ByteSize,
    /// Default `sample_limit` of jobs (`0` = none).
    #[serde(skip_serializing_if = "is_default")]
    pub sample_limit: u64,
    /// Default `target_limit` of jobs (`0` = none).
    #[serde(skip_serializing_if = "is_default")]
    pub target_limit: u64,
    /// Default `label_limit` of jobs (`0` = none).
    #[serde(skip_serializing_if = "is_default")]
    pub label_limit: u64,
    /// Default `label_name_length_limit` of jobs (`0` = none).
    #[serde(skip_serializing_if = "is_default")]
    pub label_name_length_limit: u64,
    /// Default `label_value_length_limit` of jobs (`0` = none).
    #[serde(skip_serializing_if = "is_default")]
    pub label_value_length_limit: u64,
    /// Default `keep_dropped_targets` of jobs (`0` = all).
    #[serde(skip_serializing_if = "is_default")]
    pub keep_dropped_targets: u64,
    /// Default `scrape_native_histograms` of jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_native_histograms: Option<bool>,
    /// Default `always_scrape_classic_histograms` of jobs (false).
    #[serde(skip_serializing_if = "is_default")]
    pub always_scrape_classic_histograms: bool,
    /// Default `convert_classic_histograms_to_nhcb` of jobs (false).
    #[serde(skip_serializing_if = "is_default")]
    pub convert_classic_histograms_to_nhcb: bool,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        use std::time::Duration;
        Self {
            scrape_interval: PromDuration(Duration::from_secs(60)),
            scrape_timeout: PromDuration(Duration::from_secs(10)),
            evaluation_interval: PromDuration(Duration::from_secs(60)),
            external_labels: BTreeMap::new(),
            query_log_file: None,
            rule_query_offset: None,
            metric_name_validation_scheme: None,
            scrape_protocols: None,
            body_size_limit: scrape::ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            scrape_native_histograms: None,
            always_scrape_classic_histograms: false,
            convert_classic_histograms_to_nhcb: false,
        }
    }
}

/// The `storage:` section.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `storage: tsdb:`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsdb: Option<TsdbConfig>,
}

/// The `storage: tsdb:` section.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    /// Accept samples this much older than their series' newest sample (read at startup).
    pub out_of_order_time_window: PromDuration,
}

/// The whole configuration file (extended by the server helper).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `global:`
    pub global: GlobalConfig,
    /// `scrape_configs:`
    pub scrape_configs: Vec<scrape::ScrapeConfig>,
    /// `storage:`
    #[serde(skip_serializing_if = "is_default")]
    pub storage: StorageConfig,
    /// Rule file globs, relative to the config file's directory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_files: Vec<String>,
    /// `alerting:` (the notifier's Alertmanagers).
    #[serde(
        skip_serializing_if = "is_default",
        deserialize_with = "alerting::null_as_default"
    )]
    pub alerting: alerting::AlertingConfig,
    /// `remote_write:` destinations (see `crate::remote`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<remote_write::RemoteWriteConfig>,
    /// `remote_read:` endpoints PromQL merges with local data (see `crate::remote::read_client`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_read: Vec<remote_read::RemoteReadConfig>,
    /// `otlp:` (the OTLP receiver's translation settings).
    #[serde(skip_serializing_if = "is_default")]
    pub otlp: otlp::OtlpConfig,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// YAML syntax or an unknown/mistyped field (the message names the field and line).
    #[error("cannot parse config{}: {message}", in_file(.path))]
    Parse {
        /// The file, when loaded from one.
        path: Option<String>,
        /// serde_yaml_ng's message, with the line and column.
        message: String,
    },
    /// Semantically invalid (e.g. duplicate job names).
    #[error("invalid config{}: {message}", in_file(.path))]
    Invalid {
        /// The file, when loaded from one.
        path: Option<String>,
        /// What is wrong.
        message: String,
    },
}

fn in_file(path: &Option<String>) -> String {
    path.as_ref()
        .map(|p| format!(" file {p}"))
        .unwrap_or_default()
}

impl Config {
    /// Parses and validates YAML text. An empty document is the default config.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Self::parse_at(text, None)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_at(&text, Some(path.display().to_string()))
    }

    fn parse_at(text: &str, path: Option<String>) -> Result<Config, ConfigError> {
        let cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?
        };
        let mut cfg = cfg;
        defaults::apply(&mut cfg.global).map_err(|message| ConfigError::Invalid {
            path: path.clone(),
            message,
        })?;
        cfg.validate()
            .map_err(|message| ConfigError::Invalid { path, message })?;
        for sc in &mut cfg.scrape_configs {
            sc.inherit(&cfg.global);
        }
        Ok(cfg)
    }

    /// Checks what serde cannot: unique job names, scrape timeout not above the interval.
    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for sc in &self.scrape_configs {
            if sc.job_name.is_empty() {
                return Err("job_name is empty".into());
            }
            if !seen.insert(sc.job_name.as_str()) {
                return Err(format!(
                    "found multiple scrape configs with job name {:?}",
                    sc.job_name
                ));
            }
        }
        self.alerting.validate()?;
        if let Some(s) = &self.global.metric_name_validation_scheme
            && !["", "utf8", "legacy"].contains(&s.as_str())
        {
            return Err(format!(
                "unknown global name validation method specified, must be either '', 'legacy' or 'utf8', got {s}"
            ));
        }
        if let Some(p) = &self.global.scrape_protocols {
            scrape::validate_protocols(p, "")?;
        }
        remote_write::validate_all(&self.remote_write)?;
        remote_read::validate_all(&self.remote_read)?;
        self.otlp.validate()?;
        if self.global.scrape_timeout > self.global.scrape_interval {
            return Err(format!(
                "global scrape timeout greater than scrape interval ({} > {})",
                self.global.scrape_timeout, self.global.scrape_interval
            ));
        }
        Ok(())
    }

    /// The out-of-order window from `storage: tsdb:`, ms.
    pub fn out_of_order_window_ms(&self) -> Option<i64> {
        self.storage
            .tsdb
            .as_ref()
            .map(|t| t.out_of_order_time_window.as_millis())
    }

    /// Sections that are accepted but have no effect, for a startup warning.
    pub fn ignored_sections(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// The config as YAML, for `/api/v1/status/config`.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// The config used without `--config.file`: Argus scrapes its own `/metrics` every 15 s.
/// `self_target` is `host:port` of the web listener.
pub fn default_config_yaml(self_target: &str) -> String {
    format!(
        "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n\
         scrape_configs:\n  - job_name: argus\n    static_configs:\n      - targets: [\"{self_target}\"]\n"
    )
}

/// The live configuration, swapped whole on a successful reload (readers never see a mix).
pub struct ConfigState {
    /// The current config and the time it was loaded (ms); swapped under this lock, never held
    /// across I/O.
    current: parking_lot::RwLock<(std::sync::Arc<Config>, i64)>,
    /// Whether the last reload attempt succeeded.
    last_ok: std::sync::atomic::AtomicBool,
}

impl ConfigState {
    /// Starts with `cfg`, loaded at `now_ms`.
    pub fn new(cfg: Config, now_ms: i64) -> Self {
        Self {
            current: parking_lot::RwLock::new((std::sync::Arc::new(cfg), now_ms)),
            last_ok: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// The current config.
    pub fn get(&self) -> std::sync::Arc<Config> {
        self.current.read().0.clone()
    }

    /// When the current config was loaded (ms).
    pub fn loaded_at_ms(&self) -> i64 {
        self.current.read().1
    }

    /// Whether the last reload succeeded.
    pub fn last_reload_ok(&self) -> bool {
        self.last_ok.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Installs a new config.
    pub fn set(&self, cfg: Config, now_ms: i64) {
        *self.current.write() = (std::sync::Arc::new(cfg), now_ms);
        self.last_ok
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records a failed reload (the current config stays).
    pub fn mark_failed(&self) {
        self.last_ok
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_names_field_and_line() {
        let err = Config::parse("global:\n  scrape_interval: 15s\n  scrape_intervall: 1m\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("scrape_intervall"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn storage_and_ignored_sections() {
        let cfg = Config::parse(
            "storage:\n  tsdb:\n    out_of_order_time_window: 30m\n\
             rule_files: [a.yml]\nremote_write:\n  - url: http://x/api/v1/write\n",
        )
        .unwrap();
        assert_eq!(cfg.out_of_order_window_ms(), Some(30 * 60 * 1000));
        assert_eq!(cfg.rule_files, vec!["a.yml"]);
        assert!(cfg.ignored_sections().is_empty());
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn validation_errors() {
        let err = Config::parse("scrape_configs:\n  - job_name: a\n  - job_name: a\n").unwrap_err();
        assert!(err.to_string().contains("multiple scrape configs"), "{err}");
        let err =
            Config::parse("global:\n  scrape_interval: 5s\n  scrape_timeout: 10s\n").unwrap_err();
        assert!(err.to_string().contains("timeout greater"), "{err}");
        let err = Config::parse("global:\n  scrape_interval: 5x\n").unwrap_err();
        assert!(err.to_string().contains("not a valid duration"), "{err}");
        let err = Config::parse("global:\n  metric_name_validation_scheme: ascii\n").unwrap_err();
        assert!(err.to_string().contains("name validation"), "{err}");
        let cfg = Config::parse(
            "global:\n  rule_query_offset: 10s\n  metric_name_validation_scheme: legacy\n",
        )
        .unwrap();
        assert_eq!(
            cfg.global.rule_query_offset.map(|d| d.as_millis()),
            Some(10_000)
        );
    }

    #[test]
    fn round_trips_through_yaml() {
        let cfg = Config::parse("global:\n  scrape_interval: 15s\n").unwrap();
        assert_eq!(Config::parse(&cfg.to_yaml()).unwrap(), cfg);
    }

    #[test]
    fn example_config_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/config/example.yml");
        let cfg = Config::load(Path::new(path)).unwrap();
        assert_eq!(cfg.scrape_configs.len(), 3);
        assert_eq!(cfg.out_of_order_window_ms(), Some(30 * 60 * 1000));
        assert_eq!(cfg.global.external_labels["cluster"], "demo");
    }

    #[test]
    fn default_config_parses() {
        let cfg = Config::parse(&default_config_yaml("localhost:9090")).unwrap();
        assert_eq!(cfg.scrape_configs.len(), 1);
        assert_eq!(cfg.scrape_configs[0].job_name, "argus");
    }
}
