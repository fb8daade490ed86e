#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use super::*;
use crate::config::Config;

/// The same client options under each section that makes requests.
fn in_every_section(opts: &str) -> Vec<String> {
    let ind = |n: usize| {
        opts.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect::<String>()
    };
    vec![
        format!("scrape_configs:\n  - job_name: j\n{}", ind(4)),
        format!("remote_write:\n  - url: http://w/\n{}", ind(4)),
        format!("remote_read:\n  - url: http://r/\n{}", ind(4)),
        format!(
            "alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['a:1']}}]\n{}",
            ind(6)
        ),
    ]
}

/// Every section's client options.
fn sections(c: &Config) -> Vec<HttpClientConfig> {
    let mut v: Vec<HttpClientConfig> = c.scrape_configs.iter().map(|s| s.http_client()).collect();
    v.extend(c.remote_write.iter().map(|s| s.http_client()));
    v.extend(c.remote_read.iter().map(|s| s.http_client()));
    v.extend(c.alerting.alertmanagers.iter().map(|s| s.http_client()));
    v
}

/// Parses and validates, scrape jobs included (the scrape manager validates those on apply).
fn parse(yaml: &str) -> Result<Config, String> {
    let c = Config::parse(yaml).map_err(|e| e.to_string())?;
    for j in &c.scrape_configs {
        j.validate(&c.global)?;
    }
    Ok(c)
}

#[test]
fn every_section_takes_every_option_and_hides_secrets() {
    let opts = "oauth2:\n  client_id: 1234\n  client_secret: s3cr3t\n  scopes: [a, b]\n  \
                token_url: http://t/token\n  endpoint_params: {audience: x}\n  \
                tls_config: {insecure_skip_verify: true}\n  proxy_url: http://p:3128\n\
                proxy_url: http://user:pa55@proxy:3128\nno_proxy: 10.0.0.0/8,example.com\n\
                proxy_connect_header: {X-Proxy-Token: [h3ad3r]}\nfollow_redirects: false\n\
                enable_http2: false\ntls_config: {min_version: TLS12, max_version: TLS13}\n";
    for yaml in in_every_section(opts) {
        let c = parse(&yaml).unwrap_or_else(|e| panic!("{yaml}\n{e}"));
        let h = sections(&c)
            .into_iter()
            .find(|h| h.oauth2.is_some())
            .unwrap_or_else(|| panic!("no oauth2 in {yaml}"));
        let o = h.oauth2.as_ref().unwrap();
        assert_eq!(o.client_id, "1234", "a number reads as a string, as in Go");
        assert_eq!(o.client_secret.as_ref().unwrap().expose(), "s3cr3t");
        assert_eq!(o.scopes, ["a", "b"]);
        assert_eq!(o.proxy_url.as_deref(), Some("http://p:3128"));
        assert!(o.tls_config.insecure_skip_verify);
        assert_eq!(h.proxy_url.as_deref(), Some("http://user:pa55@proxy:3128"));
        assert!(!h.follow_redirects && !h.enable_http2);
        assert_eq!(h.tls_config.min_version, Some(TlsVersion::Tls12));
        let out = c.to_yaml();
        for secret in ["s3cr3t", "pa55", "h3ad3r"] {
            assert!(!out.contains(secret), "{secret} echoed:\n{out}");
        }
        assert!(out.contains("http://user:xxxxx@proxy:3128/"), "{out}");
        assert!(out.contains("min_version: TLS12"), "{out}");
        // The echo parses back to the same options, secrets aside.
        let back = parse(&out).unwrap_or_else(|e| panic!("{out}\n{e}"));
        let hb = sections(&back)
            .into_iter()
            .find(|h| h.oauth2.is_some())
            .unwrap();
        assert_eq!(hb.oauth2.as_ref().unwrap().scopes, o.scopes);
        assert_eq!(hb.no_proxy, h.no_proxy);
    }
}

#[test]
fn defaults_are_prometheus_defaults() {
    let h = HttpClientConfig::default();
    assert!(h.follow_redirects && h.enable_http2 && !h.proxy_from_environment);
    for yaml in in_every_section("{}") {
        let yaml = yaml.replace("    {}\n", "").replace("      {}\n", "");
        let c = parse(&yaml).unwrap_or_else(|e| panic!("{yaml}\n{e}"));
        for h in sections(&c)
            .iter()
            .filter(|h| h.tls_config == TlsConfig::default())
        {
            assert_eq!(*h, HttpClientConfig::default());
        }
    }
}

