//! Group commit through a whole `Db`: concurrent commits share syncs, nothing is visible or
//! acknowledged before its sync, a failed sync fails every waiter, and what was acknowledged
//! replays. Syncs are held at a gate the test opens, so the interleaving is forced, not timed.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use crate::db::{Db, Options};
use crate::error::Error;
use crate::interface::{Appendable, Queryable};
use crate::matcher::{MatchType, Matcher};
use crate::model::Labels;
use crate::wal::SyncMode;
use crate::wal::segment::{SegmentFile, SegmentOpener};
use parking_lot::{Condvar, Mutex};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Committers in each test.
const THREADS: usize = 8;

#[derive(Default)]
struct GateState {
    /// Syncs block while closed.
    closed: bool,
    /// Syncs fail (EIO) when they pass the gate.
    fail: bool,
    /// Writes so far (segment headers included).
    writes: usize,
    /// Syncs that passed the gate so far.
    syncs: usize,
}

/// Segment files whose syncs wait at a gate.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<GateState>, Condvar)>);

impl Gate {
    fn set(&self, f: impl FnOnce(&mut GateState)) {
        f(&mut self.0.0.lock());
        self.0.1.notify_all();
    }

    /// Waits (at most 20 s) until `f` holds.
    fn wait_until(&self, what: &str, f: impl Fn(&GateState) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut st = self.0.0.lock();
        while !f(&st) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.0.1.wait_for(&mut st, Duration::from_millis(50));
        }
    }

    fn writes(&self) -> usize {
        self.0.0.lock().writes
    }

    fn opener(&self) -> Box<SegmentOpener> {
        let gate = self.clone();
        Box::new(move |p: &Path| {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)?;
            Ok(Box::new(GatedFile {
                file,
                gate: gate.clone(),
            }) as Box<dyn SegmentFile>)
        })
    }
}

struct GatedFile {
    file: std::fs::File,
    gate: Gate,
}

impl GatedFile {
    fn sync(&self) -> io::Result<()> {
        let (lock, cond) = &*self.gate.0;
        let mut st = lock.lock();
        while st.closed {
            cond.wait(&mut st);
        }
        st.syncs += 1;
        if st.fail {
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        drop(st);
        self.file.sync_data()
    }
}

impl SegmentFile for GatedFile {
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut &self.file, buf)?;
        self.gate.set(|st| st.writes += 1);
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

fn opts() -> Options {
    Options {
        background: false,
        sync: SyncMode::Data,
        ..Options::default()
    }
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "m"), ("c", &i.to_string())])
}

/// `(c label, t)` of every sample of `m` in the database.
fn dump(db: &Db) -> Vec<(String, i64)> {
    let q = db.querier(0, i64::MAX).unwrap();
    let mut set = q.select(&[Matcher::new(MatchType::Equal, "__name__", "m").unwrap()]);
    let mut out = Vec::new();
    while set.next() {
        let c = set.labels().get("c").unwrap_or_default().to_string();
        let mut it = set.samples();
        while it.next() {
            out.push((c.clone(), it.at().0));
        }
        assert!(it.err().is_none());
    }
    assert!(set.err().is_none());
    out.sort();
    out
}

/// Commits one sample of series `c=i` at `t` for each `i` in `0..THREADS`, one commit per thread,
/// all at once; returns each commit's result.
fn commit_all(db: &Db, t: i64) -> Vec<crate::error::Result<()>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                s.spawn(move || {
                    let mut app = db.appender();
                    app.append(None, &labels(i), t, i as f64)?;
                    app.commit()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn concurrent_commits_share_syncs_and_are_applied_only_once_synced() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::default();
    let db = Db::open_with_wal_files(dir.path(), opts(), gate.opener()).unwrap();
    let fsyncs_before = db.metrics().wal_fsyncs;
    let writes_before = gate.writes();
    gate.set(|st| st.closed = true);
    let results = std::thread::scope(|s| {
        let h = s.spawn(|| commit_all(&db, 100));
        // Every commit has written its batch; the first sync is held at the gate.
        gate.wait_until("all batches written", |st| {
            st.writes == writes_before + THREADS
        });
        assert_eq!(
            dump(&db),
            Vec::<(String, i64)>::new(),
            "a batch is visible before its sync"
        );
        gate.set(|st| st.closed = false);
        h.join().unwrap()
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let fsyncs = db.metrics().wal_fsyncs - fsyncs_before;
    // The first syncer's sync covers at least its own batch; the next one covers the rest.
    assert!(
        (1..=2).contains(&fsyncs),
        "{THREADS} concurrent commits took {fsyncs} fsyncs"
    );
    let want: Vec<(String, i64)> = (0..THREADS).map(|i| (i.to_string(), 100)).collect();
    assert_eq!(dump(&db), want);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(dump(&db), want, "every acknowledged commit replays");
}

#[test]
fn failed_sync_fails_every_waiter_applies_nothing_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::default();
    let db = Db::open_with_wal_files(dir.path(), opts(), gate.opener()).unwrap();
    let writes_before = gate.writes();
    gate.set(|st| st.closed = true);
    let results = std::thread::scope(|s| {
        // The series are new: their series records are in the batches that will be lost.
        let h = s.spawn(|| commit_all(&db, 100));
        gate.wait_until("all batches written", |st| {
            st.writes == writes_before + THREADS
        });
        gate.set(|st| {
            st.fail = true;
            st.closed = false;
        });
        h.join().unwrap()
    });
    for r in &results {
        assert!(matches!(r, Err(Error::Io { .. })), "{r:?}");
    }
    assert!(db.wal_error().is_some(), "readiness must see the failure");
    assert_eq!(
        dump(&db),
        Vec::<(String, i64)>::new(),
        "nothing unsynced applied"
    );

    // The disk is back: the same series commit again and must log their series records again.
    gate.set(|st| st.fail = false);
    let results = commit_all(&db, 200);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(db.wal_error(), None);
    let want: Vec<(String, i64)> = (0..THREADS).map(|i| (i.to_string(), 200)).collect();
    assert_eq!(dump(&db), want);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(
        dump(&db),
        want,
        "acknowledged commits replay, failed ones do not"
    );
}

#[test]
fn end_position_moves_only_once_a_batch_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::default();
    let mut wal = super::super::Wal::open_with(
        dir.path(),
        super::super::WalOptions {
            segment_size: 1 << 20,
            sync: SyncMode::Data,
        },
        gate.opener(),
    )
    .unwrap();
    let start = wal.end_position();
    let rec = {
        let mut buf = Vec::new();
        crate::wal::record::encode_samples(
            &[crate::wal::RefSample {
                series: 1,
                t: 5,
                v: 1.0,
            }],
            &mut buf,
        );
        buf
    };
    gate.set(|st| st.closed = true);
    let ticket = wal.log_records(&[&rec], true).unwrap();
    assert_eq!(wal.end_position(), start, "unsynced batch readable");
    let end = std::thread::scope(|s| {
        let h = s.spawn(|| ticket.wait());
        gate.wait_until("the sync to start", |_| true);
        gate.set(|st| st.closed = false);
        h.join().unwrap().unwrap();
        wal.end_position()
    });
    assert!(end > start, "{end:?} after {start:?}");
    // Unsynced appends (the rules' appender) are readable at once when nothing waits before them.
    let ticket = wal.log_records(&[&rec], false).unwrap();
    assert!(wal.end_position() > end);
    ticket.wait().unwrap();
}
