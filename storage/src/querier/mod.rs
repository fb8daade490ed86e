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

    fn collect_labels(
        &self,
        matchers: &[Matcher],
        mut f: impl FnMut(&Labels),
        mut all: impl FnMut(&dyn BlockReader) -> Result<()>,
    ) -> Result<()> {
        let mut labels = Labels::empty();
        for r in &self.readers {
            if matchers.is_empty() {
                all(r.as_ref())?;
                continue;
            }
            for id in select::postings_for_matchers(r.as_ref(), matchers)? {
                if r.labels(id, &mut labels)? {
                    f(&labels);
                }
            }
        }
        Ok(())
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
        let mut names = BTreeSet::new();
        let mut all = BTreeSet::new();
        self.collect_labels(
            matchers,
            |l| names.extend(l.iter().map(|l| l.name.clone())),
            |r| {
                all.extend(r.label_names()?);
                Ok(())
            },
        )?;
        names.extend(all);
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut values = BTreeSet::new();
        let mut all = BTreeSet::new();
        self.collect_labels(
            matchers,
            |l| {
                if let Some(v) = l.get(name) {
                    values.insert(v.to_string());
                }
            },
            |r| {
                all.extend(r.label_values(name)?);
                Ok(())
            },
        )?;
        values.extend(all);
        Ok(values.into_iter().collect())
    }
}
