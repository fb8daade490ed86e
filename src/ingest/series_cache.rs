//! The remote-write receiver's series cache: the bytes a series' labels arrive as (its label
//! fields in the protobuf body) → the storage's [`SeriesHandle`]. A series seen before is
//! appended through its handle ([`argus_storage::Appender::append_handle`]): no label strings are
//! built, validated, hashed into the head or compared there, and the head is not searched (the
//! handle points at its series).
//!
//! **Keys.** An entry is keyed by [`Key`], the 128-bit SipHash-1-3 of the label bytes under a
//! secret key drawn at random per cache; the bytes themselves are not kept or compared. A hit
//! costs one hash of the bytes and one probe of a table of 32-byte entries (before, the probe
//! also compared ~150 key bytes kept apart from the table: 2–3 cache misses per series). Two
//! different byte strings share a key only by a collision of a keyed PRF: for `n` cached series
//! and `q` lookups the chance that any lookup finds another series' entry is at most
//! `q·n / 2^128` (about 2^-80 after 10^12 lookups into 4·10^5 series), and a sender cannot
//! aim for one without the secret key, which never leaves the process. SipHash rather than a
//! faster unkeyed-strength hash (xxh3, foldhash) because those make no such claim against
//! chosen inputs: label bytes are chosen by whoever sends.
//! Session 17 measured the keyed alternative on the harness's 20,000 label byte strings (107–184
//! bytes, mean 163; one core, best of 40 passes): SipHash-1-3-128 (`siphasher`, one call on the
//! contiguous bytes) 32 ns a key, HighwayHash-128 (`highway` 1.3, AVX2) 44 ns, and 42 ns even
//! on 24-byte prefixes (its finalisation dominates short inputs), so SipHash stays
//! (`benches/README.md`, "hash7").
//!
//! Only series whose labels passed validation under the cache's [`LabelLimits`] are inserted.
//! Memory is bounded: each shard keeps two generations; when the current one holds more than
//! its share of [`MAX_BYTES`], it becomes the previous one and the old previous one is dropped
//! (VictoriaMetrics's `workingsetcache` idea). A hit in the previous generation moves the entry
//! to the current one, so series still written survive the rotation.
//!
//! Concurrency: shards are `parking_lot` read-write locks; lookups take a read lock (one per
//! shard and request with [`SeriesCache::get_all`]), inserts a write lock. Handles belong to
//! one storage: use one cache per `Appendable`. A handle does not keep its series alive; one
//! the head dropped stays here until its generation is dropped.

use super::remote_write::LabelLimits;
use argus_storage::{HeldSeries, SeriesHandle};
use hashbrown::HashTable;
use parking_lot::RwLock;
use siphasher::sip128::SipHasher13;
use std::hash::BuildHasher;

/// Bytes (accounted as `ENTRY_COST` per series) one generation of all shards may hold:
/// ~500,000 series; twice that across both generations.
pub const MAX_BYTES: usize = 48 << 20;
/// Accounting cost of an entry: the entry, its table slot and slack, and (for a series the
/// head dropped) the dropped series' allocation its weak handle keeps.
const ENTRY_COST: usize = std::mem::size_of::<Entry>() + 64;
/// Number of shards (a power of two).
const SHARDS: usize = 16;
/// Series [`SeriesCache::get_all`] touches before holding them: about as many memory misses
/// as a core keeps in flight.
const TOUCH: usize = 16;

/// The cache's name for a series' label bytes: their keyed 128-bit hash (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(u128);

impl Key {
    /// The 64 bits the shard's table hashes by (hashbrown uses the low bits and the top 7).
    fn table_hash(self) -> u64 {
        self.0 as u64
    }

    /// The shard: bits the table hash does not use.
    fn shard(self) -> usize {
        (self.0 >> 64) as usize & (SHARDS - 1)
    }
}

/// One cached series.
struct Entry {
    key: Key,
    handle: SeriesHandle,
}

/// One generation of a shard.
#[derive(Default)]
struct Generation {
    table: HashTable<Entry>,
}

impl Generation {
    fn handle(&self, key: Key) -> Option<&SeriesHandle> {
        self.table
            .find(key.table_hash(), |e| e.key == key)
            .map(|e| &e.handle)
    }

