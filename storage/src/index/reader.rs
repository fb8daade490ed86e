//! Index reader (layout in `index/mod.rs`). OWNER: codec helper.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::{
    CRC_LEN, ChunkMeta, HEADER_LEN, INDEX_MAGIC, INDEX_VERSION, MIN_INDEX_LEN, SEC_LABEL_INDEX,
    SEC_POSTINGS, SEC_SERIES, SEC_SERIES_OFFSETS, SEC_SYMBOLS, TOC_LEN, TOC_SECTIONS,
    VERSION_OFFSET,
};
use crate::encoding::Decbuf;
use crate::encoding::crc::crc32;
use crate::error::{Error, Result};
use crate::model::{Label, Labels};
use roaring::RoaringBitmap;
use std::cmp::Ordering;
use std::ops::Range;

/// Name used in corruption errors (the block reader knows the real path).
const INDEX_PATH: &str = "<index>";

fn corrupt(offset: usize, reason: impl Into<String>) -> Error {
    Error::corruption(INDEX_PATH, offset as u64, reason)
}

/// Reads an index from bytes (usually an mmap). Every section is CRC-checked on open or on
/// first use; corrupt bytes give `Error::Corruption`, never a panic.
///
/// Open builds a small table in memory: symbol ranges, and label name → value → postings offset
/// (the postings offset table), so lookups never scan the file. Immutable after `new`; shareable
/// across threads when `B` is.
pub(crate) struct IndexReader<B: AsRef<[u8]>> {
    data: B,
    /// Byte range of each symbol's UTF-8 (validated at open), by symbol id.
    symbols: Vec<Range<usize>>,
    /// Byte range of the series-offsets table.
    pub(super) series_offsets: Range<usize>,
    /// Byte range of the series section.
    series: Range<usize>,
    /// Byte range of the postings section.
    postings: Range<usize>,
    /// Label names in string order: (name sym, range of `values`).
    names: Vec<(u32, Range<usize>)>,
    /// Per name, values in string order: (value sym, postings entry offset in the section).
    values: Vec<(u32, u64)>,
    num_series: u32,
}

fn le64(b: Option<&[u8]>) -> Option<u64> {
    b?.try_into().ok().map(u64::from_le_bytes)
}

fn le32(b: Option<&[u8]>) -> Option<u32> {
    b?.try_into().ok().map(u32::from_le_bytes)
}

/// Checks the CRC that follows `range` and returns the section bytes.
fn checked_section<'a>(data: &'a [u8], range: &Range<usize>, what: &str) -> Result<&'a [u8]> {
    let body = data
        .get(range.clone())
        .ok_or_else(|| corrupt(range.start, format!("{what} section out of bounds")))?;
    let want = le32(data.get(range.end..range.end + CRC_LEN))
        .ok_or_else(|| corrupt(range.end, format!("{what} section CRC out of bounds")))?;
    if crc32(body) != want {
        return Err(corrupt(
            range.start,
            format!("{what} section checksum mismatch"),
        ));
    }
    Ok(body)
}

