//! The HTTP side of a queue: one client per destination (built from its HTTP client options by
//! `crate::util::http_client`), the protocol headers, and the classification of answers.

use crate::config::remote_write::{ProtobufMessage, RemoteWriteConfig};
use crate::util::http_client::HttpClient;
use reqwest::header::HeaderMap;
use std::time::Duration;

/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Bytes of an error answer kept for the log.
const MAX_ERROR_BODY: usize = 512;

/// What became of one request.
#[derive(Debug)]
pub enum SendError {
    /// Worth retrying (network error, 5xx, 429 when enabled), after `retry_after` if given.
    Recoverable {
        /// Why.
        msg: String,
        /// The receiver's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Not worth retrying: the batch is dropped (counted as failed).
    Fatal(String),
}

/// A destination's client.
pub struct Sender {
    http: HttpClient,
    url: String,
    headers: HeaderMap,
    retry_on_429: bool,
}

impl Sender {
    /// Builds the client for `cfg` (reads TLS files now, secret files at each request).
    pub fn new(cfg: &RemoteWriteConfig) -> Result<Sender, String> {
        let http = HttpClient::new(&cfg.http_client(), Some(cfg.remote_timeout.0))
            .map_err(|e| format!("remote_write {}: {e}", cfg.url))?;
        let (ct, version) = match cfg.protobuf_message {
            ProtobufMessage::V1 => ("application/x-protobuf", "0.1.0"),
            ProtobufMessage::V2 => (
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                "2.0.0",
            ),
        };
        let headers = crate::util::http_client::headers(
            &[
                ("content-type", ct),
                ("content-encoding", "snappy"),
                ("x-prometheus-remote-write-version", version),
            ],
            &cfg.headers,
        )
        .map_err(|e| format!("remote_write {}: {e}", cfg.url))?;
        Ok(Sender {
            http,
            url: cfg.url.clone(),
            headers,
            retry_on_429: cfg.queue_config.retry_on_http_429,
        })
    }

    /// Sends one compressed request body.
    pub async fn send(&self, body: Vec<u8>) -> Result<(), SendError> {
        let req = self
            .http
            .post(&self.url)
            .await
            .map_err(|e| SendError::Recoverable {
                msg: e.to_string(),
                retry_after: None,
            })?
            .headers(self.headers.clone())
            .body(body);
        let resp = req.send().await.map_err(|e| SendError::Recoverable {
            msg: format!("{e}"),
            retry_after: None,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut text = resp.text().await.unwrap_or_default();
        if text.len() > MAX_ERROR_BODY {
            let mut cut = MAX_ERROR_BODY;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let msg = format!("server returned HTTP status {status}: {}", text.trim());
        let code = status.as_u16();
        if status.is_server_error() || (code == 429 && self.retry_on_429) {
            Err(SendError::Recoverable { msg, retry_after })
        } else {
            Err(SendError::Fatal(msg))
        }
    }
}

/// `Retry-After` in delay-seconds form (the HTTP-date form is not honoured: backoff applies).
fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
