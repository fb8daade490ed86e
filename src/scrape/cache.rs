//! The per-target series cache and the append path of one scrape.
//!
//! The cache maps raw series text (bytes of the body) to the storage's `SeriesRef`, so a
//! steady-state scrape compares bytes and appends by ref ([`Appender::append_ref`]): no label
//! decoding, relabeling, hashing or comparing, and no allocation for series seen before. It also
//! remembers which series the previous successful scrape had, to write staleness markers for
//! those that disappeared, as Prometheus's `scrapeCache` does.
//!
//! **Keys.** An entry is keyed by `Key`, the 128-bit SipHash-1-3 of the series text under a
//! secret key drawn at random per cache; the text itself is not kept (it was ~50 bytes a
//! series, 20 MiB at 400 targets × 1,000 series). Two different texts share a key only by a
//! collision of a keyed PRF: for `n` cached series and `q` lookups the chance that any lookup
//! finds another series' entry is at most `q·n / 2^128`, and a target cannot aim for one
//! without the secret key, which never leaves the process (as `ingest::series_cache`). The
//! parser's expected-line shortcut ([`Parser::next_expecting_by`]) is told the expected text's
//! length and compares keys.
//!
//! Memory: an entry keeps no label set while the storage knows its ref: the labels live in the
//! storage, and are rebuilt from the body line only when the storage no longer knows the ref.
//! Samples that cannot go by ref (histograms, protobuf samples, storages without refs) keep
//! their labels, as before. A series that left the body is stale-marked by ref; when the
//! storage has dropped it meanwhile, no marker is written, as there are no labels to write it
//! under (Prometheus's cache keeps every series' labels and would write one). The head drops
//! only series with no sample since its truncation point (an hour or more back with 2-hour
//! blocks), or whose samples were deleted: the marker would end a series that the default
//! 5-minute lookback has ended long before, so no query result changes.

use super::Error;
use super::expfmt::{Entry, Format, Meta, Parser};
use super::target::Metadata;
use crate::config::relabel::{self, RelabelConfig};
use argus_storage::{Appender, Label, Labels, SeriesHandle, SeriesRef, Timestamp, stale_nan};
use hashbrown::HashTable;
use order::Order;
use siphasher::sip128::SipHasher13;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::Arc;

mod order;

/// Per-scrape options that shape samples (immutable for the life of a scrape loop).
#[derive(Clone, Debug, Default)]
pub struct AppendOptions {
    /// Target labels (public ones only) put on every sample.
    pub target_labels: Vec<Label>,
    /// Keep exposed labels on conflict.
    pub honor_labels: bool,
    /// Use exposed timestamps.
    pub honor_timestamps: bool,
    /// Stale-mark series with explicit timestamps too.
    pub track_timestamps_staleness: bool,
    /// `metric_relabel_configs`.
    pub metric_relabel: Vec<RelabelConfig>,
    /// 0 = unlimited.
    pub sample_limit: u64,
    /// 0 = unlimited.
    pub label_limit: u64,
    /// 0 = unlimited.
    pub label_name_length_limit: u64,
    /// 0 = unlimited.
    pub label_value_length_limit: u64,
    /// Histogram handling of protobuf bodies.
    pub protobuf: super::protobuf::Options,
}

/// One scraped sample: a text parser positioned on a series line, or a decoded protobuf
/// sample. The cache keys series by [`Scraped::series`].
trait Scraped {
    /// Bytes identifying the series within the body.
    fn series(&self) -> &[u8];
    /// The exposed labels, sorted, `__name__` included.
    fn labels(&self, dst: &mut Vec<Label>) -> Result<(), Error>;
    /// The exposed timestamp, ms.
    fn timestamp(&self) -> Option<i64>;
    /// The value, when it is a plain float sample of a text body: those are appended by ref
    /// without labels, as their series text (the cache key) can rebuild the labels. `None`
    /// (histograms, protobuf samples) keeps the entry's labels.
    fn float(&self) -> Option<f64>;
    /// Appends the value under `labels` at `t`.
    fn append_to(
        &self,
        app: &mut dyn Appender,
        sref: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
    ) -> argus_storage::Result<SeriesRef>;
}

impl Scraped for Parser<'_> {
    fn series(&self) -> &[u8] {
        Parser::series(self)
    }
    fn labels(&self, dst: &mut Vec<Label>) -> Result<(), Error> {
        Parser::labels(self, dst).map_err(Error::Parse)
    }
    fn timestamp(&self) -> Option<i64> {
        Parser::timestamp(self)
    }
    fn float(&self) -> Option<f64> {
        Some(self.value())
    }
    fn append_to(
        &self,
        app: &mut dyn Appender,
        sref: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
    ) -> argus_storage::Result<SeriesRef> {
        app.append(sref, labels, t, self.value())
    }
}

