//! Native-histogram samples of a head series: histogram chunks beside the series' float
//! chunks, one kind per chunk (a type change cuts a chunk, as in Prometheus).
//!
//! Completed histogram chunks stay in memory (they are not written to `chunks_head/`); they
//! go when the head is truncated after a block cut, as float chunks do. Within the
//! out-of-order window, older histogram samples are accepted as Prometheus 3 accepts them:
//! they wait in a sorted buffer beside the chunks (as out-of-order floats do), are logged to
//! the WAL like any sample, read as histogram chunks of their own (merged with the in-order
//! ones by the querier) and cut into blocks with the rest.

use super::chunk_files::HeadChunkFiles;
use super::series::{Applied, SeriesData};
use super::series_lock::SeriesRawMutex;
use crate::chunk::histogram::{CutChunk, HistogramChunk};
use crate::chunk::{HistogramIterator, TARGET_SAMPLES_PER_CHUNK};
use crate::error::Result;
use crate::histogram::ops::counts_decreased;
use crate::histogram::{CounterResetHint, FloatHistogram};
use crate::interface::SampleIterator;
use crate::model::Timestamp;

/// A head histogram chunk is cut at this many bytes (histograms with many buckets take far
/// more bytes per sample than floats), or at [`TARGET_SAMPLES_PER_CHUNK`] samples.
pub(crate) const TARGET_HISTOGRAM_CHUNK_BYTES: usize = 4096;

/// A completed histogram chunk, kept in memory.
pub(crate) struct MemHistChunk {
    pub(crate) min_t: Timestamp,
    pub(crate) max_t: Timestamp,
    pub(crate) bytes: Box<[u8]>,
}

/// The histogram chunk being appended to.
pub(crate) struct OpenHist {
    pub(crate) chunk: HistogramChunk,
    pub(crate) min_t: Timestamp,
    pub(crate) max_t: Timestamp,
}

/// Histogram samples of one series (boxed in [`SeriesData`]: most series have none).
#[derive(Default)]
pub(crate) struct HistData {
    /// Completed chunks, oldest first.
    pub(crate) closed: Vec<MemHistChunk>,
    /// The newest chunk.
    pub(crate) open: Option<OpenHist>,
    /// Timestamp of the newest histogram sample (kept when its chunk is truncated away).
    pub(crate) last_t: Option<Timestamp>,
    /// Out-of-order samples, sorted by time, unique timestamps.
    pub(crate) ooo: Vec<(Timestamp, FloatHistogram)>,
}

impl HistData {
    /// Oldest sample timestamp, `i64::MAX` when empty.
    pub(crate) fn min_time(&self) -> Timestamp {
        let ooo = self.ooo.first().map_or(i64::MAX, |s| s.0);
        match (self.closed.first(), &self.open) {
            (Some(c), _) => c.min_t.min(ooo),
            (None, Some(o)) => o.min_t.min(ooo),
            (None, None) => ooo,
        }
    }

    /// Newest sample timestamp, `i64::MIN` when empty.
    pub(crate) fn max_time(&self) -> Timestamp {
        let ooo = self.ooo.last().map_or(i64::MIN, |s| s.0);
        match (&self.open, self.closed.last()) {
            (Some(o), _) => o.max_t.max(ooo),
            (None, Some(c)) => c.max_t.max(ooo),
            (None, None) => ooo,
        }
    }

