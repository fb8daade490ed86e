//! WAL record compression (segment versions 2 to 4): a frame's codec (the top 4 bits of its
//! first word, see `segment.rs`) says how its payload holds the record.
//!
//! ```text
//! codec 0  payload = the record
//! codec 1  payload = one zstd frame of the record: level 1, content size set (1..=64 MiB),
//!          no zstd checksum (the frame's CRC32 covers the stored bytes)
//! codec 2  payload = a samples record as a version 3 segment-delta body (`delta/v3.rs`)
//! codec 3  payload = one zstd frame (as codec 1) of a version 3 segment-delta body
//! codec 4  payload = a samples record as a version 4 segment-delta body (`delta.rs`)
//! codec 5  payload = one zstd frame (as codec 1) of a version 4 segment-delta body
//! ```
//! The writer stores a samples record as codec 4 or 5, encoded against the segment's earlier
//! samples (its [`Compressor`] keeps that state and must be told of each new segment,
//! [`Compressor::reset`]); other records as codec 0 or 1. zstd is used when the bytes are at
//! least [`MIN_COMPRESS`] and it makes them smaller. Readers give each segment a fresh (or
//! [`Decompressor::reset`]) decompressor and read it from its start; they see every samples
//! record as a type-2 record whatever its codec. zstd level 2: on the harness's remote-write
//! WAL (`storage/benches/wal_codec.rs`, figures in `benches/README.md`) version 3 delta bodies
//! cost 2.24 B/sample at level 1, 2.20 at level 2 and 2.18 at level 3 (for 1.4–1.9× level 2's
//! CPU); per-record zstd level 1 without the delta (version 2) cost 5.52.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::delta::{self, SegmentState, v3};
use super::record::{self, RefSample, TYPE_SAMPLES};
use super::segment::{self, MAX_RECORD_LEN};

/// Codec: the payload is the record.
pub(crate) const CODEC_PLAIN: u8 = 0;
/// Codec: the payload is one zstd frame holding the record.
pub(crate) const CODEC_ZSTD: u8 = 1;
/// Codec: the payload is a version 3 segment-delta samples body.
pub(crate) const CODEC_DELTA_V3: u8 = 2;
/// Codec: the payload is one zstd frame holding a version 3 segment-delta samples body.
pub(crate) const CODEC_DELTA_V3_ZSTD: u8 = 3;
/// Codec: the payload is a version 4 segment-delta samples body.
pub(crate) const CODEC_DELTA: u8 = 4;
/// Codec: the payload is one zstd frame holding a version 4 segment-delta samples body.
pub(crate) const CODEC_DELTA_ZSTD: u8 = 5;
/// The codecs each segment version may hold, as a bit set (bit `c` for codec `c`), indexed by
/// version; a frame with another codec is a bad frame (a torn tail).
pub(crate) const CODECS_OF_VERSION: [u16; 5] = [
    0,
    1 << CODEC_PLAIN,
    1 << CODEC_PLAIN | 1 << CODEC_ZSTD,
    1 << CODEC_PLAIN | 1 << CODEC_ZSTD | 1 << CODEC_DELTA_V3 | 1 << CODEC_DELTA_V3_ZSTD,
    1 << CODEC_PLAIN | 1 << CODEC_ZSTD | 1 << CODEC_DELTA | 1 << CODEC_DELTA_ZSTD,
];
/// zstd level of WAL records and delta bodies.
pub(crate) const ZSTD_LEVEL: i32 = 2;
/// Records shorter than this are stored plain: a zstd frame header costs 6–9 bytes and short
/// records (a scrape of a few series, a tombstone) hold little redundancy. Remote-write and
/// scrape batches are kilobytes.
pub(crate) const MIN_COMPRESS: usize = 256;
/// Most bytes a sample takes in a delta body (ref and t varints, control, value), so that a
/// record too large for one frame as a body is known before the state changes.
const MAX_DELTA_SAMPLE: usize = 10 + 10 + 1 + 8;
/// Most samples a delta body holds, so that its frame is at most [`MAX_RECORD_LEN`] bytes.
const MAX_DELTA_SAMPLES: usize = (MAX_RECORD_LEN - 10) / MAX_DELTA_SAMPLE;

