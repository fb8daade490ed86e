//! `*_over_time` functions over a window of samples.

use super::stats::{kahan_inc, quantile};

pub(crate) fn avg(s: &[(i64, f64)]) -> f64 {
    let (mut sum, mut count) = (s[0].1, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, &(_, f)) in s.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(f, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(f / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

pub(crate) fn sum(s: &[(i64, f64)]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for &(_, f) in s {
        (sum, c) = kahan_inc(f, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

pub(crate) fn min(s: &[(i64, f64)]) -> f64 {
    let mut m = s[0].1;
    for &(_, f) in s {
        if f < m || m.is_nan() {
            m = f;
        }
    }
    m
}

pub(crate) fn max(s: &[(i64, f64)]) -> f64 {
    let mut m = s[0].1;
    for &(_, f) in s {
        if f > m || m.is_nan() {
            m = f;
        }
    }
    m
}

/// Population variance with Kahan-compensated Welford updates.
pub(crate) fn stdvar(s: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, f) in s {
        count += 1.0;
        let delta = f - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (f - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

pub(crate) fn quantile_of(q: f64, s: &[(i64, f64)], buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend(s.iter().map(|p| p.1));
    quantile(q, buf)
}

/// Median absolute deviation.
pub(crate) fn mad(s: &[(i64, f64)], buf: &mut Vec<f64>) -> f64 {
    if s.iter().any(|p| p.1.is_nan()) {
        return f64::NAN;
    }
    let median = quantile_of(0.5, s, buf);
    buf.clear();
    buf.extend(s.iter().map(|p| (p.1 - median).abs()));
    quantile(0.5, buf)
}

/// Timestamp (s) of the last minimum/maximum.
pub(crate) fn ts_of_extreme(s: &[(i64, f64)], want_max: bool) -> f64 {
    let (mut best_t, mut best) = (s[0].0, s[0].1);
    for &(t, f) in s {
        let better = if want_max { f >= best } else { f <= best };
        if better || best.is_nan() {
            best = f;
            best_t = t;
        }
    }
    best_t as f64 / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let s = [(0, 1.0), (1, 2.0), (2, 6.0)];
        assert_eq!(avg(&s), 3.0);
        assert_eq!(sum(&s), 9.0);
        assert_eq!(min(&s), 1.0);
        assert_eq!(max(&s), 6.0);
        assert!((stdvar(&s) - 14.0 / 3.0).abs() < 1e-12);
        let mut buf = Vec::new();
        assert_eq!(mad(&s, &mut buf), 1.0);
    }
}
