#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use super::*;
use crate::ingest::prompb::{self, TimeSeries};
use crate::remote::read::QueryResult;
use argus_storage::testing::MemStorage;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

fn collect(set: &mut dyn SeriesSet) -> Vec<(String, Vec<(i64, f64)>)> {
    let mut out = Vec::new();
    while set.next() {
        let mut s = Vec::new();
        let mut it = set.samples();
        while it.next() {
            s.push(it.at());
        }
        drop(it);
        out.push((set.labels().to_string(), s));
    }
    out
}

#[test]
fn merges_sorted_series_and_samples_local_first() {
    let db = MemStorage::new();
    for t in [1, 3, 5] {
        db.insert(labels(&[("__name__", "m"), ("i", "b")]), t, 1.0);
        db.insert(labels(&[("__name__", "m"), ("i", "d")]), t, 1.0);
    }
    let q = db.querier(0, 100).unwrap();
    let remote: RemoteSeries = vec![
        (labels(&[("__name__", "m"), ("i", "e")]), vec![(1, 9.0)]),
        (
            labels(&[("__name__", "m"), ("i", "b")]),
            vec![(2, 2.0), (3, 7.0), (9, 2.0)],
        ),
        (labels(&[("__name__", "m"), ("i", "a")]), vec![(4, 4.0)]),
        // A second endpoint's copy of `a`: merged, the first answer winning at t=4.
        (
            labels(&[("__name__", "m"), ("i", "a")]),
            vec![(4, 5.0), (6, 6.0)],
        ),
    ];
    let m = Matcher::equal("__name__", "m");
    let mut set = MergeSet::new(q.select(std::slice::from_ref(&m)), remote);
    let got = collect(&mut set);
    let want = vec![
        (
            r#"{__name__="m", i="a"}"#.to_string(),
            vec![(4, 4.0), (6, 6.0)],
        ),
        (
            r#"{__name__="m", i="b"}"#.to_string(),
            vec![(1, 1.0), (2, 2.0), (3, 1.0), (5, 1.0), (9, 2.0)],
        ),
        (
            r#"{__name__="m", i="d"}"#.to_string(),
            vec![(1, 1.0), (3, 1.0), (5, 1.0)],
        ),
        (r#"{__name__="m", i="e"}"#.to_string(), vec![(1, 9.0)]),
    ];
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for ((gl, gs), (wl, ws)) in got.iter().zip(&want) {
        assert_eq!(gl.replace(' ', ""), wl.replace(' ', ""));
        assert_eq!(gs, ws, "{gl}");
    }
}

#[test]
fn requests_ranges_and_required_matchers() {
    let cfg: RemoteReadConfig =
        serde_yaml_ng::from_str("url: http://x/api/v1/read\nrequired_matchers: {job: j}\n")
            .unwrap();
    let ext = labels(&[("cluster", "c"), ("job", "ext")]);
    let c = ReadClient::new(&cfg, &ext).unwrap();
    // read_recent false: only what precedes local data is asked for.
    assert_eq!(c.range(0, 100, 50), Some((0, 50)));
    assert_eq!(c.range(60, 100, 50), None);
    assert_eq!(c.range(0, 40, 50), Some((0, 40)));
    let j = Matcher::equal("job", "j");
    let n = Matcher::equal("__name__", "up");
    assert!(c.wanted(&[n.clone(), j.clone()]));
    assert!(!c.wanted(std::slice::from_ref(&n)));
    // External labels the selector does not match on are added as equality matchers.
    let (req, added) = c.request(&[n, j], 1, 2);
    assert_eq!(added, vec!["cluster".to_string()]);
    let ms: Vec<(i32, &str, &str)> = req.queries[0]
        .matchers
        .iter()
        .map(|m| (m.r#type, m.name.as_str(), m.value.as_str()))
        .collect();
    assert_eq!(
        ms,
        vec![(0, "__name__", "up"), (0, "job", "j"), (0, "cluster", "c")]
    );
    assert_eq!(req.accepted_response_types, vec![0]);
    let mut recent = cfg.clone();
    recent.read_recent = true;
    recent.filter_external_labels = false;
    let c = ReadClient::new(&recent, &ext).unwrap();
    assert_eq!(c.range(60, 100, 50), Some((60, 100)));
    assert!(c.request(&[], 1, 2).1.is_empty());
}

#[test]
fn decodes_answers_defensively() {
    let resp = ReadResponse {
        results: vec![QueryResult {
            timeseries: vec![
                TimeSeries {
                    labels: vec![prompb::Label {
                        name: "__name__".into(),
                        value: "m".into(),
                    }],
                    samples: vec![
                        prompb::Sample {
                            value: 2.0,
                            timestamp: 20,
                        },
                        prompb::Sample {
                            value: 1.0,
                            timestamp: 10,
                        },
                        prompb::Sample {
                            value: 3.0,
                            timestamp: 20,
                        },
                    ],
                    exemplars: vec![],
                    histograms: vec![],
                },
                TimeSeries::from_pairs(&[("__name__", "empty")], &[]),
            ],
        }],
    };
    let body = crate::remote::read::encode(&resp);
    let got = decode_response(&body).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, vec![(10, 1.0), (20, 2.0)]);
    assert!(decode_response(b"\xff\xff\xff\xff\x0f").is_err());
    assert!(
        decode_response(&snap::raw::Encoder::new().compress_vec(b"\x0a\x05").unwrap()).is_err()
    );
}

proptest::proptest! {
    #[test]
    fn response_round_trip(
        series in proptest::collection::btree_map(
            "[a-z]{1,6}",
            proptest::collection::btree_map(proptest::prelude::any::<i64>(), proptest::prelude::any::<u64>(), 1..20),
            0..6,
        )
    ) {
        let resp = ReadResponse {
            results: vec![QueryResult {
                timeseries: series
                    .iter()
                    .map(|(name, samples)| {
                        let s: Vec<(i64, f64)> =
                            samples.iter().map(|(t, v)| (*t, f64::from_bits(*v))).collect();
                        TimeSeries::from_pairs(&[("__name__", name.as_str())], &s)
                    })
                    .collect(),
            }],
        };
        let got = decode_response(&crate::remote::read::encode(&resp)).unwrap();
        proptest::prop_assert_eq!(got.len(), series.len());
        for ((labels, samples), (name, want)) in got.iter().zip(&series) {
            proptest::prop_assert_eq!(labels.get("__name__"), Some(name.as_str()));
            let bits: Vec<(i64, u64)> = samples.iter().map(|(t, v)| (*t, v.to_bits())).collect();
            let want: Vec<(i64, u64)> = want.iter().map(|(t, v)| (*t, *v)).collect();
            proptest::prop_assert_eq!(bits, want);
        }
    }
}
