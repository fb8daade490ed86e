//! Native histograms at the edges of the real binary: remote-written (1.0 and 2.0) histograms
//! come back unchanged through `/api/v1/query` and `/federate` (protobuf, decoded here), the text
//! federation leaves exponential histograms out and turns custom-bucket ones into classic
//! histograms, and real Prometheus 2.42 federating from Argus stores what Argus serves.

use crate::server::harness::{Argus, Resp, enc, free_port, now_ms, request, try_request};
use argus::expose::proto::{MetricFamily, MetricType};
use argus::ingest::prompb::{BucketSpan, Histogram, Label, Sample, TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use argus::ingest::remote_write_histogram::to_float_histogram;
use argus::ingest::remote_write_v2;
use argus_storage::{CounterResetHint, FloatHistogram};
use prost::Message;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PROTO_ACCEPT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan { offset, length }
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

/// An integer counter histogram (schema 3, two positive spans, zero bucket) growing with `i`.
fn int_hist(t: i64, i: i64) -> Histogram {
    let b = [1 + i, 2 + i, i, 3];
    Histogram {
        count_int: Some(b.iter().sum::<i64>() as u64 + i as u64),
        zero_count_int: Some(i as u64),
        sum: i as f64 * 2.5 + 0.25,
        schema: 3,
        zero_threshold: 1e-128,
        positive_spans: vec![span(-2, 2), span(3, 2)],
        positive_deltas: vec![b[0], b[1] - b[0], b[2] - b[1], b[3] - b[2]],
        timestamp: t,
        ..Default::default()
    }
}

/// A float gauge histogram, schema 0, with negative buckets and a zero bucket: bucket bounds are
/// powers of two, so the query JSON can be written down exactly.
fn gauge_hist(t: i64, i: i64) -> Histogram {
    let x = i as f64 * 0.5 + 0.25;
    Histogram {
        count_float: Some(6.0 * x + 3.5),
        zero_count_float: Some(0.5),
        sum: -x,
        schema: 0,
        zero_threshold: 0.125,
        negative_spans: vec![span(1, 2)],
        negative_counts: vec![x, 2.0 * x],
        positive_spans: vec![span(0, 1), span(1, 1)],
        positive_counts: vec![3.0 * x, 3.0],
        reset_hint: 3,
        timestamp: t,
        ..Default::default()
    }
}

/// A float histogram with custom bounds (NHCB), one sample in the overflow bucket.
fn custom_hist(t: i64, i: i64) -> Histogram {
    let x = i as f64 + 0.5;
    Histogram {
        count_float: Some(4.0 * x + 1.0),
        zero_count_float: Some(0.0),
        sum: 7.0 * x,
        schema: -53,
        positive_spans: vec![span(0, 2), span(1, 1)],
        positive_counts: vec![x, 2.0 * x, x + 1.0],
        custom_values: vec![0.5, 1.0, 5.0],
        timestamp: t,
        ..Default::default()
    }
}

fn post_v1(a: &Argus, req: &WriteRequest) -> Resp {
    a.request(
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
        &encode(req),
    )
}

fn post_v2(a: &Argus, req: &WriteRequest) -> Resp {
    a.request(
        "POST",
        "/api/v1/write",
        &[
            (
                "Content-Type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            ),
            ("Content-Encoding", "snappy"),
        ],
        &remote_write_v2::encode(&remote_write_v2::from_v1(req)),
    )
}

/// What was written: `(labels, samples or histograms)` per series.
struct Written {
    t_last: i64,
    ints_a: Vec<Histogram>,
    ints_c: Vec<Histogram>,
    floats_b: Vec<(i64, f64)>,
    gauges: Vec<Histogram>,
    customs: Vec<Histogram>,
}

/// Writes `nh_mixed{s="a"|"c"}` (integer histograms) and `nh_mixed{s="b"}` (floats) through
/// remote write 1.0, `nh_gauge` and `nh_custom` (float histograms) through 2.0.
fn write_all(a: &Argus) -> Written {
    let t0 = now_ms() - 60_000;
    let steps = 5;
    let ts = |i: i64| t0 + i * 10_000;
    let w = Written {
        t_last: ts(steps - 1),
        ints_a: (0..steps).map(|i| int_hist(ts(i), i)).collect(),
        ints_c: (0..steps).map(|i| int_hist(ts(i), 2 * i)).collect(),
        floats_b: (0..steps).map(|i| (ts(i), i as f64 * 1.5)).collect(),
        gauges: (0..steps).map(|i| gauge_hist(ts(i), i)).collect(),
        customs: (0..steps).map(|i| custom_hist(ts(i), i)).collect(),
    };
    let mixed = |s: &str| labels(&[("__name__", "nh_mixed"), ("job", "nh"), ("s", s)]);
    let v1 = WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: mixed("a"),
                histograms: w.ints_a.clone(),
                ..Default::default()
            },
            TimeSeries {
                labels: mixed("b"),
                samples: w
                    .floats_b
                    .iter()
                    .map(|&(timestamp, value)| Sample { value, timestamp })
                    .collect(),
                ..Default::default()
            },
            TimeSeries {
                labels: mixed("c"),
                histograms: w.ints_c.clone(),
                ..Default::default()
            },
        ],
        metadata: vec![],
    };
    let r = post_v1(a, &v1);
    assert_eq!(r.status, 204, "1.0: {}", r.text());
    let v2 = WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: labels(&[("__name__", "nh_gauge"), ("job", "nh")]),
                histograms: w.gauges.clone(),
                ..Default::default()
            },
            TimeSeries {
                labels: labels(&[("__name__", "nh_custom"), ("job", "nh")]),
                histograms: w.customs.clone(),
                ..Default::default()
            },
        ],
        metadata: vec![],
    };
    let r = post_v2(a, &v2);
    assert_eq!(r.status, 204, "2.0: {}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-histograms-written"),
        Some("10")
    );
    w
}

