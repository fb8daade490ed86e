//! Rebuilds the head from the WAL: series records create series under their logged refs,
//! samples are applied as commits apply them, tombstones delete.
//!
//! Three threads: the caller's reads, decompresses and decodes records (`Wal::replay_items`), a
//! scoped one applies them, and a helper applies about half of each large batch with it
//! (shares of runs taken from either end of the batch, so neither waits for the other).
//! Samples cross in chunks of about [`CHUNK`] (buffers that go back to the decoding thread for
//! reuse, so nothing is allocated per record); at most [`QUEUE`] messages wait between the
//! decoding and the applying thread, so memory stays bounded whatever the WAL's size.
//!
//! Float samples are applied by series, not in WAL order: the applier buffers up to [`BATCH`] of
//! them, groups the buffer by series (a counting sort, stable, so each series keeps its WAL
//! order; its buffers are reused, so a flush allocates nothing) and applies each series' run
//! under one lock with its chunk encoder hot in cache. A WAL written by
//! remote-write or scrapes holds one sample per series per record, so in WAL order every sample
//! lands on another series' chunk (a cache miss each). The resulting head is the same: a
//! series' samples never depend on another series' (the only shared state, the head's time
//! range and the chunk files' refs, does not change what is stored). Series records are applied
//! on arrival (samples hold the series they resolved to then); histogram and tombstone records
//! first apply the buffer, so each series sees its floats, histograms and deletions in WAL order.

use super::Head;
use super::append::{PREFETCH, apply_group};
use super::series::{Applied, Series, SeriesData, U64Map};
use super::series_lock::SeriesRawMutex;
use crate::error::{Error, Result};
use crate::wal::{Item, Record, RefSample, Wal};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

/// Messages in flight between the decoding and the applying thread.
const QUEUE: usize = 4;

/// Samples the decoding thread gathers before it hands them over: 24 bytes each, so a chunk is
/// about 1.5 MiB (plus at most one record), and at most `QUEUE + 2` chunks exist.
const CHUNK: usize = 1 << 16;

/// What the decoding thread sends the applying one, in WAL order.
enum Msg {
    /// Samples of one or more consecutive samples records, in order; the buffer goes back.
    Samples(Vec<RefSample>),
    /// Any other record.
    Record(Record),
}

/// Float samples buffered before they are grouped by series and applied: 24 bytes each in
/// WAL order plus 16 grouped, so at most 10 MiB (2^18 samples is ~13 per series of the 20,000
/// of a medium set).
pub(crate) const BATCH: usize = 1 << 18;

/// Buffers at least this large are applied on two threads.
const PARALLEL_MIN: usize = 1 << 15;

/// What a replay found.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReplayOutcome {
    pub(crate) records: u64,
    pub(crate) samples: u64,
    pub(crate) unknown_refs: u64,
    pub(crate) truncated_bytes: u64,
}

/// Replays `wal` into `head`. Without an out-of-order window, samples older than the head's min
/// valid time (already in blocks) are skipped.
pub(crate) fn replay(head: &Head, wal: &Wal) -> Result<ReplayOutcome> {
    replay_with(head, wal, BATCH, PARALLEL_MIN)
}

/// [`replay`] grouping at most `batch` float samples by series (1: WAL order), applying groups
/// of at least `parallel_min` samples on two threads.
pub(crate) fn replay_with(
    head: &Head,
    wal: &Wal,
    batch: usize,
    parallel_min: usize,
) -> Result<ReplayOutcome> {
    replay_after(head, wal, None, batch, parallel_min)
}

/// Replays the WAL segments a head snapshot does not cover into `head`, which holds the
/// snapshot: segments from `loaded.segment` on; samples may refer to the snapshot's series.
pub(crate) fn replay_after_snapshot(
    head: &Head,
    wal: &Wal,
    loaded: &super::snapshot::Loaded,
) -> Result<ReplayOutcome> {
    replay_after(head, wal, Some(loaded), BATCH, PARALLEL_MIN)
}

