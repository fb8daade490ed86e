//! The head: recent data in memory. Series live in lock-striped maps ([`series`]), postings in
//! one roaring [`MemPostings`], samples in Gorilla chunks cut at 120 samples or block-range
//! boundaries, out-of-order samples in a small sorted buffer per series. Appends go through
//! [`append::HeadAppender`] (validate → WAL → memory); [`read::HeadRange`] exposes a time range
//! of the head as a [`crate::block::BlockReader`]; [`replay`] rebuilds the head from the WAL.
//!
//! Completed chunks are packed into the append-only memory pages of [`chunk_files`], the series
//! keeping `{min_t, max_t, ref}` per chunk; the WAL is the only on-disk copy of head data.

pub(crate) mod append;
pub(crate) mod chunk_files;
pub(crate) mod histogram;
pub(crate) mod labels;
pub(crate) mod read;
pub(crate) mod replay;
pub(crate) mod series;
mod series_lock;
pub(crate) mod snapshot;
pub(crate) mod snapshot_delta;
mod snapshot_load;
pub(crate) mod symbols;

use crate::chunk::XorChunk;
use crate::error::{Error, Result};
use crate::interface::SampleIterator;
use crate::matcher::Matcher;
use crate::model::{Labels, Timestamp};
use crate::postings::MemPostings;
use crate::wal::{RefTombstone, Wal, record};
use chunk_files::HeadChunkFiles;
use parking_lot::{Mutex, RwLock};
use series::{OpenChunk, Series, StripeSeries};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Head settings.
#[derive(Clone, Debug)]
pub(crate) struct HeadOptions {
    /// Block range, ms: chunks never span two ranges.
    pub(crate) block_range: i64,
    /// Out-of-order window, ms (0 = off).
    pub(crate) ooo_window: i64,
}

/// Rejection and append counters of the head.
#[derive(Default)]
pub(crate) struct HeadMetrics {
    pub(crate) samples_appended: AtomicU64,
    pub(crate) ooo_appended: AtomicU64,
    pub(crate) rejected_out_of_order: AtomicU64,
    pub(crate) rejected_out_of_bounds: AtomicU64,
    pub(crate) rejected_too_old: AtomicU64,
    pub(crate) rejected_duplicate: AtomicU64,
    pub(crate) series_created: AtomicU64,
    pub(crate) series_removed: AtomicU64,
}

/// The in-memory head.
pub(crate) struct Head {
    // Immutable after construction.
    pub(crate) opts: HeadOptions,
    pub(crate) metrics: HeadMetrics,
    // Each map stripe has its own lock (see `StripeSeries`).
    pub(crate) series: StripeSeries,
    /// Postings of all series; written only on series creation and removal.
    pub(crate) postings: RwLock<MemPostings>,
    /// Completed chunks of all series (has its own locks).
    pub(crate) chunk_files: HeadChunkFiles,
    /// The WAL (None for a head without one). Commits hold it while logging only.
    pub(crate) wal: Mutex<Option<Wal>>,
    /// Commits hold it shared while applying a batch to memory; `set_min_valid_time` takes it
    /// exclusively so no batch validated against the old bound is applied after the change.
    pub(crate) apply_gate: RwLock<()>,
    /// Next series ref to hand out.
    next_ref: AtomicU64,
    /// Smallest/largest sample timestamp (may be stale-wide after truncation until recomputed).
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// Samples older than this are rejected (`OutOfBounds`); the head's data below it is in
    /// blocks.
    min_valid_time: AtomicI64,
    /// While a cut of the head into blocks is in progress: samples below this are rejected
    /// (`OutOfBounds`) even inside the out-of-order window, so none lands in a range being
    /// written out and truncated. `i64::MIN` otherwise.
    cut_fence: AtomicI64,
    /// Set by `close`; later commits fail with `Closed`.
    pub(crate) closed: AtomicBool,
    /// Batches logged to the WAL and not yet applied (or failed): raised under the WAL's lock
    /// when a batch is written, lowered after it is applied. A head snapshot holds the WAL's
    /// lock and waits for zero, so every logged batch is in memory and none is half applied.
    pub(crate) unapplied: AtomicU64,
    /// Raised by every truncation and deletion (the changes other than appends): a snapshot
    /// delta is written only while it is what it was at the chain's base.
    pub(crate) rewrites: AtomicU64,
}

impl Head {
    /// An empty head whose completed chunks go to `chunk_files`.
    pub(crate) fn new(
        opts: HeadOptions,
        wal: Option<Wal>,
        chunk_files: HeadChunkFiles,
        min_valid_time: Timestamp,
    ) -> Head {
        Head {
            opts,
            metrics: HeadMetrics::default(),
            series: StripeSeries::default(),
            postings: RwLock::default(),
            chunk_files,
            wal: Mutex::new(wal),
            apply_gate: RwLock::new(()),
            next_ref: AtomicU64::new(1),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(min_valid_time),
            cut_fence: AtomicI64::new(i64::MIN),
            closed: AtomicBool::new(false),
            unapplied: AtomicU64::new(0),
            rewrites: AtomicU64::new(0),
        }
    }

