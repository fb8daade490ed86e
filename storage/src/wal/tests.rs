#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::record::{encode_samples, encode_series, encode_tombstones};
use super::segment::SegmentReader;
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
    let last_len = frames(&seg).last().unwrap().1 + segment::FRAME_HEADER_LEN;
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
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        let mut f = self.faults.lock();
        if let Some(b) = f.budget.as_mut() {
            if buf.len() > *b {
                io::Write::write_all(&mut &self.inner, &buf[..*b])?;
                *b = 0;
                return Err(io::Error::other("injected torn write"));
            }
            *b -= buf.len();
        }
        io::Write::write_all(&mut &self.inner, buf)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.sync_all()
    }
    fn sync_all(&self) -> io::Result<()> {
        let mut f = self.faults.lock();
        f.syncs += 1;
        if f.fail_sync {
            return Err(io::Error::other("injected fsync failure"));
        }
        self.inner.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
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

/// Fixture directory of a WAL format (checked in; `ARGUS_REGEN_FIXTURES=1` rewrites the
/// current version's fixtures, never older ones).
fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/wal")
        .join(name)
}

/// Writes the current version's fixtures: a clean WAL, one with a torn tail, one with a
/// corrupt record in its first segment.
fn regen_fixtures() {
    let v = format!("v{}", segment::SEGMENT_VERSION);
    let recs = &fixture_records(&v);
    for kind in ["", "-torn-tail", "-corrupt-segment"] {
        let d = fixture_dir(&format!("{v}{kind}"));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        write_records(tmp.path(), opts(400, SyncMode::Buffer), recs);
        for (i, p) in segment::list_segments(tmp.path()).unwrap() {
            let mut b = std::fs::read(&p).unwrap();
            if b.len() <= segment::SEGMENT_HEADER_LEN {
                continue; // the empty segment a closed WAL leaves behind
            }
            if kind == "-corrupt-segment" && i == 0 {
                let n = b.len();
                b[n - 3] ^= 0x40;
            }
            std::fs::write(d.join(segment::segment_name(i)), &b).unwrap();
        }
        if kind == "-torn-tail" {
            let segs = segment::list_segments(&d).unwrap();
            let (_, last) = segs.last().unwrap();
            let b = std::fs::read(last).unwrap();
            std::fs::write(last, &b[..b.len() - 5]).unwrap();
        }
    }
}

/// The records of each version's fixtures: v2's end with records big enough to compress.
fn fixture_records(version: &str) -> Vec<Record> {
    let mut recs = workload(15);
    if version != "v1" {
        recs.extend(big_workload(3, 100));
    }
    recs
}

