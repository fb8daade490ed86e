//! Remote Write 1.0 receiver logic: snappy block decompression and protobuf decoding under size
//! bounds ([`Decoder`]), then validation and appending ([`append_request`]).
//!
//! Semantics (see README "Compatibility"): series with missing metric name, empty or duplicate
//! label names, or unsorted labels are rejected; samples the storage refuses (out of order,
//! duplicate, too old, out of bounds, more than 10 minutes in the future) and invalid native
//! histograms ([`super::remote_write_histogram`]) are rejected one by one. Everything else in the request is kept and committed; the HTTP layer
//! answers 400 naming the rejections, 204 when there were none.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::prompb::{MetricMetadata, TimeSeries, WriteRequest};
use super::remote_write_scan::{Scan, for_each_label};
use super::series_cache::{Lookups, SeriesCache};
use argus_storage::{Appender, Error as StorageError, HeldSeries, Label, Labels};
use prost::Message;

/// Largest accepted request body (compressed), as Prometheus: 32 MiB.
pub const MAX_COMPRESSED_BYTES: usize = 32 << 20;
/// Largest accepted decompressed body: 32 MiB.
pub const MAX_DECOMPRESSED_BYTES: usize = 32 << 20;
/// Samples further than this in the future are rejected (Prometheus's `timeLimitAppender`).
pub const MAX_FUTURE_MS: i64 = 10 * 60 * 1000;
/// How many rejection messages are spelled out in the response.
const MAX_REPORTED: usize = 5;

/// Why a body could not be decoded. Every variant is the client's fault (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The snappy header announces more than the limit.
    #[error("decompressed body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Announced size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not valid snappy block format.
    #[error("cannot decompress snappy body: {0}")]
    Snappy(String),
    /// Not a valid `WriteRequest`.
    #[error("cannot decode protobuf WriteRequest: {0}")]
    Protobuf(String),
}

/// Reusable decoding state: the decompression buffer, the scan and the series handles found
/// for it survive between requests.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    snappy: snap::raw::Decoder,
    scan: Scan,
    /// The cache's series for each series of `scan`, held (None: not cached). Empty between
    /// requests: a held series is not dropped by the head.
    handles: Vec<Option<HeldSeries>>,
    /// The cache's lookup scratch.
    lookups: Lookups,
}

impl Decoder {
    /// A decoder with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes its buffers hold allocated (capacities, not lengths): what keeping it costs.
    pub fn retained_bytes(&self) -> usize {
        use std::mem::size_of;
        let scan = &self.scan;
        self.buf.capacity()
            + scan.series.capacity() * size_of::<super::remote_write_scan::ScannedSeries>()
            + scan.samples.capacity() * size_of::<super::prompb::Sample>()
            + scan.metadata.capacity() * size_of::<std::ops::Range<usize>>()
            + self.handles.capacity() * size_of::<Option<HeldSeries>>()
            + self.lookups.retained_bytes()
    }

    /// Decompresses `body` (snappy block format) and decodes it into `req` (cleared first).
    /// Allocates at most `limit` bytes for the decompressed body.
    pub fn decode_into(
        &mut self,
        body: &[u8],
        limit: usize,
        req: &mut WriteRequest,
    ) -> Result<(), DecodeError> {
        let bytes = self.decompress(body, limit)?;
        req.clear();
        req.merge(bytes)
            .map_err(|e| DecodeError::Protobuf(e.to_string()))
    }

    /// Decompresses `body` (snappy block format) into the decoder's buffer, allocating at most
    /// `limit` bytes. Used by both protocol versions.
    pub fn decompress(&mut self, body: &[u8], limit: usize) -> Result<&[u8], DecodeError> {
        let size =
            snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
        if size > limit {
            return Err(DecodeError::TooLarge { size, limit });
        }
        // Every byte is written by the decompression: only a grown tail is zeroed first.
        self.buf.resize(size, 0);
        let n = self
            .snappy
            .decompress(body, &mut self.buf)
            .map_err(|e| DecodeError::Snappy(e.to_string()))?;
        self.buf.truncate(n);
        Ok(&self.buf)
    }
}

/// Encodes a request the way senders do (protobuf, then snappy block format). For tests,
/// benchmarks and the fuzz target's round trip.
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    let raw = req.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_else(|e| unreachable!("BUG: snappy refused {} bytes: {e}", raw.len()))
}

/// Why one series or sample was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Missing metric name, empty/duplicate/unsorted label names.
    InvalidLabels,
    /// Older than the series' newest sample.
    OutOfOrder,
    /// Outside the range the head accepts, or too far in the future.
    OutOfBounds,
    /// Older than the out-of-order window.
    TooOld,
    /// Same timestamp, different value.
    Duplicate,
    /// Invalid native histogram samples (layout, schema, counts).
    NativeHistogram,
}

impl Reason {
    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidLabels => "invalid_labels",
            Reason::OutOfOrder => "out_of_order",
            Reason::OutOfBounds => "out_of_bounds",
            Reason::TooOld => "too_old",
            Reason::Duplicate => "duplicate",
            Reason::NativeHistogram => "native_histogram",
        }
    }

    /// All reasons, for zero-valued metric series.
    pub const ALL: [Reason; 6] = [
        Reason::InvalidLabels,
        Reason::OutOfOrder,
        Reason::OutOfBounds,
        Reason::TooOld,
        Reason::Duplicate,
        Reason::NativeHistogram,
    ];
}

