//! Remote-write sender: one queue per `remote_write:` destination, each fed by its own WAL
//! watcher, so memory stays bounded whatever the backlog and a send never blocks ingest.
//!
//! Each queue persists how far the receiver acknowledged (`position.rs`), so samples written
//! while a receiver is down are delivered after it comes back, even across restarts of Argus
//! (within the WAL backlog bound, `--storage.remote.max-backlog`). [`RemoteWrite::apply_config`]
//! adds, removes and restarts queues on reload: a queue whose config changed restarts from its
//! persisted position, so nothing queued is lost. Queues are identified by `url` and `name`.

#[doc(hidden)]
pub mod bench_support;
pub mod metadata;
pub mod metrics;
pub mod position;
mod queue;
pub mod read;
pub mod read_client;
pub mod read_stream;
mod reader;
mod send;
mod status;
mod wire;

use crate::config::Config;
use crate::config::remote_write::{ProtobufMessage, RemoteWriteConfig};
use crate::metrics::{Collect, header, sample};
use argus_storage::{Db, Labels, WalWatchMetrics};
use metrics::QueueMetrics;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running queue.
struct Running {
    cfg: RemoteWriteConfig,
    external: Labels,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// The metadata task (`metadata_config.send`).
    meta_task: Option<JoinHandle<()>>,
    metrics: Arc<QueueMetrics>,
}

/// The remote-write queues of one server.
pub struct RemoteWrite {
    // Immutable after construction.
    db: Db,
    data_dir: PathBuf,
    wal_metrics: Arc<WalWatchMetrics>,
    /// Metric metadata the queues send; set by the server after construction.
    metadata: Arc<metadata::MetadataSource>,
    /// Running queues by identity hash. The async lock serialises reloads and stop.
    queues: tokio::sync::Mutex<BTreeMap<String, Running>>,
    /// `(remote_name, url, metrics)` of the running queues, for `/metrics`; replaced under
    /// this lock after each change of `queues`.
    shown: parking_lot::Mutex<Vec<(String, String, Arc<QueueMetrics>)>>,
    /// Set by [`RemoteWrite::stop`]: keeps the WAL segments the stopped queues have not
    /// acknowledged from the database's close (whose head snapshot deletes the segments it
    /// covers), so the next start sends them.
    held: parking_lot::Mutex<Option<argus_storage::WalKeep>>,
}

impl RemoteWrite {
    /// No queues yet; position files live under `data_dir/remote_write/`.
    pub fn new(db: Db, data_dir: &Path) -> Arc<RemoteWrite> {
        Arc::new(RemoteWrite {
            wal_metrics: db.wal_watch_metrics(),
            db,
            data_dir: data_dir.to_path_buf(),
            metadata: Arc::default(),
            queues: tokio::sync::Mutex::new(BTreeMap::new()),
            shown: parking_lot::Mutex::new(Vec::new()),
            held: parking_lot::Mutex::new(None),
        })
    }

    /// Sets where queues take the metric metadata they send from (`metadata_config`); until
    /// then they send none.
    pub fn set_metadata_source(&self, f: metadata::Source) {
        self.metadata.set(f);
    }

