//! Head snapshots through a whole `Db`: a head opened from a snapshot plus the WAL after it is
//! the head the whole WAL builds, however the snapshot was taken; a bad or stale snapshot is
//! ignored.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use crate::matcher::MatchType;
use crate::model::Labels;
use crate::test_rng::Rng;
use std::sync::Barrier;
use std::sync::atomic::AtomicUsize;

fn opts(window: i64) -> Options {
    Options {
        background: false,
        block_range_ms: 120_000,
        retention_ms: None,
        out_of_order_window_ms: window,
        // Small segments: the WAL spans many.
        wal_segment_size: 32 << 10,
        sync: SyncMode::Buffer,
        head_snapshot_interval_ms: Some(15 * 60 * 1000),
        ..Options::default()
    }
}

fn labels(set: &str, i: u64) -> Labels {
    Labels::from_pairs(&[("__name__", "m"), ("set", set), ("i", &i.to_string())])
}

/// `rounds` commits of one sample per series `set`/`ids`, mostly in order (1000 ms apart),
/// some out of order, duplicate or stale; `newest` holds each series' newest time.
/// Returns the number of samples appended (each is logged).
fn rounds(
    db: &Db,
    set: &str,
    ids: std::ops::Range<u64>,
    newest: &mut [i64],
    n: usize,
    rng: &mut Rng,
) -> u64 {
    let mut ok = 0;
    for _ in 0..n {
        let mut app = db.appender();
        for i in ids.clone() {
            let nt = &mut newest[i as usize];
            let t = match rng.below(20) {
                0 => *nt - rng.below(40) as i64 * 1000, // out of order (maybe too old)
                1 => *nt,                               // duplicate time
                _ => *nt + 1000,
            };
            let v = match rng.below(30) {
                0 => crate::model::stale_nan(),
                1..5 => 7.0,
                _ => rng.below(1000) as f64,
            };
            if app.append(None, &labels(set, i), t, v).is_ok() {
                *nt = (*nt).max(t);
                ok += 1;
            }
        }
        app.commit().unwrap();
    }
    ok
}

fn delete(db: &Db, set: &str, re: &str, mint: i64, maxt: i64) {
    let m = [
        Matcher::new(MatchType::Equal, "set", set).unwrap(),
        Matcher::new(MatchType::Regex, "i", re).unwrap(),
    ];
    db.delete_series(&m, mint, maxt).unwrap();
}

/// Everything the head holds, series by series, then its time range and series count.
fn dump(db: &Db) -> Vec<String> {
    db.inner.head.dump()
}

fn assert_same(want: &[String], got: &[String], what: &str) {
    assert_eq!(want.len(), got.len(), "{what}: number of lines");
    for (w, g) in want.iter().zip(got) {
        assert_eq!(w, g, "{what}");
    }
}

/// A copy of the database directory (its lock file aside), as a crash leaves it.
fn copy(src: &Path, dst: &Path, with_snapshots: bool) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let snapshot_file = name.starts_with(snapshot::SNAPSHOT_PREFIX)
            || name.starts_with(snapshot_delta::DELTA_PREFIX);
        if name == LOCK_FILE || (!with_snapshots && snapshot_file) {
            continue;
        }
        if e.path().is_dir() {
            copy(&e.path(), &dst.join(&name), with_snapshots);
        } else {
            std::fs::copy(e.path(), dst.join(&name)).unwrap();
        }
    }
}

/// Copies the crashed `src` into `root/a` (with its snapshots) and `root/b` (without), opens
/// both and returns the Db opened from the snapshot with the dumps of both: (with, from the
/// snapshot + WAL, from the whole WAL).
fn reopen_with_and_without_snapshot(
    root: &Path,
    src: &Path,
    window: i64,
) -> (Db, Vec<String>, Vec<String>) {
    let (a, b) = (root.join("a"), root.join("b"));
    copy(src, &a, true);
    copy(src, &b, false);
    let with = Db::open(&a, opts(window)).unwrap();
    assert_eq!(snapshots(&a).len(), 1, "the snapshot was not used");
    let whole = Db::open(&b, opts(window)).unwrap();
    let (got, want) = (dump(&with), dump(&whole));
    (with, got, want)
}

fn deltas(dir: &Path) -> Vec<u32> {
    snapshot_delta::list(dir)
        .unwrap()
        .into_iter()
        .map(|s| s.0)
        .collect()
}

fn snapshots(dir: &Path) -> Vec<u32> {
    snapshot::list(dir)
        .unwrap()
        .into_iter()
        .map(|s| s.0)
        .collect()
}

