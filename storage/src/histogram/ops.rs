//! Native-histogram arithmetic, shared by PromQL, ingest and federation: bucket iteration with
//! bounds (exponential and custom schemas), addition and subtraction across schemas and zero
//! thresholds, scaling, compaction and counter-reset detection. The semantics follow
//! Prometheus's `model/histogram.FloatHistogram` (`Add`, `Sub`, `Mul`, `Div`, `Compact`,
//! `DetectReset`, `AllBucketIterator`).
//!
//! Buckets are handled as `(index, count)` lists sorted by index ([`indexed`]), which keeps
//! every operation a merge of two sorted lists; [`from_indexed`] turns such a list back into
//! spans.

use super::{CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, Span};
use std::fmt;

/// One bucket with its bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Whether `lower` belongs to the bucket (the zero bucket, negative buckets, the first
    /// custom bucket).
    pub lower_inclusive: bool,
    /// Whether `upper` belongs to the bucket (the zero bucket, positive and custom buckets).
    pub upper_inclusive: bool,
    /// Observations in the bucket.
    pub count: f64,
}

/// Why two histograms cannot be combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CombineError {
    /// One uses custom buckets, the other an exponential schema.
    IncompatibleSchema,
}

impl fmt::Display for CombineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CombineError::IncompatibleSchema => f.write_str(
                "cannot apply this operation to histograms with a mix of exponential and custom bucket schemas",
            ),
        }
    }
}

impl std::error::Error for CombineError {}

/// Side facts of an addition or subtraction that PromQL reports as annotations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Combined {
    /// One side said `CounterReset`, the other `NotCounterReset`.
    pub counter_reset_collision: bool,
    /// Custom bucket bounds differed and were reduced to their intersection.
    pub custom_bounds_reconciled: bool,
}

/// The buckets described by `spans`/`counts` as `(index, count)` in index order. Tolerates
/// inconsistent input (stops when either side runs out).
pub fn indexed(spans: &[Span], counts: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(counts.len());
    let mut idx: i64 = 0;
    let mut k = 0usize;
    for s in spans {
        idx += i64::from(s.offset);
        for _ in 0..s.length {
            let Some(&c) = counts.get(k) else {
                return out;
            };
            out.push((clamp_i32(idx), c));
            k += 1;
            idx += 1;
        }
    }
    out
}

fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// Spans and counts for `(index, count)` pairs sorted by index (consecutive indexes share a
/// span; gaps start a new one).
pub fn from_indexed(b: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut counts = Vec::with_capacity(b.len());
    let mut last: Option<i32> = None;
    for &(i, c) in b {
        match (last, spans.last_mut()) {
            (Some(l), Some(s)) if i64::from(i) == i64::from(l) + 1 => s.length += 1,
            (Some(l), _) => spans.push(Span::new(clamp_i32(i64::from(i) - i64::from(l) - 1), 1)),
            (None, _) => spans.push(Span::new(i, 1)),
        }
        counts.push(c);
        last = Some(i);
    }
    (spans, counts)
}

/// Upper bound of bucket `idx` (positive side) for an exponential schema.
pub fn exponential_bound(idx: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = i64::from(idx) << (-schema).min(62);
        if exp == 1024 {
            return f64::MAX;
        }
        return 2f64.powi(exp.clamp(-2000, 2000) as i32);
    }
    let schema = schema.min(30);
    let frac_idx = i64::from(idx) & ((1i64 << schema) - 1);
    let exp = (i64::from(idx) >> schema) + 1;
    if frac_idx == 0 && exp == 1025 {
        return f64::MAX;
    }
    let frac = if frac_idx == 0 {
        0.5
    } else {
        (frac_idx as f64 / (1i64 << schema) as f64 - 1.0).exp2()
    };
    frac * 2f64.powi(exp.clamp(-2000, 2000) as i32)
}

/// Upper bound of bucket `idx` of `h`'s positive side (custom: `custom_values[idx]`, `+Inf`
/// past the last bound, `-Inf` for index -1).
pub fn bound(idx: i32, schema: i32, custom_values: &[f64]) -> f64 {
    if schema == CUSTOM_BUCKETS_SCHEMA {
        if idx < 0 {
            return f64::NEG_INFINITY;
        }
        return custom_values
            .get(idx as usize)
            .copied()
            .unwrap_or(f64::INFINITY);
    }
    exponential_bound(idx, schema)
}