impl<B: AsRef<[u8]>> IndexReader<B> {
    /// Parses the table of contents and checks the format version.
    pub(crate) fn new(data: B) -> Result<Self> {
        let d = data.as_ref();
        if d.len() < MIN_INDEX_LEN {
            return Err(corrupt(
                0,
                format!("index of {} bytes is too short", d.len()),
            ));
        }
        if d.get(..VERSION_OFFSET) != Some(&INDEX_MAGIC[..]) {
            return Err(corrupt(0, "bad index magic"));
        }
        match d.get(VERSION_OFFSET) {
            Some(&INDEX_VERSION) => {}
            v => {
                return Err(corrupt(
                    VERSION_OFFSET,
                    format!("unsupported index version {v:?}"),
                ));
            }
        }
        let toc_start = d.len() - TOC_LEN;
        let toc = d.get(toc_start..d.len() - CRC_LEN).unwrap_or(&[]);
        if Some(crc32(toc)) != le32(d.get(d.len() - CRC_LEN..)) {
            return Err(corrupt(toc_start, "TOC checksum mismatch"));
        }
        let mut secs: [Range<usize>; TOC_SECTIONS] = Default::default();
        for (i, s) in secs.iter_mut().enumerate() {
            let at = i * 16;
            let (off, len) = match (le64(toc.get(at..at + 8)), le64(toc.get(at + 8..at + 16))) {
                (Some(o), Some(l)) => (o, l),
                _ => return Err(corrupt(toc_start + at, "short TOC")),
            };
            let start = usize::try_from(off).ok();
            let end = start
                .zip(usize::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l));
            match (start, end) {
                (Some(st), Some(en)) if st >= HEADER_LEN && en <= toc_start => *s = st..en,
                _ => {
                    return Err(corrupt(
                        toc_start + at,
                        format!("TOC entry {i} out of bounds"),
                    ));
                }
            }
        }
        let [series, series_offsets, symbols_r, label_index_r, postings] = secs;
        debug_assert_eq!(
            [
                SEC_SERIES,
                SEC_SERIES_OFFSETS,
                SEC_SYMBOLS,
                SEC_LABEL_INDEX,
                SEC_POSTINGS
            ],
            [0, 1, 2, 3, 4]
        );

        // Series offsets: a fixed-width table, checked once.
        let so = checked_section(d, &series_offsets, "series offsets")?;
        if so.len() % 8 != 0 {
            return Err(corrupt(
                series_offsets.start,
                "series offsets not a multiple of 8",
            ));
        }
        let num_series = u32::try_from(so.len() / 8)
            .map_err(|_| corrupt(series_offsets.start, "too many series"))?;

        // Symbols.
        let body = checked_section(d, &symbols_r, "symbols")?;
        let mut dec = Decbuf::new(body);
        let n = dec
            .uvarint_len(dec.remaining())
            .ok_or_else(|| corrupt(symbols_r.start, "bad symbol count"))?;
        let mut symbols = Vec::with_capacity(n);
        for _ in 0..n {
            let at = dec.pos();
            let s = dec
                .str()
                .ok_or_else(|| corrupt(symbols_r.start + at, "bad symbol"))?;
            let start = symbols_r.start + dec.pos() - s.len();
            symbols.push(start..start + s.len());
        }

