//! HTTP fetching of one target: `Accept` negotiation, gzip, auth, TLS, timeout, body limit.
//!
//! A gzip body is kept compressed from its fetch until its loop holds a commit slot
//! ([`Fetched::into_body`] decompresses it then, into a pooled buffer): loops waiting for a slot
//! hold ~6× fewer bytes (400 targets' waiting node-exporter bodies held 50 MiB decompressed at
//! the heaptrack peak, benches/README.md "scraperss"). The HTTP client therefore does not
//! decompress; [`Fetched::into_body`] does, as Prometheus's `readResponse` does: gzip when the
//! response says `Content-Encoding: gzip`, the bytes as they are otherwise.

use super::Error;
use super::buffers::BufferPool;
use super::expfmt::Format;
use super::target::Target;
use crate::config::scrape::ScrapeConfig;
use crate::util::gzip::{GunzipError, gunzip};
use crate::util::http_client::{Auth, builder};
pub(crate) use crate::util::http_client::{error_chain, install_crypto_provider};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, USER_AGENT};
use std::time::Duration;

/// Hard cap on a body when `body_size_limit` is 0, so a target can never exhaust memory.
pub const MAX_BODY_BYTES: u64 = 512 << 20;

/// The HTTP side of one scrape loop.
#[derive(Debug)]
pub struct TargetClient {
    client: reqwest::Client,
    url: String,
    /// `url` parsed once (reqwest would parse the string again at every scrape).
    parsed: Option<reqwest::Url>,
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

/// The HTTP client a scrape pool shares among its targets (one connection pool and one TLS
/// setup, as Prometheus's scrape pool has), unless `server_name` needs one per target.
/// `None` when it cannot be built: each target then builds its own and reports why not.
pub fn pool_client(cfg: &ScrapeConfig) -> Option<reqwest::Client> {
    if cfg.tls_config.server_name.is_some() {
        return None;
    }
    builder(&cfg.http_client())
        .ok()?
        .pool_max_idle_per_host(1)
        // Bodies are decompressed by `Fetched::into_body`, once the loop holds a commit slot.
        .no_gzip()
        .build()
        .ok()
}

impl TargetClient {
    /// A client for `target` under `cfg`, on `shared` (the pool's [`pool_client`]) when given.
    /// Reads TLS files now; auth files at each scrape.
    pub async fn new(
        cfg: &ScrapeConfig,
        target: &Target,
        shared: Option<&reqwest::Client>,
    ) -> Result<Self, Error> {
        let mut url = target.url.clone();
        let client = match shared {
            Some(c) if cfg.tls_config.server_name.is_none() => c.clone(),
            _ => Self::own_client(cfg, target, &mut url).await?,
        };
        let auth = Auth::new(&cfg.http_client(), Some(target.timeout))
            .map_err(|e| tls_err(&target.url, "cannot build HTTP client", e))?;
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
            parsed: reqwest::Url::parse(&url).ok(),
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

    /// A client of the target's own; with `server_name`, verified and sent as SNI while
    /// connecting to the target's address (resolved now, and put in `url`).
    async fn own_client(
        cfg: &ScrapeConfig,
        target: &Target,
        url: &mut String,
    ) -> Result<reqwest::Client, Error> {
        let mut b = builder(&cfg.http_client())
            .map_err(|e| tls_err(&target.url, "cannot build HTTP client", e))?
            .pool_max_idle_per_host(1)
            .no_gzip();
        if let Some(sn) = cfg.tls_config.server_name.as_deref() {
            let addr = target.labels.get("__address__").unwrap_or("");
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(addr)
                .await
                .map_err(|e| tls_err(&target.url, "cannot resolve target address", e))?
                .collect();
            b = b.resolve_to_addrs(sn, &addrs);
            let port = addrs.first().map(|a| a.port()).unwrap_or(443);
            *url = url.replacen(addr, &format!("{sn}:{port}"), 1);
        }
        b.build()
            .map_err(|e| tls_err(&target.url, "cannot build HTTP client", e))
    }

    /// Fetches the body as sent (an identity body into a buffer of `pool`); see
    /// [`Fetched::into_body`].
    pub async fn fetch(&self, pool: &BufferPool) -> Result<Fetched<'_>, Error> {
        match tokio::time::timeout(self.timeout, self.fetch_inner(pool)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Http {
                url: self.url.clone(),
                msg: "context deadline exceeded".into(),
            }),
        }
    }

