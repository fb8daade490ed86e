//! Disk-full and failed-fsync recovery of a whole `Db`, injected through the WAL's I/O seam
//! ([`WalFaults`]).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use crate::matcher::MatchType;
use crate::model::Labels;
use crate::testing::WalFaults;

fn opts() -> Options {
    Options {
        background: false,
        block_range_ms: 1000,
        retention_ms: Some(5000),
        ..Options::default()
    }
}

/// Commits one sample per series `0..3` at `t`.
fn batch(db: &Db, t: i64) -> Result<()> {
    let mut app = db.appender();
    for s in 0..3 {
        let l = Labels::from_pairs(&[("__name__", "m"), ("s", &s.to_string())]);
        app.append(None, &l, t, t as f64)?;
    }
    app.commit()
}

/// Timestamps present for series `s="0"` in `[mint, maxt]`.
fn times(db: &Db, mint: i64, maxt: i64) -> Vec<i64> {
    let q = db.querier(mint, maxt).unwrap();
    let m = [
        Matcher::new(MatchType::Equal, "__name__", "m").unwrap(),
        Matcher::new(MatchType::Equal, "s", "0").unwrap(),
    ];
    let mut set = q.select(&m);
    let mut out = Vec::new();
    while set.next() {
        let mut it = set.samples();
        while it.next() {
            out.push(it.at().0);
        }
        assert!(it.err().is_none());
    }
    assert!(set.err().is_none());
    out
}

fn recovers_after(fail: impl Fn(&WalFaults, bool)) {
    let dir = tempfile::tempdir().unwrap();
    let faults = WalFaults::new();
    let db = Db::open_with_wal_files(dir.path(), opts(), faults.opener()).unwrap();
    batch(&db, 10).unwrap();
    assert_eq!(db.wal_error(), None);
    fail(&faults, true);
    for t in [20, 30] {
        let e = batch(&db, t).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(db.wal_error().is_some(), "readiness must see the failure");
    }
    fail(&faults, false);
    // Space is back: no restart needed.
    batch(&db, 40).unwrap();
    batch(&db, 50).unwrap();
    assert_eq!(db.wal_error(), None);
    assert_eq!(times(&db, 0, 100), [10, 40, 50]);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(
        times(&db, 0, 100),
        [10, 40, 50],
        "every acknowledged batch survives"
    );
    batch(&db, 60).unwrap();
}

#[test]
fn wal_recovers_from_a_full_disk_without_restart() {
    recovers_after(WalFaults::set_disk_full);
}

#[test]
fn wal_recovers_from_eio_on_fsync_without_restart() {
    recovers_after(WalFaults::set_sync_fails);
}

#[test]
fn retention_runs_when_compaction_fails() {
    let dir = tempfile::tempdir().unwrap();
    let faults = WalFaults::new();
    let db = Db::open_with_wal_files(dir.path(), opts(), faults.opener()).unwrap();
    for t in (0..=1600).step_by(100) {
        batch(&db, t).unwrap();
    }
    db.compact().unwrap();
    assert!(
        times(&db, 0, 999).len() == 10,
        "the first block holds 0..999"
    );
    for t in (1700..=20_000).step_by(100) {
        batch(&db, t).unwrap();
    }
    // The disk fills up: cutting the head writes its blocks, but the WAL checkpoint fails.
    faults.set_disk_full(true);
    let e = db.compact().unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert_eq!(db.metrics().compactions_failed, 1);
    assert_eq!(
        times(&db, 0, 999),
        Vec::<i64>::new(),
        "the expired block is deleted even though compaction failed"
    );
    faults.set_disk_full(false);
    db.compact().unwrap();
    batch(&db, 20_100).unwrap();
    assert!(!times(&db, 15_000, 20_100).is_empty());
}

/// Every entry under `dir` (recursively) whose name ends in `.tmp`.
fn tmp_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".tmp") {
            out.push(p.clone());
        }
        if p.is_dir() {
            out.extend(tmp_entries(&p));
        }
    }
    out
}

#[test]
fn open_removes_leftover_block_and_checkpoint_tmp_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for t in (0..=2500).step_by(100) {
        batch(&db, t).unwrap();
    }
    db.compact().unwrap();
    let before = times(&db, 0, 2500);
    assert_eq!(before.len(), 26);
    db.close().unwrap();
    drop(db);
    // What a crash during a block write and during a WAL checkpoint leaves.
    let block_tmp = dir
        .path()
        .join(format!("{}.tmp", crate::block::ulid::new_ulid()));
    std::fs::create_dir_all(block_tmp.join("chunks")).unwrap();
    std::fs::write(block_tmp.join("index"), b"half an index").unwrap();
    std::fs::write(block_tmp.join("chunks").join("000001"), b"junk").unwrap();
    let cp_tmp = dir.path().join("wal").join("checkpoint.00000099.tmp");
    std::fs::create_dir_all(&cp_tmp).unwrap();
    std::fs::write(cp_tmp.join("00000000"), b"junk").unwrap();
    assert_eq!(tmp_entries(dir.path()).len(), 2);

    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(tmp_entries(dir.path()), Vec::<std::path::PathBuf>::new());
    assert_eq!(times(&db, 0, 2500), before, "data intact after cleanup");
    batch(&db, 2600).unwrap();
    db.compact().unwrap();
}

