//! The traits the rest of Argus programs against: appending samples and querying series.
//!
//! Data flows one way: ingest → [`Appender`] → head + WAL → blocks → [`Querier`] → PromQL.
//! `argus-query` sees only [`Queryable`], [`Querier`], [`SeriesSet`] and [`SampleIterator`].

use crate::error::{Error, Result};
use crate::histogram::FloatHistogram;
use crate::matcher::Matcher;
use crate::model::{Labels, SeriesRef, Timestamp};

/// A cursor over one series' samples in ascending timestamp order.
///
/// Call order: `next()` or `seek()` first; `at()` only after one of them returned `true`;
/// `err()` once at the end to tell exhaustion from failure.
pub trait SampleIterator {
    /// Advances to the next sample. Returns `false` at the end or on error.
    fn next(&mut self) -> bool;
    /// Advances to the first sample with timestamp `>= t`. If the current sample already
    /// satisfies that, stays put. Returns `false` when there is none (or on error).
    fn seek(&mut self, t: Timestamp) -> bool;
    /// The current sample `(t ms, value)`. For a native-histogram sample the value is
    /// meaningless (0.0); the histogram is [`SampleIterator::at_histogram`].
    fn at(&self) -> (Timestamp, f64);
    /// The current sample's histogram when it is a native-histogram sample, `None` for a float
    /// sample. Series may mix both kinds over time. The default is for float-only sources.
    fn at_histogram(&self) -> Option<&FloatHistogram> {
        None
    }
    /// The error that ended iteration, if any (sticky).
    fn err(&self) -> Option<&Error>;
    /// Appends the current sample and the ones after it to `dst` while they are float samples
    /// with timestamps `<= maxt`: the batch form of `at()`/`next()` for readers that copy a
    /// range out (one call per series instead of three dynamic calls per sample).
    ///
    /// Call only while the cursor is on a sample (after `next()` or `seek()` returned `true`).
    /// Returns `true` when it stopped on a sample it did not append (a histogram sample, or
    /// the first one after `maxt`), which is then the current sample; `false` when the
    /// samples ran out or an error ended iteration (see `err()`). The default is the loop
    /// over `at()`, `at_histogram()` and `next()`; the chunk cursors override it with a
    /// decode loop that makes no dynamic calls.
    fn append_floats(&mut self, maxt: Timestamp, dst: &mut Vec<(Timestamp, f64)>) -> bool {
        loop {
            let (t, v) = self.at();
            if t > maxt || self.at_histogram().is_some() {
                return true;
            }
            dst.push((t, v));
            if !self.next() {
                return false;
            }
        }
    }
    /// The newest sample with a timestamp in `[mint, maxt]`; `None` when there is none or an
    /// error ended the read (see `err()`). For readers that need only the last value at or
    /// before a time, as an instant query's vector selector does.
    ///
    /// Call it on a fresh cursor, instead of `next()`/`seek()`; afterwards only `err()` may be
    /// called. The default reads forward from `seek(mint)` (`read_newest`); the querier's
    /// cursor answers from the head's open chunk without decoding it, since the chunk's
    /// encoder holds its last sample.
    fn newest(&mut self, mint: Timestamp, maxt: Timestamp) -> Option<NewestSample> {
        read_newest(self, mint, maxt)
    }
}

/// The sample [`SampleIterator::newest`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum NewestSample {
    /// A float sample `(t ms, value)`.
    Float(Timestamp, f64),
    /// A native-histogram sample.
    Histogram(Timestamp, FloatHistogram),
}

/// [`SampleIterator::newest`] by reading forward: `seek(mint)`, then every sample up to `maxt`
/// (a histogram sample is copied out before the cursor leaves it).
pub(crate) fn read_newest<I: SampleIterator + ?Sized>(
    it: &mut I,
    mint: Timestamp,
    maxt: Timestamp,
) -> Option<NewestSample> {
    let mut found = None;
    let mut ok = it.seek(mint);
    while ok {
        let (t, v) = it.at();
        if t > maxt {
            break;
        }
        found = Some(match it.at_histogram() {
            Some(h) => NewestSample::Histogram(t, h.clone()),
            None => NewestSample::Float(t, v),
        });
        ok = it.next();
    }
    found
}

