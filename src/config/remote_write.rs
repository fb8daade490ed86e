//! One `remote_write:` entry, with Prometheus's field names and defaults
//! (`config.RemoteWriteConfig`, `DefaultQueueConfig`).
//!
//! A queue is identified by its `url` and `name` ([`RemoteWriteConfig::identity_hash`]): a
//! reload that changes anything else restarts the queue from its persisted position, a changed
//! `url` or `name` is a new queue.

use super::PromDuration;
use super::relabel::RelabelConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The wire format sent to a destination.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
pub enum ProtobufMessage {
    /// Remote Write 1.0.
    #[default]
    #[serde(rename = "prometheus.WriteRequest")]
    V1,
    /// Remote Write 2.0.
    #[serde(rename = "io.prometheus.write.v2.Request")]
    V2,
}

impl ProtobufMessage {
    /// The `proto=` parameter of the `Content-Type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtobufMessage::V1 => "prometheus.WriteRequest",
            ProtobufMessage::V2 => "io.prometheus.write.v2.Request",
        }
    }
}

super::http_client::http_client_config! {
    /// `remote_write:` entry.
    #[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    pub struct RemoteWriteConfig {
        /// Destination URL (required).
        pub url: String = String::new(),
        /// Name in metrics and logs; unique among the entries when set.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub name: Option<String> = None,
        /// Timeout of one request (30s).
        pub remote_timeout: PromDuration = PromDuration(Duration::from_secs(30)),
        /// Extra request headers (the protocol's own headers may not be overridden).
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub headers: BTreeMap<String, String> = BTreeMap::new(),
        /// Relabeling of each series before it is sent (`drop`/`keep` drop it).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub write_relabel_configs: Vec<RelabelConfig> = Vec::new(),
        /// Queue tuning.
        pub queue_config: QueueConfig = QueueConfig::default(),
        /// Metric metadata sending (None: Prometheus's defaults, sent every minute).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub metadata_config: Option<MetadataConfig> = None,
        /// 1.0 or 2.0.
        pub protobuf_message: ProtobufMessage = ProtobufMessage::V1,
        /// Accepted; Argus stores no exemplars.
        pub send_exemplars: bool = false,
        /// Forward native histograms (false: they are not sent, as in Prometheus).
        pub send_native_histograms: bool = false,
    }
}

/// `queue_config:` (Prometheus's defaults).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Samples buffered per shard (10000). Argus reads from the WAL, so this bounds memory only.
    pub capacity: usize,
    /// Most concurrent senders (50).
    pub max_shards: usize,
    /// Fewest concurrent senders (1).
    pub min_shards: usize,
    /// Samples per request (2000).
    pub max_samples_per_send: usize,
    /// Longest a sample waits for a batch to fill (5s).
    pub batch_send_deadline: PromDuration,
    /// First retry delay, doubled at each retry (30ms).
    pub min_backoff: PromDuration,
    /// Largest retry delay (5s).
    pub max_backoff: PromDuration,
    /// Retry on 429 as on 5xx (false: a 429 drops the batch, as other 4xx).
    pub retry_on_http_429: bool,
    /// Samples older than this are dropped instead of sent (0 = no limit).
    pub sample_age_limit: PromDuration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: PromDuration(Duration::from_secs(5)),
            min_backoff: PromDuration(Duration::from_millis(30)),
            max_backoff: PromDuration(Duration::from_secs(5)),
            retry_on_http_429: false,
            sample_age_limit: PromDuration(Duration::ZERO),
        }
    }
}

/// `metadata_config:` (Prometheus's defaults). 1.0 queues send the metadata in requests of
/// their own; 2.0 queues attach it to each series.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// Send metadata (true in Prometheus).
    pub send: bool,
    /// How often (1m).
    pub send_interval: PromDuration,
    /// Metadata per request (500).
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            send: true,
            send_interval: PromDuration(Duration::from_secs(60)),
            max_samples_per_send: 500,
        }
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
    "retry-after",
    "x-prometheus-remote-write-version",
];

impl RemoteWriteConfig {
    /// Checks one entry.
    pub fn validate(&self) -> Result<(), String> {
        let url = &self.url;
        super::http_client::validate_endpoint(
            "remote_write",
            url,
            &self.headers,
            RESERVED_HEADERS,
        )?;
        self.http_client().validate()?;
        let q = &self.queue_config;
        if q.min_shards == 0 || q.max_shards < q.min_shards {
            return Err(format!(
                "remote_write {url:?}: need 1 <= min_shards <= max_shards (got {} and {})",
                q.min_shards, q.max_shards
            ));
        }
        if q.max_samples_per_send == 0 {
            return Err(format!(
                "remote_write {url:?}: max_samples_per_send must be positive"
            ));
        }
        if q.min_backoff > q.max_backoff {
            return Err(format!(
                "remote_write {url:?}: min_backoff greater than max_backoff"
            ));
        }
        if self.remote_timeout.0.is_zero() {
            return Err(format!(
                "remote_write {url:?}: remote_timeout must be positive"
            ));
        }
        Ok(())
    }