/// Writes data, deletions and a head cut (series garbage-collected, a checkpoint), takes a
/// snapshot while two appenders commit, writes more, and "crashes" (the Db is dropped without
/// `close`). Returns the live head's dump.
fn build(dir: &Path, window: i64, seed: u64) -> Vec<String> {
    let db = Db::open(dir, opts(window)).unwrap();
    let mut rng = Rng(seed);
    let mut newest = vec![0i64; 200];
    rounds(&db, "a", 0..40, &mut newest, 60, &mut rng);
    delete(&db, "a", "1.*", 20_000, 40_000);
    // Series 30..40 stop here: the cut below drops them from the head.
    rounds(&db, "a", 0..30, &mut newest, 340, &mut rng);
    db.compact().unwrap();
    assert!(!db.inner.blocks.read().is_empty(), "no head cut");
    let gone = labels("a", 35);
    assert!(
        db.inner
            .head
            .series
            .get_by_labels(gone.stable_hash(), &gone)
            .is_none()
    );
    // A WAL reader that never advances keeps every segment from being deleted by the snapshot
    // below, so that the whole WAL can be replayed for comparison.
    let keep_all = db.wal_keep(0);
    // Appenders on series of their own commit while the snapshot is taken.
    let started = Barrier::new(3);
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for (k, set) in ["t1", "t2"].into_iter().enumerate() {
            let (db, started, done) = (&db, &started, &done);
            s.spawn(move || {
                let mut rng = Rng(seed * 7 + k as u64);
                let mut newest = vec![390_000i64; 200];
                rounds(db, set, 0..20, &mut newest, 5, &mut rng);
                started.wait();
                rounds(db, set, 0..20, &mut newest, 200, &mut rng);
                done.fetch_add(1, Ordering::AcqRel);
            });
        }
        started.wait();
        db.snapshot_head().unwrap();
    });
    drop(keep_all);
    assert_eq!(done.load(Ordering::Acquire), 2);
    assert_eq!(snapshots(dir).len(), 1, "no snapshot written");
    rounds(&db, "a", 0..30, &mut newest, 30, &mut rng);
    // New series, above the cut.
    newest[100..110].fill(590_000);
    rounds(&db, "b", 100..110, &mut newest, 30, &mut rng);
    delete(&db, "a", "2.*", 395_000, 405_000);
    let live = dump(&db);
    drop(db);
    live
}

#[test]
fn snapshot_plus_wal_builds_the_head_the_whole_wal_builds() {
    for (window, seed) in [(0, 1), (60_000, 2)] {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("db");
        let live = build(&src, window, seed);
        let (with, got, want) = reopen_with_and_without_snapshot(root.path(), &src, window);
        assert!(want.len() > 60, "too few series: {}", want.len());
        if window > 0 {
            assert!(
                want.iter().any(|l| !l.contains("ooo []")),
                "no out-of-order sample"
            );
        }
        assert_same(
            &want,
            &got,
            &format!("window {window}: snapshot + WAL vs whole WAL"),
        );
        // And both are the head that crashed (series by series).
        let n = live.len() - 1;

        assert_same(
            &live[..n],
            &got[..n],
            &format!("window {window}: live head vs snapshot"),
        );
        // Appends continue on the restored head.
        let mut app = with.appender();
        app.append(None, &labels("a", 1), 10_000_000, 1.0).unwrap();
        app.commit().unwrap();
    }
}

#[test]
fn a_torn_corrupt_or_stale_snapshot_is_ignored_and_the_whole_wal_replayed() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("db");
    build(&src, 0, 3);
    let whole = root.path().join("whole");
    copy(&src, &whole, false);
    let want = dump(&Db::open(&whole, opts(0)).unwrap());
    let [seg] = snapshots(&src)[..] else {
        panic!("one snapshot expected")
    };
    let name = snapshot::snapshot_name(seg);
    let len = std::fs::metadata(src.join(&name)).unwrap().len() as usize;
    let check = |what: &str, damage: &dyn Fn(&Path)| {
        let d = root.path().join(what);
        copy(&src, &d, true);
        damage(&d.join(&name));
        let db = Db::open(&d, opts(0)).unwrap();
        assert_same(&want, &dump(&db), what);
        assert!(snapshots(&d).is_empty(), "{what}: the bad snapshot stays");
    };
    for cut in [3, 20, len / 2, len - 3] {
        check(&format!("torn{cut}"), &|p| {
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(cut as u64).unwrap();
        });
    }
    for at in [2, 12, len / 3, len - 2] {
        check(&format!("flip{at}"), &|p| {
            let mut b = std::fs::read(p).unwrap();
            b[at] ^= 0x10;
            std::fs::write(p, b).unwrap();
        });
    }
}

/// WAL segment numbers in `dir` (a database directory) and its checkpoints' numbers.
fn wal_files(dir: &Path) -> (Vec<u32>, Vec<u32>) {
    let wal = dir.join(WAL_DIR);
    let segs = crate::wal::segment::list_segments(&wal).unwrap();
    let cps = crate::wal::checkpoint::list_checkpoints(&wal).unwrap();
    (
        segs.into_iter().map(|s| s.0).collect(),
        cps.into_iter().map(|c| c.0).collect(),
    )
}

