//! One way to turn an [`HttpClientConfig`] into requests, for every outgoing client (scrapes,
//! remote write, remote read, the notifier), as Prometheus's `NewClientFromConfig`:
//! [`builder`] applies redirects, HTTP/2, the proxy and TLS to a `reqwest` client builder
//! (rustls), and [`Auth`] adds the credentials to each request: basic auth, an
//! `Authorization` header, or an OAuth 2.0 token ([`super::oauth2`]). Credential files are read
//! at each request, so rotated secrets are picked up; TLS files are read when the client is
//! built.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::oauth2::TokenSource;
use crate::config::http_client::{HttpClientConfig, ProxyConfig, TlsConfig, TlsVersion};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::Duration;

/// Why a client could not be built or a request not be authorised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A credential or TLS file could not be read.
    #[error("unable to read {what} {path}: {source}")]
    ReadFile {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A TLS option could not be used.
    #[error("{0}")]
    Tls(String),
    /// The proxy options could not be used.
    #[error("invalid proxy configuration: {0}")]
    Proxy(String),
    /// A configured header is not valid HTTP.
    #[error("invalid header {0}")]
    Header(String),
    /// reqwest refused the options.
    #[error("cannot build HTTP client: {0}")]
    Build(String),
    /// The OAuth 2.0 token could not be had.
    #[error("oauth2: {0}")]
    OAuth2(String),
}

/// Installs rustls's ring crypto provider once per process (reqwest is built without one).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another component (e.g. the Kubernetes client) installed one first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client builder with `cfg`'s redirects, HTTP/2, proxy and TLS applied (TLS files are read
/// now). Callers add their timeouts and pool settings.
pub fn builder(cfg: &HttpClientConfig) -> Result<reqwest::ClientBuilder, Error> {
    let mut b = base_builder(&cfg.proxy(), &cfg.tls_config)?.redirect(if cfg.follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    });
    if !cfg.enable_http2 {
        b = b.http1_only();
    }
    Ok(b)
}

/// A client builder with a proxy and TLS (what the OAuth 2.0 token requests use).
pub fn base_builder(proxy: &ProxyConfig, tls: &TlsConfig) -> Result<reqwest::ClientBuilder, Error> {
    install_crypto_provider();
    let b = apply_proxy(reqwest::Client::builder(), proxy)?;
    apply_tls(b, tls)
}

/// A built client and its credentials: what remote write, remote read and the notifier keep.
pub struct HttpClient {
    /// The client (connection pool).
    pub client: reqwest::Client,
    /// The credentials added to each request.
    pub auth: Auth,
}

impl HttpClient {
    /// Builds the client for `cfg`; `timeout` bounds each request (and each token request).
    pub fn new(cfg: &HttpClientConfig, timeout: Option<Duration>) -> Result<Self, Error> {
        let mut b = builder(cfg)?;
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        let client = b.build().map_err(|e| Error::Build(error_chain(&e)))?;
        Ok(Self {
            client,
            auth: Auth::new(cfg, timeout)?,
        })
    }

    /// `POST url` with the credentials added.
    pub async fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, Error> {
        self.auth.apply(self.client.post(url)).await
    }
}

/// Argus's `User-Agent`.
pub const USER_AGENT: &str = concat!("Argus/", env!("CARGO_PKG_VERSION"));

/// Request headers: `fixed` (lower-case names; Argus's `User-Agent` is added), then the
/// configured `extra` ones (a section's `headers:`, whose reserved names validation refused).
pub fn headers(
    fixed: &[(&'static str, &'static str)],
    extra: &std::collections::BTreeMap<String, String>,
) -> Result<HeaderMap, Error> {
    let mut h = HeaderMap::new();
    h.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_static(USER_AGENT),
    );
    for (k, v) in fixed {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    for (k, v) in extra {
        let bad = |e: &dyn std::fmt::Display| Error::Header(format!("{k:?}: {e}"));
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| bad(&e))?;
        let value = HeaderValue::from_str(v).map_err(|e| bad(&e))?;
        h.insert(name, value);
    }
    Ok(h)
}