#[test]
fn refuses_what_prometheus_refuses() {
    let check = |opts: &str, want: &str| {
        for yaml in in_every_section(opts) {
            let err = parse(&yaml).unwrap_err();
            assert!(err.contains(want), "{yaml}: want {want:?}, got {err}");
        }
    };
    check(
        "bearer_token: a\nbearer_token_file: /f",
        "at most one of bearer_token & bearer_token_file must be configured",
    );
    check(
        "basic_auth: {username: u}\nbearer_token: a",
        "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
    );
    check(
        "basic_auth: {username: u}\nauthorization: {credentials: c}",
        "at most one of basic_auth, oauth2 & authorization must be configured",
    );
    check(
        "oauth2: {client_id: i, token_url: 'http://t'}\nauthorization: {credentials: c}",
        "at most one of basic_auth, oauth2 & authorization must be configured",
    );
    check(
        "oauth2: {client_id: i, token_url: 'http://t'}\nbasic_auth: {username: u}",
        "at most one of basic_auth, oauth2",
    );
    check(
        "authorization: {credentials: c}\nbearer_token_file: /f",
        "authorization is not compatible with bearer_token & bearer_token_file",
    );
    check(
        "authorization: {type: Basic, credentials: c}",
        r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
    );
    check(
        "authorization: {credentials: c, credentials_file: /f}",
        "at most one of authorization credentials & credentials_file must be configured",
    );
    check(
        "basic_auth: {username: u, password: p, password_file: /f}",
        "at most one of basic_auth password & password_file must be configured",
    );
    check(
        "oauth2: {token_url: 'http://t'}",
        "oauth2 client_id must be configured",
    );
    check(
        "oauth2: {client_id: i}",
        "oauth2 token_url must be configured",
    );
    check(
        "oauth2: {client_id: i, token_url: 'http://t', client_secret: s, client_secret_file: /f}",
        "at most one of oauth2 client_secret & client_secret_file must be configured",
    );
    check(
        "proxy_connect_header: {A: [b]}",
        "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured",
    );
    check(
        "proxy_from_environment: true\nproxy_url: http://p",
        "if proxy_from_environment is configured, proxy_url must not be configured",
    );
    check(
        "proxy_from_environment: true\nno_proxy: a",
        "if proxy_from_environment is configured, no_proxy must not be configured",
    );
    check(
        "no_proxy: a",
        "if no_proxy is configured, proxy_url must also be configured",
    );
    check("proxy_url: 'ftp://p'", "unsupported scheme");
    check(
        "tls_config: {cert_file: /c}",
        "exactly one of key or key_file must be configured when a client certificate is configured",
    );
    check(
        "tls_config: {key_file: /k}",
        "exactly one of cert or cert_file must be configured when a client key is configured",
    );
    check(
        "tls_config: {ca: x, ca_file: /f}",
        "at most one of ca and ca_file must be configured",
    );
    check(
        "tls_config: {min_version: TLS13, max_version: TLS12}",
        "tls_config.max_version must be greater than or equal to tls_config.min_version",
    );
    check(
        "tls_config: {min_version: TLS14}",
        "unknown TLS version: TLS14",
    );
    check(
        "oauth2: {client_id: i, token_url: 'http://t', bogus: 1}",
        "unknown field `bogus`",
    );
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    for yaml in in_every_section("follow_redirects: true\nproxy_ulr: http://p") {
        let err = parse(&yaml).unwrap_err();
        assert!(err.contains("unknown field `proxy_ulr`"), "{err}");
        let line = yaml.lines().position(|l| l.contains("proxy_ulr")).unwrap() + 1;
        assert!(
            err.contains(&format!("line {line}")),
            "want line {line}: {err}"
        );
    }
}

#[test]
fn authorization_scheme() {
    let check = |kind: Option<&str>, want: &str| {
        let a = Authorization {
            kind: kind.map(String::from),
            ..Default::default()
        };
        assert_eq!(a.scheme(), want);
    };
    check(None, "Bearer");
    check(Some(" "), "Bearer");
    check(Some(" Token "), "Token");
}
