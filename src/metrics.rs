//! Argus's own metrics (`argus_*`), one struct per component, created in `server` and injected.
//! No global statics: a [`Registry`] lists the components and renders the text format 0.0.4.

use argus_query::gofloat::push_f as push_float;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A component that renders its metrics in the text exposition format.
pub trait Collect: Send + Sync {
    /// Appends `# HELP`, `# TYPE` and sample lines to `out`.
    fn collect(&self, out: &mut String);
}

/// The set of components `/metrics` shows, in registration order.
#[derive(Default)]
pub struct Registry {
    /// Registered once at startup (before serving), read on every scrape.
    components: Mutex<Vec<Arc<dyn Collect>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a component.
    pub fn register(&self, c: Arc<dyn Collect>) {
        self.components.lock().push(c);
    }

    /// Renders every component.
    pub fn render(&self) -> String {
        let components = self.components.lock().clone();
        let mut out = String::with_capacity(8 << 10);
        for c in components {
            c.collect(&mut out);
        }
        out
    }
}

/// Appends `# HELP` and `# TYPE` lines.
pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends one sample line (`labels` already rendered, without braces).
pub(crate) fn sample(out: &mut String, name: &str, labels: &str, v: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        out.push_str(labels);
        out.push('}');
    }
    out.push(' ');
    push_float(out, v);
    out.push('\n');
}

/// Escapes a label value.
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A histogram with fixed upper bounds (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    /// Per-bucket (non-cumulative) counts, then the +Inf overflow; with `sum`, under one lock.
    state: Mutex<(Vec<u64>, f64)>,
}

impl Histogram {
    /// A histogram with the given ascending bounds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            state: Mutex::new((vec![0; bounds.len() + 1], 0.0)),
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        let mut s = self.state.lock();
        if let Some(c) = s.0.get_mut(i) {
            *c += 1;
        }
        s.1 += v;
    }

    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) {
        let (counts, sum) = self.state.lock().clone();
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cum = 0u64;
        for (i, c) in counts.iter().enumerate() {
            cum += c;
            let le = match self.bounds.get(i) {
                Some(b) => {
                    let mut s = String::new();
                    push_float(&mut s, *b);
                    s
                }
                None => "+Inf".to_string(),
            };
            sample(
                out,
                &format!("{name}_bucket"),
                &format!("{labels}{sep}le=\"{le}\""),
                cum as f64,
            );
        }
        sample(out, &format!("{name}_sum"), labels, sum);
        sample(out, &format!("{name}_count"), labels, cum as f64);
    }
}

const QUERY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// HTTP request counts by handler and status code, and request durations by handler.
#[derive(Default)]
pub struct HttpMetrics {
    /// (handler, code) → count.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
}

impl HttpMetrics {
    /// Counts one request.
    pub fn inc(&self, handler: &str, code: u16) {
        *self
            .requests
            .lock()
            .entry((handler.to_string(), code))
            .or_default() += 1;
    }
}

impl Collect for HttpMetrics {
    fn collect(&self, out: &mut String) {
        let name = "argus_http_requests_total";
        header(
            out,
            name,
            "counter",
            "HTTP requests by handler and status code.",
        );
        for ((h, c), n) in self.requests.lock().iter() {
            sample(
                out,
                name,
                &format!("code=\"{c}\",handler=\"{}\"", escape(h)),
                *n as f64,
            );
        }
    }
}

/// PromQL query durations and failures.
pub struct QueryMetrics {
    /// Seconds per query, by kind ("instant", "range").
    instant: Histogram,
    range: Histogram,
    /// Failed queries.
    failed: AtomicU64,
}

impl Default for QueryMetrics {
    fn default() -> Self {
        Self {
            instant: Histogram::new(QUERY_BUCKETS),
            range: Histogram::new(QUERY_BUCKETS),
            failed: AtomicU64::new(0),
        }
    }
}

