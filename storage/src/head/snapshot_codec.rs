//! The head snapshot file's encoding and decoding (the format: `snapshot.rs`): sections,
//! META, PAGE and SERIES payloads, and the framed reader that checks them.

use super::*;

// ---------------------------------------------------------------------------------------
// Encoding.

pub(super) fn section_head(kind: u8, len: u32) -> [u8; SECTION_HEADER_LEN] {
    let l = len.to_le_bytes();
    [kind, l[0], l[1], l[2], l[3]]
}

/// Writes one framed section.
pub(in crate::head) fn write_section(
    w: &mut impl Write,
    kind: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| std::io::Error::other("snapshot section over 4 GiB"))?;
    let head = section_head(kind, len);
    w.write_all(&head)?;
    w.write_all(payload)?;
    w.write_all(&crc32_parts(&[&head, payload]).to_le_bytes())
}

pub(in crate::head) fn put_str(dst: &mut Vec<u8>, s: &[u8]) {
    put_uvarint(dst, s.len() as u64);
    dst.extend_from_slice(s);
}

pub(super) fn meta_payload(m: &Meta) -> Vec<u8> {
    let mut p = Vec::new();
    put_uvarint(&mut p, u64::from(m.segment));
    put_uvarint(&mut p, m.next_ref);
    put_varint(&mut p, m.min_time);
    put_varint(&mut p, m.max_time);
    put_padded_uvarint(&mut p, m.pages);
    put_uvarint(&mut p, m.series);
    p
}

/// Width of META's page count: [`take`] writes META before the pages and rewrites it after,
/// so the count has the same length whatever its value (up to 2^35, above any u32 `seq`).
pub(in crate::head) const PAGES_FIELD_LEN: usize = 5;

/// `v` as a uvarint of exactly [`PAGES_FIELD_LEN`] bytes (continuation bits on the leading
/// ones; any uvarint reader takes it). Values that do not fit are capped (never reached: pages
/// are numbered by u32).
pub(in crate::head) fn put_padded_uvarint(dst: &mut Vec<u8>, v: u64) {
    let v = v.min((1 << (7 * PAGES_FIELD_LEN)) - 1);
    for i in 0..PAGES_FIELD_LEN {
        let b = (v >> (7 * i)) as u8 & 0x7f;
        dst.push(if i + 1 < PAGES_FIELD_LEN { b | 0x80 } else { b });
    }
}

pub(in crate::head) fn page_prefix(seq: u32, max_t: Timestamp, current: bool) -> Vec<u8> {
    let mut p = Vec::new();
    put_uvarint(&mut p, u64::from(seq));
    put_varint(&mut p, max_t);
    p.push(u8::from(current));
    p
}

/// Appends one series entry (images; live series are written in the same parts by [`pack`]).
#[cfg(any(test, feature = "fuzzing"))]
pub(super) fn put_series<'a>(
    dst: &mut Vec<u8>,
    id: u64,
    labels: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    closed: &[ClosedChunk],
    open: Option<(Timestamp, Timestamp, &[u8])>,
    ooo: &[(Timestamp, f64)],
    last: Option<(Timestamp, u64)>,
) {
    put_series_head(dst, id, labels);
    put_closed(dst, closed, |r| r);
    put_series_tail(dst, open, ooo, last);
}

/// The entry's id and labels.
pub(in crate::head) fn put_series_head<'a>(
    dst: &mut Vec<u8>,
    id: u64,
    labels: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) {
    put_uvarint(dst, id);
    put_uvarint(dst, labels.clone().count() as u64);
    for (n, v) in labels {
        put_str(dst, n.as_bytes());
        put_str(dst, v.as_bytes());
    }
}

/// The entry's completed chunks, refs mapped through `map`.
pub(in crate::head) fn put_closed(
    dst: &mut Vec<u8>,
    closed: &[ClosedChunk],
    map: impl Fn(u64) -> u64,
) {
    put_uvarint(dst, closed.len() as u64);
    for c in closed {
        put_varint(dst, c.min_t);
        put_varint(dst, c.max_t);
        put_uvarint(dst, map(c.r));
    }
}

