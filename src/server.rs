//! Wiring and shutdown order.
//!
//! Startup: flags → config → open the TSDB → engine, metrics, API state → scrape manager →
//! listener. Shutdown (SIGTERM, SIGINT or `/-/quit`): stop accepting and finish in-flight
//! requests (remote-write commits included) → stop scraping → `Db::close` (flushes the WAL).
//! Reload (SIGHUP or `/-/reload`): one at a time; an invalid config keeps the old one.
//!
//! Integration points for the lead: [`build_router`] is the one place routers are combined;
//! [`run`] builds the parts (Db, engine, scrape manager, push service, federation) in order.

use crate::api::{self, AppState, ReloadRequest, SharedState};
use crate::config::{Config, ConfigState, default_config_yaml};
use crate::flags::Flags;
use crate::ingest::metadata::MetadataStore;
use crate::ingest::metrics::RemoteWriteMetrics;
use crate::metrics::{HttpMetrics, ProcessMetrics, QueryMetrics, Registry, TsdbCollector};
use crate::notifier::{Notifier, NotifierMetrics};
use crate::push::{PushOptions, PushService};
use crate::rules::manager::{Backends, ManagerOptions, RuleManager, RuleMetrics};
use crate::scrape::ScrapeManager;
use argus_query::{Engine, EngineOptions};
use argus_storage::{Appendable, Db, Labels, Options, Queryable};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Notify, mpsc, watch};

/// How long shutdown waits for in-flight requests before closing the database anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Combines the routers: the API's own endpoints, the scrape manager's (targets and metadata;
/// placeholders while `scrape` is None), then push and federation routers (`extra`), and the
/// shared layers (request metrics, gzip, 404).
pub fn build_router(state: SharedState, scrape: Option<Router>, extra: Vec<Router>) -> Router {
    let mut router = api::router(state.clone());
    router = router.merge(match scrape {
        Some(r) => r,
        None => api::scrape_placeholder_router(state.clone()),
    });
    for r in extra {
        router = router.merge(r);
    }
    // The web UI, then everything under the route prefix (`--web.route-prefix`).
    let prefix = api::ui::route_prefix_from_flags(&state.flags);
    router = router.merge(api::ui::router(&prefix));
    if state.agent {
        router = router
            .merge(api::agent::router())
            .layer(axum::middleware::from_fn(api::agent::guard));
    }
    if !prefix.is_empty() {
        let (to_prefix, to_query) = (format!("{prefix}/"), format!("{prefix}/query"));
        router = Router::new()
            .nest(&prefix, router)
            .route(
                "/",
                axum::routing::get(move || async move { api::ui::found(&to_prefix) }),
            )
            .route(
                &format!("{prefix}/"),
                axum::routing::get(move || async move { api::ui::found(&to_query) }),
            );
    }
    api::finish(router, state)
}

/// The address Argus's own scrape job targets: the listener, with a wildcard host as localhost.
fn self_target(listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        format!("localhost:{}", listen.port())
    } else {
        listen.to_string()
    }
}

/// Loads the configured file, or the embedded default config.
fn load_config(flags: &Flags, listen: SocketAddr) -> Result<Config, String> {
    let cfg = match &flags.config_file {
        Some(path) => Config::load(path).map_err(|e| e.to_string()),
        None => {
            Config::parse(&default_config_yaml(&self_target(listen))).map_err(|e| e.to_string())
        }
    }?;
    if flags.agent.is_some() {
        crate::agent::check_config(&cfg)?;
    }
    Ok(cfg)
}

fn db_options(flags: &Flags, cfg: &Config) -> Options {
    if let Some(agent) = &flags.agent {
        return agent.db_options(flags.remote_max_backlog);
    }
    let ooo = flags
        .out_of_order_window
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .or_else(|| cfg.out_of_order_window_ms())
        .unwrap_or(0);
    Options {
        retention_ms: flags.retention_ms(),
        retention_bytes: flags.retention_bytes,
        out_of_order_window_ms: ooo,
        wal_max_backlog_bytes: flags.remote_max_backlog,
        block_range_ms: i64::try_from(flags.min_block_duration.as_millis()).unwrap_or(i64::MAX),
        head_snapshot_interval_ms: flags
            .head_snapshot_interval
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        head_snapshot_wal_bytes: flags.head_snapshot_wal_bytes,
        ..Options::default()
    }
}