#[test]
fn v1_to_v4_fixtures_replay() {
    if std::env::var_os("ARGUS_REGEN_FIXTURES").is_some() {
        regen_fixtures();
    }
    let replay_fixture = |name: &str| {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(&fixture_dir(name), copy.path());
        let w = Wal::open(copy.path(), WalOptions::default()).unwrap();
        replay_all(&w)
    };
    for v in ["v1", "v2", "v3", "v4"] {
        let recs = fixture_records(v);
        let (got, stats) = replay_fixture(v);
        assert_eq!((got, stats.truncated_bytes), (recs.clone(), 0), "{v}");
        let (got, stats) = replay_fixture(&format!("{v}-torn-tail"));
        assert_eq!(got, recs[..recs.len() - 1], "{v}");
        assert!(stats.truncated_bytes > 0);
        let (got, stats) = replay_fixture(&format!("{v}-corrupt-segment"));
        // The corrupt record is the last of the first segment: it and every later segment go.
        let first_seg = frames(&fixture_dir(v).join(segment::segment_name(0))).len();
        assert_eq!(
            got.len(),
            first_seg - 1,
            "{v}: {} records survive",
            got.len()
        );
        assert_eq!(got, recs[..got.len()], "{v}");
        assert!(stats.truncated_bytes > 0);
    }
    // The v1 fixtures are what the first format wrote: no codec bits, version byte 1.
    let seg = std::fs::read(fixture_dir("v1").join(segment::segment_name(0))).unwrap();
    let mut r = SegmentReader::new(&seg, Path::new("v1"));
    assert_eq!(r.version(), segment::SEGMENT_VERSION_1);
    while r.next() {
        assert_eq!(r.payload().0, compress::CODEC_PLAIN);
    }
    // The v2 fixtures hold compressed records, the last one torn in `v2-torn-tail`.
    let codecs: Vec<u8> = segment::list_segments(&fixture_dir("v2"))
        .unwrap()
        .iter()
        .flat_map(|(_, p)| frames(p))
        .map(|f| f.0)
        .collect();
    assert!(codecs.contains(&compress::CODEC_ZSTD), "{codecs:?}");
    assert_eq!(codecs.last(), Some(&compress::CODEC_ZSTD));
    // The v3 and v4 fixtures hold delta-encoded samples records, plain (short) and
    // compressed, each in its version's codecs.
    let check = |v: &str, plain: u8, zstd: u8| {
        let segs = segment::list_segments(&fixture_dir(v)).unwrap();
        let seg = std::fs::read(&segs[0].1).unwrap();
        assert_eq!(
            SegmentReader::new(&seg, &segs[0].1).version(),
            v[1..].parse::<u8>().unwrap()
        );
        let codecs: Vec<u8> = segs
            .iter()
            .flat_map(|(_, p)| frames(p))
            .map(|f| f.0)
            .collect();
        assert!(codecs.contains(&plain), "{v}: {codecs:?}");
        assert_eq!(codecs.last(), Some(&zstd), "{v}");
    };
    check(
        "v3",
        compress::CODEC_DELTA_V3,
        compress::CODEC_DELTA_V3_ZSTD,
    );
    check("v4", compress::CODEC_DELTA, compress::CODEC_DELTA_ZSTD);
    assert_eq!(segment::SEGMENT_VERSION_3, 3);
    assert_eq!(segment::SEGMENT_VERSION_2, 2);
}

/// Records big enough to compress: samples records of `n` counters at one time.
fn big_workload(rounds: usize, n: u64) -> Vec<Record> {
    let mut out = vec![Record::Series((0..n).map(series).collect())];
    for i in 0..rounds {
        let t = 1_700_000_000_000 + i as i64 * 15_000;
        out.push(Record::Samples(
            (0..n)
                .map(|r| RefSample {
                    series: r,
                    t: t + (r % 7) as i64,
                    v: (r * 1000 + i as u64 * (r % 13)) as f64,
                })
                .collect(),
        ));
    }
    out
}

/// (codec, payload length) of every frame of a segment file.
fn frames(path: &Path) -> Vec<(u8, usize)> {
    let buf = std::fs::read(path).unwrap();
    let mut r = SegmentReader::new(&buf, path);
    let mut out = Vec::new();
    while r.next() {
        let (c, p) = r.payload();
        out.push((c, p.len()));
    }
    assert!(r.take_err().is_none());
    out
}

