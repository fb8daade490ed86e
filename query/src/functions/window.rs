//! The moving-window driver of range-vector functions: each series' samples are loaded once
//! (streamed from storage for a matrix selector) and every step evaluates the function over
//! the window `(t - range, t]` (after `offset`/`@`), as Prometheus's `matrixIterSlice` does.
//! Windows holding native histograms go to [`hist_window`] first.

use super::table::{self, Def, Impl};
use super::{arg, histogram, hrange, over_time, rate};
use crate::error::{Error, Result};
use crate::eval::{Ctx, Evaluator, RangeInput, Read, unparen};
use crate::value::{Series, Val};
use promql_parser::parser::Expr;

/// The windowed argument of a range-vector function and its scalar parameters evaluated at
/// every step, in the order of the table's argument types.
pub(super) fn range_args<'a>(
    ev: &Evaluator<'_>,
    def: &Def,
    kind: RangeFn,
    args: &[&'a Expr],
    c: Ctx,
) -> Result<(&'a Expr, Vec<Vec<f64>>)> {
    let mi = def
        .matrix_arg()
        .ok_or_else(|| Error::internal(format!("BUG: {} has no range argument", def.name)))?;
    let mut params = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != mi {
            params.push(ev.eval_scalar(a, c)?);
        }
    }
    if let (RangeFn::Quantile, Some(q)) = (kind, params.first()) {
        histogram::warn_quantiles(ev, q);
    }
    Ok((arg(args, mi, def.name)?, params))
}

/// Runs a range-vector function over the windows of every series at every step.
pub(super) fn range_fn(
    ev: &Evaluator<'_>,
    kind: RangeFn,
    m: &Expr,
    params: &[Vec<f64>],
    c: Ctx,
) -> Result<Val> {
    let mut out = Vec::new();
    range_fn_each(ev, kind, m, params, c, &mut |s| {
        ev.limits.add(s.len())?;
        out.push(std::mem::take(s));
        Ok(())
    })?;
    Ok(Val::Vector(out))
}

/// Streams the output series of a range-vector function call to `sink`, one at a time, when
/// `e` is such a call. Returns false (having done nothing) for any other expression.
pub(crate) fn stream_range_call(
    ev: &Evaluator<'_>,
    e: &Expr,
    c: Ctx,
    sink: &mut dyn FnMut(&mut Series) -> Result<()>,
) -> Result<bool> {
    let Expr::Call(call) = e else {
        return Ok(false);
    };
    let Some(def) = table::lookup(call.func.name) else {
        return Ok(false);
    };
    let Impl::Range(kind) = def.imp else {
        return Ok(false);
    };
    let args: Vec<&Expr> = call.args.args.iter().map(|a| a.as_ref()).collect();
    let (m, params) = range_args(ev, def, kind, &args, c)?;
    range_fn_each(ev, kind, m, &params, c, sink)?;
    Ok(true)
}

/// Runs a range-vector function over the windows of every series at every step, handing each
/// output series to `sink` as soon as it is complete (in a buffer reused for the next one: a
/// sink that keeps it takes it).
fn range_fn_each(
    ev: &Evaluator<'_>,
    kind: RangeFn,
    m: &Expr,
    params: &[Vec<f64>],
    c: Ctx,
    sink: &mut dyn FnMut(&mut Series) -> Result<()>,
) -> Result<()> {
    let keep_name = matches!(kind, RangeFn::Last | RangeFn::First);
    let mut buf = Vec::new();
    let mut o = Series::default();
    let mut resets = Vec::new();
    // Matrix selectors stream series by series from storage; subqueries are evaluated first.
    if let Expr::MatrixSelector(ms) = unparen(m) {
        let spec = RangeInput {
            series: Vec::new(),
            range: crate::eval::duration_ms(ms.range),
            offset: crate::eval::offset_ms(&ms.vs.offset),
            at: ev.at_ms(&ms.vs.at),
            selector: None,
        };
        let mint = spec.window_end(c.start) - spec.range + 1;
        let maxt = spec.window_end(c.end);
        return ev.select_each(
            &ms.vs,
            mint,
            maxt,
            false,
            Read::All,
            &mut |labels, points, hists| {
                o.reset(labels, !keep_name);
                windows_of(
                    ev,
                    kind,
                    points,
                    hists,
                    &spec,
                    params,
                    c,
                    &mut buf,
                    &mut resets,
                    &mut o,
                    sink,
                )
            },
        );
    }
    let ri = ev.range_input(m, c)?;
    let loaded: usize = ri.series.iter().map(|s| s.len()).sum();
    for s in &ri.series {
        o.reset(&s.labels, !keep_name || s.drop_name);
        windows_of(
            ev,
            kind,
            &s.points,
            &s.hists,
            &ri,
            params,
            c,
            &mut buf,
            &mut resets,
            &mut o,
            sink,
        )?;
    }
    ev.limits.release(loaded);
    Ok(())
}

