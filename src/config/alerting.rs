//! The `alerting:` section: where the notifier sends alerts.
//!
//! Field names, defaults and validation messages follow Prometheus's `alerting` /
//! `alertmanager_config`. The HTTP client options are the common ones
//! (`super::http_client`); secrets are echoed as `<secret>`.

use super::PromDuration;
use super::relabel::RelabelConfig;
use super::scrape::{FileSdConfig, StaticConfig};
use crate::config::kubernetes::KubernetesSdConfig;
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// The `alerting:` section.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Applied to every alert after the external labels are added, before any Alertmanager set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// The Alertmanager sets; each alert goes to every Alertmanager of every set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

super::http_client::http_client_config! {
    /// One `alertmanagers:` entry (an "Alertmanager set").
    #[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    pub struct AlertmanagerConfig {
        /// `http` or `https`; the initial `__scheme__` of discovered Alertmanagers.
        pub scheme: String = "http".into(),
        /// Prefix of the alerts path (`/`): alerts go to `<path_prefix>/api/v2/alerts`.
        pub path_prefix: String = "/".into(),
        /// Per-request timeout (10s).
        pub timeout: PromDuration = PromDuration(Duration::from_secs(10)),
        /// Only `v2` (v1 was removed in Prometheus 3).
        pub api_version: String = "v2".into(),
        /// Static Alertmanagers (`host:port`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub static_configs: Vec<StaticConfig> = Vec::new(),
        /// File-based discovery.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub file_sd_configs: Vec<FileSdConfig> = Vec::new(),
        /// Kubernetes discovery.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub kubernetes_sd_configs: Vec<KubernetesSdConfig> = Vec::new(),
        /// Relabeling of discovered Alertmanagers (`__address__`, `__scheme__`, `__alerts_path__`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub relabel_configs: Vec<RelabelConfig> = Vec::new(),
        /// Relabeling of the alerts sent to this set only.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub alert_relabel_configs: Vec<RelabelConfig> = Vec::new(),
    }
}

impl AlertingConfig {
    /// Checks every Alertmanager set (messages as Prometheus's where it has one).
    pub fn validate(&self) -> Result<(), String> {
        self.alertmanagers.iter().try_for_each(|am| am.validate())
    }
}

impl AlertmanagerConfig {
    /// Checks the set as Prometheus's config loader does.
    pub fn validate(&self) -> Result<(), String> {
        if self.api_version != "v2" {
            return Err(format!(
                "expected Alertmanager api version to be one of [v2] but got {}",
                self.api_version
            ));
        }
        if self.scheme != "http" && self.scheme != "https" {
            return Err(format!(
                "invalid scheme {:?} for alertmanager config",
                self.scheme
            ));
        }
        if self.timeout.0.is_zero() {
            return Err("alertmanager timeout must be greater than 0".into());
        }
        self.http_client().validate()?;
        if self.tls_config.server_name.is_some() {
            // The scrape client reaches `server_name` by rewriting the target URL; the notifier
            // does not implement that yet, and silently ignoring the option would be worse.
            return Err("tls_config.server_name is not supported for alertmanagers yet".into());
        }
        // Without relabeling a target must already be host:port; with it the check happens
        // after relabeling (the notifier skips such groups with an error log).
        if self.relabel_configs.is_empty() {
            for sc in &self.static_configs {
                for t in &sc.targets {
                    if t.contains('/') {
                        return Err(format!("{t:?} is not a valid hostname"));
                    }
                }
            }
        }
        for k in &self.kubernetes_sd_configs {
            k.validate()
                .map_err(|e| format!("alertmanager config: {e}"))?;
        }
        for f in &self.file_sd_configs {
            f.validate()?;
        }
        Ok(())
    }

