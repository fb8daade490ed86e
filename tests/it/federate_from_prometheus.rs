//! Argus as the federating side against real Prometheus: series are remote-written into
//! Prometheus, Argus scrapes Prometheus's `/federate` with `match[]={job="x"}` and
//! `honor_labels: true`, and must then answer `{job="x"}` exactly like Prometheus does (same label
//! sets, original `job`/`instance` kept, same values), with `up{job="federate"} == 1`.
//! Skipped (with a printed reason) when `/usr/bin/prometheus` is absent.

use crate::server::harness;

use crate::server::peer::{self, PROMETHEUS};
use argus::ingest::prompb::{TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use harness::{Argus, instant, now_ms, request};
use std::time::{Duration, Instant};

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries::from_pairs(labels, samples)
}

#[test]
fn argus_federates_from_real_prometheus() {
    if !peer::installed(PROMETHEUS, "prometheus", "federate from prometheus") {
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
    let (_prom, prom_addr) = peer::prometheus(
        &prom_cfg,
        &dir.path().join("prom-data"),
        &["--web.enable-remote-write-receiver"],
    );
    peer::wait_ready(prom_addr, Duration::from_secs(15));

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
        crate::server::remote::WRITE_V1,
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
