//! The Alertmanager notifier: delivers the alerts rule evaluation hands over
//! ([`crate::rules::AlertSender`]) to every discovered Alertmanager, as Prometheus does.
//!
//! Pipeline (`../shared/conformance/alertmanager/API.md` §1): global external labels are added
//! where an alert lacks them → `alerting.alert_relabel_configs` → for each `alertmanagers:` entry
//! (an `set::AmSet`) its own `alert_relabel_configs`, then the alert, encoded once as JSON, is
//! appended to the bounded queue of each Alertmanager of the set. Each Alertmanager has its own
//! sender task POSTing batches of up to `batch_size` alerts to `.../api/v2/alerts`; a failed
//! batch is counted and dropped (no retry).
//!
//! ```no_run
//! # async fn demo(cfg: &argus::config::Config) -> Result<(), argus::notifier::Error> {
//! use argus::notifier::{Notifier, NotifierMetrics, Options};
//! use std::sync::Arc;
//! let opts = Options::default();
//! let notifier = Notifier::new(opts, Arc::new(NotifierMetrics::new(opts.queue_capacity)));
//! notifier.apply_config(cfg)?; // again on every reload
//! // rules: `notifier.send(alerts)` through `crate::rules::AlertSender`
//! notifier.stop().await; // drains the queues (bounded in time)
//! # Ok(()) }
//! ```

mod alert;
mod metrics;
mod queue;
mod sender;
mod set;

pub use metrics::NotifierMetrics;

use crate::config::Config;
use crate::config::relabel::{self, RelabelConfig};
use crate::rules::{AlertSender, OutgoingAlert};
use parking_lot::{Mutex, RwLock};
use queue::Encoded;
use set::{AmSet, QueueOptions};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Notifier settings from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Alerts each Alertmanager's queue holds (`--alertmanager.notification-queue-capacity`).
    pub queue_capacity: usize,
    /// Alerts per POST (`--alertmanager.notification-batch-size`).
    pub batch_size: usize,
    /// Send queued alerts at shutdown (`--alertmanager.drain-notification-queue-on-shutdown`).
    pub drain_on_shutdown: bool,
    /// Upper bound on the shutdown drain.
    pub drain_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            batch_size: 256,
            drain_on_shutdown: true,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a configuration could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid `alerting:` section, or its HTTP client could not be built.
    #[error("{0}")]
    Config(String),
    /// [`Notifier::stop`] was called.
    #[error("notifier is stopped")]
    Stopped,
}

/// The Alertmanagers the API lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertmanagerUrls {
    /// POST URLs of the active Alertmanagers, set by set, sorted within a set.
    pub active: Vec<String>,
    /// URLs of discovered Alertmanagers dropped by `relabel_configs`.
    pub dropped: Vec<String>,
}

/// What `send` applies; swapped whole by `apply_config`.
#[derive(Default)]
struct Pipeline {
    external_labels: Vec<(String, String)>,
    alert_relabel: Vec<RelabelConfig>,
    sets: Vec<Arc<AmSet>>,
}

/// The notifier. `send` may be called from any thread and never blocks on I/O; `apply_config`
/// and `stop` are serialised internally and must run inside a tokio runtime.
pub struct Notifier {
    /// Immutable after construction.
    opts: Options,
    metrics: Arc<NotifierMetrics>,
    /// Serialises `apply_config` and `stop`; `true` once stopped. Never held across an await.
    control: Mutex<bool>,
    /// What `send` reads. Lock: this rwlock, held only to clone or swap the `Arc`.
    pipeline: RwLock<Arc<Pipeline>>,
}

impl Notifier {
    /// A notifier with no Alertmanagers until [`Notifier::apply_config`].
    pub fn new(opts: Options, metrics: Arc<NotifierMetrics>) -> Arc<Self> {
        Arc::new(Self {
            opts,
            metrics,
            control: Mutex::new(false),
            pipeline: RwLock::new(Arc::new(Pipeline::default())),
        })
    }

    /// The notifier's metrics.
    pub fn metrics(&self) -> &Arc<NotifierMetrics> {
        &self.metrics
    }