impl Scraped for super::protobuf::Sample {
    fn series(&self) -> &[u8] {
        &self.key
    }
    fn labels(&self, dst: &mut Vec<Label>) -> Result<(), Error> {
        dst.clear();
        dst.extend(self.labels.iter().cloned());
        Ok(())
    }
    fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }
    fn float(&self) -> Option<f64> {
        None
    }
    fn append_to(
        &self,
        app: &mut dyn Appender,
        sref: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
    ) -> argus_storage::Result<SeriesRef> {
        let mut sref = sref;
        if let Some(ct) = self.start_ms {
            // The zero sample of a created timestamp; refusals (mostly: older than the series'
            // data) are ignored, as Prometheus's scrape loop does.
            let zero = match &self.value {
                super::protobuf::Value::Float(_) => app.append_ct_zero(sref, labels, t, ct),
                super::protobuf::Value::Histogram(h) => {
                    app.append_histogram_ct_zero(sref, labels, t, ct, h)
                }
            };
            sref = zero.ok().or(sref);
        }
        match &self.value {
            super::protobuf::Value::Float(v) => app.append(sref, labels, t, *v),
            super::protobuf::Value::Histogram(h) => app.append_histogram(sref, labels, t, h),
        }
    }
}

/// Counts from one scrape, reported as `scrape_*` series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Sample lines in the body.
    pub scraped: u64,
    /// Samples left after metric relabeling (and de-duplication).
    pub post_relabel: u64,
    /// Series not in the cache before this scrape.
    pub added: u64,
    /// Samples the storage refused (out of order, duplicate, out of bounds, too old).
    pub rejected: u64,
    /// Staleness markers written.
    pub stale: u64,
}

/// 40 bytes (48 with the labels' box in the entry; 40 plus the series text, ~50 bytes, kept
/// apart before that; 64 with the text in a box of its own and 64-bit iterations before that:
/// 400,000 scraped series held 25 MiB of entries and 20 MiB of texts).
#[derive(Debug)]
struct CacheEntry {
    /// The series text's key.
    key: Key,
    /// The series in the storage: its ref, and for the head a pointer to the series itself
    /// ([`Appender::append_handle`] appends without a lookup by ref). Same size as an
    /// `Option<SeriesRef>`.
    sref: Option<SeriesHandle>,
    /// Iteration that last saw this series.
    last_iter: Iter,
    /// Length of the series text (the parser's expected-line hint), 0 when it does not fit.
    key_len: u16,
    /// [`DROPPED`], [`EXPLICIT_TS`], [`PREV_OK`], [`KEPT`].
    flags: u8,
}

/// Flag: relabeling dropped the series.
const DROPPED: u8 = 1;
/// Flag: the last sample carried its own timestamp.
const EXPLICIT_TS: u8 = 2;
/// Flag: `last_iter` was the last successful scrape before it was last set (tells a failed
/// scrape what the previous successful one saw).
const PREV_OK: u8 = 4;
/// Flag: [`SeriesCache::kept`] holds the series' labels.
const KEPT: u8 = 8;

impl CacheEntry {
    fn dropped(&self) -> bool {
        self.flags & DROPPED != 0
    }
    fn explicit_ts(&self) -> bool {
        self.flags & EXPLICIT_TS != 0
    }
    fn prev_ok(&self) -> bool {
        self.flags & PREV_OK != 0
    }
    fn kept(&self) -> bool {
        self.flags & KEPT != 0
    }
    fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }
}

/// A series text's keyed 128-bit hash (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key([u64; 2]);

impl Key {
    /// The 64 bits the index hashes by.
    fn table_hash(self) -> u64 {
        self.0[0]
    }
}

/// SipHash-1-3 (128-bit output) under a secret key drawn per cache.
///
/// Why this function (session 11, 73-byte series texts, one core): SipHash is a PRF, so the
/// collision bound of the module doc holds whatever texts a target exposes, adaptively too.
/// It costs 19.6 ns a text. Measured against it: POLYVAL with a length block (RustCrypto
/// `polyval`, a universal hash: the same bound for texts chosen without the key, and an AES
/// pass over its output to keep the table's placement from leaking the key) 53 ns; xxh3-128
/// under a random 192-byte secret 6.7 ns, but xxh3 makes no claim for secret keys and no
/// bound follows, so it is not used. What the warm path saves instead is the work around
/// the hash: values parsed by a plain-decimal fast path (`expfmt::lex::parse_float`).
/// Session 17: HighwayHash-128 (`highway` 1.3, AVX2, a keyed PRF by its design) took 44 ns a
/// key against SipHash's 32 on the remote-write label sets (163 bytes mean) and 42 against 12
/// on 24 bytes, so it does not replace SipHash here either (`benches/README.md`, "hash7").
#[derive(Clone, Debug)]
struct KeyHasher(SipHasher13);

impl Default for KeyHasher {
    fn default() -> Self {
        // The standard library's `RandomState` is seeded from the OS's randomness: hashing two
        // constants under it yields two secret 64-bit keys.
        let seed = std::hash::RandomState::new();
        Self(SipHasher13::new_with_keys(
            seed.hash_one(0u8),
            seed.hash_one(1u8),
        ))
    }
}

impl KeyHasher {
    fn key(&self, text: &[u8]) -> Key {
        let h = self.0.hash(text);
        Key([h.h1, h.h2])
    }
}