/// What happened to one request.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Float samples appended (visible once committed).
    pub samples_written: u64,
    /// Native-histogram samples appended.
    pub histograms_written: u64,
    /// Samples received, including rejected ones.
    pub samples_received: u64,
    /// Rejected samples per reason (a rejected series counts all its samples).
    pub rejected: Vec<(Reason, u64)>,
    /// Total rejections.
    pub rejected_total: u64,
    /// The first few rejection messages.
    pub messages: Vec<String>,
}

impl Outcome {
    /// Counts `count` samples rejected for `reason`, keeping the first few messages.
    pub fn reject(&mut self, reason: Reason, count: u64, message: impl FnOnce() -> String) {
        if count == 0 {
            return;
        }
        self.rejected_total += count;
        match self.rejected.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += count,
            None => self.rejected.push((reason, count)),
        }
        if self.messages.len() < MAX_REPORTED {
            self.messages.push(message());
        }
    }

    /// The 400 body text, or None when nothing was rejected.
    pub fn error_text(&self) -> Option<String> {
        if self.rejected_total == 0 {
            return None;
        }
        let mut s = format!(
            "{} of {} samples rejected ({} written): {}",
            self.rejected_total,
            self.samples_received,
            self.samples_written + self.histograms_written,
            self.messages.join("; ")
        );
        if self.rejected_total > self.messages.len() as u64 {
            s.push_str("; …");
        }
        Some(s)
    }
}

/// Bounds on one remote-written series' labels (each cost the head and index pay per series).
/// 0 disables a bound. Flags `--storage.remote-write.max-labels-per-series`,
/// `--storage.remote-write.max-label-name-length`, `--storage.remote-write.max-label-value-length`
/// (Prometheus's scrape `label_limit`, `label_name_length_limit`, `label_value_length_limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelLimits {
    /// Most labels per series, `__name__` included.
    pub max_labels: usize,
    /// Longest label name, bytes.
    pub max_name_len: usize,
    /// Longest label value, bytes.
    pub max_value_len: usize,
}

impl Default for LabelLimits {
    fn default() -> Self {
        Self {
            max_labels: 512,
            max_name_len: 1024,
            max_value_len: 16 * 1024,
        }
    }
}

/// `value` shortened for an error message (at most 64 bytes, on a char boundary).
fn excerpt(value: &str) -> String {
    let mut end = value.len().min(64);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let head = value.get(..end).unwrap_or_default();
    if end < value.len() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// Validates a series' labels and moves them out of `ts` into a [`Labels`]. Empty values are
/// dropped (an empty value means "no label").
fn take_labels(ts: &mut TimeSeries, limits: &LabelLimits) -> Result<Labels, String> {
    let over = |n: usize, limit: usize| limit != 0 && n > limit;
    if over(ts.labels.len(), limits.max_labels) {
        let name = ts
            .labels
            .iter()
            .find(|l| l.name == argus_storage::METRIC_NAME)
            .map_or_else(|| "\"\"".to_string(), |l| excerpt(&l.value));
        return Err(format!(
            "series {name} has {} labels, more than the limit of {} \
             (--storage.remote-write.max-labels-per-series)",
            ts.labels.len(),
            limits.max_labels
        ));
    }
    let mut pairs: Vec<Label> = Vec::with_capacity(ts.labels.len());
    let mut has_name = false;
    for l in ts.labels.drain(..) {
        if l.name.is_empty() {
            return Err("empty label name".into());
        }
        if over(l.name.len(), limits.max_name_len) {
            return Err(format!(
                "label name {} is {} bytes long, more than the limit of {} \
                 (--storage.remote-write.max-label-name-length)",
                excerpt(&l.name),
                l.name.len(),
                limits.max_name_len
            ));
        }
        if over(l.value.len(), limits.max_value_len) {
            return Err(format!(
                "value of label {} is {} bytes long, more than the limit of {} \
                 (--storage.remote-write.max-label-value-length)",
                excerpt(&l.name),
                l.value.len(),
                limits.max_value_len
            ));
        }
        if let Some(prev) = pairs.last() {
            match prev.name.as_str().cmp(l.name.as_str()) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    return Err(format!("duplicate label name {:?}", l.name));
                }
                std::cmp::Ordering::Greater => {
                    return Err(format!(
                        "labels not sorted: {:?} after {:?}",
                        l.name, prev.name
                    ));
                }
            }
        }
        if l.name == argus_storage::METRIC_NAME {
            has_name = !l.value.is_empty();
        }
        if !l.value.is_empty() {
            pairs.push(Label::new(l.name, l.value));
        }
    }
    if !has_name {
        return Err("missing metric name (__name__ label)".into());
    }
    Ok(Labels::from_sorted(pairs))
}

fn reason_of(e: &StorageError) -> Option<Reason> {
    match e {
        StorageError::OutOfOrder => Some(Reason::OutOfOrder),
        StorageError::OutOfBounds => Some(Reason::OutOfBounds),
        StorageError::TooOld => Some(Reason::TooOld),
        StorageError::DuplicateSample => Some(Reason::Duplicate),
        StorageError::InvalidLabels(_) => Some(Reason::InvalidLabels),
        _ => None,
    }
}

/// Appends every valid sample of `req` (consumed: label strings are moved, not copied) to `app`
/// without committing. Returns the outcome, or the first storage failure that is not a
/// per-sample rejection (the caller must roll back and answer 500).
pub fn append_request(
    app: &mut dyn Appender,
    req: &mut WriteRequest,
    now_ms: i64,
) -> Result<Outcome, StorageError> {
    append_request_limited(app, req, now_ms, &LabelLimits::default())
}