fn query(addr: SocketAddr, expr: &str, t_ms: i64) -> Value {
    let path = format!(
        "/api/v1/query?query={}&time={}.{:03}",
        enc(expr),
        t_ms / 1000,
        t_ms % 1000
    );
    let r = request(addr, "GET", &path, &[], b"");
    assert_eq!(r.status, 200, "{expr}: {}", r.text());
    let j = r.json();
    j["data"]["result"].clone()
}

fn federate(a: &Argus, accept: Option<&str>) -> Resp {
    let h: Vec<(&str, &str)> = accept.map(|v| ("Accept", v)).into_iter().collect();
    let r = a.request(
        "GET",
        &format!("/federate?match[]={}", enc("{job=\"nh\"}")),
        &h,
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

fn decode_families(mut body: &[u8]) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    while !body.is_empty() {
        out.push(MetricFamily::decode_length_delimited(&mut body).expect("delimited family"));
    }
    out
}

/// The stored form of a sent histogram, counter-reset hint aside (the storage keeps its own).
fn stored(h: &Histogram) -> FloatHistogram {
    let mut f = to_float_histogram(h).expect("valid histogram");
    if !f.is_gauge() {
        f.counter_reset_hint = CounterResetHint::Unknown;
    }
    f
}

fn label(m: &argus::expose::proto::Metric, name: &str) -> Option<String> {
    m.label
        .iter()
        .find(|l| l.name.as_deref() == Some(name))
        .and_then(|l| l.value.clone())
}

/// The remote-write round trip: 1.0 and 2.0 histograms come back unchanged through the
/// query API and through `/federate` in protobuf; the text federation serves what it can.
#[test]
fn remote_written_histograms_round_trip_through_query_and_federate() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    let w = write_all(&a);
    let at = w.t_last + 1_000;

    // Query API: the gauge histogram's buckets, written out from the schema-0 bounds
    // (negative buckets open to the right, the zero bucket closed, positive ones open left).
    let g = w.gauges.last().unwrap();
    let x = |v: f64| Value::String(format!("{v}"));
    let n = &g.negative_counts;
    let p = &g.positive_counts;
    let want = json!({
        "count": x(g.count_float.unwrap()),
        "sum": x(g.sum),
        "buckets": [
            [1, "-4", "-2", x(n[1])],
            [1, "-2", "-1", x(n[0])],
            [3, "-0.125", "0.125", "0.5"],
            [0, "0.5", "1", x(p[0])],
            [0, "2", "4", x(p[1])],
        ],
    });
    let got = query(a.addr, "nh_gauge", at);
    assert_eq!(got[0]["histogram"][1], want, "{got}");
    assert_eq!(got[0]["histogram"][0].as_f64(), Some(at as f64 / 1000.0));
    // Integer histograms: count and sum, and the float series beside them under the same name.
    let got = query(a.addr, "nh_mixed", at);
    assert_eq!(got.as_array().map(Vec::len), Some(3), "{got}");
    let last_a = w.ints_a.last().unwrap();
    assert_eq!(
        got[0]["histogram"][1]["count"],
        x(last_a.count_int.unwrap() as f64)
    );
    assert_eq!(got[0]["histogram"][1]["sum"], x(last_a.sum));
    assert_eq!(got[1]["value"][1], x(w.floats_b.last().unwrap().1));
    let got = query(a.addr, "histogram_count(nh_custom)", at);
    assert_eq!(
        got[0]["value"][1],
        x(w.customs.last().unwrap().count_float.unwrap())
    );

    // Federation in protobuf: one family per run of name and sample type, in label order.
    let r = federate(&a, Some(PROTO_ACCEPT));
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/vnd.google.protobuf")),
        "{:?}",
        r.headers
    );
    let fams = decode_families(&r.body);
    let shape: Vec<(String, MetricType, usize)> = fams
        .iter()
        .map(|f| (f.name().to_string(), f.kind(), f.metric.len()))
        .collect();
    let s = |n: &str| n.to_string();
    assert_eq!(
        shape,
        [
            (s("nh_custom"), MetricType::Histogram, 1),
            (s("nh_gauge"), MetricType::GaugeHistogram, 1),
            (s("nh_mixed"), MetricType::Histogram, 1),
            (s("nh_mixed"), MetricType::Untyped, 1),
            (s("nh_mixed"), MetricType::Histogram, 1),
        ]
    );
    for f in &fams {
        for m in &f.metric {
            assert_eq!(m.timestamp_ms, Some(w.t_last), "{}", f.name());
            assert_eq!(label(m, "job").as_deref(), Some("nh"));
            assert_eq!(label(m, "instance").as_deref(), Some(""), "instance added");
        }
    }
    let native = |f: &MetricFamily| {
        let h = f.metric[0].histogram.as_ref().expect("histogram");
        argus::scrape::protobuf::to_native(h, f.kind() == MetricType::GaugeHistogram)
            .expect("valid native histogram")
    };
    assert_eq!(
        native(&fams[1]),
        stored(w.gauges.last().unwrap()),
        "2.0 gauge"
    );
    assert_eq!(native(&fams[2]), stored(last_a), "1.0 integer, s=a");
    assert_eq!(
        native(&fams[4]),
        stored(w.ints_c.last().unwrap()),
        "1.0 integer, s=c"
    );
    assert_eq!(
        fams[3].metric[0].untyped.as_ref().and_then(|u| u.value),
        Some(w.floats_b.last().unwrap().1)
    );
    // The custom-bucket histogram as a classic one: cumulative counts per bound.
    let c = w.customs.last().unwrap();
    let h = fams[0].metric[0].histogram.as_ref().unwrap();
    let buckets: Vec<(f64, f64)> = h
        .bucket
        .iter()
        .map(|b| (b.upper_bound.unwrap(), b.count()))
        .collect();
    let pc = &c.positive_counts;
    assert_eq!(
        buckets,
        [(0.5, pc[0]), (1.0, pc[0] + pc[1]), (5.0, pc[0] + pc[1])]
    );
    assert_eq!(
        (h.count(), h.sample_sum),
        (c.count_float.unwrap(), Some(c.sum))
    );
    assert!(h.schema.is_none() && h.positive_span.is_empty());

    // Text: exponential histograms cannot be written and are left out; NHCB is classic.
    let text = federate(&a, None).text();
    let ts = w.t_last;
    for want in [
        "# TYPE nh_custom histogram\n".to_string(),
        format!(
            "nh_custom_bucket{{job=\"nh\",instance=\"\",le=\"1\"}} {} {ts}\n",
            pc[0] + pc[1]
        ),
        format!(
            "nh_custom_bucket{{job=\"nh\",instance=\"\",le=\"+Inf\"}} {} {ts}\n",
            c.count_float.unwrap()
        ),
        format!(
            "# TYPE nh_mixed untyped\nnh_mixed{{job=\"nh\",s=\"b\",instance=\"\"}} {} {ts}\n",
            w.floats_b.last().unwrap().1
        ),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("nh_gauge"), "{text}");
    assert!(
        !text.contains("s=\"a\"") && !text.contains("s=\"c\""),
        "{text}"
    );
}

struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Real Prometheus 2.42 (`--enable-feature=native-histograms`) federates from Argus: it asks
/// for protobuf, and its query API then answers the histograms exactly as Argus's does.
#[test]
fn prometheus_federating_from_argus_stores_the_same_histograms() {
    const PROM: &str = "/usr/bin/prometheus";
    if !std::path::Path::new(PROM).exists() {
        crate::missing(
            "native_histograms_edges::prometheus_federating_from_argus_stores_the_same_histograms",
            "/usr/bin/prometheus not installed (Debian package prometheus)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        &dir.path().join("argus"),
        &["--web.enable-remote-write-receiver"],
    );
    let w = write_all(&a);
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
             - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    \
             params:\n      'match[]': ['{{job=\"nh\"}}']\n    static_configs:\n      \
             - targets: [\"{}\"]\n",
            a.addr
        ),
    )
    .unwrap();
    let port = free_port();
    let _prom = Prometheus(
        std::process::Command::new(PROM)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=native-histograms")
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn prometheus"),
    );
    let prom: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let at = w.t_last + 1_000;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = try_request(prom, "GET", "/-/ready", &[], b"").is_ok_and(|r| r.status == 200);
        if ready
            && query(prom, "up{job=\"federate\"} == 1", now_ms())
                .as_array()
                .is_some_and(|v| !v.is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not federate within 30 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Exponential histograms (integer and float, counter and gauge) and the float series beside
    // them: the same JSON from both servers.
    for q in [
        "nh_gauge",
        "nh_mixed",
        "histogram_count(nh_mixed)",
        "histogram_sum(nh_gauge)",
    ] {
        // Prometheus adds its target's `instance` where the federated one is empty; 2.42's
        // table of exponential bucket bounds differs from Prometheus 3's (and Argus's) in the
        // last bit of some bounds (0.8408964152537144 vs …145), so bounds are compared to 13
        // significant digits.
        let strip = |mut v: Value| {
            for s in v.as_array_mut().into_iter().flatten() {
                s["metric"].as_object_mut().map(|m| m.remove("instance"));
                let buckets = s
                    .pointer_mut("/histogram/1/buckets")
                    .and_then(Value::as_array_mut);
                for b in buckets.into_iter().flatten() {
                    for i in [1, 2] {
                        let f: f64 = b[i].as_str().unwrap().parse().unwrap();
                        b[i] = Value::String(format!("{f:.12e}"));
                    }
                }
            }
            v
        };
        let want = strip(query(a.addr, q, at));
        let got = strip(query(prom, q, at));
        assert_eq!(got, want, "{q}: prometheus (left) vs argus (right)");
        assert!(want.as_array().is_some_and(|v| !v.is_empty()), "{q}: empty");
    }
    // 2.42 stores the custom-bucket histogram as the classic one Argus serves: its bounds (in
    // OpenMetrics form) and sum. (2.42 reads only the integer count fields of a classic
    // histogram, while the federation sends the float ones as Prometheus 3 does, so counts are
    // not compared.)
    let c = w.customs.last().unwrap();
    let les: Vec<String> = query(prom, "nh_custom_bucket", at)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["le"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(les, ["+Inf", "0.5", "1.0", "5.0"]);
    let got = query(prom, "nh_custom_sum", at);
    assert_eq!(got[0]["value"][1], Value::String(format!("{}", c.sum)));
}

/// Native histograms pushed in protobuf: `nh_push` (integer counts, native only) and `nh_both`
/// (a gauge histogram with native and classic buckets), as client_golang sends them.
fn pushed_families() -> Vec<MetricFamily> {
    use argus::expose::proto::{
        Bucket, BucketSpan as PSpan, Histogram as PHist, LabelPair, Metric,
    };
    let sp = |offset, length| PSpan {
        offset: Some(offset),
        length: Some(length),
    };
    let family = |name: &str, kind: MetricType, h: PHist| MetricFamily {
        name: Some(name.into()),
        help: Some(format!("{name} help")),
        r#type: Some(kind as i32),
        metric: vec![Metric {
            label: vec![LabelPair::new("a", "x")],
            histogram: Some(h),
            ..Default::default()
        }],
        unit: None,
    };
    vec![
        family(
            "nh_push",
            MetricType::Histogram,
            PHist {
                sample_count: Some(10),
                sample_sum: Some(12.5),
                schema: Some(1),
                zero_threshold: Some(0.001),
                zero_count: Some(2),
                positive_span: vec![sp(-1, 2), sp(2, 1)],
                positive_delta: vec![3, -1, 1],
                ..Default::default()
            },
        ),
        family(
            "nh_both",
            MetricType::GaugeHistogram,
            PHist {
                sample_count: Some(7),
                sample_sum: Some(-3.0),
                schema: Some(0),
                zero_threshold: Some(0.5),
                zero_count: Some(1),
                negative_span: vec![sp(1, 1)],
                negative_delta: vec![4],
                positive_span: vec![sp(1, 1)],
                positive_delta: vec![2],
                bucket: vec![
                    Bucket {
                        cumulative_count: Some(5),
                        upper_bound: Some(0.5),
                        ..Default::default()
                    },
                    Bucket {
                        cumulative_count: Some(7),
                        upper_bound: Some(2.0),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        ),
    ]
}

fn delimited(fams: &[MetricFamily]) -> Vec<u8> {
    let mut buf = Vec::new();
    argus::push::body::encode_delimited(fams, &mut buf);
    buf
}

/// The lines of a text exposition about families whose names start with `prefix`.
fn lines_of(text: &str, prefix: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            name.starts_with(prefix)
        })
        .map(str::to_string)
        .collect()
}

/// The `nh_*` families of `/api/v1/metrics`, push times masked.
fn nh_api(body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).expect("json");
    let mut out = serde_json::Map::new();
    for g in v["data"].as_array().expect("data") {
        for (name, fam) in g.as_object().expect("group") {
            if name.starts_with("nh_") {
                let mut fam = fam.clone();
                fam["time_stamp"] = Value::String("<TS>".into());
                out.insert(name.clone(), fam);
            }
        }
    }
    Value::Object(out)
}

/// The push requirement: a native histogram pushed in protobuf is kept (the same
/// `/metrics` in protobuf, text and `/api/v1/metrics` JSON as the real Pushgateway's), survives
/// a SIGKILL in the push store, and lands in storage as a native histogram, classic buckets
/// beside it when it has them; an invalid one is refused.
#[test]
fn pushed_native_histograms_are_kept_exposed_and_stored() {
    use crate::push::{KillOnDrop, free_port as push_port, http, wait_ready};
    const PG: &str = "/usr/bin/prometheus-pushgateway";
    let body = delimited(&pushed_families());
    let ct = ("Content-Type", PROTO_ACCEPT);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1s\n").unwrap();
    let push_addr = format!("127.0.0.1:{}", push_port());
    let args = [
        format!("--config.file={}", cfg.display()),
        format!("--push.listen-address={push_addr}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let data = dir.path().join("argus");
    let mut a = Argus::start(&data, &args);
    let r = a.request("PUT", "/metrics/job/j1", &[ct], &body);
    assert_eq!(r.status, 200, "{}", r.text());

    // Storage: one native histogram sample per round, and the classic series of `nh_both`.
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let got = query(a.addr, "nh_push", now_ms());
        if got.as_array().is_some_and(|v| !v.is_empty()) {
            break got;
        }
        assert!(Instant::now() < deadline, "nh_push not stored: {}", a.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        got[0]["metric"],
        json!({"__name__": "nh_push", "a": "x", "job": "j1"})
    );
    let h = &got[0]["histogram"][1];
    assert_eq!(
        (&h["count"], &h["sum"]),
        (&json!("10"), &json!("12.5")),
        "{h}"
    );
    let counts: Vec<&str> = h["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[3].as_str().unwrap())
        .collect();
    assert_eq!(
        counts,
        ["2", "3", "2", "3"],
        "zero bucket, then positive buckets: {h}"
    );
    let t = now_ms();
    let got = query(a.addr, "histogram_count(nh_both)", t);
    assert_eq!(got[0]["value"][1], "7");
    let got = query(a.addr, "nh_both_bucket", t);
    assert_eq!(
        got.as_array().map(Vec::len),
        Some(3),
        "0.5, 2 and +Inf: {got}"
    );

    // Durable: the push store keeps the native fields across a SIGKILL.
    let fams_before = decode_families(
        &http(
            &push_addr,
            "GET",
            "/metrics",
            &[("Accept", PROTO_ACCEPT)],
            b"",
        )
        .body,
    );
    a.kill9();
    let a = Argus::start(&data, &args);
    let r = http(
        &push_addr,
        "GET",
        "/metrics",
        &[("Accept", PROTO_ACCEPT)],
        b"",
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/vnd.google.protobuf")),
        "{:?}",
        r.headers
    );
    let fams_after = decode_families(&r.body);
    let nh = |f: &[MetricFamily]| -> Vec<MetricFamily> {
        f.iter()
            .filter(|f| f.name().starts_with("nh_"))
            .cloned()
            .collect()
    };
    assert_eq!(nh(&fams_after), nh(&fams_before));
    assert_eq!(nh(&fams_after).len(), 2);

    // An invalid native histogram (spans for 3 buckets, 2 deltas) is refused with a 400.
    let mut bad = pushed_families();
    if let Some(h) = bad[0].metric[0].histogram.as_mut() {
        h.positive_delta.pop();
    }
    let r = a.request("PUT", "/metrics/job/j2", &[ct], &delimited(&bad));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("invalid native histogram"),
        "{}",
        r.text()
    );

    // The oracle: the real Pushgateway given the same body.
    if !std::path::Path::new(PG).exists() {
        crate::missing(
            "native_histograms_edges::pushed_native_histograms_are_kept_exposed_and_stored",
            &format!("{PG} not installed (Debian package prometheus-pushgateway)"),
        );
        return;
    }
    let pg_addr = format!("127.0.0.1:{}", push_port());
    let _pg = KillOnDrop(
        std::process::Command::new(PG)
            .arg(format!("--web.listen-address={pg_addr}"))
            .arg(format!(
                "--persistence.file={}",
                dir.path().join("pg.data").display()
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start pushgateway"),
    );
    assert!(
        wait_ready(&pg_addr, "/-/ready", Duration::from_secs(10)),
        "pushgateway did not start"
    );
    // Text: Pushgateway 1.5.1's text encoder stops at a gauge histogram ("unknown metric
    // type": the text format has no such type), cutting the exposition short; Argus writes it
    // as a histogram. So the counter histogram is compared on its own first.
    let r = http(
        &pg_addr,
        "PUT",
        "/metrics/job/j1",
        &[ct],
        &delimited(&pushed_families()[..1]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (want, got) = (
        http(&pg_addr, "GET", "/metrics", &[], b"").text(),
        http(&push_addr, "GET", "/metrics", &[], b"").text(),
    );
    assert_eq!(
        lines_of(&got, "nh_push"),
        lines_of(&want, "nh_push"),
        "text /metrics"
    );
    assert_eq!(lines_of(&got, "nh_push").len(), 5, "{got}");
    assert_eq!(
        lines_of(&got, "nh_both")[1..4],
        [
            "# TYPE nh_both histogram",
            "nh_both_bucket{a=\"x\",instance=\"\",job=\"j1\",le=\"0.5\"} 5",
            "nh_both_bucket{a=\"x\",instance=\"\",job=\"j1\",le=\"2\"} 7",
        ]
    );
    let r = http(&pg_addr, "PUT", "/metrics/job/j1", &[ct], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let want = http(&pg_addr, "GET", "/metrics", &[], b"").text();
    assert!(
        lines_of(&want, "nh_both").len() < 3,
        "pushgateway was fixed: {want}"
    );
    // Protobuf carries the native histograms: the same families from both.
    let pg = http(
        &pg_addr,
        "GET",
        "/metrics",
        &[("Accept", PROTO_ACCEPT)],
        b"",
    );
    assert_eq!(
        nh(&decode_families(&pg.body)),
        nh(&fams_after),
        "protobuf /metrics: pushgateway (left) vs argus (right)"
    );
    let (want, got) = (
        http(&pg_addr, "GET", "/api/v1/metrics", &[], b""),
        http(&push_addr, "GET", "/api/v1/metrics", &[], b""),
    );
    assert_eq!(nh_api(&got.body), nh_api(&want.body), "/api/v1/metrics");
}

/// `[(t ms, value)]` of the float series `expr` over the hour before `at`.
fn floats_of(a: &Argus, expr: &str, at: i64) -> Vec<(i64, f64)> {
    let got = query(a.addr, &format!("{expr}[1h]"), at);
    got.as_array()
        .and_then(|r| r.first())
        .and_then(|s| s["values"].as_array())
        .into_iter()
        .flatten()
        .map(|v| {
            let t = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
            (t, v[1].as_str().unwrap().parse().unwrap())
        })
        .collect()
}

/// `[(t ms, count, number of buckets)]` of the histogram series `expr` over the hour before `at`.
fn histograms_of(a: &Argus, expr: &str, at: i64) -> Vec<(i64, String, usize)> {
    let got = query(a.addr, &format!("{expr}[1h]"), at);
    got[0]["histograms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let t = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
            let n = v[1]["buckets"].as_array().map_or(0, Vec::len);
            (t, v[1]["count"].as_str().unwrap().to_string(), n)
        })
        .collect()
}

/// Remote write 2.0 start ("created") timestamps with `--enable-feature=
/// created-timestamp-zero-ingestion`: a zero sample (a zero histogram of the same schema) at
/// the start timestamp when it is older than the sample and newer than the series' data, never
/// out of order even with an out-of-order window, never a rejection; the series-wide
/// `created_timestamp` of Prometheus 3.0–3.7 too. Without the feature nothing is added.
#[test]
fn start_timestamps_become_zero_samples_with_the_feature() {
    use argus::ingest::prompb_v2 as v2;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        "storage:\n  tsdb:\n    out_of_order_time_window: 1h\n",
    )
    .unwrap();
    let cfg_flag = format!("--config.file={}", cfg.display());
    let base = now_ms() - 600_000;
    let t = |i: i64| base + i * 10_000;
    // Floats: a counter started at t(0), sampled at t(1) and t(2), reset at t(3) (a new start
    // timestamp), sampled at t(4); a start timestamp equal to its sample's is ignored.
    let float_series = |v2: &mut v2::Request| {
        let ts = &mut v2.timeseries[0];
        for (s, st) in ts.samples.iter_mut().zip([t(0), t(0), t(3), t(6)]) {
            s.start_timestamp = st;
        }
        // Legacy senders: one created timestamp for the series.
        v2.timeseries[1].created_timestamp = t(0);
        for h in &mut v2.timeseries[2].histograms {
            h.start_timestamp = t(0);
        }
    };
    let v1 = WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: labels(&[("__name__", "ct_float"), ("job", "ct")]),
                samples: [(1, 5.0), (2, 7.0), (4, 1.0), (6, 2.0)]
                    .iter()
                    .map(|&(i, value)| Sample {
                        value,
                        timestamp: t(i),
                    })
                    .collect(),
                ..Default::default()
            },
            TimeSeries {
                labels: labels(&[("__name__", "ct_legacy"), ("job", "ct")]),
                samples: vec![
                    Sample {
                        value: 3.0,
                        timestamp: t(1),
                    },
                    Sample {
                        value: 4.0,
                        timestamp: t(2),
                    },
                ],
                ..Default::default()
            },
            TimeSeries {
                labels: labels(&[("__name__", "ct_hist"), ("job", "ct")]),
                histograms: vec![int_hist(t(1), 1), int_hist(t(2), 2)],
                ..Default::default()
            },
        ],
        metadata: vec![],
    };
    let post = |a: &Argus, v2: &v2::Request| {
        a.request(
            "POST",
            "/api/v1/write",
            &[
                (
                    "Content-Type",
                    "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                ),
                ("Content-Encoding", "snappy"),
            ],
            &remote_write_v2::encode(v2),
        )
    };
    let mut req = remote_write_v2::from_v1(&v1);
    float_series(&mut req);
    let at = t(7);

    let a = Argus::start(
        &dir.path().join("on"),
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=created-timestamp-zero-ingestion",
            &cfg_flag,
        ],
    );
    let r = post(&a, &req);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some("6"),
        "zero samples are not counted as written"
    );
    assert_eq!(
        floats_of(&a, "ct_float", at),
        [
            (t(0), 0.0),
            (t(1), 5.0),
            (t(2), 7.0),
            (t(3), 0.0),
            (t(4), 1.0),
            (t(6), 2.0)
        ]
    );
    assert_eq!(
        floats_of(&a, "ct_legacy", at),
        [(t(0), 0.0), (t(1), 3.0), (t(2), 4.0)]
    );
    let h1 = int_hist(t(1), 1);
    let hists = histograms_of(&a, "ct_hist", at);
    assert_eq!(hists.len(), 3, "{hists:?}");
    assert_eq!(
        hists[0],
        (t(0), "0".to_string(), 0),
        "zero histogram at the start"
    );
    assert_eq!(hists[1].1, h1.count_int.unwrap().to_string());
    // Schema kept: the zero histogram needs no new chunk layout (its bounds are h1's).
    let zero = query(a.addr, "ct_hist", t(0) + 1);
    assert_eq!(zero[0]["histogram"][1]["count"], "0", "{zero}");

    // A start timestamp older than the series' data adds nothing, even inside the
    // out-of-order window, and is not an error.
    let mut late = remote_write_v2::from_v1(&WriteRequest {
        timeseries: vec![TimeSeries {
            labels: labels(&[("__name__", "ct_float"), ("job", "ct")]),
            samples: vec![Sample {
                value: 3.0,
                timestamp: t(7),
            }],
            ..Default::default()
        }],
        metadata: vec![],
    });
    late.timeseries[0].samples[0].start_timestamp = t(5);
    let r = post(&a, &late);
    assert_eq!(r.status, 204, "{}", r.text());
    let got = floats_of(&a, "ct_float", t(8));
    assert_eq!(got.len(), 7, "{got:?}");
    assert!(!got.contains(&(t(5), 0.0)), "{got:?}");

    // Without the feature the start timestamps are ignored.
    let b = Argus::start(
        &dir.path().join("off"),
        &["--web.enable-remote-write-receiver", &cfg_flag],
    );
    let r = post(&b, &req);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        floats_of(&b, "ct_float", at),
        [(t(1), 5.0), (t(2), 7.0), (t(4), 1.0), (t(6), 2.0)]
    );
    assert_eq!(histograms_of(&b, "ct_hist", at).len(), 2);
}

/// Serves `body` as a protobuf exposition on a loopback port (one response per connection).
fn serve_protobuf(body: Vec<u8>) -> SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {PROTO_ACCEPT}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    addr
}

/// The protobuf scrape with `created-timestamp-zero-ingestion`: a counter's and a native
/// histogram's created timestamps become a zero sample (a zero histogram) before the first
/// scraped one, once; gauges and metrics without one get none.
#[test]
fn scraped_created_timestamps_become_zero_samples() {
    use argus::expose::proto::{
        BucketSpan as PSpan, Counter, Gauge, Histogram as PHist, Metric, Timestamp,
    };
    let ct = now_ms() - 30_000;
    let created = Some(Timestamp {
        seconds: ct / 1000,
        nanos: (ct % 1000) as i32 * 1_000_000,
    });
    let fam = |name: &str, kind: MetricType, m: Metric| MetricFamily {
        name: Some(name.into()),
        r#type: Some(kind as i32),
        metric: vec![m],
        ..Default::default()
    };
    let body = delimited(&[
        fam(
            "ct_requests_total",
            MetricType::Counter,
            Metric {
                counter: Some(Counter {
                    value: Some(5.0),
                    start_timestamp: created.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        fam(
            "ct_temp",
            MetricType::Gauge,
            Metric {
                gauge: Some(Gauge { value: Some(20.0) }),
                ..Default::default()
            },
        ),
        fam(
            "ct_latency",
            MetricType::Histogram,
            Metric {
                histogram: Some(PHist {
                    sample_count: Some(3),
                    sample_sum: Some(1.5),
                    schema: Some(2),
                    zero_threshold: Some(1e-3),
                    zero_count: Some(1),
                    positive_span: vec![PSpan {
                        offset: Some(-1),
                        length: Some(2),
                    }],
                    positive_delta: vec![1, 0],
                    start_timestamp: created,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
    ]);
    let target = serve_protobuf(body);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ct\n    \
             scrape_native_histograms: true\n    static_configs:\n      \
             - targets: [\"{target}\"]\n"
        ),
    )
    .unwrap();
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            &format!("--config.file={}", cfg.display()),
            "--enable-feature=created-timestamp-zero-ingestion",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let floats = loop {
        let got = floats_of(&a, "ct_requests_total", now_ms());
        if got.len() >= 3 {
            break got;
        }
        assert!(Instant::now() < deadline, "no scrapes: {}", a.log());
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(floats[0], (ct, 0.0), "{floats:?}");
    assert!(
        floats[1..].iter().all(|&(t, v)| v == 5.0 && t > ct),
        "{floats:?}"
    );
    let hists = histograms_of(&a, "ct_latency", now_ms());
    assert!(hists.len() >= 2, "{hists:?}");
    assert_eq!(hists[0], (ct, "0".to_string(), 0), "{hists:?}");
    assert!(
        hists[1..].iter().all(|h| h.1 == "3" && h.2 == 3),
        "{hists:?}"
    );
    let temps = floats_of(&a, "ct_temp", now_ms());
    assert!(temps.iter().all(|&(_, v)| v == 20.0), "{temps:?}");
}
