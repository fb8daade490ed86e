//! The lock of a head series, which also carries the series' 32-bit ref, its three flags and
//! its newest in-order timestamp.
//!
//! `parking_lot::Mutex<SeriesData>` pads its one-byte lock to 8 bytes before the data; the ref
//! and the flags sat in 8 bytes of their own before it. Here they share the lock's word, which
//! puts `Series` (with `Arc`'s counts) in mimalloc's 128-byte class instead of the 160-byte one
//! (see `series_fits_its_allocation_class` in `head::series`). The newest timestamp follows in
//! the next word (moved out of `SeriesData`, so the size is unchanged): an appender reads it
//! without taking the lock (`SeriesData::check_unlocked`).
//!
//! The one `unsafe` of the head: [`lock_api::RawMutex`] is an unsafe trait, and
//! [`SeriesRawMutex`]'s impl of it only delegates to `parking_lot::RawMutex`. Reading the ref
//! and the flags goes through `lock_api::Mutex::raw`, also unsafe (see [`raw`]).

use lock_api::RawMutex as _;
use std::sync::atomic::{AtomicBool, AtomicI64};

/// `parking_lot`'s raw mutex with a series' ref, flags and newest in-order timestamp beside
/// it: 16 bytes.
pub(crate) struct SeriesRawMutex {
    /// The lock itself; the other fields take no part in locking.
    lock: parking_lot::RawMutex,
    /// See `Series::logged`.
    logged: AtomicBool,
    /// See `Series::removed`.
    removed: AtomicBool,
    /// Set (under the lock, never cleared) when the series' data first holds histograms: see
    /// `SeriesData::hist_or_default`.
    hist: AtomicBool,
    /// Head series ref, immutable (see `Series::id`).
    id32: u32,
    /// The newest in-order float sample's timestamp (`head::series::NO_LAST` when none),
    /// written only while holding the lock (`SeriesData::set_last` and the appends), with
    /// `Release`; read under the lock, or without it by `SeriesData::check_unlocked`.
    last_t: AtomicI64,
}

impl SeriesRawMutex {
    /// An unlocked mutex of series `id32`, flags clear, no newest timestamp (`last_t` is
    /// `i64::MIN`, `head::series::NO_LAST`). Outside a mutex, a stand-in for a series' lock
    /// word in tests of `SeriesData`.
    pub(crate) const fn new(id32: u32) -> Self {
        Self {
            lock: parking_lot::RawMutex::INIT,
            logged: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            hist: AtomicBool::new(false),
            id32,
            last_t: AtomicI64::new(i64::MIN),
        }
    }

    /// Whether the series ever held histograms (see the field).
    #[inline]
    pub(crate) fn hist(&self) -> &AtomicBool {
        &self.hist
    }

    /// The newest in-order float timestamp (see the field).
    #[inline]
    pub(crate) fn last_t(&self) -> &AtomicI64 {
        &self.last_t
    }

    /// Head series ref.
    #[inline]
    pub(crate) fn id32(&self) -> u32 {
        self.id32
    }

    /// `Series::logged`.
    #[inline]
    pub(crate) fn logged(&self) -> &AtomicBool {
        &self.logged
    }

    /// `Series::removed`.
    #[inline]
    pub(crate) fn removed(&self) -> &AtomicBool {
        &self.removed
    }
}

#[expect(
    unsafe_code,
    reason = "lock_api::RawMutex is an unsafe trait; the impl delegates to parking_lot's"
)]
// SAFETY: every method forwards to `parking_lot::RawMutex`'s, which implements the trait's
// contract; a `SeriesRawMutex` is locked exactly when its `lock` is, and its other fields take
// no part in locking. `GuardMarker` is parking_lot's.
unsafe impl lock_api::RawMutex for SeriesRawMutex {
    const INIT: Self = Self::new(0);
    type GuardMarker = <parking_lot::RawMutex as lock_api::RawMutex>::GuardMarker;

    #[inline]
    fn lock(&self) {
        self.lock.lock();
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.lock.try_lock()
    }

    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: this method's contract (the lock is held in the current context) is the
        // inner lock's, as `lock` and `try_lock` take only the inner lock.
        unsafe { self.lock.unlock() }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }
}

/// A series' mutex: `T` (the series' data) under a [`SeriesRawMutex`].
pub(crate) type SeriesMutex<T> = lock_api::Mutex<SeriesRawMutex, T>;

/// A held [`SeriesMutex`].
pub(crate) type SeriesGuard<'a, T> = lock_api::MutexGuard<'a, SeriesRawMutex, T>;

/// An unlocked mutex over `data` for series `id32`, flags clear.
pub(crate) const fn new_mutex<T>(id32: u32, data: T) -> SeriesMutex<T> {
    lock_api::Mutex::from_raw(SeriesRawMutex::new(id32), data)
}

/// The raw mutex of `m`, to read the series' ref and flags.
#[inline]
pub(crate) fn raw<T>(m: &SeriesMutex<T>) -> &SeriesRawMutex {
    #[expect(
        unsafe_code,
        reason = "lock_api::Mutex::raw is unsafe: the raw lock could be unlocked under a guard"
    )]
    // SAFETY: the reference cannot unlock the mutex without another `unsafe` call
    // (`RawMutex::unlock`), which the crate makes nowhere (`#![deny(unsafe_code)]`; the impl
    // above only forwards); callers read the ref and the flags.
    unsafe {
        m.raw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_and_flags_share_the_lock_word_and_survive_locking() {
        assert_eq!(std::mem::size_of::<SeriesRawMutex>(), 16);
        let m = new_mutex(u32::MAX, 7u64);
        let r = raw(&m);
        assert_eq!(r.id32(), u32::MAX);
        assert!(!r.logged().load(std::sync::atomic::Ordering::Relaxed));
        {
            let mut g = m.lock();
            *g += 1;
            assert!(m.is_locked());
            assert!(m.try_lock().is_none());
            r.removed()
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        assert!(!m.is_locked());
        assert_eq!(*m.lock(), 8);
        assert_eq!(raw(&m).id32(), u32::MAX);
        assert!(raw(&m).removed().load(std::sync::atomic::Ordering::Relaxed));
    }
}