/// [`append_request`] with explicit label bounds: a series over them is rejected as invalid
/// (HTTP 400 naming the bound), the rest of the request is kept.
pub fn append_request_limited(
    app: &mut dyn Appender,
    req: &mut WriteRequest,
    now_ms: i64,
    limits: &LabelLimits,
) -> Result<Outcome, StorageError> {
    append_request_with_starts(app, req, now_ms, limits, &StartTimestamps::default())
}

/// Start ("created") timestamps of a request's samples, for `--enable-feature=
/// created-timestamp-zero-ingestion`: with `enabled`, a sample whose start timestamp `st` is
/// set (non-zero, as is the sample's timestamp) is preceded by a zero sample at `st`
/// ([`Appender::append_ct_zero`]) when `st` is older than it and newer than the series' data,
/// as Prometheus's remote-write handler does; refusals of that zero sample are ignored.
#[derive(Clone, Debug, Default)]
pub struct StartTimestamps {
    /// Whether zero samples are appended at all.
    pub enabled: bool,
    /// Per series of the request (same index), one per float sample (0 = none). Histograms
    /// carry theirs in `Histogram::start_timestamp`.
    pub floats: Vec<Vec<i64>>,
}

/// [`append_request_limited`] appending the zero samples `starts` asks for.
pub fn append_request_with_starts(
    app: &mut dyn Appender,
    req: &mut WriteRequest,
    now_ms: i64,
    limits: &LabelLimits,
    starts: &StartTimestamps,
) -> Result<Outcome, StorageError> {
    let mut out = Outcome::default();
    let max_t = now_ms.saturating_add(MAX_FUTURE_MS);
    for (i, ts) in req.timeseries.iter_mut().enumerate() {
        let float_starts = starts
            .floats
            .get(i)
            .filter(|_| starts.enabled)
            .map_or(&[][..], Vec::as_slice);
        let n = ts.samples.len() as u64;
        let hist = ts.histograms.len() as u64;
        out.samples_received += n + hist;
        let labels = match take_labels(ts, limits) {
            Ok(l) => l,
            Err(msg) => {
                out.reject(Reason::InvalidLabels, n + hist, || {
                    format!("invalid series: {msg}")
                });
                continue;
            }
        };
        let mut series = None;
        for (j, s) in ts.samples.iter().enumerate() {
            if let Some(&st) = float_starts.get(j)
                && st != 0
                && s.timestamp != 0
                && s.timestamp <= max_t
                && let Ok(r) = app.append_ct_zero(series, &labels, s.timestamp, st)
            {
                series = Some(r);
            }
            if s.timestamp > max_t {
                out.reject(Reason::OutOfBounds, 1, || {
                    format!(
                        "out of bounds: sample too far in the future for series {labels} at {}",
                        s.timestamp
                    )
                });
                continue;
            }
            match app.append(series, &labels, s.timestamp, s.value) {
                Ok(r) => {
                    series = Some(r);
                    out.samples_written += 1;
                }
                Err(e) => match reason_of(&e) {
                    Some(reason) => out.reject(reason, 1, || {
                        format!("{e} for series {labels} at {}", s.timestamp)
                    }),
                    None => return Err(e),
                },
            }
        }
        for h in &ts.histograms {
            let t = h.timestamp;
            if t > max_t {
                out.reject(Reason::OutOfBounds, 1, || {
                    format!(
                        "out of bounds: sample too far in the future for series {labels} at {t}"
                    )
                });
                continue;
            }
            let fh = match super::remote_write_histogram::to_float_histogram(h) {
                Ok(fh) => fh,
                Err(msg) => {
                    out.reject(Reason::NativeHistogram, 1, || {
                        format!("{msg} for series {labels} at {t}")
                    });
                    continue;
                }
            };
            if starts.enabled
                && h.start_timestamp != 0
                && t != 0
                && let Ok(r) =
                    app.append_histogram_ct_zero(series, &labels, t, h.start_timestamp, &fh)
            {
                series = Some(r);
            }
            match app.append_histogram(series, &labels, t, &fh) {
                Ok(r) => {
                    series = Some(r);
                    out.histograms_written += 1;
                }
                Err(StorageError::InvalidArgument(msg)) => {
                    out.reject(Reason::NativeHistogram, 1, || {
                        format!("{msg} for series {labels} at {t}")
                    });
                }
                Err(e) => match reason_of(&e) {
                    Some(reason) => {
                        out.reject(reason, 1, || format!("{e} for series {labels} at {t}"))
                    }
                    None => return Err(e),
                },
            }
        }
    }
    Ok(out)
}

/// What [`append_body`] did with a request.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Samples written and rejected.
    pub outcome: Outcome,
    /// The request's metric metadata.
    pub metadata: Vec<MetricMetadata>,
}

/// Why [`append_body`] failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is not a valid request (HTTP 400); nothing was appended.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The storage failed (HTTP 500); the caller must roll back.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Decompresses a Remote Write 1.0 `body` and appends its samples to `app` without committing,
/// as [`Decoder::decode_into`] followed by [`append_request_limited`] with `cache`'s limits
/// would. Bodies in the shape senders write are read in place ([`super::remote_write_scan`])
/// and series `cache` knows are appended by ref, without building their labels; other bodies
/// take the prost path. `cache` must belong to the storage behind `app`.
pub fn append_body(
    dec: &mut Decoder,
    cache: &SeriesCache,
    body: &[u8],
    app: &mut dyn Appender,
    now_ms: i64,
) -> Result<Ingested, IngestError> {
    dec.decompress(body, MAX_DECOMPRESSED_BYTES)?;
    let Decoder {
        buf,
        scan,
        handles,
        lookups,
        ..
    } = dec;
    let buf: &[u8] = buf;
    if scan.scan(buf) && lookup_scanned(cache, buf, scan, lookups, handles) {
        let metadata: Option<Vec<MetricMetadata>> = scan
            .metadata
            .iter()
            .map(|r| MetricMetadata::decode(buf.get(r.clone())?).ok())
            .collect();
        if let Some(metadata) = metadata {
            let outcome = append_scanned(app, cache, buf, scan, handles, now_ms);
            handles.clear();
            return Ok(Ingested {
                outcome: outcome?,
                metadata,
            });
        }
    }
    handles.clear();
    let mut req = WriteRequest::default();
    req.merge(buf)
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    let outcome = append_request_limited(app, &mut req, now_ms, cache.limits())?;
    Ok(Ingested {
        outcome,
        metadata: req.metadata,
    })
}

