//! The evaluator: one arm per AST node, every node evaluated over all steps at once.
//!
//! Instant-vector values carry one point per step at the step's timestamp (sparse). Range inputs
//! (matrix selectors, subqueries) are loaded once for the whole query range and walked step by
//! step with a moving window, as Prometheus's `engine.go` does.

mod aggregate;
mod binary;
mod matching;
mod selector;
mod subquery;

pub(crate) use selector::matcher_groups;

use crate::analyze;
use crate::error::{Error, Result};
use crate::functions;
use crate::limits::Limits;
use crate::value::{Series, Val};
use argus_storage::Querier;
use promql_parser::parser::{AtModifier, Expr, Offset};
use std::time::{Duration, SystemTime};

pub(crate) use selector::{RangeInput, Read, Windows};

/// Default resolution of a subquery written without a step (`[10m:]`), ms.
pub(crate) const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// The steps one node is evaluated at: `start, start+step, …, end` (ms, inclusive).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Ctx {
    /// Number of steps.
    pub(crate) fn n(&self) -> usize {
        ((self.end - self.start) / self.step) as usize + 1
    }
    /// Timestamp of step `i`.
    pub(crate) fn t(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
    /// Step index of timestamp `t` (which must lie on a step).
    pub(crate) fn index(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }
}

/// Evaluates one query. Created per query; holds the single querier all selectors read from.
pub(crate) struct Evaluator<'a> {
    pub(crate) querier: Option<Box<dyn Querier + 'a>>,
    pub(crate) lookback: i64,
    /// The query's own start and end, for `@ start()` / `@ end()`.
    pub(crate) query_start: i64,
    pub(crate) query_end: i64,
    /// The query's step, ms (0 for instant queries), for `step()`.
    pub(crate) query_step: i64,
    pub(crate) limits: Limits,
    /// Warnings and infos collected while evaluating.
    pub(crate) annos: crate::annotations::Collector,
    /// Addresses of the selectors read for histogram count and sum only
    /// ([`analyze::histogram_stats_selectors`]).
    pub(crate) stats_selectors: Vec<usize>,
}