#[test]
fn a_snapshot_replaces_the_segments_it_covers_and_a_cut_keeps_it_usable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0)).unwrap();
    let mut rng = Rng(9);
    let mut newest = vec![0i64; 200];
    rounds(&db, "a", 0..10, &mut newest, 100, &mut rng);
    db.snapshot_head().unwrap();
    // Deleted only once the snapshot is durable: every segment below its own, replaced by a
    // checkpoint of series records.
    let [n] = snapshots(dir.path())[..] else {
        panic!("one snapshot expected")
    };
    let (segs, cps) = wal_files(dir.path());
    assert_eq!(segs.first(), Some(&n), "{segs:?}");
    assert_eq!(cps, [n - 1]);
    rounds(&db, "a", 0..10, &mut newest, 300, &mut rng);
    // A head cut after segments were deleted: its checkpoint keeps the snapshot's segment.
    db.compact().unwrap();
    assert!(!db.inner.blocks.read().is_empty(), "no head cut");
    let (live, live_q) = (dump(&db), crate::testing::dump_floats(&db));
    drop(db);
    assert_eq!(wal_files(dir.path()).0.first(), Some(&n));
    let db = Db::open(dir.path(), opts(0)).unwrap();
    assert_eq!(snapshots(dir.path()), [n], "the snapshot was not used");
    assert_same(&live, &dump(&db), "after the cut");
    assert_eq!(crate::testing::dump_floats(&db), live_q);
    // A clean close writes a new one (deleting the segments before it), and the next open
    // starts from it.
    rounds(&db, "a", 0..10, &mut newest, 10, &mut rng);
    let (live, live_q) = (dump(&db), crate::testing::dump_floats(&db));
    db.close().unwrap();
    drop(db);
    let [m] = snapshots(dir.path())[..] else {
        panic!("one snapshot expected")
    };
    assert!(m > n);
    assert_eq!(wal_files(dir.path()).0.first(), Some(&m));
    let db = Db::open(dir.path(), opts(0)).unwrap();
    assert_eq!(snapshots(dir.path()), [m], "not used");
    assert_same(
        &live[..live.len() - 1],
        &dump(&db)[..live.len() - 1],
        "after close",
    );
    assert_eq!(crate::testing::dump_floats(&db), live_q);
}

#[test]
fn a_crash_between_the_rename_and_the_deletion_opens_from_the_snapshot() {
    // A reader keeping every segment leaves the directory as a crash right after the rename
    // does: the snapshot and all the segments it covers.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0)).unwrap();
    let keep = db.wal_keep(0);
    let mut rng = Rng(4);
    let mut newest = vec![0i64; 200];
    rounds(&db, "a", 0..10, &mut newest, 100, &mut rng);
    db.snapshot_head().unwrap();
    let [n] = snapshots(dir.path())[..] else {
        panic!("one snapshot expected")
    };
    assert_eq!(wal_files(dir.path()), ((0..=n).collect(), vec![]));
    rounds(&db, "a", 0..10, &mut newest, 20, &mut rng);
    let (live, live_q) = (dump(&db), crate::testing::dump_floats(&db));
    drop(keep);
    drop(db);
    let db = Db::open(dir.path(), opts(0)).unwrap();
    assert_eq!(snapshots(dir.path()), [n], "the snapshot was not used");
    assert_same(&live, &dump(&db), "snapshot + later segments");
    assert_eq!(crate::testing::dump_floats(&db), live_q);
}

#[test]
fn a_corrupt_snapshot_whose_segments_are_gone_still_opens_with_the_later_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0)).unwrap();
    let mut rng = Rng(5);
    let mut newest = vec![0i64; 200];
    rounds(&db, "a", 0..10, &mut newest, 100, &mut rng);
    db.snapshot_head().unwrap();
    let after = newest.iter().copied().max().unwrap();
    let [n] = snapshots(dir.path())[..] else {
        panic!("one snapshot expected")
    };
    rounds(&db, "a", 0..10, &mut newest, 20, &mut rng);
    let later: Vec<_> = crate::testing::dump_floats(&db)
        .into_iter()
        .map(|(l, s)| (l, s.into_iter().filter(|x| x.0 > after).collect::<Vec<_>>()))
        .collect();
    assert!(later.iter().all(|(_, s)| !s.is_empty()));
    drop(db);
    let path = dir.path().join(snapshot::snapshot_name(n));
    let mut b = std::fs::read(&path).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x10;
    std::fs::write(&path, b).unwrap();
    // Logged as an error naming segments 0..n; the series (from the checkpoint) and every
    // sample of the segments from n on are there.
    let db = Db::open(dir.path(), opts(0)).unwrap();
    assert!(snapshots(dir.path()).is_empty());
    let got = crate::testing::dump_floats(&db);
    assert_eq!(got.len(), later.len());
    for ((gl, gs), (wl, ws)) in got.iter().zip(&later) {
        assert_eq!(gl, wl);
        assert_eq!(
            gs.iter().filter(|x| x.0 > after).collect::<Vec<_>>(),
            ws.iter().collect::<Vec<_>>()
        );
    }
    // Appends continue.
    let mut app = db.appender();
    app.append(None, &labels("a", 1), 10_000_000, 1.0).unwrap();
    app.commit().unwrap();
}

#[test]
fn histograms_are_not_covered_so_no_snapshot_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0)).unwrap();
    let mut app = db.appender();
    let h = crate::histogram::FloatHistogram {
        count: 1.0,
        ..Default::default()
    };
    app.append_histogram(None, &labels("h", 1), 1000, &h)
        .unwrap();
    app.commit().unwrap();
    db.snapshot_head().unwrap();
    assert!(snapshots(dir.path()).is_empty());
    // The size trigger counts from the segment being written now: no retry at every check.
    let cur = db.inner.head.wal.lock().as_ref().unwrap().current_segment();
    assert_eq!(db.inner.snapshot_segment.load(Ordering::Acquire), cur);
    let since = db.inner.head.wal.lock().as_ref().unwrap().bytes_since(cur);
    assert!(since < 4 << 20, "{since}");
}

