//! Range-vector functions over native-histogram samples: rate/increase/delta with counter-reset
//! handling, irate/idelta, sum/avg over time, and changes/resets over mixed float and histogram
//! windows (Prometheus's `histogramRate`, `instantValue`, `funcSumOverTime`, `funcResets`).

use crate::annotations as an;
use crate::eval::Evaluator;
use argus_storage::histogram::ops;
use argus_storage::{CounterResetHint, FloatHistogram};

/// The metric name of `labels` for annotation messages.
pub(crate) fn metric_name(labels: &argus_storage::Labels) -> &str {
    labels.metric_name().unwrap_or("")
}

/// `last - first` of a histogram window with counter resets added back (for counters), or
/// `None` with a warning when the window cannot be combined.
pub(crate) fn histogram_rate(
    ev: &Evaluator<'_>,
    w: &[(i64, FloatHistogram)],
    is_counter: bool,
    metric: &str,
) -> Option<FloatHistogram> {
    let (first, last) = (&w[0].1, &w[w.len() - 1].1);
    if is_counter && (first.is_gauge() || last.is_gauge()) {
        ev.annos.warn(an::not_counter(metric));
    }
    let mut prev = first.clone();
    if is_counter && w[1].1.detect_reset_after(&prev) {
        prev = FloatHistogram {
            schema: w[1].1.schema,
            custom_values: w[1].1.custom_values.clone(),
            ..FloatHistogram::default()
        };
    }
    if last.uses_custom_buckets() != prev.uses_custom_buckets() {
        ev.annos.warn(an::mixed_exponential_custom(metric));
        return None;
    }
    let mut min_schema = last.schema.min(prev.schema);
    for (_, cur) in &w[1..w.len() - 1] {
        if !is_counter {
            continue;
        }
        if cur.is_gauge() {
            ev.annos.warn(an::not_counter(metric));
        }
        min_schema = min_schema.min(cur.schema);
        if cur.uses_custom_buckets() != prev.uses_custom_buckets() {
            ev.annos.warn(an::mixed_exponential_custom(metric));
            return None;
        }
    }
    let mut h = to_schema(last, min_schema);
    match ops::add(&mut h, &prev, true) {
        Err(_) => {
            ev.annos.warn(an::mixed_exponential_custom(metric));
            return None;
        }
        Ok(i) if i.custom_bounds_reconciled => {
            ev.annos.info(an::custom_buckets_reconciled("subtraction"))
        }
        Ok(_) => {}
    }
    if is_counter {
        // `prev` is the (possibly zeroed) first sample, as above.
        for (_, cur) in &w[1..] {
            if cur.detect_reset_after(&prev) {
                match ops::add(&mut h, &prev, false) {
                    Err(_) => {
                        ev.annos.warn(an::mixed_exponential_custom(metric));
                        return None;
                    }
                    Ok(i) if i.custom_bounds_reconciled => {
                        ev.annos.info(an::custom_buckets_reconciled("addition"))
                    }
                    Ok(_) => {}
                }
            }
            prev = cur.clone();
        }
    } else if !first.is_gauge() || !last.is_gauge() {
        ev.annos.warn(an::not_gauge(metric));
    }
    h.counter_reset_hint = CounterResetHint::Gauge;
    ops::compact(&mut h);
    Some(h)
}

/// A copy of `h` at the (lower or equal) schema `schema`.
fn to_schema(h: &FloatHistogram, schema: i32) -> FloatHistogram {
    let mut out = h.clone();
    if schema < h.schema && !h.uses_custom_buckets() {
        let p = ops::reduce_resolution(
            &ops::indexed(&h.positive_spans, &h.positive_buckets),
            h.schema,
            schema,
        );
        let n = ops::reduce_resolution(
            &ops::indexed(&h.negative_spans, &h.negative_buckets),
            h.schema,
            schema,
        );
        (out.positive_spans, out.positive_buckets) = ops::from_indexed(&p);
        (out.negative_spans, out.negative_buckets) = ops::from_indexed(&n);
        out.schema = schema;
    }
    out
}

