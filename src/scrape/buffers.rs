//! Scrape body buffers shared by every loop of a manager. A body is held only from its fetch to
//! the end of its append, so a few buffers serve hundreds of targets instead of one resident
//! body per target (Prometheus keeps a `pool.Pool` of scrape buffers for the same reason).

use parking_lot::Mutex;

/// Free buffers kept at most.
const MAX_FREE: usize = 16;
/// Buffers bigger than this are not kept (a rare huge body does not stay resident).
const MAX_KEPT_BYTES: usize = 16 << 20;

/// A stack of cleared buffers. Shared by all loops; each call holds the lock briefly.
#[derive(Debug, Default)]
pub struct BufferPool {
    /// Lock: this mutex (never held across an await).
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// A free buffer, or a new empty one.
    pub fn get(&self) -> Vec<u8> {
        self.free.lock().pop().unwrap_or_default()
    }

    /// Returns `buf` for reuse (dropped when too big or the pool is full).
    pub fn put(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > MAX_KEPT_BYTES {
            return;
        }
        buf.clear();
        let mut free = self.free.lock();
        if free.len() < MAX_FREE {
            free.push(buf);
        }
    }

    /// Buffers free now.
    #[cfg(test)]
    fn free(&self) -> usize {
        self.free.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_bounds() {
        let p = BufferPool::default();
        let mut a = p.get();
        assert_eq!(a.capacity(), 0);
        a.extend_from_slice(b"body");
        let cap = a.capacity();
        p.put(a);
        let b = p.get();
        assert!(
            b.is_empty() && b.capacity() == cap,
            "cleared, same allocation"
        );
        p.put(b);
        p.put(Vec::with_capacity(MAX_KEPT_BYTES + 1));
        p.put(Vec::new());
        assert_eq!(p.free(), 1, "huge and empty buffers are not kept");
        for _ in 0..MAX_FREE + 4 {
            p.put(Vec::with_capacity(8));
        }
        assert_eq!(p.free(), MAX_FREE);
    }
}