/// Frames records, compressing them; one per segment writer (the zstd context is reused).
pub(crate) struct Compressor {
    /// Created on first use; `None` also after a failed creation (records are then stored plain).
    z: Option<zstd::bulk::Compressor<'static>>,
    /// Whether creating `z` was tried already.
    tried: bool,
    /// Compressed body scratch.
    buf: Vec<u8>,
    /// The samples written to the segment so far (see `delta.rs`).
    delta: SegmentState,
    /// Tests and benches: write version 3 delta bodies (codecs 2 and 3) with this state instead.
    #[cfg(any(test, feature = "fuzzing"))]
    v3: Option<v3::SegmentState>,
    /// Samples of the record being framed.
    samples: Vec<RefSample>,
    /// Delta body scratch.
    body: Vec<u8>,
    /// Samples record scratch ([`Compressor::put_samples`] of samples that go plain).
    record: Vec<u8>,
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
            delta: SegmentState::default(),
            #[cfg(any(test, feature = "fuzzing"))]
            v3: None,
            samples: Vec::new(),
            body: Vec::new(),
            record: Vec::new(),
        }
    }

    /// A compressor that frames samples records as segment version 3 did (codecs 2 and 3), for
    /// tests of old segments and for the codec bench's before/after.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn new_v3() -> Self {
        Self {
            v3: Some(v3::SegmentState::default()),
            ..Self::new()
        }
    }

    /// Starts a new segment: later samples records do not refer to earlier ones. Call before
    /// framing the first record of each segment (a new compressor needs no call).
    pub(crate) fn reset(&mut self) {
        self.delta.reset();
        #[cfg(any(test, feature = "fuzzing"))]
        if let Some(v3) = &mut self.v3 {
            v3.reset();
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

    /// Appends one frame holding `record` to `dst`: a samples record as a delta body (which
    /// advances the segment state: the frame must be written to the segment, in this order,
    /// or the segment abandoned), other records as they are; zstd-compressed when that is
    /// smaller. Readers get `record` back byte for byte: a samples record that
    /// `record::encode_samples` would not write as it is (say with a base other than its first
    /// sample) is stored as it is. BUG if the record is empty or longer than
    /// [`MAX_RECORD_LEN`].
    pub(crate) fn put_frame(&mut self, dst: &mut Vec<u8>, record: &[u8]) {
        if record.len() > 1 && record.first() == Some(&TYPE_SAMPLES) {
            let mut samples = std::mem::take(&mut self.samples);
            samples.clear();
            let done =
                record::decode_samples_exact(record, &mut samples) && self.put_delta(dst, &samples);
            self.samples = samples;
            if done {
                return;
            }
        }
        self.put_codec(dst, record, CODEC_PLAIN, CODEC_ZSTD);
    }

    /// Appends the frame [`Compressor::put_frame`] writes for the samples record
    /// `record::encode_samples` makes of `samples` (the same bytes), without building that
    /// record when the samples go as a delta body (the head's commits hand their samples over
    /// this way).
    pub(crate) fn put_samples(&mut self, dst: &mut Vec<u8>, samples: &[RefSample]) {
        if !samples.is_empty() && self.put_delta(dst, samples) {
            return;
        }
        let mut rec = std::mem::take(&mut self.record);
        rec.clear();
        record::encode_samples(samples, &mut rec);
        self.put_codec(dst, &rec, CODEC_PLAIN, CODEC_ZSTD);
        self.record = rec;
    }

    /// Appends a delta frame of `samples` (a samples record's samples, not empty) and true,
    /// or false with nothing changed when they do not fit one.
    fn put_delta(&mut self, dst: &mut Vec<u8>, samples: &[RefSample]) -> bool {
        let fits = samples.len() <= MAX_DELTA_SAMPLES
            && self.delta.len() + samples.len() <= delta::MAX_SERIES;
        if !fits {
            return false;
        }
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        #[cfg(any(test, feature = "fuzzing"))]
        if let Some(v3) = &mut self.v3 {
            v3.encode(samples, &mut body);
            self.put_codec(dst, &body, CODEC_DELTA_V3, CODEC_DELTA_V3_ZSTD);
            self.body = body;
            return true;
        }
        self.delta.encode(samples, &mut body);
        self.put_codec(dst, &body, CODEC_DELTA, CODEC_DELTA_ZSTD);
        self.body = body;
        true
    }

    /// Appends a frame of `bytes` with codec `zstd` when compressing them makes them smaller,
    /// else with codec `plain`.
    fn put_codec(&mut self, dst: &mut Vec<u8>, bytes: &[u8], plain: u8, zstd: u8) {
        if bytes.len() >= MIN_COMPRESS {
            let bound = zstd::zstd_safe::compress_bound(bytes.len());
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            buf.reserve(bound);
            let ok = match self.context() {
                Some(z) => z.compress_to_buffer(bytes, &mut buf).is_ok(),
                None => false,
            };
            let smaller = ok && !buf.is_empty() && buf.len() < bytes.len();
            if smaller {
                segment::put_frame_codec(dst, zstd, &buf);
            }
            self.buf = buf;
            if smaller {
                return;
            }
        }
        segment::put_frame_codec(dst, plain, bytes);
    }
}

/// A frame's content as [`Decompressor::payload`] gives it.
pub(crate) enum Payload<'s> {
    /// The record's bytes (every plain or zstd frame).
    Record(&'s [u8]),
    /// The samples of a delta frame (codecs 2 and 3), in record order: what
    /// `record::decode_samples` reads from the record [`Decompressor::record`] builds.
    Samples(&'s [RefSample]),
}

/// Turns frame payloads back into records; one per segment reader (the zstd context and the
/// output buffer are reused).
#[derive(Default)]
pub(crate) struct Decompressor {
    z: Option<zstd::bulk::Decompressor<'static>>,
    /// The record returned.
    buf: Vec<u8>,
    /// A decompressed delta body.
    zbuf: Vec<u8>,
    /// The samples read from the segment so far (see `delta.rs`; version 3 segments:
    /// `delta/v3.rs`, created on first use).
    delta: SegmentState,
    v3: Option<Box<v3::SegmentState>>,
    /// Samples of the delta record being decoded.
    samples: Vec<RefSample>,
}

impl Decompressor {
    /// Starts a new segment: call before the first frame of each segment after the first.
    pub(crate) fn reset(&mut self) {
        self.delta.reset();
        if let Some(v3) = &mut self.v3 {
            v3.reset();
        }
    }

    /// The record held by a frame's `payload` stored with `codec` (untrusted; CRC-checked
    /// already). Frames must come in segment order from the segment's first. Errors name what
    /// is wrong; the caller adds the place. A delta body that fails leaves the state as it was.
    pub(crate) fn record<'s>(
        &'s mut self,
        codec: u8,
        payload: &'s [u8],
    ) -> Result<&'s [u8], String> {
        match codec {
            CODEC_PLAIN => Ok(payload),
            CODEC_ZSTD => {
                decompress(&mut self.z, payload, &mut self.buf)?;
                Ok(&self.buf)
            }
            CODEC_DELTA_V3 | CODEC_DELTA_V3_ZSTD | CODEC_DELTA | CODEC_DELTA_ZSTD => {
                self.delta_record(codec, payload)?;
                Ok(&self.buf)
            }
            other => Err(format!("unknown WAL record codec {other}")),
        }
    }

    /// [`Decompressor::record`] without building a samples record from a delta frame: its
    /// samples are returned as they are decoded (WAL replay reads them without encoding and
    /// decoding them once more).
    pub(crate) fn payload<'s>(
        &'s mut self,
        codec: u8,
        payload: &'s [u8],
    ) -> Result<Payload<'s>, String> {
        match codec {
            CODEC_DELTA_V3 | CODEC_DELTA_V3_ZSTD | CODEC_DELTA | CODEC_DELTA_ZSTD => {
                self.delta_samples(codec, payload)?;
                Ok(Payload::Samples(&self.samples))
            }
            other => self.record(other, payload).map(Payload::Record),
        }
    }

    /// Decodes a delta body stored with `codec` (one of the four delta codecs) into a type-2
    /// record in `self.buf`.
    fn delta_record(&mut self, codec: u8, payload: &[u8]) -> Result<(), String> {
        self.delta_samples(codec, payload)?;
        self.buf.clear();
        record::encode_samples(&self.samples, &mut self.buf);
        Ok(())
    }

    /// Decodes a delta body stored with `codec` (one of the four delta codecs) into
    /// `self.samples`.
    fn delta_samples(&mut self, codec: u8, payload: &[u8]) -> Result<(), String> {
        let body = if codec == CODEC_DELTA_ZSTD || codec == CODEC_DELTA_V3_ZSTD {
            decompress(&mut self.z, payload, &mut self.zbuf)?;
            &self.zbuf[..]
        } else {
            payload
        };
        self.samples.clear();
        if codec == CODEC_DELTA || codec == CODEC_DELTA_ZSTD {
            self.delta.decode(body, &mut self.samples)
        } else {
            self.v3
                .get_or_insert_default()
                .decode(body, &mut self.samples)
        }
    }
}

