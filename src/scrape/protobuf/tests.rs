#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::expose::proto::{Bucket, BucketSpan, Gauge, Quantile, Summary};

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan {
        offset: Some(offset),
        length: Some(length),
    }
}

/// A histogram with native fields (schema 0, buckets 1 and 2 of (0,2] etc.) and classic buckets.
pub(crate) fn histogram() -> Histogram {
    Histogram {
        sample_count: Some(6),
        sample_sum: Some(10.0),
        schema: Some(0),
        zero_threshold: Some(0.001),
        zero_count: Some(1),
        // Buckets 0, 1 and 4: counts 1, 2, 1 as deltas.
        positive_span: vec![span(0, 2), span(2, 1)],
        positive_delta: vec![1, 1, -1],
        negative_span: vec![span(-1, 1)],
        negative_delta: vec![1],
        bucket: vec![
            Bucket {
                cumulative_count: Some(3),
                upper_bound: Some(1.0),
                ..Default::default()
            },
            Bucket {
                cumulative_count: Some(5),
                upper_bound: Some(2.5),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

fn family(name: &str, kind: MetricType, metrics: Vec<Metric>) -> Vec<u8> {
    MetricFamily {
        name: Some(name.into()),
        r#type: Some(kind as i32),
        metric: metrics,
        ..Default::default()
    }
    .encode_length_delimited_to_vec()
}

fn body() -> Vec<u8> {
    let mut b = family(
        "temp",
        MetricType::Gauge,
        vec![Metric {
            label: vec![LabelPair::new("room", "a")],
            gauge: Some(Gauge { value: Some(21.5) }),
            timestamp_ms: Some(1234),
            ..Default::default()
        }],
    );
    b.extend(family(
        "rpc",
        MetricType::Summary,
        vec![Metric {
            summary: Some(Summary {
                sample_count: Some(4),
                sample_sum: Some(2.0),
                quantile: vec![Quantile {
                    quantile: Some(0.5),
                    value: Some(0.3),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }],
    ));
    b.extend(family(
        "lat",
        MetricType::Histogram,
        vec![Metric {
            histogram: Some(histogram()),
            ..Default::default()
        }],
    ));
    b
}

fn render(s: &Sample) -> String {
    let labels: Vec<String> = s
        .labels
        .iter()
        .map(|l| format!("{}={}", l.name, l.value))
        .collect();
    let v = match &s.value {
        Value::Float(f) => f.to_string(),
        Value::Histogram(h) => format!("hist(count={} sum={})", h.count, h.sum),
    };
    format!("{} {v}", labels.join(","))
}

#[test]
fn decodes_every_kind() {
    let mut out = Vec::new();
    let opts = Options {
        native_histograms: true,
        ..Default::default()
    };
    decode(&body(), &opts, &mut out).unwrap();
    let got: Vec<String> = out.iter().map(render).collect();
    assert_eq!(
        got,
        vec![
            "__name__=temp,room=a 21.5",
            "__name__=rpc,quantile=0.5 0.3",
            "__name__=rpc_sum 2",
            "__name__=rpc_count 4",
            "__name__=lat hist(count=6 sum=10)",
        ]
    );
    assert_eq!(out[0].timestamp, Some(1234));
    let Value::Histogram(h) = &out[4].value else {
        unreachable!()
    };
    assert_eq!(h.positive_spans, vec![Span::new(0, 2), Span::new(2, 1)]);
    assert_eq!(h.positive_buckets, vec![1.0, 2.0, 1.0]);
    assert_eq!(h.negative_buckets, vec![1.0]);
    assert_eq!((h.zero_threshold, h.zero_count), (0.001, 1.0));
    assert_eq!(h.counter_reset_hint, CounterResetHint::Unknown);
    // Keys are unique and the histogram's differs from a float series of the same labels.
    let mut keys: Vec<_> = out.iter().map(|s| s.key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), out.len());
}

#[test]
fn created_timestamps_only_with_the_feature_and_only_where_they_exist() {
    use crate::expose::proto::{Counter, Metric, MetricFamily, MetricType, Timestamp};
    let ts = |seconds, nanos| Some(Timestamp { seconds, nanos });
    let fam = |name: &str, kind: MetricType, m: Metric| MetricFamily {
        name: Some(name.into()),
        r#type: Some(kind as i32),
        metric: vec![m],
        ..Default::default()
    };
    let mut hist = histogram();
    hist.start_timestamp = ts(1_700_000_000, 250_999_999);
    let fams = [
        fam(
            "c",
            MetricType::Counter,
            Metric {
                counter: Some(Counter {
                    value: Some(3.0),
                    start_timestamp: ts(1_700_000_001, 0),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        fam(
            "no_ct",
            MetricType::Counter,
            Metric {
                counter: Some(Counter {
                    value: Some(1.0),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        fam(
            "h",
            MetricType::Histogram,
            Metric {
                histogram: Some(hist),
                ..Default::default()
            },
        ),
    ];
    let mut body = Vec::new();
    crate::push::body::encode_delimited(&fams, &mut body);
    let mut out = Vec::new();
    let mut opts = Options {
        native_histograms: true,
        always_classic: true,
        ..Default::default()
    };
    decode(&body, &opts, &mut out).unwrap();
    assert!(out.iter().all(|s| s.start_ms.is_none()), "feature off");
    opts.ct_zero_ingestion = true;
    decode(&body, &opts, &mut out).unwrap();
    let got: Vec<(String, Option<i64>)> = out
        .iter()
        .map(|s| (render(s), s.start_ms))
        .filter(|(r, _)| !r.contains("_bucket"))
        .collect();
    let ms = Some(1_700_000_000_250);
    assert_eq!(
        got,
        [
            ("__name__=c 3".to_string(), Some(1_700_000_001_000)),
            ("__name__=no_ct 1".to_string(), None),
            ("__name__=h hist(count=6 sum=10)".to_string(), ms),
            ("__name__=h_sum 10".to_string(), ms),
            ("__name__=h_count 6".to_string(), ms),
        ]
    );
}

#[test]
fn classic_buckets_when_native_is_off_or_also_wanted() {
    let classic = [
        "__name__=lat_bucket,le=1.0 3",
        "__name__=lat_bucket,le=2.5 5",
        "__name__=lat_bucket,le=+Inf 6",
        "__name__=lat_sum 10",
        "__name__=lat_count 6",
    ];
    let mut out = Vec::new();
    decode(&body(), &Options::default(), &mut out).unwrap();
    let got: Vec<String> = out.iter().skip(4).map(render).collect();
    assert_eq!(got, classic);
    let opts = Options {
        native_histograms: true,
        always_classic: true,
        ..Default::default()
    };
    decode(&body(), &opts, &mut out).unwrap();
    let got: Vec<String> = out.iter().skip(4).map(render).collect();
    let mut want = vec!["__name__=lat hist(count=6 sum=10)".to_string()];
    want.extend(classic.iter().map(|s| s.to_string()));
    assert_eq!(got, want);
}

#[test]
fn bucket_limit_and_min_factor_lower_the_schema() {
    let mut h = to_native(&histogram(), false).unwrap();
    // Positive 0,1,4 and negative -1: 4 buckets. Each step merges i into (i+1)>>1:
    // schema -1: positive 0,1,2, negative 0 (still 4); schema -2: positive 0,1 (1 and 2+1).
    reduce_resolution(&mut h, 3, 0.0).unwrap();
    assert_eq!(h.schema, -2);
    assert_eq!(h.positive_spans, vec![Span::new(0, 2)]);
    assert_eq!(h.positive_buckets, vec![1.0, 3.0]);
    assert_eq!(h.negative_spans, vec![Span::new(0, 1)]);
    assert_eq!(h.check_layout(), Ok(()));
    assert_eq!(
        h.positive_buckets.iter().sum::<f64>()
            + h.negative_buckets.iter().sum::<f64>()
            + h.zero_count,
        h.count
    );
    // Growth factor 4 needs schema -1 (base 4); schema 0 has base 2.
    let mut h = to_native(&histogram(), false).unwrap();
    reduce_resolution(&mut h, 0, 4.0).unwrap();
    assert_eq!(h.schema, -1);
    // A limit that even schema -4 cannot meet is an error.
    let mut h = to_native(&histogram(), false).unwrap();
    assert!(reduce_resolution(&mut h, 1, 0.0).is_err());
}

#[test]
fn bad_bodies_fail_cleanly() {
    let mut out = Vec::new();
    let e = decode(b"\x05abc", &Options::default(), &mut out).unwrap_err();
    assert!(
        matches!(e, DecodeError::Protobuf { offset: 0, .. }),
        "{e:?}"
    );
    let mut h = histogram();
    h.positive_delta.pop();
    let b = family(
        "bad",
        MetricType::Histogram,
        vec![Metric {
            histogram: Some(h),
            ..Default::default()
        }],
    );
    let opts = Options {
        native_histograms: true,
        ..Default::default()
    };
    let e = decode(&b, &opts, &mut out).unwrap_err();
    assert!(matches!(e, DecodeError::Histogram { .. }), "{e:?}");
}

#[test]
fn classic_buckets_convert_to_custom_bucket_histograms() {
    // Native histograms off: the classic buckets (1, 2.5, +Inf) become one NHCB sample, and the
    // classic series are kept only with always_classic.
    let mut out = Vec::new();
    let mut opts = Options {
        convert_nhcb: true,
        ..Default::default()
    };
    decode(&body(), &opts, &mut out).unwrap();
    let hists: Vec<&Sample> = out
        .iter()
        .filter(|s| matches!(s.value, Value::Histogram(_)))
        .collect();
    assert_eq!(hists.len(), 1);
    let Value::Histogram(h) = &hists[0].value else {
        unreachable!()
    };
    assert_eq!(h.schema, argus_storage::histogram::CUSTOM_BUCKETS_SCHEMA);
    assert_eq!(h.custom_values, vec![1.0, 2.5]);
    assert_eq!(h.positive_buckets, vec![3.0, 2.0, 1.0]);
    assert_eq!((h.count, h.sum), (6.0, 10.0));
    assert!(!out.iter().any(|s| render(s).contains("lat_bucket")));
    opts.always_classic = true;
    decode(&body(), &opts, &mut out).unwrap();
    assert_eq!(
        out.iter()
            .filter(|s| render(s).contains("lat_bucket"))
            .count(),
        3
    );
    // Native histograms on: the native one wins, nothing is converted.
    opts.native_histograms = true;
    decode(&body(), &opts, &mut out).unwrap();
    assert!(out.iter().all(|s| match &s.value {
        Value::Histogram(h) => h.schema == 0,
        Value::Float(_) => true,
    }));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut out = Vec::new();
            let opts = Options { native_histograms: true, always_classic: true, bucket_limit: 2, min_bucket_factor: 1.5, ..Options::default() };
            let _ = decode(&bytes, &opts, &mut out);
        }

        #[test]
        fn gauge_round_trip(name in "[a-z_]{1,10}", v in any::<f64>().prop_filter("not NaN", |v| !v.is_nan()), t in any::<i64>()) {
            let b = family(&name, MetricType::Gauge, vec![Metric {
                gauge: Some(Gauge { value: Some(v) }),
                timestamp_ms: Some(t),
                ..Default::default()
            }]);
            let mut out = Vec::new();
            decode(&b, &Options::default(), &mut out).unwrap();
            prop_assert_eq!(out.len(), 1);
            prop_assert_eq!(&out[0].value, &Value::Float(v));
            prop_assert_eq!(out[0].timestamp, Some(t));
            prop_assert_eq!(&out[0].labels, &vec![Label::new("__name__", name.as_str())]);
        }

        #[test]
        fn reduction_keeps_the_total(counts in proptest::collection::vec(0u32..50, 1..40), offset in -20i32..20, limit in 1u64..10) {
            let mut h = FloatHistogram {
                schema: 3,
                positive_spans: vec![Span::new(offset, counts.len() as u32)],
                positive_buckets: counts.iter().map(|c| f64::from(*c)).collect(),
                ..Default::default()
            };
            let total: f64 = h.positive_buckets.iter().sum();
            if reduce_resolution(&mut h, limit, 0.0).is_ok() {
                prop_assert!(h.positive_buckets.len() as u64 <= limit);
            }
            prop_assert_eq!(h.check_layout(), Ok(()));
            prop_assert_eq!(h.positive_buckets.iter().sum::<f64>(), total);
        }
    }
}
