//! Completed head chunks (kept in memory pages since WAL format 2; earlier versions wrote them to
//! `chunks_head/`): read back exactly, freed with head truncation, rebuilt from the WAL at open
//! (an old `chunks_head/` is removed), and the head memory they cost.

use crate::common::{all, dump, lbl, opts};
use argus_storage::{Appendable, Db, Labels, Matcher, Options, Timestamp};
use std::collections::BTreeMap;
use std::path::Path;

const STEP: i64 = 15_000;

type Model = BTreeMap<Labels, Vec<(Timestamp, f64)>>;

/// Like a node exporter's series: a counter with irregular increments (even series) or a
/// byte-valued gauge wandering around a level (odd series); every fifth series is a gauge with
/// fractional values.
fn value(series: usize, i: i64) -> f64 {
    let x = (series as i64 * 7919 + i * 104_729) % 1000;
    if series % 5 == 4 {
        ((series as i64 * 31 + i) as f64 / 7.0).sin() * 100.0
    } else if series.is_multiple_of(2) {
        (i * 37 + (i * x) / 100) as f64
    } else {
        ((series as i64 + 1) * (1 << 30) + (x - 500) * 4096) as f64
    }
}

fn series_labels(s: usize) -> Labels {
    lbl(&[
        ("__name__", "m"),
        ("instance", &format!("host-{s}:9100")),
        ("job", "node"),
    ])
}

/// Appends samples `from..to` (times `i * STEP`) of `n` series to `db` and `model`.
fn append(db: &Db, model: &mut Model, n: usize, from: i64, to: i64) {
    let mut app = db.appender();
    for i in from..to {
        for s in 0..n {
            let (l, t, v) = (series_labels(s), i * STEP, value(s, i));
            app.append(None, &l, t, v).unwrap();
            model.entry(l).or_default().push((t, v));
        }
        app.commit().unwrap();
    }
}

fn check(db: &Db, model: &Model) {
    let got = dump(db, &all(), i64::MIN, i64::MAX);
    let want: Vec<_> = model.iter().map(|(l, s)| (l.clone(), s.clone())).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0);
        assert!(
            g.1.len() == w.1.len()
                && g.1
                    .iter()
                    .zip(&w.1)
                    .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits()),
            "series {}\nexpected: {:?}\ngot:      {:?}",
            g.0,
            w.1,
            g.1
        );
    }
}

/// Nothing but the WAL holds head data on disk.
fn no_chunks_head(dir: &Path) {
    assert!(!dir.join("chunks_head").exists(), "chunks_head/ is gone");
}

fn small_segments() -> Options {
    Options {
        head_chunk_segment_size: 4096,
        ..opts()
    }
}

#[test]
fn completed_chunks_read_back_exactly_and_truncation_deletes_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_segments()).unwrap();
    let mut model = Model::new();
    // Open chunks only.
    append(&db, &mut model, 20, 0, 100);
    check(&db, &model);
    let open_only = db.metrics().head_bytes;
    // Completed chunks: in the page being filled and in full pages (4 KiB here).
    append(&db, &mut model, 20, 100, 480);
    check(&db, &model);
    no_chunks_head(dir.path());
    assert!(db.metrics().head_bytes > open_only + 3 * 4096);
    // A deletion spanning completed and open chunks rewrites them.
    let l0 = series_labels(0);
    db.delete_series(
        &[Matcher::equal("instance", "host-0:9100")],
        100 * STEP,
        400 * STEP,
    )
    .unwrap();
    model
        .get_mut(&l0)
        .unwrap()
        .retain(|s| s.0 < 100 * STEP || s.0 > 400 * STEP);
    check(&db, &model);
    // 4 h of data: cutting the first 2 h into a block truncates the head and frees the pages
    // holding only chunks below the cut.
    append(&db, &mut model, 20, 480, 960);
    let grown = db.metrics().head_bytes;
    db.compact().unwrap();
    assert!(db.metrics().blocks >= 1);
    let after = db.metrics().head_bytes;
    assert!(
        after < grown * 3 / 4,
        "head bytes before {grown}, after {after}"
    );
    check(&db, &model);
    // Appends continue into new segments after the truncation.
    append(&db, &mut model, 20, 960, 1100);
    check(&db, &model);
}

#[test]
fn reopen_rebuilds_head_chunks_from_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_segments()).unwrap();
    let mut model = Model::new();
    append(&db, &mut model, 10, 0, 400);
    check(&db, &model);
    db.close().unwrap();
    drop(db);
    // A `chunks_head/` left by an older version, full of garbage: removed, data from the WAL.
    std::fs::create_dir(dir.path().join("chunks_head")).unwrap();
    for s in 1..4 {
        let p = dir.path().join("chunks_head").join(format!("{s:06}"));
        std::fs::write(p, vec![0xAB; 5000]).unwrap();
    }
    let db = Db::open(dir.path(), small_segments()).unwrap();
    no_chunks_head(dir.path());
    check(&db, &model);
    append(&db, &mut model, 10, 400, 500);
    check(&db, &model);
    db.close().unwrap();
    drop(db);
    // Replaced by a file.
    std::fs::write(dir.path().join("chunks_head"), b"not a directory").unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    no_chunks_head(dir.path());
    check(&db, &model);
}

#[test]
fn head_bytes_per_series_stay_small() {
    // 480 samples from 40 scrapes into a block range (like a head in steady state: the open
    // chunk partly full), and from a range start (the open chunk holds a full 120 samples).
    let measure = |first: i64| {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        let mut model = Model::new();
        let n = 2000;
        append(&db, &mut model, n, first, first + 1);
        let m = db.metrics();
        let fresh = m.head_bytes / m.head_series;
        append(&db, &mut model, n, first + 1, first + 480);
        let m = db.metrics();
        assert_eq!(m.head_series, n as u64);
        (fresh, m.head_bytes / m.head_series)
    };
    let (fresh, typical) = measure(1000);
    let (_, full) = measure(0);
    eprintln!("head bytes per series: fresh {fresh}, 2 h {typical}, 2 h full open chunk {full}");
    // Completed chunks are in memory (XOR, ~5 B/sample on these byte-valued gauges): 2 h cost
    // about 2.8 KiB per series (846 B while they were m-mapped files; see storage/README.md).
    assert!(fresh < 600, "fresh: {fresh} bytes per series");
    assert!(typical < 3200, "2 h: {typical} bytes per series");
    assert!(
        full < 3200,
        "2 h ending with a full open chunk: {full} bytes per series"
    );
}