/// The entry's open chunk, out-of-order samples and newest sample.
pub(in crate::head) fn put_series_tail(
    dst: &mut Vec<u8>,
    open: Option<(Timestamp, Timestamp, &[u8])>,
    ooo: &[(Timestamp, f64)],
    last: Option<(Timestamp, u64)>,
) {
    match open {
        Some((min_t, max_t, bytes)) => {
            dst.push(1);
            put_varint(dst, min_t);
            put_varint(dst, max_t);
            put_str(dst, bytes);
        }
        None => dst.push(0),
    }
    put_uvarint(dst, ooo.len() as u64);
    for (t, v) in ooo {
        put_varint(dst, *t);
        dst.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    match last {
        Some((t, bits)) => {
            dst.push(1);
            put_varint(dst, t);
            dst.extend_from_slice(&bits.to_le_bytes());
        }
        None => dst.push(0),
    }
}

/// Gathers series entries into SERIES payloads of about [`SERIES_SECTION_BYTES`].
#[derive(Default)]
pub(in crate::head) struct SeriesSections {
    pub(in crate::head) done: Vec<Vec<u8>>,
    pub(in crate::head) body: Vec<u8>,
    count: u64,
    total: u64,
}

impl SeriesSections {
    /// Call after appending one entry to `body`.
    pub(in crate::head) fn added(&mut self) {
        self.count += 1;
        self.total += 1;
        if self.body.len() >= SERIES_SECTION_BYTES {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.count == 0 {
            return;
        }
        let mut p = Vec::with_capacity(self.body.len() + 10);
        put_uvarint(&mut p, self.count);
        p.append(&mut self.body);
        self.done.push(p);
        self.count = 0;
    }

    pub(in crate::head) fn finish(mut self) -> (Vec<Vec<u8>>, u64) {
        self.cut();
        (self.done, self.total)
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl Image {
    /// The snapshot file's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.encode_version(VERSION)
    }

    /// The snapshot file's bytes in format `version` (1: nothing compressed).
    pub(crate) fn encode_version(&self, version: u8) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.push(version);
        let mut meta = self.meta.clone();
        meta.pages = self.pages.len() as u64;
        meta.series = self.series.len() as u64;
        let put = |out: &mut Vec<u8>, kind: u8, payload: &[u8]| {
            write_section(out, kind, payload)
                .unwrap_or_else(|e| unreachable!("BUG: writing to a Vec failed: {e}"));
        };
        put(&mut out, KIND_META, &meta_payload(&meta));
        let z = |b: &[u8]| {
            if version < 2 {
                return b.to_vec();
            }
            zstd_frame(b).unwrap_or_else(|e| unreachable!("BUG: zstd of a Vec failed: {e}"))
        };
        for p in &self.pages {
            let mut payload = page_prefix(p.seq, p.max_t, p.current);
            payload.extend_from_slice(&z(&p.bytes));
            put(&mut out, KIND_PAGE, &payload);
        }
        let mut sections = SeriesSections::default();
        for s in &self.series {
            put_series(
                &mut sections.body,
                s.id,
                s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                &s.closed,
                s.open.as_ref().map(|(a, b, c)| (*a, *b, c.as_slice())),
                &s.ooo,
                s.last,
            );
            sections.added();
        }
        for p in sections.finish().0 {
            put(&mut out, KIND_SERIES, &z(&p));
        }
        put(&mut out, KIND_END, &[]);
        out
    }

    /// Decodes snapshot file bytes (the checks of [`load`]).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Image> {
        let mut img = Image::default();
        let mut r = Reader::new(bytes, Path::new("<snapshot>"), bytes.len() as u64)?;
        img.meta =
            visit(&mut r, &mut |s| {
                match s {
                    Section::Meta(_) => {}
                    Section::Page(p) => {
                        let off = p.off;
                        img.pages.push(p.image().ok_or_else(|| {
                            Error::corruption("<snapshot>", off, "bad PAGE section")
                        })?);
                    }
                    Section::Series(s) => img.series.extend(s),
                }
                Ok(())
            })?;
        Ok(img)
    }
}

/// Rewrites the CRC of every section whose framing fits in `bytes` (after the header), so
/// that a fuzzer's mutations reach the section decoders instead of failing the checksum.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fix_crcs(bytes: &mut [u8]) {
    let mut off = HEADER_LEN;
    while let Some(h) = bytes.get(off..off + SECTION_HEADER_LEN) {
        let Ok([_, a, b, c, d]) = <[u8; SECTION_HEADER_LEN]>::try_from(h) else {
            return;
        };
        let n = u32::from_le_bytes([a, b, c, d]) as usize;
        let end = off + SECTION_HEADER_LEN + n;
        let crc = match bytes.get(off..end) {
            Some(framed) => crc32_parts(&[framed]),
            None => return,
        };
        match bytes.get_mut(end..end + CRC_LEN) {
            Some(c) => c.copy_from_slice(&crc.to_le_bytes()),
            None => return,
        }
        off = end + CRC_LEN;
    }
}