/// A cursor over series sorted by label set, each restricted to the querier's `[mint, maxt]`.
///
/// Call order: `next()`; while it returns `true`, `labels()` and `samples()` describe the
/// current series; `err()` at the end. A failed select is a set whose `next()` is `false` and
/// whose `err()` is `Some`.
pub trait SeriesSet {
    /// Advances to the next series.
    fn next(&mut self) -> bool;
    /// Labels of the current series.
    fn labels(&self) -> &Labels;
    /// A fresh sample cursor over the current series, only samples within `[mint, maxt]`.
    /// Samples deleted by tombstones are not returned.
    fn samples(&self) -> Box<dyn SampleIterator + '_>;
    /// The error that ended iteration, if any.
    fn err(&self) -> Option<&Error>;
}

/// Reads series over a fixed closed time range `[mint, maxt]` (ms).
///
/// Not shared between threads; create one per query.
pub trait Querier {
    /// Series whose labels satisfy every matcher, sorted by labels, merged and deduplicated
    /// across head and blocks. Series with no samples in range are omitted.
    fn select(&self, matchers: &[Matcher]) -> Box<dyn SeriesSet + '_>;
    /// Sorted label names of series that match all `matchers` (all series when empty) and have
    /// data in range.
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>>;
    /// Sorted distinct values of label `name` among series matching `matchers` (all series when
    /// empty) that have data in range.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>>;
    /// The first `limit` of [`Querier::label_names`]' answer. Implementations stop early where
    /// they can; memory is bounded by `limit` per source. The default truncates the full list.
    fn label_names_limited(&self, matchers: &[Matcher], limit: usize) -> Result<Vec<String>> {
        let mut v = self.label_names(matchers)?;
        v.truncate(limit);
        Ok(v)
    }
    /// The first `limit` of [`Querier::label_values`]' answer. Implementations stop early where
    /// they can; memory is bounded by `limit` per source. The default truncates the full list.
    fn label_values_limited(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut v = self.label_values(name, matchers)?;
        v.truncate(limit);
        Ok(v)
    }
    /// Warnings collected so far by this querier's reads: a secondary source (a remote read
    /// endpoint) that failed while the answer came from the rest, as Prometheus's fanout
    /// storage reports them. Read once the reads are done. None by default.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Something that can open queriers: the `Db`, or the in-memory test storage.
///
/// May be called concurrently from many threads.
pub trait Queryable: Send + Sync {
    /// A querier over the closed range `[mint, maxt]` in ms.
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Result<Box<dyn Querier + '_>>;
}

/// A batch of appends, made visible and durable together by [`Appender::commit`].
///
/// One appender per task (it is `Send`, not `Sync`). Per-sample rejections (`OutOfOrder`,
/// `OutOfBounds`, `TooOld`, `DuplicateSample`) are returned by `append` immediately and leave the
/// rest of the batch intact; the caller decides whether to go on.
pub trait Appender: Send {
    /// Adds a sample. `series` is a ref returned earlier by this storage for the same `labels`
    /// (a cache hint; `None` or a stale ref falls back to `labels`). `labels` must be sorted,
    /// unique and non-empty. Returns the series' ref for caching.
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef>;
    /// Adds a native-histogram sample; otherwise as [`Appender::append`]. A float sample with
    /// the staleness NaN ends a histogram series as it ends a float one. The default refuses
    /// (for float-only storages).
    fn append_histogram(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        h: &FloatHistogram,
    ) -> Result<SeriesRef> {
        let _ = (series, labels, t, h);
        Err(Error::InvalidArgument(
            "native histograms are not supported by this storage".into(),
        ))
    }
    /// Adds the zero sample that the created ("start") timestamp `ct` of the sample at `t`
    /// stands for, as Prometheus's `AppendCTZeroSample` does (feature
    /// `created-timestamp-zero-ingestion`): value 0 at `ct`, only when `ct < t` and `ct` is
    /// newer than the series' last sample. Unlike [`Appender::append`] it is never out of
    /// order, even within the out-of-order window. Refusals are `Err` (`OutOfOrder` when the
    /// series already has data at or after `ct`, a common case callers ignore). The default
    /// (for storages without that check) appends through [`Appender::append`].
    fn append_ct_zero(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        ct: Timestamp,
    ) -> Result<SeriesRef> {
        check_ct(t, ct)?;
        self.append(series, labels, ct, 0.0)
    }
    /// [`Appender::append_ct_zero`] for a histogram series: the zero histogram at `ct` is
    /// [`FloatHistogram::ct_zero`] of the sample `h` at `t`.
    fn append_histogram_ct_zero(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        ct: Timestamp,
        h: &FloatHistogram,
    ) -> Result<SeriesRef> {
        check_ct(t, ct)?;
        self.append_histogram(series, labels, ct, &h.ct_zero())
    }
    /// Adds a float sample to the series `series` names, without its labels: the fast path of
    /// callers that cache refs by the bytes a series arrived as (the remote-write receiver).
    /// `series` must be a ref this storage returned from `append` earlier; returns `Ok(None)`
    /// when the storage does not know it (any more), and the caller then calls `append` with
    /// the labels. Rejections as `append`. The default knows no refs.
    fn append_ref(&mut self, series: SeriesRef, t: Timestamp, v: f64) -> Result<Option<SeriesRef>> {
        let _ = (series, t, v);
        Ok(None)
    }
    /// A [`SeriesHandle`] for `series`, a ref this storage returned from `append` earlier: what
    /// callers that cache series keep instead of the ref, to append by
    /// [`Appender::append_handle`]. Costs one lookup by ref; call it once per new series. The
    /// default wraps the ref.
    fn handle(&self, series: SeriesRef) -> SeriesHandle {
        SeriesHandle::from_ref(series)
    }
    /// [`Appender::append_ref`] through a handle from [`Appender::handle`]: the head reaches
    /// the series directly, without a lookup by ref, a map lock or a reference count held by
    /// the handle. Returns `Ok(None)` when the series is gone (the head dropped it since, e.g.
    /// after a compaction emptied it): the caller then appends by labels and takes a new
    /// handle. The default appends by the handle's ref.
    fn append_handle(
        &mut self,
        series: &SeriesHandle,
        t: Timestamp,
        v: f64,
    ) -> Result<Option<SeriesRef>> {
        self.append_ref(series.sref, t, v)
    }
    /// [`Appender::append_handle`] through a series [`SeriesHandle::hold`] took hold of: the
    /// batch keeps `series` (moved in, so no reference count changes hands per sample). Returns
    /// `Ok(None)` when the series is gone, as `append_handle` does. The default appends by the
    /// held series' ref.
    fn append_held(
        &mut self,
        series: HeldSeries,
        t: Timestamp,
        v: f64,
    ) -> Result<Option<SeriesRef>> {
        self.append_ref(series.sref, t, v)
    }
    /// A hint that about `series` distinct series and `samples` samples follow in this batch,
    /// so that the appender sizes its buffers once. The default ignores it.
    fn reserve(&mut self, series: usize, samples: usize) {
        let _ = (series, samples);
    }
    /// Writes the batch to the WAL (fsynced per the configured policy), then makes it visible to
    /// queries. After an `Ok`, the samples survive a crash. The appender may be reused.
    fn commit(&mut self) -> Result<()>;
    /// Discards the batch. The appender may be reused.
    fn rollback(&mut self);
}

/// What a caller caches for a series to append to it by [`Appender::append_handle`]: the
/// series' ref and, for the `Db`, a weak pointer to the head's series. A handle does not keep
/// the series alive: when the head drops the series the handle goes stale, which
/// `append_handle` reports. Valid only for the storage whose appender made it.
#[derive(Clone, Debug, Default)]
pub struct SeriesHandle {
    pub(crate) sref: SeriesRef,
    pub(crate) series: std::sync::Weak<crate::head::series::Series>,
}

impl SeriesHandle {
    /// A handle holding only `sref` (for storages without direct access to their series).
    pub fn from_ref(sref: SeriesRef) -> Self {
        Self {
            sref,
            series: std::sync::Weak::new(),
        }
    }

