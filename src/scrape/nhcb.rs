//! Classic histograms → native histograms with custom buckets (NHCB, schema -53) at scrape
//! time: the `convert_classic_histograms_to_nhcb` scrape option, as Prometheus 3's
//! `textparse.NHCBParser` and `util/convertnhcb` do it.
//!
//! ```text
//! # TYPE rpc histogram                      rpc{job="a"} one native histogram:
//! rpc_bucket{job="a",le="0.1"}  3     →       custom_values [0.1, 1]
//! rpc_bucket{job="a",le="1"}    5             buckets [3, 2, 1] (per bucket, not cumulative;
//! rpc_bucket{job="a",le="+Inf"} 6             the last one up to +Inf)
//! rpc_sum{job="a"}              2.5           sum 2.5, count 6
//! rpc_count{job="a"}            6
//! ```
//!
//! Only families whose `# TYPE` is `histogram` are converted (not gauge histograms). The series
//! of one histogram are collected while they come in a row: the same base name and the same
//! labels apart from `le`; anything else (another series, a comment or metadata line, the end
//! of the body) ends it. A histogram whose buckets are not cumulative, whose count disagrees
//! with its `+Inf` bucket, or that has neither buckets nor a count is dropped, as Prometheus
//! drops it. The classic series are kept only with `always_scrape_classic_histograms`.
//!
//! The layout keeps every bucket, empty ones too, so a target's histogram keeps one layout
//! from scrape to scrape and its chunk never re-encodes; queries see the same buckets either way
//! (empty buckets count nothing).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::expfmt::MetricType;
use super::protobuf::{Sample, Value};
use argus_storage::histogram::{CUSTOM_BUCKETS_SCHEMA, MAX_BUCKETS};
use argus_storage::{FloatHistogram, Label, METRIC_NAME, Span};

/// The buckets, count and sum of one classic histogram, collected series by series
/// (Prometheus's `convertnhcb.TempHistogram`).
#[derive(Debug, Default)]
pub(crate) struct Classic {
    /// `(le, cumulative count)`, ascending by `le`.
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: f64,
    /// A bucket broke the rules: the histogram is dropped.
    invalid: bool,
}

impl Classic {
    /// Forgets everything, keeping the buffer.
    pub(crate) fn reset(&mut self) {
        self.buckets.clear();
        self.count = None;
        self.sum = 0.0;
        self.invalid = false;
    }

    /// Records bucket `le` with cumulative count `count`. Buckets may come in any order; a
    /// repeated `le` keeps the first count.
    pub(crate) fn set_bucket(&mut self, le: f64, count: f64) {
        if self.invalid || le.is_nan() || count.is_nan() || count < 0.0 {
            self.invalid = true;
            return;
        }
        let i = self.buckets.partition_point(|b| b.0 < le);
        if self.buckets.get(i).is_some_and(|b| b.0 == le) {
            return;
        }
        let below = i.checked_sub(1).and_then(|j| self.buckets.get(j));
        let above = self.buckets.get(i);
        if below.is_some_and(|b| count < b.1) || above.is_some_and(|b| count > b.1) {
            self.invalid = true;
            return;
        }
        self.buckets.insert(i, (le, count));
    }

    /// Records the `_count` series.
    pub(crate) fn set_count(&mut self, count: f64) {
        if count.is_nan() || count < 0.0 {
            self.invalid = true;
        }
        self.count = Some(count);
    }

    /// Records the `_sum` series.
    pub(crate) fn set_sum(&mut self, sum: f64) {
        self.sum = sum;
    }

    /// The native histogram, or `None` when the collected series do not make one.
    pub(crate) fn convert(&self) -> Option<FloatHistogram> {
        if self.invalid {
            return None;
        }
        let last = self.buckets.last();
        let count = match (self.count, last) {
            (Some(c), _) => c,
            (None, Some(b)) => b.1,
            (None, None) => return None,
        };
        let has_inf = last.is_some_and(|b| b.0 == f64::INFINITY);
        let n = self.buckets.len() + usize::from(!has_inf);
        if n > MAX_BUCKETS {
            return None;
        }
        // The +Inf bucket holds the count; without one, it is added with the count.
        if has_inf && last.is_some_and(|b| b.1 != count) {
            return None;
        }
        let mut custom_values = Vec::with_capacity(n - 1);
        let mut buckets = Vec::with_capacity(n);
        let mut prev = 0.0;
        for &(le, c) in &self.buckets {
            if le != f64::INFINITY {
                custom_values.push(le);
            }
            buckets.push(c - prev);
            prev = c;
        }
        if !has_inf {
            if count < prev {
                return None;
            }
            buckets.push(count - prev);
        }
        let h = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count,
            sum: self.sum,
            positive_spans: vec![Span::new(0, n as u32)],
            positive_buckets: buckets,
            custom_values,
            ..Default::default()
        };
        // Custom bounds must ascend strictly and be finite (a `-Inf` bucket is refused).
        if h.check_layout().is_err() || h.custom_values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        Some(h)
    }
}