    async fn fetch_inner(&self, pool: &BufferPool) -> Result<Fetched<'_>, Error> {
        let http_err = |e: reqwest::Error| Error::Http {
            url: self.url.clone(),
            msg: error_chain(&e),
        };
        let req = match &self.parsed {
            Some(u) => self.client.get(u.clone()),
            // Unparsable: reqwest reports why.
            None => self.client.get(&self.url),
        };
        let mut req = req
            .header(ACCEPT, &self.accept)
            .header(USER_AGENT, concat!("Argus/", env!("CARGO_PKG_VERSION")))
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", self.timeout.as_secs_f64()),
            );
        req = req.header(
            ACCEPT_ENCODING,
            if self.compression { "gzip" } else { "identity" },
        );
        req = self.auth.apply(req).await.map_err(|e| Error::Http {
            url: self.url.clone(),
            msg: e.to_string(),
        })?;
        let mut resp = req.send().await.map_err(http_err)?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(Error::Status(format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )));
        }
        let ct = crate::util::http_client::content_type(&resp);
        let gzip = resp
            .headers()
            .get(CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let mut buf = if gzip {
            // Its own buffer of the compressed size, not a pooled one sized for bodies.
            let len = resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(0)
                .min(self.body_limit);
            Vec::with_capacity(usize::try_from(len).unwrap_or(0))
        } else {
            pool.get()
        };
        let mut read = async || {
            // The compressed size is bounded by the limit too: gzip makes no body much longer.
            while let Some(chunk) = resp.chunk().await.map_err(http_err)? {
                if (buf.len() + chunk.len()) as u64 > self.body_limit {
                    return Err(Error::BodySizeLimit);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(())
        };
        if let Err(e) = read().await {
            if !gzip {
                pool.put(buf);
            }
            return Err(e);
        }
        let format = match Format::from_content_type(&ct).or(self.fallback) {
            Some(f) => f,
            None if buf.is_empty() => Format::Text,
            None => {
                if !gzip {
                    pool.put(buf);
                }
                return Err(Error::ContentType(ct));
            }
        };
        Ok(Fetched {
            client: self,
            raw: buf,
            gzip,
            format,
        })
    }
}

/// A fetched body as the target sent it (gzip-compressed or not), and its format.
#[derive(Debug)]
pub struct Fetched<'c> {
    client: &'c TargetClient,
    raw: Vec<u8>,
    gzip: bool,
    format: Format,
}