/// A scrape attempt's number: 32 bits, renumbered before they run out (see
/// [`SeriesCache::renumber`]).
type Iter = u32;

/// A position in [`SeriesCache::entries`]: 4 bytes, as the index and two order lists hold one
/// per series (8 bytes each were 9.6 MiB at 400 targets × 1,000 series).
type Pos = u32;

/// The entry at position `i`.
fn entry(entries: &[CacheEntry], i: Pos) -> Option<&CacheEntry> {
    entries.get(i as usize)
}

/// True when the entry at position `i` has `key`.
fn has_key(entries: &[CacheEntry], i: Pos, key: Key) -> bool {
    entry(entries, i).is_some_and(|e| e.key == key)
}

/// Series cache of one target. Owned by its scrape loop; not shared.
///
/// Entries live in a dense vector. Targets expose their series in the same order scrape after
/// scrape, so the cache first compares the series' key with the entry that held the same
/// position last time (a sequential walk); only on a mismatch does it look the key up in the
/// hash index.
#[derive(Debug, Default)]
pub struct SeriesCache {
    entries: Vec<CacheEntry>,
    /// Final labels by position in `entries`, kept only where a later sample needs them (the
    /// entry's [`KEPT`] flag): samples that do not go by ref ([`Scraped::float`] is `None`) and
    /// series whose ref the storage did not know. None for text series appended by ref (the
    /// storage holds their labels) and for dropped ones: kept apart so that those entries, most
    /// of them against the head, do not carry an 8-byte slot for it.
    kept: KeptLabels,
    /// Key → position in `entries`: holds positions only, hashed and compared through the
    /// entries' keys. Either holds every entry or is empty: it is let go after a scrape that
    /// did not need it (every series where `order` said it would be; 10 bytes a series) and
    /// built again when a lookup or an added series needs it ([`Self::ensure_index`]).
    index: HashTable<Pos>,
    /// The current scrape looked a key up in `index` or added to it.
    index_used: bool,
    /// Keys series texts.
    keyer: KeyHasher,
    /// Hashes metadata entries ([`BodyMeta`]).
    hasher: SeriesHashBuilder,
    /// `entries` positions in the order the last successful scrape exposed them.
    order: Order,
    /// The same, being built by the current scrape.
    next_order: Order,
    /// Hash of the metadata entries last applied from a text body ([`Self::apply_body_meta`]);
    /// `None` after metadata came another way.
    meta_hash: Option<u64>,
    /// The format of the body that set `order`, when its keys are all series texts of the text
    /// parser in that format (not protobuf, no converted histograms): see
    /// [`Parser::next_expecting`].
    order_format: Option<Format>,
    /// Current iteration (one per scrape attempt).
    iter: Iter,
    /// Iteration of the last successful scrape whose series were not yet stale-marked.
    last_ok: Option<Iter>,
    /// Non-dropped series the last successful scrape saw.
    last_ok_count: u64,
    /// Metadata by family name, shared with the target (copied on write). Looked up only when a
    /// body's metadata differs from the last one's (`meta_hash`).
    meta: Arc<BTreeMap<String, Metadata>>,
    meta_changed: bool,
    /// Entries seen by the current iteration.
    touched: u64,
    scratch: Vec<Label>,
}