    fn remove(&mut self, key: Key) -> Option<SeriesHandle> {
        let slot = self
            .table
            .find_entry(key.table_hash(), |e| e.key == key)
            .ok()?;
        Some(slot.remove().0.handle)
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
    fn insert(&mut self, key: Key, handle: SeriesHandle, cap: usize) {
        let hash = key.table_hash();
        if let Some(e) = self.cur.table.find_mut(hash, |e| e.key == key) {
            e.handle = handle;
            return;
        }
        if self.cur_bytes + ENTRY_COST > cap {
            self.prev = std::mem::take(&mut self.cur);
            self.cur_bytes = 0;
        }
        self.cur_bytes += ENTRY_COST;
        self.cur
            .table
            .insert_unique(hash, Entry { key, handle }, |e| e.key.table_hash());
    }

    /// Moves `key`'s entry from the previous generation to the current one; its handle.
    fn promote(&mut self, key: Key, cap: usize) -> Option<SeriesHandle> {
        if self.cur.handle(key).is_none()
            && let Some(h) = self.prev.remove(key)
        {
            self.insert(key, h, cap);
        }
        self.cur.handle(key).cloned()
    }
}

/// Scratch space of [`SeriesCache::get_all`], reused across requests.
#[derive(Default)]
pub struct Lookups {
    keys: Vec<Key>,
    /// Indexes into `keys`, grouped by shard.
    order: Vec<u32>,
}

impl Lookups {
    /// Bytes its buffers hold allocated.
    pub fn retained_bytes(&self) -> usize {
        self.keys.capacity() * std::mem::size_of::<Key>()
            + self.order.capacity() * std::mem::size_of::<u32>()
    }
}

/// Label bytes → series handle, for one storage and one set of label bounds.
pub struct SeriesCache {
    // Immutable after construction.
    hasher: SipHasher13,
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
        // The standard library's `RandomState` is seeded from the OS's randomness: hashing two
        // constants under it yields two secret 64-bit keys.
        let seed = std::hash::RandomState::new();
        Self {
            hasher: SipHasher13::new_with_keys(seed.hash_one(0u8), seed.hash_one(1u8)),
            limits,
            shard_cap: max_bytes / SHARDS,
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }

    /// The label bounds every cached series passed.
    pub fn limits(&self) -> &LabelLimits {
        &self.limits
    }

    /// The key of label bytes.
    pub fn key(&self, bytes: &[u8]) -> Key {
        Key(self.hasher.hash(bytes).as_u128())
    }

    fn shard(&self, key: Key) -> &RwLock<Shard> {
        self.shards
            .get(key.shard())
            .unwrap_or_else(|| unreachable!("BUG: shard index masked"))
    }

    /// The handle stored for `key` (a clone: no lock is held meanwhile). Safe to call from
    /// many threads.
    pub fn get_key(&self, key: Key) -> Option<SeriesHandle> {
        let shard = self.shard(key);
        {
            let s = shard.read();
            if let Some(h) = s.cur.handle(key) {
                return Some(h.clone());
            }
            s.prev.handle(key)?;
        }
        // Still in use: move it to the current generation.
        shard.write().promote(key, self.shard_cap)
    }

    /// The handle stored for label bytes `bytes`.
    pub fn get(&self, bytes: &[u8]) -> Option<SeriesHandle> {
        self.get_key(self.key(bytes))
    }

    /// The series stored for each of `keys` (label bytes), held ([`SeriesHandle::hold`]), into
    /// `out`, in order: as [`SeriesCache::get`] of each, taking each shard's lock once. `None`
    /// for a key not cached or whose series the storage dropped. The held series keep the
    /// storage from dropping them: clear `out` once the batch is appended.
    pub fn get_all<'a>(
        &self,
        keys: impl Iterator<Item = &'a [u8]>,
        scratch: &mut Lookups,
        out: &mut Vec<Option<HeldSeries>>,
    ) {
        let Lookups { keys: ks, order } = scratch;
        ks.clear();
        ks.extend(keys.map(|b| self.key(b)));
        out.clear();
        out.resize(ks.len(), None);
        // Group the indexes by shard (a counting sort): `starts[s]..starts[s + 1]` of `order`.
        let mut starts = [0u32; SHARDS + 1];
        for k in ks.iter() {
            if let Some(c) = starts.get_mut(k.shard() + 1) {
                *c += 1;
            }
        }
        let mut acc = 0;
        for c in &mut starts {
            acc += *c;
            *c = acc;
        }
        order.clear();
        order.resize(ks.len(), 0);
        let mut next = starts;
        for (i, k) in ks.iter().enumerate() {
            if let Some(at) = next.get_mut(k.shard()) {
                if let Some(o) = order.get_mut(*at as usize) {
                    *o = i as u32;
                }
                *at += 1;
            }
        }
        let mut in_prev = false;
        for (si, shard) in self.shards.iter().enumerate() {
            let (Some(&a), Some(&b)) = (starts.get(si), starts.get(si + 1)) else {
                continue;
            };
            let Some(idx) = order.get(a as usize..b as usize).filter(|x| !x.is_empty()) else {
                continue;
            };
            let s = shard.read();
            // In groups of `TOUCH`: probe and touch the group's series (plain loads, whose misses
            // overlap), then hold them (a locked instruction each, now on cached lines).
            for group in idx.chunks(TOUCH) {
                let mut found: [Option<&SeriesHandle>; TOUCH] = [None; TOUCH];
                let mut sum = 0usize;
                // Probe all first, then touch all: each probe is a chain of two misses (control
                // bytes, entry) and the touch a third, so the probes overlap each other as far as
                // the core's window reaches, and the touches (one independent load each) all of
                // them.
                for (&i, f) in group.iter().zip(found.iter_mut()) {
                    *f = ks.get(i as usize).and_then(|&k| s.cur.handle(k));
                }
                for f in found.iter().flatten() {
                    sum = sum.wrapping_add(f.touch());
                }
                std::hint::black_box(sum);
                for (&i, f) in group.iter().zip(found) {
                    let (Some(&k), Some(o)) = (ks.get(i as usize), out.get_mut(i as usize)) else {
                        continue;
                    };
                    // Held straight from the entry: no clone of the weak handle.
                    match f {
                        Some(h) => *o = h.hold(),
                        None => in_prev |= s.prev.handle(k).is_some(),
                    }
                }
            }
        }
        if in_prev {
            for (k, o) in ks.iter().zip(out.iter_mut()) {
                if o.is_none() {
                    *o = self.get_key(*k).and_then(|h| h.hold());
                }
            }
        }
    }