#[test]
fn compressed_records_round_trip_and_are_smaller() {
    let dir = tempfile::tempdir().unwrap();
    let recs = big_workload(30, 500);
    write_records(dir.path(), opts(1 << 10, SyncMode::Buffer), &recs);
    let segs = segment::list_segments(dir.path()).unwrap();
    assert!(segs.len() >= 2, "{segs:?}");
    let (mut plain, mut stored) = (0, 0);
    for r in &recs {
        plain += enc(r).len() + segment::FRAME_HEADER_LEN;
    }
    for (_, p) in &segs {
        for (codec, len) in frames(p) {
            assert!(
                [compress::CODEC_ZSTD, compress::CODEC_DELTA_ZSTD].contains(&codec),
                "every record here compresses: codec {codec}"
            );
            stored += len + segment::FRAME_HEADER_LEN;
        }
    }
    assert!(stored * 3 < plain, "{stored} bytes stored, {plain} plain");
    let w = Wal::open(dir.path(), opts(1 << 10, SyncMode::Buffer)).unwrap();
    let (got, stats) = replay_all(&w);
    assert_eq!(got, recs);
    assert_eq!(stats.truncated_bytes, 0);
    // A checkpoint rewrites them compressed too, and replays the same.
    let mut w = w;
    w.checkpoint(&|_| true, i64::MIN).unwrap();
    let cps = checkpoint::list_checkpoints(dir.path()).unwrap();
    let cp_seg = cps[0].1.join(segment::segment_name(0));
    assert!(
        frames(&cp_seg)
            .iter()
            .any(|f| f.0 == compress::CODEC_DELTA_ZSTD)
    );
    assert_eq!(replay_all(&w).0, recs);
}

#[test]
fn torn_compressed_record_is_truncated_like_a_plain_one() {
    let dir = tempfile::tempdir().unwrap();
    let recs = big_workload(4, 300);
    write_records(dir.path(), opts(1 << 20, SyncMode::Buffer), &recs);
    let seg = dir.path().join(segment::segment_name(0));
    let full = std::fs::read(&seg).unwrap();
    let fr = frames(&seg);
    let (codec, len) = *fr.last().unwrap();
    assert_eq!(codec, compress::CODEC_DELTA_ZSTD);
    let last_start = full.len() - len - segment::FRAME_HEADER_LEN;
    for cut in last_start..full.len() {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let p = copy.path().join(segment::segment_name(0));
        std::fs::write(&p, &full[..cut]).unwrap();
        let w = Wal::open(copy.path(), opts(1 << 20, SyncMode::Buffer)).unwrap();
        let (got, stats) = replay_all(&w);
        assert_eq!(got, recs[..recs.len() - 1], "cut at {cut}");
        assert_eq!(
            stats.truncated_bytes,
            (cut - last_start) as u64,
            "cut at {cut}"
        );
        assert_eq!(std::fs::metadata(&p).unwrap().len(), last_start as u64);
    }
}

#[test]
fn corrupt_compressed_payload_is_handled_like_a_corrupt_plain_record() {
    let dir = tempfile::tempdir().unwrap();
    let recs = big_workload(6, 300);
    write_records(dir.path(), opts(1 << 20, SyncMode::Buffer), &recs);
    let seg = dir.path().join(segment::segment_name(0));
    let full = std::fs::read(&seg).unwrap();
    let offs: Vec<usize> = {
        let mut r = SegmentReader::new(&full, &seg);
        let mut v = Vec::new();
        while r.next() {
            v.push(r.record_offset());
        }
        v
    };
    let third = offs[3];
    // A flipped bit inside a compressed payload fails the frame CRC: the segment is truncated
    // before it, as for a plain record.
    for delta in [segment::FRAME_HEADER_LEN + 1, offs[4] - third - 1] {
        let mut b = full.clone();
        b[third + delta] ^= 0x08;
        let copy = tempfile::tempdir().unwrap();
        std::fs::write(copy.path().join(segment::segment_name(0)), &b).unwrap();
        let w = Wal::open(copy.path(), opts(1 << 20, SyncMode::Buffer)).unwrap();
        let (got, stats) = replay_all(&w);
        assert_eq!(got, recs[..3]);
        assert_eq!(stats.truncated_bytes, (full.len() - third) as u64);
    }
    // A frame whose CRC holds but whose payload is not a valid zstd frame is a corrupt record:
    // replay fails with its segment and offset, exactly like a plain record that does not
    // decode (no silent truncation of acknowledged data).
    let check = |codec: u8, payload: &[u8]| {
        let mut b = full[..third].to_vec();
        segment::put_frame_codec(&mut b, codec, payload);
        let copy = tempfile::tempdir().unwrap();
        let p = copy.path().join(segment::segment_name(0));
        std::fs::write(&p, &b).unwrap();
        let w = Wal::open(copy.path(), opts(1 << 20, SyncMode::Buffer)).unwrap();
        let err = w.replay(&mut |_| Ok(())).unwrap_err();
        match err {
            Error::Corruption { path, offset, .. } => {
                assert_eq!((path, offset), (p, third as u64));
            }
            other => panic!("expected corruption, got {other}"),
        }
    };
    check(compress::CODEC_ZSTD, b"not a zstd frame at all");
    check(compress::CODEC_DELTA_ZSTD, b"not a zstd frame at all");
    check(compress::CODEC_DELTA, &[9, 9, 9]);
    check(compress::CODEC_PLAIN, &[42, 1, 2, 3]);
    // An unknown codec in the frame header, or one of another segment version (codec 2 is
    // version 3's delta), is a bad header: a torn/corrupt tail, truncated.
    for codec in [6, compress::CODEC_DELTA_V3, compress::CODEC_DELTA_V3_ZSTD] {
        let mut b = full[..third].to_vec();
        segment::put_frame_codec(&mut b, codec, b"x");
        let copy = tempfile::tempdir().unwrap();
        std::fs::write(copy.path().join(segment::segment_name(0)), &b).unwrap();
        let w = Wal::open(copy.path(), opts(1 << 20, SyncMode::Buffer)).unwrap();
        let (got, stats) = replay_all(&w);
        assert_eq!(
            (got.as_slice(), stats.truncated_bytes),
            (&recs[..3], 9),
            "codec {codec}"
        );
    }
}