#[test]
fn a_wal_watcher_reads_every_sample_across_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0)).unwrap();
    let mut w = db
        .wal_watcher(crate::wal::watch::WalPosition::default())
        .unwrap();
    // The reader's keep point, as a remote-write queue holds it.
    let keep = db.wal_keep(0);
    let (mut appended, mut read) = (0u64, 0u64);
    let mut drain = |w: &mut WalWatcher| {
        while let Some(e) = w.next_entry().unwrap() {
            if let crate::wal::watch::WalEntry::Samples(s) = e {
                read += s.len() as u64;
            }
        }
    };
    for round in 0..3 {
        for t in 0..50 {
            let mut app = db.appender();
            for i in 0..10 {
                app.append(None, &labels("a", i), round * 1000 + t, 1.0)
                    .unwrap();
                appended += 1;
            }
            app.commit().unwrap();
            if t == 25 {
                // Read part of it: the snapshot deletes only what the reader is past.
                drain(&mut w);
                keep.set(w.position().segment);
            }
        }
        db.snapshot_head_whole().unwrap();
        assert!(wal_files(dir.path()).0.first() <= Some(&keep.segment()));
    }
    assert!(!wal_files(dir.path()).1.is_empty(), "no segment deleted");
    assert_eq!(
        snapshots(dir.path()).len(),
        1,
        "older snapshots are removed"
    );
    drain(&mut w);
    // Every sample appended was logged and read, though segments went.
    assert_eq!(read, appended);
}

#[test]
fn the_size_trigger_waits_for_a_quarter_of_the_last_snapshot_when_that_is_more() {
    let mib = 1u64 << 20;
    // No snapshot yet, or a small one: the configured bound.
    assert!(!snapshot_due_by_size(4 * mib - 1, 4 * mib, 0));
    assert!(snapshot_due_by_size(4 * mib, 4 * mib, 0));
    // The medium set (16 MB snapshot): a quarter is 4 MB, under 4 MiB, so as before.
    assert!(snapshot_due_by_size(4 * mib, 4 * mib, 16_000_000));
    // A 400 MB snapshot: due after 100 MB of WAL, not 4 MiB.
    assert!(!snapshot_due_by_size(4 * mib, 4 * mib, 400_000_000));
    assert!(!snapshot_due_by_size(99_999_999, 4 * mib, 400_000_000));
    assert!(snapshot_due_by_size(100_000_000, 4 * mib, 400_000_000));
    // A bigger configured bound still wins.
    assert!(!snapshot_due_by_size(64 * mib, 128 * mib, 16_000_000));
}

#[test]
fn the_size_trigger_counts_from_the_newest_snapshot_file_size_also_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let size_of_snapshot = |dir: &Path| {
        let s = snapshot::list(dir).unwrap();
        assert_eq!(s.len(), 1, "{s:?}");
        std::fs::metadata(&s[0].1).unwrap().len()
    };
    {
        let db = Db::open(dir.path(), opts(0)).unwrap();
        assert_eq!(db.inner.snapshot_bytes.load(Ordering::Acquire), 0);
        let mut newest = vec![0; 50];
        rounds(&db, "a", 0..50, &mut newest, 20, &mut Rng(7));
        db.snapshot_head().unwrap();
        let want = size_of_snapshot(dir.path());
        assert!(want > 0);
        assert_eq!(db.inner.snapshot_bytes.load(Ordering::Acquire), want);
        db.close().unwrap();
    }
    // Close wrote a new one; opening loads it and the trigger knows its size.
    let want = size_of_snapshot(dir.path());
    let db = Db::open(dir.path(), opts(0)).unwrap();
    assert_eq!(db.inner.snapshot_bytes.load(Ordering::Acquire), want);
}

/// Appenders commit without pause on series of their own (chunks completed at every 120th
/// sample, some samples out of order) while snapshots are written one after the other: each
/// series is read after the cut while it keeps changing, yet after a "crash" the newest
/// snapshot plus the WAL after it is exactly the head the whole WAL builds, and the live one.
#[test]
fn appends_racing_snapshots_end_up_in_the_snapshot_or_the_wal_after_it_exactly_once() {
    let window = 60_000;
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("db");
    let db = Db::open(&src, opts(window)).unwrap();
    let mut rng = Rng(11);
    let mut newest = vec![0i64; 3000];
    // A head big enough that writing a snapshot takes a while.
    rounds(&db, "a", 0..3000, &mut newest, 130, &mut rng);
    let keep_all = db.wal_keep(0);
    let stop = AtomicBool::new(false);
    let commits = AtomicUsize::new(0);
    let started = Barrier::new(4);
    let (mut snaps, mut raced) = (0, 0);
    std::thread::scope(|s| {
        for (k, set) in ["r1", "r2", "r3"].into_iter().enumerate() {
            let (db, stop, commits, started) = (&db, &stop, &commits, &started);
            s.spawn(move || {
                let mut rng = Rng(100 + k as u64);
                // Above the head's newest sample (older ones are out of bounds).
                let mut newest = vec![200_000i64; 40];
                rounds(db, set, 0..40, &mut newest, 3, &mut rng);
                started.wait();
                // Bounded: about 33 chunks per series at most.
                for _ in 0..4000 {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    rounds(db, set, 0..40, &mut newest, 1, &mut rng);
                    commits.fetch_add(1, Ordering::AcqRel);
                }
            });
        }
        started.wait();
        // Until commits happened while a snapshot was being written, at least 3 snapshots.
        while snaps < 3 || (raced == 0 && snaps < 50) {
            let before = commits.load(Ordering::Acquire);
            db.snapshot_head().unwrap();
            raced += commits.load(Ordering::Acquire) - before;
            snaps += 1;
        }
        stop.store(true, Ordering::Release);
    });
    assert!(raced > 0, "no commit while {snaps} snapshots were written");
    assert!(!deltas(&src).is_empty(), "no delta written");
    drop(keep_all);
    let live = dump(&db);
    drop(db);
    let (_with, got, want) = reopen_with_and_without_snapshot(root.path(), &src, window);
    assert_eq!(want.len(), 3000 + 120 + 1);
    assert_same(&want, &got, "snapshot + WAL vs whole WAL");
    assert_same(&live, &got, "live head vs snapshot + WAL");
}

