//! Remote read client (`remote_read:`): PromQL, series and the remote read server itself see
//! local data merged with what each remote read endpoint answers, as Prometheus's fanout
//! storage does.
//!
//! [`Fanout`] wraps the local [`Queryable`]. Its querier asks each endpoint whose
//! `required_matchers` the selector carries (as `SAMPLES`, one query per request) and merges the
//! answers with the local series: series sorted by labels, samples of the same series merged by
//! timestamp with local samples winning. With `read_recent: false` an endpoint is asked only
//! for the part of the range before local storage's first sample (it holds the rest).
//! With `filter_external_labels` (the default) the external labels are added as equality
//! matchers and removed from the answers. A failing endpoint is logged and skipped: the query
//! answers from the rest, with a `remote_read: …` warning ([`Querier::warnings`]), as
//! Prometheus's fanout. Label names and values come from local storage only (with a `not
//! implemented` warning per endpoint, as Prometheus). Clients follow
//! the current config: they are rebuilt when `remote_read:` or the external labels change.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::read::{LabelMatcher, Query, ReadRequest, ReadResponse};
use crate::config::ConfigState;
use crate::config::remote_read::RemoteReadConfig;
use crate::ingest::remote_write::Decoder;
use crate::util::http_client::{HttpClient, error_chain};
use argus_storage::{
    Label, Labels, MatchType, Matcher, Querier, Queryable, Result as StorageResult, SampleIterator,
    SeriesSet, SliceSampleIterator, Timestamp,
};
use prost::Message;
use reqwest::header::HeaderMap;
use std::sync::Arc;
use std::time::Duration;

/// Largest compressed answer accepted.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// Largest decompressed answer accepted.
pub const MAX_DECODED_BYTES: usize = 256 << 20;
/// Bytes of an error answer kept for the log.
const MAX_ERROR_BODY: usize = 512;

/// Series as read from an endpoint: labels, then samples sorted by time without duplicates.
pub type RemoteSeries = Vec<(Labels, Vec<(Timestamp, f64)>)>;

/// One endpoint's client.
pub struct ReadClient {
    http: HttpClient,
    cfg: RemoteReadConfig,
    headers: HeaderMap,
    /// External labels added as matchers (empty without `filter_external_labels`).
    filter: Labels,
}

impl ReadClient {
    /// Builds the client for `cfg` (TLS files are read now, secret files at each request).
    pub fn new(cfg: &RemoteReadConfig, external: &Labels) -> Result<ReadClient, String> {
        let http = HttpClient::new(&cfg.http_client(), Some(cfg.remote_timeout.0))
            .map_err(|e| format!("remote_read {}: {e}", cfg.url))?;
        let headers = crate::util::http_client::headers(
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "snappy"),
                ("x-prometheus-remote-read-version", "0.1.0"),
            ],
            &cfg.headers,
        )
        .map_err(|e| format!("remote_read {}: {e}", cfg.url))?;
        Ok(ReadClient {
            http,
            headers,
            filter: if cfg.filter_external_labels {
                external.clone()
            } else {
                Labels::empty()
            },
            cfg: cfg.clone(),
        })
    }

    /// The range to ask this endpoint for, given the local storage's first timestamp; `None`
    /// when local storage holds all of `[mint, maxt]` (`read_recent: false`).
    fn range(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
        local_start: Timestamp,
    ) -> Option<(i64, i64)> {
        if self.cfg.read_recent {
            return Some((mint, maxt));
        }
        if mint > local_start {
            return None;
        }
        Some((mint, maxt.min(local_start)))
    }

    /// Whether the selector carries every `required_matchers` pair as an equality matcher.
    fn wanted(&self, matchers: &[Matcher]) -> bool {
        self.cfg.required_matchers.iter().all(|(n, v)| {
            matchers
                .iter()
                .any(|m| m.kind == MatchType::Equal && m.name == *n && m.value == *v)
        })
    }

    /// The request for `matchers` over `[mint, maxt]`: the selector plus the external labels
    /// it does not match on, and the names of those added labels.
    fn request(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> (ReadRequest, Vec<String>) {
        let mut ms: Vec<LabelMatcher> = matchers
            .iter()
            .map(|m| LabelMatcher {
                r#type: match m.kind {
                    MatchType::Equal => 0,
                    MatchType::NotEqual => 1,
                    MatchType::Regex => 2,
                    MatchType::NotRegex => 3,
                },
                name: m.name.clone(),
                value: m.value.clone(),
            })
            .collect();
        let mut added = Vec::new();
        for l in self.filter.iter() {
            if !matchers.iter().any(|m| m.name == l.name) {
                ms.push(LabelMatcher {
                    r#type: 0,
                    name: l.name.clone(),
                    value: l.value.clone(),
                });
                added.push(l.name.clone());
            }
        }
        let req = ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: mint,
                end_timestamp_ms: maxt,
                matchers: ms,
            }],
            accepted_response_types: vec![0],
        };
        (req, added)
    }

    /// Reads the series matching `matchers` over `[mint, maxt]`.
    pub async fn read(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<RemoteSeries, String> {
        let (req, added) = self.request(matchers, mint, maxt);
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .map_err(|e| format!("cannot compress the request: {e}"))?;
        let url = &self.cfg.url;
        let r = self.http.post(url).await.map_err(|e| e.to_string())?;
        let r = r.headers(self.headers.clone()).body(body);
        let mut resp = r
            .send()
            .await
            .map_err(|e| format!("error sending request: {}", error_chain(&e)))?;
        let status = resp.status();
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(format!("answer larger than {MAX_RESPONSE_BYTES} bytes"));
            }
            buf.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(buf.get(..MAX_ERROR_BODY).unwrap_or(&buf));
            return Err(format!(
                "remote server {url} returned HTTP status {status}: {}",
                text.trim()
            ));
        }
        let mut series = decode_response(&buf)?;
        if !added.is_empty() {
            for (labels, _) in &mut series {
                for n in &added {
                    labels.remove(n);
                }
            }
        }
        Ok(series)
    }
}

