//! A time range of the head as a [`BlockReader`], for the querier and for cutting blocks.

use super::Head;
use super::labels::sort_by_labels;
use super::series::Series;
use crate::block::{BlockReader, SeriesChunks, overlaps};
use crate::chunk::{Encoding, XorChunk};
use crate::error::Result;
use crate::model::{Label, Labels, Timestamp};
use parking_lot::Mutex;
use roaring::RoaringBitmap;
use std::ops::Deref;
use std::sync::Arc;

/// A series and its scratch sort key ([`sort_by_labels`]); the sorted list keeps the keys so
/// that sorting needs no second allocation.
type Keyed = (u64, Arc<Series>);

/// The head restricted to `[mint, maxt]`.
pub(crate) struct HeadRange<H> {
    // Immutable after construction.
    head: H,
    mint: Timestamp,
    maxt: Timestamp,
    /// The series [`BlockReader::sorted_ids`] last sorted, in that order, and the position of
    /// the next one expected by [`BlockReader::series`]: a querier reads them in that order, so
    /// each is found without a second lookup in the series map. Any other id is looked up.
    sorted: Mutex<(Vec<Keyed>, usize)>,
}

impl<H: Deref<Target = Head>> HeadRange<H> {
    /// A reader over `head` restricted to `[mint, maxt]`.
    pub(crate) fn new(head: H, mint: Timestamp, maxt: Timestamp) -> Self {
        Self {
            head,
            mint,
            maxt,
            sorted: Mutex::new((Vec::new(), 0)),
        }
    }

    /// The series `id`: the next one of the last sorted list when it is that one.
    fn series_by_id(&self, id: u32) -> Option<Arc<Series>> {
        let mut sorted = self.sorted.lock();
        let (list, next) = &mut *sorted;
        if let Some((_, s)) = list.get(*next)
            && s.id() == u64::from(id)
        {
            let s = s.clone();
            *next += 1;
            if *next == list.len() {
                // Read through: hold no series longer than needed (truncation skips series
                // that readers still hold).
                *list = Vec::new();
                *next = 0;
            }
            return Some(s);
        }
        drop(sorted);
        self.head.series.get(u64::from(id))
    }
}

impl<H: Deref<Target = Head> + Send + Sync> BlockReader for HeadRange<H> {
    fn min_time(&self) -> Timestamp {
        self.head.min_time().max(self.mint)
    }

    fn max_time(&self) -> Timestamp {
        self.head.max_time().min(self.maxt)
    }

    fn postings(&self, name: &str, value: &str) -> Result<RoaringBitmap> {
        Ok(self.head.postings.read().get(name, value))
    }

    fn all_postings(&self) -> Result<RoaringBitmap> {
        Ok(self.head.postings.read().all())
    }

