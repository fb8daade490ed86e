//! The rule manager: runs every rule group on its own schedule.
//!
//! One tokio task per group. Evaluation timestamps are aligned to `k·interval + offset`, with a
//! stable per-group `offset` from a hash of (file, name); the first evaluation is at the first
//! slot strictly after the group starts, and slots missed because an evaluation ran long are
//! skipped and counted, never evaluated late with a shifted timestamp. The evaluation itself is
//! synchronous CPU and storage work and runs under `spawn_blocking`.
//!
//! [`RuleManager::apply`] installs a new set of group specs (start-up and reload): an unchanged
//! group keeps running untouched, a changed one is replaced by a new group that inherits its
//! alert state, a removed one stops and, after 2 × its interval, writes stale markers for the
//! series it wrote last (unless the manager stops first). Groups present at the first `apply`
//! restore their alerts' `for` state after their second evaluation.

use crate::metrics::Collect;
use crate::rules::{
    AlertSender, EvalEnv, Group, GroupSpec, GroupStatus, Health, OutgoingAlert, RuleStatus,
};
use crate::util::time::now_ms;
use argus_query::Engine;
use argus_storage::{
    Appendable, Appender, Labels, Queryable, Result as StorageResult, SeriesRef, Timestamp,
};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What every evaluation needs besides the group; replaced whole by [`RuleManager::apply`].
#[derive(Clone)]
pub struct ManagerOptions {
    /// `global.evaluation_interval`, ms: the interval of groups without their own.
    pub default_interval_ms: i64,
    /// `global.rule_query_offset`, ms.
    pub default_query_offset_ms: i64,
    /// `global.external_labels` (for `$externalLabels`).
    pub external_labels: BTreeMap<String, String>,
    /// `--web.external-url` (for `$externalURL` and generator URLs).
    pub external_url: String,
    /// `--rules.alert.resend-delay`, ms.
    pub resend_delay_ms: i64,
    /// `--rules.alert.for-outage-tolerance`, ms.
    pub outage_tolerance_ms: i64,
    /// `--rules.alert.for-grace-period`, ms.
    pub grace_period_ms: i64,
}

/// The storage and engine the groups evaluate against; fixed for the manager's life.
#[derive(Clone)]
pub struct Backends {
    /// The PromQL engine.
    pub engine: Arc<Engine>,
    /// Read side of the TSDB.
    pub queryable: Arc<dyn Queryable>,
    /// Write side of the TSDB (rule output, `ALERTS`, stale markers).
    pub appendable: Arc<dyn Appendable>,
    /// Where alerts due for sending go.
    pub sender: Arc<dyn AlertSender>,
}

/// An [`AlertSender`] that only counts and logs: the server's sender until a notifier is wired.
#[derive(Default)]
pub struct LogSender {
    sent: AtomicU64,
}

impl LogSender {
    /// Alerts passed to `send` so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl AlertSender for LogSender {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let n = alerts.len() as u64;
        self.sent.fetch_add(n, Ordering::Relaxed);
        tracing::debug!(alerts = n, "alerts due (no Alertmanager configured)");
    }
}

/// One running group.
struct Running {
    /// The spec it was built from, compared on reload.
    spec: GroupSpec,
    /// Effective (interval, query offset) in ms, compared on reload (they follow the globals).
    effective: (i64, i64),
    /// `<file>;<name>`, the metrics label.
    key: String,
    /// The group; locked by its task while it evaluates and by the API for `status()`.
    group: Arc<Mutex<Group>>,
    /// Set to true to stop the task.
    stop: watch::Sender<bool>,
    /// The task, awaited when the group stops.
    task: JoinHandle<()>,
}

/// Owns the rule groups and their tasks. Shared as `Arc<RuleManager>`; every method may be
/// called concurrently, but `apply` and `stop` are serialised by the server's reload loop.
pub struct RuleManager {
    /// Immutable.
    backends: Backends,
    /// Immutable.
    metrics: Arc<RuleMetrics>,
    /// True once the manager stopped: pending stale-marker writes are dropped.
    done: watch::Sender<bool>,
    /// The options of the latest `apply`; read by the tasks before each evaluation.
    opts: Mutex<Arc<ManagerOptions>>,
    /// Running groups by (file, name); `None` before the first `apply`.
    groups: tokio::sync::Mutex<Option<BTreeMap<(String, String), Running>>>,
}