/// [`replay_with`] from a snapshot when `from` is set.
fn replay_after(
    head: &Head,
    wal: &Wal,
    from: Option<&super::snapshot::Loaded>,
    batch: usize,
    parallel_min: usize,
) -> Result<ReplayOutcome> {
    let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
    let (spare_tx, spare_rx) = mpsc::channel::<Vec<RefSample>>();
    std::thread::scope(|scope| {
        let helper = if parallel_min < usize::MAX {
            let (jobs, job_rx) = mpsc::channel::<Arc<Job>>();
            let (done_tx, done) = mpsc::channel::<Counts>();
            std::thread::Builder::new()
                .name("wal-replay-2".into())
                .spawn_scoped(scope, move || {
                    for job in job_rx {
                        let c = job.work(head, true);
                        drop(job);
                        if done_tx.send(c).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| Error::io("cannot start the WAL replay thread", e))?;
            Some(Helper { jobs, done })
        } else {
            None
        };
        let applier = std::thread::Builder::new()
            .name("wal-replay".into())
            .spawn_scoped(scope, move || {
                let mut a = Applier::new(head, batch, parallel_min, helper);
                if let Some(l) = from {
                    a.seed(&l.series)?;
                }
                for msg in rx {
                    match msg {
                        Msg::Samples(mut s) => {
                            a.samples(&s);
                            s.clear();
                            // The decoding thread may have finished: then the buffer is dropped.
                            let _ = spare_tx.send(s);
                        }
                        Msg::Record(rec) => a.record(rec)?,
                    }
                }
                a.finish()
            })
            .map_err(|e| Error::io("cannot start the WAL replay thread", e))?;
        // A send fails only when the applier stopped on an error, which it returns.
        let closed = |_| Error::Closed;
        let mut chunk: Vec<RefSample> = Vec::new();
        let stats = wal
            .replay_items_from(from.map(|l| l.segment), &mut |item| match item {
                Item::Samples(s) => {
                    if chunk.capacity() == 0 {
                        chunk = spare_rx
                            .try_recv()
                            .unwrap_or_else(|_| Vec::with_capacity(CHUNK + s.len()));
                    }
                    chunk.extend_from_slice(s);
                    if chunk.len() >= CHUNK {
                        tx.send(Msg::Samples(std::mem::take(&mut chunk)))
                            .map_err(closed)?;
                    }
                    Ok(())
                }
                Item::Record(rec) => {
                    if !chunk.is_empty() {
                        tx.send(Msg::Samples(std::mem::take(&mut chunk)))
                            .map_err(closed)?;
                    }
                    tx.send(Msg::Record(rec)).map_err(closed)
                }
            })
            .and_then(|stats| {
                if !chunk.is_empty() {
                    tx.send(Msg::Samples(chunk)).map_err(closed)?;
                }
                Ok(stats)
            });
        drop(tx);
        let applied = match applier.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        let mut out = applied?;
        let stats = stats?;
        out.records = stats.records;
        out.truncated_bytes = stats.truncated_bytes;
        Ok(out)
    })
}

/// The series WAL ref `r` resolves to now.
fn lookup<'a>(refs: &RefSlots, slots: &'a [Arc<Series>], r: u64) -> Option<&'a Arc<Series>> {
    refs.get(r).and_then(|slot| slots.get(slot as usize))
}

/// No slot (in [`RefSlots::dense`]).
const NO_SLOT: u32 = u32::MAX;

/// WAL series ref → slot. The head hands out refs densely from 1, so refs below a bound that
/// grows with the number of slots index a vector (a sequential read for the refs of a
/// record, which come in ref order); any other ref (a corrupt or foreign WAL's) goes to a map,
/// so memory stays proportional to the series.
#[derive(Default)]
struct RefSlots {
    dense: Vec<u32>,
    sparse: U64Map<u32>,
}

impl RefSlots {
    fn get(&self, r: u64) -> Option<u32> {
        match usize::try_from(r).ok().and_then(|i| self.dense.get(i)) {
            Some(&slot) if slot != NO_SLOT => Some(slot),
            // A ref mapped before the vector reached it is in the map.
            _ if self.sparse.is_empty() => None,
            _ => self.sparse.get(&r).copied(),
        }
    }

    /// Maps `r` to `slot`; `slots` is the number of slots (it bounds the vector's length).
    fn insert(&mut self, r: u64, slot: u32, slots: usize) {
        let limit = slots.saturating_mul(4).saturating_add(1 << 16);
        match usize::try_from(r) {
            Ok(i) if i < limit => {
                if i >= self.dense.len() {
                    let len = (i + 1).next_power_of_two().min(limit);
                    self.dense.resize(len, NO_SLOT);
                }
                if let Some(d) = self.dense.get_mut(i) {
                    *d = slot;
                }
            }
            _ => {
                self.sparse.insert(r, slot);
            }
        }
    }
}