impl Evaluator<'_> {
    /// Evaluates `e` at every step of `c`.
    pub(crate) fn eval(&self, e: &Expr, c: Ctx) -> Result<Val> {
        self.limits.check()?;
        // Every value over `c` holds up to one sample per step; refuse before allocating.
        self.limits.fits(c.n())?;
        if c.n() > 1 && !is_literal(e) && analyze::step_invariant(e) {
            let once = Ctx {
                start: c.start,
                end: c.start,
                step: c.step,
            };
            let v = self.eval_node(e, once)?;
            return self.broadcast(v, c);
        }
        self.eval_node(e, c)
    }

    fn eval_node(&self, e: &Expr, c: Ctx) -> Result<Val> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; c.n()])),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, c),
            Expr::Unary(u) => match self.eval(&u.expr, c)? {
                Val::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Val::Scalar(v))
                }
                Val::Vector(mut ss) => {
                    for s in &mut ss {
                        s.drop_name = true;
                        s.points.iter_mut().for_each(|p| p.1 = -p.1);
                        s.hists
                            .iter_mut()
                            .for_each(|p| argus_storage::histogram::ops::mul(&mut p.1, -1.0));
                    }
                    Ok(Val::Vector(ss))
                }
                _ => Err(Error::bad_data(
                    "unary expression only allowed on expressions of type scalar or vector",
                )),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.vector_selector(vs, c, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                let ri = self.range_input(e, c)?;
                Ok(Val::Matrix(ri.window_at(c.end)))
            }
            Expr::Call(call) => functions::call(self, call, c),
            Expr::Aggregate(a) => self.aggregate(a, c),
            Expr::Binary(b) => self.binary(b, c),
            Expr::Extension(_) => Err(Error::bad_data("unsupported expression extension")),
        }
    }

    /// Evaluates `e`, which must produce an instant vector.
    pub(crate) fn eval_vector(&self, e: &Expr, c: Ctx) -> Result<Vec<Series>> {
        match self.eval(e, c)? {
            Val::Vector(v) => Ok(v),
            other => Err(Error::bad_data(format!(
                "expected instant vector, got {}",
                type_name(&other)
            ))),
        }
    }

    /// Evaluates `e` (an instant vector) and hands its series to `sink` one at a time. Selectors
    /// and range-vector functions stream without building the whole vector; other expressions
    /// are evaluated first. Each series handed over is already accounted against the limit.
    /// The series lent to `sink` may be a buffer reused for the next one (take it to keep it).
    pub(crate) fn stream_vector(
        &self,
        e: &Expr,
        c: Ctx,
        sink: &mut dyn FnMut(&mut Series) -> Result<()>,
    ) -> Result<()> {
        let inner = unparen(e);
        if c.n() == 1 || !analyze::step_invariant(inner) {
            match inner {
                Expr::VectorSelector(vs) => {
                    return self.vector_selector_each(vs, c, false, &mut |s| {
                        self.limits.add(s.len())?;
                        sink(s)
                    });
                }
                Expr::Call(_) => {
                    let streamed = functions::stream_range_call(self, inner, c, &mut |s| {
                        self.limits.add(s.len())?;
                        sink(s)
                    })?;
                    if streamed {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        for mut s in self.eval_vector(e, c)? {
            sink(&mut s)?;
        }
        Ok(())
    }

    /// Evaluates `e`, which must produce a scalar.
    pub(crate) fn eval_scalar(&self, e: &Expr, c: Ctx) -> Result<Vec<f64>> {
        match self.eval(e, c)? {
            Val::Scalar(v) => Ok(v),
            other => Err(Error::bad_data(format!(
                "expected scalar, got {}",
                type_name(&other)
            ))),
        }
    }

    /// Evaluates `e`, which must produce a string.
    pub(crate) fn eval_string(&self, e: &Expr, c: Ctx) -> Result<String> {
        match self.eval(e, c)? {
            Val::String(s) => Ok(s),
            other => Err(Error::bad_data(format!(
                "expected string, got {}",
                type_name(&other)
            ))),
        }
    }

    /// Repeats a value computed at one step over every step of `c`.
    fn broadcast(&self, v: Val, c: Ctx) -> Result<Val> {
        let n = c.n();
        Ok(match v {
            Val::Scalar(s) => Val::Scalar(vec![s.first().copied().unwrap_or(f64::NAN); n]),
            Val::Vector(mut ss) => {
                let mut total = 0;
                for s in &mut ss {
                    if let Some(&(_, v)) = s.points.first() {
                        s.points = (0..n).map(|i| (c.t(i), v)).collect();
                        total += n;
                    } else if let Some((_, h)) = s.hists.first() {
                        let h = h.clone();
                        s.hists = (0..n).map(|i| (c.t(i), h.clone())).collect();
                        total += n;
                    }
                }
                self.limits.add(total)?;
                ss.retain(|s| !s.is_empty());
                Val::Vector(ss)
            }
            other => other,
        })
    }

    /// Resolves an `@` modifier to ms.
    pub(crate) fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(*t)),
        }
    }
}

/// A `SystemTime` as ms since the epoch (negative before it).
pub(crate) fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => duration_ms(d),
        Err(e) => -duration_ms(e.duration()),
    }
}

/// A duration in ms, saturating.
pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// An `offset` modifier in ms (negative offsets look ahead).
pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(*d),
        Some(Offset::Neg(d)) => -duration_ms(*d),
    }
}

fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        Expr::Paren(p) => is_literal(&p.expr),
        _ => false,
    }
}

pub(crate) fn type_name(v: &Val) -> &'static str {
    match v {
        Val::Scalar(_) => "scalar",
        Val::String(_) => "string",
        Val::Vector(_) => "instant vector",
        Val::Matrix(_) => "range vector",
    }
}

/// Strips parentheses.
pub(crate) fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}
