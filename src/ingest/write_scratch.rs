//! What a remote-write request reuses from earlier ones: its [`Decoder`] (decompressed body,
//! scan, series handles) and an [`Appender`] (the batch, its WAL encoding buffers and apply
//! scratch). Built fresh for every request they were 4–7 % of an ingest's CPU in allocation,
//! zeroing of the grown decompression buffer and hash-table growth (`benches/README.md`,
//! "ingest4").
//!
//! A [`ScratchPool`] holds the free ones. At most one is out per running append (the write
//! handler's slots bound those), so the pool never holds more than the slots; one that grew for a
//! large request is dropped instead of kept, so what the pool pins stays bounded
//! ([`MAX_KEPT_BODY`], [`MAX_KEPT_SAMPLES`]).

use super::remote_write::Decoder;
use argus_storage::Appender;
use parking_lot::Mutex;

/// A request's reusable state.
pub struct Scratch {
    /// The body decoder.
    pub dec: Decoder,
    /// An appender of the server's database, empty (committed or rolled back).
    pub app: Box<dyn Appender>,
}

/// Largest decompressed-body buffer a returned [`Scratch`] may keep (bytes).
pub const MAX_KEPT_BODY: usize = 4 << 20;
/// Most samples a request may have had for its [`Scratch`] to be kept (the appender's buffers
/// grew to hold them).
pub const MAX_KEPT_SAMPLES: u64 = 100_000;

/// Free [`Scratch`]es of one database. Any thread may take and give.
#[derive(Default)]
pub struct ScratchPool {
    free: Mutex<Vec<Scratch>>,
}

impl ScratchPool {
    /// A free scratch, or a new one with an appender from `new_app`.
    pub fn take(&self, new_app: impl FnOnce() -> Box<dyn Appender>) -> Scratch {
        let free = self.free.lock().pop();
        free.unwrap_or_else(|| Scratch {
            dec: Decoder::new(),
            app: new_app(),
        })
    }

    /// Returns `s` for a later request. Call only after its appender's `commit` or
    /// `rollback` (an appender with a pending batch must never be reused). `samples`: how many
    /// the request carried; a scratch that grew past the bounds is dropped.
    pub fn give(&self, s: Scratch, samples: u64) {
        if samples <= MAX_KEPT_SAMPLES && s.dec.buffer_capacity() <= MAX_KEPT_BODY {
            self.free.lock().push(s);
        }
    }

    /// Scratches held free.
    pub fn len(&self) -> usize {
        self.free.lock().len()
    }

    /// True when none is held free.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::remote_write::MAX_DECOMPRESSED_BYTES;
    use argus_storage::testing::MemStorage;
    use argus_storage::{Appendable, Labels};

    #[test]
    fn a_returned_scratch_is_reused_unless_it_grew_past_the_bounds() {
        let storage = MemStorage::new();
        let pool = ScratchPool::default();
        let mut made = 0;
        let mut new_app = || {
            made += 1;
            storage.appender()
        };
        let s = pool.take(&mut new_app);
        pool.give(s, 2_000);
        assert_eq!(pool.len(), 1);
        let mut s = pool.take(&mut new_app);
        assert!(pool.is_empty());
        // The reused appender holds nothing of an earlier batch: what it commits is its own.
        let l = Labels::from_pairs(&[("__name__", "m")]);
        s.app.append(None, &l, 10, 1.0).unwrap();
        s.app.commit().unwrap();
        pool.give(s, MAX_KEPT_SAMPLES + 1);
        assert!(
            pool.is_empty(),
            "an appender grown for a huge request is dropped"
        );
        let mut s = pool.take(&mut new_app);
        let big = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; MAX_KEPT_BODY + 1])
            .unwrap();
        s.dec.decompress(&big, MAX_DECOMPRESSED_BYTES).unwrap();
        pool.give(s, 1);
        assert!(
            pool.is_empty(),
            "a decoder grown for a huge body is dropped"
        );
        assert_eq!(made, 2, "one new scratch, one reuse, one new after a drop");
        assert_eq!(storage.dump(), vec![(l, vec![(10, 1.0)])]);
    }
}
