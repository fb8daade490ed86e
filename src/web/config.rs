//! The `--web.config.file` format of Prometheus's exporter-toolkit, parsed strictly (unknown
//! fields are errors) and validated once. [`WebConfig::parse`] does no I/O, so it is the fuzz
//! entry point; certificates are read later, by `tls`.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative paths: against the web config file's directory
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: ca.crt
//!   min_version: TLS12
//! http_server_config:
//!   headers: {Strict-Transport-Security: max-age=31536000}
//! basic_auth_users:
//!   admin: $2y$10$…                # bcrypt hash
//! ```

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An invalid or unreadable web config; `main` exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WebConfigError(pub String);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    /// Go's server-side preference; rustls always uses the server's order.
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// Accepted for compatibility: Argus serves HTTP/1.1 only.
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// Client certificate policy, named as Go's `tls.ClientAuthType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is requested.
    NoClientCert,
    /// Requested, not required, not verified.
    RequestClientCert,
    /// Required, not verified.
    RequireAnyClientCert,
    /// Verified against `client_ca_file` when the client sends one.
    VerifyClientCertIfGiven,
    /// Required and verified against `client_ca_file`.
    RequireAndVerifyClientCert,
}

/// A TLS protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Validated `tls_server_config`.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// Certificate chain (PEM), absolute or relative to the working directory.
    pub cert_file: PathBuf,
    /// Private key (PEM).
    pub key_file: PathBuf,
    /// Client certificate policy.
    pub client_auth: ClientAuth,
    /// CA bundle (PEM) for verifying client certificates.
    pub client_ca_file: Option<PathBuf>,
    /// Lowest version offered (default TLS 1.2, as the exporter-toolkit).
    pub min_version: TlsVersion,
    /// Highest version offered (default TLS 1.3).
    pub max_version: TlsVersion,
    /// TLS 1.2 cipher suites by Go name (None: the provider's defaults).
    pub cipher_suites: Option<Vec<String>>,
    /// Key-exchange groups by Go name (None: the provider's defaults).
    pub curve_preferences: Option<Vec<String>>,
}

/// A validated web config.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// TLS, when configured.
    pub tls: Option<TlsSettings>,
    /// User name → bcrypt hash. Empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `http_server_config.http2` (default true): offer HTTP/2 through TLS ALPN. As in Go's
    /// server, plain-text listeners speak HTTP/1.1 only.
    pub http2: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            tls: None,
            users: BTreeMap::new(),
            headers: Vec::new(),
            http2: true,
        }
    }
}

/// Headers the exporter-toolkit lets a web config set.
const ALLOWED_HEADERS: &[&str] = &[
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

/// TLS 1.2 cipher suites rustls (ring) implements, by Go name.
pub(crate) const CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Key-exchange groups rustls (ring) implements, by Go name.
pub(crate) const CURVES: &[&str] = &["CurveP256", "CurveP384", "X25519"];

impl WebConfig {
    /// Parses and validates the YAML `text`; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<WebConfig, WebConfigError> {
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_yaml_ng::from_str::<Option<RawWebConfig>>(text)
                .map_err(|e| WebConfigError(e.to_string()))?
                .unwrap_or_default()
        };
        let tls = match raw.tls_server_config {
            Some(t) => tls_settings(t, base)?,
            None => None,
        };
        let mut users = BTreeMap::new();
        for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
            if user.contains(':') {
                return Err(WebConfigError(format!(
                    "basic_auth_users: user name {user:?} must not contain ':'"
                )));
            }
            hash.parse::<bcrypt::HashParts>().map_err(|e| {
                WebConfigError(format!(
                    "basic_auth_users: invalid bcrypt hash for user {user:?}: {e}"
                ))
            })?;
            users.insert(user, hash);
        }
        let mut headers = Vec::new();
        let http = raw.http_server_config.unwrap_or_default();
        for (name, value) in http.headers.unwrap_or_default() {
            headers.push(header(&name, &value)?);
        }
        Ok(WebConfig {
            tls,
            users,
            headers,
            http2: http.http2.unwrap_or(true),
        })
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            WebConfigError(format!(
                "cannot read web config file {}: {e}",
                path.display()
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        WebConfig::parse(&text, base)
            .map_err(|e| WebConfigError(format!("invalid web config file {}: {e}", path.display())))
    }
}

