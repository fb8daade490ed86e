//! kubernetes integration tests (owner: kubernetes helper).
//!
//! Every test runs Kubernetes SD against [`fake::FakeApi`], a loopback server speaking the
//! real list+watch protocol, fed with the API-shaped objects in `testdata/k8s/`. Expected
//! groups live in `testdata/k8s/expected/<role>.json` (set `ARGUS_BLESS=1` to rewrite them
//! after a reviewed change).

mod annotations;
mod fake;

use argus::discovery::TargetGroup;
use argus::discovery::kubernetes::{KubernetesSdConfig, run};
use fake::{FakeApi, fixture};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

const ALL_FIXTURES: &[&str] = &[
    "pod-web.json",
    "pod-web-2.json",
    "pod-batch.json",
    "node-1.json",
    "node-2.json",
    "service-web.json",
    "service-ext.json",
    "service-lb.json",
    "endpoints-web.json",
    "endpointslice-web.json",
    "namespace-default.json",
    "replicaset-web.json",
    "job-report.json",
];

fn fixtures() -> Vec<Value> {
    ALL_FIXTURES.iter().map(|f| fixture(f)).collect()
}

/// Discovery running against `fake` with `yaml` (an SD config without `api_server`).
struct Sd {
    rx: mpsc::Receiver<Vec<TargetGroup>>,
    /// Current view: source → group, as a consumer applying the updates would hold it.
    groups: BTreeMap<String, TargetGroup>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sd {
    fn start(fake: &FakeApi, yaml: &str) -> Sd {
        let yaml = format!("{yaml}\napi_server: {}\n", fake.url());
        let cfg: KubernetesSdConfig = serde_yaml_ng::from_str(&yaml).expect("valid SD yaml");
        cfg.validate().expect("valid SD config");
        Sd::start_cfg(cfg)
    }

    fn start_cfg(cfg: KubernetesSdConfig) -> Sd {
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(run(cfg, tx));
        Sd {
            rx,
            groups: BTreeMap::new(),
            task,
        }
    }

    /// Next update, applied to `self.groups`; panics after `within`.
    async fn next(&mut self, within: Duration) -> Vec<TargetGroup> {
        let msg = tokio::time::timeout(within, self.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no target-group update within {within:?}"))
            .expect("discovery ended");
        for g in &msg {
            if g.targets.is_empty() {
                self.groups.remove(&g.source);
            } else {
                self.groups.insert(g.source.clone(), g.clone());
            }
        }
        msg
    }

    /// Asserts that no update arrives within `d`.
    async fn quiet(&mut self, d: Duration) {
        if let Ok(Some(msg)) = tokio::time::timeout(d, self.rx.recv()).await {
            panic!("unexpected update: {:#}", groups_json(&msg));
        }
    }
}

fn groups_json(groups: &[TargetGroup]) -> Value {
    Value::Array(
        groups
            .iter()
            .map(|g| json!({"source": g.source, "labels": g.labels, "targets": g.targets}))
            .collect(),
    )
}

fn assert_json_eq(want: &Value, got: &Value, what: &str) {
    if want != got {
        panic!(
            "{what} mismatch\n--- expected\n{:#}\n--- got\n{:#}",
            want, got
        );
    }
}

/// Compares `groups` with `testdata/k8s/expected/<name>.json`.
fn check_expected(name: &str, groups: &[TargetGroup]) {
    let path = format!(
        "{}/testdata/k8s/expected/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let got = groups_json(groups);
    if std::env::var_os("ARGUS_BLESS").is_some() {
        std::fs::write(&path, format!("{got:#}\n")).expect("write expected");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let want: Value = serde_json::from_str(&text).expect("expected json");
    assert_json_eq(&want, &got, name);
}

const FIRST: Duration = Duration::from_secs(10);
const FAST: Duration = Duration::from_secs(2);

async fn initial_groups(yaml: &str) -> Vec<TargetGroup> {
    let fake = FakeApi::start(&fixtures()).await;
    let mut sd = Sd::start(&fake, yaml);
    let groups = sd.next(FIRST).await;
    sd.quiet(Duration::from_millis(300)).await;
    groups
}

#[tokio::test]
async fn pod_role_groups() {
    let groups = initial_groups("role: pod").await;
    check_expected("pod", &groups);
}

#[tokio::test]
async fn pod_role_with_node_and_job_metadata() {
    let groups = initial_groups("role: pod\nattach_metadata:\n  node: true\n  job: true").await;
    check_expected("pod-attach-node", &groups);
}

#[tokio::test]
async fn endpoints_role_groups() {
    let groups = initial_groups("role: endpoints").await;
    check_expected("endpoints", &groups);
}

#[tokio::test]
async fn endpointslice_role_groups() {
    let groups = initial_groups("role: endpointslice\nattach_metadata:\n  node: true").await;
    check_expected("endpointslice", &groups);
}

#[tokio::test]
async fn service_role_groups() {
    let groups = initial_groups("role: service").await;
    check_expected("service", &groups);
}

#[tokio::test]
async fn node_role_groups() {
    let groups = initial_groups("role: node").await;
    check_expected("node", &groups);
}

fn annotated(mut pod: Value, annotations: Value) -> Value {
    pod["metadata"]["annotations"] = annotations;
    pod
}

fn target_label<'a>(g: &'a TargetGroup, name: &str) -> Option<&'a str> {
    g.labels.get(name).map(String::as_str)
}

#[tokio::test]
async fn annotate_reannotate_delete_pod_within_2s() {
    let bare = annotated(fixture("pod-web.json"), json!({}));
    let fake = FakeApi::start(std::slice::from_ref(&bare)).await;
    let mut sd = Sd::start(&fake, "role: pod");
    let first = sd.next(FIRST).await;
    assert_eq!(first.len(), 1);
    let src = "pod/default/web-7d9c6b5f4-x2k8p";
    assert_eq!(first[0].source, src);
    assert_eq!(
        target_label(
            &first[0],
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape"
        ),
        None
    );

    fake.apply(annotated(
        bare.clone(),
        json!({"prometheus.io/scrape": "true", "prometheus.io/port": "9102"}),
    ));
    let up = sd.next(FAST).await;
    assert_eq!(up.len(), 1, "{:#}", groups_json(&up));
    let g = &up[0];
    assert_eq!(g.source, src);
    assert_eq!(
        target_label(g, "__meta_kubernetes_pod_annotation_prometheus_io_scrape"),
        Some("true")
    );
    assert_eq!(
        target_label(
            g,
            "__meta_kubernetes_pod_annotationpresent_prometheus_io_port"
        ),
        Some("true")
    );
    assert_eq!(g.targets.len(), 4, "2 ports + sidecar + init container");

    fake.apply(annotated(
        bare.clone(),
        json!({"prometheus.io/scrape": "false", "prometheus.io/path": "/m"}),
    ));
    let up = sd.next(FAST).await;
    assert_eq!(up.len(), 1);
    let g = &up[0];
    assert_eq!(
        target_label(g, "__meta_kubernetes_pod_annotation_prometheus_io_scrape"),
        Some("false")
    );
    assert_eq!(
        target_label(g, "__meta_kubernetes_pod_annotation_prometheus_io_path"),
        Some("/m")
    );
    assert_eq!(
        target_label(g, "__meta_kubernetes_pod_annotation_prometheus_io_port"),
        None,
        "removed annotation must disappear"
    );

    // A status-only update that changes nothing visible sends nothing.
    let mut same = bare.clone();
    same["metadata"]["annotations"] = json!({"prometheus.io/scrape": "false",
        "prometheus.io/path": "/m"});
    same["status"]["startTime"] = json!("2026-11-21T00:00:00Z");
    fake.apply(same);
    sd.quiet(Duration::from_millis(500)).await;

    fake.delete("Pod", "default", "web-7d9c6b5f4-x2k8p");
    let up = sd.next(FAST).await;
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].source, src);
    assert!(
        up[0].targets.is_empty(),
        "deleted pod = group without targets"
    );
    assert!(sd.groups.is_empty());
}

