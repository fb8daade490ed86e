//! Internal codecs exposed to the cargo-fuzz targets in `fuzz/` and the root crate's benches.
//! OWNER: codec helper. Compiled only with the `fuzzing` feature; not a stable API.
//!
//! Thin wrappers over `pub(crate)` types: the XOR chunk codec, the WAL record codec, the WAL
//! segment reader and writer, and the index reader/writer.
#![cfg(feature = "fuzzing")]
#![doc(hidden)]

use crate::chunk;
use crate::error::Result;
use crate::index;
use crate::interface::SampleIterator;
use crate::model::{Labels, Timestamp};
use crate::wal::{self, record};
use std::path::Path;

/// An appendable Gorilla XOR chunk.
#[derive(Clone, Debug, Default)]
pub struct XorChunk(chunk::XorChunk);

impl XorChunk {
    /// An empty chunk.
    pub fn new() -> Self {
        Self(chunk::XorChunk::new())
    }
    /// Appends a sample (`t` strictly increasing; panics otherwise).
    pub fn append(&mut self, t: Timestamp, v: f64) {
        self.0.append(t, v);
    }
    /// Samples in the chunk.
    pub fn num_samples(&self) -> usize {
        self.0.num_samples()
    }
    /// Encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        self.0.bytes()
    }
    /// Re-opens encoded bytes for appending.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        chunk::XorChunk::from_bytes(bytes).map(Self)
    }
    /// Re-opens `bytes` that may extend this chunk, decoding from this chunk's state on when
    /// they start with its bits (a head snapshot delta's grown open chunk).
    pub fn reopen_grown(&self, bytes: &[u8]) -> Result<Self> {
        self.0.reopen_grown(bytes).map(Self)
    }
}

/// Cursor over XOR chunk bytes.
pub struct XorIterator<'a>(chunk::XorIterator<'a>);

impl<'a> XorIterator<'a> {
    /// A cursor over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(chunk::XorIterator::new(bytes))
    }
    /// Restarts over other bytes.
    pub fn reset(&mut self, bytes: &'a [u8]) {
        self.0.reset(bytes);
    }
}

impl SampleIterator for XorIterator<'_> {
    fn next(&mut self) -> bool {
        self.0.next()
    }
    fn seek(&mut self, t: Timestamp) -> bool {
        self.0.seek(t)
    }
    fn at(&self) -> (Timestamp, f64) {
        self.0.at()
    }
    fn err(&self) -> Option<&crate::Error> {
        self.0.err()
    }
    fn append_floats(&mut self, maxt: Timestamp, dst: &mut Vec<(Timestamp, f64)>) -> bool {
        self.0.append_floats(maxt, dst)
    }
}

/// Decodes all samples of XOR chunk bytes into `dst` (appending).
pub fn xor_decode_into(dst: &mut Vec<(Timestamp, f64)>, bytes: &[u8]) -> Result<()> {
    chunk::xor::decode_into(dst, bytes)
}

/// Encodes `samples` (strictly increasing timestamps) with whichever of XOR and the packed
/// codec is smaller, appending to `dst`; returns the encoding byte.
pub fn chunk_encode_best(samples: &[(Timestamp, f64)], dst: &mut Vec<u8>) -> u8 {
    chunk::encode_best(samples, dst) as u8
}

/// Decodes a chunk with encoding byte `enc` into `dst` (appending).
pub fn chunk_decode_into(enc: u8, dst: &mut Vec<(Timestamp, f64)>, bytes: &[u8]) -> Result<()> {
    let enc = chunk::Encoding::from_u8(enc).ok_or_else(|| {
        crate::Error::corruption("<chunk>", 0, format!("unknown chunk encoding {enc}"))
    })?;
    chunk::decode_into(enc, dst, bytes)
}

/// A WAL record with plain fields (sample values as bit patterns so records compare exactly).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalRecord {
    /// (series ref, labels).
    Series(Vec<(u64, Labels)>),
    /// (series ref, t, value bits).
    Samples(Vec<(u64, i64, u64)>),
    /// (series ref, mint, maxt).
    Tombstones(Vec<(u64, i64, i64)>),
    /// A native-histogram samples record, as its canonical (re-encoded) bytes.
    Histograms(Vec<u8>),
}

