//! Series merged across readers: a k-way merge by labels over each reader's sorted series, and
//! a sample cursor over the chunks of all parts, deduplicated by timestamp, within `[mint, maxt]`.
//! Both the querier and the compactor read through [`MergedSeries`].

use crate::block::{BlockReader, ChunkSpan, SeriesChunks};
use crate::chunk::ChunkIterator;
use crate::error::{Error, Result};
use crate::histogram::FloatHistogram;
use crate::interface::{NewestSample, SampleIterator, read_newest};
use crate::model::{Labels, Timestamp};
use std::sync::Arc;

/// One reader's series in label order, with the current one loaded.
struct Cursor {
    reader: Arc<dyn BlockReader>,
    ids: Vec<u32>,
    pos: usize,
    cur: SeriesChunks,
    valid: bool,
}

impl Cursor {
    /// Loads the next series that has chunks in `[mint, maxt]`.
    fn advance(&mut self, mint: Timestamp, maxt: Timestamp) -> Result<()> {
        self.valid = false;
        while let Some(&id) = self.ids.get(self.pos) {
            self.pos += 1;
            if self.reader.series(id, mint, maxt, &mut self.cur)? && !self.cur.spans.is_empty() {
                self.valid = true;
                return Ok(());
            }
        }
        Ok(())
    }
}

/// A cursor over series merged by labels across readers.
pub(crate) struct MergedSeries {
    cursors: Vec<Cursor>,
    /// Indexes of cursors whose current series is the merged current series.
    current: Vec<usize>,
    mint: Timestamp,
    maxt: Timestamp,
    err: Option<Error>,
}

impl MergedSeries {
    /// Merges `parts`: each a reader and its selected ids, already in label order.
    pub(crate) fn new(
        parts: Vec<(Arc<dyn BlockReader>, Vec<u32>)>,
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Self {
        let mut cursors = Vec::with_capacity(parts.len());
        let mut err = None;
        for (reader, ids) in parts {
            let mut c = Cursor {
                reader,
                ids,
                pos: 0,
                cur: SeriesChunks::default(),
                valid: false,
            };
            if let Err(e) = c.advance(mint, maxt) {
                err = Some(e);
            }
            cursors.push(c);
        }
        Self {
            cursors,
            current: Vec::new(),
            mint,
            maxt,
            err,
        }
    }

    /// Moves to the next merged series; `false` at the end or on error.
    pub(crate) fn next(&mut self) -> bool {
        if self.err.is_some() {
            return false;
        }
        for &i in &self.current {
            if let Some(c) = self.cursors.get_mut(i)
                && let Err(e) = c.advance(self.mint, self.maxt)
            {
                self.err = Some(e);
                return false;
            }
        }
        self.current.clear();
        let mut min: Option<&Labels> = None;
        for c in &self.cursors {
            if c.valid && min.is_none_or(|m| c.cur.labels < *m) {
                min = Some(&c.cur.labels);
            }
        }
        let Some(min) = min else {
            return false;
        };
        // Borrowed, not cloned: one label copy less per series read.
        for (i, c) in self.cursors.iter().enumerate() {
            if c.valid && c.cur.labels == *min {
                self.current.push(i);
            }
        }
        true
    }

    /// Labels of the current series.
    pub(crate) fn labels(&self) -> &Labels {
        match self.current.first().and_then(|&i| self.cursors.get(i)) {
            Some(c) => &c.cur.labels,
            None => unreachable!("BUG: labels() called without a current series"),
        }
    }

    /// The chunks of the current series from every part, sorted by `min_t`.
    pub(crate) fn chunks(&self) -> Vec<(&[u8], ChunkSpan)> {
        let mut out = Vec::new();
        for c in self.current.iter().filter_map(|&i| self.cursors.get(i)) {
            for s in &c.cur.spans {
                out.push((c.cur.chunk(s), *s));
            }
        }
        out.sort_by_key(|(_, s)| s.min_t);
        out
    }

    /// A sample cursor over the current series within `[mint, maxt]`.
    pub(crate) fn samples(&self) -> ChunksIterator<'_> {
        ChunksIterator::new(self.chunks(), self.mint, self.maxt)
    }

    /// The error that ended iteration.
    pub(crate) fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }

    /// Takes the error out.
    pub(crate) fn take_err(&mut self) -> Option<Error> {
        self.err.take()
    }
}

fn chunk_error(e: &Error) -> Error {
    Error::corruption("chunk", 0, e.to_string())
}

/// A decoded sample in merge mode: time, float value, histogram (for histogram samples).
type MergedSample = (Timestamp, f64, Option<Box<FloatHistogram>>);

