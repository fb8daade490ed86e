//! Native histograms over the protobuf scrape format through the real binary: a test-served
//! target answers in `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
//! encoding=delimited` with a native histogram that grows on every scrape; Argus (with
//! `scrape_native_histograms`) asks for protobuf first, stores the native histogram (read back
//! through remote read) and, with `always_scrape_classic_histograms`, the classic series too.

use crate::server::harness::{Argus, enc};
use crate::server::{peer, remote};
use argus::expose::proto::{
    Bucket, BucketSpan, Gauge, Histogram, Metric, MetricFamily, MetricType,
};
use argus::ingest::prompb::{BucketSpan as RBucketSpan, Histogram as RHistogram};
use prost::Message;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROTO: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// The histogram served on the `n`th scrape: schema 0, zero bucket, three positive buckets.
fn served(n: u64) -> Histogram {
    let k = n as i64;
    Histogram {
        sample_count: Some(10 * n),
        sample_sum: Some(25.0 * n as f64),
        schema: Some(0),
        zero_threshold: Some(1e-3),
        zero_count: Some(n),
        positive_span: vec![BucketSpan {
            offset: Some(0),
            length: Some(3),
        }],
        // Counts 2n, 5n, 2n.
        positive_delta: vec![2 * k, 3 * k, -3 * k],
        bucket: vec![
            Bucket {
                cumulative_count: Some(3 * n),
                upper_bound: Some(1.0),
                ..Default::default()
            },
            Bucket {
                cumulative_count: Some(8 * n),
                upper_bound: Some(2.0),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

fn body(n: u64) -> Vec<u8> {
    let mut out = MetricFamily {
        name: Some("lat".into()),
        r#type: Some(MetricType::Histogram as i32),
        metric: vec![Metric {
            histogram: Some(served(n)),
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_length_delimited_to_vec();
    out.extend(
        MetricFamily {
            name: Some("served_requests".into()),
            r#type: Some(MetricType::Gauge as i32),
            metric: vec![Metric {
                gauge: Some(Gauge {
                    value: Some(n as f64),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_length_delimited_to_vec(),
    );
    out
}

/// Serves `body(n)` to the `n`th request; records each request's `Accept` header.
fn serve() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let accepts = Arc::new(Mutex::new(Vec::new()));
    let acc = accepts.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut accept = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("accept")
                {
                    accept = v.trim().to_string();
                }
            }
            let n = {
                let mut a = acc.lock().unwrap();
                a.push(accept);
                a.len() as u64
            };
            let b = body(n);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {PROTO}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&b);
        }
    });
    (addr, accepts)
}

fn config(target: SocketAddr) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: nh\n    \
         scrape_native_histograms: true\n    always_scrape_classic_histograms: true\n    \
         static_configs:\n      - targets: [\"{target}\"]\n"
    )
}

fn read_histograms(a: &Argus, name: &str) -> Vec<RHistogram> {
    remote::series(&remote::read(a, name, 0, i64::MAX / 2))
        .into_iter()
        .flat_map(|t| t.histograms.clone())
        .collect()
}

#[test]
fn protobuf_target_native_histogram_is_stored() {
    let (target, accepts) = serve();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(&cfg, config(target)).unwrap();
    let a = Argus::start(
        &dir.path().join("data"),
        &[&format!("--config.file={}", cfg.display())],
    );
    // Wait for two scrapes' histograms.
    let deadline = Instant::now() + Duration::from_secs(20);
    let hs = loop {
        let hs = read_histograms(&a, "lat");
        if hs.len() >= 2 {
            break hs;
        }
        assert!(
            Instant::now() < deadline,
            "no histograms stored: {}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let first = accepts.lock().unwrap()[0].clone();
    assert!(
        first.starts_with(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6"
        ),
        "{first}"
    );
    for h in &hs {
        // The n of the scrape this sample came from.
        let n = h.count_int.expect("integer count") / 10;
        assert!(n >= 1);
        let k = n as i64;
        let want = RHistogram {
            count_int: Some(10 * n),
            zero_count_int: Some(n),
            sum: 25.0 * n as f64,
            schema: 0,
            zero_threshold: 1e-3,
            positive_spans: vec![RBucketSpan {
                offset: 0,
                length: 3,
            }],
            positive_deltas: vec![2 * k, 3 * k, -3 * k],
            timestamp: h.timestamp,
            reset_hint: h.reset_hint,
            ..Default::default()
        };
        assert_eq!(h, &want);
    }
    // The classic series too (always_scrape_classic_histograms), with OpenMetrics `le` values.
    let r = a.get(&format!(
        "/api/v1/query?query={}",
        enc("count by (le) (lat_bucket)")
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let mut les: Vec<String> = j["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["le"].as_str().unwrap().to_string())
        .collect();
    les.sort();
    assert_eq!(les, vec!["+Inf", "1.0", "2.0"], "{j}");
}

/// A histogram whose counts grow with wall time (`n` = ms since the target started, plus a
/// large base so that two scrapers' different phases change `histogram_count` by < 0.1 %); its
/// shape (2:5:2 over three buckets) is fixed, so quantiles do not depend on `n`.
fn timed_body(start: Instant) -> Vec<u8> {
    let n = 1_000_000 + start.elapsed().as_millis() as u64;
    let k = n as i64;
    let h = Histogram {
        sample_count: Some(9 * n),
        sample_sum: Some(1.5 * n as f64),
        schema: Some(1),
        zero_threshold: Some(1e-128),
        positive_span: vec![BucketSpan {
            offset: Some(-1),
            length: Some(3),
        }],
        positive_delta: vec![2 * k, 3 * k, -3 * k],
        ..Default::default()
    };
    MetricFamily {
        name: Some("lat_seconds".into()),
        r#type: Some(MetricType::Histogram as i32),
        metric: vec![Metric {
            histogram: Some(h),
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_length_delimited_to_vec()
}

fn serve_timed() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let start = Instant::now();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let b = timed_body(start);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {PROTO}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&b);
        }
    });
    addr
}

/// `query`'s single value at `t_ms`, or None while it has none.
fn value(addr: SocketAddr, query: &str, t_ms: i64) -> Option<f64> {
    let path = format!(
        "/api/v1/query?query={}&time={}.{:03}",
        enc(query),
        t_ms / 1000,
        t_ms % 1000
    );
    let r = crate::server::harness::request(addr, "GET", &path, &[], b"");
    assert_eq!(r.status, 200, "{addr} {query}: {}", r.text());
    let j = r.json();
    let res = j["data"]["result"].as_array()?;
    match res.as_slice() {
        [] => None,
        [s] => s["value"][1].as_str().and_then(|v| v.parse().ok()),
        _ => panic!("{query}: more than one series: {j}"),
    }
}

/// The proof: Prometheus 2.42 (`--enable-feature=native-histograms`) and Argus scrape
/// the same protobuf target; `histogram_quantile`, `histogram_count` and `rate` agree.
#[test]
fn differential_against_prometheus() {
    if !peer::installed(
        peer::PROMETHEUS,
        "prometheus",
        "native_histograms_scrape::differential_against_prometheus",
    ) {
        return;
    }
    let target = serve_timed();
    let dir = tempfile::tempdir().unwrap();
    let scrape = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: nh\n    \
         static_configs:\n      - targets: [\"{target}\"]\n"
    );
    let pcfg = dir.path().join("prometheus.yml");
    std::fs::write(&pcfg, &scrape).unwrap();
    let acfg = dir.path().join("argus.yml");
    std::fs::write(
        &acfg,
        scrape.replace(
            "job_name: nh\n",
            "job_name: nh\n    scrape_native_histograms: true\n",
        ),
    )
    .unwrap();
    let (_prom, prom) = peer::prometheus(
        &pcfg,
        &dir.path().join("prom"),
        &["--enable-feature=native-histograms"],
    );
    let a = Argus::start(
        &dir.path().join("argus"),
        &[&format!("--config.file={}", acfg.display())],
    );
    // Both need 10 s of samples for the rate window.
    let deadline = Instant::now() + Duration::from_secs(40);
    let rate = "histogram_count(rate(lat_seconds[10s]))";
    let t = loop {
        std::thread::sleep(Duration::from_millis(500));
        let t = crate::server::harness::now_ms() - 1_000;
        let ready = |addr| {
            crate::server::harness::try_request(addr, "GET", "/-/ready", &[], b"")
                .is_ok_and(|r| r.status == 200)
                && value(
                    addr,
                    "count_over_time(histogram_count(lat_seconds)[10s:1s])",
                    t,
                )
                .is_some_and(|n| n >= 10.0)
        };
        if ready(a.addr) && ready(prom) {
            break t;
        }
        assert!(Instant::now() < deadline, "no data after 40 s: {}", a.log());
    };
    let close = |q: &str, rel: f64| {
        let want = value(prom, q, t).unwrap_or_else(|| panic!("prometheus: no value for {q}"));
        let got = value(a.addr, q, t).unwrap_or_else(|| panic!("argus: no value for {q}"));
        assert!(
            (got - want).abs() <= rel * want.abs(),
            "{q}: argus {got}, prometheus {want}"
        );
    };
    // Prometheus 2.42 interpolates linearly inside an exponential bucket, Prometheus 3 (and
    // Argus) exponentially; the two agree at bucket boundaries, which ranks 2/9 and 7/9 of this
    // 2:5:2 histogram hit (upper bounds 2^-0.5 and 1).
    close("histogram_quantile(2/9, lat_seconds)", 1e-9);
    close("histogram_quantile(7/9, lat_seconds)", 1e-9);
    close("histogram_count(lat_seconds)", 2e-3);
    close(
        "histogram_sum(lat_seconds) / histogram_count(lat_seconds)",
        1e-9,
    );
    // Counts grow by 9000/s; both scrapers see that slope (phase and jitter: a few %).
    close(rate, 0.05);
    close("histogram_quantile(7/9, rate(lat_seconds[10s]))", 1e-6);
}