    /// The series' ref.
    pub fn series_ref(&self) -> SeriesRef {
        self.sref
    }
}

impl SeriesHandle {
    /// Reads the handle's series' reference count with a plain load (no atomic
    /// read-modify-write): a caller about to [`SeriesHandle::hold`] many handles touches them all
    /// first, so that the memory misses into the series overlap instead of each waiting behind
    /// the previous hold's locked instruction. Returns the count (0 for none), to keep the
    /// load from being optimised away.
    pub fn touch(&self) -> usize {
        self.series.strong_count()
    }

    /// Takes hold of the handle's series for one batch ([`Appender::append_held`]): one
    /// reference count taken here and given back when the batch drops it, where appending by
    /// the handle takes and gives back a weak and a strong count per sample. `None` when the
    /// head has dropped the series (the caller appends by labels). A held series is not
    /// dropped by the head while held: hold series only for the batch at hand.
    pub fn hold(&self) -> Option<HeldSeries> {
        let series = match self.series.upgrade() {
            Some(s) => Some(s),
            // A handle made without a series (`from_ref`) is appended by its ref.
            None if std::sync::Weak::ptr_eq(&self.series, &std::sync::Weak::new()) => None,
            None => return None,
        };
        Some(HeldSeries {
            sref: self.sref,
            series,
        })
    }
}

/// A series held for one batch: from [`SeriesHandle::hold`], for [`Appender::append_held`].
#[derive(Clone)]
pub struct HeldSeries {
    sref: SeriesRef,
    /// The head's series (`None` for a handle without one: appended by `sref`).
    pub(crate) series: Option<std::sync::Arc<crate::head::series::Series>>,
}

impl std::fmt::Debug for HeldSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldSeries")
            .field("sref", &self.sref)
            .field("held", &self.series.is_some())
            .finish()
    }
}