/// A WAL directory holding the v1 fixture's segments, then the v2 and v3 fixtures' renumbered
/// after them; returns their records in order.
fn v1_to_v3(dir: &Path) -> Vec<Record> {
    copy_dir(&fixture_dir("v1"), dir);
    for v in ["v2", "v3"] {
        let first = segment::list_segments(dir).unwrap().len() as u32;
        for (i, p) in segment::list_segments(&fixture_dir(v)).unwrap() {
            std::fs::copy(&p, dir.join(segment::segment_name(first + i))).unwrap();
        }
    }
    ["v1", "v2", "v3"]
        .iter()
        .flat_map(|v| fixture_records(v))
        .collect()
}

#[test]
fn mixed_v1_to_v4_segments_replay_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let old = v1_to_v3(dir.path());
    let new = big_workload(5, 200);
    let o = || opts(8 << 10, SyncMode::Buffer);
    // The v4 writer continues after the older segments, in new (v4) segments.
    write_records(dir.path(), o(), &new);
    let segs = segment::list_segments(dir.path()).unwrap();
    let versions: Vec<u8> = segs
        .iter()
        .map(|(_, p)| std::fs::read(p).unwrap().get(4).copied().unwrap_or(0))
        .collect();
    assert!(
        [1, 2, 3, 4].iter().all(|v| versions.contains(v)),
        "{versions:?}"
    );
    let want: Vec<Record> = old.iter().chain(&new).cloned().collect();
    let mut w = Wal::open(dir.path(), o()).unwrap();
    assert_eq!(replay_all(&w).0, want);
    // A checkpoint over all four kinds keeps every record (all series kept, no time cut).
    w.checkpoint(&|_| true, i64::MIN).unwrap();
    let got = replay_all(&w).0;
    let count = |rs: &[Record]| -> (usize, usize) {
        rs.iter().fold((0, 0), |(a, b), r| match r {
            Record::Series(s) => (a + s.len(), b),
            Record::Samples(s) => (a, b + s.len()),
            Record::Tombstones(_) | Record::Histograms(_) => (a, b),
        })
    };
    assert_eq!(count(&got), count(&want));
    let samples = |rs: &[Record]| -> Vec<(u64, i64, u64)> {
        rs.iter()
            .flat_map(|r| match r {
                Record::Samples(s) => s.iter().map(|s| (s.series, s.t, s.v.to_bits())).collect(),
                _ => Vec::new(),
            })
            .collect()
    };
    assert_eq!(samples(&got), samples(&want));
    // A watcher reads across the mixed segments too.
    let dir2 = tempfile::tempdir().unwrap();
    v1_to_v3(dir2.path());
    write_records(dir2.path(), o(), &new);
    let mut watcher = watch::WalWatcher::new(dir2.path(), watch::WalPosition::default()).unwrap();
    let (mut nseries, mut nsamples) = (0, 0);
    while let Some(e) = watcher.next_entry().unwrap() {
        match e {
            watch::WalEntry::Series(s) => nseries += s.len(),
            watch::WalEntry::Samples(s) => nsamples += s.len(),
            watch::WalEntry::SeriesReset(_) | watch::WalEntry::Histograms(_) => {}
        }
    }
    assert_eq!((nseries, nsamples), count(&want));
}