// ---------------------------------------------------------------------------------------
// Decoding.

/// Reads framed sections from a snapshot of `len` bytes.
pub(in crate::head) struct Reader<'p, R> {
    r: R,
    pub(in crate::head) path: &'p Path,
    /// Offset of the next section.
    pub(in crate::head) off: u64,
    /// File length.
    pub(in crate::head) len: u64,
    buf: Vec<u8>,
    /// Format version of the file.
    version: u8,
}

impl<'p, R: Read> Reader<'p, R> {
    #[cfg(any(test, feature = "fuzzing"))]
    fn new(r: R, path: &'p Path, len: u64) -> Result<Self> {
        Self::with_magic(r, path, len, MAGIC, MIN_VERSION..=VERSION)
    }

    /// A reader of a file in the same framing that starts with `magic` and a version in
    /// `versions` (the deltas of `snapshot_delta.rs`).
    pub(in crate::head) fn with_magic(
        mut r: R,
        path: &'p Path,
        len: u64,
        magic: [u8; 4],
        versions: std::ops::RangeInclusive<u8>,
    ) -> Result<Self> {
        let mut h = [0u8; HEADER_LEN];
        if len < HEADER_LEN as u64 {
            return Err(Error::corruption(
                path,
                0,
                "snapshot shorter than its header",
            ));
        }
        r.read_exact(&mut h)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        if h.get(..MAGIC.len()) != Some(&magic[..]) {
            return Err(Error::corruption(
                path,
                0,
                "not a head snapshot (bad magic)",
            ));
        }
        let Some(&version) = h.get(MAGIC.len()).filter(|v| versions.contains(*v)) else {
            return Err(Error::corruption(
                path,
                MAGIC.len() as u64,
                "unsupported head snapshot version",
            ));
        };
        Ok(Self {
            r,
            path,
            version,
            off: HEADER_LEN as u64,
            len,
            buf: Vec::new(),
        })
    }

    /// Checks the END section read at `off`: its payload `empty`, the (pages, series) counted
    /// equal to META's, and the last bytes of the file.
    pub(in crate::head) fn check_end(
        &self,
        off: u64,
        empty: bool,
        counted: (u64, u64),
        meta: (u64, u64),
    ) -> Result<()> {
        if !empty || counted != meta {
            return Err(Error::corruption(
                self.path,
                off,
                "END section does not match the META counts",
            ));
        }
        if self.off != self.len {
            return Err(self.corrupt("bytes after the END section"));
        }
        Ok(())
    }

    pub(in crate::head) fn corrupt(&self, reason: &str) -> Error {
        Error::corruption(self.path, self.off, reason)
    }

    /// The next section's kind and payload (CRC checked).
    pub(in crate::head) fn next(&mut self) -> Result<(u8, &[u8])> {
        let left = self.len.saturating_sub(self.off);
        if left < (SECTION_HEADER_LEN + CRC_LEN) as u64 {
            return Err(self.corrupt("snapshot ends inside a section header"));
        }
        let mut h = [0u8; SECTION_HEADER_LEN];
        self.read(&mut h, 0)?;
        let [kind, a, b, c, d] = h;
        let n = u32::from_le_bytes([a, b, c, d]) as usize;
        if n > MAX_SECTION_LEN || (n + SECTION_HEADER_LEN + CRC_LEN) as u64 > left {
            return Err(self.corrupt("snapshot section longer than the file"));
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(n + CRC_LEN, 0);
        let res = self.read(&mut buf, SECTION_HEADER_LEN);
        self.buf = buf;
        res?;
        let (payload, crc) = self.buf.split_at(n);
        let want = u32::from_le_bytes(crc.try_into().unwrap_or_default());
        if crc32_parts(&[&h, payload]) != want {
            return Err(self.corrupt("snapshot section checksum mismatch"));
        }
        self.off += (SECTION_HEADER_LEN + n + CRC_LEN) as u64;
        Ok((kind, payload))
    }

    fn read(&mut self, dst: &mut [u8], at: usize) -> Result<()> {
        self.r.read_exact(dst).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corruption(self.path, self.off + at as u64, "snapshot truncated")
            } else {
                Error::io(format!("cannot read {}", self.path.display()), e)
            }
        })
    }
}