/// The native histogram of the classic buckets of protobuf histogram `h` (`None` when they do
/// not make one), as the classic series the protobuf parser would give convert.
pub(crate) fn from_protobuf(h: &crate::expose::proto::Histogram) -> Option<FloatHistogram> {
    let mut c = Classic::default();
    for b in &h.bucket {
        let count = b
            .cumulative_count_float
            .unwrap_or_else(|| b.cumulative_count.unwrap_or(0) as f64);
        c.set_bucket(b.upper_bound.unwrap_or(0.0), count);
    }
    c.set_count(h.count());
    c.set_sum(h.sample_sum.unwrap_or(0.0));
    c.convert()
}

/// Which series of a classic histogram a name is, and the histogram's name.
fn split_suffix(name: &str) -> Option<(&str, Suffix)> {
    [
        ("_bucket", Suffix::Bucket),
        ("_sum", Suffix::Sum),
        ("_count", Suffix::Count),
    ]
    .into_iter()
    .find_map(|(s, kind)| name.strip_suffix(s).map(|base| (base, kind)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Suffix {
    Bucket,
    Sum,
    Count,
}

/// The text-format side of the conversion: fed the entries of one body in order, it collects
/// the classic histogram series of `histogram` families and hands back each finished native
/// histogram as a [`Sample`] to append (its cache key cannot clash with series text).
#[derive(Debug, Default)]
pub(crate) struct Collector {
    /// Family name and type of the last `# TYPE` line.
    family: String,
    kind: Option<MetricType>,
    /// The histogram being collected: its labels (base name, no `le`), timestamp, contents.
    collecting: bool,
    labels: Vec<Label>,
    timestamp: Option<i64>,
    hist: Classic,
    scratch: Vec<Label>,
}

impl Collector {
    /// A `# TYPE` line: ends the current histogram (returned, if it converts).
    pub(crate) fn on_type(&mut self, family: &str, kind: MetricType) -> Option<Sample> {
        let done = self.finish();
        self.family.clear();
        self.family.push_str(family);
        self.kind = Some(kind);
        done
    }

    /// Whether a series named `name` may belong to a histogram the collector converts (when
    /// not, the caller skips [`Collector::on_series`] and calls [`Collector::finish`]).
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.kind == Some(MetricType::Histogram)
            && split_suffix(name).is_some_and(|(base, _)| base == self.family)
    }

    /// A series of the current `histogram` family with exposed `labels` (sorted, `__name__`
    /// included), `value` and timestamp. Returns the histogram this series ended, if any, and
    /// whether the series was taken into a histogram (the caller then drops it unless classic
    /// series are kept).
    pub(crate) fn on_series(
        &mut self,
        labels: &[Label],
        value: f64,
        timestamp: Option<i64>,
    ) -> (Option<Sample>, bool) {
        let name = labels
            .iter()
            .find(|l| l.name == METRIC_NAME)
            .map_or("", |l| l.value.as_str());
        let Some((base, suffix)) = split_suffix(name) else {
            return (self.finish(), false);
        };
        let le = match suffix {
            Suffix::Bucket => {
                match labels
                    .iter()
                    .find(|l| l.name == "le")
                    .and_then(|l| argus_query::gofloat::parse(&l.value))
                {
                    Some(le) if !le.is_nan() => Some(le),
                    // A `_bucket` series without a usable `le` is an ordinary series.
                    _ => return (self.finish(), false),
                }
            }
            _ => None,
        };
        // The histogram's labels: the base name and every label but `le`.
        self.scratch.clear();
        for l in labels {
            if l.name == METRIC_NAME {
                self.scratch.push(Label::new(METRIC_NAME, base));
            } else if l.name != "le" {
                self.scratch.push(l.clone());
            }
        }
        let mut done = None;
        if self.collecting && self.scratch != self.labels {
            done = self.finish();
        }
        if !self.collecting {
            self.collecting = true;
            std::mem::swap(&mut self.labels, &mut self.scratch);
            self.timestamp = timestamp;
            self.hist.reset();
        }
        match (suffix, le) {
            (Suffix::Bucket, Some(le)) => self.hist.set_bucket(le, value),
            (Suffix::Count, _) => self.hist.set_count(value),
            (Suffix::Sum, _) => self.hist.set_sum(value),
            (Suffix::Bucket, None) => {}
        }
        (done, true)
    }

    /// Ends the current histogram (at another kind of entry or the end of the body): the
    /// native histogram to append, if the collected series make one.
    pub(crate) fn finish(&mut self) -> Option<Sample> {
        if !self.collecting {
            return None;
        }
        self.collecting = false;
        let h = self.hist.convert()?;
        Some(sample(std::mem::take(&mut self.labels), h, self.timestamp))
    }
}

/// A converted histogram as a sample: `labels` sorted, the key marked as NHCB (0xff cannot
/// start series text, and protobuf keys never start with it).
pub(crate) fn sample(labels: Vec<Label>, h: FloatHistogram, timestamp: Option<i64>) -> Sample {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(b"\xffnhcb");
    for l in &labels {
        key.push(0xff);
        key.extend_from_slice(l.name.as_bytes());
        key.push(0xff);
        key.extend_from_slice(l.value.as_bytes());
    }
    Sample {
        key,
        labels,
        value: Value::Histogram(Box::new(h)),
        timestamp,
        // A converted histogram carries no created timestamp (no zero sample is injected).
        start_ms: None,
    }
}

#[cfg(test)]
mod tests;
