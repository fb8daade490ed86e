//! One `remote_read:` entry, with Prometheus's field names and defaults
//! (`config.RemoteReadConfig`): PromQL in Argus merges the series the endpoint answers with
//! local data (`crate::remote::read_client`).

use super::PromDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

super::http_client::http_client_config! {
    /// `remote_read:` entry.
    #[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    pub struct RemoteReadConfig {
        /// Endpoint URL (required).
        pub url: String = String::new(),
        /// Name in logs; unique among the entries when set.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub name: Option<String> = None,
        /// Timeout of one request (1m).
        pub remote_timeout: PromDuration = PromDuration(Duration::from_secs(60)),
        /// Extra request headers (the protocol's own headers may not be overridden).
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub headers: BTreeMap<String, String> = BTreeMap::new(),
        /// The endpoint is queried only for selectors with all these equality matchers.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub required_matchers: BTreeMap<String, String> = BTreeMap::new(),
        /// Also query the endpoint for time ranges local storage holds (false).
        pub read_recent: bool = false,
        /// Add the external labels as equality matchers to remote queries (true).
        pub filter_external_labels: bool = true,
    }
}

/// Headers a `headers:` entry may not set (Prometheus's `reservedHeaders`).
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "x-prometheus-remote-read-version",
];

impl RemoteReadConfig {
    /// Checks one entry.
    pub fn validate(&self) -> Result<(), String> {
        let url = &self.url;
        super::http_client::validate_endpoint("remote_read", url, &self.headers, RESERVED_HEADERS)?;
        self.http_client().validate()?;
        if self.remote_timeout.0.is_zero() {
            return Err(format!(
                "remote_read {url:?}: remote_timeout must be positive"
            ));
        }
        Ok(())
    }

    /// The name for logs: `name`, else the URL.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.url)
    }
}

/// Checks every entry and that names are unique.
pub fn validate_all(cfgs: &[RemoteReadConfig]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for c in cfgs {
        c.validate()?;
        if let Some(n) = &c.name
            && !names.insert(n.as_str())
        {
            return Err(format!(
                "found multiple remote read configs with name {n:?}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn parses_defaults_and_refuses_bad_entries() {
        let c = Config::parse(
            "remote_read:\n  - url: http://a/api/v1/read\n    required_matchers: {job: x}\n",
        )
        .unwrap();
        let r = &c.remote_read[0];
        assert!(!r.read_recent);
        assert!(r.filter_external_labels);
        assert_eq!(r.remote_timeout.0.as_secs(), 60);
        assert_eq!(
            r.required_matchers.get("job").map(String::as_str),
            Some("x")
        );
        let bad = |y: &str| Config::parse(y).unwrap_err().to_string();
        assert!(bad("remote_read:\n  - url: ''\n").contains("url for remote_read is empty"));
        assert!(bad("remote_read:\n  - url: ftp://a/\n").contains("unsupported scheme"));
        assert!(
            bad("remote_read:\n  - url: http://a/\n    headers: {Content-Type: x}\n")
                .contains("reserved header")
        );
        assert!(bad("remote_read:\n  - url: http://a/\n    bogus: 1\n").contains("bogus"));
        assert!(
            bad("remote_read:\n  - {url: 'http://a/', name: n}\n  - {url: 'http://b/', name: n}\n")
                .contains("multiple remote read configs")
        );
    }
}
