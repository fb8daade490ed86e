#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::record::{encode_samples, encode_series, encode_tombstones};
use super::*;
use crate::model::Labels;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

fn opts(segment_size: u64, sync: SyncMode) -> WalOptions {
    WalOptions { segment_size, sync }
}

fn series(r: u64) -> RefSeries {
    RefSeries {
        series: r,
        labels: Labels::from_pairs(&[("__name__", "m"), ("i", &r.to_string())]),
    }
}

fn samples(refs: std::ops::Range<u64>, t: i64) -> Vec<RefSample> {
    refs.map(|r| RefSample {
        series: r,
        t,
        v: r as f64 + t as f64 / 1000.0,
    })
    .collect()
}

fn enc(rec: &Record) -> Vec<u8> {
    let mut b = Vec::new();
    rec.encode(&mut b);
    b
}

fn replay_all(w: &Wal) -> (Vec<Record>, ReplayStats) {
    let mut out = Vec::new();
    let stats = w
        .replay(&mut |r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
    (out, stats)
}

/// A workload of `n` records: a series record then samples, with a tombstone now and then.
fn workload(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| match i % 5 {
            0 => Record::Series(vec![series(i as u64), series(i as u64 + 1000)]),
            4 => Record::Tombstones(vec![RefTombstone {
                series: i as u64,
                mint: 0,
                maxt: i as i64,
            }]),
            _ => Record::Samples(samples(0..(i as u64 % 7 + 1), i as i64 * 15_000)),
        })
        .collect()
}

fn write_records(dir: &Path, o: WalOptions, recs: &[Record]) {
    let mut w = Wal::open(dir, o).unwrap();
    for r in recs {
        w.log(&[&enc(r)]).unwrap();
    }
    w.sync().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn replay_after_clean_close_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let recs = workload(200);
    write_records(dir.path(), opts(1024, SyncMode::Data), &recs);
    let segs = segment::list_segments(dir.path()).unwrap();
    assert!(segs.len() > 3, "small segments rotate: {}", segs.len());
    let w = Wal::open(dir.path(), opts(1024, SyncMode::Data)).unwrap();
    let (got, stats) = replay_all(&w);
    assert_eq!(got, recs);
    assert_eq!(stats.records, 200);
    assert_eq!(stats.truncated_bytes, 0);
}

#[test]
fn batch_and_encoders_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    encode_series(&[series(1)], &mut a);
    encode_samples(&samples(1..2, 5), &mut b);
    encode_tombstones(&[], &mut c);
    w.log(&[&a, &b, &c]).unwrap();
    drop(w);
    let (got, _) = replay_all(&Wal::open(dir.path(), WalOptions::default()).unwrap());
    assert_eq!(
        got,
        vec![
            Record::Series(vec![series(1)]),
            Record::Samples(samples(1..2, 5)),
            Record::Tombstones(vec![])
        ]
    );
}

#[test]
fn torn_tail_at_every_offset_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let recs = workload(12);
    write_records(dir.path(), opts(1 << 20, SyncMode::Buffer), &recs);
    let seg = dir.path().join(segment::segment_name(0));
    let full = std::fs::read(&seg).unwrap();
    let last_len = enc(&recs[11]).len() + segment::FRAME_HEADER_LEN;
    let last_start = full.len() - last_len;
    for cut in last_start..full.len() {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.path().join(segment::segment_name(0)))
            .unwrap();
        f.set_len(cut as u64).unwrap();
        let w = Wal::open(copy.path(), opts(1 << 20, SyncMode::Buffer)).unwrap();
        let (got, stats) = replay_all(&w);
        assert_eq!(got, recs[..11], "cut at {cut}");
        assert_eq!(
            stats.truncated_bytes,
            (cut - last_start) as u64,
            "cut at {cut}"
        );
        let len = std::fs::metadata(copy.path().join(segment::segment_name(0)))
            .unwrap()
            .len();
        assert_eq!(
            len, last_start as u64,
            "segment truncated at the last valid record"
        );
    }
}

