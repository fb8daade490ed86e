//! Building the API client: `kubeconfig_file`, `api_server` with credentials, or the pod's
//! service account (in-cluster).

use super::{Error, KubernetesSdConfig};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use std::path::Path;

/// Where the in-cluster service account keeps the pod's namespace.
const OWN_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

fn read_trimmed(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Uses `path` as the bearer token. kube re-reads a token file every minute but sends its
/// bytes untrimmed, and a trailing newline makes an invalid header; such a file is read once
/// here, trimmed (as Prometheus does) and used as a fixed token.
fn insert_token_file(
    auth: &mut serde_json::Map<String, serde_json::Value>,
    path: &Path,
) -> Result<(), Error> {
    let raw = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let trimmed = raw.trim();
    if trimmed == raw {
        auth.insert("tokenFile".into(), path.display().to_string().into());
    } else {
        tracing::warn!(path = %path.display(),
            "token file has surrounding whitespace; using it trimmed, without reloading");
        auth.insert("token".into(), trimmed.to_string().into());
    }
    Ok(())
}

/// The kube client config and, for in-cluster with `own_namespace`, the pod's namespace.
pub(crate) async fn kube_config(
    cfg: &KubernetesSdConfig,
) -> Result<(kube::Config, Option<String>), Error> {
    if let Some(path) = &cfg.kubeconfig_file {
        let kc = Kubeconfig::read_from(path).map_err(|e| {
            Error::ClientConfig(format!("cannot read kubeconfig {}: {e}", path.display()))
        })?;
        let c = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| {
                Error::ClientConfig(format!("cannot load kubeconfig {}: {e}", path.display()))
            })?;
        return Ok((c, None));
    }
    let Some(url) = &cfg.api_server else {
        let c = kube::Config::incluster().map_err(|e| {
            Error::ClientConfig(format!(
                "cannot use the pod service account (in-cluster): {e}"
            ))
        })?;
        let own = if cfg.namespaces.own_namespace {
            let ns = read_trimmed(Path::new(OWN_NAMESPACE_FILE))?;
            if ns.is_empty() {
                return Err(Error::ClientConfig(
                    "could not read own namespace name (empty file)".into(),
                ));
            }
            Some(ns)
        } else {
            None
        };
        return Ok((c, own));
    };
    let uri = url
        .parse()
        .map_err(|e| Error::Config(format!("api_server {url:?} is not a valid URL: {e}")))?;
    let mut c = kube::Config::new(uri);
    // AuthInfo's secret fields are only constructible through serde (kubeconfig names).
    let mut auth = serde_json::Map::new();
    let path_str = |p: &Path| serde_json::Value::String(p.display().to_string());
    if let Some(t) = &cfg.bearer_token {
        auth.insert("token".into(), t.expose().into());
    }
    if let Some(p) = &cfg.bearer_token_file {
        insert_token_file(&mut auth, p)?;
    }
    if let Some(a) = &cfg.authorization {
        if let Some(t) = &a.credentials {
            auth.insert("token".into(), t.expose().into());
        }
        if let Some(p) = &a.credentials_file {
            insert_token_file(&mut auth, p)?;
        }
    }
    if let Some(b) = &cfg.basic_auth {
        let user = match &b.username_file {
            Some(p) => read_trimmed(p)?,
            None => b.username.clone(),
        };
        let password = match (&b.password, &b.password_file) {
            (Some(p), _) => p.expose().to_string(),
            (None, Some(p)) => read_trimmed(p)?,
            (None, None) => String::new(),
        };
        auth.insert("username".into(), user.into());
        auth.insert("password".into(), password.into());
    }
    let tls = &cfg.tls_config;
    if let Some(p) = &tls.cert_file {
        auth.insert("client-certificate".into(), path_str(p));
    }
    if let Some(p) = &tls.key_file {
        auth.insert("client-key".into(), path_str(p));
    }
    c.auth_info = serde_json::from_value::<AuthInfo>(serde_json::Value::Object(auth))
        .map_err(|e| Error::ClientConfig(format!("cannot build API credentials: {e}")))?;
    c.root_cert_file = tls.ca_file.clone();
    c.tls_server_name = tls.server_name.clone();
    c.accept_invalid_certs = tls.insecure_skip_verify;
    Ok((c, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> KubernetesSdConfig {
        serde_yaml_ng::from_str(yaml).expect("valid yaml")
    }

    #[tokio::test]
    async fn api_server_with_credentials() {
        let (c, own) = kube_config(&cfg(
            "role: pod\napi_server: http://127.0.0.1:1\nbasic_auth:\n  username: u\n  \
             password: p\ntls_config:\n  insecure_skip_verify: true\n",
        ))
        .await
        .expect("config");
        assert_eq!(c.cluster_url.to_string(), "http://127.0.0.1:1/");
        assert_eq!(c.auth_info.username.as_deref(), Some("u"));
        assert!(c.auth_info.password.is_some());
        assert!(c.accept_invalid_certs);
        assert_eq!(own, None);

        let dir = tempfile::tempdir().expect("tempdir");
        let tok = dir.path().join("tok");
        std::fs::write(&tok, "abc").expect("write");
        let yaml = format!(
            "role: pod\napi_server: https://k8s:6443\nbearer_token_file: {}\n",
            tok.display()
        );
        let (c, _) = kube_config(&cfg(&yaml)).await.expect("config");
        assert_eq!(c.auth_info.token_file.as_deref(), tok.to_str());
        std::fs::write(&tok, "abc\n").expect("write");
        let (c, _) = kube_config(&cfg(&yaml)).await.expect("config");
        assert_eq!(c.auth_info.token_file, None);
        assert!(c.auth_info.token.is_some(), "trimmed inline token");
    }

    #[tokio::test]
    async fn https_client_builds_with_the_crate_crypto_provider() {
        // Building the TLS connector must not panic for want of a rustls CryptoProvider.
        let (c, _) = kube_config(&cfg(
            "role: pod\napi_server: https://127.0.0.1:1\ntls_config:\n  insecure_skip_verify: true\n",
        ))
        .await
        .expect("config");
        assert!(kube::Client::try_from(c).is_ok());
    }

    #[tokio::test]
    async fn in_cluster_without_service_account_is_a_clear_error() {
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return; // Really in a cluster: nothing to check here.
        }
        let err = kube_config(&cfg("role: pod\n"))
            .await
            .expect_err("no in-cluster environment");
        assert!(err.to_string().contains("in-cluster"), "{err}");
    }

    #[tokio::test]
    async fn missing_kubeconfig_is_a_clear_error() {
        let err = kube_config(&cfg("role: pod\nkubeconfig_file: /nonexistent/kc.yml\n"))
            .await
            .expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/kc.yml"), "{err}");
    }
}
