//! Point-wise instant-vector functions: arithmetic, rounding, clamping, trigonometry.

use crate::error::{Error, Result};
use crate::eval::{Ctx, Evaluator};
use crate::value::Val;
use promql_parser::parser::Expr;

fn unary(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        "acos" => f64::acos,
        "acosh" => f64::acosh,
        "asin" => f64::asin,
        "asinh" => f64::asinh,
        "atan" => f64::atan,
        "atanh" => f64::atanh,
        "cos" => f64::cos,
        "cosh" => f64::cosh,
        "sin" => f64::sin,
        "sinh" => f64::sinh,
        "tan" => f64::tan,
        "tanh" => f64::tanh,
        "deg" => |v: f64| v * 180.0 / std::f64::consts::PI,
        "rad" => |v: f64| v * std::f64::consts::PI / 180.0,
        _ => return None,
    })
}

pub(crate) fn math_fn(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: Ctx) -> Result<Val> {
    let Some(first) = args.first() else {
        return Err(Error::bad_data(format!(
            "function {name:?} is not supported"
        )));
    };
    let mut params: Vec<Vec<f64>> = Vec::new();
    for a in &args[1..] {
        params.push(ev.eval_scalar(a, c)?);
    }
    let f = unary(name);
    if f.is_none() && !matches!(name, "round" | "clamp" | "clamp_min" | "clamp_max") {
        return Err(Error::bad_data(format!(
            "function {name:?} is not supported"
        )));
    }
    let mut v = ev.eval_vector(first, c)?;
    for s in &mut v {
        s.drop_name = true;
        let mut pts = Vec::with_capacity(s.points.len());
        for &(t, x) in &s.points {
            let i = c.index(t);
            let p = |k: usize| params.get(k).map(|p| p[i]).unwrap_or(f64::NAN);
            let y = match (f, name) {
                (Some(f), _) => f(x),
                (None, "round") => {
                    let to = if params.is_empty() { 1.0 } else { p(0) };
                    let inv = 1.0 / to;
                    (x * inv + 0.5).floor() / inv
                }
                (None, "clamp") => {
                    let (lo, hi) = (p(0), p(1));
                    if hi < lo {
                        continue;
                    }
                    go_max(lo, go_min(hi, x))
                }
                (None, "clamp_min") => go_max(p(0), x),
                (None, "clamp_max") => go_min(p(0), x),
                _ => x,
            };
            pts.push((t, y));
        }
        s.points = pts;
        // Float functions ignore histogram samples.
        s.hists.clear();
    }
    v.retain(|s| !s.points.is_empty());
    Ok(Val::Vector(v))
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
