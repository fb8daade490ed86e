//! One in-memory series (`Series`) and the striped maps that find it by ref or by labels.

use super::chunk_files::HeadChunkFiles;
use super::histogram::HistData;
use super::labels::SeriesLabels;
use super::series_lock::{SeriesMutex, SeriesRawMutex, new_mutex, raw};
use crate::chunk::{TARGET_SAMPLES_PER_CHUNK, XorChunk, XorIterator};
use crate::error::Result;
use crate::interface::SampleIterator;
use crate::model::{Labels, Timestamp};
use hashbrown::HashTable;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use thin_vec::ThinVec;

/// A series in the head. 112 bytes, 128 with the `Arc` counts: one of mimalloc's (and
/// glibc's) size classes (see the test `series_fits_its_allocation_class`).
///
/// Its ref, flags and newest in-order timestamp live beside its lock (`head::series_lock`,
/// [`Series::lock_word`]), read through [`Series::id`], [`Series::logged`],
/// [`Series::removed`] and [`Series::in_order_unlocked`]:
/// - ref, immutable after construction: the head series ref (also its postings id); the head
///   hands out refs below 2^32 only, so it is kept in 32 bits.
/// - `logged`: set once a WAL series record for `id` has been written (maybe not yet synced: a
///   recovery that drops the batch makes the next commit clear every series' flag). Guarded by
///   the head's WAL mutex for check-and-set; read lock-free.
/// - `removed`: set when the head drops the series (it is out of the maps, and appends through
///   a [`crate::SeriesHandle`] must not land in it). Written only while holding `data`'s lock.
///   Read under the lock, so that the drop's check of the reference count and an appender's
///   upgrade of a handle are ordered; or, by a commit, without it after a `SeqCst` fence that
///   pairs with the one in `Head::truncate` (see `HeadAppender::rehome_removed`).
/// - the newest in-order float timestamp and whether the series ever held histograms: see
///   [`Series::in_order_unlocked`].
pub(crate) struct Series {
    // Immutable after construction.
    /// Sorted label pairs, packed.
    pub(crate) labels: SeriesLabels,
    /// Samples; guarded by its own mutex, whose word also holds the ref and the flags.
    pub(crate) data: SeriesMutex<SeriesData>,
}

impl Series {
    /// A series with no samples. BUG if `id` does not fit 32 bits (the head refuses to hand
    /// out such refs, see `Head::get_or_create`).
    pub(crate) fn new(id: u64, labels: SeriesLabels) -> Self {
        let id32 = u32::try_from(id)
            .unwrap_or_else(|_| unreachable!("BUG: head series ref {id} does not fit 32 bits"));
        Self {
            labels,
            data: new_mutex(id32, SeriesData::default()),
        }
    }

    /// Head series ref.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        u64::from(raw(&self.data).id32())
    }

    /// Whether a WAL series record was written (see [`Series`]).
    #[inline]
    pub(crate) fn logged(&self) -> &AtomicBool {
        raw(&self.data).logged()
    }

    /// Whether the head dropped the series (see [`Series`] for who may read it how).
    #[inline]
    pub(crate) fn removed(&self) -> &AtomicBool {
        raw(&self.data).removed()
    }

    /// The word beside the lock: ref, flags, newest in-order timestamp. The argument of the
    /// [`SeriesData`] methods that read or write the newest sample.
    #[inline]
    pub(crate) fn lock_word(&self) -> &SeriesRawMutex {
        raw(&self.data)
    }

    /// True when a float sample at `t` is in order for this series, decided without its lock:
    /// `t` is newer than the newest in-order float sample and the series never held
    /// histograms. Then [`SeriesData::check`] with no pending sample returns
    /// [`Applied::InOrder`] (whatever the out-of-order buffer holds: it is older than the
    /// newest sample). False says nothing: ask `check` under the lock.
    ///
    /// Why the answer is one `check` could give: both words are written only under the lock.
    /// The timestamp is loaded first, with `Acquire`, pairing with the `Release` store of the
    /// locked section that wrote it; the histogram flag is set (never cleared) under the lock.
    /// If a section that added histograms came before that writer in the lock's order, the
    /// flag store happens before the load of the flag, which then reads true. So a false flag
    /// means the state just after that writer's section had the timestamp read and no
    /// histograms, and `check(None, t)` in that state is `InOrder` iff `t` is newer. That state
    /// may be older than the newest one (a concurrent commit may have applied newer samples
    /// since), which is the same as today's locked check running just before that commit: the
    /// commit's apply checks again under the lock ([`SeriesData::apply`]) and drops and counts
    /// what became invalid, as for two batches racing. A sample a client saw acknowledged was
    /// applied (its `Release` store) before the client's next request reached any appender
    /// (through the kernel), so its timestamp is seen (write→read coherence).
    #[inline]
    pub(crate) fn in_order_unlocked(&self, t: Timestamp) -> bool {
        let w = self.lock_word();
        t > w.last_t().load(Ordering::Acquire) && !w.hist().load(Ordering::Relaxed)
    }

    /// `Labels::stable_hash` of the labels (computed: kept only in the hash stripe's map key,
    /// which saves 8 bytes per series and puts `Series` in a smaller allocation class).
    pub(crate) fn hash(&self) -> u64 {
        self.labels.stable_hash()
    }

    /// True when `labels` equals this series' labels.
    pub(crate) fn labels_eq(&self, labels: &Labels) -> bool {
        self.labels.eq_labels(labels)
    }

    /// The labels as an owned [`Labels`], written into `out`.
    pub(crate) fn labels_into(&self, out: &mut Labels) {
        self.labels.to_labels(out);
    }
}

/// A completed chunk: its bytes are in the head's [`HeadChunkFiles`], only its time range and
/// ref stay in memory (24 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClosedChunk {
    /// First sample's timestamp, ms.
    pub(crate) min_t: Timestamp,
    /// Last sample's timestamp, ms.
    pub(crate) max_t: Timestamp,
    /// Ref in the [`HeadChunkFiles`].
    pub(crate) r: u64,
}