    /// Remembers that label bytes `bytes` (which passed validation under
    /// [`SeriesCache::limits`]) are the series `handle` names.
    pub fn insert(&self, bytes: &[u8], handle: SeriesHandle) {
        let key = self.key(bytes);
        self.shard(key).write().insert(key, handle, self.shard_cap);
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

    fn key(i: usize) -> Vec<u8> {
        let mut k = vec![b'x'; 150];
        k[..8].copy_from_slice(&(i as u64).to_le_bytes());
        k
    }

    #[test]
    fn distinct_bytes_are_distinct_series_and_generations_rotate() {
        let max = 1 << 20;
        let c = SeriesCache::with_max_bytes(LabelLimits::default(), max);
        assert_eq!(r(c.get(b"a")), None);
        c.insert(b"a", h(1));
        c.insert(b"ab", h(2));
        c.insert(b"", h(4));
        assert_eq!(r(c.get(b"a")), Some(1));
        assert_eq!(r(c.get(b"ab")), Some(2));
        assert_eq!(r(c.get(b"")), Some(4));
        assert_eq!(r(c.get(b"b")), None);
        c.insert(b"a", h(3));
        assert_eq!(r(c.get(b"a")), Some(3));
        assert_eq!(c.len(), 3);
        // Another cache draws another secret key.
        let other = SeriesCache::with_max_bytes(LabelLimits::default(), max);
        assert_ne!(c.key(b"a"), other.key(b"a"));
        // Far more keys than fit: memory stays bounded, recent keys stay.
        let n = 4 * max / ENTRY_COST;
        for i in 0..n {
            c.insert(&key(i), h(i as u64));
            // Key 0 is written all along: it survives every rotation.
            assert_eq!(r(c.get(&key(0))), Some(0));
        }
        let bytes = c.len() * ENTRY_COST;
        assert!(bytes <= 2 * max, "{bytes} bytes cached");
        assert!(c.len() < n, "old entries were dropped");
        assert_eq!(r(c.get(&key(n - 1))), Some(n as u64 - 1));
    }

    /// `get_all` answers as `get` does, also for entries in the previous generation (which it
    /// moves to the current one), and every one of many similar byte strings finds its own
    /// series.
    #[test]
    fn get_all_agrees_with_get() {
        let max = 1 << 20;
        let c = SeriesCache::with_max_bytes(LabelLimits::default(), max);
        let n = max / ENTRY_COST;
        for i in 0..n {
            c.insert(&key(i), h(i as u64));
        }
        // Some shards rotated: their first keys are in the previous generation now.
        let keys: Vec<Vec<u8>> = (0..n + 100).map(key).collect();
        let want: Vec<Option<u64>> = keys.iter().map(|k| r(c.get(k))).collect();
        let (mut scratch, mut out) = (Lookups::default(), Vec::new());
        for _ in 0..2 {
            c.get_all(keys.iter().map(Vec::as_slice), &mut scratch, &mut out);
            let got: Vec<Option<u64>> =
                out.drain(..).map(|h| h.map(|h| h.series_ref().0)).collect();
            assert_eq!(got, want);
        }
        // Each key finds its own series or (dropped in a rotation) none; most are still there.
        for (i, w) in want.iter().enumerate() {
            assert!(
                w.is_none_or(|w| w == i as u64) && (i < n || w.is_none()),
                "key {i}"
            );
        }
        assert!(want.iter().flatten().count() > n / 2);
        c.get_all(std::iter::empty(), &mut scratch, &mut out);
        assert!(out.is_empty());
    }
}
