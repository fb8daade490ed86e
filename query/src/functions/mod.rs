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
mod window;
pub(crate) mod xxhash;

use crate::error::{Error, Result};
use crate::eval::{Ctx, Evaluator};
use crate::value::{Series, Val};
use argus_storage::Labels;
use promql_parser::parser::{Call, Expr};
use table::{Def, Impl};
pub(crate) use window::{RangeFn, stream_range_call};
use window::{range_args, range_fn};

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

/// Merges series that ended up with the same labels (e.g. after relabelling); fails when two
/// of them have a point at the same step.
pub(crate) fn merge_same_labels(v: Vec<Series>) -> Result<Vec<Series>> {
    // Usually every set is distinct: find that out without cloning a label set.
    let distinct = {
        let mut seen: std::collections::HashSet<&Labels, foldhash::fast::RandomState> =
            std::collections::HashSet::with_capacity_and_hasher(v.len(), Default::default());
        v.iter().all(|s| seen.insert(&s.labels))
    };
    if distinct {
        return Ok(v);
    }
    let mut idx: crate::value::LabelsMap<usize> = Default::default();
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