/// The chunk being appended to, with its encoder state. Its time range is read from the
/// chunk (the last timestamp is encoder state; the first is decoded from the bytes), not kept
/// beside it: 16 bytes less in every head series.
pub(crate) struct OpenChunk {
    pub(crate) chunk: XorChunk,
}

impl OpenChunk {
    /// First sample's timestamp, ms (`i64::MAX` for a chunk without samples, which overlaps
    /// no range). Decodes the chunk's first sample: not for per-sample paths.
    pub(crate) fn min_t(&self) -> Timestamp {
        self.chunk.first_t().unwrap_or(Timestamp::MAX)
    }

    /// Last sample's timestamp, ms (`i64::MIN` for a chunk without samples).
    #[inline]
    pub(crate) fn max_t(&self) -> Timestamp {
        self.chunk.last_t().unwrap_or(Timestamp::MIN)
    }
}

/// Runs shorter than this grow an open chunk's buffer as appends do ([`SeriesData::apply_run`]
/// reserves room only for longer ones: with ~1 sample per series per replay batch, reserving
/// raised a 400,000-series replay's peak by 12 MiB and saved nothing).
const MIN_RESERVED_RUN: usize = 8;

/// What happened to one applied sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Appended in order.
    InOrder,
    /// Inserted into the out-of-order buffer.
    OutOfOrder,
    /// Same timestamp and value bits as an existing sample: nothing to do.
    Duplicate,
    /// Rejected: same timestamp, other value.
    RejectDuplicate,
    /// Rejected: older than the newest sample and out-of-order is off.
    RejectOutOfOrder,
    /// Rejected: older than the out-of-order window.
    RejectTooOld,
    /// Rejected: older than the head's min valid time.
    RejectOutOfBounds,
}

/// The mutable part of a series. In-order chunks are sorted and non-overlapping: `closed`
/// (oldest first), then `open`. A chunk never spans two block ranges.
///
/// The two lists are [`ThinVec`]s (one pointer; length and capacity live in the allocation,
/// and an empty one allocates nothing): 32 bytes less than two `Vec`s, which puts `Series` in
/// the 192-byte allocation class instead of 224; with the open chunk's time range read from
/// the chunk and a 32-bit ref, `Series` is in the 160-byte class (see the test
/// `series_fits_its_allocation_class`).
pub(crate) struct SeriesData {
    /// Completed chunks, bytes on disk; capacity kept exact (most series hold few).
    pub(crate) closed: ThinVec<ClosedChunk>,
    /// The newest chunk, open for appends (None after truncation or deletion emptied it).
    pub(crate) open: Option<OpenChunk>,
    /// Out-of-order samples and histograms, which almost no series has: one pointer, not two
    /// (read through [`SeriesData::ooo`] and [`SeriesData::hist`]). `None` when both are empty.
    rare: Option<Box<Rare>>,
    /// Newest in-order sample's value bits (0 when there is none). Its timestamp, ms
    /// ([`NO_LAST`] when there is none; kept when its chunk is truncated away), lives beside
    /// the series' lock, where appenders read it without the lock
    /// ([`Series::in_order_unlocked`]). The pair is an `Option<(Timestamp, u64)>` without its
    /// 8-byte tag, read and written through [`SeriesData::last`] and [`SeriesData::set_last`]
    /// (given the lock word).
    last_v: u64,
}

/// The parts of a series' data that almost no series has, boxed together (see
/// [`SeriesData`]'s `rare`).
#[derive(Default)]
struct Rare {
    /// Out-of-order samples, sorted by time, unique timestamps.
    ooo: ThinVec<(Timestamp, f64)>,
    /// Native-histogram samples, if the series ever had any.
    hist: Option<Box<HistData>>,
}

/// The newest in-order timestamp ([`Series::lock_word`]) when the series has no newest in-order sample. No sample is ever
/// stored at this timestamp: [`SeriesData::apply`] rejects it as out of bounds (it is 292
/// million years before 1970, and every other `i64` is a timestamp a sample may carry).
pub(crate) const NO_LAST: Timestamp = Timestamp::MIN;

impl Default for SeriesData {
    fn default() -> Self {
        Self {
            closed: ThinVec::new(),
            open: None,
            rare: None,
            last_v: 0,
        }
    }
}

impl SeriesData {
    /// Newest in-order sample `(t, value bits)`, if any; `lw` is the series' lock word
    /// ([`Series::lock_word`]), held locked.
    #[inline]
    pub(crate) fn last(&self, lw: &SeriesRawMutex) -> Option<(Timestamp, u64)> {
        // (Only lock holders write it: the lock orders this load after their stores.)
        let t = lw.last_t().load(Ordering::Relaxed);
        (t != NO_LAST).then_some((t, self.last_v))
    }

    /// Sets the newest in-order sample (a sample at [`NO_LAST`], which the head never stores,
    /// reads back as none); `lw` as for [`SeriesData::last`]. The only writer of the
    /// timestamp, with `Release` for [`Series::in_order_unlocked`].
    #[inline]
    pub(crate) fn set_last(&mut self, lw: &SeriesRawMutex, last: Option<(Timestamp, u64)>) {
        let (t, v) = last.unwrap_or((NO_LAST, 0));
        lw.last_t().store(t, Ordering::Release);
        self.last_v = v;
    }

    /// Out-of-order samples, sorted by time, unique timestamps (empty for almost every series).
    #[inline]
    pub(crate) fn ooo(&self) -> &[(Timestamp, f64)] {
        self.rare.as_ref().map_or(&[], |r| &r.ooo)
    }

