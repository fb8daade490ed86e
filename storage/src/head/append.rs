//! The head appender: validate on `append`, then on `commit` log WAL records and apply to memory.

use super::Head;
use super::histogram::PENDING_HISTOGRAM_BITS;
use super::series::{Applied, Series, SeriesData, U64Map};
use crate::error::{Error, Result};
use crate::histogram::FloatHistogram;
use crate::interface::{Appender, HeldSeries, SeriesHandle};
use crate::model::{Labels, SeriesRef, Timestamp};
use crate::wal::record::RefHistogram;
use crate::wal::{RefSample, RefSeries, WalRecord, record};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A batch of samples for the head. One per task; reusable after commit/rollback.
pub(crate) struct HeadAppender {
    head: Arc<Head>,
    /// Distinct series of the batch (held so truncation cannot drop them meanwhile).
    series: Vec<Arc<Series>>,
    /// Series ref → index in `series`, and each one's newest pending sample `(t, bits)` if in
    /// order.
    batch: BatchIndex,
    /// `(index in series, t, v)` in append order. An index with [`HIST_FLAG`] set is a
    /// histogram sample: `v`'s bits are its index in `hists`.
    samples: Vec<(u32, Timestamp, f64)>,
    /// Histogram samples of the batch.
    hists: Vec<FloatHistogram>,
    ref_hists: Vec<RefHistogram>,
    // Scratch buffers reused across commits.
    ref_samples: Vec<RefSample>,
    ref_series: Vec<RefSeries>,
    buf_series: Vec<u8>,
    /// Encoded histogram records.
    buf_samples: Vec<u8>,
    /// The batch's samples and histogram records, in WAL order.
    parts: Vec<Part>,
    /// Indexes in `series` of the series whose WAL series record a commit writes.
    unlogged: Vec<usize>,
    /// Indexes in `samples` grouped by series (in `series` order; append order within one),
    /// and where each series' group starts: apply's scratch.
    by_series: Vec<u32>,
    series_starts: Vec<u32>,
    /// Whether a commit applies the WAL's sync policy (false: page cache only, see
    /// [`crate::Appendable::appender_unsynced`]).
    sync: bool,
    /// A sample of the batch took [`HeadAppender::append_float`]'s lock-free path, so the
    /// commit walks the batch for series dropped meanwhile ([`HeadAppender::rehome_removed`]).
    unlocked: bool,
}

/// Samples per WAL record: at most 28 bytes each, so a record stays far below the 64 MiB cap.
const SAMPLES_PER_RECORD: usize = 1 << 20;
const _: () = assert!(SAMPLES_PER_RECORD <= crate::wal::MAX_SAMPLES_PER_RECORD);

/// One WAL record of a commit.
enum Part {
    /// A samples record: these samples of [`HeadAppender::ref_samples`], handed to the WAL
    /// as they are (it encodes them for the segment).
    Samples(std::ops::Range<usize>),
    /// A histogram record: these bytes of [`HeadAppender::buf_samples`].
    Histograms(std::ops::Range<usize>),
}

impl Part {
    /// The record for the WAL, given [`HeadAppender::ref_samples`] and
    /// [`HeadAppender::buf_samples`].
    fn record<'a>(&self, samples: &'a [RefSample], hists: &'a [u8]) -> Option<WalRecord<'a>> {
        match self {
            Part::Samples(r) => samples.get(r.clone()).map(WalRecord::Samples),
            Part::Histograms(r) => hists.get(r.clone()).map(WalRecord::Encoded),
        }
    }
}
/// Marks a histogram entry in [`HeadAppender::samples`] (series indexes stay below it: a
/// batch holds far fewer than 2^31 series).
const HIST_FLAG: u32 = 1 << 31;
/// Histogram samples per WAL record (each at most a few KiB: buckets are bounded at ingest).
const HISTOGRAMS_PER_RECORD: usize = 1 << 12;

/// Series per WAL record (labels are bounded at ingest, so this stays below the cap too).
const SERIES_PER_RECORD: usize = 1000;

/// Series ref → index of the series in a batch, with the batch's newest pending in-order sample
/// of each.
///
/// A direct-mapped table on the ref's low bits, not a hash map: the head hands out refs densely
/// and a request's or a target's series were mostly created together, so a batch's refs land
/// in nearby 4-byte slots. The hash map's 40-byte buckets, one scattered line per series, took
/// most of [`HeadAppender::append_float`]'s time in their stores (`benches/README.md`,
/// "ingest7" and "ingest8"). A ref whose slot holds another ref goes to `spill`.
///
/// Invariant: a ref is in the batch iff its slot's entry has that ref, or its slot is not empty
/// and `spill` maps it. So an empty slot answers "not in the batch" alone.
#[derive(Default)]
struct BatchIndex {
    /// Slot `ref & (len - 1)` → 1 + index in `entries` of a ref with that slot; 0: none. Empty,
    /// or a power of two long, at least twice `entries` unless [`BatchIndex::MAX_SLOTS`] long.
    slots: Vec<u32>,
    /// By batch index: the series ref and its newest pending in-order sample `(t, bits)`.
    entries: Vec<(u64, Option<(Timestamp, u64)>)>,
    /// Refs whose slot is taken by another ref, and refs aliased to an entry
    /// ([`BatchIndex::alias`]).
    spill: U64Map<u32>,
}

impl BatchIndex {
    const MIN_SLOTS: usize = 256;
    /// 4 MiB of slots; larger batches spill.
    const MAX_SLOTS: usize = 1 << 20;

