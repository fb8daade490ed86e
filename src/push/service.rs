//! The push service: group state, mutations applied in arrival order, and reads.

use super::check::{check_consistency, has_timestamps, sanitize};
use super::store::{self, Group, GroupingKey, StoredFamily};
use super::{PushError, PushOptions};
use crate::expose::proto::{Gauge, Metric, MetricFamily, MetricType};
use crate::expose::text::{FloatSample, float_samples};
use crate::scrape::protobuf::{is_native, to_native};
use argus_storage::{Appendable, Label, Labels, SampleValue};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const PUSH_TIME: &str = "push_time_seconds";
pub(crate) const PUSH_FAILURE_TIME: &str = "push_failure_time_seconds";
const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
const PUSH_FAILURE_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway failed.";

/// A group plus the series it contributes to storage, computed once per change.
pub(crate) struct GroupEntry {
    pub group: Group,
    /// `(labels, value)` for every series, as a `honor_labels: true` scrape would store them.
    pub series: Vec<(Labels, SampleValue)>,
}

pub(crate) struct State {
    /// Groups by grouping key.
    pub groups: BTreeMap<GroupingKey, Arc<GroupEntry>>,
    pub next_id: u64,
}

/// Pushgateway-compatible store of pushed groups; see the module docs.
///
/// All methods may be called concurrently; mutations are applied one at a time in arrival order.
pub struct PushService {
    pub(crate) dir: PathBuf,
    pub(crate) opts: PushOptions,
    pub(crate) appendable: Arc<dyn Appendable>,
    pub(crate) start_nanos: i64,
    /// Serialises mutations (FIFO); held across the persisting I/O, never while `state` is held.
    write_lock: tokio::sync::Mutex<()>,
    /// Guarded by its own lock; held only for in-memory reads and swaps.
    pub(crate) state: RwLock<State>,
}

pub(crate) fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn timestamp_gauge(name: &str, help: &str, key: &GroupingKey, nanos: Option<i64>) -> MetricFamily {
    let v = nanos.map_or(0.0, |n| n as f64 / 1e9);
    let mut f = MetricFamily {
        name: Some(name.to_string()),
        help: Some(help.to_string()),
        r#type: Some(MetricType::Gauge as i32),
        metric: vec![Metric {
            gauge: Some(Gauge { value: Some(v) }),
            ..Default::default()
        }],
        unit: None,
    };
    sanitize(&mut f, key);
    f
}

/// The samples one pushed metric contributes: the float samples of its text exposition, into
/// `floats`, and whether it also carries a native histogram. A native histogram is stored as
/// one histogram sample under the family name, as a protobuf scrape with native histograms
/// stores it; its classic series are kept too when it also has classic buckets (as with
/// `always_scrape_classic_histograms`, so pushes that had both keep their classic series).
fn metric_samples(kind: MetricType, m: &Metric, floats: &mut Vec<FloatSample>) -> bool {
    let native = matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram)
        && m.histogram.as_ref().is_some_and(is_native);
    if !native || m.histogram.as_ref().is_some_and(|h| !h.bucket.is_empty()) {
        float_samples(kind, m, floats);
    }
    native
}

/// Expands a group into the series a scrape of its exposition would produce.
pub(crate) fn group_series(g: &Group) -> Vec<(Labels, SampleValue)> {
    let mut out = Vec::new();
    let mut samples = Vec::new();
    for f in g.families.values().filter_map(|f| f.family.as_ref()) {
        let kind = f.kind();
        for m in &f.metric {
            samples.clear();
            let native = metric_samples(kind, m, &mut samples);
            let labels = |suffix: &str, extra: Option<(&str, f64)>| {
                let mut pairs: Vec<Label> = Vec::with_capacity(m.label.len() + 2);
                pairs.push(Label::new("__name__", format!("{}{suffix}", f.name())));
                for l in &m.label {
                    pairs.push(Label::new(
                        l.name.clone().unwrap_or_default(),
                        l.value.clone().unwrap_or_default(),
                    ));
                }
                if let Some((n, x)) = extra {
                    pairs.push(Label::new(n, argus_query::gofloat::format_g(x)));
                }
                Labels::new(pairs)
            };
            if native && let Some(h) = &m.histogram {
                // Checked when pushed; a stored group that fails (an older file) is skipped.
                match to_native(h, kind == MetricType::GaugeHistogram) {
                    Ok(fh) => out.push((labels("", None), SampleValue::Histogram(Box::new(fh)))),
                    Err(e) => tracing::warn!(family = f.name(), error = %e,
                        "stored native histogram is invalid; not appended"),
                }
            }
            for (suffix, extra, v) in &samples {
                out.push((labels(suffix, *extra), SampleValue::Float(*v)));
            }
        }
    }
    out
}