    /// Replaces the out-of-order samples (sorted by time, unique timestamps).
    pub(crate) fn set_ooo(&mut self, ooo: ThinVec<(Timestamp, f64)>) {
        if ooo.is_empty() && self.rare.is_none() {
            return;
        }
        self.rare_mut().ooo = ooo;
        self.drop_empty_rare();
    }

    /// Keeps the out-of-order samples whose timestamps `keep` accepts.
    pub(crate) fn retain_ooo(&mut self, mut keep: impl FnMut(Timestamp) -> bool) {
        if let Some(r) = self.rare.as_mut() {
            r.ooo.retain(|x| keep(x.0));
            self.drop_empty_rare();
        }
    }

    /// Native-histogram samples, if the series ever had any.
    #[inline]
    pub(crate) fn hist(&self) -> Option<&HistData> {
        self.rare.as_ref()?.hist.as_deref()
    }

    /// [`SeriesData::hist`], mutable.
    pub(crate) fn hist_mut(&mut self) -> Option<&mut HistData> {
        self.rare.as_mut()?.hist.as_deref_mut()
    }

    /// The histogram samples, created empty if the series had none; sets the lock word's
    /// histogram flag (`lw`, see [`Series::in_order_unlocked`]), which nothing clears.
    pub(crate) fn hist_or_default(&mut self, lw: &SeriesRawMutex) -> &mut HistData {
        lw.hist().store(true, Ordering::Relaxed);
        self.rare_mut().hist.get_or_insert_with(Box::default)
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Gives back the box of rare parts once they are all empty.
    fn drop_empty_rare(&mut self) {
        if self
            .rare
            .as_ref()
            .is_some_and(|r| r.ooo.is_empty() && r.hist.is_none())
        {
            self.rare = None;
        }
    }

    /// Recomputes `last` from the chunks (after samples were deleted).
    pub(crate) fn recompute_last(
        &mut self,
        lw: &SeriesRawMutex,
        files: &HeadChunkFiles,
    ) -> Result<()> {
        self.set_last(lw, None);
        if let Some(o) = &self.open {
            self.set_last(lw, last_sample(o.chunk.bytes())?);
        } else if let Some(c) = self.closed.last() {
            let mut buf = Vec::new();
            files.read_into(c.r, &mut buf)?;
            self.set_last(lw, last_sample(&buf)?);
        }
        Ok(())
    }

    /// Number of in-order chunks.
    pub(crate) fn num_chunks(&self) -> usize {
        self.closed.len()
            + usize::from(self.open.is_some())
            + self.hist().map_or(0, |h| h.num_chunks())
    }

    /// Newest timestamp of any sample, `i64::MIN` when empty.
    pub(crate) fn max_time(&self) -> Timestamp {
        let a = match (&self.open, self.closed.last()) {
            (Some(o), _) => o.max_t(),
            (None, Some(c)) => c.max_t,
            (None, None) => i64::MIN,
        };
        let b = self.ooo().last().map_or(i64::MIN, |s| s.0);
        let h = self.hist().map_or(i64::MIN, |h| h.max_time());
        a.max(b).max(h)
    }

    /// Oldest timestamp of any sample, `i64::MAX` when empty.
    pub(crate) fn min_time(&self) -> Timestamp {
        let a = match (self.closed.first(), &self.open) {
            (Some(c), _) => c.min_t,
            (None, Some(o)) => o.min_t(),
            (None, None) => i64::MAX,
        };
        let b = self.ooo().first().map_or(i64::MAX, |s| s.0);
        let h = self.hist().map_or(i64::MAX, |h| h.min_time());
        a.min(b).min(h)
    }

    /// True when there are no samples.
    pub(crate) fn is_empty(&self) -> bool {
        self.closed.is_empty()
            && self.open.is_none()
            && self.ooo().is_empty()
            && self.hist().is_none_or(|h| h.is_empty())
    }

    /// Drops chunks and out-of-order samples entirely older than `before`.
    pub(crate) fn truncate(&mut self, before: Timestamp) {
        self.closed.retain(|c| c.max_t >= before);
        self.closed.shrink_to_fit();
        if self.open.as_ref().is_some_and(|o| o.max_t() < before) {
            self.open = None;
        }
        self.retain_ooo(|t| t >= before);
        if let Some(h) = self.hist_mut() {
            h.truncate(before);
        }
    }

    /// Value bits at `t` if a sample exists there (in-order chunks or OOO buffer).
    pub(crate) fn value_at(&self, t: Timestamp, files: &HeadChunkFiles) -> Option<u64> {
        let ooo = self.ooo();
        if let Ok(i) = ooo.binary_search_by_key(&t, |s| s.0) {
            return ooo.get(i).map(|s| s.1.to_bits());
        }
        let at = |bytes: &[u8]| {
            let mut it = XorIterator::new(bytes);
            if it.seek(t) && it.at().0 == t {
                return Some(it.at().1.to_bits());
            }
            None
        };
        if let Some(o) = &self.open
            && t <= o.max_t()
            && o.min_t() <= t
        {
            return at(o.chunk.bytes());
        }
        let c = self.closed.iter().find(|c| c.min_t <= t && t <= c.max_t)?;
        let mut buf = Vec::new();
        match files.read_into(c.r, &mut buf) {
            Ok(()) => at(&buf),
            Err(e) => {
                tracing::warn!("cannot read head chunk for a duplicate check: {e}");
                None
            }
        }
    }

    /// Checks a sample against the committed data without changing anything: the `Applied`
    /// that [`SeriesData::apply`] would return now, given `pending`, the newest sample appended
    /// but not yet committed by the caller's batch. `lw` as for [`SeriesData::last`].
    pub(crate) fn check(
        &self,
        lw: &SeriesRawMutex,
        pending: Option<(Timestamp, u64)>,
        t: Timestamp,
        v: f64,
        window: i64,
        files: &HeadChunkFiles,
    ) -> Applied {
        if t == NO_LAST {
            return Applied::RejectOutOfBounds;
        }
        if let Some(v) = self.float_vs_histograms(lw, t, window) {
            return v;
        }
        if pending.is_some_and(|p| p.1 == super::histogram::PENDING_HISTOGRAM_BITS && p.0 == t) {
            return Applied::RejectDuplicate;
        }
        let last = match (self.last(lw), pending) {
            (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
        match last {
            Some((lt, lb)) if t == lt => {
                if lb == v.to_bits() {
                    Applied::Duplicate
                } else {
                    Applied::RejectDuplicate
                }
            }
            Some((lt, _)) if t < lt => {
                if window <= 0 {
                    Applied::RejectOutOfOrder
                } else if t < lt.saturating_sub(window) {
                    Applied::RejectTooOld
                } else if self.hist().is_some_and(|h| h.has_sample_at(t)) {
                    // A histogram holds that timestamp.
                    Applied::RejectDuplicate
                } else {
                    match self.value_at(t, files) {
                        Some(b) if b == v.to_bits() => Applied::Duplicate,
                        Some(_) => Applied::RejectDuplicate,
                        None => Applied::OutOfOrder,
                    }
                }
            }
            _ => Applied::InOrder,
        }
    }

    /// Applies one sample of the series whose lock word is `lw` (held locked: see
    /// [`SeriesData::last`]). `range` is the block range used to cut chunks at block
    /// boundaries; `window` the out-of-order window. A cut chunk goes to `files`.
    pub(crate) fn apply(
        &mut self,
        lw: &SeriesRawMutex,
        t: Timestamp,
        v: f64,
        range: i64,
        window: i64,
        files: &HeadChunkFiles,
    ) -> Applied {
        if t == NO_LAST {
            return Applied::RejectOutOfBounds;
        }
        if let Some(v) = self.float_vs_histograms(lw, t, window) {
            return v;
        }
        match self.last(lw) {
            Some((lt, lb)) if t == lt => {
                if lb == v.to_bits() {
                    Applied::Duplicate
                } else {
                    Applied::RejectDuplicate
                }
            }
            Some((lt, _)) if t < lt => {
                if window <= 0 {
                    return Applied::RejectOutOfOrder;
                }
                if t < lt.saturating_sub(window) {
                    return Applied::RejectTooOld;
                }
                match self.ooo().binary_search_by_key(&t, |s| s.0) {
                    Ok(i) => match self.ooo().get(i) {
                        Some(s) if s.1.to_bits() == v.to_bits() => Applied::Duplicate,
                        _ => Applied::RejectDuplicate,
                    },
                    Err(i) => {
                        if self.hist().is_some_and(|h| h.has_sample_at(t)) {
                            return Applied::RejectDuplicate;
                        }
                        if let Some(b) = self.value_at(t, files) {
                            return if b == v.to_bits() {
                                Applied::Duplicate
                            } else {
                                Applied::RejectDuplicate
                            };
                        }
                        self.rare_mut().ooo.insert(i, (t, v));
                        Applied::OutOfOrder
                    }
                }
            }
            _ => {
                let hist_t = self.hist().and_then(|h| h.last_t);
                let cut = self.open.as_ref().is_some_and(|o| {
                    o.chunk.num_samples() >= TARGET_SAMPLES_PER_CHUNK
                        // (The chunk's samples share one block range, so its last one stands
                        // for its first.)
                        || o.max_t().div_euclid(range) != t.div_euclid(range)
                        // Histograms since this chunk's last sample: the type changed.
                        || hist_t.is_some_and(|ht| ht > o.max_t())
                });
                if cut {
                    self.close_open(u64::from(lw.id32()), files);
                }
                let o = self.open.get_or_insert_with(|| OpenChunk {
                    chunk: XorChunk::new(),
                });
                o.chunk.append(t, v);
                self.set_last(lw, Some((t, v.to_bits())));
                Applied::InOrder
            }
        }
    }

    /// Applies `samples` of the series of lock word `lw` in order (see [`SeriesData::apply`]),
    /// exactly as [`SeriesData::apply`] applied to
    /// each in turn, calling `applied(t)` for each sample that returns `InOrder` or
    /// `OutOfOrder`. For replay's runs of one series: in-order samples that stay in the open
    /// chunk (no histograms, its block range, room left) are appended with the block range's
    /// end computed once per chunk rather than two divisions per sample.
    pub(crate) fn apply_run(
        &mut self,
        lw: &SeriesRawMutex,
        samples: &[(Timestamp, f64)],
        range: i64,
        window: i64,
        files: &HeadChunkFiles,
        mut applied: impl FnMut(Timestamp),
    ) {
        let id = u64::from(lw.id32());
        let mut rest = samples;
        while !rest.is_empty() {
            if self.hist().is_none()
                && let Some(o) = self.open.as_mut()
            {
                // The chunk's samples share one block range, so its last one stands for its first.
                let mut end = block_end(o.max_t(), range);
                let mut room = TARGET_SAMPLES_PER_CHUNK.saturating_sub(o.chunk.num_samples());
                // Room for twice the run (at most the rest of the chunk) at once, instead of
                // growing by a quarter several times per run. Twice the run bounds the slack
                // this leaves across all series by about one replay batch's bytes (the runs of
                // a batch add up to it), and replay gives it back at its end
                // (`SeriesData::shrink_open`).
                if rest.len() >= MIN_RESERVED_RUN {
                    o.chunk
                        .reserve_samples(rest.len().saturating_mul(2).min(room));
                }
                // (`NO_LAST` is below every sample this takes: a sample at it goes to `apply`.)
                let (mut last_t, mut last_v) = (lw.last_t().load(Ordering::Relaxed), self.last_v);
                while let [(t, v), tail @ ..] = rest {
                    let (t, v) = (*t, *v);
                    let in_order = t > o.max_t() && t > last_t;
                    if !in_order {
                        break;
                    }
                    if room == 0 || end.is_some_and(|e| t >= e) {
                        // The cut `apply` makes here (the chunk is full or `t` is in a later
                        // block range), keeping the buffer for the next chunk: it is about
                        // as large as this one, so replay writes it without reallocating.
                        // Only in a run of at least `MIN_RESERVED_RUN` samples, so the room
                        // kept and not yet written is bounded whatever the number of series:
                        // at most `BATCH / MIN_RESERVED_RUN` series have such runs in a replay
                        // batch (with ~1 sample a series per batch, 400,000 series kept
                        // 180 MiB of chunk-sized buffers holding a few samples each). Shorter
                        // runs cut one by one, below. The chunk is never left empty: `t` goes
                        // in at once.
                        if samples.len() < MIN_RESERVED_RUN {
                            break;
                        }
                        let (min_t, max_t) = (o.min_t(), o.max_t());
                        push_closed_to(&mut self.closed, id, min_t, max_t, o.chunk.bytes(), files);
                        o.chunk.clear();
                        room = TARGET_SAMPLES_PER_CHUNK;
                        end = block_end(t, range);
                    }
                    o.chunk.append(t, v);
                    (last_t, last_v) = (t, v.to_bits());
                    room -= 1;
                    applied(t);
                    rest = tail;
                }
                lw.last_t().store(last_t, Ordering::Release);
                self.last_v = last_v;
            }
            // Anything else (a cut, out of order, duplicates, histograms): one by one.
            if let [(t, v), tail @ ..] = rest {
                if let Applied::InOrder | Applied::OutOfOrder =
                    self.apply(lw, *t, *v, range, window, files)
                {
                    applied(*t);
                }
                rest = tail;
            }
        }
    }

    /// Gives back the open chunk buffer's room past its bytes (after [`SeriesData::apply_run`]
    /// reserved room for a whole chunk).
    pub(crate) fn shrink_open(&mut self) {
        if let Some(o) = self.open.as_mut() {
            o.chunk.shrink_to_fit();
        }
    }

    /// Writes the open chunk of series `id` to `files` and keeps only its ref.
    pub(crate) fn close_open(&mut self, id: u64, files: &HeadChunkFiles) {
        if let Some(o) = self.open.take() {
            self.push_closed(id, o.min_t(), o.max_t(), o.chunk.bytes(), files);
        }
    }

    /// Writes completed chunk bytes of series `id` to `files` and appends its record.
    pub(crate) fn push_closed(
        &mut self,
        id: u64,
        min_t: Timestamp,
        max_t: Timestamp,
        bytes: &[u8],
        files: &HeadChunkFiles,
    ) {
        push_closed_to(&mut self.closed, id, min_t, max_t, bytes, files);
    }

    /// Heap bytes of the samples: chunk records and the open chunk's buffer (capacities).
    pub(crate) fn heap_bytes(&self) -> usize {
        thin_bytes(&self.closed)
            + self.open.as_ref().map_or(0, |o| o.chunk.heap_bytes())
            + self
                .rare
                .as_ref()
                .map_or(0, |r| std::mem::size_of::<Rare>() + thin_bytes(&r.ooo))
            + self.hist().map_or(0, |h| h.heap_bytes())
    }
}

/// The first timestamp of the block range after the one holding `t` (None: there is none).
fn block_end(t: Timestamp, range: i64) -> Option<Timestamp> {
    t.div_euclid(range)
        .checked_add(1)
        .and_then(|b| b.checked_mul(range))
}

/// [`SeriesData::push_closed`] into `closed`, for a caller that holds a borrow of another
/// field of the same series' data (its open chunk).
fn push_closed_to(
    closed: &mut ThinVec<ClosedChunk>,
    id: u64,
    min_t: Timestamp,
    max_t: Timestamp,
    bytes: &[u8],
    files: &HeadChunkFiles,
) {
    let r = files.write(id, min_t, max_t, bytes);
    // Grow one at a time: most series hold few chunks.
    closed.reserve_exact(1);
    closed.push(ClosedChunk { min_t, max_t, r });
}

/// Heap bytes of a [`ThinVec`]: its elements' capacity and, once it allocated, the length and
/// capacity words at the start of the allocation.
fn thin_bytes<T>(v: &ThinVec<T>) -> usize {
    match v.capacity() {
        0 => 0,
        n => n * std::mem::size_of::<T>() + 2 * std::mem::size_of::<usize>(),
    }
}

/// The last sample of XOR chunk bytes.
fn last_sample(bytes: &[u8]) -> Result<Option<(Timestamp, u64)>> {
    let mut it = XorIterator::new(bytes);
    let mut last = None;
    while it.next() {
        last = Some(it.at());
    }
    if let Some(e) = it.take_err() {
        return Err(e);
    }
    Ok(last.map(|(t, v)| (t, v.to_bits())))
}

/// Hasher for `u64` keys (series refs, label hashes): one multiply-xorshift round instead of
/// SipHash, as the keys are not attacker-chosen in a way that matters (refs are sequential,
/// label hashes only pick buckets and collisions are compared by labels).
#[derive(Default, Clone, Copy)]
pub(crate) struct U64Hasher(u64);

impl std::hash::Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A `HashMap` keyed by `u64` with [`U64Hasher`].
pub(crate) type U64Map<V> = HashMap<u64, V, std::hash::BuildHasherDefault<U64Hasher>>;

/// Number of lock stripes of the series maps (a power of two).
pub(crate) const STRIPES: usize = 128;

/// Spreads a `u64` over the table's bits (the stripe already used the low bits of a label hash,
/// and refs are sequential): [`U64Hasher`]'s finaliser.
fn mix(x: u64) -> u64 {
    use std::hash::Hasher;
    let mut h = U64Hasher::default();
    h.write_u64(x);
    h.finish()
}

/// One stripe: series by label hash. A table of series pointers (8 bytes a bucket) hashed
/// through the series' own labels, rather than a map from the 64-bit hash (16 bytes a bucket
/// and a side map for collisions): series with equal hashes are told apart by their labels.
#[derive(Default)]
pub(crate) struct Stripe {
    by_hash: HashTable<Arc<Series>>,
}

impl Stripe {
    /// The series with `labels` (whose hash is `hash`).
    pub(crate) fn get_by_labels(&self, hash: u64, labels: &Labels) -> Option<&Arc<Series>> {
        self.by_hash.find(mix(hash), |s| s.labels_eq(labels))
    }

    /// Inserts `s`, whose labels hash to `hash`, which is not in the stripe yet.
    pub(crate) fn insert_hash(&mut self, hash: u64, s: Arc<Series>) {
        // Growing rehashes every series from its packed labels: amortised one hash per insert.
        self.by_hash.insert_unique(mix(hash), s, |x| mix(x.hash()));
    }

    /// Makes room for `n` series in all.
    fn reserve(&mut self, n: usize) {
        self.by_hash
            .reserve(n.saturating_sub(self.by_hash.len()), |x| mix(x.hash()));
    }

    /// Removes `s`, whose labels hash to `hash`.
    pub(crate) fn remove_hash(&mut self, hash: u64, s: &Series) {
        if let Ok(e) = self.by_hash.find_entry(mix(hash), |x| x.id() == s.id()) {
            e.remove();
        }
    }

    /// Number of series in the stripe.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_hash.len()
    }
}

/// Series by ref, hashed by ref: 8 bytes a bucket (a map from the ref held 16).
#[derive(Default)]
pub(crate) struct RefMap {
    table: HashTable<Arc<Series>>,
}

impl RefMap {
    /// The series with ref `id`.
    pub(crate) fn get(&self, id: &u64) -> Option<&Arc<Series>> {
        self.table.find(mix(*id), |s| s.id() == *id)
    }

    /// Inserts `s` (replacing a series with its ref, which the head never holds twice).
    pub(crate) fn insert(&mut self, id: u64, s: Arc<Series>) {
        match self.table.entry(mix(id), |x| x.id() == id, |x| mix(x.id())) {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = s,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(s);
            }
        }
    }

    /// Makes room for `n` series in all.
    fn reserve(&mut self, n: usize) {
        self.table
            .reserve(n.saturating_sub(self.table.len()), |x| mix(x.id()));
    }

    /// Removes the series with ref `id`.
    pub(crate) fn remove(&mut self, id: &u64) -> Option<Arc<Series>> {
        self.table
            .find_entry(mix(*id), |s| s.id() == *id)
            .ok()
            .map(|e| e.remove().0)
    }

    /// Every series.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<Series>> {
        self.table.iter()
    }