/// The group's stable slot offset in `[0, interval_ms)`: FNV-1a over file and name.
pub(crate) fn slot_offset(file: &str, name: &str, interval_ms: i64) -> i64 {
    if interval_ms <= 0 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in file.bytes().chain([0xff]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::try_from(h % interval_ms.unsigned_abs()).unwrap_or(0)
}

/// The first slot `k·interval + offset` strictly after `now_ms`.
pub(crate) fn first_slot_after(now_ms: i64, interval_ms: i64, offset_ms: i64) -> i64 {
    let k = (now_ms - offset_ms).div_euclid(interval_ms);
    (k + 1) * interval_ms + offset_ms
}

/// After evaluating slot `t` and finishing at `now_ms`: the next slot to evaluate and how many
/// slots were skipped (Prometheus: slots that passed entirely during the evaluation).
pub(crate) fn next_slot(t: i64, now_ms: i64, interval_ms: i64) -> (i64, u64) {
    let passed = (now_ms - t).div_euclid(interval_ms).max(1);
    let missed = u64::try_from(passed - 1).unwrap_or(0);
    (t + passed * interval_ms, missed)
}

impl RuleManager {
    /// A manager with no groups; call [`apply`](Self::apply) to start some.
    pub fn new(backends: Backends, opts: ManagerOptions, metrics: Arc<RuleMetrics>) -> Self {
        Self {
            backends,
            metrics,
            done: watch::channel(false).0,
            opts: Mutex::new(Arc::new(opts)),
            groups: tokio::sync::Mutex::new(None),
        }
    }

    /// Installs `specs`: keeps unchanged groups, replaces changed ones (inheriting their alert
    /// state), stops removed ones (stale markers after 2 × interval) and starts new ones. The
    /// groups of the first call restore `for` state.
    pub async fn apply(self: &Arc<Self>, specs: Vec<GroupSpec>, opts: ManagerOptions) {
        *self.opts.lock() = Arc::new(opts.clone());
        let mut guard = self.groups.lock().await;
        let first = guard.is_none();
        let mut old = guard.take().unwrap_or_default();
        let mut new = BTreeMap::new();
        for spec in specs {
            let id = (spec.file.clone(), spec.name.clone());
            let mut g = Group::new(
                spec.clone(),
                opts.default_interval_ms,
                opts.default_query_offset_ms,
            );
            let effective = (g.interval_ms(), g.query_offset_ms());
            let prev = old.remove(&id);
            if let Some(r) = &prev
                && r.spec == spec
                && r.effective == effective
            {
                if let Some(r) = prev {
                    new.insert(id, r);
                }
                continue;
            }
            if let Some(r) = prev {
                // Changed: stop the old task first so the new group inherits its final state.
                let _ = r.stop.send(true);
                let _ = r.task.await;
                // Same (file, name): its metrics continue under the same label.
                g.inherit_state(&r.group.lock());
            }
            // Only groups present at start-up restore `for` state from storage.
            if !first {
                g.mark_restored();
            }
            new.insert(id, self.start(spec, effective, g, first));
        }
        for (_, r) in old {
            self.remove(r).await;
        }
        *guard = Some(new);
    }

    /// Stops a removed group and schedules its stale markers.
    async fn remove(&self, r: Running) {
        let _ = r.stop.send(true);
        let _ = r.task.await;
        self.metrics.remove(&r.key);
        let stopped_at = now_ms();
        let wait = Duration::from_millis(
            u64::try_from(r.group.lock().interval_ms().saturating_mul(2)).unwrap_or(0),
        );
        let mut done = self.done.subscribe();
        let appendable = self.backends.appendable.clone();
        let group = r.group;
        tokio::spawn(async move {
            if *done.borrow() {
                return;
            }
            tokio::select! {
                _ = done.changed() => {}
                () = tokio::time::sleep(wait) => {
                    let _ = tokio::task::spawn_blocking(move || {
                        group.lock().write_stale_markers(stopped_at, appendable.as_ref());
                    })
                    .await;
                }
            }
        });
    }

    /// Starts the task of a new group.
    fn start(
        self: &Arc<Self>,
        spec: GroupSpec,
        effective: (i64, i64),
        group: Group,
        restore: bool,
    ) -> Running {
        let key = format!("{};{}", spec.file, spec.name);
        let group = Arc::new(Mutex::new(group));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(self.clone().run_group(
            key.clone(),
            spec.file.clone(),
            spec.name.clone(),
            group.clone(),
            stop_rx,
            restore,
        ));
        Running {
            spec,
            effective,
            key,
            group,
            stop,
            task,
        }
    }

    /// The loop of one group: wait for the slot, evaluate, account, repeat until stopped.
    async fn run_group(
        self: Arc<Self>,
        key: String,
        file: String,
        name: String,
        group: Arc<Mutex<Group>>,
        mut stop: watch::Receiver<bool>,
        mut restore: bool,
    ) {
        let interval = group.lock().interval_ms().max(1);
        let offset = slot_offset(&file, &name, interval);
        let mut t = first_slot_after(now_ms(), interval, offset);
        let mut evaluated = 0u32;
        loop {
            let wait = Duration::from_millis(u64::try_from(t - now_ms()).unwrap_or(0));
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(wait) => {}
            }
            if *stop.borrow() {
                return;
            }
            let opts = self.opts.lock().clone();
            let backends = self.backends.clone();
            let g = group.clone();
            let do_restore = restore && evaluated == 1;
            let outcome = tokio::task::spawn_blocking(move || {
                let counting = CountingAppendable {
                    inner: backends.appendable.clone(),
                    samples: Arc::new(AtomicU64::new(0)),
                };
                let env = eval_env(&backends, &counting, &opts);
                let start = Instant::now();
                let mut g = g.lock();
                let alerts = g.eval(t, &env);
                let took = start.elapsed();
                let samples = counting.samples.load(Ordering::Relaxed);
                if do_restore {
                    g.restore_for_state(
                        now_ms(),
                        &env,
                        opts.outage_tolerance_ms,
                        opts.grace_period_ms,
                    );
                }
                let status = g.status();
                drop(g);
                if !alerts.is_empty() {
                    backends.sender.send(alerts);
                }
                (took, samples, status)
            })
            .await;
            evaluated = evaluated.saturating_add(1);
            if evaluated >= 2 {
                restore = false;
            }
            let missed;
            (t, missed) = {
                let (next, missed) = next_slot(t, now_ms(), interval);
                let prev = t;
                if missed > 0 {
                    tracing::warn!(group = %name, file = %file, missed, "rule group evaluation took longer than its interval; skipped slots");
                }
                match &outcome {
                    Ok((took, samples, status)) => {
                        self.metrics
                            .record(&key, interval, prev, *took, *samples, status);
                    }
                    Err(e) => {
                        tracing::error!(group = %name, error = %e, "rule group evaluation task failed")
                    }
                }
                (next, missed)
            };
            self.metrics.missed(&key, missed);
        }
    }

    /// Every group's status, ordered by file then name.
    pub async fn statuses(&self) -> Vec<GroupStatus> {
        let groups: Vec<Arc<Mutex<Group>>> = match &*self.groups.lock().await {
            Some(m) => m.values().map(|r| r.group.clone()).collect(),
            None => Vec::new(),
        };
        tokio::task::spawn_blocking(move || groups.iter().map(|g| g.lock().status()).collect())
            .await
            .unwrap_or_default()
    }

    /// Stops every group without stale markers (server shutdown).
    pub async fn stop(&self) {
        let _ = self.done.send(true);
        let groups = self.groups.lock().await.take().unwrap_or_default();
        for (_, r) in groups {
            let _ = r.stop.send(true);
            let _ = r.task.await;
        }
    }
}

