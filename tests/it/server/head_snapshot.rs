//! Head snapshots with the real binary: a clean stop writes one, the next start loads it, and
//! a SIGKILL right after a stop signal (while the shutdown snapshot may be being written) loses
//! no acknowledged batch.

use super::harness::{Argus, enc, now_ms};
use super::{series, write};
use std::time::Duration;

const SAMPLES: i64 = 10;

/// Writes batches `from..to` (one series each, `SAMPLES` samples from `base`), each acked.
fn write_batches(a: &Argus, base: i64, from: u32, to: u32) {
    for b in from..to {
        let samples: Vec<(i64, f64)> = (0..SAMPLES)
            .map(|i| (base + i * 1000, f64::from(b) + i as f64))
            .collect();
        let r = write(
            a,
            vec![series(
                &[("__name__", "snap"), ("batch", &b.to_string())],
                &samples,
            )],
        );
        assert!((200..300).contains(&r.status), "batch {b}: {}", r.text());
    }
}

/// Batches with all `SAMPLES` samples.
fn complete_batches(a: &Argus, base: i64) -> usize {
    let t = base + SAMPLES * 1000;
    let q = enc(&format!("count_over_time(snap[1m]) == {SAMPLES}"));
    let r = a.get(&format!(
        "/api/v1/query?query={q}&time={}.{:03}",
        t / 1000,
        t % 1000
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]["result"].as_array().map_or(0, Vec::len)
}

fn snapshots(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("head_snapshot."))
        .collect()
}

#[test]
fn a_head_snapshot_is_written_at_stop_loaded_at_start_and_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--web.enable-remote-write-receiver",
        "--storage.tsdb.head-snapshot-interval=15m",
    ];
    let base = now_ms() - 60_000;
    let mut a = Argus::start(dir.path(), &args);
    write_batches(&a, base, 0, 150);
    a.signal("TERM");
    assert!(a.wait(Duration::from_secs(30)).success());
    assert_eq!(
        snapshots(dir.path()).len(),
        1,
        "no snapshot at a clean stop"
    );

    let mut b = Argus::start(dir.path(), &args);
    assert!(
        b.log().contains("head snapshot loaded"),
        "the snapshot was not used; log:\n{}",
        b.log()
    );
    assert_eq!(complete_batches(&b, base), 150);
    write_batches(&b, base, 150, 300);
    // Stop, and kill while the shutdown snapshot may be being written.
    b.signal("TERM");
    b.kill9();
    let c = Argus::start(dir.path(), &args);
    assert_eq!(complete_batches(&c, base), 300, "log:\n{}", c.log());
}

/// Bytes of the WAL's segment files (checkpoint directories aside).
fn wal_segment_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Starts Argus on `dir`, writes 150 batches, stops it with SIGTERM; returns the batches'
/// base time and the WAL segments' bytes before the stop.
fn write_and_stop(dir: &std::path::Path, args: &[&str]) -> (i64, u64) {
    let base = now_ms() - 60_000;
    let mut a = Argus::start(dir, args);
    write_batches(&a, base, 0, 150);
    let before = wal_segment_bytes(dir);
    assert!(before > 1000, "the WAL holds the batches: {before} B");
    a.signal("TERM");
    assert!(a.wait(Duration::from_secs(30)).success());
    (base, before)
}

#[test]
fn with_the_size_bound_at_0b_no_snapshot_is_written_and_the_wal_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--web.enable-remote-write-receiver",
        "--storage.tsdb.head-snapshot-wal-size=0B",
    ];
    let (base, before) = write_and_stop(dir.path(), &args);
    assert!(
        snapshots(dir.path()).is_empty(),
        "a snapshot with snapshots off"
    );
    assert!(
        wal_segment_bytes(dir.path()) >= before,
        "WAL segments deleted"
    );
    let b = Argus::start(dir.path(), &args);
    assert_eq!(complete_batches(&b, base), 150);
}

/// With the default flags (a 4MB size bound since session 12) and with the bound given.
#[test]
fn with_a_size_bound_the_snapshot_at_a_stop_replaces_the_wal() {
    let check = |args: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let (base, _) = write_and_stop(dir.path(), args);
        assert_eq!(
            snapshots(dir.path()).len(),
            1,
            "no snapshot at a clean stop with {args:?}"
        );
        // Only the new, empty segment after the snapshot is left (its header).
        let after = wal_segment_bytes(dir.path());
        assert!(after < 64, "WAL segments left after the stop: {after} B");
        let b = Argus::start(dir.path(), args);
        assert!(
            b.log().contains("head snapshot loaded"),
            "the snapshot was not used; log:\n{}",
            b.log()
        );
        assert_eq!(complete_batches(&b, base), 150);
    };
    check(&["--web.enable-remote-write-receiver"]);
    check(&[
        "--web.enable-remote-write-receiver",
        "--storage.tsdb.head-snapshot-wal-size=4MB",
    ]);
}
