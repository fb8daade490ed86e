//! Metric metadata for remote write (`metadata_config`), as Prometheus sends it.
//!
//! The metadata comes from a [`MetadataSource`] the server fills once the scrape manager
//! exists: every active target's HELP/TYPE/UNIT, plus what Argus itself received by remote
//! write. Each queue runs a task ([`run`]) that takes a snapshot every `send_interval` (and at
//! start):
//! - 1.0 queues send it as `WriteRequest.metadata` in requests of at most
//!   `max_samples_per_send` entries, through the queue's `Link` (same client, retries and
//!   counters as samples);
//! - 2.0 has no metadata-only message: the snapshot becomes the queue's [`Families`], and each
//!   series of a request carries its family's metadata (`TimeSeries.metadata`). A series whose
//!   family the map lacks (typically in the first `send_interval`, before the first scrapes)
//!   makes the task refresh sooner: after 1 s, doubling while refreshes find nothing new, up to
//!   `send_interval`.

use super::queue::{Counts, Link, Round};
use crate::config::remote_write::{MetadataConfig, ProtobufMessage};
use crate::ingest::metadata::MetadataStore;
use crate::ingest::prompb::{MetricMetadata, WriteRequest};
use crate::ingest::remote_write;
use crate::scrape::ScrapeManager;
use argus_storage::METRIC_NAME;
use parking_lot::RwLock;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// Produces the current metadata (any order, duplicates allowed).
pub type Source = Box<dyn Fn() -> Vec<MetricMetadata> + Send + Sync>;

/// Where queues take metadata from; empty until the server sets it. Shared by every queue.
#[derive(Default)]
pub struct MetadataSource {
    /// The source; guarded by its own lock, held only to call it.
    source: RwLock<Option<Source>>,
}

impl MetadataSource {
    /// Sets the source (the server does so once the scrape manager runs).
    pub fn set(&self, f: Source) {
        *self.source.write() = Some(f);
    }

    /// The current metadata, sorted by family name, without duplicates.
    pub fn snapshot(&self) -> Vec<MetricMetadata> {
        let all = match self.source.read().as_ref() {
            Some(f) => f(),
            None => return Vec::new(),
        };
        let set: BTreeSet<Key> = all.into_iter().map(Key).collect();
        set.into_iter().map(|k| k.0).collect()
    }
}

/// Orders metadata by (name, type, help, unit).
#[derive(PartialEq)]
struct Key(MetricMetadata);

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        fn k(m: &MetricMetadata) -> (&str, i32, &str, &str) {
            (&m.metric_family_name, m.r#type, &m.help, &m.unit)
        }
        k(&self.0).cmp(&k(&other.0))
    }
}

/// `MetricMetadata.type` of a type name (`unknown` and anything else: 0).
pub fn type_number(kind: &str) -> i32 {
    match kind {
        "counter" => 1,
        "gauge" => 2,
        "histogram" => 3,
        "gaugehistogram" => 4,
        "summary" => 5,
        "info" => 6,
        "stateset" => 7,
        _ => 0,
    }
}

/// The server's source: the metadata of every active scrape target, then what remote write
/// delivered to this server.
pub fn from_scrape(scrape: Arc<ScrapeManager>, received: Arc<MetadataStore>) -> Source {
    Box::new(move || {
        let mut out = Vec::new();
        for (_, pool) in scrape.pools() {
            for t in pool.snapshot().0 {
                for (name, md) in t.metadata.lock().iter() {
                    out.push(MetricMetadata {
                        r#type: type_number(&md.kind),
                        metric_family_name: name.clone(),
                        help: md.help.clone(),
                        unit: md.unit.clone(),
                    });
                }
            }
        }
        for (name, e) in received.list(None, usize::MAX) {
            out.push(MetricMetadata {
                r#type: type_number(e.kind),
                metric_family_name: name,
                help: e.help,
                unit: e.unit,
            });
        }
        out
    })
}

/// Suffixes a series name may add to its family's name.
const SUFFIXES: &[&str] = &[
    "_bucket", "_sum", "_count", "_total", "_created", "_gsum", "_gcount", "_info",
];

/// Metadata by family name, for 2.0 requests.
#[derive(Debug, Default)]
pub struct FamilyMap {
    by_name: HashMap<String, MetricMetadata>,
    /// Set by [`FamilyMap::attach`] when a series' family is not in the map.
    missed: AtomicBool,
}

impl FamilyMap {
    /// The map of `all` (a later entry for a name replaces an earlier one).
    pub fn new(all: Vec<MetricMetadata>) -> FamilyMap {
        FamilyMap {
            by_name: all
                .into_iter()
                .map(|m| (m.metric_family_name.clone(), m))
                .collect(),
            missed: AtomicBool::new(false),
        }
    }

    /// Whether a series of a request had no family here since the map was made.
    pub fn missed(&self) -> bool {
        self.missed.load(Ordering::Relaxed)
    }

    /// The metadata of the family of series `name`: the family of that name, else the family
    /// named without a suffix (`_bucket`, `_sum`, `_count`, `_total`, …).
    pub fn for_series(&self, name: &str) -> Option<&MetricMetadata> {
        self.by_name.get(name).or_else(|| {
            SUFFIXES
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find_map(|f| self.by_name.get(f))
        })
    }