impl HeldSeries {
    /// The series' ref.
    pub fn series_ref(&self) -> SeriesRef {
        self.sref
    }
}

/// Refuses a created timestamp that is not older than its sample (`ErrCTNewerThanSample`).
pub(crate) fn check_ct(t: Timestamp, ct: Timestamp) -> Result<()> {
    if ct >= t {
        return Err(Error::InvalidArgument(format!(
            "created timestamp {ct} is not older than the sample at {t}"
        )));
    }
    Ok(())
}

/// Something that hands out appenders: the `Db`, or the in-memory test storage.
pub trait Appendable: Send + Sync {
    /// A new, empty appender.
    fn appender(&self) -> Box<dyn Appender>;

    /// An appender whose commits are written to the WAL without an fsync: they survive a crash
    /// of the process (`kill -9`) but not of the machine, as every commit of Prometheus does.
    /// For output that is recomputed anyway, such as rule results (one commit per rule). The
    /// default is [`Appendable::appender`].
    fn appender_unsynced(&self) -> Box<dyn Appender> {
        self.appender()
    }
}

/// A sample iterator over nothing.
pub struct EmptySampleIterator;

impl SampleIterator for EmptySampleIterator {
    fn next(&mut self) -> bool {
        false
    }
    fn seek(&mut self, _t: Timestamp) -> bool {
        false
    }
    fn at(&self) -> (Timestamp, f64) {
        unreachable!("BUG: at() called on an empty iterator")
    }
    fn err(&self) -> Option<&Error> {
        None
    }
}

/// A series set that yields nothing, optionally ending with an error.
pub struct ErrSeriesSet {
    err: Option<Error>,
    empty: Labels,
}

impl ErrSeriesSet {
    /// An empty set (no error).
    pub fn empty() -> Self {
        Self {
            err: None,
            empty: Labels::empty(),
        }
    }
    /// A failed set carrying `err`.
    pub fn new(err: Error) -> Self {
        Self {
            err: Some(err),
            empty: Labels::empty(),
        }
    }
}

impl SeriesSet for ErrSeriesSet {
    fn next(&mut self) -> bool {
        false
    }
    fn labels(&self) -> &Labels {
        &self.empty
    }
    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(EmptySampleIterator)
    }
    fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }
}

/// A sample iterator over a slice of `(t, v)` pairs sorted by time.
pub struct SliceSampleIterator<'a> {
    samples: &'a [(Timestamp, f64)],
    pos: usize,
    started: bool,
}

