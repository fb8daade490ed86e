//! Notifier tests against an in-process capturing HTTP server.

use super::*;
use argus_storage::Labels;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::Semaphore;

/// One received POST.
#[derive(Clone, Debug)]
struct Req {
    path: String,
    auth: Option<String>,
    body: serde_json::Value,
}

/// A fake Alertmanager: records requests, answers `status`; each request first takes a permit
/// from `gate` (so a test can hold requests in flight).
struct Fake {
    addr: std::net::SocketAddr,
    reqs: Arc<Mutex<Vec<Req>>>,
    gate: Arc<Semaphore>,
    /// Requests received, counted before waiting at the gate.
    arrived: Arc<AtomicUsize>,
}

async fn fake(status: StatusCode, permits: usize) -> Fake {
    let reqs = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(Semaphore::new(permits));
    let arrived = Arc::new(AtomicUsize::new(0));
    let (r, g, n) = (reqs.clone(), gate.clone(), arrived.clone());
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let (r, g, n) = (r.clone(), g.clone(), n.clone());
        async move {
            n.fetch_add(1, Ordering::SeqCst);
            if let Ok(p) = g.acquire().await {
                p.forget();
            }
            r.lock().push(Req {
                path: uri.path().to_string(),
                auth: headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            });
            status
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    Fake {
        addr,
        reqs,
        gate,
        arrived,
    }
}

/// Waits (bounded) until `f` holds.
async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn alert(name: &str, extra: &[(&str, &str)]) -> OutgoingAlert {
    let mut pairs = vec![("alertname", name)];
    pairs.extend_from_slice(extra);
    OutgoingAlert {
        labels: Labels::from_pairs(&pairs),
        annotations: Labels::from_pairs(&[("summary", "s")]),
        starts_at_ms: 1_000,
        ends_at_ms: 2_000,
        generator_url: "http://argus/graph".into(),
    }
}

fn notifier(opts: Options, yaml: &str) -> Arc<Notifier> {
    let n = Notifier::new(opts, Arc::new(NotifierMetrics::new(opts.queue_capacity)));
    n.apply_config(&Config::parse(yaml).unwrap()).unwrap();
    n
}

fn labels_of(reqs: &[Req]) -> Vec<serde_json::Value> {
    reqs.iter()
        .flat_map(|r| r.body.as_array().cloned().unwrap_or_default())
        .map(|a| a["labels"].clone())
        .collect()
}

#[tokio::test]
async fn external_labels_only_when_absent_and_relabeling() {
    let a = fake(StatusCode::OK, usize::MAX >> 4).await;
    let b = fake(StatusCode::OK, usize::MAX >> 4).await;
    let n = notifier(
        Options::default(),
        &format!(
            "global: {{external_labels: {{cluster: ext, region: eu}}}}\n\
             alerting:\n  alert_relabel_configs: [{{source_labels: [severity], regex: info, action: drop}}]\n  \
             alertmanagers:\n    - static_configs: [{{targets: ['{}']}}]\n    \
             - static_configs: [{{targets: ['{}']}}]\n      \
             alert_relabel_configs: [{{action: labeldrop, regex: region}}]\n",
            a.addr, b.addr
        ),
    );
    n.send(vec![
        alert("A", &[("cluster", "own")]),
        alert("B", &[("severity", "info")]),
    ]);
    wait_for("both Alertmanagers", || {
        !a.reqs.lock().is_empty() && !b.reqs.lock().is_empty()
    })
    .await;
    let want_a = serde_json::json!([{"alertname": "A", "cluster": "own", "region": "eu"}]);
    assert_eq!(
        labels_of(&a.reqs.lock()),
        want_a.as_array().unwrap().clone()
    );
    let want_b = serde_json::json!([{"alertname": "A", "cluster": "own"}]);
    assert_eq!(
        labels_of(&b.reqs.lock()),
        want_b.as_array().unwrap().clone()
    );
    let r = a.reqs.lock()[0].clone();
    assert_eq!(r.path, "/api/v2/alerts");
    assert_eq!(
        r.body[0],
        serde_json::json!({
            "annotations": {"summary": "s"},
            "endsAt": "1970-01-01T00:00:02.000Z",
            "startsAt": "1970-01-01T00:00:01.000Z",
            "generatorURL": "http://argus/graph",
            "labels": {"alertname": "A", "cluster": "own", "region": "eu"}
        })
    );
    let url = format!("http://{}/api/v2/alerts", a.addr);
    wait_for("sent counter", || n.metrics().counts(&url) == (1, 0)).await;
    n.stop().await;
}

#[tokio::test]
async fn batches_errors_and_no_retry() {
    let am = fake(StatusCode::INTERNAL_SERVER_ERROR, usize::MAX >> 4).await;
    let opts = Options {
        batch_size: 2,
        ..Options::default()
    };
    let n = notifier(
        opts,
        &format!(
            "alerting:\n  alertmanagers:\n    - path_prefix: /prefix/\n      \
             basic_auth: {{username: u, password: p}}\n      \
             static_configs: [{{targets: ['{}']}}]\n",
            am.addr
        ),
    );
    let url = format!("http://{}/prefix/api/v2/alerts", am.addr);
    assert_eq!(n.alertmanagers().active, std::slice::from_ref(&url));
    n.send((0..5).map(|i| alert(&format!("A{i}"), &[])).collect());
    wait_for("three batches", || am.reqs.lock().len() == 3).await;
    wait_for("error counter", || n.metrics().counts(&url) == (0, 5)).await;
    let reqs = am.reqs.lock().clone();
    let sizes: Vec<usize> = reqs
        .iter()
        .map(|r| r.body.as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [2, 2, 1]);
    assert!(reqs.iter().all(|r| r.path == "/prefix/api/v2/alerts"));
    assert!(reqs.iter().all(|r| r.auth.as_deref() == Some("Basic dTpw")));
    assert_eq!(n.metrics().dropped(), 5, "failed batches are dropped");
    // Nothing is retried: after another round trip there are still three requests.
    n.send(vec![alert("B", &[])]);
    wait_for("fourth request", || am.reqs.lock().len() == 4).await;
    n.stop().await;
    assert_eq!(am.reqs.lock().len(), 4);
}

#[tokio::test]
async fn reload_keeps_queued_alerts_and_drains_on_stop() {
    let am = fake(StatusCode::OK, 0).await;
    let yaml = |timeout: &str| {
        format!(
            "alerting:\n  alertmanagers:\n    - timeout: {timeout}\n      \
             static_configs: [{{targets: ['{}']}}]\n",
            am.addr
        )
    };
    let n = notifier(Options::default(), &yaml("10s"));
    n.send(vec![alert("InFlight", &[])]);
    // The first batch is in flight (held by the gate); these wait in the queue.
    wait_for("a request in flight", || {
        am.arrived.load(Ordering::SeqCst) == 1
    })
    .await;
    n.send(vec![alert("Queued1", &[]), alert("Queued2", &[])]);
    // A changed set replaces the sender; the queued alerts move to the new one.
    n.apply_config(&Config::parse(&yaml("9s")).unwrap())
        .unwrap();
    am.gate.add_permits(100);
    wait_for("all alerts delivered", || {
        let names: Vec<_> = labels_of(&am.reqs.lock())
            .iter()
            .map(|l| l["alertname"].as_str().unwrap_or("").to_string())
            .collect();
        names.contains(&"Queued1".into()) && names.contains(&"Queued2".into())
    })
    .await;
    n.stop().await;
    assert!(n.apply_config(&Config::default()).is_err(), "stopped");
}

#[tokio::test]
async fn stop_drains_the_queue() {
    let am = fake(StatusCode::OK, 0).await;
    let n = notifier(
        Options {
            batch_size: 1,
            ..Options::default()
        },
        &format!(
            "alerting: {{alertmanagers: [{{static_configs: [{{targets: ['{}']}}]}}]}}",
            am.addr
        ),
    );
    n.send((0..3).map(|i| alert(&format!("A{i}"), &[])).collect());
    let stopping = tokio::spawn({
        let n = n.clone();
        async move { n.stop().await }
    });
    am.gate.add_permits(100);
    stopping.await.unwrap();
    assert_eq!(
        am.reqs.lock().len(),
        3,
        "queued alerts are sent before stop returns"
    );
}

#[tokio::test]
async fn global_relabel_drop_sends_nothing_for_dropped_alerts() {
    let am = fake(StatusCode::OK, usize::MAX >> 4).await;
    let n = notifier(
        Options::default(),
        &format!(
            "alerting:\n  alert_relabel_configs: [{{action: drop, source_labels: [alertname], regex: 'Drop.*'}}]\n  \
             alertmanagers: [{{static_configs: [{{targets: ['{}']}}]}}]\n",
            am.addr
        ),
    );
    n.send(vec![alert("Drop1", &[]), alert("Drop2", &[])]);
    n.send(vec![alert("Keep", &[])]);
    wait_for("one request", || !am.reqs.lock().is_empty()).await;
    n.stop().await;
    let reqs = am.reqs.lock().clone();
    assert_eq!(
        reqs.len(),
        1,
        "a send whose alerts were all dropped posts nothing"
    );
    assert_eq!(labels_of(&reqs), [serde_json::json!({"alertname": "Keep"})]);
}
