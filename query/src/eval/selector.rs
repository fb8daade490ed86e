//! Vector and matrix selectors: one `select` per selector over the whole query range, each
//! series' samples loaded once, then walked forward step by step (lookback, staleness, offset, @).

use super::{Ctx, Evaluator, offset_ms, unparen};
use crate::error::{Error, Result};
use crate::value::Series;
use argus_storage::{Labels, METRIC_NAME, MatchType, Matcher, is_stale_nan};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};

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
                (lo < hi).then(|| Series {
                    labels: s.labels.clone(),
                    drop_name: s.drop_name,
                    points: s.points[lo..hi].to_vec(),
                })
            })
            .collect()
    }
}

/// Walks the windows of one series over the steps of `c`; windows move forward only.
pub(crate) struct Windows<'a> {
    points: &'a [(i64, f64)],
    lo: usize,
    hi: usize,
}

impl<'a> Windows<'a> {
    pub(crate) fn new(points: &'a [(i64, f64)]) -> Self {
        Self {
            points,
            lo: 0,
            hi: 0,
        }
    }

    /// Samples in `(we - range, we]`. `we` must not decrease between calls.
    pub(crate) fn get(&mut self, we: i64, range: i64) -> &'a [(i64, f64)] {
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
        let offset = offset_ms(&vs.offset);
        let at = self.at_ms(&vs.at);
        let ref_of = |t: i64| at.unwrap_or(t) - offset;
        let mint = ref_of(c.start) - self.lookback + 1;
        let maxt = ref_of(c.end);
        let loaded = self.select(vs, mint, maxt, true)?;
        let n = c.n();
        let mut out = Vec::with_capacity(loaded.len());
        for (labels, samples) in loaded {
            self.limits.check()?;
            let mut s = Series::new(labels, false);
            let mut j = 0usize;
            for i in 0..n {
                let t = c.t(i);
                let r = ref_of(t);
                while j + 1 < samples.len() && samples[j + 1].0 <= r {
                    j += 1;
                }
                let Some(&(st, sv)) = samples.get(j) else {
                    break;
                };
                if st > r || st <= r - self.lookback || is_stale_nan(sv) {
                    continue;
                }
                s.points
                    .push((t, if want_ts { st as f64 / 1000.0 } else { sv }));
            }
            self.limits.release(samples.len());
            if !s.points.is_empty() {
                self.limits.add(s.points.len())?;
                out.push(s);
            }
        }
        Ok(out)
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
                    .map(|(labels, points)| Series {
                        labels,
                        drop_name: false,
                        points,
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
    ) -> Result<Vec<(Labels, Vec<(i64, f64)>)>> {
        let Some(q) = &self.querier else {
            return Ok(Vec::new());
        };
        if mint > maxt {
            return Ok(Vec::new());
        }
        let groups = matcher_groups(vs)?;
        let mut out: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
        for matchers in &groups {
            let mut set = q.select(matchers);
            while set.next() {
                self.limits.check()?;
                let labels = set.labels();
                if groups.len() > 1 && out.iter().any(|(l, _)| l == labels) {
                    continue;
                }
                let mut it = set.samples();
                let mut buf = Vec::new();
                let mut ok = it.seek(mint);
                while ok {
                    let (t, v) = it.at();
                    if t > maxt {
                        break;
                    }
                    if keep_stale || !is_stale_nan(v) {
                        buf.push((t, v));
                    }
                    ok = it.next();
                }
                if let Some(e) = it.err() {
                    return Err(Error::internal(e.to_string()));
                }
                drop(it);
                self.limits.add(buf.len())?;
                if !buf.is_empty() || keep_stale {
                    out.push((labels.clone(), buf));
                }
            }
            if let Some(e) = set.err() {
                return Err(Error::internal(e.to_string()));
            }
        }
        if groups.len() > 1 {
            out.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(out)
    }
}

/// The storage matchers of a selector: one group, or one per `or` alternative.
fn matcher_groups(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>> {
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
