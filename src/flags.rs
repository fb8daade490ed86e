//! Prometheus-style command-line flags: `--name=value`, `--name value`, boolean `--name`,
//! `--name=false` and `--no-name`. Two stages: [`parse`] collects raw strings, then
//! `Flags::from_raw` validates them once into typed options.

use crate::config::parse_duration;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Run the server.
    Run(Box<Flags>),
    /// Print this text to stdout and exit 0 (`--help`, `--version`).
    Print(String),
    /// A promtool-style command: `check config|rules`, `test rules` (`argv[1]` is `check`/`test`).
    Tool(crate::rules::cli::ToolCommand),
}

/// A usage error; `main` prints it and exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("argus: error: {0}, try --help")]
pub struct UsageError(pub String);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Value,
}

/// `(name, kind, default, help)`. Flags after the first block are accepted for Prometheus
/// compatibility and have no effect.
const FLAGS: &[(&str, Kind, &str, &str)] = &[
    (
        "config.file",
        Kind::Value,
        "",
        "Configuration file (default: scrape Argus itself every 15s).",
    ),
    (
        "storage.tsdb.path",
        Kind::Value,
        "./data",
        "Base path for metrics storage.",
    ),
    (
        "storage.tsdb.retention.time",
        Kind::Value,
        "",
        "How long to retain samples (default 15d).",
    ),
    (
        "storage.tsdb.retention.size",
        Kind::Value,
        "",
        "Maximum bytes of blocks kept (e.g. 512MB).",
    ),
    (
        "storage.remote.max-backlog",
        Kind::Value,
        "1GB",
        "Most bytes of WAL kept for remote-write queues that are behind (0B = no limit); past it the oldest segments are deleted and their samples not sent.",
    ),
    (
        "storage.remote.read-concurrent-limit",
        Kind::Value,
        "10",
        "Most remote read requests answered at once; more wait (0 = no limit).",
    ),
    (
        "storage.remote.read-max-bytes-in-frame",
        Kind::Value,
        "1048576",
        "Bytes of labels and chunks after which a streamed remote read frame is sent.",
    ),
    (
        "agent",
        Kind::Bool,
        "false",
        "Run in agent mode: scrape, push, receive and remote-write only; no blocks, rules or local queries.",
    ),
    (
        "storage.agent.path",
        Kind::Value,
        "data-agent/",
        "Base path for the agent's WAL (with --agent; replaces --storage.tsdb.path).",
    ),
    (
        "storage.agent.wal-truncate-frequency",
        Kind::Value,
        "2h",
        "With --agent: how often WAL data that every remote-write queue acknowledged is truncated.",
    ),
    (
        "storage.agent.wal-segment-size",
        Kind::Value,
        "128MB",
        "With --agent: size of a WAL segment file.",
    ),
    (
        "storage.agent.retention.min-time",
        Kind::Value,
        "5m",
        "With --agent: minimum age samples may be before being considered for deletion when the WAL is truncated.",
    ),
    (
        "storage.agent.retention.max-time",
        Kind::Value,
        "4h",
        "With --agent: maximum age samples may be before being forcibly deleted when the WAL is truncated.",
    ),
    (
        "storage.tsdb.out-of-order-time-window",
        Kind::Value,
        "",
        "Accept out-of-order samples this old.",
    ),
    (
        "web.listen-address",
        Kind::Value,
        ":9090",
        "Address to listen on for the UI, API and telemetry.",
    ),
    (
        "query.lookback-delta",
        Kind::Value,
        "5m",
        "Lookback for instant vector selectors.",
    ),
    (
        "query.timeout",
        Kind::Value,
        "2m",
        "Maximum time a query may take.",
    ),
    (
        "query.max-samples",
        Kind::Value,
        "50000000",
        "Maximum samples one query may load.",
    ),
    (
        "storage.remote-write.max-labels-per-series",
        Kind::Value,
        "512",
        "Remote-write series with more labels are rejected (400); 0 = no limit.",
    ),
    (
        "storage.remote-write.max-label-name-length",
        Kind::Value,
        "1024",
        "Remote-write series with a longer label name (bytes) are rejected; 0 = no limit.",
    ),
    (
        "storage.remote-write.max-label-value-length",
        Kind::Value,
        "16384",
        "Remote-write series with a longer label value (bytes) are rejected; 0 = no limit.",
    ),
    (
        "web.enable-admin-api",
        Kind::Bool,
        "false",
        "Enable the admin endpoints.",
    ),
    (
        "web.enable-lifecycle",
        Kind::Bool,
        "false",
        "Enable reload and shutdown via HTTP.",
    ),
    (
        "push.listen-address",
        Kind::Value,
        "",
        "Extra listener for the Pushgateway API (default: main listener).",
    ),
    (
        "push.group-ttl",
        Kind::Value,
        "",
        "Drop pushed groups not updated for this long (default: never).",
    ),
    (
        "log.level",
        Kind::Value,
        "info",
        "Only log messages with this severity or above.",
    ),
    (
        "alertmanager.notification-queue-capacity",
        Kind::Value,
        "10000",
        "Alerts each Alertmanager's queue holds; the oldest are dropped beyond.",
    ),
    (
        "alertmanager.notification-batch-size",
        Kind::Value,
        "256",
        "Alerts sent to an Alertmanager per request.",
    ),
    (
        "alertmanager.drain-notification-queue-on-shutdown",
        Kind::Bool,
        "true",
        "Send the queued alerts before shutting down.",
    ),
    (
        "rules.alert.for-outage-tolerance",
        Kind::Value,
        "1h",
        "Max time to tolerate Argus outage for restoring \"for\" state of alert.",
    ),
    (
        "rules.alert.for-grace-period",
        Kind::Value,
        "10m",
        "Minimum duration between alert and restored \"for\" state. This is maintained only for alerts with configured \"for\" time greater than grace period.",
    ),
    (
        "rules.alert.resend-delay",
        Kind::Value,
        "1m",
        "Minimum amount of time to wait before resending an alert to Alertmanager.",
    ),
    // Prometheus flags: accepted with no effect unless the help says otherwise.
    (
        "web.enable-remote-write-receiver",
        Kind::Bool,
        "false",
        "Serve the remote-write receiver at /api/v1/write.",
    ),
    (
        "web.enable-otlp-receiver",
        Kind::Bool,
        "false",
        "Serve the OTLP metrics receiver at /api/v1/otlp/v1/metrics.",
    ),
    (
        "storage.tsdb.wal-compression",
        Kind::Bool,
        "true",
        "Accepted; no effect.",
    ),
    (
        "storage.tsdb.no-lockfile",
        Kind::Bool,
        "false",
        "Accepted; no effect.",
    ),
    (
        "storage.tsdb.allow-overlapping-blocks",
        Kind::Bool,
        "false",
        "Accepted; no effect.",
    ),
    (
        "storage.tsdb.min-block-duration",
        Kind::Value,
        "2h",
        "Range of the head cut into a block (hidden in Prometheus; short values for tests and soaks).",
    ),
    (
        "storage.tsdb.head-snapshot-interval",
        Kind::Value,
        "0s",
        "Write a snapshot of the head this often (0s: not by time; see also --storage.tsdb.head-snapshot-wal-size), and one at shutdown. Each replaces the WAL segments it covers, so a restart, also after a crash, loads it and replays only the WAL written since. 0s by default: snapshots are then taken by WAL size (--storage.tsdb.head-snapshot-wal-size, 4MB by default).",
    ),
    (
        "storage.tsdb.head-snapshot-wal-size",
        Kind::Value,
        "4MB",
        "Write a head snapshot once this much WAL was written since the last one (or, if more, a quarter of the last whole snapshot's size or 64 B per head series: big heads are not rewritten every 4MB), so a restart, also after a crash, replays about that much WAL (checked every 250 ms; these snapshots copy completed chunks without re-encoding them, and when writes pause for a second a packed whole snapshot replaces them; 3.5 MiB of WAL replays in about 0.08 s on two cores). Snapshots after the first are deltas (the series created, chunks completed and samples appended since the one before) until the deltas are the size of the whole snapshot under them; a whole snapshot, also written at shutdown and after a head cut or a deletion, replaces the WAL segments it covers. 0B: not by size; with --storage.tsdb.head-snapshot-interval at 0s too, no head snapshots and the WAL is kept and replayed in full.",
    ),
    (
        "storage.tsdb.max-block-duration",
        Kind::Value,
        "",
        "Accepted; no effect.",
    ),
    (
        "storage.remote.flush-deadline",
        Kind::Value,
        "1m",
        "Accepted; no effect.",
    ),
    (
        "storage.remote.read-sample-limit",
        Kind::Value,
        "50000000",
        "Most samples in one SAMPLES remote read response (0 = no limit; streamed responses are not bound by it).",
    ),
    ("log.format", Kind::Value, "logfmt", "Accepted; no effect."),
    (
        "web.external-url",
        Kind::Value,
        "",
        "URL under which Argus is reachable (behind a reverse proxy): $externalURL, alert generatorURL; its path is the default route prefix.",
    ),
    (
        "web.route-prefix",
        Kind::Value,
        "",
        "Prefix for every HTTP route (UI, API, push, federation, lifecycle). Defaults to the path of --web.external-url.",
    ),
    ("web.page-title", Kind::Value, "", "Accepted; no effect."),
    ("web.cors.origin", Kind::Value, ".*", "Accepted; no effect."),
    (
        "web.console.templates",
        Kind::Value,
        "consoles",
        "Accepted; no effect.",
    ),
    (
        "web.console.libraries",
        Kind::Value,
        "console_libraries",
        "Accepted; no effect.",
    ),
    (
        "web.max-connections",
        Kind::Value,
        "512",
        "Maximum simultaneous connections across both listeners (0: unlimited).",
    ),
    (
        "web.read-timeout",
        Kind::Value,
        "5m",
        "Maximum time to read a request's headers, and its body (0s: unlimited).",
    ),
    (
        "web.config.file",
        Kind::Value,
        "",
        "Web config file (TLS, basic auth, headers) in Prometheus's format.",
    ),
    (
        "query.max-concurrency",
        Kind::Value,
        "20",
        "Maximum queries evaluated at once; others queue within their timeout.",
    ),
    (
        "enable-feature",
        Kind::Value,
        "",
        "Comma-separated features (repeatable): created-timestamp-zero-ingestion acts; others are accepted with no effect.",
    ),
];