pub(in crate::head) fn decode_meta(p: &[u8]) -> Option<Meta> {
    let mut d = Decbuf::new(p);
    let m = Meta {
        segment: u32::try_from(d.uvarint()?).ok()?,
        next_ref: d.uvarint()?,
        min_time: d.varint()?,
        max_time: d.varint()?,
        pages: d.uvarint()?,
        series: d.uvarint()?,
    };
    d.is_empty().then_some(m)
}

/// `zstd(src)`: one frame with its content size (what [`unzstd`] needs).
#[cfg(any(test, feature = "fuzzing"))]
pub(in crate::head) fn zstd_frame(src: &[u8]) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(src, ZSTD_LEVEL)
}

/// Decompresses one zstd frame that declares its size, at most [`MAX_SECTION_LEN`] bytes
/// (checked before anything is allocated).
pub(in crate::head) fn unzstd(src: &[u8]) -> Option<Vec<u8>> {
    let want = usize::try_from(zstd::zstd_safe::get_frame_content_size(src).ok()??).ok()?;
    if want > MAX_SECTION_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(want);
    let n = zstd::bulk::Decompressor::new()
        .ok()?
        .decompress_to_buffer(src, &mut out)
        .ok()?;
    (n == want).then_some(out)
}

/// A PAGE section as read: its header decoded, its bytes as stored (one zstd frame from
/// version 2 on). Decompressing is left to whichever loading thread has time
/// (`snapshot_load.rs`).
pub(crate) struct PageFrame {
    pub(crate) seq: u32,
    pub(crate) max_t: Timestamp,
    /// The page being filled.
    pub(crate) current: bool,
    stored: Vec<u8>,
    version: u8,
    /// Offset of the section in its file.
    pub(in crate::head) off: u64,
}

impl PageFrame {
    /// The page's bytes as they are kept in the head: shared once complete, growable while
    /// being filled; `None` when they do not decompress.
    pub(in crate::head) fn bytes(self) -> Option<crate::head::snapshot_load::PageBytes> {
        use crate::head::snapshot_load::PageBytes;
        Some(match (self.version >= 2, self.current) {
            (true, true) => PageBytes::Current(unzstd(&self.stored)?),
            (true, false) => PageBytes::Full(unzstd_shared(&self.stored)?),
            (false, true) => PageBytes::Current(self.stored),
            (false, false) => PageBytes::Full(Arc::from(self.stored)),
        })
    }

    /// The page as an image (tests and the fuzz target).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn image(self) -> Option<PageImage> {
        let (seq, max_t, current) = (self.seq, self.max_t, self.current);
        let bytes = if self.version >= 2 {
            unzstd(&self.stored)?
        } else {
            self.stored
        };
        Some(PageImage {
            seq,
            max_t,
            current,
            bytes,
        })
    }
}

/// Decompresses one zstd frame like [`unzstd`], straight into a shared buffer (no copy from a
/// `Vec` into an `Arc`).
pub(super) fn unzstd_shared(src: &[u8]) -> Option<Arc<[u8]>> {
    let want = usize::try_from(zstd::zstd_safe::get_frame_content_size(src).ok()??).ok()?;
    if want > MAX_SECTION_LEN {
        return None;
    }
    let mut out: Arc<[u8]> = std::iter::repeat_n(0u8, want).collect();
    let dst = Arc::get_mut(&mut out)?;
    let n = zstd::bulk::Decompressor::new()
        .ok()?
        .decompress_to_buffer(src, dst)
        .ok()?;
    (n == want).then_some(out)
}

/// The header of a PAGE section at offset `off` and its stored bytes.
pub(in crate::head) fn decode_page(p: &[u8], version: u8, off: u64) -> Option<PageFrame> {
    let mut d = Decbuf::new(p);
    let seq = u32::try_from(d.uvarint()?).ok()?;
    let max_t = d.varint()?;
    let current = match d.u8()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let stored = d.bytes(d.remaining())?.to_vec();
    Some(PageFrame {
        seq,
        max_t,
        current,
        stored,
        version,
        off,
    })
}