    /// How many series.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

/// A stripe's lock on cache lines of its own: appenders on other cores taking neighbouring
/// stripes do not contend for one line (the remote-write profile spent ~10 % in `get` before).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Series maps striped by ref (for `by_ref`) and by label hash (for lookups by labels).
pub(crate) struct StripeSeries {
    pub(crate) ref_stripes: Box<[Padded<RwLock<RefMap>>]>,
    pub(crate) hash_stripes: Box<[Padded<RwLock<Stripe>>]>,
}

impl Default for StripeSeries {
    fn default() -> Self {
        Self {
            ref_stripes: (0..STRIPES).map(|_| Padded::default()).collect(),
            hash_stripes: (0..STRIPES).map(|_| Padded::default()).collect(),
        }
    }
}

impl StripeSeries {
    pub(crate) fn ref_stripe(&self, id: u64) -> &RwLock<RefMap> {
        let i = (id as usize) & (STRIPES - 1);
        &self
            .ref_stripes
            .get(i)
            .unwrap_or_else(|| unreachable!("BUG: stripe index masked"))
            .0
    }

    pub(crate) fn hash_stripe(&self, hash: u64) -> &RwLock<Stripe> {
        let i = (hash as usize) & (STRIPES - 1);
        &self
            .hash_stripes
            .get(i)
            .unwrap_or_else(|| unreachable!("BUG: stripe index masked"))
            .0
    }