    /// Applies the `alerting:` section and external labels of `cfg`. Sets whose config did not
    /// change keep running untouched; a changed set is replaced and the alerts queued for its
    /// Alertmanagers move to the same URLs in the new set. On error nothing changes.
    pub fn apply_config(&self, cfg: &Config) -> Result<(), Error> {
        cfg.alerting.validate().map_err(Error::Config)?;
        let stopped = self.control.lock();
        if *stopped {
            return Err(Error::Stopped);
        }
        let old = self.pipeline.read().clone();
        // Build every new client first so that a failure changes nothing.
        let mut plan = Vec::with_capacity(cfg.alerting.alertmanagers.len());
        for (i, am) in cfg.alerting.alertmanagers.iter().enumerate() {
            match old.sets.get(i) {
                Some(s) if s.cfg == *am => plan.push(Ok(s.clone())),
                _ => plan.push(Err(set::build_client(am)
                    .map_err(|e| Error::Config(format!("alertmanager config {i}: {e}")))?)),
            }
        }
        let queue = QueueOptions {
            capacity: self.opts.queue_capacity,
            batch_size: self.opts.batch_size,
        };
        let mut sets = Vec::with_capacity(plan.len());
        for (i, (p, am)) in plan
            .into_iter()
            .zip(&cfg.alerting.alertmanagers)
            .enumerate()
        {
            sets.push(match p {
                Ok(kept) => kept,
                Err(client) => {
                    let carry = match old.sets.get(i) {
                        Some(prev) => {
                            let c = prev.take_queued();
                            drop(prev.stop(false));
                            c
                        }
                        None => HashMap::new(),
                    };
                    AmSet::start(am.clone(), client, self.metrics.clone(), queue, carry)
                }
            });
        }
        for removed in old.sets.iter().skip(sets.len()) {
            drop(removed.stop(false));
        }
        *self.pipeline.write() = Arc::new(Pipeline {
            external_labels: cfg
                .global
                .external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            alert_relabel: cfg.alerting.alert_relabel_configs.clone(),
            sets,
        });
        Ok(())
    }

    /// The active and dropped Alertmanagers, for `GET /api/v1/alertmanagers`.
    pub fn alertmanagers(&self) -> AlertmanagerUrls {
        let p = self.pipeline.read().clone();
        let mut out = AlertmanagerUrls::default();
        for s in &p.sets {
            let (active, dropped) = s.urls();
            out.active.extend(active);
            out.dropped.extend(dropped);
        }
        out
    }

    /// Stops discovery and the senders. With `drain_on_shutdown` the queued alerts are sent
    /// first, for at most `drain_timeout`; then (or otherwise) they are discarded.
    pub async fn stop(&self) {
        let sets = {
            let mut stopped = self.control.lock();
            *stopped = true;
            std::mem::take(&mut *self.pipeline.write()).sets.clone()
        };
        let tasks: Vec<_> = sets
            .iter()
            .flat_map(|s| s.stop(self.opts.drain_on_shutdown))
            .collect();
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(self.opts.drain_timeout, all)
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?self.opts.drain_timeout,
                "alert notification queues not drained in time; dropping the rest"
            );
            for a in aborts {
                a.abort();
            }
        }
    }
}

impl AlertSender for Notifier {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let p = self.pipeline.read().clone();
        if p.sets.is_empty() || alerts.is_empty() {
            return;
        }
        let mut kept = Vec::with_capacity(alerts.len());
        for mut a in alerts {
            for (name, value) in &p.external_labels {
                if a.labels.get(name).is_none_or(str::is_empty) {
                    a.labels.set(name, value);
                }
            }
            if relabel::process(&mut a.labels, &p.alert_relabel) {
                kept.push(a);
            }
        }
        if kept.is_empty() {
            return;
        }
        let mut buf = String::new();
        for s in &p.sets {
            let mut encoded: Vec<Encoded> = Vec::with_capacity(kept.len());
            for a in &kept {
                buf.clear();
                if s.cfg.alert_relabel_configs.is_empty() {
                    alert::encode_into(&mut buf, a, &a.labels);
                } else {
                    let mut labels = a.labels.clone();
                    if !relabel::process(&mut labels, &s.cfg.alert_relabel_configs) {
                        continue;
                    }
                    alert::encode_into(&mut buf, a, &labels);
                }
                encoded.push(Arc::from(buf.as_str()));
            }
            s.enqueue(&encoded);
        }
    }
}

#[cfg(test)]
mod tests;
