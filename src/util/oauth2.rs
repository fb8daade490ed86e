//! The OAuth 2.0 client-credentials grant (RFC 6749 §4.4) behind `oauth2:`, as Prometheus uses
//! Go's `clientcredentials`: a token is fetched from `token_url` with the client id and secret,
//! cached, and fetched again 10 s before it expires, or when the client secret file changes.
//! The client authenticates with HTTP basic auth first; when the endpoint refuses that, with
//! `client_id`/`client_secret` form parameters, and the style that worked is kept.
//!
//! The token answer is untrusted: it is read up to 1 MiB and parsed as JSON or as a form.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::http_client::{Error, SecretSource, error_chain};
use crate::config::http_client::OAuth2Config;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// Largest token answer read (Go's `oauth2` reads 1 MiB).
const MAX_TOKEN_BODY: usize = 1 << 20;
/// A token is renewed this long before it expires (Go's `oauth2` expiry delta).
const EXPIRY_DELTA: Duration = Duration::from_secs(10);
/// Timeout of a token request when the client has none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const STYLE_UNKNOWN: u8 = 0;
const STYLE_HEADER: u8 = 1;
const STYLE_PARAMS: u8 = 2;

/// A cached token.
struct Token {
    /// `Authorization` value: `<type> <access_token>`.
    header: String,
    /// When to fetch a new one (`None`: the endpoint gave no lifetime).
    renew_at: Option<Instant>,
    /// The client secret it was fetched with.
    secret: String,
}

