//! One `scrape_configs:` entry.
//!
//! Field names, defaults and validation messages follow Prometheus's `scrape_config`. Durations
//! left unset inherit from `global:` (see [`ScrapeConfig::interval`]).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::relabel::RelabelConfig;
use super::{GlobalConfig, PromDuration};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

super::http_client::http_client_config! {
    /// A scrape job.
    #[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    pub struct ScrapeConfig {
        /// `job_name`, required and unique.
        pub job_name: String = String::new(),
        /// How often to scrape; `global.scrape_interval` when unset.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub scrape_interval: Option<PromDuration> = None,
        /// Per-scrape timeout; `global.scrape_timeout` (capped at the interval) when unset.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub scrape_timeout: Option<PromDuration> = None,
        /// Formats offered in `Accept`, most preferred first (`OpenMetricsText1.0.0`,
        /// `OpenMetricsText0.0.1`, `PrometheusText1.0.0`, `PrometheusText0.0.4`).
        pub scrape_protocols: Vec<String> = Vec::new(),
        /// Format used when a target answers without a usable `Content-Type`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub fallback_scrape_protocol: Option<String> = None,
        /// Keep the target's own labels on conflict instead of renaming them to `exported_*`.
        pub honor_labels: bool = false,
        /// Use timestamps from the exposition (default true).
        pub honor_timestamps: bool = true,
        /// Write staleness markers for series with explicit timestamps too.
        pub track_timestamps_staleness: bool = false,
        /// `http` or `https`.
        pub scheme: String = "http".into(),
        /// Path of the metrics endpoint (`/metrics`).
        pub metrics_path: String = "/metrics".into(),
        /// URL query parameters.
        pub params: BTreeMap<String, Vec<String>> = BTreeMap::new(),
        /// Ask for gzip (default true).
        pub enable_compression: bool = true,
        /// Maximum uncompressed body size (`0` = none), e.g. `10MB`.
        pub body_size_limit: ByteSize = ByteSize(0),
        /// Maximum samples per scrape after metric relabeling (`0` = none).
        pub sample_limit: u64 = 0,
        /// Maximum targets after relabeling (`0` = none).
        pub target_limit: u64 = 0,
        /// Maximum labels per sample (`0` = none).
        pub label_limit: u64 = 0,
        /// Maximum label name length (`0` = none).
        pub label_name_length_limit: u64 = 0,
        /// Maximum label value length (`0` = none).
        pub label_value_length_limit: u64 = 0,
        /// Dropped targets kept for the API (`0` = all).
        pub keep_dropped_targets: u64 = 0,
        /// Most buckets a native histogram may keep (`0` = none); stored for the histogram code.
        pub native_histogram_bucket_limit: u64 = 0,
        /// Lowest growth factor between native histogram buckets (`0` = none); stored.
        pub native_histogram_min_bucket_factor: f64 = 0.0,
        /// Ingest native histograms; `global.scrape_native_histograms` when unset.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub scrape_native_histograms: Option<bool> = None,
        /// Keep the classic form of histograms also exposed as native ones; the global value when
        /// unset. `scrape_classic_histograms` is its Prometheus 2 spelling.
        #[serde(
            alias = "scrape_classic_histograms",
            skip_serializing_if = "Option::is_none"
        )]
        pub always_scrape_classic_histograms: Option<bool> = None,
        /// Store classic histograms as native histograms with custom buckets; the global value when
        /// unset.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub convert_classic_histograms_to_nhcb: Option<bool> = None,
        /// Target relabeling.
        pub relabel_configs: Vec<RelabelConfig> = Vec::new(),
        /// Sample relabeling.
        pub metric_relabel_configs: Vec<RelabelConfig> = Vec::new(),
        /// Static target groups.
        pub static_configs: Vec<StaticConfig> = Vec::new(),
        /// File-based discovery.
        pub file_sd_configs: Vec<FileSdConfig> = Vec::new(),
        /// Kubernetes discovery (run by `crate::discovery::kubernetes`).
        pub kubernetes_sd_configs: Vec<crate::config::kubernetes::KubernetesSdConfig> = Vec::new(),
    }
}

/// The scrape protocols Argus can parse, with their `Accept` media types.
pub const SCRAPE_PROTOCOLS: &[(&str, &str)] = &[
    (
        "OpenMetricsText1.0.0",
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
    ),
    (
        "OpenMetricsText0.0.1",
        "application/openmetrics-text;version=0.0.1",
    ),
    (
        "PrometheusText1.0.0",
        "text/plain;version=1.0.0;escaping=allow-utf-8",
    ),
    ("PrometheusText0.0.4", "text/plain;version=0.0.4"),
    ("PrometheusProto", crate::scrape::protobuf::MEDIA_TYPE),
];