#[tokio::test]
async fn expired_resource_version_relists_without_losing_targets() {
    let fake = FakeApi::start(&[
        fixture("pod-web.json"),
        fixture("pod-web-2.json"),
        fixture("pod-batch.json"),
    ])
    .await;
    let mut sd = Sd::start(&fake, "role: pod");
    let first = sd.next(FIRST).await;
    let sources: Vec<&str> = first.iter().map(|g| g.source.as_str()).collect();
    // The batch pod has no IP yet: no group.
    assert_eq!(
        sources,
        [
            "pod/default/web-7d9c6b5f4-q9z7w",
            "pod/default/web-7d9c6b5f4-x2k8p"
        ]
    );
    let lists_before = fake.list_count("pods");

    // While the watch history is lost: web-2 is deleted, the batch pod gets an IP.
    fake.delete_silently("Pod", "default", "web-7d9c6b5f4-q9z7w");
    let mut batch = fixture("pod-batch.json");
    batch["status"]["podIP"] = json!("10.244.2.9");
    batch["status"]["phase"] = json!("Running");
    fake.apply_silently(batch);
    fake.expire_history(); // ERROR 410 on the open watch

    let up = sd.next(Duration::from_secs(5)).await;
    let summary: Vec<(String, usize)> = up
        .iter()
        .map(|g| (g.source.clone(), g.targets.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("pod/default/web-7d9c6b5f4-q9z7w".to_string(), 0),
            ("pod/jobs/report-29123456-abcde".to_string(), 1),
        ],
        "only the truly deleted pod is removed; the unchanged one is not re-sent"
    );
    assert!(sd.groups.contains_key("pod/default/web-7d9c6b5f4-x2k8p"));
    assert!(
        fake.list_count("pods") > lists_before,
        "410 must cause a re-list"
    );

    // The watch works again after the re-list.
    fake.delete("Pod", "jobs", "report-29123456-abcde");
    let up = sd.next(FAST).await;
    assert_eq!(up.len(), 1);
    assert!(up[0].targets.is_empty());
}