/// `log_batch` with samples handed over as they are writes the same segments, byte for byte,
/// as `log` of the records encoded from them, across segment switches (a batch framed again
/// for the next segment) and with records of every kind in one batch.
#[test]
fn log_batch_of_samples_writes_the_bytes_of_their_records() {
    let recs = workload(300);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = opts(1024, SyncMode::Buffer);
    let mut wa = Wal::open(a.path(), o.clone()).unwrap();
    let mut wb = Wal::open(b.path(), o).unwrap();
    for batch in recs.chunks(3) {
        let encoded: Vec<Vec<u8>> = batch.iter().map(enc).collect();
        let by_record: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        wa.log(&by_record).unwrap();
        let by_samples: Vec<WalRecord<'_>> = batch
            .iter()
            .zip(&encoded)
            .map(|(r, e)| match r {
                Record::Samples(s) => WalRecord::Samples(s),
                _ => WalRecord::Encoded(e),
            })
            .collect();
        wb.log_batch(&by_samples, true).unwrap().wait().unwrap();
    }
    wa.sync().unwrap();
    wb.sync().unwrap();
    let segs = |d: &Path| -> Vec<(u32, Vec<u8>)> {
        segment::list_segments(d)
            .unwrap()
            .into_iter()
            .map(|(i, p)| (i, std::fs::read(p).unwrap()))
            .collect()
    };
    let (sa, sb) = (segs(a.path()), segs(b.path()));
    assert!(
        sa.len() > 2,
        "the batches span several segments: {}",
        sa.len()
    );
    assert!(sa == sb, "segments differ");
    assert_eq!(replay_all(&wb).0, recs);
}

#[test]
fn sync_ahead_syncs_unsynced_batches_without_the_wal_and_fails_when_poisoned() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Mutex::new(Faults::default()));
    let mut w = Wal::open_with(
        dir.path(),
        opts(1 << 20, SyncMode::Data),
        faulty_opener(faults.clone()),
    )
    .unwrap();
    let at_open = faults.lock().syncs;
    for r in workload(5) {
        w.log_with(&[&enc(&r)], false).unwrap();
    }
    assert_eq!(faults.lock().syncs, at_open, "unsynced batches synced");
    // The syncer is shared: used with the WAL borrowed by no one, as a snapshot does.
    let g = w.syncer().unwrap();
    g.sync_ahead().unwrap();
    assert_eq!(faults.lock().syncs, at_open + 1);
    faults.lock().fail_sync = true;
    assert!(matches!(
        g.sync_ahead(),
        Err(crate::error::Error::Io { .. })
    ));
    faults.lock().fail_sync = false;
    // The next write recovers; what was synced before replays.
    w.log(&[&enc(&workload(6)[5])]).unwrap();
    drop(w);
    let w = Wal::open(dir.path(), opts(1 << 20, SyncMode::Data)).unwrap();
    assert_eq!(replay_all(&w).0, workload(6));
    // Buffer does not sync at all, so there is nothing to sync ahead.
    let dir = tempfile::tempdir().unwrap();
    assert!(
        Wal::open(dir.path(), opts(1 << 20, SyncMode::Buffer))
            .unwrap()
            .syncer()
            .is_none()
    );
}

