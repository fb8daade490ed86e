//! PromQL functions: dispatch through the one function table ([`table`]), argument
//! evaluation, and the per-step drivers for range-vector functions (moving windows).

mod absent;
mod date;
mod histogram;
pub(crate) mod hrange;
mod info;
mod label;
pub(crate) use label::valid_label_name;
mod math;
pub(crate) mod native;
mod over_time;
mod rate;
mod scalars;
mod sort;
pub(crate) mod stats;
pub(crate) mod table;
mod time;
pub(crate) mod xxhash;

use crate::error::{Error, Result};
use crate::eval::{Ctx, Evaluator, RangeInput, unparen};
use crate::value::{Series, Val};
use argus_storage::Labels;
use promql_parser::parser::{Call, Expr};
use table::{Def, Impl};

/// A function evaluated from its argument expressions: `(evaluator, name, args, steps)`.
pub(crate) type CallFn = fn(&Evaluator<'_>, &str, &[&Expr], Ctx) -> Result<Val>;

/// Argument `i` of a call to `name` (the parser has checked the count; this only guards).
pub(crate) fn arg<'a>(args: &[&'a Expr], i: usize, name: &str) -> Result<&'a Expr> {
    args.get(i)
        .copied()
        .ok_or_else(|| Error::bad_data(format!("missing argument {i} in call to {name}")))
}

/// The table entry of a call, or the error Argus gives for a function it does not evaluate
/// (the parse check refuses those first; see [`crate::parse::parse`]).
pub(crate) fn def_of(call: &Call) -> Result<&'static Def> {
    table::lookup(call.func.name).ok_or_else(|| unsupported(call.func.name))
}

/// The error for a function `promql-parser` knows and Argus does not evaluate.
pub(crate) fn unsupported(name: &str) -> Error {
    let why = table::UNSUPPORTED
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, why)| why);
    if why.is_empty() {
        Error::bad_data(format!("function {name:?} is not supported"))
    } else {
        Error::bad_data(format!("function {name:?} is not supported: {why}"))
    }
}

pub(crate) fn call(ev: &Evaluator<'_>, call: &Call, c: Ctx) -> Result<Val> {
    let def = def_of(call)?;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| a.as_ref()).collect();
    match def.imp {
        Impl::Range(kind) => {
            let (m, params) = range_args(ev, def, kind, &args, c)?;
            range_fn(ev, kind, m, &params, c)
        }
        Impl::Point(f) => math::point(ev, f, def.name, &args, c),
        Impl::Call(f) => f(ev, def.name, &args, c),
    }
}

