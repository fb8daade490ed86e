//! Native (sparse, exponential-bucket) histograms: the sample type shared by storage, PromQL,
//! ingest and the HTTP API.
//!
//! The model follows Prometheus's `model/histogram.FloatHistogram`: every count is an absolute
//! `f64` (integer histograms from the wire are converted on ingest), buckets are laid out by
//! spans, and bucket indexes follow the exponential schema:
//!
//! ```text
//! schema s ∈ [-4, 8]: base = 2^(2^-s); bucket i covers (base^(i-1), base^i]  (positive side)
//!                     negative bucket i covers [-base^i, -base^(i-1))
//! schema -53:          custom bucket bounds in `custom_values` (NHCB); bucket i covers
//!                      (custom_values[i-1], custom_values[i]], the last one up to +Inf
//! zero bucket:         [-zero_threshold, zero_threshold], count zero_count
//!
//! spans [{offset: 0, length: 2}, {offset: 3, length: 1}] with buckets [a, b, c]
//!   → bucket index 0 = a, 1 = b, (2, 3, 4 empty), 5 = c
//!   (the first span's offset is the first index; later offsets are gaps after the previous span)
//! ```

pub mod ops;

use std::fmt;

/// Schema of native histograms with custom bucket bounds (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// Smallest exponential schema.
pub const MIN_EXPONENTIAL_SCHEMA: i32 = -4;
/// Largest exponential schema.
pub const MAX_EXPONENTIAL_SCHEMA: i32 = 8;
/// Most buckets (positive and negative together), spans per side, or custom bounds one stored
/// histogram may have (bounds the chunk decoder's memory; client libraries default to 160
/// buckets). The storage refuses larger histograms with `InvalidArgument`.
pub const MAX_BUCKETS: usize = 1 << 14;

/// A run of consecutive buckets: `offset` is the gap to the previous span's end (for the first
/// span, the index of its first bucket), `length` the number of buckets in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Gap before this span (first span: starting bucket index). May be negative only for the
    /// first span.
    pub offset: i32,
    /// Number of consecutive buckets.
    pub length: u32,
}

impl Span {
    /// A span of `length` buckets after a gap of `offset`.
    pub fn new(offset: i32, length: u32) -> Self {
        Self { offset, length }
    }
}

/// What the producer says about counter resets between this sample and the previous one, as
/// Prometheus's `CounterResetHint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CounterResetHint {
    /// Nothing known: detect resets by comparing with the previous sample.
    #[default]
    Unknown,
    /// A counter reset happened right before this sample.
    CounterReset,
    /// No counter reset since the previous sample.
    NotCounterReset,
    /// A gauge histogram: counts may go up and down; never a counter reset.
    Gauge,
}

/// A native histogram sample with float counts.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FloatHistogram {
    /// Counter-reset information.
    pub counter_reset_hint: CounterResetHint,
    /// Resolution: `-4..=8` exponential, or [`CUSTOM_BUCKETS_SCHEMA`].
    pub schema: i32,
    /// Width of the zero bucket (observations with `|v| <= zero_threshold`).
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: f64,
    /// Total number of observations (including NaN observations, which are in no bucket).
    pub count: f64,
    /// Sum of all observations. A stale marker for a histogram series is a sample whose `sum`
    /// is the staleness NaN ([`crate::is_stale_nan`]).
    pub sum: f64,
    /// Layout of `positive_buckets`.
    pub positive_spans: Vec<Span>,
    /// Layout of `negative_buckets`.
    pub negative_spans: Vec<Span>,
    /// Absolute counts of the populated positive buckets, in index order.
    pub positive_buckets: Vec<f64>,
    /// Absolute counts of the populated negative buckets, in index order.
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the custom buckets (only with [`CUSTOM_BUCKETS_SCHEMA`]), ascending,
    /// without `+Inf`.
    pub custom_values: Vec<f64>,
}

impl FloatHistogram {
    /// True when this is a gauge histogram.
    pub fn is_gauge(&self) -> bool {
        self.counter_reset_hint == CounterResetHint::Gauge
    }

    /// True when the schema uses custom bucket bounds.
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// True when this sample is the staleness marker of a histogram series.
    pub fn is_stale(&self) -> bool {
        crate::is_stale_nan(self.sum)
    }

    /// A stale marker sample for a histogram series.
    pub fn stale_marker() -> Self {
        Self {
            sum: crate::stale_nan(),
            ..Self::default()
        }
    }

