//! Native histograms through the Db: head, WAL replay, blocks, compaction, deletion, mixed
//! float/histogram series and staleness.

use crate::common::{all, lbl};
use argus_storage::{
    Appendable, CounterResetHint, Db, Error, FloatHistogram, Labels, Options, Queryable, Span,
    SyncMode, Timestamp,
};
use std::collections::BTreeMap;

/// One sample as the querier returns it; histogram hints are left out of comparisons.
#[derive(Clone, Debug, PartialEq)]
enum V {
    F(u64),
    H(FloatHistogram),
}

type Model = BTreeMap<Labels, Vec<(Timestamp, V)>>;

fn opts() -> Options {
    Options {
        background: false,
        sync: SyncMode::Buffer,
        block_range_ms: 100_000,
        retention_ms: None,
        ..Options::default()
    }
}

fn hist(i: i64, reset_at: i64) -> FloatHistogram {
    let n = (if i >= reset_at { i - reset_at } else { i }) as f64;
    // Integer counts, except a stretch of float ones; a schema change halfway.
    let frac = if (300..330).contains(&i) { 0.5 } else { 0.0 };
    let buckets = vec![n + frac, 2.0 * n, 1.0, 3.0 * n];
    FloatHistogram {
        schema: if i < 200 { 3 } else { 2 },
        zero_threshold: 1e-128,
        zero_count: n,
        count: buckets.iter().sum::<f64>() + n,
        sum: n * 0.125,
        positive_spans: vec![Span::new(-1, 2), Span::new(4, 2)],
        positive_buckets: buckets,
        negative_spans: vec![Span::new(0, 1)],
        negative_buckets: vec![n],
        ..Default::default()
    }
}

fn dump(db: &Db) -> Model {
    let q = db.querier(i64::MIN, i64::MAX).expect("querier");
    let mut set = q.select(&all());
    let mut out = Model::new();
    while set.next() {
        let mut it = set.samples();
        let mut samples = Vec::new();
        while it.next() {
            let (t, v) = it.at();
            samples.push(match it.at_histogram() {
                Some(h) => {
                    let mut h = h.clone();
                    h.counter_reset_hint = CounterResetHint::Unknown;
                    (t, V::H(h))
                }
                None => (t, V::F(v.to_bits())),
            });
        }
        assert!(it.err().is_none(), "iterator error: {:?}", it.err());
        drop(it);
        out.insert(set.labels().clone(), samples);
    }
    assert!(set.err().is_none(), "series set error: {:?}", set.err());
    out
}

/// Writes a mixed series (floats, then histograms with a reset and a schema change, then a
/// float stale marker) and a histogram-only series, spanning several block ranges.
fn write(db: &Db) -> Model {
    let mut model = Model::new();
    let mixed = lbl(&[("__name__", "mixed")]);
    let only = lbl(&[("__name__", "only_h")]);
    let mut app = db.appender();
    for i in 0..20 {
        let t = i * 1000;
        app.append(None, &mixed, t, i as f64).unwrap();
        model
            .entry(mixed.clone())
            .or_default()
            .push((t, V::F((i as f64).to_bits())));
    }
    for i in 20..400 {
        let t = i * 1000;
        let h = hist(i, 250);
        app.append_histogram(None, &mixed, t, &h).unwrap();
        model
            .entry(mixed.clone())
            .or_default()
            .push((t, V::H(h.clone())));
        let mut g = hist(i, 1 << 40);
        g.counter_reset_hint = CounterResetHint::Gauge;
        app.append_histogram(None, &only, t + 1, &g).unwrap();
        g.counter_reset_hint = CounterResetHint::Unknown;
        model
            .entry(only.clone())
            .or_default()
            .push((t + 1, V::H(g)));
        if i % 50 == 0 {
            app.commit().unwrap();
        }
    }
    let stale = argus_storage::stale_nan();
    app.append(None, &mixed, 400_000, stale).unwrap();
    model
        .entry(mixed)
        .or_default()
        .push((400_000, V::F(stale.to_bits())));
    app.commit().unwrap();
    model
}