/// Decodes a snappy-compressed `ReadResponse` with one result into series; their samples are
/// sorted by time with duplicates removed (the answer is untrusted).
pub fn decode_response(body: &[u8]) -> Result<RemoteSeries, String> {
    let mut dec = Decoder::new();
    let raw = dec
        .decompress(body, MAX_DECODED_BYTES)
        .map_err(|e| format!("cannot decompress the answer: {e}"))?;
    let resp = ReadResponse::decode(raw).map_err(|e| format!("cannot decode ReadResponse: {e}"))?;
    let mut out = Vec::new();
    for r in resp.results {
        for ts in r.timeseries {
            let labels = Labels::new(
                ts.labels
                    .into_iter()
                    .map(|l| Label::new(l.name, l.value))
                    .collect(),
            );
            let mut samples: Vec<(Timestamp, f64)> =
                ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
            samples.sort_by_key(|s| s.0);
            samples.dedup_by_key(|s| s.0);
            if !labels.is_empty() && !samples.is_empty() {
                out.push((labels, samples));
            }
        }
    }
    Ok(out)
}

/// The clients of the current config and what they were built from.
struct Clients {
    cfg: Vec<RemoteReadConfig>,
    external: Labels,
    clients: Arc<Vec<ReadClient>>,
}

/// Local storage merged with the `remote_read:` endpoints of the current config.
pub struct Fanout<L> {
    // Immutable after construction.
    local: L,
    config: Arc<ConfigState>,
    handle: tokio::runtime::Handle,
    /// The local storage's first timestamp, ms (`i64::MAX` when empty).
    local_start: Box<dyn Fn() -> Timestamp + Send + Sync>,
    /// Rebuilt under this lock when the config changes.
    clients: parking_lot::Mutex<Clients>,
}

impl<L> Fanout<L> {
    /// Wraps `local`; requests run on `handle`'s runtime.
    pub fn new(
        local: L,
        config: Arc<ConfigState>,
        handle: tokio::runtime::Handle,
        local_start: Box<dyn Fn() -> Timestamp + Send + Sync>,
    ) -> Fanout<L> {
        Fanout {
            local,
            config,
            handle,
            local_start,
            clients: parking_lot::Mutex::new(Clients {
                cfg: Vec::new(),
                external: Labels::empty(),
                clients: Arc::new(Vec::new()),
            }),
        }
    }

    /// The wrapped local storage.
    pub fn local(&self) -> &L {
        &self.local
    }

    fn clients(&self) -> Arc<Vec<ReadClient>> {
        let cfg = self.config.get();
        let mut c = self.clients.lock();
        let ext: Vec<(&String, &String)> = cfg.global.external_labels.iter().collect();
        let external = Labels::from_pairs(&ext);
        if c.cfg != cfg.remote_read || c.external != external {
            let mut built = Vec::with_capacity(cfg.remote_read.len());
            for r in &cfg.remote_read {
                match ReadClient::new(r, &external) {
                    Ok(client) => built.push(client),
                    Err(e) => {
                        tracing::warn!(remote = r.display_name(), error = %e, "remote_read endpoint not queried")
                    }
                }
            }
            *c = Clients {
                cfg: cfg.remote_read.clone(),
                external,
                clients: Arc::new(built),
            };
        }
        c.clients.clone()
    }
}

