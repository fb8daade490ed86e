//! One queue: a task that reads the WAL in rounds and sends each round over its shards.
//!
//! A round is at most `shards × capacity` samples. Its samples are split over the shards by
//! series hash (so each series' samples go through one shard, in WAL order), each shard sends
//! them in requests of at most `max_samples_per_send`, retrying recoverable errors with
//! exponential backoff (`Retry-After` honoured) until they succeed or the queue stops. Once
//! every shard is done, the WAL position after the round is persisted and the WAL is told it
//! may release the segments before it. A stop in the middle of a round persists nothing, so
//! the round is sent again after a restart. The number of shards doubles after a round that
//! filled up without the queue having caught up with the WAL in between (a backlog: the
//! shards do not keep up; up to `max_shards`) and shrinks by one after a round under a quarter
//! full (down to `min_shards`). A round that fills while the queue keeps up does not add
//! shards: more shards would only thin out each request (each shard's requests hold every
//! n-th series, and compress worse).

use super::metadata::{Families, FamilyMap};
use super::metrics::QueueMetrics;
use super::position;
use super::reader::{Pending, Reader, Value};
use super::send::{SendError, Sender};
use crate::config::remote_write::{ProtobufMessage, RemoteWriteConfig};
use crate::ingest::prompb::{self, WriteRequest};
use crate::ingest::{remote_write, remote_write_histogram, remote_write_v2};
use crate::util::time::now_ms;
use argus_storage::{WalKeep, WalPosition};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a caught-up queue waits before looking at the WAL again.
const POLL: Duration = Duration::from_millis(100);
/// How long a queue waits after a failed WAL read before trying again.
const READ_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Everything a queue task owns.
pub struct Queue {
    /// Its config.
    pub cfg: RemoteWriteConfig,
    /// The destination, shared with the queue's metadata task.
    pub link: Arc<Link>,
    /// The WAL reader (None while it is in a blocking read).
    pub reader: Option<Reader>,
    /// The position file.
    pub pos_path: PathBuf,
    /// Keeps the WAL from deleting what is not acknowledged.
    pub keep: WalKeep,
    /// The last position persisted.
    pub acked: WalPosition,
    /// Metadata by family, attached per series to 2.0 requests (None: not sent).
    pub families: Option<Arc<Families>>,
}

/// A destination and its counters: sends requests with retries.
pub struct Link {
    /// Queue name for logs.
    pub name: String,
    /// The HTTP client.
    pub sender: Sender,
    /// Counters.
    pub metrics: Arc<QueueMetrics>,
    /// First retry delay, doubled at each retry.
    pub min_backoff: Duration,
    /// Largest retry delay.
    pub max_backoff: Duration,
}

/// How a round ended.
pub enum Round {
    Done,
    Stopped,
}

