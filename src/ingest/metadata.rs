//! Metric metadata received by remote write (`WriteRequest.metadata`), served by
//! `/api/v1/metadata` until the scrape manager's metadata takes over.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::prompb::MetricMetadata;
use parking_lot::RwLock;
use std::collections::BTreeMap;

/// Most metric families remembered; later new names are ignored.
pub const MAX_FAMILIES: usize = 100_000;

/// One metadata entry as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// `counter`, `gauge`, …
    pub kind: &'static str,
    /// HELP text.
    pub help: String,
    /// Unit.
    pub unit: String,
}

/// Latest metadata per metric family name. Shared; all methods may be called concurrently.
#[derive(Default)]
pub struct MetadataStore {
    /// family name → latest entry; guarded by its own lock, never held across I/O.
    families: RwLock<BTreeMap<String, Entry>>,
}

impl MetadataStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the entries of one request (the newest entry for a name wins).
    pub fn record(&self, metadata: &[MetricMetadata]) {
        if metadata.is_empty() {
            return;
        }
        let mut map = self.families.write();
        for m in metadata {
            if m.metric_family_name.is_empty() {
                continue;
            }
            let entry = Entry {
                kind: m.type_name(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            };
            if let Some(e) = map.get_mut(&m.metric_family_name) {
                *e = entry;
            } else if map.len() < MAX_FAMILIES {
                map.insert(m.metric_family_name.clone(), entry);
            }
        }
    }

    /// Entries sorted by name, optionally only `metric`, at most `limit` names.
    pub fn list(&self, metric: Option<&str>, limit: usize) -> Vec<(String, Entry)> {
        let map = self.families.read();
        match metric {
            Some(name) => map
                .get(name)
                .map(|e| (name.to_string(), e.clone()))
                .into_iter()
                .collect(),
            None => map
                .iter()
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// The metric family of series `series` whose metadata says type `kind` (`MetricType`
/// number): a classic histogram's or summary's series drop their `_bucket`, `_sum`, `_count`,
/// `_created` (`_gsum`, `_gcount`) suffix; other series name their family (a text-format
/// counter's family keeps its `_total`).
pub(crate) fn family_of(series: &str, kind: i32) -> &str {
    let suffixes: &[&str] = match kind {
        3 => &["_bucket", "_sum", "_count", "_created"],
        4 => &["_bucket", "_gsum", "_gcount"],
        5 => &["_sum", "_count", "_created"],
        _ => &[],
    };
    suffixes
        .iter()
        .find_map(|s| series.strip_suffix(s).filter(|f| !f.is_empty()))
        .unwrap_or(series)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn newest_wins_and_filters() {
        let s = MetadataStore::new();
        let m = |name: &str, t: i32, help: &str| MetricMetadata {
            r#type: t,
            metric_family_name: name.into(),
            help: help.into(),
            unit: String::new(),
        };
        s.record(&[m("b", 2, "old"), m("a", 1, "A"), m("", 1, "no name")]);
        s.record(&[m("b", 2, "new")]);
        let all = s.list(None, usize::MAX);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, "a");
        assert_eq!(all[0].1.kind, "counter");
        assert_eq!(all[1].1.help, "new");
        assert_eq!(s.list(Some("b"), usize::MAX).len(), 1);
        assert_eq!(s.list(Some("zz"), usize::MAX).len(), 0);
        assert_eq!(s.list(None, 1).len(), 1);
    }

    #[test]
    fn families_of_series() {
        let check = |series: &str, kind: i32, want: &str| {
            assert_eq!(family_of(series, kind), want, "{series} {kind}");
        };
        check("rpc_seconds_bucket", 3, "rpc_seconds");
        check("rpc_seconds_count", 5, "rpc_seconds");
        check("rpc_seconds", 3, "rpc_seconds");
        check("queue_gcount", 4, "queue");
        check("jobs_total", 1, "jobs_total");
        check("up_count", 2, "up_count");
        check("_sum", 5, "_sum");
    }
}
