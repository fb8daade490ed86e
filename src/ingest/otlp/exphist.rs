//! OTel exponential histogram data point → native histogram ([`FloatHistogram`] with integer
//! counts), as Prometheus 3's `exponentialToNativeHistogram`:
//!
//! ```text
//! OTel scale s, bucket j covers (base^j, base^(j+1)]     base = 2^(2^-s)
//! Prometheus schema s, bucket i covers (base^(i-1), base^i]   → i = j + 1
//! scale > 8: schema 8, OTel buckets merged 2^(s-8) at a time: i = (j >> (s - 8)) + 1
//! scale < -4: refused (no schema that coarse)
//! ```
//!
//! Runs of empty buckets longer than two become gaps between spans (shorter runs stay as
//! zero buckets, as client_golang lays them out). The zero bucket keeps the data point's
//! `zero_threshold` when it has one (Prometheus always uses its default 1e-128 there).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use argus_storage::histogram::{MAX_EXPONENTIAL_SCHEMA, MIN_EXPONENTIAL_SCHEMA};
use argus_storage::{CounterResetHint, FloatHistogram, Span};
use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

/// Zero threshold when the data point gives none (Prometheus's `defaultZeroThreshold`).
pub const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;
/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
pub const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// Arithmetic shift right that saturates instead of overflowing for large shifts.
fn shr(i: i64, by: u32) -> i64 {
    if by >= 63 {
        if i < 0 { -1 } else { 0 }
    } else {
        i >> by
    }
}

/// Lays out one side's buckets: merged by `down` scale steps, empty runs of more than two
/// buckets turned into span gaps. Errors when an index leaves the `i32` range.
fn layout(b: &Buckets, down: u32) -> Result<(Vec<Span>, Vec<f64>), String> {
    // (prometheus index, count), indexes ascending, merged.
    let mut merged: Vec<(i64, f64)> = Vec::new();
    for (i, &c) in b.bucket_counts.iter().enumerate() {
        let j = i64::from(b.offset) + i as i64;
        let idx = shr(j, down) + 1;
        match merged.last_mut() {
            Some((last, n)) if *last == idx => *n += c as f64,
            _ => merged.push((idx, c as f64)),
        }
    }
    let mut spans: Vec<Span> = Vec::new();
    let mut counts: Vec<f64> = Vec::new();
    // Index after the last bucket written.
    let mut next: Option<i64> = None;
    for (idx, c) in merged {
        if c == 0.0 {
            continue;
        }
        let idx32 = i32::try_from(idx)
            .map_err(|_| format!("exponential histogram bucket index {idx} out of range"))?;
        match next {
            Some(n) if idx - n <= 2 => {
                counts.extend(std::iter::repeat_n(0.0, (idx - n) as usize));
                if let Some(s) = spans.last_mut() {
                    s.length += (idx - n) as u32 + 1;
                }
            }
            Some(n) => {
                let gap = i32::try_from(idx - n)
                    .map_err(|_| format!("exponential histogram gap {} too large", idx - n))?;
                spans.push(Span::new(gap, 1));
            }
            None => spans.push(Span::new(idx32, 1)),
        }
        counts.push(c);
        next = Some(idx + 1);
    }
    Ok((spans, counts))
}