impl WalRecord {
    fn to_internal(&self) -> record::Record {
        match self {
            WalRecord::Histograms(b) => match record::decode(b) {
                Ok(r @ record::Record::Histograms(_)) => r,
                _ => record::Record::Histograms(Vec::new()),
            },
            WalRecord::Series(s) => record::Record::Series(
                s.iter()
                    .map(|(series, labels)| record::RefSeries {
                        series: *series,
                        labels: labels.clone(),
                    })
                    .collect(),
            ),
            WalRecord::Samples(s) => record::Record::Samples(
                s.iter()
                    .map(|&(series, t, v)| record::RefSample {
                        series,
                        t,
                        v: f64::from_bits(v),
                    })
                    .collect(),
            ),
            WalRecord::Tombstones(t) => record::Record::Tombstones(
                t.iter()
                    .map(|&(series, mint, maxt)| record::RefTombstone { series, mint, maxt })
                    .collect(),
            ),
        }
    }

    fn from_internal(r: record::Record) -> Self {
        match r {
            record::Record::Series(s) => {
                WalRecord::Series(s.into_iter().map(|s| (s.series, s.labels)).collect())
            }
            record::Record::Samples(s) => WalRecord::Samples(
                s.into_iter()
                    .map(|s| (s.series, s.t, s.v.to_bits()))
                    .collect(),
            ),
            record::Record::Tombstones(t) => {
                WalRecord::Tombstones(t.into_iter().map(|t| (t.series, t.mint, t.maxt)).collect())
            }
            r @ record::Record::Histograms(_) => {
                let mut b = Vec::new();
                r.encode(&mut b);
                WalRecord::Histograms(b)
            }
        }
    }

    /// Encodes the record into `dst` (appends).
    pub fn encode(&self, dst: &mut Vec<u8>) {
        self.to_internal().encode(dst);
    }

    /// Decodes one record from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        record::decode(bytes).map(Self::from_internal)
    }
}

/// Encodes samples records from `(series ref, t, v)` triples (the WAL's hot path), reusing a
/// scratch buffer.
#[derive(Default)]
pub struct SampleEncoder {
    scratch: Vec<record::RefSample>,
}

impl SampleEncoder {
    /// Encodes a samples record into `dst` (appends).
    pub fn encode(&mut self, samples: &[(u64, i64, f64)], dst: &mut Vec<u8>) {
        self.scratch.clear();
        self.scratch
            .extend(
                samples
                    .iter()
                    .map(|&(series, t, v)| record::RefSample { series, t, v }),
            );
        record::encode_samples(&self.scratch, dst);
    }
}

/// Outcome of reading a segment file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentScan {
    /// Valid records, in order.
    pub records: Vec<Vec<u8>>,
    /// Bytes of header and whole valid frames.
    pub valid_len: usize,
    /// Whether a torn or corrupt tail ended reading.
    pub corrupt: bool,
}

/// Reads untrusted bytes as a WAL segment file.
pub fn wal_scan_segment(bytes: &[u8]) -> SegmentScan {
    let p = Path::new("<fuzz>");
    let mut r = wal::segment::SegmentReader::new(bytes, p);
    let mut dec = wal::compress::Decompressor::default();
    let mut records = Vec::new();
    while r.next() {
        match r.record(&mut dec) {
            Ok(rec) => records.push(rec.to_vec()),
            // A whole frame whose payload does not decompress: reading stops before it.
            Err(_) => {
                return SegmentScan {
                    records,
                    valid_len: r.record_offset(),
                    corrupt: true,
                };
            }
        }
    }
    SegmentScan {
        records,
        valid_len: r.valid_len(),
        corrupt: r.err().is_some(),
    }
}

/// Frames `records` as a complete segment file (header + frames), compressing them as the WAL
/// does.
pub fn wal_build_segment(records: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    wal::segment::put_segment_header(&mut b);
    let mut c = wal::compress::Compressor::new();
    for r in records {
        c.put_frame(&mut b, r);
    }
    b
}

/// Compresses and decompresses WAL records (segment format 4), reusing contexts: the
/// compressed-record decoder under fuzzing, and the WAL codec bench.
#[derive(Default)]
pub struct WalRecordCodec {
    c: wal::compress::Compressor,
    d: wal::compress::Decompressor,
}

