//! histogram_quantile over classic `le` buckets, with Prometheus's monotonicity fixes.

use crate::error::{Error, Result};
use crate::eval::{Ctx, Evaluator};
use crate::value::{Series, Val};
use argus_storage::{Label, Labels, METRIC_NAME};
use promql_parser::parser::Expr;
use std::collections::HashMap;

/// Tolerance below which neighbouring cumulative counts are treated as equal.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

pub(crate) fn histogram_quantile(ev: &Evaluator<'_>, args: &[&Expr], c: Ctx) -> Result<Val> {
    let (Some(qe), Some(ve)) = (args.first(), args.get(1)) else {
        return Err(Error::bad_data("histogram_quantile needs two arguments"));
    };
    let q = ev.eval_scalar(qe, c)?;
    let v = ev.eval_vector(ve, c)?;
    let n = c.n();
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<Series> = Vec::new();
    // buckets[group][step] = (upper bound, cumulative count)
    let mut buckets: Vec<Vec<Vec<(f64, f64)>>> = Vec::new();
    for s in &v {
        let Some(le) = s.labels.get("le") else {
            continue;
        };
        let Some(ub) = parse_go_float(le) else {
            continue;
        };
        let key = Labels::from_sorted(
            s.labels
                .iter()
                .filter(|l| l.name != "le" && l.name != METRIC_NAME)
                .cloned()
                .collect::<Vec<Label>>(),
        );
        let g = *groups.entry(key.clone()).or_insert_with(|| {
            out.push(Series::new(key, false));
            buckets.push(vec![Vec::new(); n]);
            out.len() - 1
        });
        for &(t, x) in &s.points {
            buckets[g][c.index(t)].push((ub, x));
        }
    }
    for (g, steps) in buckets.iter_mut().enumerate() {
        for (i, b) in steps.iter_mut().enumerate() {
            if b.is_empty() {
                continue;
            }
            out[g].points.push((c.t(i), bucket_quantile(q[i], b)));
        }
    }
    out.retain(|s| !s.points.is_empty());
    Ok(Val::Vector(out))
}

/// Parses a float as Go's `strconv.ParseFloat` accepts it for `le` values.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => t.replace('_', "").parse().ok(),
    }
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// The φ-quantile of cumulative buckets `(upper bound, count)`.
pub(crate) fn bucket_quantile(q: f64, b: &mut Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Coalesce equal upper bounds.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for &(ub, cnt) in b.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += cnt,
            _ => merged.push((ub, cnt)),
        }
    }
    *b = merged;
    // Monotonicity and small-delta fixes.
    let mut prev = b[0].1;
    for x in b.iter_mut().skip(1) {
        let curr = x.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) || curr < prev {
            x.1 = prev;
            continue;
        }
        prev = curr;
    }
    if b.len() < 2 {
        return f64::NAN;
    }
    let observations = b[b.len() - 1].1;
    if observations == 0.0 || observations.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let last = b.len() - 1;
    let idx = b[..last].partition_point(|x| x.1 < rank);
    if idx == last {
        return b[last - 1].0;
    }
    if idx == 0 && b[0].0 <= 0.0 {
        return b[0].0;
    }
    let mut start = 0.0;
    let end = b[idx].0;
    let mut count = b[idx].1;
    if idx > 0 {
        start = b[idx - 1].0;
        count -= b[idx - 1].1;
        rank -= b[idx - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_within_bucket() {
        let mut b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert!((bucket_quantile(0.5, &mut b) - 1.0).abs() < 1e-12);
        let mut b = vec![(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 20.0)];
        assert!((bucket_quantile(0.75, &mut b) - 2.0).abs() < 1e-9);
        let mut b = vec![(1.0, 10.0)];
        assert!(bucket_quantile(0.5, &mut b).is_nan());
    }
}
