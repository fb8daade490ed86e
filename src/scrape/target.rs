//! Targets: from a discovered label set to the labels, URL and timing of a scrape, as
//! Prometheus's `PopulateLabels`; plus each target's health, shown by `/api/v1/targets`.

use crate::config::relabel;
use crate::config::scrape::ScrapeConfig;
use crate::config::{GlobalConfig, PromDuration, parse_duration};
use argus_storage::{Label, Labels};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// `up`/`down`/`unknown`, as `/api/v1/targets` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Health {
    /// Not scraped yet.
    #[default]
    Unknown,
    /// Last scrape succeeded.
    Up,
    /// Last scrape failed.
    Down,
}

impl Health {
    /// API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// What the last scrape of a target did.
#[derive(Clone, Debug, Default)]
pub struct TargetStatus {
    /// Health after the last scrape.
    pub health: Health,
    /// Start of the last scrape.
    pub last_scrape: Option<SystemTime>,
    /// How long it took.
    pub last_duration: Duration,
    /// Empty when it succeeded.
    pub last_error: String,
}

/// HELP/TYPE/UNIT of one metric family as last scraped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `counter`, `gauge`, … (`unknown` when untyped).
    pub kind: String,
    /// HELP text.
    pub help: String,
    /// UNIT (OpenMetrics).
    pub unit: String,
}

/// One scrape target. Fields before `status` are immutable after construction.
#[derive(Debug)]
pub struct Target {
    /// Job (scrape pool) name.
    pub pool: String,
    /// Labels after target relabeling, `__`-prefixed ones included (`__address__`, …).
    pub labels: Labels,
    /// Labels before relabeling.
    pub discovered: Labels,
    /// Full scrape URL.
    pub url: String,
    /// Scrape interval (from `__scrape_interval__`).
    pub interval: Duration,
    /// Scrape timeout (from `__scrape_timeout__`).
    pub timeout: Duration,
    /// Health of the last scrape. Lock: this mutex (never held across I/O).
    pub status: Mutex<TargetStatus>,
    /// Metadata by family name from the last scrapes. Lock: this mutex.
    pub metadata: Mutex<Arc<BTreeMap<String, Metadata>>>,
}

impl Target {
    /// The target's public labels: those not starting with `__`. These go on every sample.
    pub fn public_labels(&self) -> impl Iterator<Item = &Label> {
        self.labels.iter().filter(|l| !l.name.starts_with("__"))
    }

    /// A stable hash of labels and URL that spreads start offsets.
    pub fn hash(&self) -> u64 {
        let mut h = self.labels.stable_hash();
        for b in self.url.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
}

/// A target dropped by relabeling, kept for the API.
#[derive(Clone, Debug)]
pub struct DroppedTarget {
    /// Labels before relabeling.
    pub discovered: Labels,
}

/// What [`populate`] made of one discovered label set.
#[derive(Debug)]
pub enum Populated {
    /// A target to scrape.
    Active(Box<Target>),
    /// Dropped by relabeling.
    Dropped(DroppedTarget),
}

/// Builds a target from a group's labels and one of its targets, as Prometheus's
/// `PopulateLabels`: defaults (`job`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`,
/// `__scrape_timeout__`, `__param_*`), relabeling, checks, `__meta_*` removal and `instance`
/// defaulting to `__address__`.
pub fn populate(
    group_labels: &BTreeMap<String, String>,
    target: &BTreeMap<String, String>,
    cfg: &ScrapeConfig,
    global: &GlobalConfig,
) -> Result<Populated, String> {
    let mut pairs: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in group_labels.iter().chain(target) {
        pairs.insert(k, v);
    }
    let interval = PromDuration(cfg.interval(global)).to_string();
    let timeout = PromDuration(cfg.timeout(global)).to_string();
    let defaults: [(&str, &str); 5] = [
        ("job", &cfg.job_name),
        ("__scrape_interval__", &interval),
        ("__scrape_timeout__", &timeout),
        ("__metrics_path__", &cfg.metrics_path),
        ("__scheme__", &cfg.scheme),
    ];
    let params: Vec<(String, &str)> = cfg
        .params
        .iter()
        .filter_map(|(k, v)| v.first().map(|f| (format!("__param_{k}"), f.as_str())))
        .collect();
    for (k, v) in defaults.iter().copied() {
        pairs.entry(k).or_insert(v);
    }
    for (k, v) in &params {
        pairs.entry(k.as_str()).or_insert(v);
    }
    let discovered = Labels::new(pairs.iter().map(|(k, v)| Label::new(*k, *v)).collect());
    let mut lset = discovered.clone();
    if !relabel::process(&mut lset, &cfg.relabel_configs) {
        return Ok(Populated::Dropped(DroppedTarget { discovered }));
    }
    let Some(addr) = lset.get("__address__").map(str::to_string) else {
        return Err("no address".into());
    };
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    let dur = |name: &str| -> Result<Duration, String> {
        let v = lset.get(name).unwrap_or("");
        parse_duration(v).map_err(|e| format!("error parsing {name} label: {e}"))
    };
    let interval = dur("__scrape_interval__")?;
    let timeout = dur("__scrape_timeout__")?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({} > {})",
            PromDuration(timeout),
            PromDuration(interval)
        ));
    }
    let metas: Vec<String> = lset
        .iter()
        .filter(|l| l.name.starts_with("__meta_"))
        .map(|l| l.name.clone())
        .collect();
    for m in metas {
        lset.remove(&m);
    }
    if lset.get("instance").is_none() {
        lset.set("instance", &addr);
    }
    let url = scrape_url(&lset);
    Ok(Populated::Active(Box::new(Target {
        pool: cfg.job_name.clone(),
        labels: lset,
        discovered,
        url,
        interval,
        timeout,
        status: Mutex::new(TargetStatus::default()),
        metadata: Mutex::new(Arc::default()),
    })))
}

