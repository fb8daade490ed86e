//! Group commit: batches are written under the WAL's lock and synced outside it, one `fsync`
//! covering every batch written before it started.
//!
//! Each batch written takes the next sequence number (`seq`). A committer that needs its batch
//! durable holds a [`SyncTicket`] and calls [`SyncTicket::wait`] after releasing the WAL's lock:
//! it returns once a sync that started after the batch was written has succeeded. One waiter at
//! a time is the syncer: it reads the newest `seq` and the current segment, syncs that segment
//! with no lock held, and publishes `done`; every waiter with `seq <= done` returns. So N
//! concurrent commits share one `fdatasync`, and no commit is acknowledged before its data is
//! synced. Syncs the WAL makes itself under its lock (segment cut, [`super::Wal::sync`]) take
//! the same syncer role, so at most one sync is in flight and results are published in order.
//!
//! Segments before the current one are always synced whole (the WAL syncs a segment before it
//! starts the next), so syncing the current segment covers every earlier batch.
//!
//! A failed sync poisons the group: every waiter whose batch is not yet synced gets the error,
//! and the WAL's next writer recovers (truncates the segment back to the end of the last synced
//! batch, `done_end`, and starts a new one). Batches between `done` and the newest written batch
//! at that moment are lost: their waiters fail, and later syncs never acknowledge them (recovery
//! starts a new epoch; a sync begun in an older epoch publishes nothing).

use super::WalMetrics;
use super::segment::SegmentFile;
use super::watch::WalPosition;
use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// The sync coordination of one WAL, shared by its writer and the committers waiting for syncs.
pub(crate) struct GroupSync {
    // Immutable after construction.
    /// `fsync` (data and metadata) rather than `fdatasync`.
    all: bool,
    /// Sync counters and the failure shown to readiness.
    metrics: Arc<WalMetrics>,
    /// Everything else.
    state: Mutex<State>,
    /// Signalled (`notify_all`) whenever a sync finishes or the state is reset.
    cond: Condvar,
}

/// Guarded by [`GroupSync::state`].
struct State {
    /// The segment being written, and its path for errors.
    file: Arc<dyn SegmentFile>,
    path: PathBuf,
    /// Sequence number of the newest batch written; its end.
    written: u64,
    written_end: WalPosition,
    /// Sequence number of the newest batch written that needs a sync.
    need: u64,
    /// Every batch up to `done` is complete: synced if it needed a sync, or lost (see `lost`).
    done: u64,
    /// End of the last complete batch: where a recovery truncates, and the readable end.
    done_end: WalPosition,
    /// A syncer is syncing (outside the lock).
    syncing: bool,
    /// Set by a failed sync until recovery: unsynced batches cannot become durable.
    failed: Option<Failure>,
    /// Bumped by each recovery; a sync begun in an older epoch publishes nothing.
    epoch: u64,
    /// `(after, upto, why)`: batches `after < seq <= upto` that a recovery dropped. Short: one
    /// entry per recovery that dropped anything (a failed disk write or sync).
    lost: Vec<(u64, u64, Failure)>,
}

/// A failed I/O call, kept to hand every affected waiter an equivalent error.
#[derive(Clone, Debug)]
struct Failure {
    context: String,
    kind: io::ErrorKind,
    raw: Option<i32>,
    message: String,
}

impl Failure {
    fn new(context: String, e: &io::Error) -> Self {
        Self {
            context,
            kind: e.kind(),
            raw: e.raw_os_error(),
            message: e.to_string(),
        }
    }

    fn error(&self) -> Error {
        let source = match self.raw {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(self.kind, self.message.clone()),
        };
        Error::io(self.context.clone(), source)
    }
}

/// First sequence number handed out; `done` starts below it, at [`REPLAYED`].
const FIRST_SEQ: u64 = 2;
/// The sequence number of what the WAL held when it was opened (always durable).
const REPLAYED: u64 = FIRST_SEQ - 1;

/// A written batch's claim on a sync. Returned by [`super::Wal::log_records`]; call
/// [`SyncTicket::wait`] after releasing the WAL's lock.
#[must_use = "a batch is durable only once its ticket's wait returns Ok"]
pub(crate) struct SyncTicket {
    /// The group to wait on; `None` when the batch needs no sync.
    group: Option<Arc<GroupSync>>,
    seq: u64,
}

