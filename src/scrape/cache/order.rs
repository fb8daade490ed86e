//! [`Order`]: the positions of a target's series in the cache's entries, in the order a body
//! exposed them.
//!
//! A target exposes its series in the same order scrape after scrape, and the cache adds
//! entries in the order it first sees them, so the order is almost always `0, 1, 2, …`. An
//! [`Order`] holds no list then: two lists of 4-byte positions per target (the last
//! scrape's and the one being built) were 3.2 MiB at 400 targets × 1,000 series.

use super::Pos;

/// Positions in exposition order: `0..len` without a list, or the list.
#[derive(Debug, Default)]
pub(super) struct Order {
    /// Number of positions.
    len: usize,
    /// The positions when they are not `0..len` (then `list.len() == len`); empty, with no
    /// allocation kept, while they are.
    list: Vec<Pos>,
}

impl Order {
    /// Number of positions.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The `k`-th position.
    #[inline]
    pub(super) fn get(&self, k: usize) -> Option<Pos> {
        if self.list.is_empty() {
            (k < self.len).then(|| Pos::try_from(k).ok()).flatten()
        } else {
            self.list.get(k).copied()
        }
    }

    /// Appends position `i`. Writes the list out only at the first position that breaks
    /// `0, 1, 2, …`.
    #[inline]
    pub(super) fn push(&mut self, i: Pos) {
        if self.list.is_empty() {
            if i as usize == self.len {
                self.len += 1;
                return;
            }
            self.list.reserve(self.len + 1);
            self.list
                .extend((0..self.len).filter_map(|k| Pos::try_from(k).ok()));
        }
        self.list.push(i);
        self.len += 1;
    }

    /// Empties the order, keeping the list's allocation for the next scrape.
    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.list.clear();
    }

    /// Makes `next` (the order the scrape just built) the current order and empties `next`
    /// for the next scrape. The old list's allocation is kept for reuse only while the order
    /// needs a list.
    pub(super) fn replace_with(&mut self, next: &mut Order) {
        std::mem::swap(self, next);
        next.clear();
        if self.list.is_empty() {
            next.list = Vec::new();
        }
    }

    /// Maps every position `i` to `remap[i]` (`Pos::MAX` where `remap` has none), after the
    /// entries were compacted.
    pub(super) fn remap(&mut self, remap: &[Pos]) {
        if self.list.is_empty() {
            self.list
                .extend((0..self.len).filter_map(|k| Pos::try_from(k).ok()));
        }
        for i in &mut self.list {
            *i = remap.get(*i as usize).copied().unwrap_or(Pos::MAX);
        }
        if self.list.iter().enumerate().all(|(k, &i)| i as usize == k) {
            self.list = Vec::new();
        }
    }

    /// True when the order holds a list (it is not `0..len`).
    #[cfg(test)]
    pub(super) fn has_list(&self) -> bool {
        !self.list.is_empty()
    }

    /// Positions the list's allocation has room for.
    #[cfg(test)]
    pub(super) fn list_capacity(&self) -> usize {
        self.list.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(o: &Order) -> Vec<Pos> {
        (0..o.len()).filter_map(|k| o.get(k)).collect()
    }

    #[test]
    fn holds_no_list_while_positions_count_up() {
        let check = |pushes: &[Pos], want_list: bool| {
            let mut o = Order::default();
            for &i in pushes {
                o.push(i);
            }
            assert_eq!(collect(&o), pushes, "positions of {pushes:?}");
            assert_eq!(o.len(), pushes.len());
            assert_eq!(o.get(pushes.len()), None);
            assert_eq!(o.has_list(), want_list, "list for {pushes:?}");
        };
        check(&[], false);
        check(&[0, 1, 2, 3], false);
        check(&[1], true);
        check(&[0, 1, 3, 2], true);
        check(&[0, 1, 1], true);
        check(&[0, 1, 2, 0, 3], true);
    }

    #[test]
    fn replacing_frees_the_list_once_the_order_counts_up_again() {
        let mut cur = Order::default();
        let mut next = Order::default();
        for i in [2, 0, 1] {
            next.push(i);
        }
        cur.replace_with(&mut next);
        assert_eq!(collect(&cur), [2, 0, 1]);
        assert_eq!(next.len(), 0);
        for i in [0, 1, 2] {
            next.push(i);
        }
        assert!(!next.has_list());
        cur.replace_with(&mut next);
        assert_eq!(collect(&cur), [0, 1, 2]);
        assert!(!cur.has_list());
        assert_eq!(next.list.capacity(), 0, "the old list is let go");
    }

    #[test]
    fn remap_follows_compaction() {
        // Entries 0..5; entries 1 and 3 were dropped: 0 → 0, 2 → 1, 4 → 2.
        let remap = [0, Pos::MAX, 1, Pos::MAX, 2];
        let mut o = Order::default();
        for i in [0, 2, 4] {
            o.push(i);
        }
        o.remap(&remap);
        assert_eq!(collect(&o), [0, 1, 2]);
        assert!(!o.has_list(), "an order that counts up again holds no list");
        let mut o = Order::default();
        for i in [4, 0, 1] {
            o.push(i);
        }
        o.remap(&remap);
        assert_eq!(collect(&o), [2, 0, Pos::MAX]);
        // Counting up from 0 with nothing removed stays without a list.
        let mut o = Order::default();
        for i in [0, 1, 2] {
            o.push(i);
        }
        o.remap(&[0, 1, 2, Pos::MAX]);
        assert_eq!(collect(&o), [0, 1, 2]);
        assert!(!o.has_list());
    }
}