/// Length of the file at `p`.
fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// The WAL as a kill leaves it: batches acknowledged, the newest segment longer than what was
/// written (zeros ahead of the batches), no trim. Returns the records and the segment's path.
fn killed_with_zero_tail(dir: &Path) -> (Vec<Record>, PathBuf) {
    let recs = workload(40);
    let mut w = Wal::open(dir, WalOptions::default()).unwrap();
    for r in &recs {
        w.log(&[&enc(r)]).unwrap();
    }
    let path = w.segment_path();
    assert!(
        file_len(&path) >= w.cur_size + PREALLOC / 2,
        "BUG: no zeros written ahead: file {} bytes, {} written",
        file_len(&path),
        w.cur_size
    );
    drop(w); // no `sync`: nothing trims the tail, as after `kill -9`
    (recs, path)
}

#[test]
fn a_preallocated_zero_tail_replays_as_the_end_of_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, path) = killed_with_zero_tail(dir.path());
    let whole = std::fs::read(&path).unwrap();
    let mut r = SegmentReader::new(&whole, &path);
    while r.next() {}
    let written = r.valid_len() as u64;
    assert!(whole[written as usize..].iter().all(|&b| b == 0));
    let w = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let (got, stats) = replay_all(&w);
    assert_eq!(got, recs);
    assert_eq!(stats.truncated_bytes, 0, "a zero tail is not a corruption");
    assert_eq!(file_len(&path), written, "the zero tail is trimmed at open");
}

#[test]
fn a_torn_record_before_the_zero_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, path) = killed_with_zero_tail(dir.path());
    let whole = std::fs::read(&path).unwrap();
    let mut r = SegmentReader::new(&whole, &path);
    let mut last = 0;
    while r.next() {
        last = r.record_offset();
    }
    let written = r.valid_len();
    // The last frame's header made it to the disk, its payload did not (still zeros).
    let mut torn = whole[..written].to_vec();
    torn.truncate(last + segment::FRAME_HEADER_LEN);
    torn.resize(whole.len(), 0);
    std::fs::write(&path, &torn).unwrap();
    let w = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let (got, stats) = replay_all(&w);
    assert_eq!(got, recs[..recs.len() - 1]);
    assert_eq!(stats.truncated_bytes, (whole.len() - last) as u64);
    assert_eq!(file_len(&path), last as u64);
}

#[test]
fn finished_segments_hold_only_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let recs = workload(200);
    let mut w = Wal::open(dir.path(), opts(1024, SyncMode::Data)).unwrap();
    for r in &recs {
        w.log(&[&enc(r)]).unwrap();
    }
    let cur = w.segment_path();
    assert!(
        file_len(&cur) > w.cur_size,
        "zeros ahead in the current segment"
    );
    let written = w.cur_size;
    w.cut_segment().unwrap();
    assert_eq!(file_len(&cur), written, "a finished segment is trimmed");
    let segs = segment::list_segments(dir.path()).unwrap();
    assert!(segs.len() > 3, "small segments rotate: {}", segs.len());
    for (_, p) in &segs {
        let whole = std::fs::read(p).unwrap();
        let mut r = SegmentReader::new(&whole, p);
        while r.next() {}
        assert_eq!(
            (r.valid_len(), r.err().is_none()),
            (whole.len(), true),
            "{p:?}"
        );
    }
    // `Buffer` never syncs a batch, so nothing is written ahead.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts(1 << 20, SyncMode::Buffer)).unwrap();
    w.log(&[&enc(&recs[0])]).unwrap();
    assert_eq!(file_len(&w.segment_path()), w.cur_size);
}
