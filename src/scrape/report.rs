//! The synthetic series of each scrape (`up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`, `scrape_series_added`),
//! carrying the target's labels, and their staleness markers when a target goes away.

use super::Error;
use super::cache::AppendStats;
use argus_storage::{Appender, Label, Labels, SeriesHandle, Timestamp, stale_nan};

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
    /// Each series' labels and, once appended, its handle: appending by handle skips the
    /// lookup by ref and the labels' comparison an `append` with a ref hint does (five samples
    /// cost ~1 % of a 1,000-series scrape's CPU that way, benches/README.md "scrape6").
    series: [(Labels, Option<SeriesHandle>); 5],
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
        for ((labels, handle), v) in self.series.iter_mut().zip(values) {
            let hint = handle.as_ref().map(SeriesHandle::series_ref);
            let (r, by_handle) = match handle.as_ref().map(|h| app.append_handle(h, ts, v)) {
                Some(Ok(Some(r))) => (Ok(r), true),
                // The handle's series is gone (or the storage has no handles): by labels, as
                // before the handle.
                Some(Ok(None)) | None => (app.append(hint, labels, ts, v), false),
                Some(Err(e)) => (Err(e), true),
            };
            match r {
                // One lookup per new (or re-created) series.
                Ok(r) if by_handle && Some(r) == hint => {}
                Ok(r) => *handle = Some(app.handle(r)),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use argus_storage::testing::{MemStorage, dump_floats as dump};
    use argus_storage::{Appendable, SeriesRef};

    use crate::scrape::cache::tests::open_db;

    fn report_into(r: &mut Report, s: &dyn Appendable, ts: Timestamp, stale: bool) {
        let mut app = s.appender();
        if stale {
            r.append_stale(app.as_mut(), ts).unwrap();
        } else {
            let st = AppendStats {
                scraped: u64::try_from(ts / 1000).unwrap(),
                ..AppendStats::default()
            };
            r.append(app.as_mut(), ts, true, 0.25, &st).unwrap();
        }
        app.commit().unwrap();
    }

    /// Against a head the report appends by handle; it stores what the label path stores
    /// (MemStorage has no handles), also after the head dropped its series (a cut with no
    /// report sample since: the handles reach nothing, and the next report goes by labels and
    /// takes new ones), with a repeated timestamp rejected and staleness markers at the end.
    #[test]
    fn by_handle_stores_what_the_label_path_stores() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path());
        let mem = MemStorage::new();
        let labels = [Label::new("instance", "h:1"), Label::new("job", "j")];
        let (mut by_handle, mut by_labels) = (Report::new(&labels), Report::new(&labels));
        let both = |a: &mut Report, b: &mut Report, ts, stale| {
            report_into(a, &db, ts, stale);
            report_into(b, &mem, ts, stale);
        };
        both(&mut by_handle, &mut by_labels, 1000, false);
        both(&mut by_handle, &mut by_labels, 2000, false);
        both(&mut by_handle, &mut by_labels, 2000, false);
        let refs: Vec<SeriesRef> = by_handle
            .series
            .iter()
            .map(|(_, h)| h.as_ref().unwrap().series_ref())
            .collect();
        // Another series moves the head on; the cut takes the report series into a block.
        let mut app = db.appender();
        let other = Labels::from_pairs(&[("__name__", "other")]);
        app.append(None, &other, 10_000, 0.0).unwrap();
        app.commit().unwrap();
        let mut app = mem.appender();
        app.append(None, &other, 10_000, 0.0).unwrap();
        app.commit().unwrap();
        db.compact().unwrap();
        let mut app = db.appender();
        for r in &refs {
            assert!(
                app.append_ref(*r, 10_000, 0.0).unwrap().is_none(),
                "the cut must have dropped the report series from the head"
            );
        }
        app.rollback();
        both(&mut by_handle, &mut by_labels, 10_001, false);
        both(&mut by_handle, &mut by_labels, 11_000, false);
        both(&mut by_handle, &mut by_labels, 12_000, true);
        let (got, want) = (dump(&db), dump(&mem));
        assert_eq!(got, want, "\nexpected:\n{want:#?}\ngot:\n{got:#?}");
        assert_eq!(got.len(), 6, "five report series and `other`: {got:#?}");
        let up = got.iter().find(|(l, _)| l.contains("\"up\"")).unwrap();
        assert_eq!(
            up.1.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![1000, 2000, 10_001, 11_000, 12_000]
        );
    }
}
