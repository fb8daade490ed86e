//! Functions of scalars: `pi`, `min_of`, `max_of`, and the conversions `vector` and `scalar`.

use super::arg;
use crate::error::Result;
use crate::eval::{Ctx, Evaluator};
use crate::value::{Series, Val};
use argus_storage::Labels;
use promql_parser::parser::Expr;

pub(crate) fn pi(_: &Evaluator<'_>, _: &str, _: &[&Expr], c: Ctx) -> Result<Val> {
    Ok(Val::Scalar(vec![std::f64::consts::PI; c.n()]))
}

/// `min_of(a, b)` / `max_of(a, b)`: NaN when either is NaN.
pub(crate) fn min_max_of(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: Ctx) -> Result<Val> {
    let a = ev.eval_scalar(arg(args, 0, name)?, c)?;
    let b = ev.eval_scalar(arg(args, 1, name)?, c)?;
    let max = name == "max_of";
    Ok(Val::Scalar(
        a.iter()
            .zip(&b)
            .map(|(x, y)| {
                if x.is_nan() || y.is_nan() {
                    f64::NAN
                } else if max {
                    x.max(*y)
                } else {
                    x.min(*y)
                }
            })
            .collect(),
    ))
}

/// `vector(s)`: one series without labels.
pub(crate) fn vector(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: Ctx) -> Result<Val> {
    let s = ev.eval_scalar(arg(args, 0, name)?, c)?;
    let mut out = Series::new(Labels::empty(), false);
    out.points = s.iter().enumerate().map(|(i, v)| (c.t(i), *v)).collect();
    Ok(Val::Vector(vec![out]))
}

/// `scalar(v)`: the value of the only float sample at each step, NaN for none or several.
pub(crate) fn scalar(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: Ctx) -> Result<Val> {
    let v = ev.eval_vector(arg(args, 0, name)?, c)?;
    let mut count = vec![0u32; c.n()];
    let mut val = vec![f64::NAN; c.n()];
    for s in &v {
        for &(t, x) in &s.points {
            let i = c.index(t);
            count[i] += 1;
            val[i] = x;
        }
    }
    for (i, n) in count.iter().enumerate() {
        if *n != 1 {
            val[i] = f64::NAN;
        }
    }
    Ok(Val::Scalar(val))
}