/// `__scheme__://__address____metrics_path__?__param_*`.
fn scrape_url(l: &Labels) -> String {
    let mut url = format!(
        "{}://{}{}",
        l.get("__scheme__").unwrap_or("http"),
        l.get("__address__").unwrap_or(""),
        l.get("__metrics_path__").unwrap_or("")
    );
    let mut sep = '?';
    for p in l.iter() {
        if let Some(name) = p.name.strip_prefix("__param_") {
            url.push(sep);
            sep = '&';
            url.push_str(&query_escape(name));
            url.push('=');
            url.push_str(&query_escape(&p.value));
        }
    }
    url
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(yaml: &str) -> ScrapeConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn active(p: Result<Populated, String>) -> Target {
        match p {
            Ok(Populated::Active(t)) => *t,
            other => panic!("expected an active target, got {other:?}"),
        }
    }

    #[test]
    fn defaults_relabel_and_meta_removal() {
        let cfg = job(r#"
job_name: node
scrape_interval: 30s
scrape_timeout: 5s
params: {module: [if_mib], x: ["a b"]}
relabel_configs:
  - {source_labels: [__meta_dc], target_label: dc}
  - {source_labels: [__address__], regex: "(.*):9100", target_label: __address__, replacement: "${1}:9101"}
  - {target_label: __tmp_x, replacement: y}
"#);
        let g = GlobalConfig::default();
        let group = BTreeMap::from([("__meta_dc".to_string(), "eu".to_string())]);
        let t = active(populate(
            &group,
            &BTreeMap::from([("__address__".to_string(), "h:9100".to_string())]),
            &cfg,
            &g,
        ));
        assert_eq!(t.url, "http://h:9101/metrics?module=if_mib&x=a+b");
        assert_eq!(t.interval, Duration::from_secs(30));
        assert_eq!(t.timeout, Duration::from_secs(5));
        let public: Vec<(&str, &str)> = t
            .public_labels()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            public,
            vec![("dc", "eu"), ("instance", "h:9101"), ("job", "node")]
        );
        assert!(t.labels.get("__meta_dc").is_none(), "__meta_ dropped");
        assert_eq!(
            t.labels.get("__tmp_x"),
            Some("y"),
            "__tmp_ kept internally, never public"
        );
        assert_eq!(t.discovered.get("__meta_dc"), Some("eu"));
        assert_eq!(t.discovered.get("__address__"), Some("h:9100"));
        assert_eq!(t.discovered.get("__param_module"), Some("if_mib"));
    }

    #[test]
    fn relabel_can_change_scheme_path_interval() {
        let cfg = job(r#"
job_name: j
relabel_configs:
  - {target_label: __scheme__, replacement: https}
  - {target_label: __metrics_path__, replacement: /probe}
  - {target_label: __scrape_interval__, replacement: 10s}
  - {target_label: __scrape_timeout__, replacement: 2s}
  - {target_label: instance, replacement: custom}
"#);
        let t = active(populate(
            &BTreeMap::new(),
            &BTreeMap::from([("__address__".to_string(), "h:1".to_string())]),
            &cfg,
            &GlobalConfig::default(),
        ));
        assert_eq!(t.url, "https://h:1/probe");
        assert_eq!(t.interval, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(2));
        assert_eq!(t.labels.get("instance"), Some("custom"));
    }

    #[test]
    fn drops_and_errors() {
        let g = GlobalConfig::default();
        let addr = BTreeMap::from([("__address__".to_string(), "h:1".to_string())]);
        let cfg = job(
            "job_name: j\nrelabel_configs: [{source_labels: [__address__], regex: 'h:.*', action: drop}]",
        );
        assert!(matches!(
            populate(&BTreeMap::new(), &addr, &cfg, &g),
            Ok(Populated::Dropped(_))
        ));
        let cfg = job("job_name: j\nrelabel_configs: [{regex: __address__, action: labeldrop}]");
        assert_eq!(
            populate(&BTreeMap::new(), &addr, &cfg, &g).unwrap_err(),
            "no address"
        );
        let cfg = job(
            "job_name: j\nrelabel_configs: [{target_label: __scrape_timeout__, replacement: 2m}]",
        );
        let e = populate(&BTreeMap::new(), &addr, &cfg, &g).unwrap_err();
        assert!(e.contains("greater than scrape interval"), "{e}");
        let cfg = job(
            "job_name: j\nrelabel_configs: [{target_label: __scrape_interval__, replacement: soon}]",
        );
        let e = populate(&BTreeMap::new(), &addr, &cfg, &g).unwrap_err();
        assert!(e.contains("__scrape_interval__"), "{e}");
    }
}