pub(in crate::head) fn flag(d: &mut Decbuf<'_>) -> Option<bool> {
    match d.u8()? {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// An entry's newest in-order sample: `(t, value bits)`.
pub(in crate::head) type Newest = Option<(Timestamp, u64)>;

/// An entry's labels: count, then (name, value) strings.
pub(in crate::head) fn decode_labels(d: &mut Decbuf<'_>) -> Option<Vec<(String, String)>> {
    let n = d.uvarint_len(d.remaining())?;
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        labels.push((d.str()?.to_string(), d.str()?.to_string()));
    }
    Some(labels)
}

/// An entry's completed chunks: count, then (min_t, max_t, ref).
pub(in crate::head) fn decode_closed(d: &mut Decbuf<'_>) -> Option<Vec<ClosedChunk>> {
    let n = d.uvarint_len(d.remaining())?;
    let mut closed = Vec::with_capacity(n);
    for _ in 0..n {
        closed.push(ClosedChunk {
            min_t: d.varint()?,
            max_t: d.varint()?,
            r: d.uvarint()?,
        });
    }
    Some(closed)
}

/// The end of an entry: out-of-order samples (count, then (t, value bits)), then the flagged
/// newest in-order sample (t, value bits).
pub(in crate::head) fn decode_ooo_last(
    d: &mut Decbuf<'_>,
) -> Option<(Vec<(Timestamp, f64)>, Newest)> {
    let n = d.uvarint_len(d.remaining())?;
    let mut ooo = Vec::with_capacity(n);
    for _ in 0..n {
        ooo.push((d.varint()?, f64::from_bits(d.u64_le()?)));
    }
    // The head keeps them sorted by time with unique timestamps, and reads rely on it (a read
    // encodes them into a chunk, which takes only increasing times): bytes that break it are
    // corrupt, whatever their CRC says.
    if !crate::chunk::increasing(&ooo) {
        return None;
    }
    let last = if flag(d)? {
        Some((d.varint()?, d.u64_le()?))
    } else {
        None
    };
    Some((ooo, last))
}

pub(super) fn decode_entry(d: &mut Decbuf<'_>) -> Option<SeriesImage> {
    let id = d.uvarint()?;
    let labels = decode_labels(d)?;
    let closed = decode_closed(d)?;
    let open = if flag(d)? {
        let (min_t, max_t) = (d.varint()?, d.varint()?);
        let len = d.uvarint_len(d.remaining())?;
        Some((min_t, max_t, d.bytes(len)?.to_vec()))
    } else {
        None
    };
    let (ooo, last) = decode_ooo_last(d)?;
    Some(SeriesImage {
        id,
        labels,
        closed,
        open,
        ooo,
        last,
    })
}

pub(super) fn decode_series(p: &[u8], version: u8) -> Option<Vec<SeriesImage>> {
    let plain;
    let p = if version >= 2 {
        plain = unzstd(p)?;
        &plain[..]
    } else {
        p
    };
    let mut d = Decbuf::new(p);
    let n = d.uvarint_len(d.remaining())?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(decode_entry(&mut d)?);
    }
    d.is_empty().then_some(out)
}

/// Reads every section in order, checking the order and the counts, handing each to `f`.
/// Returns the META section.
pub(super) fn visit<R: Read>(
    r: &mut Reader<'_, R>,
    f: &mut dyn FnMut(Section) -> Result<()>,
) -> Result<Meta> {
    let (kind, p) = r.next()?;
    let meta = match (kind, decode_meta(p)) {
        (KIND_META, Some(m)) => m,
        _ => return Err(r.corrupt("snapshot does not start with a valid META section")),
    };
    f(Section::Meta(meta.clone()))?;
    let (mut pages, mut series) = (0u64, 0u64);
    let mut last_seq: Option<u32> = None;
    let mut current_seen = false;
    let (path, version) = (r.path, r.version);
    loop {
        let off = r.off;
        let (kind, p) = r.next()?;
        let bad = |reason: &str| Error::corruption(path, off, reason);
        match kind {
            KIND_PAGE => {
                let page = decode_page(p, version, off).ok_or_else(|| bad("bad PAGE section"))?;
                if series > 0 || current_seen || last_seq.is_some_and(|s| s >= page.seq) {
                    return Err(bad("PAGE section out of order"));
                }
                last_seq = Some(page.seq);
                current_seen = page.current;
                pages += 1;
                f(Section::Page(page))?;
            }
            KIND_SERIES => {
                let list = decode_series(p, version).ok_or_else(|| bad("bad SERIES section"))?;
                series += list.len() as u64;
                f(Section::Series(list))?;
            }
            KIND_END => {
                let empty = p.is_empty();
                r.check_end(off, empty, (pages, series), (meta.pages, meta.series))?;
                return Ok(meta);
            }
            _ => return Err(bad("unknown snapshot section kind")),
        }
    }
}
