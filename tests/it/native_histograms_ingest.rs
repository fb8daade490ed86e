//! Native histograms remote-written (1.0 and 2.0) into the real binary come back unchanged
//! through remote read, also after a SIGKILL; invalid ones get a 400 and are counted.

use crate::server::harness::{Argus, now_ms};
use argus::ingest::prompb::{BucketSpan, Histogram, Label, TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use argus::ingest::remote_write_v2;
use argus::remote::read::{LabelMatcher, Query, ReadRequest, ReadResponse};
use prost::Message;

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

fn post_v1(a: &Argus, req: &WriteRequest) -> crate::server::harness::Resp {
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

fn read_back(a: &Argus, name: &str, from: i64, to: i64) -> Vec<Histogram> {
    let req = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: from,
            end_timestamp_ms: to,
            matchers: vec![LabelMatcher {
                r#type: 0,
                name: "__name__".into(),
                value: name.into(),
            }],
        }],
        accepted_response_types: vec![0],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let resp = a.request(
        "POST",
        "/api/v1/read",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
        &body,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&resp.body)
        .unwrap();
    let got = ReadResponse::decode(raw.as_slice()).unwrap();
    let ts: Vec<&TimeSeries> = got.results.iter().flat_map(|r| &r.timeseries).collect();
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
    let resp = post_v1(
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
    let resp = post_v1(
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