    fn label_names(&self) -> Result<Vec<String>> {
        Ok(self.head.postings.read().label_names())
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.head.postings.read().label_values(name))
    }

    fn label_values_limited(
        &self,
        name: &str,
        filter: Option<&RoaringBitmap>,
        limit: usize,
    ) -> Result<Vec<String>> {
        Ok(self
            .head
            .postings
            .read()
            .label_values_limited(name, filter, limit))
    }

    fn label_value_count(&self, name: &str) -> Result<usize> {
        Ok(self.head.postings.read().value_count(name))
    }

    fn sorted_ids(&self, ids: &RoaringBitmap) -> Result<Vec<u32>> {
        let mut series = Vec::with_capacity(usize::try_from(ids.len()).unwrap_or(0));
        series.extend(
            ids.iter()
                .filter_map(|id| self.head.series.get(u64::from(id)))
                .map(|s| (0, s)),
        );
        sort_by_labels(&mut series, &|s: &Arc<Series>| &s.labels);
        let ids = series.iter().map(|(_, s)| s.id() as u32).collect();
        *self.sorted.lock() = (series, 0);
        Ok(ids)
    }

    fn labels(&self, id: u32, out: &mut Labels) -> Result<bool> {
        match self.head.series.get(u64::from(id)) {
            Some(s) => {
                fill_labels(s.labels.iter(), out);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn series(
        &self,
        id: u32,
        mint: Timestamp,
        maxt: Timestamp,
        out: &mut SeriesChunks,
    ) -> Result<bool> {
        out.clear();
        let Some(s) = self.series_by_id(id) else {
            return Ok(false);
        };
        fill_labels(s.labels.iter(), &mut out.labels);
        let (mint, maxt) = (mint.max(self.mint), maxt.min(self.maxt));
        // The series lock is held while completed chunks are read: truncation drops a
        // series' refs under it before deleting their files.
        let d = s.data.lock();
        for c in &d.closed {
            if overlaps(c.min_t, c.max_t, mint, maxt) {
                let enc = super::chunk_files::encoding(c.r);
                out.push_with(c.min_t, c.max_t, enc, |dst| {
                    self.head.chunk_files.read_raw_into(c.r, dst)
                })?;
            }
        }
        if let Some(o) = &d.open
            && let Some(last) = o.chunk.last()
        {
            let first = o.min_t();
            if overlaps(first, last.0, mint, maxt) {
                out.push_open(first, last, o.chunk.bytes());
            }
        }
        if let Some(h) = d.hist() {
            for c in &h.closed {
                if overlaps(c.min_t, c.max_t, mint, maxt) {
                    out.push_enc(c.min_t, c.max_t, Encoding::Histogram, &c.bytes);
                }
            }
            if let Some(o) = &h.open
                && overlaps(o.min_t, o.max_t, mint, maxt)
            {
                out.push_enc(o.min_t, o.max_t, Encoding::Histogram, o.chunk.bytes());
            }
            h.ooo_chunks(mint, maxt, |a, b, bytes| {
                out.push_enc(a, b, Encoding::Histogram, bytes)
            });
        }
        let ooo = d.ooo();
        let lo = ooo.partition_point(|x| x.0 < mint);
        let hi = ooo.partition_point(|x| x.0 <= maxt);
        if let (Some(ooo), Some(first), Some(last)) = (
            ooo.get(lo..hi),
            ooo.get(lo),
            hi.checked_sub(1).and_then(|i| ooo.get(i)),
        ) {
            let mut c = XorChunk::new();
            for &(t, v) in ooo {
                c.append(t, v);
            }
            let (a, b) = (first.0, last.0);
            drop(d);
            out.push(a, b, c.bytes());
        }
        // Keep spans sorted by min_t (the OOO chunk may start before in-order ones).
        out.spans.sort_by_key(|s| s.min_t);
        Ok(true)
    }
}

/// Writes label pairs (in name order) into `out`, reusing its strings' buffers: the querier
/// refills one label set per series read, so this allocates only when a set outgrows the last.
fn fill_labels<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>, out: &mut Labels) {
    let mut v = std::mem::take(out).into_vec();
    let mut n = 0;
    for (name, value) in pairs {
        match v.get_mut(n) {
            Some(l) => {
                l.name.clear();
                l.name.push_str(name);
                l.value.clear();
                l.value.push_str(value);
            }
            None => v.push(Label::new(name, value)),
        }
        n += 1;
    }
    v.truncate(n);
    *out = Labels::from_sorted(v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::labels::SeriesLabels;

    /// Sorting packed head labels gives the order of `Labels`, and refilling a used label set
    /// (longer, shorter) gives exactly the pairs written.
    #[test]
    fn packed_order_and_refill() {
        let sets = [
            &[("__name__", "a"), ("job", "x")][..],
            &[("__name__", "a")][..],
            &[("__name__", "a"), ("job", "w"), ("pod", "1")][..],
            &[("__name__", "b")][..],
            &[("__name__", "a"), ("job", "x"), ("pod", "0")][..],
        ];
        let mut out = Labels::empty();
        for a in sets {
            let pa = SeriesLabels::new(&Labels::from_pairs(a));
            fill_labels(pa.iter(), &mut out);
            assert_eq!(out, Labels::from_pairs(a));
            for b in sets {
                let want = Labels::from_pairs(a).cmp(&Labels::from_pairs(b));
                let pb = SeriesLabels::new(&Labels::from_pairs(b));
                assert_eq!(pa.cmp(&pb), want, "{a:?} vs {b:?}");
            }
        }
    }
}