/// Validated flags.
#[derive(Clone, Debug)]
pub struct Flags {
    /// `--config.file`, None = embedded default config.
    pub config_file: Option<PathBuf>,
    /// `--storage.tsdb.path`.
    pub data_dir: PathBuf,
    /// `--storage.tsdb.retention.time`; None with no size limit means 15 d.
    pub retention: Option<Duration>,
    /// `--storage.tsdb.retention.size` in bytes.
    pub retention_bytes: Option<u64>,
    /// `--storage.tsdb.out-of-order-time-window`; overrides the config file's value.
    pub out_of_order_window: Option<Duration>,
    /// `--storage.tsdb.min-block-duration`: the head's block range.
    pub min_block_duration: Duration,
    /// `--storage.tsdb.head-snapshot-interval` (None: no head snapshots).
    pub head_snapshot_interval: Option<Duration>,
    /// `--storage.tsdb.head-snapshot-wal-size` in bytes (None: no snapshots by WAL size).
    pub head_snapshot_wal_bytes: Option<u64>,
    /// `--storage.remote.max-backlog` in bytes (None = no limit).
    pub remote_max_backlog: Option<u64>,
    /// `--web.listen-address`.
    pub listen: SocketAddr,
    /// `--query.lookback-delta`.
    pub lookback_delta: Duration,
    /// `--query.timeout`.
    pub query_timeout: Duration,
    /// `--query.max-samples`.
    pub max_samples: usize,
    /// `--storage.remote-write.max-label*` bounds.
    pub remote_write_limits: crate::ingest::remote_write::LabelLimits,
    /// `--web.enable-admin-api`.
    pub enable_admin_api: bool,
    /// `--web.enable-lifecycle`.
    pub enable_lifecycle: bool,
    /// `--push.listen-address` (for the push service).
    pub push_listen: Option<SocketAddr>,
    /// `--push.group-ttl` (for the push service).
    pub push_group_ttl: Option<Duration>,
    /// `--log.level`: debug, info, warn or error.
    pub log_level: String,
    /// `--alertmanager.*` (for the notifier).
    pub notifier: crate::notifier::Options,
    /// `--rules.alert.for-outage-tolerance`.
    pub for_outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period`.
    pub for_grace_period: Duration,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: Duration,
    /// `--web.external-url`, None = `http://<hostname>:<port>/` (derived by the server).
    pub external_url: Option<String>,
    /// Every flag and its effective value as text, for `/api/v1/status/flags`.
    pub all: BTreeMap<String, String>,
    /// `--web.config.file`.
    pub web_config_file: Option<PathBuf>,
    /// `--web.read-timeout` (zero: unlimited).
    pub read_timeout: Duration,
    /// `--web.max-connections` (0: unlimited).
    pub max_connections: usize,
    /// `--query.max-concurrency` (at least 1).
    pub max_concurrency: usize,
    /// `--web.enable-remote-write-receiver`.
    pub enable_remote_write_receiver: bool,
    /// `--storage.remote.read-*` bounds of the remote read server.
    pub remote_read: crate::remote::read::ReadLimits,
    /// `--agent` and its `--storage.agent.*` options (None: a full server).
    pub agent: Option<crate::agent::AgentOptions>,
    /// `--web.enable-otlp-receiver`.
    pub enable_otlp_receiver: bool,
    /// `--enable-feature=created-timestamp-zero-ingestion`.
    pub ct_zero_ingestion: bool,
}