/// A whole snapshot, then deltas on top of it while series are created, chunks completed
/// (packed into the deltas' pages), open chunks grown (tails) or started, and out-of-order
/// samples come and go: after a "crash" the snapshot + deltas + WAL after the last delta is
/// the head the whole WAL builds, and the live one.
fn build_chain(dir: &Path, window: i64, seed: u64) -> Vec<String> {
    let db = Db::open(dir, opts(window)).unwrap();
    let keep_all = db.wal_keep(0);
    let mut rng = Rng(seed);
    let mut newest = vec![0i64; 200];
    rounds(&db, "a", 0..40, &mut newest, 150, &mut rng);
    db.snapshot_head().unwrap();
    assert_eq!((snapshots(dir).len(), deltas(dir).len()), (1, 0));
    // Some series only (completing chunks): the others are unchanged and left out.
    rounds(&db, "a", 0..20, &mut newest, 100, &mut rng);
    // New series, at the head's newest time (older samples are out of bounds).
    newest[100..120].fill(260_000);
    rounds(&db, "b", 100..110, &mut newest, 5, &mut rng);
    db.snapshot_head().unwrap();
    // One sample per series: open chunks grow by a few bits (tails).
    rounds(&db, "a", 0..40, &mut newest, 1, &mut rng);
    db.snapshot_head().unwrap();
    // A regular series takes 2 bits per sample: its open chunk gains samples but not always a
    // byte between two deltas.
    for k in 0..6 {
        let mut app = db.appender();
        app.append(None, &labels("c", 0), 261_000 + k * 1000, 7.0)
            .unwrap();
        app.commit().unwrap();
        db.snapshot_head().unwrap();
    }
    rounds(&db, "a", 10..40, &mut newest, 20, &mut rng);
    rounds(&db, "b", 100..120, &mut newest, 3, &mut rng);
    db.snapshot_head().unwrap();
    assert_eq!(snapshots(dir).len(), 1);
    assert_eq!(deltas(dir).len(), 9, "deltas on top of the snapshot");
    rounds(&db, "a", 0..40, &mut newest, 7, &mut rng);
    drop(keep_all);
    let live = dump(&db);
    drop(db);
    live
}

#[test]
fn a_snapshot_and_its_deltas_plus_the_wal_build_the_head_the_whole_wal_builds() {
    for (window, seed) in [(0, 21), (60_000, 22)] {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("db");
        let live = build_chain(&src, window, seed);
        let (with, got, want) = reopen_with_and_without_snapshot(root.path(), &src, window);
        assert_eq!(deltas(&root.path().join("a")).len(), 9, "deltas not kept");
        if window > 0 {
            assert!(
                want.iter().any(|l| !l.contains("ooo []")),
                "no out-of-order sample"
            );
        }
        let what = format!("window {window}");
        assert_same(&want, &got, &format!("{what}: chain + WAL vs whole WAL"));
        let n = live.len() - 1;
        assert_eq!((live.len(), &live[n]), (got.len(), &got[n]), "{what}");
        assert_same(
            &live[..n],
            &got[..n],
            &format!("{what}: live vs chain + WAL"),
        );
        // Appends continue, and the next snapshot starts a new chain: deltas removed.
        let mut app = with.appender();
        app.append(None, &labels("a", 1), 10_000_000, 1.0).unwrap();
        app.commit().unwrap();
        with.snapshot_head().unwrap();
        assert!(deltas(&root.path().join("a")).is_empty());
    }
}

#[test]
fn a_torn_or_corrupt_delta_is_ignored_and_the_wal_replayed_from_the_link_before() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("db");
    build_chain(&src, 0, 23);
    let whole = root.path().join("whole");
    copy(&src, &whole, false);
    let want = dump(&Db::open(&whole, opts(0)).unwrap());
    let all = deltas(&src);
    assert_eq!(all.len(), 9);
    for (k, &seg) in all.iter().enumerate().step_by(2) {
        let name = snapshot_delta::delta_name(seg);
        let len = std::fs::metadata(src.join(&name)).unwrap().len() as usize;
        let check = |what: &str, damage: &dyn Fn(&Path)| {
            let d = root.path().join(format!("{what}-{k}"));
            copy(&src, &d, true);
            damage(&d.join(&name));
            let db = Db::open(&d, opts(0)).unwrap();
            assert_same(&want, &dump(&db), what);
            assert_eq!(snapshots(&d).len(), 1, "{what}: the snapshot was not used");
            // The deltas before the bad one stay (they were loaded); it and later ones go.
            assert_eq!(deltas(&d), all[..k], "{what}");
        };
        for cut in [3, 20, len / 2, len - 3] {
            check(&format!("torn{cut}"), &|p| {
                let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                f.set_len(cut as u64).unwrap();
            });
        }
        for at in [2, 12, len / 3, len - 2] {
            check(&format!("flip{at}"), &|p| {
                let mut b = std::fs::read(p).unwrap();
                b[at] ^= 0x10;
                std::fs::write(p, b).unwrap();
            });
        }
        check("gone", &|p| std::fs::remove_file(p).unwrap());
    }
}

