//! One `alertmanagers:` entry (an "Alertmanager set"): its discovery, the relabeling of what it
//! discovers into Alertmanager URLs, and one [`Alertmanager`] (queue + sender) per URL.

use super::metrics::NotifierMetrics;
use super::queue::Encoded;
use super::sender::{Alertmanager, HttpClient};
use crate::config::alerting::AlertmanagerConfig;
use crate::config::relabel;
use crate::discovery::file_sd::FileDiscovery;
use crate::discovery::{TargetGroup, static_sd};
use crate::scrape::manager::forward;
use argus_storage::{Label, Labels};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Queue sizes of every Alertmanager.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueOptions {
    pub(crate) capacity: usize,
    pub(crate) batch_size: usize,
}

/// A set. `cfg`, `client`, `metrics` and `queue` are immutable after construction.
pub(crate) struct AmSet {
    pub(crate) cfg: AlertmanagerConfig,
    client: Arc<HttpClient>,
    metrics: Arc<NotifierMetrics>,
    queue: QueueOptions,
    /// Lock: this mutex (short; never held across an await).
    inner: Mutex<SetInner>,
}

#[derive(Default)]
struct SetInner {
    /// Target groups by (provider, source).
    groups: BTreeMap<(usize, String), TargetGroup>,
    /// Active Alertmanagers by URL, with their sender tasks.
    active: BTreeMap<String, (Arc<Alertmanager>, JoinHandle<()>)>,
    /// URLs of targets dropped by relabeling (for the API).
    dropped: Vec<String>,
    /// Alerts queued for these URLs by the set this one replaced, handed over on discovery.
    carry: HashMap<String, Vec<Encoded>>,
    /// Discovery tasks.
    tasks: Vec<JoinHandle<()>>,
    stopped: bool,
}

/// Builds the HTTP client of a set (reads TLS files now).
pub(crate) fn build_client(cfg: &AlertmanagerConfig) -> Result<HttpClient, String> {
    let http = crate::util::http_client::HttpClient::new(&cfg.http_client(), Some(cfg.timeout.0))
        .map_err(|e| format!("alertmanager config: {e}"))?;
    Ok(HttpClient { http })
}

/// What one discovered target becomes.
#[derive(Debug, PartialEq)]
enum Populated {
    /// Send to this URL.
    Active(String),
    /// Dropped by relabeling; the URL its discovered labels give.
    Dropped(String),
}

impl AmSet {
    /// Starts a set: static Alertmanagers exist when this returns; the others appear as their
    /// discoverers report. `carry` holds alerts queued by the set this one replaces, by URL.
    pub(crate) fn start(
        cfg: AlertmanagerConfig,
        client: HttpClient,
        metrics: Arc<NotifierMetrics>,
        queue: QueueOptions,
        carry: HashMap<String, Vec<Encoded>>,
    ) -> Arc<Self> {
        let set = Arc::new(Self {
            cfg,
            client: Arc::new(client),
            metrics,
            queue,
            inner: Mutex::new(SetInner {
                carry,
                ..SetInner::default()
            }),
        });
        // Static targets: provider 0, applied now.
        set.apply_groups(vec![(0, static_sd::groups(&set.cfg.static_configs))]);
        let (tx, rx) = mpsc::channel::<(usize, Vec<TargetGroup>)>(64);
        let mut tasks = Vec::new();
        let mut provider = 1usize;
        for fc in &set.cfg.file_sd_configs {
            let (ptx, prx) = mpsc::channel(4);
            tasks.push(tokio::spawn(FileDiscovery::new(fc.clone()).run(ptx)));
            tasks.push(tokio::spawn(forward(provider, prx, tx.clone())));
            provider += 1;
        }
        for kc in &set.cfg.kubernetes_sd_configs {
            let (ptx, prx) = mpsc::channel(4);
            tasks.push(tokio::spawn(crate::discovery::kubernetes::run(
                kc.clone(),
                ptx,
            )));
            tasks.push(tokio::spawn(forward(provider, prx, tx.clone())));
            provider += 1;
        }
        drop(tx);
        if !tasks.is_empty() {
            tasks.push(tokio::spawn(sync(set.clone(), rx)));
        }
        set.inner.lock().tasks = tasks;
        set
    }