    /// The series with ref `id`.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<Series>> {
        self.ref_stripe(id).read().get(&id).cloned()
    }

    /// The series with `labels`.
    pub(crate) fn get_by_labels(&self, hash: u64, labels: &Labels) -> Option<Arc<Series>> {
        self.hash_stripe(hash)
            .read()
            .get_by_labels(hash, labels)
            .cloned()
    }

    /// Adds `s` to the ref map (the caller has added it to its hash stripe).
    pub(crate) fn insert_ref(&self, s: Arc<Series>) {
        self.ref_stripe(s.id()).write().insert(s.id(), s);
    }

    /// Makes room for about `n` series spread over the stripes, so a load that knows its count
    /// (a head snapshot) does not grow each stripe's tables step by step (each step rehashes
    /// the stripe's label sets). Each stripe gets its share plus three standard deviations, which
    /// stays within the power-of-two table the share alone needs in most cases.
    pub(crate) fn reserve(&self, n: usize) {
        let share = n / STRIPES;
        if share == 0 {
            return;
        }
        let per = share + 3 * share.isqrt();
        for st in self.ref_stripes.iter() {
            st.write().reserve(per);
        }
        for st in self.hash_stripes.iter() {
            st.write().reserve(per);
        }
    }

    /// How many series (the ref stripes' sizes).
    pub(crate) fn len(&self) -> usize {
        self.ref_stripes.iter().map(|st| st.read().len()).sum()
    }

