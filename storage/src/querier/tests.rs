//! Bounded label reads: the limited answers are exact prefixes of the full ones, and a block's
//! sorted values are read only up to the limit.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use crate::index::reader::tests_hook::VISITED;
use crate::index::{ChunkMeta, IndexReader, IndexWriter};
use crate::interface::{Appendable, Queryable};
use crate::matcher::{MatchType, Matcher};
use crate::model::Labels;
use crate::{Db, Options, SyncMode};

fn series_labels(i: usize) -> Labels {
    Labels::from_pairs(&[
        ("__name__", "m"),
        ("instance", format!("host-{i:05}").as_str()),
        ("job", if i.is_multiple_of(3) { "node" } else { "app" }),
    ])
}

#[test]
fn block_label_values_stop_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let mut w = IndexWriter::create(&path).unwrap();
    let n = 3000;
    for i in 0..n {
        let meta = ChunkMeta {
            min_time: 0,
            max_time: 10,
            chunk_ref: i as u64,
        };
        w.add_series(&series_labels(i), &[meta]).unwrap();
    }
    w.finish().unwrap();
    let data = std::fs::read(&path).unwrap();
    let r = IndexReader::new(data.as_slice()).unwrap();
    let full = r.label_values("instance").unwrap();
    assert_eq!(full.len(), n);

    VISITED.with(|v| v.set(0));
    let got = r.label_values_limited("instance", None, 10).unwrap();
    assert_eq!(got, full[..10]);
    assert_eq!(VISITED.with(|v| v.get()), 10, "values visited for limit 10");

    // Filtered by the ids of job="node" (every third series): 10 hits within the first 30.
    let node = r.postings("job", "node").unwrap();
    VISITED.with(|v| v.set(0));
    let got = r.label_values_limited("instance", Some(&node), 10).unwrap();
    let want: Vec<String> = (0..n)
        .filter(|i| i.is_multiple_of(3))
        .take(10)
        .map(|i| format!("host-{i:05}"))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        VISITED.with(|v| v.get()),
        28,
        "values visited up to the 10th hit"
    );
}

#[test]
fn limited_label_reads_are_prefixes_of_the_full_answers() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        background: false,
        sync: SyncMode::Buffer,
        block_range_ms: 1000,
        retention_ms: None,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    // Series 0..600 in early blocks, 400..1000 later (overlapping sets), so the answer merges
    // blocks and the head.
    for (from, to, t0) in [(0, 600, 0), (400, 1000, 5000)] {
        for step in 0..3 {
            let mut app = db.appender();
            for i in from..to {
                let mut l = series_labels(i);
                if i.is_multiple_of(7) {
                    l = Labels::from_pairs(&[
                        ("__name__", "m"),
                        ("instance", format!("host-{i:05}").as_str()),
                        ("job", "node"),
                        (format!("extra_{}", i % 5).as_str(), "x"),
                    ]);
                }
                app.append(None, &l, t0 + step * 500, i as f64).unwrap();
            }
            app.commit().unwrap();
        }
        db.compact().unwrap();
    }
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let cases: Vec<Vec<Matcher>> = vec![
        vec![],
        vec![Matcher::equal("job", "node")],
        vec![Matcher::new(MatchType::Regex, "instance", "host-0000.").unwrap()],
        vec![Matcher::equal("job", "none")],
    ];
    for ms in &cases {
        // `instance`: more values than matching series (reads each series); `job`: fewer
        // (walks the sorted values and intersects postings).
        let full = q.label_values("instance", ms).unwrap();
        let jobs = q.label_values("job", ms).unwrap();
        let names = q.label_names(ms).unwrap();
        for limit in [0, 1, 7, 100, 999, 5000] {
            let got = q.label_values_limited("instance", ms, limit).unwrap();
            let want = &full[..limit.min(full.len())];
            assert_eq!(got, want, "values, matchers {ms:?}, limit {limit}");
            let got = q.label_values_limited("job", ms, limit).unwrap();
            let want = &jobs[..limit.min(jobs.len())];
            assert_eq!(got, want, "jobs, matchers {ms:?}, limit {limit}");
            let got = q.label_names_limited(ms, limit).unwrap();
            let want = &names[..limit.min(names.len())];
            assert_eq!(got, want, "names, matchers {ms:?}, limit {limit}");
        }
    }
    assert_eq!(q.label_values("instance", &[]).unwrap().len(), 1000);
    assert_eq!(q.label_values("job", &[]).unwrap(), ["app", "node"]);
    let node = [Matcher::equal("job", "node")];
    assert_eq!(q.label_values("job", &node).unwrap(), ["node"]);
    let names = q.label_names(&node).unwrap();
    assert_eq!(
        names.len(),
        8,
        "__name__, instance, job and extra_0..4: {names:?}"
    );
    let mut sorted = q.label_values("instance", &[]).unwrap();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 1000, "values are distinct and sorted");
}