/// Every populated-or-listed bucket of `h` with its bounds, from the most negative to the most
/// positive: negative buckets (highest index first), the zero bucket when its count is not
/// zero, then positive buckets, as Prometheus's `AllBucketIterator`.
pub fn all_buckets(h: &FloatHistogram) -> Vec<Bucket> {
    let mut out = Vec::with_capacity(h.positive_buckets.len() + h.negative_buckets.len() + 1);
    let zt = h.zero_threshold;
    let custom = h.uses_custom_buckets();
    for (idx, count) in indexed(&h.negative_spans, &h.negative_buckets)
        .into_iter()
        .rev()
    {
        let mut upper = -bound(idx.saturating_sub(1), h.schema, &h.custom_values);
        let lower = -bound(idx, h.schema, &h.custom_values);
        let (lower_inclusive, upper_inclusive) = (lower < 0.0, upper > 0.0);
        if !custom && upper < 0.0 && upper > -zt {
            upper = -zt;
        }
        out.push(Bucket {
            lower,
            upper,
            lower_inclusive,
            upper_inclusive,
            count,
        });
    }
    if !custom && h.zero_count > 0.0 {
        out.push(Bucket {
            lower: -zt,
            upper: zt,
            lower_inclusive: true,
            upper_inclusive: true,
            count: h.zero_count,
        });
    }
    for (idx, count) in indexed(&h.positive_spans, &h.positive_buckets) {
        let mut lower = bound(idx.saturating_sub(1), h.schema, &h.custom_values);
        let upper = bound(idx, h.schema, &h.custom_values);
        // As Prometheus's bucket iterators: custom buckets are `(a, b]` except the first,
        // `[-Inf, b]`; exponential buckets include the end away from zero.
        let (lower_inclusive, upper_inclusive) = if custom {
            (idx == 0, true)
        } else {
            (lower < 0.0, upper > 0.0)
        };
        if !custom && lower > 0.0 && lower < zt {
            lower = zt;
        }
        out.push(Bucket {
            lower,
            upper,
            lower_inclusive,
            upper_inclusive,
            count,
        });
    }
    out
}

/// Merges sorted `(index, count)` buckets of schema `from` into the lower schema `to`.
pub fn reduce_resolution(b: &[(i32, f64)], from: i32, to: i32) -> Vec<(i32, f64)> {
    if from <= to {
        return b.to_vec();
    }
    let shift = (from - to).min(31);
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(b.len());
    for &(i, c) in b {
        let t = clamp_i32(((i64::from(i) - 1) >> shift) + 1);
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 += c,
            _ => out.push((t, c)),
        }
    }
    out
}

/// `h`'s zero count if its zero threshold were widened to at least `larger`, and the
/// threshold actually needed (widened further to the upper end of any populated bucket the
/// requested threshold cuts through).
fn zero_count_for_larger_threshold(h: &FloatHistogram, mut larger: f64) -> (f64, f64) {
    if larger == h.zero_threshold {
        return (h.zero_count, larger);
    }
    let pos = indexed(&h.positive_spans, &h.positive_buckets);
    let neg = indexed(&h.negative_spans, &h.negative_buckets);
    'outer: loop {
        let mut zc = h.zero_count;
        for &(idx, c) in &pos {
            let lower = exponential_bound(idx.saturating_sub(1), h.schema);
            let upper = exponential_bound(idx, h.schema);
            if lower >= larger {
                break;
            }
            zc += c;
            if upper > larger {
                if c != 0.0 {
                    larger = upper;
                }
                break;
            }
        }
        for &(idx, c) in &neg {
            let upper = -exponential_bound(idx.saturating_sub(1), h.schema);
            let lower = -exponential_bound(idx, h.schema);
            if upper <= -larger {
                break;
            }
            zc += c;
            if lower < -larger {
                if c != 0.0 {
                    larger = -lower;
                    continue 'outer;
                }
                break;
            }
        }
        return (zc, larger);
    }
}

/// Widens the zero buckets of `h` and `other` to a common threshold (at most 64 rounds, as the
/// thresholds only grow) and returns `other`'s zero count at it; `widened(t)` runs after each
/// widening of `h` to threshold `t`.
fn common_zero_bucket(
    h: &mut FloatHistogram,
    other: &FloatHistogram,
    mut widened: impl FnMut(f64),
) -> f64 {
    let mut other_zero = other.zero_count;
    let mut other_threshold = other.zero_threshold;
    let mut guard = 0;
    while other_threshold != h.zero_threshold && guard < 64 {
        guard += 1;
        if h.zero_threshold > other_threshold {
            (other_zero, other_threshold) =
                zero_count_for_larger_threshold(other, h.zero_threshold);
        }
        if other_threshold > h.zero_threshold {
            widen_zero_bucket(h, other_threshold);
            widened(h.zero_threshold);
        }
    }
    other_zero
}

