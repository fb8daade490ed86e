//! HTTP fetching of one target: `Accept` negotiation, gzip, auth, TLS, timeout, body limit.

use super::Error;
use super::expfmt::Format;
use super::target::Target;
use crate::config::scrape::{Authorization, BasicAuth, ScrapeConfig, TlsConfig};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use std::time::Duration;

/// Hard cap on a body when `body_size_limit` is 0, so a target can never exhaust memory.
pub const MAX_BODY_BYTES: u64 = 512 << 20;

/// Installs rustls's ring crypto provider once per process (reqwest is built without one).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another component (e.g. the Kubernetes client) installed one first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// How a request authenticates: shared by scrapes and the notifier (an HTTP client config's
/// `basic_auth`, `authorization` or deprecated `bearer_token*`).
#[derive(Clone, Debug)]
pub(crate) enum Auth {
    None,
    Basic {
        user: String,
        pass: Option<String>,
        pass_file: Option<String>,
    },
    Header {
        kind: String,
        cred: Option<String>,
        cred_file: Option<String>,
    },
}

/// The HTTP side of one scrape loop.
#[derive(Debug)]
pub struct TargetClient {
    client: reqwest::Client,
    url: String,
    accept: String,
    timeout: Duration,
    body_limit: u64,
    fallback: Option<Format>,
    compression: bool,
    auth: Auth,
}

fn tls_err(url: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Http {
        url: url.to_string(),
        msg: format!("{what}: {e}"),
    }
}

impl TargetClient {
    /// A client for `target` under `cfg`. Reads TLS files now; auth files at each scrape.
    pub async fn new(cfg: &ScrapeConfig, target: &Target) -> Result<Self, Error> {
        install_crypto_provider();
        let mut url = target.url.clone();
        let mut b = reqwest::Client::builder()
            .redirect(if cfg.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .pool_max_idle_per_host(1)
            .no_proxy();
        b = apply_tls(b, &cfg.tls_config, &target.url)?;
        if let Some(sn) = cfg.tls_config.server_name.as_deref() {
            // Verify and send SNI for `server_name` while connecting to the target's address:
            // resolve the name to the address and put it in the URL.
            let addr = target.labels.get("__address__").unwrap_or("");
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(addr)
                .await
                .map_err(|e| tls_err(&target.url, "cannot resolve target address", e))?
                .collect();
            b = b.resolve_to_addrs(sn, &addrs);
            let port = addrs.first().map(|a| a.port()).unwrap_or(443);
            url = url.replacen(addr, &format!("{sn}:{port}"), 1);
        }
        let client = b
            .build()
            .map_err(|e| tls_err(&target.url, "cannot build HTTP client", e))?;
        let auth = Auth::from_config(
            cfg.basic_auth.as_ref(),
            cfg.authorization.as_ref(),
            cfg.bearer_token.as_ref(),
            cfg.bearer_token_file.as_ref(),
        );
        let fallback = cfg.fallback_scrape_protocol.as_deref().map(|p| {
            if p.starts_with("OpenMetrics") {
                Format::OpenMetrics
            } else if p == "PrometheusProto" {
                Format::Protobuf
            } else {
                Format::Text
            }
        });
        Ok(Self {
            client,
            url,
            accept: cfg.accept_header(),
            timeout: target.timeout,
            body_limit: if cfg.body_size_limit.0 == 0 {
                MAX_BODY_BYTES
            } else {
                cfg.body_size_limit.0
            },
            fallback,
            compression: cfg.enable_compression,
            auth,
        })
    }

    /// Fetches the body into `buf` (cleared first; decompressed) and returns its format.
    pub async fn fetch(&self, buf: &mut Vec<u8>) -> Result<Format, Error> {
        match tokio::time::timeout(self.timeout, self.fetch_inner(buf)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Http {
                url: self.url.clone(),
                msg: "context deadline exceeded".into(),
            }),
        }
    }