/// `newest` through the querier (the open chunk's known last sample, a chunk read forward,
/// the merged run of out-of-order data) answers as a model of every sample written, across
/// blocks and the head, stale markers, deleted ranges and querier bounds.
#[test]
fn newest_sample_matches_a_model() {
    use crate::interface::NewestSample;
    use crate::model::stale_nan;
    use std::collections::{BTreeMap, HashMap};

    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        background: false,
        sync: SyncMode::Buffer,
        block_range_ms: 20_000,
        out_of_order_window_ms: 86_400_000,
        retention_ms: None,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let mut model: HashMap<Labels, BTreeMap<i64, f64>> = HashMap::new();
    let series = |i: usize| Labels::from_pairs(&[("__name__", "m"), ("i", &i.to_string())]);
    let mut write = |samples: &[(usize, i64, f64)]| {
        let mut app = db.appender();
        for &(i, t, v) in samples {
            app.append(None, &series(i), t, v).unwrap();
            model.entry(series(i)).or_default().insert(t, v);
        }
        app.commit().unwrap();
    };
    // Series 0: 400 samples (head chunks of 120 cut, the first ones into blocks); 1: ends in a
    // stale marker; 2: sparse; 3: out-of-order samples between in-order ones.
    for k in 0..400i64 {
        let t = k * 100;
        let mut batch = vec![(0, t, k as f64 * 1.5)];
        if k % 2 == 0 {
            batch.push((1, t, if k == 398 { stale_nan() } else { -(k as f64) }));
        }
        if k % 37 == 0 {
            batch.push((2, t + 7, k as f64));
        }
        if k % 10 == 0 {
            batch.push((3, t, k as f64));
        }
        write(&batch);
        if k == 350 {
            db.compact().unwrap();
        }
    }
    write(&[(3, 35_050, 1.0), (3, 39_950, 2.0), (3, 12_345, 3.0)]);
    db.delete_series(&[Matcher::equal("i", "0")], 38_000, 39_500)
        .unwrap();
    // Series 2's deleted range holds its newest sample: the open chunk's last value changes.
    db.delete_series(&[Matcher::equal("i", "2")], 36_000, 38_000)
        .unwrap();
    for (i, lo, hi) in [(0, 38_000, 39_500), (2, 36_000, 38_000)] {
        if let Some(m) = model.get_mut(&series(i)) {
            m.retain(|&t, _| !(lo..=hi).contains(&t));
        }
    }
    assert!(db.metrics().blocks >= 1, "some data is in blocks");

    let key = |s: Option<NewestSample>| match s {
        Some(NewestSample::Float(t, v)) => Some((t, v.to_bits())),
        Some(NewestSample::Histogram(..)) => panic!("no histograms were written"),
        None => None,
    };
    let bounds = [
        (i64::MIN, i64::MAX),
        (10_000, 39_000),
        (39_901, 39_950),
        (50_000, 60_000),
    ];
    let windows = [
        (i64::MIN, i64::MAX),
        (39_701, 40_000),
        (39_601, 39_900),
        (37_000, 38_500),
        (12_000, 12_400),
        (25_001, 25_099),
        (0, 0),
        (-5_000, -1),
    ];
    let mut checked = 0;
    for (qmin, qmax) in bounds {
        let q = db.querier(qmin, qmax).unwrap();
        for (mint, maxt) in windows {
            let mut set = q.select(&[Matcher::equal("__name__", "m")]);
            let mut seen = 0;
            while set.next() {
                seen += 1;
                let (lo, hi) = (mint.max(qmin), maxt.min(qmax));
                let want = model
                    .get(set.labels())
                    .filter(|_| lo <= hi)
                    .and_then(|m| m.range(lo..=hi).next_back())
                    .map(|(&t, v)| (t, v.to_bits()));
                let mut it = set.samples();
                let got = key(it.newest(mint, maxt));
                assert!(it.err().is_none());
                assert_eq!(
                    got,
                    want,
                    "series {:?}, querier [{qmin}, {qmax}], window [{mint}, {maxt}]",
                    set.labels()
                );
                checked += 1;
            }
            assert!(set.err().is_none());
            let want_series = model
                .values()
                .filter(|m| m.range(qmin..=qmax).next().is_some())
                .count();
            assert_eq!(seen, want_series, "querier [{qmin}, {qmax}]");
        }
    }
    assert!(checked > 50);
}