impl WalRecordCodec {
    /// Appends a frame holding `record` (1..=64 MiB bytes) as the WAL writes it. Samples
    /// records are encoded against the earlier ones since the last [`WalRecordCodec::reset`]
    /// (segment version 4).
    pub fn put_frame(&mut self, dst: &mut Vec<u8>, record: &[u8]) {
        self.c.put_frame(dst, record);
    }

    /// A codec whose writer side frames samples records as segment version 3 did (codecs 2
    /// and 3), for before/after comparisons; its reader side reads every version.
    pub fn v3() -> Self {
        Self {
            c: wal::compress::Compressor::new_v3(),
            d: wal::compress::Decompressor::default(),
        }
    }

    /// Starts a new segment for both the writer and the reader side.
    pub fn reset(&mut self) {
        self.c.reset();
        self.d.reset();
    }

    /// The record held by an untrusted frame payload stored with `codec` (0 plain, 1 zstd,
    /// 2 and 3 version 3 delta samples, 4 and 5 version 4 delta samples, against the payloads
    /// decoded since the last reset).
    pub fn decode_payload<'s>(&'s mut self, codec: u8, payload: &'s [u8]) -> Result<&'s [u8]> {
        self.d
            .record(codec, payload)
            .map_err(|reason| crate::Error::corruption(Path::new("<fuzz>"), 0, reason))
    }

    /// Fuzz oracle: frames each of `records` (non-empty) and reads it back, then builds a
    /// segment of them and scans it. Panics if any record does not come back as written.
    pub fn assert_round_trip(&mut self, records: &[Vec<u8>]) {
        for r in records {
            let mut f = Vec::new();
            self.put_frame(&mut f, r);
            let word = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
            let got = self
                .decode_payload((word >> 28) as u8, &f[8..])
                .expect("own frame decodes");
            assert_eq!(got, &r[..]);
        }
        let refs: Vec<&[u8]> = records.iter().map(|r| r.as_slice()).collect();
        let seg = wal_build_segment(&refs);
        let scan = wal_scan_segment(&seg);
        assert!(!scan.corrupt);
        assert_eq!(scan.records, records);
        assert_eq!(scan.valid_len, seg.len());
    }
}

/// An open WAL directory.
pub struct Wal(wal::Wal);

impl Wal {
    /// Opens (creating) a WAL in `dir`.
    pub fn open(dir: &Path, segment_size: u64, sync: crate::SyncMode) -> Result<Self> {
        wal::Wal::open(dir, wal::WalOptions { segment_size, sync }).map(Self)
    }
    /// Logs already-encoded records as one batch.
    pub fn log(&mut self, records: &[&[u8]]) -> Result<()> {
        self.0.log(records)
    }
    /// Checkpoints closed segments keeping series for which `keep` is true and samples at or
    /// after `mint`.
    pub fn checkpoint(&mut self, keep: &dyn Fn(u64) -> bool, mint: i64) -> Result<()> {
        self.0.checkpoint(keep, mint)
    }
    /// Replays every record.
    pub fn replay(&self, f: &mut dyn FnMut(WalRecord)) -> Result<u64> {
        self.0
            .replay(&mut |r| {
                f(WalRecord::from_internal(r));
                Ok(())
            })
            .map(|s| s.records)
    }
}

/// Chunk metadata in an index: (min_time, max_time, chunk_ref).
pub type ChunkMetaTuple = (i64, i64, u64);

/// Writes an index file with `series` (sorted by labels).
pub fn index_write(path: &Path, series: &[(Labels, Vec<ChunkMetaTuple>)]) -> Result<u64> {
    let mut w = index::IndexWriter::create(path)?;
    let mut metas = Vec::new();
    for (l, chunks) in series {
        metas.clear();
        metas.extend(
            chunks
                .iter()
                .map(|&(min_time, max_time, chunk_ref)| index::ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref,
                }),
        );
        w.add_series(l, &metas)?;
    }
    w.finish()
}

/// Opens untrusted index bytes and reads everything through the reader: names, values,
/// postings of every pair, and every series. Returns the series read back.
pub fn index_read_all(bytes: &[u8]) -> Result<Vec<(Labels, Vec<ChunkMetaTuple>)>> {
    let r = index::IndexReader::new(bytes)?;
    for name in r.label_names()? {
        for value in r.label_values(&name)? {
            r.postings(&name, &value)?;
        }
    }
    let mut out = Vec::new();
    let (mut labels, mut chunks) = (Labels::empty(), Vec::new());
    for id in 0..r.num_series() {
        r.series(id, &mut labels, &mut chunks)?;
        out.push((
            labels.clone(),
            chunks
                .iter()
                .map(|c| (c.min_time, c.max_time, c.chunk_ref))
                .collect(),
        ));
    }
    Ok(out)
}