    #[inline]
    fn slot(&self, id: u64) -> usize {
        (id as usize) & self.slots.len().wrapping_sub(1)
    }

    /// The batch index of series ref `id`.
    #[inline]
    fn find(&self, id: u64) -> Option<u32> {
        let v = *self.slots.get(self.slot(id))?;
        if v == 0 {
            return None;
        }
        match self.entries.get(v as usize - 1) {
            Some(&(e, _)) if e == id => Some(v - 1),
            _ => self.spill.get(&id).copied(),
        }
    }

    /// The newest pending in-order sample of batch index `idx`.
    #[inline]
    fn newest(&self, idx: u32) -> Option<(Timestamp, u64)> {
        self.entries.get(idx as usize).and_then(|e| e.1)
    }

    fn set_newest(&mut self, idx: u32, newest: Option<(Timestamp, u64)>) {
        if let Some(e) = self.entries.get_mut(idx as usize) {
            e.1 = newest;
        }
    }

    /// Adds `id`, which [`BatchIndex::find`] does not know, as the next batch index.
    fn add(&mut self, id: u64, newest: Option<(Timestamp, u64)>) -> u32 {
        let idx = self.entries.len() as u32;
        self.entries.push((id, newest));
        if self.entries.len() * 2 > self.slots.len() && self.slots.len() < Self::MAX_SLOTS {
            self.rebuild(self.entries.len() * 2);
        } else {
            self.place(id, idx);
        }
        idx
    }

    fn place(&mut self, id: u64, idx: u32) {
        let k = self.slot(id);
        match self.slots.get_mut(k) {
            Some(v) if *v == 0 => *v = idx + 1,
            _ => {
                self.spill.insert(id, idx);
            }
        }
    }

    /// Makes `id` (not in the batch) find batch index `idx` too (a series re-homed at commit).
    fn alias(&mut self, id: u64, idx: u32) {
        let k = self.slot(id);
        if let Some(v) = self.slots.get_mut(k)
            && *v == 0
        {
            *v = idx + 1;
        }
        self.spill.insert(id, idx);
    }

    /// Room for `series` more entries without a rebuild.
    fn reserve(&mut self, series: usize) {
        self.entries.reserve(series);
        let want = self.entries.len().saturating_add(series).saturating_mul(2);
        if want > self.slots.len() && self.slots.len() < Self::MAX_SLOTS {
            self.rebuild(want);
        }
    }

    /// Re-places every entry and alias in a table of at least `want` slots.
    fn rebuild(&mut self, want: usize) {
        let entries = &self.entries;
        let aliases: Vec<(u64, u32)> = self
            .spill
            .iter()
            .filter(|&(&k, &v)| entries.get(v as usize).is_none_or(|e| e.0 != k))
            .map(|(&k, &v)| (k, v))
            .collect();
        let len = want
            .next_power_of_two()
            .clamp(Self::MIN_SLOTS, Self::MAX_SLOTS);
        self.slots.clear();
        self.slots.resize(len, 0);
        self.spill.clear();
        for i in 0..self.entries.len() {
            if let Some(&(id, _)) = self.entries.get(i) {
                self.place(id, i as u32);
            }
        }
        for (k, v) in aliases {
            self.alias(k, v);
        }
    }

    /// Empties the batch (the table keeps its size): clears only the slots its refs used.
    fn clear(&mut self) {
        let mask = self.slots.len().wrapping_sub(1);
        for &(id, _) in &self.entries {
            if let Some(v) = self.slots.get_mut(id as usize & mask) {
                *v = 0;
            }
        }
        if !self.spill.is_empty() {
            for &id in self.spill.keys() {
                if let Some(v) = self.slots.get_mut(id as usize & mask) {
                    *v = 0;
                }
            }
            self.spill.clear();
        }
        self.entries.clear();
    }
}

/// Series replay and the snapshot capture lock at once through [`apply_group`]: about as many
/// memory misses as a core keeps in flight.
pub(crate) const PREFETCH: usize = 16;
/// Series [`HeadAppender::commit`]'s apply locks at once: the most [`apply_group`] takes. A
/// commit's series were last touched before its WAL sync, so their lines and open chunks'
/// tails miss again; 32 at a time took about 6 % less server CPU than 16 in three loaded A/B
/// sets of `measure`'s ingest (`benches/README.md`, "ingest6").
pub(crate) const APPLY_GROUP: usize = 32;

/// Reads each of `series`' id and lock word (at most [`APPLY_GROUP`]; more are ignored) with
/// plain loads, so that their memory misses overlap, where each series' `lock()` (a locked
/// instruction, which waits for every earlier load) would miss alone. Call it on the next
/// series to append to or apply into. Returns a sum of what it read, to keep the loads.
pub(crate) fn touch<'a>(series: impl IntoIterator<Item = &'a Series>) -> usize {
    series.into_iter().take(APPLY_GROUP).fold(0usize, |sum, s| {
        sum.wrapping_add(s.id() as usize + usize::from(s.data.is_locked()))
    })
}