impl<'a> SliceSampleIterator<'a> {
    /// Iterates over `samples` (must be sorted by timestamp, no duplicates).
    pub fn new(samples: &'a [(Timestamp, f64)]) -> Self {
        Self {
            samples,
            pos: 0,
            started: false,
        }
    }
}

impl SampleIterator for SliceSampleIterator<'_> {
    fn next(&mut self) -> bool {
        if self.started {
            self.pos += 1;
        } else {
            self.started = true;
        }
        self.pos < self.samples.len()
    }
    fn seek(&mut self, t: Timestamp) -> bool {
        if !self.started {
            self.started = true;
        }
        if self.pos < self.samples.len() && self.samples[self.pos].0 >= t {
            return true;
        }
        let rest = &self.samples[self.pos.min(self.samples.len())..];
        self.pos += rest.partition_point(|s| s.0 < t);
        self.pos < self.samples.len()
    }
    fn at(&self) -> (Timestamp, f64) {
        self.samples[self.pos]
    }
    fn err(&self) -> Option<&Error> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Floats, then a histogram sample, then floats again.
    struct Mixed {
        pos: usize,
        h: FloatHistogram,
    }

    impl SampleIterator for Mixed {
        fn next(&mut self) -> bool {
            self.pos += 1;
            self.pos <= 5
        }
        fn seek(&mut self, t: Timestamp) -> bool {
            self.pos = self.pos.max(t as usize).max(1);
            self.pos <= 5
        }
        fn at(&self) -> (Timestamp, f64) {
            (self.pos as Timestamp, self.pos as f64 * 10.0)
        }
        fn at_histogram(&self) -> Option<&FloatHistogram> {
            (self.pos == 3).then_some(&self.h)
        }
        fn err(&self) -> Option<&Error> {
            None
        }
    }

    #[test]
    fn default_append_floats_stops_on_histograms_and_past_maxt() {
        let s = [(10, 1.0), (20, 2.0), (30, 3.0)];
        let mut it = SliceSampleIterator::new(&s);
        let mut got = vec![(0, 0.0)];
        assert!(it.seek(15));
        assert!(
            it.append_floats(20, &mut got),
            "stops on the sample after maxt"
        );
        assert_eq!(got, [(0, 0.0), (20, 2.0)]);
        assert_eq!(it.at(), (30, 3.0));
        assert!(!it.append_floats(i64::MAX, &mut got), "runs out");
        assert_eq!(got, [(0, 0.0), (20, 2.0), (30, 3.0)]);

        let mut it = Mixed {
            pos: 0,
            h: FloatHistogram::default(),
        };
        let mut got = Vec::new();
        assert!(it.next());
        assert!(
            it.append_floats(i64::MAX, &mut got),
            "stops on the histogram"
        );
        assert_eq!(got, [(1, 10.0), (2, 20.0)]);
        assert_eq!(it.at().0, 3);
        assert!(it.next());
        assert!(!it.append_floats(i64::MAX, &mut got));
        assert_eq!(got, [(1, 10.0), (2, 20.0), (4, 40.0), (5, 50.0)]);
    }

    #[test]
    fn default_newest_is_the_last_sample_in_range() {
        let s = [(10, 1.0), (20, 2.0), (30, 3.0)];
        let check = |mint, maxt, want: Option<NewestSample>| {
            let mut it = SliceSampleIterator::new(&s);
            assert_eq!(it.newest(mint, maxt), want, "[{mint}, {maxt}]");
        };
        check(i64::MIN, i64::MAX, Some(NewestSample::Float(30, 3.0)));
        check(15, 29, Some(NewestSample::Float(20, 2.0)));
        check(20, 20, Some(NewestSample::Float(20, 2.0)));
        check(21, 29, None);
        check(31, 40, None);
        check(0, 9, None);

        let h = FloatHistogram {
            count: 7.0,
            ..FloatHistogram::default()
        };
        let mixed = |mint, maxt| {
            Mixed {
                pos: 0,
                h: h.clone(),
            }
            .newest(mint, maxt)
        };
        assert_eq!(mixed(1, 3), Some(NewestSample::Histogram(3, h.clone())));
        assert_eq!(mixed(1, 4), Some(NewestSample::Float(4, 40.0)));
        assert_eq!(mixed(1, 2), Some(NewestSample::Float(2, 20.0)));
    }
}
