//! The scrape manager: one pool per job, each fed by its discoverers, each target scraped by its
//! own loop. Reloads keep unchanged pools (and their loops) running.

use super::Error;
use super::buffers::BufferPool;
use super::cache::AppendOptions;
use super::metrics::ScrapeMetrics;
use super::scrape_loop::{self, LoopHandle, LoopParams, StopMode};
use super::target::{self, DroppedTarget, Populated, Target};
use crate::config::scrape::ScrapeConfig;
use crate::config::{Config, GlobalConfig};
use crate::discovery::file_sd::FileDiscovery;
use crate::discovery::{TargetGroup, static_sd};
use argus_storage::{Appendable, Label, Labels};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Runs every scrape pool. Create with [`ScrapeManager::new`], then [`ScrapeManager::apply_config`]
/// (again on every reload), [`ScrapeManager::stop`] at shutdown. All methods may be called from
/// any task.
pub struct ScrapeManager {
    appendable: Arc<dyn Appendable>,
    /// Limit-violation counters, shared with every pool and loop.
    metrics: Arc<ScrapeMetrics>,
    /// Serialises `apply_config`/`stop`; held across awaits (tokio mutex).
    state: tokio::sync::Mutex<ManagerState>,
    /// What the API shows: pools by job name. Lock: this rwlock (short, never across awaits).
    view: RwLock<BTreeMap<String, Arc<PoolShared>>>,
    /// `--enable-feature=created-timestamp-zero-ingestion`, for pools started from now on.
    ct_zero_ingestion: std::sync::atomic::AtomicBool,
    /// Body buffers shared by every loop.
    buffers: Arc<BufferPool>,
    /// Commit slots and threads shared by every loop (`committer::CommitSlots`).
    commit_slots: Arc<super::committer::CommitSlots>,
}

#[derive(Default)]
struct ManagerState {
    pools: BTreeMap<String, Pool>,
    /// Removed or replaced pools whose loops may still be waiting to write staleness markers.
    retired: Vec<Arc<PoolShared>>,
    stopped: bool,
}

struct Pool {
    cfg: Arc<ScrapeConfig>,
    global: GlobalConfig,
    /// Discoverers, their forwarders and the sync task.
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<PoolShared>,
}

/// A pool's targets, shared by its sync task, the manager and the API.
pub(crate) struct PoolShared {
    /// Immutable after construction.
    cfg: Arc<ScrapeConfig>,
    global: GlobalConfig,
    appendable: Arc<dyn Appendable>,
    metrics: Arc<ScrapeMetrics>,
    ct_zero_ingestion: bool,
    /// Body buffers shared by every loop of the manager.
    buffers: Arc<BufferPool>,
    /// The HTTP clients the pool's targets share.
    http: super::client::PoolClients,
    /// Commit slots and threads shared by every loop of the manager.
    commit_slots: Arc<super::committer::CommitSlots>,
    /// The `target_limit` error every loop of the pool reports while the pool is over the limit;
    /// set by each sync. Lock: this mutex (short, read once per scrape).
    forced: Arc<Mutex<Option<String>>>,
    /// Lock: this mutex (never held across awaits).
    inner: Mutex<PoolInner>,
}

#[derive(Default)]
struct PoolInner {
    /// Active targets by their final label set.
    active: HashMap<Labels, (Arc<Target>, LoopHandle)>,
    /// Loops asked to stop that may still be writing staleness markers.
    stopping: Vec<LoopHandle>,
    dropped: Vec<DroppedTarget>,
    dropped_total: usize,
    /// Target groups by (provider, source).
    groups: BTreeMap<(usize, String), TargetGroup>,
}

impl ScrapeManager {
    /// A manager appending to `appendable`. Nothing runs until `apply_config`.
    pub fn new(appendable: Arc<dyn Appendable>) -> Arc<Self> {
        super::client::install_crypto_provider();
        Arc::new(Self {
            appendable,
            metrics: Arc::default(),
            state: tokio::sync::Mutex::new(ManagerState::default()),
            view: RwLock::new(BTreeMap::new()),
            ct_zero_ingestion: Default::default(),
            buffers: Arc::default(),
            commit_slots: Arc::default(),
        })
    }

