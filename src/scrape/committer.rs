//! [`CommitSlots`]: the scrape loops' commit slots and the threads that run their commits.
//!
//! A loop takes a slot after its fetch, fills an appender, and hands it to one of
//! [`COMMIT_THREADS`] threads to commit, awaiting the answer; so at most [`COMMIT_SLOTS`] loops
//! hold a filled appender or commit at a time (see `scrape_loop::commit`).
//!
//! Each thread has its own queue, and a loop always hands its commits to the same thread (by a
//! key, the target's hash): the threads used to share one queue behind a mutex, and a job woke
//! the thread waiting on the queue and then, at that thread's unlock, the next thread waiting
//! for the mutex (~3 % of the scrape CPU of 400 targets were these waits and wakes, benches/README.md
//! "scrape6"). A target's commits on one thread also grow its series' chunk buffers in that
//! thread's allocator heap only (scrapemem5's one-thread finding, kept with four threads).
//! Each thread has its own slot too, taken by the loops whose commits it runs: a commit that
//! takes long (a slow disk under the WAL) holds up only its thread's quarter of the targets,
//! not every slot with loops queued behind it.
//!
//! Commits used to run under `tokio::task::block_in_place`, which hands the blocked worker's
//! queue to another thread each time: 400 targets every 5 s kept 20–30 threads cycling through
//! the worker role, and each of them allocated head series, labels and chunk buffers in its own
//! allocator heap (mimalloc keeps partly used pages per thread and size class). With the
//! commits on their own threads, the workers stay the runtime's own few threads.
//!
//! The slots also keep the appenders their commits gave back ([`CommitSlots::appender`],
//! [`CommitSlots::put_back`]): a head appender keeps its batch map and WAL buffers across
//! commits, where one made per scrape grew them from empty every time (the map's rehashes alone
//! were ~3 % of the CPU of 400 targets × 1,000 series, benches/README.md "scrape4").

use argus_storage::{Appendable, Appender, Error as StorageError};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::mpsc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Scrapes appending and committing at once, per manager.
pub const COMMIT_SLOTS: usize = 4;
/// Threads that run the commits: one per slot, so a slot's commit never waits for a thread.
pub const COMMIT_THREADS: usize = COMMIT_SLOTS;
const _: () = assert!(
    COMMIT_SLOTS.is_multiple_of(COMMIT_THREADS),
    "BUG: each commit thread has the same number of slots"
);
/// Appenders of scrapes with more samples than this are dropped rather than kept for the next
/// scrape, so that one large target does not leave batch buffers of its size behind.
pub const MAX_KEPT_SAMPLES: u64 = 100_000;

/// An appender and the answer to send once it is committed.
type Job = (
    Box<dyn Appender>,
    oneshot::Sender<(Box<dyn Appender>, Result<(), StorageError>)>,
);

/// Commit slots and the commit threads, shared by a manager's loops.
pub struct CommitSlots {
    // Immutable after construction.
    /// Bound the loops holding a filled appender: one semaphore per commit thread (`jobs`,
    /// same index) with its share of [`COMMIT_SLOTS`], or one with all of them when no thread
    /// could be started.
    slots: Vec<Arc<Semaphore>>,
    /// One queue per running commit thread; a thread ends when its sender is dropped. Empty
    /// when no thread could be started.
    jobs: Vec<mpsc::Sender<Job>>,
    /// Appenders given back after a commit or rollback, empty, each with the storage it appends
    /// to (only an appender of the same storage is handed out again). At most
    /// [`COMMIT_SLOTS`]: only a slot holder takes or gives one back.
    idle: Mutex<Vec<Kept>>,
}

/// An appender kept for the next scrape, and the storage it appends to.
type Kept = (Arc<dyn Appendable>, Box<dyn Appender>);