/// Evaluates one series' windows at every step into `o` (labelled and emptied by the caller)
/// and hands it to `sink`.
#[allow(clippy::too_many_arguments)]
fn windows_of(
    ev: &Evaluator<'_>,
    kind: RangeFn,
    points: &[(i64, f64)],
    hists: &[(i64, argus_storage::FloatHistogram)],
    ri: &RangeInput,
    params: &[Vec<f64>],
    c: Ctx,
    buf: &mut Vec<f64>,
    resets: &mut Vec<u32>,
    o: &mut Series,
    sink: &mut dyn FnMut(&mut Series) -> Result<()>,
) -> Result<()> {
    ev.limits.check()?;
    let mut w = crate::eval::Windows::new(points);
    let mut hw = crate::eval::Windows::new(hists);
    let Series {
        labels,
        points: out,
        hists: hout,
        ..
    } = &mut *o;
    let metric = hrange::metric_name(labels);
    // For rate and increase over several steps: the number of counter resets up to each
    // sample, so that a window without one skips the scan for them (most windows).
    resets.clear();
    if matches!(kind, RangeFn::Rate | RangeFn::Increase) && c.n() > 1 {
        let mut n = 0u32;
        let mut prev = f64::NAN;
        for &(_, v) in points {
            if v < prev {
                n += 1;
            }
            resets.push(n);
            prev = v;
        }
    }
    for i in 0..c.n() {
        let t = c.t(i);
        let we = ri.window_end(t);
        let win = w.get(we, ri.range);
        let hwin = hw.get(we, ri.range);
        ev.limits.check_work(win.len() + hwin.len())?;
        if !hwin.is_empty() {
            let ws = we - ri.range;
            if let Some(v) = hist_window(ev, kind, win, hwin, ws, we, metric) {
                match v {
                    HOut::F(v) => out.push((t, v)),
                    HOut::H(h) => hout.push((t, h)),
                }
                continue;
            }
            if win.is_empty() || !kind.floats_only() {
                continue;
            }
            // Functions of floats only use the floats of a mixed window and say so in an
            // info, as Prometheus does ("ignored histograms in a range containing both").
            ev.annos
                .info(crate::annotations::ignored_in_mixed_range(metric));
        }
        if win.is_empty() {
            continue;
        }
        let p = |k: usize| {
            params
                .get(k)
                .and_then(|v| v.get(i))
                .copied()
                .unwrap_or(f64::NAN)
        };
        let ws = we - ri.range;
        // Resets among the window's samples: the count at its last one minus the count at its
        // first (no counts: not known, the function scans if it needs to).
        let lo = w.start();
        let no_resets = match (resets.get(lo), resets.get(lo + win.len() - 1)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        let v = kind.eval_floats(win, ws, we, t, p(0), p(1), buf, no_resets)?;
        if let Some(v) = v {
            out.push((t, v));
        }
    }
    if !o.is_empty() {
        sink(o)?;
    }
    Ok(())
}

/// The result of a range function at one step when its window holds histograms.
enum HOut {
    F(f64),
    H(argus_storage::FloatHistogram),
}

/// Evaluates `kind` over a window with at least one histogram sample. `None` means no output
/// from the histograms (functions that take floats only then fall back to the floats).
fn hist_window(
    ev: &Evaluator<'_>,
    kind: RangeFn,
    win: &[(i64, f64)],
    hwin: &[(i64, argus_storage::FloatHistogram)],
    ws: i64,
    we: i64,
    metric: &str,
) -> Option<HOut> {
    use crate::annotations as an;
    let mixed = !win.is_empty();
    match kind {
        RangeFn::Rate | RangeFn::Increase | RangeFn::Delta => {
            if mixed {
                ev.annos.warn(an::mixed_floats_histograms(metric));
                return None;
            }
            let counter = kind != RangeFn::Delta;
            hrange::extrapolated(ev, hwin, ws, we, counter, kind == RangeFn::Rate, metric)
                .map(HOut::H)
        }
        RangeFn::Irate | RangeFn::Idelta => {
            // The last two samples of either kind.
            let last_f = win.len().checked_sub(1).map(|i| win[i].0);
            let n = hwin.len();
            let hb = &hwin[n - 1];
            if last_f.is_some_and(|ft| ft > hb.0) || (n < 2 && mixed) {
                ev.annos.warn(an::mixed_floats_histograms(metric));
                return None;
            }
            if n < 2 {
                return None;
            }
            let ha = &hwin[n - 2];
            if last_f.is_some_and(|ft| ft > ha.0) {
                ev.annos.warn(an::mixed_floats_histograms(metric));
                return None;
            }
            hrange::instant(ev, ha, hb, kind == RangeFn::Irate, metric).map(HOut::H)
        }
        RangeFn::Sum | RangeFn::Avg => {
            if mixed {
                ev.annos.warn(an::mixed_floats_histograms(metric));
                return None;
            }
            let h = if kind == RangeFn::Sum {
                hrange::sum(ev, hwin, metric)
            } else {
                hrange::avg(ev, hwin, metric)
            };
            h.map(HOut::H)
        }
        RangeFn::Count => Some(HOut::F((win.len() + hwin.len()) as f64)),
        RangeFn::Present => Some(HOut::F(1.0)),
        RangeFn::Changes => Some(HOut::F(hrange::changes(win, hwin))),
        RangeFn::Resets => Some(HOut::F(hrange::resets(win, hwin))),
        RangeFn::Last => {
            let h = &hwin[hwin.len() - 1];
            match win.last() {
                Some(f) if f.0 > h.0 => Some(HOut::F(f.1)),
                _ => Some(HOut::H(h.1.clone())),
            }
        }
        RangeFn::First => {
            let h = &hwin[0];
            match win.first() {
                Some(f) if f.0 < h.0 => Some(HOut::F(f.1)),
                _ => Some(HOut::H(h.1.clone())),
            }
        }
        RangeFn::TsLast => {
            let ht = hwin[hwin.len() - 1].0;
            let t = win.last().map_or(ht, |f| f.0.max(ht));
            Some(HOut::F(t as f64 / 1e3))
        }
        RangeFn::TsFirst => {
            let ht = hwin[0].0;
            let t = win.first().map_or(ht, |f| f.0.min(ht));
            Some(HOut::F(t as f64 / 1e3))
        }
        _ => None,
    }
}

/// A range-vector function, resolved once per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    Changes,
    Resets,
    Smoothing,
    Avg,
    Sum,
    Min,
    Max,
    Count,
    Last,
    First,
    Present,
    Stdvar,
    Stddev,
    Quantile,
    Mad,
    TsLast,
    TsFirst,
    TsMax,
    TsMin,
}