    /// Turns on `created-timestamp-zero-ingestion` for the protobuf format (call before the
    /// first [`ScrapeManager::apply_config`]): created timestamps become zero samples.
    pub fn set_ct_zero_ingestion(&self, on: bool) {
        self.ct_zero_ingestion
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Applies `cfg`: validates every job, keeps pools whose job (and global defaults) did not
    /// change, restarts changed ones and stops removed ones (their targets get staleness markers
    /// after about two intervals, as in Prometheus). On error nothing changes.
    pub async fn apply_config(&self, cfg: &Config) -> Result<(), Error> {
        let mut names = std::collections::HashSet::new();
        for sc in &cfg.scrape_configs {
            sc.validate(&cfg.global).map_err(Error::Config)?;
            if !names.insert(sc.job_name.as_str()) {
                return Err(Error::Config(format!(
                    "found multiple scrape configs with job name {:?}",
                    sc.job_name
                )));
            }
        }
        let mut st = self.state.lock().await;
        if st.stopped {
            return Err(Error::Config("scrape manager is stopped".into()));
        }
        let mut old = std::mem::take(&mut st.pools);
        for sc in &cfg.scrape_configs {
            match old.remove(&sc.job_name) {
                Some(p) if *p.cfg == *sc && p.global == cfg.global => {
                    st.pools.insert(sc.job_name.clone(), p);
                }
                prev => {
                    if let Some(p) = prev {
                        st.retired.push(p.shared.clone());
                        stop_pool(p, StopMode::Removed);
                    }
                    let p = self.start_pool(sc.clone(), cfg.global.clone());
                    st.pools.insert(sc.job_name.clone(), p);
                }
            }
        }
        for (_, p) in old {
            st.retired.push(p.shared.clone());
            stop_pool(p, StopMode::Removed);
        }
        st.retired.retain(|p| {
            let mut inner = p.inner.lock();
            inner.stopping.retain(|h| !h.is_finished());
            !inner.stopping.is_empty()
        });
        *self.view.write() = st
            .pools
            .iter()
            .map(|(k, p)| (k.clone(), p.shared.clone()))
            .collect();
        Ok(())
    }

    /// Stops every pool and waits until each loop has written its staleness markers.
    pub async fn stop(&self) {
        let mut st = self.state.lock().await;
        st.stopped = true;
        let mut handles = Vec::new();
        for (_, p) in std::mem::take(&mut st.pools) {
            handles.extend(stop_pool(p, StopMode::Shutdown));
        }
        for p in std::mem::take(&mut st.retired) {
            let hs: Vec<LoopHandle> = std::mem::take(&mut p.inner.lock().stopping);
            for h in &hs {
                h.stop(StopMode::Shutdown);
            }
            handles.extend(hs);
        }
        for h in handles {
            h.join().await;
        }
        self.view.write().clear();
    }

    /// The limit-violation counters, for the registry.
    pub fn metrics(&self) -> Arc<ScrapeMetrics> {
        self.metrics.clone()
    }

    /// Pools by job name, for the API.
    pub(crate) fn pools(&self) -> Vec<(String, Arc<PoolShared>)> {
        self.view
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn start_pool(&self, cfg: ScrapeConfig, global: GlobalConfig) -> Pool {
        let cfg = Arc::new(cfg);
        let shared = Arc::new(PoolShared {
            cfg: cfg.clone(),
            global: global.clone(),
            appendable: self.appendable.clone(),
            metrics: self.metrics.clone(),
            ct_zero_ingestion: self
                .ct_zero_ingestion
                .load(std::sync::atomic::Ordering::Relaxed),
            buffers: self.buffers.clone(),
            http: super::client::pool_clients(&cfg),
            commit_slots: self.commit_slots.clone(),
            forced: Arc::default(),
            inner: Mutex::new(PoolInner::default()),
        });
        let (tx, rx) = mpsc::channel::<(usize, Vec<TargetGroup>)>(64);
        let mut tasks = Vec::new();
        let mut provider = 0usize;
        // Static targets: one provider, sent once.
        let statics = static_sd::groups(&cfg.static_configs);
        if !statics.is_empty() {
            // The channel is empty and has room: try_send cannot fail here.
            let _ = tx.try_send((provider, statics));
        }
        provider += 1;
        for fc in &cfg.file_sd_configs {
            let (ptx, prx) = mpsc::channel(4);
            tasks.push(tokio::spawn(FileDiscovery::new(fc.clone()).run(ptx)));
            tasks.push(tokio::spawn(forward(provider, prx, tx.clone())));
            provider += 1;
        }
        for kc in &cfg.kubernetes_sd_configs {
            let (ptx, prx) = mpsc::channel(4);
            tasks.push(tokio::spawn(crate::discovery::kubernetes::run(
                kc.clone(),
                ptx,
            )));
            tasks.push(tokio::spawn(forward(provider, prx, tx.clone())));
            provider += 1;
        }
        drop(tx);
        tasks.push(tokio::spawn(sync_pool(shared.clone(), rx)));
        Pool {
            cfg,
            global,
            tasks,
            shared,
        }
    }
}

/// Tags the groups of one provider with its index and passes them on, until either side closes.
pub(crate) async fn forward(
    provider: usize,
    mut rx: mpsc::Receiver<Vec<TargetGroup>>,
    tx: mpsc::Sender<(usize, Vec<TargetGroup>)>,
) {
    while let Some(g) = rx.recv().await {
        if tx.send((provider, g)).await.is_err() {
            return;
        }
    }
}

/// Applies group updates to the pool until every provider is gone.
async fn sync_pool(pool: Arc<PoolShared>, mut rx: mpsc::Receiver<(usize, Vec<TargetGroup>)>) {
    while let Some((provider, groups)) = rx.recv().await {
        let mut batch = vec![(provider, groups)];
        // Coalesce what is already queued.
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        pool.apply_groups(batch);
    }
}

impl PoolShared {
    fn apply_groups(&self, batch: Vec<(usize, Vec<TargetGroup>)>) {
        let mut inner = self.inner.lock();
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
        // Recompute the target set.
        let mut active: Vec<Target> = Vec::new();
        let mut dropped = Vec::new();
        let mut dropped_total = 0usize;
        for g in inner.groups.values() {
            for t in &g.targets {
                match target::populate(&g.labels, t, &self.cfg, &self.global) {
                    Ok(Populated::Active(t)) => active.push(*t),
                    Ok(Populated::Dropped(d)) => {
                        dropped_total += 1;
                        let keep = self.cfg.keep_dropped_targets;
                        if keep == 0 || (dropped.len() as u64) < keep {
                            dropped.push(d);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job = %self.cfg.job_name, error = %e, "invalid target");
                    }
                }
            }
        }
        let limit = self.cfg.target_limit;
        let forced = (limit > 0 && active.len() as u64 > limit).then(|| {
            format!(
                "target_limit exceeded (number of targets: {}, limit: {limit})",
                active.len()
            )
        });
        if forced.is_some() {
            self.metrics.target_limit_exceeded();
        }
        // Every loop, old or new, fails while the pool is over the limit (Prometheus's
        // `refreshTargetLimitErr`), and scrapes again once it is back under.
        *self.forced.lock() = forced;
        let mut next: HashMap<Labels, (Arc<Target>, LoopHandle)> = HashMap::new();
        let mut old = std::mem::take(&mut inner.active);
        for t in active {
            if next.contains_key(&t.labels) {
                continue; // duplicate target
            }
            if let Some(existing) = old.remove(&t.labels) {
                next.insert(t.labels.clone(), existing);
                continue;
            }
            let t = Arc::new(t);
            let target_labels: Vec<Label> = t.public_labels().cloned().collect();
            let opts = AppendOptions {
                target_labels,
                honor_labels: self.cfg.honor_labels,
                honor_timestamps: self.cfg.honor_timestamps,
                track_timestamps_staleness: self.cfg.track_timestamps_staleness,
                metric_relabel: self.cfg.metric_relabel_configs.clone(),
                sample_limit: self.cfg.sample_limit,
                label_limit: self.cfg.label_limit,
                label_name_length_limit: self.cfg.label_name_length_limit,
                label_value_length_limit: self.cfg.label_value_length_limit,
                protobuf: crate::scrape::protobuf::Options {
                    native_histograms: self.cfg.scrape_native_histograms == Some(true),
                    always_classic: self.cfg.always_scrape_classic_histograms == Some(true),
                    bucket_limit: self.cfg.native_histogram_bucket_limit,
                    min_bucket_factor: self.cfg.native_histogram_min_bucket_factor,
                    ct_zero_ingestion: self.ct_zero_ingestion,
                    convert_nhcb: self.cfg.convert_classic_histograms_to_nhcb == Some(true),
                },
            };
            let h = scrape_loop::spawn(LoopParams {
                target: t.clone(),
                cfg: self.cfg.clone(),
                opts,
                appendable: self.appendable.clone(),
                forced_error: self.forced.clone(),
                metrics: self.metrics.clone(),
                buffers: self.buffers.clone(),
                http: self.http.clone(),
                commit_slots: self.commit_slots.clone(),
            });
            next.insert(t.labels.clone(), (t, h));
        }
        for (_, (_, h)) in old {
            h.stop(StopMode::Removed);
            inner.stopping.push(h);
        }
        inner.stopping.retain(|h| !h.is_finished());
        inner.active = next;
        inner.dropped = dropped;
        inner.dropped_total = dropped_total;
    }

    /// Active targets sorted by URL, dropped targets, and the total dropped count.
    pub(crate) fn snapshot(&self) -> (Vec<Arc<Target>>, Vec<DroppedTarget>, usize) {
        let inner = self.inner.lock();
        let mut active: Vec<Arc<Target>> = inner.active.values().map(|(t, _)| t.clone()).collect();
        active.sort_by(|a, b| a.url.cmp(&b.url));
        (active, inner.dropped.clone(), inner.dropped_total)
    }
}

/// Stops a pool's discoverers and loops; returns the loop handles to await.
fn stop_pool(p: Pool, mode: StopMode) -> Vec<LoopHandle> {
    for t in &p.tasks {
        t.abort();
    }
    let mut inner = p.shared.inner.lock();
    let mut hs: Vec<LoopHandle> = inner.active.drain().map(|(_, (_, h))| h).collect();
    hs.append(&mut inner.stopping);
    for h in &hs {
        h.stop(mode);
    }
    if mode == StopMode::Removed {
        // Let them finish in the background.
        inner.stopping = hs;
        return Vec::new();
    }
    hs
}