#[test]
fn a_delta_deletes_no_segment_and_a_deletion_or_close_starts_a_whole_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0)).unwrap();
    let mut rng = Rng(24);
    let mut newest = vec![0i64; 200];
    rounds(&db, "a", 0..10, &mut newest, 100, &mut rng);
    db.snapshot_head().unwrap();
    let [n] = snapshots(dir.path())[..] else {
        panic!("one snapshot expected")
    };
    rounds(&db, "a", 0..10, &mut newest, 100, &mut rng);
    db.snapshot_head().unwrap();
    let [d] = deltas(dir.path())[..] else {
        panic!("one delta expected")
    };
    assert!(d > n);
    // The segments from the snapshot's on are all there.
    assert_eq!(wal_files(dir.path()).0.first(), Some(&n));
    // A deletion changes completed chunks: the next one is a whole snapshot.
    delete(&db, "a", "1", 0, 50_000);
    rounds(&db, "a", 0..10, &mut newest, 5, &mut rng);
    db.snapshot_head().unwrap();
    let [m] = snapshots(dir.path())[..] else {
        panic!("one snapshot expected")
    };
    assert!(m > d);
    assert!(deltas(dir.path()).is_empty());
    assert_eq!(wal_files(dir.path()).0.first(), Some(&m));
    rounds(&db, "a", 0..10, &mut newest, 5, &mut rng);
    db.snapshot_head().unwrap();
    assert_eq!(deltas(dir.path()).len(), 1);
    let live = dump(&db);
    db.close().unwrap();
    drop(db);
    // Close writes a whole snapshot.
    assert!(deltas(dir.path()).is_empty());
    let db = Db::open(dir.path(), opts(0)).unwrap();
    assert_same(
        &live[..live.len() - 1],
        &dump(&db)[..live.len() - 1],
        "after close",
    );
}

/// More series than the head has ref stripes (128, so several in each and the capture's stripe
/// order is not id order), some with out-of-order samples, some new in a delta: the deltas walk
/// the series and the chain's marks by id (`Captured::sort_by_id`), and every delta loads.
#[test]
fn a_chain_over_more_series_than_stripes_builds_the_head_the_whole_wal_builds() {
    let window = 60_000;
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("db");
    let live = {
        let db = Db::open(&src, opts(window)).unwrap();
        let keep_all = db.wal_keep(0);
        let mut rng = Rng(31);
        let mut newest = vec![0i64; 1200];
        // A base big enough that the three deltas stay below it (`MAX_DELTAS_PER_BASE`).
        rounds(&db, "m", 0..900, &mut newest, 400, &mut rng);
        db.snapshot_head().unwrap();
        rounds(&db, "m", 0..900, &mut newest, 3, &mut rng);
        db.snapshot_head().unwrap();
        // New series at the head's newest time, and half the old ones completing chunks.
        let top = newest.iter().copied().max().unwrap();
        newest[900..1200].fill(top);
        rounds(&db, "n", 900..1200, &mut newest, 2, &mut rng);
        rounds(&db, "m", 0..450, &mut newest, 130, &mut rng);
        db.snapshot_head().unwrap();
        rounds(&db, "m", 0..900, &mut newest, 1, &mut rng);
        rounds(&db, "n", 900..1200, &mut newest, 1, &mut rng);
        db.snapshot_head().unwrap();
        assert_eq!((snapshots(&src).len(), deltas(&src).len()), (1, 3));
        // After the last delta: replayed from the WAL.
        rounds(&db, "m", 0..900, &mut newest, 2, &mut rng);
        drop(keep_all);
        let live = dump(&db);
        drop(db);
        live
    };
    let (_with, got, want) = reopen_with_and_without_snapshot(root.path(), &src, window);
    assert_eq!(
        deltas(&root.path().join("a")).len(),
        3,
        "a delta did not load"
    );
    assert!(
        want.iter().any(|l| !l.contains("ooo []")),
        "no out-of-order sample"
    );
    assert_same(&want, &got, "chain + WAL vs whole WAL");
    let n = live.len() - 1;
    assert_eq!((live.len(), &live[n]), (got.len(), &got[n]));
    assert_same(&live[..n], &got[..n], "live vs chain + WAL");
}

#[test]
fn the_size_trigger_waits_for_64_bytes_of_wal_a_series_on_big_heads() {
    let mib = 1u64 << 20;
    let check = |wal: u64, last: u64, series: u64, want: bool| {
        assert_eq!(
            snapshot_due_on_head(wal, 4 * mib, last, series),
            want,
            "{wal} B of WAL, last snapshot {last} B, {series} series"
        );
    };
    // The medium set (20,000 series: 1.28 MB): the configured 4 MiB, as before.
    check(4 * mib - 1, 0, 20_000, false);
    check(4 * mib, 0, 20_000, true);
    check(4 * mib, 16_000_000, 20_000, true);
    // 400,000 series: 25.6 MB.
    check(4 * mib, 4_500_000, 400_000, false);
    check(25_599_999, 4_500_000, 400_000, false);
    check(25_600_000, 4_500_000, 400_000, true);
    // A quarter of a bigger snapshot still wins, and so does a bigger configured bound.
    check(25_600_000, 400_000_000, 400_000, false);
    check(100_000_000, 400_000_000, 400_000, true);
    assert!(!snapshot_due_on_head(64 * mib, 128 * mib, 0, 400_000));
}

