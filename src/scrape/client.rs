//! HTTP fetching of one target: `Accept` negotiation, gzip, auth, TLS, timeout, body limit.
//!
//! A gzip body is kept compressed from its fetch until its loop holds a commit slot
//! ([`Fetched::into_body`] decompresses it then, into a pooled buffer): loops waiting for a slot
//! hold ~6× fewer bytes (400 targets' waiting node-exporter bodies held 50 MiB decompressed at
//! the heaptrack peak, benches/README.md "scraperss"). The HTTP client therefore does not
//! decompress; [`Fetched::into_body`] does, as Prometheus's `readResponse` does: gzip when the
//! response says `Content-Encoding: gzip`, the bytes as they are otherwise.
//!
//! Plain `http` targets reached without a proxy are fetched with hyper-util's legacy client
//! ([`PlainClient`]) and a read buffer of at most [`PLAIN_READ_BUF`] bytes: each target keeps
//! one idle connection between scrapes (a connection per scrape cost 7–24 % more CPU), and
//! reqwest, which has no buffer option, keeps a read buffer grown to the bodies (~16 KiB at
//! scrape-bench's 15.5 kB gzip body) on each idle connection. Everything else goes through
//! reqwest: `https`, proxies, `server_name`, a redirect a plain target answers with (sent
//! again through reqwest, which follows it) and a response head over [`PLAIN_READ_BUF`].

use super::Error;
use super::buffers::BufferPool;
use super::expfmt::Format;
use super::target::Target;
use crate::config::scrape::ScrapeConfig;
use crate::util::gzip::{GunzipError, gunzip};
use crate::util::http_client::{Auth, builder};
pub(crate) use crate::util::http_client::{error_chain, install_crypto_provider};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, HeaderMap, HeaderValue, USER_AGENT,
};
use std::pin::Pin;
use std::time::Duration;

/// Hard cap on a body when `body_size_limit` is 0, so a target can never exhaust memory.
pub const MAX_BODY_BYTES: u64 = 512 << 20;

/// The HTTP side of one scrape loop.
#[derive(Debug)]
pub struct TargetClient {
    client: reqwest::Client,
    /// The pool's [`PlainClient`], when it serves this target.
    plain: Option<PlainClient>,
    /// A redirect answer of `plain` is followed by asking `client` again.
    follow_redirects: bool,
    url: String,
    /// `url` parsed once (reqwest would parse the string again at every scrape).
    parsed: Option<reqwest::Url>,
    /// `parsed` as hyper's URI, when `plain` serves the target and it sends no credentials:
    /// its requests are then built from this and [`TargetClient::headers`] alone.
    plain_uri: Option<hyper::Uri>,
    /// The headers of every request but the credentials, built once (see
    /// [`scrape_headers`]).
    headers: HeaderMap,
    timeout: Duration,
    body_limit: u64,
    fallback: Option<Format>,
    auth: Auth,
}

fn tls_err(url: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Http {
        url: url.to_string(),
        msg: format!("{what}: {e}"),
    }
}

/// Most bytes a [`PlainClient`] connection reads at once (hyper's smallest allowed maximum),
/// so its read buffer stays at this size between scrapes. A response head must fit in it.
pub const PLAIN_READ_BUF: usize = 8192;

/// hyper's HTTP/1 client for plain `http` targets reached without a proxy (see the module doc).
pub type PlainClient = hyper_util::client::legacy::Client<HttpConnector, reqwest::Body>;

/// The HTTP clients a scrape pool shares among its targets (one connection pool and one TLS
/// setup, as Prometheus's scrape pool has).
#[derive(Clone, Debug)]
pub struct PoolClients {
    /// reqwest, for targets [`PoolClients::plain`] does not serve; `None` when it cannot be
    /// built or `server_name` needs one per target: each target then builds its own and
    /// reports why not.
    reqwest: Option<reqwest::Client>,
    /// For plain `http` targets without a proxy.
    plain: PlainClient,
}

/// The clients of a scrape pool under `cfg`.
pub fn pool_clients(cfg: &ScrapeConfig) -> PoolClients {
    let reqwest = if cfg.tls_config.server_name.is_some() {
        None
    } else {
        builder(&cfg.http_client()).ok().and_then(|b| {
            b.pool_max_idle_per_host(1)
                // Bodies are decompressed by `Fetched::into_body`, once the loop holds a
                // commit slot.
                .no_gzip()
                .build()
                .ok()
        })
    };
    let mut connector = HttpConnector::new();
    // As reqwest's connector.
    connector.set_nodelay(true);
    let plain = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        // As reqwest's: an idle connection is closed after the pool's idle timeout (90 s) even
        // when its target is gone and no checkout looks at it again.
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_max_idle_per_host(1)
        .http1_max_buf_size(PLAIN_READ_BUF)
        .build(connector);
    PoolClients { reqwest, plain }
}

