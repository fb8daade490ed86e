//! A time range of the head as a [`BlockReader`], for the querier and for cutting blocks.

use super::Head;
use crate::block::{BlockReader, SeriesChunks, overlaps};
use crate::chunk::{Encoding, XorChunk};
use crate::error::Result;
use crate::model::{Labels, Timestamp};
use roaring::RoaringBitmap;
use std::ops::Deref;

/// The head restricted to `[mint, maxt]`.
pub(crate) struct HeadRange<H> {
    head: H,
    mint: Timestamp,
    maxt: Timestamp,
}

impl<H: Deref<Target = Head>> HeadRange<H> {
    /// A reader over `head` restricted to `[mint, maxt]`.
    pub(crate) fn new(head: H, mint: Timestamp, maxt: Timestamp) -> Self {
        Self { head, mint, maxt }
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
        let mut series: Vec<_> = ids
            .iter()
            .filter_map(|id| self.head.series.get(u64::from(id)))
            .collect();
        series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        Ok(series.iter().map(|s| s.id as u32).collect())
    }

    fn labels(&self, id: u32, out: &mut Labels) -> Result<bool> {
        match self.head.series.get(u64::from(id)) {
            Some(s) => {
                s.labels_into(out);
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
        let Some(s) = self.head.series.get(u64::from(id)) else {
            return Ok(false);
        };
        s.labels_into(&mut out.labels);
        let (mint, maxt) = (mint.max(self.mint), maxt.min(self.maxt));
        // The series lock is held while completed chunks are read: truncation drops a
        // series' refs under it before deleting their files.
        let d = s.data.lock();
        for c in &d.closed {
            if overlaps(c.min_t, c.max_t, mint, maxt) {
                out.push_with(c.min_t, c.max_t, Encoding::Xor, |dst| {
                    self.head.chunk_files.read_into(c.r, dst)
                })?;
            }
        }
        if let Some(o) = &d.open
            && overlaps(o.min_t, o.max_t, mint, maxt)
        {
            out.push(o.min_t, o.max_t, o.chunk.bytes());
        }
        if let Some(h) = &d.hist {
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
        let lo = d.ooo.partition_point(|x| x.0 < mint);
        let hi = d.ooo.partition_point(|x| x.0 <= maxt);
        if let (Some(ooo), Some(first), Some(last)) = (
            d.ooo.get(lo..hi),
            d.ooo.get(lo),
            hi.checked_sub(1).and_then(|i| d.ooo.get(i)),
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