/// Extrapolated histogram rate/increase/delta over the window `(ws, we]`.
pub(crate) fn extrapolated(
    ev: &Evaluator<'_>,
    w: &[(i64, FloatHistogram)],
    ws: i64,
    we: i64,
    is_counter: bool,
    is_rate: bool,
    metric: &str,
) -> Option<FloatHistogram> {
    if w.len() < 2 {
        return None;
    }
    let mut h = histogram_rate(ev, w, is_counter, metric)?;
    let (first_t, last_t) = (w[0].0, w[w.len() - 1].0);
    let mut to_start = (first_t - ws) as f64 / 1e3;
    let mut to_end = (we - last_t) as f64 / 1e3;
    let sampled = (last_t - first_t) as f64 / 1e3;
    let avg = sampled / (w.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter && h.count > 0.0 && w[0].1.count >= 0.0 {
        let to_zero = sampled * (w[0].1.count / h.count);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = if sampled != 0.0 {
        (sampled + to_start + to_end) / sampled
    } else {
        1.0
    };
    if is_rate {
        factor /= (we - ws) as f64 / 1e3;
    }
    ops::mul(&mut h, factor);
    Some(h)
}

/// irate/idelta over the last two histogram samples.
pub(crate) fn instant(
    ev: &Evaluator<'_>,
    a: &(i64, FloatHistogram),
    b: &(i64, FloatHistogram),
    is_rate: bool,
    metric: &str,
) -> Option<FloatHistogram> {
    let dt = b.0 - a.0;
    if dt == 0 {
        return None;
    }
    let mut h = b.1.clone();
    if is_rate && (a.1.is_gauge() || b.1.is_gauge()) {
        ev.annos.warn(an::not_counter(metric));
    }
    if !is_rate && (!a.1.is_gauge() || !b.1.is_gauge()) {
        ev.annos.warn(an::not_gauge(metric));
    }
    if !is_rate || !b.1.detect_reset_after(&a.1) {
        match ops::add(&mut h, &a.1, true) {
            Err(_) => {
                ev.annos.warn(an::mixed_exponential_custom(metric));
                return None;
            }
            Ok(i) if i.custom_bounds_reconciled => {
                ev.annos.info(an::custom_buckets_reconciled("subtraction"))
            }
            Ok(_) => {}
        }
    }
    h.counter_reset_hint = CounterResetHint::Gauge;
    ops::compact(&mut h);
    if is_rate {
        ops::div(&mut h, dt as f64 / 1e3);
    }
    Some(h)
}

/// A running sum and mean of histograms as Prometheus computes them for `sum`/`avg` and
/// `sum_over_time`/`avg_over_time`: Kahan-compensated, switching to an incremental mean once
/// the direct sum overflows.
pub(crate) struct HistAcc {
    sum: ops::KahanSum,
    mean: Option<ops::KahanSum>,
    pub(crate) count: f64,
    /// Incompatible schemas were met: no result.
    pub(crate) failed: bool,
    reset_seen: bool,
    not_reset_seen: bool,
    reconciled: bool,
}

impl HistAcc {
    pub(crate) fn new(h: &FloatHistogram) -> Self {
        let mut a = Self {
            sum: ops::KahanSum::new(h),
            mean: None,
            count: 1.0,
            failed: false,
            reset_seen: false,
            not_reset_seen: false,
            reconciled: false,
        };
        a.track(h);
        a
    }

    fn track(&mut self, h: &FloatHistogram) {
        match h.counter_reset_hint {
            CounterResetHint::CounterReset => self.reset_seen = true,
            CounterResetHint::NotCounterReset => self.not_reset_seen = true,
            _ => {}
        }
    }

    /// Adds `h`; with `for_mean`, switches to the incremental mean on overflow.
    pub(crate) fn add(&mut self, h: &FloatHistogram, for_mean: bool) {
        self.count += 1.0;
        self.track(h);
        if self.failed {
            return;
        }
        let count = self.count;
        let res = if let Some(mean) = &mut self.mean {
            mean.mul((count - 1.0) / count);
            let mut part = h.clone();
            ops::div(&mut part, count);
            mean.add(&part)
        } else if for_mean {
            let mut next = self.sum.clone();
            match next.add(h) {
                Ok(info) if !next.has_overflow() => {
                    self.sum = next;
                    Ok(info)
                }
                Ok(_) => {
                    let mut mean = self.sum.clone();
                    mean.div(count - 1.0);
                    mean.mul((count - 1.0) / count);
                    let mut part = h.clone();
                    ops::div(&mut part, count);
                    let r = mean.add(&part);
                    self.mean = Some(mean);
                    r
                }
                Err(e) => Err(e),
            }
        } else {
            self.sum.add(h)
        };
        match res {
            Err(_) => self.failed = true,
            Ok(info) => self.reconciled |= info.custom_bounds_reconciled,
        }
    }

    /// The sum (or with `mean`, the mean), reporting annotations; `None` after a failure.
    pub(crate) fn finish(
        self,
        ev: &Evaluator<'_>,
        mean: bool,
        metric: &str,
    ) -> Option<FloatHistogram> {
        if self.reconciled {
            ev.annos.info(an::custom_buckets_reconciled("aggregation"));
        }
        if self.failed {
            ev.annos.warn(an::mixed_exponential_custom(metric));
            return None;
        }
        if self.reset_seen && self.not_reset_seen {
            ev.annos.warn(an::counter_reset_collision("aggregation"));
        }
        let mut h = match (mean, self.mean) {
            (true, Some(m)) => m.finish(),
            (true, None) => {
                let mut s = self.sum;
                s.div(self.count);
                s.finish()
            }
            (false, _) => self.sum.finish(),
        };
        ops::compact(&mut h);
        Some(h)
    }
}

/// Sum of the histograms of a window (`None` on incompatible schemas, with a warning).
pub(crate) fn sum(
    ev: &Evaluator<'_>,
    w: &[(i64, FloatHistogram)],
    metric: &str,
) -> Option<FloatHistogram> {
    let mut acc = HistAcc::new(&w[0].1);
    for (_, h) in &w[1..] {
        acc.add(h, false);
    }
    acc.finish(ev, false, metric)
}

/// Mean of the histograms of a window.
pub(crate) fn avg(
    ev: &Evaluator<'_>,
    w: &[(i64, FloatHistogram)],
    metric: &str,
) -> Option<FloatHistogram> {
    let mut acc = HistAcc::new(&w[0].1);
    for (_, h) in &w[1..] {
        acc.add(h, true);
    }
    acc.finish(ev, true, metric)
}

/// One sample of a mixed window: a float or a histogram.
enum Point<'a> {
    F(f64),
    H(&'a FloatHistogram),
}

/// Walks floats and histograms of a window in time order.
fn merged<'a>(f: &'a [(i64, f64)], h: &'a [(i64, FloatHistogram)]) -> Vec<Point<'a>> {
    let mut out = Vec::with_capacity(f.len() + h.len());
    let (mut i, mut j) = (0, 0);
    while i < f.len() || j < h.len() {
        if j >= h.len() || (i < f.len() && f[i].0 < h[j].0) {
            out.push(Point::F(f[i].1));
            i += 1;
        } else {
            out.push(Point::H(&h[j].1));
            j += 1;
        }
    }
    out
}

/// `changes()` over a mixed window.
pub(crate) fn changes(f: &[(i64, f64)], h: &[(i64, FloatHistogram)]) -> f64 {
    let pts = merged(f, h);
    let mut n = 0.0;
    for w in pts.windows(2) {
        let changed = match (&w[0], &w[1]) {
            (Point::F(a), Point::F(b)) => a != b && !(a.is_nan() && b.is_nan()),
            (Point::H(a), Point::H(b)) => !ops::equals(a, b),
            _ => true,
        };
        if changed {
            n += 1.0;
        }
    }
    n
}

/// `resets()` over a mixed window.
pub(crate) fn resets(f: &[(i64, f64)], h: &[(i64, FloatHistogram)]) -> f64 {
    let pts = merged(f, h);
    let mut n = 0.0;
    for w in pts.windows(2) {
        let reset = match (&w[0], &w[1]) {
            (Point::F(a), Point::F(b)) => b < a,
            (Point::H(a), Point::H(b)) => b.detect_reset_after(a),
            _ => true,
        };
        if reset {
            n += 1.0;
        }
    }
    n
}

/// Convenience: counter-reset detection as a method.
pub(crate) trait DetectReset {
    fn detect_reset_after(&self, prev: &FloatHistogram) -> bool;
}

impl DetectReset for FloatHistogram {
    fn detect_reset_after(&self, prev: &FloatHistogram) -> bool {
        ops::detect_reset(self, prev)
    }
}