#[test]
fn corruption_in_earlier_segment_drops_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let recs = workload(100);
    write_records(dir.path(), opts(512, SyncMode::Buffer), &recs);
    let segs = segment::list_segments(dir.path()).unwrap();
    assert!(segs.len() >= 4);
    // Count the records in segment 0 and 1, then flip a bit inside segment 1's 2nd record.
    let count = |p: &Path| {
        let buf = std::fs::read(p).unwrap();
        let mut r = SegmentReader::new(&buf, p);
        let mut offs = Vec::new();
        while r.next() {
            offs.push(r.record_offset());
        }
        offs
    };
    let n0 = count(&segs[0].1).len();
    let offs1 = count(&segs[1].1);
    assert!(offs1.len() >= 2);
    let mut buf = std::fs::read(&segs[1].1).unwrap();
    buf[offs1[1] + segment::FRAME_HEADER_LEN] ^= 0x10;
    std::fs::write(&segs[1].1, &buf).unwrap();

    let w = Wal::open(dir.path(), opts(512, SyncMode::Buffer)).unwrap();
    let (got, stats) = replay_all(&w);
    assert_eq!(got, recs[..n0 + 1], "records before the flipped bit");
    assert!(stats.truncated_bytes > 0);
    let left: Vec<u32> = segment::list_segments(dir.path())
        .unwrap()
        .iter()
        .map(|s| s.0)
        .collect();
    // Segments 0, 1 (truncated) and the fresh one created by open.
    assert_eq!(left, vec![0, 1, 2]);
}

#[test]
fn unsupported_version_is_an_error_not_a_repair() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), WalOptions::default(), &workload(3));
    let p = dir.path().join(segment::segment_name(0));
    let mut buf = std::fs::read(&p).unwrap();
    buf[4] = 99;
    std::fs::write(&p, &buf).unwrap();
    let err = Wal::open(dir.path(), WalOptions::default()).err().unwrap();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), buf, "file left alone");
}

/// Reference model: what replay should yield after a checkpoint, as (series, samples, tombstones).
type Model = (
    BTreeMap<u64, Labels>,
    Vec<(u64, i64, u64)>,
    Vec<(u64, i64, i64)>,
);

fn model(recs: &[Record]) -> Model {
    let mut m: Model = Default::default();
    for r in recs {
        match r {
            Record::Series(s) => m.0.extend(s.iter().map(|s| (s.series, s.labels.clone()))),
            Record::Samples(s) => m.1.extend(s.iter().map(|s| (s.series, s.t, s.v.to_bits()))),
            Record::Tombstones(t) => m.2.extend(t.iter().map(|t| (t.series, t.mint, t.maxt))),
            Record::Histograms(_) => {}
        }
    }
    m
}

#[test]
fn checkpoint_drops_dead_series_and_old_samples() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(700, SyncMode::Data);
    let before = workload(120);
    let after = workload(30);
    let keep = |r: u64| r % 2 == 1;
    let mint = 60 * 15_000;
    {
        let mut w = Wal::open(dir.path(), o.clone()).unwrap();
        for r in &before {
            w.log(&[&enc(r)]).unwrap();
        }
        w.checkpoint(&keep, mint).unwrap();
        // A second checkpoint folds the first one in.
        w.checkpoint(&keep, mint).unwrap();
        for r in &after {
            w.log(&[&enc(r)]).unwrap();
        }
    }
    let cps = checkpoint::list_checkpoints(dir.path()).unwrap();
    assert_eq!(cps.len(), 1, "older checkpoints deleted");
    let first_seg = segment::list_segments(dir.path()).unwrap()[0].0;
    assert_eq!(first_seg, cps[0].0 + 1, "covered segments deleted");

    let w = Wal::open(dir.path(), o).unwrap();
    let (got, _) = replay_all(&w);
    let (mut s, mut smp, mut tomb) = model(&before);
    s.retain(|r, _| keep(*r));
    smp.retain(|x| keep(x.0) && x.1 >= mint);
    tomb.retain(|x| keep(x.0) && x.2 >= mint);
    let (s2, smp2, tomb2) = model(&after);
    s.extend(s2);
    smp.extend(smp2);
    tomb.extend(tomb2);
    assert_eq!(model(&got), (s, smp, tomb));
}

#[derive(Default)]
struct Faults {
    /// Bytes that may still be written; a write crossing it writes a prefix and fails.
    budget: Option<usize>,
    fail_sync: bool,
    syncs: usize,
}