        // Label index → postings offset table.
        let body = checked_section(d, &label_index_r, "label index")?;
        let mut dec = Decbuf::new(body);
        let bad = |dec: &Decbuf<'_>, what: &str| corrupt(label_index_r.start + dec.pos(), what);
        let nsyms = symbols.len();
        let sym = |dec: &mut Decbuf<'_>| {
            dec.uvarint_len(nsyms.saturating_sub(1))
                .filter(|_| nsyms > 0)
        };
        let nnames = dec
            .uvarint_len(dec.remaining() / 2)
            .ok_or_else(|| bad(&dec, "bad label name count"))?;
        let mut names = Vec::with_capacity(nnames);
        let mut values = Vec::new();
        for _ in 0..nnames {
            let name = sym(&mut dec).ok_or_else(|| bad(&dec, "bad label name symbol"))?;
            let nvals = dec
                .uvarint_len(dec.remaining() / 2)
                .ok_or_else(|| bad(&dec, "bad label value count"))?;
            let start = values.len();
            for _ in 0..nvals {
                let v = sym(&mut dec).ok_or_else(|| bad(&dec, "bad label value symbol"))?;
                let off = dec
                    .uvarint()
                    .filter(|&o| o < postings.len() as u64)
                    .ok_or_else(|| bad(&dec, "bad postings offset"))?;
                values.push((v as u32, off));
            }
            names.push((name as u32, start..values.len()));
        }
        if !dec.is_empty() {
            return Err(bad(&dec, "trailing bytes in label index"));
        }

        Ok(IndexReader {
            data,
            symbols,
            series_offsets,
            series,
            postings,
            names,
            values,
            num_series,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.data.as_ref()
    }

    /// Symbol `id` (UTF-8 validated at open, re-checked for safety).
    fn symbol(&self, id: u32) -> Result<&str> {
        self.symbols
            .get(id as usize)
            .and_then(|r| self.bytes().get(r.clone()))
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| corrupt(0, format!("symbol {id} out of range")))
    }

    /// Number of series (ids are `0..num_series`).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn num_series(&self) -> u32 {
        self.num_series
    }

    /// Sorted label names in the block.
    pub(crate) fn label_names(&self) -> Result<Vec<String>> {
        self.names
            .iter()
            .map(|(s, _)| self.symbol(*s).map(str::to_string))
            .collect()
    }

    /// Binary search in a sym-keyed slice sorted by symbol string.
    fn find<T>(&self, items: &[T], key: impl Fn(&T) -> u32, want: &str) -> Result<Option<usize>> {
        let (mut lo, mut hi) = (0, items.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let Some(item) = items.get(mid) else { break };
            match self.symbol(key(item))?.cmp(want) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(Some(mid)),
            }
        }
        Ok(None)
    }

    fn values_of(&self, name: &str) -> Result<&[(u32, u64)]> {
        let Some(i) = self.find(&self.names, |n| n.0, name)? else {
            return Ok(&[]);
        };
        let range = self.names.get(i).map(|n| n.1.clone()).unwrap_or_default();
        Ok(self.values.get(range).unwrap_or(&[]))
    }

    /// Sorted values of label `name` (empty when absent).
    pub(crate) fn label_values(&self, name: &str) -> Result<Vec<String>> {
        self.values_of(name)?
            .iter()
            .map(|(s, _)| self.symbol(*s).map(str::to_string))
            .collect()
    }

    /// Number of distinct values of `name`.
    pub(crate) fn value_count(&self, name: &str) -> Result<usize> {
        Ok(self.values_of(name)?.len())
    }

    /// The first `limit` values of `name` in sorted order whose postings intersect `filter`
    /// (every value when `None`). Stops at the `limit`-th: later symbols and postings are never
    /// read.
    pub(crate) fn label_values_limited(
        &self,
        name: &str,
        filter: Option<&RoaringBitmap>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for &(sym, off) in self.values_of(name)? {
            if out.len() >= limit {
                break;
            }
            #[cfg(test)]
            tests_hook::VISITED.with(|v| v.set(v.get() + 1));
            if let Some(f) = filter
                && self.read_postings(off as usize)?.is_disjoint(f)
            {
                continue;
            }
            out.push(self.symbol(sym)?.to_string());
        }
        Ok(out)
    }

    /// Ids of series with `name="value"` (empty when none).
    pub(crate) fn postings(&self, name: &str, value: &str) -> Result<RoaringBitmap> {
        let vals = self.values_of(name)?;
        let Some(i) = self.find(vals, |v| v.0, value)? else {
            return Ok(RoaringBitmap::new());
        };
        let off = vals.get(i).map_or(0, |v| v.1) as usize;
        self.read_postings(off)
    }

    /// Every postings list of label `name`, unioned (series that have the label at all).
    #[cfg(test)]
    pub(crate) fn postings_for_name(&self, name: &str) -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        for &(_, off) in self.values_of(name)? {
            out |= self.read_postings(off as usize)?;
        }
        Ok(out)
    }

    fn read_postings(&self, off: usize) -> Result<RoaringBitmap> {
        let abs = self.postings.start + off;
        let section = self.bytes().get(abs..self.postings.end).unwrap_or(&[]);
        let mut dec = Decbuf::new(section);
        let bad = |what: &str| corrupt(abs, what);
        let n = dec
            .uvarint_len(dec.remaining())
            .ok_or_else(|| bad("bad postings length"))?;
        let body = dec.bytes(n).ok_or_else(|| bad("postings out of bounds"))?;
        if Some(crc32(body)) != le32(dec.bytes(CRC_LEN)) {
            return Err(bad("postings checksum mismatch"));
        }
        let bm = RoaringBitmap::deserialize_from(body)
            .map_err(|e| bad(&format!("bad postings bitmap: {e}")))?;
        if bm.max().is_some_and(|m| m >= self.num_series) {
            return Err(bad("postings reference a series beyond the index"));
        }
        Ok(bm)
    }

    /// Ids of all series.
    pub(crate) fn all_postings(&self) -> RoaringBitmap {
        let mut bm = RoaringBitmap::new();
        bm.insert_range(0..self.num_series);
        bm
    }

    /// Labels and chunk metas of series `id`, written into the caller's buffers (cleared first).
    pub(crate) fn series(
        &self,
        id: u32,
        labels: &mut Labels,
        chunks: &mut Vec<ChunkMeta>,
    ) -> Result<()> {
        chunks.clear();
        let at = self.series_offsets.start + id as usize * 8;
        let off = le64(
            self.bytes()
                .get(at..at + 8)
                .filter(|_| id < self.num_series),
        )
        .ok_or_else(|| Error::InvalidArgument(format!("series id {id} not in the index")))?;
        let start = usize::try_from(off)
            .ok()
            .filter(|o| self.series.contains(o))
            .ok_or_else(|| corrupt(at, "series offset out of bounds"))?;
        let bad = |what: &str| corrupt(start, format!("series {id}: {what}"));
        let mut dec = Decbuf::new(self.bytes().get(start..self.series.end).unwrap_or(&[]));
        let n = dec
            .uvarint_len(dec.remaining())
            .ok_or_else(|| bad("bad entry length"))?;
        let payload = dec.bytes(n).ok_or_else(|| bad("entry out of bounds"))?;
        if Some(crc32(payload)) != le32(dec.bytes(CRC_LEN)) {
            return Err(bad("checksum mismatch"));
        }
        let mut dec = Decbuf::new(payload);
        let nl = dec
            .uvarint_len(dec.remaining() / 2)
            .ok_or_else(|| bad("bad label count"))?;
        let mut pairs = std::mem::take(labels).into_vec();
        pairs.clear();
        for _ in 0..nl {
            let (Some(n), Some(v)) = (dec.uvarint(), dec.uvarint()) else {
                return Err(bad("bad label symbols"));
            };
            let sym = |s: u64| u32::try_from(s).ok().and_then(|s| self.symbol(s).ok());
            let (Some(name), Some(value)) = (sym(n), sym(v)) else {
                return Err(bad("label symbol out of range"));
            };
            if pairs.last().is_some_and(|l| l.name.as_str() >= name) || value.is_empty() {
                return Err(bad("labels not sorted, not unique or empty"));
            }
            pairs.push(Label::new(name, value));
        }
        *labels = Labels::from_sorted(pairs);
        let nc = dec
            .uvarint_len(dec.remaining() / 3)
            .ok_or_else(|| bad("bad chunk count"))?;
        chunks.reserve(nc);
        let mut prev: Option<ChunkMeta> = None;
        for _ in 0..nc {
            let (Some(a), Some(b)) = (dec.varint(), dec.varint()) else {
                return Err(bad("bad chunk times"));
            };
            let c = match prev {
                None => {
                    let r = dec.uvarint().ok_or_else(|| bad("bad chunk ref"))?;
                    ChunkMeta {
                        min_time: a,
                        max_time: a.wrapping_add(b),
                        chunk_ref: r,
                    }
                }
                Some(p) => {
                    let r = dec.varint().ok_or_else(|| bad("bad chunk ref"))?;
                    let min_time = p.max_time.wrapping_add(a);
                    ChunkMeta {
                        min_time,
                        max_time: min_time.wrapping_add(b),
                        chunk_ref: p.chunk_ref.wrapping_add(r as u64),
                    }
                }
            };
            chunks.push(c);
            prev = Some(c);
        }
        if !dec.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(())
    }
}

/// Test-only count of label values [`IndexReader::label_values_limited`] looked at, per thread.
#[cfg(test)]
pub(crate) mod tests_hook {
    use std::cell::Cell;

    thread_local! {
        /// Values visited by `label_values_limited` on this thread.
        pub(crate) static VISITED: Cell<usize> = const { Cell::new(0) };
    }
}
