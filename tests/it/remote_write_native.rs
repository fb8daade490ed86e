//! The remote-write sender forwards native histograms (1.0 and 2.0, to Argus and to real
//! Prometheus) and metric metadata (`metadata_config`; per series in 2.0).

use crate::remote_write::wait_until;
use crate::server::harness::{Argus, enc, now_ms, try_request};
use crate::server::peer;
use argus::ingest::prompb::{BucketSpan, Histogram, Label, TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan { offset, length }
}

/// An integer exponential histogram at `t` whose counts grow with `i`.
fn int_hist(t: i64, i: i64, schema: i32) -> Histogram {
    let (pos, neg, zero) = ([1 + i, 2 + i, i, 3], i + 1, i);
    Histogram {
        count_int: Some((pos.iter().sum::<i64>() + neg + zero) as u64),
        zero_count_int: Some(zero as u64),
        sum: i as f64 * 2.5,
        schema,
        zero_threshold: 1e-128,
        positive_spans: vec![span(-2, 2), span(3, 2)],
        positive_deltas: vec![pos[0], pos[1] - pos[0], pos[2] - pos[1], pos[3] - pos[2]],
        negative_spans: vec![span(1, 1)],
        negative_deltas: vec![neg],
        timestamp: t,
        ..Default::default()
    }
}