struct FaultyFile {
    inner: std::fs::File,
    faults: Arc<Mutex<Faults>>,
}

impl SegmentFile for FaultyFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut f = self.faults.lock();
        if let Some(b) = f.budget.as_mut() {
            if buf.len() > *b {
                io::Write::write_all(&mut self.inner, &buf[..*b])?;
                *b = 0;
                return Err(io::Error::other("injected torn write"));
            }
            *b -= buf.len();
        }
        io::Write::write_all(&mut self.inner, buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.sync_all()
    }
    fn sync_all(&mut self) -> io::Result<()> {
        let mut f = self.faults.lock();
        f.syncs += 1;
        if f.fail_sync {
            return Err(io::Error::other("injected fsync failure"));
        }
        self.inner.sync_all()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

fn faulty_opener(faults: Arc<Mutex<Faults>>) -> Box<SegmentOpener> {
    Box::new(move |p: &Path| {
        let inner = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)?;
        Ok(Box::new(FaultyFile {
            inner,
            faults: faults.clone(),
        }) as Box<dyn SegmentFile>)
    })
}

#[test]
fn torn_write_recovers_in_a_new_segment_and_replay_keeps_acknowledged_batches() {
    let recs = workload(40);
    for budget_after in [0usize, 1, 7, 8, 9, 50] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let mut w = Wal::open_with(
            dir.path(),
            opts(1 << 20, SyncMode::Data),
            faulty_opener(faults.clone()),
        )
        .unwrap();
        let mut acked = Vec::new();
        let mut failed = 0;
        for (i, r) in recs.iter().enumerate() {
            if i == 20 {
                faults.lock().budget = Some(budget_after);
            }
            match w.log(&[&enc(r)]) {
                Ok(()) => acked.push(r.clone()),
                Err(e) => {
                    assert!(matches!(e, Error::Io { .. }), "{e}");
                    failed += 1;
                    // Space is back: the next write truncates the torn batch and moves on.
                    faults.lock().budget = None;
                }
            }
        }
        assert_eq!(failed, 1, "budget {budget_after}");
        assert_eq!(acked.len(), recs.len() - 1);
        drop(w);
        let w = Wal::open(dir.path(), opts(1 << 20, SyncMode::Data)).unwrap();
        let (got, stats) = replay_all(&w);
        assert_eq!(got, acked, "budget {budget_after}");
        assert_eq!(
            stats.truncated_bytes, 0,
            "the torn batch was truncated at recovery"
        );
    }
}

#[test]
fn failed_fsync_recovers_once_syncs_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Mutex::new(Faults::default()));
    let mut w = Wal::open_with(
        dir.path(),
        opts(1 << 20, SyncMode::Data),
        faulty_opener(faults.clone()),
    )
    .unwrap();
    let recs = workload(4);
    w.log(&[&enc(&recs[0])]).unwrap();
    faults.lock().fail_sync = true;
    assert!(matches!(w.log(&[&enc(&recs[1])]), Err(Error::Io { .. })));
    assert!(w.metrics().failing.lock().is_some());
    // Still failing: recovery (truncate + sync) fails too, nothing is acknowledged.
    assert!(matches!(w.log(&[&enc(&recs[2])]), Err(Error::Io { .. })));
    faults.lock().fail_sync = false;
    w.log(&[&enc(&recs[3])]).unwrap();
    assert!(w.metrics().failing.lock().is_none());
    drop(w);
    let w = Wal::open(dir.path(), opts(1 << 20, SyncMode::Data)).unwrap();
    let (got, _) = replay_all(&w);
    assert_eq!(got, vec![recs[0].clone(), recs[3].clone()]);
}

#[test]
fn sync_modes_call_fsync_as_documented() {
    for (mode, want_batch_syncs) in [
        (SyncMode::Buffer, 0),
        (SyncMode::Data, 5),
        (SyncMode::All, 5),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let mut w = Wal::open_with(
            dir.path(),
            opts(1 << 20, mode),
            faulty_opener(faults.clone()),
        )
        .unwrap();
        let at_open = faults.lock().syncs;
        for r in workload(5) {
            w.log(&[&enc(&r)]).unwrap();
        }
        assert_eq!(faults.lock().syncs - at_open, want_batch_syncs, "{mode:?}");
    }
}