/// Widens `h`'s zero bucket to `threshold` (already a bucket boundary), moving the buckets
/// inside it into the zero count.
fn widen_zero_bucket(h: &mut FloatHistogram, threshold: f64) {
    let (zc, t) = zero_count_for_larger_threshold(h, threshold);
    h.zero_count = zc;
    h.zero_threshold = t;
    let schema = h.schema;
    let pos: Vec<(i32, f64)> = indexed(&h.positive_spans, &h.positive_buckets)
        .into_iter()
        .filter(|&(i, _)| exponential_bound(i.saturating_sub(1), schema) >= t)
        .collect();
    let neg: Vec<(i32, f64)> = indexed(&h.negative_spans, &h.negative_buckets)
        .into_iter()
        .filter(|&(i, _)| -exponential_bound(i.saturating_sub(1), schema) <= -t)
        .collect();
    (h.positive_spans, h.positive_buckets) = from_indexed(&pos);
    (h.negative_spans, h.negative_buckets) = from_indexed(&neg);
}

/// Sets `h`'s hint for a sum or difference with `other`; true on a `CounterReset` /
/// `NotCounterReset` collision.
fn adjust_counter_reset(h: &mut FloatHistogram, other: &FloatHistogram) -> bool {
    use CounterResetHint::*;
    match (h.counter_reset_hint, other.counter_reset_hint) {
        (a, b) if a == b => false,
        (Gauge, _) => false,
        (_, Gauge) => {
            h.counter_reset_hint = Gauge;
            false
        }
        (Unknown, _) => false,
        (_, Unknown) => {
            h.counter_reset_hint = Unknown;
            false
        }
        _ => {
            h.counter_reset_hint = Unknown;
            true
        }
    }
}

/// Bounds present in both ascending lists.
pub fn intersect_bounds(a: &[f64], b: &[f64]) -> Vec<f64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if a[i] < b[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Maps custom buckets laid out by `bounds` onto the coarser `target` bounds (a subset).
fn map_custom(b: &[(i32, f64)], bounds: &[f64], target: &[f64]) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(b.len());
    for &(i, c) in b {
        let upper = bound(i, CUSTOM_BUCKETS_SCHEMA, bounds);
        let t = target.partition_point(|&x| x < upper) as i32;
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 += c,
            _ => out.push((t, c)),
        }
    }
    out
}

