//! Loading a head snapshot or delta on two threads: a decoding thread reads the file's sections
//! (CRC, zstd, entry decoding) while the loading thread inserts what was decoded into the head.
//!
//! Between the two sits a step either thread may take ([`Prepare`]: for series the label set,
//! its hash and the open chunk's encoder state; for pages the shared copy of the bytes). The
//! decoding thread hands items over unprepared while the loading thread has at most one item
//! to work on (it would soon wait otherwise), and prepares them itself while the loading
//! thread is behind, so both stay busy whichever side is slower on a given file.
//!
//! The head is changed by one thread only and in file order, so the head built is the one a
//! sequential load builds: the decoding thread touches nothing but the file and its own
//! buffers. At most [`IN_FLIGHT`] items wait between the two (series are handed over
//! [`SERIES_PER_ITEM`] at a time, pages are chunk pages of 1 MiB by default), plus the one each
//! thread holds and the series section being decoded (~1 MiB of entries): a few MiB whatever
//! the snapshot's size.
//!
//! Errors: the first error in file order wins. When the loading thread fails it drops its end
//! of the channel, the decoding thread's next hand-over fails and it stops; when the decoding
//! thread fails (a torn or corrupt file) the channel closes after the items before the bad one.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::Head;
use super::series::{ClosedChunk, OpenChunk, Series};
use super::snapshot::{PageFrame, SeriesImage};
use crate::chunk::XorChunk;
use crate::error::{Error, Result};
use crate::model::{Label, Labels, Timestamp};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use thin_vec::ThinVec;

/// Items waiting for the loading thread.
const IN_FLIGHT: usize = 2;

/// Series entries handed over at a time (a series section holds thousands): small enough that
/// the two threads' shares even out within a section.
pub(super) const SERIES_PER_ITEM: usize = 512;

/// An item of [`pipelined`]: `prepare` turns it into what the loading thread consumes (on the
/// thread that has time for it); a prepared item prepares to itself.
pub(super) trait Prepare: Sized + Send {
    /// The item ready to consume.
    fn prepare(self) -> Result<Self>;
}

/// Runs `produce` on a scoped decoding thread; each item it hands over (through the closure it
/// is given, in order) is prepared on one of the two threads and passed to `consume` on the
/// calling thread. Returns what `produce` returned, or the first error of either side.
pub(super) fn pipelined<T: Prepare, M: Send>(
    produce: impl FnOnce(&mut dyn FnMut(T) -> Result<()>) -> Result<M> + Send,
    mut consume: impl FnMut(T) -> Result<()>,
) -> Result<M> {
    let (tx, rx) = mpsc::sync_channel::<T>(IN_FLIGHT);
    // Items handed over and not consumed yet (queued or being consumed).
    let pending = AtomicUsize::new(0);
    let pending = &pending;
    std::thread::scope(|scope| {
        let producer = std::thread::Builder::new()
            .name("snapshot-decode".into())
            .spawn_scoped(scope, move || {
                produce(&mut |item| {
                    let item = if pending.load(Ordering::Acquire) > 1 {
                        item.prepare()?
                    } else {
                        item
                    };
                    pending.fetch_add(1, Ordering::AcqRel);
                    // A send fails only once the loading thread stopped on an error, which wins.
                    tx.send(item).map_err(|_| Error::Closed)
                })
            })
            .map_err(|e| Error::io("cannot start the snapshot decoding thread", e))?;
        let mut failed = None;
        for item in &rx {
            if let Err(e) = item.prepare().and_then(&mut consume) {
                failed = Some(e);
                break;
            }
            pending.fetch_sub(1, Ordering::AcqRel);
        }
        drop(rx);
        let produced = match producer.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        match failed {
            Some(e) => Err(e),
            None => produced,
        }
    })
}

/// Hands `list` to `send` in items of at most [`SERIES_PER_ITEM`] entries, each made by `item`.
pub(super) fn send_in_parts<E, T>(
    list: Vec<E>,
    item: impl Fn(Vec<E>) -> T,
    send: &mut dyn FnMut(T) -> Result<()>,
) -> Result<()> {
    if list.len() <= SERIES_PER_ITEM {
        return send(item(list));
    }
    let mut it = list.into_iter();
    loop {
        let part: Vec<E> = it.by_ref().take(SERIES_PER_ITEM).collect();
        if part.is_empty() {
            return Ok(());
        }
        send(item(part))?;
    }
}