    /// Makes the running queues match `cfg.remote_write`: unchanged queues keep running,
    /// changed ones restart from their persisted position, removed ones stop, new ones start at
    /// the end of the WAL (or at their persisted position, if they ran before). When a client
    /// cannot be built nothing changes.
    pub async fn apply_config(&self, cfg: &Config) -> Result<(), String> {
        let ext: Vec<(&String, &String)> = cfg.global.external_labels.iter().collect();
        let external = Labels::from_pairs(&ext);
        let mut queues = self.queues.lock().await;
        let mut starts = Vec::new();
        for c in &cfg.remote_write {
            let h = c.identity_hash();
            if let Some(r) = queues.get(&h)
                && r.cfg == *c
                && r.external == external
            {
                continue;
            }
            starts.push((h, c.clone(), send::Sender::new(c)?));
        }
        let wanted: BTreeSet<String> = cfg.remote_write.iter().map(|c| c.identity_hash()).collect();
        let restarting: BTreeSet<&String> = starts.iter().map(|(h, _, _)| h).collect();
        let gone: Vec<String> = queues
            .keys()
            .filter(|h| !wanted.contains(*h) || restarting.contains(h))
            .cloned()
            .collect();
        for h in gone {
            if let Some(r) = queues.remove(&h) {
                stop_queue(r).await;
            }
        }
        let mut err = None;
        for (h, c, sender) in starts {
            match self.start(&h, c, sender, external.clone()) {
                Ok(r) => {
                    queues.insert(h, r);
                }
                Err(e) => err = Some(e),
            }
        }
        *self.shown.lock() = queues
            .values()
            .map(|r| (r.cfg.queue_name(), r.cfg.url.clone(), r.metrics.clone()))
            .collect();
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn start(
        &self,
        hash: &str,
        cfg: RemoteWriteConfig,
        sender: send::Sender,
        external: Labels,
    ) -> Result<Running, String> {
        let name = cfg.queue_name();
        let pos_path = position::path(&self.data_dir, hash);
        let end = self
            .db
            .wal_end_position()
            .map_err(|e| format!("cannot start remote-write queue {name}: {e}"))?;
        let start = match position::load(&pos_path) {
            Ok(Some(p)) if p <= end => p,
            Ok(Some(p)) => {
                tracing::warn!(queue = %name, ?p, ?end, "persisted remote-write position is past the WAL's end; starting at the end");
                end
            }
            Ok(None) => end,
            Err(e) => {
                tracing::warn!(queue = %name, error = %e, "starting at the end of the WAL");
                end
            }
        };
        // Persist the start at once: a restart before the first send resumes here.
        position::store(&pos_path, start)
            .map_err(|e| format!("cannot write {}: {e}", pos_path.display()))?;
        let keep = self.db.wal_keep(start.segment);
        let watcher = self
            .db
            .wal_watcher(start)
            .map_err(|e| format!("cannot start remote-write queue {name}: {e}"))?;
        let metrics = Arc::new(QueueMetrics::default());
        let reader = reader::Reader::new(
            watcher,
            external.clone(),
            cfg.write_relabel_configs.clone(),
            cfg.queue_config.sample_age_limit.as_millis(),
            cfg.send_native_histograms,
            metrics.clone(),
        );
        tracing::info!(queue = %name, url = %cfg.url, segment = start.segment, offset = start.offset, "starting remote-write queue");
        let link = Arc::new(queue::Link {
            name,
            sender,
            metrics: metrics.clone(),
            min_backoff: cfg.queue_config.min_backoff.0,
            max_backoff: cfg.queue_config.max_backoff.0,
        });
        let meta_cfg = cfg.metadata_config.clone().unwrap_or_default();
        let families = (meta_cfg.send && cfg.protobuf_message == ProtobufMessage::V2)
            .then(|| Arc::new(metadata::Families::default()));
        let (stop, rx) = watch::channel(false);
        let meta_task = meta_cfg.send.then(|| {
            tokio::spawn(metadata::run(
                link.clone(),
                self.metadata.clone(),
                families.clone(),
                meta_cfg,
                cfg.protobuf_message,
                rx.clone(),
            ))
        });
        let q = queue::Queue {
            reader: Some(reader),
            link,
            pos_path,
            keep,
            acked: start,
            cfg: cfg.clone(),
            families,
        };
        let task = tokio::spawn(q.run(rx));
        Ok(Running {
            cfg,
            external,
            stop,
            task,
            meta_task,
            metrics,
        })
    }

    /// Stops every queue (what was not acknowledged is sent after the next start).
    pub async fn stop(&self) {
        let mut queues = self.queues.lock().await;
        let all = std::mem::take(&mut *queues);
        // Positions only advance: the persisted ones, read before the queues release their
        // segments, are at or before where the next start resumes.
        let hold = self.db.wal_keep(u32::MAX);
        for h in all.keys() {
            if let Ok(Some(p)) = position::load(&position::path(&self.data_dir, h)) {
                hold.set(hold.segment().min(p.segment));
            }
        }
        *self.held.lock() = Some(hold);
        for (_, r) in all {
            stop_queue(r).await;
        }
        self.shown.lock().clear();
    }
}

async fn stop_queue(r: Running) {
    let _ = r.stop.send(true);
    if let Err(e) = r.task.await {
        tracing::warn!(url = %r.cfg.url, error = %e, "remote-write queue task failed");
    }
    if let Some(t) = r.meta_task
        && let Err(e) = t.await
    {
        tracing::warn!(url = %r.cfg.url, error = %e, "remote-write metadata task failed");
    }
}

impl Collect for RemoteWrite {
    fn collect(&self, out: &mut String) {
        let shown = self.shown.lock().clone();
        metrics::render(out, &shown);
        let name = "argus_remote_storage_wal_segments_dropped_total";
        header(
            out,
            name,
            "counter",
            "WAL segments deleted past --storage.remote.max-backlog although a queue needed them.",
        );
        let m = &self.wal_metrics;
        sample(
            out,
            name,
            "",
            m.segments_dropped.load(Ordering::Relaxed) as f64,
        );
        let name = "argus_remote_storage_wal_bytes_dropped_total";
        header(out, name, "counter", "Bytes of those segments.");
        sample(
            out,
            name,
            "",
            m.bytes_dropped.load(Ordering::Relaxed) as f64,
        );
    }
}
