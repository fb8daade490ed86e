//! The blocking half of a queue: reads the WAL through a `WalWatcher`, resolves series refs to
//! the labels that will be sent (external labels added, `write_relabel_configs` applied, once
//! per series) and collects samples for the next round.

use super::metrics::QueueMetrics;
use crate::config::relabel::{self, RelabelConfig};
use crate::ingest::prompb;
use argus_storage::{FloatHistogram, Labels, WalEntry, WalPosition, WalWatcher};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A series as it is sent.
#[derive(Debug)]
pub struct SendSeries {
    /// Labels after external labels and relabeling, as the `Label` fields of a 1.0
    /// `TimeSeries` (`wire::encode_labels`): written into each request as they are, and
    /// smaller than the label strings.
    pub labels_pb: Box<[u8]>,
    /// The labels' `stable_hash()`, which picks the shard (so a series' samples stay in order).
    pub hash: u64,
    /// Orders the series of a request ([`super::wire`]): the first 16 bytes of the first
    /// label's value (the metric name), big-endian, zero-padded.
    pub name_key: u128,
    /// `labels_pb` from this offset on (after the first label) breaks ties of `name_key`.
    pub rest_at: u32,
}

impl SendSeries {
    /// The series sent under `labels`.
    pub fn new(labels: Labels) -> SendSeries {
        let mut pb = Vec::new();
        let mut name_key = 0u128;
        if let Some(first) = labels.iter().next() {
            super::wire::encode_labels_one(first, &mut pb);
            // Byte i of the value at bits 120 - 8i: integer order is byte order.
            for i in 0..16 {
                let b = first.value.as_bytes().get(i).copied().unwrap_or(0);
                name_key = name_key << 8 | u128::from(b);
            }
        }
        let rest_at = u32::try_from(pb.len()).unwrap_or(u32::MAX);
        super::wire::encode_labels(&labels, &mut pb);
        // `pb` now holds the first label twice: drop the copy written to measure it.
        pb.drain(..rest_at as usize);
        SendSeries {
            labels_pb: pb.into_boxed_slice(),
            hash: labels.stable_hash(),
            name_key,
            rest_at,
        }
    }

    /// `labels_pb` after the first label.
    pub fn rest(&self) -> &[u8] {
        self.labels_pb
            .get(self.rest_at as usize..)
            .unwrap_or_default()
    }

    /// A 1.0 `TimeSeries` with the labels and nothing else (the prost path: 2.0 requests,
    /// histograms).
    pub fn to_proto(&self) -> prompb::TimeSeries {
        use prost::Message;
        prompb::TimeSeries::decode(&*self.labels_pb)
            .unwrap_or_else(|e| unreachable!("BUG: labels encoded by wire do not decode: {e}"))
    }

    /// The labels.
    #[cfg(test)]
    pub fn labels(&self) -> Labels {
        let pairs: Vec<(String, String)> = self
            .to_proto()
            .labels
            .into_iter()
            .map(|l| (l.name, l.value))
            .collect();
        Labels::from_pairs(&pairs)
    }
}

/// A sample waiting to be sent.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Its series.
    pub series: Arc<SendSeries>,
    /// ms.
    pub t: i64,
    /// Value (stale markers included).
    pub v: Value,
}

/// The value of a [`Pending`] sample.
#[derive(Clone, Debug)]
pub enum Value {
    /// A float sample.
    Float(f64),
    /// A native-histogram sample (boxed: floats keep `Pending` small).
    Histogram(Box<FloatHistogram>),
}

/// WAL reading state. Moved into `spawn_blocking` for each read.
pub struct Reader {
    watcher: WalWatcher,
    /// Series by WAL ref (`None` when relabeling drops it), with the WAL segment the reader was
    /// in when the series was last defined. Series the head no longer holds are forgotten at
    /// each new WAL checkpoint ([`WalEntry::SeriesReset`]).
    series: HashMap<u64, (Option<Arc<SendSeries>>, u32), foldhash::fast::RandomState>,
    external: Labels,
    relabel: Vec<RelabelConfig>,
    /// Samples older than `now - age_limit` are dropped (0 = no limit), ms.
    age_limit_ms: i64,
    /// Forward native histograms (`send_native_histograms`); else they are skipped.
    send_histograms: bool,
    metrics: Arc<QueueMetrics>,
}

impl Reader {
    /// A reader over `watcher`.
    pub fn new(
        watcher: WalWatcher,
        external: Labels,
        relabel: Vec<RelabelConfig>,
        age_limit_ms: i64,
        send_histograms: bool,
        metrics: Arc<QueueMetrics>,
    ) -> Reader {
        Reader {
            watcher,
            series: HashMap::default(),
            external,
            relabel,
            age_limit_ms,
            send_histograms,
            metrics,
        }
    }

    /// The position after everything read so far.
    pub fn position(&self) -> WalPosition {
        self.watcher.position()
    }

    fn resolve(&self, labels: Labels) -> Option<Arc<SendSeries>> {
        let mut l = labels;
        for e in self.external.iter() {
            if l.get(&e.name).is_none() {
                l.set(&e.name, &e.value);
            }
        }
        if !relabel::process(&mut l, &self.relabel) || l.is_empty() {
            return None;
        }
        Some(Arc::new(SendSeries::new(l)))
    }

    /// Samples older than this are dropped (`sample_age_limit`), ms.
    fn min_t(&self, now_ms: i64) -> i64 {
        if self.age_limit_ms > 0 {
            now_ms.saturating_sub(self.age_limit_ms)
        } else {
            i64::MIN
        }
    }