fn retention_text(flags: &Flags) -> String {
    let time = flags.retention_ms().map(|ms| {
        crate::config::PromDuration(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
            .to_string()
    });
    match (time, flags.retention_bytes) {
        (Some(t), Some(b)) => format!("{t} or {b}B"),
        (Some(t), None) => t,
        (None, Some(b)) => format!("{b}B"),
        (None, None) => "forever".into(),
    }
}

/// Why the server could not start or stop cleanly. `Display` is the outermost message; the
/// cause is the error's `source()` (`main` prints the whole chain and maps
/// [`ServerError::is_usage`] to exit status 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// `--web.config.file` is invalid.
    #[error(transparent)]
    WebConfig(#[from] crate::web::WebConfigError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address (and the flag when it is not the main one).
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is invalid or unreadable.
    #[error("{0}")]
    Config(String),
    /// Rule files could not be loaded.
    #[error(transparent)]
    RuleFiles(#[from] RuleFilesError),
    /// A section the components apply is invalid.
    #[error("invalid {section} configuration: {msg}")]
    Section {
        /// `remote_write`, `alerting` or `scrape`.
        section: &'static str,
        /// What was wrong.
        msg: String,
    },
    /// The TSDB could not be opened.
    #[error("cannot open TSDB in {}", dir.display())]
    OpenTsdb {
        /// `--storage.tsdb.path`.
        dir: std::path::PathBuf,
        /// The cause.
        #[source]
        source: argus_storage::Error,
    },
    /// The push store could not be opened.
    #[error("cannot open the push store in {}", dir.display())]
    PushStore {
        /// Its directory.
        dir: std::path::PathBuf,
        /// The cause.
        #[source]
        source: crate::push::PushError,
    },
    /// A server task panicked or was cancelled.
    #[error("{0} task failed")]
    Task(&'static str, #[source] tokio::task::JoinError),
    /// The HTTP server failed.
    #[error("HTTP server failed")]
    Http(#[source] std::io::Error),
    /// The TSDB did not close cleanly.
    #[error("cannot close TSDB")]
    CloseTsdb(#[source] argus_storage::Error),
}

impl ServerError {
    /// A usage error (an invalid `--config.file`, `--web.config.file` or rule files): exit
    /// status 2, as Prometheus.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ServerError::Config(_) | ServerError::WebConfig(_) | ServerError::RuleFiles(_)
        )
    }
}

/// Rule files could not be loaded at startup; `main` exits with status 2 (as Prometheus does).
#[derive(Debug, thiserror::Error)]
#[error("Error loading rule file patterns from config (--config.file={config:?}): {errors}")]
pub struct RuleFilesError {
    /// The config file.
    pub config: String,
    /// Every error, one per line.
    pub errors: String,
}

/// Parses every rule file the config's `rule_files` globs match (relative to the config file's
/// directory); all errors, one per line, on failure.
fn load_rules(flags: &Flags, cfg: &Config) -> Result<Vec<crate::rules::GroupSpec>, String> {
    let base = flags
        .config_file
        .as_deref()
        .and_then(|p| p.parent())
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let opts = crate::rules::LoadOptions {
        legacy_names: cfg.global.metric_name_validation_scheme.as_deref() == Some("legacy"),
        ..crate::rules::LoadOptions::default()
    };
    crate::rules::load_groups(&cfg.rule_files, &base, &opts).map_err(|errs| {
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// The hostname for the default external URL.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `--web.external-url` without a trailing `/`, else `http://<hostname>:<port>` (Prometheus).
fn external_url(flags: &Flags, listen: SocketAddr) -> String {
    match &flags.external_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{}:{}", hostname(), listen.port()),
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The rule manager's options from the flags and the current config.
fn rule_options(flags: &Flags, cfg: &Config, listen: SocketAddr) -> ManagerOptions {
    ManagerOptions {
        default_interval_ms: cfg.global.evaluation_interval.as_millis(),
        default_query_offset_ms: cfg
            .global
            .rule_query_offset
            .map(|d| d.as_millis())
            .unwrap_or(0),
        external_labels: cfg.global.external_labels.clone(),
        external_url: external_url(flags, listen),
        resend_delay_ms: ms(flags.resend_delay),
        outage_tolerance_ms: ms(flags.for_outage_tolerance),
        grace_period_ms: ms(flags.for_grace_period),
    }
}

async fn shutdown_signal(quit: Arc<Notify>) {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
                _ = int.recv() => tracing::info!("received SIGINT, shutting down"),
                _ = quit.notified() => tracing::info!("/-/quit requested, shutting down"),
            }
        }
        _ => {
            tracing::warn!("cannot install signal handlers; only /-/quit stops the server");
            quit.notified().await;
        }
    }
}

/// What a reload reconfigures (scrape, rules, notifier, remote write: applied in that order).
struct Reloadable {
    config: Arc<ConfigState>,
    scrape: Arc<ScrapeManager>,
    notifier: Arc<Notifier>,
    rules: Arc<RuleManager>,
    remote: Arc<crate::remote::RemoteWrite>,
}

/// Serialises reloads from `/-/reload` and SIGHUP.
async fn reload_loop(
    flags: Arc<Flags>,
    listen: SocketAddr,
    parts: Reloadable,
    mut rx: mpsc::Receiver<ReloadRequest>,
) {
    let Reloadable {
        config,
        scrape,
        notifier,
        rules,
        remote,
    } = parts;
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).ok();
    loop {
        let reply = tokio::select! {
            req = rx.recv() => match req {
                Some(tx) => Some(tx),
                None => return,
            },
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => None } } => None,
        };
        let f = flags.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let cfg = load_config(&f, listen)?;
            match load_rules(&f, &cfg) {
                Ok(specs) => Ok((cfg, specs)),
                Err(e) => {
                    tracing::error!(error = %e, "error loading rules, previous rule set restored");
                    Err(format!("error loading rules: {e}"))
                }
            }
        })
        .await
        .unwrap_or_else(|e| Err(format!("reload task failed: {e}")));
        // The scrape manager changes nothing when it refuses the config, so a failure at either
        // step leaves the old config in force everywhere.
        let loaded = match loaded {
            Ok((cfg, specs)) => match scrape.apply_config(&cfg).await {
                Ok(()) => {
                    rules.apply(specs, rule_options(&flags, &cfg, listen)).await;
                    Ok(cfg)
                }
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        };
        // The config was validated when loaded; here only an unusable TLS file can fail.
        let loaded = loaded.and_then(|cfg| {
            notifier
                .apply_config(&cfg)
                .map(|()| cfg)
                .map_err(|e| e.to_string())
        });
        let loaded = match loaded {
            Ok(cfg) => remote.apply_config(&cfg).await.map(|()| cfg),
            Err(e) => Err(e),
        };
        let outcome = match loaded {
            Ok(cfg) => {
                for s in cfg.ignored_sections() {
                    tracing::warn!(
                        section = s,
                        "config section accepted but has no effect in Argus"
                    );
                }
                config.set(cfg, crate::util::time::now_ms());
                tracing::info!("configuration reloaded");
                Ok(())
            }
            Err(e) => {
                config.mark_failed();
                tracing::error!(error = %e, "configuration reload failed; keeping the old config");
                Err(e)
            }
        };
        if let Some(tx) = reply {
            let _ = tx.send(outcome);
        }
    }
}