/// Adds (or with `negate` subtracts) two sorted bucket lists. Buckets of `b` whose upper bound
/// lies within the zero bucket (`threshold`, exponential schemas only) are skipped: their
/// counts are already part of the zero count.
fn merge(
    a: &[(i32, f64)],
    b: &[(i32, f64)],
    negate: bool,
    skip: impl Fn(i32) -> bool,
) -> Vec<(i32, f64)> {
    let sign = if negate { -1.0 } else { 1.0 };
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if j < b.len() && skip(b[j].0) {
            j += 1;
            continue;
        }
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                out.push((x.0, x.1 + sign * y.1));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(*x);
                i += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (_, Some(y)) => {
                out.push((y.0, sign * y.1));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// `h += other` (or `h -= other` with `negate`), reconciling schemas (to the lower one), zero
/// thresholds (to the wider one) and custom bounds (to their intersection), as Prometheus's
/// `FloatHistogram.Add`/`Sub`. The result may hold empty buckets; see [`compact`].
pub fn add(
    h: &mut FloatHistogram,
    other: &FloatHistogram,
    negate: bool,
) -> Result<Combined, CombineError> {
    if h.uses_custom_buckets() != other.uses_custom_buckets() {
        return Err(CombineError::IncompatibleSchema);
    }
    let mut info = Combined {
        counter_reset_collision: adjust_counter_reset(h, other),
        ..Combined::default()
    };
    let sign = if negate { -1.0 } else { 1.0 };
    h.count += sign * other.count;
    h.sum += sign * other.sum;
    let hp = indexed(&h.positive_spans, &h.positive_buckets);
    let op = indexed(&other.positive_spans, &other.positive_buckets);
    if h.uses_custom_buckets() {
        let merged = if h.custom_values == other.custom_values {
            merge(&hp, &op, negate, |_| false)
        } else {
            info.custom_bounds_reconciled = true;
            let target = intersect_bounds(&h.custom_values, &other.custom_values);
            let a = map_custom(&hp, &h.custom_values, &target);
            let b = map_custom(&op, &other.custom_values, &target);
            h.custom_values = target;
            merge(&a, &b, negate, |_| false)
        };
        (h.positive_spans, h.positive_buckets) = from_indexed(&merged);
        return Ok(info);
    }
    // Zero buckets: widen both to a common threshold.
    let other_zero = common_zero_bucket(h, other, |_| {});
    h.zero_count += sign * other_zero;
    let schema = h.schema.min(other.schema);
    let hn = indexed(&h.negative_spans, &h.negative_buckets);
    let on = indexed(&other.negative_spans, &other.negative_buckets);
    let (hp, hn) = (
        reduce_resolution(&hp, h.schema, schema),
        reduce_resolution(&hn, h.schema, schema),
    );
    let (op, on) = (
        reduce_resolution(&op, other.schema, schema),
        reduce_resolution(&on, other.schema, schema),
    );
    h.schema = schema;
    let threshold = h.zero_threshold;
    let inside = |i: i32| exponential_bound(i, schema) <= threshold;
    (h.positive_spans, h.positive_buckets) = from_indexed(&merge(&hp, &op, negate, inside));
    (h.negative_spans, h.negative_buckets) = from_indexed(&merge(&hn, &on, negate, inside));
    Ok(info)
}

/// One step of Kahan-Babuška (Neumaier) summation: the new sum and compensation.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// A compensated (Kahan-Babuška) running sum of histograms, as Prometheus's `KahanAdd`: the
/// sum and its compensation term share one bucket layout; [`KahanSum::finish`] adds them.
#[derive(Clone, Debug)]
pub struct KahanSum {
    /// The running sum.
    pub h: FloatHistogram,
    /// Compensation terms: `count`, `sum`, `zero_count` and buckets aligned with `h`.
    c: FloatHistogram,
}

impl KahanSum {
    /// Starts a sum at `h`.
    pub fn new(h: &FloatHistogram) -> Self {
        let mut c = h.clone();
        c.count = 0.0;
        c.sum = 0.0;
        c.zero_count = 0.0;
        c.positive_buckets.iter_mut().for_each(|b| *b = 0.0);
        c.negative_buckets.iter_mut().for_each(|b| *b = 0.0);
        Self { h: h.clone(), c }
    }

    /// Adds `other` (see [`add`] for how layouts are reconciled).
    pub fn add(&mut self, other: &FloatHistogram) -> Result<Combined, CombineError> {
        let h = &mut self.h;
        let c = &mut self.c;
        if h.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(CombineError::IncompatibleSchema);
        }
        let mut info = Combined {
            counter_reset_collision: adjust_counter_reset(h, other),
            ..Combined::default()
        };
        (h.count, c.count) = kahan_inc(other.count, h.count, c.count);
        (h.sum, c.sum) = kahan_inc(other.sum, h.sum, c.sum);
        let pair = |h: &FloatHistogram, c: &FloatHistogram, pos: bool| -> Vec<(i32, f64, f64)> {
            let (hs, hb, cs, cb) = if pos {
                (
                    &h.positive_spans,
                    &h.positive_buckets,
                    &c.positive_spans,
                    &c.positive_buckets,
                )
            } else {
                (
                    &h.negative_spans,
                    &h.negative_buckets,
                    &c.negative_spans,
                    &c.negative_buckets,
                )
            };
            let hv = indexed(hs, hb);
            let cv = indexed(cs, cb);
            let mut j = 0;
            hv.into_iter()
                .map(|(i, v)| {
                    while j < cv.len() && cv[j].0 < i {
                        j += 1;
                    }
                    let comp = match cv.get(j) {
                        Some(&(k, x)) if k == i => x,
                        _ => 0.0,
                    };
                    (i, v, comp)
                })
                .collect()
        };
        let op = indexed(&other.positive_spans, &other.positive_buckets);
        if h.uses_custom_buckets() {
            let mut hp = pair(h, c, true);
            let mut op = op;
            if h.custom_values != other.custom_values {
                info.custom_bounds_reconciled = true;
                let target = intersect_bounds(&h.custom_values, &other.custom_values);
                let hv: Vec<(i32, f64)> = hp.iter().map(|b| (b.0, b.1)).collect();
                let cv: Vec<(i32, f64)> = hp.iter().map(|b| (b.0, b.2)).collect();
                let hv = map_custom(&hv, &h.custom_values, &target);
                let cv = map_custom(&cv, &h.custom_values, &target);
                hp = hv.iter().zip(&cv).map(|(a, b)| (a.0, a.1, b.1)).collect();
                op = map_custom(&op, &other.custom_values, &target);
                h.custom_values = target.clone();
                c.custom_values = target;
            }
            let merged = kahan_merge(&hp, &op, |_| false);
            set_pair(h, c, true, &merged);
            return Ok(info);
        }
        // Zero buckets: widen both to a common threshold, the compensation along with the sum.
        let other_zero = common_zero_bucket(h, other, |t| {
            let (zc, _) = zero_count_for_larger_threshold(c, t);
            c.zero_count = zc;
            c.zero_threshold = t;
            let schema = c.schema;
            let keep_pos = |i: i32| exponential_bound(i.saturating_sub(1), schema) >= t;
            let pos: Vec<(i32, f64)> = indexed(&c.positive_spans, &c.positive_buckets)
                .into_iter()
                .filter(|b| keep_pos(b.0))
                .collect();
            let neg: Vec<(i32, f64)> = indexed(&c.negative_spans, &c.negative_buckets)
                .into_iter()
                .filter(|b| keep_pos(b.0))
                .collect();
            (c.positive_spans, c.positive_buckets) = from_indexed(&pos);
            (c.negative_spans, c.negative_buckets) = from_indexed(&neg);
        });
        (h.zero_count, c.zero_count) = kahan_inc(other_zero, h.zero_count, c.zero_count);
        let schema = h.schema.min(other.schema);
        let reduce3 = |v: Vec<(i32, f64, f64)>| -> Vec<(i32, f64, f64)> {
            if schema >= h.schema {
                return v;
            }
            let shift = (h.schema - schema).min(31);
            let mut out: Vec<(i32, f64, f64)> = Vec::with_capacity(v.len());
            for (i, a, b) in v {
                let t = clamp_i32(((i64::from(i) - 1) >> shift) + 1);
                match out.last_mut() {
                    Some(last) if last.0 == t => {
                        last.1 += a;
                        last.2 += b;
                    }
                    _ => out.push((t, a, b)),
                }
            }
            out
        };
        let hp = reduce3(pair(h, c, true));
        let hn = reduce3(pair(h, c, false));
        let op = reduce_resolution(&op, other.schema, schema);
        let on = reduce_resolution(
            &indexed(&other.negative_spans, &other.negative_buckets),
            other.schema,
            schema,
        );
        h.schema = schema;
        c.schema = schema;
        let threshold = h.zero_threshold;
        let inside = |i: i32| exponential_bound(i, schema) <= threshold;
        let p = kahan_merge(&hp, &op, inside);
        let n = kahan_merge(&hn, &on, inside);
        set_pair(h, c, true, &p);
        set_pair(h, c, false, &n);
        Ok(info)
    }

    /// True when a count or the sum overflowed to an infinity.
    pub fn has_overflow(&self) -> bool {
        let h = &self.h;
        h.count.is_infinite()
            || h.sum.is_infinite()
            || h.zero_count.is_infinite()
            || h.positive_buckets.iter().any(|b| b.is_infinite())
            || h.negative_buckets.iter().any(|b| b.is_infinite())
    }

    /// Multiplies sum and compensation by `f`.
    pub fn mul(&mut self, f: f64) {
        mul(&mut self.h, f);
        mul(&mut self.c, f);
    }

    /// Divides sum and compensation by `f`.
    pub fn div(&mut self, f: f64) {
        div(&mut self.h, f);
        div(&mut self.c, f);
    }

    /// The compensated sum.
    pub fn finish(self) -> FloatHistogram {
        let mut h = self.h;
        let mut c = self.c;
        c.counter_reset_hint = h.counter_reset_hint;
        if add(&mut h, &c, false).is_err() {
            // Same layout by construction; unreachable in practice.
        }
        h
    }
}

/// Adds `b` into the `(index, sum, compensation)` list `a` with Kahan steps.
fn kahan_merge(
    a: &[(i32, f64, f64)],
    b: &[(i32, f64)],
    skip: impl Fn(i32) -> bool,
) -> Vec<(i32, f64, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if j < b.len() && skip(b[j].0) {
            j += 1;
            continue;
        }
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                let (s, c) = kahan_inc(y.1, x.1, x.2);
                out.push((x.0, s, c));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(*x);
                i += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (_, Some(y)) => {
                out.push((y.0, y.1, 0.0));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

fn set_pair(h: &mut FloatHistogram, c: &mut FloatHistogram, pos: bool, v: &[(i32, f64, f64)]) {
    let hv: Vec<(i32, f64)> = v.iter().map(|x| (x.0, x.1)).collect();
    let cv: Vec<(i32, f64)> = v.iter().map(|x| (x.0, x.2)).collect();
    if pos {
        (h.positive_spans, h.positive_buckets) = from_indexed(&hv);
        (c.positive_spans, c.positive_buckets) = from_indexed(&cv);
    } else {
        (h.negative_spans, h.negative_buckets) = from_indexed(&hv);
        (c.negative_spans, c.negative_buckets) = from_indexed(&cv);
    }
}

/// Scales every count and the sum by `factor`; a negative factor makes a gauge histogram.
pub fn mul(h: &mut FloatHistogram, factor: f64) {
    h.zero_count *= factor;
    h.count *= factor;
    h.sum *= factor;
    h.positive_buckets.iter_mut().for_each(|b| *b *= factor);
    h.negative_buckets.iter_mut().for_each(|b| *b *= factor);
    if factor < 0.0 {
        h.counter_reset_hint = CounterResetHint::Gauge;
    }
}

/// Divides every count and the sum by `divisor`; dividing by zero removes all buckets.
pub fn div(h: &mut FloatHistogram, divisor: f64) {
    h.zero_count /= divisor;
    h.count /= divisor;
    h.sum /= divisor;
    if divisor == 0.0 {
        h.positive_buckets.clear();
        h.negative_buckets.clear();
        h.positive_spans.clear();
        h.negative_spans.clear();
        return;
    }
    h.positive_buckets.iter_mut().for_each(|b| *b /= divisor);
    h.negative_buckets.iter_mut().for_each(|b| *b /= divisor);
    if divisor < 0.0 {
        h.counter_reset_hint = CounterResetHint::Gauge;
    }
}

/// Removes empty buckets and merges adjacent spans.
pub fn compact(h: &mut FloatHistogram) {
    let pos: Vec<(i32, f64)> = indexed(&h.positive_spans, &h.positive_buckets)
        .into_iter()
        .filter(|b| b.1 != 0.0)
        .collect();
    let neg: Vec<(i32, f64)> = indexed(&h.negative_spans, &h.negative_buckets)
        .into_iter()
        .filter(|b| b.1 != 0.0)
        .collect();
    (h.positive_spans, h.positive_buckets) = from_indexed(&pos);
    (h.negative_spans, h.negative_buckets) = from_indexed(&neg);
}

/// Whether `h` follows a counter reset after `prev`, as Prometheus's `DetectReset`: the hint
/// decides when it is `CounterReset`/`NotCounterReset`; otherwise any decrease (total count,
/// zero bucket, any bucket once both are brought to `h`'s schema and zero threshold), a schema
/// increase, a narrower zero bucket or a change of bucket kind counts as a reset.
pub fn detect_reset(h: &FloatHistogram, prev: &FloatHistogram) -> bool {
    match h.counter_reset_hint {
        CounterResetHint::CounterReset => return true,
        CounterResetHint::NotCounterReset => return false,
        _ => {}
    }
    counts_decreased(h, prev)
}

/// [`detect_reset`] without the hint: whether the counts of `h` show a counter reset after
/// `prev`. The chunk encoder's test too (one definition of a reset for storage and PromQL); a
/// sample with `prev`'s layout (the common case) is compared slot by slot without allocating.
pub fn counts_decreased(h: &FloatHistogram, prev: &FloatHistogram) -> bool {
    if h.count < prev.count {
        return true;
    }
    // The fast path applies where the general one below compares the same slots: every
    // bucket outside the zero bucket (indexes ascend, so the first one decides).
    let custom = h.uses_custom_buckets();
    let zt = h.zero_threshold;
    let outside = |spans: &[Span]| {
        custom
            || zt == 0.0
            || spans
                .first()
                .is_none_or(|s| exponential_bound(s.offset, h.schema) > zt)
    };
    if h.schema == prev.schema
        && h.zero_threshold.to_bits() == prev.zero_threshold.to_bits()
        && h.positive_spans == prev.positive_spans
        && h.negative_spans == prev.negative_spans
        && h.custom_values == prev.custom_values
        && outside(&h.positive_spans)
        && outside(&h.negative_spans)
    {
        let down = |a: &[f64], b: &[f64]| a.iter().zip(b).any(|(c, p)| c < p);
        return (!custom && h.zero_count < prev.zero_count)
            || down(&h.positive_buckets, &prev.positive_buckets)
            || down(&h.negative_buckets, &prev.negative_buckets);
    }
    if h.uses_custom_buckets() != prev.uses_custom_buckets() {
        return true;
    }
    if h.uses_custom_buckets() {
        let (cur, old) = if h.custom_values == prev.custom_values {
            (
                indexed(&h.positive_spans, &h.positive_buckets),
                indexed(&prev.positive_spans, &prev.positive_buckets),
            )
        } else {
            let target = intersect_bounds(&h.custom_values, &prev.custom_values);
            (
                map_custom(
                    &indexed(&h.positive_spans, &h.positive_buckets),
                    &h.custom_values,
                    &target,
                ),
                map_custom(
                    &indexed(&prev.positive_spans, &prev.positive_buckets),
                    &prev.custom_values,
                    &target,
                ),
            )
        };
        return buckets_decreased(&cur, &old);
    }
    if h.schema > prev.schema {
        return true;
    }
    if h.zero_threshold < prev.zero_threshold {
        return true;
    }
    let (prev_zero, t) = zero_count_for_larger_threshold(prev, h.zero_threshold);
    if t != h.zero_threshold {
        return true;
    }
    if h.zero_count < prev_zero {
        return true;
    }
    let zt = h.zero_threshold;
    let outside = |v: Vec<(i32, f64)>, schema: i32| -> Vec<(i32, f64)> {
        v.into_iter()
            .filter(|&(i, _)| zt == 0.0 || exponential_bound(i, schema) > zt)
            .collect()
    };
    let side = |spans: &[Span], counts: &[f64], from: i32| {
        outside(
            reduce_resolution(&indexed(spans, counts), from, h.schema),
            h.schema,
        )
    };
    buckets_decreased(
        &side(&h.positive_spans, &h.positive_buckets, h.schema),
        &side(&prev.positive_spans, &prev.positive_buckets, prev.schema),
    ) || buckets_decreased(
        &side(&h.negative_spans, &h.negative_buckets, h.schema),
        &side(&prev.negative_spans, &prev.negative_buckets, prev.schema),
    )
}

/// Exact equality as Prometheus's `FloatHistogram.Equals`: same schema, zero bucket, count and
/// sum (bit patterns), custom bounds, and the same buckets (including empty ones) whatever the
/// span layout; the counter-reset hint is not compared.
pub fn equals(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    let bits = |x: f64| x.to_bits();
    let same = |x: &[(i32, f64)], y: &[(i32, f64)]| {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(p, q)| p.0 == q.0 && bits(p.1) == bits(q.1))
    };
    a.schema == b.schema
        && bits(a.count) == bits(b.count)
        && bits(a.sum) == bits(b.sum)
        && (a.uses_custom_buckets()
            || (bits(a.zero_threshold) == bits(b.zero_threshold)
                && bits(a.zero_count) == bits(b.zero_count)))
        && (!a.uses_custom_buckets() || a.custom_values == b.custom_values)
        && same(
            &indexed(&a.positive_spans, &a.positive_buckets),
            &indexed(&b.positive_spans, &b.positive_buckets),
        )
        && same(
            &indexed(&a.negative_spans, &a.negative_buckets),
            &indexed(&b.negative_spans, &b.negative_buckets),
        )
}

/// True when some bucket of `prev` has a higher count than the same bucket of `cur` (missing
/// buckets count as zero).
fn buckets_decreased(cur: &[(i32, f64)], prev: &[(i32, f64)]) -> bool {
    let mut j = 0;
    for &(i, c) in prev {
        while j < cur.len() && cur[j].0 < i {
            j += 1;
        }
        let now = match cur.get(j) {
            Some(&(k, v)) if k == i => v,
            _ => 0.0,
        };
        if now < c {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(schema: i32, buckets: &[f64], offset: i32) -> FloatHistogram {
        FloatHistogram {
            schema,
            count: buckets.iter().sum(),
            sum: 1.0,
            positive_spans: vec![Span::new(offset, buckets.len() as u32)],
            positive_buckets: buckets.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(exponential_bound(0, 0), 1.0);
        assert_eq!(exponential_bound(1, 0), 2.0);
        assert_eq!(exponential_bound(-1, 0), 0.5);
        assert_eq!(exponential_bound(1, -1), 4.0);
        assert!((exponential_bound(1, 1) - 2f64.sqrt()).abs() < 1e-15);
        assert_eq!(exponential_bound(2, 1), 2.0);
        assert_eq!(bound(-1, CUSTOM_BUCKETS_SCHEMA, &[1.0]), f64::NEG_INFINITY);
        assert_eq!(bound(1, CUSTOM_BUCKETS_SCHEMA, &[1.0]), f64::INFINITY);
    }

    #[test]
    fn spans_round_trip() {
        let spans = vec![Span::new(-2, 2), Span::new(3, 1)];
        let b = indexed(&spans, &[1.0, 2.0, 3.0]);
        assert_eq!(b, vec![(-2, 1.0), (-1, 2.0), (3, 3.0)]);
        assert_eq!(from_indexed(&b), (spans, vec![1.0, 2.0, 3.0]));
    }

    #[test]
    fn add_across_schemas() {
        // Schema 1 buckets 1..=4 collapse pairwise into schema 0 buckets 1 and 2.
        let mut a = h(0, &[1.0, 1.0], 1);
        let b = h(1, &[1.0, 2.0, 3.0, 4.0], 1);
        add(&mut a, &b, false).unwrap();
        assert_eq!(a.schema, 0);
        assert_eq!(
            indexed(&a.positive_spans, &a.positive_buckets),
            vec![(1, 4.0), (2, 8.0)]
        );
        assert_eq!(a.count, 12.0);
        add(&mut a, &b, true).unwrap();
        assert_eq!(a.count, 2.0);
        let mut c = h(CUSTOM_BUCKETS_SCHEMA, &[1.0], 0);
        assert_eq!(
            add(&mut c, &b, false),
            Err(CombineError::IncompatibleSchema)
        );
    }

    #[test]
    fn resets() {
        let a = h(0, &[2.0, 2.0], 0);
        let mut b = h(0, &[3.0, 1.0], 0);
        b.count = 5.0;
        assert!(detect_reset(&b, &a));
        let c = h(0, &[2.0, 2.0, 1.0], 0);
        assert!(!detect_reset(&c, &a));
        b.counter_reset_hint = CounterResetHint::NotCounterReset;
        assert!(!detect_reset(&b, &a));
    }

    fn arb_hist() -> impl proptest::strategy::Strategy<Value = FloatHistogram> {
        use proptest::prelude::*;
        (
            0i32..=3,
            -5i32..5,
            proptest::collection::vec(0u32..50, 0..8),
            proptest::collection::vec(0u32..50, 0..8),
            0u32..5,
        )
            .prop_map(|(schema, offset, pos, neg, zero)| {
                let pos: Vec<f64> = pos.into_iter().map(f64::from).collect();
                let neg: Vec<f64> = neg.into_iter().map(f64::from).collect();
                FloatHistogram {
                    schema,
                    count: pos.iter().sum::<f64>() + neg.iter().sum::<f64>() + f64::from(zero),
                    sum: 1.5,
                    zero_count: f64::from(zero),
                    zero_threshold: 0.0,
                    positive_spans: vec![Span::new(offset, pos.len() as u32)],
                    negative_spans: vec![Span::new(-offset, neg.len() as u32)],
                    positive_buckets: pos,
                    negative_buckets: neg,
                    ..Default::default()
                }
            })
    }

    proptest::proptest! {
        /// `indexed` and `from_indexed` are inverse; `a + b - b == a` bucket-wise once both are
        /// at the lower schema (counts are small integers, so float sums are exact).
        #[test]
        fn add_sub_round_trip(a in arb_hist(), b in arb_hist()) {
            let idx = indexed(&a.positive_spans, &a.positive_buckets);
            let (spans, counts) = from_indexed(&idx);
            proptest::prop_assert_eq!(indexed(&spans, &counts), idx);
            let mut x = a.clone();
            add(&mut x, &b, false).unwrap();
            proptest::prop_assert_eq!(x.count, a.count + b.count);
            add(&mut x, &b, true).unwrap();
            compact(&mut x);
            let schema = a.schema.min(b.schema);
            let want = |spans: &[Span], counts: &[f64]| -> Vec<(i32, f64)> {
                reduce_resolution(&indexed(spans, counts), a.schema, schema)
                    .into_iter()
                    .filter(|b| b.1 != 0.0)
                    .collect()
            };
            proptest::prop_assert_eq!(x.schema, schema);
            proptest::prop_assert_eq!(
                indexed(&x.positive_spans, &x.positive_buckets),
                want(&a.positive_spans, &a.positive_buckets)
            );
            proptest::prop_assert_eq!(
                indexed(&x.negative_spans, &x.negative_buckets),
                want(&a.negative_spans, &a.negative_buckets)
            );
            proptest::prop_assert!(!detect_reset(&a, &a));
            // The Kahan sum agrees with plain addition on exact inputs.
            let mut k = KahanSum::new(&a);
            k.add(&b).unwrap();
            let mut plain = a.clone();
            add(&mut plain, &b, false).unwrap();
            let mut ks = k.finish();
            compact(&mut ks);
            compact(&mut plain);
            proptest::prop_assert!(equals(&ks, &plain));
        }
    }

    #[test]
    fn all_buckets_in_order() {
        let mut x = h(0, &[1.0, 2.0], 0);
        x.zero_count = 3.0;
        x.zero_threshold = 0.001;
        x.negative_spans = vec![Span::new(0, 1)];
        x.negative_buckets = vec![4.0];
        let b = all_buckets(&x);
        let counts: Vec<f64> = b.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![4.0, 3.0, 1.0, 2.0]);
        assert_eq!((b[0].lower, b[0].upper), (-1.0, -0.5));
        assert_eq!((b[3].lower, b[3].upper), (1.0, 2.0));
    }
}