    /// True when no sample is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.open.is_none() && self.ooo.is_empty()
    }

    /// Number of chunks.
    pub(crate) fn num_chunks(&self) -> usize {
        self.closed.len() + usize::from(self.open.is_some())
    }

    /// Drops chunks entirely older than `before`, and out-of-order samples older than it.
    pub(crate) fn truncate(&mut self, before: Timestamp) {
        self.closed.retain(|c| c.max_t >= before);
        if self.open.as_ref().is_some_and(|o| o.max_t < before) {
            self.open = None;
        }
        self.ooo.retain(|x| x.0 >= before);
    }

    /// The histogram at `t`, if one is stored there (out-of-order buffer or chunks).
    fn at(&self, t: Timestamp) -> Option<FloatHistogram> {
        if let Ok(i) = self.ooo.binary_search_by_key(&t, |s| s.0) {
            return self.ooo.get(i).map(|s| s.1.clone());
        }
        let find = |bytes: &[u8]| {
            let mut it = HistogramIterator::new(bytes);
            (it.seek(t) && it.at().0 == t)
                .then(|| it.at_histogram().cloned())
                .flatten()
        };
        if let Some(o) = &self.open
            && o.min_t <= t
            && t <= o.max_t
        {
            return find(o.chunk.bytes());
        }
        let c = self.closed.iter().find(|c| c.min_t <= t && t <= c.max_t)?;
        find(&c.bytes)
    }

    /// True when a histogram sample exists at `t`.
    pub(crate) fn has_sample_at(&self, t: Timestamp) -> bool {
        self.at(t).is_some()
    }

    /// Encodes the out-of-order samples within `[mint, maxt]` as histogram chunks (one, unless
    /// a sample refuses the chunk), handing each to `out(min_t, max_t, bytes)`. Their first
    /// sample's hint is unknown: what precedes it is only known once merged with the rest.
    pub(crate) fn ooo_chunks(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
        mut out: impl FnMut(Timestamp, Timestamp, &[u8]),
    ) {
        let lo = self.ooo.partition_point(|x| x.0 < mint);
        let hi = self.ooo.partition_point(|x| x.0 <= maxt);
        let mut cur: Option<(HistogramChunk, Timestamp, Timestamp)> = None;
        for (t, h) in self.ooo.get(lo..hi).unwrap_or_default() {
            let hint = match cur.as_mut() {
                Some((c, _, max_t)) => match c.append(*t, h) {
                    Ok(()) => {
                        *max_t = *t;
                        continue;
                    }
                    Err(cut) => cut.hint,
                },
                None => CounterResetHint::Unknown,
            };
            if let Some((c, a, b)) = cur.take() {
                out(a, b, c.bytes());
            }
            cur = Some((HistogramChunk::new(*t, h, hint), *t, *t));
        }
        if let Some((c, a, b)) = cur {
            out(a, b, c.bytes());
        }
    }

    /// Heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .closed
                .iter()
                .map(|c| c.bytes.len() + std::mem::size_of::<MemHistChunk>())
                .sum::<usize>()
            + self.open.as_ref().map_or(0, |o| o.chunk.heap_bytes())
            + self
                .ooo
                .iter()
                .map(|(_, h)| {
                    std::mem::size_of::<(Timestamp, FloatHistogram)>()
                        + 8 * (h.positive_buckets.len()
                            + h.negative_buckets.len()
                            + h.positive_spans.len()
                            + h.negative_spans.len()
                            + h.custom_values.len())
                })
                .sum::<usize>()
    }

    fn close_open(&mut self) {
        if let Some(o) = self.open.take() {
            self.closed.push(MemHistChunk {
                min_t: o.min_t,
                max_t: o.max_t,
                bytes: o.chunk.bytes().into(),
            });
        }
    }

    /// Deletes samples in `[mint, maxt]` (re-encoding the chunks that hold some).
    pub(crate) fn delete(&mut self, mint: Timestamp, maxt: Timestamp) -> Result<()> {
        let keep = |t: Timestamp| t < mint || t > maxt;
        self.ooo.retain(|x| keep(x.0));
        let mut kept: Vec<(Timestamp, FloatHistogram)> = Vec::new();
        let collect = |bytes: &[u8], kept: &mut Vec<(Timestamp, FloatHistogram)>| {
            let mut it = HistogramIterator::new(bytes);
            while it.next() {
                if keep(it.at().0)
                    && let Some(h) = it.at_histogram()
                {
                    kept.push((it.at().0, h.clone()));
                }
            }
            it.take_err().map_or(Ok(()), Err)
        };
        // The open chunk is set aside so re-encoded closed chunks do not cut it. A chunk that
        // does not decode is kept as it is (and the error returned at the end).
        let open = self.open.take();
        let old = std::mem::take(&mut self.closed);
        let mut res = Ok(());
        let mut touched = false;
        for c in old {
            if c.max_t < mint || c.min_t > maxt || res.is_err() {
                self.closed.push(c);
                continue;
            }
            kept.clear();
            if let Err(e) = collect(&c.bytes, &mut kept) {
                res = Err(e);
                self.closed.push(c);
                continue;
            }
            touched = true;
            for (i, (t, h)) in kept.iter().enumerate() {
                self.push_in_order(*t, h, i == 0);
            }
            self.close_open();
        }
        if let Some(o) = open {
            kept.clear();
            if o.max_t < mint || o.min_t > maxt || res.is_err() {
                self.open = Some(o);
            } else if let Err(e) = collect(o.chunk.bytes(), &mut kept) {
                res = Err(e);
                self.open = Some(o);
            } else {
                touched = true;
                for (i, (t, h)) in kept.iter().enumerate() {
                    self.push_in_order(*t, h, i == 0);
                }
            }
        }
        if touched {
            // As for floats: the newest remaining sample bounds later appends.
            self.last_t = (!self.is_empty()).then(|| self.max_time());
        }
        res
    }

    /// Appends `h` at `t` (after every sample), cutting a chunk when the open one is full, in
    /// another block range, refuses the sample, or `force_cut` is set.
    fn push_in_order(&mut self, t: Timestamp, h: &FloatHistogram, force_cut: bool) {
        self.push(t, h, i64::MAX, force_cut);
    }

    fn push(&mut self, t: Timestamp, h: &FloatHistogram, range: i64, force_cut: bool) {
        let mut hint = h.counter_reset_hint;
        if let Some(o) = self.open.as_mut() {
            let full = o.chunk.num_samples() >= TARGET_SAMPLES_PER_CHUNK
                || o.chunk.bytes().len() >= TARGET_HISTOGRAM_CHUNK_BYTES
                || o.min_t.div_euclid(range) != t.div_euclid(range);
            if full || force_cut {
                if !force_cut && !h.is_gauge() && hint != CounterResetHint::CounterReset {
                    hint = if counts_decreased(h, o.chunk.last()) {
                        CounterResetHint::CounterReset
                    } else {
                        CounterResetHint::NotCounterReset
                    };
                }
                self.close_open();
            } else {
                match o.chunk.append(t, h) {
                    Ok(()) => {
                        o.max_t = t;
                        self.last_t = Some(t);
                        return;
                    }
                    Err(CutChunk { hint: h2 }) => {
                        hint = h2;
                        self.close_open();
                    }
                }
            }
        }
        self.open = Some(OpenHist {
            chunk: HistogramChunk::new(t, h, hint),
            min_t: t,
            max_t: t,
        });
        self.last_t = Some(t);
    }
}

