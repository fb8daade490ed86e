//! A mark on the WAL's growth: the database's background thread arms it with the bytes still
//! to be written before the head snapshot's size trigger is due, and the WAL's writer calls the
//! wake once they are written, so a snapshot starts when the WAL crosses its bound rather than
//! at the next periodic check (`db::SNAPSHOT_CHECK_INTERVAL`). The writer pays one relaxed
//! atomic load per batch.

use std::sync::atomic::{AtomicU64, Ordering};

/// Wakes a waiter once the WAL has written a given number of bytes (see the module doc).
pub(crate) struct GrowthWake {
    // Immutable after construction.
    /// Called at most once per [`GrowthWake::arm`], on the writer's thread under the WAL's
    /// lock: it must not block (a channel send).
    wake: Box<dyn Fn() + Send + Sync>,
    /// The WAL's byte count ([`super::Wal::written`]) at which to wake; `u64::MAX`: disarmed.
    /// Written by the armer and by the writer that fires it (a swap, so it fires once).
    at: AtomicU64,
}

impl GrowthWake {
    /// A disarmed mark that calls `wake` when it fires.
    pub(crate) fn new(wake: Box<dyn Fn() + Send + Sync>) -> Self {
        Self {
            wake,
            at: AtomicU64::new(u64::MAX),
        }
    }

    /// Fires once the WAL's byte count reaches `at` (`u64::MAX` disarms it); replaces the
    /// previous mark.
    pub(crate) fn arm(&self, at: u64) {
        self.at.store(at, Ordering::Release);
    }

    /// Called by the WAL's writer after each batch with its byte count: fires (once) when the
    /// mark is reached.
    pub(crate) fn grew(&self, written: u64) {
        if written >= self.at.load(Ordering::Relaxed)
            && self.at.swap(u64::MAX, Ordering::AcqRel) <= written
        {
            (self.wake)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn fires_once_per_arm_when_the_count_reaches_the_mark() {
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        let w = GrowthWake::new(Box::new(move || {
            f.fetch_add(1, Ordering::Relaxed);
        }));
        let check = |written: u64, want: usize| {
            w.grew(written);
            assert_eq!(fired.load(Ordering::Relaxed), want, "after grew({written})");
        };
        check(1 << 40, 0); // disarmed
        w.arm(100);
        check(99, 0);
        check(100, 1);
        check(200, 1); // fired once: disarmed until armed again
        w.arm(150);
        check(160, 2); // a mark already passed fires at the next batch
        w.arm(u64::MAX);
        check(u64::MAX - 1, 2);
    }
}
