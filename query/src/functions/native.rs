//! Functions over native-histogram samples: `histogram_count/sum/avg/stddev/stdvar`, and the
//! native halves of `histogram_quantile`, `histogram_quantiles` and `histogram_fraction`
//! (Prometheus's `HistogramQuantile`/`HistogramFraction`, with exponential interpolation for
//! standard schemas and linear interpolation for custom buckets and the zero bucket).

use crate::error::Result;
use crate::eval::{Ctx as EvalCtx, Evaluator};
use crate::value::{Series, Val};
use argus_storage::FloatHistogram;
use argus_storage::histogram::ops::{self, Bucket};
use promql_parser::parser::Expr;

/// `histogram_count/sum/avg/stddev/stdvar`: a float per native-histogram sample (float
/// samples are ignored).
pub(crate) fn stat_fn(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: EvalCtx) -> Result<Val> {
    let v = ev.eval_vector(super::arg(args, 0, name)?, c)?;
    Ok(Val::Vector(match name {
        "histogram_count" => per_histogram(v, |h| h.count),
        "histogram_sum" => per_histogram(v, |h| h.sum),
        "histogram_avg" => per_histogram(v, |h| h.sum / h.count),
        "histogram_stddev" => per_histogram(v, |h| variance(h).sqrt()),
        _ => per_histogram(v, variance),
    }))
}

/// Maps every histogram point of `v` through `f` into a float point (float points dropped).
pub(crate) fn per_histogram(v: Vec<Series>, f: impl Fn(&FloatHistogram) -> f64) -> Vec<Series> {
    let mut out = Vec::new();
    for s in v {
        if s.hists.is_empty() {
            continue;
        }
        let mut o = Series::new(s.labels, true);
        o.points = s.hists.iter().map(|(t, h)| (*t, f(h))).collect();
        out.push(o);
    }
    out
}

/// `histogram_stdvar` of one histogram (bucket midpoints: geometric for exponential buckets,
/// arithmetic for custom ones, zero for the zero bucket).
pub(crate) fn variance(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut var, mut c) = (0.0, 0.0);
    for b in ops::all_buckets(h) {
        if b.count == 0.0 {
            continue;
        }
        let val = if h.uses_custom_buckets() {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let v = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 { -v } else { v }
        };
        let d = val - mean;
        (var, c) = super::stats::kahan_inc(b.count * d * d, var, c);
    }
    (var + c) / h.count
}

/// Annotation context for one histogram.
pub(crate) struct Ctx<'e, 'a> {
    pub ev: &'e Evaluator<'a>,
    pub metric: &'e str,
}

/// The φ-quantile of a native histogram.
pub(crate) fn quantile(q: f64, h: &FloatHistogram, cx: &Ctx<'_, '_>) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let all = ops::all_buckets(h);
    let forward = h.sum.is_nan() || q < 0.5;
    let mut rank = if forward {
        q * h.count
    } else {
        (1.0 - q) * h.count
    };
    let mut count = 0.0;
    let mut bucket: Option<Bucket> = None;
    let mut pos = 0usize;
    let n = all.len();
    while pos < n {
        let b = if forward { all[pos] } else { all[n - 1 - pos] };
        pos += 1;
        if b.count == 0.0 {
            continue;
        }
        bucket = Some(b);
        count += b.count;
        if count >= rank {
            break;
        }
    }
    let Some(mut b) = bucket else {
        // No populated bucket at all: every observation was NaN.
        if h.sum.is_nan() {
            cx.ev.annos.info(format!(
                "input to histogram_quantile has NaN observations, result is NaN for metric name {:?}",
                cx.metric
            ));
        }
        return f64::NAN;
    };
    let custom = h.uses_custom_buckets();
    if !custom && b.lower < 0.0 && b.upper > 0.0 {
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            b.lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            b.upper = 0.0;
        }
    } else if custom {
        if b.lower == f64::NEG_INFINITY {
            if b.upper <= 0.0 {
                return b.upper;
            }
            b.lower = 0.0;
        } else if b.upper == f64::INFINITY {
            return b.lower;
        }
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank {
        if h.sum.is_nan() {
            cx.ev.annos.info(format!(
                "input to histogram_quantile has NaN observations, result is NaN for metric name {:?}",
                cx.metric
            ));
            return f64::NAN;
        }
        return b.upper;
    }
    if forward {
        rank -= count - b.count;
    } else {
        rank = count - rank;
    }
    if h.sum.is_nan() {
        let rest: f64 = (pos..n)
            .map(|p| {
                if forward {
                    all[p].count
                } else {
                    all[n - 1 - p].count
                }
            })
            .sum();
        if count + rest < h.count {
            cx.ev.annos.info(format!(
                "input to histogram_quantile has NaN observations, result is skewed higher for metric name {:?}",
                cx.metric
            ));
        }
    }
    let fraction = rank / b.count;
    if custom || (b.lower <= 0.0 && b.upper >= 0.0) {
        return b.lower + (b.upper - b.lower) * fraction;
    }
    let log_lower = b.lower.abs().log2();
    let log_upper = b.upper.abs().log2();
    if b.lower > 0.0 {
        return (log_lower + (log_upper - log_lower) * fraction).exp2();
    }
    -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
}