/// The windowed argument of a range-vector function and its scalar parameters evaluated at
/// every step, in the order of the table's argument types.
fn range_args<'a>(
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
fn range_fn(
    ev: &Evaluator<'_>,
    kind: RangeFn,
    m: &Expr,
    params: &[Vec<f64>],
    c: Ctx,
) -> Result<Val> {
    let mut out = Vec::new();
    range_fn_each(ev, kind, m, params, c, &mut |s| {
        ev.limits.add(s.len())?;
        out.push(s);
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
    sink: &mut dyn FnMut(Series) -> Result<()>,
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
/// output series to `sink` as soon as it is complete.
fn range_fn_each(
    ev: &Evaluator<'_>,
    kind: RangeFn,
    m: &Expr,
    params: &[Vec<f64>],
    c: Ctx,
    sink: &mut dyn FnMut(Series) -> Result<()>,
) -> Result<()> {
    let keep_name = matches!(kind, RangeFn::Last | RangeFn::First);
    let mut buf = Vec::new();
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
        return ev.select_each(&ms.vs, mint, maxt, false, &mut |labels, points, hists| {
            let s = Series::new(labels.clone(), false);
            windows_of(
                ev, kind, keep_name, &s, points, hists, &spec, params, c, &mut buf, sink,
            )
        });
    }
    let ri = ev.range_input(m, c)?;
    let loaded: usize = ri.series.iter().map(|s| s.len()).sum();
    for s in &ri.series {
        windows_of(
            ev, kind, keep_name, s, &s.points, &s.hists, &ri, params, c, &mut buf, sink,
        )?;
    }
    ev.limits.release(loaded);
    Ok(())
}

/// Evaluates one series' windows at every step and hands the result to `sink`.
#[allow(clippy::too_many_arguments)]
fn windows_of(
    ev: &Evaluator<'_>,
    kind: RangeFn,
    keep_name: bool,
    s: &Series,
    points: &[(i64, f64)],
    hists: &[(i64, argus_storage::FloatHistogram)],
    ri: &RangeInput,
    params: &[Vec<f64>],
    c: Ctx,
    buf: &mut Vec<f64>,
    sink: &mut dyn FnMut(Series) -> Result<()>,
) -> Result<()> {
    {
        ev.limits.check()?;
        let mut w = crate::eval::Windows::new(points);
        let mut hw = crate::eval::Windows::new(hists);
        let mut o = Series::new(s.labels.clone(), !keep_name || s.drop_name);
        let metric = hrange::metric_name(&s.labels);
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
                        HOut::F(v) => o.points.push((t, v)),
                        HOut::H(h) => o.hists.push((t, h)),
                    }
                    continue;
                }
                if win.is_empty() || !kind.floats_only() {
                    continue;
                }
                if !win.is_empty() {
                    ev.annos
                        .info(crate::annotations::ignored_in_mixed_range(metric));
                }
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
            let v = match kind {
                RangeFn::Rate => rate::extrapolated_rate(win, ws, we, true, true),
                RangeFn::Increase => rate::extrapolated_rate(win, ws, we, true, false),
                RangeFn::Delta => rate::extrapolated_rate(win, ws, we, false, false),
                RangeFn::Irate => rate::instant_value(win, true),
                RangeFn::Idelta => rate::instant_value(win, false),
                RangeFn::Deriv => rate::deriv(win),
                RangeFn::PredictLinear => rate::predict_linear(win, t, p(0)),
                RangeFn::Changes => Some(rate::changes(win)),
                RangeFn::Resets => Some(rate::resets(win)),
                RangeFn::Smoothing => rate::double_exponential_smoothing(win, p(0), p(1))?,
                RangeFn::Avg => Some(over_time::avg(win)),
                RangeFn::Sum => Some(over_time::sum(win)),
                RangeFn::Min => Some(over_time::min(win)),
                RangeFn::Max => Some(over_time::max(win)),
                RangeFn::Count => Some(win.len() as f64),
                RangeFn::Last => Some(win[win.len() - 1].1),
                RangeFn::First => Some(win[0].1),
                RangeFn::Present => Some(1.0),
                RangeFn::Stdvar => Some(over_time::stdvar(win)),
                RangeFn::Stddev => Some(over_time::stdvar(win).sqrt()),
                RangeFn::Quantile => Some(over_time::quantile_of(p(0), win, buf)),
                RangeFn::Mad => Some(over_time::mad(win, buf)),
                RangeFn::TsLast => Some(win[win.len() - 1].0 as f64 / 1e3),
                RangeFn::TsFirst => Some(win[0].0 as f64 / 1e3),
                RangeFn::TsMax => Some(over_time::ts_of_extreme(win, true)),
                RangeFn::TsMin => Some(over_time::ts_of_extreme(win, false)),
            };
            if let Some(v) = v {
                o.points.push((t, v));
            }
        }
        if !o.is_empty() {
            sink(o)?;
        }
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

/// Merges series that ended up with the same labels (e.g. after relabelling); fails when two
/// of them have a point at the same step.
pub(crate) fn merge_same_labels(v: Vec<Series>) -> Result<Vec<Series>> {
    let mut idx: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    let mut out: Vec<Series> = Vec::with_capacity(v.len());
    for s in v {
        match idx.get(&s.labels) {
            None => {
                idx.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&i) => {
                let o = &mut out[i];
                let mut merged = Vec::with_capacity(o.points.len() + s.points.len());
                let (mut a, mut b) = (0, 0);
                while a < o.points.len() || b < s.points.len() {
                    let take_a = b >= s.points.len()
                        || (a < o.points.len() && o.points[a].0 < s.points[b].0);
                    if a < o.points.len() && b < s.points.len() && o.points[a].0 == s.points[b].0 {
                        return Err(Error::execution(
                            "vector cannot contain metrics with the same labelset",
                        ));
                    }
                    if take_a {
                        merged.push(o.points[a]);
                        a += 1;
                    } else {
                        merged.push(s.points[b]);
                        b += 1;
                    }
                }
                o.points = merged;
                if !s.hists.is_empty() {
                    o.hists.extend(s.hists);
                    o.hists.sort_by_key(|p| p.0);
                    let clash = o.hists.windows(2).any(|w| w[0].0 == w[1].0)
                        || o.hists
                            .iter()
                            .any(|(t, _)| o.points.binary_search_by_key(t, |p| p.0).is_ok());
                    if clash {
                        return Err(Error::execution(
                            "vector cannot contain metrics with the same labelset",
                        ));
                    }
                }
                o.drop_name |= s.drop_name;
            }
        }
    }
    Ok(out)
}

/// Parses an `le` label value as Go's `strconv.ParseFloat` does (for the test runner).
#[cfg(feature = "promqltest")]
pub(crate) fn parse_le(s: &str) -> Option<f64> {
    histogram::parse_go_float(s)
}

/// Warns once for a quantile parameter outside `[0, 1]` (aggregations use it too).
pub(crate) fn warn_quantiles(ev: &Evaluator<'_>, q: &[f64]) {
    histogram::warn_quantiles(ev, q);
}
