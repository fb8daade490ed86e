//! WAL record compression (segment version 2): a frame's codec (the top 4 bits of its first
//! word, see `segment.rs`) says whether its payload is the record or one zstd frame of it.
//! Transparent to record types: whole records are compressed after `record.rs` encodes them and
//! decompressed before it decodes them.
//!
//! ```text
//! codec 0  payload = the record
//! codec 1  payload = one zstd frame of the record: level 1, content size set (1..=64 MiB),
//!          no zstd checksum (the frame's CRC32 covers the stored bytes)
//! ```
//! The writer stores a record plain when it is shorter than [`MIN_COMPRESS`] bytes or when zstd
//! does not make it smaller. zstd level 1 was chosen over snappy (Prometheus's WAL codec) and
//! zstd levels 2–3 on the harness's remote-write data (`storage/benches/wal_codec.rs`, figures
//! in `benches/README.md`): 5.5 B/sample against snappy's 7.9 and 12.7 plain, for about
//! 0.1 CPU s per million samples.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::segment::{self, MAX_RECORD_LEN};

/// Codec: the payload is the record.
pub(crate) const CODEC_PLAIN: u8 = 0;
/// Codec: the payload is one zstd frame holding the record.
pub(crate) const CODEC_ZSTD: u8 = 1;
/// The highest codec a version 2 segment may hold.
pub(crate) const MAX_CODEC: u8 = CODEC_ZSTD;
/// zstd level of WAL records.
pub(crate) const ZSTD_LEVEL: i32 = 1;
/// Records shorter than this are stored plain: a zstd frame header costs 6–9 bytes and short
/// records (a scrape of a few series, a tombstone) hold little redundancy. Remote-write and
/// scrape batches are kilobytes.
pub(crate) const MIN_COMPRESS: usize = 256;

/// Frames records, compressing them; one per writer (the zstd context is reused).
pub(crate) struct Compressor {
    /// Created on first use; `None` also after a failed creation (records are then stored plain).
    z: Option<zstd::bulk::Compressor<'static>>,
    /// Whether creating `z` was tried already.
    tried: bool,
    /// Compressed body scratch.
    buf: Vec<u8>,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    /// A compressor; the zstd context is created on the first record worth compressing.
    pub(crate) fn new() -> Self {
        Self {
            z: None,
            tried: false,
            buf: Vec::new(),
        }
    }

    fn context(&mut self) -> Option<&mut zstd::bulk::Compressor<'static>> {
        if !self.tried {
            self.tried = true;
            let made = zstd::bulk::Compressor::new(ZSTD_LEVEL).and_then(|mut c| {
                c.include_checksum(false)?;
                c.include_contentsize(true)?;
                c.include_dictid(false)?;
                Ok(c)
            });
            match made {
                Ok(c) => self.z = Some(c),
                Err(e) => tracing::warn!("WAL records stay uncompressed: no zstd context: {e}"),
            }
        }
        self.z.as_mut()
    }

    /// Appends one frame holding `record` to `dst`: zstd-compressed when that is smaller, plain
    /// otherwise. BUG if the record is empty or longer than [`MAX_RECORD_LEN`].
    pub(crate) fn put_frame(&mut self, dst: &mut Vec<u8>, record: &[u8]) {
        if record.len() >= MIN_COMPRESS {
            let bound = zstd::zstd_safe::compress_bound(record.len());
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            buf.reserve(bound);
            let ok = match self.context() {
                Some(z) => z.compress_to_buffer(record, &mut buf).is_ok(),
                None => false,
            };
            let smaller = ok && !buf.is_empty() && buf.len() < record.len();
            if smaller {
                segment::put_frame_codec(dst, CODEC_ZSTD, &buf);
            }
            self.buf = buf;
            if smaller {
                return;
            }
        }
        segment::put_frame(dst, record);
    }
}

/// Compressors of a WAL's writers that frame their records before taking the WAL's lock, so
/// that concurrent commits compress in parallel. At most [`MAX_COMPRESSORS`] exist (each holds
/// a zstd context of about a MiB): a commit that finds none idle leaves its records to the WAL,
/// which frames them under its lock as before.
#[derive(Default)]
pub(crate) struct CompressorPool {
    /// Idle compressors; guarded by its mutex.
    idle: parking_lot::Mutex<Vec<Compressor>>,
    /// Compressors made so far (never more than [`MAX_COMPRESSORS`]).
    made: std::sync::atomic::AtomicUsize,
}

/// Most compressors a pool makes: more than the cores that can compress at once.
const MAX_COMPRESSORS: usize = 8;

impl CompressorPool {
    /// An idle compressor, a new one, or None when [`MAX_COMPRESSORS`] are busy.
    pub(crate) fn take(&self) -> Option<Compressor> {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(c) = self.idle.lock().pop() {
            return Some(c);
        }
        self.made
            .fetch_update(Relaxed, Relaxed, |n| (n < MAX_COMPRESSORS).then_some(n + 1))
            .ok()
            .map(|_| Compressor::new())
    }

    /// Returns a compressor [`CompressorPool::take`] gave.
    pub(crate) fn put(&self, c: Compressor) {
        self.idle.lock().push(c);
    }
}

/// Turns frame payloads back into records; one per reader (the zstd context and the output
/// buffer are reused).
#[derive(Default)]
pub(crate) struct Decompressor {
    z: Option<zstd::bulk::Decompressor<'static>>,
    buf: Vec<u8>,
}