/// Whether `a` and `b` are the same sample, hints aside: schema, zero bucket, custom bounds,
/// count and sum (bit for bit) and the same non-empty buckets. The chunk keeps its last sample
/// in the chunk's layout, which may hold empty buckets the sample as sent did not have, so a
/// resent sample is still a duplicate.
fn same_sample(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    let bits = |x: f64| x.to_bits();
    let filled = |s: &[crate::histogram::Span], c: &[f64]| {
        let mut v = crate::histogram::ops::indexed(s, c);
        v.retain(|x| x.1 != 0.0);
        v
    };
    let same = |x: Vec<(i32, f64)>, y: Vec<(i32, f64)>| {
        x.len() == y.len()
            && x.iter()
                .zip(&y)
                .all(|(p, q)| p.0 == q.0 && bits(p.1) == bits(q.1))
    };
    a.schema == b.schema
        && bits(a.count) == bits(b.count)
        && bits(a.sum) == bits(b.sum)
        && bits(a.zero_threshold) == bits(b.zero_threshold)
        && bits(a.zero_count) == bits(b.zero_count)
        && a.custom_values.len() == b.custom_values.len()
        && a.custom_values
            .iter()
            .zip(&b.custom_values)
            .all(|(x, y)| bits(*x) == bits(*y))
        && same(
            filled(&a.positive_spans, &a.positive_buckets),
            filled(&b.positive_spans, &b.positive_buckets),
        )
        && same(
            filled(&a.negative_spans, &a.negative_buckets),
            filled(&b.negative_spans, &b.negative_buckets),
        )
}

/// Stand-in value bits recorded as a batch's pending newest sample when it is a histogram (a
/// NaN payload no float from the wire is expected to carry).
pub(crate) const PENDING_HISTOGRAM_BITS: u64 = 0x7ff4_8157_0000_0001;

