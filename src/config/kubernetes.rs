//! `kubernetes_sd_configs:` entry.
//!
//! Field names and validation rules follow Prometheus's `kubernetes.SDConfig` (with the
//! inlined `HTTPClientConfig`). Parsing is two-stage: serde reads the raw YAML (unknown
//! fields rejected), then [`KubernetesSdConfig::validate`] checks the combinations once.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

/// An invalid `kubernetes_sd_configs` entry; `Display` is the message.
#[derive(Debug, thiserror::Error)]
#[error("invalid kubernetes_sd_config: {0}")]
pub struct InvalidSdConfig(pub String);

type Error = InvalidSdConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One Kubernetes SD config.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSdConfig {
    /// `pod`, `endpoints`, `endpointslice`, `service`, `node`.
    pub role: String,
    /// API server URL (`http://…` or `https://…`); empty = in-cluster or `kubeconfig_file`.
    pub api_server: Option<String>,
    /// Path of a kubeconfig file; its current context is used.
    pub kubeconfig_file: Option<PathBuf>,
    /// Namespaces to watch; empty = all namespaces.
    pub namespaces: NamespaceDiscovery,
    /// Label and field selectors applied to the list/watch of each resource.
    pub selectors: Vec<SelectorConfig>,
    /// Extra metadata to attach to targets.
    pub attach_metadata: AttachMetadata,
    /// HTTP basic authentication towards `api_server`.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header towards `api_server`.
    pub authorization: Option<Authorization>,
    /// Bearer token (deprecated form of `authorization`).
    pub bearer_token: Option<crate::config::Secret>,
    /// File holding the bearer token, re-read periodically.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings towards `api_server`.
    pub tls_config: TlsConfig,
    /// Accepted for compatibility; the API client does not follow redirects either way.
    pub follow_redirects: Option<bool>,
    /// Accepted for compatibility; the API client negotiates HTTP/1.1 or HTTP/2 itself.
    pub enable_http2: Option<bool>,
    /// Proxy URL: not supported (rejected by `validate`).
    pub proxy_url: Option<String>,
    /// OAuth2: not supported (rejected by `validate`).
    pub oauth2: Option<serde_yaml_ng::Value>,
}

/// `namespaces:`
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceDiscovery {
    /// Also watch the namespace Argus runs in (in-cluster only).
    pub own_namespace: bool,
    /// Namespaces to watch.
    pub names: Vec<String>,
}

/// One `selectors:` entry.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SelectorConfig {
    /// Resource the selector applies to (`pod`, `service`, `endpoints`, `endpointslice`, `node`).
    pub role: String,
    /// Label selector, e.g. `app=web,tier!=db`.
    pub label: String,
    /// Field selector, e.g. `spec.nodeName=n1`.
    pub field: String,
}

/// `attach_metadata:`
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttachMetadata {
    /// Attach `__meta_kubernetes_node_*` of the node a target runs on (pod, endpoints,
    /// endpointslice roles).
    pub node: bool,
    /// Attach `__meta_kubernetes_namespace_label_*`/`_annotation_*` of the target's namespace.
    pub namespace: bool,
    /// Attach `__meta_kubernetes_pod_deployment_name` (watches ReplicaSets).
    pub deployment: bool,
    /// Attach `__meta_kubernetes_pod_job_name` for pods owned by a Job.
    pub job: bool,
    /// Attach `__meta_kubernetes_pod_cronjob_name` (watches Jobs).
    pub cronjob: bool,
}

/// `basic_auth:`
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// File holding the user name.
    pub username_file: Option<PathBuf>,
    /// Password.
    pub password: Option<crate::config::Secret>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
}

/// `authorization:`
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// Scheme; only `Bearer` (the default) is supported by the API client.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The credentials.
    pub credentials: Option<crate::config::Secret>,
    /// File holding the credentials.
    pub credentials_file: Option<PathBuf>,
}

