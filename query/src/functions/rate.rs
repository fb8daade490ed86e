//! Counter and gauge functions over a window: rate, increase, delta, irate, idelta, deriv,
//! predict_linear, changes, resets, double_exponential_smoothing.

use super::stats::linear_regression;
use crate::error::{Error, Result};

/// rate/increase/delta with Prometheus's extrapolation. The window is `(ws, we]` in ms.
/// `no_resets` says the caller knows the window holds no counter reset (the scan for them is
/// skipped; the result is the same).
pub(crate) fn extrapolated_rate(
    s: &[(i64, f64)],
    ws: i64,
    we: i64,
    is_counter: bool,
    is_rate: bool,
    no_resets: bool,
) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.1 - first.1;
    if is_counter && !no_resets {
        let mut prev = first.1;
        for &(_, v) in &s[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut to_start = (first.0 - ws) as f64 / 1e3;
    let mut to_end = (we - last.0) as f64 / 1e3;
    let sampled = (last.0 - first.0) as f64 / 1e3;
    let avg = sampled / (s.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= (we - ws) as f64 / 1e3;
    }
    Some(result * factor)
}

/// irate/idelta from the last two samples.
pub(crate) fn instant_value(s: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (prev, last) = (s[s.len() - 2], s[s.len() - 1]);
    let mut v = last.1 - prev.1;
    if is_rate && last.1 < prev.1 {
        v = last.1;
    }
    let dt = last.0 - prev.0;
    if dt == 0 {
        return None;
    }
    if is_rate {
        v /= dt as f64 / 1e3;
    }
    Some(v)
}

pub(crate) fn deriv(s: &[(i64, f64)]) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    Some(linear_regression(s, s[0].0).0)
}

pub(crate) fn predict_linear(s: &[(i64, f64)], t: i64, duration: f64) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(s, t);
    Some(slope * duration + intercept)
}

pub(crate) fn changes(s: &[(i64, f64)]) -> f64 {
    let mut n = 0.0;
    for w in s.windows(2) {
        let (a, b) = (w[0].1, w[1].1);
        if a != b && !(a.is_nan() && b.is_nan()) {
            n += 1.0;
        }
    }
    n
}

pub(crate) fn resets(s: &[(i64, f64)]) -> f64 {
    s.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64
}

/// Holt's linear smoothing (`double_exponential_smoothing`, formerly `holt_winters`).
pub(crate) fn double_exponential_smoothing(
    s: &[(i64, f64)],
    sf: f64,
    tf: f64,
) -> Result<Option<f64>> {
    if !(sf > 0.0 && sf < 1.0) {
        return Err(Error::execution(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if !(tf > 0.0 && tf < 1.0) {
        return Err(Error::execution(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    if s.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1) = (0.0, s[0].1);
    let mut b = s[1].1 - s[0].1;
    for (i, &(_, v)) in s.iter().enumerate().skip(1) {
        let x = sf * v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_extrapolates_to_window() {
        // 100..=125 every 10s in a 60s window ending at 50s: 5 per 10s.
        let s: Vec<(i64, f64)> = (0..=5)
            .map(|i| (i * 10_000, 100.0 + i as f64 * 5.0))
            .collect();
        let r = extrapolated_rate(&s, -10_000, 50_000, true, true, false).unwrap();
        assert!((r - 0.5).abs() < 1e-9, "{r}");
        assert_eq!(changes(&[(0, 1.0), (1, 2.0), (2, 2.0)]), 1.0);
        assert_eq!(resets(&[(0, 3.0), (1, 1.0), (2, 2.0)]), 1.0);
    }
}