#[test]
fn lost_unsynced_writes_leave_a_replayable_prefix() {
    // Model a power cut in Buffer mode: the file keeps an arbitrary prefix of what was written.
    let dir = tempfile::tempdir().unwrap();
    let recs = workload(30);
    write_records(dir.path(), opts(1 << 20, SyncMode::Buffer), &recs);
    let seg = dir.path().join(segment::segment_name(0));
    let full = std::fs::read(&seg).unwrap();
    for keep in (0..full.len()).step_by(37) {
        let copy = tempfile::tempdir().unwrap();
        std::fs::write(copy.path().join(segment::segment_name(0)), &full[..keep]).unwrap();
        let w = Wal::open(copy.path(), opts(1 << 20, SyncMode::Buffer)).unwrap();
        let (got, _) = replay_all(&w);
        assert_eq!(got, recs[..got.len()], "prefix of {keep} bytes");
    }
}

#[test]
fn oversized_or_empty_record_rejected_without_poisoning() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert!(matches!(w.log(&[&[]]), Err(Error::InvalidArgument(_))));
    let big = vec![1u8; segment::MAX_RECORD_LEN + 1];
    assert!(matches!(w.log(&[&big]), Err(Error::InvalidArgument(_))));
    w.log(&[&enc(&workload(1)[0])]).unwrap();
}

#[test]
fn reopen_after_interrupted_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let recs = workload(20);
    write_records(dir.path(), opts(300, SyncMode::Buffer), &recs);
    // A leftover temp checkpoint is ignored and removed.
    std::fs::create_dir(dir.path().join("checkpoint.00000001.tmp")).unwrap();
    let w = Wal::open(dir.path(), opts(300, SyncMode::Buffer)).unwrap();
    assert!(!dir.path().join("checkpoint.00000001.tmp").exists());
    assert_eq!(replay_all(&w).0, recs);
}

/// Fixture directory for WAL format v1 (checked in; regenerate with `ARGUS_REGEN_FIXTURES=1`
/// only when the format version changes).
fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/wal")
        .join(name)
}

#[test]
fn v1_fixtures_replay() {
    let recs = workload(15);
    if std::env::var_os("ARGUS_REGEN_FIXTURES").is_some() {
        for name in ["v1", "v1-torn-tail", "v1-corrupt-segment"] {
            let d = fixture_dir(name);
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            let tmp = tempfile::tempdir().unwrap();
            write_records(tmp.path(), opts(400, SyncMode::Buffer), &recs);
            for (i, p) in segment::list_segments(tmp.path()).unwrap() {
                let mut b = std::fs::read(&p).unwrap();
                if b.len() <= segment::SEGMENT_HEADER_LEN {
                    continue; // the empty segment a closed WAL leaves behind
                }
                match (name, i) {
                    ("v1-torn-tail", _) => {}
                    ("v1-corrupt-segment", 0) => {
                        let n = b.len();
                        b[n - 3] ^= 0x40;
                    }
                    _ => {}
                }
                std::fs::write(d.join(segment::segment_name(i)), &b).unwrap();
            }
            if name == "v1-torn-tail" {
                let segs = segment::list_segments(&d).unwrap();
                let (_, last) = segs.last().unwrap();
                let b = std::fs::read(last).unwrap();
                std::fs::write(last, &b[..b.len() - 5]).unwrap();
            }
        }
    }
    let replay_fixture = |name: &str| {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(&fixture_dir(name), copy.path());
        let w = Wal::open(copy.path(), WalOptions::default()).unwrap();
        replay_all(&w)
    };
    let (got, stats) = replay_fixture("v1");
    assert_eq!((got, stats.truncated_bytes), (recs.clone(), 0));
    let (got, stats) = replay_fixture("v1-torn-tail");
    assert_eq!(got, recs[..recs.len() - 1]);
    assert!(stats.truncated_bytes > 0);
    let (got, stats) = replay_fixture("v1-corrupt-segment");
    assert!(got.len() < recs.len() / 2, "{} records survive", got.len());
    assert_eq!(got, recs[..got.len()]);
    assert!(stats.truncated_bytes > 0);
}