/// Samples of a series' chunks within `[mint, maxt]`, deduplicated by timestamp (the earliest
/// chunk wins). Non-overlapping chunks are streamed; overlapping ones are decoded and merged.
pub(crate) struct ChunksIterator<'a> {
    chunks: Vec<(&'a [u8], ChunkSpan)>,
    mint: Timestamp,
    maxt: Timestamp,
    // Streaming mode.
    idx: usize,
    /// The current chunk's cursor, reused (with its decode buffer) across chunks.
    it: Option<ChunkIterator<'a>>,
    /// `it` is positioned inside a chunk that may have more samples.
    live: bool,
    // Merge mode: all samples decoded, sorted, deduplicated and trimmed; histogram samples
    // carry their histogram.
    merged: Option<Vec<MergedSample>>,
    pos: usize,
    cur: (Timestamp, f64),
    started: bool,
    done: bool,
    err: Option<Error>,
}

impl<'a> ChunksIterator<'a> {
    /// Iterates `chunks` (sorted by `min_t`) within `[mint, maxt]`.
    pub(crate) fn new(
        chunks: Vec<(&'a [u8], ChunkSpan)>,
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Self {
        let overlapping = chunks
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.1.max_t >= b.1.min_t));
        let mut s = Self {
            chunks,
            mint,
            maxt,
            idx: 0,
            it: None,
            live: false,
            merged: None,
            pos: 0,
            cur: (0, 0.0),
            started: false,
            done: false,
            err: None,
        };
        if overlapping {
            s.merge_all();
        }
        s
    }

    fn merge_all(&mut self) {
        // Each sample with its chunk and position there, to tell which histogram hints still
        // hold once chunks interleave.
        let mut all: Vec<(MergedSample, usize, usize)> = Vec::new();
        for (ci, (bytes, span)) in self.chunks.iter().enumerate() {
            if span.max_t < self.mint || span.min_t > self.maxt {
                continue;
            }
            let mut it = ChunkIterator::new(span.enc, bytes);
            let mut k = 0;
            while it.next() {
                let (t, v) = it.at();
                if t >= self.mint && t <= self.maxt {
                    let h = it.at_histogram().map(|h| Box::new(h.clone()));
                    all.push(((t, v, h), ci, k));
                }
                k += 1;
            }
            if let Some(e) = it.err() {
                self.err = Some(chunk_error(e));
            }
        }
        // Stable sort keeps the earlier chunk's sample first among equal timestamps.
        all.sort_by_key(|s| s.0.0);
        all.dedup_by_key(|s| s.0.0);
        // A histogram whose predecessor is not its predecessor in its own chunk (chunks
        // interleave: out-of-order data) has an unknown counter-reset hint, as Prometheus's
        // merging iterators set it; gauge hints stay.
        let mut prev: Option<(usize, usize)> = None;
        for ((_, _, h), ci, k) in &mut all {
            if let Some(h) = h
                && !h.is_gauge()
                && prev != k.checked_sub(1).map(|p| (*ci, p))
            {
                h.counter_reset_hint = crate::histogram::CounterResetHint::Unknown;
            }
            prev = Some((*ci, *k));
        }
        self.merged = Some(all.into_iter().map(|s| s.0).collect());
    }

    /// Opens chunks until one yields a sample `>= t` (streaming mode).
    fn stream_seek(&mut self, t: Timestamp) -> bool {
        loop {
            if let Some(it) = self.it.as_mut().filter(|_| self.live) {
                if it.seek(t) {
                    self.cur = it.at();
                    return true;
                }
                if let Some(e) = it.err() {
                    self.err = Some(chunk_error(e));
                    return false;
                }
                self.live = false;
            }
            let Some((bytes, span)) = self.chunks.get(self.idx) else {
                return false;
            };
            self.idx += 1;
            if span.max_t < t {
                continue;
            }
            match self.it.as_mut() {
                Some(it) => it.reset(span.enc, bytes),
                None => self.it = Some(ChunkIterator::new(span.enc, bytes)),
            }
            self.live = true;
        }
    }

    fn stream_next(&mut self) -> bool {
        if let Some(it) = self.it.as_mut().filter(|_| self.live) {
            if it.next() {
                self.cur = it.at();
                return true;
            }
            if let Some(e) = it.err() {
                self.err = Some(chunk_error(e));
                return false;
            }
            self.live = false;
        }
        // Next chunk: its first sample (chunks are sorted and disjoint).
        self.stream_seek(i64::MIN)
    }

    fn finish(&mut self, ok: bool) -> bool {
        if !ok || self.cur.0 > self.maxt {
            self.done = true;
            return false;
        }
        true
    }
}