/// Applies the proxy options: a fixed proxy (with `no_proxy` exceptions and CONNECT headers),
/// the environment's, or none.
fn apply_proxy(
    b: reqwest::ClientBuilder,
    p: &ProxyConfig,
) -> Result<reqwest::ClientBuilder, Error> {
    if p.from_environment {
        // reqwest reads HTTP_PROXY/HTTPS_PROXY/ALL_PROXY/NO_PROXY unless told otherwise.
        return Ok(b);
    }
    let Some(url) = p.url.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(b.no_proxy());
    };
    let mut proxy = reqwest::Proxy::all(url).map_err(|e| Error::Proxy(e.to_string()))?;
    if let Some(np) = &p.no_proxy {
        proxy = proxy.no_proxy(reqwest::NoProxy::from_string(np));
    }
    if !p.connect_header.is_empty() {
        let mut headers = HeaderMap::new();
        for (k, vs) in &p.connect_header {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| Error::Proxy(format!("proxy_connect_header {k:?}: {e}")))?;
            for v in vs {
                let value = HeaderValue::from_str(v.expose())
                    .map_err(|e| Error::Proxy(format!("proxy_connect_header {k:?}: {e}")))?;
                headers.append(name.clone(), value);
            }
        }
        proxy = proxy.headers(headers);
    }
    Ok(b.proxy(proxy))
}

/// The text of an inline PEM option or of its file.
fn pem(
    inline: Option<&str>,
    file: Option<&String>,
    what: &'static str,
) -> Result<Option<Vec<u8>>, Error> {
    if let Some(s) = inline.filter(|s| !s.is_empty()) {
        return Ok(Some(s.as_bytes().to_vec()));
    }
    match file.filter(|f| !f.is_empty()) {
        Some(f) => std::fs::read(f)
            .map(Some)
            .map_err(|source| Error::ReadFile {
                what,
                path: f.clone(),
                source,
            }),
        None => Ok(None),
    }
}

fn tls_version(v: TlsVersion) -> Result<reqwest::tls::Version, Error> {
    match v {
        TlsVersion::Tls12 => Ok(reqwest::tls::Version::TLS_1_2),
        TlsVersion::Tls13 => Ok(reqwest::tls::Version::TLS_1_3),
        other => Err(Error::Tls(format!(
            "TLS version {} is not supported (only TLS12 and TLS13)",
            other.as_str()
        ))),
    }
}

/// Applies `tls_config` (CA, client certificate, verification, versions) to a client builder.
pub fn apply_tls(
    mut b: reqwest::ClientBuilder,
    tls: &TlsConfig,
) -> Result<reqwest::ClientBuilder, Error> {
    if tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    if let Some(ca) = pem(tls.ca.as_deref(), tls.ca_file.as_ref(), "CA cert file")? {
        let certs = reqwest::Certificate::from_pem_bundle(&ca)
            .map_err(|e| Error::Tls(format!("unable to use specified CA cert: {e}")))?;
        b = b.tls_certs_only(certs);
    }
    let cert = pem(
        tls.cert.as_deref(),
        tls.cert_file.as_ref(),
        "client cert file",
    )?;
    let key = pem(
        tls.key.as_ref().map(|k| k.expose()),
        tls.key_file.as_ref(),
        "client key file",
    )?;
    if let (Some(mut pem), Some(key)) = (cert, key) {
        pem.push(b'\n');
        pem.extend(key);
        let id = reqwest::Identity::from_pem(&pem)
            .map_err(|e| Error::Tls(format!("unable to use specified client cert & key: {e}")))?;
        b = b.identity(id);
    }
    if let Some(v) = tls.min_version {
        b = b.tls_version_min(tls_version(v)?);
    }
    if let Some(v) = tls.max_version {
        b = b.tls_version_max(tls_version(v)?);
    }
    Ok(b)
}

/// A secret given inline or as a file read at each use.
#[derive(Clone)]
pub enum SecretSource {
    /// The value.
    Inline(String),
    /// A file holding the value.
    File(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str(crate::config::secret::SECRET_TEXT),
            Self::File(p) => write!(f, "File({p:?})"),
        }
    }
}

