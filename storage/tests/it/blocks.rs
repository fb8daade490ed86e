//! Blocks: head cuts, compaction, retention, tombstones and snapshots.

use crate::common::{all, dump, lbl};
use argus_storage::{Appendable, Db, Error, Labels, Matcher, Options, Queryable, SyncMode};
use std::collections::BTreeMap;

type Model = BTreeMap<Labels, Vec<(i64, f64)>>;

/// 10 s blocks so a few hundred samples span many ranges.
fn opts() -> Options {
    Options {
        background: false,
        sync: SyncMode::Buffer,
        block_range_ms: 10_000,
        retention_ms: None,
        ..Options::default()
    }
}

fn write(db: &Db, model: &mut Model, series: usize, from: i64, to: i64, step: i64) {
    let mut app = db.appender();
    let mut n = 0;
    let mut t = from;
    while t < to {
        for s in 0..series {
            let sv = format!("{s:03}");
            let l = lbl(&[
                ("__name__", "m"),
                ("s", &sv),
                ("job", if s % 2 == 0 { "a" } else { "b" }),
            ]);
            let v = (t as f64) * 0.5 + s as f64;
            app.append(None, &l, t, v).unwrap();
            model.entry(l).or_default().push((t, v));
            n += 1;
        }
        if n > 500 {
            app.commit().unwrap();
            n = 0;
        }
        t += step;
    }
    app.commit().unwrap();
}

fn check(db: &Db, model: &Model, what: &str) {
    let got = dump(db, &all(), i64::MIN, i64::MAX);
    let want: Vec<_> = model.iter().map(|(l, s)| (l.clone(), s.clone())).collect();
    assert_eq!(got.len(), want.len(), "{what}: series count");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0, "{what}: labels");
        assert_eq!(g.1.len(), w.1.len(), "{what}: sample count of {}", g.0);
        assert!(
            g.1.iter()
                .zip(&w.1)
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits()),
            "{what}: samples of {} differ",
            g.0
        );
    }
}

#[test]
fn write_close_reopen_compact_returns_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, &mut model, 20, 0, 200_000, 500);
    check(&db, &model, "head");
    db.close().unwrap();
    drop(db);

    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model, "after WAL replay");
    db.compact().unwrap();
    let m = db.metrics();
    assert!(
        m.blocks >= 2,
        "expected blocks after compaction, got {}",
        m.blocks
    );
    assert!(
        m.compactions >= 1,
        "expected block merges, got {}",
        m.compactions
    );
    assert!(
        m.head_min_time >= 180_000,
        "head not truncated: {}",
        m.head_min_time
    );
    check(&db, &model, "after compaction");
    // Range queries across block boundaries.
    let part = dump(&db, &[Matcher::equal("s", "007")], 29_000, 61_000);
    let want: Vec<_> = model[&lbl(&[("__name__", "m"), ("s", "007"), ("job", "b")])]
        .iter()
        .copied()
        .filter(|s| (29_000..=61_000).contains(&s.0))
        .collect();
    assert_eq!(part[0].1, want);
    // More data after the cut, then reopen: blocks + checkpointed WAL.
    write(&db, &mut model, 20, 200_000, 230_000, 500);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model, "after reopen with blocks");
    db.compact().unwrap();
    check(&db, &model, "after second compaction");
    let q = db.querier(0, 50_000).unwrap();
    assert_eq!(q.label_values("job", &[]).unwrap(), vec!["a", "b"]);
    assert_eq!(
        q.label_values("s", &[Matcher::equal("s", "003")]).unwrap(),
        vec!["003"]
    );
    // Block directories look like Prometheus's.
    let blocks: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("meta.json").exists())
        .collect();
    assert!(!blocks.is_empty());
    for b in blocks {
        let p = b.path();
        assert_eq!(b.file_name().len(), 26);
        assert!(p.join("index").exists() && p.join("tombstones").exists());
        assert!(p.join("chunks").join("000001").exists());
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.join("meta.json")).unwrap()).unwrap();
        assert!(meta["stats"]["numSamples"].as_u64().unwrap() > 0);
        assert_eq!(meta["version"], 1);
    }
}