impl<L: Queryable> Queryable for Fanout<L> {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> StorageResult<Box<dyn Querier + '_>> {
        let local = self.local.querier(mint, maxt)?;
        let clients = self.clients();
        if clients.is_empty() {
            return Ok(local);
        }
        let local_start = if clients.iter().all(|c| c.cfg.read_recent) {
            i64::MAX
        } else {
            (self.local_start)()
        };
        Ok(Box::new(FanoutQuerier {
            local,
            clients,
            handle: self.handle.clone(),
            mint,
            maxt,
            local_start,
            warnings: parking_lot::Mutex::new(Vec::new()),
        }))
    }
}

/// Appends go to local storage only.
impl<L: argus_storage::Appendable> argus_storage::Appendable for Fanout<L> {
    fn appender(&self) -> Box<dyn argus_storage::Appender> {
        self.local.appender()
    }
    fn appender_unsynced(&self) -> Box<dyn argus_storage::Appender> {
        self.local.appender_unsynced()
    }
}

struct FanoutQuerier<'a> {
    local: Box<dyn Querier + 'a>,
    clients: Arc<Vec<ReadClient>>,
    handle: tokio::runtime::Handle,
    mint: Timestamp,
    maxt: Timestamp,
    local_start: Timestamp,
    /// Failures of endpoints, each once, for [`Querier::warnings`]. Lock: this mutex (short).
    warnings: parking_lot::Mutex<Vec<String>>,
}

impl FanoutQuerier<'_> {
    /// Every endpoint's answer for `matchers`, concurrently, each within its timeout. Runs the
    /// requests on the runtime and waits on this (blocking) thread.
    fn remote(&self, matchers: &[Matcher]) -> RemoteSeries {
        let mut waits = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            let Some((mint, maxt)) = c.range(self.mint, self.maxt, self.local_start) else {
                continue;
            };
            if !c.wanted(matchers) {
                continue;
            }
            let clients = self.clients.clone();
            let ms = matchers.to_vec();
            let (tx, rx) = std::sync::mpsc::channel();
            self.handle.spawn(async move {
                if let Some(c) = clients.get(i) {
                    let _ = tx.send(c.read(&ms, mint, maxt).await);
                }
            });
            waits.push((i, rx, c.cfg.remote_timeout.0 + Duration::from_secs(1)));
        }
        let mut out = Vec::new();
        for (i, rx, timeout) in waits {
            let name = self.clients.get(i).map_or("", |c| c.cfg.display_name());
            let err = match rx.recv_timeout(timeout) {
                Ok(Ok(series)) => {
                    out.extend(series);
                    continue;
                }
                Ok(Err(e)) => e,
                Err(_) => "context deadline exceeded".to_string(),
            };
            tracing::warn!(remote = name, error = %err, "remote read failed");
            // Prometheus's fanout turns a failed secondary into a warning of the answer.
            let msg = format!("remote_read: {err}");
            let mut w = self.warnings.lock();
            if !w.contains(&msg) {
                w.push(msg);
            }
        }
        out
    }
}

impl FanoutQuerier<'_> {
    /// Label names and values come from local storage only: as Prometheus's remote read
    /// querier, each endpoint that covers the range says so with a `not implemented` warning
    /// (once per querier).
    fn labels_not_implemented(&self) {
        let mut w = self.warnings.lock();
        if w.iter().any(|m| m == NOT_IMPLEMENTED) {
            return;
        }
        for c in self.clients.iter() {
            if c.range(self.mint, self.maxt, self.local_start).is_some() {
                w.push(NOT_IMPLEMENTED.to_string());
            }
        }
    }
}

/// The warning of a label query that remote read endpoints cannot answer (Prometheus's text).
const NOT_IMPLEMENTED: &str = "not implemented";