    /// Reads records into `batch` until it holds at least `cap` samples or the reader caught
    /// up with the writer. Returns whether it caught up.
    pub fn fill(
        &mut self,
        batch: &mut Vec<Pending>,
        cap: usize,
        now_ms: i64,
    ) -> Result<bool, String> {
        let m = self.metrics.clone();
        let skipped = self.watcher.skipped_segments();
        let res = loop {
            if batch.len() >= cap {
                break Ok(false);
            }
            let entry = match self.watcher.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break Ok(true),
                Err(e) => break Err(format!("cannot read the WAL: {e}")),
            };
            match entry {
                WalEntry::Series(series) => {
                    let seg = self.watcher.position().segment;
                    for s in series {
                        // Resolved again each time: a ref may be reused for other labels
                        // after a restart whose head had forgotten it.
                        let r = self.resolve(s.labels);
                        self.series.insert(s.series_ref, (r, seg));
                    }
                }
                WalEntry::SeriesReset(checkpoint) => {
                    self.series.retain(|_, e| e.1 > checkpoint);
                }
                WalEntry::Samples(samples) => {
                    let min_t = self.min_t(now_ms);
                    let mut dropped = 0;
                    let mut highest = i64::MIN;
                    for s in samples {
                        highest = highest.max(s.t);
                        match self.series.get(&s.series_ref) {
                            Some((Some(series), _)) if s.t >= min_t => batch.push(Pending {
                                series: series.clone(),
                                t: s.t,
                                v: Value::Float(s.v),
                            }),
                            _ => dropped += 1,
                        }
                    }
                    m.samples_dropped.fetch_add(dropped, Ordering::Relaxed);
                    QueueMetrics::raise(&m.highest_read_ms, highest);
                }
                WalEntry::Histograms(_) if !self.send_histograms => {}
                WalEntry::Histograms(hists) => {
                    let min_t = self.min_t(now_ms);
                    let mut dropped = 0;
                    let mut highest = i64::MIN;
                    for h in hists {
                        highest = highest.max(h.t);
                        match self.series.get(&h.series_ref) {
                            Some((Some(series), _)) if h.t >= min_t => batch.push(Pending {
                                series: series.clone(),
                                t: h.t,
                                v: Value::Histogram(Box::new(h.h)),
                            }),
                            _ => dropped += 1,
                        }
                    }
                    m.histograms_dropped.fetch_add(dropped, Ordering::Relaxed);
                    QueueMetrics::raise(&m.highest_read_ms, highest);
                }
            }
        };
        let now_skipped = self.watcher.skipped_segments();
        m.wal_segments_skipped
            .fetch_add(now_skipped - skipped, Ordering::Relaxed);
        res
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use argus_storage::{Appendable, Db, Options, SyncMode};

    fn db(dir: &std::path::Path) -> Db {
        Db::open(
            dir,
            Options {
                block_range_ms: 1000,
                // Small enough that the appends below span several segments: a reader sees a
                // new checkpoint when it moves to the next segment (single-sample WAL frames
                // are ~20 bytes since segment version 3's delta bodies).
                wal_segment_size: 128,
                background: false,
                sync: SyncMode::Buffer,
                retention_ms: None,
                ..Options::default()
            },
        )
        .unwrap()
    }

    fn append(db: &Db, name: &str, t: i64) {
        let mut app = db.appender();
        app.append(
            None,
            &Labels::from_pairs(&[("__name__", name)]),
            t,
            t as f64,
        )
        .unwrap();
        app.commit().unwrap();
    }

    fn reader(db: &Db, start: WalPosition) -> Reader {
        Reader::new(
            db.wal_watcher(start).unwrap(),
            Labels::from_pairs(&[("replica", "a")]),
            Vec::new(),
            0,
            true,
            Arc::new(QueueMetrics::default()),
        )
    }

    fn times(batch: &[Pending], name: &str) -> Vec<i64> {
        batch
            .iter()
            .filter(|p| p.series.labels().get("__name__") == Some(name))
            .map(|p| p.t)
            .collect()
    }

    #[test]
    fn kept_segments_survive_a_cut_and_dead_series_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let keep = db.wal_keep(0);
        let mut r = reader(&db, WalPosition::default());
        append(&db, "dies", 0);
        for t in 0..10 {
            append(&db, "lives", t * 500);
        }
        let mut batch = Vec::new();
        assert!(r.fill(&mut batch, usize::MAX, 0).unwrap());
        assert_eq!(times(&batch, "dies"), vec![0]);
        assert_eq!(r.series.len(), 2);
        assert_eq!(
            batch[0].series.labels(),
            Labels::from_pairs(&[("__name__", "dies"), ("replica", "a")])
        );
        // The cut drops "dies" from the head and checkpoints the WAL, but only below the kept
        // segment: a new reader from the start still gets every sample.
        db.compact().unwrap();
        let mut again = Vec::new();
        reader(&db, WalPosition::default())
            .fill(&mut again, usize::MAX, 0)
            .unwrap();
        assert_eq!(times(&again, "lives").len(), 10);
        // Released: the next cut checkpoints everything read; the reader forgets "dies".
        keep.set(r.position().segment);
        for t in 10..20 {
            append(&db, "lives", t * 500);
        }
        db.compact().unwrap();
        for t in 20..30 {
            append(&db, "lives", t * 500);
        }
        let mut batch = Vec::new();
        r.fill(&mut batch, usize::MAX, 0).unwrap();
        assert_eq!(
            times(&batch, "lives"),
            (10..30).map(|t| t * 500).collect::<Vec<_>>()
        );
        assert_eq!(r.series.len(), 1, "{:?}", r.series.keys());
    }
}