    /// Queues `alerts` for every active Alertmanager of the set.
    pub(crate) fn enqueue(&self, alerts: &[Encoded]) {
        let ams: Vec<Arc<Alertmanager>> = self
            .inner
            .lock()
            .active
            .values()
            .map(|(am, _)| am.clone())
            .collect();
        for am in ams {
            am.push(alerts);
        }
    }

    /// Active URLs (sorted) and dropped URLs.
    pub(crate) fn urls(&self) -> (Vec<String>, Vec<String>) {
        let inner = self.inner.lock();
        (
            inner.active.keys().cloned().collect(),
            inner.dropped.clone(),
        )
    }

    /// Removes every queued alert, by URL (for the set replacing this one).
    pub(crate) fn take_queued(&self) -> HashMap<String, Vec<Encoded>> {
        let inner = self.inner.lock();
        inner
            .active
            .iter()
            .map(|(url, (am, _))| (url.clone(), am.take_queued()))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }

    /// Stops discovery and every sender (after sending what is queued when `drain`); returns
    /// the sender tasks to await.
    pub(crate) fn stop(&self, drain: bool) -> Vec<JoinHandle<()>> {
        let mut inner = self.inner.lock();
        inner.stopped = true;
        for t in inner.tasks.drain(..) {
            t.abort();
        }
        let active = std::mem::take(&mut inner.active);
        self.metrics.add_discovered(-(active.len() as i64));
        active
            .into_values()
            .map(|(am, task)| {
                am.stop(drain);
                task
            })
            .collect()
    }

    /// Applies group updates and reconciles the Alertmanagers: new URLs get a sender (and any
    /// alerts carried over for them), vanished ones are stopped (their queue is discarded).
    fn apply_groups(&self, batch: Vec<(usize, Vec<TargetGroup>)>) {
        let mut inner = self.inner.lock();
        if inner.stopped {
            return;
        }
        for (provider, groups) in batch {
            for g in groups {
                let key = (provider, g.source.clone());
                if g.targets.is_empty() {
                    inner.groups.remove(&key);
                } else {
                    inner.groups.insert(key, g);
                }
            }
        }
        let mut active = Vec::new();
        let mut dropped = Vec::new();
        for g in inner.groups.values() {
            match populate_group(g, &self.cfg) {
                Ok(list) => {
                    for p in list {
                        match p {
                            Populated::Active(u) => active.push(u),
                            Populated::Dropped(u) => dropped.push(u),
                        }
                    }
                }
                Err(e) => tracing::error!(
                    source = %g.source,
                    error = %e,
                    "Creating discovered Alertmanagers failed"
                ),
            }
        }
        let before = inner.active.len();
        let mut old = std::mem::take(&mut inner.active);
        for url in active {
            if inner.active.contains_key(&url) {
                continue; // duplicates within a set are merged
            }
            let entry = match old.remove(&url) {
                Some(e) => e,
                None => {
                    let (am, task) = Alertmanager::spawn(
                        url.clone(),
                        self.client.clone(),
                        self.metrics.clone(),
                        self.queue.capacity,
                        self.queue.batch_size,
                    );
                    if let Some(carried) = inner.carry.remove(&url) {
                        am.push(&carried);
                    }
                    (am, task)
                }
            };
            inner.active.insert(url, entry);
        }
        for (_, (am, _task)) in old {
            am.stop(false);
        }
        self.metrics
            .add_discovered(inner.active.len() as i64 - before as i64);
        inner.dropped = dropped;
    }
}

/// Applies discovery updates until every provider is gone.
async fn sync(set: Arc<AmSet>, mut rx: mpsc::Receiver<(usize, Vec<TargetGroup>)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        set.apply_groups(batch);
    }
}