impl Querier for FanoutQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Box<dyn SeriesSet + '_> {
        let remote = self.remote(matchers);
        let local = self.local.select(matchers);
        if remote.is_empty() {
            return local;
        }
        Box::new(MergeSet::new(local, remote))
    }

    fn label_names(&self, matchers: &[Matcher]) -> StorageResult<Vec<String>> {
        self.labels_not_implemented();
        self.local.label_names(matchers)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> StorageResult<Vec<String>> {
        self.labels_not_implemented();
        self.local.label_values(name, matchers)
    }

    fn label_names_limited(
        &self,
        matchers: &[Matcher],
        limit: usize,
    ) -> StorageResult<Vec<String>> {
        self.labels_not_implemented();
        self.local.label_names_limited(matchers, limit)
    }

    fn label_values_limited(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: usize,
    ) -> StorageResult<Vec<String>> {
        self.labels_not_implemented();
        self.local.label_values_limited(name, matchers, limit)
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = self.local.warnings();
        w.extend(self.warnings.lock().iter().cloned());
        w
    }
}

/// What the merged set is positioned on.
enum Current {
    None,
    Local,
    Remote(usize),
    Both(Labels, Vec<(Timestamp, f64)>),
}

/// Local series (sorted) merged with remote series (sorted and merged here) by labels.
struct MergeSet<'a> {
    local: Box<dyn SeriesSet + 'a>,
    /// The local set is positioned on a series not yet returned.
    local_ready: bool,
    local_done: bool,
    remote: RemoteSeries,
    /// Next remote series to return.
    next_remote: usize,
    cur: Current,
}

impl<'a> MergeSet<'a> {
    fn new(local: Box<dyn SeriesSet + 'a>, mut remote: RemoteSeries) -> MergeSet<'a> {
        remote.sort_by(|a, b| a.0.cmp(&b.0));
        // Several endpoints may answer the same series: merge them (the first answer wins).
        let mut merged: RemoteSeries = Vec::with_capacity(remote.len());
        for (l, s) in remote {
            match merged.last_mut() {
                Some(last) if last.0 == l => last.1 = merge_samples(&last.1, &s),
                _ => merged.push((l, s)),
            }
        }
        MergeSet {
            local,
            local_ready: false,
            local_done: false,
            remote: merged,
            next_remote: 0,
            cur: Current::None,
        }
    }
}

/// Merges two sorted sample lists; on equal timestamps `a` wins.
fn merge_samples(a: &[(Timestamp, f64)], b: &[(Timestamp, f64)]) -> Vec<(Timestamp, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        if x.0 <= y.0 {
            out.push(*x);
            if x.0 == y.0 {
                j += 1;
            }
            i += 1;
        } else {
            out.push(*y);
            j += 1;
        }
    }
    out.extend_from_slice(a.get(i..).unwrap_or_default());
    out.extend_from_slice(b.get(j..).unwrap_or_default());
    out
}

impl SeriesSet for MergeSet<'_> {
    fn next(&mut self) -> bool {
        if !self.local_ready && !self.local_done {
            if self.local.next() {
                self.local_ready = true;
            } else {
                self.local_done = true;
            }
        }
        let remote = self.remote.get(self.next_remote);
        let order = match (self.local_ready, remote) {
            (false, None) => {
                self.cur = Current::None;
                return false;
            }
            (true, None) => std::cmp::Ordering::Less,
            (false, Some(_)) => std::cmp::Ordering::Greater,
            (true, Some(r)) => self.local.labels().cmp(&r.0),
        };
        match order {
            std::cmp::Ordering::Less => {
                self.local_ready = false;
                self.cur = Current::Local;
            }
            std::cmp::Ordering::Greater => {
                self.cur = Current::Remote(self.next_remote);
                self.next_remote += 1;
            }
            std::cmp::Ordering::Equal => {
                let mut local = Vec::new();
                let mut it = self.local.samples();
                while it.next() {
                    local.push(it.at());
                }
                drop(it);
                let r = self
                    .remote
                    .get(self.next_remote)
                    .map_or(&[][..], |r| &r.1[..]);
                let merged = merge_samples(&local, r);
                self.cur = Current::Both(self.local.labels().clone(), merged);
                self.local_ready = false;
                self.next_remote += 1;
            }
        }
        true
    }

    fn labels(&self) -> &Labels {
        match &self.cur {
            Current::Local | Current::None => self.local.labels(),
            Current::Remote(i) => self
                .remote
                .get(*i)
                .map_or_else(|| self.local.labels(), |r| &r.0),
            Current::Both(l, _) => l,
        }
    }

    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        match &self.cur {
            Current::Local | Current::None => self.local.samples(),
            Current::Remote(i) => Box::new(SliceSampleIterator::new(
                self.remote.get(*i).map_or(&[][..], |r| &r.1[..]),
            )),
            Current::Both(_, s) => Box::new(SliceSampleIterator::new(s)),
        }
    }

    fn err(&self) -> Option<&argus_storage::Error> {
        self.local.err()
    }
}

#[cfg(test)]
mod tests;