fn check(db: &Db, want: &Model, what: &str) {
    let got = dump(db);
    assert_eq!(got.len(), want.len(), "{what}: series");
    for ((gl, gs), (wl, ws)) in got.iter().zip(want) {
        assert_eq!(gl, wl, "{what}");
        assert_eq!(gs.len(), ws.len(), "{what}: samples of {gl}");
        for (g, w) in gs.iter().zip(ws) {
            assert_eq!(g, w, "{what}: {gl}");
        }
    }
}

#[test]
fn head_replay_blocks_and_compaction_keep_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let model = write(&db);
    check(&db, &model, "head");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model, "after WAL replay");
    // Cut the head into blocks, compact, reopen from blocks.
    db.compact().unwrap();
    check(&db, &model, "after compaction");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model, "blocks after reopen");
    let blocks = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("meta.json").exists())
        .count();
    assert!(blocks >= 1, "histograms were cut into blocks");
    db.close().unwrap();
}

#[test]
fn deletion_removes_histogram_samples_in_head_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut model = write(&db);
    db.delete_series(&all(), 30_000, 59_999).unwrap();
    db.compact().unwrap();
    db.delete_series(&all(), 100_000, 120_000).unwrap();
    for s in model.values_mut() {
        s.retain(|(t, _)| !(30_000..=59_999).contains(t) && !(100_000..=120_000).contains(t));
    }
    check(&db, &model, "after deletes");
    // The newest samples still bound appends: a histogram inside the deleted range is out of
    // order.
    let mut app = db.appender();
    assert!(matches!(
        app.append_histogram(None, &lbl(&[("__name__", "only_h")]), 110_000, &hist(1, 9)),
        Err(Error::OutOfOrder)
    ));
    app.rollback();
    db.close().unwrap();
}

#[test]
fn histogram_append_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            out_of_order_window_ms: 60_000,
            ..opts()
        },
    )
    .unwrap();
    let l = lbl(&[("__name__", "h")]);
    let mut app = db.appender();
    let h = hist(5, 1 << 40);
    app.append_histogram(None, &l, 10_000, &h).unwrap();
    app.commit().unwrap();
    // Same sample again: accepted as a duplicate; another histogram at that time: refused.
    assert!(app.append_histogram(None, &l, 10_000, &h).is_ok());
    let other = hist(6, 1 << 40);
    assert!(matches!(
        app.append_histogram(None, &l, 10_000, &other),
        Err(Error::DuplicateSample)
    ));
    assert!(matches!(
        app.append(None, &l, 10_000, 1.0),
        Err(Error::DuplicateSample)
    ));
    // Out-of-order histograms inside the window are accepted (Prometheus 3), within one batch
    // too; older ones are too old.
    app.append_histogram(None, &l, 9_000, &h).unwrap();
    app.append_histogram(None, &l, 20_000, &other).unwrap();
    app.append_histogram(None, &l, 15_000, &h).unwrap();
    assert!(matches!(
        app.append_histogram(None, &l, 20_000 - 60_001, &h),
        Err(Error::TooOld)
    ));
    // Spans that do not match the buckets.
    let mut bad = h.clone();
    bad.positive_buckets.pop();
    assert!(matches!(
        app.append_histogram(None, &l, 30_000, &bad),
        Err(Error::InvalidArgument(_))
    ));
    app.commit().unwrap();
    let got = dump(&db);
    let samples = &got[&l];
    let times: Vec<Timestamp> = samples.iter().map(|s| s.0).collect();
    assert_eq!(times, vec![9_000, 10_000, 15_000, 20_000]);
    assert_eq!(samples[3], (20_000, V::H(other)));
    db.close().unwrap();
}

