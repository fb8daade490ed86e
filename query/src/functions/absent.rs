//! `absent` and `absent_over_time`: one series (labelled from the selector's equality
//! matchers) at the steps where the argument has no sample.

use super::arg;
use crate::error::Result;
use crate::eval::{Ctx, Evaluator, RangeInput, Windows, unparen};
use crate::value::{Series, Val};
use argus_storage::{Labels, METRIC_NAME};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};

pub(crate) fn absent(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: Ctx) -> Result<Val> {
    let a = arg(args, 0, name)?;
    let v = ev.eval_vector(a, c)?;
    let mut present = vec![false; c.n()];
    for s in &v {
        for &(t, _) in &s.points {
            present[c.index(t)] = true;
        }
        for (t, _) in &s.hists {
            present[c.index(*t)] = true;
        }
    }
    let labels = match unparen(a) {
        Expr::VectorSelector(vs) => absent_labels(vs),
        _ => Labels::empty(),
    };
    Ok(missing_steps(labels, &present, c))
}

pub(crate) fn absent_over_time(
    ev: &Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    c: Ctx,
) -> Result<Val> {
    let ri: RangeInput = ev.range_input(arg(args, 0, name)?, c)?;
    let mut present = vec![false; c.n()];
    for s in &ri.series {
        let mut w = Windows::new(&s.points);
        let mut hw = Windows::new(&s.hists);
        for (i, p) in present.iter_mut().enumerate() {
            let we = ri.window_end(c.t(i));
            if !w.get(we, ri.range).is_empty() || !hw.get(we, ri.range).is_empty() {
                *p = true;
            }
        }
    }
    let labels = ri.selector.as_ref().map(absent_labels).unwrap_or_default();
    Ok(missing_steps(labels, &present, c))
}

/// A series of 1s at the steps not `present`, or no series when every step is.
fn missing_steps(labels: Labels, present: &[bool], c: Ctx) -> Val {
    let mut out = Series::new(labels, false);
    for (i, p) in present.iter().enumerate() {
        if !p {
            out.points.push((c.t(i), 1.0));
        }
    }
    Val::Vector(if out.points.is_empty() {
        Vec::new()
    } else {
        vec![out]
    })
}

/// Labels `absent()` reports: the selector's equality matchers, except names matched twice.
fn absent_labels(vs: &VectorSelector) -> Labels {
    let mut l = Labels::empty();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            l.set(&m.name, &m.value);
            has.push(&m.name);
        } else {
            l.remove(&m.name);
        }
    }
    l
}