/// Parses `args` (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, UsageError> {
    let args: Vec<String> = args.into_iter().collect();
    if matches!(args.first().map(String::as_str), Some("check" | "test")) {
        return crate::rules::cli::parse(args).map(Command::Tool);
    }
    let mut raw: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" | "--help-long" => return Ok(Command::Print(usage())),
            "--version" => {
                return Ok(Command::Print(format!(
                    "argus, version {}\n",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            _ => {}
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(UsageError(format!("unexpected argument {arg:?}")));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let (spec, negated) = match lookup(name) {
            Some(s) => (s, false),
            None => match name.strip_prefix("no-").and_then(lookup) {
                Some(s) if s.1 == Kind::Bool && inline.is_none() => (s, true),
                _ => return Err(UsageError(format!("unknown long flag '--{name}'"))),
            },
        };
        let value = match (spec.1, inline) {
            (Kind::Bool, None) => (!negated).to_string(),
            (Kind::Bool, Some(v)) => match v.as_str() {
                "true" | "false" => v,
                _ => {
                    return Err(UsageError(format!(
                        "invalid boolean value {v:?} for --{name}"
                    )));
                }
            },
            (Kind::Value, Some(v)) => v,
            (Kind::Value, None) => args
                .next()
                .ok_or_else(|| UsageError(format!("expected argument for flag '--{name}'")))?,
        };
        // `--enable-feature` may be repeated, as Prometheus allows: the values add up.
        if spec.0 == "enable-feature"
            && let Some(prev) = raw.get_mut(spec.0)
        {
            prev.push(',');
            prev.push_str(&value);
            continue;
        }
        raw.insert(spec.0, value);
    }
    Flags::from_raw(&raw).map(|f| Command::Run(Box::new(f)))
}

fn lookup(name: &str) -> Option<&'static (&'static str, Kind, &'static str, &'static str)> {
    FLAGS.iter().find(|f| f.0 == name)
}

fn usage() -> String {
    let mut s = String::from("usage: argus [<flags>]\n\nThe Argus monitoring server.\n\nFlags:\n");
    for (name, kind, default, help) in FLAGS {
        let arg = if *kind == Kind::Bool {
            String::new()
        } else {
            "=<value>".into()
        };
        let def = if default.is_empty() {
            String::new()
        } else {
            format!(" [{default}]")
        };
        s.push_str(&format!("  --{name}{arg}\n      {help}{def}\n"));
    }
    s
}

impl Flags {
    /// Validates raw flag strings (missing ones take their defaults).
    fn from_raw(raw: &BTreeMap<&'static str, String>) -> Result<Flags, UsageError> {
        let get = |name: &str| -> &str {
            raw.get(name)
                .map(String::as_str)
                .or_else(|| lookup(name).map(|f| f.2))
                .unwrap_or("")
        };
        let opt = |name: &str| Some(get(name)).filter(|s| !s.is_empty());
        let dur = |name: &str| -> Result<Option<Duration>, UsageError> {
            opt(name)
                .map(|s| parse_duration(s).map_err(|e| UsageError(format!("--{name}: {e}"))))
                .transpose()
        };
        let listen = parse_listen(get("web.listen-address"))
            .map_err(|e| UsageError(format!("--web.listen-address: {e}")))?;
        let push_listen = opt("push.listen-address")
            .map(|s| parse_listen(s).map_err(|e| UsageError(format!("--push.listen-address: {e}"))))
            .transpose()?;
        let retention_bytes = opt("storage.tsdb.retention.size")
            .map(|s| {
                parse_bytes(s).ok_or_else(|| {
                    UsageError(format!("--storage.tsdb.retention.size: invalid size {s:?}"))
                })
            })
            .transpose()?;
        let remote_max_backlog = match parse_bytes(get("storage.remote.max-backlog")) {
            Some(0) => None,
            Some(n) => Some(n),
            None => {
                return Err(UsageError(format!(
                    "--storage.remote.max-backlog: invalid size {:?}",
                    get("storage.remote.max-backlog")
                )));
            }
        };
        let head_snapshot_wal_bytes = match parse_bytes(get("storage.tsdb.head-snapshot-wal-size"))
        {
            Some(0) => None,
            Some(n) => Some(n),
            None => {
                return Err(UsageError(format!(
                    "--storage.tsdb.head-snapshot-wal-size: invalid size {:?}",
                    get("storage.tsdb.head-snapshot-wal-size")
                )));
            }
        };
        let max_samples = get("query.max-samples").parse::<usize>().map_err(|_| {
            UsageError(format!(
                "--query.max-samples: invalid number {:?}",
                get("query.max-samples")
            ))
        })?;
        let limit = |name: &str| {
            get(name)
                .parse::<usize>()
                .map_err(|_| UsageError(format!("--{name}: invalid number {:?}", get(name))))
        };
        let remote_write_limits = crate::ingest::remote_write::LabelLimits {
            max_labels: limit("storage.remote-write.max-labels-per-series")?,
            max_name_len: limit("storage.remote-write.max-label-name-length")?,
            max_value_len: limit("storage.remote-write.max-label-value-length")?,
        };
        let count = |name: &str| -> Result<usize, UsageError> {
            get(name)
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| UsageError(format!("--{name}: invalid count {:?}", get(name))))
        };
        let notifier = crate::notifier::Options {
            queue_capacity: count("alertmanager.notification-queue-capacity")?,
            batch_size: count("alertmanager.notification-batch-size")?,
            drain_on_shutdown: get("alertmanager.drain-notification-queue-on-shutdown") == "true",
            ..crate::notifier::Options::default()
        };
        // Validated here; the server reads the prefix from `all` (api::ui::route_prefix_from_flags).
        crate::api::ui::route_prefix(get("web.external-url"), get("web.route-prefix"))
            .map_err(|e| UsageError(format!("--web.route-prefix/--web.external-url: {e}")))?;
        let log_level = get("log.level").to_string();
        if !["debug", "info", "warn", "error"].contains(&log_level.as_str()) {
            return Err(UsageError(format!(
                "--log.level: unknown level {log_level:?}"
            )));
        }
        let count = |name: &str| {
            get(name)
                .parse::<usize>()
                .map_err(|_| UsageError(format!("--{name}: invalid number {:?}", get(name))))
        };
        let max_connections = count("web.max-connections")?;
        let max_concurrency = count("query.max-concurrency")?;
        if max_concurrency == 0 {
            return Err(UsageError(
                "--query.max-concurrency: must be at least 1".into(),
            ));
        }
        let remote_read = crate::remote::read::ReadLimits {
            sample_limit: count("storage.remote.read-sample-limit")?,
            concurrent_limit: count("storage.remote.read-concurrent-limit")?,
            max_bytes_in_frame: count("storage.remote.read-max-bytes-in-frame")?.max(1),
        };
        let agent = (get("agent") == "true")
            .then(|| {
                crate::agent::AgentOptions::from_flags(
                    get("storage.agent.wal-truncate-frequency"),
                    get("storage.agent.wal-segment-size"),
                    parse_bytes,
                )
                .and_then(|a| {
                    a.with_retention(
                        get("storage.agent.retention.min-time"),
                        get("storage.agent.retention.max-time"),
                    )
                })
                .map_err(UsageError)
            })
            .transpose()?;
        let data_dir = match agent {
            Some(_) => PathBuf::from(get("storage.agent.path")),
            None => PathBuf::from(get("storage.tsdb.path")),
        };
        let all = FLAGS
            .iter()
            .map(|f| (f.0.to_string(), get(f.0).to_string()))
            .collect();
        Ok(Flags {
            config_file: opt("config.file").map(PathBuf::from),
            data_dir,
            retention: dur("storage.tsdb.retention.time")?,
            retention_bytes,
            out_of_order_window: dur("storage.tsdb.out-of-order-time-window")?,
            min_block_duration: dur("storage.tsdb.min-block-duration")?
                .filter(|d| d.as_millis() > 0)
                .ok_or_else(|| {
                    UsageError("--storage.tsdb.min-block-duration: must be positive".into())
                })?,
            head_snapshot_interval: dur("storage.tsdb.head-snapshot-interval")?
                .filter(|d| !d.is_zero()),
            head_snapshot_wal_bytes,
            remote_max_backlog,
            listen,
            lookback_delta: dur("query.lookback-delta")?.unwrap_or(Duration::from_secs(300)),
            query_timeout: dur("query.timeout")?.unwrap_or(Duration::from_secs(120)),
            max_samples,
            remote_write_limits,
            enable_admin_api: get("web.enable-admin-api") == "true",
            enable_lifecycle: get("web.enable-lifecycle") == "true",
            push_listen,
            push_group_ttl: dur("push.group-ttl")?,
            log_level,
            notifier,
            for_outage_tolerance: dur("rules.alert.for-outage-tolerance")?
                .unwrap_or(Duration::from_secs(3600)),
            for_grace_period: dur("rules.alert.for-grace-period")?
                .unwrap_or(Duration::from_secs(600)),
            resend_delay: dur("rules.alert.resend-delay")?.unwrap_or(Duration::from_secs(60)),
            external_url: opt("web.external-url").map(str::to_string),
            all,
            web_config_file: opt("web.config.file").map(PathBuf::from),
            read_timeout: dur("web.read-timeout")?.unwrap_or(Duration::from_secs(300)),
            max_connections,
            max_concurrency,
            enable_remote_write_receiver: get("web.enable-remote-write-receiver") == "true",
            remote_read,
            agent,
            enable_otlp_receiver: get("web.enable-otlp-receiver") == "true",
            ct_zero_ingestion: get("enable-feature")
                .split(',')
                .any(|f| f.trim() == "created-timestamp-zero-ingestion"),
        })
    }

    /// Retention in ms as the Db wants it: the flag, else 15 d unless a size limit is set.
    pub fn retention_ms(&self) -> Option<i64> {
        match (self.retention, self.retention_bytes) {
            (Some(d), _) if d.is_zero() => None,
            (Some(d), _) => Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            (None, Some(_)) => None,
            (None, None) => Some(15 * 24 * 3600 * 1000),
        }
    }
}

