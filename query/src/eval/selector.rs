//! Vector and matrix selectors: one `select` per selector over the whole query range, each
//! series' samples loaded once, then walked forward step by step (lookback, staleness, offset, @).

use super::{Ctx, Evaluator, offset_ms, unparen};
use crate::error::{Error, Result};
use crate::value::Series;
use argus_storage::{
    FloatHistogram, Labels, METRIC_NAME, MatchType, Matcher, NewestSample, is_stale_nan,
};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};

/// Histogram samples of one series, `(t ms, histogram)` in time order.
pub(crate) type HPoints = [(i64, FloatHistogram)];

/// Receives one selected series: its labels and its float and histogram samples in the
/// selected range (a histogram stale marker arrives as a float stale NaN).
pub(crate) type SeriesSamplesFn<'a> =
    dyn FnMut(&Labels, &[(i64, f64)], &HPoints) -> Result<()> + 'a;

/// A range-vector argument: raw samples (stale markers removed) plus how to place the window
/// `(ref - range, ref]` for a step, where `ref = (at or t) - offset`.
pub(crate) struct RangeInput {
    pub series: Vec<Series>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
    /// The selector's label matchers (for `absent_over_time`); empty for subqueries.
    pub selector: Option<VectorSelector>,
}

impl RangeInput {
    /// Window end for evaluation time `t`.
    pub(crate) fn window_end(&self, t: i64) -> i64 {
        self.at.unwrap_or(t) - self.offset
    }

    /// The samples in the window for time `t`, per series (empty series dropped).
    pub(crate) fn window_at(&self, t: i64) -> Vec<Series> {
        let we = self.window_end(t);
        let ws = we - self.range;
        self.series
            .iter()
            .filter_map(|s| {
                let lo = s.points.partition_point(|p| p.0 <= ws);
                let hi = s.points.partition_point(|p| p.0 <= we);
                let hlo = s.hists.partition_point(|p| p.0 <= ws);
                let hhi = s.hists.partition_point(|p| p.0 <= we);
                (lo < hi || hlo < hhi).then(|| Series {
                    labels: s.labels.clone(),
                    drop_name: s.drop_name,
                    points: s.points[lo..hi].to_vec(),
                    hists: s.hists[hlo..hhi].to_vec(),
                })
            })
            .collect()
    }
}

/// Walks the windows of one series over the steps of `c`; windows move forward only.
pub(crate) struct Windows<'a, T = f64> {
    points: &'a [(i64, T)],
    lo: usize,
    hi: usize,
}

impl<'a, T> Windows<'a, T> {
    pub(crate) fn new(points: &'a [(i64, T)]) -> Self {
        Self {
            points,
            lo: 0,
            hi: 0,
        }
    }

    /// Index of the first sample of the last window returned by [`Self::get`].
    pub(crate) fn start(&self) -> usize {
        self.lo
    }

    /// Samples in `(we - range, we]`. `we` must not decrease between calls.
    pub(crate) fn get(&mut self, we: i64, range: i64) -> &'a [(i64, T)] {
        let ws = we - range;
        let p = self.points;
        while self.hi < p.len() && p[self.hi].0 <= we {
            self.hi += 1;
        }
        while self.lo < self.hi && p[self.lo].0 <= ws {
            self.lo += 1;
        }
        &p[self.lo..self.hi]
    }
}