impl SeriesCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached series (dropped ones included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Metadata seen so far, when it changed since the last call: shared with the cache (the
    /// next change copies it once), so a target's metadata is held once.
    pub fn take_metadata_update(&mut self) -> Option<Arc<BTreeMap<String, Metadata>>> {
        if !self.meta_changed {
            return None;
        }
        self.meta_changed = false;
        Some(self.meta.clone())
    }

    /// [`SeriesCache::take_metadata_update`], with the map replaced by an equal one of `pool`
    /// when there is one: targets exposing the same metadata then hold one map.
    pub fn take_metadata_update_shared(
        &mut self,
        pool: &super::buffers::MetadataPool,
    ) -> Option<Arc<BTreeMap<String, Metadata>>> {
        if self.meta_changed {
            self.meta = pool.share(std::mem::take(&mut self.meta));
        }
        self.take_metadata_update()
    }

    /// Parses `body` and appends its samples at `ts` (ms) to `app`, then staleness markers for
    /// series the previous successful scrape had and this one lacks. Does not commit. On error
    /// the caller rolls `app` back and calls [`SeriesCache::mark_all_stale`].
    pub fn append_body(
        &mut self,
        body: &[u8],
        format: Format,
        ts: Timestamp,
        app: &mut dyn Appender,
        opts: &AppendOptions,
    ) -> Result<AppendStats, Error> {
        if self.iter == Iter::MAX {
            self.renumber();
        }
        self.iter += 1;
        self.touched = 0;
        self.index_used = false;
        self.next_order.clear();
        let iter = self.iter;
        let mut st = AppendStats::default();
        let mut reseen = 0u64;
        if format == Format::Protobuf {
            let mut samples = Vec::new();
            super::protobuf::decode(body, &opts.protobuf, &mut samples).map_err(|e| {
                Error::Parse(super::expfmt::ParseError {
                    line: 0,
                    msg: e.to_string(),
                })
            })?;
            for s in &samples {
                st.scraped += 1;
                self.append_series(s, false, iter, ts, app, opts, &mut st, &mut reseen)?;
            }
        } else if !body.is_empty() && opts.protobuf.convert_nhcb {
            self.append_text_nhcb(body, format, iter, ts, app, opts, &mut st, &mut reseen)?;
        } else if !body.is_empty() {
            // `order` holds series texts this parser accepted in the last body when that body
            // was of the same format and went through this loop: hints for the lines ahead.
            let hints = self.order_format == Some(format);
            // What the body's metadata entries say, hashed as they pass; they are read again
            // (`apply_body_meta`) only when that differs from the last body's.
            let mut meta = BodyMeta::new(&self.hasher, format);
            let mut p = Parser::new(body, format);
            loop {
                let (len, key) = match self.order.get(self.next_order.len()) {
                    Some(i) if hints => entry(&self.entries, i)
                        .map_or((0, Key([0; 2])), |e| (usize::from(e.key_len), e.key)),
                    _ => (0, Key([0; 2])),
                };
                let keyer = &self.keyer;
                let Some(e) = p.next_expecting_by(len, &|text| keyer.key(text) == key) else {
                    break;
                };
                match e {
                    Entry::Series => {
                        st.scraped += 1;
                        let known = p.as_expected();
                        let r = self.append_series(
                            &p,
                            known,
                            iter,
                            ts,
                            app,
                            opts,
                            &mut st,
                            &mut reseen,
                        );
                        if r.is_err() {
                            self.apply_body_meta(body, format, &meta);
                        }
                        r?;
                    }
                    Entry::Help | Entry::Type | Entry::Unit => meta.add(body, p.meta(e)),
                    Entry::Comment => {}
                }
            }
            self.apply_body_meta(body, format, &meta);
            if let Some(e) = p.err() {
                return Err(Error::Parse(e.clone()));
            }
        }
        // Staleness: series of the previous successful scrape that this one lacked.
        if let Some(prev) = self.last_ok
            && reseen < self.last_ok_count
        {
            for (pos, entry) in (0..).zip(&mut self.entries) {
                if entry.last_iter == prev
                    && !entry.dropped()
                    && (!entry.explicit_ts() || opts.track_timestamps_staleness)
                {
                    let kept = &mut self.kept;
                    stale_append(app, Slot { entry, pos, kept }, ts, &mut st)?;
                }
            }
        }
        self.order.replace_with(&mut self.next_order);
        if !self.index_used && !self.index.is_empty() {
            self.index = HashTable::new();
        }
        // Forget series this scrape lacked (already stale-marked); only when some are.
        if (self.touched as usize) < self.entries.len() {
            self.compact(iter);
        } else if st.added > 0 {
            self.trim();
        }
        self.last_ok = Some(iter);
        self.last_ok_count = st.post_relabel;
        self.order_format = match format {
            Format::Text | Format::OpenMetrics if !opts.protobuf.convert_nhcb => Some(format),
            _ => None,
        };
        Ok(st)
    }

    /// The text loop of [`SeriesCache::append_body`] with classic histograms converted to
    /// native ones (`convert_classic_histograms_to_nhcb`, see `scrape::nhcb`): each converted
    /// histogram is appended where its classic series end, and those series only with
    /// `always_scrape_classic_histograms`.
    #[allow(clippy::too_many_arguments)]
    fn append_text_nhcb(
        &mut self,
        body: &[u8],
        format: Format,
        iter: Iter,
        ts: Timestamp,
        app: &mut dyn Appender,
        opts: &AppendOptions,
        st: &mut AppendStats,
        reseen: &mut u64,
    ) -> Result<(), Error> {
        let mut conv = super::nhcb::Collector::default();
        let mut labels = Vec::new();
        let mut p = Parser::new(body, format);
        while let Some(e) = p.next() {
            let (done, taken) = match e {
                Entry::Series if conv.wants(&p.metric_name()) => {
                    p.labels(&mut labels).map_err(Error::Parse)?;
                    conv.on_series(&labels, p.value(), p.timestamp())
                }
                Entry::Type => {
                    let (name, kind) = p.metric_type();
                    (conv.on_type(&name, kind), false)
                }
                _ => (conv.finish(), false),
            };
            if let Some(h) = done {
                st.scraped += 1;
                self.append_series(&h, false, iter, ts, app, opts, st, reseen)?;
            }
            match e {
                Entry::Series if !taken || opts.protobuf.always_classic => {
                    st.scraped += 1;
                    self.append_series(&p, false, iter, ts, app, opts, st, reseen)?;
                }
                Entry::Series | Entry::Comment => {}
                Entry::Help | Entry::Type | Entry::Unit => self.note_metadata(&p, e),
            }
        }
        if let Some(e) = p.err() {
            return Err(Error::Parse(e.clone()));
        }
        if let Some(h) = conv.finish() {
            st.scraped += 1;
            self.append_series(&h, false, iter, ts, app, opts, st, reseen)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    /// `known`: `p` is the series at this position in `order` (the parser compared it).
    fn append_series(
        &mut self,
        p: &impl Scraped,
        known: bool,
        iter: Iter,
        ts: Timestamp,
        app: &mut dyn Appender,
        opts: &AppendOptions,
        st: &mut AppendStats,
        reseen: &mut u64,
    ) -> Result<(), Error> {
        let text = p.series();
        let at_pos = self.order.get(self.next_order.len());
        // The key is not needed when the parser found the expected series (it compared keys).
        let (hit, key) = match at_pos {
            Some(i) if known => (Some(i), None),
            _ => {
                let key = self.keyer.key(text);
                let hit = match at_pos.filter(|&i| has_key(&self.entries, i, key)) {
                    Some(i) => Some(i),
                    None => {
                        self.ensure_index();
                        let entries = &self.entries;
                        self.index
                            .find(key.table_hash(), |&i| has_key(entries, i, key))
                            .copied()
                    }
                };
                (hit, Some(key))
            }
        };
        if let Some(i) = hit
            && let Some(e) = self.entries.get_mut(i as usize)
        {
            self.next_order.push(i);
            if e.last_iter == iter {
                // Same series twice in one body: Prometheus keeps the first sample.
                if !e.dropped() {
                    st.rejected += 1;
                }
                return Ok(());
            }
            if self.last_ok == Some(e.last_iter) && !e.dropped() {
                *reseen += 1;
            }
            e.set(PREV_OK, self.last_ok == Some(e.last_iter));
            e.last_iter = iter;
            self.touched += 1;
            let slot = Slot {
                entry: e,
                pos: i,
                kept: &mut self.kept,
            };
            return append_entry(slot, p, ts, app, opts, st, &mut self.scratch, None);
        }
        let (labels, dropped) = build_labels(p, opts, &mut self.scratch)?;
        if !dropped {
            st.added += 1;
        }
        self.touched += 1;
        // More series than positions: far beyond any sample limit or body size, but bounded.
        let i = Pos::try_from(self.entries.len())
            .ok()
            .filter(|&i| i < Pos::MAX)
            .ok_or(Error::SampleLimit)?;
        let key = match key {
            Some(k) => k,
            None => self.keyer.key(text),
        };
        self.ensure_index();
        self.entries.push(CacheEntry {
            key,
            sref: None,
            last_iter: iter,
            // A longer text (over 64 KiB) goes without the parser's hint.
            key_len: u16::try_from(text.len()).unwrap_or(0),
            flags: if dropped { DROPPED } else { 0 },
        });
        let entries = &self.entries;
        self.index.insert_unique(key.table_hash(), i, |&j| {
            entry(entries, j).map_or(0, |e| e.key.table_hash())
        });
        self.next_order.push(i);
        let fresh = (!dropped).then_some(labels);
        match self.entries.last_mut() {
            Some(entry) => {
                let slot = Slot {
                    entry,
                    pos: i,
                    kept: &mut self.kept,
                };
                append_entry(slot, p, ts, app, opts, st, &mut self.scratch, fresh)
            }
            None => unreachable!("BUG: entry pushed just above"),
        }
    }

    /// Builds the index from the entries if it was let go (see [`Self::index`]); marks it used
    /// by this scrape.
    fn ensure_index(&mut self) {
        self.index_used = true;
        if self.index.len() == self.entries.len() {
            return;
        }
        let entries = &self.entries;
        let hash = |&j: &Pos| entry(entries, j).map_or(0, |e| e.key.table_hash());
        self.index.clear();
        self.index.reserve(entries.len(), hash);
        for (i, e) in (0..).zip(entries) {
            self.index.insert_unique(e.key.table_hash(), i, hash);
        }
    }

    /// Gives back the spare capacity that adding series left (vectors grow by doubling): the
    /// entries are held for the life of the target. Only after a scrape that added series.
    fn trim(&mut self) {
        self.entries.shrink_to_fit();
    }

    /// Before the iteration numbers run out (after 2^32 scrapes): only the last successful
    /// scrape's number matters between scrapes, so it becomes 1 and every other 0.
    fn renumber(&mut self) {
        let last_ok = self.last_ok;
        for e in &mut self.entries {
            e.last_iter = Iter::from(last_ok.is_some() && last_ok == Some(e.last_iter));
            e.set(PREV_OK, false);
        }
        self.last_ok = last_ok.map(|_| 1);
        self.iter = 1;
    }

    /// Drops entries not seen by iteration `iter`, renumbering the index and the order.
    fn compact(&mut self, iter: Iter) {
        let mut remap = vec![Pos::MAX; self.entries.len()];
        let mut next = 0;
        for (old, e) in self.entries.iter().enumerate() {
            if e.last_iter == iter {
                if let Some(r) = remap.get_mut(old) {
                    *r = next;
                }
                next += 1;
            }
        }
        self.entries.retain(|e| e.last_iter == iter);
        self.entries.shrink_to_fit();
        self.index.retain(|i| match remap.get(*i as usize) {
            Some(&r) if r != Pos::MAX => {
                *i = r;
                true
            }
            _ => false,
        });
        self.order.remap(&remap);
        if !self.kept.is_empty() {
            self.kept = std::mem::take(&mut self.kept)
                .into_iter()
                .filter_map(|(i, l)| match remap.get(i as usize) {
                    Some(&r) if r != Pos::MAX => Some((r, l)),
                    _ => None,
                })
                .collect();
        }
    }

    /// Applies the first `meta.count` metadata entries of a text body unless they say what
    /// those of the body that last applied them said (most scrapes: no per-entry lookups then).
    /// The entries are not kept while the body is appended (a list of 576 of them per target
    /// was 16 MiB at 400 targets): when they differ, the body is parsed again for them.
    fn apply_body_meta(&mut self, body: &[u8], format: Format, meta: &BodyMeta) {
        use std::hash::Hasher;
        let h = meta.hash.finish();
        if self.meta_hash == Some(h) {
            return;
        }
        self.meta_hash = Some(h);
        let mut left = meta.count;
        let mut p = Parser::new(body, format);
        while left > 0
            && let Some(e) = p.next()
        {
            if let Entry::Help | Entry::Type | Entry::Unit = e {
                let (name, text) = p.meta(e).decode(body, format);
                self.note_meta(e, name, text);
                left -= 1;
            }
        }
    }

    fn note_metadata(&mut self, p: &Parser<'_>, e: Entry) {
        self.meta_hash = None;
        let (name, text) = p.meta(e).decode(p.buf, p.format());
        self.note_meta(e, name, text);
    }

    fn note_meta(
        &mut self,
        e: Entry,
        name: std::borrow::Cow<'_, str>,
        text: std::borrow::Cow<'_, str>,
    ) {
        fn field(m: &Metadata, e: Entry) -> &str {
            match e {
                Entry::Help => &m.help,
                Entry::Type => &m.kind,
                _ => &m.unit,
            }
        }
        if self
            .meta
            .get(name.as_ref())
            .is_some_and(|m| field(m, e) == text)
        {
            return;
        }
        self.meta_changed = true;
        let m = Arc::make_mut(&mut self.meta)
            .entry(name.into_owned())
            .or_insert_with(|| Metadata {
                kind: "unknown".into(),
                ..Default::default()
            });
        let field = match e {
            Entry::Help => &mut m.help,
            Entry::Type => &mut m.kind,
            _ => &mut m.unit,
        };
        *field = text.into_owned();
    }

    /// After a failed scrape (its appender rolled back): stale markers at `ts` for every series
    /// the last successful scrape had. Appends to a fresh `app`; the caller commits.
    pub fn mark_all_stale(
        &mut self,
        ts: Timestamp,
        app: &mut dyn Appender,
        opts: &AppendOptions,
    ) -> Result<u64, Error> {
        let mut st = AppendStats::default();
        if let Some(prev) = self.last_ok.take() {
            let iter = self.iter;
            for (pos, entry) in (0..).zip(&mut self.entries) {
                // `iter == prev` when the failure happened before parsing (fetch error).
                let was = if entry.last_iter == iter && iter != prev {
                    entry.prev_ok()
                } else {
                    entry.last_iter == prev
                };
                if was
                    && !entry.dropped()
                    && (!entry.explicit_ts() || opts.track_timestamps_staleness)
                {
                    let kept = &mut self.kept;
                    stale_append(app, Slot { entry, pos, kept }, ts, &mut st)?;
                }
                entry.last_iter = 0;
                entry.set(PREV_OK, false);
            }
        }
        self.last_ok_count = 0;
        Ok(st.stale)
    }
}

/// The metadata entries of a text body seen so far: their hash and number.
struct BodyMeta {
    hash: SeriesHasher,
    count: usize,
}

impl BodyMeta {
    fn new(hasher: &SeriesHashBuilder, format: Format) -> Self {
        use std::hash::Hasher;
        let mut hash = hasher.build_hasher();
        hash.write_u8(format as u8);
        Self { hash, count: 0 }
    }

    fn add(&mut self, body: &[u8], m: Meta) {
        m.hash_into(body, &mut self.hash);
        self.count += 1;
    }
}

/// Word-at-a-time hashing of series text (SipHash was a visible share of a warm scrape),
/// seeded per cache from std's random state so a target cannot precompute collisions across
/// processes.
#[derive(Clone, Debug)]
struct SeriesHashBuilder(u64);

impl Default for SeriesHashBuilder {
    fn default() -> Self {
        use std::hash::BuildHasher;
        Self(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64))
    }
}

impl std::hash::BuildHasher for SeriesHashBuilder {
    type Hasher = SeriesHasher;
    fn build_hasher(&self) -> SeriesHasher {
        SeriesHasher(self.0)
    }
}

struct SeriesHasher(u64);

const HASH_K: u64 = 0x9e37_79b9_7f4a_7c15;

impl std::hash::Hasher for SeriesHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(HASH_K);
        }
        let mut tail = 0u64;
        for (i, &b) in chunks.remainder().iter().enumerate() {
            tail |= u64::from(b) << (8 * i);
        }
        h = (h.rotate_left(5) ^ tail ^ bytes.len() as u64).wrapping_mul(HASH_K);
        self.0 = h;
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(HASH_K);
    }
    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(HASH_K);
    }
    fn finish(&self) -> u64 {
        // Murmur3 finaliser: hashbrown uses the top bits.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Appends `p`'s sample to `entry`'s series: by ref when the sample is a plain float, the entry
/// keeps no labels and the storage knows the ref; otherwise by labels (`fresh` ones of a new
/// entry, the kept ones, or rebuilt from `p`).
#[allow(clippy::too_many_arguments)]
fn append_entry(
    slot: Slot<'_>,
    p: &impl Scraped,
    ts: Timestamp,
    app: &mut dyn Appender,
    opts: &AppendOptions,
    st: &mut AppendStats,
    scratch: &mut Vec<Label>,
    fresh: Option<Labels>,
) -> Result<(), Error> {
    let Slot { entry, pos, kept } = slot;
    if entry.dropped() {
        return Ok(());
    }
    st.post_relabel += 1;
    if opts.sample_limit > 0 && st.post_relabel > opts.sample_limit {
        return Err(Error::SampleLimit);
    }
    let t = match p.timestamp() {
        Some(t) if opts.honor_timestamps => {
            entry.set(EXPLICIT_TS, true);
            t
        }
        _ => {
            entry.set(EXPLICIT_TS, false);
            ts
        }
    };
    let float = p.float();
    let had_labels = entry.kept();
    let mut ref_unknown = false;
    if fresh.is_none()
        && !had_labels
        && let (Some(v), Some(h)) = (float, &entry.sref)
    {
        match app.append_handle(h, t, v) {
            Ok(Some(r)) => {
                if r != h.series_ref() {
                    entry.sref = Some(app.handle(r));
                }
                return Ok(());
            }
            Ok(None) => ref_unknown = true,
            Err(e) => return count_rejection(e, st),
        }
    }
    // Kept labels stay kept (see below): appended from where they are, no copy, no move.
    let hint = entry.sref.as_ref().map(SeriesHandle::series_ref);
    let (res, owned) = match (fresh, had_labels.then(|| kept.get(&pos)).flatten()) {
        (Some(l), _) => (p.append_to(app, hint, &l, t), Some(l)),
        (None, Some(l)) => (p.append_to(app, hint, l, t), None),
        (None, None) => {
            let (l, dropped) = build_labels(p, opts, scratch)?;
            if dropped {
                // Not reached: relabeling of the same text under the same options.
                entry.set(DROPPED, true);
                return Ok(());
            }
            (p.append_to(app, hint, &l, t), Some(l))
        }
    };
    if let Ok(r) = res
        && (hint != Some(r) || ref_unknown)
    {
        // One lookup per new (or re-created) series; samples that never go by handle keep
        // only the ref.
        entry.sref = Some(if float.is_some() {
            app.handle(r)
        } else {
            SeriesHandle::from_ref(r)
        });
    }
    // Labels stay where the next sample or a staleness marker needs them: samples that never
    // go by ref, a storage that did not know its own ref (one without refs, or a series it
    // dropped), no ref yet, a handle that does not reach a series (a storage without handles
    // wraps the ref: `touch` counts no holder). Once kept, always kept.
    if let Some(labels) = owned
        && (float.is_none() || ref_unknown || entry.sref.as_ref().is_none_or(|h| h.touch() == 0))
    {
        kept.insert(pos, labels);
        entry.set(KEPT, true);
    }
    match res {
        Ok(_) => Ok(()),
        Err(e) => count_rejection(e, st),
    }
}

/// An entry with its position, and the labels kept by position ([`SeriesCache::kept`]).
struct Slot<'c> {
    entry: &'c mut CacheEntry,
    pos: Pos,
    kept: &'c mut KeptLabels,
}