impl Queue {
    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let q = self.cfg.queue_config.clone();
        let mut shards = q.min_shards;
        self.link
            .metrics
            .shards
            .store(shards as u64, Ordering::Relaxed);
        self.link
            .metrics
            .shards_min
            .store(q.min_shards as u64, Ordering::Relaxed);
        self.link
            .metrics
            .shards_max
            .store(q.max_shards as u64, Ordering::Relaxed);
        let mut batch: Vec<Pending> = Vec::new();
        let mut first_at: Option<Instant> = None;
        // Whether the queue caught up with the WAL and waited during the current round.
        let mut waited = false;
        loop {
            if *stop.borrow() {
                return;
            }
            let cap = shards.saturating_mul(q.capacity.max(q.max_samples_per_send));
            let Some(mut reader) = self.reader.take() else {
                return;
            };
            let mut b = std::mem::take(&mut batch);
            let joined = tokio::task::spawn_blocking(move || {
                let r = reader.fill(&mut b, cap, now_ms());
                (reader, b, r)
            })
            .await;
            let Ok((reader, b, res)) = joined else {
                tracing::error!(queue = %self.link.name, "remote-write WAL reader panicked");
                return;
            };
            self.reader = Some(reader);
            batch = b;
            self.link
                .metrics
                .samples_pending
                .store(batch.len() as u64, Ordering::Relaxed);
            let caught_up = match res {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(queue = %self.link.name, error = %e, "remote-write queue cannot read the WAL");
                    tokio::select! {
                        _ = tokio::time::sleep(READ_ERROR_PAUSE) => {}
                        _ = stop.changed() => return,
                    }
                    true
                }
            };
            if !batch.is_empty() && first_at.is_none() {
                first_at = Some(Instant::now());
            }
            let due = first_at.is_some_and(|t| t.elapsed() >= q.batch_send_deadline.0);
            if batch.len() >= cap || (due && !batch.is_empty()) {
                let behind = batch.len() >= cap && !waited;
                waited = false;
                let round = std::mem::take(&mut batch);
                let n = round.len();
                let pos = self.reader.as_ref().map(Reader::position);
                match self.send_round(round, shards, &mut stop).await {
                    Round::Stopped => return,
                    Round::Done => {}
                }
                first_at = None;
                self.link
                    .metrics
                    .samples_pending
                    .store(0, Ordering::Relaxed);
                if let Some(pos) = pos {
                    self.acknowledge(pos).await;
                }
                shards = if behind {
                    (shards * 2).min(q.max_shards)
                } else if n < cap / 4 {
                    shards.saturating_sub(1).max(q.min_shards)
                } else {
                    shards
                };
                self.link
                    .metrics
                    .shards
                    .store(shards as u64, Ordering::Relaxed);
                continue;
            }
            if caught_up && batch.is_empty() {
                // Records without samples for this queue (or none at all): note the progress.
                if let Some(pos) = self.reader.as_ref().map(Reader::position)
                    && pos != self.acked
                {
                    self.acknowledge(pos).await;
                }
            }
            if caught_up {
                waited = true;
                let wait = match first_at {
                    Some(t) => q
                        .batch_send_deadline
                        .0
                        .saturating_sub(t.elapsed())
                        .min(POLL),
                    None => POLL,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// Persists `pos` and lets the WAL release the segments before it.
    async fn acknowledge(&mut self, pos: WalPosition) {
        let path = self.pos_path.clone();
        let stored = tokio::task::spawn_blocking(move || position::store(&path, pos)).await;
        match stored {
            Ok(Ok(())) => {
                self.acked = pos;
                self.keep.set(pos.segment);
            }
            Ok(Err(e)) => tracing::warn!(
                queue = %self.link.name,
                file = %self.pos_path.display(),
                error = %e,
                "cannot persist the remote-write position"
            ),
            Err(e) => tracing::warn!(queue = %self.link.name, error = %e, "position task failed"),
        }
    }

    async fn send_round(
        &self,
        round: Vec<Pending>,
        shards: usize,
        stop: &mut watch::Receiver<bool>,
    ) -> Round {
        let shards = shards.max(1);
        let mut per_shard: Vec<Vec<Pending>> = (0..shards).map(|_| Vec::new()).collect();
        for p in round {
            let i = (p.series.hash % shards as u64) as usize;
            if let Some(s) = per_shard.get_mut(i) {
                s.push(p);
            }
        }
        let futs = per_shard
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| self.send_shard(s, stop.clone()));
        let results = futures::future::join_all(futs).await;
        if results.iter().any(|r| matches!(r, Round::Stopped)) {
            Round::Stopped
        } else {
            Round::Done
        }
    }

    async fn send_shard(&self, samples: Vec<Pending>, mut stop: watch::Receiver<bool>) -> Round {
        let per = self.cfg.queue_config.max_samples_per_send.max(1);
        let mut wire = super::wire::Encoder::default();
        for chunk in samples.chunks(per) {
            let floats = chunk.iter().all(|p| matches!(p.v, Value::Float(_)));
            let (body, counts) = if floats && self.cfg.protobuf_message == ProtobufMessage::V1 {
                wire.encode(chunk)
            } else {
                let families = self.families.as_ref().map(|f| f.current());
                encode(chunk, self.cfg.protobuf_message, families.as_deref())
            };
            if let Round::Stopped = self.link.send(body, counts, &mut stop).await {
                return Round::Stopped;
            }
        }
        Round::Done
    }
}

impl Link {
    /// Sends one request until it is acknowledged, dropped (a non-recoverable answer) or the
    /// queue stops, counting what it carries.
    pub async fn send(&self, body: Vec<u8>, n: Counts, stop: &mut watch::Receiver<bool>) -> Round {
        let m = &self.metrics;
        let mut backoff = self.min_backoff;
        let len = body.len() as u64;
        let add = |a: &std::sync::atomic::AtomicU64, v: u64| {
            a.fetch_add(v, Ordering::Relaxed);
        };
        loop {
            let res = tokio::select! {
                r = self.sender.send(body.clone()) => r,
                _ = stop.changed() => return Round::Stopped,
            };
            match res {
                Ok(()) => {
                    add(&m.samples_sent, n.samples);
                    add(&m.histograms_sent, n.histograms);
                    add(&m.metadata_sent, n.metadata);
                    if n.metadata > 0 {
                        add(&m.metadata_bytes_sent, len);
                    } else {
                        add(&m.bytes_sent, len);
                    }
                    QueueMetrics::raise(&m.highest_sent_ms, n.highest);
                    return Round::Done;
                }
                Err(SendError::Fatal(msg)) => {
                    add(&m.failed_requests, 1);
                    m.set_error(&msg);
                    add(&m.samples_failed, n.samples);
                    add(&m.histograms_failed, n.histograms);
                    add(&m.metadata_failed, n.metadata);
                    tracing::warn!(queue = %self.name, samples = n.samples, histograms = n.histograms, metadata = n.metadata, error = %msg, "remote write failed; dropping the batch");
                    return Round::Done;
                }
                Err(SendError::Recoverable { msg, retry_after }) => {
                    add(&m.failed_requests, 1);
                    m.set_error(&msg);
                    add(&m.samples_retried, n.samples);
                    add(&m.histograms_retried, n.histograms);
                    add(&m.metadata_retried, n.metadata);
                    let wait = retry_after.unwrap_or(backoff);
                    tracing::debug!(queue = %self.name, error = %msg, ?wait, "remote write failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return Round::Stopped,
                    }
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }
}

/// What one request carries, for the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Float samples.
    pub samples: u64,
    /// Native-histogram samples.
    pub histograms: u64,
    /// Metadata entries.
    pub metadata: u64,
    /// Highest sample timestamp, ms (`i64::MIN` without samples).
    pub highest: i64,
}

/// Encodes samples (in WAL order) as one request: samples grouped per series, each series'
/// floats and histograms in order. (Requests of 1.0 floats only go through `wire`, which
/// writes the same bytes.) A 2.0 request carries each series' metadata when `families`
/// knows its family. Returns the body and what it carries.
pub fn encode(
    samples: &[Pending],
    proto: ProtobufMessage,
    families: Option<&FamilyMap>,
) -> (Vec<u8>, Counts) {
    let mut req = WriteRequest::default();
    let mut index: HashMap<*const super::reader::SendSeries, usize> = HashMap::new();
    let mut n = Counts {
        highest: i64::MIN,
        ..Counts::default()
    };
    for p in samples {
        n.highest = n.highest.max(p.t);
        let key = Arc::as_ptr(&p.series);
        let i = *index.entry(key).or_insert_with(|| {
            req.timeseries.push(p.series.to_proto());
            req.timeseries.len() - 1
        });
        let Some(ts) = req.timeseries.get_mut(i) else {
            unreachable!("BUG: series index {i} was just pushed");
        };
        match &p.v {
            Value::Float(v) => {
                n.samples += 1;
                ts.samples.push(prompb::Sample {
                    value: *v,
                    timestamp: p.t,
                });
            }
            Value::Histogram(h) => {
                n.histograms += 1;
                ts.histograms
                    .push(remote_write_histogram::from_float_histogram(p.t, h));
            }
        }
    }
    let body = match proto {
        ProtobufMessage::V1 => remote_write::encode(&req),
        ProtobufMessage::V2 => {
            if let Some(f) = families {
                f.attach(&mut req);
            }
            remote_write_v2::encode(&remote_write_v2::from_v1(&req))
        }
    };
    (body, n)
}