    /// An empty head without a WAL, its chunks in memory, accepting any timestamp (tests,
    /// benches and fuzz targets).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn in_memory(block_range: i64, ooo_window: i64) -> Head {
        Head::new(
            HeadOptions {
                block_range,
                ooo_window,
            },
            None,
            HeadChunkFiles::in_memory(),
            i64::MIN,
        )
    }

    /// The next series ref to hand out (for head snapshots).
    pub(crate) fn next_ref(&self) -> u64 {
        self.next_ref.load(Ordering::Acquire)
    }

    /// Never hands out refs below `r` (a snapshot's: refs of series dropped before it may
    /// still be in the WAL).
    pub(crate) fn raise_next_ref(&self, r: u64) {
        self.next_ref.fetch_max(r, Ordering::AcqRel);
    }

    /// Smallest sample timestamp, `i64::MAX` when empty.
    pub(crate) fn min_time(&self) -> Timestamp {
        self.min_time.load(Ordering::Acquire)
    }

    /// Largest sample timestamp, `i64::MIN` when empty.
    pub(crate) fn max_time(&self) -> Timestamp {
        self.max_time.load(Ordering::Acquire)
    }

    /// Lower bound for new samples.
    pub(crate) fn min_valid_time(&self) -> Timestamp {
        self.min_valid_time.load(Ordering::Acquire)
    }

    /// Lower bound for in-order samples: the min valid time, or half a block range behind the
    /// newest sample (Prometheus's `appendableMinValidTime`).
    pub(crate) fn appendable_min_valid_time(&self) -> Timestamp {
        let mv = self.min_valid_time();
        let max = self.max_time();
        if max == i64::MIN {
            return mv;
        }
        mv.max(max.saturating_sub(self.opts.block_range / 2))
    }

    /// Whether a sample at `t` older than the bounds for in-order data may still enter the
    /// head: with an out-of-order window, anything within the window of the head's newest
    /// sample does (also below the min valid time, where blocks exist already: such samples
    /// are cut into blocks of their own that compaction merges, as Prometheus's out-of-order
    /// head does), except below a cut in progress.
    pub(crate) fn accepts_old(&self, t: Timestamp) -> bool {
        let window = self.opts.ooo_window;
        window > 0
            && t >= self.cut_fence.load(Ordering::Acquire)
            && t >= self.max_time().saturating_sub(window)
    }

    /// Rejects samples below `t` until [`Head::clear_cut_fence`]; waits for batches being
    /// applied.
    pub(crate) fn raise_cut_fence(&self, t: Timestamp) {
        let _gate = self.apply_gate.write();
        self.cut_fence.fetch_max(t, Ordering::AcqRel);
    }

    /// Ends the cut: old samples within the out-of-order window are accepted again.
    pub(crate) fn clear_cut_fence(&self) {
        self.cut_fence.store(i64::MIN, Ordering::Release);
    }

    /// Raises the min valid time; waits for batches being applied.
    pub(crate) fn set_min_valid_time(&self, t: Timestamp) {
        let _gate = self.apply_gate.write();
        self.min_valid_time.fetch_max(t, Ordering::AcqRel);
    }

    /// Widens the head's time range to include `[mint, maxt]`.
    pub(crate) fn update_time_range(&self, mint: Timestamp, maxt: Timestamp) {
        if mint <= maxt {
            self.min_time.fetch_min(mint, Ordering::AcqRel);
            self.max_time.fetch_max(maxt, Ordering::AcqRel);
        }
    }

    /// Number of series (from the series maps: no copy of the postings).
    pub(crate) fn num_series(&self) -> u64 {
        self.series.len() as u64
    }

    /// Everything the head holds, series by series in id order (id, labels,
    /// [`series::SeriesData::dump`]), then its time range and series count: what tests and
    /// fuzz targets compare heads by.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn dump(&self) -> Vec<String> {
        let mut all = self.series.all();
        all.sort_by_key(|s| s.id());
        let mut lines: Vec<String> = all
            .iter()
            .map(|s| {
                let d = s.data.lock().dump(s.lock_word(), &self.chunk_files);
                format!("{} {:?} {d}", s.id(), s.labels)
            })
            .collect();
        lines.push(format!(
            "time {}..{} series {}",
            self.min_time(),
            self.max_time(),
            self.num_series()
        ));
        lines
    }

    /// The series with `labels`, created when missing. `id` forces the ref (WAL replay).
    /// Returns the series and whether it was created.
    pub(crate) fn get_or_create(
        &self,
        labels: &Labels,
        id: Option<u64>,
    ) -> Result<(Arc<Series>, bool)> {
        let hash = labels.stable_hash();
        if let Some(s) = self.series.get_by_labels(hash, labels) {
            return Ok((s, false));
        }
        self.create_hashed(labels, hash, id)
    }

    /// [`Head::get_or_create`] with `labels.stable_hash()` computed by the caller (a snapshot
    /// load hashes on its decoding thread) and one lookup, under the stripe's write lock: for
    /// callers that expect the series to be new.
    pub(crate) fn create_hashed(
        &self,
        labels: &Labels,
        hash: u64,
        id: Option<u64>,
    ) -> Result<(Arc<Series>, bool)> {
        debug_assert_eq!(
            hash,
            labels.stable_hash(),
            "BUG: a label set's hash is stale"
        );
        let stripe = self.series.hash_stripe(hash);
        let mut st = stripe.write();
        if let Some(s) = st.get_by_labels(hash, labels) {
            return Ok((s.clone(), false));
        }
        let id = match id {
            Some(id) => {
                self.next_ref.fetch_max(id + 1, Ordering::AcqRel);
                id
            }
            None => self.next_ref.fetch_add(1, Ordering::AcqRel),
        };
        if id > u64::from(u32::MAX) {
            return Err(Error::InvalidArgument(
                "head series refs exhausted (2^32 series created since the WAL started)".into(),
            ));
        }
        let s = Arc::new(Series::new(id, labels::SeriesLabels::new(labels)));
        self.postings.write().add(id as u32, s.labels.iter());
        self.series.insert_ref(s.clone());
        st.insert_hash(hash, s.clone());
        self.metrics.series_created.fetch_add(1, Ordering::Relaxed);
        Ok((s, true))
    }

    /// Drops all samples older than `before` and the series left empty (unless an appender
    /// still holds them), deletes chunk files holding only older chunks, then recomputes the
    /// time range. `before` must be a block-range boundary so no chunk straddles it.
    pub(crate) fn truncate(&self, before: Timestamp) {
        self.rewrites.fetch_add(1, Ordering::AcqRel);
        let mut mint = i64::MAX;
        let mut maxt = i64::MIN;
        let mut removed = Vec::new();
        for s in self.series.all() {
            let mut d = s.data.lock();
            d.truncate(before);
            if d.is_empty() {
                removed.push(s.clone());
            } else {
                mint = mint.min(d.min_time());
                maxt = maxt.max(d.max_time());
            }
        }
        // Every ref below `before` is gone from the series.
        self.chunk_files.truncate(before);
        for s in removed {
            // Lock order: hash stripe, then ref stripe (as in `get_or_create`). With both held
            // no appender can pick the series up.
            let hash = s.hash();
            let mut st = self.series.hash_stripe(hash).write();
            let mut refs = self.series.ref_stripe(s.id()).write();
            // Held by: `removed`, the ref map, the hash map. More means an appender holds it.
            // Checked under the series' lock, where an appender that upgraded a handle looks
            // at `removed`: either its reference is counted here, or it sees the flag. A
            // commit whose append took the lock-free path reads the flag after a `SeqCst`
            // fence instead (`HeadAppender::rehome_removed`): so mark first, fence, then
            // read the count, and clear the mark if the series stays (all under the lock,
            // so locked readers never see a passing mark).
            {
                let d = s.data.lock();
                s.removed().store(true, Ordering::Relaxed);
                std::sync::atomic::fence(Ordering::SeqCst);
                if Arc::strong_count(&s) > 3 || !d.is_empty() {
                    s.removed().store(false, Ordering::Relaxed);
                    continue;
                }
            }
            st.remove_hash(hash, &s);
            refs.remove(&s.id());
            self.postings.write().remove(s.id() as u32, s.labels.iter());
            self.metrics.series_removed.fetch_add(1, Ordering::Relaxed);
        }
        self.min_time.store(mint, Ordering::Release);
        self.max_time.fetch_max(maxt, Ordering::AcqRel);
        if mint == i64::MAX {
            // Empty head: keep max_time as the newest seen (bounds appendable time).
        }
    }

    /// True when series `id` is in the head.
    pub(crate) fn has_series(&self, id: u64) -> bool {
        self.series.get(id).is_some()
    }

    /// Ids of series matching all `matchers`.
    pub(crate) fn select_ids(&self, matchers: &[Matcher]) -> Result<Vec<u64>> {
        let r = read::HeadRange::new(self, i64::MIN, i64::MAX);
        let ids = crate::querier::select::postings_for_matchers(&r, matchers)?;
        Ok(ids.iter().map(u64::from).collect())
    }

    /// Deletes samples in `[mint, maxt]` of series `ids` (physically: chunks are re-encoded).
    /// Logs tombstone records to the WAL first when `log` is set.
    pub(crate) fn delete(
        &self,
        ids: &[u64],
        mint: Timestamp,
        maxt: Timestamp,
        log: bool,
    ) -> Result<()> {
        self.rewrites.fetch_add(1, Ordering::AcqRel);
        if log && !ids.is_empty() {
            let ts: Vec<RefTombstone> = ids
                .iter()
                .map(|&series| RefTombstone { series, mint, maxt })
                .collect();
            let mut buf = Vec::new();
            record::encode_tombstones(&ts, &mut buf);
            if let Some(wal) = self.wal.lock().as_mut() {
                wal.log(&[&buf])?;
            }
        }
        let mut samples = Vec::new();
        let mut buf = Vec::new();
        let keep = |t: Timestamp| t < mint || t > maxt;
        for &id in ids {
            let Some(s) = self.series.get(id) else {
                continue;
            };
            let mut d = s.data.lock();
            d.retain_ooo(keep);
            let mut touched = false;
            // A chunk that cannot be read or decoded is kept as it is (with every chunk after
            // it), and the error returned: a failed deletion loses no sample.
            let old = std::mem::take(&mut d.closed);
            let mut failed = None;
            for c in old {
                if failed.is_some() || c.max_t < mint || c.min_t > maxt {
                    d.closed.push(c);
                    continue;
                }
                buf.clear();
                let read = self.chunk_files.read_into(c.r, &mut buf);
                if let Err(e) = read.and_then(|()| collect_kept(&buf, keep, &mut samples)) {
                    d.closed.push(c);
                    failed = Some(e);
                    continue;
                }
                touched = true;
                if let Some(nc) = encode(&samples) {
                    d.push_closed(
                        id,
                        nc.min_t(),
                        nc.max_t(),
                        nc.chunk.bytes(),
                        &self.chunk_files,
                    );
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            if let Some(o) = &d.open
                && o.max_t() >= mint
                && o.min_t() <= maxt
            {
                collect_kept(o.chunk.bytes(), keep, &mut samples)?;
                touched = true;
                // Stays open: appends continue into the re-encoded chunk.
                d.open = encode(&samples);
            }
            d.closed.shrink_to_fit();
            if let Some(h) = d.hist_mut() {
                h.delete(mint, maxt)?;
            }
            if touched {
                d.recompute_last(s.lock_word(), &self.chunk_files)?;
            }
        }
        Ok(())
    }

    /// Approximate heap bytes of the head: series structs, labels, chunk records and open chunks
    /// (capacities), postings, and the pages of completed chunks.
    pub(crate) fn heap_bytes(&self) -> u64 {
        let mut total = 0usize;
        for s in self.series.all() {
            total += std::mem::size_of::<Series>() + 16; // Arc header
            total += s.labels.heap_bytes();
            total += 2 * (std::mem::size_of::<(u64, Arc<Series>)>() + 1) * 8 / 7; // map slots
            total += s.data.lock().heap_bytes();
        }
        total += self.postings.read().heap_bytes();
        total += self.chunk_files.heap_bytes();
        total as u64
    }

    /// Number of chunks (in-order) in the head.
    pub(crate) fn num_chunks(&self) -> u64 {
        self.series
            .all()
            .iter()
            .map(|s| s.data.lock().num_chunks() as u64)
            .sum()
    }
}

/// Replaces `out` with the samples of XOR chunk `bytes` whose time passes `keep`.
fn collect_kept(
    bytes: &[u8],
    keep: impl Fn(Timestamp) -> bool,
    out: &mut Vec<(Timestamp, f64)>,
) -> Result<()> {
    out.clear();
    let mut it = crate::chunk::XorIterator::new(bytes);
    while it.next() {
        let (t, v) = it.at();
        if keep(t) {
            out.push((t, v));
        }
    }
    it.take_err().map_or(Ok(()), Err)?;
    if !crate::chunk::increasing(out) {
        return Err(Error::corruption(
            "<head chunks>",
            0,
            "samples out of time order",
        ));
    }
    Ok(())
}

/// An open chunk holding `samples` (sorted), None when there are none.
fn encode(samples: &[(Timestamp, f64)]) -> Option<OpenChunk> {
    if samples.is_empty() {
        return None;
    }
    let mut chunk = XorChunk::new();
    for &(t, v) in samples {
        chunk.append(t, v);
    }
    Some(OpenChunk { chunk })
}

/// Locks `series`' data on another thread and returns once it holds the lock, which it
/// releases 50 ms later (tests of code that must wait for a busy series).
#[cfg(test)]
pub(crate) fn hold_busy(series: std::sync::Arc<Series>) -> std::thread::JoinHandle<()> {
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let d = series.data.lock();
        let _ = locked_tx.send(());
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(d);
    });
    let _ = locked_rx.recv();
    holder
}