impl std::fmt::Debug for CommitSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitSlots")
            .field(
                "available",
                &self
                    .slots
                    .iter()
                    .map(|s| s.available_permits())
                    .sum::<usize>(),
            )
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
        let mut jobs = Vec::with_capacity(COMMIT_THREADS);
        for i in 0..COMMIT_THREADS {
            let (tx, rx) = mpsc::channel::<Job>();
            let spawned = std::thread::Builder::new()
                .name("argus-scrape-commit".into())
                .spawn(move || {
                    // Ends when the sender is dropped.
                    while let Ok((mut app, answer)) = rx.recv() {
                        let r = app.commit();
                        // The loop may be gone (shutdown); the appender is dropped then.
                        let _ = answer.send((app, r));
                    }
                });
            match spawned {
                Ok(_) => jobs.push(tx),
                Err(e) => {
                    tracing::warn!(thread = i, error = %e, "cannot start a scrape commit thread");
                }
            }
        }
        let slots = if jobs.is_empty() {
            vec![Arc::new(Semaphore::new(COMMIT_SLOTS))]
        } else {
            (0..jobs.len())
                .map(|_| Arc::new(Semaphore::new(COMMIT_SLOTS / COMMIT_THREADS)))
                .collect()
        };
        Self {
            slots,
            jobs,
            idle: Mutex::new(Vec::with_capacity(COMMIT_SLOTS)),
        }
    }

    /// An empty appender to `storage`: one given back by [`CommitSlots::put_back`] when there
    /// is one, else `storage.appender_unsynced()` (scrape commits are not synced; see
    /// `scrape_loop::scrape_once`). For slot holders.
    pub fn appender(&self, storage: &Arc<dyn Appendable>) -> Box<dyn Appender> {
        let mut idle = self.idle.lock();
        match idle.iter().rposition(|(s, _)| Arc::ptr_eq(s, storage)) {
            Some(i) => idle.swap_remove(i).1,
            None => {
                drop(idle);
                storage.appender_unsynced()
            }
        }
    }

    /// Keeps `app`, an appender to `storage` from [`CommitSlots::appender`] that has just
    /// committed or rolled back (so it holds no batch), for the next scrape; it is dropped
    /// instead when `samples` (what its batch held) is over [`MAX_KEPT_SAMPLES`] or
    /// [`COMMIT_SLOTS`] are kept already.
    pub fn put_back(&self, storage: &Arc<dyn Appendable>, app: Box<dyn Appender>, samples: u64) {
        if samples > MAX_KEPT_SAMPLES {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < COMMIT_SLOTS {
            idle.push((Arc::clone(storage), app));
        }
    }

    /// Waits for a free slot of `key`'s commit thread (the key later given to
    /// [`CommitSlots::commit`]); it is held until the permit is dropped.
    pub async fn acquire(&self, key: u64) -> Option<OwnedSemaphorePermit> {
        let slots = self.slots.get(index(key, self.slots.len())?)?;
        Arc::clone(slots).acquire_owned().await.ok()
    }

    /// Commits `app` on the commit thread of `key` (the same thread for the same key, so a
    /// loop passes its target's hash) and gives it back with the result. Without commit
    /// threads (none could be started) it commits on this thread, under `ingest::blocking`.
    pub async fn commit(
        &self,
        app: Box<dyn Appender>,
        key: u64,
    ) -> (Box<dyn Appender>, Result<(), StorageError>) {
        let mut app = app;
        if let Some(jobs) = self.thread_of(key) {
            let (tx, rx) = oneshot::channel();
            match jobs.send((app, tx)) {
                Ok(()) => match rx.await {
                    Ok(done) => return done,
                    // Unreachable while the thread is alive: it answers every job it takes.
                    Err(_) => unreachable!("BUG: a scrape commit thread dropped a job"),
                },
                // The thread is gone (it panicked in a commit): commit here.
                Err(mpsc::SendError((back, _))) => app = back,
            }
        }
        let r = crate::ingest::blocking(|| app.commit());
        (app, r)
    }

    /// The queue of `key`'s commit thread.
    fn thread_of(&self, key: u64) -> Option<&mpsc::Sender<Job>> {
        self.jobs.get(index(key, self.jobs.len())?)
    }
}