/// The Alertmanagers of one target group, as Prometheus's `AlertmanagerFromGroup`: each target's
/// labels, over the group's labels, over `__scheme__` and `__alerts_path__`; then
/// `relabel_configs`. One target with a bad address fails the whole group.
fn populate_group(g: &TargetGroup, cfg: &AlertmanagerConfig) -> Result<Vec<Populated>, String> {
    let path = cfg.alerts_path();
    let mut out = Vec::with_capacity(g.targets.len());
    for t in &g.targets {
        let mut pairs: BTreeMap<&str, &str> = BTreeMap::new();
        pairs.insert("__scheme__", &cfg.scheme);
        pairs.insert("__alerts_path__", &path);
        for (k, v) in g.labels.iter().chain(t) {
            pairs.insert(k, v);
        }
        let discovered = Labels::new(pairs.iter().map(|(k, v)| Label::new(*k, *v)).collect());
        let mut lset = discovered.clone();
        if !relabel::process(&mut lset, &cfg.relabel_configs) {
            out.push(Populated::Dropped(url_of(&discovered)));
            continue;
        }
        let addr = lset.get("__address__").unwrap_or("");
        if addr.is_empty() {
            return Err("no address".into());
        }
        if addr.contains('/') {
            return Err(format!("{addr:?} is not a valid hostname"));
        }
        out.push(Populated::Active(url_of(&lset)));
    }
    Ok(out)
}

fn url_of(l: &Labels) -> String {
    format!(
        "{}://{}{}",
        l.get("__scheme__").unwrap_or(""),
        l.get("__address__").unwrap_or(""),
        l.get("__alerts_path__").unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> AlertmanagerConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn group(targets: &[&str], labels: &[(&str, &str)]) -> TargetGroup {
        TargetGroup {
            source: "0".into(),
            targets: targets
                .iter()
                .map(|t| BTreeMap::from([("__address__".to_string(), t.to_string())]))
                .collect(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn urls_from_scheme_prefix_and_relabeling() {
        let c = cfg("path_prefix: /am/\nscheme: https\n");
        assert_eq!(
            populate_group(&group(&["a:9093"], &[]), &c).unwrap(),
            [Populated::Active("https://a:9093/am/api/v2/alerts".into())]
        );
        // Group labels may override the defaults.
        let g = group(&["a:9093"], &[("__scheme__", "http"), ("dc", "x")]);
        assert_eq!(
            populate_group(&g, &c).unwrap(),
            [Populated::Active("http://a:9093/am/api/v2/alerts".into())]
        );
        // relabel_configs keep/drop; dropped ones keep their discovered URL.
        let c = cfg("relabel_configs: [{source_labels: [dc], regex: keep, action: keep}]\n");
        let g = group(&["a:1"], &[("dc", "keep")]);
        assert_eq!(
            populate_group(&g, &c).unwrap(),
            [Populated::Active("http://a:1/api/v2/alerts".into())]
        );
        let g = group(&["b:2"], &[("dc", "other")]);
        assert_eq!(
            populate_group(&g, &c).unwrap(),
            [Populated::Dropped("http://b:2/api/v2/alerts".into())]
        );
        // An address that still has a path after relabeling fails the group.
        let c = cfg("relabel_configs: [{target_label: x, replacement: y}]\n");
        let e = populate_group(&group(&["ok:1", "http://a/b"], &[]), &c).unwrap_err();
        assert!(e.contains("is not a valid hostname"), "{e}");
        // Relabeling can rewrite the path.
        let c = cfg(
            "relabel_configs: [{target_label: __alerts_path__, replacement: /x/api/v2/alerts}]\n",
        );
        assert_eq!(
            populate_group(&group(&["a:1"], &[]), &c).unwrap(),
            [Populated::Active("http://a:1/x/api/v2/alerts".into())]
        );
    }
}