/// The evaluation environment over the manager's backends and options.
fn eval_env<'a>(
    b: &'a Backends,
    appendable: &'a dyn Appendable,
    o: &'a ManagerOptions,
) -> EvalEnv<'a> {
    EvalEnv {
        engine: &b.engine,
        queryable: b.queryable.as_ref(),
        appendable,
        external_labels: &o.external_labels,
        external_url: &o.external_url,
        resend_delay_ms: o.resend_delay_ms,
    }
}

/// Counts the samples (stale markers excluded) rules append during one evaluation, for
/// `argus_rule_group_last_evaluation_samples`.
struct CountingAppendable {
    inner: Arc<dyn Appendable>,
    samples: Arc<AtomicU64>,
}

struct CountingAppender {
    inner: Box<dyn Appender>,
    samples: Arc<AtomicU64>,
}

impl Appendable for CountingAppendable {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(CountingAppender {
            // Rule output is recomputed every interval: one commit per rule without an fsync
            // each (as Prometheus), or a group of 1,000 rules waits for 1,000 fdatasyncs.
            inner: self.inner.appender_unsynced(),
            samples: self.samples.clone(),
        })
    }
}

impl Appender for CountingAppender {
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> StorageResult<SeriesRef> {
        if !argus_storage::is_stale_nan(v) {
            self.samples.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.append(series, labels, t, v)
    }
    fn commit(&mut self) -> StorageResult<()> {
        self.inner.commit()
    }
    fn rollback(&mut self) {
        self.inner.rollback();
    }
}

fn rule_health(r: &RuleStatus) -> Health {
    match r {
        RuleStatus::Recording { health, .. } | RuleStatus::Alerting { health, .. } => *health,
    }
}

/// Per-group counters and gauges of the last evaluation.
#[derive(Clone, Default)]
struct GroupMetrics {
    interval_s: f64,
    last_eval_s: f64,
    last_duration_s: f64,
    rules: f64,
    last_samples: f64,
    evaluations: u64,
    failures: u64,
    iterations: u64,
    missed: u64,
}

/// `argus_rule_*` metrics, label `rule_group="<file>;<name>"` (Prometheus's
/// `prometheus_rule_*`). A group's series disappear when it is removed or replaced.
#[derive(Default)]
pub struct RuleMetrics {
    /// By `<file>;<name>`.
    groups: Mutex<BTreeMap<String, GroupMetrics>>,
}

impl RuleMetrics {
    fn record(
        &self,
        key: &str,
        interval_ms: i64,
        t: i64,
        took: Duration,
        samples: u64,
        status: &GroupStatus,
    ) {
        let mut m = self.groups.lock();
        let g = m.entry(key.to_string()).or_default();
        g.interval_s = interval_ms as f64 / 1000.0;
        g.last_eval_s = t as f64 / 1000.0;
        g.last_duration_s = took.as_secs_f64();
        g.rules = status.rules.len() as f64;
        g.last_samples = samples as f64;
        g.evaluations += status.rules.len() as u64;
        g.failures += status
            .rules
            .iter()
            .filter(|r| rule_health(r) == Health::Err)
            .count() as u64;
        g.iterations += 1;
    }