impl SeriesData {
    /// Timestamp of the newest sample of either kind (`lw`: the lock word, see
    /// [`SeriesData::last`]).
    pub(crate) fn newest(&self, lw: &SeriesRawMutex) -> Option<Timestamp> {
        let f = self.last(lw).map(|l| l.0);
        let h = self.hist().and_then(|h| h.last_t);
        f.max(h)
    }

    /// What applying histogram `h` at `t` would do now, given `pending` (the newest sample of
    /// the caller's batch for this series).
    /// `window` is the out-of-order window (0: none); `files` holds the float chunks (a float
    /// at `t` makes a histogram there a duplicate).
    pub(crate) fn check_histogram(
        &self,
        lw: &SeriesRawMutex,
        pending: Option<(Timestamp, u64)>,
        t: Timestamp,
        h: &FloatHistogram,
        window: i64,
        files: &HeadChunkFiles,
    ) -> Applied {
        let newest = self.newest(lw).max(pending.map(|p| p.0));
        match newest {
            Some(n) if t == n => {
                if pending.is_none_or(|p| p.0 != t) && self.histogram_equals_last(t, h) {
                    Applied::Duplicate
                } else {
                    Applied::RejectDuplicate
                }
            }
            Some(n) if t < n => {
                if window <= 0 {
                    return Applied::RejectOutOfOrder;
                }
                if t < n.saturating_sub(window) {
                    return Applied::RejectTooOld;
                }
                match self.hist().and_then(|hd| hd.at(t)) {
                    Some(old) if crate::histogram::ops::equals(&old, h) => Applied::Duplicate,
                    Some(_) => Applied::RejectDuplicate,
                    None if self.value_at(t, files).is_some() => Applied::RejectDuplicate,
                    None => Applied::OutOfOrder,
                }
            }
            _ => Applied::InOrder,
        }
    }

    fn histogram_equals_last(&self, t: Timestamp, h: &FloatHistogram) -> bool {
        let Some(hd) = self.hist() else {
            return false;
        };
        match &hd.open {
            Some(o) if o.max_t == t => {
                let last = o.chunk.last();
                same_sample(last, h)
            }
            _ => false,
        }
    }

    /// Applies histogram `h` at `t`; `range` is the block range (chunks never span two),
    /// `window` the out-of-order window.
    pub(crate) fn apply_histogram(
        &mut self,
        lw: &SeriesRawMutex,
        t: Timestamp,
        h: &FloatHistogram,
        range: i64,
        window: i64,
        files: &HeadChunkFiles,
    ) -> Applied {
        let verdict = self.check_histogram(lw, None, t, h, window, files);
        if verdict == Applied::OutOfOrder {
            let hd = self.hist_or_default(lw);
            let i = hd.ooo.partition_point(|x| x.0 < t);
            hd.ooo.insert(i, (t, h.clone()));
            return verdict;
        }
        if verdict != Applied::InOrder {
            return verdict;
        }
        // A float sample since the open histogram chunk's last one: the type changed, cut.
        let float_newer = self.last(lw).is_some_and(|(lt, _)| {
            self.hist()
                .and_then(|d| d.open.as_ref())
                .is_some_and(|o| lt > o.max_t)
        });
        let hd = self.hist_or_default(lw);
        if float_newer {
            hd.close_open();
        }
        hd.push(t, h, range, false);
        Applied::InOrder
    }

    /// Float appends: the verdict imposed by newer histogram samples, if any (`None`: decide
    /// as for a float-only series). A float after histograms cuts the float chunk.
    pub(crate) fn float_vs_histograms(
        &self,
        lw: &SeriesRawMutex,
        t: Timestamp,
        window: i64,
    ) -> Option<Applied> {
        let ht = self.hist()?.last_t?;
        if self.last(lw).is_some_and(|(lt, _)| lt > ht) {
            return None;
        }
        if t == ht {
            Some(Applied::RejectDuplicate)
        } else if t < ht && window <= 0 {
            Some(Applied::RejectOutOfOrder)
        } else if t < ht.saturating_sub(window) {
            Some(Applied::RejectTooOld)
        } else if t < ht && self.hist().is_some_and(|h| h.has_sample_at(t)) {
            // An older histogram holds that timestamp.
            Some(Applied::RejectDuplicate)
        } else {
            None
        }
    }
}
