//! histogram_quantile over classic `le` buckets, with Prometheus's monotonicity fixes.

use super::native;
use crate::error::{Error, Result};
use crate::eval::{Ctx, Evaluator};
use crate::value::{Series, Val, format_float};
use argus_storage::Labels;
use promql_parser::parser::Expr;

/// Tolerance below which neighbouring cumulative counts are treated as equal.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// Classic-histogram bucket series grouped by their labels without `le`: one output series
/// (labels only) per group and, per group and step, the `(upper bound, count)` pairs.
#[allow(clippy::type_complexity)]
fn classic_groups(
    ev: &Evaluator<'_>,
    e: &Expr,
    c: Ctx,
) -> Result<(Vec<Series>, Vec<Vec<Vec<(f64, f64)>>>, Vec<Series>)> {
    let n = c.n();
    let mut natives = Vec::new();
    let mut groups: crate::value::LabelsMap<usize> = Default::default();
    let mut keys: Vec<Series> = Vec::new();
    let mut buckets: Vec<Vec<Vec<(f64, f64)>>> = Vec::new();
    // The group labels of the current series, refilled in place.
    let mut key = Labels::empty();
    // Streamed: the bucket series are never held all at once, only their counts per group.
    ev.stream_vector(e, c, &mut |s: &mut Series| {
        if !s.hists.is_empty() {
            let mut n = Series::new(s.labels.clone(), true);
            n.hists = std::mem::take(&mut s.hists);
            natives.push(n);
        }
        let le = s.labels.get("le");
        let Some(ub) = le.and_then(parse_go_float) else {
            if !s.points.is_empty() {
                ev.annos.warn(format!(
                    "bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                    le.unwrap_or(""),
                    s.labels.metric_name().unwrap_or("")
                ));
            }
            return Ok(());
        };
        crate::value::filter_labels_into(&s.labels, |p| p.name != "le", &mut key);
        let g = match groups.get(&key) {
            Some(&g) => g,
            None => {
                ev.limits
                    .fits(keys.len().saturating_add(1).saturating_mul(n))?;
                groups.insert(key.clone(), keys.len());
                keys.push(Series::new(key.clone(), true));
                buckets.push(vec![Vec::new(); n]);
                keys.len() - 1
            }
        };
        for &(t, x) in &s.points {
            buckets[g][c.index(t)].push((ub, x));
        }
        Ok(())
    })?;
    // A native histogram and classic buckets of the same series at the same step: neither is
    // evaluated (Prometheus's `resetHistograms`).
    for n in &mut natives {
        let Some(&g) = groups.get(&n.labels) else {
            continue;
        };
        let steps = &mut buckets[g];
        n.hists.retain(|(t, _)| {
            let b = &mut steps[c.index(*t)];
            if b.is_empty() {
                return true;
            }
            b.clear();
            ev.annos.warn(format!(
                "vector contains a mix of classic and native histograms for metric name {:?}",
                n.labels.metric_name().unwrap_or("")
            ));
            false
        });
    }
    natives.retain(|n| !n.hists.is_empty());
    Ok((keys, buckets, natives))
}

pub(crate) fn histogram_quantile(ev: &Evaluator<'_>, args: &[&Expr], c: Ctx) -> Result<Val> {
    let (Some(qe), Some(ve)) = (args.first(), args.get(1)) else {
        return Err(Error::bad_data("histogram_quantile needs two arguments"));
    };
    let q = ev.eval_scalar(qe, c)?;
    warn_quantiles(ev, &q);
    let (mut out, mut buckets, natives) = classic_groups(ev, ve, c)?;
    for (g, steps) in buckets.iter_mut().enumerate() {
        for (i, b) in steps.iter_mut().enumerate() {
            if !b.is_empty() {
                warn_monotonic(ev, &out[g].labels, b);
                out[g].points.push((c.t(i), bucket_quantile(q[i], b)));
            }
        }
    }
    out.retain(|s| !s.points.is_empty());
    for s in &natives {
        out.push(native_quantiles(ev, s, &q, c));
    }
    Ok(Val::Vector(out))
}

/// The φ-quantile (`q`, per step) of each native histogram of `s`.
fn native_quantiles(ev: &Evaluator<'_>, s: &Series, q: &[f64], c: Ctx) -> Series {
    let cx = native::Ctx {
        ev,
        metric: s.labels.metric_name().unwrap_or(""),
    };
    let mut o = Series::new(s.labels.clone(), true);
    o.points = s
        .hists
        .iter()
        .map(|(t, h)| (*t, native::quantile(q[c.index(*t)], h, &cx)))
        .collect();
    o
}

/// `histogram_quantiles(v, "label", q1, q2, …)`: one output series per quantile, labelled.
pub(crate) fn histogram_quantiles(ev: &Evaluator<'_>, args: &[&Expr], c: Ctx) -> Result<Val> {
    let (Some(ve), Some(le)) = (args.first(), args.get(1)) else {
        return Err(Error::bad_data(
            "histogram_quantiles needs at least three arguments",
        ));
    };
    let label = ev.eval_string(le, c)?;
    let mut qs = Vec::new();
    for a in &args[2..] {
        qs.push(ev.eval_scalar(a, c)?);
    }
    let (keys, mut buckets, natives) = classic_groups(ev, ve, c)?;
    let mut out = Vec::new();
    for q in &qs {
        warn_quantiles(ev, q);
        for s in &natives {
            let mut o = native_quantiles(ev, s, q, c);
            if let Some(&(t, _)) = o.points.first() {
                o.labels.set(&label, &format_quantile_label(q[c.index(t)]));
                out.push(o);
            }
        }
        for (g, steps) in buckets.iter_mut().enumerate() {
            let mut s = Series::new(keys[g].labels.clone(), true);
            for (i, b) in steps.iter_mut().enumerate() {
                if !b.is_empty() {
                    warn_monotonic(ev, &s.labels, b);
                    s.points.push((c.t(i), bucket_quantile(q[i], b)));
                }
            }
            if let Some(&(_, _)) = s.points.first() {
                let qv = q[c.index(s.points[0].0)];
                s.labels.set(&label, &format_quantile_label(qv));
                out.push(s);
            }
        }
    }
    Ok(Val::Vector(out))
}