/// A float gauge histogram with custom bounds.
fn float_hist(t: i64, i: i64) -> Histogram {
    let x = i as f64 * 0.25 + 0.125;
    Histogram {
        count_float: Some(3.0 * x + 1.0),
        zero_count_float: Some(0.0),
        sum: x,
        schema: -53,
        positive_spans: vec![span(0, 3)],
        positive_counts: vec![x, 1.0, 2.0 * x],
        custom_values: vec![0.5, 1.0, 5.0],
        reset_hint: 3,
        timestamp: t,
        ..Default::default()
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

fn post(a: &Argus, req: &WriteRequest) {
    let r = a.request(
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
        &encode(req),
    );
    assert_eq!(r.status, 204, "{}", r.text());
}

fn config(dir: &Path, text: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("argus.yml");
    std::fs::write(&p, text).unwrap();
    format!("--config.file={}", p.display())
}

/// One `remote_write:` entry with small batches; `extra` adds entry lines.
fn queue(url: &str, name: &str, extra: &str) -> String {
    format!(
        "  - url: {url}\n    name: {name}\n{extra}    queue_config:\n      \
         batch_send_deadline: 200ms\n      min_backoff: 50ms\n      max_backoff: 400ms\n      \
         max_samples_per_send: 7\n      capacity: 20\n      max_shards: 4\n"
    )
}

/// The queue line that turns histogram forwarding on.
const HIST: &str = "    send_native_histograms: true\n";

const GLOBAL: &str = "global:\n  external_labels:\n    replica: a\nremote_write:\n";

/// Series `{__name__=~"rwh_.+"}` over the last 3 h as the query API answers them: rendered
/// labels → the `values` and `histograms` arrays. `add` is a label added to every series.
fn stored(addr: SocketAddr, add: Option<(&str, &str)>) -> BTreeMap<String, serde_json::Value> {
    let q = enc("{__name__=~\"rwh_.+\"}[3h]");
    let path = format!(
        "/api/v1/query?query={q}&time={}",
        now_ms() as f64 / 1000.0 + 60.0
    );
    let Ok(r) = try_request(addr, "GET", &path, &[], b"") else {
        return BTreeMap::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array().into_iter().flatten() {
        let mut m = s["metric"].as_object().unwrap().clone();
        if let Some((k, v)) = add {
            m.insert(k.into(), v.into());
        }
        let key = serde_json::to_string(&m).unwrap();
        let body = serde_json::json!({"values": s["values"], "histograms": s["histograms"]});
        out.insert(key, body);
    }
    out
}

/// Histograms (and a float series, interleaved) remote-written into `a` in 10 requests: integer
/// ones of `schema`, and float gauge histograms with custom bounds when asked.
fn write_histograms(a: &Argus, t0: i64, schema: i32, with_float_histograms: bool) {
    for j in 0..10 {
        let t = t0 + j * 1000;
        let mut ts = vec![
            TimeSeries {
                labels: labels(&[("__name__", "rwh_int"), ("k", "1")]),
                histograms: vec![int_hist(t, j, schema)],
                ..Default::default()
            },
            TimeSeries {
                labels: labels(&[("__name__", "rwh_int"), ("k", "2")]),
                histograms: vec![int_hist(t, j + 7, schema)],
                ..Default::default()
            },
            TimeSeries::from_pairs(&[("__name__", "rwh_float")], &[(t, j as f64 / 4.0)]),
        ];
        if with_float_histograms {
            ts.push(TimeSeries {
                labels: labels(&[("__name__", "rwh_gauge")]),
                histograms: vec![float_hist(t, j)],
                ..Default::default()
            });
        }
        post(
            a,
            &WriteRequest {
                timeseries: ts,
                metadata: vec![],
            },
        );
    }
}

/// What a receiver must hold: the sender's own answer with `replica="a"` added.
fn assert_arrives(what: &str, sender: &Argus, receiver: SocketAddr) {
    let want = stored(sender.addr, Some(("replica", "a")));
    assert!(!want.is_empty());
    let ok = wait_until(Duration::from_secs(60), || stored(receiver, None) == want);
    assert!(
        ok,
        "{what}\nwant: {want:#?}\ngot:  {:#?}",
        stored(receiver, None)
    );
}

#[test]
fn histograms_are_forwarded_to_argus_over_2_0_and_1_0() {
    let dir = tempfile::tempdir().unwrap();
    let b2 = Argus::start(
        &dir.path().join("b2"),
        &["--web.enable-remote-write-receiver"],
    );
    let b1 = Argus::start(
        &dir.path().join("b1"),
        &["--web.enable-remote-write-receiver"],
    );
    let off = Argus::start(
        &dir.path().join("off"),
        &["--web.enable-remote-write-receiver"],
    );
    let queues = format!(
        "{}{}{}",
        queue(
            &format!("http://{}/api/v1/write", b2.addr),
            "v2",
            &format!("{HIST}    protobuf_message: io.prometheus.write.v2.Request\n")
        ),
        queue(&format!("http://{}/api/v1/write", b1.addr), "v1", HIST),
        // Without `send_native_histograms`, as in Prometheus, histograms stay home.
        queue(&format!("http://{}/api/v1/write", off.addr), "off", "")
    );
    let cfg = config(&dir.path().join("a"), &format!("{GLOBAL}{queues}"));
    let a = Argus::start(
        &dir.path().join("a/data"),
        &[&cfg, "--web.enable-remote-write-receiver"],
    );
    // Half an hour back: a receiver scraping itself accepts in-order data down to its newest
    // sample minus half the block range (1 h), so data exactly 1 h old was refused as out of
    // bounds whenever forwarding took longer than the write.
    write_histograms(&a, now_ms() - 1_800_000, 3, true);
    let own = stored(a.addr, None);
    assert_eq!(own.len(), 4, "{own:#?}");
    for v in own.values() {
        let n = v["values"].as_array().map_or(0, Vec::len)
            + v["histograms"].as_array().map_or(0, Vec::len);
        assert_eq!(n, 10, "{v}");
    }
    assert_arrives("2.0", &a, b2.addr);
    assert_arrives("1.0", &a, b1.addr);
    let floats_only: BTreeMap<_, _> = stored(a.addr, Some(("replica", "a")))
        .into_iter()
        .filter(|(k, _)| k.contains("rwh_float"))
        .collect();
    assert!(wait_until(Duration::from_secs(30), || stored(
        off.addr, None
    ) == floats_only));
    let metrics = a.get("/metrics").text();
    for name in ["v1", "v2"] {
        let line = format!("argus_remote_storage_histograms_total{{remote_name=\"{name}\"");
        let sent = metrics
            .lines()
            .find(|l| l.starts_with(&line))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("{line} not in /metrics"));
        assert_eq!(sent, "30", "{name}");
    }
}

#[test]
fn histograms_are_forwarded_to_prometheus() {
    if !peer::installed(peer::PROMETHEUS, "prometheus", "remote-write interop") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcfg = dir.path().join("prometheus.yml");
    std::fs::write(&pcfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let (_p, addr) = peer::prometheus(
        &pcfg,
        &dir.path().join("prom"),
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms",
        ],
    );
    peer::wait_ready(addr, Duration::from_secs(60));
    let cfg = config(
        &dir.path().join("a"),
        &format!(
            "{GLOBAL}{}",
            queue(&format!("http://{addr}/api/v1/write"), "prom", HIST)
        ),
    );
    let a = Argus::start(
        &dir.path().join("a/data"),
        &[&cfg, "--web.enable-remote-write-receiver"],
    );
    // Prometheus 2.42 takes integer histograms with exponential schemas only. Schema 0 keeps
    // bucket bounds exact powers of two: for schemas above 0, 2.42's JSON writes bounds from a
    // table whose values are one ulp below Argus's (0.8408964152537144 vs …145 at schema 3).
    write_histograms(&a, now_ms() - 1_800_000, 0, false);
    assert_arrives("prometheus", &a, addr);
}

/// Serves `/metrics` with HELP/TYPE/UNIT for a counter, a classic histogram and a gauge.
fn start_target() -> SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "# HELP rwm_jobs_total Jobs done.\n# TYPE rwm_jobs_total counter\n\
                 rwm_jobs_total 3\n\
                 # HELP rwm_latency_seconds Request latency.\n# TYPE rwm_latency_seconds histogram\n\
                 rwm_latency_seconds_bucket{le=\"0.1\"} 1\nrwm_latency_seconds_bucket{le=\"+Inf\"} 2\n\
                 rwm_latency_seconds_sum 0.3\nrwm_latency_seconds_count 2\n\
                 # HELP rwm_temperature_celsius Temperature \\\\ \"inside\".\n\
                 # TYPE rwm_temperature_celsius gauge\nrwm_temperature_celsius 21.5\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// `/api/v1/metadata` entries of the `rwm_*` families.
fn metadata(addr: SocketAddr) -> BTreeMap<String, serde_json::Value> {
    let Ok(r) = try_request(addr, "GET", "/api/v1/metadata", &[], b"") else {
        return BTreeMap::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    v["data"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("rwm_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A scrapes a target and sends its metadata: over 2.0 attached to each series (to Argus), over
/// 1.0 in metadata requests (to Argus, and to real Prometheus, which takes them).
#[test]
fn metadata_is_sent_over_2_0_and_1_0() {
    let dir = tempfile::tempdir().unwrap();
    let target = start_target();
    let b2 = Argus::start(
        &dir.path().join("b2"),
        &["--web.enable-remote-write-receiver"],
    );
    let b1 = Argus::start(
        &dir.path().join("b1"),
        &["--web.enable-remote-write-receiver"],
    );
    let meta = "    metadata_config:\n      send_interval: 500ms\n      max_samples_per_send: 2\n";
    let queues = format!(
        "{}{}",
        queue(
            &format!("http://{}/api/v1/write", b2.addr),
            "v2",
            &format!("{meta}    protobuf_message: io.prometheus.write.v2.Request\n")
        ),
        queue(&format!("http://{}/api/v1/write", b1.addr), "v1", meta),
    );
    let scrape = format!(
        "scrape_configs:\n  - job_name: t\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    \
         static_configs:\n      - targets: ['{target}']\n"
    );
    let cfg = config(&dir.path().join("a"), &format!("{GLOBAL}{queues}{scrape}"));
    let a = Argus::start(&dir.path().join("a/data"), &[&cfg]);
    assert!(wait_until(Duration::from_secs(30), || metadata(a.addr)
        .len()
        == 3));
    let want = metadata(a.addr);
    assert_eq!(
        want["rwm_temperature_celsius"],
        serde_json::json!([{"type": "gauge", "help": "Temperature \\ \"inside\".", "unit": ""}])
    );
    for (what, b) in [("2.0", &b2), ("1.0", &b1)] {
        let ok = wait_until(Duration::from_secs(30), || metadata(b.addr) == want);
        assert!(ok, "{what}\nwant: {want:#?}\ngot:  {:#?}", metadata(b.addr));
    }
    // The series arrive with the metadata (2.0 carries it on them).
    let q = enc("rwm_latency_seconds_count");
    let r = b2.get(&format!("/api/v1/query?query={q}"));
    assert_eq!(r.json()["data"]["result"].as_array().map(Vec::len), Some(1));
    let text = a.get("/metrics").text();
    let sent = text
        .lines()
        .find(|l| l.starts_with("argus_remote_storage_metadata_total{remote_name=\"v1\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no metadata counter for v1:\n{text}"));
    assert!(sent >= 3.0, "{sent}");
}

fn counter(a: &Argus, name: &str, queue: &str) -> f64 {
    let text = a.get("/metrics").text();
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{remote_name=\"{queue}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} for {queue}:\n{text}"))
}

/// Real Prometheus 2.42 takes 1.0 metadata requests (204, counted as sent; none failed). It does
/// not keep them: its `/api/v1/metadata` lists scraped targets' metadata only (checked: `{}`).
#[test]
fn metadata_is_accepted_by_prometheus() {
    if !peer::installed(peer::PROMETHEUS, "prometheus", "remote-write interop") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcfg = dir.path().join("prometheus.yml");
    std::fs::write(&pcfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let (_p, addr) = peer::prometheus(
        &pcfg,
        &dir.path().join("prom"),
        &["--web.enable-remote-write-receiver"],
    );
    peer::wait_ready(addr, Duration::from_secs(60));
    let target = start_target();
    let meta = "    metadata_config:\n      send_interval: 300ms\n";
    let scrape = format!(
        "scrape_configs:\n  - job_name: t\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    \
         static_configs:\n      - targets: ['{target}']\n"
    );
    let cfg = config(
        &dir.path().join("a"),
        &format!(
            "{GLOBAL}{}{scrape}",
            queue(&format!("http://{addr}/api/v1/write"), "prom", meta)
        ),
    );
    let a = Argus::start(&dir.path().join("a/data"), &[&cfg]);
    assert!(wait_until(Duration::from_secs(30), || counter(
        &a,
        "argus_remote_storage_metadata_total",
        "prom"
    ) >= 6.0));
    assert_eq!(
        counter(&a, "argus_remote_storage_metadata_failed_total", "prom"),
        0.0
    );
    assert_eq!(
        counter(&a, "argus_remote_storage_failed_requests_total", "prom"),
        0.0
    );
}

/// Over 2.0 with the default `send_interval` (1 m), the series scraped in the first minute
/// carry their metadata too: a series whose family the queue's map lacks makes it refresh after
/// about a second, not at the next interval.
#[test]
fn metadata_2_0_arrives_in_the_first_send_interval() {
    let dir = tempfile::tempdir().unwrap();
    let target = start_target();
    let b = Argus::start(
        &dir.path().join("b"),
        &["--web.enable-remote-write-receiver"],
    );
    let queues = queue(
        &format!("http://{}/api/v1/write", b.addr),
        "v2",
        "    protobuf_message: io.prometheus.write.v2.Request\n",
    );
    let scrape = format!(
        "scrape_configs:\n  - job_name: t\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    \
         static_configs:\n      - targets: ['{target}']\n"
    );
    let cfg = config(&dir.path().join("a"), &format!("{GLOBAL}{queues}{scrape}"));
    let a = Argus::start(&dir.path().join("a/data"), &[&cfg]);
    assert!(wait_until(Duration::from_secs(20), || metadata(a.addr)
        .len()
        == 3));
    let want = metadata(a.addr);
    // Well inside the first minute (the receiver only learns metadata from the series).
    let ok = wait_until(Duration::from_secs(20), || metadata(b.addr) == want);
    assert!(ok, "want: {want:#?}\ngot:  {:#?}", metadata(b.addr));
}