/// A flush's grouped samples, lent to the helper thread while both apply them; the applying
/// thread takes the buffers back once the helper has answered (and dropped its reference).
struct Job {
    slots: Vec<Arc<Series>>,
    runs: Vec<Run>,
    grouped: Vec<(i64, f64)>,
    /// The runs no thread has taken yet: `left.0..left.1`.
    left: parking_lot::Mutex<(usize, usize)>,
    share: usize,
    range: i64,
    window: i64,
}

impl Job {
    /// Applies shares of the runs until none is left; called by both threads at once, one
    /// taking shares from the front, the other (`from_back`) from the back. The runs come in
    /// about the same order in every flush, so a series is applied by the same thread in most
    /// flushes: its chunk buffer, when it grows, is freed and allocated by one thread (each
    /// thread's frees of the other's blocks wait in the allocator; threads that took any share
    /// raised the replay's peak RSS by 6 MiB).
    fn work(&self, head: &Head, from_back: bool) -> Counts {
        let mut c = Counts::default();
        loop {
            let part = {
                let mut left = self.left.lock();
                let (front, back) = *left;
                let take = self.share.min(back - front);
                if from_back {
                    left.1 -= take;
                    back - take..back
                } else {
                    left.0 += take;
                    front..front + take
                }
            };
            match self.runs.get(part) {
                Some(part) if !part.is_empty() => c.add(apply_runs(
                    head,
                    &self.slots,
                    part,
                    &self.grouped,
                    self.range,
                    self.window,
                )),
                _ => break c,
            }
        }
    }
}

/// The applying thread's end of the helper thread: jobs out, their counts back.
struct Helper {
    jobs: mpsc::Sender<Arc<Job>>,
    done: mpsc::Receiver<Counts>,
}

/// Runs a thread of [`Applier::flush`] takes at a time: a multiple of [`PREFETCH`], small
/// enough that the threads end within a few runs of each other.
const SHARE: usize = 16 * PREFETCH;

/// Samples applied and their time range.
struct Counts {
    samples: u64,
    mint: i64,
    maxt: i64,
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            samples: 0,
            mint: i64::MAX,
            maxt: i64::MIN,
        }
    }
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.samples += o.samples;
        self.mint = self.mint.min(o.mint);
        self.maxt = self.maxt.max(o.maxt);
    }
}

/// One series' samples in [`Applier::grouped`]: `grouped[start..start + len]`.
#[derive(Clone, Copy)]
struct Run {
    slot: u32,
    start: u32,
    len: u32,
}

/// Applies `runs` of `grouped` with one lock per series. Runs go in groups of [`PREFETCH`]
/// through [`apply_group`], so the memory misses of a group overlap instead of each run's lock
/// and chunk missing alone (a replay batch holds ~13 samples per series of a medium set: the
/// misses of a run cost as much as its appends).
fn apply_runs(
    head: &Head,
    slots: &[Arc<Series>],
    runs: &[Run],
    grouped: &[(i64, f64)],
    range: i64,
    window: i64,
) -> Counts {
    let files = &head.chunk_files;
    let mut c = Counts::default();
    let series = |r: &Run| {
        let Some(s) = slots.get(r.slot as usize) else {
            unreachable!("BUG: a replay run outside the slots");
        };
        &**s
    };
    let mut apply = |r: &Run, lw: &SeriesRawMutex, d: &mut SeriesData| {
        let (start, len) = (r.start as usize, r.len as usize);
        let Some(samples) = grouped.get(start..start + len) else {
            unreachable!("BUG: a replay run outside the grouped buffer");
        };
        d.apply_run(lw, samples, range, window, files, |t| {
            c.samples += 1;
            c.mint = c.mint.min(t);
            c.maxt = c.maxt.max(t);
        });
    };
    for group in runs.chunks(PREFETCH) {
        apply_group(group, series, |_, r, d| apply(r, series(r).lock_word(), d));
    }
    c
}

/// A float sample waiting in the buffer; `slot` indexes [`Applier::slots`].
#[derive(Clone, Copy)]
struct Pending {
    slot: u32,
    t: i64,
    v: f64,
}