impl SecretSource {
    /// The inline value when non-empty, else the file when set.
    pub fn new(inline: Option<&str>, file: Option<&String>) -> Option<Self> {
        match (
            inline.filter(|s| !s.is_empty()),
            file.filter(|f| !f.is_empty()),
        ) {
            (Some(s), _) => Some(Self::Inline(s.to_string())),
            (None, Some(f)) => Some(Self::File(f.clone())),
            (None, None) => None,
        }
    }

    /// The value (a file's content with surrounding white space trimmed, as Prometheus).
    pub fn read(&self, what: &'static str) -> Result<String, Error> {
        match self {
            Self::Inline(s) => Ok(s.clone()),
            Self::File(f) => std::fs::read_to_string(f)
                .map(|s| s.trim().to_string())
                .map_err(|source| Error::ReadFile {
                    what,
                    path: f.clone(),
                    source,
                }),
        }
    }
}

/// How each request authenticates (at most one of the options is set; validated).
#[derive(Clone, Debug)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: Basic …`.
    Basic {
        /// User name.
        user: Option<SecretSource>,
        /// Password.
        pass: Option<SecretSource>,
    },
    /// `Authorization: <scheme> <credentials>` (`authorization`, `bearer_token*`).
    Header {
        /// Scheme (`Bearer`).
        scheme: String,
        /// Credentials.
        cred: Option<SecretSource>,
    },
    /// A token from the OAuth 2.0 client-credentials grant.
    OAuth2(Arc<TokenSource>),
}

impl Auth {
    /// The credentials of `cfg`; `timeout` bounds each OAuth 2.0 token request.
    pub fn new(cfg: &HttpClientConfig, timeout: Option<Duration>) -> Result<Self, Error> {
        if let Some(ba) = &cfg.basic_auth {
            return Ok(Auth::Basic {
                user: SecretSource::new(Some(&ba.username), ba.username_file.as_ref()),
                pass: SecretSource::new(
                    ba.password.as_ref().map(|s| s.expose()),
                    ba.password_file.as_ref(),
                ),
            });
        }
        if let Some(a) = &cfg.authorization {
            return Ok(Auth::Header {
                scheme: a.scheme().to_string(),
                cred: SecretSource::new(
                    a.credentials.as_ref().map(|s| s.expose()),
                    a.credentials_file.as_ref(),
                ),
            });
        }
        if let Some(o) = &cfg.oauth2 {
            return Ok(Auth::OAuth2(Arc::new(TokenSource::new(o, timeout)?)));
        }
        match SecretSource::new(
            cfg.bearer_token.as_ref().map(|s| s.expose()),
            cfg.bearer_token_file.as_ref(),
        ) {
            Some(cred) => Ok(Auth::Header {
                scheme: "Bearer".into(),
                cred: Some(cred),
            }),
            None => Ok(Auth::None),
        }
    }

    /// Adds the credentials to `req`, reading credential files now (they may rotate) and
    /// fetching an OAuth 2.0 token when the cached one is missing or about to expire.
    pub async fn apply(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, Error> {
        Ok(match self {
            Auth::None => req,
            Auth::Basic { user, pass } => {
                let u = match user {
                    Some(u) => u.read("basic auth username file")?,
                    None => String::new(),
                };
                let p = pass
                    .as_ref()
                    .map(|p| p.read("basic auth password file"))
                    .transpose()?;
                req.basic_auth(u, p)
            }
            Auth::Header { scheme, cred } => {
                let c = match cred {
                    Some(c) => c.read("authorization credentials file")?,
                    None => String::new(),
                };
                req.header(AUTHORIZATION, format!("{scheme} {c}"))
            }
            Auth::OAuth2(src) => req.header(AUTHORIZATION, src.header().await?),
        })
    }
}

/// An answer's `Content-Type` (empty when absent or not text).
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// `e: cause: cause…`, the way Go wraps errors.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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
