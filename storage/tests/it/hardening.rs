//! Bounds of the write path (issue 10: hardening).

use crate::common::{dump, lbl, opts};
use argus_storage::{Appendable, Db, MatchType, Matcher};

/// A commit whose samples encode to more than one WAL record's 64 MiB lands completely (it used
/// to fail with "WAL record of … bytes not in 1..=67108864": the push pool's rounds beyond
/// ~6 M series were lost although every push was acknowledged).
#[test]
fn commit_larger_than_one_wal_record_lands_completely() {
    const SERIES: usize = 60_000;
    const PER_SERIES: i64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    let labels: Vec<_> = (0..SERIES)
        .map(|s| lbl(&[("__name__", "big"), ("s", &s.to_string())]))
        .collect();
    for t in 0..PER_SERIES {
        for l in &labels {
            // Random-looking values: 8 bytes each in the record, ~6 M samples > 64 MiB.
            let v = f64::from_bits(0x3ff0_0000_0000_0000 ^ ((t as u64) << 20) ^ l.len() as u64);
            app.append(None, l, t * 1000, v).unwrap();
        }
    }
    app.commit().unwrap();
    // Records are compressed on disk (WAL format 2), so count frames, not bytes: one series
    // record, then the samples split over two records or more. Frame: a u32 whose low 28 bits
    // are the payload length, a CRC, the payload; segments start with an 8-byte header.
    let mut frames = 0;
    for e in std::fs::read_dir(dir.path().join("wal")).unwrap() {
        let b = std::fs::read(e.unwrap().path()).unwrap();
        let mut off = 8;
        while off + 8 <= b.len() {
            let word = u32::from_le_bytes(b[off..off + 4].try_into().unwrap());
            off += 8 + (word & 0x0fff_ffff) as usize;
            frames += 1;
        }
    }
    assert!(
        frames >= 3,
        "the batch must exceed one record: {frames} frames"
    );
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.metrics().head_series, SERIES as u64);
    for s in ["0", "30000", "59999"] {
        let m = [Matcher::new(MatchType::Equal, "s", s).unwrap()];
        let got = dump(&db, &m, 0, i64::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].1.len(),
            PER_SERIES as usize,
            "series {s} replayed after reopen"
        );
    }
}