/// `tls_config:`
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA certificate file used to verify the API server.
    pub ca_file: Option<PathBuf>,
    /// Client certificate file.
    pub cert_file: Option<PathBuf>,
    /// Client key file.
    pub key_file: Option<PathBuf>,
    /// Expected server name in the API server certificate.
    pub server_name: Option<String>,
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
    /// Accepted for compatibility (`TLS12`, `TLS13`); rustls negotiates 1.2 or 1.3.
    pub min_version: Option<String>,
    /// Accepted for compatibility.
    pub max_version: Option<String>,
}

impl TlsConfig {
    fn is_default(&self) -> bool {
        *self == TlsConfig::default()
    }
}

/// Validated role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Role {
    Pod,
    Endpoints,
    EndpointSlice,
    Service,
    Node,
}

impl Role {
    pub(crate) fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "pod" => Role::Pod,
            "endpoints" => Role::Endpoints,
            "endpointslice" => Role::EndpointSlice,
            "service" => Role::Service,
            "node" => Role::Node,
            _ => return None,
        })
    }

    /// Roles whose objects a selector of this role may filter.
    fn allowed_selectors(self) -> &'static [&'static str] {
        match self {
            Role::Pod => &["pod", "node"],
            Role::Service => &["service"],
            Role::EndpointSlice => &["pod", "service", "endpointslice"],
            Role::Endpoints => &["pod", "service", "endpoints"],
            Role::Node => &["node"],
        }
    }
}

/// Label and field selector for one resource kind; empty strings mean "all".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ResourceSelector {
    pub(crate) label: Option<String>,
    pub(crate) field: Option<String>,
}