/// A page of a snapshot or delta made ready for [`super::chunk_files::HeadChunkFiles`].
pub(super) struct ReadyPage {
    pub(super) seq: u32,
    pub(super) max_t: Timestamp,
    pub(super) bytes: PageBytes,
}

/// A completed page is shared (`Arc`); the page being filled stays growable.
pub(super) enum PageBytes {
    Full(Arc<[u8]>),
    Current(Vec<u8>),
}

impl ReadyPage {
    /// Decompresses `p` of the file at `path` (on either thread).
    pub(super) fn new(p: PageFrame, path: &Path) -> Result<Self> {
        let (seq, max_t, off) = (p.seq, p.max_t, p.off);
        let bytes = p
            .bytes()
            .ok_or_else(|| Error::corruption(path, off, "bad PAGE section"))?;
        Ok(Self { seq, max_t, bytes })
    }

    /// Adds the page to `head`'s chunk pages.
    pub(super) fn import(self, head: &Head) {
        match self.bytes {
            PageBytes::Full(b) => head.chunk_files.import_full_page(self.seq, self.max_t, b),
            PageBytes::Current(b) => head.chunk_files.import_page(self.seq, self.max_t, b, true),
        }
    }
}

/// A series entry decoded as far as it can be without the head: its label set and that set's
/// hash, and its open chunk's encoder state (read from the chunk's bytes) checked against the
/// entry's time range.
pub(super) struct Prepared {
    id: u64,
    labels: Labels,
    hash: u64,
    // The lists in the head's own form, allocated here (they stay in the head).
    closed: ThinVec<ClosedChunk>,
    open: Option<OpenChunk>,
    ooo: ThinVec<(Timestamp, f64)>,
    last: Option<(Timestamp, u64)>,
}

/// Whether `last`, a series' newest in-order sample, is at or after the last sample of its open
/// chunk `open`, as the head keeps them: an in-order append goes to the open chunk when it is
/// after `last`, so a chunk ending later would be handed a time it already holds (a BUG panic
/// in the chunk's encoder). A snapshot that breaks this is corrupt, whatever its CRCs say.
pub(super) fn newest_covers(open: Option<&OpenChunk>, last: Option<(Timestamp, u64)>) -> bool {
    match open.and_then(|o| o.chunk.last_t()) {
        None => true,
        Some(t) => last.is_some_and(|(lt, _)| lt >= t),
    }
}

impl Prepared {
    /// Prepares `img` (on any thread).
    pub(super) fn new(img: SeriesImage) -> Result<Self> {
        let labels = Labels::new(
            img.labels
                .into_iter()
                .map(|(n, v)| Label::new(n, v))
                .collect(),
        );
        let open = match img.open {
            Some((min_t, max_t, bytes)) => {
                // The open chunk's time range is read from its bytes; the image's copy must
                // agree.
                let o = OpenChunk {
                    chunk: XorChunk::from_bytes(&bytes)?,
                };
                if (o.min_t(), o.max_t()) != (min_t, max_t) {
                    return Err(Error::corruption(
                        "<snapshot>",
                        img.id,
                        format!(
                            "open chunk of series {} spans [{}, {}], its entry says [{min_t}, {max_t}]",
                            img.id,
                            o.min_t(),
                            o.max_t()
                        ),
                    ));
                }
                Some(o)
            }
            None => None,
        };
        if !newest_covers(open.as_ref(), img.last) {
            return Err(Error::corruption(
                "<snapshot>",
                img.id,
                format!(
                    "the newest sample of series {} is before its open chunk's end",
                    img.id
                ),
            ));
        }
        Ok(Self {
            id: img.id,
            hash: labels.stable_hash(),
            labels,
            closed: img.closed.into(),
            open,
            ooo: img.ooo.into(),
            last: img.last,
        })
    }