/// Writes `chunks` (encoding byte, data) into a block `chunks/` directory at `dir` through the
/// block chunk writer; returns each chunk's ref. Encoding bytes that are not a known encoding
/// are written as XOR.
pub fn block_chunks_write(dir: &Path, chunks: &[(u8, Vec<u8>)]) -> Result<Vec<u64>> {
    let mut w = crate::block::chunks::ChunkWriter::create(dir)?;
    let mut refs = Vec::with_capacity(chunks.len());
    for (enc, data) in chunks {
        let enc = chunk::Encoding::from_u8(*enc).unwrap_or(chunk::Encoding::Xor);
        refs.push(w.write(enc, data)?);
    }
    w.finish()?;
    Ok(refs)
}

/// Reads chunk `r` from untrusted chunk segment bytes (segment number ignored): the encoding
/// byte and data, or why not. A cache (the last decoded frame) is reused across calls on the
/// same `cache`.
pub fn block_chunk_read(
    segment: &[u8],
    r: u64,
    cache: &mut BlockFrameCache,
) -> std::result::Result<(u8, Vec<u8>), String> {
    crate::block::chunks::read_from_segment(segment, r, &mut cache.0)
}

/// The last decompressed chunk frame (see [`block_chunk_read`]).
#[derive(Default, Debug)]
pub struct BlockFrameCache(crate::block::chunks::FrameCache);

/// Deleted intervals `(series id, mint, maxt)`, sorted and merged per series.
pub type TombstoneList = Vec<(u32, i64, i64)>;

/// Encodes tombstones (intervals are merged first) into the `tombstones` file format.
pub fn tombstones_encode(intervals: &[(u32, i64, i64)]) -> Vec<u8> {
    let mut ts = crate::block::tombstones::Tombstones::new();
    for &(id, a, b) in intervals {
        crate::block::tombstones::add_interval(&mut ts, id, a, b);
    }
    crate::block::tombstones::encode(&ts)
}

/// Decodes untrusted `tombstones` file bytes.
pub fn tombstones_decode(bytes: &[u8]) -> Result<TombstoneList> {
    let ts = crate::block::tombstones::decode(bytes, Path::new("<tombstones>"))?;
    Ok(ts
        .into_iter()
        .flat_map(|(id, list)| list.into_iter().map(move |(a, b)| (id, a, b)))
        .collect())
}

/// Decodes every sample of a native-histogram chunk into `dst` (appending).
pub fn histogram_chunk_decode_into(
    dst: &mut Vec<(Timestamp, crate::FloatHistogram)>,
    bytes: &[u8],
) -> Result<()> {
    chunk::histogram::decode_into(dst, bytes)
}

/// Encodes `samples` (strictly increasing timestamps, valid layouts) into histogram chunks as
/// the head does, cutting where the codec refuses a sample; returns each chunk's bytes.
pub fn histogram_chunk_encode(samples: &[(Timestamp, crate::FloatHistogram)]) -> Vec<Vec<u8>> {
    chunk::histogram::encode_all(samples)
}

/// Visits every sample of a native-histogram chunk without copying it (the read path's cost).
pub fn histogram_chunk_iterate(
    bytes: &[u8],
    mut f: impl FnMut(Timestamp, &crate::FloatHistogram),
) -> Result<()> {
    let mut it = chunk::HistogramIterator::new(bytes);
    while it.next() {
        if let Some(h) = it.at_histogram() {
            f(it.at().0, h);
        }
    }
    it.take_err().map_or(Ok(()), Err)
}

/// Decodes a head snapshot file (`head/snapshot.rs`) and encodes it again: `Ok` holds the
/// re-encoded bytes (series sections cut again, so they may differ from the input's; they
/// round-trip to themselves).
pub fn head_snapshot_round_trip(bytes: &[u8]) -> Result<Vec<u8>> {
    crate::head::snapshot::Image::decode(bytes).map(|i| i.encode())
}

/// Rewrites the CRC of every section of head snapshot bytes whose framing fits (fuzzing).
pub fn head_snapshot_fix_crcs(bytes: &mut [u8]) {
    crate::head::snapshot::fix_crcs(bytes)
}