impl Evaluator<'_> {
    /// Evaluates a vector selector at every step. With `want_ts`, values are the sample
    /// timestamps in seconds (for `timestamp()`).
    pub(crate) fn vector_selector(
        &self,
        vs: &VectorSelector,
        c: Ctx,
        want_ts: bool,
    ) -> Result<Vec<Series>> {
        let mut out = Vec::new();
        self.vector_selector_each(vs, c, want_ts, &mut |s| {
            self.limits.add(s.len())?;
            out.push(std::mem::take(s));
            Ok(())
        })?;
        Ok(out)
    }

    /// Like [`Self::vector_selector`], handing each series to `sink` as soon as it is built.
    /// The series is a buffer reused for the next one: a sink that keeps it takes it
    /// (`std::mem::take`); one that only reads it (an aggregation) costs no allocation.
    pub(crate) fn vector_selector_each(
        &self,
        vs: &VectorSelector,
        c: Ctx,
        want_ts: bool,
        sink: &mut dyn FnMut(&mut Series) -> Result<()>,
    ) -> Result<()> {
        let offset = offset_ms(&vs.offset);
        let at = self.at_ms(&vs.at);
        let ref_of = |t: i64| at.unwrap_or(t) - offset;
        let mint = ref_of(c.start) - self.lookback + 1;
        let maxt = ref_of(c.end);
        let n = c.n();
        // One step needs only each series' newest sample in the lookback window.
        let read = if n == 1 { Read::Newest } else { Read::All };
        let mut s = Series::default();
        self.select_each(vs, mint, maxt, true, read, &mut |labels, samples, hists| {
            self.limits.check()?;
            s.reset(labels, false);
            let (mut j, mut k) = (0usize, 0usize);
            for i in 0..n {
                self.limits.check()?;
                let t = c.t(i);
                let r = ref_of(t);
                while j + 1 < samples.len() && samples[j + 1].0 <= r {
                    j += 1;
                }
                while k + 1 < hists.len() && hists[k + 1].0 <= r {
                    k += 1;
                }
                let f = samples
                    .get(j)
                    .filter(|p| p.0 <= r && p.0 > r - self.lookback);
                let h = hists.get(k).filter(|p| p.0 <= r && p.0 > r - self.lookback);
                match (f, h) {
                    (Some(&(ft, fv)), h) if h.is_none_or(|h| h.0 < ft) => {
                        if is_stale_nan(fv) {
                            continue;
                        }
                        s.points
                            .push((t, if want_ts { ft as f64 / 1000.0 } else { fv }));
                    }
                    (_, Some((ht, hv))) => {
                        if want_ts {
                            s.points.push((t, *ht as f64 / 1000.0));
                        } else {
                            s.hists.push((t, hv.clone()));
                        }
                    }
                    _ => {}
                }
            }
            if !s.is_empty() {
                sink(&mut s)?;
            }
            Ok(())
        })
    }

    /// Loads a range-vector argument (matrix selector or subquery) for all steps of `c`.
    pub(crate) fn range_input(&self, e: &Expr, c: Ctx) -> Result<RangeInput> {
        match unparen(e) {
            Expr::MatrixSelector(ms) => {
                let vs = &ms.vs;
                let range = super::duration_ms(ms.range);
                let offset = offset_ms(&vs.offset);
                let at = self.at_ms(&vs.at);
                let ref_of = |t: i64| at.unwrap_or(t) - offset;
                let mint = ref_of(c.start) - range + 1;
                let maxt = ref_of(c.end);
                let loaded = self.select(vs, mint, maxt, false)?;
                let series = loaded
                    .into_iter()
                    .map(|(labels, points, hists)| Series {
                        labels,
                        drop_name: false,
                        points,
                        hists,
                    })
                    .collect();
                Ok(RangeInput {
                    series,
                    range,
                    offset,
                    at,
                    selector: Some(vs.clone()),
                })
            }
            Expr::Subquery(sq) => self.subquery(sq, c),
            _ => Err(Error::bad_data(
                "ranges only allowed for vector selectors and subqueries",
            )),
        }
    }

    /// Selects the series of `vs` and loads their samples in `[mint, maxt]`, accounting them
    /// against the sample limit. Without `keep_stale`, stale markers are dropped.
    #[allow(clippy::type_complexity)]
    pub(crate) fn select(
        &self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
        keep_stale: bool,
    ) -> Result<Vec<(Labels, Vec<(i64, f64)>, Vec<(i64, FloatHistogram)>)>> {
        let mut out = Vec::new();
        self.select_each(
            vs,
            mint,
            maxt,
            keep_stale,
            Read::All,
            &mut |l, samples, hists| {
                self.limits.add(samples.len() + hists.len())?;
                out.push((l.clone(), samples.to_vec(), hists.to_vec()));
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Selects the series of `vs` (sorted by labels) and hands each one's samples in
    /// `[mint, maxt]` (all, or the newest: `read`) to `f`, loading them into one reused buffer
    /// that is accounted against the sample limit while `f` runs. Series without samples are
    /// skipped unless `keep_stale`.
    pub(crate) fn select_each(
        &self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
        keep_stale: bool,
        read: Read,
        f: &mut SeriesSamplesFn<'_>,
    ) -> Result<()> {
        let Some(q) = &self.querier else {
            return Ok(());
        };
        if mint > maxt {
            return Ok(());
        }
        let groups = matcher_groups(vs)?;
        let stats = self
            .stats_selectors
            .contains(&(std::ptr::from_ref(vs) as usize));
        // The histogram-stats reduction compares each histogram with the one before it.
        let read = if stats { Read::All } else { read };
        if groups.len() > 1 {
            return self.select_alternatives(
                q.as_ref(),
                &groups,
                (mint, maxt),
                keep_stale,
                read,
                stats,
                f,
            );
        }
        let (mut buf, mut hbuf) = (Vec::new(), Vec::new());
        for matchers in &groups {
            let mut set = q.select(matchers);
            while set.next() {
                self.limits.check()?;
                read.samples(
                    &mut *set.samples(),
                    mint,
                    maxt,
                    keep_stale,
                    &mut buf,
                    &mut hbuf,
                )?;
                if stats {
                    decode_stats(&mut hbuf);
                }
                let loaded = buf.len() + hbuf.len();
                self.limits.add(loaded)?;
                if loaded > 0 || keep_stale {
                    f(set.labels(), &buf, &hbuf)?;
                }
                self.limits.release(loaded);
            }
            if let Some(e) = set.err() {
                return Err(Error::internal(e.to_string()));
            }
        }
        Ok(())
    }
    /// [`Self::select_each`] for a selector with `or`-alternatives (`{a="1" or b="2"}`): the
    /// sets of the alternatives merged by labels, a series matched twice read once, handed to
    /// `f` in label order.
    #[allow(clippy::too_many_arguments)]
    fn select_alternatives(
        &self,
        q: &dyn argus_storage::Querier,
        groups: &[Vec<Matcher>],
        (mint, maxt): (i64, i64),
        keep_stale: bool,
        read: Read,
        stats: bool,
        f: &mut SeriesSamplesFn<'_>,
    ) -> Result<()> {
        #[allow(clippy::type_complexity)]
        let mut all: std::collections::BTreeMap<
            Labels,
            (Vec<(i64, f64)>, Vec<(i64, FloatHistogram)>),
        > = Default::default();
        for matchers in groups {
            let mut set = q.select(matchers);
            while set.next() {
                self.limits.check()?;
                if all.contains_key(set.labels()) {
                    continue;
                }
                let (mut buf, mut hbuf) = (Vec::new(), Vec::new());
                read.samples(
                    &mut *set.samples(),
                    mint,
                    maxt,
                    keep_stale,
                    &mut buf,
                    &mut hbuf,
                )?;
                if stats {
                    decode_stats(&mut hbuf);
                }
                self.limits.add(buf.len() + hbuf.len())?;
                all.insert(set.labels().clone(), (buf, hbuf));
            }
            if let Some(e) = set.err() {
                return Err(Error::internal(e.to_string()));
            }
        }
        for (l, (buf, hbuf)) in all {
            if !buf.is_empty() || !hbuf.is_empty() || keep_stale {
                f(&l, &buf, &hbuf)?;
            }
            self.limits.release(buf.len() + hbuf.len());
        }
        Ok(())
    }
}

/// Which samples of a series in `[mint, maxt]` a selector reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// Every sample.
    All,
    /// Only the newest one: what a vector selector evaluated at a single step uses (the
    /// sample at or before the step within the lookback window, or none when it is a stale
    /// marker). [`argus_storage::SampleIterator::newest`] may answer it without decoding.
    Newest,
}

impl Read {
    /// Reads the samples of one series into `buf` (floats) and `hbuf` (histograms), both
    /// cleared first. A histogram stale marker is stored as a float stale NaN.
    fn samples(
        self,
        it: &mut dyn argus_storage::SampleIterator,
        mint: i64,
        maxt: i64,
        keep_stale: bool,
        buf: &mut Vec<(i64, f64)>,
        hbuf: &mut Vec<(i64, FloatHistogram)>,
    ) -> Result<()> {
        match self {
            // Without stale markers "newest" would be the newest non-stale sample, which
            // `newest` does not find.
            Read::Newest if keep_stale => read_newest(it, mint, maxt, buf, hbuf),
            Read::All | Read::Newest => read_samples(it, mint, maxt, keep_stale, buf, hbuf),
        }
    }
}

/// [`read_samples`] with stale markers kept, of only the newest sample in `[mint, maxt]`.
fn read_newest(
    it: &mut dyn argus_storage::SampleIterator,
    mint: i64,
    maxt: i64,
    buf: &mut Vec<(i64, f64)>,
    hbuf: &mut Vec<(i64, FloatHistogram)>,
) -> Result<()> {
    buf.clear();
    hbuf.clear();
    match it.newest(mint, maxt) {
        Some(NewestSample::Float(t, v)) => buf.push((t, v)),
        Some(NewestSample::Histogram(t, h)) if h.is_stale() => {
            buf.push((t, argus_storage::stale_nan()));
        }
        Some(NewestSample::Histogram(t, h)) => hbuf.push((t, h)),
        None => {}
    }
    if let Some(e) = it.err() {
        return Err(Error::internal(e.to_string()));
    }
    Ok(())
}

/// Reads the samples of one series in `[mint, maxt]` into `buf` (floats) and `hbuf`
/// (histograms), both cleared first. A histogram stale marker is stored as a float stale NaN.
fn read_samples(
    it: &mut dyn argus_storage::SampleIterator,
    mint: i64,
    maxt: i64,
    keep_stale: bool,
    buf: &mut Vec<(i64, f64)>,
    hbuf: &mut Vec<(i64, FloatHistogram)>,
) -> Result<()> {
    buf.clear();
    hbuf.clear();
    let mut ok = it.seek(mint);
    while ok {
        // Runs of floats in one call; it stops on a histogram or past `maxt`.
        if !it.append_floats(maxt, buf) {
            break;
        }
        let (t, _) = it.at();
        if t > maxt {
            break;
        }
        match it.at_histogram() {
            None => {
                return Err(Error::internal(
                    "BUG: append_floats stopped on a float sample within range",
                ));
            }
            Some(h) if h.is_stale() => {
                if keep_stale {
                    buf.push((t, argus_storage::stale_nan()));
                }
            }
            Some(h) => hbuf.push((t, h.clone())),
        }
        ok = it.next();
    }
    if let Some(e) = it.err() {
        return Err(Error::internal(e.to_string()));
    }
    if !keep_stale {
        buf.retain(|&(_, v)| !is_stale_nan(v));
    }
    Ok(())
}

/// Reduces the histograms of one series to their count and sum, as Prometheus's
/// `HistogramStatsIterator` does for selectors under `histogram_count/sum/avg`. Besides
/// dropping the buckets, that iterator detects counter resets on the fly: a sample whose hint
/// is `Unknown` (the first of a chunk) gets `CounterReset` or `NotCounterReset` from a
/// comparison with the previous histogram read (with its buckets), so an aggregation over the
/// result can warn about conflicting resets where the full histograms would not.
///
/// Prometheus forgets the previous sample when a seek skips ahead; Argus reads each series'
/// range in one pass, so only the first histogram of the range keeps an `Unknown` hint.
fn decode_stats(hbuf: &mut [(i64, FloatHistogram)]) {
    use argus_storage::CounterResetHint as H;
    let mut prev: Option<FloatHistogram> = None;
    for (_, h) in hbuf.iter_mut() {
        let hint = match (&prev, h.counter_reset_hint) {
            (Some(p), H::Unknown) => {
                if argus_storage::histogram::ops::detect_reset(h, p) {
                    H::CounterReset
                } else {
                    H::NotCounterReset
                }
            }
            (_, hint) => hint,
        };
        // The schema and custom bounds stay, so that mixing exponential and custom buckets
        // is still reported (Prometheus's iterator keeps the schema for that reason).
        let stats = FloatHistogram {
            counter_reset_hint: hint,
            schema: h.schema,
            count: h.count,
            sum: h.sum,
            custom_values: h.custom_values.clone(),
            ..FloatHistogram::default()
        };
        prev = Some(std::mem::replace(h, stats));
    }
}

/// The storage matchers of a selector: one group, or one per `or` alternative.
pub(crate) fn matcher_groups(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>> {
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        if let Some(name) = &vs.name {
            out.push(Matcher::equal(METRIC_NAME, name.clone()));
        }
        for m in ms {
            let kind = match m.op {
                MatchOp::Equal => MatchType::Equal,
                MatchOp::NotEqual => MatchType::NotEqual,
                MatchOp::Re(_) => MatchType::Regex,
                MatchOp::NotRe(_) => MatchType::NotRegex,
            };
            out.push(
                Matcher::new(kind, m.name.clone(), m.value.clone())
                    .map_err(|e| Error::bad_data(e.to_string()))?,
            );
        }
        Ok(out)
    };
    let mut groups = vec![convert(&vs.matchers.matchers)?];
    if !vs.matchers.or_matchers.is_empty() {
        groups.clear();
        for g in &vs.matchers.or_matchers {
            groups.push(convert(g)?);
        }
    }
    Ok(groups)
}
