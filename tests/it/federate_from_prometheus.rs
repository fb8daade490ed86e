//! Argus as the federating side against real Prometheus: series are remote-written into
//! Prometheus, Argus scrapes Prometheus's `/federate` with `match[]={job="x"}` and
//! `honor_labels: true`, and must then answer `{job="x"}` exactly like Prometheus does (same label
//! sets, original `job`/`instance` kept, same values), with `up{job="federate"} == 1`.
//! Skipped (with a printed reason) when `/usr/bin/prometheus` is absent.

// Reused as is (the server module keeps its copy private).
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "server/harness.rs"]
mod harness;

use argus::ingest::prompb::{TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use harness::{Argus, enc, free_port, now_ms, request, try_request};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Kills and reaps the Prometheus child on drop (also when an assertion fails).
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries::from_pairs(labels, samples)
}

/// Instant `query` at `t` (ms) as sorted `(series labels JSON, value)` pairs.
fn instant(addr: SocketAddr, query: &str, t: i64) -> Vec<(String, String)> {
    let path = format!(
        "/api/v1/query?query={}&time={}.{:03}",
        enc(query),
        t / 1000,
        t % 1000
    );
    let r = request(addr, "GET", &path, &[], b"");
    assert_eq!(r.status, 200, "{addr} {query}: {}", r.text());
    let v = r.json();
    let mut out: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{addr} {query}: not a vector: {v}"))
        .iter()
        .map(|s| {
            (
                s["metric"].to_string(),
                s["value"][1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn argus_federates_from_real_prometheus() {
    if !Path::new(PROMETHEUS).exists() {
        crate::missing(
            "federate from prometheus",
            &format!("{PROMETHEUS} is not installed"),
        );
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();

    // Prometheus with no scrape jobs, only the remote-write receiver as its input.
    let prom_cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        "global:\n  scrape_interval: 1s\nscrape_configs: []\n",
    )
    .unwrap();
    let port = free_port();
    let prom_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _prom = Prometheus(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom-data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !try_request(prom_addr, "GET", "/-/ready", &[], b"").is_ok_and(|r| r.status == 200) {
        assert!(Instant::now() < deadline, "prometheus not ready in 15s");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Series in job "x" (to be federated) and job "y" (must be left out by match[]).
    let t0 = now_ms() - 10_000;
    let body = encode(&WriteRequest {
        timeseries: vec![
            series(
                &[
                    ("__name__", "fed_requests_total"),
                    ("job", "x"),
                    ("instance", "host-a:9100"),
                    ("path", "/a"),
                ],
                &[(t0, 10.0), (t0 + 5_000, 17.0)],
            ),
            series(
                &[
                    ("__name__", "fed_requests_total"),
                    ("job", "x"),
                    ("instance", "host-b:9100"),
                    ("path", "/b"),
                ],
                &[(t0, 3.0), (t0 + 5_000, 4.5)],
            ),
            series(
                &[
                    ("__name__", "fed_temperature"),
                    ("job", "x"),
                    ("instance", "host-a:9100"),
                ],
                &[(t0 + 5_000, 21.25)],
            ),
            series(
                &[
                    ("__name__", "fed_requests_total"),
                    ("job", "y"),
                    ("instance", "host-c:9100"),
                ],
                &[(t0 + 5_000, 99.0)],
            ),
        ],
        ..Default::default()
    });
    let r = request(
        prom_addr,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &body,
    );
    assert!(
        r.status / 100 == 2,
        "prometheus remote write: {} {}",
        r.status,
        r.text()
    );

    // Argus federating from Prometheus.
    let argus_cfg = dir.path().join("argus.yml");
    std::fs::write(
        &argus_cfg,
        format!(
            "scrape_configs:\n  - job_name: federate\n    scrape_interval: 1s\n    \
             scrape_timeout: 1s\n    honor_labels: true\n    metrics_path: /federate\n    \
             params:\n      'match[]': ['{{job=\"x\"}}']\n    static_configs:\n      \
             - targets: ['{prom_addr}']\n"
        ),
    )
    .unwrap();
    let argus = Argus::start(
        &dir.path().join("argus-data"),
        &[&format!("--config.file={}", argus_cfg.display())],
    );

    let want_query = r#"{job="x"}"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    let (want, got, up) = loop {
        let t = now_ms();
        let want = instant(prom_addr, want_query, t);
        let got = instant(argus.addr, want_query, t);
        let up = instant(argus.addr, r#"up{job="federate"}"#, t);
        if (!got.is_empty() && got == want && up.iter().any(|(_, v)| v == "1"))
            || Instant::now() > deadline
        {
            break (want, got, up);
        }
        std::thread::sleep(Duration::from_millis(250));
    };

    // Prometheus itself holds exactly the three job="x" series with their latest values.
    let prom_series: Vec<serde_json::Value> = want
        .iter()
        .map(|(m, _)| serde_json::from_str(m).unwrap())
        .collect();
    assert_eq!(want.len(), 3, "prometheus {{job=\"x\"}}: {want:?}");
    let values: Vec<&str> = want.iter().map(|(_, v)| v.as_str()).collect();
    assert!(
        values.contains(&"17") && values.contains(&"4.5") && values.contains(&"21.25"),
        "prometheus values: {want:?}"
    );
    assert!(prom_series.iter().all(|m| m["job"] == "x"));
    // Argus: same label sets (original job/instance kept thanks to honor_labels) and values.
    assert_eq!(
        got,
        want,
        "argus vs prometheus for {want_query}; argus log:\n{}",
        argus.log()
    );
    assert!(
        got.iter().all(|(m, _)| !m.contains(&prom_addr.to_string())),
        "federated series must not get the federation target's instance: {got:?}"
    );
    // job="y" was not federated.
    assert!(
        instant(argus.addr, r#"fed_requests_total{job="y"}"#, now_ms()).is_empty(),
        "job=\"y\" leaked through match[]"
    );
    // The federation scrape itself is healthy.
    assert_eq!(up.len(), 1, "up{{job=\"federate\"}}: {up:?}");
    let up_labels: serde_json::Value = serde_json::from_str(&up[0].0).unwrap();
    assert_eq!(up_labels["instance"], prom_addr.to_string());
    assert_eq!(up[0].1, "1", "up{{job=\"federate\"}}: {up:?}");

    println!("argus {want_query}: {got:?}\n  up: {up:?}");
    drop(argus);
    println!("federate from prometheus: ok in {:?}", started.elapsed());
}
