//! Remote read server through the real binary: `STREAMED_XOR_CHUNKS` answers decoded and
//! compared with what Debian's Prometheus 2.42 streams for the same data (the oracle for the
//! framing, the CRC and the XOR chunk encoding), and the `--storage.remote.read-*` bounds.

use crate::server::harness;

use crate::server::peer::{self, PROMETHEUS};
use argus::ingest::prompb::{TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use argus::remote::read::{LabelMatcher, Query, ReadRequest};
use argus::remote::read_stream::{self, ChunkedReadResponse};
use argus_storage::decode_prometheus_xor;
use harness::{Argus, Resp, now_ms, try_request};
use prost::Message;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Per query index and rendered labels: `(t, value bits)`.
type Streamed = BTreeMap<(i64, String), Vec<(i64, u64)>>;

/// Six series of 700 samples, 1 s apart from `t0`, with values that exercise every XOR case
/// (repeats, small and large changes, negative, integers and fractions).
fn data(t0: i64) -> Vec<TimeSeries> {
    let mut out = Vec::new();
    for s in 0..6i64 {
        let name = if s < 4 { "rr_a" } else { "rr_b" };
        let k = s.to_string();
        let samples: Vec<(i64, f64)> = (0..700i64)
            .map(|j| {
                let v = match s {
                    0 => (j / 10) as f64,
                    1 => (j as f64).sin() * 1e6,
                    2 => -(j as f64) * 0.125,
                    3 => 42.0,
                    4 => (j * j) as f64 / 3.0,
                    _ => 1e300 / (j as f64 + 1.0),
                };
                // Irregular spacing: every 7th gap is longer.
                (t0 + j * 1000 + (j / 7) * 333, v)
            })
            .collect();
        out.push(TimeSeries::from_pairs(
            &[("__name__", name), ("job", "rr"), ("k", &k)],
            &samples,
        ));
    }
    out
}

fn write(addr: SocketAddr, ts: Vec<TimeSeries>) {
    let body = encode(&WriteRequest {
        timeseries: ts,
        metadata: vec![],
    });
    let r = try_request(
        addr,
        "POST",
        "/api/v1/write",
        crate::server::remote::WRITE_V1,
        &body,
    )
    .unwrap();
    assert!(
        r.status == 204 || r.status == 200,
        "{} {}",
        r.status,
        r.text()
    );
}

fn eq(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: 0,
        name: name.into(),
        value: value.into(),
    }
}

/// Two queries over part of the data: all of `rr_a` in a middle window, `k="5"` over it all.
fn request(t0: i64, types: Vec<i32>) -> Vec<u8> {
    let r = ReadRequest {
        queries: vec![
            Query {
                start_timestamp_ms: t0 + 100_000,
                end_timestamp_ms: t0 + 400_000,
                matchers: vec![eq("__name__", "rr_a")],
            },
            Query {
                start_timestamp_ms: t0 - 1000,
                end_timestamp_ms: t0 + 2_000_000,
                matchers: vec![eq("k", "5"), eq("replica", "a")],
            },
        ],
        accepted_response_types: types,
    };
    snap::raw::Encoder::new()
        .compress_vec(&r.encode_to_vec())
        .unwrap()
}

fn post_read(addr: SocketAddr, body: &[u8]) -> Resp {
    try_request(
        addr,
        "POST",
        "/api/v1/read",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Read-Version", "0.1.0"),
        ],
        body,
    )
    .unwrap()
}