#[tokio::test]
async fn watch_request_after_compaction_gets_410_and_relists() {
    let fake = FakeApi::start(&[fixture("pod-web.json"), fixture("pod-web-2.json")]).await;
    let mut sd = Sd::start(&fake, "role: pod");
    assert_eq!(sd.next(FIRST).await.len(), 2);
    // History lost and the connection cut: the re-watch from the old resourceVersion is
    // answered 200 + ERROR 410 at once.
    fake.delete_silently("Pod", "default", "web-7d9c6b5f4-q9z7w");
    fake.expire_history();
    fake.cut_watches();
    let up = sd.next(Duration::from_secs(5)).await;
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].source, "pod/default/web-7d9c6b5f4-q9z7w");
    assert!(up[0].targets.is_empty());
    assert_eq!(sd.groups.len(), 1);
}

#[tokio::test]
async fn dropped_watch_connection_resumes() {
    let fake = FakeApi::start(&[fixture("pod-web.json")]).await;
    let mut sd = Sd::start(&fake, "role: pod");
    assert_eq!(sd.next(FIRST).await.len(), 1);
    fake.cut_watches();
    // Changes made while the client reconnects arrive through the resumed watch.
    fake.apply(fixture("pod-web-2.json"));
    let up = sd.next(Duration::from_secs(5)).await;
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].source, "pod/default/web-7d9c6b5f4-q9z7w");
    assert_eq!(sd.groups.len(), 2, "the first pod is kept");
}

#[tokio::test]
async fn api_server_restart_with_503_burst() {
    let fake = FakeApi::start(&[fixture("pod-web.json"), fixture("pod-web-2.json")]).await;
    let mut sd = Sd::start(&fake, "role: endpoints");
    // No Endpoints objects yet: the first message is empty (initial list complete).
    assert!(sd.next(FIRST).await.is_empty());
    fake.restart(Duration::from_secs(2));
    fake.apply(fixture("service-web.json"));
    fake.apply(fixture("endpoints-web.json"));
    // Backoff (0.8 s, 1.6 s, … with jitter) brings the watches back after the burst.
    let up = sd.next(Duration::from_secs(15)).await;
    assert_eq!(up.len(), 1, "{:#}", groups_json(&up));
    assert_eq!(up[0].source, "endpoints/default/web");
    // Three watchers (endpoints, services, pods) retried during the 2 s outage with
    // exponential backoff (kube's retry layer doubles from 5 ms, then the watcher's 0.8 s
    // backoff): about nine attempts each, not a busy loop.
    let refused = fake.unavailable_answers();
    assert!(
        (3..=40).contains(&refused),
        "{refused} requests answered 503: {:#?}",
        fake.requests()
    );
    // Wait until every watcher is back, then check that nothing else changes.
    sd.quiet(Duration::from_secs(1)).await;
    assert!(sd.groups.contains_key("endpoints/default/web"));
}

#[tokio::test]
async fn namespaces_and_selectors_reach_the_api() {
    let fake = FakeApi::start(&fixtures()).await;
    let mut sd = Sd::start(
        &fake,
        "role: pod\nnamespaces:\n  names: [default]\nselectors:\n  - role: pod\n    \
         label: app.kubernetes.io/name=web\n    field: spec.nodeName=node-1",
    );
    let first = sd.next(FIRST).await;
    let sources: Vec<&str> = first.iter().map(|g| g.source.as_str()).collect();
    assert_eq!(sources, ["pod/default/web-7d9c6b5f4-x2k8p"]);
    let reqs = fake.requests();
    assert!(
        reqs.iter().any(|r| r.starts_with("LIST pods ns=default ")
            && r.contains("label=app.kubernetes.io/name=web")
            && r.contains("field=spec.nodeName=node-1")),
        "{reqs:#?}"
    );
    assert!(
        reqs.iter().all(|r| r.contains("ns=default")),
        "only the default namespace is listed: {reqs:#?}"
    );
}