    /// The POST path, as Go's `path.Join("/", path_prefix, "/api/v2/alerts")`.
    pub fn alerts_path(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for seg in self.path_prefix.split('/').chain(["api", "v2", "alerts"]) {
            match seg {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        format!("/{}", parts.join("/"))
    }
}

/// `alerting:` with no value (`null`) is the default section, as in Prometheus.
pub(crate) fn null_as_default<'de, D: Deserializer<'de>>(d: D) -> Result<AlertingConfig, D::Error> {
    Ok(Option::<AlertingConfig>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn parses_with_prometheus_defaults() {
        let cfg = Config::parse(
            "alerting:\n  alert_relabel_configs: [{action: labeldrop, regex: replica}]\n  \
             alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:9093']}]\n",
        )
        .unwrap();
        let am = &cfg.alerting.alertmanagers[0];
        assert_eq!(am.scheme, "http");
        assert_eq!(am.path_prefix, "/");
        assert_eq!(am.timeout.0.as_secs(), 10);
        assert_eq!(am.api_version, "v2");
        assert!(am.follow_redirects && am.enable_http2);
        assert_eq!(am.alerts_path(), "/api/v2/alerts");
        assert_eq!(cfg.alerting.alert_relabel_configs.len(), 1);
        assert!(cfg.ignored_sections().iter().all(|s| *s != "alerting"));
        assert_eq!(Config::parse("alerting:\n").unwrap(), Config::default());
    }

    #[test]
    fn alerts_path_is_path_joined() {
        let check = |prefix: &str, want: &str| {
            let am = super::AlertmanagerConfig {
                path_prefix: prefix.into(),
                ..Default::default()
            };
            assert_eq!(am.alerts_path(), want, "prefix {prefix:?}");
        };
        check("/", "/api/v2/alerts");
        check("", "/api/v2/alerts");
        check("/am/", "/am/api/v2/alerts");
        check("am", "/am/api/v2/alerts");
        check("/a//b/../c", "/a/c/api/v2/alerts");
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        let check = |yaml: &str, want: &str| {
            let err = Config::parse(yaml).unwrap_err().to_string();
            assert!(err.contains(want), "want {want:?}, got {err}");
        };
        check(
            "alerting: {alertmanagers: [{api_version: v1}]}",
            "expected Alertmanager api version to be one of [v2] but got v1",
        );
        check(
            "alerting: {alertmanagers: [{static_configs: [{targets: ['http://a:9093']}]}]}",
            "\"http://a:9093\" is not a valid hostname",
        );
        check(
            "alerting: {alertmanagers: [{basic_auth: {username: u}, authorization: {credentials: c}}]}",
            "at most one of basic_auth, oauth2 & authorization must be configured",
        );
        check("alerting: {alertmanagers: [{bogus: 1}]}", "bogus");
        check("alerting: {bogus: 1}", "bogus");
        check(
            "alerting: {alertmanagers: [{relabel_configs: [null]}]}",
            "relabel",
        );
        // With relabel_configs the address check moves to discovery time.
        assert!(
            Config::parse(
                "alerting: {alertmanagers: [{static_configs: [{targets: ['a/b']}], \
                 relabel_configs: [{target_label: __address__, replacement: 'a:1'}]}]}"
            )
            .is_ok()
        );
    }

    #[test]
    fn secrets_are_echoed_as_secret() {
        let cfg = Config::parse(
            "alerting:\n  alertmanagers:\n    - basic_auth: {username: u, password: hunter2}\n    \
             - authorization: {credentials: tok3n}\n",
        )
        .unwrap();
        let yaml = cfg.to_yaml();
        assert!(
            !yaml.contains("hunter2") && !yaml.contains("tok3n"),
            "{yaml}"
        );
        assert_eq!(yaml.matches("<secret>").count(), 2, "{yaml}");
        assert!(yaml.contains("username: u"), "{yaml}");
        // The echo parses back (with the placeholder as the secret).
        let back = Config::parse(&yaml).unwrap();
        assert_eq!(back.alerting.alertmanagers.len(), 2);
    }
}