impl RangeFn {
    /// Functions that ignore histogram samples and work on the floats of a window.
    /// The function over a window of float samples `win` in `(ws, we]` (ms) at step `t`,
    /// with the step's scalar parameters `p0`, `p1` (`NaN` when absent); `None` for no output.
    /// `no_resets`: the window is known to hold no counter reset (rate and increase skip
    /// their scan).
    #[allow(clippy::too_many_arguments)]
    fn eval_floats(
        self,
        win: &[(i64, f64)],
        ws: i64,
        we: i64,
        t: i64,
        p0: f64,
        p1: f64,
        buf: &mut Vec<f64>,
        no_resets: bool,
    ) -> Result<Option<f64>> {
        let (Some(&first), Some(&last)) = (win.first(), win.last()) else {
            return Ok(None);
        };
        Ok(match self {
            Self::Rate => rate::extrapolated_rate(win, ws, we, true, true, no_resets),
            Self::Increase => rate::extrapolated_rate(win, ws, we, true, false, no_resets),
            Self::Delta => rate::extrapolated_rate(win, ws, we, false, false, true),
            Self::Irate => rate::instant_value(win, true),
            Self::Idelta => rate::instant_value(win, false),
            Self::Deriv => rate::deriv(win),
            Self::PredictLinear => rate::predict_linear(win, t, p0),
            Self::Changes => Some(rate::changes(win)),
            Self::Resets => Some(rate::resets(win)),
            Self::Smoothing => rate::double_exponential_smoothing(win, p0, p1)?,
            Self::Avg => Some(over_time::avg(win)),
            Self::Sum => Some(over_time::sum(win)),
            Self::Min => Some(over_time::min(win)),
            Self::Max => Some(over_time::max(win)),
            Self::Count => Some(win.len() as f64),
            Self::Last => Some(last.1),
            Self::First => Some(first.1),
            Self::Present => Some(1.0),
            Self::Stdvar => Some(over_time::stdvar(win)),
            Self::Stddev => Some(over_time::stdvar(win).sqrt()),
            Self::Quantile => Some(over_time::quantile_of(p0, win, buf)),
            Self::Mad => Some(over_time::mad(win, buf)),
            Self::TsLast => Some(last.0 as f64 / 1e3),
            Self::TsFirst => Some(first.0 as f64 / 1e3),
            Self::TsMax => Some(over_time::ts_of_extreme(win, true)),
            Self::TsMin => Some(over_time::ts_of_extreme(win, false)),
        })
    }

    fn floats_only(self) -> bool {
        !matches!(
            self,
            Self::Rate
                | Self::Increase
                | Self::Delta
                | Self::Irate
                | Self::Idelta
                | Self::Sum
                | Self::Avg
                | Self::Count
                | Self::Present
                | Self::Changes
                | Self::Resets
                | Self::Last
                | Self::First
                | Self::TsLast
                | Self::TsFirst
        )
    }
}
