//! The classic `prometheus.io/*` annotation config (`testdata/kubernetes-annotations.yml`)
//! run end to end: discovery against the fake API server, then target label population and
//! the job's relabel rules, down to the scrape URLs and final target labels.

use super::fake::FakeApi;
use super::{FIRST, Sd, fixtures};
use argus::config::scrape::ScrapeConfig;
use argus::config::{Config, GlobalConfig, relabel};
use argus::discovery::TargetGroup;
use argus_storage::Labels;
use std::collections::{BTreeMap, BTreeSet};

/// Prometheus's `PopulateLabels` for one discovered target, reduced to what the test needs:
/// defaults (`job`, `__scheme__`, `__metrics_path__`, intervals, `params`) unless discovery
/// set them, relabeling, then the URL and the final labels (`instance` = address).
fn populate(
    job: &ScrapeConfig,
    g: &GlobalConfig,
    group: &TargetGroup,
    target: &BTreeMap<String, String>,
) -> Option<(String, String)> {
    let mut m: BTreeMap<String, String> = group.labels.clone();
    m.extend(target.clone());
    let defaults = [
        ("job", job.job_name.clone()),
        ("__scheme__", job.scheme.clone()),
        ("__metrics_path__", job.metrics_path.clone()),
        (
            "__scrape_interval__",
            argus::config::PromDuration(job.interval(g)).to_string(),
        ),
        (
            "__scrape_timeout__",
            argus::config::PromDuration(job.timeout(g)).to_string(),
        ),
    ];
    for (k, v) in defaults {
        m.entry(k.to_string()).or_insert(v);
    }
    for (k, vs) in &job.params {
        if let Some(v) = vs.first() {
            m.entry(format!("__param_{k}")).or_insert_with(|| v.clone());
        }
    }
    let pairs: Vec<(String, String)> = m.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let mut lset = Labels::from_pairs(&pairs);
    if !relabel::process(&mut lset, &job.relabel_configs) {
        return None;
    }
    let addr = lset.get("__address__")?.to_string();
    let mut url = format!(
        "{}://{addr}{}",
        lset.get("__scheme__").unwrap_or("http"),
        lset.get("__metrics_path__").unwrap_or("/metrics")
    );
    let params: Vec<String> = lset
        .iter()
        .filter_map(|l| {
            l.name
                .strip_prefix("__param_")
                .map(|p| format!("{p}={}", l.value))
        })
        .collect();
    if !params.is_empty() {
        url = format!("{url}?{}", params.join("&"));
    }
    let mut out: Vec<String> = lset
        .iter()
        .filter(|l| !l.name.starts_with("__"))
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    if lset.get("instance").is_none() {
        out.push(format!("instance={addr:?}"));
        out.sort();
    }
    Some((url, out.join(",")))
}

#[tokio::test]
async fn classic_annotation_config_relabels_to_expected_urls() {
    let path = format!(
        "{}/testdata/kubernetes-annotations.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("read config");
    let cfg: Config = serde_yaml_ng::from_str(&text).expect("a valid Prometheus config");
    assert_eq!(cfg.scrape_configs.len(), 2);
    let fake = FakeApi::start(&fixtures()).await;
    let mut got: BTreeSet<(String, String)> = BTreeSet::new();
    for job in &cfg.scrape_configs {
        job.validate(&cfg.global).expect("valid job");
        assert_eq!(job.kubernetes_sd_configs.len(), 1);
        let mut sd_cfg = job.kubernetes_sd_configs[0].clone();
        sd_cfg.validate().expect("valid in-cluster SD config");
        sd_cfg.api_server = Some(fake.url());
        let mut sd = Sd::start_cfg(sd_cfg);
        let groups = sd.next(FIRST).await;
        for g in &groups {
            for t in &g.targets {
                if let Some(x) = populate(job, &cfg.global, g, t) {
                    got.insert(x);
                }
            }
        }
    }
    let pod_labels = r#"app_kubernetes_io_name="web",instance="10.244.1.5:9102",job="kubernetes-pods",namespace="default",node="node-1",pod="web-7d9c6b5f4-x2k8p",pod_template_hash="7d9c6b5f4""#;
    let svc = |ip: &str, node: Option<&str>| {
        let node = node.map(|n| format!(",node={n:?}")).unwrap_or_default();
        (
            format!("https://{ip}:9102/svc-metrics"),
            format!(
                r#"app_kubernetes_io_name="web",instance="{ip}:9102",job="kubernetes-service-endpoints",namespace="default"{node},service="web""#
            ),
        )
    };
    let want: BTreeSet<(String, String)> = [
        // The annotated pod: its three non-init containers collapse to one target at the
        // annotated port; the unannotated pod and the init container are dropped.
        (
            "http://10.244.1.5:9102/custom/metrics?format=prometheus".to_string(),
            pod_labels.to_string(),
        ),
        // The annotated service's endpoints, each moved to the annotated port over https;
        // the backing pods give `node`.
        svc("10.244.1.5", Some("node-1")),
        svc("10.244.2.7", Some("node-2")),
        svc("192.168.1.50", None),
    ]
    .into_iter()
    .collect();
    if got != want {
        panic!("relabeled targets\n--- expected\n{want:#?}\n--- got\n{got:#?}");
    }
}
