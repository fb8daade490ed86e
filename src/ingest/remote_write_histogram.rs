//! Remote-written native histograms (`prometheus.Histogram`, 1.0 and 2.0) to storage
//! [`FloatHistogram`]s: integer bucket deltas become absolute counts, and the histogram is
//! validated as Prometheus's `ValidateHistogram`/`ValidateFloatHistogram` do, with their error
//! messages (the write handler answers 400 with them).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::prompb::{BucketSpan, Histogram};
use argus_storage::histogram::{
    CUSTOM_BUCKETS_SCHEMA, MAX_BUCKETS, MAX_EXPONENTIAL_SCHEMA, MIN_EXPONENTIAL_SCHEMA,
};
use argus_storage::{CounterResetHint, FloatHistogram, Span};

const SPANS_MISMATCH: &str = "histogram spans specify different number of buckets than provided";
const NEGATIVE_OFFSET: &str = "histogram has a span whose offset is negative";
const NEGATIVE_COUNT: &str = "histogram has a bucket whose observation count is negative";
const COUNT_NOT_BIG_ENOUGH: &str = "histogram's observation count should be at least the number of observations found in the buckets";
const COUNT_MISMATCH: &str = "histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)";

/// True when the message is a float histogram (`count_float` set).
pub fn is_float(h: &Histogram) -> bool {
    h.count_float.is_some()
}

fn spans(side: &str, wire: &[BucketSpan], buckets: usize) -> Result<Vec<Span>, String> {
    if wire.len() > MAX_BUCKETS {
        return Err(format!(
            "{side} side: {} spans, more than the limit of {MAX_BUCKETS}",
            wire.len()
        ));
    }
    let mut need: u64 = 0;
    for (i, s) in wire.iter().enumerate() {
        if i > 0 && s.offset < 0 {
            return Err(format!(
                "{side} side: span number {} with offset {}: {NEGATIVE_OFFSET}",
                i + 1,
                s.offset
            ));
        }
        need += u64::from(s.length);
    }
    if need != buckets as u64 {
        return Err(format!(
            "{side} side: spans need {need} buckets, have {buckets} buckets: {SPANS_MISMATCH}"
        ));
    }
    Ok(wire.iter().map(|s| Span::new(s.offset, s.length)).collect())
}

/// Absolute counts from integer deltas; their sum into `total`.
fn from_deltas(side: &str, deltas: &[i64], total: &mut u128) -> Result<Vec<f64>, String> {
    let mut cur: i64 = 0;
    let mut out = Vec::with_capacity(deltas.len());
    for (i, &d) in deltas.iter().enumerate() {
        cur = cur
            .checked_add(d)
            .ok_or_else(|| format!("{side} side: bucket number {} overflows", i + 1))?;
        if cur < 0 {
            return Err(format!(
                "{side} side: bucket number {} has observation count of {cur}: {NEGATIVE_COUNT}",
                i + 1
            ));
        }
        *total += cur as u128;
        out.push(cur as f64);
    }
    Ok(out)
}

fn check_float_counts(side: &str, counts: &[f64], total: &mut f64) -> Result<(), String> {
    for (i, &c) in counts.iter().enumerate() {
        if c < 0.0 {
            return Err(format!(
                "{side} side: bucket number {} has observation count of {c}: {NEGATIVE_COUNT}",
                i + 1
            ));
        }
        *total += c;
    }
    Ok(())
}