/// Decompresses one zstd frame of 1..=[`MAX_RECORD_LEN`] bytes (as its header declares,
/// checked before any allocation) into `out`, creating the context `z` on first use.
fn decompress(
    z: &mut Option<zstd::bulk::Decompressor<'static>>,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let declared = match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(n)) => n,
        Ok(None) => return Err("zstd record without a content size".to_string()),
        Err(_) => return Err("bad zstd frame header".to_string()),
    };
    let want = usize::try_from(declared)
        .ok()
        .filter(|n| (1..=MAX_RECORD_LEN).contains(n))
        .ok_or_else(|| format!("zstd record declares {declared} bytes"))?;
    let z = match z.as_mut() {
        Some(z) => z,
        None => z.insert(
            zstd::bulk::Decompressor::new()
                .map_err(|e| format!("cannot create a zstd context: {e}"))?,
        ),
    };
    out.clear();
    out.reserve(want);
    // `decompress_to_buffer` never writes past the capacity; a frame that inflates to more than
    // it declared fails or shows as a length mismatch.
    let n = z
        .decompress_to_buffer(body, out)
        .map_err(|e| format!("cannot decompress record: {e}"))?;
    if n != want {
        return Err(format!("zstd record of {n} bytes, {want} declared"));
    }
    Ok(())
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
        // A samples record written otherwise than `encode_samples` would (its base is not its
        // first sample) is stored as it is, byte for byte.
        let mut odd = vec![TYPE_SAMPLES];
        odd.extend_from_slice(&7u64.to_le_bytes());
        odd.extend_from_slice(&100i64.to_le_bytes());
        odd.extend_from_slice(&[2, 2, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
        check(&mut c, &mut d, &odd, CODEC_PLAIN);
        let mut good = Vec::new();
        record::encode_samples(
            &[RefSample {
                series: 8,
                t: 101,
                v: 1.0,
            }],
            &mut good,
        );
        check(&mut c, &mut d, &good, CODEC_DELTA);
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

    #[test]
    fn one_decompressor_reads_version_3_and_4_segments_in_turn() {
        let recs: Vec<Vec<u8>> = (0..4i64)
            .map(|round| {
                let samples: Vec<RefSample> = (0..300u64)
                    .map(|i| RefSample {
                        series: (i * 7919) % 1000,
                        t: 1_000 + round * 15_000,
                        v: (i + round as u64) as f64,
                    })
                    .collect();
                let mut rec = Vec::new();
                record::encode_samples(&samples, &mut rec);
                rec
            })
            .collect();
        let mut d = Decompressor::default();
        let mut sizes = Vec::new();
        for (mut c, codecs) in [
            (Compressor::new_v3(), [CODEC_DELTA_V3, CODEC_DELTA_V3_ZSTD]),
            (Compressor::new(), [CODEC_DELTA, CODEC_DELTA_ZSTD]),
            (Compressor::new_v3(), [CODEC_DELTA_V3, CODEC_DELTA_V3_ZSTD]),
        ] {
            d.reset();
            let mut size = 0;
            for r in &recs {
                // (version 3 frames in a version 4 segment would be a torn tail: read the
                // frame header here)
                let mut f = Vec::new();
                c.put_frame(&mut f, r);
                let (codec, p) = (f[3] >> 4, &f[segment::FRAME_HEADER_LEN..]);
                assert!(codecs.contains(&codec), "codec {codec}");
                assert_eq!(d.record(codec, p).unwrap(), &r[..]);
                size += p.len();
            }
            sizes.push(size);
        }
        // The refs step irregularly (by 7919 mod 1000): version 4 predicts them after the
        // first round, version 3 stores every step.
        assert!(sizes[1] < sizes[0], "{sizes:?}");
        assert_eq!(sizes[0], sizes[2]);
    }

    /// One to seven batches of `per_batch` samples over refs `0..series`: small times and
    /// whole values (the delta codecs' common case) or any bits.
    fn sample_batches(
        series: u64,
        per_batch: std::ops::Range<usize>,
    ) -> impl Strategy<Value = Vec<Vec<RefSample>>> {
        let sample = (
            0..series,
            prop_oneof![0i64..100_000, any::<i64>()],
            prop_oneof![
                (0u64..1000).prop_map(|v| v as f64),
                any::<u64>().prop_map(f64::from_bits),
            ],
        )
            .prop_map(|(series, t, v)| RefSample { series, t, v });
        proptest::collection::vec(proptest::collection::vec(sample, per_batch), 1..8)
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
        fn samples_records_round_trip_through_delta_frames(recs in sample_batches(8, 1..40)) {
            let mut c = Compressor::new();
            let mut d = Decompressor::default();
            for r in &recs {
                let mut rec = Vec::new();
                record::encode_samples(r, &mut rec);
                let (codec, p) = frame(|f| c.put_frame(f, &rec));
                prop_assert!([CODEC_DELTA, CODEC_DELTA_ZSTD].contains(&codec));
                prop_assert_eq!(d.record(codec, &p).unwrap(), &rec[..]);
            }
        }

        /// `put_samples` writes the bytes `put_frame` writes for the encoded record, record
        /// after record (the segment state advancing alike), empty records included.
        #[test]
        fn put_samples_equals_put_frame_of_the_record(recs in sample_batches(64, 0..300)) {
            let (mut by_frame, mut by_samples) = (Compressor::new(), Compressor::new());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for r in &recs {
                let mut rec = Vec::new();
                record::encode_samples(r, &mut rec);
                by_frame.put_frame(&mut a, &rec);
                by_samples.put_samples(&mut b, r);
                prop_assert_eq!(&a, &b);
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
