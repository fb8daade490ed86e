//! End to end: `ScrapeManager` scraping a real `prometheus-node-exporter` and in-test axum
//! fixtures (OpenMetrics, gzip, basic auth), into `MemStorage`, with the targets API served over
//! HTTP, target death, reload and shutdown staleness.

use crate::server::peer::Peer;
use argus::config::Config;
use argus::scrape::ScrapeManager;
use argus_storage::testing::MemStorage;
use argus_storage::{Labels, is_stale_nan};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OM_BODY: &str = "# TYPE fixture_requests counter\n\
# HELP fixture_requests Requests served.\n\
fixture_requests_total{path=\"/\"} 17 # {trace_id=\"abc\"} 1 1700000000.5\n\
fixture_requests_created{path=\"/\"} 1700000000\n\
# TYPE fixture_temp_celsius gauge\n\
# UNIT fixture_temp_celsius celsius\n\
fixture_temp_celsius 21.5\n\
# EOF\n";

/// Serves OpenMetrics at `/om` (recording the Accept header), gzip text at `/gz`, text behind
/// basic auth at `/auth`.
async fn fixture() -> (SocketAddr, Arc<parking_lot::Mutex<String>>) {
    let accept = Arc::new(parking_lot::Mutex::new(String::new()));
    let seen = accept.clone();
    let app = axum::Router::new()
        .route(
            "/om",
            get(move |h: HeaderMap| {
                let seen = seen.clone();
                async move {
                    *seen.lock() = h
                        .get(header::ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        OM_BODY,
                    )
                }
            }),
        )
        .route(
            "/gz",
            get(|| async {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                let mut body = String::new();
                for i in 0..500 {
                    body.push_str(&format!("gz_series{{i=\"{i}\"}} {i}\n"));
                }
                enc.write_all(body.as_bytes()).unwrap();
                (
                    [
                        (header::CONTENT_TYPE, "text/plain; version=0.0.4"),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    enc.finish().unwrap(),
                )
            }),
        )
        .route(
            "/auth",
            get(|h: HeaderMap| async move {
                // "user:secret" in base64.
                if h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
                    == Some("Basic dXNlcjpzZWNyZXQ=")
                {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        "authed 1\n",
                    )
                        .into_response()
                } else {
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, accept)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct NodeExporter {
    child: Peer,
    addr: String,
}

fn start_node_exporter() -> Option<NodeExporter> {
    let bin = "/usr/bin/prometheus-node-exporter";
    if !crate::server::peer::installed(bin, "prometheus-node-exporter", "node_exporter part") {
        return None;
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(bin)
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let ne = NodeExporter {
        child: Peer(child),
        addr,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&ne.addr).is_err() {
        if Instant::now() > deadline {
            crate::missing(
                "node_exporter part",
                &format!("it did not start listening on {}", ne.addr),
            );
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(ne)
}

/// Samples of the series with `name` and `job`.
fn points(s: &MemStorage, name: &str, job: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
    s.dump()
        .into_iter()
        .filter(|(l, _)| l.metric_name() == Some(name) && l.get("job") == Some(job))
        .collect()
}

fn last(s: &MemStorage, name: &str, job: &str) -> Option<f64> {
    points(s, name, job)
        .first()
        .and_then(|(_, p)| p.last())
        .map(|p| p.1)
}

async fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_json(url: &str) -> serde_json::Value {
    let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_node_exporter_and_fixtures() {
    let (fx, accept) = fixture().await;
    let ne = start_node_exporter();
    let node_job = ne.as_ref().map_or(String::new(), |ne| {
        format!(
            "  - job_name: node\n    scrape_interval: 2s\n    scrape_timeout: 1900ms\n    \
             static_configs: [{{targets: ['{}']}}]\n",
            ne.addr
        )
    });
    let yaml = format!(
        r#"
global: {{scrape_interval: 500ms, scrape_timeout: 450ms}}
scrape_configs:
{node_job}  - job_name: om
    metrics_path: /om
    static_configs: [{{targets: ['{fx}'], labels: {{env: test}}}}]
  - job_name: gz
    metrics_path: /gz
    metric_relabel_configs: [{{source_labels: [i], regex: '4..', action: drop}}]
    static_configs: [{{targets: ['{fx}']}}]
  - job_name: auth
    metrics_path: /auth
    basic_auth: {{username: user, password: secret}}
    static_configs: [{{targets: ['{fx}']}}]
  - job_name: noauth
    metrics_path: /auth
    static_configs: [{{targets: ['{fx}']}}]
  - job_name: limited
    metrics_path: /gz
    sample_limit: 10
    static_configs: [{{targets: ['{fx}']}}]
  - job_name: gzlimit
    metrics_path: /gz
    body_size_limit: 5KB
    static_configs: [{{targets: ['{fx}']}}]
  - job_name: dropper
    relabel_configs: [{{source_labels: [__address__], regex: '.*', action: drop}}]
    static_configs: [{{targets: ['{fx}']}}]
"#
    );
    let cfg: Config = serde_yaml_ng::from_str(&yaml).unwrap();
    let storage = MemStorage::new();
    let m = ScrapeManager::new(Arc::new(storage.clone()));
    m.apply_config(&cfg).await.unwrap();

    // The targets API over real HTTP.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = l.local_addr().unwrap();
    let router = argus::api::targets::router(&m);
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });

    wait_for("om, gz and auth up", 10, || {
        ["om", "gz", "auth"]
            .iter()
            .all(|j| last(&storage, "up", j) == Some(1.0))
    })
    .await;
    wait_for("noauth, limited and gzlimit down", 10, || {
        ["noauth", "limited", "gzlimit"]
            .iter()
            .all(|j| last(&storage, "up", j) == Some(0.0))
    })
    .await;

    // Accept negotiation as Prometheus.
    assert!(
        accept
            .lock()
            .starts_with("application/openmetrics-text;version=1.0.0"),
        "accept: {}",
        accept.lock()
    );
    // OpenMetrics: counter with exemplar (dropped cleanly), _created stored, unit family.
    let req = points(&storage, "fixture_requests_total", "om");
    assert_eq!(req.len(), 1);
    assert_eq!(req[0].0.get("env"), Some("test"));
    assert_eq!(req[0].0.get("instance"), Some(fx.to_string().as_str()));
    assert_eq!(req[0].1.last().map(|p| p.1), Some(17.0));
    assert_eq!(
        last(&storage, "fixture_requests_created", "om"),
        Some(1_700_000_000.0)
    );
    assert_eq!(last(&storage, "fixture_temp_celsius", "om"), Some(21.5));
    assert_eq!(last(&storage, "scrape_samples_scraped", "om"), Some(3.0));
    // gzip body, metric relabeling dropped i=400..499.
    assert_eq!(last(&storage, "scrape_samples_scraped", "gz"), Some(500.0));
    assert_eq!(
        last(&storage, "scrape_samples_post_metric_relabeling", "gz"),
        Some(400.0)
    );
    assert_eq!(points(&storage, "gz_series", "gz").len(), 400);
    assert_eq!(last(&storage, "authed", "auth"), Some(1.0));
    assert!(last(&storage, "scrape_duration_seconds", "om").is_some_and(|d| d > 0.0));
    assert!(
        points(&storage, "gz_series", "limited").is_empty(),
        "sample limit: nothing stored"
    );
    // The limit bounds the decompressed body (~11 KB; ~2 KB sent), as Prometheus's does.
    assert_eq!(last(&storage, "up", "gzlimit"), Some(0.0));
    assert!(
        points(&storage, "gz_series", "gzlimit").is_empty(),
        "body size limit: nothing stored"
    );

    let t = get_json(&format!("http://{api}/api/v1/targets")).await;
    assert_eq!(t["status"], "success");
    let active = t["data"]["activeTargets"].as_array().unwrap();
    let by_job = |j: &str| {
        active
            .iter()
            .find(|a| a["labels"]["job"] == j)
            .unwrap_or_else(|| panic!("no target for {j}: {t}"))
            .clone()
    };
    let om = by_job("om");
    assert_eq!(om["health"], "up");
    assert_eq!(om["scrapePool"], "om");
    assert_eq!(om["scrapeUrl"], format!("http://{fx}/om"));
    assert_eq!(om["lastError"], "");
    assert_eq!(om["scrapeInterval"], "500ms");
    assert_eq!(om["scrapeTimeout"], "450ms");
    assert_eq!(om["discoveredLabels"]["__address__"], fx.to_string());
    assert_eq!(om["discoveredLabels"]["__metrics_path__"], "/om");
    assert!(om["labels"].get("__address__").is_none());
    assert!(om["lastScrape"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        by_job("noauth")["lastError"],
        "server returned HTTP status 401 Unauthorized"
    );
    assert_eq!(by_job("noauth")["health"], "down");
    assert_eq!(by_job("limited")["lastError"], "sample limit exceeded");
    let dropped = t["data"]["droppedTargets"].as_array().unwrap();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["scrapePool"], "dropper");
    assert_eq!(
        dropped[0]["discoveredLabels"]["__address__"],
        fx.to_string()
    );
    let only_dropped = get_json(&format!("http://{api}/api/v1/targets?state=dropped")).await;
    assert!(
        only_dropped["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        only_dropped["data"]["droppedTargets"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Metadata APIs.
    let md = get_json(&format!(
        "http://{api}/api/v1/targets/metadata?match_target={{job=\"om\"}}&metric=fixture_temp_celsius"
    ))
    .await;
    assert_eq!(md["data"][0]["type"], "gauge", "{md}");
    assert_eq!(md["data"][0]["unit"], "celsius");
    assert_eq!(md["data"][0]["target"]["job"], "om");
    let md = get_json(&format!(
        "http://{api}/api/v1/metadata?metric=fixture_requests"
    ))
    .await;
    assert_eq!(md["data"]["fixture_requests"][0]["type"], "counter", "{md}");
    assert_eq!(
        md["data"]["fixture_requests"][0]["help"],
        "Requests served."
    );

    if let Some(mut ne) = ne {
        wait_for("node up", 15, || last(&storage, "up", "node") == Some(1.0)).await;
        let cpu = points(&storage, "node_cpu_seconds_total", "node");
        assert!(!cpu.is_empty(), "node_cpu_seconds_total scraped");
        assert!(points(&storage, "node_exporter_build_info", "node").len() == 1);
        let md = get_json(&format!(
            "http://{api}/api/v1/metadata?metric=node_cpu_seconds_total"
        ))
        .await;
        assert_eq!(
            md["data"]["node_cpu_seconds_total"][0]["type"], "counter",
            "{md}"
        );
        // Kill the exporter: up goes to 0 and every node series gets a stale marker.
        ne.child.0.kill().unwrap();
        ne.child.0.wait().unwrap();
        wait_for("node down", 10, || {
            last(&storage, "up", "node") == Some(0.0)
        })
        .await;
        let cpu = points(&storage, "node_cpu_seconds_total", "node");
        assert!(
            cpu.iter()
                .all(|(_, p)| p.last().is_some_and(|x| is_stale_nan(x.1))),
            "every node_cpu series ends with a stale marker"
        );
        let t = get_json(&format!("http://{api}/api/v1/targets?state=active")).await;
        let node = t["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["job"] == "node")
            .unwrap()
            .clone();
        assert_eq!(node["health"], "down");
        let err = node["lastError"].as_str().unwrap();
        assert!(
            err.starts_with(&format!("Get \"http://{}/metrics\": ", ne.addr)),
            "{err}"
        );
    }

    // Reload without the om job: after about two intervals its series go stale; the other
    // pools keep running.
    let mut cfg2 = cfg.clone();
    cfg2.scrape_configs.retain(|j| j.job_name != "om");
    let gz_before = points(&storage, "up", "gz")[0].1.len();
    m.apply_config(&cfg2).await.unwrap();
    wait_for("om stale after removal", 5, || {
        points(&storage, "fixture_temp_celsius", "om")[0]
            .1
            .last()
            .is_some_and(|p| is_stale_nan(p.1))
    })
    .await;
    assert!(
        points(&storage, "up", "om")[0]
            .1
            .last()
            .is_some_and(|p| is_stale_nan(p.1)),
        "report series of a removed target are stale too"
    );
    assert!(
        points(&storage, "up", "gz")[0].1.len() > gz_before,
        "gz pool kept scraping"
    );

    // Shutdown: stale markers for everything still scraped.
    m.stop().await;
    for (l, p) in points(&storage, "gz_series", "gz") {
        assert!(
            p.last().is_some_and(|x| is_stale_nan(x.1)),
            "{l} not stale after stop"
        );
    }
    assert!(
        points(&storage, "up", "gz")[0]
            .1
            .last()
            .is_some_and(|p| is_stale_nan(p.1))
    );
    assert!(
        m.apply_config(&cfg).await.is_err(),
        "a stopped manager refuses configs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_targets_are_scraped() {
    let (fx, _) = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.yml"),
        format!("- targets: ['{fx}']\n  labels: {{team: a}}\n"),
    )
    .unwrap();
    let yaml = format!(
        "global: {{scrape_interval: 200ms, scrape_timeout: 150ms}}\nscrape_configs:\n  \
         - job_name: files\n    metrics_path: /om\n    file_sd_configs: [{{files: ['{}/*.yml']}}]\n    \
         relabel_configs: [{{source_labels: [__meta_filepath], regex: '.*/(.*)', target_label: file}}]\n",
        dir.path().display()
    );
    let cfg: Config = serde_yaml_ng::from_str(&yaml).unwrap();
    let storage = MemStorage::new();
    let m = ScrapeManager::new(Arc::new(storage.clone()));
    m.apply_config(&cfg).await.unwrap();
    wait_for("file target up", 10, || {
        last(&storage, "up", "files") == Some(1.0)
    })
    .await;
    let up = points(&storage, "up", "files");
    assert_eq!(up[0].0.get("team"), Some("a"));
    assert_eq!(up[0].0.get("file"), Some("t.yml"));
    assert!(up[0].0.get("__meta_filepath").is_none());
    m.stop().await;
}

#[tokio::test]
async fn rejects_invalid_configs() {
    let m = ScrapeManager::new(Arc::new(MemStorage::new()));
    let check = |yaml: &str| serde_yaml_ng::from_str::<Config>(yaml).unwrap();
    let e = m
        .apply_config(&check(
            "scrape_configs: [{job_name: a, scrape_interval: 1s, scrape_timeout: 2s}]",
        ))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("scrape timeout greater than scrape interval"),
        "{e}"
    );
    let e = m
        .apply_config(&check("scrape_configs: [{job_name: a}, {job_name: a}]"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("multiple scrape configs"), "{e}");
    m.stop().await;
}