/// Converts and validates one wire histogram. The error is the message for the client.
pub fn to_float_histogram(h: &Histogram) -> Result<FloatHistogram, String> {
    let custom = h.schema == CUSTOM_BUCKETS_SCHEMA;
    if !custom && !(MIN_EXPONENTIAL_SCHEMA..=MAX_EXPONENTIAL_SCHEMA).contains(&h.schema) {
        return Err(format!(
            "histogram has an invalid schema, which must be between {MIN_EXPONENTIAL_SCHEMA} \
             and {MAX_EXPONENTIAL_SCHEMA}, got {}",
            h.schema
        ));
    }
    let float = is_float(h);
    let (npos, nneg) = if float {
        (h.positive_counts.len(), h.negative_counts.len())
    } else {
        (h.positive_deltas.len(), h.negative_deltas.len())
    };
    if npos + nneg > MAX_BUCKETS || h.custom_values.len() > MAX_BUCKETS {
        return Err(format!(
            "histogram has {} buckets and {} custom bounds, more than the limit of {MAX_BUCKETS}",
            npos + nneg,
            h.custom_values.len()
        ));
    }
    let negative_spans = spans("negative", &h.negative_spans, nneg)?;
    let positive_spans = spans("positive", &h.positive_spans, npos)?;
    let mut out = FloatHistogram {
        counter_reset_hint: match h.reset_hint {
            1 => CounterResetHint::CounterReset,
            2 => CounterResetHint::NotCounterReset,
            3 => CounterResetHint::Gauge,
            _ => CounterResetHint::Unknown,
        },
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        sum: h.sum,
        positive_spans,
        negative_spans,
        custom_values: h.custom_values.clone(),
        ..Default::default()
    };
    if float {
        out.count = h.count_float.unwrap_or(0.0);
        out.zero_count = h.zero_count_float.unwrap_or(0.0);
        let mut total = out.zero_count;
        check_float_counts("negative", &h.negative_counts, &mut total)?;
        check_float_counts("positive", &h.positive_counts, &mut total)?;
        out.negative_buckets = h.negative_counts.clone();
        out.positive_buckets = h.positive_counts.clone();
        if out.count < 0.0 || out.zero_count < 0.0 {
            return Err(NEGATIVE_COUNT.to_string());
        }
    } else {
        let count = h.count_int.unwrap_or(0);
        let zero = h.zero_count_int.unwrap_or(0);
        let mut total = u128::from(zero);
        out.negative_buckets = from_deltas("negative", &h.negative_deltas, &mut total)?;
        out.positive_buckets = from_deltas("positive", &h.positive_deltas, &mut total)?;
        if h.sum.is_nan() {
            if total > u128::from(count) {
                return Err(format!(
                    "{total} observations found in buckets, but the Count field is {count}: \
                     {COUNT_NOT_BIG_ENOUGH}"
                ));
            }
        } else if total != u128::from(count) {
            return Err(format!(
                "{total} observations found in buckets, but the Count field is {count}: \
                 {COUNT_MISMATCH}"
            ));
        }
        out.count = count as f64;
        out.zero_count = zero as f64;
    }
    if custom {
        if !out.negative_spans.is_empty() || !out.negative_buckets.is_empty() {
            return Err("histogram with custom buckets must not have negative buckets".into());
        }
        if out.custom_values.iter().any(|v| !v.is_finite()) {
            return Err("histogram custom bounds must be finite".into());
        }
        if out
            .custom_values
            .windows(2)
            .any(|w| matches!(w, [a, b] if a >= b))
        {
            return Err("histogram custom bounds must be in strictly increasing order".into());
        }
        // The highest bucket index may be `len(custom_values)` (the +Inf bucket).
        let mut idx: i64 = -1;
        for (i, s) in out.positive_spans.iter().enumerate() {
            if i == 0 && s.offset < 0 {
                return Err(format!(
                    "positive side: span number 1 with offset {}: {NEGATIVE_OFFSET}",
                    s.offset
                ));
            }
            idx += i64::from(s.offset) + i64::from(s.length);
        }
        if idx > out.custom_values.len() as i64 {
            return Err("histogram custom bounds are too few".into());
        }
    } else if !out.custom_values.is_empty() {
        return Err("histogram with an exponential schema must not have custom bounds".into());
    }
    Ok(out)
}

