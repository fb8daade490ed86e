//! Result values: the public shapes ([`Value`]) and the evaluator's internal ones ([`Val`]).

use argus_storage::{FloatHistogram, Label, Labels, METRIC_NAME};

/// One series in an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    /// Labels (metric name included unless dropped by the expression).
    pub labels: Labels,
    /// Timestamp, ms.
    pub t: i64,
    /// Value (0 for a histogram sample).
    pub v: f64,
    /// The native histogram when this is a histogram sample (then `v` is meaningless).
    pub h: Option<Box<FloatHistogram>>,
}

/// One series in a range vector / range query result.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSeries {
    /// Labels.
    pub labels: Labels,
    /// `(t ms, value)` in time order.
    pub points: Vec<(i64, f64)>,
    /// `(t ms, histogram)` in time order (a series may mix floats and histograms at different
    /// timestamps).
    pub histograms: Vec<(i64, FloatHistogram)>,
}

/// A query result, in the shapes of Prometheus's HTTP API (`resultType`).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `scalar`: `(t ms, value)`.
    Scalar(i64, f64),
    /// `string`: `(t ms, value)`.
    String(i64, String),
    /// `vector`.
    Vector(Vec<VectorSample>),
    /// `matrix`, series sorted by labels.
    Matrix(Vec<MatrixSeries>),
}

/// A series inside the evaluator. For instant-vector values the points sit on the evaluation
/// steps; for range-vector values (top-level selectors and subqueries) they are raw samples.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct Series {
    pub labels: Labels,
    /// Delayed `__name__` removal: the name is dropped when the query finishes.
    pub drop_name: bool,
    pub points: Vec<(i64, f64)>,
    /// Histogram points, in time order; at any one timestamp a series has a float or a
    /// histogram, never both.
    pub hists: Vec<(i64, FloatHistogram)>,
}

impl Series {
    pub(crate) fn new(labels: Labels, drop_name: bool) -> Self {
        Self {
            labels,
            drop_name,
            points: Vec::new(),
            hists: Vec::new(),
        }
    }

    /// Empties the series and gives it `labels`, reusing its buffers (label strings, points).
    pub(crate) fn reset(&mut self, labels: &Labels, drop_name: bool) {
        self.labels.clone_from(labels);
        self.drop_name = drop_name;
        self.points.clear();
        self.hists.clear();
    }

    /// True when the series has neither float nor histogram points.
    pub(crate) fn is_empty(&self) -> bool {
        self.points.is_empty() && self.hists.is_empty()
    }

    /// Number of points of both kinds.
    pub(crate) fn len(&self) -> usize {
        self.points.len() + self.hists.len()
    }

    /// Applies the delayed name removal in place: dropping the name also drops the
    /// `__type__` and `__unit__` metadata labels that describe it.
    pub(crate) fn finish_name(&mut self) {
        if self.drop_name {
            strip_name(&mut self.labels);
            self.drop_name = false;
        }
    }
}

/// An evaluated expression over all steps of the current evaluation range.
#[derive(Debug)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    /// A string literal.
    String(String),
    /// An instant vector over the steps.
    Vector(Vec<Series>),
    /// A range vector (only as a top-level instant-query result).
    Matrix(Vec<Series>),
}

impl Val {
    /// Number of samples held, for max-samples accounting.
    pub(crate) fn samples(&self) -> usize {
        match self {
            Val::Scalar(v) => v.len(),
            Val::String(_) => 1,
            Val::Vector(s) | Val::Matrix(s) => s.iter().map(|s| s.len()).sum(),
        }
    }
}

/// Drops the metric name and the `__type__` and `__unit__` metadata labels that describe it.
fn strip_name(l: &mut Labels) {
    l.remove(METRIC_NAME);
    l.remove("__type__");
    l.remove("__unit__");
}

/// A map keyed by label sets with a fast seeded hasher (SipHash showed in query profiles).
pub(crate) type LabelsMap<V> = std::collections::HashMap<Labels, V, foldhash::fast::RandomState>;

/// Writes the pairs of `l` that `keep` accepts into `out`, reusing its buffers: a key refilled
/// per series (grouping, matching) allocates only when it grows.
pub(crate) fn filter_labels_into(l: &Labels, keep: impl Fn(&Label) -> bool, out: &mut Labels) {
    let mut v = std::mem::take(out).into_vec();
    let mut n = 0;
    for p in l.iter().filter(|p| keep(p)) {
        match v.get_mut(n) {
            Some(d) => d.clone_from(p),
            None => v.push(p.clone()),
        }
        n += 1;
    }
    v.truncate(n);
    *out = Labels::from_sorted(v);
}

/// Formats a float the way Go's `strconv.FormatFloat(v, 'f', -1, 64)` does.
pub(crate) fn format_float(v: f64) -> String {
    crate::gofloat::format_f(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_format() {
        let check = |v: f64, want: &str| assert_eq!(format_float(v), want);
        check(1.0, "1");
        check(0.5, "0.5");
        check(-2.25, "-2.25");
        check(f64::INFINITY, "+Inf");
        check(f64::NAN, "NaN");
        check(1e21, "1000000000000000000000");
    }
}