#[test]
fn out_of_order_samples_reach_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        out_of_order_window_ms: 8_000,
        ..opts()
    };
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let mut model = Model::new();
    let l = lbl(&[("__name__", "ooo")]);
    let mut app = db.appender();
    // Every even second in order, then the odd seconds late (within the window).
    for t in (0..40).map(|i| i * 2000) {
        app.append(None, &l, t, t as f64).unwrap();
    }
    app.commit().unwrap();
    for t in (0..40).map(|i| i * 2000 + 1000).filter(|t| *t >= 70_000) {
        app.append(None, &l, t, t as f64).unwrap();
    }
    app.commit().unwrap();
    let s = model.entry(l.clone()).or_default();
    s.extend((0..40).map(|i| (i * 2000, (i * 2000) as f64)));
    s.extend(
        (0..40)
            .map(|i| i * 2000 + 1000)
            .filter(|t| *t >= 70_000)
            .map(|t| (t, t as f64)),
    );
    s.sort_by_key(|x| x.0);
    check(&db, &model, "head with OOO");
    db.compact().unwrap();
    check(&db, &model, "blocks with OOO");
    // Push the head forward so the range holding the late samples is cut into a block too.
    let mut app = db.appender();
    for t in (40..60).map(|i| i * 2000) {
        app.append(None, &l, t, t as f64).unwrap();
        model.get_mut(&l).unwrap().push((t, t as f64));
    }
    app.commit().unwrap();
    db.compact().unwrap();
    assert!(db.metrics().head_min_time >= 80_000);
    check(&db, &model, "OOO samples cut into blocks");
    // Late samples beyond the window are refused with a typed error.
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &l, 79_500, 1.0),
        Err(Error::TooOld)
    ));
    app.append(None, &l, 111_000, 1.0).unwrap();
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    check(&db, &model, "reopen");
}

/// Samples older than the head's cut boundary (their range is already a block) but inside the
/// out-of-order window: accepted, queryable at once, kept across a restart (WAL replay), then
/// cut into blocks overlapping the old ones and merged by compaction, each sample exactly once.
#[test]
fn old_samples_below_cut_blocks_are_accepted_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        out_of_order_window_ms: 100_000,
        ..opts()
    };
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, 4, 0, 100_000, 1000);
    db.compact().unwrap();
    let blocks_before = db.metrics().blocks;
    assert!(blocks_before > 0);
    assert!(
        db.metrics().head_min_time >= 80_000,
        "ranges below were cut"
    );

    let late = lbl(&[("__name__", "m"), ("job", "a"), ("s", "000")]);
    let fresh = lbl(&[("__name__", "backfill")]);
    let mut app = db.appender();
    // A gap in an existing series, far below the cut boundary.
    app.append(None, &late, 25_500, -1.5).unwrap();
    // A new series whose first samples are old.
    for t in [12_000, 12_500, 31_000] {
        app.append(None, &fresh, t, t as f64).unwrap();
    }
    // Outside the window (newest sample 99 000 - 100 000): refused with a typed error.
    assert!(matches!(
        app.append(None, &fresh, -2_000, 1.0),
        Err(Error::OutOfBounds)
    ));
    app.commit().unwrap();
    let s = model.get_mut(&late).unwrap();
    s.push((25_500, -1.5));
    s.sort_by_key(|x| x.0);
    model.insert(
        fresh.clone(),
        vec![(12_000, 12_000.0), (12_500, 12_500.0), (31_000, 31_000.0)],
    );
    check(&db, &model, "old samples in the head");

    // Restart without compaction: the WAL brings them back.
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), o.clone()).unwrap();
    check(&db, &model, "old samples after WAL replay");

    // Compaction writes them into blocks over the old ranges and merges those.
    db.compact().unwrap();
    assert!(
        db.metrics().head_min_time >= 80_000,
        "old samples left the head: {:?}",
        db.metrics()
    );
    check(&db, &model, "old samples in blocks");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    check(&db, &model, "old samples in blocks after reopen");
    db.compact().unwrap();
    check(&db, &model, "after another compaction");
}

#[test]
fn retention_drops_old_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        retention_ms: Some(30_000),
        ..opts()
    };
    let db = Db::open(dir.path(), o).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, 3, 0, 100_000, 1000);
    db.compact().unwrap();
    let got = dump(&db, &all(), i64::MIN, i64::MAX);
    let oldest = got.iter().map(|s| s.1[0].0).min().unwrap();
    assert!(oldest >= 40_000, "old data kept: {oldest}");
    // Newer data is intact.
    for (l, s) in &got {
        let want: Vec<_> = model[l].iter().copied().filter(|x| x.0 >= oldest).collect();
        assert_eq!(s, &want);
    }

    // Size retention: a tiny limit keeps only the newest block(s).
    let dir2 = tempfile::tempdir().unwrap();
    let o = Options {
        retention_bytes: Some(1),
        ..opts()
    };
    let db = Db::open(dir2.path(), o).unwrap();
    write(&db, &mut Model::new(), 3, 0, 100_000, 1000);
    db.compact().unwrap();
    assert_eq!(db.metrics().blocks, 0);
}