/// Applies records in WAL order per series (see the module docs).
struct Applier<'h> {
    head: &'h Head,
    /// WAL series ref → slot.
    refs: RefSlots,
    /// Head series id → slot: two WAL refs of one series (a checkpoint's and a later record's)
    /// share a slot, so the sort keeps that series' samples in WAL order.
    ids: U64Map<u32>,
    slots: Vec<Arc<Series>>,
    /// Float samples not yet applied, in WAL order (at most `batch`).
    pending: Vec<Pending>,
    /// Grouping scratch, reused by every flush: per slot the samples in `pending` (counted as
    /// they arrive), then a write cursor (all zero between flushes); the slots in `pending`, in
    /// order of first sample; the runs; the grouped samples.
    cursor: Vec<u32>,
    seen: Vec<u32>,
    runs: Vec<Run>,
    grouped: Vec<(i64, f64)>,
    batch: usize,
    /// Buffers of at least this many samples are applied on two threads: this one and the
    /// helper, which lives as long as the replay (one thread and one allocator heap, not one
    /// per flush).
    parallel_min: usize,
    helper: Option<Helper>,
    min_valid: i64,
    range: i64,
    /// The out-of-order window as configured (may be negative: off).
    window: i64,
    out: ReplayOutcome,
    mint: i64,
    maxt: i64,
}

impl<'h> Applier<'h> {
    fn new(head: &'h Head, batch: usize, parallel_min: usize, helper: Option<Helper>) -> Self {
        let batch = batch.max(1);
        Self {
            head,
            refs: RefSlots::default(),
            ids: U64Map::default(),
            slots: Vec::new(),
            pending: Vec::with_capacity(batch.min(BATCH)),
            cursor: Vec::new(),
            seen: Vec::new(),
            runs: Vec::new(),
            grouped: Vec::new(),
            batch,
            parallel_min,
            helper,
            min_valid: head.min_valid_time(),
            range: head.opts.block_range,
            window: head.opts.ooo_window,
            out: ReplayOutcome::default(),
            mint: i64::MAX,
            maxt: i64::MIN,
        }
    }

    /// True when a sample at `t` is already in blocks and is skipped. Without an out-of-order
    /// window everything below the min valid time is in blocks. With one, the WAL also holds
    /// old samples accepted after the last cut; replaying them all is safe (a copy already in a
    /// block is merged away by compaction's deduplication).
    fn in_blocks(&self, t: i64) -> bool {
        t < self.min_valid && self.window <= 0
    }

    /// Maps WAL ref `r` to series `s` (a new slot unless `s` has one).
    fn map_ref(&mut self, r: u64, s: Arc<Series>) -> Result<()> {
        let next = u32::try_from(self.slots.len())
            .map_err(|_| Error::InvalidArgument("WAL replay: more than 2^32 series".into()))?;
        let slot = *self.ids.entry(s.id()).or_insert(next);
        if slot == next {
            self.slots.push(s);
            self.cursor.push(0);
        }
        self.refs.insert(r, slot, self.slots.len());
        Ok(())
    }

    /// Knows the series of a head snapshot (the WAL after it refers to them by id).
    fn seed(&mut self, series: &[Arc<Series>]) -> Result<()> {
        for s in series {
            self.map_ref(s.id(), s.clone())?;
        }
        Ok(())
    }

