#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use crate::scrape::cache::{AppendOptions, SeriesCache};
use crate::scrape::expfmt::Format;
use argus_storage::testing::MemStorage;
use argus_storage::{Appendable, Labels, SampleValue};

fn classic(buckets: &[(f64, f64)], count: Option<f64>, sum: f64) -> Option<FloatHistogram> {
    let mut c = Classic::default();
    for &(le, n) in buckets {
        c.set_bucket(le, n);
    }
    if let Some(n) = count {
        c.set_count(n);
    }
    c.set_sum(sum);
    c.convert()
}

#[test]
fn classic_buckets_convert_as_prometheus() {
    let inf = f64::INFINITY;
    let h = classic(&[(0.1, 3.0), (1.0, 5.0), (inf, 6.0)], Some(6.0), 2.5).unwrap();
    assert_eq!(h.schema, CUSTOM_BUCKETS_SCHEMA);
    assert_eq!(h.custom_values, vec![0.1, 1.0]);
    assert_eq!(h.positive_buckets, vec![3.0, 2.0, 1.0]);
    assert_eq!(h.positive_spans, vec![Span::new(0, 3)]);
    assert_eq!((h.count, h.sum), (6.0, 2.5));
    // Buckets in any order; a repeated `le` keeps the first count.
    let shuffled = classic(
        &[(inf, 6.0), (1.0, 5.0), (0.1, 3.0), (1.0, 4.0)],
        Some(6.0),
        2.5,
    );
    assert_eq!(shuffled.as_ref(), Some(&h));
    // No +Inf bucket: added with the count. No count: the highest bucket's.
    let no_inf = classic(&[(0.1, 3.0), (1.0, 5.0)], Some(6.0), 2.5);
    assert_eq!(no_inf.as_ref(), Some(&h));
    let no_count = classic(&[(0.1, 3.0), (1.0, 5.0), (inf, 6.0)], None, 2.5);
    assert_eq!(no_count.as_ref(), Some(&h));
    // Only a count: one bucket, no bounds. Fractional counts stay.
    let only = classic(&[], Some(2.5), 1.0).unwrap();
    assert_eq!(
        (only.positive_buckets, only.custom_values),
        (vec![2.5], vec![])
    );
    // Dropped: nothing, not cumulative, count disagreeing with +Inf, negative or NaN counts.
    let check_none = |b: &[(f64, f64)], c: Option<f64>| assert_eq!(classic(b, c, 0.0), None);
    check_none(&[], None);
    check_none(&[(0.1, 3.0), (1.0, 2.0)], None);
    check_none(&[(1.0, 2.0), (0.1, 3.0)], None);
    check_none(&[(0.1, 3.0), (inf, 6.0)], Some(7.0));
    check_none(&[(0.1, 3.0)], Some(2.0));
    check_none(&[(0.1, -1.0)], None);
    check_none(&[(0.1, 1.0)], Some(f64::NAN));
    check_none(&[(f64::NEG_INFINITY, 1.0), (0.1, 2.0)], None);
}

fn scrape(body: &str, keep_classic: bool) -> Vec<(Labels, Vec<(i64, SampleValue)>)> {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let mut o = AppendOptions {
        honor_timestamps: true,
        ..Default::default()
    };
    o.protobuf.convert_nhcb = true;
    o.protobuf.always_classic = keep_classic;
    let mut app = s.appender();
    c.append_body(body.as_bytes(), Format::Text, 1000, app.as_mut(), &o)
        .unwrap();
    app.commit().unwrap();
    s.dump_values()
}

const BODY: &str = "\
# TYPE rpc histogram
rpc_bucket{code=\"200\",le=\"0.1\"} 3
rpc_bucket{code=\"200\",le=\"1\"} 5
rpc_bucket{code=\"200\",le=\"+Inf\"} 6
rpc_sum{code=\"200\"} 2.5
rpc_count{code=\"200\"} 6
rpc_bucket{code=\"500\",le=\"0.1\"} 0
rpc_bucket{code=\"500\",le=\"1\"} 1
rpc_bucket{code=\"500\",le=\"+Inf\"} 1
rpc_sum{code=\"500\"} 0.5
rpc_count{code=\"500\"} 1
# TYPE lat summary
lat_sum 1
lat_count 2
# TYPE up_like gauge
up_like 1
";

fn names(got: &[(Labels, Vec<(i64, SampleValue)>)]) -> Vec<String> {
    got.iter()
        .map(|(l, v)| {
            let kind = match v[0].1 {
                SampleValue::Float(_) => "float",
                SampleValue::Histogram(_) => "histogram",
            };
            let rest: Vec<String> = l
                .iter()
                .filter(|x| x.name != METRIC_NAME)
                .map(|x| format!("{}={:?}", x.name, x.value))
                .collect();
            format!(
                "{}{{{}}} {kind}",
                l.metric_name().unwrap_or(""),
                rest.join(",")
            )
        })
        .collect()
}

#[test]
fn text_histograms_become_one_native_histogram_per_label_set() {
    let got = scrape(BODY, false);
    let mut n = names(&got);
    n.sort();
    assert_eq!(
        n,
        vec![
            "lat_count{} float",
            "lat_sum{} float",
            "rpc{code=\"200\"} histogram",
            "rpc{code=\"500\"} histogram",
            "up_like{} float",
        ]
    );
    let h200 = got
        .iter()
        .find(|(l, _)| l.get("code") == Some("200"))
        .map(|(_, v)| v[0].clone())
        .unwrap();
    let SampleValue::Histogram(h) = h200.1 else {
        panic!("not a histogram");
    };
    assert_eq!(h200.0, 1000);
    assert_eq!(h.custom_values, vec![0.1, 1.0]);
    assert_eq!(h.positive_buckets, vec![3.0, 2.0, 1.0]);
    assert_eq!((h.count, h.sum), (6.0, 2.5));
}

#[test]
fn classic_series_kept_with_always_scrape_classic() {
    let got = scrape(BODY, true);
    let n = names(&got);
    for want in [
        "rpc{code=\"200\"} histogram",
        "rpc_bucket{code=\"200\",le=\"0.1\"} float",
        "rpc_sum{code=\"500\"} float",
        "rpc_count{code=\"500\"} float",
    ] {
        assert!(n.iter().any(|x| x == want), "{want} missing from {n:?}");
    }
    assert_eq!(n.len(), 5 + 10);
}

#[test]
fn interrupted_or_untyped_histograms() {
    // Without `# TYPE … histogram` nothing converts; a comment ends a histogram early (each
    // part converts on its own, as Prometheus's parser does).
    let body = "rpc_bucket{le=\"1\"} 1\nrpc_count 1\n";
    let n = names(&scrape(body, false));
    assert_eq!(n.len(), 2, "{n:?}");
    let body = "# TYPE rpc histogram\nrpc_bucket{le=\"1\"} 1\n# HELP x y\nrpc_count 1\n";
    let got = scrape(body, false);
    assert_eq!(names(&got), vec!["rpc{} histogram"]);
    // Only the first part counts at t=1000 (the second is a duplicate sample).
    let SampleValue::Histogram(h) = &got[0].1[0].1 else {
        panic!("not a histogram");
    };
    assert_eq!(h.positive_buckets, vec![1.0, 0.0]);
}