/// Looks up each scanned series in `cache` into `handles`, and checks the label fields of
/// those it does not know (known bytes passed that check when they were cached). False when
/// one is not in the scan's shape: the body then goes to prost, with nothing appended yet.
fn lookup_scanned(
    cache: &SeriesCache,
    buf: &[u8],
    scan: &Scan,
    lookups: &mut Lookups,
    handles: &mut Vec<Option<HeldSeries>>,
) -> bool {
    let key = |series: &super::remote_write_scan::ScannedSeries| {
        buf.get(series.labels.clone()).unwrap_or_default()
    };
    cache.get_all(scan.series.iter().map(key), lookups, handles);
    for (series, h) in scan.series.iter().zip(handles.iter()) {
        if h.is_none() && !for_each_label(key(series), |_, _| {}) {
            handles.clear();
            return false;
        }
    }
    true
}

/// The validated labels that label fields `key` (as scanned and checked) decode to.
fn labels_of_key(key: &[u8], limits: &LabelLimits) -> Result<Labels, String> {
    let mut ts = TimeSeries {
        labels: Vec::new(),
        samples: Vec::new(),
        exemplars: Vec::new(),
        histograms: Vec::new(),
    };
    for_each_label(key, |name, value| {
        ts.labels.push(super::prompb::Label {
            name: name.to_string(),
            value: value.to_string(),
        });
    });
    take_labels(&mut ts, limits)
}

/// Labels of a cached series for a message (its key passed validation when it was cached).
fn show_key(key: &[u8], limits: &LabelLimits) -> String {
    labels_of_key(key, limits).map_or_else(|e| format!("<{e}>"), |l| l.to_string())
}