/// Whether [`PlainClient`] serves `url` under `cfg`: a plain `http` URL, no proxy (the
/// environment's included) and no `server_name`.
fn served_plain(cfg: &ScrapeConfig, url: &str) -> bool {
    url.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        && !cfg.proxy_from_environment
        && cfg.proxy_url.as_deref().is_none_or(str::is_empty)
        && cfg.tls_config.server_name.is_none()
}

/// Whether `e` (or an error it wraps) is hyper's "message head is too large".
fn head_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(c) = next {
        if c.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse_too_large)
        {
            return true;
        }
        next = c.source();
    }
    false
}

/// The headers of a scrape request without its credentials: `Accept`, Argus's `User-Agent`,
/// `X-Prometheus-Scrape-Timeout-Seconds` and `Accept-Encoding` (`gzip` when `compression`).
fn scrape_headers(accept: &str, timeout: Duration, compression: bool) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(4);
    // A validated `scrape_protocols` list joins to a valid value; were it not, the header
    // would be left out and the target answer in its default format.
    if let Ok(v) = HeaderValue::try_from(accept) {
        h.insert(ACCEPT, v);
    }
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(crate::util::http_client::USER_AGENT),
    );
    // A number's digits and point are always a valid value.
    if let Ok(v) = HeaderValue::try_from(format!("{}", timeout.as_secs_f64())) {
        h.insert("x-prometheus-scrape-timeout-seconds", v);
    }
    h.insert(
        ACCEPT_ENCODING,
        HeaderValue::from_static(if compression { "gzip" } else { "identity" }),
    );
    h
}

/// A response of either client.
enum Response {
    Reqwest(reqwest::Response),
    Plain(hyper::Response<Incoming>),
}

impl Response {
    fn status(&self) -> StatusCode {
        match self {
            Self::Reqwest(r) => r.status(),
            Self::Plain(r) => r.status(),
        }
    }

    fn headers(&self) -> &HeaderMap {
        match self {
            Self::Reqwest(r) => r.headers(),
            Self::Plain(r) => r.headers(),
        }
    }

    /// The next piece of the body; `None` at its end.
    async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Self::Reqwest(r) => r.chunk().await.map_err(|e| error_chain(&e)),
            Self::Plain(r) => loop {
                let body = r.body_mut();
                match std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(error_chain(&e)),
                    // Trailers carry no body bytes.
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
        }
    }
}

