//! Per-query limits: wall-clock deadline, cancellation, and the number of samples held in
//! memory. The evaluator calls [`Limits::check`] in every loop over series and over steps, so
//! a query stops soon after its deadline or its cancellation, however it spends its time.

use crate::error::{Error, ErrorKind, Result};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Stops a running query: the HTTP layer cancels when the client has gone away. Cheap to
/// clone; all clones share one flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every query evaluating with this token (or a clone of it).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Message Prometheus uses when a query exceeds `max_samples`.
pub(crate) const TOO_MANY_SAMPLES: &str =
    "query processing would load too many samples into memory in query execution";

/// Tracks one query's deadline and the samples it currently holds. Not shared between threads.
pub(crate) struct Limits {
    deadline: Instant,
    cancel: CancelToken,
    max_samples: usize,
    current: Cell<usize>,
    peak: Cell<usize>,
    ticks: Cell<u32>,
    work: Cell<u64>,
}

/// Units of work (samples touched) between two looks at the clock in [`Limits::check_work`].
const WORK_PER_CHECK: u64 = 1 << 16;

impl Limits {
    pub(crate) fn new(timeout: Duration, max_samples: usize, cancel: CancelToken) -> Self {
        let now = Instant::now();
        Self {
            deadline: now
                .checked_add(timeout)
                .unwrap_or(now + Duration::from_secs(1 << 32)),
            cancel,
            max_samples,
            current: Cell::new(0),
            peak: Cell::new(0),
            ticks: Cell::new(0),
            work: Cell::new(0),
        }
    }

    /// Accounts for `n` more samples in memory; fails once the total exceeds `max_samples`.
    pub(crate) fn add(&self, n: usize) -> Result<()> {
        let cur = self.current.get().saturating_add(n);
        self.current.set(cur);
        if cur > self.peak.get() {
            self.peak.set(cur);
        }
        if cur > self.max_samples {
            return Err(Error::execution(TOO_MANY_SAMPLES));
        }
        Ok(())
    }

    /// Fails when `n` more samples would exceed the limit, without accounting them.
    pub(crate) fn fits(&self, n: usize) -> Result<()> {
        if self.current.get().saturating_add(n) > self.max_samples {
            return Err(Error::execution(TOO_MANY_SAMPLES));
        }
        Ok(())
    }

    /// Releases `n` samples accounted for earlier.
    pub(crate) fn release(&self, n: usize) {
        self.current.set(self.current.get().saturating_sub(n));
    }

    /// Highest number of samples held at once so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn peak(&self) -> usize {
        self.peak.get()
    }

    /// Checks the deadline and cancellation. Cheap: looks only every 64th call.
    pub(crate) fn check(&self) -> Result<()> {
        let t = self.ticks.get().wrapping_add(1);
        self.ticks.set(t);
        if t.is_multiple_of(64) {
            self.check_now()?;
        }
        Ok(())
    }

    /// Accounts for `n` units of work (samples touched) and checks the deadline and
    /// cancellation every [`WORK_PER_CHECK`] units: for loops whose iterations cost very
    /// different amounts (a window function over windows of any size).
    pub(crate) fn check_work(&self, n: usize) -> Result<()> {
        let w = self
            .work
            .get()
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX))
            .saturating_add(1);
        if w >= WORK_PER_CHECK {
            self.work.set(0);
            return self.check_now();
        }
        self.work.set(w);
        Ok(())
    }

    /// Checks the deadline and cancellation now.
    pub(crate) fn check_now(&self) -> Result<()> {
        if self.cancel.is_canceled() {
            return Err(Error {
                kind: ErrorKind::Canceled,
                message: "query was canceled in query execution".to_string(),
            });
        }
        if Instant::now() >= self.deadline {
            return Err(Error {
                kind: ErrorKind::Timeout,
                message: "query timed out in query execution".to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_samples_and_release() {
        let l = Limits::new(Duration::from_secs(10), 10, CancelToken::new());
        l.add(6).unwrap();
        l.release(6);
        l.add(10).unwrap();
        let err = l.add(1).unwrap_err();
        assert_eq!(err.message, TOO_MANY_SAMPLES);
        assert_eq!(l.peak(), 11);
    }

    #[test]
    fn deadline_expires() {
        let l = Limits::new(Duration::from_millis(0), 10, CancelToken::new());
        assert_eq!(l.check_now().unwrap_err().kind, ErrorKind::Timeout);
        let l = Limits::new(Duration::MAX, 10, CancelToken::new());
        assert!(l.check_now().is_ok());
    }

    #[test]
    fn cancellation_is_seen_within_64_checks() {
        let token = CancelToken::new();
        let l = Limits::new(Duration::from_secs(60), 10, token.clone());
        for _ in 0..100 {
            l.check().unwrap();
        }
        token.cancel();
        let err = (0..64).find_map(|_| l.check().err()).unwrap();
        assert_eq!(err.kind, ErrorKind::Canceled);
        assert_eq!(err.message, "query was canceled in query execution");
    }
}