    fn record(&mut self, rec: Record) -> Result<()> {
        match rec {
            Record::Series(series) => {
                for rs in series {
                    let (s, _) = self.head.get_or_create(&rs.labels, Some(rs.series))?;
                    s.logged().store(true, Ordering::Release);
                    self.map_ref(rs.series, s)?;
                }
            }
            Record::Samples(samples) => self.samples(&samples),
            Record::Histograms(hs) => {
                self.flush();
                let (range, window, files) =
                    (self.range, self.window.max(0), &self.head.chunk_files);
                for rh in hs {
                    if self.in_blocks(rh.t) {
                        continue;
                    }
                    let Some(s) = lookup(&self.refs, &self.slots, rh.series) else {
                        self.out.unknown_refs += 1;
                        continue;
                    };
                    if matches!(
                        s.data.lock().apply_histogram(
                            s.lock_word(),
                            rh.t,
                            &rh.h,
                            range,
                            window,
                            files
                        ),
                        Applied::InOrder | Applied::OutOfOrder
                    ) {
                        self.out.samples += 1;
                        self.mint = self.mint.min(rh.t);
                        self.maxt = self.maxt.max(rh.t);
                    }
                }
            }
            Record::Tombstones(ts) => {
                self.flush();
                for t in ts {
                    let id = lookup(&self.refs, &self.slots, t.series).map(|s| s.id());
                    if let Some(id) = id {
                        self.head.delete(&[id], t.mint, t.maxt, false)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn samples(&mut self, samples: &[RefSample]) {
        for rs in samples {
            if self.in_blocks(rs.t) {
                continue;
            }
            let Some(slot) = self.refs.get(rs.series) else {
                self.out.unknown_refs += 1;
                continue;
            };
            // Counted here, so grouping reads the buffer once.
            let c = &mut self.cursor[slot as usize];
            if *c == 0 {
                self.seen.push(slot);
            }
            *c += 1;
            self.pending.push(Pending {
                slot,
                t: rs.t,
                v: rs.v,
            });
            if self.pending.len() >= self.batch {
                self.flush();
            }
        }
    }

    /// Applies the buffer series by series, each series' samples in WAL order. A large buffer
    /// is applied on two threads (series are independent; the decoding thread is then mostly
    /// waiting for this one): this one and the helper take up to [`SHARE`] runs at a time,
    /// from either end, until none is left, so neither waits for the other at the end while it
    /// has work (a split into halves left one waiting for the slower half).
    fn flush(&mut self) {
        self.group();
        // Replay accepts what the live head accepted: the OOO window applies, and a sample
        // rejected at commit time is rejected the same way here.
        let (range, window) = (self.range, self.window.max(0));
        let c = match &self.helper {
            Some(h) if self.pending.len() >= self.parallel_min => {
                // At least 8 shares, so that a flush of few series is shared too.
                let n = self.runs.len();
                let share = SHARE.min(n.div_ceil(8)).max(1);
                let job = Arc::new(Job {
                    slots: std::mem::take(&mut self.slots),
                    runs: std::mem::take(&mut self.runs),
                    grouped: std::mem::take(&mut self.grouped),
                    left: parking_lot::Mutex::new((0, n)),
                    share,
                    range,
                    window,
                });
                // A send or receive fails only when the helper panicked: the scope that runs
                // both threads then panics too once this one returns.
                let sent = h.jobs.send(job.clone()).is_ok();
                let mut c = job.work(self.head, false);
                if sent && let Ok(y) = h.done.recv() {
                    c.add(y);
                }
                let Ok(job) = Arc::try_unwrap(job) else {
                    unreachable!("BUG: the WAL replay helper kept a job after its answer");
                };
                (self.slots, self.runs, self.grouped) = (job.slots, job.runs, job.grouped);
                c
            }
            _ => apply_runs(
                self.head,
                &self.slots,
                &self.runs,
                &self.grouped,
                range,
                window,
            ),
        };
        self.out.samples += c.samples;
        self.mint = self.mint.min(c.mint);
        self.maxt = self.maxt.max(c.maxt);
        self.pending.clear();
    }

    /// Moves `pending` into `grouped`, one run per series, each in WAL order (a stable
    /// counting sort; runs in the order of the series' first sample).
    fn group(&mut self) {
        self.runs.clear();
        let mut start = 0u32;
        for &slot in &self.seen {
            let c = &mut self.cursor[slot as usize];
            self.runs.push(Run {
                slot,
                start,
                len: *c,
            });
            (start, *c) = (start + *c, start);
        }
        // Every slot below `pending.len()` is written next: grown (zeroed) only when too short,
        // not cleared and zeroed again by every flush (4 MiB each).
        if self.grouped.len() < self.pending.len() {
            self.grouped.resize(self.pending.len(), (0, 0.0));
        }
        for p in &self.pending {
            let c = &mut self.cursor[p.slot as usize];
            self.grouped[*c as usize] = (p.t, p.v);
            *c += 1;
        }
        for &slot in &self.seen {
            self.cursor[slot as usize] = 0;
        }
        self.seen.clear();
    }

    fn finish(mut self) -> Result<ReplayOutcome> {
        self.flush();
        for s in &self.slots {
            s.data.lock().shrink_open();
        }
        self.head.update_time_range(self.mint, self.maxt);
        Ok(self.out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::head::HeadOptions;
    use crate::head::chunk_files::HeadChunkFiles;
    use crate::head::series::SeriesData;
    use crate::histogram::{FloatHistogram, Span};
    use crate::model::Labels;
    use crate::wal::record::{self, RefHistogram};
    use crate::wal::{RefSeries, RefTombstone, SyncMode, WalOptions};

    use crate::test_rng::Rng;

    fn hist(count: f64) -> FloatHistogram {
        FloatHistogram {
            schema: 0,
            count,
            sum: count * 1.5,
            zero_count: 0.0,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![count / 2.0, count / 2.0],
            ..FloatHistogram::default()
        }
    }

    /// A WAL mixing what replay must keep in order: series records (one label set logged under
    /// two refs, series appearing mid-way, refs never logged), float samples in and out of
    /// order (within and beyond `window`, duplicates of the same and of another value, below
    /// the min valid time, staleness markers), histograms on float series and on their own,
    /// and tombstones. Segments are small, so the WAL spans several.
    fn write_wal(dir: &std::path::Path, seed: u64) -> Wal {
        let mut wal = Wal::open(
            dir,
            WalOptions {
                segment_size: 64 << 10,
                sync: SyncMode::Buffer,
            },
        )
        .unwrap();
        let mut rng = Rng(seed);
        let mut buf = Vec::new();
        let mut log = |wal: &mut Wal, enc: &dyn Fn(&mut Vec<u8>)| {
            buf.clear();
            enc(&mut buf);
            wal.log(&[&buf]).unwrap();
        };
        let labels = |i: u64| Labels::from_pairs(&[("__name__", "m"), ("i", &i.to_string())]);
        // Refs 1..=60 for series 0..60; ref 100 + i is a second ref of series i (churn).
        let mut known: Vec<u64> = Vec::new();
        let mut newest = vec![0i64; 200];
        for round in 0..400u64 {
            if round % 40 == 0 && known.len() < 60 {
                let add: Vec<RefSeries> = (known.len() as u64..known.len() as u64 + 15)
                    .map(|i| RefSeries {
                        series: i + 1,
                        labels: labels(i),
                    })
                    .collect();
                known.extend(add.iter().map(|s| s.series));
                log(&mut wal, &|b| record::encode_series(&add, b));
            }
            if round == 150 {
                let again: Vec<RefSeries> = (0..10)
                    .map(|i| RefSeries {
                        series: 100 + i,
                        labels: labels(i),
                    })
                    .collect();
                known.extend(again.iter().map(|s| s.series));
                log(&mut wal, &|b| record::encode_series(&again, b));
            }
            match rng.below(10) {
                0 => {
                    let hs: Vec<RefHistogram> = (0..5)
                        .map(|_| {
                            let r = known[rng.below(known.len() as u64) as usize];
                            let t = newest[r as usize] + rng.below(3) as i64 * 1000 - 1000;
                            newest[r as usize] = newest[r as usize].max(t);
                            RefHistogram {
                                series: r,
                                t,
                                h: hist(rng.below(50) as f64),
                            }
                        })
                        .collect();
                    log(&mut wal, &|b| record::encode_histograms(&hs, b));
                }
                1 => {
                    let r = known[rng.below(known.len() as u64) as usize];
                    let mint = rng.below(400_000) as i64;
                    let ts = [RefTombstone {
                        series: r,
                        mint,
                        maxt: mint + rng.below(60_000) as i64,
                    }];
                    log(&mut wal, &|b| record::encode_tombstones(&ts, b));
                }
                _ => {
                    let mut ss = Vec::new();
                    for &r in &known {
                        let n = &mut newest[r as usize];
                        let t = match rng.below(20) {
                            0 => *n - rng.below(30) as i64 * 1000, // out of order
                            1 => *n,                               // duplicate time
                            2 => rng.below(5_000) as i64,          // old
                            _ => *n + 1000 + rng.below(3) as i64,  // in order
                        };
                        *n = (*n).max(t);
                        let v = match rng.below(30) {
                            0 => crate::model::stale_nan(),
                            1..4 => 7.0,
                            _ => rng.below(1000) as f64,
                        };
                        ss.push(RefSample { series: r, t, v });
                    }
                    if rng.below(8) == 0 {
                        ss.push(RefSample {
                            series: 999,
                            t: 1_000_000,
                            v: 1.0,
                        });
                    }
                    log(&mut wal, &|b| record::encode_samples(&ss, b));
                }
            }
        }
        wal
    }

    /// Everything the head holds ([`Head::dump`]), then what the replay counted.
    fn dump(head: &Head, out: &ReplayOutcome) -> Vec<String> {
        let mut lines = head.dump();
        lines.push(format!(
            "samples {} unknown {}",
            out.samples, out.unknown_refs
        ));
        lines
    }

    /// Two threads working on one [`Job`] from either end apply every run exactly once: the
    /// head equals the one a single thread's `apply_runs` over all runs builds.
    #[test]
    fn two_threads_sharing_a_job_from_either_end_apply_every_run_once() {
        let new_head = || {
            Head::new(
                HeadOptions {
                    block_range: 7_200_000,
                    ooo_window: 0,
                },
                None,
                HeadChunkFiles::in_memory(),
                i64::MIN,
            )
        };
        let labels = |i: u64| Labels::from_pairs(&[("__name__", "m"), ("i", &i.to_string())]);
        let build = |head: &Head, shared: bool| {
            let slots: Vec<Arc<Series>> = (0..1000)
                .map(|i| head.get_or_create(&labels(i), None).unwrap().0)
                .collect();
            let (mut runs, mut grouped) = (Vec::new(), Vec::new());
            for (slot, len) in (0..1000u32).map(|i| (i, i % 7 + 1)) {
                let start = grouped.len() as u32;
                grouped.extend((0..len).map(|k| (i64::from(k) * 1000, f64::from(slot * 100 + k))));
                runs.push(Run { slot, start, len });
            }
            let want = grouped.len() as u64;
            let c = if shared {
                let n = runs.len();
                let job = Job {
                    slots,
                    runs,
                    grouped,
                    left: parking_lot::Mutex::new((0, n)),
                    share: 5,
                    range: 7_200_000,
                    window: 0,
                };
                std::thread::scope(|scope| {
                    let other = scope.spawn(|| job.work(head, true));
                    let mut c = job.work(head, false);
                    c.add(other.join().unwrap());
                    c
                })
            } else {
                apply_runs(head, &slots, &runs, &grouped, 7_200_000, 0)
            };
            assert_eq!(c.samples, want);
            assert_eq!((c.mint, c.maxt), (0, 6000));
        };
        let (one, two) = (new_head(), new_head());
        build(&one, false);
        build(&two, true);
        let (want, got) = (
            dump(&one, &ReplayOutcome::default()),
            dump(&two, &ReplayOutcome::default()),
        );
        assert_eq!(want.len(), got.len());
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(w, g);
        }
    }

    /// Runs reserve room for whole chunks (`SeriesData::apply_run`); the chunks a replay leaves
    /// open give it back, so a replayed head holds no more than the bytes of its open chunks.
    #[test]
    fn replay_leaves_open_chunks_without_spare_room() {
        let dir = tempfile::tempdir().unwrap();
        let wal = write_wal(dir.path(), 5);
        for (batch, parallel) in [(BATCH, 2), (BATCH, usize::MAX), (7, usize::MAX)] {
            let head = Head::new(
                HeadOptions {
                    block_range: 120_000,
                    ooo_window: 0,
                },
                None,
                HeadChunkFiles::in_memory(),
                i64::MIN,
            );
            replay_with(&head, &wal, batch, parallel).unwrap();
            let mut open = 0;
            for s in head.series.all() {
                let d = s.data.lock();
                if let Some(o) = d.open.as_ref() {
                    open += 1;
                    let c = &o.chunk;
                    assert_eq!(c.heap_bytes(), c.bytes().len(), "series {}", s.id());
                }
            }
            assert!(open > 30, "only {open} open chunks");
        }
    }

    #[test]
    fn grouped_by_series_builds_the_head_wal_order_builds() {
        let check = |seed: u64, window: i64, min_valid: i64| {
            let dir = tempfile::tempdir().unwrap();
            let wal = write_wal(dir.path(), seed);
            let build = |batch: usize, parallel: usize| {
                let head = Head::new(
                    HeadOptions {
                        block_range: 120_000,
                        ooo_window: window,
                    },
                    None,
                    HeadChunkFiles::in_memory(),
                    min_valid,
                );
                let out = replay_with(&head, &wal, batch, parallel).unwrap();
                (dump(&head, &out), out)
            };
            let (want, out) = build(1, usize::MAX);
            assert!(out.samples > 10_000, "too few samples applied: {out:?}");
            assert!(out.unknown_refs > 0, "no unknown ref in the WAL: {out:?}");
            assert!(
                want.iter().any(|l| l.contains("hist Some")),
                "no histograms in the head"
            );
            if window > 0 {
                assert!(
                    want.iter().any(|l| !l.contains("ooo []")),
                    "no out-of-order sample kept"
                );
            }
            for (batch, parallel) in [
                (2, 2),
                (7, usize::MAX),
                (1000, 2),
                (BATCH, 2),
                (BATCH, 1 << 15),
            ] {
                let (got, _) = build(batch, parallel);
                assert_eq!(want.len(), got.len());
                for (w, g) in want.iter().zip(&got) {
                    assert_eq!(w, g, "seed {seed} window {window} batch {batch}/{parallel}");
                }
            }
        };
        check(1, 0, i64::MIN);
        check(2, 30_000, i64::MIN);
        check(3, 0, 3_000);
        check(4, 600_000, 3_000);
    }

    /// A chunk cut in a run of at least `MIN_RESERVED_RUN` samples hands its buffer to the
    /// series' next chunk; in shorter runs (many series, about one sample each per batch) the
    /// next chunk starts small, so the room kept is bounded by the batch, not the series.
    #[test]
    fn only_long_runs_keep_a_cut_chunks_buffer() {
        let files = HeadChunkFiles::in_memory();
        let samples: Vec<(i64, f64)> = (0..130).map(|i| (i * 15_000, (i * i) as f64)).collect();
        let open_bytes = |run: usize| {
            let (lw, mut d) = (SeriesRawMutex::new(1), SeriesData::default());
            for part in samples.chunks(run) {
                d.apply_run(&lw, part, 7_200_000, 0, &files, |_| {});
            }
            assert_eq!(d.closed.len(), 1, "run {run}");
            let o = d.open.as_ref().unwrap();
            assert_eq!(o.chunk.num_samples(), 10, "run {run}");
            (o.chunk.heap_bytes(), o.chunk.bytes().len())
        };
        // The first chunk's bytes: the buffer the next chunk gets when it is kept.
        let mut first = crate::chunk::XorChunk::new();
        for &(t, v) in &samples[..120] {
            first.append(t, v);
        }
        let (kept, used) = open_bytes(10);
        assert!(
            kept >= first.bytes().len() && used * 4 < kept,
            "run of 10: {kept} bytes for {used}, first chunk {}",
            first.bytes().len()
        );
        let (grown, used) = open_bytes(1);
        assert!(grown < 2 * used, "run of 1: {grown} bytes for {used}");
    }

    #[test]
    fn apply_run_applies_as_apply_one_by_one() {
        let range = 120_000;
        for seed in 1..60u64 {
            let mut rng = Rng(seed);
            let window = [0, 30_000, 600_000][(seed % 3) as usize];
            let (fa, fb) = (HeadChunkFiles::in_memory(), HeadChunkFiles::in_memory());
            let (mut a, mut b) = (SeriesData::default(), SeriesData::default());
            let (la, lb) = (SeriesRawMutex::new(1), SeriesRawMutex::new(1));
            // Negative times too: block ranges are floored.
            let mut t = rng.below(400_000) as i64 - 200_000;
            let mut kept = 0;
            for round in 0..40 {
                if round % 9 == 4 {
                    let ht = t + 1 + rng.below(3) as i64 * 1000 - 1000;
                    let h = hist(rng.below(50) as f64);
                    let x = a.apply_histogram(&la, ht, &h, range, window, &fa);
                    let y = b.apply_histogram(&lb, ht, &h, range, window, &fb);
                    assert_eq!(x, y, "seed {seed} round {round}: histogram");
                    t = t.max(ht);
                }
                let run: Vec<(i64, f64)> = (0..rng.below(400))
                    .map(|_| {
                        let at = match rng.below(25) {
                            0 => t - rng.below(60_000) as i64, // out of order
                            1 => t,                            // duplicate time
                            _ => {
                                t += 1 + rng.below(9_000) as i64;
                                t
                            }
                        };
                        let v = match rng.below(10) {
                            0 => crate::model::stale_nan(),
                            1..4 => 7.0,
                            _ => rng.below(1000) as f64,
                        };
                        (at, v)
                    })
                    .collect();
                let mut got = Vec::new();
                a.apply_run(&la, &run, range, window, &fa, |t| got.push(t));
                let want: Vec<i64> = run
                    .iter()
                    .filter(|&&(t, v)| {
                        matches!(
                            b.apply(&lb, t, v, range, window, &fb),
                            Applied::InOrder | Applied::OutOfOrder
                        )
                    })
                    .map(|s| s.0)
                    .collect();
                assert_eq!(got, want, "seed {seed} round {round}: applied");
                assert_eq!(
                    a.dump(&la, &fa),
                    b.dump(&lb, &fb),
                    "seed {seed} round {round}"
                );
                kept += got.len();
            }
            assert!(kept > 1000, "seed {seed}: only {kept} samples applied");
            assert!(a.closed.len() > 5, "seed {seed}: no chunk cut");
        }
    }
}
