//! Per-query limits: wall-clock deadline and the number of samples held in memory.

use crate::error::{Error, ErrorKind, Result};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Message Prometheus uses when a query exceeds `max_samples`.
pub(crate) const TOO_MANY_SAMPLES: &str =
    "query processing would load too many samples into memory in query execution";

/// Tracks one query's deadline and the samples it currently holds. Not shared between threads.
pub(crate) struct Limits {
    deadline: Instant,
    max_samples: usize,
    current: Cell<usize>,
    peak: Cell<usize>,
    ticks: Cell<u32>,
}

impl Limits {
    pub(crate) fn new(timeout: Duration, max_samples: usize) -> Self {
        Self {
            deadline: Instant::now() + timeout,
            max_samples,
            current: Cell::new(0),
            peak: Cell::new(0),
            ticks: Cell::new(0),
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

    /// Checks the deadline. Cheap: reads the clock only every 64th call.
    pub(crate) fn check(&self) -> Result<()> {
        let t = self.ticks.get().wrapping_add(1);
        self.ticks.set(t);
        if t.is_multiple_of(64) {
            self.check_now()?;
        }
        Ok(())
    }

    /// Checks the deadline now.
    pub(crate) fn check_now(&self) -> Result<()> {
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
        let l = Limits::new(Duration::from_secs(10), 10);
        l.add(6).unwrap();
        l.release(6);
        l.add(10).unwrap();
        let err = l.add(1).unwrap_err();
        assert_eq!(err.message, TOO_MANY_SAMPLES);
        assert_eq!(l.peak(), 11);
    }

    #[test]
    fn deadline_expires() {
        let l = Limits::new(Duration::from_millis(0), 10);
        assert_eq!(l.check_now().unwrap_err().kind, ErrorKind::Timeout);
    }
}
