//! Fuzz a restart from a head snapshot chain (`storage/src/db.rs` `load_head_snapshot`,
//! `head/snapshot_delta.rs`, `XorChunk::reopen_grown`): a data directory holding a whole
//! snapshot and deltas on top of it (new series, completed chunks, open chunks grown by a few
//! bits, out-of-order samples) plus the WAL is built once. Each input changes one of the chain's
//! files (XORs bytes in at an offset, or cuts it there), the sections' CRCs are recomputed so
//! that the change reaches the decoders, and the directory is opened as after a crash. Unlike
//! `head_snapshot_load`, whose deltas apply to an empty head, these apply on top of a loaded
//! base, so grown open chunks are re-opened from the base's encoder state.
//!
//! The open must succeed (a snapshot or delta that fails to load is ignored and the WAL
//! replayed), every series must be readable, and the head must take appends inside and after
//! the data's time range and commit them: never a panic.
#![no_main]

use argus_storage::internals::head_snapshot_fix_crcs;
use argus_storage::{Appendable, Db, Labels, MatchType, Matcher, Options, Queryable, SyncMode};
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn opts() -> Options {
    Options {
        background: false,
        block_range_ms: 120_000,
        retention_ms: None,
        out_of_order_window_ms: 30_000,
        wal_segment_size: 32 << 10,
        sync: SyncMode::Buffer,
        head_snapshot_interval_ms: Some(15 * 60 * 1000),
        ..Options::default()
    }
}

fn labels(set: &str, i: u64) -> Labels {
    Labels::from_pairs(&[("__name__", "m"), ("set", set), ("i", &i.to_string())])
}

/// One commit of one sample per series of `ids` at `t` (every seventh series also gets one
/// 5 s older: out of order within the window).
fn round(db: &Db, set: &str, ids: std::ops::Range<u64>, t: i64) {
    let mut app = db.appender();
    for i in ids {
        let _ = app.append(None, &labels(set, i), t, (t / 1000 + i as i64) as f64);
        if i % 7 == 0 && t > 10_000 {
            let _ = app.append(None, &labels(set, i), t - 5_500, 1.5);
        }
    }
    app.commit().expect("fixture commit");
}

/// The fixture's directory (kept for the process) and the chain's files in it.
fn fixture() -> &'static (tempfile::TempDir, Vec<PathBuf>) {
    static F: OnceLock<(tempfile::TempDir, Vec<PathBuf>)> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path(), opts()).expect("fixture open");
        let keep = db.wal_keep(0);
        let mut t = 0;
        // A base large enough for the chain to take every delta below (their bytes stay
        // under the base's).
        for _ in 0..100 {
            t += 1000;
            round(&db, "a", 0..30, t);
            round(&db, "z", 0..200, t);
        }
        db.snapshot_head().expect("base snapshot");
        // Some series only: chunks complete (120 samples), the others are left out.
        for _ in 0..30 {
            t += 1000;
            round(&db, "a", 0..12, t);
        }
        round(&db, "b", 0..6, t);
        db.snapshot_head().expect("delta");
        // One sample each: open chunks grow by a few bits (tail entries).
        for k in 0..4 {
            round(&db, "a", 0..30, t + 1000 * (k + 1));
            db.snapshot_head().expect("delta");
        }
        t += 5000;
        round(&db, "a", 5..30, t + 1000);
        // The directory as a crash leaves it (a clean close would write a whole snapshot).
        let crashed = tempfile::tempdir().expect("temp dir");
        copy_dir(dir.path(), crashed.path());
        drop(keep);
        drop(db);
        let mut files: Vec<PathBuf> = std::fs::read_dir(crashed.path())
            .expect("read fixture dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                (n.starts_with("head_snapshot.") || n.starts_with("head_delta."))
                    && !n.ends_with(".tmp")
            })
            .collect();
        files.sort();
        assert!(
            files.len() >= 2,
            "fixture: a snapshot and deltas, got {files:?}"
        );
        (crashed, files)
    })
}

/// Copies `src` into `dst`, the database's lock file aside.
fn copy_dir(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).expect("read dir") {
        let e = e.expect("dir entry");
        if e.file_name() == "lock" {
            continue;
        }
        let to = dst.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (src, files) = fixture();
    let Some((&[pick, lo, hi], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(src.path(), dir.path());
    let file = &files[usize::from(pick & 0x7f) % files.len()];
    let path = dir.path().join(file.file_name().expect("file name"));
    let mut bytes = std::fs::read(&path).expect("read chain file");
    if !bytes.is_empty() {
        let at = usize::from(u16::from_le_bytes([lo, hi])) % bytes.len();
        if pick & 0x80 != 0 {
            bytes.truncate(at);
        } else {
            for (k, x) in rest.iter().enumerate() {
                if let Some(b) = bytes.get_mut(at + k) {
                    *b ^= x;
                }
            }
        }
    }
    head_snapshot_fix_crcs(&mut bytes);
    std::fs::write(&path, &bytes).expect("write chain file");

    let db = Db::open(dir.path(), opts()).expect("a bad snapshot chain must not fail the open");
    {
        let q = db.querier(i64::MIN, i64::MAX).expect("querier");
        let m = Matcher::new(MatchType::Equal, "__name__", "m").expect("matcher");
        let mut set = q.select(&[m]);
        while set.next() {
            let mut it = set.samples();
            while it.next() {
                let _ = it.at();
            }
        }
    }
    // Appends inside the data's time range (in order, out of order or duplicate, by series) and
    // far after it.
    let near = 100_000 + i64::from(u16::from_le_bytes([hi, lo])) * 4;
    for t in [near, 1 << 40] {
        let mut app = db.appender();
        for i in 0..30 {
            let _ = app.append(None, &labels("a", i), t + i as i64 * 1000, 1.0);
        }
        app.commit().expect("commit after the restart");
    }
});