    /// A stable hash of what identifies the destination (`url` and `name`), in hex: names the
    /// queue's persisted position, so it survives restarts and reloads that change the rest.
    pub fn identity_hash(&self) -> String {
        use md5::Digest;
        let mut h = md5::Md5::new();
        h.update(self.url.as_bytes());
        h.update([0xff]);
        h.update(self.name.as_deref().unwrap_or("").as_bytes());
        let d = h.finalize();
        d.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The queue's name for metrics and logs: `name`, or the identity hash's first 6 digits.
    pub fn queue_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => self.identity_hash().chars().take(6).collect(),
        }
    }
}

/// Checks the whole `remote_write:` list: each entry, and unique names and destinations.
pub fn validate_all(cfgs: &[RemoteWriteConfig]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    for c in cfgs {
        c.validate()?;
        if let Some(n) = &c.name
            && !names.insert(n.as_str())
        {
            return Err(format!(
                "found multiple remote write configs with name {n:?}"
            ));
        }
        if !ids.insert(c.identity_hash()) {
            return Err(format!(
                "duplicate remote write configs for url {:?}; give them different names",
                c.url
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_and_fields() {
        let cfg = Config::parse(
            "remote_write:\n  - url: http://a/api/v1/write\n  - url: http://b/w\n    name: b\n    \
             protobuf_message: io.prometheus.write.v2.Request\n    queue_config:\n      \
             max_shards: 3\n      retry_on_http_429: true\n    headers:\n      X-Scope-OrgID: t1\n    \
             write_relabel_configs:\n      - source_labels: [__name__]\n        regex: go_.*\n        action: drop\n",
        )
        .unwrap();
        let rw = &cfg.remote_write;
        assert_eq!(rw.len(), 2);
        assert_eq!(rw[0].remote_timeout.0, Duration::from_secs(30));
        assert_eq!(rw[0].queue_config, QueueConfig::default());
        assert_eq!(rw[0].protobuf_message, ProtobufMessage::V1);
        assert_eq!(rw[1].protobuf_message, ProtobufMessage::V2);
        assert_eq!(rw[1].queue_config.max_shards, 3);
        assert!(rw[1].queue_config.retry_on_http_429);
        assert_eq!(rw[1].queue_name(), "b");
        assert_eq!(rw[0].queue_name().len(), 6);
        assert_eq!(Config::parse(&cfg.to_yaml()).unwrap(), cfg);
    }

    #[test]
    fn identity_ignores_tuning() {
        let a = RemoteWriteConfig {
            url: "http://a/w".into(),
            ..Default::default()
        };
        let mut b = a.clone();
        b.queue_config.max_shards = 7;
        assert_eq!(a.identity_hash(), b.identity_hash());
        b.name = Some("x".into());
        assert_ne!(a.identity_hash(), b.identity_hash());
    }

    #[test]
    fn invalid() {
        let check = |yaml: &str, want: &str| {
            let err = Config::parse(yaml).unwrap_err().to_string();
            assert!(err.contains(want), "{yaml}: want {want:?}, got {err}");
        };
        check(
            "remote_write:\n  - name: x\n",
            "url for remote_write is empty",
        );
        check("remote_write:\n  - url: ftp://x/\n", "unsupported scheme");
        check(
            "remote_write:\n  - url: http://x/\n    headers:\n      Content-Type: a\n",
            "reserved header",
        );
        check(
            "remote_write:\n  - url: http://x/\n    queue_config:\n      max_shards: 0\n",
            "min_shards",
        );
        check(
            "remote_write:\n  - url: http://x/\n    protobuf_message: foo\n",
            "unknown variant",
        );
        check(
            "remote_write:\n  - url: http://x/\n  - url: http://x/\n",
            "duplicate remote write",
        );
        check(
            "remote_write:\n  - url: http://x/\n    name: a\n  - url: http://y/\n    name: a\n",
            "multiple remote write configs with name",
        );
        check(
            "remote_write:\n  - url: http://x/\n    queue_config:\n      capacityy: 1\n",
            "capacityy",
        );
    }
}
