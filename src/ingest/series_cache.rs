//! The remote-write receiver's series cache: the bytes a series' labels arrive as (its label
//! fields in the protobuf body) → the storage's [`SeriesHandle`]. A series seen before is
//! appended through its handle ([`argus_storage::Appender::append_handle`]): no label strings are
//! built, validated, hashed into the head or compared there, and the head is not searched (the
//! handle points at its series).
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
//! write lock. Handles belong to one storage: use one cache per `Appendable`. A handle does not
//! keep its series alive; one the head dropped stays here until its generation is dropped.

use super::remote_write::LabelLimits;
use argus_storage::SeriesHandle;
use hashbrown::HashTable;
use parking_lot::RwLock;
use std::hash::BuildHasher;

/// Bytes of keys (plus [`ENTRY_OVERHEAD`] each) one generation of all shards may hold: with
/// ~200-byte label sets that is ~200,000 series; twice that across both generations.
pub const MAX_BYTES: usize = 48 << 20;
/// Accounting cost of an entry besides its key: the entry, its table slot, and (for a series
/// the head dropped) the dropped series' allocation its weak handle keeps.
const ENTRY_OVERHEAD: usize = 64;
/// Number of shards (a power of two).
const SHARDS: usize = 16;
/// One cached series: where its key is in its generation's `keys`, and its handle.
struct Entry {
    hash: u64,
    key_at: u32,
    key_len: u32,
    handle: SeriesHandle,
}

/// One generation of a shard. Entries and their keys are stored in insertion order, back to
/// back, and the hash table holds only indexes: the table stays small enough for the CPU's
/// caches, and a sender's series, which arrive in the same order request after request, are
/// read from memory in sequence.
#[derive(Default)]
struct Generation {
    /// Indexes into `entries`, by the entries' hashes.
    table: HashTable<u32>,
    entries: Vec<Entry>,
    keys: Vec<u8>,
}

impl Generation {
    fn key_of<'a>(keys: &'a [u8], e: &Entry) -> &'a [u8] {
        let at = e.key_at as usize;
        keys.get(at..at + e.key_len as usize).unwrap_or_default()
    }

    /// The index of `key`'s entry.
    fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let (entries, keys) = (&self.entries, &self.keys);
        self.table
            .find(hash, |&i| {
                entries
                    .get(i as usize)
                    .is_some_and(|e| e.hash == hash && Self::key_of(keys, e) == key)
            })
            .map(|&i| i as usize)
    }

    fn handle(&self, hash: u64, key: &[u8]) -> Option<&SeriesHandle> {
        self.entries.get(self.find(hash, key)?).map(|e| &e.handle)
    }

    /// Removes `key`'s entry from the table (its bytes stay until the generation is dropped).
    fn remove(&mut self, hash: u64, key: &[u8]) -> Option<SeriesHandle> {
        let i = self.find(hash, key)?;
        let (entries, table) = (&mut self.entries, &mut self.table);
        if let Ok(slot) = table.find_entry(hash, |&x| x as usize == i) {
            slot.remove();
        }
        entries.get_mut(i).map(|e| std::mem::take(&mut e.handle))
    }

    /// Adds `key`, not in the table yet.
    fn push(&mut self, hash: u64, key: &[u8], handle: SeriesHandle) {
        let (Ok(key_at), Ok(key_len), Ok(i)) = (
            u32::try_from(self.keys.len()),
            u32::try_from(key.len()),
            u32::try_from(self.entries.len()),
        ) else {
            unreachable!("BUG: a generation holds at most MAX_BYTES of keys");
        };
        self.keys.extend_from_slice(key);
        self.entries.push(Entry {
            hash,
            key_at,
            key_len,
            handle,
        });
        let entries = &self.entries;
        self.table
            .insert_unique(hash, i, |&x| entries.get(x as usize).map_or(0, |e| e.hash));
    }
}

#[derive(Default)]
struct Shard {
    cur: Generation,
    prev: Generation,
    /// Accounted bytes of `cur`.
    cur_bytes: usize,
}

impl Shard {
    fn insert(&mut self, hash: u64, key: &[u8], handle: SeriesHandle, cap: usize) {
        if let Some(i) = self.cur.find(hash, key) {
            if let Some(e) = self.cur.entries.get_mut(i) {
                e.handle = handle;
            }
            return;
        }
        let cost = key.len() + ENTRY_OVERHEAD;
        if self.cur_bytes + cost > cap {
            self.prev = std::mem::take(&mut self.cur);
            self.cur_bytes = 0;
        }
        self.cur_bytes += cost;
        self.cur.push(hash, key, handle);
    }
}

/// Label bytes → series handle, for one storage and one set of label bounds.
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

    /// The handle stored for `key` (a clone: no lock is held meanwhile). Safe to call from
    /// many threads.
    pub fn get(&self, key: &[u8]) -> Option<SeriesHandle> {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        {
            let s = shard.read();
            if let Some(h) = s.cur.handle(hash, key) {
                return Some(h.clone());
            }
            s.prev.handle(hash, key)?;
        }
        // Still in use: move it to the current generation.
        let mut s = shard.write();
        if s.cur.find(hash, key).is_none()
            && let Some(h) = s.prev.remove(hash, key)
        {
            s.insert(hash, key, h, self.shard_cap);
        }
        s.cur.handle(hash, key).cloned()
    }

    /// Remembers that `key` (label bytes that passed validation under [`SeriesCache::limits`])
    /// is the series `handle` names.
    pub fn insert(&self, key: &[u8], handle: SeriesHandle) {
        let hash = self.hasher.hash_one(key);
        self.shard(hash)
            .write()
            .insert(hash, key, handle, self.shard_cap);
    }

    /// Number of cached series (both generations; for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.read();
                s.cur.table.len() + s.prev.table.len()
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
    use argus_storage::SeriesRef;

    fn h(r: u64) -> SeriesHandle {
        SeriesHandle::from_ref(SeriesRef(r))
    }

    fn r(h: Option<SeriesHandle>) -> Option<u64> {
        h.map(|h| h.series_ref().0)
    }

    #[test]
    fn keys_compare_in_full_and_generations_rotate() {
        let max = 1 << 20;
        let c = SeriesCache::with_max_bytes(LabelLimits::default(), max);
        assert_eq!(r(c.get(b"a")), None);
        c.insert(b"a", h(1));
        c.insert(b"ab", h(2));
        assert_eq!(r(c.get(b"a")), Some(1));
        assert_eq!(r(c.get(b"ab")), Some(2));
        assert_eq!(r(c.get(b"b")), None);
        c.insert(b"a", h(3));
        assert_eq!(r(c.get(b"a")), Some(3));
        assert_eq!(c.len(), 2);
        // Far more keys than fit: memory stays bounded, recent keys stay.
        let n = 4 * max / (ENTRY_OVERHEAD + 256);
        let key = |i: usize| {
            let mut k = vec![b'x'; 256];
            k[..8].copy_from_slice(&(i as u64).to_le_bytes());
            k
        };
        for i in 0..n {
            c.insert(&key(i), h(i as u64));
            // Key 0 is written all along: it survives every rotation.
            assert_eq!(r(c.get(&key(0))), Some(0));
        }
        let bytes = c.len() * (ENTRY_OVERHEAD + 256);
        assert!(bytes <= 2 * max, "{bytes} bytes cached");
        assert!(c.len() < n, "old entries were dropped");
        assert_eq!(r(c.get(&key(n - 1))), Some(n as u64 - 1));
    }
}
