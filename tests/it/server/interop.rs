//! Interop with real Prometheus: it scrapes a small fixed target served by this test and
//! remote-writes to argus; the same PromQL queries sent to both must return the same series and
//! values. Skipped (with a printed reason) when `/usr/bin/prometheus` is absent.

use super::harness::{Argus, enc, instant, now_ms, request};
use super::peer::{self, PROMETHEUS, Peer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Serves a small exposition whose counter grows with every scrape.
fn start_target() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let i = n.fetch_add(1, Ordering::Relaxed) as f64;
            let body = format!(
                "# HELP demo_requests_total Requests.\n# TYPE demo_requests_total counter\n\
                 demo_requests_total{{path=\"/a\"}} {}\ndemo_requests_total{{path=\"/b\"}} {}\n\
                 # TYPE demo_temperature gauge\ndemo_temperature {}\n\
                 # TYPE demo_latency histogram\n\
                 demo_latency_bucket{{le=\"0.1\"}} {}\ndemo_latency_bucket{{le=\"1\"}} {}\n\
                 demo_latency_bucket{{le=\"+Inf\"}} {}\ndemo_latency_sum {}\ndemo_latency_count {}\n",
                10.0 * i,
                3.0 * i + 1.0,
                20.0 + (i % 7.0) * 0.25,
                i,
                3.0 * i,
                4.0 * i,
                1.7 * i,
                4.0 * i
            );
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn start_prometheus(dir: &Path, target: SocketAddr, argus: SocketAddr) -> (Peer, SocketAddr) {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{target}']\n\
             remote_write:\n  - url: http://{argus}/api/v1/write\n    queue_config:\n      \
             batch_send_deadline: 200ms\n      min_backoff: 50ms\n      max_backoff: 1s\n"
        ),
    )
    .unwrap();
    peer::prometheus(&cfg, &dir.join("prom-data"), &[])
}

fn range(addr: SocketAddr, query: &str, start: i64, end: i64) -> String {
    let path = format!(
        "/api/v1/query_range?query={}&start={}.{:03}&end={}.{:03}&step=1",
        enc(query),
        start / 1000,
        start % 1000,
        end / 1000,
        end % 1000
    );
    let r = request(addr, "GET", &path, &[], b"");
    assert_eq!(r.status, 200, "{addr} {query}: {}", r.text());
    let mut series: Vec<String> = r.json()["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    series.sort();
    series.join("\n")
}

const QUERIES: &[&str] = &[
    "up",
    "demo_requests_total",
    "rate(demo_requests_total[5s])",
    "sum by (job) (increase(demo_requests_total[5s]))",
    "demo_temperature",
    "avg_over_time(demo_temperature[4s])",
    "histogram_quantile(0.9, rate(demo_latency_bucket[5s]))",
    "count by (__name__) ({job=\"demo\"})",
    "scrape_samples_scraped",
    "demo_latency_sum / demo_latency_count",
];

#[test]
fn prometheus_remote_write_then_same_answers() {
    if !peer::installed(PROMETHEUS, "prometheus", "prometheus interop") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // No scrape jobs of its own: everything argus holds comes from Prometheus.
    let argus_cfg = dir.path().join("argus.yml");
    std::fs::write(&argus_cfg, "scrape_configs: []\n").unwrap();
    let argus = Argus::start(
        &dir.path().join("argus"),
        &[
            &format!("--config.file={}", argus_cfg.display()),
            "--web.enable-remote-write-receiver",
        ],
    );
    let target = start_target();
    let (_prom, prom) = start_prometheus(dir.path(), target, argus.addr);

    // Let a few scrapes happen and reach argus.
    std::thread::sleep(Duration::from_secs(8));
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        // A query time between scrapes, old enough that remote write has delivered it.
        let t = now_ms() - 2_500 + 137;
        let mut diff = String::new();
        for q in QUERIES {
            let (want, got) = (instant(prom, q, t), instant(argus.addr, q, t));
            if want.is_empty() {
                diff.push_str(&format!("{q}: Prometheus returned nothing yet\n"));
            } else if want != got {
                diff.push_str(&format!(
                    "{q} @ {t}\n  prometheus: {want:?}\n  argus:      {got:?}\n"
                ));
            }
        }
        for q in ["demo_requests_total", "rate(demo_requests_total[3s])"] {
            let (want, got) = (
                range(prom, q, t - 4_000, t),
                range(argus.addr, q, t - 4_000, t),
            );
            if want != got {
                diff.push_str(&format!(
                    "range {q}\n  prometheus: {want}\n  argus:      {got}\n"
                ));
            }
        }
        if diff.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "argus and Prometheus disagree:\n{diff}\nargus log:\n{}",
                argus.log()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