#[test]
fn tombstones_hide_and_clean_removes_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, 4, 0, 60_000, 1000);
    db.compact().unwrap();
    assert!(db.metrics().blocks > 0);
    db.delete_series(&[Matcher::equal("job", "a")], 5_000, 45_000)
        .unwrap();
    for (l, s) in model.iter_mut() {
        if l.get("job") == Some("a") {
            s.retain(|x| x.0 < 5_000 || x.0 > 45_000);
        }
    }
    check(&db, &model, "after delete");
    let bytes_before = db.metrics().blocks_bytes;
    db.clean_tombstones().unwrap();
    check(&db, &model, "after clean");
    assert!(db.metrics().blocks_bytes < bytes_before);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model, "after reopen");
    // Delete everything of one series in blocks and head.
    db.delete_series(&[Matcher::equal("s", "001")], i64::MIN, i64::MAX)
        .unwrap();
    model.retain(|l, _| l.get("s") != Some("001"));
    check(&db, &model, "after deleting a whole series");
}

#[test]
fn snapshot_with_head_opens_as_a_db() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, 5, 0, 50_000, 1000);
    db.compact().unwrap();
    let snap = tempfile::tempdir().unwrap();
    let target = snap.path().join("snap");
    db.snapshot(&target, true).unwrap();
    assert!(db.snapshot(&target, true).is_err(), "existing dir accepted");
    let copy = Db::open(&target, opts()).unwrap();
    check(&copy, &model, "snapshot");
    let without_head = snap.path().join("blocks-only");
    db.snapshot(&without_head, false).unwrap();
    let copy = Db::open(&without_head, opts()).unwrap();
    let got = dump(&copy, &all(), i64::MIN, i64::MAX);
    assert!(got.iter().all(|(_, s)| s.last().unwrap().0 < 50_000));
}

#[test]
fn corrupt_chunk_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, &mut Model::new(), 2, 0, 60_000, 1000);
    db.compact().unwrap();
    db.close().unwrap();
    drop(db);
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path().join("chunks").join("000001"))
        .find(|p| p.exists())
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    b[20] ^= 0xff;
    std::fs::write(&seg, &b).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut set = q.select(&all());
    while set.next() {}
    assert!(
        matches!(set.err(), Some(Error::Corruption { .. })),
        "got {:?}",
        set.err()
    );
}

/// Scrape-like data (integer counters with varying increments, one-decimal gauges, a float
/// counter with noisy increments, 15 s steps) compacted into a 2 h block: every sample comes
/// back bit for bit, and the block's chunk files are less than half the size Gorilla XOR needs,
/// so the packed encoding and the zstd frames are really in use.
#[test]
fn compacted_block_stores_scrape_data_densely() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            background: false,
            sync: SyncMode::Buffer,
            retention_ms: None,
            ..Options::default()
        },
    )
    .unwrap();
    let mut model = Model::new();
    let series = 300;
    let step = 15_000;
    // Just over 3 h (1.5 block ranges): the first 2 h range gets cut into a block.
    let samples = 3 * 3600 * 1000 / step + 4;
    let mut state: Vec<f64> = vec![0.0; series];
    let mut app = db.appender();
    for k in 0..samples {
        let t = k * step;
        for (s, x) in state.iter_mut().enumerate() {
            let noise = ((k as usize * 7919 + s * 104_729) % 1000) as f64;
            let v = match s % 3 {
                0 => {
                    *x += (noise % 37.0).floor();
                    *x
                }
                1 => (200.0 + (noise % 50.0)) / 10.0,
                _ => {
                    *x += 0.01 + noise / 7.0e4;
                    *x
                }
            };
            let sv = format!("{s:03}");
            let l = lbl(&[("__name__", "scrape"), ("s", &sv)]);
            app.append(None, &l, t, v).unwrap();
            model.entry(l).or_default().push((t, v));
        }
        app.commit().unwrap();
    }
    db.compact().unwrap();
    let blocks: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").exists())
        .collect();
    assert_eq!(blocks.len(), 1, "one 2 h block cut");
    let chunk_bytes: u64 = std::fs::read_dir(blocks[0].join("chunks"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let in_block = (series as i64 * 2 * 3600 * 1000 / step) as f64;
    let per_sample = chunk_bytes as f64 / in_block;
    // Gorilla XOR in 120-sample chunks needs 5.3 B/sample on this data (1.9 for the integer
    // counters, 7.0 for the gauges and for the float counters); the block measured 1.79.
    assert!(
        per_sample < 2.5,
        "{per_sample:.3} bytes/sample in the block"
    );
    check(&db, &model, "after compaction");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model, "after reopen");
}
