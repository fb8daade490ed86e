//! Roaring postings: series ids per `name=value`, and the set operations the querier needs.
//!
//! Blocks get postings from their index; the head keeps [`MemPostings`]. Ids are `u32`: block
//! series ids, and head series refs (which the head keeps below 2^32).

use roaring::RoaringBitmap;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// In-memory postings of the head: `name → value → ids`, plus the set of all ids.
///
/// Not synchronised; the head keeps it behind one `RwLock` (written only when series are
/// created or garbage-collected, never per sample).
#[derive(Default)]
pub(crate) struct MemPostings {
    by_name: HashMap<Arc<str>, HashMap<Arc<str>, RoaringBitmap>>,
    all: RoaringBitmap,
}

impl MemPostings {
    /// Adds series `id` with the given label pairs. The map keeps one copy of each name and of
    /// each value per name, made when the first series with it arrives.
    pub(crate) fn add<'a>(&mut self, id: u32, labels: impl Iterator<Item = (&'a str, &'a str)>) {
        for (n, v) in labels {
            if !self.by_name.contains_key(n) {
                self.by_name.insert(Arc::from(n), HashMap::new());
            }
            let Some(values) = self.by_name.get_mut(n) else {
                continue;
            };
            match values.get_mut(v) {
                Some(bm) => {
                    bm.insert(id);
                }
                None => {
                    values.insert(Arc::from(v), RoaringBitmap::from_iter([id]));
                }
            }
        }
        self.all.insert(id);
    }

    /// Removes series `id` with the given label pairs; drops emptied entries.
    pub(crate) fn remove<'a>(&mut self, id: u32, labels: impl Iterator<Item = (&'a str, &'a str)>) {
        for (n, v) in labels {
            let Some(values) = self.by_name.get_mut(n) else {
                continue;
            };
            if let Some(bm) = values.get_mut(v) {
                bm.remove(id);
                if bm.is_empty() {
                    values.remove(v);
                }
            }
            if values.is_empty() {
                self.by_name.remove(n);
            }
        }
        self.all.remove(id);
    }

    /// Ids with `name=value` (empty when none).
    pub(crate) fn get(&self, name: &str, value: &str) -> RoaringBitmap {
        self.by_name
            .get(name)
            .and_then(|vals| vals.get(value))
            .cloned()
            .unwrap_or_default()
    }

    /// All ids.
    pub(crate) fn all(&self) -> RoaringBitmap {
        self.all.clone()
    }

    /// Sorted label names.
    pub(crate) fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_name.keys().map(|k| k.to_string()).collect();
        v.sort_unstable();
        v
    }

    /// Sorted values of `name`.
    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_name
            .get(name)
            .map(|vals| vals.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Number of distinct values of `name`.
    pub(crate) fn value_count(&self, name: &str) -> usize {
        self.by_name.get(name).map_or(0, HashMap::len)
    }

    /// The smallest `limit` values of `name`, sorted, among those whose ids intersect `filter`
    /// (every value when `None`). Visits every value once but holds at most `limit` of them (a
    /// bounded max-heap), and skips the intersection for values already too large to enter.
    pub(crate) fn label_values_limited(
        &self,
        name: &str,
        filter: Option<&RoaringBitmap>,
        limit: usize,
    ) -> Vec<String> {
        let Some(vals) = self.by_name.get(name) else {
            return Vec::new();
        };
        if limit == 0 {
            return Vec::new();
        }
        if limit >= vals.len() {
            // Everything may be answered: filter, sort the references, copy once.
            let mut v: Vec<&str> = vals
                .iter()
                .filter(|(_, ids)| filter.is_none_or(|f| !ids.is_disjoint(f)))
                .map(|(v, _)| v.as_ref())
                .collect();
            v.sort_unstable();
            return v.into_iter().map(str::to_string).collect();
        }
        let mut heap: BinaryHeap<&str> = BinaryHeap::with_capacity(limit.min(vals.len()) + 1);
        for (v, ids) in vals {
            if heap.len() >= limit && heap.peek().is_some_and(|top| v.as_ref() >= *top) {
                continue;
            }
            if filter.is_some_and(|f| ids.is_disjoint(f)) {
                continue;
            }
            heap.push(v);
            if heap.len() > limit {
                heap.pop();
            }
        }
        heap.into_sorted_vec()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Calls `f(name, value, ids)` for every pair (unordered). For statistics.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&str, &str, &RoaringBitmap)) {
        for (n, vals) in &self.by_name {
            for (v, bm) in vals {
                f(n, v, bm);
            }
        }
    }

    /// Approximate heap bytes used (bitmaps serialized size plus map entries).
    pub(crate) fn heap_bytes(&self) -> usize {
        let mut total = self.all.serialized_size();
        for vals in self.by_name.values() {
            total += 48;
            for bm in vals.values() {
                total += bm.serialized_size() + 48;
            }
        }
        total
    }
}

