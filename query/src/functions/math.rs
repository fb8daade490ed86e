//! Point-wise instant-vector functions: the float functions of the table's `Impl::Point`
//! entries, `round` and the `clamp` family. All drop the metric name and ignore histogram
//! samples.

use super::arg;
use crate::error::Result;
use crate::eval::{Ctx, Evaluator};
use crate::value::Val;
use promql_parser::parser::Expr;

/// `sgn`: -1, 1, or the value itself for zeros and NaN.
pub(crate) fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

pub(crate) fn deg(v: f64) -> f64 {
    v * 180.0 / std::f64::consts::PI
}

pub(crate) fn rad(v: f64) -> f64 {
    v * std::f64::consts::PI / 180.0
}

/// Applies `f(sample, step index)` to every float sample of `e`; `None` drops the sample.
fn map_floats(
    ev: &Evaluator<'_>,
    e: &Expr,
    c: Ctx,
    f: impl Fn(f64, usize) -> Option<f64>,
) -> Result<Val> {
    let mut v = ev.eval_vector(e, c)?;
    for s in &mut v {
        s.drop_name = true;
        s.points = s
            .points
            .iter()
            .filter_map(|&(t, x)| f(x, c.index(t)).map(|y| (t, y)))
            .collect();
        // Float functions ignore histogram samples.
        s.hists.clear();
    }
    v.retain(|s| !s.points.is_empty());
    Ok(Val::Vector(v))
}

/// A table `Impl::Point` function of its one instant-vector argument.
pub(crate) fn point(
    ev: &Evaluator<'_>,
    f: fn(f64) -> f64,
    name: &str,
    args: &[&Expr],
    c: Ctx,
) -> Result<Val> {
    map_floats(ev, arg(args, 0, name)?, c, |x, _| Some(f(x)))
}

/// `round(v, to_nearest=1)`, rounding half up as Go's `math.Floor(v*inv+0.5)/inv` does.
pub(crate) fn round(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: Ctx) -> Result<Val> {
    let to = match args.get(1) {
        Some(e) => ev.eval_scalar(e, c)?,
        None => vec![1.0; c.n()],
    };
    map_floats(ev, arg(args, 0, name)?, c, |x, i| {
        let inv = 1.0 / to.get(i).copied().unwrap_or(f64::NAN);
        Some((x * inv + 0.5).floor() / inv)
    })
}

/// `clamp(v, min, max)` (no output where `max < min`), `clamp_min(v, min)`, `clamp_max(v, max)`.
pub(crate) fn clamp(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: Ctx) -> Result<Val> {
    let mut params: Vec<Vec<f64>> = Vec::new();
    for a in args.iter().skip(1) {
        params.push(ev.eval_scalar(a, c)?);
    }
    let p = |k: usize, i: usize| {
        params
            .get(k)
            .and_then(|p| p.get(i))
            .copied()
            .unwrap_or(f64::NAN)
    };
    map_floats(ev, arg(args, 0, name)?, c, |x, i| match name {
        "clamp" => {
            let (lo, hi) = (p(0, i), p(1, i));
            if hi < lo {
                None
            } else {
                Some(go_max(lo, go_min(hi, x)))
            }
        }
        "clamp_min" => Some(go_max(p(0, i), x)),
        _ => Some(go_min(p(0, i), x)),
    })
}

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}
