//! Threads that run the remote-write receivers' decode, append and commit, the most recently
//! idle thread first.
//!
//! Each keeps its [`super::scratch`] (decoder and appender) between requests. tokio's blocking
//! pool wakes its idle threads in turn, so with it every thread of the pool (about 10 during an
//! ingest) ended up keeping a scratch: +2 to +17 MiB of peak RSS (`benches/README.md`,
//! "ingest5").
//! Here a request goes to the thread that finished last, so only as many threads keep one as
//! requests run at once. At most [`MAX_THREADS`] are started; they live as long as the process
//! and wait idle on their own channel, dropping their scratch after [`RELEASE_AFTER`]. When
//! none is idle and none may be started, a request runs on tokio's blocking pool as before.

use parking_lot::Mutex;
use std::sync::mpsc;

/// Most write threads started (the handler's `append_slots` bounds the requests running at
/// once to 4 per core, at least 8).
pub const MAX_THREADS: usize = 16;

/// A thread idle this long drops its scratch ([`super::scratch::release`]), so the memory of
/// a burst's buffers is not kept once the burst is over.
pub const RELEASE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// A job: runs, and returns what delivers its result (called once its thread is idle again).
type Job = Box<dyn FnOnce() -> Deliver + Send>;
type Deliver = Box<dyn FnOnce() + Send>;

/// Write threads: the idle ones (a stack: the last one pushed is the next used).
pub struct Pool {
    max: usize,
    /// Idle threads' job channels, and how many threads were started.
    idle: Mutex<(Vec<mpsc::Sender<Job>>, usize)>,
}

/// Why [`Pool::run`] gave no result.
#[derive(Debug, thiserror::Error)]
#[error("the write job panicked")]
pub struct Panicked;

/// The process's pool.
pub fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| Pool::new(MAX_THREADS))
}

impl Pool {
    /// A pool that starts at most `max` threads.
    pub const fn new(max: usize) -> Self {
        Self {
            max,
            idle: Mutex::new((Vec::new(), 0)),
        }
    }

    /// Threads started so far.
    pub fn threads(&self) -> usize {
        self.idle.lock().1
    }

    /// Runs `f` on a write thread (the most recently idle one, or a new one) and returns its
    /// result; `Err` when it panicked. The thread is idle again before the result arrives.
    /// Falls back to `tokio::task::spawn_blocking` when `max` threads are busy or a thread
    /// cannot be started. `f` runs to its end even when the returned future is dropped.
    pub async fn run<R: Send + 'static>(
        &'static self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Panicked> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            Box::new(move || {
                let _ = tx.send(r.map_err(|_| Panicked));
            })
        });
        match self.dispatch(job) {
            Ok(()) => {}
            Err(job) => {
                if tokio::task::spawn_blocking(move || job()()).await.is_err() {
                    return Err(Panicked);
                }
            }
        }
        rx.await.unwrap_or(Err(Panicked))
    }

    /// Hands `job` to the most recently idle thread or a new one; gives it back when neither
    /// is possible.
    fn dispatch(&'static self, mut job: Job) -> Result<(), Job> {
        loop {
            let mut g = self.idle.lock();
            match g.0.pop() {
                Some(t) => {
                    drop(g);
                    match t.send(job) {
                        Ok(()) => return Ok(()),
                        // Its thread is gone (they never end, so unreachable); the next one.
                        Err(mpsc::SendError(j)) => job = j,
                    }
                }
                None if g.1 < self.max => {
                    g.1 += 1;
                    drop(g);
                    return self.start(job).inspect_err(|_| self.idle.lock().1 -= 1);
                }
                None => return Err(job),
            }
        }
    }

    /// Starts a thread and gives it `job`.
    fn start(&'static self, job: Job) -> Result<(), Job> {
        let (tx, rx) = mpsc::channel::<Job>();
        let back = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("argus-write".into())
            .spawn(move || {
                let next = || match rx.recv_timeout(RELEASE_AFTER) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        super::scratch::release();
                        rx.recv().ok()
                    }
                    r => r.ok(),
                };
                while let Some(job) = next() {
                    let deliver = job();
                    self.idle.lock().0.push(back.clone());
                    deliver();
                }
            });
        match spawned {
            Ok(_) => tx.send(job).map_err(|mpsc::SendError(j)| j),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a remote-write thread");
                Err(job)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_runs_on_the_most_recently_idle_write_thread() {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new(3)));
        let id = || {
            let t = std::thread::current();
            (t.name().map(str::to_string), t.id())
        };
        let first = pool.run(id).await.unwrap();
        assert_eq!(first.0.as_deref(), Some("argus-write"));
        for _ in 0..20 {
            assert_eq!(
                pool.run(id).await.unwrap(),
                first,
                "sequential jobs share a thread"
            );
        }
        assert_eq!(pool.threads(), 1);
        // Three at once: three threads, the pool's maximum.
        let gate = std::sync::Arc::new(std::sync::Barrier::new(3));
        let jobs: Vec<_> = (0..3)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(pool.run(move || {
                    gate.wait();
                    id()
                }))
            })
            .collect();
        let mut ids = Vec::new();
        for j in jobs {
            ids.push(j.await.unwrap().unwrap().1);
        }
        ids.sort_by_key(|t| format!("{t:?}"));
        ids.dedup();
        assert_eq!((ids.len(), pool.threads()), (3, 3));
        // Beyond the maximum: tokio's blocking pool takes the job.
        let gate = std::sync::Arc::new(std::sync::Barrier::new(4));
        let jobs: Vec<_> = (0..4)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(pool.run(move || {
                    gate.wait();
                    id().0
                }))
            })
            .collect();
        let mut names = Vec::new();
        for j in jobs {
            names.push(j.await.unwrap().unwrap());
        }
        names.sort();
        assert_eq!(
            names
                .iter()
                .filter(|n| n.as_deref() == Some("argus-write"))
                .count(),
            3
        );
        assert_eq!(pool.threads(), 3);
        // A panicking job is an error, and its thread stays.
        assert!(matches!(pool.run(|| panic!("boom")).await, Err(Panicked)));
        assert_eq!(
            pool.run(id).await.unwrap().0.as_deref(),
            Some("argus-write")
        );
        assert_eq!(pool.threads(), 3);
    }
}