/// How many of [`SCRAPE_PROTOCOLS`] (the text ones) the default `scrape_protocols` lists.
const TEXT_PROTOCOL_COUNT: usize = 4;

/// Number of protocols Prometheus knows (the four above plus `PrometheusProto`), which fixes
/// the `q=` weights of its `Accept` header.
const PROMETHEUS_PROTOCOL_COUNT: usize = 5;

/// Checks a `scrape_protocols` list as Prometheus's `validateAcceptScrapeProtocols` does:
/// not empty, no duplicates (case-insensitive), every name one Argus can parse.
pub(crate) fn validate_protocols(protos: &[String], whose: &str) -> Result<(), String> {
    if protos.is_empty() {
        return Err(format!("scrape_protocols cannot be empty{whose}"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in protos {
        if !seen.insert(p.to_lowercase()) {
            return Err(format!(
                "duplicated protocol in scrape_protocols, got [{}]{whose}",
                protos.join(" ")
            ));
        }
        if !SCRAPE_PROTOCOLS.iter().any(|(n, _)| n == p) {
            return Err(format!(
                "unknown or unsupported scrape protocol {p:?}{whose} (supported: {})",
                SCRAPE_PROTOCOLS
                    .iter()
                    .map(|p| p.0)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

impl ScrapeConfig {
    /// Fills what the job leaves unset from `global:`, as Prometheus's `ScrapeConfig.Validate`:
    /// zero limits, an absent `scrape_protocols` and the unset histogram switches. Idempotent.
    pub fn inherit(&mut self, g: &GlobalConfig) {
        let fill = |v: &mut u64, from: u64| {
            if *v == 0 {
                *v = from;
            }
        };
        if self.body_size_limit.0 == 0 {
            self.body_size_limit = g.body_size_limit;
        }
        fill(&mut self.sample_limit, g.sample_limit);
        fill(&mut self.target_limit, g.target_limit);
        fill(&mut self.label_limit, g.label_limit);
        fill(&mut self.label_name_length_limit, g.label_name_length_limit);
        fill(
            &mut self.label_value_length_limit,
            g.label_value_length_limit,
        );
        fill(&mut self.keep_dropped_targets, g.keep_dropped_targets);
        if self.scrape_protocols.is_empty()
            && let Some(p) = &g.scrape_protocols
        {
            self.scrape_protocols = p.clone();
        }
        if self.scrape_native_histograms.is_none() {
            self.scrape_native_histograms = g.scrape_native_histograms;
        }
        if self.always_scrape_classic_histograms.is_none() {
            self.always_scrape_classic_histograms = Some(g.always_scrape_classic_histograms);
        }
        if self.convert_classic_histograms_to_nhcb.is_none() {
            self.convert_classic_histograms_to_nhcb = Some(g.convert_classic_histograms_to_nhcb);
        }
    }

    /// Effective scrape interval.
    pub fn interval(&self, g: &GlobalConfig) -> std::time::Duration {
        // Zero means unset, as in Prometheus's `ScrapeConfig.Validate`.
        match self.scrape_interval {
            Some(i) if !i.0.is_zero() => i.0,
            _ => g.scrape_interval.0,
        }
    }

    /// Effective scrape timeout: explicit, else the global one capped at the interval.
    pub fn timeout(&self, g: &GlobalConfig) -> std::time::Duration {
        match self.scrape_timeout {
            Some(t) if !t.0.is_zero() => t.0,
            _ => g.scrape_timeout.0.min(self.interval(g)),
        }
    }

    /// The `Accept` header, built as Prometheus's `acceptHeader`: weights from `q=0.6` down,
    /// then `*/*`.
    pub fn accept_header(&self) -> String {
        // Prometheus's DefaultScrapeProtocols, or DefaultProtoFirstScrapeProtocols when native
        // histograms are scraped.
        let text = SCRAPE_PROTOCOLS
            .iter()
            .take(TEXT_PROTOCOL_COUNT)
            .map(|p| p.0.to_string());
        let default: Vec<String> = if self.scrape_native_histograms == Some(true) {
            std::iter::once("PrometheusProto".to_string())
                .chain(text)
                .collect()
        } else {
            text.collect()
        };
        let protos = if self.scrape_protocols.is_empty() {
            &default
        } else {
            &self.scrape_protocols
        };
        let mut weight = PROMETHEUS_PROTOCOL_COUNT + 1;
        let mut out = String::new();
        for p in protos {
            if let Some((_, media)) = SCRAPE_PROTOCOLS.iter().find(|(n, _)| n == p) {
                out.push_str(&format!("{media};q=0.{weight},"));
                weight = weight.saturating_sub(1);
            }
        }
        out.push_str(&format!("*/*;q=0.{weight}"));
        out
    }

    /// Checks the job as Prometheus's config loader does (messages included).
    pub fn validate(&self, g: &GlobalConfig) -> Result<(), String> {
        let job = &self.job_name;
        if job.is_empty() {
            return Err("job_name is empty".into());
        }
        if self.interval(g).is_zero() {
            return Err(format!("scrape interval must be positive for job {job:?}"));
        }
        if self.timeout(g) > self.interval(g) {
            return Err(format!(
                "scrape timeout greater than scrape interval for scrape config with job name {job:?}"
            ));
        }
        if self.scheme != "http" && self.scheme != "https" {
            return Err(format!("invalid scheme {:?} for job {job:?}", self.scheme));
        }
        if !self.scrape_protocols.is_empty() {
            validate_protocols(&self.scrape_protocols, &format!(" for job {job:?}"))?;
        }
        if self.native_histogram_min_bucket_factor < 0.0
            || self.native_histogram_min_bucket_factor.is_nan()
        {
            return Err(format!(
                "native_histogram_min_bucket_factor must not be negative for job {job:?}"
            ));
        }
        for p in self.fallback_scrape_protocol.iter() {
            if !SCRAPE_PROTOCOLS.iter().any(|(n, _)| n == p) {
                return Err(format!(
                    "unknown or unsupported scrape protocol {p:?} for job {job:?} (supported: {})",
                    SCRAPE_PROTOCOLS
                        .iter()
                        .map(|p| p.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        self.http_client().validate()?;
        for sc in &self.static_configs {
            for t in &sc.targets {
                if t.contains('/') {
                    return Err(format!(
                        "{t:?} is not a valid hostname (a target is host:port, without scheme or path)"
                    ));
                }
            }
        }
        for k in &self.kubernetes_sd_configs {
            k.validate().map_err(|e| format!("job {job:?}: {e}"))?;
        }
        for f in &self.file_sd_configs {
            f.validate()?;
        }
        Ok(())
    }
}

pub use super::http_client::{Authorization, BasicAuth, TlsConfig};

/// `static_configs:` entry.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels for every target of the group.
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs:` entry.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    /// Files or globs (last path element only) of JSON/YAML target groups.
    pub files: Vec<String>,
    /// Full re-read period (5m); changes are also picked up by polling mtimes every few seconds.
    pub refresh_interval: PromDuration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            refresh_interval: PromDuration(std::time::Duration::from_secs(300)),
        }
    }
}

impl FileSdConfig {
    /// Every file pattern names a JSON or YAML file (Prometheus's message).
    pub fn validate(&self) -> Result<(), String> {
        for p in &self.files {
            let base = p.rsplit('/').next().unwrap_or(p);
            if !(base.ends_with(".json") || base.ends_with(".yml") || base.ends_with(".yaml")) {
                return Err(format!(
                    "path name {p:?} is not valid for file discovery (must end in .json, .yml or .yaml)"
                ));
            }
        }
        Ok(())
    }
}

/// A byte count written as Prometheus's `units.Base2Bytes` (`512`, `10KB`, `64MiB`, `1GB`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `<int>[unit]` with base-2 units `B KB KiB MB MiB GB GiB TB TiB PB PiB EB EiB`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (n, unit) = s.split_at(digits);
        let n: u64 = n.parse().map_err(|_| format!("invalid byte size {s:?}"))?;
        let shift = match unit.trim() {
            "" | "B" => 0,
            "KB" | "KiB" | "K" => 10,
            "MB" | "MiB" | "M" => 20,
            "GB" | "GiB" | "G" => 30,
            "TB" | "TiB" | "T" => 40,
            "PB" | "PiB" | "P" => 50,
            "EB" | "EiB" | "E" => 60,
            _ => return Err(format!("invalid byte size {s:?}")),
        };
        n.checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("byte size {s:?} overflows"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, shift) in [
            ("EB", 60),
            ("PB", 50),
            ("TB", 40),
            ("GB", 30),
            ("MB", 20),
            ("KB", 10),
        ] {
            if self.0 != 0 && self.0.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn parses_full_job_with_defaults() {
        let cfg: Config = serde_yaml_ng::from_str(
            r#"
global: {scrape_interval: 15s}
scrape_configs:
  - job_name: node
    scrape_timeout: 5s
    params: {module: [if_mib]}
    body_size_limit: 10MB
    sample_limit: 1000
    basic_auth: {username: u, password: p}
    tls_config: {insecure_skip_verify: true, server_name: example}
    static_configs: [{targets: ["127.0.0.1:9100"], labels: {env: prod}}]
    file_sd_configs: [{files: ["/etc/targets/*.json"]}]
    relabel_configs: [{source_labels: [__address__], target_label: instance}]
    metric_relabel_configs: [{regex: "go_.*", source_labels: [__name__], action: drop}]
"#,
        )
        .unwrap();
        let j = &cfg.scrape_configs[0];
        assert_eq!(j.job_name, "node");
        assert_eq!(j.interval(&cfg.global).as_secs(), 15);
        assert_eq!(j.timeout(&cfg.global).as_secs(), 5);
        assert!(j.honor_timestamps, "honor_timestamps defaults to true");
        assert_eq!(j.scheme, "http");
        assert_eq!(j.metrics_path, "/metrics");
        assert_eq!(j.body_size_limit, ByteSize(10 << 20));
        assert_eq!(j.file_sd_configs[0].refresh_interval.0.as_secs(), 300);
        assert_eq!(j.static_configs[0].labels["env"], "prod");
        assert!(j.validate(&cfg.global).is_ok());
        // Round trip through YAML: equal but for the password, which is written as <secret>.
        let back: Config =
            serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
        let mut want = cfg.clone();
        if let Some(b) = want.scrape_configs[0].basic_auth.as_mut() {
            b.password = Some(super::super::Secret::new("<secret>"));
        }
        assert_eq!(back, want);
    }

    #[test]
    fn timeout_defaults_capped_at_interval() {
        let g = GlobalConfig::default(); // 1m interval, 10s timeout
        let j = ScrapeConfig {
            job_name: "a".into(),
            scrape_interval: Some(PromDuration(std::time::Duration::from_secs(5))),
            ..Default::default()
        };
        assert_eq!(j.timeout(&g).as_secs(), 5);
        let bad = ScrapeConfig {
            scrape_timeout: Some(PromDuration(std::time::Duration::from_secs(6))),
            ..j
        };
        let e = bad.validate(&g).unwrap_err();
        assert!(
            e.contains("scrape timeout greater than scrape interval"),
            "{e}"
        );
    }

    #[test]
    fn accept_header_matches_prometheus() {
        let j = ScrapeConfig::default();
        assert_eq!(
            j.accept_header(),
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
             application/openmetrics-text;version=0.0.1;q=0.5,\
             text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
             text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
        let j = ScrapeConfig {
            scrape_native_histograms: Some(true),
            ..Default::default()
        };
        assert_eq!(
            j.accept_header(),
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,\
             application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
             application/openmetrics-text;version=0.0.1;q=0.4,\
             text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
             text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
        );
        let j = ScrapeConfig {
            scrape_protocols: vec!["PrometheusText0.0.4".into()],
            ..Default::default()
        };
        assert_eq!(
            j.accept_header(),
            "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
        );
    }

    #[test]
    fn byte_sizes() {
        let check = |s: &str, n: u64| assert_eq!(ByteSize::parse(s), Ok(ByteSize(n)), "{s}");
        check("0", 0);
        check("512", 512);
        check("1KB", 1024);
        check("10MB", 10 << 20);
        check("2GiB", 2 << 30);
        assert!(ByteSize::parse("1.5MB").is_err());
        assert!(ByteSize::parse("10XB").is_err());
        assert_eq!(ByteSize(10 << 20).to_string(), "10MB");
    }

    #[test]
    fn rejects_bad_jobs() {
        let g = GlobalConfig::default();
        let check = |j: ScrapeConfig, want: &str| {
            let e = j.validate(&g).unwrap_err();
            assert!(e.contains(want), "want {want:?}, got {e}");
        };
        let base = ScrapeConfig {
            job_name: "j".into(),
            ..Default::default()
        };
        check(
            ScrapeConfig {
                job_name: String::new(),
                ..base.clone()
            },
            "job_name is empty",
        );
        check(
            ScrapeConfig {
                scheme: "ftp".into(),
                ..base.clone()
            },
            "invalid scheme",
        );
        check(
            ScrapeConfig {
                scrape_protocols: vec!["PrometheusProto2".into()],
                ..base.clone()
            },
            "unsupported scrape protocol",
        );
        check(
            ScrapeConfig {
                file_sd_configs: vec![FileSdConfig {
                    files: vec!["/x/targets.txt".into()],
                    ..Default::default()
                }],
                ..base.clone()
            },
            "not valid for file discovery",
        );
        assert!(
            serde_yaml_ng::from_str::<ScrapeConfig>("job_name: a\nbogus: 1").is_err(),
            "unknown fields are rejected"
        );
    }

    #[test]
    fn limits_and_histogram_switches_inherit_from_global() {
        let cfg = Config::parse(
            r#"
global:
  scrape_protocols: [PrometheusText0.0.4, OpenMetricsText1.0.0]
  body_size_limit: 1KB
  sample_limit: 20
  target_limit: 3
  label_limit: 6
  label_name_length_limit: 30
  label_value_length_limit: 40
  keep_dropped_targets: 5
  scrape_native_histograms: true
  always_scrape_classic_histograms: true
  convert_classic_histograms_to_nhcb: true
scrape_configs:
  - job_name: inherits
  - job_name: own
    scrape_protocols: [OpenMetricsText0.0.1]
    body_size_limit: 2KB
    sample_limit: 100
    target_limit: 1
    label_limit: 9
    label_name_length_limit: 8
    label_value_length_limit: 7
    keep_dropped_targets: 2
    native_histogram_bucket_limit: 160
    native_histogram_min_bucket_factor: 1.1
    scrape_native_histograms: false
    scrape_classic_histograms: false
    convert_classic_histograms_to_nhcb: false
"#,
        )
        .unwrap();
        let got = |j: &ScrapeConfig| {
            (
                j.scrape_protocols.join(","),
                j.body_size_limit.0,
                [
                    j.sample_limit,
                    j.target_limit,
                    j.label_limit,
                    j.label_name_length_limit,
                    j.label_value_length_limit,
                    j.keep_dropped_targets,
                ],
                (
                    j.scrape_native_histograms,
                    j.always_scrape_classic_histograms,
                    j.convert_classic_histograms_to_nhcb,
                ),
            )
        };
        let (inherits, own) = (&cfg.scrape_configs[0], &cfg.scrape_configs[1]);
        assert_eq!(
            got(inherits),
            (
                "PrometheusText0.0.4,OpenMetricsText1.0.0".to_string(),
                1024,
                [20, 3, 6, 30, 40, 5],
                (Some(true), Some(true), Some(true))
            )
        );
        assert_eq!(
            got(own),
            (
                "OpenMetricsText0.0.1".to_string(),
                2048,
                [100, 1, 9, 8, 7, 2],
                (Some(false), Some(false), Some(false))
            )
        );
        assert_eq!(own.native_histogram_bucket_limit, 160);
        assert_eq!(own.native_histogram_min_bucket_factor, 1.1);
        assert!(inherits.validate(&cfg.global).is_ok());
        assert!(own.validate(&cfg.global).is_ok());
        assert!(
            inherits
                .accept_header()
                .starts_with("text/plain;version=0.0.4;q=0.6,application/openmetrics-text"),
            "{}",
            inherits.accept_header()
        );
        // Defaults: nothing set anywhere leaves every limit off and the switches false.
        let cfg = Config::parse("scrape_configs: [{job_name: a}]").unwrap();
        let (protos, body, limits, switches) = got(&cfg.scrape_configs[0]);
        assert_eq!((protos.as_str(), body, limits), ("", 0, [0; 6]));
        assert_eq!(switches, (None, Some(false), Some(false)));

        let check = |yaml: &str, want: &str| {
            let e = Config::parse(yaml)
                .map_err(|e| e.to_string())
                .and_then(|c| c.scrape_configs[0].validate(&c.global))
                .unwrap_err();
            assert!(e.contains(want), "{yaml}: want {want:?}, got {e}");
        };
        let jobs = "\nscrape_configs: [{job_name: a}]";
        check(
            &format!("global: {{scrape_protocols: []}}{jobs}"),
            "scrape_protocols cannot be empty",
        );
        check(
            &format!("global: {{scrape_protocols: [Bogus]}}{jobs}"),
            "unknown or unsupported scrape protocol \"Bogus\"",
        );
        check(
            "scrape_configs: [{job_name: a, scrape_protocols: [PrometheusText0.0.4, prometheustext0.0.4]}]",
            "duplicated protocol in scrape_protocols",
        );
        check(
            "scrape_configs: [{job_name: a, native_histogram_min_bucket_factor: -1}]",
            "native_histogram_min_bucket_factor must not be negative",
        );
        check("global: {sample_limit: -1}", "sample_limit");
    }
}
