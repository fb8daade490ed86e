//! What every loop of a manager shares to save memory: scrape body buffers and metadata maps.
//!
//! A body is held only from its fetch to the end of its append, so a few buffers serve hundreds
//! of targets instead of one resident body per target (Prometheus keeps a `pool.Pool` of scrape
//! buffers for the same reason). Targets of one exporter expose the same HELP/TYPE/UNIT lines,
//! so their metadata maps are kept once ([`MetadataPool`]): 400 node-exporter-like targets held
//! 28 MiB of identical maps before (`benches/README.md`, "headmem").

use super::target::Metadata;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Weak};

/// Free buffers kept at most.
const MAX_FREE: usize = 16;
/// Buffers bigger than this are not kept (a rare huge body does not stay resident).
const MAX_KEPT_BYTES: usize = 16 << 20;

/// A stack of cleared buffers. Shared by all loops; each call holds the lock briefly.
#[derive(Debug, Default)]
pub struct BufferPool {
    /// Lock: this mutex (never held across an await).
    free: Mutex<Vec<Vec<u8>>>,
    /// The loops' metadata maps.
    pub metadata: MetadataPool,
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

/// Metadata by family name, as a target last exposed it.
pub type MetadataMap = BTreeMap<String, Metadata>;

/// Metadata maps of live targets, found by content: a map equal to one already held is
/// replaced by that one. Holds weak references only (a map goes when its last target drops it).
#[derive(Debug, Default)]
pub struct MetadataPool {
    /// Hashes map contents (randomly seeded; equal hashes are confirmed by comparing maps).
    hasher: std::collections::hash_map::RandomState,
    /// Lock: this mutex (held for a lookup, never across an await).
    maps: Mutex<PoolMaps>,
}

#[derive(Debug, Default)]
struct PoolMaps {
    by_hash: HashMap<u64, Vec<Weak<MetadataMap>>>,
    /// Weak references held; dead ones are dropped when this passes `prune_at`.
    held: usize,
    prune_at: usize,
}

impl MetadataPool {
    /// A map equal to `m`: one already in the pool, or `m` itself (then added to the pool).
    /// Called when a target's metadata changed, not per scrape.
    pub fn share(&self, m: Arc<MetadataMap>) -> Arc<MetadataMap> {
        let mut h = self.hasher.build_hasher();
        for (name, md) in m.iter() {
            (name, &md.kind, &md.help, &md.unit).hash(&mut h);
        }
        let h = h.finish();
        let mut g = self.maps.lock();
        let list = g.by_hash.entry(h).or_default();
        if let Some(found) = list
            .iter()
            .filter_map(Weak::upgrade)
            .find(|x| Arc::ptr_eq(x, &m) || **x == *m)
        {
            return found;
        }
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&m));
        g.held += 1;
        if g.held > g.prune_at {
            g.by_hash.retain(|_, list| {
                list.retain(|w| w.strong_count() > 0);
                !list.is_empty()
            });
            g.held = g.by_hash.values().map(Vec::len).sum();
            g.prune_at = 2 * g.held + 64;
        }
        m
    }

    /// Weak references held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.maps.lock().held
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

    #[test]
    fn metadata_maps_are_shared_by_content() {
        let map = |help: &str| {
            let mut m = MetadataMap::new();
            m.insert(
                "up".into(),
                Metadata {
                    kind: "gauge".into(),
                    help: help.into(),
                    unit: String::new(),
                },
            );
            Arc::new(m)
        };
        let p = MetadataPool::default();
        let a = p.share(map("Up."));
        let b = p.share(map("Up."));
        assert!(Arc::ptr_eq(&a, &b), "an equal map is the pooled one");
        let c = p.share(map("Other."));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c["up"].help, "Other.");
        // Dropped maps are not handed out, and dead references are pruned.
        drop((a, b, c));
        let d = p.share(map("Up."));
        assert_eq!(Arc::strong_count(&d), 1, "a fresh map, not a dead one");
        for i in 0..200 {
            drop(p.share(map(&i.to_string())));
        }
        assert!(p.held() < 200, "held {}", p.held());
    }
}