impl TargetClient {
    /// A client for `target` under `cfg`, on the pool's `shared` clients when they serve it.
    /// Reads TLS files now; auth files at each scrape.
    pub async fn new(
        cfg: &ScrapeConfig,
        target: &Target,
        shared: &PoolClients,
    ) -> Result<Self, Error> {
        let mut url = target.url.clone();
        let client = match &shared.reqwest {
            Some(c) if cfg.tls_config.server_name.is_none() => c.clone(),
            _ => Self::own_client(cfg, target, &mut url).await?,
        };
        let plain = served_plain(cfg, &url).then(|| shared.plain.clone());
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
        let parsed = reqwest::Url::parse(&url).ok();
        // As `http::Request::try_from(reqwest::Request)` makes it.
        let plain_uri = match (&plain, &auth, &parsed) {
            (Some(_), Auth::None, Some(u)) => hyper::Uri::try_from(u.as_str()).ok(),
            _ => None,
        };
        Ok(Self {
            client,
            plain,
            follow_redirects: cfg.follow_redirects,
            parsed,
            plain_uri,
            headers: scrape_headers(&cfg.accept_header(), target.timeout, cfg.enable_compression),
            url,
            timeout: target.timeout,
            body_limit: if cfg.body_size_limit.0 == 0 {
                MAX_BODY_BYTES
            } else {
                cfg.body_size_limit.0
            },
            fallback,
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

    /// The request with its headers and credentials.
    async fn request(&self) -> Result<reqwest::RequestBuilder, Error> {
        let req = match &self.parsed {
            Some(u) => self.client.get(u.clone()),
            // Unparsable: reqwest reports why.
            None => self.client.get(&self.url),
        };
        let req = req.headers(self.headers.clone());
        self.auth.apply(req).await.map_err(|e| Error::Http {
            url: self.url.clone(),
            msg: e.to_string(),
        })
    }

    /// Sends the request through the client that serves the target.
    async fn send(&self) -> Result<Response, Error> {
        let err = |msg: String| Error::Http {
            url: self.url.clone(),
            msg,
        };
        let Some(plain) = &self.plain else {
            let req = self.request().await?;
            return Ok(Response::Reqwest(
                req.send().await.map_err(|e| err(error_chain(&e)))?,
            ));
        };
        let req = match &self.plain_uri {
            // No credentials: the same request as the conversion below, without building a
            // reqwest request (its URL copy, header parsing and conversion) at every scrape.
            Some(uri) => {
                let mut req = hyper::Request::new(reqwest::Body::default());
                *req.uri_mut() = uri.clone();
                *req.headers_mut() = self.headers.clone();
                req
            }
            None => self
                .request()
                .await?
                .build()
                .and_then(hyper::Request::try_from)
                .map_err(|e| err(error_chain(&e)))?,
        };
        match plain.request(req).await {
            Ok(resp) if !(resp.status().is_redirection() && self.follow_redirects) => {
                return Ok(Response::Plain(resp));
            }
            // A redirect: reqwest follows it (to `https` too) with its redirect policy.
            Ok(_) => {}
            // A response head larger than the read buffer: reqwest reads up to ~400 KiB.
            Err(e) if head_too_large(&e) => {}
            Err(e) => return Err(err(error_chain(&e))),
        }
        let resp = self.request().await?.send().await;
        Ok(Response::Reqwest(resp.map_err(|e| err(error_chain(&e)))?))
    }

    async fn fetch_inner(&self, pool: &BufferPool) -> Result<Fetched<'_>, Error> {
        let mut resp = self.send().await?;
        let status = resp.status();
        if status != StatusCode::OK {
            return Err(Error::Status(format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )));
        }
        let ct = crate::util::http_client::content_type(resp.headers());
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
            let err = |msg| Error::Http {
                url: self.url.clone(),
                msg,
            };
            while let Some(chunk) = resp.chunk().await.map_err(err)? {
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
        /// The heads of the requests answered, in order.
        heads: parking_lot::Mutex<Vec<String>>,
    }

    /// The answer to a request: `GET /redirect` is sent to `/metrics`, `GET /big-head` gets
    /// `BODY` after a 9,000-byte header (more than [`PLAIN_READ_BUF`]), anything else `BODY`.
    fn respond(head: &[u8]) -> String {
        let ok = |extra: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n{extra}\
                 Content-Length: {}\r\n\r\n{BODY}",
                BODY.len()
            )
        };
        if head.starts_with(b"GET /redirect ") {
            "HTTP/1.1 302 Found\r\nLocation: /metrics\r\nContent-Length: 0\r\n\r\n".into()
        } else if head.starts_with(b"GET /big-head ") {
            ok(&format!("X-Pad: {}\r\n", "a".repeat(9000)))
        } else {
            ok("")
        }
    }

    /// Answers every request on `s` (keep-alive HTTP/1.1, see [`respond`]) until the client
    /// closes.
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
                let head: Vec<u8> = buf.drain(..end + 4).collect();
                counts
                    .heads
                    .lock()
                    .push(String::from_utf8_lossy(&head).into_owned());
                s.write_all(respond(&head).as_bytes()).await.unwrap();
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

    /// The target at `addr` under `cfg`.
    fn target(cfg: &ScrapeConfig, addr: &str) -> Target {
        match populate(
            &BTreeMap::new(),
            &BTreeMap::from([("__address__".to_string(), addr.to_string())]),
            cfg,
            &GlobalConfig::default(),
        ) {
            Ok(Populated::Active(t)) => *t,
            other => panic!("expected an active target, got {other:?}"),
        }
    }