impl Fetched<'_> {
    /// The body, decompressed into a buffer of `pool` when it was gzip (at most
    /// `body_size_limit` bytes, as Prometheus bounds the uncompressed body), and its format.
    /// The caller gives the buffer back to `pool`.
    pub fn into_body(self, pool: &BufferPool) -> Result<(Vec<u8>, Format), Error> {
        if !self.gzip {
            return Ok((self.raw, self.format));
        }
        let mut out = pool.get();
        match gunzip(&self.raw, self.client.body_limit, &mut out) {
            Ok(()) => Ok((out, self.format)),
            Err(e) => {
                pool.put(out);
                Err(match e {
                    GunzipError::Invalid(e) => Error::Http {
                        url: self.client.url.clone(),
                        msg: format!("cannot decompress gzip body: {e}"),
                    },
                    GunzipError::TooLarge => Error::BodySizeLimit,
                })
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GlobalConfig;
    use crate::scrape::target::{Populated, populate};
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;

    const BODY: &str = "# TYPE up gauge\nup 1\n";

    /// Connections a test server accepted, and how many of them the client closed.
    #[derive(Default)]
    struct Counts {
        accepted: AtomicUsize,
        closed: AtomicUsize,
    }

    /// Answers every request on `s` with `BODY` (keep-alive HTTP/1.1) until the client closes.
    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, counts: &Counts) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = match s.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => n,
                // A TLS client may close without close_notify.
                Err(_) => break,
            };
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                buf.drain(..end + 4);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\n\r\n{BODY}",
                    BODY.len()
                );
                s.write_all(resp.as_bytes()).await.unwrap();
            }
        }
        counts.closed.fetch_add(1, SeqCst);
    }

    /// Serves on a loopback port (through TLS when `tls` is given); returns its address.
    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>, counts: Arc<Counts>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (s, _) = l.accept().await.unwrap();
                counts.accepted.fetch_add(1, SeqCst);
                let (tls, counts) = (tls.clone(), counts.clone());
                tokio::spawn(async move {
                    match tls {
                        // A refused handshake (a client that does not trust the server)
                        // just ends the connection.
                        Some(a) => {
                            if let Ok(s) = a.accept(s).await {
                                answer(s, &counts).await;
                            }
                        }
                        None => answer(s, &counts).await,
                    }
                });
            }
        });
        addr
    }

    /// A CA's PEM and a server configuration with a certificate it signed for 127.0.0.1.
    fn tls_server() -> (String, tokio_rustls::TlsAcceptor) {
        install_crypto_provider();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let cfg = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], key)
            .unwrap();
        (ca.pem(), tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
    }

    /// Scrapes the target at `addr` three times through a pool's clients, each body checked,
    /// letting the runtime settle between scrapes (a finished HTTP/1 connection goes back to
    /// its pool on a spawned task).
    async fn scrape_three_times(cfg: &ScrapeConfig, addr: &str) {
        let target = match populate(
            &BTreeMap::new(),
            &BTreeMap::from([("__address__".to_string(), addr.to_string())]),
            cfg,
            &GlobalConfig::default(),
        ) {
            Ok(Populated::Active(t)) => t,
            other => panic!("expected an active target, got {other:?}"),
        };
        let shared = pool_client(cfg);
        assert!(shared.is_some(), "the pool's client builds");
        let client = TargetClient::new(cfg, &target, shared.as_ref())
            .await
            .unwrap();
        let buffers = BufferPool::default();
        for _ in 0..3 {
            let fetched = client.fetch(&buffers).await.unwrap();
            let (body, format) = fetched.into_body(&buffers).unwrap();
            assert_eq!(String::from_utf8(body).unwrap(), BODY);
            assert!(matches!(format, Format::Text));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A connection kept between scrapes is what a scrape costs in CPU: a connection per scrape
    // (`pool_max_idle_per_host(0)`) cut scrape-bench's peak RSS by 8–14 MiB at 400 targets but
    // cost 7–24 % more CPU per 1M samples, and the target as much again (benches/README.md,
    // "scrape5").
    #[tokio::test]
    async fn plain_http_scrapes_reuse_their_connection() {
        let counts = Arc::new(Counts::default());
        let addr = serve(None, counts.clone()).await;
        let cfg: ScrapeConfig = serde_yaml_ng::from_str("job_name: j\n").unwrap();
        scrape_three_times(&cfg, &addr).await;
        assert_eq!(counts.accepted.load(SeqCst), 1);
        assert_eq!(counts.closed.load(SeqCst), 0);
    }

    #[tokio::test]
    async fn https_scrapes_verify_the_server_and_reuse_their_connection() {
        let (ca, acceptor) = tls_server();
        let counts = Arc::new(Counts::default());
        let addr = serve(Some(acceptor), counts.clone()).await;
        let mut cfg: ScrapeConfig =
            serde_yaml_ng::from_str("job_name: j\nscheme: https\n").unwrap();
        cfg.tls_config.ca = Some(ca);
        scrape_three_times(&cfg, &addr).await;
        assert_eq!(counts.accepted.load(SeqCst), 1);
        assert_eq!(counts.closed.load(SeqCst), 0);
    }

    #[tokio::test]
    async fn https_scrapes_fail_against_an_unknown_ca() {
        let (_, acceptor) = tls_server();
        let (other_ca, _) = tls_server();
        let counts = Arc::new(Counts::default());
        let addr = serve(Some(acceptor), counts.clone()).await;
        let mut cfg: ScrapeConfig =
            serde_yaml_ng::from_str("job_name: j\nscheme: https\n").unwrap();
        cfg.tls_config.ca = Some(other_ca);
        let target = match populate(
            &BTreeMap::new(),
            &BTreeMap::from([("__address__".to_string(), addr.clone())]),
            &cfg,
            &GlobalConfig::default(),
        ) {
            Ok(Populated::Active(t)) => t,
            other => panic!("expected an active target, got {other:?}"),
        };
        let shared = pool_client(&cfg);
        let client = TargetClient::new(&cfg, &target, shared.as_ref())
            .await
            .unwrap();
        let err = client.fetch(&BufferPool::default()).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Http { .. }), "{msg}");
        assert!(msg.contains("certificate"), "{msg}");
    }
}