/// Calls `apply(k, &group[k], data)` for each of `group` (at most [`APPLY_GROUP`]) under the lock
/// of its series (`series`), so that the group's memory misses overlap instead of each series
/// waiting for its own: the group's series are read with plain loads ([`touch`]), locked with
/// `try_lock`, and their open chunks' first and last bytes read (sample count and where samples
/// go) before anything is applied. `try_lock` never blocks, so holding a group's locks cannot
/// deadlock; a series locked elsewhere is applied after the group's locks are released, in
/// order with the others otherwise (`benches/README.md`, "ingest3" and "startup3").
pub(crate) fn apply_group<'s, T>(
    group: &'s [T],
    series: impl Fn(&'s T) -> &'s Series,
    mut apply: impl FnMut(usize, &'s T, &mut SeriesData),
) {
    type Guard<'a> = super::series_lock::SeriesGuard<'a, SeriesData>;
    let group = group.get(..APPLY_GROUP).unwrap_or(group);
    let mut guards: [Option<Guard<'s>>; APPLY_GROUP] = [const { None }; APPLY_GROUP];
    let mut sum = touch(group.iter().map(&series));
    for (x, g) in group.iter().zip(guards.iter_mut()) {
        *g = series(x).data.try_lock();
    }
    for d in guards.iter().flatten() {
        if let Some(o) = &d.open {
            let b = o.chunk.bytes();
            let edge = |x: Option<&u8>| x.copied().map_or(0, usize::from);
            sum = sum.wrapping_add(edge(b.first()) + edge(b.last()));
        }
    }
    std::hint::black_box(sum);
    let mut busy = 0u32;
    for (k, (x, g)) in group.iter().zip(guards.iter_mut()).enumerate() {
        match g.take() {
            Some(mut d) => apply(k, x, &mut d),
            None => busy |= 1 << k,
        }
    }
    for (k, x) in group.iter().enumerate() {
        if busy & (1 << k) != 0 {
            apply(k, x, &mut series(x).data.lock());
        }
    }
}

impl HeadAppender {
    /// A new appender on `head`.
    pub(crate) fn new(head: Arc<Head>) -> Self {
        Self {
            head,
            series: Vec::new(),
            batch: BatchIndex::default(),
            samples: Vec::new(),
            hists: Vec::new(),
            ref_hists: Vec::new(),
            ref_samples: Vec::new(),
            ref_series: Vec::new(),
            buf_series: Vec::new(),
            buf_samples: Vec::new(),
            parts: Vec::new(),
            unlogged: Vec::new(),
            by_series: Vec::new(),
            series_starts: Vec::new(),
            sync: true,
            unlocked: false,
        }
    }

    /// An appender whose commits skip the WAL's sync policy.
    pub(crate) fn new_unsynced(head: Arc<Head>) -> Self {
        Self {
            sync: false,
            ..Self::new(head)
        }
    }

    fn clear(&mut self) {
        self.unlocked = false;
        self.series.clear();
        self.batch.clear();
        self.samples.clear();
        self.hists.clear();
    }

    /// The batch index of series `s`, adding it; and its newest pending sample.
    fn batch_index(&mut self, s: &Arc<Series>) -> (u32, Option<(Timestamp, u64)>) {
        match self.batch.find(s.id()) {
            Some(i) => (i, self.batch.newest(i)),
            None => {
                let idx = self.batch.add(s.id(), None);
                self.series.push(s.clone());
                (idx, None)
            }
        }
    }

    fn reject(&self, a: Applied) -> Error {
        let m = &self.head.metrics;
        let (c, e) = match a {
            Applied::RejectDuplicate => (&m.rejected_duplicate, Error::DuplicateSample),
            Applied::RejectOutOfOrder => (&m.rejected_out_of_order, Error::OutOfOrder),
            Applied::RejectTooOld => (&m.rejected_too_old, Error::TooOld),
            Applied::RejectOutOfBounds => (&m.rejected_out_of_bounds, Error::OutOfBounds),
            Applied::InOrder | Applied::OutOfOrder | Applied::Duplicate => {
                unreachable!("BUG: reject() called for an accepted sample ({a:?})")
            }
        };
        c.fetch_add(1, Ordering::Relaxed);
        e
    }

    /// Appends a float sample to `s` (found by labels, ref or handle): checks it against the
    /// series' committed data and this batch's pending sample. `Ok(None)` when the head has
    /// dropped `s` (only a series reached through a handle can be: the maps hand out only
    /// series they hold) and this sees it here.
    ///
    /// The common case takes no lock: no pending sample and `t` newer than the series' newest
    /// ([`Series::in_order_unlocked`], the verdict `check` would give). It does not look at
    /// the removed flag (whose lock-free read could miss a concurrent drop: the drop's mark and
    /// the upgrade of a handle are a store-then-load pair on each side); the commit does, once
    /// for the batch, after a fence ([`HeadAppender::rehome_removed`]). A locked instruction per
    /// sample was about 10 % of remote-write ingest's CPU (`benches/README.md`, "ingest6").
    ///
    /// `lock_free`: whether the common case may skip the lock. Scrapes (by handle) do not: their
    /// commits run on other threads than their appends, where the commit's walk of the batch
    /// (one memory miss per series) cost more than the lock saved (`benches/README.md`, "lead
    /// (2026-12-07 session 17)").
    fn append_float(
        &mut self,
        s: Arc<Series>,
        t: Timestamp,
        v: f64,
        lock_free: bool,
    ) -> Result<Option<SeriesRef>> {
        let id = s.id();
        let (window, files) = (self.head.opts.ooo_window, &self.head.chunk_files);
        let found = self.batch.find(id);
        let pending = found.and_then(|i| self.batch.newest(i));
        let verdict = if lock_free && pending.is_none() && s.in_order_unlocked(t) {
            self.unlocked = true;
            Applied::InOrder
        } else {
            let d = s.data.lock();
            // A series in the batch is held by it, so only a new one can have been dropped.
            if found.is_none() && s.removed().load(Ordering::Relaxed) {
                return Ok(None);
            }
            d.check(s.lock_word(), pending, t, v, window, files)
        };
        // `Some(newest)`: accepted, and the batch's newest in-order sample becomes `newest`.
        let accepted = match verdict {
            Applied::InOrder => {
                // Half a block range behind the head's newest sample is out of bounds, unless the
                // out-of-order window admits it (Prometheus routes such samples to its OOO head;
                // ours keeps them in the series, and cuts below the min valid time become
                // overlapping blocks).
                if t < self.head.appendable_min_valid_time() && !self.head.accepts_old(t) {
                    Err(Applied::RejectOutOfBounds)
                } else {
                    Ok(Some((t, v.to_bits())))
                }
            }
            Applied::OutOfOrder => {
                if t < self.head.min_valid_time() && !self.head.accepts_old(t) {
                    Err(Applied::RejectOutOfBounds)
                } else {
                    Ok(pending)
                }
            }
            Applied::Duplicate => return Ok(Some(SeriesRef(id))),
            rejected => Err(rejected),
        };
        let newest = match accepted {
            Ok(n) => n,
            Err(a) => return Err(self.reject(a)),
        };
        let idx = match found {
            Some(i) => {
                self.batch.set_newest(i, newest);
                i
            }
            None => {
                // The batch keeps `s` (no second reference count round trip per sample).
                let i = self.batch.add(id, newest);
                self.series.push(s);
                i
            }
        };
        self.samples.push((idx, t, v));
        Ok(Some(SeriesRef(id)))
    }

    /// [`HeadAppender::append_float`] for a series the head's maps handed out (never dropped
    /// while held).
    fn append_found(&mut self, s: Arc<Series>, t: Timestamp, v: f64) -> Result<SeriesRef> {
        match self.append_float(s, t, v, true)? {
            Some(r) => Ok(r),
            None => unreachable!("BUG: a series held from the head's maps was dropped"),
        }
    }

    fn lookup(&self, hint: Option<SeriesRef>, labels: &Labels) -> Result<Arc<Series>> {
        if let Some(r) = hint
            && let Some(s) = self.head.series.get(r.0)
            && s.labels_eq(labels)
        {
            return Ok(s);
        }
        validate_labels(labels)?;
        Ok(self.head.get_or_create(labels, None)?.0)
    }
}

/// Checks that labels are non-empty, sorted, unique, with non-empty names and values.
pub(crate) fn validate_labels(labels: &Labels) -> Result<()> {
    if labels.is_empty() {
        return Err(Error::InvalidLabels("empty label set".into()));
    }
    let s = labels.as_slice();
    for l in s {
        if l.name.is_empty() || l.value.is_empty() {
            return Err(Error::InvalidLabels(format!(
                "empty name or value in {labels}"
            )));
        }
    }
    if s.windows(2)
        .any(|w| matches!(w, [a, b] if a.name >= b.name))
    {
        return Err(Error::InvalidLabels(format!(
            "unsorted or duplicate names in {labels}"
        )));
    }
    Ok(())
}

impl Appender for HeadAppender {
    fn append(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef> {
        if self.head.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let s = self.lookup(hint, labels)?;
        self.append_found(s, t, v)
    }

    fn append_ref(&mut self, series: SeriesRef, t: Timestamp, v: f64) -> Result<Option<SeriesRef>> {
        if self.head.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        // Refs are never reused within a head: a series found under the ref is the one the
        // caller's ref came from.
        match self.head.series.get(series.0) {
            Some(s) => self.append_found(s, t, v).map(Some),
            None => Ok(None),
        }
    }

    fn handle(&self, series: SeriesRef) -> SeriesHandle {
        match self.head.series.get(series.0) {
            Some(s) => SeriesHandle {
                sref: series,
                series: Arc::downgrade(&s),
            },
            None => SeriesHandle::from_ref(series),
        }
    }

    fn append_handle(
        &mut self,
        series: &SeriesHandle,
        t: Timestamp,
        v: f64,
    ) -> Result<Option<SeriesRef>> {
        if self.head.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        // No map, no lock but the series' own: the handle points at the series. A dropped
        // series does not upgrade, or (dropped meanwhile) is seen as removed under its lock.
        match series.series.upgrade() {
            Some(s) => self.append_float(s, t, v, false),
            None => Ok(None),
        }
    }

    fn append_held(
        &mut self,
        series: HeldSeries,
        t: Timestamp,
        v: f64,
    ) -> Result<Option<SeriesRef>> {
        if self.head.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        // As `append_handle`, with the upgrade done by `hold`: a series dropped since is seen
        // as removed under its lock (`append_float`).
        match series.series {
            Some(s) => self.append_float(s, t, v, true),
            None => self.append_ref(series.series_ref(), t, v),
        }
    }

    fn append_histogram(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        h: &FloatHistogram,
    ) -> Result<SeriesRef> {
        if self.head.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        h.check_layout().map_err(Error::InvalidArgument)?;
        let max = crate::histogram::MAX_BUCKETS;
        if h.positive_buckets.len() + h.negative_buckets.len() > max
            || h.positive_spans.len().max(h.negative_spans.len()) > max
            || h.custom_values.len() > max
        {
            return Err(Error::InvalidArgument(format!(
                "histogram has more than {max} buckets, spans or custom bounds"
            )));
        }
        let s = self.lookup(hint, labels)?;
        let id = s.id();
        let (idx, pending) = self.batch_index(&s);
        if idx >= HIST_FLAG {
            return Err(Error::InvalidArgument(
                "too many series in one batch".into(),
            ));
        }
        let window = self.head.opts.ooo_window;
        let verdict = s.data.lock().check_histogram(
            s.lock_word(),
            pending,
            t,
            h,
            window,
            &self.head.chunk_files,
        );
        match verdict {
            Applied::InOrder => {
                if t < self.head.appendable_min_valid_time() && !self.head.accepts_old(t) {
                    return Err(self.reject(Applied::RejectOutOfBounds));
                }
                self.batch
                    .set_newest(idx, Some((t, PENDING_HISTOGRAM_BITS)));
            }
            // As for floats: older samples within the out-of-order window.
            Applied::OutOfOrder => {
                if t < self.head.min_valid_time() && !self.head.accepts_old(t) {
                    return Err(self.reject(Applied::RejectOutOfBounds));
                }
            }
            Applied::Duplicate => return Ok(SeriesRef(id)),
            rejected => return Err(self.reject(rejected)),
        }
        let hi = self.hists.len() as u64;
        self.hists.push(h.clone());
        self.samples.push((idx | HIST_FLAG, t, f64::from_bits(hi)));
        Ok(SeriesRef(id))
    }

    fn append_ct_zero(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        ct: Timestamp,
    ) -> Result<SeriesRef> {
        crate::interface::check_ct(t, ct)?;
        if self.head.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let s = self.lookup(hint, labels)?;
        let id = s.id();
        let (idx, pending) = self.batch_index(&s);
        // Window 0: a created timestamp is never out of order. Refusals are not counted as
        // rejected samples (the series having newer data is the usual case).
        let verdict =
            s.data
                .lock()
                .check(s.lock_word(), pending, ct, 0.0, 0, &self.head.chunk_files);
        match verdict {
            Applied::InOrder if ct >= self.head.appendable_min_valid_time() => {
                self.batch.set_newest(idx, Some((ct, 0f64.to_bits())));
                self.samples.push((idx, ct, 0.0));
                Ok(SeriesRef(id))
            }
            Applied::Duplicate => Ok(SeriesRef(id)),
            _ => Err(Error::OutOfOrder),
        }
    }

    fn append_histogram_ct_zero(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        ct: Timestamp,
        h: &FloatHistogram,
    ) -> Result<SeriesRef> {
        crate::interface::check_ct(t, ct)?;
        if self.head.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let zero = h.ct_zero();
        let s = self.lookup(hint, labels)?;
        let id = s.id();
        let (idx, pending) = self.batch_index(&s);
        if idx >= HIST_FLAG {
            return Err(Error::InvalidArgument(
                "too many series in one batch".into(),
            ));
        }
        match s.data.lock().check_histogram(
            s.lock_word(),
            pending,
            ct,
            &zero,
            0,
            &self.head.chunk_files,
        ) {
            Applied::InOrder if ct >= self.head.appendable_min_valid_time() => {}
            Applied::Duplicate => return Ok(SeriesRef(id)),
            _ => return Err(Error::OutOfOrder),
        }
        self.batch
            .set_newest(idx, Some((ct, PENDING_HISTOGRAM_BITS)));
        let hi = self.hists.len() as u64;
        self.hists.push(zero);
        self.samples.push((idx | HIST_FLAG, ct, f64::from_bits(hi)));
        Ok(SeriesRef(id))
    }

    fn reserve(&mut self, series: usize, samples: usize) {
        self.batch.reserve(series);
        self.series.reserve(series);
        self.samples.reserve(samples);
    }

    fn commit(&mut self) -> Result<()> {
        if self.samples.is_empty() {
            self.clear();
            return Ok(());
        }
        if self.head.closed.load(Ordering::Acquire) {
            self.clear();
            return Err(Error::Closed);
        }
        if let Err(e) = self.rehome_removed() {
            self.clear();
            return Err(e);
        }
        // Consecutive float samples become samples records and consecutive histogram samples
        // histogram records, in append order, so replay applies them in the order `apply`
        // does. Records are capped (`MAX_RECORD_LEN` is 64 MiB): a large batch becomes several
        // records of one WAL batch, still written with one write and synced once.
        self.buf_samples.clear();
        self.parts.clear();
        self.ref_samples.clear();
        self.ref_samples.reserve(self.samples.len());
        self.ref_hists.clear();
        let series_id = |idx: u32| {
            self.series
                .get((idx & !HIST_FLAG) as usize)
                .map_or(0, |s| s.id())
        };
        // Start of the float run not yet in `parts`.
        let mut run = 0;
        let flush_hists =
            |hists: &mut Vec<RefHistogram>, buf: &mut Vec<u8>, parts: &mut Vec<Part>| {
                let at = buf.len();
                record::encode_histograms(hists, buf);
                parts.push(Part::Histograms(at..buf.len()));
                hists.clear();
            };
        for &(idx, t, v) in &self.samples {
            if idx & HIST_FLAG == 0 {
                if !self.ref_hists.is_empty() {
                    flush_hists(&mut self.ref_hists, &mut self.buf_samples, &mut self.parts);
                }
                self.ref_samples.push(RefSample {
                    series: series_id(idx),
                    t,
                    v,
                });
                if self.ref_samples.len() - run == SAMPLES_PER_RECORD {
                    self.parts.push(Part::Samples(run..self.ref_samples.len()));
                    run = self.ref_samples.len();
                }
            } else {
                if self.ref_samples.len() > run {
                    self.parts.push(Part::Samples(run..self.ref_samples.len()));
                    run = self.ref_samples.len();
                }
                let Some(h) = self.hists.get(v.to_bits() as usize) else {
                    unreachable!("BUG: histogram entry without its histogram");
                };
                self.ref_hists.push(RefHistogram {
                    series: series_id(idx),
                    t,
                    h: h.clone(),
                });
                if self.ref_hists.len() == HISTOGRAMS_PER_RECORD {
                    flush_hists(&mut self.ref_hists, &mut self.buf_samples, &mut self.parts);
                }
            }
        }
        if self.ref_samples.len() > run {
            self.parts.push(Part::Samples(run..self.ref_samples.len()));
        }
        if !self.ref_hists.is_empty() {
            flush_hists(&mut self.ref_hists, &mut self.buf_samples, &mut self.parts);
        }
        let head = self.head.clone();
        let ticket = {
            let mut wal = head.wal.lock();
            if let Some(wal) = wal.as_mut() {
                // Recover from a failed write or sync first: if that drops written batches,
                // series records in them are gone and every series logs its record again.
                if let Err(e) = wal.recover() {
                    self.clear();
                    return Err(e);
                }
                if wal.take_lost() {
                    for s in head.series.all() {
                        s.logged().store(false, Ordering::Release);
                    }
                }
                self.ref_series.clear();
                self.unlogged.clear();
                for (i, s) in self.series.iter().enumerate() {
                    if !s.logged().load(Ordering::Acquire) {
                        self.unlogged.push(i);
                        let mut labels = Labels::empty();
                        s.labels_into(&mut labels);
                        self.ref_series.push(RefSeries {
                            series: s.id(),
                            labels,
                        });
                    }
                }
                self.buf_series.clear();
                let mut series_bounds = Vec::new();
                for chunk in self.ref_series.chunks(SERIES_PER_RECORD) {
                    record::encode_series(chunk, &mut self.buf_series);
                    series_bounds.push(self.buf_series.len());
                }
                let mut records: Vec<WalRecord<'_>> = Vec::new();
                let mut start = 0;
                for &end in &series_bounds {
                    records.extend(self.buf_series.get(start..end).map(WalRecord::Encoded));
                    start = end;
                }
                // Samples records are encoded against the segment's earlier samples, so the
                // WAL encodes them, from the samples, in segment order, under its lock.
                let (samples, hists) = (&self.ref_samples, &self.buf_samples);
                records.extend(self.parts.iter().filter_map(|p| p.record(samples, hists)));
                let ticket = match wal.log_batch(&records, self.sync) {
                    Ok(t) => t,
                    Err(e) => {
                        self.clear();
                        return Err(e);
                    }
                };
                // Lowered by `Unapplied`'s drop below, once applied or failed.
                head.unapplied.fetch_add(1, Ordering::AcqRel);
                // Written, not yet synced: later batches (which come after this one in the WAL)
                // need not repeat the records. Should the sync fail, the recovery that drops
                // this batch makes every series log its record again (`take_lost` above).
                // Only the series just logged: storing into every series' line on every commit
                // would make other cores re-read them.
                for &i in &self.unlogged {
                    if let Some(s) = self.series.get(i) {
                        s.logged().store(true, Ordering::Release);
                    }
                }
                Some(ticket)
            } else {
                None
            }
        };
        let _unapplied = ticket.is_some().then(|| Unapplied(&head));
        // Wait for the sync outside the WAL's lock, so that concurrent commits write meanwhile
        // and share one sync (group commit). Nothing is applied before it is durable.
        if let Some(ticket) = ticket
            && let Err(e) = ticket.wait()
        {
            self.clear();
            return Err(e);
        }
        self.apply();
        self.clear();
        Ok(())
    }

    fn rollback(&mut self) {
        self.clear();
    }
}

/// Lowers [`Head::unapplied`] when a logged batch is applied or fails.
struct Unapplied<'a>(&'a Head);

impl Drop for Unapplied<'_> {
    fn drop(&mut self) {
        self.0.unapplied.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HeadAppender {
    /// Moves the batch's samples off series the head dropped after they joined the batch
    /// (before the WAL sees them), to the head's series of the same labels (created if none).
    ///
    /// [`HeadAppender::append_float`]'s lock-free path adds a series without reading its removed
    /// flag under its lock. The head's drop (`Head::truncate`) marks the series, then (after a
    /// `SeqCst` fence) reads its reference count; an appender took its reference (a handle's
    /// upgrade, an atomic write to the count) before adding it, and this fence comes after.
    /// With a `SeqCst` fence on both sides, at least one sees the other: either the drop sees
    /// the batch's reference and keeps the series (clearing its mark, under the series' lock),
    /// or the load below sees the mark. A mark seen without the lock may be such a passing one,
    /// so it is read again under the lock, where the drop's verdict is final. A series the
    /// batch keeps cannot be dropped later: its reference stays counted until the apply.
    ///
    /// The samples keep their verdicts: the apply checks them again under the new series'
    /// lock and drops and counts what does not fit, as for two batches racing. Before this
    /// path existed the append itself returned `Ok(None)` for such a series (its caller then
    /// appended by labels); now the sample lands in the series of its labels either way.
    fn rehome_removed(&mut self) -> Result<()> {
        if !self.unlocked {
            // Every sample was checked under its series' lock, where a drop is seen.
            return Ok(());
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        for i in 0..self.series.len() {
            let Some(s) = self.series.get(i) else {
                break;
            };
            if !s.removed().load(Ordering::Relaxed) {
                continue;
            }
            let dropped = {
                let _d = s.data.lock();
                s.removed().load(Ordering::Relaxed)
            };
            if !dropped {
                continue;
            }
            let mut labels = Labels::empty();
            s.labels_into(&mut labels);
            let (n, _) = self.head.get_or_create(&labels, None)?;
            let i32 = i as u32;
            match self.batch.find(n.id()) {
                // Already in the batch (appended by labels since): its samples join that
                // index; the dropped series stays behind without samples.
                Some(j) => {
                    for x in &mut self.samples {
                        if x.0 & !HIST_FLAG == i32 {
                            x.0 = (x.0 & HIST_FLAG) | j;
                        }
                    }
                }
                None => {
                    self.batch.alias(n.id(), i32);
                    if let Some(slot) = self.series.get_mut(i) {
                        *slot = n;
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the logged batch to memory. Samples that became invalid since `append` (another
    /// batch committed newer data, or the head was truncated) are dropped and counted.
    ///
    /// Series by series (each series' samples in append order), in groups of [`APPLY_GROUP`]: the
    /// group's locks are taken with `try_lock` and its open chunks read before any sample is
    /// applied, so that the memory misses into the group's series and chunks overlap instead of
    /// each series waiting for its own (`benches/README.md`, "ingest3"). `try_lock` never
    /// blocks, so holding a group's locks cannot deadlock; a series locked elsewhere is applied
    /// after the group's locks are released.
    fn apply(&mut self) {
        let (mut order, mut starts) = (
            std::mem::take(&mut self.by_series),
            std::mem::take(&mut self.series_starts),
        );
        group_by_series(&self.samples, self.series.len(), &mut order, &mut starts);
        let head = &*self.head;
        let _gate = head.apply_gate.read();
        let min_valid = head.min_valid_time();
        let (range, window) = (head.opts.block_range, head.opts.ooo_window);
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        let (mut n_in, mut n_ooo) = (0u64, 0u64);
        let mut apply_series = |idx: usize, s: &Series, d: &mut SeriesData| {
            let lw = s.lock_word();
            let (Some(&a), Some(&b)) = (starts.get(idx), starts.get(idx + 1)) else {
                return;
            };
            for &i in order.get(a as usize..b as usize).unwrap_or_default() {
                let Some(&(raw, t, v)) = self.samples.get(i as usize) else {
                    continue;
                };
                if t < min_valid && !head.accepts_old(t) {
                    head.metrics
                        .rejected_out_of_bounds
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let applied = if raw & HIST_FLAG != 0 {
                    match self.hists.get(v.to_bits() as usize) {
                        Some(h) => d.apply_histogram(lw, t, h, range, window, &head.chunk_files),
                        None => unreachable!("BUG: histogram entry without its histogram"),
                    }
                } else {
                    d.apply(lw, t, v, range, window, &head.chunk_files)
                };
                match applied {
                    Applied::InOrder => n_in += 1,
                    Applied::OutOfOrder => n_ooo += 1,
                    Applied::Duplicate => continue,
                    other => {
                        drop(self.reject(other));
                        continue;
                    }
                }
                mint = mint.min(t);
                maxt = maxt.max(t);
            }
        };
        for (g, group) in self.series.chunks(APPLY_GROUP).enumerate() {
            let first = g * APPLY_GROUP;
            apply_group(group, |s| &**s, |k, s, d| apply_series(first + k, s, d));
        }
        head.update_time_range(mint, maxt);
        head.metrics
            .samples_appended
            .fetch_add(n_in + n_ooo, Ordering::Relaxed);
        head.metrics
            .ooo_appended
            .fetch_add(n_ooo, Ordering::Relaxed);
        self.by_series = order;
        self.series_starts = starts;
    }
}

const _: () = assert!(PREFETCH <= APPLY_GROUP && APPLY_GROUP <= u32::BITS as usize);

/// Groups the indexes of `samples` by series (a counting sort, stable): `order[starts[i] ..
/// starts[i + 1]]` are series `i`'s, for `i < n_series`.
fn group_by_series(
    samples: &[(u32, Timestamp, f64)],
    n_series: usize,
    order: &mut Vec<u32>,
    starts: &mut Vec<u32>,
) {
    starts.clear();
    starts.resize(n_series + 1, 0);
    for &(raw, _, _) in samples {
        if let Some(c) = starts.get_mut((raw & !HIST_FLAG) as usize + 1) {
            *c += 1;
        }
    }
    let mut acc = 0;
    for c in starts.iter_mut() {
        acc += *c;
        *c = acc;
    }
    order.clear();
    order.resize(samples.len(), 0);
    // `next[i]`: where series `i`'s next sample goes; `starts` shifted by one.
    for (i, &(raw, _, _)) in samples.iter().enumerate() {
        let idx = (raw & !HIST_FLAG) as usize;
        if let Some(at) = starts.get_mut(idx) {
            if let Some(o) = order.get_mut(*at as usize) {
                *o = i as u32;
            }
            *at += 1;
        }
    }
    // Each `starts[i]` moved to the end of series `i`, which is series `i + 1`'s start.
    starts.rotate_right(1);
    if let Some(s0) = starts.first_mut() {
        *s0 = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch interleaving more series than a group, with one series locked by another thread
    /// while it commits, applies every series' samples, each in order (as appended one by one).
    #[test]
    fn grouped_apply_keeps_each_series_samples_and_waits_for_a_busy_series() {
        let head = Arc::new(Head::in_memory(7_200_000, 0));
        let n = 2 * APPLY_GROUP + 5;
        let labels = |i: usize| Labels::from_pairs(&[("__name__", "m"), ("i", &i.to_string())]);
        let mut app = HeadAppender::new(head.clone());
        let mut refs = Vec::new();
        for i in 0..n {
            refs.push(app.append(None, &labels(i), 0, 0.0).unwrap());
        }
        app.commit().unwrap();
        // Interleaved: round t appends to every series, series i gets i % 4 more at the end.
        for t in 1..=5 {
            for (i, r) in refs.iter().enumerate() {
                app.append_ref(*r, t, (t * 100 + i as i64) as f64).unwrap();
            }
        }
        for (i, r) in refs.iter().enumerate() {
            for t in 6..6 + (i % 4) as i64 {
                app.append_ref(*r, t, (t * 100 + i as i64) as f64).unwrap();
            }
        }
        let holder = crate::head::hold_busy(head.series.get(refs[APPLY_GROUP + 3].0).unwrap());
        app.commit().unwrap();
        holder.join().unwrap();
        for (i, r) in refs.iter().enumerate() {
            let s = head.series.get(r.0).unwrap();
            let d = s.data.lock();
            let last_t = 5 + (i % 4) as i64;
            let o = d.open.as_ref().unwrap();
            assert_eq!(
                (o.chunk.num_samples(), o.min_t(), o.max_t()),
                (last_t as usize + 1, 0, last_t),
                "series {i}"
            );
            let want = (last_t * 100 + i as i64) as f64;
            assert_eq!(
                d.last(s.lock_word()),
                Some((last_t, want.to_bits())),
                "series {i}"
            );
        }
        assert!(!head.series.all().iter().any(|s| s.data.is_locked()));
    }

    /// The batch index finds what a map from ref to index finds, whatever the refs (dense,
    /// sharing slots, huge), through growth, aliases and clears, and a cleared index is empty.
    #[test]
    fn batch_index_finds_what_a_map_finds() {
        use std::collections::HashMap;
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut b = BatchIndex::default();
        for round in 0..300u64 {
            // Ref → index, and by index the newest sample (aliases share their index's).
            let mut model: HashMap<u64, u32> = HashMap::new();
            let mut newest_of: Vec<Option<(Timestamp, u64)>> = Vec::new();
            let base = rng.below(1 << 20);
            // Dense refs, refs one table apart (all on one slot), or any u64.
            let kind = round % 3;
            let gen_id = |rng: &mut crate::test_rng::Rng| match kind {
                0 => base + rng.below(3000),
                1 => base + (rng.below(40) << 12),
                _ => rng.next() | u64::from(rng.below(2) == 0) << 63,
            };
            if rng.below(2) == 0 {
                b.reserve(rng.below(5000) as usize);
            }
            let ops = rng.below(4000);
            for _ in 0..ops {
                let id = gen_id(&mut rng);
                let got = b.find(id);
                assert_eq!(got, model.get(&id).copied(), "round {round} ref {id}");
                let newest = (rng.below(4) != 0).then(|| (rng.next() as i64, rng.next()));
                match (got, rng.below(8)) {
                    (Some(i), _) => {
                        assert_eq!(b.newest(i), newest_of[i as usize], "round {round} ref {id}");
                        b.set_newest(i, newest);
                        newest_of[i as usize] = newest;
                    }
                    (None, 0) if !newest_of.is_empty() => {
                        let i = rng.below(newest_of.len() as u64) as u32;
                        b.alias(id, i);
                        model.insert(id, i);
                    }
                    (None, _) => {
                        assert_eq!(b.add(id, newest), newest_of.len() as u32);
                        model.insert(id, newest_of.len() as u32);
                        newest_of.push(newest);
                    }
                }
            }
            for (&id, &i) in &model {
                assert_eq!(b.find(id), Some(i), "round {round} ref {id}");
                assert_eq!(b.newest(i), newest_of[i as usize], "round {round} ref {id}");
            }
            b.clear();
            for &id in model.keys() {
                assert_eq!(b.find(id), None, "round {round} ref {id} after clear");
            }
            assert!(
                b.slots.iter().all(|&v| v == 0),
                "round {round}: slots left set"
            );
            assert!(b.spill.is_empty() && b.entries.is_empty());
        }
    }

    #[test]
    fn group_by_series_is_a_stable_counting_sort() {
        let check = |series: &[u32], n: usize| {
            let samples: Vec<(u32, Timestamp, f64)> = series
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, i as i64, 0.0))
                .collect();
            let (mut order, mut starts) = (vec![7], vec![9, 9]);
            group_by_series(&samples, n, &mut order, &mut starts);
            let mut want: Vec<u32> = (0..series.len() as u32).collect();
            want.sort_by_key(|&i| series[i as usize] & !HIST_FLAG);
            assert_eq!(order, want, "{series:?}");
            for i in 0..n {
                let got: Vec<u32> = order[starts[i] as usize..starts[i + 1] as usize].to_vec();
                let want: Vec<u32> = (0..series.len() as u32)
                    .filter(|&j| series[j as usize] & !HIST_FLAG == i as u32)
                    .collect();
                assert_eq!(got, want, "series {i} of {series:?}");
            }
        };
        check(&[], 0);
        check(&[], 3);
        check(&[0, 1, 2], 3);
        check(&[2, 0, 1, 0, HIST_FLAG | 2, 1], 4);
    }
}

#[cfg(test)]
#[path = "append_tests.rs"]
mod unlocked_tests;
