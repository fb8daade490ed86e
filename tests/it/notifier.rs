//! The Alertmanager notifier: the wire format against a fake Alertmanager (a tiny HTTP server in
//! the test), discovery through the `argus` binary (`/api/v1/alertmanagers`, reload, metrics),
//! and delivery to a real Alertmanager (Debian `prometheus-alertmanager`) whose webhook receiver
//! the test serves. The real-Alertmanager test fails under `CI=true` when the binary is missing.

use crate::server::harness;

// The Kubernetes helper's fake API server, reused as is.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "kubernetes/fake.rs"]
mod k8s_fake;

use crate::server::peer::Peer;
use argus::config::Config;
use argus::notifier::{Notifier, NotifierMetrics, Options};
use argus::rules::{AlertSender, OutgoingAlert};
use argus_storage::Labels;
use harness::{Argus, free_port, now_ms, try_request};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// One request received by [`Fake`].
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A minimal HTTP/1.1 server (keep-alive, `Content-Length` bodies) that records every request and
/// answers each with `status`. Stands in for Alertmanager, and serves Alertmanager's webhook.
struct Fake {
    addr: SocketAddr,
    reqs: Arc<Mutex<Vec<Received>>>,
}

impl Fake {
    fn start(status: u16) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let reqs = Arc::new(Mutex::new(Vec::new()));
        let r = reqs.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().map_while(Result::ok) {
                let r = r.clone();
                std::thread::spawn(move || serve(conn, status, &r));
            }
        });
        Fake { addr, reqs }
    }

    fn received(&self) -> Vec<Received> {
        self.reqs.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, status: u16, reqs: &Mutex<Vec<Received>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        reqs.lock().unwrap().push(Received {
            method,
            path,
            headers,
            body,
        });
        let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit` (then panics with `what`).
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alert(
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
    starts: i64,
    ends: i64,
) -> OutgoingAlert {
    OutgoingAlert {
        labels: Labels::from_pairs(labels),
        annotations: Labels::from_pairs(annotations),
        starts_at_ms: starts,
        ends_at_ms: ends,
        generator_url: "http://argus.example:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1".into(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn notifier(opts: Options, yaml: &str) -> Arc<Notifier> {
    let n = Notifier::new(opts, Arc::new(NotifierMetrics::new(opts.queue_capacity)));
    n.apply_config(&Config::parse(yaml).unwrap()).unwrap();
    n
}

#[test]
fn batches_to_a_fake_alertmanager() {
    let am = Fake::start(200);
    let rt = runtime();
    let _guard = rt.enter();
    let n = notifier(
        Options {
            batch_size: 3,
            ..Options::default()
        },
        &format!(
            "global: {{external_labels: {{cluster: it}}}}\n\
             alerting:\n  alertmanagers:\n    - path_prefix: /am/\n      timeout: 5s\n      \
             basic_auth: {{username: argus, password: s3cret}}\n      \
             static_configs: [{{targets: ['{}']}}]\n",
            am.addr
        ),
    );
    let t = 1_796_523_375_886;
    let mut alerts = vec![alert(
        &[("alertname", "First"), ("severity", "page")],
        &[("summary", "a & b <c>")],
        t - 22_000,
        t,
    )];
    alerts
        .extend((0..6).map(|i| alert(&[("alertname", "Bulk"), ("i", &i.to_string())], &[], t, t)));
    n.send(alerts);
    let reqs = wait_for("three batches", Duration::from_secs(30), || {
        let r = am.received();
        (r.len() == 3).then_some(r)
    });
    let sizes: Vec<usize> = reqs
        .iter()
        .map(|r| r.json().as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [3, 3, 1], "7 alerts in batches of 3, in order");
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/am/api/v2/alerts");
        assert_eq!(r.header("content-type"), Some("application/json"));
        // base64("argus:s3cret")
        assert_eq!(r.header("authorization"), Some("Basic YXJndXM6czNjcmV0"));
    }
    let first = &reqs[0].json()[0];
    assert_eq!(
        first,
        &serde_json::json!({
            "annotations": {"summary": "a & b <c>"},
            "endsAt": "2026-12-06T02:16:15.886Z",
            "startsAt": "2026-12-06T02:15:53.886Z",
            "generatorURL": "http://argus.example:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
            "labels": {"alertname": "First", "cluster": "it", "severity": "page"}
        })
    );
    // Keys in Prometheus's order, annotations absent when empty.
    let raw = String::from_utf8_lossy(&reqs[0].body).into_owned();
    assert!(
        raw.starts_with(
            "[{\"annotations\":{\"summary\":\"a \\u0026 b \\u003cc\\u003e\"},\"endsAt\":"
        ),
        "{raw}"
    );
    let bulk = String::from_utf8_lossy(&reqs[1].body).into_owned();
    assert!(bulk.starts_with("[{\"endsAt\":"), "{bulk}");
    let url = format!("http://{}/am/api/v2/alerts", am.addr);
    // The fake records a request before answering it: wait for the sender to count the answer.
    wait_for("sent counter", Duration::from_secs(30), || {
        (n.metrics().counts(&url) == (7, 0)).then_some(())
    });
    rt.block_on(n.stop());
}

#[test]
fn error_answers_are_counted_and_not_retried() {
    let am = Fake::start(500);
    let rt = runtime();
    let _guard = rt.enter();
    let n = notifier(
        Options::default(),
        &format!(
            "alerting: {{alertmanagers: [{{static_configs: [{{targets: ['{}']}}]}}]}}",
            am.addr
        ),
    );
    let url = format!("http://{}/api/v2/alerts", am.addr);
    n.send(vec![
        alert(&[("alertname", "A")], &[], 1_000, 2_000),
        alert(&[("alertname", "B")], &[], 1_000, 2_000),
    ]);
    wait_for("error counted", Duration::from_secs(30), || {
        (n.metrics().counts(&url) == (0, 2)).then_some(())
    });
    assert_eq!(n.metrics().dropped(), 2);
    // A later batch is a new request; the failed one was not re-sent.
    n.send(vec![alert(&[("alertname", "C")], &[], 1_000, 2_000)]);
    wait_for("second error", Duration::from_secs(30), || {
        (n.metrics().counts(&url) == (0, 3)).then_some(())
    });
    rt.block_on(n.stop());
    let names: Vec<String> = am
        .received()
        .iter()
        .flat_map(|r| r.json().as_array().cloned().unwrap_or_default())
        .map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["A", "B", "C"], "each alert posted exactly once");
}

#[test]
fn kubernetes_sd_finds_alertmanager_pods() {
    let rt = runtime();
    rt.block_on(async {
        let fake = k8s_fake::FakeApi::start(&[
            k8s_fake::fixture("pod-web.json"),
            k8s_fake::fixture("pod-web-2.json"),
            k8s_fake::fixture("pod-batch.json"),
        ])
        .await;
        let n = notifier(
            Options::default(),
            &format!(
                "alerting:\n  alertmanagers:\n    - kubernetes_sd_configs: [{{role: pod, api_server: '{}'}}]\n      \
                 relabel_configs:\n        \
                 - {{source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name], regex: web, action: keep}}\n        \
                 - {{source_labels: [__meta_kubernetes_pod_container_port_number], regex: '9102', action: keep}}\n",
                fake.url()
            ),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while n.alertmanagers().active.len() < 2 {
            assert!(Instant::now() < deadline, "pods not discovered: {:?}", n.alertmanagers());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let urls = n.alertmanagers();
        assert_eq!(
            urls.active,
            [
                "http://10.244.1.5:9102/api/v2/alerts",
                "http://10.244.2.7:9102/api/v2/alerts"
            ]
        );
        assert!(
            urls.dropped.contains(&"http://10.244.2.7:8080/api/v2/alerts".to_string()),
            "{urls:?}"
        );
        n.stop().await;
    });
}

#[test]
fn argus_lists_alertmanagers_and_reloads_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    let write = |targets: &str| {
        std::fs::write(
            &cfg,
            format!(
                "alerting:\n  alertmanagers:\n    - path_prefix: /am\n      \
                 static_configs: [{{targets: [{targets}], labels: {{dc: a}}}}]\n      \
                 relabel_configs: [{{source_labels: [__address__], regex: 'drop.*', action: drop}}]\n"
            ),
        )
        .unwrap();
    };
    write("'127.0.0.1:9093', 'drop.example:9093'");
    let argus = Argus::start(
        &dir.path().join("data"),
        &[
            &format!("--config.file={}", cfg.display()),
            "--web.enable-lifecycle",
        ],
    );
    let r = argus.get("/api/v1/alertmanagers");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"status": "success", "data": {
            "activeAlertmanagers": [{"url": "http://127.0.0.1:9093/am/api/v2/alerts"}],
            "droppedAlertmanagers": [{"url": "http://drop.example:9093/am/api/v2/alerts"}]
        }})
    );
    let metrics = argus.get("/metrics").text();
    assert!(
        metrics.contains("argus_notifications_alertmanagers_discovered 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "argus_notifications_sent_total{alertmanager=\"http://127.0.0.1:9093/am/api/v2/alerts\"} 0\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("argus_notifications_queue_capacity 10000\n"),
        "{metrics}"
    );

    write("'127.0.0.1:9093', '127.0.0.2:9093'");
    let r = argus.request("POST", "/-/reload", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let data = argus.get("/api/v1/alertmanagers").json()["data"].clone();
    assert_eq!(
        data["activeAlertmanagers"],
        serde_json::json!([
            {"url": "http://127.0.0.1:9093/am/api/v2/alerts"},
            {"url": "http://127.0.0.2:9093/am/api/v2/alerts"}
        ])
    );
    assert_eq!(data["droppedAlertmanagers"], serde_json::json!([]));
    assert!(
        argus
            .get("/metrics")
            .text()
            .contains("argus_notifications_alertmanagers_discovered 2\n")
    );

    // An invalid alerting section is refused and the old one stays.
    std::fs::write(&cfg, "alerting: {alertmanagers: [{api_version: v1}]}\n").unwrap();
    let r = argus.request("POST", "/-/reload", &[], b"");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text()
            .contains("expected Alertmanager api version to be one of [v2] but got v1"),
        "{}",
        r.text()
    );
    let data = argus.get("/api/v1/alertmanagers").json()["data"].clone();
    assert_eq!(
        data["activeAlertmanagers"].as_array().map(Vec::len),
        Some(2)
    );
}

/// A real Alertmanager on loopback ports, clustering off; killed on drop.
struct Alertmanager {
    _child: Peer,
    addr: SocketAddr,
}

/// Starts Alertmanager with a webhook receiver at `webhook` (`send_resolved`, fast grouping), or
/// returns None (printing why) when the binary is missing and `CI` is unset.
fn start_alertmanager(dir: &Path, webhook: SocketAddr) -> Option<Alertmanager> {
    if !crate::server::peer::installed(ALERTMANAGER, "prometheus-alertmanager", "real Alertmanager")
    {
        return None;
    }
    let cfg = dir.join("am.yml");
    std::fs::write(
        &cfg,
        format!(
            "route:\n  receiver: capture\n  group_by: ['alertname']\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: capture\n    webhook_configs:\n      \
             - url: http://{webhook}/webhook\n        send_resolved: true\n"
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prometheus-alertmanager");
    let am = Alertmanager {
        _child: Peer(child),
        addr,
    };
    wait_for("Alertmanager ready", Duration::from_secs(30), || {
        try_request(addr, "GET", "/-/ready", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    Some(am)
}

/// Alertmanager's `GET /api/v2/alerts` (active alerts).
fn am_alerts(am: &Alertmanager) -> Vec<serde_json::Value> {
    match try_request(am.addr, "GET", "/api/v2/alerts", &[], b"") {
        Ok(r) if r.status == 200 => r.json().as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// An RFC 3339 UTC time as `(seconds part, nanoseconds)` for comparison: Alertmanager's API
/// prints milliseconds, its webhook up to nine digits with trailing zeros dropped.
fn instant(v: &serde_json::Value) -> (String, u32) {
    let s = v.as_str().unwrap_or_default().trim_end_matches('Z');
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let nanos = format!("{frac:0<9}").parse().unwrap_or(u32::MAX);
    (whole.to_string(), nanos)
}

/// Webhook notifications received so far, as JSON.
fn webhooks(hook: &Fake) -> Vec<serde_json::Value> {
    hook.received().iter().map(Received::json).collect()
}

#[test]
fn delivers_to_a_real_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Fake::start(200);
    let Some(am) = start_alertmanager(dir.path(), hook.addr) else {
        return;
    };
    let rt = runtime();
    let _guard = rt.enter();
    let n = notifier(
        Options::default(),
        &format!(
            "global: {{external_labels: {{cluster: it, severity: ignored}}}}\n\
             alerting: {{alertmanagers: [{{static_configs: [{{targets: ['{}']}}]}}]}}\n",
            am.addr
        ),
    );
    // Firing: endsAt ahead (as rules send it), started a little in the past.
    let start = now_ms() - 5_000;
    let firing = alert(
        &[("alertname", "InteropFiring"), ("severity", "page")],
        &[("summary", "value is 42 & rising")],
        start,
        now_ms() + 60_000,
    );
    n.send(vec![firing.clone()]);
    let got = wait_for("alert in Alertmanager", Duration::from_secs(30), || {
        am_alerts(&am)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "InteropFiring")
    });
    assert_eq!(
        got["labels"],
        serde_json::json!({"alertname": "InteropFiring", "cluster": "it", "severity": "page"}),
        "external labels added only where absent"
    );
    assert_eq!(
        got["annotations"],
        serde_json::json!({"summary": "value is 42 & rising"})
    );
    assert_eq!(got["generatorURL"], firing.generator_url.as_str());
    let starts = got["startsAt"].as_str().unwrap_or_default().to_string();
    assert!(starts.ends_with('Z') && starts.len() == 24, "{starts}");
    assert_eq!(got["status"]["state"], "active");
    let fired = wait_for("firing webhook", Duration::from_secs(30), || {
        webhooks(&hook)
            .into_iter()
            .find(|w| w["status"] == "firing")
    });
    assert_eq!(fired["alerts"][0]["labels"]["alertname"], "InteropFiring");
    assert_eq!(
        fired["alerts"][0]["annotations"]["summary"],
        "value is 42 & rising"
    );
    assert_eq!(
        instant(&fired["alerts"][0]["startsAt"]),
        instant(&got["startsAt"])
    );

    // Resolved: same labels, endsAt now.
    let resolved = OutgoingAlert {
        ends_at_ms: now_ms(),
        ..firing
    };
    n.send(vec![resolved]);
    let res = wait_for("resolved webhook", Duration::from_secs(30), || {
        webhooks(&hook)
            .into_iter()
            .find(|w| w["status"] == "resolved")
    });
    assert_eq!(res["alerts"][0]["labels"]["alertname"], "InteropFiring");
    assert_eq!(res["alerts"][0]["status"], "resolved");
    wait_for(
        "alert gone from the active list",
        Duration::from_secs(30),
        || {
            am_alerts(&am)
                .iter()
                .all(|a| a["labels"]["alertname"] != "InteropFiring")
                .then_some(())
        },
    );
    let url = format!("http://{}/api/v2/alerts", am.addr);
    wait_for("sent counter", Duration::from_secs(30), || {
        (n.metrics().counts(&url) == (2, 0)).then_some(())
    });
    rt.block_on(n.stop());
}

/// Rule evaluation → notifier → real Alertmanager → webhook, through the `argus` binary: an alert
/// with `for: 2s` over a pushed series fires, reaches Alertmanager (external labels, annotations
/// as Argus lists them, generator URL) and its webhook, then resolves when the series drops.
#[test]
fn rules_fire_and_resolve_through_a_real_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Fake::start(200);
    let Some(am) = start_alertmanager(dir.path(), hook.addr) else {
        return;
    };
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: e2e\n    interval: 1s\n    rules:\n      - alert: E2EHigh\n        \
         expr: e2e_value > 10\n        for: 2s\n        labels: {severity: page}\n        \
         annotations:\n          summary: static text\n          \
         description: 'value {{ $value }} on {{ $labels.instance }}'\n",
    )
    .unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n  \
             external_labels: {{cluster: e2e}}\n\
             rule_files: [rules.yml]\n\
             alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{}']}}]\n",
            am.addr
        ),
    )
    .unwrap();
    let argus = Argus::start(
        &dir.path().join("data"),
        &[
            &format!("--config.file={}", cfg.display()),
            "--rules.alert.resend-delay=1s",
            // Also the route prefix (as in Prometheus): the API is under /prefix.
            "--web.external-url=http://argus.example:9090/prefix/",
        ],
    );
    let am_url = format!("http://{}/api/v2/alerts", am.addr);
    let listed = argus.get("/prefix/api/v1/alertmanagers").json();
    assert_eq!(
        listed["data"]["activeAlertmanagers"],
        serde_json::json!([{ "url": am_url }])
    );
    let push = |v: &str| {
        let r = argus.request(
            "PUT",
            "/prefix/metrics/job/e2e/instance/i1",
            &[],
            format!("e2e_value {v}\n").as_bytes(),
        );
        assert!(
            r.status == 200 || r.status == 202,
            "push: {} {}",
            r.status,
            r.text()
        );
    };
    push("42");

    // Firing in Argus first: its annotations are what Alertmanager must show.
    let listed = wait_for("E2EHigh firing in Argus", Duration::from_secs(60), || {
        let r = argus.get("/prefix/api/v1/alerts").json();
        r["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "E2EHigh" && a["state"] == "firing")
    });
    let got = wait_for("E2EHigh in Alertmanager", Duration::from_secs(60), || {
        am_alerts(&am)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "E2EHigh")
    });
    let labels = got["labels"].as_object().cloned().unwrap_or_default();
    assert_eq!(labels["cluster"], "e2e", "external label added: {got}");
    assert_eq!(labels["severity"], "page", "{got}");
    assert_eq!(labels["instance"], "i1", "{got}");
    for (k, v) in listed["labels"].as_object().cloned().unwrap_or_default() {
        assert_eq!(labels.get(&k), Some(&v), "rule label {k} in {got}");
    }
    assert_eq!(got["annotations"], listed["annotations"], "{got}");
    assert_eq!(
        got["annotations"],
        serde_json::json!({"summary": "static text", "description": "value 42 on i1"}),
        "annotations expanded"
    );
    assert_eq!(
        got["generatorURL"],
        "http://argus.example:9090/prefix/graph?g0.expr=e2e_value+%3E+10&g0.tab=1"
    );
    assert_eq!(got["status"]["state"], "active");
    let starts = got["startsAt"].as_str().unwrap_or_default().to_string();
    assert!(starts.ends_with('Z') && starts.len() == 24, "{starts}");

    let fired = wait_for("firing webhook", Duration::from_secs(60), || {
        webhooks(&hook)
            .into_iter()
            .find(|w| w["status"] == "firing" && w["alerts"][0]["labels"]["alertname"] == "E2EHigh")
    });
    assert_eq!(fired["alerts"][0]["annotations"], listed["annotations"]);
    assert_eq!(
        instant(&fired["alerts"][0]["startsAt"]),
        instant(&got["startsAt"])
    );

    // Clear the condition: the resolved alert goes out with endsAt = resolution time.
    push("1");
    let resolved = wait_for("resolved webhook", Duration::from_secs(60), || {
        webhooks(&hook).into_iter().find(|w| {
            w["status"] == "resolved" && w["alerts"][0]["labels"]["alertname"] == "E2EHigh"
        })
    });
    let a = &resolved["alerts"][0];
    assert_eq!(a["status"], "resolved");
    assert_eq!(instant(&a["startsAt"]), instant(&got["startsAt"]));
    assert!(instant(&a["endsAt"]) > instant(&a["startsAt"]), "{a}");
    let metrics = argus.get("/prefix/metrics").text();
    let sent = metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "argus_notifications_sent_total{{alertmanager=\"{am_url}\"}}"
            ))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(sent >= 2.0, "firing and resolved sent: {metrics}");
    assert!(
        metrics.contains(&format!(
            "argus_notifications_errors_total{{alertmanager=\"{am_url}\"}} 0\n"
        )),
        "{metrics}"
    );
}
