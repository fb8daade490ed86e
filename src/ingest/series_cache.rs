//! The remote-write receiver's series cache: the bytes a series' labels arrive as (its label
//! fields in the protobuf body) → the storage's [`SeriesRef`]. A series seen before is appended
//! by ref: no label strings are built, validated, hashed into the head or compared there.
//!
//! Keys are whole byte strings compared in full (a hash only picks the slot), so a hit always
//! names the series those bytes decode to. Only series whose labels passed validation under the
//! cache's [`LabelLimits`] are inserted. Memory is bounded: each shard keeps two generations;
//! when the current one holds more than its share of [`MAX_BYTES`], it becomes the previous one
//! and the old previous one is dropped (VictoriaMetrics's `workingsetcache` idea). A hit in the
//! previous generation moves the entry to the current one, so series still written survive the
//! rotation.
//!
//! Concurrency: shards are `parking_lot` read-write locks; lookups take a read lock, inserts a
//! write lock. Refs belong to one storage: use one cache per `Appendable`.

use super::remote_write::LabelLimits;
use argus_storage::SeriesRef;
use hashbrown::HashTable;
use parking_lot::RwLock;
use std::hash::BuildHasher;

/// Bytes of keys (plus [`ENTRY_OVERHEAD`] each) one generation of all shards may hold: with
/// ~200-byte label sets that is ~200,000 series; twice that across both generations.
pub const MAX_BYTES: usize = 48 << 20;
/// Accounting cost of an entry besides its key: the table slot and the allocation header.
const ENTRY_OVERHEAD: usize = 48;
/// Number of shards (a power of two).
const SHARDS: usize = 16;

struct Entry {
    hash: u64,
    key: Box<[u8]>,
    sref: SeriesRef,
}

#[derive(Default)]
struct Shard {
    cur: HashTable<Entry>,
    prev: HashTable<Entry>,
    /// Accounted bytes of `cur`.
    cur_bytes: usize,
}

impl Shard {
    fn insert(&mut self, e: Entry, cap: usize) {
        let cost = e.key.len() + ENTRY_OVERHEAD;
        match self.cur.find_entry(e.hash, |x| x.key == e.key) {
            Ok(mut found) => found.get_mut().sref = e.sref,
            Err(_) => {
                if self.cur_bytes + cost > cap {
                    self.prev = std::mem::take(&mut self.cur);
                    self.cur_bytes = 0;
                }
                self.cur_bytes += cost;
                self.cur.insert_unique(e.hash, e, |x| x.hash);
            }
        }
    }
}

/// Label bytes → series ref, for one storage and one set of label bounds.
pub struct SeriesCache {
    // Immutable after construction.
    hasher: foldhash::fast::RandomState,
    limits: LabelLimits,
    /// Accounted bytes a shard's current generation may hold.
    shard_cap: usize,
    /// Each shard has its own lock.
    shards: Box<[RwLock<Shard>]>,
}

impl SeriesCache {
    /// An empty cache for series validated under `limits`.
    pub fn new(limits: LabelLimits) -> Self {
        Self::with_max_bytes(limits, MAX_BYTES)
    }

    fn with_max_bytes(limits: LabelLimits, max_bytes: usize) -> Self {
        Self {
            hasher: foldhash::fast::RandomState::default(),
            limits,
            shard_cap: max_bytes / SHARDS,
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }

    /// The label bounds every cached series passed.
    pub fn limits(&self) -> &LabelLimits {
        &self.limits
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        // The top bits pick the shard; hashbrown uses the low ones and the top 7.
        let i = (hash >> 40) as usize & (SHARDS - 1);
        self.shards
            .get(i)
            .unwrap_or_else(|| unreachable!("BUG: shard index masked"))
    }

    /// The ref stored for `key`. Safe to call from many threads.
    pub fn get(&self, key: &[u8]) -> Option<SeriesRef> {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        let prev = {
            let s = shard.read();
            // The full hash first: the key's bytes live elsewhere (a cache miss to compare).
            let eq = |e: &Entry| e.hash == hash && *e.key == *key;
            if let Some(e) = s.cur.find(hash, eq) {
                return Some(e.sref);
            }
            s.prev.find(hash, eq)?.sref
        };
        // Still in use: move it to the current generation.
        let mut s = shard.write();
        if let Ok(e) = s
            .prev
            .find_entry(hash, |e| e.hash == hash && *e.key == *key)
        {
            let (e, _) = e.remove();
            s.insert(e, self.shard_cap);
        }
        Some(prev)
    }

    /// Remembers that `key` (label bytes that passed validation under [`SeriesCache::limits`])
    /// is the series `sref`.
    pub fn insert(&self, key: &[u8], sref: SeriesRef) {
        let hash = self.hasher.hash_one(key);
        let e = Entry {
            hash,
            key: key.into(),
            sref,
        };
        self.shard(hash).write().insert(e, self.shard_cap);
    }

    /// Number of cached series (both generations; for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.read();
                s.cur.len() + s.prev.len()
            })
            .sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_in_full_and_generations_rotate() {
        let max = 1 << 20;
        let c = SeriesCache::with_max_bytes(LabelLimits::default(), max);
        assert_eq!(c.get(b"a"), None);
        c.insert(b"a", SeriesRef(1));
        c.insert(b"ab", SeriesRef(2));
        assert_eq!(c.get(b"a"), Some(SeriesRef(1)));
        assert_eq!(c.get(b"ab"), Some(SeriesRef(2)));
        assert_eq!(c.get(b"b"), None);
        c.insert(b"a", SeriesRef(3));
        assert_eq!(c.get(b"a"), Some(SeriesRef(3)));
        assert_eq!(c.len(), 2);
        // Far more keys than fit: memory stays bounded, recent keys stay.
        let n = 4 * max / (ENTRY_OVERHEAD + 256);
        let key = |i: usize| {
            let mut k = vec![b'x'; 256];
            k[..8].copy_from_slice(&(i as u64).to_le_bytes());
            k
        };
        for i in 0..n {
            c.insert(&key(i), SeriesRef(i as u64));
            // Key 0 is written all along: it survives every rotation.
            assert_eq!(c.get(&key(0)), Some(SeriesRef(0)));
        }
        let bytes = c.len() * (ENTRY_OVERHEAD + 256);
        assert!(bytes <= 2 * max, "{bytes} bytes cached");
        assert!(c.len() < n, "old entries were dropped");
        assert_eq!(c.get(&key(n - 1)), Some(SeriesRef(n as u64 - 1)));
    }
}
