//! [`Pages`]: a growable array kept in fixed-size pages instead of one doubling vector.
//!
//! The segment-delta state holds a 32-byte slot per series of a segment. In one `Vec` its
//! capacity doubles: 402,000 scraped series sat in room for 524,288 (16 MiB, 3.8 MiB unused),
//! and each doubling held the old and the new buffer at once (8 + 16 MiB at 262,144 series).
//! In pages of [`PAGE`] elements the unused room is less than one page, and growing allocates
//! (and fills) one page.

/// Elements per page (a power of two): 4,096 32-byte slots are 128 KiB.
pub(crate) const PAGE: usize = 4096;

/// A growable array of `T` in pages of [`PAGE`] elements; indexes are `u32`.
///
/// Each page is a fixed-size array, so an element is one bounds check on the page table and
/// a masked index into its page (no second length to load and compare): the segment-delta
/// decoder looks slots up several times per sample.
pub(crate) struct Pages<T> {
    /// Full pages, then the one being filled; pages past it are kept by [`Pages::clear`] for
    /// reuse. Elements at or past `len` are filler ([`Default`]) or left over from before a
    /// clear, and never handed out.
    pages: Vec<Box<[T; PAGE]>>,
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

impl<T: Copy + Default> Pages<T> {
    /// Number of elements.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The element at `i`.
    #[inline]
    pub(crate) fn get(&self, i: u32) -> Option<&T> {
        let i = i as usize;
        if i >= self.len {
            return None;
        }
        self.pages.get(i / PAGE)?.get(i % PAGE)
    }

    /// The element at `i`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        let i = i as usize;
        if i >= self.len {
            return None;
        }
        self.pages.get_mut(i / PAGE)?.get_mut(i % PAGE)
    }

    /// Appends `x` at index [`Pages::len`].
    #[inline]
    pub(crate) fn push(&mut self, x: T) {
        let (p, i) = (self.len / PAGE, self.len % PAGE);
        if p == self.pages.len() {
            self.pages.push(new_page());
        }
        if let Some(page) = self.pages.get_mut(p)
            && let Some(e) = page.get_mut(i)
        {
            *e = x;
        }
        self.len += 1;
    }

    /// Removes every element; the pages' memory is kept for reuse.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Bytes allocated for elements.
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.pages.len() * PAGE * std::mem::size_of::<T>()
    }
}

/// A page of filler elements, allocated on the heap directly (a `[T; PAGE]` built on the
/// stack would be 128 KiB of it).
#[cold]
fn new_page<T: Copy + Default>() -> Box<[T; PAGE]> {
    match vec![T::default(); PAGE].into_boxed_slice().try_into() {
        Ok(page) => page,
        Err(_) => unreachable!("BUG: a page of {PAGE} elements has another length"),
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