/// Series of one family (what [`group_series`] makes of it), without building labels.
fn family_series(f: &MetricFamily, scratch: &mut Vec<FloatSample>) -> usize {
    let kind = f.kind();
    f.metric
        .iter()
        .map(|m| {
            scratch.clear();
            let native = metric_samples(kind, m, scratch);
            scratch.len() + usize::from(native)
        })
        .sum()
}

/// The series a group will hold after [`PushService::push`] merges `incoming` into `existing`
/// (or replaces it), counted before anything is copied: exactly `group_series(&merged).len()`.
fn series_after_push(
    existing: Option<&GroupEntry>,
    incoming: &[MetricFamily],
    replace: bool,
) -> usize {
    let mut scratch = Vec::new();
    let names: std::collections::HashSet<&str> = incoming.iter().map(|f| f.name()).collect();
    let stored = |name: &str| {
        existing
            .and_then(|e| e.group.families.get(name))
            .and_then(|f| f.family.as_ref())
    };
    let kept_failure = stored(PUSH_FAILURE_TIME).is_some();
    // The two timestamp gauges: `push_time_seconds` always replaced by ours; ours for
    // `push_failure_time_seconds` only if the group has none yet.
    let mut n = 1;
    if !kept_failure {
        n += 1;
    }
    for f in incoming {
        let name = f.name();
        if name == PUSH_TIME || (name == PUSH_FAILURE_TIME && !kept_failure) {
            continue;
        }
        n += family_series(f, &mut scratch);
    }
    if let Some(e) = existing {
        for (name, f) in &e.group.families {
            let timestamp = name == PUSH_TIME || name == PUSH_FAILURE_TIME;
            if names.contains(name.as_str()) || name == PUSH_TIME || (replace && !timestamp) {
                continue;
            }
            if let Some(f) = f.family.as_ref() {
                n += family_series(f, &mut scratch);
            }
        }
    }
    n
}

fn entry(group: Group) -> Arc<GroupEntry> {
    let series = group_series(&group);
    Arc::new(GroupEntry { group, series })
}

impl PushService {
    /// Opens (creating if needed) the group store in `dir` and loads every persisted group.
    pub fn open(
        dir: &Path,
        opts: PushOptions,
        appendable: Arc<dyn Appendable>,
    ) -> Result<Arc<Self>, PushError> {
        let groups = store::load(dir)?;
        let next_id = groups.iter().map(|g| g.id + 1).max().unwrap_or(1);
        let groups = groups
            .into_iter()
            .map(|g| (g.key.clone(), entry(g)))
            .collect();
        Ok(Arc::new(Self {
            dir: dir.to_path_buf(),
            opts,
            appendable,
            start_nanos: now_nanos(),
            write_lock: tokio::sync::Mutex::new(()),
            state: RwLock::new(State { groups, next_id }),
        }))
    }

    /// Snapshot of all groups, sorted by grouping key.
    pub(crate) fn snapshot(&self) -> Vec<Arc<GroupEntry>> {
        self.state.read().groups.values().cloned().collect()
    }