/// Runs the server until a shutdown signal; returns after the database is closed.
pub async fn run(flags: Flags) -> Result<(), ServerError> {
    let start_time = SystemTime::now();
    let flags = Arc::new(flags);
    let web = crate::web::Web::load(
        flags.web_config_file.as_deref(),
        flags.read_timeout,
        flags.max_connections,
    )?;
    let listener = tokio::net::TcpListener::bind(flags.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: flags.listen.to_string(),
            source,
        })?;
    let listen = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: flags.listen.to_string(),
            source,
        })?;

    let cfg = load_config(&flags, listen).map_err(ServerError::Config)?;
    for s in cfg.ignored_sections() {
        tracing::warn!(
            section = s,
            "config section accepted but has no effect in Argus"
        );
    }

    let rule_specs = load_rules(&flags, &cfg).map_err(|errors| {
        let e = RuleFilesError {
            config: flags
                .config_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            errors,
        };
        tracing::error!("{e}");
        e
    })?;

    let opts = db_options(&flags, &cfg);
    let dir = flags.data_dir.clone();
    tracing::info!(path = %dir.display(), "opening TSDB");
    let db = tokio::task::spawn_blocking(move || Db::open(&dir, opts))
        .await
        .map_err(|e| ServerError::Task("TSDB open", e))?
        .map_err(|source| ServerError::OpenTsdb {
            dir: flags.data_dir.clone(),
            source,
        })?;

    let agent_truncation = flags
        .agent
        .as_ref()
        .map(|a| crate::agent::spawn_truncation(db.clone(), a));

    let engine_opts = EngineOptions {
        lookback_delta_ms: i64::try_from(flags.lookback_delta.as_millis()).unwrap_or(i64::MAX),
        timeout: flags.query_timeout,
        max_samples: flags.max_samples,
    };
    let registry = Arc::new(Registry::new());
    let http_metrics = Arc::new(HttpMetrics::default());
    let query_metrics = Arc::new(QueryMetrics::default());
    let rw_metrics = Arc::new(RemoteWriteMetrics::default());
    registry.register(Arc::new(ProcessMetrics::new(start_time)));
    registry.register(http_metrics.clone());
    registry.register(query_metrics.clone());
    registry.register(rw_metrics.clone());
    let notifier_metrics = Arc::new(NotifierMetrics::new(flags.notifier.queue_capacity));
    registry.register(notifier_metrics.clone());
    let remote = crate::remote::RemoteWrite::new(db.clone(), &flags.data_dir);
    registry.register(remote.clone());
    remote
        .apply_config(&cfg)
        .await
        .map_err(|e| ServerError::Section {
            section: "remote_write",
            msg: e.to_string(),
        })?;
    let db_for_metrics = db.clone();
    registry.register(Arc::new(TsdbCollector::new(Box::new(move || {
        db_for_metrics.metrics()
    }))));

    // Notifier: delivers the alerts of rule evaluation to the configured Alertmanagers.
    let notifier = Notifier::new(flags.notifier, notifier_metrics);
    notifier
        .apply_config(&cfg)
        .map_err(|e| ServerError::Section {
            section: "alerting",
            msg: e.to_string(),
        })?;

    // Rule manager: evaluates against the Db with its own engine; groups start at their first
    // slot after now.
    let rule_metrics = Arc::new(RuleMetrics::default());
    registry.register(rule_metrics.clone());
    let rules = Arc::new(RuleManager::new(
        Backends {
            engine: Arc::new(Engine::new(engine_opts.clone())),
            queryable: Arc::new(db.clone()),
            appendable: Arc::new(db.clone()),
            sender: notifier.clone(),
        },
        rule_options(&flags, &cfg, listen),
        rule_metrics,
    ));
    rules
        .apply(rule_specs, rule_options(&flags, &cfg, listen))
        .await;

    let config = Arc::new(ConfigState::new(cfg, crate::util::time::now_ms()));
    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let quit = Arc::new(Notify::new());
    let head_of = db.clone();
    let fanout = crate::remote::read_client::Fanout::new(
        db.clone(),
        config.clone(),
        tokio::runtime::Handle::current(),
        Box::new(move || head_of.start_time()),
    );
    let state: SharedState = Arc::new(AppState {
        db: Arc::new(fanout),
        engine: Arc::new(Engine::new(engine_opts.clone())),
        engine_opts,
        config: config.clone(),
        admin_enabled: flags.enable_admin_api,
        lifecycle_enabled: flags.enable_lifecycle,
        flags: flags.all.clone(),
        data_dir: flags.data_dir.clone(),
        retention_text: retention_text(&flags),
        start_time,
        registry: registry.clone(),
        http_metrics,
        query_metrics,
        rw_metrics,
        metadata: Arc::new(MetadataStore::new()),
        reload_tx,
        quit: quit.clone(),
        remote_write_limits: flags.remote_write_limits,
        rw_cache: Arc::new(crate::ingest::series_cache::SeriesCache::new(
            flags.remote_write_limits,
        )),
        notifier: Some(notifier.clone()),
        rules: Some(rules.clone()),
        remote_write_enabled: flags.enable_remote_write_receiver,
        otlp_enabled: flags.enable_otlp_receiver,
        ct_zero_ingestion: flags.ct_zero_ingestion,
        query_slots: Arc::new(tokio::sync::Semaphore::new(flags.max_concurrency)),
        remote_read: Arc::new(api::read::ReadGate::new(flags.remote_read)),
        agent: flags.agent.is_some(),
    });

    // Scrape manager: appends to the Db; its router serves targets and metadata.
    let appendable: Arc<dyn Appendable> = Arc::new(db.clone());
    let scrape = ScrapeManager::new(appendable.clone());
    scrape.set_ct_zero_ingestion(flags.ct_zero_ingestion);
    registry.register(scrape.metrics());
    // Remote write sends the scraped and remote-written metadata (`metadata_config`).
    remote.set_metadata_source(crate::remote::metadata::from_scrape(
        scrape.clone(),
        state.metadata.clone(),
    ));
    scrape
        .apply_config(&config.get())
        .await
        .map_err(|e| ServerError::Section {
            section: "scrape",
            msg: e.to_string(),
        })?;

    // Push service (Pushgateway API) on the main port, and on `--push.listen-address` if set.
    let push_opts = PushOptions {
        group_ttl: flags.push_group_ttl,
        interval: config.get().global.scrape_interval.0,
        enable_admin: flags.enable_admin_api,
        ..PushOptions::default()
    };
    let push_dir = flags.data_dir.join("push");
    let push = PushService::open(&push_dir, push_opts, appendable).map_err(|source| {
        ServerError::PushStore {
            dir: push_dir.clone(),
            source,
        }
    })?;
    let (push_stop_tx, push_stop_rx) = watch::channel(false);
    let push_task = tokio::spawn(push.clone().run(push_stop_rx));

    // Federation: external labels are read at startup (a reload does not change them).
    let queryable: Arc<dyn Queryable> = Arc::new(db.clone());
    let external = Labels::from_pairs(
        &config
            .get()
            .global
            .external_labels
            .iter()
            .collect::<Vec<_>>(),
    );
    let federate = crate::api::federate::router_with_limits(
        queryable,
        external,
        state.engine_opts.lookback_delta_ms,
        crate::api::federate::Limits {
            timeout: flags.query_timeout,
            max_samples: flags.max_samples,
        },
    );

    let received_metadata = state.metadata.clone();
    let app = build_router(
        state,
        Some(api::targets::router_with_received(
            &scrape,
            received_metadata,
        )),
        vec![
            api::push::router(&push),
            federate,
            api::remote_status::router(remote.clone()),
        ],
    );
    tokio::spawn(reload_loop(
        flags.clone(),
        listen,
        Reloadable {
            config,
            scrape: scrape.clone(),
            notifier: notifier.clone(),
            rules: rules.clone(),
            remote: remote.clone(),
        },
        reload_rx,
    ));

    let drain = Arc::new(Notify::new());
    let mut push_server = None;
    if let Some(addr) = flags.push_listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Listen {
                addr: format!("{addr} (--push.listen-address)"),
                source,
            })?;
        tracing::info!(address = %addr, "push listener ready");
        let drain = drain.clone();
        let serve = web
            .clone()
            .serve(l, api::push::standalone_router(&push), async move {
                drain.notified().await
            });
        push_server = Some(tokio::spawn(serve));
    }

    tracing::info!(address = %listen, "Server is ready to receive web requests.");
    let started_drain = drain.clone();
    let serve = web.clone().serve(listener, app, async move {
        shutdown_signal(quit).await;
        started_drain.notify_waiters();
    });
    let mut serve = tokio::spawn(serve);
    let drained = drain.clone();
    tokio::select! {
        r = &mut serve => { r.map_err(|e| ServerError::Task("HTTP server", e))?.map_err(ServerError::Http)?; }
        _ = drained.notified() => {
            match tokio::time::timeout(DRAIN_TIMEOUT, &mut serve).await {
                Ok(r) => { r.map_err(|e| ServerError::Task("HTTP server", e))?.map_err(ServerError::Http)?; }
                Err(_) => tracing::warn!("in-flight requests did not finish in {DRAIN_TIMEOUT:?}"),
            }
        }
    }
    if let Some(p) = push_server {
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, p).await;
    }

    tracing::info!("stopping scrapes, rule evaluation and the push pool");
    scrape.stop().await;
    rules.stop().await;
    let _ = push_stop_tx.send(true);
    let _ = push_task.await;
    tracing::info!("stopping the notifier");
    notifier.stop().await;
    tracing::info!("stopping remote-write queues");
    remote.stop().await;

    if let Some(t) = agent_truncation {
        t.abort();
    }
    tracing::info!("closing TSDB");
    tokio::task::spawn_blocking(move || db.close())
        .await
        .map_err(|e| ServerError::Task("TSDB close", e))?
        .map_err(ServerError::CloseTsdb)?;
    tracing::info!("shutdown complete");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_target_and_retention_text() {
        assert_eq!(
            self_target("0.0.0.0:9090".parse().unwrap()),
            "localhost:9090"
        );
        assert_eq!(
            self_target("127.0.0.1:1234".parse().unwrap()),
            "127.0.0.1:1234"
        );
        let f = match crate::flags::parse(["--storage.tsdb.retention.size=1GB".to_string()]) {
            Ok(crate::flags::Command::Run(f)) => f,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(retention_text(&f), "1073741824B");
        let f = match crate::flags::parse(Vec::<String>::new()) {
            Ok(crate::flags::Command::Run(f)) => f,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(retention_text(&f), "2w1d");
    }
}