/// Fetches and caches the token of one `oauth2:` section. Shared by the requests of a client.
pub struct TokenSource {
    // Immutable after construction.
    cfg: OAuth2Config,
    /// Client towards `token_url` (the section's own TLS and proxy).
    client: reqwest::Client,
    secret: Option<SecretSource>,
    /// How the endpoint takes the client credentials (`STYLE_*`), learnt at the first fetch.
    style: AtomicU8,
    /// Lock: this async mutex, held across the token request so concurrent requests wait for
    /// one fetch instead of each starting their own.
    token: tokio::sync::Mutex<Option<Token>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.cfg.token_url)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source for `cfg` (TLS files are read now); `timeout` bounds each token request.
    pub fn new(cfg: &OAuth2Config, timeout: Option<Duration>) -> Result<Self, Error> {
        // Go's oauth2 client follows redirects (reqwest's default policy, 10 at most).
        let b = super::http_client::base_builder(&cfg.proxy(), &cfg.tls_config)?
            .timeout(timeout.unwrap_or(DEFAULT_TIMEOUT))
            .pool_max_idle_per_host(1);
        let client = b.build().map_err(|e| Error::Build(error_chain(&e)))?;
        Ok(Self {
            cfg: cfg.clone(),
            client,
            secret: SecretSource::new(
                cfg.client_secret.as_ref().map(|s| s.expose()),
                cfg.client_secret_file.as_ref(),
            ),
            style: AtomicU8::new(STYLE_UNKNOWN),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The `Authorization` header value: the cached token, or a new one.
    pub async fn header(&self) -> Result<String, Error> {
        let secret = match &self.secret {
            Some(s) => s
                .read("oauth2 client secret file")
                .map_err(|e| Error::OAuth2(format!("unable to read client secret: {e}")))?,
            None => String::new(),
        };
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref()
            && t.secret == secret
            && t.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(t.header.clone());
        }
        let t = self.fetch(&secret).await?;
        let header = t.header.clone();
        *cached = Some(t);
        Ok(header)
    }

    /// The form body of a token request, with the client credentials when `in_params`.
    fn form(&self, secret: &str, in_params: bool) -> Result<String, Error> {
        let mut params: Vec<(&str, String)> = vec![("grant_type", "client_credentials".into())];
        if !self.cfg.scopes.is_empty() {
            params.push(("scope", self.cfg.scopes.join(" ")));
        }
        for (k, v) in &self.cfg.endpoint_params {
            match params.iter_mut().find(|(n, _)| n == k) {
                // grant_type may be overridden, for non-compliant endpoints (as in Go).
                Some(p) if k == "grant_type" => p.1 = v.clone(),
                Some(_) => {
                    return Err(Error::OAuth2(format!("cannot overwrite parameter {k:?}")));
                }
                None => params.push((k, v.clone())),
            }
        }
        if in_params {
            params.push(("client_id", self.cfg.client_id.clone()));
            if !secret.is_empty() {
                params.push(("client_secret", secret.to_string()));
            }
        }
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &params {
            form.append_pair(k, v);
        }
        Ok(form.finish())
    }

    async fn fetch(&self, secret: &str) -> Result<Token, Error> {
        let style = self.style.load(Ordering::Relaxed);
        if style != STYLE_UNKNOWN {
            return self.request(secret, style == STYLE_PARAMS).await;
        }
        match self.request(secret, false).await {
            Ok(t) => {
                self.style.store(STYLE_HEADER, Ordering::Relaxed);
                Ok(t)
            }
            Err(first) => match self.request(secret, true).await {
                Ok(t) => {
                    self.style.store(STYLE_PARAMS, Ordering::Relaxed);
                    Ok(t)
                }
                Err(_) => Err(first),
            },
        }
    }

    /// One token request; the credentials go in the basic auth header or in the form.
    async fn request(&self, secret: &str, in_params: bool) -> Result<Token, Error> {
        let mut req = self
            .client
            .post(&self.cfg.token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(USER_AGENT, super::http_client::USER_AGENT)
            .body(self.form(secret, in_params)?);
        if !in_params {
            let esc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(esc(&self.cfg.client_id), Some(esc(secret)));
        }
        let fail =
            |e: reqwest::Error| Error::OAuth2(format!("cannot fetch token: {}", error_chain(&e)));
        let mut resp = req.send().await.map_err(fail)?;
        let status = resp.status();
        let ct = super::http_client::content_type(resp.headers());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(fail)? {
            let room = MAX_TOKEN_BODY.saturating_sub(body.len());
            body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
            if body.len() >= MAX_TOKEN_BODY {
                break;
            }
        }
        if !status.is_success() {
            return Err(Error::OAuth2(format!(
                "cannot fetch token: {status}\nResponse: {}",
                String::from_utf8_lossy(&body).trim()
            )));
        }
        let t = parse_token(&ct, &body)?;
        Ok(Token {
            header: format!("{} {}", token_type(&t.token_type), t.access_token),
            renew_at: t
                .expires_in
                .filter(|s| *s > 0)
                .map(|s| Instant::now() + Duration::from_secs(s).saturating_sub(EXPIRY_DELTA)),
            secret: secret.to_string(),
        })
    }
}

/// What a token endpoint answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAnswer {
    /// `access_token` (never empty).
    pub access_token: String,
    /// `token_type` as sent (may be empty).
    pub token_type: String,
    /// `expires_in`, seconds, when given as a non-negative integer.
    pub expires_in: Option<u64>,
}

/// Decodes a token answer (untrusted): JSON, or a form for `application/x-www-form-urlencoded`
/// and `text/plain` (as Go's `oauth2`). An answer without `access_token` is an error.
pub fn parse_token(content_type: &str, body: &[u8]) -> Result<TokenAnswer, Error> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (access, kind, expires) =
        if mime == "application/x-www-form-urlencoded" || mime == "text/plain" {
            let mut a = (String::new(), String::new(), None);
            for (k, v) in form_urlencoded::parse(body) {
                match &*k {
                    "access_token" => a.0 = v.into_owned(),
                    "token_type" => a.1 = v.into_owned(),
                    "expires_in" => a.2 = v.trim().parse::<u64>().ok(),
                    _ => {}
                }
            }
            a
        } else {
            let v: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| Error::OAuth2(format!("cannot parse json: {e}")))?;
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let expires = v.get("expires_in").and_then(|x| {
                x.as_u64()
                    .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
            });
            (s("access_token"), s("token_type"), expires)
        };
    if access.is_empty() {
        return Err(Error::OAuth2("server response missing access_token".into()));
    }
    Ok(TokenAnswer {
        access_token: access,
        token_type: kind,
        expires_in: expires,
    })
}