    /// The zero sample a created timestamp stands for before this one: no observations, a
    /// counter reset by definition, and this sample's schema, zero threshold and custom bounds
    /// (so it needs no new chunk layout), as Prometheus's `AppendHistogramCTZeroSample` makes it.
    pub fn ct_zero(&self) -> Self {
        Self {
            counter_reset_hint: CounterResetHint::CounterReset,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            custom_values: self.custom_values.clone(),
            ..Self::default()
        }
    }

    /// Checks the structural invariants: known schema, span lengths matching bucket counts,
    /// only the first span with a negative offset, custom values only with the custom schema
    /// and strictly ascending. Counts are not checked (float histograms may be results of
    /// arithmetic). Returns a readable reason on failure.
    pub fn check_layout(&self) -> Result<(), String> {
        if self.uses_custom_buckets() {
            if !self.negative_spans.is_empty() || !self.negative_buckets.is_empty() {
                return Err("custom-bucket histogram must not have negative buckets".into());
            }
            if self
                .custom_values
                .windows(2)
                .any(|w| w[0].partial_cmp(&w[1]).is_none_or(|o| o.is_ge()))
            {
                return Err("custom bucket bounds must be strictly ascending".into());
            }
        } else {
            if !(MIN_EXPONENTIAL_SCHEMA..=MAX_EXPONENTIAL_SCHEMA).contains(&self.schema) {
                return Err(format!("histogram has an invalid schema {}", self.schema));
            }
            if !self.custom_values.is_empty() {
                return Err("custom bucket bounds given for an exponential schema".into());
            }
        }
        check_spans(
            "positive",
            &self.positive_spans,
            self.positive_buckets.len(),
        )?;
        check_spans(
            "negative",
            &self.negative_spans,
            self.negative_buckets.len(),
        )
    }
}

fn check_spans(side: &str, spans: &[Span], buckets: usize) -> Result<(), String> {
    let mut total: u64 = 0;
    for (i, s) in spans.iter().enumerate() {
        if i > 0 && s.offset < 0 {
            return Err(format!(
                "{side} span {i} has a negative offset {}",
                s.offset
            ));
        }
        total += u64::from(s.length);
    }
    if total != buckets as u64 {
        return Err(format!(
            "{side} spans need {total} buckets, have {buckets} buckets"
        ));
    }
    Ok(())
}

impl fmt::Display for FloatHistogram {
    /// A short debugging form: `{count:3 sum:1.5 schema:0 …}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{count:{} sum:{} schema:{} zero_threshold:{} zero_count:{} positive:{:?}/{:?} negative:{:?}/{:?}",
            self.count,
            self.sum,
            self.schema,
            self.zero_threshold,
            self.zero_count,
            self.positive_spans,
            self.positive_buckets,
            self.negative_spans,
            self.negative_buckets
        )?;
        if self.uses_custom_buckets() {
            write!(f, " custom_values:{:?}", self.custom_values)?;
        }
        write!(f, " hint:{:?}}}", self.counter_reset_hint)
    }
}

/// The value of one sample: a float or a native histogram.
#[derive(Clone, Debug, PartialEq)]
pub enum SampleValue {
    /// A float sample.
    Float(f64),
    /// A native-histogram sample.
    Histogram(Box<FloatHistogram>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_checks() {
        let mut h = FloatHistogram {
            schema: 0,
            count: 3.0,
            positive_spans: vec![Span::new(-1, 2), Span::new(3, 1)],
            positive_buckets: vec![1.0, 1.0, 1.0],
            ..Default::default()
        };
        assert_eq!(h.check_layout(), Ok(()));
        h.positive_buckets.pop();
        assert!(h.check_layout().unwrap_err().contains("need 3 buckets"));
        h.positive_buckets.push(1.0);
        h.positive_spans[1].offset = -1;
        assert!(h.check_layout().is_err());
        h.positive_spans[1].offset = 0;
        h.schema = 9;
        assert!(h.check_layout().is_err());
        h.schema = CUSTOM_BUCKETS_SCHEMA;
        h.custom_values = vec![1.0, 1.0];
        assert!(h.check_layout().is_err());
        h.custom_values = vec![1.0, 2.0, 5.0];
        assert_eq!(h.check_layout(), Ok(()));
    }

    #[test]
    fn stale_marker_is_stale() {
        assert!(FloatHistogram::stale_marker().is_stale());
        assert!(!FloatHistogram::default().is_stale());
    }
}