    fn missed(&self, key: &str, n: u64) {
        if let Some(g) = self.groups.lock().get_mut(key) {
            g.missed += n;
            g.iterations += n;
        }
    }

    fn remove(&self, key: &str) {
        self.groups.lock().remove(key);
    }
}

impl Collect for RuleMetrics {
    fn collect(&self, out: &mut String) {
        let groups = self.groups.lock().clone();
        type Get = fn(&GroupMetrics) -> f64;
        let families: [(&str, &str, &str, Get); 9] = [
            (
                "argus_rule_group_interval_seconds",
                "gauge",
                "The interval of a rule group.",
                |g| g.interval_s,
            ),
            (
                "argus_rule_group_last_evaluation_timestamp_seconds",
                "gauge",
                "The timestamp of the last rule group evaluation in seconds.",
                |g| g.last_eval_s,
            ),
            (
                "argus_rule_group_last_duration_seconds",
                "gauge",
                "The duration of the last rule group evaluation.",
                |g| g.last_duration_s,
            ),
            (
                "argus_rule_group_rules",
                "gauge",
                "The number of rules.",
                |g| g.rules,
            ),
            (
                "argus_rule_group_last_evaluation_samples",
                "gauge",
                "The number of samples returned during the last rule group evaluation.",
                |g| g.last_samples,
            ),
            (
                "argus_rule_evaluations_total",
                "counter",
                "The total number of rule evaluations.",
                |g| g.evaluations as f64,
            ),
            (
                "argus_rule_evaluation_failures_total",
                "counter",
                "The total number of rule evaluation failures.",
                |g| g.failures as f64,
            ),
            (
                "argus_rule_group_iterations_total",
                "counter",
                "The total number of scheduled rule group evaluations, whether executed or missed.",
                |g| g.iterations as f64,
            ),
            (
                "argus_rule_group_iterations_missed_total",
                "counter",
                "The total number of rule group evaluations missed due to slow rule group evaluation.",
                |g| g.missed as f64,
            ),
        ];
        for (name, kind, help, get) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (key, g) in &groups {
                out.push_str(name);
                out.push_str("{rule_group=\"");
                out.push_str(&escape_label(key));
                out.push_str("\"} ");
                argus_query::gofloat::push_f(out, get(g));
                out.push('\n');
            }
        }
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_in_range() {
        for interval in [1, 1000, 15_000, 60_000] {
            let a = slot_offset("/etc/rules.yml", "g", interval);
            assert_eq!(a, slot_offset("/etc/rules.yml", "g", interval));
            assert!((0..interval).contains(&a), "{a} not in [0, {interval})");
        }
        assert_ne!(
            slot_offset("a.yml", "g1", 60_000),
            slot_offset("a.yml", "g2", 60_000)
        );
        assert_eq!(slot_offset("a", "b", 0), 0);
    }