/// Decodes a streamed body; samples outside each query's range are dropped (Prometheus sends
/// whole chunks that overlap the range). Returns the samples and the frames.
fn decode(resp: &Resp, ranges: &[(i64, i64)]) -> (Streamed, Vec<ChunkedReadResponse>) {
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some(read_stream::CONTENT_TYPE),
        "content type"
    );
    let frames = read_stream::decode_frames(&resp.body, 16 << 20).unwrap();
    let mut out = Streamed::new();
    for f in &frames {
        assert_eq!(f.chunked_series.len(), 1, "one series per frame");
        let s = &f.chunked_series[0];
        let labels: Vec<String> = s
            .labels
            .iter()
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect();
        let (from, to) = ranges[f.query_index as usize];
        let dst = out.entry((f.query_index, labels.join(","))).or_default();
        for c in &s.chunks {
            assert_eq!(c.r#type, read_stream::ENCODING_XOR);
            let mut samples = Vec::new();
            decode_prometheus_xor(&mut samples, &c.data).unwrap();
            assert_eq!(samples.first().map(|s| s.0), Some(c.min_time_ms));
            assert_eq!(samples.last().map(|s| s.0), Some(c.max_time_ms));
            dst.extend(
                samples
                    .into_iter()
                    .filter(|(t, _)| (from..=to).contains(t))
                    .map(|(t, v)| (t, v.to_bits())),
            );
        }
    }
    out.retain(|_, v| !v.is_empty());
    (out, frames)
}

fn config(dir: &Path) -> String {
    let p = dir.join("argus.yml");
    std::fs::write(&p, "global:\n  external_labels:\n    replica: a\n").unwrap();
    p.display().to_string()
}

#[test]
fn streamed_chunks_match_prometheus() {
    if !peer::installed(PROMETHEUS, "prometheus", "streamed_chunks_match_prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            &format!("--config.file={cfg}"),
            "--web.enable-remote-write-receiver",
        ],
    );
    let (_p, paddr) = peer::prometheus(
        Path::new(&cfg),
        &dir.path().join("prom"),
        &["--web.enable-remote-write-receiver"],
    );
    peer::wait_ready(paddr, Duration::from_secs(60));
    let t0 = (now_ms() - 3_600_000) / 1000 * 1000;
    write(a.addr, data(t0));
    write(paddr, data(t0));
    let ranges = [(t0 + 100_000, t0 + 400_000), (t0 - 1000, t0 + 2_000_000)];
    // Prometheus 2.42 and Argus both pick the first accepted type they support.
    let body = request(t0, vec![1, 0]);
    let (want, _) = decode(&post_read(paddr, &body), &ranges);
    let (got, frames) = decode(&post_read(a.addr, &body), &ranges);
    assert_eq!(want.len(), 5, "{:?}", want.keys());
    assert_eq!(got, want);
    // Series come in label order within each query.
    let order: Vec<(i64, String)> = frames
        .iter()
        .map(|f| {
            let l = &f.chunked_series[0].labels;
            (f.query_index, format!("{l:?}"))
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}

#[test]
fn streamed_frames_and_sample_limits_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            &format!("--config.file={cfg}"),
            "--web.enable-remote-write-receiver",
            "--storage.remote.read-max-bytes-in-frame=600",
            "--storage.remote.read-sample-limit=1000",
            "--storage.remote.read-concurrent-limit=1",
        ],
    );
    let t0 = (now_ms() - 3_600_000) / 1000 * 1000;
    write(a.addr, data(t0));
    let ranges = [(t0 + 100_000, t0 + 400_000), (t0 - 1000, t0 + 2_000_000)];
    let (got, frames) = decode(&post_read(a.addr, &request(t0, vec![1])), &ranges);
    // Every sample in range arrives, in frames of at most 600 bytes plus one chunk.
    let expect: usize = data(t0)
        .iter()
        .map(|ts| {
            let s = ts
                .samples
                .iter()
                .filter(|s| (ranges[0].0..=ranges[0].1).contains(&s.timestamp));
            let n0 = if ts.labels[0].value == "rr_a" {
                s.count()
            } else {
                0
            };
            let n1 = if ts.labels.iter().any(|l| l.name == "k" && l.value == "5") {
                ts.samples.len()
            } else {
                0
            };
            n0 + n1
        })
        .sum();
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), expect);
    assert!(frames.len() > got.len(), "{} frames", frames.len());
    for f in &frames {
        let chunks = &f.chunked_series[0].chunks;
        let last = chunks.last().map_or(0, |c| c.encoded_len());
        assert!(
            f.encoded_len() <= 600 + last + 64,
            "{} bytes",
            f.encoded_len()
        );
    }
    // SAMPLES answers are bounded by --storage.remote.read-sample-limit (1000 < 1700 samples).
    let r = post_read(a.addr, &request(t0, vec![0]));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.text().trim(), "exceeded sample limit (1000)");
    // An unknown response type only: 400.
    let r = post_read(a.addr, &request(t0, vec![9]));
    assert_eq!(r.status, 400, "{}", r.text());
}

