//! One tokio task per target: scrape every interval from an offset spread by the target's hash,
//! append, report, and write staleness markers when the target goes away.

use super::Error;
use super::cache::{AppendOptions, AppendStats, SeriesCache};
use super::client::TargetClient;
use super::committer::CommitSlots;
use super::report::Report;
use super::target::{Health, Target};
use crate::config::scrape::ScrapeConfig;
use crate::util::time::now_ms;
use argus_storage::{Appendable, Appender, Timestamp};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a loop is asked to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// The target left the configuration or discovery: as Prometheus, wait until just over two
    /// intervals have passed (the target may come back under a new loop), then write staleness
    /// markers timestamped at the next would-be scrape.
    Removed,
    /// Server shutdown: staleness markers now.
    Shutdown,
}

/// A running loop.
#[derive(Debug)]
pub struct LoopHandle {
    stop: watch::Sender<Option<StopMode>>,
    join: JoinHandle<()>,
}

impl LoopHandle {
    /// Asks the loop to stop. A later `Shutdown` overrides an earlier `Removed`.
    pub fn stop(&self, mode: StopMode) {
        self.stop.send_replace(Some(mode));
    }

    /// True once the task has finished (stale markers written).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Waits for the task to finish.
    pub async fn join(self) {
        let _ = self.join.await;
    }
}

/// Everything a loop needs; shared, immutable.
pub struct LoopParams {
    /// The target.
    pub target: Arc<Target>,
    /// Its job.
    pub cfg: Arc<ScrapeConfig>,
    /// Sample shaping.
    pub opts: AppendOptions,
    /// Storage.
    pub appendable: Arc<dyn Appendable>,
    /// While set, fails every scrape with this message (`target_limit exceeded`); the pool
    /// updates it on each target sync.
    pub forced_error: Arc<parking_lot::Mutex<Option<String>>>,
    /// Limit-violation counters.
    pub metrics: Arc<super::metrics::ScrapeMetrics>,
    /// Body buffers shared by the manager's loops.
    pub buffers: Arc<super::buffers::BufferPool>,
    /// The pool's HTTP clients (see `TargetClient::new`).
    pub http: super::client::PoolClients,
    /// Bounds the loops committing at once and runs their commits (see [`commit`]); shared by
    /// the manager's loops.
    pub commit_slots: Arc<CommitSlots>,
}

/// Commits `app` on one of the manager's commit threads and gives it back (to roll back on an
/// error). The caller holds one of the [`super::committer::COMMIT_SLOTS`] slots from before it
/// filled `app` until after this returns, so at most that many loops hold a filled appender or
/// commit at a time:
/// - a commit may block its thread on the WAL's fsync: on the runtime's workers, under
///   `block_in_place`, each blocked worker made tokio start another thread; unbounded, a slow
///   disk turned 400 loops into 400 threads and their allocator heaps (3.9 GB resident), and
///   bounded, 20–30 threads took turns as workers, each with its own allocator heap (see
///   `committer.rs`);
/// - a filled appender holds its batch (samples, a map of its series): with the slot taken
///   only for the commit, 400 targets queued their batches behind four commits (41.5 MiB at
///   400 targets × 1,000 series). Loops waiting for a slot hold only their body, and wait
///   asynchronously.
async fn commit(p: &LoopParams, app: Box<dyn Appender>) -> (Box<dyn Appender>, Result<(), Error>) {
    // The target's commits all run on one thread (see `committer`).
    let (app, r) = p.commit_slots.commit(app, p.target.hash()).await;
    (app, r.map_err(Error::Storage))
}

/// Starts the loop task.
pub fn spawn(p: LoopParams) -> LoopHandle {
    let (tx, rx) = watch::channel(None);
    let join = tokio::spawn(run(p, rx));
    LoopHandle { stop: tx, join }
}

/// Delay until the first scrape: the target's slot `hash % interval` within the interval grid.
fn start_delay(hash: u64, interval: Duration) -> Duration {
    let iv = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let now = u64::try_from(now_ms()).unwrap_or(0) % iv;
    let offset = hash % iv;
    Duration::from_millis((offset + iv - now) % iv)
}

struct State {
    cache: SeriesCache,
    report: Report,
    client: Result<TargetClient, String>,
}

async fn run(p: LoopParams, mut stop: watch::Receiver<Option<StopMode>>) {
    let t = p.target.clone();
    let client = TargetClient::new(&p.cfg, &t, &p.http)
        .await
        .map_err(|e| e.to_string());
    let mut st = State {
        cache: SeriesCache::new(),
        report: Report::new(&p.opts.target_labels),
        client,
    };
    let start = tokio::time::Instant::now() + start_delay(t.hash(), t.interval);
    let mut ticker = tokio::time::interval_at(start, t.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        if stop.borrow().is_some() {
            break;
        }
        scrape_once(&p, &mut st).await;
    }
    let mut mode = (*stop.borrow()).unwrap_or(StopMode::Shutdown);
    let mut stale_ts = now_ms();
    if mode == StopMode::Removed {
        // Next would-be scrape, then one more interval, then 10% extra.
        let waits = [None, None, Some(t.interval / 10)];
        for (i, w) in waits.into_iter().enumerate() {
            tokio::select! {
                _ = async {
                    match w {
                        None => { ticker.tick().await; }
                        Some(d) => tokio::time::sleep(d).await,
                    }
                } => {}
                _ = stop.changed() => {
                    mode = (*stop.borrow()).unwrap_or(StopMode::Shutdown);
                    if mode == StopMode::Shutdown {
                        if i == 0 {
                            stale_ts = now_ms();
                        }
                        break;
                    }
                }
            }
            if i == 0 {
                stale_ts = now_ms();
            }
        }
    }
    write_end_staleness(&p, &mut st, stale_ts);
}