/// Intersection of all `sets`; `None` when there are no sets (meaning "no restriction").
pub(crate) fn intersect_all(mut sets: Vec<RoaringBitmap>) -> Option<RoaringBitmap> {
    // Smallest first keeps intermediate results small.
    sets.sort_by_key(|b| b.len());
    let mut it = sets.into_iter();
    let mut acc = it.next()?;
    for s in it {
        if acc.is_empty() {
            break;
        }
        acc &= s;
    }
    Some(acc)
}

/// Union of `sets`.
pub(crate) fn union_all(sets: impl IntoIterator<Item = RoaringBitmap>) -> RoaringBitmap {
    let mut acc = RoaringBitmap::new();
    for s in sets {
        acc |= s;
    }
    acc
}

/// Postings set operations for the root crate's criterion bench (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod bench {
    use roaring::RoaringBitmap;

    /// Postings lists as the querier holds them.
    pub struct Sets(Vec<RoaringBitmap>);

    impl Sets {
        /// Builds one bitmap per sorted id list.
        pub fn new(lists: &[Vec<u32>]) -> Self {
            Self(lists.iter().map(|l| l.iter().copied().collect()).collect())
        }

        /// Intersects copies of all sets (the querier owns the bitmaps it gets), returning the
        /// result's cardinality.
        pub fn intersect(&self) -> u64 {
            super::intersect_all(self.0.clone()).map_or(0, |b| b.len())
        }

        /// Subtracts every other set from the first, returning the cardinality.
        pub fn subtract(&self) -> u64 {
            let mut it = self.0.iter();
            let Some(first) = it.next() else { return 0 };
            let mut acc = first.clone();
            for s in it {
                acc -= s;
            }
            acc.len()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn add_get_remove() {
        let mut p = MemPostings::default();
        p.add(1, [("job", "x"), ("i", "1")].into_iter());
        p.add(2, [("job", "x"), ("i", "2")].into_iter());
        assert_eq!(p.get("job", "x").iter().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(p.label_names(), vec!["i", "job"]);
        assert_eq!(p.label_values("i"), vec!["1", "2"]);
        p.remove(1, [("job", "x"), ("i", "1")].into_iter());
        assert_eq!(p.get("job", "x").iter().collect::<Vec<_>>(), vec![2]);
        assert_eq!(p.label_values("i"), vec!["2"]);
        assert!(p.get("nope", "x").is_empty());
        assert_eq!(p.all().len(), 1);
    }

    proptest! {
        #[test]
        fn set_ops_match_btreeset(sets in proptest::collection::vec(
            proptest::collection::btree_set(0u32..200, 0..50), 0..5)) {
            let bms: Vec<RoaringBitmap> = sets.iter().map(|s| s.iter().copied().collect()).collect();
            let want_i = sets.iter().cloned().reduce(|x, y| x.intersection(&y).copied().collect());
            let got_i = intersect_all(bms.clone()).map(|b| b.iter().collect::<BTreeSet<_>>());
            prop_assert_eq!(want_i, got_i);
            let want_u: BTreeSet<u32> = sets.iter().flatten().copied().collect();
            let got_u: BTreeSet<u32> = union_all(bms).iter().collect();
            prop_assert_eq!(want_u, got_u);
        }
    }
}
