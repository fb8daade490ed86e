//! Functions of the evaluation time and the query's own range: `time`, `start`, `end`,
//! `step`, `range` (seconds), and `timestamp`.

use super::arg;
use crate::error::Result;
use crate::eval::{Ctx, Evaluator, unparen};
use crate::value::Val;
use promql_parser::parser::Expr;

pub(crate) fn time(_: &Evaluator<'_>, _: &str, _: &[&Expr], c: Ctx) -> Result<Val> {
    Ok(Val::Scalar(
        (0..c.n()).map(|i| c.t(i) as f64 / 1e3).collect(),
    ))
}

pub(crate) fn start(ev: &Evaluator<'_>, _: &str, _: &[&Expr], c: Ctx) -> Result<Val> {
    Ok(Val::Scalar(vec![ev.query_start as f64 / 1e3; c.n()]))
}

pub(crate) fn end(ev: &Evaluator<'_>, _: &str, _: &[&Expr], c: Ctx) -> Result<Val> {
    Ok(Val::Scalar(vec![ev.query_end as f64 / 1e3; c.n()]))
}

pub(crate) fn step(ev: &Evaluator<'_>, _: &str, _: &[&Expr], c: Ctx) -> Result<Val> {
    Ok(Val::Scalar(vec![ev.query_step as f64 / 1e3; c.n()]))
}

pub(crate) fn range(ev: &Evaluator<'_>, _: &str, _: &[&Expr], c: Ctx) -> Result<Val> {
    let span = (ev.query_end - ev.query_start) as f64 / 1e3;
    Ok(Val::Scalar(vec![span; c.n()]))
}

/// `timestamp(v)`: the time of each sample, in seconds. Of a plain selector, that is the
/// stored sample's own time (Prometheus reads it before the lookback moves it to the step);
/// of anything else, the step's.
pub(crate) fn timestamp(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: Ctx) -> Result<Val> {
    let mut v = match unparen(arg(args, 0, name)?) {
        Expr::VectorSelector(vs) => ev.vector_selector(vs, c, true)?,
        other => {
            let mut v = ev.eval_vector(other, c)?;
            for s in &mut v {
                s.points.iter_mut().for_each(|p| p.1 = p.0 as f64 / 1e3);
                if !s.hists.is_empty() {
                    let hs = std::mem::take(&mut s.hists);
                    s.points
                        .extend(hs.iter().map(|(t, _)| (*t, *t as f64 / 1e3)));
                    s.points.sort_by_key(|p| p.0);
                }
            }
            v
        }
    };
    v.iter_mut().for_each(|s| s.drop_name = true);
    Ok(Val::Vector(v))
}