impl SyncTicket {
    /// A ticket for batch `seq` that waits on `group` (`None`: nothing to wait for).
    pub(crate) fn new(group: Option<Arc<GroupSync>>, seq: u64) -> Self {
        Self { group, seq }
    }

    /// A ticket that needs no waiting.
    pub(crate) fn none() -> Self {
        Self {
            group: None,
            seq: 0,
        }
    }

    /// Blocks until the batch is durable per the WAL's [`super::SyncMode`] (`Ok`), or a failed
    /// sync or write means it never will be (`Err`). May sync the WAL itself. Call it without
    /// the WAL's lock, so that other commits can write meanwhile and share the sync.
    pub(crate) fn wait(self) -> Result<()> {
        match &self.group {
            Some(g) => g.wait(self.seq),
            None => Ok(()),
        }
    }
}

impl GroupSync {
    /// Coordination for a WAL whose current segment is `file` at `path`, ending at `end`.
    pub(crate) fn new(
        file: Arc<dyn SegmentFile>,
        path: PathBuf,
        end: WalPosition,
        all: bool,
        metrics: Arc<WalMetrics>,
    ) -> Self {
        Self {
            all,
            metrics,
            state: Mutex::new(State {
                file,
                path,
                written: REPLAYED,
                written_end: end,
                need: REPLAYED,
                done: REPLAYED,
                done_end: end,
                syncing: false,
                failed: None,
                epoch: 0,
                lost: Vec::new(),
            }),
            cond: Condvar::new(),
        }
    }

    /// Records a batch just written (call under the WAL's lock, after the write succeeded) that
    /// ends at `end`; returns its sequence number. A batch that needs no sync is complete at
    /// once unless a batch before it still waits for a sync.
    pub(crate) fn wrote(&self, end: WalPosition, need_sync: bool) -> u64 {
        let mut st = self.state.lock();
        st.written += 1;
        st.written_end = end;
        if need_sync {
            st.need = st.written;
        } else if st.need <= st.done {
            st.done = st.written;
            st.done_end = end;
        }
        st.written
    }

    /// The end of the last batch written, synced or not: where a WAL reader's reading stops
    /// (past it the current segment holds the zeros written ahead, see `Wal::preallocate`).
    /// Set after the write succeeded, and to the new segment's first frame only once the old
    /// segment is trimmed and synced.
    pub(crate) fn written_end(&self) -> WalPosition {
        self.state.lock().written_end
    }

    /// The end of the last complete batch (see [`super::Wal::end_position`]).
    pub(crate) fn done_end(&self) -> WalPosition {
        self.state.lock().done_end
    }

    /// True after a failed sync, until recovery.
    pub(crate) fn poisoned(&self) -> bool {
        self.state.lock().failed.is_some()
    }

    /// Syncs every batch written so far now (the WAL's own syncs: segment cut, `Wal::sync`;
    /// call under the WAL's lock). Waits for a running sync first. Fails at once when poisoned.
    pub(crate) fn sync_now(&self) -> Result<()> {
        let mut st = self.state.lock();
        self.wait_for_no_sync(&mut st)?;
        let target = st.written;
        self.sync_once(&mut st);
        match &st.failed {
            Some(f) => Err(f.error()),
            None if st.done >= target => Ok(()),
            // Only a recovery (which needs the WAL's lock, held by our caller) moves the epoch.
            None => unreachable!("BUG: a sync succeeded without completing the batches before it"),
        }
    }

    /// Syncs every batch written so far, also those that asked for no sync, without the WAL's
    /// lock (a head snapshot calls it before it takes the lock to cut the segment, so that the
    /// cut's own sync covers only the batches written in between). Waits for a running sync
    /// first; as a committer's wait, it publishes only what its sync covered. Fails at once
    /// when poisoned.
    pub(crate) fn sync_ahead(&self) -> Result<()> {
        let mut st = self.state.lock();
        self.wait_for_no_sync(&mut st)?;
        self.sync_once(&mut st);
        match &st.failed {
            Some(f) => Err(f.error()),
            None => Ok(()),
        }
    }

    /// Waits until batch `seq` is complete, syncing when no one else is.
    fn wait(&self, seq: u64) -> Result<()> {
        let mut st = self.state.lock();
        loop {
            if let Some((_, _, why)) = st.lost.iter().find(|(a, b, _)| *a < seq && seq <= *b) {
                return Err(why.error());
            }
            if st.done >= seq {
                return Ok(());
            }
            if let Some(f) = &st.failed {
                return Err(f.error());
            }
            if st.syncing {
                self.cond.wait(&mut st);
            } else {
                self.sync_once(&mut st);
            }
        }
    }