#[test]
fn out_of_order_histograms_through_head_replay_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let o = || Options {
        out_of_order_window_ms: 1_000_000,
        ..opts()
    };
    let db = Db::open(dir.path(), o()).unwrap();
    let l = lbl(&[("__name__", "ooo_h")]);
    let mut model = Model::new();
    let add = |db: &Db, model: &mut Model, times: &mut dyn Iterator<Item = i64>| {
        let mut app = db.appender();
        for i in times {
            let h = hist(i, 1 << 40);
            app.append_histogram(None, &l, i * 1000, &h).unwrap();
            let s = model.entry(l.clone()).or_default();
            s.push((i * 1000, V::H(h)));
            s.sort_by_key(|x| x.0);
        }
        app.commit().unwrap();
    };
    // Even seconds in order, then odd ones late, some spanning block ranges (100 s).
    add(&db, &mut model, &mut (0..400).step_by(2));
    add(&db, &mut model, &mut (201..399).step_by(2));
    check(&db, &model, "head");
    // A duplicate of an out-of-order sample is accepted; another value at its time, or a float
    // there, is not.
    let mut app = db.appender();
    app.append_histogram(None, &l, 201_000, &hist(201, 1 << 40))
        .unwrap();
    assert!(matches!(
        app.append_histogram(None, &l, 203_000, &hist(7, 1 << 40)),
        Err(Error::DuplicateSample)
    ));
    assert!(matches!(
        app.append(None, &l, 205_000, 1.0),
        Err(Error::DuplicateSample)
    ));
    app.commit().unwrap();
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), o()).unwrap();
    check(&db, &model, "after WAL replay");
    db.compact().unwrap();
    check(&db, &model, "after compaction");
    // Late samples below the blocks now written: they become blocks of their own that
    // compaction merges.
    add(&db, &mut model, &mut (1..199).step_by(2));
    check(&db, &model, "late samples over blocks");
    db.compact().unwrap();
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), o()).unwrap();
    check(&db, &model, "blocks after reopen");
    db.close().unwrap();
}

#[test]
fn custom_bucket_histograms_through_head_replay_and_compaction() {
    // Schema -53 (NHCB) samples whose bounds change twice; each change starts a chunk.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let l = lbl(&[("__name__", "nhcb")]);
    let mut model = Model::new();
    let mut app = db.appender();
    for i in 0..300i64 {
        let bounds: Vec<f64> = match i {
            0..100 => vec![0.005, 0.1, 1.0, 2.5],
            100..200 => vec![0.25, 1.0 / 3.0, 1e9],
            _ => vec![0.005, 0.1, 1.0, 2.5],
        };
        let n = (i % 100) as f64;
        let buckets: Vec<f64> = (0..=bounds.len()).map(|k| n * (k + 1) as f64).collect();
        let h = FloatHistogram {
            schema: argus_storage::histogram::CUSTOM_BUCKETS_SCHEMA,
            count: buckets.iter().sum(),
            sum: n * 0.5,
            positive_spans: vec![Span::new(0, buckets.len() as u32)],
            positive_buckets: buckets,
            custom_values: bounds,
            ..Default::default()
        };
        app.append_histogram(None, &l, i * 1000, &h).unwrap();
        model
            .entry(l.clone())
            .or_default()
            .push((i * 1000, V::H(h)));
    }
    app.commit().unwrap();
    check(&db, &model, "head");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model, "after WAL replay");
    db.compact().unwrap();
    check(&db, &model, "after compaction");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model, "blocks after reopen");
    db.close().unwrap();
}

#[test]
fn resent_histogram_is_a_duplicate_after_its_chunk_layout_grew() {
    // Buckets {0, 2 (empty)} then {0, 1}: the chunk holds both in the union layout {0, 1, 2},
    // so the newest sample reads back with an empty bucket 2 it was not sent with. Resending
    // it is a duplicate (accepted, nothing stored); another value at that time is refused.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let l = lbl(&[("__name__", "grow")]);
    let a = FloatHistogram {
        schema: 0,
        count: 2.0,
        sum: 1.0,
        positive_spans: vec![Span::new(0, 1), Span::new(1, 1)],
        positive_buckets: vec![2.0, 0.0],
        ..Default::default()
    };
    let b = FloatHistogram {
        count: 5.0,
        positive_spans: vec![Span::new(0, 2)],
        positive_buckets: vec![3.0, 2.0],
        ..a.clone()
    };
    let mut app = db.appender();
    app.append_histogram(None, &l, 1000, &a).unwrap();
    app.append_histogram(None, &l, 2000, &b).unwrap();
    app.commit().unwrap();
    app.append_histogram(None, &l, 2000, &b).unwrap();
    let mut c = b.clone();
    c.sum = 9.0;
    assert!(matches!(
        app.append_histogram(None, &l, 2000, &c),
        Err(Error::DuplicateSample)
    ));
    app.commit().unwrap();
    let got = dump(&db);
    assert_eq!(got[&l].len(), 2);
    db.close().unwrap();
}