/// Samples of an instant range-vector query as `(t, value)` per rendered series.
fn query_range_vector(a: &Argus, q: &str) -> Vec<(String, Vec<(i64, f64)>)> {
    let path = format!(
        "/api/v1/query?query={}&time={}",
        harness::enc(q),
        now_ms() as f64 / 1000.0
    );
    let v = a.get(&path).json();
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let samples = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                    (t, p[1].as_str().unwrap().parse().unwrap())
                })
                .collect();
            (s["metric"].to_string(), samples)
        })
        .collect()
}

#[test]
fn remote_read_section_merges_another_argus_into_promql() {
    let dir = tempfile::tempdir().unwrap();
    let b = Argus::start(
        &dir.path().join("b"),
        &["--web.enable-remote-write-receiver"],
    );
    let now = now_ms() / 1000 * 1000;
    let (early, late) = (now - 50 * 60_000, now - 10 * 60_000);
    write(
        b.addr,
        vec![
            TimeSeries::from_pairs(
                &[("__name__", "rr_remote"), ("job", "b")],
                &[(early, 1.0), (late, 2.0)],
            ),
            TimeSeries::from_pairs(&[("__name__", "rr_both"), ("job", "b")], &[(early, 5.0)]),
        ],
    );
    let cfg = dir.path().join("a.yml");
    let section = |recent: bool| {
        format!(
            "remote_read:\n  - url: http://{}/api/v1/read\n    name: b\n    \
             read_recent: {recent}\n    required_matchers:\n      job: b\n",
            b.addr
        )
    };
    std::fs::write(&cfg, section(false)).unwrap();
    let a = Argus::start(
        &dir.path().join("a"),
        &[
            &format!("--config.file={}", cfg.display()),
            "--web.enable-remote-write-receiver",
            "--web.enable-lifecycle",
        ],
    );
    // A's own data starts 30 minutes ago.
    let local_t = now - 30 * 60_000;
    write(
        a.addr,
        vec![TimeSeries::from_pairs(
            &[("__name__", "rr_both"), ("job", "b")],
            &[(local_t, 7.0)],
        )],
    );
    let remote = r#"{"__name__":"rr_remote","job":"b"}"#.to_string();
    // read_recent: false: B is asked only for the time before A's first sample.
    assert_eq!(
        query_range_vector(&a, "rr_remote{job=\"b\"}[1h]"),
        vec![(remote.clone(), vec![(early, 1.0)])]
    );
    // A series both hold: local and remote samples merged by time.
    assert_eq!(
        query_range_vector(&a, "rr_both{job=\"b\"}[1h]"),
        vec![(
            r#"{"__name__":"rr_both","job":"b"}"#.to_string(),
            vec![(early, 5.0), (local_t, 7.0)]
        )]
    );
    // Without the required matcher B is not asked.
    assert_eq!(query_range_vector(&a, "rr_remote[1h]"), vec![]);
    // read_recent: true (after a reload): all of B's samples, as B answers them itself.
    std::fs::write(&cfg, section(true)).unwrap();
    assert_eq!(a.request("POST", "/-/reload", &[], b"").status, 200);
    let want = query_range_vector(&b, "rr_remote{job=\"b\"}[1h]");
    assert_eq!(want, vec![(remote, vec![(early, 1.0), (late, 2.0)])]);
    assert_eq!(query_range_vector(&a, "rr_remote{job=\"b\"}[1h]"), want);
    // A failing endpoint is skipped: A still answers from its own data.
    drop(b);
    assert_eq!(
        query_range_vector(&a, "rr_both{job=\"b\"}[1h]"),
        vec![(
            r#"{"__name__":"rr_both","job":"b"}"#.to_string(),
            vec![(local_t, 7.0)]
        )]
    );
}
