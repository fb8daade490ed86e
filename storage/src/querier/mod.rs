//! The querier over the head and blocks: [`select`] turns matchers into postings per reader,
//! [`merge`] merges series across readers by labels and samples by time.

pub(crate) mod merge;
pub(crate) mod select;

use crate::block::{BlockReader, overlaps};
use crate::error::{Error, Result};
use crate::interface::{Querier, SampleIterator, SeriesSet};
use crate::matcher::Matcher;
use crate::model::{Labels, Timestamp};
use merge::MergedSeries;
use roaring::RoaringBitmap;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A querier over a fixed set of readers (blocks and the head) and a closed time range.
/// Holding it keeps its blocks alive (their files are not deleted meanwhile).
pub(crate) struct DbQuerier {
    readers: Vec<Arc<dyn BlockReader>>,
    mint: Timestamp,
    maxt: Timestamp,
}

impl DbQuerier {
    /// A querier over the readers that overlap `[mint, maxt]`.
    pub(crate) fn new(
        readers: Vec<Arc<dyn BlockReader>>,
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Self {
        let readers = readers
            .into_iter()
            .filter(|r| overlaps(r.min_time(), r.max_time(), mint, maxt))
            .collect();
        Self {
            readers,
            mint,
            maxt,
        }
    }

    /// The merged series matching `matchers`.
    pub(crate) fn merged(&self, matchers: &[Matcher]) -> Result<MergedSeries> {
        let mut parts = Vec::with_capacity(self.readers.len());
        for r in &self.readers {
            let ids = select::postings_for_matchers(r.as_ref(), matchers)?;
            if ids.is_empty() {
                continue;
            }
            parts.push((r.clone(), r.sorted_ids(&ids)?));
        }
        Ok(MergedSeries::new(parts, self.mint, self.maxt))
    }

    /// The bounded union of `f(reader, matched ids)` over the readers; `None` ids when there
    /// are no matchers. Readers where nothing matches are skipped.
    fn union_limited(
        &self,
        matchers: &[Matcher],
        limit: usize,
        mut f: impl FnMut(&dyn BlockReader, Option<&RoaringBitmap>, &mut Bounded) -> Result<()>,
    ) -> Result<Vec<String>> {
        let mut out = Bounded::new(limit);
        for r in &self.readers {
            if matchers.is_empty() {
                f(r.as_ref(), None, &mut out)?;
                continue;
            }
            let ids = select::postings_for_matchers(r.as_ref(), matchers)?;
            if !ids.is_empty() {
                f(r.as_ref(), Some(&ids), &mut out)?;
            }
        }
        Ok(out.set.into_iter().collect())
    }
}

/// The smallest `limit` distinct strings offered, sorted: memory never exceeds `limit` + 1.
pub(crate) struct Bounded {
    set: BTreeSet<String>,
    limit: usize,
}

impl Bounded {
    fn new(limit: usize) -> Self {
        Self {
            set: BTreeSet::new(),
            limit,
        }
    }

    /// False when `v` cannot enter (the set is full of smaller strings).
    fn admits(&self, v: &str) -> bool {
        self.set.len() < self.limit || self.set.last().is_some_and(|last| v < last.as_str())
    }

    fn offer(&mut self, v: &str) {
        if !self.admits(v) || self.set.contains(v) {
            return;
        }
        self.set.insert(v.to_string());
        if self.set.len() > self.limit {
            self.set.pop_last();
        }
    }
}

/// The series set returned by [`DbQuerier::select`].
struct DbSeriesSet {
    merged: MergedSeries,
}

impl SeriesSet for DbSeriesSet {
    fn next(&mut self) -> bool {
        self.merged.next()
    }
    fn labels(&self) -> &Labels {
        self.merged.labels()
    }
    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(self.merged.samples())
    }
    fn err(&self) -> Option<&Error> {
        self.merged.err()
    }
}

impl Querier for DbQuerier {
    fn select(&self, matchers: &[Matcher]) -> Box<dyn SeriesSet + '_> {
        match self.merged(matchers) {
            Ok(merged) => Box::new(DbSeriesSet { merged }),
            Err(e) => Box::new(crate::interface::ErrSeriesSet::new(e)),
        }
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        self.label_names_limited(matchers, usize::MAX)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        self.label_values_limited(name, matchers, usize::MAX)
    }

    fn label_names_limited(&self, matchers: &[Matcher], limit: usize) -> Result<Vec<String>> {
        let mut labels = Labels::empty();
        self.union_limited(matchers, limit, |r, ids, out| {
            match ids {
                // Names are few per reader (tens to hundreds): no early stop needed.
                None => r.label_names()?.iter().for_each(|n| out.offer(n)),
                Some(ids) => {
                    for id in ids {
                        if r.labels(id, &mut labels)? {
                            labels.iter().for_each(|l| out.offer(&l.name));
                        }
                    }
                }
            }
            Ok(())
        })
    }

    fn label_values_limited(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut labels = Labels::empty();
        self.union_limited(matchers, limit, |r, ids, out| {
            // Fewer matching series than values: read each series' value. Otherwise walk the
            // sorted values, keeping those whose postings meet the matched ids, and stop at
            // `limit` (blocks never read the rest).
            if let Some(ids) = ids
                && ids.len() < r.label_value_count(name)? as u64
            {
                for id in ids {
                    if r.labels(id, &mut labels)?
                        && let Some(v) = labels.get(name)
                    {
                        out.offer(v);
                    }
                }
                return Ok(());
            }
            for v in r.label_values_limited(name, ids, limit)? {
                if !out.admits(&v) {
                    break;
                }
                out.offer(&v);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