/// Quantile label values keep a decimal point: `0.0`, `0.25`, `1.0`.
fn format_quantile_label(q: f64) -> String {
    if q.is_finite() && q.fract() == 0.0 && q.abs() < 1e15 {
        format!("{q:.1}")
    } else {
        format_float(q)
    }
}

pub(crate) fn histogram_fraction(ev: &Evaluator<'_>, args: &[&Expr], c: Ctx) -> Result<Val> {
    let (Some(lo), Some(hi), Some(ve)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(Error::bad_data("histogram_fraction needs three arguments"));
    };
    let lower = ev.eval_scalar(lo, c)?;
    let upper = ev.eval_scalar(hi, c)?;
    let (mut out, mut buckets, natives) = classic_groups(ev, ve, c)?;
    for (g, steps) in buckets.iter_mut().enumerate() {
        for (i, b) in steps.iter_mut().enumerate() {
            if !b.is_empty() {
                out[g]
                    .points
                    .push((c.t(i), bucket_fraction(lower[i], upper[i], b)));
            }
        }
    }
    out.retain(|s| !s.points.is_empty());
    for s in natives {
        let cx = native::Ctx {
            ev,
            metric: s.labels.metric_name().unwrap_or(""),
        };
        let mut o = Series::new(s.labels.clone(), true);
        o.points = s
            .hists
            .iter()
            .map(|(t, h)| {
                let i = c.index(*t);
                (*t, native::fraction(lower[i], upper[i], h, &cx))
            })
            .collect();
        out.push(o);
    }
    Ok(Val::Vector(out))
}

/// Warns once for a quantile outside `[0, 1]`.
pub(crate) fn warn_quantiles(ev: &Evaluator<'_>, q: &[f64]) {
    if let Some(bad) = q.iter().find(|q| q.is_nan() || **q < 0.0 || **q > 1.0) {
        ev.annos.warn(format!(
            "quantile value should be between 0 and 1, got {}",
            format_float(*bad)
        ));
    }
}

/// Reports (as Prometheus's info) buckets whose cumulative counts decrease beyond float noise,
/// which [`bucket_quantile`] then forces to be monotonic.
fn warn_monotonic(ev: &Evaluator<'_>, labels: &Labels, b: &[(f64, f64)]) {
    let mut sorted = b.to_vec();
    sorted.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(sorted.len());
    for &(ub, cnt) in &sorted {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += cnt,
            _ => merged.push((ub, cnt)),
        }
    }
    let Some(first) = merged.first() else {
        return;
    };
    let (mut prev, mut max) = (first.1, first.1);
    let mut forced = false;
    for &(_, curr) in &merged[1..] {
        let delta = (curr - prev).abs();
        if delta == 0.0 {
            continue;
        }
        if delta / curr <= SMALL_DELTA_TOLERANCE {
            continue;
        }
        prev = curr;
        if curr < max {
            forced = true;
        } else {
            max = curr;
        }
    }
    if forced {
        ev.annos.info(format!(
            "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
            labels.metric_name().unwrap_or("")
        ));
    }
}

/// Sorts, coalesces equal bounds and forces monotonic counts. Returns false when the buckets
/// are unusable (no `+Inf` bucket).
fn normalize(b: &mut Vec<(f64, f64)>) -> bool {
    b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return false;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for &(ub, cnt) in b.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += cnt,
            _ => merged.push((ub, cnt)),
        }
    }
    *b = merged;
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
    true
}

/// Fraction of observations in `[lower, upper]`, interpolating linearly within finite buckets;
/// buckets of infinite width count in full when the range reaches their infinite end.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, b: &mut Vec<(f64, f64)>) -> f64 {
    if !normalize(b) {
        return f64::NAN;
    }
    let total = b[b.len() - 1].1;
    if lower.is_nan() || upper.is_nan() || total == 0.0 {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let mut sum = 0.0;
    let mut prev_count = 0.0;
    for (i, &(ub, cum)) in b.iter().enumerate() {
        let lb = if i == 0 {
            if ub > 0.0 { 0.0 } else { f64::NEG_INFINITY }
        } else {
            b[i - 1].0
        };
        let count = cum - prev_count;
        prev_count = cum;
        if lower <= lb && ub <= upper {
            sum += count;
        } else if ub == f64::INFINITY || lb == f64::NEG_INFINITY {
            // No interpolation in a bucket of infinite width: it counts in full when the range
            // extends to the same infinity, otherwise not at all.
            let covers_top = ub == f64::INFINITY && upper == f64::INFINITY && lower < ub;
            let covers_bottom = lb == f64::NEG_INFINITY && lower == f64::NEG_INFINITY && upper > lb;
            if covers_top || covers_bottom {
                sum += count;
            }
        } else {
            let overlap = ub.min(upper) - lb.max(lower);
            if overlap > 0.0 {
                sum += count * overlap / (ub - lb);
            }
        }
    }
    sum / total
}

/// Parses an `le` value as Prometheus does (`strconv.ParseFloat`), through the workspace's one
/// Go float parser ([`crate::gofloat::parse`]: decimal forms and Inf/NaN spellings; Go's hex
/// floats, which no exposition writes, are not read).
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    crate::gofloat::parse(s)
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
    if !normalize(b) {
        return f64::NAN;
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
