//! Native histograms remote-written (1.0 and 2.0) into the real binary come back unchanged
//! through remote read, also after a SIGKILL; invalid ones get a 400 and are counted.

use crate::server::harness::{Argus, now_ms};
use crate::server::remote;
use argus::ingest::prompb::{BucketSpan, Histogram, Label, TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use argus::ingest::remote_write_v2;

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan { offset, length }
}

/// An integer histogram at `t` with counts growing with `i` (a reset at `i == 5`).
fn int_hist(t: i64, i: i64) -> Histogram {
    let n = if i >= 5 { i - 5 } else { i };
    // Buckets 1+n, 2+n, n, 3 → deltas.
    let b = [1 + n, 2 + n, n, 3];
    let zero = n as u64;
    Histogram {
        count_int: Some(b.iter().sum::<i64>() as u64 + zero),
        zero_count_int: Some(zero),
        sum: n as f64 * 2.5,
        schema: 3,
        zero_threshold: 1e-128,
        positive_spans: vec![span(-2, 2), span(3, 2)],
        positive_deltas: vec![b[0], b[1] - b[0], b[2] - b[1], b[3] - b[2]],
        reset_hint: if i == 5 { 1 } else { 0 },
        timestamp: t,
        ..Default::default()
    }
}

/// A float gauge histogram with custom bounds.
fn float_hist(t: i64, i: i64) -> Histogram {
    // Fractional counts: a float histogram whose counts are all whole reads back in integer
    // form (the storage keeps one count type, `f64`).
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

fn labels(name: &str) -> Vec<Label> {
    vec![
        Label {
            name: "__name__".into(),
            value: name.into(),
        },
        Label {
            name: "job".into(),
            value: "nh".into(),
        },
    ]
}

fn read_back(a: &Argus, name: &str, from: i64, to: i64) -> Vec<Histogram> {
    let got = remote::read(a, name, from, to);
    let ts = remote::series(&got);
    assert_eq!(ts.len(), 1, "one series {name}");
    assert!(ts[0].samples.is_empty(), "no float samples");
    ts[0].histograms.clone()
}

/// What the stored histograms read back as: hints are the storage's (first sample of a chunk
/// keeps the sent hint, later ones say "no counter reset"), so they are compared apart.
fn without_hints(h: &[Histogram]) -> Vec<Histogram> {
    h.iter()
        .map(|h| Histogram {
            reset_hint: 0,
            ..h.clone()
        })
        .collect()
}

#[test]
fn remote_written_histograms_read_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    let t0 = now_ms() - 120_000;
    let ints: Vec<Histogram> = (0..10).map(|i| int_hist(t0 + i * 10_000, i)).collect();
    let resp = remote::write(
        &a,
        &WriteRequest {
            timeseries: vec![TimeSeries {
                labels: labels("nh_int"),
                histograms: ints.clone(),
                ..Default::default()
            }],
            metadata: vec![],
        },
    );
    assert_eq!(resp.status, 204, "{}", resp.text());

    // 2.0: float histograms; the response counts them.
    let floats: Vec<Histogram> = (0..6).map(|i| float_hist(t0 + i * 10_000, i)).collect();
    let v2 = remote_write_v2::from_v1(&WriteRequest {
        timeseries: vec![TimeSeries {
            labels: labels("nh_float"),
            histograms: floats.clone(),
            ..Default::default()
        }],
        metadata: vec![],
    });
    let resp = a.request(
        "POST",
        "/api/v1/write",
        &[
            (
                "Content-Type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            ),
            ("Content-Encoding", "snappy"),
        ],
        &remote_write_v2::encode(&v2),
    );
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(
        resp.header("x-prometheus-remote-write-histograms-written"),
        Some("6")
    );
    assert_eq!(
        resp.header("x-prometheus-remote-write-samples-written"),
        Some("0")
    );

    let check = |a: &Argus, what: &str| {
        let got = read_back(a, "nh_int", t0, t0 + 200_000);
        assert_eq!(without_hints(&got), without_hints(&ints), "{what}: integer");
        // The reset at i == 5 is kept as the sender's hint.
        assert_eq!(got[5].reset_hint, 1, "{what}: reset hint");
        assert_eq!(got[0].count_int, ints[0].count_int);
        let got = read_back(a, "nh_float", t0, t0 + 200_000);
        assert_eq!(
            got, floats,
            "{what}: float gauge histograms, hints included"
        );
    };
    check(&a, "live");

    // PromQL sees them: histogram_count/histogram_sum of the newest sample, and the native
    // histogram itself in the JSON.
    let at = (t0 + 90_000) as f64 / 1000.0;
    let q = |expr: &str| {
        let r = a.get(&format!(
            "/api/v1/query?query={}&time={at}",
            crate::server::harness::enc(expr)
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["data"]["result"][0].clone()
    };
    let count = q("histogram_count(nh_int)")["value"][1]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(count, ints[9].count_int.unwrap().to_string());
    let sum = q("histogram_sum(nh_int)")["value"][1]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sum.parse::<f64>().unwrap(), ints[9].sum);
    let h = q("nh_int");
    assert_eq!(
        h["histogram"][1]["count"].as_str(),
        Some(ints[9].count_int.unwrap().to_string().as_str()),
        "{h}"
    );

    // Acknowledged histograms survive a SIGKILL (WAL replay).
    a.kill9();
    let a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    check(&a, "after SIGKILL");

    // Invalid histograms: 400 naming the problem, the valid rest of the request kept, counted.
    let mut bad = int_hist(t0 + 150_000, 9);
    bad.positive_deltas.pop();
    let mut bad_schema = int_hist(t0 + 160_000, 9);
    bad_schema.schema = 12;
    let good = int_hist(t0 + 170_000, 9);
    let resp = remote::write(
        &a,
        &WriteRequest {
            timeseries: vec![TimeSeries {
                labels: labels("nh_int"),
                histograms: vec![bad, bad_schema, good.clone()],
                ..Default::default()
            }],
            metadata: vec![],
        },
    );
    assert_eq!(resp.status, 400);
    let text = resp.text();
    assert!(
        text.contains("positive side: spans need 4 buckets, have 3 buckets"),
        "{text}"
    );
    assert!(text.contains("invalid schema"), "{text}");
    let got = read_back(&a, "nh_int", t0 + 140_000, t0 + 200_000);
    assert_eq!(without_hints(&got), without_hints(&[good]));
    let metrics = a.get("/metrics").text();
    assert!(
        metrics
            .contains("argus_remote_write_samples_rejected_total{reason=\"native_histogram\"} 2"),
        "{metrics}"
    );
}

/// Deterministic realistic series: `series` cumulative latency histograms (schema 3, buckets
/// appearing as observations reach them), one sample every 15 s for `steps` steps from `t0`.
fn latency_series(series: usize, steps: usize, t0: i64) -> Vec<(Vec<Label>, Vec<Histogram>)> {
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    (0..series)
        .map(|s| {
            let mut counts: std::collections::BTreeMap<i32, u64> = Default::default();
            let (mut count, mut sum) = (0u64, 0.0f64);
            let hs = (0..steps)
                .map(|i| {
                    let n = 20 + next() % 60;
                    for _ in 0..n {
                        // Roughly log-normal latencies around 50 ms (product of uniforms).
                        let u = |x: u64| (x % 10_000) as f64 / 10_000.0 + 0.01;
                        let v =
                            0.05 * (u(next()) * 4.0) * (u(next()) * 2.0) * (1.0 + s as f64 * 0.1);
                        let idx = (v.log2() * 8.0).ceil() as i32;
                        *counts.entry(idx).or_default() += 1;
                        count += 1;
                        sum += v;
                    }
                    // Spans over the populated indexes (gaps of up to 2 empty buckets are
                    // filled, as client libraries do).
                    let mut spans: Vec<BucketSpan> = Vec::new();
                    let mut deltas = Vec::new();
                    let (mut prev_idx, mut prev_count) = (None::<i32>, 0i64);
                    for (&idx, &c) in &counts {
                        match prev_idx {
                            Some(p) if idx - p <= 3 => {
                                for _ in p + 1..idx {
                                    deltas.push(-prev_count);
                                    prev_count = 0;
                                }
                                if let Some(last) = spans.last_mut() {
                                    last.length += (idx - p) as u32;
                                }
                            }
                            Some(p) => spans.push(span(idx - p - 1, 1)),
                            None => spans.push(span(idx, 1)),
                        }
                        deltas.push(c as i64 - prev_count);
                        prev_count = c as i64;
                        prev_idx = Some(idx);
                    }
                    Histogram {
                        count_int: Some(count),
                        zero_count_int: Some(0),
                        sum,
                        schema: 3,
                        zero_threshold: 1e-128,
                        positive_spans: spans,
                        positive_deltas: deltas,
                        timestamp: t0 + i as i64 * 15_000,
                        ..Default::default()
                    }
                })
                .collect();
            (labels(&format!("latency_{s}")), hs)
        })
        .collect()
}

/// Sums the data bytes of the chunks in Prometheus block chunk segments (`len uvarint │
/// encoding u8 │ data │ CRC32` after an 8-byte header), and counts the chunks.
fn prometheus_chunk_bytes(chunks_dir: &std::path::Path) -> (u64, u64) {
    let (mut bytes, mut n) = (0u64, 0u64);
    for e in std::fs::read_dir(chunks_dir).unwrap() {
        let b = std::fs::read(e.unwrap().path()).unwrap();
        let mut pos = 8;
        while pos < b.len() {
            let (mut len, mut shift) = (0u64, 0);
            loop {
                let x = b[pos];
                pos += 1;
                len |= u64::from(x & 0x7f) << shift;
                shift += 7;
                if x < 0x80 {
                    break;
                }
            }
            if len == 0 {
                break;
            }
            pos += 1 + len as usize + 4;
            bytes += len;
            n += 1;
        }
    }
    (bytes, n)
}

/// Bytes per histogram sample of Argus's chunk encoding against Prometheus 2.42's on the same
/// data: the series are remote-written into real Prometheus (`native-histograms` feature), a
/// snapshot writes its head as a block, and its chunk data bytes are summed; the same series
/// go through Argus's codec cut as its head cuts them (120 samples) and as its blocks do.
#[test]
fn histogram_chunk_bytes_per_sample_vs_prometheus() {
    let bin = crate::server::peer::PROMETHEUS;
    if !crate::server::peer::installed(
        bin,
        "prometheus",
        "histogram_chunk_bytes_per_sample_vs_prometheus",
    ) {
        return;
    }
    let (series_n, steps) = (10, 480);
    let t0 = now_ms() - 2 * 3_600_000;
    let data = latency_series(series_n, steps, t0);
    let total = (series_n * steps) as f64;

    // Argus: the storage's codec, 120-sample chunks (head) and one chunk per block cut.
    let as_float: Vec<Vec<(i64, argus_storage::FloatHistogram)>> = data
        .iter()
        .map(|(_, hs)| {
            hs.iter()
                .map(|h| {
                    (
                        h.timestamp,
                        argus::ingest::remote_write_histogram::to_float_histogram(h).unwrap(),
                    )
                })
                .collect()
        })
        .collect();
    let argus_bytes = |per_chunk: usize| -> (u64, u64) {
        let (mut b, mut n) = (0u64, 0u64);
        for s in &as_float {
            for part in s.chunks(per_chunk) {
                for c in argus_storage::internals::histogram_chunk_encode(part) {
                    b += c.len() as u64;
                    n += 1;
                }
            }
        }
        (b, n)
    };
    let (a120, a120n) = argus_bytes(120);
    let (a480, a480n) = argus_bytes(480);

    // Prometheus.
    let dir = tempfile::tempdir().unwrap();
    let port = crate::server::harness::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let mut child = std::process::Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--enable-feature=native-histograms")
        .arg("--web.enable-remote-write-receiver")
        .arg("--web.enable-admin-api")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let req = |method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]| {
        crate::server::harness::try_request(addr, method, path, headers, body)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !req("GET", "/-/ready", &[], b"").is_ok_and(|r| r.status == 200) {
        assert!(std::time::Instant::now() < deadline, "prometheus not ready");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for step in (0..steps).step_by(60) {
        let wr = WriteRequest {
            timeseries: data
                .iter()
                .map(|(l, hs)| TimeSeries {
                    labels: l.clone(),
                    histograms: hs[step..(step + 60).min(steps)].to_vec(),
                    ..Default::default()
                })
                .collect(),
            metadata: vec![],
        };
        let r = req(
            "POST",
            "/api/v1/write",
            crate::server::remote::WRITE_V1,
            &encode(&wr),
        )
        .unwrap();
        assert_eq!(r.status, 204, "prometheus refused: {}", r.text());
    }
    let r = req("POST", "/api/v1/admin/tsdb/snapshot", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let name = r.json()["data"]["name"].as_str().unwrap().to_string();
    let snap = dir.path().join("data/snapshots").join(name);
    let (mut p, mut pn) = (0u64, 0u64);
    for b in std::fs::read_dir(&snap).unwrap() {
        let (x, n) = prometheus_chunk_bytes(&b.unwrap().path().join("chunks"));
        p += x;
        pn += n;
    }
    let _ = child.kill();
    let _ = child.wait();
    let per = |b: u64| b as f64 / total;
    eprintln!(
        "histogram chunk data bytes/sample over {total} samples: Prometheus 2.42 {:.2} ({pn} \
         chunks); Argus 120-sample chunks {:.2} ({a120n} chunks), block chunks {:.2} ({a480n} \
         chunks)",
        per(p),
        per(a120),
        per(a480)
    );
    assert!(pn > 0, "prometheus wrote histogram chunks");
    assert!(
        per(a120) <= per(p) * 1.05,
        "Argus's histogram chunks must stay near Prometheus's size"
    );
}
