//! The synthetic series of each scrape (`up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`, `scrape_series_added`),
//! carrying the target's labels, and their staleness markers when a target goes away.

use super::Error;
use super::cache::AppendStats;
use argus_storage::{Appender, Label, Labels, SeriesRef, Timestamp, stale_nan};

const NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// The report series of one target, label sets built once.
#[derive(Debug)]
pub struct Report {
    series: [(Labels, Option<SeriesRef>); 5],
    /// Whether anything was written since the last staleness marking.
    written: bool,
}

impl Report {
    /// Report series for a target with these public labels. Target labels override exposed ones,
    /// as Prometheus's `mutateReportSampleLabels`.
    pub fn new(target_labels: &[Label]) -> Self {
        let series = NAMES.map(|n| {
            let mut pairs: Vec<Label> = target_labels.to_vec();
            pairs.push(Label::new(argus_storage::METRIC_NAME, n));
            (Labels::new(pairs), None)
        });
        Self {
            series,
            written: false,
        }
    }

    /// Appends one scrape's report at `ts` (ms). `ok` is `up`.
    pub fn append(
        &mut self,
        app: &mut dyn Appender,
        ts: Timestamp,
        ok: bool,
        duration_secs: f64,
        st: &AppendStats,
    ) -> Result<(), Error> {
        let values = [
            if ok { 1.0 } else { 0.0 },
            duration_secs,
            st.scraped as f64,
            st.post_relabel as f64,
            st.added as f64,
        ];
        self.write(app, ts, values)?;
        self.written = true;
        Ok(())
    }

    /// Staleness markers at `ts` for every report series (once).
    pub fn append_stale(&mut self, app: &mut dyn Appender, ts: Timestamp) -> Result<(), Error> {
        if !self.written {
            return Ok(());
        }
        self.write(app, ts, [stale_nan(); 5])?;
        self.written = false;
        Ok(())
    }

    fn write(
        &mut self,
        app: &mut dyn Appender,
        ts: Timestamp,
        values: [f64; 5],
    ) -> Result<(), Error> {
        for ((labels, sref), v) in self.series.iter_mut().zip(values) {
            match app.append(*sref, labels, ts, v) {
                Ok(r) => *sref = Some(r),
                Err(
                    argus_storage::Error::OutOfOrder
                    | argus_storage::Error::DuplicateSample
                    | argus_storage::Error::OutOfBounds
                    | argus_storage::Error::TooOld,
                ) => {}
                Err(e) => return Err(Error::Storage(e)),
            }
        }
        Ok(())
    }
}
