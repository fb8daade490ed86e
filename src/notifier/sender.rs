//! One discovered Alertmanager: its bounded queue and the task that POSTs batches from it.
//!
//! A failed batch (non-2xx answer, network error, timeout) is logged, counted and dropped:
//! there is no retry, as in Prometheus (rules re-send firing alerts, and `endsAt` lies several
//! intervals ahead).

use super::alert::batch_body;
use super::metrics::NotifierMetrics;
use super::queue::{Encoded, Queue};
use crate::util::http_client::error_chain;
use parking_lot::Mutex;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The HTTP side shared by the Alertmanagers of one set.
pub(crate) struct HttpClient {
    /// Client and credentials; each request is bounded by the set's `timeout`.
    pub(crate) http: crate::util::http_client::HttpClient,
}

impl HttpClient {
    /// POSTs `body` to `url`; any 2xx answer is success.
    async fn post(&self, url: &str, body: String) -> Result<(), String> {
        let req = self
            .http
            .post(url)
            .await
            .map_err(|e| e.to_string())?
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("Argus/", env!("CARGO_PKG_VERSION")))
            .body(body);
        let mut resp = req.send().await.map_err(|e| error_chain(&e))?;
        let status = resp.status();
        // Read (a bounded amount of) the answer so the connection can be reused.
        let mut read = 0usize;
        while let Ok(Some(chunk)) = resp.chunk().await {
            read += chunk.len();
            if read > MAX_RESPONSE_BYTES {
                break;
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("bad response status {status}"))
        }
    }
}

/// How much of an answer is read (Alertmanager answers with an empty body or a short error).
const MAX_RESPONSE_BYTES: usize = 64 << 10;

const RUNNING: u8 = 0;
const DRAIN: u8 = 1;
const ABORT: u8 = 2;

/// One Alertmanager. `url`, `client`, `metrics` and `batch_size` are immutable.
pub(crate) struct Alertmanager {
    /// The POST URL (`<scheme>://<address><alerts path>`), also its metrics label.
    pub(crate) url: String,
    client: Arc<HttpClient>,
    metrics: Arc<NotifierMetrics>,
    batch_size: usize,
    /// Lock: this mutex (never held across an await).
    queue: Mutex<Queue>,
    /// Wakes the sender after a push or a stop.
    wake: Notify,
    /// `RUNNING`, `DRAIN` (send what is queued, then end) or `ABORT` (end after the current
    /// request).
    mode: AtomicU8,
}

impl Alertmanager {
    /// Starts the sender of `url`. The handle ends after [`Alertmanager::stop`].
    pub(crate) fn spawn(
        url: String,
        client: Arc<HttpClient>,
        metrics: Arc<NotifierMetrics>,
        capacity: usize,
        batch_size: usize,
    ) -> (Arc<Self>, JoinHandle<()>) {
        metrics.register(&url);
        let am = Arc::new(Self {
            url,
            client,
            metrics,
            batch_size: batch_size.max(1),
            queue: Mutex::new(Queue::new(capacity)),
            wake: Notify::new(),
            mode: AtomicU8::new(RUNNING),
        });
        let task = tokio::spawn(am.clone().run());
        (am, task)
    }

    /// Queues `alerts` (never blocks on I/O) and wakes the sender.
    pub(crate) fn push(&self, alerts: &[Encoded]) {
        if alerts.is_empty() {
            return;
        }
        let (dropped, before, after) = {
            let mut q = self.queue.lock();
            let before = q.len();
            let dropped = q.push(alerts);
            (dropped, before, q.len())
        };
        if dropped > 0 {
            self.metrics.add_dropped(dropped);
            tracing::warn!(alertmanager = %self.url, count = dropped, "Alert notification queue full, dropping alerts");
        }
        if after >= before {
            self.metrics.add_queued(after - before);
        } else {
            self.metrics.sub_queued(before - after);
        }
        self.wake.notify_one();
    }

    /// Removes everything queued (to hand it to the replacement of this Alertmanager).
    pub(crate) fn take_queued(&self) -> Vec<Encoded> {
        let all = self.queue.lock().take_all();
        self.metrics.sub_queued(all.len());
        all
    }

    /// Asks the sender to end: after sending what is queued (`drain`) or after the current
    /// request (the queue is then discarded).
    pub(crate) fn stop(&self, drain: bool) {
        self.mode
            .store(if drain { DRAIN } else { ABORT }, Ordering::Release);
        if !drain {
            let n = self.queue.lock().take_all().len();
            self.metrics.sub_queued(n);
        }
        self.wake.notify_one();
    }

    async fn run(self: Arc<Self>) {
        loop {
            let mode = self.mode.load(Ordering::Acquire);
            if mode == ABORT {
                return;
            }
            let batch = self.queue.lock().take(self.batch_size);
            if batch.is_empty() {
                if mode == DRAIN {
                    return;
                }
                // A push or stop in between left a permit: no wake-up is lost.
                self.wake.notified().await;
                continue;
            }
            self.metrics.sub_queued(batch.len());
            self.send(&batch).await;
        }
    }

    async fn send(&self, batch: &[Encoded]) {
        let body = batch_body(batch.iter().map(|a| &**a));
        let start = Instant::now();
        let res = self.client.post(&self.url, body).await;
        let secs = start.elapsed().as_secs_f64();
        // Dropped first, so that a reader seeing the error count also sees the drop.
        if let Err(e) = &res {
            self.metrics.add_dropped(batch.len());
            tracing::error!(alertmanager = %self.url, count = batch.len(), error = %e, "Error sending alerts");
        }
        self.metrics
            .record(&self.url, batch.len(), res.is_ok(), secs);
    }
}