/// `:9090` → `0.0.0.0:9090`; `localhost:9090` → `127.0.0.1:9090`.
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    let full = match full.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => full,
    };
    full.parse()
        .map_err(|_| format!("invalid address {s:?} (want host:port)"))
}

/// Prometheus byte sizes: `512MB`, `1GB`, `100KB`, `10B` (units are powers of 1024).
fn parse_bytes(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let n: u64 = num.parse().ok()?;
    let shift = match unit {
        "B" => 0,
        "KB" => 10,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        "PB" => 50,
        "EB" => 60,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_and_remote_read_flags() {
        let f = run(&[]).unwrap();
        assert!(f.agent.is_none());
        assert_eq!(f.remote_read, crate::remote::read::ReadLimits::default());
        let f = run(&[
            "--agent",
            "--storage.agent.path=/tmp/ag",
            "--storage.agent.wal-truncate-frequency=30m",
            "--storage.remote.read-concurrent-limit=0",
            "--storage.remote.read-sample-limit=5",
            "--storage.remote.read-max-bytes-in-frame=4096",
        ])
        .unwrap();
        assert_eq!(f.data_dir, PathBuf::from("/tmp/ag"));
        let a = f.agent.unwrap();
        assert_eq!(a.truncate_every, Duration::from_secs(1800));
        assert_eq!(a.wal_segment_size, 128 << 20);
        assert_eq!(f.remote_read.concurrent_limit, 0);
        assert_eq!(f.remote_read.sample_limit, 5);
        assert_eq!(f.remote_read.max_bytes_in_frame, 4096);
        assert!(run(&["--agent", "--storage.agent.wal-segment-size=1KB"]).is_err());
        assert!(run(&["--storage.remote.read-sample-limit=x"]).is_err());
    }

    #[test]
    fn head_snapshot_flags() {
        // On by default (4MB); 0B turns the size trigger off.
        let f = run(&[]).unwrap();
        assert_eq!(f.head_snapshot_wal_bytes, Some(4 << 20));
        assert_eq!(f.head_snapshot_interval, None);
        let f = run(&[
            "--storage.tsdb.head-snapshot-wal-size=0B",
            "--storage.tsdb.head-snapshot-interval=10m",
        ])
        .unwrap();
        assert_eq!(f.head_snapshot_wal_bytes, None);
        assert_eq!(f.head_snapshot_interval, Some(Duration::from_secs(600)));
        let f = run(&["--storage.tsdb.head-snapshot-wal-size=16MB"]).unwrap();
        assert_eq!(f.head_snapshot_wal_bytes, Some(16 << 20));
        let e = run(&["--storage.tsdb.head-snapshot-wal-size=lots"]).unwrap_err();
        assert!(
            e.0.contains("head-snapshot-wal-size: invalid size"),
            "{}",
            e.0
        );
    }

    fn run(args: &[&str]) -> Result<Flags, UsageError> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(f) => Ok(*f),
            Command::Print(p) => panic!("unexpected print: {p}"),
            Command::Tool(t) => panic!("unexpected tool command: {t:?}"),
        }
    }

    #[test]
    fn defaults() {
        let f = run(&[]).unwrap();
        assert_eq!(f.listen, "0.0.0.0:9090".parse().unwrap());
        assert_eq!(f.data_dir, PathBuf::from("./data"));
        assert_eq!(f.retention_ms(), Some(15 * 24 * 3600 * 1000));
        assert_eq!(f.lookback_delta, Duration::from_secs(300));
        assert!(!f.enable_admin_api && !f.enable_lifecycle);
        assert_eq!(f.all["web.listen-address"], ":9090");
        assert_eq!(f.notifier.queue_capacity, 10_000);
        assert_eq!(f.notifier.batch_size, 256);
        assert!(f.notifier.drain_on_shutdown);
        let f = run(&[
            "--alertmanager.notification-queue-capacity=5",
            "--no-alertmanager.drain-notification-queue-on-shutdown",
        ])
        .unwrap();
        assert_eq!(f.notifier.queue_capacity, 5);
        assert!(!f.notifier.drain_on_shutdown);
        assert_eq!(f.for_outage_tolerance, Duration::from_secs(3600));
        assert_eq!(f.for_grace_period, Duration::from_secs(600));
        assert_eq!(f.resend_delay, Duration::from_secs(60));
        assert_eq!(f.external_url, None);
    }

    #[test]
    fn rule_flags() {
        let f = run(&[
            "--rules.alert.for-grace-period=2s",
            "--rules.alert.for-outage-tolerance=5m",
            "--rules.alert.resend-delay=4s",
            "--web.external-url=http://prom.example:9090/prefix",
        ])
        .unwrap();
        assert_eq!(f.for_grace_period, Duration::from_secs(2));
        assert_eq!(f.for_outage_tolerance, Duration::from_secs(300));
        assert_eq!(f.resend_delay, Duration::from_secs(4));
        assert_eq!(
            f.external_url.as_deref(),
            Some("http://prom.example:9090/prefix")
        );
        assert!(run(&["--rules.alert.resend-delay=x"]).is_err());
    }

    #[test]
    fn both_value_forms_and_booleans() {
        let f = run(&[
            "--config.file=a.yml",
            "--storage.tsdb.path",
            "/tmp/d",
            "--web.enable-admin-api",
            "--web.enable-lifecycle=false",
            "--storage.tsdb.retention.size=512MB",
            "--query.timeout",
            "30s",
            "--web.listen-address=127.0.0.1:0",
            "--web.enable-remote-write-receiver",
            "--no-storage.tsdb.wal-compression",
            "--push.group-ttl=1h",
        ])
        .unwrap();
        assert_eq!(f.config_file, Some(PathBuf::from("a.yml")));
        assert_eq!(f.data_dir, PathBuf::from("/tmp/d"));
        assert!(f.enable_admin_api);
        assert!(!f.enable_lifecycle);
        assert_eq!(f.retention_bytes, Some(512 << 20));
        assert_eq!(
            f.retention_ms(),
            None,
            "size limit alone disables the time default"
        );
        assert_eq!(f.query_timeout, Duration::from_secs(30));
        assert_eq!(f.push_group_ttl, Some(Duration::from_secs(3600)));
        assert_eq!(f.all["storage.tsdb.wal-compression"], "false");
    }

    #[test]
    fn errors_are_readable() {
        let check = |args: &[&str], want: &str| {
            let err = run(args).unwrap_err().to_string();
            assert!(err.contains(want), "expected {want:?} in {err:?}");
        };
        check(&["--nope"], "unknown long flag '--nope'");
        check(
            &["--config.file"],
            "expected argument for flag '--config.file'",
        );
        check(&["--query.timeout=5x"], "--query.timeout");
        check(&["--web.listen-address=nope"], "invalid address");
        check(&["--storage.tsdb.retention.size=5XB"], "invalid size");
        check(&["--web.enable-admin-api=yes"], "invalid boolean");
        check(&["positional"], "unexpected argument");
        check(&["--no-config.file"], "unknown long flag");
        check(
            &["--alertmanager.notification-batch-size=0"],
            "--alertmanager.notification-batch-size: invalid count",
        );
    }

    #[test]
    fn web_and_query_bounds() {
        let f = run(&[]).unwrap();
        assert_eq!(f.read_timeout, Duration::from_secs(300));
        assert_eq!((f.max_connections, f.max_concurrency), (512, 20));
        assert!(f.web_config_file.is_none() && !f.enable_remote_write_receiver);
        let f = run(&[
            "--web.read-timeout=2s",
            "--web.max-connections=0",
            "--query.max-concurrency=1",
            "--web.config.file=web.yml",
            "--web.enable-remote-write-receiver",
        ])
        .unwrap();
        assert_eq!(f.read_timeout, Duration::from_secs(2));
        assert_eq!((f.max_connections, f.max_concurrency), (0, 1));
        assert_eq!(f.web_config_file, Some(PathBuf::from("web.yml")));
        assert!(f.enable_remote_write_receiver);
        let err = run(&["--query.max-concurrency=0"]).unwrap_err().to_string();
        assert!(err.contains("at least 1"), "{err}");
        let err = run(&["--web.max-connections=many"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid number"), "{err}");
    }

    #[test]
    fn help_and_version_print() {
        let help = parse(["--help".to_string()]).unwrap();
        assert!(matches!(help, Command::Print(ref s) if s.contains("--storage.tsdb.path")));
        let v = parse(["--version".to_string()]).unwrap();
        assert!(matches!(v, Command::Print(ref s) if s.starts_with("argus, version")));
    }

    #[test]
    fn features_accumulate_over_repeated_flags() {
        assert!(!run(&[]).unwrap().ct_zero_ingestion);
        let f = run(&["--enable-feature=exemplar-storage, created-timestamp-zero-ingestion"]);
        assert!(f.unwrap().ct_zero_ingestion);
        let f = run(&[
            "--enable-feature=created-timestamp-zero-ingestion",
            "--enable-feature=native-histograms",
        ]);
        assert!(f.unwrap().ct_zero_ingestion);
    }
}