#[test]
fn failed_block_write_leaves_no_tmp_and_keeps_data_and_retention() {
    use crate::block::writer::fail_hook::FAIL_AFTER;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for t in (0..=1600).step_by(100) {
        batch(&db, t).unwrap();
    }
    db.compact().unwrap();
    assert_eq!(times(&db, 0, 999).len(), 10, "the first block holds 0..999");
    for t in (1700..=20_000).step_by(100) {
        batch(&db, t).unwrap();
    }

    // Cutting the head writes [1000, 2000), … [9000, 10000), then fails part-way through the
    // next block (after its index), as a disk filling up would.
    FAIL_AFTER.with(|f| f.set(Some(9)));
    let e = db.compact().unwrap_err();
    FAIL_AFTER.with(|f| f.set(None));
    assert!(
        e.to_string().contains("injected failure after the index"),
        "{e}"
    );
    assert_eq!(db.metrics().compactions_failed, 1);
    assert_eq!(tmp_entries(dir.path()), Vec::<std::path::PathBuf>::new());
    // Retention ran anyway: the newest block ends at 9999, so with 5 s retention the blocks
    // ending before 5000 are gone.
    assert_eq!(
        times(&db, 0, 999),
        Vec::<i64>::new(),
        "retention deleted the expired block although compaction failed"
    );
    let want: Vec<i64> = (5000..=20_000).step_by(100).collect();
    assert_eq!(times(&db, 5000, 20_000), want, "nothing unexpired was lost");

    // A snapshot with the head fails the same way: no partial snapshot stays.
    let snap = dir.path().join("snapshots").join("s1");
    FAIL_AFTER.with(|f| f.set(Some(0)));
    assert!(db.snapshot(&snap, true).is_err());
    FAIL_AFTER.with(|f| f.set(None));
    assert!(!snap.exists(), "partial snapshot left behind");
    assert_eq!(tmp_entries(dir.path()), Vec::<std::path::PathBuf>::new());

    // Once writes succeed again, compaction completes; the newest data survives a reopen.
    db.compact().unwrap();
    let want: Vec<i64> = (15_000..=20_000).step_by(100).collect();
    assert_eq!(times(&db, 15_000, 20_000), want);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(times(&db, 15_000, 20_000), want);
    assert_eq!(tmp_entries(dir.path()), Vec::<std::path::PathBuf>::new());
}

/// A head chunk whose samples decode out of time order (bytes that pass every check but the
/// encoders' order rule: corrupt, or written by a bug) makes compaction, a deletion and a
/// packed snapshot fail with a corruption error, never a panic; the other series are untouched.
#[test]
fn chunks_decoding_out_of_time_order_are_corruption_not_a_panic() {
    use crate::chunk::XorChunk;
    use crate::head::series::OpenChunk;
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        background: false,
        block_range_ms: 120_000,
        head_snapshot_interval_ms: Some(15 * 60 * 1000),
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let bad = Labels::from_pairs(&[("__name__", "m"), ("s", "bad")]);
    let good = Labels::from_pairs(&[("__name__", "m"), ("s", "0")]);
    let mut app = db.appender();
    let id = app.append(None, &bad, 8000, 1.0).unwrap().0;
    for t in [1000, 60_000, 200_000] {
        app.append(None, &good, t, 1.0).unwrap();
    }
    app.commit().unwrap();
    let unordered = |times: [i64; 4]| {
        let mut c = XorChunk::new();
        for t in times {
            c.append_unordered(t, t as f64);
        }
        c
    };
    let (c, open) = (
        unordered([1000, 3000, 2000, 4000]),
        unordered([5000, 7000, 6000, 8000]),
    );
    {
        let head = &db.inner.head;
        let s = head.series.get(id).unwrap();
        let mut d = s.data.lock();
        // A completed chunk with those bytes in the head's chunk files, and the open one.
        let r = head.chunk_files.write(id, 1000, 4000, c.bytes());
        d.closed.push(crate::head::series::ClosedChunk {
            min_t: 1000,
            max_t: 4000,
            r,
        });
        d.open = Some(OpenChunk {
            chunk: XorChunk::from_bytes(open.bytes()).unwrap(),
        });
    }
    let is_corruption = |r: Result<()>, what: &str| match r {
        Err(Error::Corruption { .. }) => {}
        other => panic!("{what}: want a corruption error, got {other:?}"),
    };
    let m = [Matcher::new(MatchType::Equal, "s", "bad").unwrap()];
    is_corruption(
        db.delete_series(&m, 2500, 2600),
        "deletion of a completed chunk's samples",
    );
    is_corruption(
        db.delete_series(&m, 6500, 6600),
        "deletion of the open chunk's samples",
    );
    {
        // The failed deletions kept the series' chunks as they were.
        let s = db.inner.head.series.get(id).unwrap();
        let d = s.data.lock();
        assert_eq!(d.closed.len(), 1);
        assert_eq!(d.open.as_ref().unwrap().chunk.bytes(), open.bytes());
    }
    is_corruption(db.snapshot_head_whole(), "packed snapshot");
    is_corruption(db.compact(), "compaction");
    assert_eq!(times(&db, 0, 300_000), vec![1000, 60_000, 200_000]);
}