/// The magic and version a head snapshot file starts with.
pub const HEAD_SNAPSHOT_HEADER: [u8; 5] = {
    let m = crate::head::snapshot::MAGIC;
    [m[0], m[1], m[2], m[3], crate::head::snapshot::VERSION]
};

/// Loads the head snapshot file at `path` into an empty head as a restart does (two threads:
/// `head/snapshot_load.rs`), and again into a second head on one thread, section by section.
/// Panics if one load fails where the other succeeds, or if the two heads differ (fuzzing's
/// oracle). Returns the number of series restored.
pub fn head_snapshot_load(path: &Path) -> Result<usize> {
    use crate::head::snapshot;
    let (a, b) = (fuzz_head(), fuzz_head());
    let two = snapshot::load_base(&a, path);
    let one = snapshot::load_base_sequential(&b, path);
    let (two, one) = match (two, one) {
        (Ok(two), Ok(one)) => (two, one),
        (Err(e), Err(_)) => return Err(e),
        (two, one) => panic!(
            "the two-thread load gave {:?}, the sequential load {:?}",
            two.map(|(_, s)| s.len()),
            one.map(|(_, s)| s.len())
        ),
    };
    let [two, one] = [(&a, two), (&b, one)].map(|(head, (meta, mut series))| {
        snapshot::finish_load(head, &mut series, None, meta.min_time, meta.max_time);
        (meta.segment, meta.next_ref, series.len(), head.dump())
    });
    assert_eq!(
        two, one,
        "the two-thread load and the sequential load differ"
    );
    Ok(two.2)
}

/// Applies the head snapshot delta file at `path` to an empty head whose chain ends at segment
/// `prev` with `pages` pages, as a restart applies a chain's deltas. Returns the number of
/// series the head then holds.
pub fn head_delta_apply(path: &Path, prev: u32, pages: u32) -> Result<usize> {
    let head = fuzz_head();
    let mut series = Vec::new();
    crate::head::snapshot_delta::apply(&head, path, prev, pages, &mut series)?;
    Ok(series.len())
}

fn fuzz_head() -> crate::head::Head {
    crate::head::Head::in_memory(2 * 3_600_000, 3_600_000)
}

/// Decodes a head snapshot delta file (`head/snapshot_delta.rs`) and encodes it again: `Ok`
/// holds the re-encoded bytes (series sections cut again; they round-trip to themselves).
pub fn head_delta_round_trip(bytes: &[u8]) -> Result<Vec<u8>> {
    crate::head::snapshot_delta::DeltaImage::decode(bytes).map(|i| i.encode())
}

/// The magic and version a head snapshot delta file starts with.
pub const HEAD_DELTA_HEADER: [u8; 5] = crate::head::snapshot_delta::HEADER;

/// A head of `series` series with `samples` in-order samples each (15 s apart, one commit per
/// round of samples), for timing a head snapshot's capture (`benches/snapshot_capture.rs`).
pub struct CaptureHead(std::sync::Arc<crate::head::Head>);

impl CaptureHead {
    /// Builds the head (no WAL: every series is marked as logged, as a WAL would have).
    pub fn new(series: usize, samples: usize) -> Result<Self> {
        use crate::Appender;
        let head = std::sync::Arc::new(fuzz_head());
        let mut app = crate::head::append::HeadAppender::new(head.clone());
        let mut refs = Vec::with_capacity(series);
        for i in 0..series {
            let l = Labels::from_pairs(&[
                ("__name__", "capture_bench"),
                ("job", "bench"),
                ("i", &i.to_string()),
            ]);
            refs.push(app.append(None, &l, 0, 0.0)?);
            if i % 10_000 == 9_999 {
                app.commit()?;
            }
        }
        app.commit()?;
        for k in 1..samples {
            let t = 15_000 * k as i64;
            for r in &refs {
                app.append_ref(*r, t, k as f64)?;
            }
            app.commit()?;
        }
        for s in head.series.all() {
            s.logged().store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(Self(head))
    }

    /// Captures where every series stands, as a snapshot does under the WAL's lock; returns
    /// how many series were marked.
    pub fn capture(&self) -> usize {
        crate::head::snapshot::capture(&self.0, 0).map_or(0, |c| c.num_series())
    }
}
