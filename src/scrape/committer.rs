//! [`CommitSlots`]: the scrape loops' commit slots and the threads that run their commits.
//!
//! A loop takes a slot after its fetch, fills an appender, and hands it to one of
//! [`COMMIT_THREADS`] threads to commit, awaiting the answer; so at most [`COMMIT_SLOTS`] loops
//! hold a filled appender or commit at a time (see `scrape_loop::commit`).
//!
//! Commits used to run under `tokio::task::block_in_place`, which hands the blocked worker's
//! queue to another thread each time: 400 targets every 5 s kept 20–30 threads cycling through
//! the worker role, and each of them allocated head series, labels and chunk buffers in its own
//! allocator heap (mimalloc keeps partly used pages per thread and size class). With the
//! commits on their own threads, the workers stay the runtime's own few threads.

use argus_storage::{Appender, Error as StorageError};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::mpsc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Scrapes appending and committing at once, per manager.
pub const COMMIT_SLOTS: usize = 4;
/// Threads that run the commits: one per slot, so a slot's commit never waits for a thread.
pub const COMMIT_THREADS: usize = COMMIT_SLOTS;

/// An appender and the answer to send once it is committed.
type Job = (
    Box<dyn Appender>,
    oneshot::Sender<(Box<dyn Appender>, Result<(), StorageError>)>,
);

/// Commit slots and the commit threads, shared by a manager's loops.
pub struct CommitSlots {
    // Immutable after construction.
    /// Bounds the loops holding a filled appender.
    slots: Arc<Semaphore>,
    /// Jobs for the commit threads; the threads end when this is dropped.
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for CommitSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitSlots")
            .field("available", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

impl Default for CommitSlots {
    fn default() -> Self {
        Self::new()
    }
}

impl CommitSlots {
    /// [`COMMIT_SLOTS`] slots and [`COMMIT_THREADS`] threads (`argus-scrape-commit`). A thread
    /// that cannot be started leaves the others to do the work; with none, commits run on the
    /// caller's thread (see [`CommitSlots::commit`]).
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..COMMIT_THREADS {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name("argus-scrape-commit".into())
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for a job, never during a commit.
                        let job = rx.lock().recv();
                        let Ok((mut app, answer)) = job else {
                            return;
                        };
                        let r = app.commit();
                        // The loop may be gone (shutdown); the appender is dropped then.
                        let _ = answer.send((app, r));
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(thread = i, error = %e, "cannot start a scrape commit thread");
            }
        }
        Self {
            slots: Arc::new(Semaphore::new(COMMIT_SLOTS)),
            jobs: tx,
        }
    }

    /// Waits for a free slot; it is held until the permit is dropped.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }

    /// Commits `app` on a commit thread and gives it back with the result. Without commit
    /// threads (none could be started) it commits on this thread, under
    /// `ingest::blocking`.
    pub async fn commit(
        &self,
        app: Box<dyn Appender>,
    ) -> (Box<dyn Appender>, Result<(), StorageError>) {
        let (tx, rx) = oneshot::channel();
        let mut app = match self.jobs.send((app, tx)) {
            Ok(()) => match rx.await {
                Ok(done) => return done,
                // Unreachable while a thread is alive: it answers every job it takes.
                Err(_) => unreachable!("BUG: a scrape commit thread dropped a job"),
            },
            Err(mpsc::SendError((app, _))) => app,
        };
        let r = crate::ingest::blocking(|| app.commit());
        (app, r)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use argus_storage::{Labels, SeriesRef, Timestamp};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts commits and records the thread each ran on.
    struct Counting {
        commits: Arc<AtomicUsize>,
        threads: Arc<Mutex<Vec<String>>>,
    }

    impl Appender for Counting {
        fn append(
            &mut self,
            _series: Option<SeriesRef>,
            _labels: &Labels,
            _t: Timestamp,
            _v: f64,
        ) -> Result<SeriesRef, StorageError> {
            Ok(SeriesRef(1))
        }

        fn commit(&mut self) -> Result<(), StorageError> {
            self.commits.fetch_add(1, Ordering::SeqCst);
            let name = std::thread::current().name().unwrap_or("").to_owned();
            self.threads.lock().push(name);
            Ok(())
        }

        fn rollback(&mut self) {}
    }

    #[tokio::test(flavor = "current_thread")]
    async fn commits_run_on_the_commit_threads_and_return_the_appender() {
        let slots = CommitSlots::new();
        let commits = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..10 {
            let permit = slots.acquire().await.unwrap();
            let app = Box::new(Counting {
                commits: Arc::clone(&commits),
                threads: Arc::clone(&threads),
            });
            let (_app, r) = slots.commit(app).await;
            assert!(r.is_ok());
            drop(permit);
        }
        assert_eq!(commits.load(Ordering::SeqCst), 10);
        let threads = threads.lock();
        assert_eq!(threads.len(), 10);
        assert!(
            threads.iter().all(|t| t == "argus-scrape-commit"),
            "ran on {threads:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn slots_bound_the_loops_holding_an_appender() {
        let slots = CommitSlots::new();
        let mut held = Vec::new();
        for _ in 0..COMMIT_SLOTS {
            held.push(slots.acquire().await.unwrap());
        }
        let more = tokio::time::timeout(std::time::Duration::ZERO, slots.acquire()).await;
        assert!(more.is_err(), "a fifth slot while four are held");
        held.pop();
        assert!(slots.acquire().await.is_some());
    }
}