/// Labels by entry position ([`SeriesCache::kept`]).
type KeptLabels = hashbrown::HashMap<Pos, Labels, std::hash::BuildHasherDefault<PosHasher>>;

/// Hashes a position to itself (and its low 7 bits into the top 7, hashbrown's tag): a scrape
/// visits the entries in order, so the kept labels are read in table order, not at random
/// (a seeded hash made every lookup a cache miss: a third of a warm scrape of 10,000 series
/// against a storage without handles). Positions are the cache's own dense numbering, never a
/// target's bytes, so there is nothing to seed against.
#[derive(Default)]
struct PosHasher(u64);

impl std::hash::Hasher for PosHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = u64::from(i) | (u64::from(i) << 57);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A per-sample rejection is counted; any other storage error fails the scrape.
fn count_rejection(e: argus_storage::Error, st: &mut AppendStats) -> Result<(), Error> {
    if is_sample_rejection(&e) {
        st.rejected += 1;
        Ok(())
    } else {
        Err(Error::Storage(e))
    }
}

/// Cache miss: decode, add target labels, relabel, check limits. `(labels, dropped)`.
fn build_labels(
    p: &impl Scraped,
    opts: &AppendOptions,
    scratch: &mut Vec<Label>,
) -> Result<(Labels, bool), Error> {
    p.labels(scratch)?;
    let mut lset = Labels::from_sorted(std::mem::take(scratch));
    mutate_sample_labels(&mut lset, &opts.target_labels, opts.honor_labels);
    if !relabel::process(&mut lset, &opts.metric_relabel) || lset.is_empty() {
        return Ok((Labels::empty(), true));
    }
    if lset.metric_name().is_none() {
        return Err(Error::LabelLimit(
            "missing metric name (__name__ label)".into(),
        ));
    }
    check_label_limits(&lset, opts)?;
    Ok((lset, false))
}