fn tls_settings(t: RawTls, base: &Path) -> Result<Option<TlsSettings>, WebConfigError> {
    let _ = t.prefer_server_cipher_suites;
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let cert = nonempty(t.cert_file);
    let key = nonempty(t.key_file);
    let ca = nonempty(t.client_ca_file);
    let client_auth = match t.client_auth_type.as_deref().unwrap_or("") {
        "" | "NoClientCert" => ClientAuth::NoClientCert,
        "RequestClientCert" => ClientAuth::RequestClientCert,
        "RequireAnyClientCert" => ClientAuth::RequireAnyClientCert,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
        other => {
            return Err(WebConfigError(format!(
                "tls_server_config: invalid client_auth_type {other:?}"
            )));
        }
    };
    let (cert, key) = match (cert, key) {
        (None, None) if ca.is_none() && client_auth == ClientAuth::NoClientCert => {
            // The exporter-toolkit serves plain HTTP for an empty tls_server_config.
            return Ok(None);
        }
        (None, _) => {
            return Err(WebConfigError(
                "tls_server_config: missing cert_file".into(),
            ));
        }
        (_, None) => return Err(WebConfigError("tls_server_config: missing key_file".into())),
        (Some(c), Some(k)) => (c, k),
    };
    let verifies = matches!(
        client_auth,
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
    );
    if ca.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(WebConfigError(
            "tls_server_config: client_ca_file is set but client_auth_type is NoClientCert".into(),
        ));
    }
    if verifies && ca.is_none() {
        return Err(WebConfigError(format!(
            "tls_server_config: client_auth_type {client_auth:?} needs client_ca_file"
        )));
    }
    let version = |v: Option<String>, default: TlsVersion| match v.as_deref().unwrap_or("") {
        "" => Ok(default),
        "TLS12" => Ok(TlsVersion::Tls12),
        "TLS13" => Ok(TlsVersion::Tls13),
        "TLS10" | "TLS11" => Err(WebConfigError(format!(
            "tls_server_config: {} is not supported (TLS12 and TLS13 are)",
            v.unwrap_or_default()
        ))),
        other => Err(WebConfigError(format!(
            "tls_server_config: unknown TLS version {other:?}"
        ))),
    };
    let min_version = version(t.min_version, TlsVersion::Tls12)?;
    let max_version = version(t.max_version, TlsVersion::Tls13)?;
    if min_version > max_version {
        return Err(WebConfigError(
            "tls_server_config: min_version is greater than max_version".into(),
        ));
    }
    let known = |list: &Option<Vec<String>>, names: &[&str], what: &str| {
        for n in list.iter().flatten() {
            if !names.contains(&n.as_str()) {
                return Err(WebConfigError(format!(
                    "tls_server_config: unsupported {what} {n:?} (supported: {})",
                    names.join(", ")
                )));
            }
        }
        if list.as_ref().is_some_and(Vec::is_empty) {
            return Err(WebConfigError(format!(
                "tls_server_config: empty {what} list"
            )));
        }
        Ok(())
    };
    known(&t.cipher_suites, CIPHER_SUITES, "cipher suite")?;
    known(&t.curve_preferences, CURVES, "curve")?;
    Ok(Some(TlsSettings {
        cert_file: base.join(cert),
        key_file: base.join(key),
        client_auth,
        client_ca_file: ca.map(|c| base.join(c)),
        min_version,
        max_version,
        cipher_suites: t.cipher_suites,
        curve_preferences: t.curve_preferences,
    }))
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), WebConfigError> {
    let Some(canonical) = ALLOWED_HEADERS
        .iter()
        .find(|h| h.eq_ignore_ascii_case(name))
    else {
        return Err(WebConfigError(format!(
            "http_server_config: header {name:?} can not be configured"
        )));
    };
    let ok = match *canonical {
        "X-Content-Type-Options" => value.eq_ignore_ascii_case("nosniff"),
        "X-Frame-Options" => {
            value.eq_ignore_ascii_case("deny") || value.eq_ignore_ascii_case("sameorigin")
        }
        _ => true,
    };
    let parsed = HeaderValue::from_str(value).ok().filter(|_| ok);
    let Some(v) = parsed else {
        return Err(WebConfigError(format!(
            "http_server_config: invalid value {value:?} for header {canonical}"
        )));
    };
    Ok((HeaderName::from_static(lower(canonical)), v))
}