    /// As the syncer: syncs the current segment without the lock and publishes the result.
    /// Requires `!st.syncing`.
    /// Waits until no sync is running; fails at once when poisoned (also when it becomes so
    /// while waiting).
    fn wait_for_no_sync(&self, st: &mut MutexGuard<'_, State>) -> Result<()> {
        loop {
            if let Some(f) = &st.failed {
                return Err(f.error());
            }
            if !st.syncing {
                return Ok(());
            }
            self.cond.wait(st);
        }
    }

    fn sync_once(&self, st: &mut MutexGuard<'_, State>) {
        st.syncing = true;
        let (file, target, end, epoch) = (st.file.clone(), st.written, st.written_end, st.epoch);
        let r = MutexGuard::unlocked(st, || timed_sync(&*file, self.all, &self.metrics));
        st.syncing = false;
        if st.epoch == epoch && st.failed.is_none() {
            match r {
                Ok(()) => {
                    if target > st.done {
                        st.done = target;
                        st.done_end = end;
                    }
                    healthy(&self.metrics);
                }
                Err(e) => {
                    let f = Failure::new(
                        format!("cannot fsync WAL segment {}", st.path.display()),
                        &e,
                    );
                    *self.metrics.failing.lock() = Some(f.error().to_string());
                    st.failed = Some(f);
                }
            }
        }
        self.cond.notify_all();
    }

    /// Starts a recovery (under the WAL's lock, after a failed write or sync): every batch not
    /// yet complete is lost, and no sync begun before now may publish. Returns the offset in the
    /// current segment to truncate to, and whether any batch was lost.
    pub(crate) fn begin_recovery(&self, why: &str) -> (u64, bool) {
        let mut st = self.state.lock();
        st.epoch += 1;
        let lost = st.written > st.done;
        if lost {
            let f = st.failed.clone().unwrap_or_else(|| {
                Failure::new(
                    format!("WAL batch dropped ({why})"),
                    &io::Error::other("a write after it failed before it was synced"),
                )
            });
            let (after, upto) = (st.done, st.written);
            st.lost.push((after, upto, f));
            st.done = st.written;
        }
        st.need = st.done;
        self.cond.notify_all();
        (st.done_end.offset, lost)
    }

    /// Ends a recovery: syncs may succeed again.
    pub(crate) fn end_recovery(&self) {
        self.state.lock().failed = None;
    }

    /// The WAL started segment `file` at `path` (every earlier batch is complete: synced, or
    /// lost by a recovery), whose frames start at `end`.
    pub(crate) fn switch_file(&self, file: Arc<dyn SegmentFile>, path: PathBuf, end: WalPosition) {
        let mut st = self.state.lock();
        assert!(
            st.done == st.written || st.failed.is_some(),
            "BUG: new WAL segment while batches {}..={} of the old one wait for a sync",
            st.done + 1,
            st.written
        );
        st.file = file;
        st.path = path;
        st.written_end = end;
        st.done_end = end;
    }

    /// Records a failed sync made outside [`GroupSync::sync_now`] (recovery's truncate-and-sync).
    pub(crate) fn fail(&self, context: String, e: &io::Error) {
        let f = Failure::new(context, e);
        *self.metrics.failing.lock() = Some(f.error().to_string());
        self.state.lock().failed = Some(f);
    }
}

/// Syncs `file` (data only, or data and metadata), counting it.
pub(crate) fn timed_sync(file: &dyn SegmentFile, all: bool, m: &WalMetrics) -> io::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let start = std::time::Instant::now();
    let r = if all {
        file.sync_all()
    } else {
        file.sync_data()
    };
    let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    m.fsyncs.fetch_add(1, Relaxed);
    m.fsync_nanos.fetch_add(nanos, Relaxed);
    r
}

/// Clears the failure shown to readiness after a successful write or sync.
pub(crate) fn healthy(m: &WalMetrics) {
    let mut failing = m.failing.lock();
    if failing.is_some() {
        *failing = None;
        drop(failing);
        tracing::info!("WAL writes succeed again");
    }
}

#[cfg(test)]
mod tests;
