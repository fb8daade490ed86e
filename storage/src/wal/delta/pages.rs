//! [`Pages`]: a growable array kept in fixed-size pages instead of one doubling vector.
//!
//! The segment-delta state holds a 32-byte slot per series of a segment. In one `Vec` its
//! capacity doubles: 402,000 scraped series sat in room for 524,288 (16 MiB, 3.8 MiB unused),
//! and each doubling held the old and the new buffer at once (8 + 16 MiB at 262,144 series).
//! In pages of [`PAGE`] elements the unused room is less than one page, and growing allocates
//! one page.

/// Elements per page (a power of two): 4,096 32-byte slots are 128 KiB.
pub(crate) const PAGE: usize = 4096;

/// A growable array of `T` in pages of [`PAGE`] elements; indexes are `u32`.
pub(crate) struct Pages<T> {
    /// Full pages, then the one being filled; each allocated with room for exactly [`PAGE`].
    /// Pages past the one being filled are kept by [`Pages::clear`] for reuse.
    pages: Vec<Vec<T>>,
    /// Elements held.
    len: usize,
}

impl<T> Default for Pages<T> {
    fn default() -> Self {
        Self {
            pages: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Pages<T> {
    /// Number of elements.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The element at `i`.
    #[inline]
    pub(crate) fn get(&self, i: u32) -> Option<&T> {
        let i = i as usize;
        self.pages.get(i / PAGE)?.get(i % PAGE)
    }

    /// The element at `i`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        let i = i as usize;
        self.pages.get_mut(i / PAGE)?.get_mut(i % PAGE)
    }

    /// Appends `x` at index [`Pages::len`].
    #[inline]
    pub(crate) fn push(&mut self, x: T) {
        let p = self.len / PAGE;
        if p == self.pages.len() {
            self.pages.push(Vec::with_capacity(PAGE));
        }
        if let Some(page) = self.pages.get_mut(p) {
            page.push(x);
        }
        self.len += 1;
    }

    /// Removes every element; the pages' memory is kept for reuse.
    pub(crate) fn clear(&mut self) {
        for p in &mut self.pages {
            p.clear();
        }
        self.len = 0;
    }

    /// Bytes allocated for elements.
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.pages.iter().map(|p| p.capacity()).sum::<usize>() * std::mem::size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn indexes_across_pages_and_reuse_after_clear() {
        let mut p = Pages::default();
        let n = 3 * PAGE + 7;
        for i in 0..n {
            p.push(i as u64);
        }
        assert_eq!(p.len(), n);
        for i in [0, 1, PAGE - 1, PAGE, 2 * PAGE + 3, n - 1] {
            assert_eq!(p.get(i as u32), Some(&(i as u64)));
        }
        assert_eq!(p.get(n as u32), None);
        *p.get_mut(PAGE as u32).unwrap() = 99;
        assert_eq!(p.get(PAGE as u32), Some(&99));
        // Less than one page of room beyond the elements.
        assert!(p.allocated_bytes() < (n + PAGE) * 8);
        let before = p.allocated_bytes();
        p.clear();
        assert_eq!((p.len(), p.get(0)), (0, None));
        for i in 0..PAGE + 1 {
            p.push(i as u64 + 1);
        }
        assert_eq!(p.get(PAGE as u32), Some(&(PAGE as u64 + 1)));
        assert_eq!(p.allocated_bytes(), before, "pages are reused");
    }
}