    /// Every series (a snapshot).
    pub(crate) fn all(&self) -> Vec<Arc<Series>> {
        let mut out = Vec::new();
        for s in self.ref_stripes.iter() {
            out.extend(s.read().values().cloned());
        }
        out
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl SeriesData {
    /// Everything the series holds: chunk time ranges and bytes (or why a completed chunk's
    /// bytes cannot be read), out-of-order buffer, the newest sample, histogram chunks. What
    /// tests and fuzz targets compare heads by ([`super::Head::dump`]).
    pub(crate) fn dump(&self, lw: &SeriesRawMutex, files: &HeadChunkFiles) -> String {
        let closed: Vec<_> = self
            .closed
            .iter()
            .map(|c| {
                let mut b = Vec::new();
                let read = files.read_into(c.r, &mut b).map(|()| b);
                (c.min_t, c.max_t, read.map_err(|e| e.to_string()))
            })
            .collect();
        let open = self
            .open
            .as_ref()
            .map(|o| (o.min_t(), o.max_t(), o.chunk.bytes()));
        let ooo: Vec<_> = self.ooo().iter().map(|(t, v)| (t, v.to_bits())).collect();
        let hist = self.hist().map(|h| {
            let closed: Vec<_> = h
                .closed
                .iter()
                .map(|c| (c.min_t, c.max_t, &c.bytes))
                .collect();
            let open = h.open.as_ref().map(|o| (o.min_t, o.max_t, o.chunk.bytes()));
            format!("{closed:?} {open:?} {:?} {:?}", h.last_t, h.ooo)
        });
        format!(
            "closed {closed:?} open {open:?} ooo {ooo:?} last {:?} hist {hist:?}",
            self.last(lw)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn series_fits_its_allocation_class() {
        // `Arc<Series>` adds 16 bytes of counts: 128 is an allocator size class (mimalloc's
        // and glibc's), 136 would take the next one (160 in mimalloc). 400,000 scraped series
        // × 32 bytes = 12 MiB per class step. Today: `Series` 112 = lock words 16 (lock byte,
        // flags, ref; newest timestamp) + labels 16 + `SeriesData` 80 (closed 8, open chunk 56,
        // rare box 8, newest sample's value 8); it was 144 (`SeriesData` 112, `XorChunk` 64).
        use std::mem::size_of;
        assert!(
            size_of::<Series>() + 16 <= 128,
            "Series is {} bytes",
            size_of::<Series>()
        );
        assert_eq!(
            (size_of::<SeriesData>(), size_of::<Option<OpenChunk>>()),
            (80, 56)
        );
    }

    #[test]
    fn open_chunk_range_is_read_from_the_chunk() {
        let files = HeadChunkFiles::in_memory();
        let (lw, mut d) = (SeriesRawMutex::new(1), SeriesData::default());
        assert!(d.open.is_none());
        for t in [1000, 1005, 1010] {
            assert_eq!(d.apply(&lw, t, 1.0, 7_200_000, 0, &files), Applied::InOrder);
        }
        let o = d.open.as_ref().unwrap();
        assert_eq!((o.min_t(), o.max_t()), (1000, 1010));
        assert_eq!((d.min_time(), d.max_time()), (1000, 1010));
        // A sample in the next block range cuts the chunk: the new one starts there.
        assert_eq!(
            d.apply(&lw, 7_200_000, 2.0, 7_200_000, 0, &files),
            Applied::InOrder
        );
        let o = d.open.as_ref().unwrap();
        assert_eq!((o.min_t(), o.max_t()), (7_200_000, 7_200_000));
        assert_eq!(d.closed.len(), 1);
        assert_eq!((d.closed[0].min_t, d.closed[0].max_t), (1000, 1010));
        // An empty chunk overlaps nothing.
        let empty = OpenChunk {
            chunk: XorChunk::new(),
        };
        assert_eq!((empty.min_t(), empty.max_t()), (i64::MAX, i64::MIN));
    }

    #[test]
    fn no_sample_is_stored_at_the_no_last_timestamp() {
        let files = HeadChunkFiles::in_memory();
        let (lw, mut d) = (SeriesRawMutex::new(1), SeriesData::default());
        assert_eq!(d.last(&lw), None);
        let check = |d: &mut SeriesData, window: i64| {
            let want = Applied::RejectOutOfBounds;
            assert_eq!(d.check(&lw, None, NO_LAST, 1.0, window, &files), want);
            assert_eq!(d.apply(&lw, NO_LAST, 1.0, 1000, window, &files), want);
        };
        check(&mut d, 0);
        check(&mut d, i64::MAX);
        assert!(d.is_empty());
        // The timestamp after it is an ordinary one.
        let first = NO_LAST + 1;
        assert_eq!(d.apply(&lw, first, 1.0, 1000, 0, &files), Applied::InOrder);
        assert_eq!(d.last(&lw), Some((first, 1f64.to_bits())));
        check(&mut d, 0);
        check(&mut d, i64::MAX);
        // Replay's runs leave it out too.
        let mut applied = Vec::new();
        let run = [
            (NO_LAST, 5.0),
            (first + 1, 2.0),
            (NO_LAST, 5.0),
            (first + 2, 3.0),
        ];
        d.apply_run(&lw, &run, 1000, i64::MAX, &files, |t| applied.push(t));
        assert_eq!(applied, vec![first + 1, first + 2]);
        assert_eq!(d.last(&lw), Some((first + 2, 3f64.to_bits())));
        assert!(d.ooo().is_empty());
    }

    #[test]
    fn series_ref_round_trips_through_32_bits() {
        let l = Labels::from_pairs(&[("a", "b")]);
        let s = Series::new(u64::from(u32::MAX), SeriesLabels::new(&l));
        assert_eq!(s.id(), u64::from(u32::MAX));
    }

    #[test]
    fn stripes_find_series_by_labels_and_ref_across_growth() {
        let st = StripeSeries::default();
        let make = |id: u64| {
            let l = Labels::from_pairs(&[("__name__", "m"), ("i", &id.to_string())]);
            let s = Arc::new(Series::new(id, SeriesLabels::new(&l)));
            (l, s)
        };
        // Enough series that every stripe's tables grow several times.
        let n = 20_000u64;
        for id in 0..n {
            let (l, s) = make(id);
            let h = l.stable_hash();
            st.hash_stripe(h).write().insert_hash(h, s.clone());
            st.insert_ref(s);
        }
        let check = |id: u64, present: bool| {
            let (l, _) = make(id);
            let by_labels = st.get_by_labels(l.stable_hash(), &l).map(|s| s.id());
            let by_ref = st.get(id).map(|s| s.id());
            let want = present.then_some(id);
            assert_eq!((by_labels, by_ref), (want, want), "series {id}");
        };
        for id in 0..n {
            check(id, true);
        }
        check(n, false);
        // Remove every third; the rest stay findable.
        for id in (0..n).step_by(3) {
            let s = st.get(id).unwrap();
            let h = s.hash();
            st.hash_stripe(h).write().remove_hash(h, &s);
            assert!(st.ref_stripe(id).write().remove(&id).is_some());
        }
        for id in 0..n {
            check(id, id % 3 != 0);
        }
        let total: usize = st.hash_stripes.iter().map(|s| s.read().len()).sum();
        assert_eq!(total, st.all().len());
        assert_eq!(total as u64, n - n.div_ceil(3));
    }

    #[test]
    fn chunks_cut_at_target_size_and_range_boundaries() {
        let files = HeadChunkFiles::in_memory();
        let (lw, mut d) = (SeriesRawMutex::new(1), SeriesData::default());
        for t in 0..300 {
            assert_eq!(d.apply(&lw, t, t as f64, 1000, 0, &files), Applied::InOrder);
        }
        let ranges: Vec<_> = d.closed.iter().map(|c| (c.min_t, c.max_t)).collect();
        assert_eq!(ranges, vec![(0, 119), (120, 239)]);
        assert_eq!(d.closed.capacity(), 2);
        assert_eq!(d.open.as_ref().map(|o| o.chunk.num_samples()), Some(60));
        // Closed chunks read back exactly.
        let mut buf = Vec::new();
        files.read_into(d.closed[1].r, &mut buf).unwrap();
        let mut it = XorIterator::new(&buf);
        let mut got = Vec::new();
        while it.next() {
            got.push(it.at().0);
        }
        assert_eq!(got, (120..240).collect::<Vec<_>>());
        assert_eq!(d.value_at(130, &files), Some(130f64.to_bits()));
        assert_eq!(d.value_at(250, &files), Some(250f64.to_bits()));
        // Crossing t=1000 cuts even though the open chunk is small.
        let (lw, mut d) = (SeriesRawMutex::new(1), SeriesData::default());
        for t in [990, 995, 1000, 1005] {
            d.apply(&lw, t, 0.0, 1000, 0, &files);
        }
        assert_eq!(d.num_chunks(), 2);
        assert_eq!((d.closed[0].min_t, d.closed[0].max_t), (990, 995));
        let o = d.open.as_ref().unwrap();
        assert_eq!((o.min_t(), o.max_t()), (1000, 1005));
        // Truncation drops whole chunks below the cut.
        d.truncate(1000);
        assert!(d.closed.is_empty());
        assert_eq!((d.min_time(), d.max_time()), (1000, 1005));
        d.truncate(2000);
        assert!(d.is_empty());
        assert_eq!(d.last(&lw), Some((1005, 0f64.to_bits())));
    }

    #[test]
    fn out_of_order_and_rejections() {
        let files = HeadChunkFiles::in_memory();
        let (lw, mut d) = (SeriesRawMutex::new(1), SeriesData::default());
        let check = |d: &mut SeriesData, t: i64, v: f64, window: i64, want: Applied| {
            assert_eq!(
                d.check(&lw, None, t, v, window, &files),
                want,
                "check t={t}"
            );
            assert_eq!(
                d.apply(&lw, t, v, 10_000, window, &files),
                want,
                "apply t={t}"
            );
        };
        check(&mut d, 100, 1.0, 0, Applied::InOrder);
        check(&mut d, 100, 1.0, 0, Applied::Duplicate);
        check(&mut d, 100, 2.0, 0, Applied::RejectDuplicate);
        check(&mut d, 99, 1.0, 0, Applied::RejectOutOfOrder);
        check(&mut d, 200, 1.0, 50, Applied::InOrder);
        check(&mut d, 149, 1.0, 50, Applied::RejectTooOld);
        check(&mut d, 150, 1.5, 50, Applied::OutOfOrder);
        check(&mut d, 150, 1.5, 50, Applied::Duplicate);
        check(&mut d, 150, 2.5, 50, Applied::RejectDuplicate);
        check(&mut d, 160, 1.6, 50, Applied::OutOfOrder);
        assert_eq!(d.ooo(), [(150, 1.5), (160, 1.6)]);
        assert_eq!((d.min_time(), d.max_time()), (100, 200));
        // Pending samples of the caller's batch count as the newest.
        assert_eq!(
            d.check(&lw, Some((300, 0)), 250, 0.0, 0, &files),
            Applied::RejectOutOfOrder
        );
    }

    #[test]
    fn duplicates_in_closed_chunks_are_found() {
        let files = HeadChunkFiles::in_memory();
        let (lw, mut d) = (SeriesRawMutex::new(1), SeriesData::default());
        for t in 0..200 {
            d.apply(&lw, t * 10, t as f64, 1 << 40, 0, &files);
        }
        assert_eq!(d.closed.len(), 1);
        // t=500 is in the closed chunk: same value is a duplicate, another is rejected.
        assert_eq!(
            d.check(&lw, None, 500, 50.0, 5000, &files),
            Applied::Duplicate
        );
        assert_eq!(
            d.apply(&lw, 500, 51.0, 1 << 40, 5000, &files),
            Applied::RejectDuplicate
        );
        assert_eq!(
            d.apply(&lw, 505, 1.0, 1 << 40, 5000, &files),
            Applied::OutOfOrder
        );
    }
}
