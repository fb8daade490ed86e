//! Per-thread scratch of the remote-write receivers: the [`Decoder`] (decompression buffer,
//! scan, handles) and an empty appender kept by the thread that used them, for its next request.
//!
//! Both are documented as reusable; a request that builds them anew pays for their allocation
//! and, because Argus runs mimalloc with `purge_delay` 0 (see `main.rs`), for the page faults and
//! zeroing of memory given back to the OS at the end of the previous request (~6 % of a
//! `measure` profile, `benches/README.md` "ingest4" and "ingest5"). A scratch never moves
//! between threads: session 14's shared pool of decoders and appenders (handed between
//! blocking-pool threads) raised peak RSS, see `benches/README.md` "ingest4".
//!
//! Bounds: a scratch whose buffers grew past [`MAX_KEPT_BYTES`], or whose appender's batch held
//! more than [`MAX_KEPT_SAMPLES`], is dropped rather than kept, so one huge request does not pin
//! its memory; a thread keeps at most one. The kept appender holds its storage's head (not the
//! storage itself, which is referenced weakly): a thread that serves a request of another storage
//! drops it. The receivers run on [`super::write_threads`], which hands each request to the most
//! recently idle thread, so only as many threads keep a scratch as requests run at once, and a
//! thread idle for [`super::write_threads::RELEASE_AFTER`] drops its scratch ([`release`]).

use super::remote_write::Decoder;
use argus_storage::{Appendable, Appender};
use std::cell::RefCell;
use std::sync::{Arc, Weak};

/// Largest decoder kept, in bytes its buffers hold (capacities).
pub const MAX_KEPT_BYTES: usize = 4 << 20;
/// Largest batch, in samples, after which an appender is still kept.
pub const MAX_KEPT_SAMPLES: usize = 100_000;

/// One thread's scratch: take it with [`take`], give it back with [`WriteScratch::put_back`].
#[derive(Default)]
pub struct WriteScratch {
    /// The decoder; empty between requests apart from its buffers' capacity.
    pub decoder: Decoder,
    /// An empty appender and the storage it appends to.
    kept: Option<(Weak<dyn Appendable>, Box<dyn Appender>)>,
}

thread_local! {
    static SCRATCH: RefCell<Option<WriteScratch>> = const { RefCell::new(None) };
}

/// This thread's scratch (a new one when the thread has none, or another caller on this thread
/// holds it).
pub fn take() -> WriteScratch {
    SCRATCH
        .try_with(|s| s.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Drops this thread's scratch, if it keeps one (an idle write thread gives its memory back).
pub fn release() {
    let _ = SCRATCH.try_with(|s| s.borrow_mut().take());
}

impl WriteScratch {
    /// An empty appender to `storage`: the kept one when it appends to `storage`, else a new
    /// one from `storage.appender()`.
    pub fn appender(&mut self, storage: &Arc<dyn Appendable>) -> Box<dyn Appender> {
        match self.kept.take() {
            Some((s, app)) if std::ptr::addr_eq(s.as_ptr(), Arc::as_ptr(storage)) => app,
            _ => storage.appender(),
        }
    }

    /// Keeps `app`, an appender to `storage` that has just committed or rolled back (so its
    /// batch is empty) after a batch of `samples`, and gives the scratch back to this thread.
    /// Either is dropped instead when over its bound ([`MAX_KEPT_SAMPLES`],
    /// [`MAX_KEPT_BYTES`]). Call it only on success paths; a scratch not given back is simply
    /// dropped.
    pub fn put_back(
        mut self,
        storage: &Arc<dyn Appendable>,
        app: Option<Box<dyn Appender>>,
        samples: usize,
    ) {
        self.kept = app
            .filter(|_| samples <= MAX_KEPT_SAMPLES)
            .map(|a| (Arc::downgrade(storage), a));
        if self.decoder.retained_bytes() > MAX_KEPT_BYTES {
            self.decoder = Decoder::new();
        }
        // A thread being torn down has no slot left: the scratch is dropped then.
        let _ = SCRATCH.try_with(|s| *s.borrow_mut() = Some(self));
    }

    /// Whether this scratch keeps an appender (for tests).
    pub fn keeps_appender(&self) -> bool {
        self.kept.is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ingest::prompb::{TimeSeries, WriteRequest};
    use crate::ingest::remote_write::{MAX_DECOMPRESSED_BYTES, encode};
    use argus_storage::Labels;
    use argus_storage::testing::MemStorage;

    fn body(series: usize, samples: usize) -> Vec<u8> {
        let ts: Vec<(i64, f64)> = (0..samples as i64).map(|t| (t, t as f64)).collect();
        let timeseries = (0..series)
            .map(|i| TimeSeries::from_pairs(&[("__name__", "m"), ("i", &i.to_string())], &ts))
            .collect();
        encode(&WriteRequest {
            timeseries,
            metadata: vec![],
        })
    }

    #[test]
    fn a_thread_gets_back_its_scratch_unless_it_grew_past_the_bounds() {
        let storage: Arc<dyn Appendable> = Arc::new(MemStorage::new());
        let other: Arc<dyn Appendable> = Arc::new(MemStorage::new());
        // Runs on a fresh thread: no scratch yet.
        std::thread::spawn(move || {
            let mut s = take();
            assert!(!s.keeps_appender());
            let mut req = WriteRequest::default();
            s.decoder
                .decode_into(&body(10, 2), MAX_DECOMPRESSED_BYTES, &mut req)
                .unwrap();
            let grown = s.decoder.retained_bytes();
            assert!(grown > 0);
            let mut app = s.appender(&storage);
            app.append(None, &Labels::from_pairs(&[("__name__", "a")]), 1, 1.0)
                .unwrap();
            app.commit().unwrap();
            s.put_back(&storage, Some(app), 1);

            // Same thread: the same buffers and the appender come back.
            let mut s = take();
            assert_eq!(s.decoder.retained_bytes(), grown);
            assert!(s.keeps_appender());
            // Taken while held: a second caller gets a fresh one.
            assert_eq!(take().decoder.retained_bytes(), 0);
            // The kept appender is for `storage` only.
            let app = s.appender(&other);
            assert!(!s.keeps_appender());
            s.put_back(&other, Some(app), MAX_KEPT_SAMPLES + 1);
            assert!(
                !take().keeps_appender(),
                "a batch over the bound is not kept"
            );

            // Released: the next take starts empty.
            take().put_back(&storage, None, 0);
            release();
            assert_eq!(take().decoder.retained_bytes(), 0);

            // A decoder grown past the bound is replaced by an empty one.
            let mut s = WriteScratch::default();
            let big = body(80_000, 4);
            s.decoder
                .decode_into(&big, MAX_DECOMPRESSED_BYTES, &mut req)
                .unwrap();
            assert!(s.decoder.retained_bytes() > MAX_KEPT_BYTES);
            s.put_back(&storage, None, 0);
            assert_eq!(take().decoder.retained_bytes(), 0);
        })
        .join()
        .unwrap();
    }
}