    #[test]
    fn first_slot_is_strictly_after_now() {
        let check = |now, interval, offset, want| {
            assert_eq!(first_slot_after(now, interval, offset), want, "now={now}");
        };
        check(10_000, 1000, 250, 10_250);
        check(10_250, 1000, 250, 11_250);
        check(10_249, 1000, 250, 10_250);
        check(10_251, 1000, 250, 11_250);
        check(0, 60_000, 0, 60_000);
    }

    #[test]
    fn missed_slots_are_skipped_and_counted() {
        let check = |t, now, want: (i64, u64)| {
            assert_eq!(next_slot(t, now, 1000), want, "t={t} now={now}");
        };
        // Finished within the interval: the next slot, nothing missed.
        check(10_000, 10_200, (11_000, 0));
        // Finished just after the next slot: that slot is still evaluated (late, same t).
        check(10_000, 11_100, (11_000, 0));
        // Two whole slots passed: one missed, evaluate the latest passed slot.
        check(10_000, 12_500, (12_000, 1));
        check(10_000, 15_000, (15_000, 4));
    }

    #[test]
    fn metrics_render_per_group() {
        let m = RuleMetrics::default();
        m.groups.lock().insert(
            "/r.yml;g".into(),
            GroupMetrics {
                interval_s: 1.0,
                iterations: 3,
                missed: 1,
                ..GroupMetrics::default()
            },
        );
        let mut out = String::new();
        m.collect(&mut out);
        assert!(out.contains("argus_rule_group_interval_seconds{rule_group=\"/r.yml;g\"} 1\n"));
        assert!(out.contains("argus_rule_group_iterations_total{rule_group=\"/r.yml;g\"} 3\n"));
        assert!(
            out.contains("argus_rule_group_iterations_missed_total{rule_group=\"/r.yml;g\"} 1\n")
        );
        assert!(out.contains("# TYPE argus_rule_evaluations_total counter\n"));
        m.remove("/r.yml;g");
        out.clear();
        m.collect(&mut out);
        assert!(!out.contains("rule_group="));
    }
}