impl KubernetesSdConfig {
    /// Checks the config as Prometheus does: role known, at most one way to reach the API
    /// server, at most one credential, selectors allowed for the role and well-formed.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(InvalidSdConfig(msg));
        if self.role.is_empty() {
            return bad(
                "role missing (one of: pod, service, endpoints, endpointslice, node)".into(),
            );
        }
        let Some(role) = Role::parse(&self.role) else {
            if self.role == "ingress" {
                return bad("kubernetes SD role \"ingress\" is not supported by Argus".into());
            }
            return bad(format!("unknown Kubernetes SD role {:?}", self.role));
        };
        if let Some(url) = &self.api_server {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!(
                    "api_server {url:?} must be an http:// or https:// URL"
                ));
            }
            if url.parse::<axum::http::Uri>().is_err() {
                return bad(format!("api_server {url:?} is not a valid URL"));
            }
        }
        let custom_http = self.basic_auth.is_some()
            || self.authorization.is_some()
            || self.bearer_token.is_some()
            || self.bearer_token_file.is_some()
            || !self.tls_config.is_default();
        if self.proxy_url.is_some() {
            return bad("proxy_url is not supported by Argus's Kubernetes SD".into());
        }
        if self.oauth2.is_some() {
            return bad("oauth2 is not supported by Argus's Kubernetes SD".into());
        }
        let credentials = [
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            self.bearer_token.is_some(),
            self.bearer_token_file.is_some(),
        ];
        if credentials.iter().filter(|b| **b).count() > 1 {
            return bad(
                "at most one of basic_auth, authorization, bearer_token and \
                 bearer_token_file must be configured"
                    .into(),
            );
        }
        if let Some(b) = &self.basic_auth {
            if !b.username.is_empty() && b.username_file.is_some() {
                return bad(
                    "at most one of basic_auth username & username_file must be \
                     configured"
                        .into(),
                );
            }
            if b.password.is_some() && b.password_file.is_some() {
                return bad(
                    "at most one of basic_auth password & password_file must be \
                     configured"
                        .into(),
                );
            }
        }
        if let Some(a) = &self.authorization {
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return bad(
                    "at most one of authorization credentials & credentials_file must \
                     be configured"
                        .into(),
                );
            }
            if let Some(kind) = &a.kind
                && !kind.eq_ignore_ascii_case("bearer")
            {
                return bad(format!(
                    "authorization type {kind:?} is not supported (only Bearer)"
                ));
            }
        }
        if self.tls_config.cert_file.is_some() != self.tls_config.key_file.is_some() {
            return bad("tls_config: cert_file and key_file must be configured together".into());
        }
        if self.api_server.is_some() && self.kubeconfig_file.is_some() {
            return bad("cannot use 'kubeconfig_file' and 'api_server' simultaneously".into());
        }
        if self.kubeconfig_file.is_some() && custom_http {
            return bad(
                "cannot use a custom HTTP client configuration together with \
                 'kubeconfig_file'"
                    .into(),
            );
        }
        if self.api_server.is_none() && custom_http {
            return bad(
                "to use custom HTTP client configuration please provide the \
                 'api_server' URL explicitly"
                    .into(),
            );
        }
        if self.api_server.is_some() && self.namespaces.own_namespace {
            return bad("cannot use 'api_server' and 'namespaces.own_namespace' \
                 simultaneously"
                .into());
        }
        if self.kubeconfig_file.is_some() && self.namespaces.own_namespace {
            return bad(
                "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' \
                 simultaneously"
                    .into(),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for s in &self.selectors {
            if seen.contains(&s.role.as_str()) {
                return bad(format!("duplicated selector role: {}", s.role));
            }
            seen.push(&s.role);
            let allowed = role.allowed_selectors();
            if !allowed.contains(&s.role.as_str()) {
                return bad(format!(
                    "{} role supports only {} selectors",
                    self.role,
                    allowed.join(", ")
                ));
            }
            check_selector(&s.label, true)?;
            check_selector(&s.field, false)?;
        }
        Ok(())
    }

    /// The validated role. Call after [`validate`](Self::validate).
    pub(crate) fn parsed_role(&self) -> Result<Role, Error> {
        Role::parse(&self.role)
            .ok_or_else(|| InvalidSdConfig(format!("unknown Kubernetes SD role {:?}", self.role)))
    }

    /// Selector for objects of kind `kind` (a role name).
    pub(crate) fn selector(&self, kind: &str) -> ResourceSelector {
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        self.selectors
            .iter()
            .find(|s| s.role == kind)
            .map(|s| ResourceSelector {
                label: nonempty(&s.label),
                field: nonempty(&s.field),
            })
            .unwrap_or_default()
    }

    /// Resolves relative file paths against `dir` (the config file's directory), as
    /// Prometheus's `SetDirectory`.
    pub fn set_directory(&mut self, dir: &Path) {
        let join = |p: &mut Option<PathBuf>| {
            if let Some(path) = p
                && path.is_relative()
            {
                *path = dir.join(&*path);
            }
        };
        join(&mut self.kubeconfig_file);
        join(&mut self.bearer_token_file);
        join(&mut self.tls_config.ca_file);
        join(&mut self.tls_config.cert_file);
        join(&mut self.tls_config.key_file);
        if let Some(b) = &mut self.basic_auth {
            join(&mut b.username_file);
            join(&mut b.password_file);
        }
        if let Some(a) = &mut self.authorization {
            join(&mut a.credentials_file);
        }
    }
}