/// [`append_request_limited`] over a scanned body whose series `lookup_scanned` found: the
/// same verdicts and messages.
fn append_scanned(
    app: &mut dyn Appender,
    cache: &SeriesCache,
    buf: &[u8],
    scan: &Scan,
    handles: &mut [Option<HeldSeries>],
    now_ms: i64,
) -> Result<Outcome, StorageError> {
    let limits = cache.limits();
    let mut out = Outcome::default();
    let max_t = now_ms.saturating_add(MAX_FUTURE_MS);
    app.reserve(scan.series.len(), scan.samples.len());
    for (series, cached) in scan.series.iter().zip(handles) {
        // The batch takes the series with its last sample, a clone with earlier ones.
        let mut held = cached.take();
        let key = buf.get(series.labels.clone()).unwrap_or_default();
        let samples = scan.samples.get(series.samples.clone()).unwrap_or_default();
        let n = samples.len() as u64;
        out.samples_received += n;
        // Either the cache's series, or labels that passed validation.
        let mut labels: Option<Labels> = None;
        if held.is_none() {
            match labels_of_key(key, limits) {
                Ok(l) => labels = Some(l),
                Err(msg) => {
                    out.reject(Reason::InvalidLabels, n, || {
                        format!("invalid series: {msg}")
                    });
                    continue;
                }
            }
        }
        let last = samples.len().saturating_sub(1);
        for (i, s) in samples.iter().enumerate() {
            let show = |labels: &Option<Labels>| {
                labels
                    .as_ref()
                    .map_or_else(|| show_key(key, limits), ToString::to_string)
            };
            if s.timestamp > max_t {
                out.reject(Reason::OutOfBounds, 1, || {
                    format!(
                        "out of bounds: sample too far in the future for series {} at {}",
                        show(&labels),
                        s.timestamp
                    )
                });
                continue;
            }
            let res = match held.take() {
                Some(h) => {
                    if i < last {
                        held = Some(h.clone());
                    }
                    app.append_held(h, s.timestamp, s.value)
                }
                None => Ok(None),
            };
            let res = match res {
                Ok(Some(r)) => Ok(r),
                Ok(None) => {
                    // Not cached, or the storage dropped the series since.
                    // (A cached key passed validation under the same limits: no error here.)
                    let l = match labels.take().map_or_else(|| labels_of_key(key, limits), Ok) {
                        Ok(l) => l,
                        Err(msg) => {
                            out.reject(Reason::InvalidLabels, 1, || {
                                format!("invalid series: {msg}")
                            });
                            continue;
                        }
                    };
                    let res = app.append(None, &l, s.timestamp, s.value);
                    if let Ok(r) = res {
                        let h = app.handle(r);
                        held = if i < last { h.hold() } else { None };
                        cache.insert(key, h);
                    }
                    labels = Some(l);
                    res
                }
                Err(e) => Err(e),
            };
            match res {
                Ok(_) => out.samples_written += 1,
                Err(e) => match reason_of(&e) {
                    Some(reason) => out.reject(reason, 1, || {
                        format!("{e} for series {} at {}", show(&labels), s.timestamp)
                    }),
                    None => return Err(e),
                },
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::ingest::prompb::{Histogram, Label as PLabel, Sample};
    use argus_storage::testing::MemStorage;
    use argus_storage::{Appendable, STALE_NAN_BITS};
    use proptest::prelude::*;

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries::from_pairs(labels, samples)
    }

    #[test]
    fn label_limits_reject_the_series_and_keep_the_rest() {
        let limits = LabelLimits {
            max_labels: 3,
            max_name_len: 8,
            max_value_len: 10,
        };
        let check = |labels: &[(&str, &str)], want: Option<&str>| {
            let storage = MemStorage::new();
            let mut app = storage.appender();
            let mut req = WriteRequest {
                timeseries: vec![
                    series(labels, &[(1, 1.0)]),
                    series(&[("__name__", "ok")], &[(1, 1.0)]),
                ],
                metadata: vec![],
            };
            let out = append_request_limited(app.as_mut(), &mut req, 0, &limits).unwrap();
            app.commit().unwrap();
            assert_eq!(
                out.samples_written,
                if want.is_some() { 1 } else { 2 },
                "{labels:?}"
            );
            match (want, out.error_text()) {
                (None, None) => {}
                (Some(w), Some(got)) => assert!(got.contains(w), "want {w:?} in {got:?}"),
                (w, got) => panic!("{labels:?}: want {w:?}, got {got:?}"),
            }
        };
        check(&[("__name__", "m"), ("a", "1"), ("b", "2")], None);
        check(
            &[("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3")],
            Some("series \"m\" has 4 labels, more than the limit of 3"),
        );
        check(&[("__name__", "m"), ("abcdefgh", "1")], None);
        check(
            &[("__name__", "m"), ("abcdefghi", "1")],
            Some("label name \"abcdefghi\" is 9 bytes long, more than the limit of 8"),
        );
        check(
            &[("__name__", "m"), ("a", "ééééééé")],
            Some("value of label \"a\" is 14 bytes long, more than the limit of 10"),
        );
        let unlimited = LabelLimits {
            max_labels: 0,
            max_name_len: 0,
            max_value_len: 0,
        };
        let storage = MemStorage::new();
        let mut app = storage.appender();
        let long = "x".repeat(100_000);
        let mut req = WriteRequest {
            timeseries: vec![series(&[("__name__", "m"), ("a", &long)], &[(1, 1.0)])],
            metadata: vec![],
        };
        let out = append_request_limited(app.as_mut(), &mut req, 0, &unlimited).unwrap();
        assert_eq!(out.samples_written, 1, "0 disables the bounds");
    }

    #[test]
    fn keeps_valid_rest_and_reports_rejections() {
        let storage = MemStorage::new();
        storage.insert(Labels::from_pairs(&[("__name__", "d")]), 4000, 0.0);
        let mut app = storage.appender();
        let mut req = WriteRequest {
            timeseries: vec![
                series(
                    &[("__name__", "a"), ("job", "x")],
                    &[(1000, 1.0), (2000, 2.0)],
                ),
                series(&[("job", "x"), ("__name__", "b")], &[(1000, 1.0)]),
                series(&[("__name__", "c"), ("a", "1"), ("a", "2")], &[(1000, 1.0)]),
                series(&[("job", "x")], &[(1000, 1.0)]),
                series(
                    &[("__name__", "d"), ("empty", "")],
                    &[(3000, 3.0), (5000, 1.0)],
                ),
                series(&[("__name__", "e")], &[(10_000_000, 1.0)]),
            ],
            metadata: vec![],
        };
        req.timeseries[0].histograms.push(Histogram {
            timestamp: 5,
            schema: 99,
            ..Default::default()
        });
        let out = append_request(app.as_mut(), &mut req, 0).unwrap();
        app.commit().unwrap();
        assert_eq!(out.samples_received, 9);
        assert_eq!(out.samples_written, 3);
        assert_eq!(out.rejected_total, 6);
        let mut rejected = out.rejected.clone();
        rejected.sort();
        assert_eq!(
            rejected,
            vec![
                (Reason::InvalidLabels, 3),
                (Reason::OutOfOrder, 1),
                (Reason::OutOfBounds, 1),
                (Reason::NativeHistogram, 1),
            ]
        );
        let text = out.error_text().unwrap();
        assert!(text.contains("labels not sorted"), "{text}");
        assert!(text.contains("duplicate label name \"a\""), "{text}");
        assert!(text.contains("missing metric name"), "{text}");
        let dump = storage.dump();
        let names: Vec<_> = dump.iter().map(|(l, s)| (l.to_string(), s.len())).collect();
        assert_eq!(
            names,
            vec![
                (r#"{__name__="a", job="x"}"#.to_string(), 2),
                (r#"{__name__="d"}"#.to_string(), 2),
            ]
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let mut d = Decoder::new();
        let mut req = WriteRequest::default();
        assert!(matches!(
            d.decode_into(b"\x05garbage", 1 << 20, &mut req),
            Err(DecodeError::Snappy(_))
        ));
        // Valid snappy, truncated protobuf (a length-delimited field running past the end).
        let body = snap::raw::Encoder::new()
            .compress_vec(&[0x0a, 0x10, 0x0a])
            .unwrap();
        assert!(matches!(
            d.decode_into(&body, 1 << 20, &mut req),
            Err(DecodeError::Protobuf(_))
        ));
        // Size bound enforced before allocating.
        let big = encode(&WriteRequest {
            timeseries: vec![series(&[("__name__", &"x".repeat(2000))], &[(1, 1.0)])],
            metadata: vec![],
        });
        assert!(matches!(
            d.decode_into(&big, 100, &mut req),
            Err(DecodeError::TooLarge { limit: 100, .. })
        ));
        assert!(d.decode_into(&big, 1 << 20, &mut req).is_ok());
    }

    fn arb_request() -> impl Strategy<Value = WriteRequest> {
        let label = ("[a-z_]{1,8}", "\\PC{0,12}").prop_map(|(name, value)| PLabel { name, value });
        let sample = (any::<i64>(), any::<u64>()).prop_map(|(timestamp, bits)| Sample {
            value: f64::from_bits(bits),
            timestamp,
        });
        let ts = (
            proptest::collection::vec(label, 0..6),
            proptest::collection::vec(sample, 0..8),
            proptest::collection::vec(any::<i64>(), 0..2),
        )
            .prop_map(|(labels, samples, hist)| TimeSeries {
                labels,
                samples,
                exemplars: vec![],
                histograms: hist
                    .into_iter()
                    .map(|timestamp| Histogram {
                        timestamp,
                        ..Default::default()
                    })
                    .collect(),
            });
        let meta = ("\\PC{0,10}", 0i32..8, "\\PC{0,10}").prop_map(|(name, t, help)| {
            crate::ingest::prompb::MetricMetadata {
                r#type: t,
                metric_family_name: name,
                help,
                unit: String::new(),
            }
        });
        (
            proptest::collection::vec(ts, 0..5),
            proptest::collection::vec(meta, 0..3),
        )
            .prop_map(|(timeseries, metadata)| WriteRequest {
                timeseries,
                metadata,
            })
    }

    /// Compares float values bit for bit so NaN payloads (staleness markers) count.
    fn bits(req: &WriteRequest) -> Vec<Vec<(i64, u64)>> {
        req.timeseries
            .iter()
            .map(|t| {
                t.samples
                    .iter()
                    .map(|s| (s.timestamp, s.value.to_bits()))
                    .collect()
            })
            .collect()
    }

    proptest! {
        #[test]
        fn decode_round_trips(req in arb_request()) {
            let body = encode(&req);
            let mut got = WriteRequest::default();
            Decoder::new().decode_into(&body, MAX_DECOMPRESSED_BYTES, &mut got).unwrap();
            prop_assert_eq!(bits(&got), bits(&req));
            let labels = |r: &WriteRequest| r.timeseries.iter().map(|t| t.labels.clone()).collect::<Vec<_>>();
            prop_assert_eq!(labels(&got), labels(&req));
            prop_assert_eq!(&got.metadata, &req.metadata);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut got = WriteRequest::default();
            let _ = Decoder::new().decode_into(&bytes, 1 << 16, &mut got);
        }
    }

    use argus_storage::testing::dump_floats as dump_db;

    fn open_db(dir: &std::path::Path) -> argus_storage::Db {
        let opts = argus_storage::Options {
            background: false,
            sync: argus_storage::SyncMode::Buffer,
            ..Default::default()
        };
        argus_storage::Db::open(dir, opts).unwrap()
    }

    /// The fast path (in-place scan, series cache, append by ref) answers and stores exactly
    /// what the prost path does, request after request, rejections and their messages
    /// included; the cache holds only valid series.
    #[test]
    fn append_body_agrees_with_the_prost_path() {
        let limits = LabelLimits {
            max_labels: 4,
            ..LabelLimits::default()
        };
        let now = 1_700_000_000_000i64;
        let good = [("__name__", "a"), ("job", "x")];
        let requests = vec![
            vec![
                series(&good, &[(now - 2000, 1.0), (now - 1000, 2.0)]),
                series(
                    &[("__name__", "b"), ("empty", ""), ("z", "1")],
                    &[(now, 3.0)],
                ),
                series(&[("job", "x"), ("__name__", "c")], &[(now, 1.0)]),
                series(
                    &[
                        ("__name__", "d"),
                        ("a", "1"),
                        ("b", "2"),
                        ("c", "3"),
                        ("e", "4"),
                    ],
                    &[(now, 1.0)],
                ),
            ],
            vec![
                // Known series: out of order, duplicate, too far in the future, then fine.
                series(
                    &good,
                    &[
                        (now - 1500, 9.0),
                        (now - 1000, 5.0),
                        (now + 3_600_000, 1.0),
                        (now, 4.0),
                    ],
                ),
                series(
                    &[("__name__", "b"), ("empty", ""), ("z", "1")],
                    &[(now + 1000, 3.0)],
                ),
                series(&[("job", "x"), ("__name__", "c")], &[(now + 1000, 1.0)]),
                series(&[("__name__", "new")], &[]),
            ],
            vec![series(&good, &[(now + 1000, 6.0)])],
        ];
        let (fast_dir, slow_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (fast, slow) = (open_db(fast_dir.path()), open_db(slow_dir.path()));
        let cache = SeriesCache::new(limits);
        let mut dec = Decoder::new();
        for (i, timeseries) in requests.into_iter().enumerate() {
            let mut req = WriteRequest {
                timeseries,
                metadata: vec![MetricMetadata {
                    r#type: 1,
                    metric_family_name: "a".into(),
                    help: "h".into(),
                    unit: String::new(),
                }],
            };
            let body = encode(&req);
            let mut app = fast.appender();
            let got = append_body(&mut dec, &cache, &body, app.as_mut(), now).unwrap();
            app.commit().unwrap();
            let mut app = slow.appender();
            let want = append_request_limited(app.as_mut(), &mut req, now, &limits).unwrap();
            app.commit().unwrap();
            assert_eq!(got.outcome, want, "request {i}");
            assert_eq!(got.metadata, req.metadata, "request {i}");
            assert_eq!(dump_db(&fast), dump_db(&slow), "request {i}");
        }
        // a and b{z="1"} (the empty label dropped) are cached; the invalid series are not.
        assert_eq!(cache.len(), 2);
        assert_eq!(dump_db(&fast).len(), 2);
    }

    /// A series repeated in one request (several entries with its labels, among 300 others,
    /// first request and cached) is checked against the request's own earlier samples: a
    /// repeat of a sample is accepted once, another value at its time is a duplicate, an older
    /// time out of order; the fast path answers as the prost path and stores each accepted
    /// sample once.
    #[test]
    fn a_series_repeated_in_one_request_is_checked_against_its_earlier_samples() {
        let now = 1_700_000_000_000i64;
        let rep = [("__name__", "rep"), ("job", "x")];
        let other = |i: usize, dt: i64| {
            let v = i.to_string();
            series(
                &[("__name__", "o"), ("i", &v)],
                &[(now - 5000 + dt, i as f64)],
            )
        };
        let request = |dt: i64| {
            let mut ts: Vec<TimeSeries> = (0..150).map(|i| other(i, dt)).collect();
            ts.push(series(
                &rep,
                &[(now - 3000 + dt, 1.0), (now - 2000 + dt, 2.0)],
            ));
            ts.extend((150..300).map(|i| other(i, dt)));
            // The same sample, another value at its time, an older one, then a newer one.
            ts.push(series(&rep, &[(now - 2000 + dt, 2.0)]));
            ts.push(series(
                &rep,
                &[(now - 2000 + dt, 7.0), (now - 2500 + dt, 3.0)],
            ));
            ts.push(series(&rep, &[(now - 1000 + dt, 4.0)]));
            ts
        };
        let (fast_dir, slow_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (fast, slow) = (open_db(fast_dir.path()), open_db(slow_dir.path()));
        let cache = SeriesCache::new(LabelLimits::default());
        let mut dec = Decoder::new();
        for (i, dt) in [0, 10_000].into_iter().enumerate() {
            let mut req = WriteRequest {
                timeseries: request(dt),
                metadata: Vec::new(),
            };
            let body = encode(&req);
            let mut app = fast.appender();
            let got = append_body(&mut dec, &cache, &body, app.as_mut(), now).unwrap();
            app.commit().unwrap();
            let mut app = slow.appender();
            let want = append_request(app.as_mut(), &mut req, now).unwrap();
            app.commit().unwrap();
            assert_eq!(got.outcome, want, "request {i}");
            let o = &got.outcome;
            assert_eq!(
                (o.samples_received, o.samples_written),
                (306, 304),
                "request {i}: {o:?}"
            );
            let dups = o.rejected.iter().find(|r| r.0 == Reason::Duplicate);
            assert_eq!(dups, Some(&(Reason::Duplicate, 1)), "request {i}: {o:?}");
            let ooo = o.rejected.iter().find(|r| r.0 == Reason::OutOfOrder);
            assert_eq!(ooo, Some(&(Reason::OutOfOrder, 1)), "request {i}: {o:?}");
            let dump = dump_db(&fast);
            assert_eq!(dump, dump_db(&slow), "request {i}");
            let stored = dump.iter().find(|(l, _)| l.contains("rep")).unwrap();
            let mut want_rep = Vec::new();
            for d in [0, 10_000].into_iter().take(i + 1) {
                want_rep.extend([
                    (now - 3000 + d, 1f64.to_bits()),
                    (now - 2000 + d, 2f64.to_bits()),
                    (now - 1000 + d, 4f64.to_bits()),
                ]);
            }
            assert_eq!(stored.1, want_rep, "request {i}");
        }
    }

    /// Bodies the scan leaves to prost (histograms, labels split by samples) and malformed ones
    /// get the prost path's answers.
    #[test]
    fn append_body_falls_back_to_prost() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path());
        let cache = SeriesCache::new(LabelLimits::default());
        let mut dec = Decoder::new();
        let mut req = WriteRequest {
            timeseries: vec![series(&[("__name__", "h")], &[(1000, 1.0)])],
            metadata: vec![],
        };
        req.timeseries[0].histograms.push(Histogram {
            timestamp: 5,
            schema: 99,
            ..Default::default()
        });
        let mut app = db.appender();
        let out = append_body(&mut dec, &cache, &encode(&req), app.as_mut(), 0).unwrap();
        app.commit().unwrap();
        assert_eq!(
            (out.outcome.samples_written, out.outcome.rejected_total),
            (1, 1)
        );
        assert!(cache.is_empty(), "the prost path does not fill the cache");
        let mut app = db.appender();
        let bad = snap::raw::Encoder::new()
            .compress_vec(&[0x0a, 0x10, 0x0a])
            .unwrap();
        assert!(matches!(
            append_body(&mut dec, &cache, &bad, app.as_mut(), 0),
            Err(IngestError::Decode(DecodeError::Protobuf(_)))
        ));
        assert!(matches!(
            append_body(&mut dec, &cache, b"\x05garbage", app.as_mut(), 0),
            Err(IngestError::Decode(DecodeError::Snappy(_)))
        ));
        app.rollback();
    }

    /// The series cache across a head cut: a series the compaction dropped from the head is
    /// re-created from its labels when it is written again (its cached handle is stale), later
    /// requests use the new series' handle, and every sample lands once, in the right series.
    #[test]
    fn cached_series_survive_the_head_dropping_them() {
        let dir = tempfile::tempdir().unwrap();
        let opts = argus_storage::Options {
            background: false,
            sync: argus_storage::SyncMode::Buffer,
            block_range_ms: 10_000,
            ..Default::default()
        };
        let db = argus_storage::Db::open(dir.path(), opts).unwrap();
        let cache = SeriesCache::new(LabelLimits::default());
        let mut dec = Decoder::new();
        let (a, b) = ([("__name__", "a"), ("job", "x")], [("__name__", "b")]);
        let mut send = |timeseries: Vec<TimeSeries>| {
            let body = encode(&WriteRequest {
                timeseries,
                metadata: vec![],
            });
            let mut app = db.appender();
            let out = append_body(&mut dec, &cache, &body, app.as_mut(), 0).unwrap();
            app.commit().unwrap();
            assert_eq!(out.outcome.rejected_total, 0, "{:?}", out.outcome.messages);
            out.outcome.samples_written
        };
        assert_eq!(
            send(vec![series(&a, &[(1000, 1.0)]), series(&b, &[(1000, 1.0)])]),
            2
        );
        assert_eq!(send(vec![series(&b, &[(25_000, 2.0)])]), 1);
        assert_eq!(cache.len(), 2);
        // The head spans 1.5 block ranges: [0, 10 s) goes to a block, a leaves the head.
        db.compact().unwrap();
        assert_eq!(db.metrics().head_series, 1);
        assert_eq!(
            send(vec![
                series(&a, &[(30_000, 3.0), (31_000, 4.0)]),
                series(&b, &[(30_000, 3.0)]),
            ]),
            3
        );
        assert_eq!(send(vec![series(&a, &[(32_000, 5.0)])]), 1);
        assert_eq!(db.metrics().head_series, 2, "one new series for a");
        assert_eq!(cache.len(), 2);
        let bits = |v: &[(i64, f64)]| v.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>();
        assert_eq!(
            dump_db(&db),
            vec![
                (
                    r#"{__name__="a", job="x"}"#.to_string(),
                    bits(&[(1000, 1.0), (30_000, 3.0), (31_000, 4.0), (32_000, 5.0)])
                ),
                (
                    r#"{__name__="b"}"#.to_string(),
                    bits(&[(1000, 1.0), (25_000, 2.0), (30_000, 3.0)])
                ),
            ]
        );
    }

    /// The scan does not look inside label fields; those the cache does not know are checked
    /// before anything is appended, and a body failing the check gets prost's answer: a 400 for
    /// invalid UTF-8 (nothing stored), the samples stored for a label with an unknown field
    /// (which prost skips).
    #[test]
    fn unchecked_label_bytes_get_the_prost_answer() {
        fn ld(tag: u8, payload: &[u8]) -> Vec<u8> {
            let mut v = vec![tag, payload.len() as u8];
            v.extend_from_slice(payload);
            v
        }
        let label = |name: &[u8], value: &[u8], extra: &[u8]| {
            let mut l = ld(0x0a, name);
            l.extend(ld(0x12, value));
            l.extend_from_slice(extra);
            ld(0x0a, &l)
        };
        let one_sample = |t: u8| {
            let mut s = vec![0x09];
            s.extend_from_slice(&1.5f64.to_le_bytes());
            s.extend([0x10, t]);
            ld(0x12, &s)
        };
        let body = |labels: Vec<u8>, t: u8| {
            let mut ts = labels;
            ts.extend(one_sample(t));
            let mut raw = ld(0x0a, &ts);
            // A known series first, so that the bad one comes after an appendable one.
            let mut good = label(b"__name__", b"good", &[]);
            good.extend(one_sample(t));
            raw.splice(0..0, ld(0x0a, &good));
            snap::raw::Encoder::new().compress_vec(&raw).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path());
        let cache = SeriesCache::new(LabelLimits::default());
        let mut dec = Decoder::new();
        let mut app = db.appender();
        let ok = body(label(b"__name__", b"x", &[]), 10);
        append_body(&mut dec, &cache, &ok, app.as_mut(), 0).unwrap();
        app.commit().unwrap();
        assert_eq!(cache.len(), 2);
        let bad_utf8 = body(label(b"__name__", b"\xff", &[]), 20);
        assert!(matches!(
            append_body(&mut dec, &cache, &bad_utf8, app.as_mut(), 0),
            Err(IngestError::Decode(DecodeError::Protobuf(_)))
        ));
        app.commit().unwrap();
        let unknown_field = body(label(b"__name__", b"y", &[0x18, 0x01]), 30);
        let out = append_body(&mut dec, &cache, &unknown_field, app.as_mut(), 0).unwrap();
        app.commit().unwrap();
        assert_eq!(out.outcome.samples_written, 2);
        assert_eq!(cache.len(), 2, "the prost path does not fill the cache");
        let v = 1.5f64.to_bits();
        assert_eq!(
            dump_db(&db),
            vec![
                (r#"{__name__="good"}"#.to_string(), vec![(10, v), (30, v)]),
                (r#"{__name__="x"}"#.to_string(), vec![(10, v)]),
                (r#"{__name__="y"}"#.to_string(), vec![(30, v)]),
            ]
        );
    }

    #[test]
    fn stale_marker_survives() {
        let req = WriteRequest {
            timeseries: vec![series(
                &[("__name__", "a")],
                &[(1, f64::from_bits(STALE_NAN_BITS))],
            )],
            metadata: vec![],
        };
        let mut got = WriteRequest::default();
        Decoder::new()
            .decode_into(&encode(&req), 1 << 20, &mut got)
            .unwrap();
        assert_eq!(got.timeseries[0].samples[0].value.to_bits(), STALE_NAN_BITS);
    }
}