    /// Scrapes the target at `addr` three times through a pool's clients, each body checked,
    /// letting the runtime settle between scrapes (a finished HTTP/1 connection goes back to
    /// its pool on a spawned task).
    async fn scrape_three_times(cfg: &ScrapeConfig, addr: &str) {
        let shared = pool_clients(cfg);
        assert!(shared.reqwest.is_some(), "the pool's reqwest client builds");
        let client = TargetClient::new(cfg, &target(cfg, addr), &shared)
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

    /// A plain target without credentials gets a request built from the target's own URI and
    /// headers; it must be the request the other paths send (reqwest's, converted for the
    /// plain client, or sent by reqwest itself), credentials aside.
    #[tokio::test]
    async fn the_request_without_credentials_is_the_one_reqwest_builds() {
        let counts = Arc::new(Counts::default());
        let addr = serve(None, counts.clone()).await;
        let heads = |yaml: &str| {
            let cfg: ScrapeConfig = serde_yaml_ng::from_str(yaml).unwrap();
            let counts = counts.clone();
            let addr = addr.clone();
            async move {
                counts.heads.lock().clear();
                scrape_three_times(&cfg, &addr).await;
                std::mem::take(&mut *counts.heads.lock())
            }
        };
        // Without credentials: the prebuilt request.
        let plain = heads("job_name: j\nscrape_timeout: 7s\n").await;
        let client = {
            let cfg: ScrapeConfig = serde_yaml_ng::from_str("job_name: j\n").unwrap();
            TargetClient::new(&cfg, &target(&cfg, &addr), &pool_clients(&cfg))
                .await
                .unwrap()
        };
        assert!(client.plain_uri.is_some(), "served by the prebuilt request");
        // With credentials: reqwest's request, converted.
        let basic =
            heads("job_name: j\nscrape_timeout: 7s\nbasic_auth: {username: u, password: p}\n")
                .await;
        // A redirect: sent again and followed by reqwest.
        let redirected = heads("job_name: j\nscrape_timeout: 7s\nmetrics_path: /redirect\n").await;
        let want = |path: &str| {
            format!(
                "GET {path} HTTP/1.1\r\naccept: {}\r\nuser-agent: {}\r\n\
                 x-prometheus-scrape-timeout-seconds: 7\r\naccept-encoding: gzip\r\n\
                 host: {addr}\r\n\r\n",
                serde_yaml_ng::from_str::<ScrapeConfig>("job_name: j\n")
                    .unwrap()
                    .accept_header(),
                crate::util::http_client::USER_AGENT,
            )
        };
        assert_eq!(plain, vec![want("/metrics"); 3]);
        let without_auth: Vec<String> = basic
            .iter()
            .map(|h| {
                h.split_inclusive("\r\n")
                    .filter(|l| !l.starts_with("authorization: Basic "))
                    .collect()
            })
            .collect();
        assert_eq!(without_auth, vec![want("/metrics"); 3], "{basic:?}");
        assert!(
            basic
                .iter()
                .all(|h| h.contains("authorization: Basic dTpw\r\n"))
        );
        // Each scrape: the plain client's request, reqwest's, and reqwest's redirected one.
        assert_eq!(redirected.len(), 9, "{redirected:?}");
        for (i, h) in redirected.iter().enumerate() {
            let path = if i % 3 == 2 { "/metrics" } else { "/redirect" };
            // reqwest adds `Referer` to the request it redirects.
            let mut lines: Vec<&str> = h
                .split_inclusive("\r\n")
                .filter(|l| !l.starts_with("referer: "))
                .collect();
            let mut want_lines: Vec<String> = want(path)
                .split_inclusive("\r\n")
                .map(str::to_owned)
                .collect();
            lines.sort_unstable();
            want_lines.sort_unstable();
            assert_eq!(lines, want_lines, "request {i}");
        }
    }

    #[tokio::test]
    async fn plain_http_redirects_and_large_response_heads_are_served_through_reqwest() {
        let counts = Arc::new(Counts::default());
        let addr = serve(None, counts.clone()).await;
        for path in ["/redirect", "/big-head"] {
            let yaml = format!("job_name: j\nmetrics_path: {path}\n");
            let cfg: ScrapeConfig = serde_yaml_ng::from_str(&yaml).unwrap();
            assert!(served_plain(&cfg, &format!("http://{addr}{path}")));
            scrape_three_times(&cfg, &addr).await;
        }
        // Without following redirects, the redirect is the answer.
        let cfg: ScrapeConfig = serde_yaml_ng::from_str(
            "job_name: j\nmetrics_path: /redirect\nfollow_redirects: false\n",
        )
        .unwrap();
        let shared = pool_clients(&cfg);
        let client = TargetClient::new(&cfg, &target(&cfg, &addr), &shared)
            .await
            .unwrap();
        let err = client.fetch(&BufferPool::default()).await.unwrap_err();
        assert!(
            matches!(&err, Error::Status(s) if s == "302 Found"),
            "{err}"
        );
    }

    #[test]
    fn plain_client_serves_plain_http_without_a_proxy_or_server_name() {
        let check = |yaml: &str, url: &str, want: bool| {
            let cfg: ScrapeConfig = serde_yaml_ng::from_str(yaml).unwrap();
            assert_eq!(served_plain(&cfg, url), want, "{yaml} {url}");
        };
        check("job_name: j\n", "http://h:9100/metrics", true);
        check("job_name: j\n", "HTTP://h:9100/metrics", true);
        check("job_name: j\n", "https://h:9100/metrics", false);
        check(
            "job_name: j\nproxy_url: http://p:3128\n",
            "http://h/m",
            false,
        );
        check(
            "job_name: j\nproxy_from_environment: true\n",
            "http://h/m",
            false,
        );
        check(
            "job_name: j\ntls_config: {server_name: example}\n",
            "http://h/m",
            false,
        );
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
        let shared = pool_clients(&cfg);
        let client = TargetClient::new(&cfg, &target(&cfg, &addr), &shared)
            .await
            .unwrap();
        let err = client.fetch(&BufferPool::default()).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Http { .. }), "{msg}");
        assert!(msg.contains("certificate"), "{msg}");
    }
}