/// Light syntax check of a label (`k=v`, `k!=v`, `k in (a,b)`, `!k`, `k`) or field
/// (`k=v`, `k==v`, `k!=v`) selector; the API server does the full parse.
fn check_selector(sel: &str, label: bool) -> Result<(), Error> {
    if sel.is_empty() {
        return Ok(());
    }
    let what = if label { "label" } else { "field" };
    let err = |detail: &str| {
        Err(InvalidSdConfig(format!(
            "invalid {what} selector {sel:?}: {detail}"
        )))
    };
    let mut depth = 0i32;
    for c in sel.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return err("unbalanced parentheses");
        }
    }
    if depth != 0 {
        return err("unbalanced parentheses");
    }
    // Split on commas outside parentheses.
    let mut parts = Vec::new();
    let (mut start, mut depth) = (0usize, 0i32);
    for (i, c) in sel.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&sel[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&sel[start..]);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            return err("empty requirement");
        }
        let body = if label {
            p.trim_start_matches('!').trim_start()
        } else {
            p
        };
        let key = body.split(['=', '!', ' ', '(']).next().unwrap_or_default();
        if key.is_empty() {
            return err("missing key");
        }
        if !label && !(p.contains('=')) {
            return err("field selectors need an operator (=, ==, !=)");
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<KubernetesSdConfig, String> {
        serde_yaml_ng::from_str::<KubernetesSdConfig>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_prometheus_fields() {
        let c = parse(
            "role: endpoints\napi_server: https://10.0.0.1:6443\nnamespaces:\n  names: [a, b]\n\
             selectors:\n  - role: pod\n    label: app=web\n    field: spec.nodeName=n1\n\
             attach_metadata:\n  node: true\nbearer_token_file: /tok\ntls_config:\n  \
             ca_file: ca.crt\n  insecure_skip_verify: false\nfollow_redirects: true\n\
             enable_http2: true\n",
        )
        .expect("valid yaml");
        assert_eq!(c.role, "endpoints");
        assert_eq!(c.namespaces.names, vec!["a", "b"]);
        assert_eq!(c.selectors[0].field, "spec.nodeName=n1");
        assert!(c.attach_metadata.node);
        c.validate().expect("valid config");
        assert_eq!(
            c.selector("pod"),
            ResourceSelector {
                label: Some("app=web".into()),
                field: Some("spec.nodeName=n1".into())
            }
        );
        assert_eq!(c.selector("service"), ResourceSelector::default());
    }

    #[test]
    fn rejects_unknown_fields() {
        let err = parse("role: pod\nbogus: 1\n").expect_err("unknown field");
        assert!(err.contains("bogus"), "{err}");
        let err = parse("role: pod\nnamespaces:\n  nmes: [a]\n").expect_err("unknown field");
        assert!(err.contains("nmes"), "{err}");
    }

    #[test]
    fn validation_errors() {
        let check = |yaml: &str, want: &str| {
            let c = parse(yaml).expect("parses");
            match c.validate() {
                Ok(()) => panic!("expected error containing {want:?} for\n{yaml}"),
                Err(e) => assert!(e.to_string().contains(want), "want {want:?}\ngot  {e}"),
            }
        };
        check("{}", "role missing");
        check("role: pods", "unknown Kubernetes SD role");
        check(
            "role: pod\napi_server: http://a\nkubeconfig_file: /k\n",
            "simultaneously",
        );
        check("role: pod\nbearer_token: x\n", "provide the 'api_server'");
        check(
            "role: pod\nkubeconfig_file: /k\nbearer_token: x\n",
            "together with 'kubeconfig_file'",
        );
        check(
            "role: pod\napi_server: http://a\nnamespaces:\n  own_namespace: true\n",
            "'api_server' and 'namespaces.own_namespace'",
        );
        check(
            "role: pod\napi_server: http://a\nbearer_token: x\nbearer_token_file: /f\n",
            "at most one of",
        );
        check(
            "role: service\nselectors:\n  - role: pod\n    label: a=b\n",
            "service role supports only service selectors",
        );
        check(
            "role: pod\nselectors:\n  - role: pod\n  - role: pod\n",
            "duplicated selector role",
        );
        check(
            "role: pod\nselectors:\n  - role: pod\n    field: spec.nodeName\n",
            "invalid field selector",
        );
        check(
            "role: pod\nselectors:\n  - role: pod\n    label: a in (b\n",
            "unbalanced",
        );
        check("role: pod\napi_server: ftp://x\n", "http:// or https://");
    }

    #[test]
    fn valid_selectors() {
        for sel in [
            "a=b",
            "a!=b,c",
            "!a",
            "env in (prod, qa),tier notin (db)",
            "a==b",
        ] {
            check_selector(sel, true).unwrap_or_else(|e| panic!("{sel}: {e}"));
        }
        for sel in ["spec.nodeName=n1", "metadata.name!=x,status.phase==Running"] {
            check_selector(sel, false).unwrap_or_else(|e| panic!("{sel}: {e}"));
        }
    }

    #[test]
    fn set_directory_joins_relative_paths() {
        let mut c = parse("role: pod\nkubeconfig_file: kc.yml\n").expect("parses");
        c.set_directory(Path::new("/etc/argus"));
        assert_eq!(c.kubeconfig_file, Some(PathBuf::from("/etc/argus/kc.yml")));
    }
}