/// `key`'s place among `n` threads or slots; `None` when `n` is 0.
fn index(key: u64, n: usize) -> Option<usize> {
    usize::try_from(key.checked_rem(u64::try_from(n).ok()?)?).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use argus_storage::{Labels, SeriesRef, Timestamp};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Records the thread each commit ran on (their number is the number of commits).
    struct Recording(Arc<Mutex<Vec<std::thread::Thread>>>);

    impl Appender for Recording {
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
            self.0.lock().push(std::thread::current());
            Ok(())
        }

        fn rollback(&mut self) {}
    }

    #[tokio::test(flavor = "current_thread")]
    async fn commits_run_on_the_commit_threads_and_return_the_appender() {
        let slots = CommitSlots::new();
        let threads = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..10 {
            let permit = slots.acquire(7).await.unwrap();
            let app = Box::new(Recording(Arc::clone(&threads)));
            let (_app, r) = slots.commit(app, 7).await;
            assert!(r.is_ok());
            drop(permit);
        }
        let threads = threads.lock();
        assert_eq!(threads.len(), 10);
        assert!(
            threads
                .iter()
                .all(|t| t.name() == Some("argus-scrape-commit")),
            "ran on {threads:?}"
        );
    }

    /// Concurrent commits of one key all run on one thread; the keys `0..COMMIT_THREADS` use
    /// every thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_keys_commits_always_run_on_its_own_thread() {
        let slots = Arc::new(CommitSlots::new());
        let keys = u64::try_from(COMMIT_THREADS).unwrap();
        let mut tasks = Vec::new();
        let mut seen = Vec::new();
        for key in 0..2 * keys {
            let ids = Arc::new(Mutex::new(Vec::new()));
            seen.push((key, Arc::clone(&ids)));
            for _ in 0..4 {
                let slots = Arc::clone(&slots);
                let ids = Arc::clone(&ids);
                tasks.push(tokio::spawn(async move {
                    for _ in 0..10 {
                        let permit = slots.acquire(key).await.unwrap();
                        let (_app, r) = slots
                            .commit(Box::new(Recording(Arc::clone(&ids))), key)
                            .await;
                        assert!(r.is_ok());
                        drop(permit);
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut thread_of = std::collections::HashMap::new();
        for (key, ids) in &seen {
            let ids: Vec<_> = ids.lock().iter().map(std::thread::Thread::id).collect();
            assert_eq!(ids.len(), 40, "key {key}");
            assert!(
                ids.iter().all(|id| *id == ids[0]),
                "key {key} ran on {ids:?}"
            );
            assert_ne!(ids[0], std::thread::current().id());
            thread_of.insert(*key, ids[0]);
        }
        let distinct: std::collections::HashSet<_> = (0..keys).map(|k| thread_of[&k]).collect();
        assert_eq!(distinct.len(), COMMIT_THREADS, "{thread_of:?}");
        for k in 0..keys {
            assert_eq!(
                thread_of[&k],
                thread_of[&(k + keys)],
                "key {k} and {}",
                k + keys
            );
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn slots_bound_the_loops_holding_an_appender() {
        let slots = CommitSlots::new();
        let keys = u64::try_from(COMMIT_THREADS).unwrap();
        let now = |key| tokio::time::timeout(std::time::Duration::ZERO, slots.acquire(key));
        // A thread's slot held (its commit slow) holds up its keys only.
        let first = slots.acquire(0).await.unwrap();
        assert!(now(keys).await.is_err(), "key {keys} shares key 0's thread");
        let mut held = vec![first];
        for key in 1..keys {
            held.push(now(key).await.expect("another thread's slot").unwrap());
        }
        for key in 0..2 * keys {
            assert!(
                now(key).await.is_err(),
                "a fifth slot while four are held (key {key})"
            );
        }
        assert_eq!(held.len(), COMMIT_SLOTS);
        held.pop();
        assert!(now(2 * keys - 1).await.is_ok());
    }

    /// Hands out `Recording` appenders and keeps each one's record.
    #[derive(Default)]
    struct Maker {
        made: Mutex<Vec<Arc<Mutex<Vec<std::thread::Thread>>>>>,
        synced: AtomicUsize,
    }

    impl Maker {
        fn counting(&self) -> Box<dyn Appender> {
            let commits = Arc::default();
            self.made.lock().push(Arc::clone(&commits));
            Box::new(Recording(commits))
        }
        /// Commits of each appender made so far, in the order they were made.
        fn commits(&self) -> Vec<usize> {
            self.made.lock().iter().map(|c| c.lock().len()).collect()
        }
    }

    impl Appendable for Maker {
        fn appender(&self) -> Box<dyn Appender> {
            self.synced.fetch_add(1, Ordering::SeqCst);
            self.counting()
        }
        fn appender_unsynced(&self) -> Box<dyn Appender> {
            self.counting()
        }
    }

    #[test]
    fn appenders_given_back_are_handed_out_again_for_their_storage_only() {
        let slots = CommitSlots::new();
        let maker = Arc::new(Maker::default());
        let one: Arc<dyn Appendable> = maker.clone();
        let other_maker = Arc::new(Maker::default());
        let other: Arc<dyn Appendable> = other_maker.clone();

        // Nothing kept yet: a new unsynced appender.
        let mut a = slots.appender(&one);
        a.commit().unwrap();
        slots.put_back(&one, a, 1_000);
        assert_eq!(maker.commits(), vec![1]);
        assert_eq!(maker.synced.load(Ordering::SeqCst), 0);

        // The kept one comes back for its storage; another storage gets its own.
        let mut b = slots.appender(&other);
        b.commit().unwrap();
        assert_eq!(other_maker.commits(), vec![1]);
        let mut a = slots.appender(&one);
        a.commit().unwrap();
        assert_eq!(maker.commits(), vec![2], "the kept appender, not a new one");
        slots.put_back(&other, b, 1_000);

        // An appender whose batch held more than the bound is not kept.
        slots.put_back(&one, a, MAX_KEPT_SAMPLES + 1);
        let mut a = slots.appender(&one);
        a.commit().unwrap();
        assert_eq!(maker.commits(), vec![2, 1]);
        drop(a);

        // At most one per slot is kept.
        let taken: Vec<_> = (0..COMMIT_SLOTS + 1)
            .map(|_| slots.appender(&one))
            .collect();
        assert_eq!(maker.commits().len(), 3 + COMMIT_SLOTS);
        for a in taken {
            slots.put_back(&one, a, 0);
        }
        let before = maker.commits().len();
        let again: Vec<_> = (0..COMMIT_SLOTS + 1)
            .map(|_| slots.appender(&one))
            .collect();
        // `other`'s kept appender took one of the places: COMMIT_SLOTS - 1 of `one`'s were kept.
        assert_eq!(maker.commits().len(), before + 2);
        drop(again);
        let mut b = slots.appender(&other);
        b.commit().unwrap();
        assert_eq!(other_maker.commits(), vec![2]);
    }
}