/// Appends a staleness marker at `ts` to `e`'s series: by ref, else by its kept labels. A
/// series that keeps no labels and whose ref the storage no longer knows gets none (see the
/// module doc: the storage dropped it, so its last sample is long past the lookback).
fn stale_append(
    app: &mut dyn Appender,
    slot: Slot<'_>,
    ts: Timestamp,
    st: &mut AppendStats,
) -> Result<(), Error> {
    let Slot {
        entry: e,
        pos,
        kept,
    } = slot;
    let labels = e.kept().then(|| kept.get(&pos)).flatten();
    let labels = match (labels, &e.sref) {
        (Some(l), _) => l,
        (None, Some(h)) => {
            return match app.append_handle(h, ts, stale_nan()) {
                Ok(Some(r)) => {
                    if r != h.series_ref() {
                        e.sref = Some(SeriesHandle::from_ref(r));
                    }
                    st.stale += 1;
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(err) if is_sample_rejection(&err) => Ok(()),
                Err(err) => Err(Error::Storage(err)),
            };
        }
        (None, None) => return Ok(()),
    };
    let hint = e.sref.as_ref().map(SeriesHandle::series_ref);
    match app.append(hint, labels, ts, stale_nan()) {
        Ok(r) => {
            if hint != Some(r) {
                e.sref = Some(SeriesHandle::from_ref(r));
            }
            st.stale += 1;
            Ok(())
        }
        Err(err) if is_sample_rejection(&err) => Ok(()),
        Err(err) => Err(Error::Storage(err)),
    }
}

/// Per-sample storage rejections that Prometheus counts and skips without failing the scrape.
fn is_sample_rejection(e: &argus_storage::Error) -> bool {
    matches!(
        e,
        argus_storage::Error::OutOfOrder
            | argus_storage::Error::OutOfBounds
            | argus_storage::Error::TooOld
            | argus_storage::Error::DuplicateSample
    )
}

/// Adds target labels to a scraped label set as Prometheus's `mutateSampleLabels`: with
/// `honor_labels` exposed values win; otherwise the target's win and clashing exposed labels are
/// kept as `exported_<name>` (prefix repeated until free).
pub fn mutate_sample_labels(lset: &mut Labels, target: &[Label], honor: bool) {
    if honor {
        for l in target {
            if lset.get(&l.name).is_none() {
                lset.set(&l.name, &l.value);
            }
        }
        return;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for l in target {
        if let Some(v) = lset.get(&l.name)
            && v != l.value
        {
            conflicts.push((l.name.clone(), v.to_string()));
        }
        lset.set(&l.name, &l.value);
    }
    for (name, value) in conflicts {
        let mut n = format!("exported_{name}");
        while lset.get(&n).is_some() {
            n = format!("exported_{n}");
        }
        lset.set(&n, &value);
    }
}

fn check_label_limits(lset: &Labels, o: &AppendOptions) -> Result<(), Error> {
    let metric = lset.metric_name().unwrap_or("");
    let m50: String = metric.chars().take(50).collect();
    if o.label_limit > 0 && lset.len() as u64 > o.label_limit {
        return Err(Error::LabelLimit(format!(
            "label_limit exceeded (metric: {m50}, number of labels: {}, limit: {})",
            lset.len(),
            o.label_limit
        )));
    }
    if o.label_name_length_limit == 0 && o.label_value_length_limit == 0 {
        return Ok(());
    }
    for l in lset {
        let n50: String = l.name.chars().take(50).collect();
        if o.label_name_length_limit > 0 && l.name.len() as u64 > o.label_name_length_limit {
            return Err(Error::LabelLimit(format!(
                "label_name_length_limit exceeded (metric: {m50}, label name: {n50}, length: {}, limit: {})",
                l.name.len(),
                o.label_name_length_limit
            )));
        }
        if o.label_value_length_limit > 0 && l.value.len() as u64 > o.label_value_length_limit {
            let v50: String = l.value.chars().take(50).collect();
            return Err(Error::LabelLimit(format!(
                "label_value_length_limit exceeded (metric: {m50}, label name: {n50}, value: {v50:?}, length: {}, limit: {})",
                l.value.len(),
                o.label_value_length_limit
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests;
