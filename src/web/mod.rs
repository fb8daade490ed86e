//! What stands between a client and the routers: `--web.config.file` (TLS with rustls, basic
//! authentication, response headers; see [`WebConfig`]), `--web.read-timeout` and
//! `--web.max-connections`. Both listeners (main and `--push.listen-address`) are served by
//! [`Web::serve`] with the same settings; the connection limit is shared by both.

mod auth;
mod config;
mod serve;
mod tls;

pub use config::{ClientAuth, TlsSettings, TlsVersion, WebConfig, WebConfigError};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The loaded web settings, shared by the listeners.
pub struct Web {
    // Immutable after construction.
    tls: Option<tokio_rustls::TlsAcceptor>,
    guard: Arc<auth::Guard>,
    read_timeout: Option<Duration>,
    /// One permit per open connection, across listeners; None = unlimited.
    connections: Option<Arc<Semaphore>>,
}

impl Web {
    /// Loads `config_file` (None: plain HTTP, no authentication) and reads the certificate
    /// files it names. `read_timeout` of zero and `max_connections` of 0 mean unlimited.
    pub fn load(
        config_file: Option<&Path>,
        read_timeout: Duration,
        max_connections: usize,
    ) -> Result<Arc<Web>, WebConfigError> {
        let cfg = match config_file {
            Some(p) => WebConfig::load(p)?,
            None => WebConfig::default(),
        };
        let tls = match &cfg.tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(
                tls::server_config(t, cfg.http2).map_err(|e| {
                    WebConfigError(format!(
                        "invalid web config file {}: {e}",
                        config_file.unwrap_or(Path::new("")).display()
                    ))
                })?,
            )),
            None => None,
        };
        if tls.is_some() {
            tracing::info!("TLS is enabled");
        }
        if !cfg.users.is_empty() {
            tracing::info!(users = cfg.users.len(), "basic authentication is enabled");
        }
        Ok(Arc::new(Web {
            tls,
            guard: Arc::new(auth::Guard::new(cfg.users, cfg.headers)),
            read_timeout: Some(read_timeout).filter(|d| !d.is_zero()),
            connections: (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections))),
        }))
    }

    /// Whether listeners speak TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves `router` on `listener` until `shutdown` completes, then lets open connections
    /// finish their requests. The caller bounds the total wait.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        router: axum::Router,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        serve::serve(self, listener, router, shutdown).await
    }
}