/// The wire form of a stored histogram at `t` (remote read, the sender): integer counts and
/// bucket deltas when every count is a whole number, float counts otherwise.
pub fn from_float_histogram(t: i64, h: &FloatHistogram) -> Histogram {
    let whole = |v: f64| (0.0..=9_007_199_254_740_992.0).contains(&v) && v.fract() == 0.0;
    let integral = whole(h.count)
        && whole(h.zero_count)
        && h.positive_buckets
            .iter()
            .chain(&h.negative_buckets)
            .all(|&v| whole(v));
    let deltas = |b: &[f64]| {
        let mut prev = 0i64;
        b.iter()
            .map(|&v| {
                let v = v as i64;
                let d = v - prev;
                prev = v;
                d
            })
            .collect::<Vec<i64>>()
    };
    let wire_spans = |s: &[Span]| {
        s.iter()
            .map(|s| BucketSpan {
                offset: s.offset,
                length: s.length,
            })
            .collect::<Vec<_>>()
    };
    let mut out = Histogram {
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        negative_spans: wire_spans(&h.negative_spans),
        positive_spans: wire_spans(&h.positive_spans),
        reset_hint: match h.counter_reset_hint {
            CounterResetHint::Unknown => 0,
            CounterResetHint::CounterReset => 1,
            CounterResetHint::NotCounterReset => 2,
            CounterResetHint::Gauge => 3,
        },
        timestamp: t,
        custom_values: h.custom_values.clone(),
        ..Default::default()
    };
    if integral {
        out.count_int = Some(h.count as u64);
        out.zero_count_int = Some(h.zero_count as u64);
        out.negative_deltas = deltas(&h.negative_buckets);
        out.positive_deltas = deltas(&h.positive_buckets);
    } else {
        out.count_float = Some(h.count);
        out.zero_count_float = Some(h.zero_count);
        out.negative_counts = h.negative_buckets.clone();
        out.positive_counts = h.positive_buckets.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan { offset, length }
    }

    fn int_hist() -> Histogram {
        Histogram {
            count_int: Some(11),
            zero_count_int: Some(2),
            sum: 18.4,
            schema: 1,
            zero_threshold: 1e-128,
            positive_spans: vec![span(0, 2), span(1, 2)],
            positive_deltas: vec![1, 1, -1, 0],
            negative_spans: vec![span(0, 1)],
            negative_deltas: vec![4],
            reset_hint: 2,
            timestamp: 5,
            ..Default::default()
        }
    }

    #[test]
    fn integer_deltas_become_absolute_counts() {
        let h = to_float_histogram(&int_hist()).unwrap();
        assert_eq!(from_float_histogram(5, &h), int_hist(), "round trip");
        assert_eq!(h.positive_buckets, vec![1.0, 2.0, 1.0, 1.0]);
        assert_eq!(h.negative_buckets, vec![4.0]);
        assert_eq!((h.count, h.zero_count), (11.0, 2.0));
        assert_eq!(h.counter_reset_hint, CounterResetHint::NotCounterReset);
        assert_eq!(h.positive_spans, vec![Span::new(0, 2), Span::new(1, 2)]);
        assert_eq!(h.check_layout(), Ok(()));
    }

    #[test]
    fn invalid_histograms_are_refused_with_prometheus_messages() {
        let check = |f: &dyn Fn(&mut Histogram), want: &str| {
            let mut h = int_hist();
            f(&mut h);
            let err = to_float_histogram(&h).unwrap_err();
            assert!(err.contains(want), "want {want:?} in {err:?}");
        };
        check(
            &|h| h.positive_deltas.pop().map(drop).unwrap_or(()),
            "positive side: spans need 4 buckets, have 3 buckets: histogram spans specify",
        );
        check(
            &|h| h.schema = 9,
            "invalid schema, which must be between -4 and 8, got 9",
        );
        check(
            &|h| h.positive_spans[1].offset = -1,
            "positive side: span number 2 with offset -1: histogram has a span whose offset",
        );
        check(
            &|h| h.positive_deltas[1] = -5,
            "bucket number 2 has observation count of -4",
        );
        check(
            &|h| h.count_int = Some(12),
            "11 observations found in buckets, but the Count field is 12",
        );
        check(
            &|h| {
                h.sum = f64::NAN;
                h.count_int = Some(10);
            },
            "should be at least the number",
        );
        check(
            &|h| {
                h.schema = -53;
                h.custom_values = vec![1.0, 0.5];
            },
            "must not have negative buckets",
        );
        check(
            &|h| {
                h.schema = -53;
                h.negative_spans.clear();
                h.negative_deltas.clear();
                h.count_int = Some(7);
                h.custom_values = vec![1.0, 2.0];
            },
            "custom bounds are too few",
        );
    }

    #[test]
    fn float_histograms_keep_their_counts() {
        let h = Histogram {
            count_float: Some(3.5),
            zero_count_float: Some(0.5),
            sum: 1.0,
            schema: -53,
            positive_spans: vec![span(0, 3)],
            positive_counts: vec![1.0, 0.5, 1.5],
            custom_values: vec![0.1, 1.0],
            reset_hint: 3,
            ..Default::default()
        };
        let f = to_float_histogram(&h).unwrap();
        assert!(f.is_gauge());
        assert_eq!(f.positive_buckets, vec![1.0, 0.5, 1.5]);
        assert_eq!(f.custom_values, vec![0.1, 1.0]);
        let mut bad = h.clone();
        bad.positive_counts[0] = -1.0;
        assert!(to_float_histogram(&bad).unwrap_err().contains("negative"));
    }
}