    async fn fetch_inner(&self, buf: &mut Vec<u8>) -> Result<Format, Error> {
        let http_err = |e: reqwest::Error| Error::Http {
            url: self.url.clone(),
            msg: error_chain(&e),
        };
        let mut req = self
            .client
            .get(&self.url)
            .header(ACCEPT, &self.accept)
            .header(USER_AGENT, concat!("Argus/", env!("CARGO_PKG_VERSION")))
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", self.timeout.as_secs_f64()),
            );
        if !self.compression {
            req = req.header(ACCEPT_ENCODING, "identity");
        }
        req = self.auth.apply(req, &self.url)?;
        let mut resp = req.send().await.map_err(http_err)?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(Error::Status(format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )));
        }
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        buf.clear();
        while let Some(chunk) = resp.chunk().await.map_err(http_err)? {
            if (buf.len() + chunk.len()) as u64 > self.body_limit {
                return Err(Error::BodySizeLimit);
            }
            buf.extend_from_slice(&chunk);
        }
        match Format::from_content_type(&ct).or(self.fallback) {
            Some(f) => Ok(f),
            None if buf.is_empty() => Ok(Format::Text),
            None => Err(Error::ContentType(ct)),
        }
    }
}

impl Auth {
    /// The auth of an HTTP client config; at most one of the options is set (validated).
    pub(crate) fn from_config(
        basic: Option<&BasicAuth>,
        authorization: Option<&Authorization>,
        bearer_token: Option<&crate::config::Secret>,
        bearer_token_file: Option<&String>,
    ) -> Self {
        if let Some(ba) = basic {
            Auth::Basic {
                user: ba.username.clone(),
                pass: ba.password.as_ref().map(|s| s.expose().to_string()),
                pass_file: ba.password_file.clone(),
            }
        } else if let Some(a) = authorization {
            Auth::Header {
                kind: a.kind.clone().unwrap_or_else(|| "Bearer".into()),
                cred: a.credentials.as_ref().map(|s| s.expose().to_string()),
                cred_file: a.credentials_file.clone(),
            }
        } else if bearer_token.is_some() || bearer_token_file.is_some() {
            Auth::Header {
                kind: "Bearer".into(),
                cred: bearer_token.map(|s| s.expose().to_string()),
                cred_file: bearer_token_file.cloned(),
            }
        } else {
            Auth::None
        }
    }

    /// Adds the credentials to `req`, reading credential files now (they may rotate).
    pub(crate) fn apply(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, Error> {
        Ok(match self {
            Auth::None => req,
            Auth::Basic {
                user,
                pass,
                pass_file,
            } => {
                let p = match pass_file {
                    Some(f) => Some(read_secret(f, url)?),
                    None => pass.clone(),
                };
                req.basic_auth(user, p)
            }
            Auth::Header {
                kind,
                cred,
                cred_file,
            } => {
                let c = match cred_file {
                    Some(f) => read_secret(f, url)?,
                    None => cred.clone().unwrap_or_default(),
                };
                req.header(AUTHORIZATION, format!("{kind} {c}"))
            }
        })
    }
}

fn read_secret(path: &str, url: &str) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::Http {
            url: url.to_string(),
            msg: format!("cannot read {path}: {e}"),
        })
}

/// Applies `tls_config` (CA, client certificate, verification) to a client builder.
pub(crate) fn apply_tls(
    mut b: reqwest::ClientBuilder,
    tls: &TlsConfig,
    url: &str,
) -> Result<reqwest::ClientBuilder, Error> {
    if tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    if let Some(ca) = &tls.ca_file {
        let pem = std::fs::read(ca).map_err(|e| tls_err(url, &format!("cannot read {ca}"), e))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| tls_err(url, &format!("cannot parse {ca}"), e))?;
        b = b.tls_certs_only(certs);
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let mut pem =
            std::fs::read(cert).map_err(|e| tls_err(url, &format!("cannot read {cert}"), e))?;
        pem.push(b'\n');
        pem.extend(std::fs::read(key).map_err(|e| tls_err(url, &format!("cannot read {key}"), e))?);
        let id = reqwest::Identity::from_pem(&pem)
            .map_err(|e| tls_err(url, "cannot load client certificate", e))?;
        b = b.identity(id);
    }
    Ok(b)
}

/// `e: cause: cause…`, the way Go wraps errors.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    s
}