    /// Creates the series in `head` with its samples. A series already in the head (listed
    /// twice, or its ref taken) is corruption. Returns the series and the label set it was
    /// made from: a caller on another thread than the one that prepared it may hand that back
    /// to be freed there (mimalloc frees on the allocating thread's heap at a lower cost).
    pub(super) fn insert(self, head: &Head) -> Result<(Arc<Series>, Labels)> {
        let (s, created) = head.create_hashed(&self.labels, self.hash, Some(self.id))?;
        if !created || s.id() != self.id {
            return Err(Error::corruption(
                "<snapshot>",
                self.id,
                "series listed twice in a head snapshot",
            ));
        }
        s.logged().store(true, Ordering::Release);
        let mut d = s.data.lock();
        d.closed = self.closed;
        d.open = self.open;
        d.set_ooo(self.ooo);
        d.set_last(s.lock_word(), self.last);
        drop(d);
        Ok((s, self.labels))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    /// A test item: `Raw(i)` prepares to `Done(i)`, `Bad` fails to prepare.
    #[derive(Debug, PartialEq)]
    enum It {
        Raw(u32),
        Done(u32),
        Bad(u32),
    }

    impl Prepare for It {
        fn prepare(self) -> Result<Self> {
            match self {
                It::Raw(i) => Ok(It::Done(i)),
                It::Bad(i) => Err(Error::corruption("f", u64::from(i), "bad item")),
                done => Ok(done),
            }
        }
    }

    #[test]
    fn every_item_reaches_the_consumer_prepared_and_in_order() {
        let mut got = Vec::new();
        let ret = pipelined(
            |send| {
                for i in 0..1000u32 {
                    send(It::Raw(i))?;
                }
                Ok("done")
            },
            |i| {
                got.push(i);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(ret, "done");
        assert_eq!(got, (0..1000).map(It::Done).collect::<Vec<_>>());
    }

    #[test]
    fn a_producer_error_arrives_after_the_items_before_it() {
        let mut got = Vec::new();
        let err = pipelined(
            |send| {
                for i in 0..10u32 {
                    send(It::Raw(i))?;
                }
                Err::<(), _>(Error::corruption("f", 70, "torn"))
            },
            |i| {
                got.push(i);
                Ok(())
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Corruption { offset: 70, .. }),
            "{err:?}"
        );
        assert_eq!(got, (0..10).map(It::Done).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_failure_in_order_wins_on_either_thread() {
        // Item 5 fails to prepare (on whichever thread prepares it), the producer fails after
        // item 8: item 5's error is returned and nothing after it is consumed.
        let mut got = Vec::new();
        let err = pipelined(
            |send| {
                for i in 0..8u32 {
                    send(if i == 5 { It::Bad(i) } else { It::Raw(i) })?;
                }
                Err::<(), _>(Error::corruption("f", 80, "torn"))
            },
            |i| {
                got.push(i);
                Ok(())
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Corruption { offset: 5, .. }),
            "{err:?}"
        );
        assert_eq!(got, (0..5).map(It::Done).collect::<Vec<_>>());
    }

    #[test]
    fn a_consumer_error_stops_the_producer_and_wins() {
        let mut sent = 0u32;
        let err = pipelined(
            |send| {
                for i in 0..1_000_000u32 {
                    send(It::Raw(i))?;
                    sent += 1;
                }
                Ok(())
            },
            |i| {
                if i == It::Done(5) {
                    return Err(Error::corruption("f", 5, "bad entry"));
                }
                Ok(())
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Corruption { offset: 5, .. }),
            "{err:?}"
        );
        // The producer stopped at its first hand-over after the consumer's error.
        assert!(sent < 5 + IN_FLIGHT as u32 + 2, "{sent} sent");
    }

    #[test]
    fn lists_are_handed_over_in_parts_in_order() {
        let check = |n: usize, want_parts: usize| {
            let mut parts = Vec::new();
            send_in_parts((0..n).collect(), |p: Vec<usize>| p, &mut |p| {
                parts.push(p);
                Ok(())
            })
            .unwrap();
            assert_eq!(parts.len(), want_parts, "{n} entries");
            assert!(parts.iter().all(|p| p.len() <= SERIES_PER_ITEM));
            assert_eq!(parts.concat(), (0..n).collect::<Vec<_>>());
        };
        check(0, 1);
        check(1, 1);
        check(SERIES_PER_ITEM, 1);
        check(SERIES_PER_ITEM + 1, 2);
        check(3 * SERIES_PER_ITEM, 3);
    }
}