fn fraction_below(b: &Bucket, v: f64, linear: bool) -> f64 {
    if linear {
        return (v - b.lower) / (b.upper - b.lower);
    }
    let log_lower = b.lower.abs().log2();
    let log_upper = b.upper.abs().log2();
    let log_v = v.abs().log2();
    if v > 0.0 {
        return (log_v - log_lower) / (log_upper - log_lower);
    }
    1.0 - ((log_v - log_upper) / (log_lower - log_upper))
}

/// Fraction of the observations of `h` in `[lower, upper]`.
pub(crate) fn fraction(lower: f64, upper: f64, h: &FloatHistogram, cx: &Ctx<'_, '_>) -> f64 {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let all = ops::all_buckets(h);
    let custom = h.uses_custom_buckets();
    let (mut count, mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut pos = 0;
    while pos < all.len() {
        let mut b = all[pos];
        pos += 1;
        count += b.count;
        let mut zero_bucket = false;
        if b.lower <= 0.0 && b.upper >= 0.0 {
            zero_bucket = true;
            if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
                b.lower = 0.0;
            } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
                b.upper = 0.0;
            }
        }
        let interp = |v: f64, rank: f64| -> f64 {
            if custom || zero_bucket {
                if b.lower == f64::NEG_INFINITY {
                    return b.count;
                }
                rank + b.count * fraction_below(&b, v, true)
            } else {
                rank + b.count * fraction_below(&b, v, false)
            }
        };
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = interp(lower, rank);
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = interp(upper, rank);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    if h.sum.is_nan() {
        count += all[pos.min(all.len())..]
            .iter()
            .map(|b| b.count)
            .sum::<f64>();
        if count < h.count {
            cx.ev.annos.info(format!(
                "input to histogram_fraction has NaN observations, which are excluded from all fractions for metric name {:?}",
                cx.metric
            ));
        }
    } else {
        count = h.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / h.count
}

/// Prometheus's `FloatHistogram.String()`: `{count:N, sum:S, [-2,-1):2, [-0.001,0.001]:2,
/// (0.5,1]:1}` (populated buckets only), used by `count_values` for histogram samples.
pub(crate) fn histogram_string(h: &FloatHistogram) -> String {
    use crate::value::format_float as f;
    let mut s = format!("{{count:{}, sum:{}", f(h.count), f(h.sum));
    let bucket = |s: &mut String, lower: f64, upper: f64, lo_inc: bool, up_inc: bool, c: f64| {
        s.push_str(&format!(
            ", {}{},{}{}:{}",
            if lo_inc { '[' } else { '(' },
            f(lower),
            f(upper),
            if up_inc { ']' } else { ')' },
            f(c)
        ));
    };
    let neg = ops::indexed(&h.negative_spans, &h.negative_buckets);
    for &(idx, c) in neg.iter().rev() {
        if c != 0.0 {
            let lower = -ops::bound(idx, h.schema, &h.custom_values);
            let upper = -ops::bound(idx.saturating_sub(1), h.schema, &h.custom_values);
            bucket(&mut s, lower, upper, true, false, c);
        }
    }
    if h.zero_count != 0.0 {
        bucket(
            &mut s,
            -h.zero_threshold,
            h.zero_threshold,
            true,
            true,
            h.zero_count,
        );
    }
    for (idx, c) in ops::indexed(&h.positive_spans, &h.positive_buckets) {
        if c != 0.0 {
            let lower = ops::bound(idx.saturating_sub(1), h.schema, &h.custom_values);
            let upper = ops::bound(idx, h.schema, &h.custom_values);
            bucket(&mut s, lower, upper, false, true, c);
        }
    }
    s.push('}');
    s
}
