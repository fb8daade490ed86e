//! Prometheus's common HTTP client options (`config.HTTPClientConfig` of `prometheus/common`):
//! `basic_auth`, `authorization`, `oauth2`, the deprecated `bearer_token`(`_file`), `tls_config`,
//! `follow_redirects`, `enable_http2` and the proxy options, with Prometheus's validation
//! messages. `crate::util::http_client` turns them into a client.
//!
//! Prometheus inlines these fields into every section that makes requests (`scrape_configs`,
//! `remote_write`, `remote_read`, `alertmanagers`). serde's `flatten` would do that, but it
//! buffers the values untyped, so `username: 1234` (a string to Go's YAML) fails, and errors
//! lose their line. Instead `http_client_config!` declares a section's struct with these
//! fields added, and gives it [`HttpClientConfig`] through `http_client()`; `proxy_config!`
//! does the same for the proxy fields, which `oauth2:` also has.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::Secret;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// Declares a config struct with the proxy fields appended (`proxy_url`, `no_proxy`,
/// `proxy_from_environment`, `proxy_connect_header`), a `Default` built from each field's
/// `= default`, and `proxy()` returning them as a [`ProxyConfig`]. Field attributes (serde's
/// included) are kept; give the struct its `#[derive(…)]` and serde attributes as usual.
macro_rules! proxy_config {
    (
        $(#[$sm:meta])*
        $sv:vis struct $name:ident {
            $( $(#[$fm:meta])* $fv:vis $f:ident : $t:ty = $d:expr ),* $(,)?
        }
    ) => {
        $(#[$sm])*
        $sv struct $name {
            $( $(#[$fm])* $fv $f: $t, )*
            /// Proxy for every request (its password is shown as `xxxxx`).
            #[serde(
                skip_serializing_if = "Option::is_none",
                serialize_with = "crate::config::http_client::serialize_proxy_url"
            )]
            pub proxy_url: Option<String>,
            /// Comma-separated hosts, domains and CIDRs reached without `proxy_url`.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub no_proxy: Option<String>,
            /// Use the proxy of `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`.
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            pub proxy_from_environment: bool,
            /// Headers sent to the proxy (values are secrets).
            #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
            pub proxy_connect_header:
                std::collections::BTreeMap<String, Vec<$crate::config::Secret>>,
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $( $f: $d, )*
                    proxy_url: None,
                    no_proxy: None,
                    proxy_from_environment: false,
                    proxy_connect_header: Default::default(),
                }
            }
        }

        impl $name {
            /// The proxy options of this section.
            pub fn proxy(&self) -> $crate::config::http_client::ProxyConfig {
                $crate::config::http_client::ProxyConfig {
                    url: self.proxy_url.clone(),
                    no_proxy: self.no_proxy.clone(),
                    from_environment: self.proxy_from_environment,
                    connect_header: self.proxy_connect_header.clone(),
                }
            }
        }
    };
}
pub(crate) use proxy_config;

/// Declares a config struct with the HTTP client fields appended (through `proxy_config!`,
/// so with their defaults and `proxy()`), and `http_client()` returning them as an
/// [`HttpClientConfig`].
macro_rules! http_client_config {
    (
        $(#[$sm:meta])*
        $sv:vis struct $name:ident {
            $( $(#[$fm:meta])* $fv:vis $f:ident : $t:ty = $d:expr ),* $(,)?
        }
    ) => {
        $crate::config::http_client::proxy_config! {
            $(#[$sm])*
            $sv struct $name {
                $( $(#[$fm])* $fv $f: $t = $d, )*
                /// HTTP basic auth.
                #[serde(skip_serializing_if = "Option::is_none")]
                pub basic_auth: Option<$crate::config::http_client::BasicAuth> = None,
                /// `Authorization` header.
                #[serde(skip_serializing_if = "Option::is_none")]
                pub authorization: Option<$crate::config::http_client::Authorization> = None,
                /// OAuth 2.0 client credentials: a token fetched from `token_url` is sent as
                /// the `Authorization` header.
                #[serde(skip_serializing_if = "Option::is_none")]
                pub oauth2: Option<$crate::config::http_client::OAuth2Config> = None,
                /// Deprecated spelling of `authorization: {credentials: …}`.
                #[serde(skip_serializing_if = "Option::is_none")]
                pub bearer_token: Option<$crate::config::Secret> = None,
                /// Deprecated spelling of `authorization: {credentials_file: …}`.
                #[serde(skip_serializing_if = "Option::is_none")]
                pub bearer_token_file: Option<String> = None,
                /// TLS options.
                pub tls_config: $crate::config::http_client::TlsConfig = Default::default(),
                /// Follow HTTP redirects (true).
                pub follow_redirects: bool = true,
                /// Allow HTTP/2 (true).
                pub enable_http2: bool = true,
            }
        }

        impl $name {
            /// The HTTP client options of this section.
            pub fn http_client(&self) -> $crate::config::http_client::HttpClientConfig {
                $crate::config::http_client::HttpClientConfig {
                    basic_auth: self.basic_auth.clone(),
                    authorization: self.authorization.clone(),
                    oauth2: self.oauth2.clone(),
                    bearer_token: self.bearer_token.clone(),
                    bearer_token_file: self.bearer_token_file.clone(),
                    tls_config: self.tls_config.clone(),
                    follow_redirects: self.follow_redirects,
                    enable_http2: self.enable_http2,
                    proxy_url: self.proxy_url.clone(),
                    no_proxy: self.no_proxy.clone(),
                    proxy_from_environment: self.proxy_from_environment,
                    proxy_connect_header: self.proxy_connect_header.clone(),
                }
            }
        }
    };
}
pub(crate) use http_client_config;

http_client_config! {
    /// The HTTP client options on their own (what [`crate::util::http_client`] builds from).
    #[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    pub struct HttpClientConfig {}
}

/// `basic_auth:`
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// User name read from a file at each request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_file: Option<String>,
    /// Password (inline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Password read from a file at each request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// `authorization:`
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// Scheme (`Bearer` when unset).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Credentials (inline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    /// Credentials read from a file at each request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

impl Authorization {
    /// The scheme as sent: trimmed, `Bearer` when empty.
    pub fn scheme(&self) -> &str {
        match self.kind.as_deref().map(str::trim) {
            None | Some("") => "Bearer",
            Some(k) => k,
        }
    }
}

proxy_config! {
    /// `oauth2:` (the client-credentials grant), with its own TLS and proxy options for the
    /// token requests.
    #[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    pub struct OAuth2Config {
        /// Client id (required).
        pub client_id: String = String::new(),
        /// Client secret (inline).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub client_secret: Option<Secret> = None,
        /// Client secret read from a file (re-read at each request; a change fetches a new
        /// token).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub client_secret_file: Option<String> = None,
        /// Scopes asked for.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub scopes: Vec<String> = Vec::new(),
        /// Token endpoint (required).
        pub token_url: String = String::new(),
        /// Extra form parameters of the token request.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub endpoint_params: BTreeMap<String, String> = BTreeMap::new(),
        /// TLS options towards the token endpoint.
        pub tls_config: TlsConfig = TlsConfig::default(),
    }
}

/// A TLS protocol version (`TLS12`, `TLS13`; Go's `TLS10` and `TLS11` parse but rustls cannot
/// speak them, so a client asking for them fails to build).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0.
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

const TLS_VERSIONS: [(&str, TlsVersion); 4] = [
    ("TLS10", TlsVersion::Tls10),
    ("TLS11", TlsVersion::Tls11),
    ("TLS12", TlsVersion::Tls12),
    ("TLS13", TlsVersion::Tls13),
];

impl TlsVersion {
    /// Go's name (`TLS12`).
    pub fn as_str(self) -> &'static str {
        TLS_VERSIONS
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TLS_VERSIONS
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown TLS version: {s}")))
    }
}

impl Serialize for TlsVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `tls_config:`
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA bundle (PEM text) that verifies the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// CA bundle file (PEM) that verifies the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Client certificate (PEM text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// Client certificate file (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// Client key (PEM text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    /// Client key file (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Server name for SNI and verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
    /// Lowest TLS version offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    /// Highest TLS version offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

impl TlsConfig {
    /// Prometheus's `TLSConfig.Validate`.
    pub fn validate(&self) -> Result<(), String> {
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        let key = self.key.as_ref().is_some_and(|k| !k.expose().is_empty());
        if set(&self.ca) && set(&self.ca_file) {
            return Err("at most one of ca and ca_file must be configured".into());
        }
        if set(&self.cert) && set(&self.cert_file) {
            return Err("at most one of cert and cert_file must be configured".into());
        }
        if key && set(&self.key_file) {
            return Err("at most one of key and key_file must be configured".into());
        }
        let cert = set(&self.cert) || set(&self.cert_file);
        let key = key || set(&self.key_file);
        if cert && !key {
            return Err(
                "exactly one of key or key_file must be configured when a client \
                        certificate is configured"
                    .into(),
            );
        }
        if key && !cert {
            return Err(
                "exactly one of cert or cert_file must be configured when a client \
                        key is configured"
                    .into(),
            );
        }
        if let (Some(min), Some(max)) = (self.min_version, self.max_version)
            && max < min
        {
            return Err("tls_config.max_version must be greater than or equal to \
                        tls_config.min_version if both are specified"
                .into());
        }
        Ok(())
    }
}

/// The proxy options of a client or of its token requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProxyConfig {
    /// `proxy_url`.
    pub url: Option<String>,
    /// `no_proxy`.
    pub no_proxy: Option<String>,
    /// `proxy_from_environment`.
    pub from_environment: bool,
    /// `proxy_connect_header`.
    pub connect_header: BTreeMap<String, Vec<Secret>>,
}

impl ProxyConfig {
    /// Prometheus's `ProxyConfig.Validate`, and that `proxy_url` is an http(s) URL.
    pub fn validate(&self) -> Result<(), String> {
        let url = self.url.as_deref().filter(|u| !u.is_empty());
        if !self.connect_header.is_empty() && !self.from_environment && url.is_none() {
            return Err("if proxy_connect_header is configured, proxy_url or \
                        proxy_from_environment must also be configured"
                .into());
        }
        if self.from_environment && url.is_some() {
            return Err(
                "if proxy_from_environment is configured, proxy_url must not be configured".into(),
            );
        }
        if self.from_environment && self.no_proxy.is_some() {
            return Err(
                "if proxy_from_environment is configured, no_proxy must not be configured".into(),
            );
        }
        if url.is_none() && self.no_proxy.is_some() {
            return Err("if no_proxy is configured, proxy_url must also be configured".into());
        }
        if let Some(u) = url {
            match reqwest::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https" | "socks5" | "socks5h") => {}
                Ok(p) => {
                    return Err(format!(
                        "proxy_url {:?}: unsupported scheme {:?}",
                        redact_url(u),
                        p.scheme()
                    ));
                }
                Err(e) => return Err(format!("proxy_url {:?}: {e}", redact_url(u))),
            }
        }
        Ok(())
    }
}

impl HttpClientConfig {
    /// Prometheus's `HTTPClientConfig.Validate` (same checks, same messages), plus the TLS and
    /// proxy checks Prometheus runs when it parses those parts.
    pub fn validate(&self) -> Result<(), String> {
        let bearer = self
            .bearer_token
            .as_ref()
            .is_some_and(|t| !t.expose().is_empty());
        let bearer_file = self
            .bearer_token_file
            .as_deref()
            .is_some_and(|f| !f.is_empty());
        if bearer && bearer_file {
            return Err(
                "at most one of bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if (self.basic_auth.is_some() || self.oauth2.is_some()) && (bearer || bearer_file) {
            return Err(
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file \
                        must be configured"
                    .into(),
            );
        }
        if let Some(b) = &self.basic_auth {
            if !b.username.is_empty() && b.username_file.is_some() {
                return Err(
                    "at most one of basic_auth username & username_file must be configured".into(),
                );
            }
            if b.password.as_ref().is_some_and(|p| !p.expose().is_empty())
                && b.password_file.is_some()
            {
                return Err(
                    "at most one of basic_auth password & password_file must be configured".into(),
                );
            }
        }
        if let Some(a) = &self.authorization {
            if bearer || bearer_file {
                return Err(
                    "authorization is not compatible with bearer_token & bearer_token_file".into(),
                );
            }
            if a.credentials
                .as_ref()
                .is_some_and(|c| !c.expose().is_empty())
                && a.credentials_file.is_some()
            {
                return Err(
                    "at most one of authorization credentials & credentials_file must \
                            be configured"
                        .into(),
                );
            }
            if a.scheme().eq_ignore_ascii_case("basic") {
                return Err(
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
                        .into(),
                );
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
        }
        if let Some(o) = &self.oauth2 {
            if self.basic_auth.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
            if o.client_id.is_empty() {
                return Err("oauth2 client_id must be configured".into());
            }
            if o.token_url.is_empty() {
                return Err("oauth2 token_url must be configured".into());
            }
            if o.client_secret
                .as_ref()
                .is_some_and(|s| !s.expose().is_empty())
                && o.client_secret_file.is_some()
            {
                return Err(
                    "at most one of oauth2 client_secret & client_secret_file must be \
                            configured"
                        .into(),
                );
            }
            o.tls_config.validate()?;
            o.proxy().validate()?;
        }
        self.tls_config.validate()?;
        self.proxy().validate()
    }
}

/// Checks a remote endpoint of `section` (`remote_read`, `remote_write`): `url` is set and
/// http(s), and `headers` overrides none of the `reserved` ones (lower-case names).
pub fn validate_endpoint(
    section: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    reserved: &[&str],
) -> Result<(), String> {
    if url.is_empty() {
        return Err(format!("url for {section} is empty"));
    }
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        Ok(u) => {
            return Err(format!(
                "{section} url {url:?}: unsupported scheme {:?}",
                u.scheme()
            ));
        }
        Err(e) => return Err(format!("{section} url {url:?}: {e}")),
    }
    for h in headers.keys() {
        if reserved.contains(&h.to_ascii_lowercase().as_str()) {
            return Err(format!("{h} is a reserved header. It must not be changed"));
        }
    }
    Ok(())
}

/// `url` with its password replaced by `xxxxx`, as Prometheus shows a proxy URL.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("xxxxx"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// `serialize_with` for `proxy_url`: the URL without its password.
pub fn serialize_proxy_url<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    v.as_deref().map(redact_url).serialize(s)
}

#[cfg(test)]
mod tests;