    /// Adds to `req.metadata` one entry per series name of `req` whose family is known, under
    /// the series name (2.0's conversion attaches entries to series by name).
    pub fn attach(&self, req: &mut WriteRequest) {
        let mut seen = BTreeSet::new();
        for ts in &req.timeseries {
            let Some(name) = ts.labels.iter().find(|l| l.name == METRIC_NAME) else {
                continue;
            };
            if !seen.insert(name.value.as_str()) {
                continue;
            }
            if let Some(m) = self.for_series(&name.value) {
                req.metadata.push(MetricMetadata {
                    metric_family_name: name.value.clone(),
                    ..m.clone()
                });
            } else {
                self.missed.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// A queue's current [`FamilyMap`], replaced by its metadata task.
#[derive(Default)]
pub struct Families {
    /// Guarded by its own lock, held only to clone or replace the `Arc`.
    current: RwLock<Arc<FamilyMap>>,
}

impl Families {
    /// The current map.
    pub fn current(&self) -> Arc<FamilyMap> {
        self.current.read().clone()
    }

    fn set(&self, m: FamilyMap) {
        *self.current.write() = Arc::new(m);
    }
}

/// A queue's metadata task: every `cfg.send_interval` (first at once), a snapshot of `source`
/// is sent (1.0) or becomes `families` (2.0), until `stop` turns true. A 2.0 map that missed a
/// family is refreshed sooner (module docs).
pub async fn run(
    link: Arc<Link>,
    source: Arc<MetadataSource>,
    families: Option<Arc<Families>>,
    cfg: MetadataConfig,
    proto: ProtobufMessage,
    mut stop: watch::Receiver<bool>,
) {
    let interval = cfg.send_interval.0.max(MIN_INTERVAL);
    let poll = interval.min(MISS_RETRY);
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<tokio::time::Instant> = None;
    let mut gap = MISS_RETRY;
    loop {
        // The scheduled instants, so that `send_interval` is a whole number of polls.
        let now = tokio::select! {
            at = tick.tick() => at,
            _ = stop.changed() => return,
        };
        if *stop.borrow() {
            return;
        }
        let since = last.map(|l| now.duration_since(l));
        if let Some(f) = &families {
            let current = f.current();
            let due = since.is_none_or(|s| s >= interval);
            let early = current.missed() && since.is_some_and(|s| s >= gap);
            if !due && !early {
                continue;
            }
            last = Some(now);
            let map = FamilyMap::new(source.snapshot());
            // Back off while early refreshes find nothing new (a series with no metadata at
            // all keeps missing); start over once something was found.
            gap = if early && !due && map.by_name.len() <= current.by_name.len() {
                (gap * 2).min(interval)
            } else {
                MISS_RETRY
            };
            f.set(map);
            continue;
        }
        if since.is_some_and(|s| s < interval) {
            continue;
        }
        last = Some(now);
        if proto != ProtobufMessage::V1 {
            continue;
        }
        let all = source.snapshot();
        for chunk in all.chunks(cfg.max_samples_per_send.max(1)) {
            let body = remote_write::encode(&WriteRequest {
                timeseries: Vec::new(),
                metadata: chunk.to_vec(),
            });
            let n = Counts {
                metadata: chunk.len() as u64,
                highest: i64::MIN,
                ..Counts::default()
            };
            if let Round::Stopped = link.send(body, n, &mut stop).await {
                return;
            }
        }
    }
}

/// First delay before a 2.0 map that missed a family is refreshed.
const MISS_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Shortest `send_interval` honoured.
const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::ingest::prompb::TimeSeries;

    fn md(name: &str, t: i32, help: &str) -> MetricMetadata {
        MetricMetadata {
            r#type: t,
            metric_family_name: name.into(),
            help: help.into(),
            unit: String::new(),
        }
    }

    #[test]
    fn snapshot_is_sorted_and_deduplicated() {
        let s = MetadataSource::default();
        assert!(s.snapshot().is_empty());
        s.set(Box::new(|| {
            vec![md("b", 2, "B"), md("a", 1, "A"), md("b", 2, "B")]
        }));
        assert_eq!(s.snapshot(), vec![md("a", 1, "A"), md("b", 2, "B")]);
    }

    #[test]
    fn series_find_their_family() {
        let f = FamilyMap::new(vec![
            md("req_duration_seconds", 3, "H"),
            md("jobs_total", 1, "C"),
            md("up", 2, "U"),
        ]);
        let check = |series: &str, want: Option<&str>| {
            assert_eq!(
                f.for_series(series).map(|m| m.help.as_str()),
                want,
                "{series}"
            );
        };
        check("req_duration_seconds_bucket", Some("H"));
        check("req_duration_seconds_sum", Some("H"));
        check("req_duration_seconds", Some("H"));
        check("jobs_total", Some("C"));
        check("up", Some("U"));
        check("up_total_bucket", None);
        check("other", None);
        let mut req = WriteRequest {
            timeseries: vec![
                TimeSeries::from_pairs(&[("__name__", "req_duration_seconds_count")], &[]),
                TimeSeries::from_pairs(&[("__name__", "other")], &[]),
                TimeSeries::from_pairs(
                    &[("__name__", "req_duration_seconds_count"), ("x", "1")],
                    &[],
                ),
            ],
            metadata: vec![],
        };
        f.attach(&mut req);
        assert_eq!(req.metadata, vec![md("req_duration_seconds_count", 3, "H")]);
    }
}