fn lower(h: &str) -> &'static str {
    match h {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const HASH: &str = "$2y$04$gRj0pJbu1v7dyDmYi6qcM.Y1nm0zVUOEK2FMUBAhNcAdxONYtnXTe";

    #[test]
    fn valid_configs() {
        let base = Path::new("/etc/argus");
        let c = WebConfig::parse("", base).unwrap();
        assert!(c.tls.is_none() && c.users.is_empty());
        assert!(c.http2, "http2 defaults to true");
        assert!(WebConfig::default().http2);
        let c = WebConfig::parse(
            &format!(
                "tls_server_config:\n  cert_file: a.crt\n  key_file: /k/a.key\n  \
                 client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  \
                 min_version: TLS13\nhttp_server_config:\n  http2: false\n  headers:\n    \
                 x-frame-options: deny\nbasic_auth_users:\n  alice: '{HASH}'\n"
            ),
            base,
        )
        .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.cert_file, PathBuf::from("/etc/argus/a.crt"));
        assert_eq!(t.key_file, PathBuf::from("/k/a.key"));
        assert_eq!(t.client_ca_file, Some(PathBuf::from("/etc/argus/ca.crt")));
        assert_eq!(t.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(t.min_version, TlsVersion::Tls13);
        assert_eq!(c.users["alice"], HASH);
        assert_eq!(c.headers[0].0.as_str(), "x-frame-options");
        assert!(!c.http2);
        // An empty tls_server_config means plain HTTP, as in the exporter-toolkit.
        let c = WebConfig::parse("tls_server_config: {}\n", base).unwrap();
        assert!(c.tls.is_none());
    }

    #[test]
    fn readme_example_is_valid() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("### TLS and basic authentication")
            .nth(1)
            .expect("README section");
        let yaml = section
            .split("```yaml\n")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .expect("yaml block");
        let c = WebConfig::parse(yaml, Path::new("/etc/argus")).unwrap();
        assert!(bcrypt::verify("change-me", &c.users["admin"]).unwrap());
        assert_eq!(c.headers.len(), 2);
        assert!(c.tls.is_some());
    }

    #[test]
    fn invalid_configs_name_the_problem() {
        let check = |yaml: &str, want: &str| {
            let err = WebConfig::parse(yaml, Path::new("/")).unwrap_err().0;
            assert!(err.contains(want), "expected {want:?} in {err:?}");
        };
        check("tls_server_config: {cert_file: a}\n", "missing key_file");
        check("tls_server_config: {key_file: a}\n", "missing cert_file");
        check("nope: 1\n", "unknown field `nope`");
        check(
            "tls_server_config: {cert_file: a, key_file: b, x: 1}\n",
            "unknown field `x`",
        );
        check(
            "basic_auth_users: {bob: notahash}\n",
            "invalid bcrypt hash for user \"bob\"",
        );
        check(
            "tls_server_config: {cert_file: a, key_file: b, client_auth_type: Maybe}\n",
            "invalid client_auth_type",
        );
        check(
            "tls_server_config: {cert_file: a, key_file: b, client_ca_file: c}\n",
            "client_auth_type is NoClientCert",
        );
        check(
            "tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequireAndVerifyClientCert}\n",
            "needs client_ca_file",
        );
        check(
            "tls_server_config: {cert_file: a, key_file: b, min_version: TLS10}\n",
            "not supported",
        );
        check(
            "tls_server_config: {cert_file: a, key_file: b, min_version: TLS13, max_version: TLS12}\n",
            "min_version is greater",
        );
        check(
            "tls_server_config: {cert_file: a, key_file: b, cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]}\n",
            "unsupported cipher suite",
        );
        check(
            "http_server_config: {headers: {Server: x}}\n",
            "can not be configured",
        );
        check(
            "http_server_config: {headers: {X-Frame-Options: allow}}\n",
            "invalid value",
        );
        check("[1, 2]\n", "invalid type");
    }
}