impl QueryMetrics {
    /// Records a finished query.
    pub fn observe(&self, range: bool, seconds: f64, ok: bool) {
        if range { &self.range } else { &self.instant }.observe(seconds);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Collect for QueryMetrics {
    fn collect(&self, out: &mut String) {
        let name = "argus_engine_query_duration_seconds";
        header(out, name, "histogram", "PromQL query evaluation time.");
        self.instant.render(out, name, "kind=\"instant\"");
        self.range.render(out, name, "kind=\"range\"");
        let name = "argus_engine_queries_failed_total";
        header(out, name, "counter", "Queries that ended in an error.");
        sample(out, name, "", self.failed.load(Ordering::Relaxed) as f64);
    }
}

/// TSDB metrics, read from `Db::metrics()` at scrape time.
pub struct TsdbCollector {
    source: Box<dyn Fn() -> argus_storage::DbMetrics + Send + Sync>,
}

impl TsdbCollector {
    /// Reads metrics from `source` on every scrape.
    pub fn new(source: Box<dyn Fn() -> argus_storage::DbMetrics + Send + Sync>) -> Self {
        Self { source }
    }
}

impl Collect for TsdbCollector {
    fn collect(&self, out: &mut String) {
        let m = (self.source)();
        let simple: [(&str, &str, &str, f64); 10] = [
            (
                "argus_tsdb_head_series",
                "gauge",
                "Series in the head.",
                m.head_series as f64,
            ),
            (
                "argus_tsdb_head_chunks",
                "gauge",
                "Chunks in the head.",
                m.head_chunks as f64,
            ),
            (
                "argus_tsdb_head_bytes",
                "gauge",
                "Estimated head memory.",
                m.head_bytes as f64,
            ),
            (
                "argus_tsdb_head_samples_appended_total",
                "counter",
                "Samples appended to the head.",
                m.samples_appended as f64,
            ),
            (
                "argus_tsdb_wal_corruptions_total",
                "counter",
                "WAL corruptions repaired.",
                m.wal_corruptions as f64,
            ),
            (
                "argus_tsdb_compactions_total",
                "counter",
                "Compactions run.",
                m.compactions as f64,
            ),
            (
                "argus_tsdb_compactions_failed_total",
                "counter",
                "Compactions that failed.",
                m.compactions_failed as f64,
            ),
            (
                "argus_tsdb_blocks_loaded",
                "gauge",
                "Blocks loaded.",
                m.blocks as f64,
            ),
            (
                "argus_tsdb_storage_blocks_bytes",
                "gauge",
                "Bytes of all blocks.",
                m.blocks_bytes as f64,
            ),
            (
                "argus_tsdb_head_max_time_seconds",
                "gauge",
                "Newest head sample time.",
                if m.head_max_time == i64::MIN {
                    f64::NEG_INFINITY
                } else {
                    m.head_max_time as f64 / 1000.0
                },
            ),
        ];
        for (name, kind, help, v) in simple {
            header(out, name, kind, help);
            sample(out, name, "", v);
        }
        let name = "argus_tsdb_samples_rejected_total";
        header(out, name, "counter", "Samples the head refused, by reason.");
        for (reason, n) in &m.samples_rejected {
            sample(
                out,
                name,
                &format!("reason=\"{}\"", escape(reason)),
                *n as f64,
            );
        }
        let name = "argus_tsdb_wal_fsync_duration_seconds";
        header(out, name, "summary", "Time spent in WAL fsync.");
        sample(out, &format!("{name}_sum"), "", m.wal_fsync_seconds);
        sample(out, &format!("{name}_count"), "", m.wal_fsyncs as f64);
    }
}

/// User plus system CPU time of the whole process, from `/proc/self/stat` (Linux; fields 14
/// and 15 after the command name, in USER_HZ = 100 ticks per second).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Process start time, so restarts are visible.
pub struct ProcessMetrics {
    start_unix_seconds: f64,
}

impl ProcessMetrics {
    /// Records `start` as the process start time.
    pub fn new(start: std::time::SystemTime) -> Self {
        let start_unix_seconds = start
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self { start_unix_seconds }
    }
}

impl Collect for ProcessMetrics {
    fn collect(&self, out: &mut String) {
        let name = "process_start_time_seconds";
        header(
            out,
            name,
            "gauge",
            "Start time of the process since unix epoch in seconds.",
        );
        sample(out, name, "", self.start_unix_seconds);
        if let Some(cpu) = process_cpu_seconds() {
            let name = "process_cpu_seconds_total";
            header(
                out,
                name,
                "counter",
                "Total user and system CPU time spent in seconds.",
            );
            sample(out, name, "", cpu);
        }
        let name = "argus_build_info";
        header(out, name, "gauge", "Build information; always 1.");
        sample(
            out,
            name,
            &format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
            1.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format() {
        let reg = Registry::new();
        let http = Arc::new(HttpMetrics::default());
        let q = Arc::new(QueryMetrics::default());
        reg.register(http.clone());
        reg.register(q.clone());
        http.inc("/api/v1/query", 200);
        http.inc("/api/v1/query", 200);
        http.inc("/api/v1/query", 400);
        q.observe(false, 0.003, true);
        q.observe(true, 100.0, false);
        let text = reg.render();
        let want = [
            "argus_http_requests_total{code=\"200\",handler=\"/api/v1/query\"} 2\n",
            "argus_http_requests_total{code=\"400\",handler=\"/api/v1/query\"} 1\n",
            "argus_engine_query_duration_seconds_bucket{kind=\"instant\",le=\"0.001\"} 0\n",
            "argus_engine_query_duration_seconds_bucket{kind=\"instant\",le=\"0.005\"} 1\n",
            "argus_engine_query_duration_seconds_bucket{kind=\"range\",le=\"60\"} 0\n",
            "argus_engine_query_duration_seconds_bucket{kind=\"range\",le=\"+Inf\"} 1\n",
            "argus_engine_query_duration_seconds_count{kind=\"range\"} 1\n",
            "argus_engine_queries_failed_total 1\n",
            "# TYPE argus_http_requests_total counter\n",
        ];
        for w in want {
            assert!(text.contains(w), "missing {w:?} in:\n{text}");
        }
    }

    #[test]
    fn tsdb_collector_reads_db_metrics() {
        let c = TsdbCollector::new(Box::new(|| argus_storage::DbMetrics {
            head_series: 42,
            samples_rejected: vec![("out_of_order".into(), 5)],
            wal_fsyncs: 3,
            wal_fsync_seconds: 0.5,
            head_max_time: i64::MIN,
            ..Default::default()
        }));
        let mut out = String::new();
        c.collect(&mut out);
        for w in [
            "argus_tsdb_head_series 42\n",
            "argus_tsdb_samples_rejected_total{reason=\"out_of_order\"} 5\n",
            "argus_tsdb_wal_fsync_duration_seconds_count 3\n",
            "argus_tsdb_wal_fsync_duration_seconds_sum 0.5\n",
            "argus_tsdb_head_max_time_seconds -Inf\n",
        ] {
            assert!(out.contains(w), "missing {w:?} in:\n{out}");
        }
    }
}
