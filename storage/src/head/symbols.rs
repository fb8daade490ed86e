//! Process-wide interning of label values that many head series repeat: the values of the
//! well-known names `__name__` and `job` (see [`super::labels::SeriesLabels`]).
//!
//! Every series of a metric carries its name and every series of a job the job's name: at 400
//! node-exporter targets the two values were 35 of a series' 83 bytes of packed labels (in
//! mimalloc's classes). A series holds the value's id here instead (1–3 bytes).
//!
//! The table only grows: an interned value is never freed, so its `&'static str` can be handed
//! to every reader without a lock or a guard (a lookup by id is two acquire loads). That is
//! bounded by [`MAX_SYMBOLS`] values of at most [`MAX_SYMBOL_LEN`] bytes: longer values are
//! never interned, and once the table is full new values are kept in the series that use them,
//! as before, while the values already here stay interned. Churn in these values (new metric
//! names, renamed jobs, or a client sending made-up names) therefore costs at most the table's
//! size over the process lifetime: 65,536 × 128 B of text plus ~40 B of map and slot per value,
//! at most ~11 MiB, ~4 MiB for names of typical length.
//!
//! The table is one per process, not one per head: [`SeriesLabels`] reads it without a handle
//! (a handle in each series would cost the bytes this saves). An id means the same value in
//! every head of the process, and the ids never reach a file (the WAL, snapshots and blocks
//! write the values).
//!
//! [`SeriesLabels`]: super::labels::SeriesLabels

use foldhash::fast::FixedState;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

/// Ids per page (a page is allocated at its first id).
const PAGE_BITS: u32 = 10;
const PAGE: usize = 1 << PAGE_BITS;
/// Pages of the process-wide table.
const PAGES: usize = 64;
/// Values the process-wide table holds at most (65,536: ids take at most 3 bytes in
/// `SeriesLabels`' 6-bit groups).
pub(crate) const MAX_SYMBOLS: usize = PAGE * PAGES;
/// Longest value interned (bytes); a longer one stays text in its series, so what the table
/// pins for the process lifetime is bounded whatever clients send.
pub(crate) const MAX_SYMBOL_LEN: usize = 128;

/// An append-only table of interned strings, by id and by value.
pub(crate) struct Symbols {
    // Immutable after construction.
    /// Ids handed out at most (`<= MAX_SYMBOLS`).
    cap: usize,
    /// By id: page `id >> PAGE_BITS`, slot `id % PAGE`. Each slot is set once, under `ids`'
    /// write lock, before its id is returned; read without a lock.
    pages: [OnceLock<Box<[OnceLock<&'static str>]>>; PAGES],
    /// By value: the id of each interned value (its length is the next id).
    ids: RwLock<HashMap<&'static str, u32, FixedState>>,
}

/// The process-wide table.
static SYMBOLS: LazyLock<Symbols> = LazyLock::new(|| Symbols::new(MAX_SYMBOLS));

/// The process-wide table.
#[inline]
pub(crate) fn symbols() -> &'static Symbols {
    &SYMBOLS
}

impl Symbols {
    /// An empty table of at most `cap` values (BUG if above [`MAX_SYMBOLS`]).
    pub(crate) fn new(cap: usize) -> Self {
        assert!(
            cap <= MAX_SYMBOLS,
            "BUG: symbol table of {cap} values, at most {MAX_SYMBOLS}"
        );
        Self {
            cap,
            pages: std::array::from_fn(|_| OnceLock::new()),
            ids: RwLock::new(HashMap::with_hasher(FixedState::default())),
        }
    }

    /// The id of `value`, interning it if new; `None` when it is new and the table is full, or
    /// when it is longer than [`MAX_SYMBOL_LEN`].
    pub(crate) fn intern(&self, value: &str) -> Option<u32> {
        if value.len() > MAX_SYMBOL_LEN {
            return None;
        }
        if let Some(&id) = self.ids.read().get(value) {
            return Some(id);
        }
        let mut ids = self.ids.write();
        if let Some(&id) = ids.get(value) {
            return Some(id);
        }
        if ids.len() >= self.cap {
            return None;
        }
        let id = u32::try_from(ids.len()).unwrap_or_else(|_| unreachable!("BUG: cap below 2^32"));
        let leaked: &'static str = Box::leak(Box::from(value));
        let (page, slot) = Self::place(id);
        let page = self
            .pages
            .get(page)
            .unwrap_or_else(|| unreachable!("BUG: symbol id {id} past the table"))
            .get_or_init(|| (0..PAGE).map(|_| OnceLock::new()).collect());
        if page.get(slot).and_then(|s| s.set(leaked).ok()).is_none() {
            unreachable!("BUG: symbol slot {id} set twice");
        }
        ids.insert(leaked, id);
        Some(id)
    }

    /// The value of `id`, if it was handed out.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<&'static str> {
        let (page, slot) = Self::place(id);
        self.pages.get(page)?.get()?.get(slot)?.get().copied()
    }

    /// Values interned so far.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.read().len()
    }

    #[inline]
    fn place(id: u32) -> (usize, usize) {
        let id = id as usize;
        (id >> PAGE_BITS, id & (PAGE - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once_and_reads_back_across_pages() {
        let t = Symbols::new(3 * PAGE);
        let values: Vec<String> = (0..2 * PAGE + 5).map(|i| format!("v{i}")).collect();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(t.intern(v), Some(i as u32));
        }
        // Again: the same ids, nothing added.
        for (i, v) in values.iter().enumerate() {
            assert_eq!(t.intern(v), Some(i as u32));
            assert_eq!(t.get(i as u32), Some(v.as_str()));
        }
        assert_eq!(t.len(), values.len());
        assert_eq!(t.get(values.len() as u32), None);
        assert_eq!(t.get(u32::MAX), None);
    }

    #[test]
    fn a_full_table_keeps_its_values_and_refuses_new_ones() {
        let t = Symbols::new(2);
        assert_eq!(t.intern("a"), Some(0));
        assert_eq!(t.intern("b"), Some(1));
        assert_eq!(t.intern("c"), None);
        assert_eq!(t.intern("a"), Some(0));
        assert_eq!(t.get(1), Some("b"));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn values_longer_than_the_bound_are_not_interned() {
        let t = Symbols::new(4);
        let at = "n".repeat(MAX_SYMBOL_LEN);
        let over = "n".repeat(MAX_SYMBOL_LEN + 1);
        assert_eq!(t.intern(&over), None);
        assert_eq!(t.len(), 0);
        assert_eq!(t.intern(&at), Some(0));
        assert_eq!(t.get(0), Some(at.as_str()));
    }

    #[test]
    fn threads_agree_on_ids() {
        let t = Symbols::new(MAX_SYMBOLS);
        let got: Vec<Vec<u32>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|k| {
                    let t = &t;
                    s.spawn(move || {
                        (0..500)
                            .map(|i| {
                                let v = format!("x{}", (i * 7 + k * 13) % 300);
                                let id = t.intern(&v).unwrap_or(u32::MAX);
                                assert_eq!(t.get(id), Some(v.as_str()));
                                id
                            })
                            .collect()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        assert_eq!(t.len(), 300);
        for ids in got {
            assert_eq!(ids.len(), 500);
        }
        for i in 0..300 {
            let v = format!("x{i}");
            let id = t.intern(&v).unwrap_or(u32::MAX);
            assert_eq!(t.get(id), Some(v.as_str()));
        }
    }
}