#[tokio::test]
async fn kubeconfig_file_and_bearer_token() {
    let fake = FakeApi::start(&[fixture("node-1.json")]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig.yml");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    \
             server: {}\nusers:\n- name: argus\n  user:\n    token: s3cr3t\ncontexts:\n\
             - name: fake\n  context:\n    cluster: fake\n    user: argus\n\
             current-context: fake\n",
            fake.url()
        ),
    )
    .expect("write kubeconfig");
    let cfg: KubernetesSdConfig =
        serde_yaml_ng::from_str(&format!("role: node\nkubeconfig_file: {}\n", kc.display()))
            .expect("yaml");
    let mut sd = Sd::start_cfg(cfg);
    assert_eq!(sd.next(FIRST).await.len(), 1);
    let reqs = fake.requests();
    assert!(
        reqs.iter().all(|r| r.ends_with("auth=Bearer s3cr3t")),
        "{reqs:#?}"
    );

    // api_server + bearer_token_file.
    let tok = dir.path().join("token");
    std::fs::write(&tok, "t0k3n\n").expect("write token");
    let mut sd = Sd::start(
        &fake,
        &format!("role: node\nbearer_token_file: {}", tok.display()),
    );
    assert_eq!(sd.next(FIRST).await.len(), 1);
    let reqs = fake.requests();
    assert!(
        reqs.iter().any(|r| r.ends_with("auth=Bearer t0k3n")),
        "{reqs:#?}"
    );
}

#[tokio::test]
async fn stops_when_the_channel_closes() {
    let fake = FakeApi::start(&[fixture("node-1.json")]).await;
    let cfg: KubernetesSdConfig =
        serde_yaml_ng::from_str(&format!("role: node\napi_server: {}\n", fake.url()))
            .expect("yaml");
    let (tx, mut rx) = mpsc::channel(1);
    let task = tokio::spawn(run(cfg, tx));
    assert!(rx.recv().await.is_some());
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("run returns after the receiver is dropped")
        .expect("no panic");
}

#[tokio::test]
async fn namespace_metadata_follows_namespace_changes() {
    let fake = FakeApi::start(&fixtures()).await;
    let mut sd = Sd::start(&fake, "role: service\nattach_metadata:\n  namespace: true");
    let first = sd.next(FIRST).await;
    assert_eq!(first.len(), 3);
    let web = &sd.groups["svc/default/web"];
    assert_eq!(
        target_label(web, "__meta_kubernetes_namespace_label_team"),
        Some("platform")
    );
    assert_eq!(
        target_label(
            web,
            "__meta_kubernetes_namespace_labelpresent_kubernetes_io_metadata_name"
        ),
        Some("true")
    );
    assert_eq!(
        target_label(
            web,
            "__meta_kubernetes_namespace_annotation_owner_example_com_contact"
        ),
        Some("platform@example.com")
    );
    let edge = &sd.groups["svc/edge/ingress"];
    assert!(
        !edge
            .labels
            .keys()
            .any(|k| k.starts_with("__meta_kubernetes_namespace_label")),
        "namespace edge is unknown: no namespace metadata"
    );

    let mut ns = fixture("namespace-default.json");
    ns["metadata"]["labels"]["team"] = json!("storage");
    fake.apply(ns);
    let up = sd.next(FAST).await;
    let sources: Vec<&str> = up.iter().map(|g| g.source.as_str()).collect();
    assert_eq!(sources, ["svc/default/upstream", "svc/default/web"]);
    assert!(
        up.iter().all(|g| {
            target_label(g, "__meta_kubernetes_namespace_label_team") == Some("storage")
        })
    );
}

#[tokio::test]
async fn deployment_and_cronjob_names_from_owners() {
    let fake = FakeApi::start(&fixtures()).await;
    let mut sd = Sd::start(
        &fake,
        "role: pod\nattach_metadata:\n  deployment: true\n  job: true\n  cronjob: true",
    );
    sd.next(FIRST).await;
    let web = &sd.groups["pod/default/web-7d9c6b5f4-x2k8p"];
    assert_eq!(
        target_label(web, "__meta_kubernetes_pod_deployment_name"),
        Some("web")
    );
    // The batch pod gets its IP: its Job is owned by CronJob `report`.
    let mut batch = fixture("pod-batch.json");
    batch["status"]["podIP"] = json!("10.244.2.9");
    fake.apply(batch);
    let up = sd.next(FAST).await;
    assert_eq!(up.len(), 1);
    assert_eq!(
        target_label(&up[0], "__meta_kubernetes_pod_job_name"),
        Some("report-29123456")
    );
    assert_eq!(
        target_label(&up[0], "__meta_kubernetes_pod_cronjob_name"),
        Some("report")
    );
    // Losing the ReplicaSet's Deployment owner removes the label within 2 s.
    let mut rs = fixture("replicaset-web.json");
    rs["metadata"]["ownerReferences"] = json!([]);
    fake.apply(rs);
    let up = sd.next(FAST).await;
    assert!(
        up.iter()
            .all(|g| target_label(g, "__meta_kubernetes_pod_deployment_name").is_none())
    );
    assert_eq!(up.len(), 2, "both web pods are relabeled");
}
