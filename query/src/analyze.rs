//! Static passes over the AST: step invariance and the time range the query reads.

use crate::eval::{DEFAULT_SUBQUERY_STEP_MS, duration_ms, offset_ms, system_time_ms};
use promql_parser::parser::{AtModifier, Expr};

/// Functions whose result depends on the evaluation time even when their inputs carry `@`.
const AT_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// True when `e` gives the same value at every step (every selector pinned with `@`), so a
/// range query can evaluate it once and repeat the result.
pub(crate) fn step_invariant(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        Expr::VectorSelector(vs) => vs.at.is_some(),
        Expr::MatrixSelector(ms) => ms.vs.at.is_some(),
        Expr::Subquery(sq) => sq.at.is_some(),
        Expr::Paren(p) => step_invariant(&p.expr),
        Expr::Unary(u) => step_invariant(&u.expr),
        Expr::Aggregate(a) => {
            step_invariant(&a.expr) && a.param.as_ref().is_none_or(|p| step_invariant(p))
        }
        Expr::Binary(b) => step_invariant(&b.lhs) && step_invariant(&b.rhs),
        Expr::Call(c) => {
            !AT_UNSAFE_FUNCTIONS.contains(&c.func.name)
                && !c.args.args.is_empty()
                && c.args.args.iter().all(|a| step_invariant(a))
        }
        Expr::Extension(_) => false,
    }
}

/// The selectors whose histograms only need their count and sum, identified by address:
/// Prometheus's `detectHistogramStatsDecoding`. A selector qualifies when an ancestor is
/// `histogram_count`, `histogram_sum` or `histogram_avg` and no ancestor is a subquery or a
/// function that reads buckets (`histogram_quantile(s)`, `histogram_fraction`). Such selectors
/// are read as Prometheus's `HistogramStatsIterator` reads them (see
/// `eval::selector::decode_stats`), which changes the counter-reset hints, and so the
/// annotations, of what is built from them.
pub(crate) fn histogram_stats_selectors(e: &Expr) -> Vec<usize> {
    let mut out = Vec::new();
    // (node, a stats function above it, a subquery or bucket reader above it)
    let mut stack: Vec<(&Expr, bool, bool)> = vec![(e, false, false)];
    while let Some((e, stats, stop)) = stack.pop() {
        match e {
            Expr::VectorSelector(vs) => {
                if stats && !stop {
                    out.push(std::ptr::from_ref(vs) as usize);
                }
            }
            Expr::MatrixSelector(ms) => {
                if stats && !stop {
                    out.push(std::ptr::from_ref(&ms.vs) as usize);
                }
            }
            Expr::Subquery(sq) => stack.push((&sq.expr, stats, true)),
            Expr::Paren(p) => stack.push((&p.expr, stats, stop)),
            Expr::Unary(u) => stack.push((&u.expr, stats, stop)),
            Expr::Aggregate(a) => {
                stack.push((&a.expr, stats, stop));
                if let Some(p) = &a.param {
                    stack.push((p, stats, stop));
                }
            }
            Expr::Binary(b) => {
                stack.push((&b.lhs, stats, stop));
                stack.push((&b.rhs, stats, stop));
            }
            Expr::Call(c) => {
                let (stats, stop) = match c.func.name {
                    "histogram_count" | "histogram_sum" | "histogram_avg" => (true, stop),
                    "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => {
                        (stats, true)
                    }
                    _ => (stats, stop),
                };
                stack.extend(c.args.args.iter().map(|a| (a.as_ref(), stats, stop)));
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    out
}

/// The closed range `[mint, maxt]` (ms) of samples a query over `[start, end]` may read, or
/// `None` when it has no selectors.
pub(crate) fn time_bounds(e: &Expr, start: i64, end: i64, lookback: i64) -> Option<(i64, i64)> {
    let mut acc: Option<(i64, i64)> = None;
    walk(e, start, end, start, end, lookback, &mut acc);
    acc
}

fn at_of(at: &Option<AtModifier>, qs: i64, qe: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(qs),
        Some(AtModifier::End) => Some(qe),
        Some(AtModifier::At(t)) => Some(system_time_ms(*t)),
    }
}

fn widen(acc: &mut Option<(i64, i64)>, lo: i64, hi: i64) {
    *acc = Some(match *acc {
        None => (lo, hi),
        Some((a, b)) => (a.min(lo), b.max(hi)),
    });
}

fn walk(
    e: &Expr,
    start: i64,
    end: i64,
    qs: i64,
    qe: i64,
    lookback: i64,
    acc: &mut Option<(i64, i64)>,
) {
    match e {
        Expr::VectorSelector(vs) => {
            let off = offset_ms(&vs.offset);
            let at = at_of(&vs.at, qs, qe);
            let s = at.unwrap_or(start) - off;
            let en = at.unwrap_or(end) - off;
            widen(acc, s.saturating_sub(lookback), en);
        }
        Expr::MatrixSelector(ms) => {
            let off = offset_ms(&ms.vs.offset);
            let at = at_of(&ms.vs.at, qs, qe);
            let s = at.unwrap_or(start) - off;
            let en = at.unwrap_or(end) - off;
            widen(acc, s.saturating_sub(duration_ms(ms.range)), en);
        }
        Expr::Subquery(sq) => {
            let off = offset_ms(&sq.offset);
            let at = at_of(&sq.at, qs, qe);
            let step = sq.step.map(duration_ms).unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
            let s = at.unwrap_or(start) - off - duration_ms(sq.range) - step;
            let en = at.unwrap_or(end) - off;
            walk(&sq.expr, s, en, qs, qe, lookback, acc);
        }
        Expr::Paren(p) => walk(&p.expr, start, end, qs, qe, lookback, acc),
        Expr::Unary(u) => walk(&u.expr, start, end, qs, qe, lookback, acc),
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, start, end, qs, qe, lookback, acc);
            }
            walk(&a.expr, start, end, qs, qe, lookback, acc);
        }
        Expr::Binary(b) => {
            walk(&b.lhs, start, end, qs, qe, lookback, acc);
            walk(&b.rhs, start, end, qs, qe, lookback, acc);
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, start, end, qs, qe, lookback, acc);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}