/// Translates one data point. `gauge` marks a gauge histogram (delta temporality, when
/// accepted). A point flagged "no recorded value" becomes the histogram stale marker.
pub fn to_native(p: &ExponentialHistogramDataPoint, gauge: bool) -> Result<FloatHistogram, String> {
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        return Ok(FloatHistogram::stale_marker());
    }
    if p.scale < MIN_EXPONENTIAL_SCHEMA {
        return Err(format!(
            "cannot convert exponential to native histogram: scale must be >= {MIN_EXPONENTIAL_SCHEMA}, was {}",
            p.scale
        ));
    }
    let (schema, down) = if p.scale > MAX_EXPONENTIAL_SCHEMA {
        (
            MAX_EXPONENTIAL_SCHEMA,
            (p.scale - MAX_EXPONENTIAL_SCHEMA) as u32,
        )
    } else {
        (p.scale, 0)
    };
    let empty = Buckets::default();
    let (positive_spans, positive_buckets) = layout(p.positive.as_ref().unwrap_or(&empty), down)?;
    let (negative_spans, negative_buckets) = layout(p.negative.as_ref().unwrap_or(&empty), down)?;
    let zero_threshold = if p.zero_threshold > 0.0 && p.zero_threshold.is_finite() {
        p.zero_threshold
    } else {
        DEFAULT_ZERO_THRESHOLD
    };
    let h = FloatHistogram {
        counter_reset_hint: if gauge {
            CounterResetHint::Gauge
        } else {
            CounterResetHint::Unknown
        },
        schema,
        zero_threshold,
        zero_count: p.zero_count as f64,
        count: p.count as f64,
        sum: p.sum.unwrap_or(0.0),
        positive_spans,
        negative_spans,
        positive_buckets,
        negative_buckets,
        custom_values: Vec::new(),
    };
    h.check_layout()?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn point(scale: i32, offset: i32, counts: &[u64]) -> ExponentialHistogramDataPoint {
        ExponentialHistogramDataPoint {
            scale,
            count: counts.iter().sum::<u64>() + 2,
            sum: Some(10.5),
            zero_count: 2,
            positive: Some(Buckets {
                offset,
                bucket_counts: counts.to_vec(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn offsets_become_spans() {
        let h = to_native(&point(3, -2, &[1, 0, 2, 0, 0, 0, 4]), false).unwrap();
        assert_eq!(h.schema, 3);
        // OTel index -2 → Prometheus index -1; three zeros in a row split the span.
        assert_eq!(h.positive_spans, vec![Span::new(-1, 3), Span::new(3, 1)]);
        assert_eq!(h.positive_buckets, vec![1.0, 0.0, 2.0, 4.0]);
        assert_eq!((h.count, h.sum, h.zero_count), (9.0, 10.5, 2.0));
        assert_eq!(h.zero_threshold, DEFAULT_ZERO_THRESHOLD);
        assert!(h.negative_spans.is_empty() && h.negative_buckets.is_empty());
        assert_eq!(h.counter_reset_hint, CounterResetHint::Unknown);
    }

    #[test]
    fn scale_above_8_is_downscaled() {
        // Scale 10 → schema 8, four OTel buckets per Prometheus bucket.
        // OTel indexes 3..=8 → (j >> 2) + 1 = 1,2,2,2,2,3.
        let h = to_native(&point(10, 3, &[1, 1, 1, 1, 1, 1]), false).unwrap();
        assert_eq!(h.schema, 8);
        assert_eq!(h.positive_spans, vec![Span::new(1, 3)]);
        assert_eq!(h.positive_buckets, vec![1.0, 4.0, 1.0]);
        // Negative offsets shift arithmetically: j = -5..=-1 → (j >> 1) + 1 = -2,-1,-1,0,0.
        let h = to_native(&point(9, -5, &[1, 1, 1, 1, 1]), false).unwrap();
        assert_eq!(h.positive_spans, vec![Span::new(-2, 3)]);
        assert_eq!(h.positive_buckets, vec![1.0, 2.0, 2.0]);
        // Absurd scales saturate instead of overflowing.
        let h = to_native(&point(i32::MAX, 7, &[5]), false).unwrap();
        assert_eq!(h.positive_spans, vec![Span::new(1, 1)]);
    }

    #[test]
    fn negative_buckets_zero_threshold_gauge_and_stale() {
        let mut p = point(0, 0, &[]);
        p.negative = Some(Buckets {
            offset: 1,
            bucket_counts: vec![3],
        });
        p.zero_threshold = 0.001;
        let h = to_native(&p, true).unwrap();
        assert_eq!(h.negative_spans, vec![Span::new(2, 1)]);
        assert_eq!(h.negative_buckets, vec![3.0]);
        assert_eq!(h.zero_threshold, 0.001);
        assert!(h.is_gauge());
        p.flags = FLAG_NO_RECORDED_VALUE;
        assert!(to_native(&p, false).unwrap().is_stale());
    }

    #[test]
    fn scale_below_minus_4_is_refused() {
        let err = to_native(&point(-5, 0, &[1]), false).unwrap_err();
        assert!(err.contains("scale must be >= -4, was -5"), "{err}");
    }
}