impl SampleIterator for ChunksIterator<'_> {
    fn next(&mut self) -> bool {
        if self.done || self.err.is_some() {
            return false;
        }
        if let Some(m) = &self.merged {
            if self.started {
                self.pos += 1;
            }
            self.started = true;
            return match m.get(self.pos) {
                Some(s) => {
                    self.cur = (s.0, s.1);
                    true
                }
                None => {
                    self.done = true;
                    false
                }
            };
        }
        let ok = if self.started {
            self.stream_next()
        } else {
            self.started = true;
            self.stream_seek(self.mint)
        };
        self.finish(ok)
    }

    fn seek(&mut self, t: Timestamp) -> bool {
        if self.done || self.err.is_some() {
            return false;
        }
        let t = t.max(self.mint);
        if self.started && self.cur.0 >= t {
            return true;
        }
        if let Some(m) = &self.merged {
            self.started = true;
            let rest = m.get(self.pos..).unwrap_or(&[]);
            self.pos += rest.partition_point(|s| s.0 < t);
            return match m.get(self.pos) {
                Some(s) => {
                    self.cur = (s.0, s.1);
                    true
                }
                None => {
                    self.done = true;
                    false
                }
            };
        }
        self.started = true;
        let ok = self.stream_seek(t);
        self.finish(ok)
    }

    fn at(&self) -> (Timestamp, f64) {
        self.cur
    }

    fn at_histogram(&self) -> Option<&FloatHistogram> {
        match &self.merged {
            Some(m) => m.get(self.pos).and_then(|s| s.2.as_deref()),
            None => self.it.as_ref().and_then(|it| it.at_histogram()),
        }
    }

    fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }

    /// The newest sample of the last chunk that has one in range: from the span's known last
    /// value when the whole chunk is in range (the head's open chunk), else by reading that
    /// chunk forward (merge mode: a binary search of the merged run).
    fn newest(&mut self, mint: Timestamp, maxt: Timestamp) -> Option<NewestSample> {
        if self.started || self.done || self.err.is_some() {
            return read_newest(self, mint, maxt);
        }
        self.started = true;
        self.done = true;
        let (mint, maxt) = (mint.max(self.mint), maxt.min(self.maxt));
        if let Some(m) = &self.merged {
            let s = m.get(m.partition_point(|s| s.0 <= maxt).checked_sub(1)?)?;
            return (s.0 >= mint).then(|| match &s.2 {
                Some(h) => NewestSample::Histogram(s.0, (**h).clone()),
                None => NewestSample::Float(s.0, s.1),
            });
        }
        // Streaming mode: chunks are sorted and disjoint, so the newest sample is in the last
        // chunk that starts by `maxt` and has a sample in range.
        for (bytes, span) in self.chunks.iter().rev() {
            if span.min_t > maxt {
                continue;
            }
            if span.max_t < mint {
                return None;
            }
            if span.max_t <= maxt
                && let Some(v) = span.last_v
            {
                return Some(NewestSample::Float(span.max_t, f64::from_bits(v)));
            }
            let it = match self.it.as_mut() {
                Some(it) => {
                    it.reset(span.enc, bytes);
                    it
                }
                None => self.it.insert(ChunkIterator::new(span.enc, bytes)),
            };
            let found = read_newest(it, mint, maxt);
            if let Some(e) = it.err() {
                self.err = Some(chunk_error(e));
                return None;
            }
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Streams whole chunks through their cursors' decode loops (merge mode: copies the
    /// merged run).
    fn append_floats(&mut self, maxt: Timestamp, dst: &mut Vec<(Timestamp, f64)>) -> bool {
        if !self.started || self.done || self.err.is_some() {
            return false;
        }
        if let Some(m) = &self.merged {
            // Already trimmed to `[mint, self.maxt]`.
            let mut pos = self.pos;
            while let Some(s) = m.get(pos) {
                if s.0 > maxt || s.2.is_some() {
                    self.pos = pos;
                    self.cur = (s.0, s.1);
                    return true;
                }
                dst.push((s.0, s.1));
                pos += 1;
            }
            self.pos = pos;
            self.done = true;
            return false;
        }
        let lim = maxt.min(self.maxt);
        loop {
            // On a sample in streaming mode, the chunk cursor is live and on that sample.
            let Some(it) = self.it.as_mut().filter(|_| self.live) else {
                self.done = true;
                return false;
            };
            if it.append_floats(lim, dst) {
                self.cur = it.at();
                if self.cur.0 > self.maxt {
                    self.done = true;
                    return false;
                }
                return true;
            }
            if let Some(e) = it.err() {
                self.err = Some(chunk_error(e));
                return false;
            }
            self.live = false;
            let ok = self.stream_seek(i64::MIN);
            if !self.finish(ok) {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::XorChunk;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn encode(samples: &[(i64, f64)]) -> (Vec<u8>, i64, i64) {
        let mut c = XorChunk::new();
        for &(t, v) in samples {
            c.append(t, v);
        }
        (
            c.bytes().to_vec(),
            samples[0].0,
            samples[samples.len() - 1].0,
        )
    }

    fn collect(it: &mut ChunksIterator<'_>) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        while it.next() {
            out.push(it.at());
        }
        assert!(it.err().is_none());
        out
    }

    proptest! {
        #[test]
        fn merged_chunks_match_model(
            chunks in proptest::collection::vec(
                proptest::collection::btree_set(0i64..300, 1..40), 1..5),
            mint in -10i64..200, len in 0i64..300, seek in 0i64..300,
        ) {
            let maxt = mint + len;
            let mut encoded = Vec::new();
            for (i, ts) in chunks.iter().enumerate() {
                let samples: Vec<(i64, f64)> = ts.iter().map(|&t| (t, (t * 10 + i as i64) as f64)).collect();
                encoded.push(encode(&samples));
            }
            // The iterator sorts nothing itself: give chunks sorted by min_t, as readers do.
            let mut order: Vec<usize> = (0..encoded.len()).collect();
            order.sort_by_key(|&i| encoded[i].1);
            // Among equal timestamps the earliest chunk (by min_t, then position) wins.
            let mut model = BTreeMap::new();
            for &i in &order {
                for &t in &chunks[i] {
                    model.entry(t).or_insert((t * 10 + i as i64) as f64);
                }
            }
            let spans_of = |known: bool| -> Vec<(&[u8], ChunkSpan)> {
                order.iter().map(|&i| {
                    let (b, lo, hi) = &encoded[i];
                    let last_v = known.then(|| ((*hi * 10 + i as i64) as f64).to_bits());
                    (&b[..], ChunkSpan { min_t: *lo, max_t: *hi, start: 0, end: b.len(), enc: crate::chunk::Encoding::Xor, last_v })
                }).collect()
            };
            let spans = spans_of(false);
            let want: Vec<(i64, f64)> = model.range(mint..=maxt).map(|(&t, &v)| (t, v)).collect();
            let mut it = ChunksIterator::new(spans.clone(), mint, maxt);
            prop_assert_eq!(collect(&mut it), want.clone());
            let mut it = ChunksIterator::new(spans.clone(), mint, maxt);
            let after: Vec<(i64, f64)> = want.iter().copied().filter(|s| s.0 >= seek).collect();
            prop_assert_eq!(it.seek(seek), !after.is_empty());
            if let Some(first) = after.first() {
                prop_assert_eq!(it.at(), *first);
                let mut rest = vec![it.at()];
                rest.extend(collect(&mut it));
                prop_assert_eq!(rest, after.clone());
            }
            // The batch read: up to `cut` in one call, then the rest after the sample it
            // stopped on (streaming across chunks, or the merged run).
            let mut it = ChunksIterator::new(spans, mint, maxt);
            let cut = seek + len / 2;
            let mut got = Vec::new();
            let mut stopped = it.seek(seek) && it.append_floats(cut, &mut got);
            let head: Vec<(i64, f64)> = after.iter().copied().filter(|s| s.0 <= cut).collect();
            prop_assert_eq!(&got, &head);
            prop_assert_eq!(stopped, after.len() > head.len());
            if stopped {
                prop_assert_eq!(it.at(), after[head.len()]);
                stopped = it.append_floats(i64::MAX, &mut got);
                prop_assert!(!stopped);
                prop_assert_eq!(&got, &after);
            }
            prop_assert!(!it.next() && it.err().is_none());
            // The newest sample in `[seek, cut]`, with the chunks' last values unknown (read
            // forward) and known (the head's open chunk), streaming or merged.
            let newest = want.iter().rev().find(|s| s.0 >= seek && s.0 <= cut).copied();
            for known in [false, true] {
                let spans: Vec<(&[u8], ChunkSpan)> = spans_of(known);
                let mut it = ChunksIterator::new(spans, mint, maxt);
                let got = match it.newest(seek, cut) {
                    Some(NewestSample::Float(t, v)) => Some((t, v)),
                    Some(NewestSample::Histogram(..)) => None,
                    None => None,
                };
                prop_assert_eq!(got, newest, "last values known: {}", known);
                prop_assert!(it.err().is_none());
            }
        }
    }
}