#[test]
fn a_snapshot_of_many_sections_loads_on_two_threads_into_the_head_a_sequential_load_builds() {
    // Long, incompressible label values: the entries fill several SERIES sections (cut at
    // 1 MiB) and several hand-overs each; 250 random samples per series complete chunks over several
    // pages; some series get out-of-order samples.
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("db");
    let n = 4000u64;
    let mut rng = Rng(77);
    let pad: Vec<String> = (0..n)
        .map(|_| {
            (0..40)
                .map(|_| format!("{:x}", rng.below(1 << 32)))
                .collect()
        })
        .collect();
    let labels: Vec<Labels> = (0..n)
        .map(|i| {
            Labels::from_pairs(&[
                ("__name__", "m"),
                ("i", &i.to_string()),
                ("pad", &pad[i as usize]),
            ])
        })
        .collect();
    let mut refs = vec![None; n as usize];
    let live = {
        let db = Db::open(&src, opts(60_000)).unwrap();
        for k in 0..250i64 {
            let mut app = db.appender();
            for i in 0..n {
                let t = 1_000 * k
                    + if k % 50 == 49 && i % 7 == 0 {
                        -30_500
                    } else {
                        0
                    };
                let r = &mut refs[i as usize];
                *r = Some(
                    app.append(*r, &labels[i as usize], t, rng.below(1 << 20) as f64)
                        .unwrap(),
                );
            }
            app.commit().unwrap();
        }
        db.snapshot_head_whole().unwrap();
        let live = dump(&db);
        drop(db);
        live
    };
    let path = snapshot::list(&src).unwrap().pop().unwrap().1;
    // Count the file's sections after magic and version (kind u8, length u32 LE, payload, CRC
    // u32; kind 2 is PAGE, 3 SERIES: `head/snapshot.rs`).
    let bytes = std::fs::read(&path).unwrap();
    let (mut at, mut kinds) = (5, Vec::new());
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        kinds.push(bytes[at]);
        at += 5 + len + 4;
    }
    let count = |k| kinds.iter().filter(|&&x| x == k).count();
    assert!(
        count(3) >= 2 && count(2) >= 2,
        "the snapshot does not hold several sections: {kinds:?}"
    );
    let a = root.path().join("a");
    copy(&src, &a, true);
    let got = dump(&Db::open(&a, opts(60_000)).unwrap());
    let head = Head::new(
        HeadOptions {
            block_range: opts(60_000).block_range_ms,
            ooo_window: 60_000,
        },
        None,
        HeadChunkFiles::in_memory(),
        i64::MIN,
    );
    let (meta, mut series) = snapshot::load_base_sequential(&head, &path).unwrap();
    assert_eq!(series.len() as u64, n);
    snapshot::finish_load(&head, &mut series, None, meta.min_time, meta.max_time);
    let want = head.dump();
    assert!(
        want.iter().any(|l| !l.contains("ooo []")),
        "no out-of-order sample"
    );
    assert_same(&want, &got, "two-thread load vs sequential load");
    assert_same(&live, &got, "two-thread load vs the live head");
}

/// The size trigger, checked every [`SNAPSHOT_CHECK_INTERVAL`] by the background thread, takes
/// snapshots while a burst of writes is still going on, and they are fast ones: their completed
/// chunks are stored as XOR, not re-encoded packed. A crash during the burst opens from them to
/// the head the whole WAL builds. (The writes go on until the first snapshot appears; the test
/// fails after 60 s without one rather than hang.)
#[test]
fn the_size_trigger_takes_fast_snapshots_during_a_burst() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("db");
    let mut o = opts(0);
    o.background = true;
    o.head_snapshot_interval_ms = None;
    o.head_snapshot_wal_bytes = Some(64 << 10);
    let db = Db::open(&src, o).unwrap();
    // Keeps the WAL a whole snapshot covers, for the reopen without snapshots.
    let keep_all = db.wal_keep(0);
    let mut rng = Rng(5);
    let mut newest = vec![0i64; 300];
    let start = std::time::Instant::now();
    let mut written = 0;
    while snapshots(&src).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no snapshot after 60 s of writes"
        );
        // 130 rounds: every series completes a chunk before the first snapshot can be due.
        written += rounds(&db, "m", 0..300, &mut newest, 130, &mut rng);
    }
    rounds(&db, "m", 0..300, &mut newest, 3, &mut rng);
    // No snapshot starts or is under way while the directory is read (the background thread
    // takes this lock for each).
    let quiet = db.inner.compact_lock.lock();
    let live = dump(&db);
    let (_, path) = snapshot::list(&src).unwrap().pop().unwrap();
    assert!(written > 0);
    let img = snapshot::Image::decode(&std::fs::read(&path).unwrap()).unwrap();
    let closed: Vec<u64> = img
        .series
        .iter()
        .flat_map(|s| s.closed.iter().map(|c| c.r))
        .collect();
    assert!(!closed.is_empty(), "no completed chunk in the snapshot");
    assert!(
        closed
            .iter()
            .all(|r| crate::head::chunk_files::encoding(*r) == crate::chunk::Encoding::Xor),
        "a fast snapshot re-encoded a chunk"
    );
    let (_with, got, want) = reopen_with_and_without_snapshot(root.path(), &src, 0);
    drop(quiet);
    drop(keep_all);
    drop(db);
    assert_same(&want, &got, "snapshot + WAL vs whole WAL");
    assert_same(&live, &got, "live vs snapshot + WAL");
}