/// The scheme for a `token_type`, as Go's `Token.Type`.
fn token_type(t: &str) -> &str {
    if t.eq_ignore_ascii_case("bearer") || t.is_empty() {
        "Bearer"
    } else if t.eq_ignore_ascii_case("mac") {
        "MAC"
    } else if t.eq_ignore_ascii_case("basic") {
        "Basic"
    } else {
        t
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn token_answers() {
        let check = |ct: &str, body: &str, want: Option<(&str, &str, Option<u64>)>| {
            let got = parse_token(ct, body.as_bytes()).ok();
            let got = got
                .as_ref()
                .map(|t| (t.access_token.as_str(), t.token_type.as_str(), t.expires_in));
            assert_eq!(got, want, "{ct} {body}");
        };
        check(
            "application/json; charset=utf-8",
            r#"{"access_token":"t1","token_type":"bearer","expires_in":3600}"#,
            Some(("t1", "bearer", Some(3600))),
        );
        check(
            "application/json",
            r#"{"access_token":"t2","expires_in":"60"}"#,
            Some(("t2", "", Some(60))),
        );
        check(
            "application/x-www-form-urlencoded",
            "access_token=a%2Bb&token_type=mac&expires_in=5",
            Some(("a+b", "mac", Some(5))),
        );
        check("application/json", r#"{"token_type":"bearer"}"#, None);
        check("application/json", "not json", None);
        check("", "", None);
        assert_eq!(token_type("bearer"), "Bearer");
        assert_eq!(token_type(""), "Bearer");
        assert_eq!(token_type("MAC"), "MAC");
        assert_eq!(token_type("DPoP"), "DPoP");
    }

    #[test]
    fn form_body() {
        let mut cfg = OAuth2Config {
            client_id: "id 1".into(),
            token_url: "http://127.0.0.1:1/token".into(),
            scopes: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        cfg.endpoint_params.insert("audience".into(), "x&y".into());
        let src = TokenSource::new(&cfg, None).unwrap();
        assert_eq!(
            src.form("s", false).unwrap(),
            "grant_type=client_credentials&scope=a+b&audience=x%26y"
        );
        assert_eq!(
            src.form("s", true).unwrap(),
            "grant_type=client_credentials&scope=a+b&audience=x%26y&client_id=id+1&client_secret=s"
        );
        cfg.endpoint_params
            .insert("grant_type".into(), "password".into());
        let src = TokenSource::new(&cfg, None).unwrap();
        assert!(
            src.form("", true)
                .unwrap()
                .starts_with("grant_type=password&")
        );
        cfg.endpoint_params.insert("scope".into(), "c".into());
        let src = TokenSource::new(&cfg, None).unwrap();
        assert!(matches!(src.form("", false), Err(Error::OAuth2(m)) if m.contains("\"scope\"")));
    }

    proptest::proptest! {
        /// Whatever the endpoint sends as JSON or as a form decodes back to it.
        #[test]
        fn token_answers_round_trip(
            access in "[ -~]{1,40}",
            kind in "[ -~]{0,10}",
            expires in proptest::option::of(0u64..1 << 40),
        ) {
            let want = TokenAnswer {
                access_token: access.clone(),
                token_type: kind.clone(),
                expires_in: expires,
            };
            let mut json = serde_json::json!({"access_token": access, "token_type": kind});
            if let Some(e) = expires {
                json["expires_in"] = e.into();
            }
            let got = parse_token("application/json", json.to_string().as_bytes()).unwrap();
            proptest::prop_assert_eq!(&got, &want);
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("access_token", &access).append_pair("token_type", &kind);
            if let Some(e) = expires {
                form.append_pair("expires_in", &e.to_string());
            }
            let got = parse_token("text/plain; charset=utf-8", form.finish().as_bytes()).unwrap();
            proptest::prop_assert_eq!(&got, &want);
        }
    }
}