    async fn persist(&self, g: Group) -> Result<Group, PushError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || store::persist(&dir, &g).map(|()| g))
            .await
            .map_err(|e| PushError::Io {
                context: "push persistence task failed".into(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(PushError::from)
    }

    async fn remove_file(&self, id: u64) -> Result<(), PushError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || store::remove(&dir, id))
            .await
            .map_err(|e| PushError::Io {
                context: "push persistence task failed".into(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(PushError::from)
    }

    fn install(&self, g: Group) {
        let key = g.key.clone();
        self.state.write().groups.insert(key, entry(g));
    }

    /// Applies a PUT (`replace`) or POST. Returns after the result is persisted.
    pub async fn push(
        &self,
        key: GroupingKey,
        mut families: Vec<MetricFamily>,
        replace: bool,
    ) -> Result<(), PushError> {
        let _serial = self.write_lock.lock().await;
        let now = now_nanos();
        let (existing, n_groups) = {
            let st = self.state.read();
            (st.groups.get(&key).cloned(), st.groups.len())
        };
        if existing.is_none() && n_groups >= self.opts.max_groups {
            return Err(PushError::Limit(format!(
                "the number of groups would exceed the limit of {}",
                self.opts.max_groups
            )));
        }
        if has_timestamps(&families) {
            self.record_failure(key, existing, now).await?;
            return Err(PushError::Rejected(
                "pushed metrics must not have timestamps".into(),
            ));
        }
        // Limits before any copying: sanitizing copies the grouping key into every metric.
        let series = series_after_push(existing.as_deref(), &families, replace);
        if series > self.opts.max_series_per_group {
            return Err(PushError::Limit(format!(
                "the group would hold {series} series, more than the limit of {}",
                self.opts.max_series_per_group
            )));
        }
        for f in &mut families {
            sanitize(f, &key);
        }
        let mut g = match &existing {
            Some(e) => e.group.clone(),
            None => Group {
                id: self.alloc_id(),
                key: key.clone(),
                ..Default::default()
            },
        };
        if replace {
            g.families
                .retain(|n, _| n == PUSH_TIME || n == PUSH_FAILURE_TIME);
        }
        let mut incoming: BTreeMap<String, MetricFamily> = families
            .into_iter()
            .map(|f| (f.name().to_string(), f))
            .collect();
        incoming.insert(
            PUSH_TIME.into(),
            timestamp_gauge(PUSH_TIME, PUSH_TIME_HELP, &key, Some(now)),
        );
        if !g.families.contains_key(PUSH_FAILURE_TIME) {
            incoming.insert(
                PUSH_FAILURE_TIME.into(),
                timestamp_gauge(PUSH_FAILURE_TIME, PUSH_FAILURE_HELP, &key, None),
            );
        }
        for (name, f) in incoming {
            g.families.insert(
                name,
                StoredFamily {
                    ts_nanos: now,
                    family: Some(f),
                },
            );
        }
        g.last_push_nanos = now;
        let verdict = {
            let st = self.state.read();
            let others = |name: &str| -> Vec<&MetricFamily> {
                st.groups
                    .iter()
                    .filter(|(k, _)| **k != key)
                    .filter_map(|(_, e)| e.group.families.get(name))
                    .filter_map(|f| f.family.as_ref())
                    .collect()
            };
            let mine: Vec<&MetricFamily> = g
                .families
                .values()
                .filter_map(|f| f.family.as_ref())
                .collect();
            check_consistency(&mine, others)
        };
        if let Err(msg) = verdict {
            self.record_failure(key, existing, now).await?;
            return Err(PushError::Rejected(msg));
        }
        // After the checks: an invalid native histogram is counted but not expanded.
        debug_assert_eq!(
            group_series(&g).len(),
            series,
            "BUG: series_after_push miscounts"
        );
        let g = self.persist(g).await?;
        self.install(g);
        Ok(())
    }

    fn alloc_id(&self) -> u64 {
        let mut st = self.state.write();
        let id = st.next_id;
        st.next_id += 1;
        id
    }

    /// Sets `push_failure_time_seconds` (creating the group with both gauges if needed).
    async fn record_failure(
        &self,
        key: GroupingKey,
        existing: Option<Arc<GroupEntry>>,
        now: i64,
    ) -> Result<(), PushError> {
        let mut g = match existing {
            Some(e) => e.group.clone(),
            None => Group {
                id: self.alloc_id(),
                key: key.clone(),
                last_push_nanos: now,
                ..Default::default()
            },
        };
        g.families.insert(
            PUSH_FAILURE_TIME.into(),
            StoredFamily {
                ts_nanos: now,
                family: Some(timestamp_gauge(
                    PUSH_FAILURE_TIME,
                    PUSH_FAILURE_HELP,
                    &key,
                    Some(now),
                )),
            },
        );
        if !g.families.contains_key(PUSH_TIME) {
            g.families.insert(
                PUSH_TIME.into(),
                StoredFamily {
                    ts_nanos: now,
                    family: Some(timestamp_gauge(PUSH_TIME, PUSH_TIME_HELP, &key, None)),
                },
            );
        }
        let g = self.persist(g).await?;
        self.install(g);
        Ok(())
    }

    /// Removes a group (no-op if unknown). Returns after the removal is persisted.
    pub async fn delete(&self, key: &GroupingKey) -> Result<(), PushError> {
        let _serial = self.write_lock.lock().await;
        let id = self.state.read().groups.get(key).map(|e| e.group.id);
        if let Some(id) = id {
            self.remove_file(id).await?;
            self.state.write().groups.remove(key);
        }
        Ok(())
    }

    /// Removes every group.
    pub async fn wipe(&self) -> Result<(), PushError> {
        let _serial = self.write_lock.lock().await;
        let all: Vec<(GroupingKey, u64)> = self
            .state
            .read()
            .groups
            .iter()
            .map(|(k, e)| (k.clone(), e.group.id))
            .collect();
        for (k, id) in all {
            self.remove_file(id).await?;
            self.state.write().groups.remove(&k);
        }
        Ok(())
    }

    /// Removes groups whose last successful push is older than the TTL; returns how many.
    pub(crate) async fn expire(&self, now: i64) -> Result<usize, PushError> {
        let Some(ttl) = self.opts.group_ttl else {
            return Ok(0);
        };
        let _serial = self.write_lock.lock().await;
        let cutoff = now.saturating_sub(i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX));
        let old: Vec<(GroupingKey, u64)> = self
            .state
            .read()
            .groups
            .iter()
            .filter(|(_, e)| e.group.last_push_nanos < cutoff)
            .map(|(k, e)| (k.clone(), e.group.id))
            .collect();
        for (k, id) in &old {
            self.remove_file(*id).await?;
            self.state.write().groups.remove(k);
        }
        Ok(old.len())
    }
}