/// A database with the background thread on whose only snapshot trigger that can fire is a
/// pause in writes (`Quiet`): the size bound is 1 TiB and the time trigger 15 minutes.
fn open_paused(dir: &Path) -> Db {
    let o = Options {
        background: true,
        head_snapshot_wal_bytes: Some(1 << 40),
        ..opts(0)
    };
    Db::open(dir, o).unwrap()
}

/// With the background thread on, a chain with a delta is replaced by one whole snapshot once
/// the WAL stops growing for [`QUIET_CHECKS`] checks (the size trigger's bound is too big to
/// fire here, the time trigger too long): the deltas and the WAL segments the whole snapshot
/// covers are gone, and a crash after it opens to the same head.
#[test]
fn a_pause_in_writes_replaces_a_chain_with_deltas_by_a_whole_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_paused(dir.path());
    let mut rng = Rng(31);
    let mut newest = vec![0i64; 200];
    rounds(&db, "a", 0..20, &mut newest, 100, &mut rng);
    db.snapshot_head().unwrap();
    rounds(&db, "a", 0..20, &mut newest, 100, &mut rng);
    db.snapshot_head().unwrap();
    let [d] = deltas(dir.path())[..] else {
        panic!("one delta expected")
    };
    rounds(&db, "a", 0..20, &mut newest, 10, &mut rng);
    let live = dump(&db);
    // The background thread's own pace: wait for the whole snapshot and the WAL truncation
    // after it (a deadline only so that a broken trigger fails instead of hanging; it is ~1 s
    // past the last write). The thread removes the deltas before it truncates the WAL: waiting
    // for the deltas alone read the WAL in between in about a third of the runs.
    let done = || {
        deltas(dir.path()).is_empty()
            && snapshots(dir.path())
                .last()
                .is_some_and(|n| wal_files(dir.path()).0.first() == Some(n))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        deltas(dir.path()).is_empty(),
        "the chain's delta is still there"
    );
    let [n] = snapshots(dir.path())[..] else {
        panic!("one snapshot expected")
    };
    assert!(
        n > d,
        "the whole snapshot {n} covers less than the delta {d}"
    );
    assert_eq!(wal_files(dir.path()).0.first(), Some(&n));
    // A crash now: the head comes back from the whole snapshot alone.
    drop(db);
    let db = Db::open(dir.path(), opts(0)).unwrap();
    let n = live.len() - 1;
    assert_same(
        &live[..n],
        &dump(&db)[..n],
        "after the pause's whole snapshot",
    );
}

#[test]
fn a_pause_is_told_once_after_the_wal_end_stays_put_for_the_quiet_checks() {
    let at = |segment, offset| Some(WalPosition { segment, offset });
    let mut q = Quiet::default();
    let mut check = |end, want: bool, what: &str| assert_eq!(q.ended(end), want, "{what}");
    check(None, false, "no WAL yet");
    check(at(0, 10), false, "grew");
    for i in 1..QUIET_CHECKS {
        check(at(0, 10), false, &format!("{i} still"));
    }
    check(at(0, 10), true, "the pause");
    check(at(0, 10), false, "told once");
    check(at(1, 8), false, "a cut moves the end");
    for i in 1..QUIET_CHECKS {
        check(at(1, 8), false, &format!("{i} still after the cut"));
    }
    check(at(1, 8), true, "the next pause");
    check(at(1, 9), false, "grew again");
}

/// A fast whole snapshot (chunks not packed) is replaced by a packed one once writes pause,
/// and only once: the next pause finds nothing to replace.
#[test]
fn a_pause_after_a_fast_snapshot_replaces_it_by_a_packed_one_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_paused(dir.path());
    let mut rng = Rng(41);
    let mut newest = vec![0i64; 200];
    rounds(&db, "a", 0..20, &mut newest, 130, &mut rng);
    db.snapshot_head_with(true, false).unwrap();
    let [fast] = snapshots(dir.path())[..] else {
        panic!("one snapshot expected")
    };
    rounds(&db, "a", 0..20, &mut newest, 5, &mut rng);
    // The background thread renames the packed snapshot into place, then removes the fast one
    // and clears the flag: wait for all three (the test once read the flag in between).
    let replaced = || {
        matches!(snapshots(dir.path())[..], [s] if s != fast)
            && !db.inner.snapshot_fast.load(Ordering::Acquire)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !replaced() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let [packed] = snapshots(dir.path())[..] else {
        panic!("one snapshot expected")
    };
    assert!(packed > fast, "the fast snapshot {fast} was not replaced");
    assert!(!db.inner.snapshot_fast.load(Ordering::Acquire));
    // Another pause (no write since): nothing left to replace.
    std::thread::sleep(SNAPSHOT_CHECK_INTERVAL * (2 * QUIET_CHECKS + 2));
    assert_eq!(snapshots(dir.path()), [packed]);
}