impl Decompressor {
    /// The record held by a frame's `payload` stored with `codec` (untrusted; CRC-checked
    /// already). Errors name what is wrong; the caller adds the place.
    pub(crate) fn record<'s>(
        &'s mut self,
        codec: u8,
        payload: &'s [u8],
    ) -> Result<&'s [u8], String> {
        match codec {
            CODEC_PLAIN => Ok(payload),
            CODEC_ZSTD => {
                self.decompress(payload)?;
                Ok(&self.buf)
            }
            other => Err(format!("unknown WAL record codec {other}")),
        }
    }

    /// Decompresses one zstd frame of 1..=[`MAX_RECORD_LEN`] bytes (as its header declares,
    /// checked before any allocation) into `self.buf`.
    fn decompress(&mut self, body: &[u8]) -> Result<(), String> {
        let declared = match zstd::zstd_safe::get_frame_content_size(body) {
            Ok(Some(n)) => n,
            Ok(None) => return Err("zstd record without a content size".to_string()),
            Err(_) => return Err("bad zstd frame header".to_string()),
        };
        let want = usize::try_from(declared)
            .ok()
            .filter(|n| (1..=MAX_RECORD_LEN).contains(n))
            .ok_or_else(|| format!("zstd record declares {declared} bytes"))?;
        let z = match self.z.as_mut() {
            Some(z) => z,
            None => self.z.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|e| format!("cannot create a zstd context: {e}"))?,
            ),
        };
        self.buf.clear();
        self.buf.reserve(want);
        // `decompress_to_buffer` never writes past the capacity; a frame that inflates to more
        // than it declared fails or shows as a length mismatch.
        let n = z
            .decompress_to_buffer(body, &mut self.buf)
            .map_err(|e| format!("cannot decompress record: {e}"))?;
        if n != want {
            return Err(format!("zstd record of {n} bytes, {want} declared"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::wal::segment::SegmentReader;
    use proptest::prelude::*;
    use std::path::Path;

    /// The codec and payload of the single frame `put` writes, read back through the segment
    /// reader.
    fn frame(put: impl FnOnce(&mut Vec<u8>)) -> (u8, Vec<u8>) {
        let mut seg = Vec::new();
        segment::put_segment_header(&mut seg);
        put(&mut seg);
        let mut r = SegmentReader::new(&seg, Path::new("seg"));
        assert!(r.next(), "{:?}", r.take_err());
        let (codec, p) = r.payload();
        (codec, p.to_vec())
    }

    fn noise(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn compresses_when_smaller_else_plain() {
        let mut c = Compressor::new();
        let mut d = Decompressor::default();
        let check = |c: &mut Compressor, d: &mut Decompressor, rec: &[u8], want: u8| {
            let (codec, p) = frame(|f| c.put_frame(f, rec));
            assert_eq!(codec, want, "record of {} bytes", rec.len());
            assert!(p.len() <= rec.len());
            assert_eq!(d.record(codec, &p).unwrap(), rec);
        };
        check(&mut c, &mut d, &[2; 4096], CODEC_ZSTD);
        check(&mut c, &mut d, &[2; MIN_COMPRESS - 1], CODEC_PLAIN);
        check(&mut c, &mut d, &noise(4096), CODEC_PLAIN);
    }

    #[test]
    fn corrupt_payloads_are_errors() {
        let mut d = Decompressor::default();
        let mut check = |codec: u8, p: &[u8], want: &str| {
            let err = d.record(codec, p).unwrap_err();
            assert!(err.contains(want), "want {want:?}, got {err:?}");
        };
        check(7, &[1, 2], "unknown WAL record codec 7");
        check(CODEC_ZSTD, &[1, 2, 3], "bad zstd frame header");
        check(CODEC_ZSTD, &[], "bad zstd frame header");
        let big = zstd::bulk::compress(&vec![0; MAX_RECORD_LEN + 1], ZSTD_LEVEL).unwrap();
        check(CODEC_ZSTD, &big, "declares 67108865 bytes");
        let good = zstd::bulk::compress(&[5; 1000], ZSTD_LEVEL).unwrap();
        check(CODEC_ZSTD, &good[..good.len() - 4], "cannot decompress");
        // Two frames back to back inflate to more than the first declares.
        let two = [good.clone(), good.clone()].concat();
        check(CODEC_ZSTD, &two, "cannot decompress");
        let mut z = zstd::bulk::Compressor::new(1).unwrap();
        z.include_contentsize(false).unwrap();
        check(
            CODEC_ZSTD,
            &z.compress(&[9; 500]).unwrap(),
            "without a content size",
        );
        // The context survives errors.
        assert_eq!(d.record(CODEC_ZSTD, &good).unwrap(), [5; 1000]);
    }

    proptest! {
        #[test]
        fn round_trip(recs in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..300),
                (1usize..5000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
            ], 1..8)) {
            let mut c = Compressor::new();
            let mut d = Decompressor::default();
            for r in &recs {
                let (codec, p) = frame(|f| c.put_frame(f, r));
                prop_assert!(p.len() <= r.len());
                prop_assert_eq!(d.record(codec, &p).unwrap(), &r[..]);
            }
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut d = Decompressor::default();
            if let Ok(r) = d.record(CODEC_ZSTD, &bytes) {
                prop_assert!(!r.is_empty() && r.len() <= MAX_RECORD_LEN);
            }
        }
    }
}