fn write_end_staleness(p: &LoopParams, st: &mut State, ts: Timestamp) {
    let mut app = p.appendable.appender_unsynced();
    let r = st
        .cache
        .mark_all_stale(ts, app.as_mut(), &p.opts)
        .and_then(|_| st.report.append_stale(app.as_mut(), ts));
    match r.and_then(|()| crate::ingest::blocking(|| app.commit()).map_err(Error::Storage)) {
        Ok(()) => {}
        Err(e) => {
            app.rollback();
            tracing::warn!(target = %p.target.url, error = %e, "cannot write staleness markers");
        }
    }
}

/// One scrape: fetch, append, report, record health.
async fn scrape_once(p: &LoopParams, st: &mut State) {
    let started = Instant::now();
    let wall = SystemTime::now();
    let ts = now_ms();
    let forced = p.forced_error.lock().clone();
    // A gzip body stays compressed while the loop waits for a commit slot (see
    // `client::Fetched`).
    let fetched = match (forced, &st.client) {
        (Some(e), _) => Err(Error::Config(e)),
        (None, Err(e)) => Err(Error::Config(e.clone())),
        (None, Ok(c)) => c.fetch(&p.buffers).await,
    };
    // Held until this scrape's appends are committed or rolled back (see [`commit`]).
    // The slot of the thread that runs this target's commits (see [`commit`]).
    let slot = p.commit_slots.acquire(p.target.hash()).await;
    // Scrape commits reach the WAL without an fsync, as all of Prometheus's do: they survive a
    // crash of the process, and the next synced commit (a remote write, a push) or the
    // segment's close makes them durable against a power cut too. Nobody waits for an
    // acknowledgement of a scrape, and 400 targets would otherwise ask for an fsync each.
    // The appender is one an earlier scrape of the manager gave back, when there is one (see
    // `CommitSlots::appender`).
    let mut app = p.commit_slots.appender(&p.appendable);
    let mut buf = Vec::new();
    let result = fetched
        .and_then(|f| f.into_body(&p.buffers))
        .and_then(|(body, format)| {
            buf = body;
            st.cache
                .append_body(&buf, format, ts, app.as_mut(), &p.opts)
        });
    p.buffers.put(buf);
    let dur = started.elapsed();
    let mut scraped = 0;
    let outcome = match result.and_then(|stats| {
        scraped = stats.scraped;
        st.report
            .append(app.as_mut(), ts, true, dur.as_secs_f64(), &stats)
    }) {
        Ok(()) => {
            let (back, r) = commit(p, app).await;
            app = back;
            r
        }
        Err(e) => Err(e),
    };
    let err = match outcome {
        Ok(()) => {
            // Committed: the appender holds no batch.
            p.commit_slots.put_back(&p.appendable, app, scraped);
            None
        }
        Err(e) => {
            app.rollback();
            p.metrics.scrape_failed(&e);
            let mut app = p.appendable.appender_unsynced();
            let r = st
                .cache
                .mark_all_stale(ts, app.as_mut(), &p.opts)
                .and_then(|_| {
                    st.report.append(
                        app.as_mut(),
                        ts,
                        false,
                        dur.as_secs_f64(),
                        &AppendStats::default(),
                    )
                });
            let r = match r {
                Ok(()) => {
                    let (back, r) = commit(p, app).await;
                    app = back;
                    r
                }
                Err(e) => Err(e),
            };
            if let Err(e2) = r {
                app.rollback();
                tracing::warn!(target = %p.target.url, error = %e2, "cannot record failed scrape");
            }
            Some(e.to_string())
        }
    };
    drop(slot);
    if let Some(m) = st.cache.take_metadata_update_shared(&p.buffers.metadata) {
        *p.target.metadata.lock() = m;
    }
    let mut s = p.target.status.lock();
    s.last_scrape = Some(wall);
    s.last_duration = dur;
    match err {
        None => {
            s.health = Health::Up;
            s.last_error.clear();
        }
        Some(e) => {
            tracing::debug!(target = %p.target.url, error = %e, "scrape failed");
            s.health = Health::Down;
            s.last_error = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_delay_within_interval() {
        let iv = Duration::from_secs(15);
        for h in [0u64, 1, 12_345, u64::MAX] {
            assert!(start_delay(h, iv) < iv);
        }
        // Different hashes spread out.
        let a = start_delay(1_000, iv);
        let b = start_delay(8_000, iv);
        assert_ne!(a, b);
    }
}
