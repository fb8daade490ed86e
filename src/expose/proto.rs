//! Hand-written prost structs for the client model `io.prometheus.client.MetricFamily`.
//!
//! Field numbers and types follow `conformance/proto/io/prometheus/client/metrics.proto`. The
//! scalar fields are `optional` (proto2 presence, as the Go client model Pushgateway uses) so that
//! "timestamp 0" is told apart from "no timestamp" and an absent HELP from an empty one.

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// One label pair.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct LabelPair {
    /// Label name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Label value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

impl LabelPair {
    /// Builds a pair.
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            name: Some(name.to_string()),
            value: Some(value.to_string()),
        }
    }
}

/// Metric type (`MetricFamily.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// Counter (the proto default).
    Counter = 0,
    /// Gauge.
    Gauge = 1,
    /// Summary.
    Summary = 2,
    /// Untyped.
    Untyped = 3,
    /// Histogram.
    Histogram = 4,
    /// Gauge histogram.
    GaugeHistogram = 5,
}

impl MetricType {
    /// The upper-case name Go's `MetricType.String()` prints.
    pub fn go_name(self) -> &'static str {
        match self {
            MetricType::Counter => "COUNTER",
            MetricType::Gauge => "GAUGE",
            MetricType::Summary => "SUMMARY",
            MetricType::Untyped => "UNTYPED",
            MetricType::Histogram => "HISTOGRAM",
            MetricType::GaugeHistogram => "GAUGE_HISTOGRAM",
        }
    }
}

/// Gauge value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Gauge {
    /// Value.
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

/// Counter value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Counter {
    /// Value.
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
    /// Exemplar (kept, not interpreted).
    #[prost(message, optional, tag = "2")]
    pub exemplar: Option<Exemplar>,
    /// Created time.
    #[prost(message, optional, tag = "3")]
    pub start_timestamp: Option<Timestamp>,
}

/// One summary quantile.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Quantile {
    /// The quantile (0..1).
    #[prost(double, optional, tag = "1")]
    pub quantile: Option<f64>,
    /// Its value.
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
}

/// Summary value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// Observation count.
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    /// Observation sum.
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    /// Quantiles.
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
    /// Created time.
    #[prost(message, optional, tag = "4")]
    pub start_timestamp: Option<Timestamp>,
}

/// Untyped value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Untyped {
    /// Value.
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

/// Histogram value (classic buckets and/or native spans).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Observation count.
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    /// Overrides `sample_count` if > 0.
    #[prost(double, optional, tag = "4")]
    pub sample_count_float: Option<f64>,
    /// Observation sum.
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    /// Classic buckets in increasing `upper_bound` order.
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    /// Created time.
    #[prost(message, optional, tag = "15")]
    pub start_timestamp: Option<Timestamp>,
    /// Native schema.
    #[prost(sint32, optional, tag = "5")]
    pub schema: Option<i32>,
    /// Zero bucket width.
    #[prost(double, optional, tag = "6")]
    pub zero_threshold: Option<f64>,
    /// Zero bucket count.
    #[prost(uint64, optional, tag = "7")]
    pub zero_count: Option<u64>,
    /// Zero bucket count (float).
    #[prost(double, optional, tag = "8")]
    pub zero_count_float: Option<f64>,
    /// Negative spans.
    #[prost(message, repeated, tag = "9")]
    pub negative_span: Vec<BucketSpan>,
    /// Negative deltas.
    #[prost(sint64, repeated, tag = "10")]
    pub negative_delta: Vec<i64>,
    /// Negative counts.
    #[prost(double, repeated, tag = "11")]
    pub negative_count: Vec<f64>,
    /// Positive spans.
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    /// Positive deltas.
    #[prost(sint64, repeated, tag = "13")]
    pub positive_delta: Vec<i64>,
    /// Positive counts.
    #[prost(double, repeated, tag = "14")]
    pub positive_count: Vec<f64>,
    /// Native exemplars.
    #[prost(message, repeated, tag = "16")]
    pub exemplars: Vec<Exemplar>,
}

impl Histogram {
    /// `sample_count_float` if > 0, else `sample_count` (the text encoder's rule).
    pub fn count(&self) -> f64 {
        match self.sample_count_float {
            Some(f) if f > 0.0 => f,
            _ => self.sample_count.unwrap_or(0) as f64,
        }
    }
}

/// One classic bucket.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Bucket {
    /// Cumulative count.
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    /// Overrides `cumulative_count` if > 0.
    #[prost(double, optional, tag = "4")]
    pub cumulative_count_float: Option<f64>,
    /// Inclusive upper bound.
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
    /// Exemplar.
    #[prost(message, optional, tag = "3")]
    pub exemplar: Option<Exemplar>,
}

impl Bucket {
    /// `cumulative_count_float` if > 0, else `cumulative_count`.
    pub fn count(&self) -> f64 {
        match self.cumulative_count_float {
            Some(f) if f > 0.0 => f,
            _ => self.cumulative_count.unwrap_or(0) as f64,
        }
    }
}

/// Native histogram span.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BucketSpan {
    /// Gap to the previous span (or start index).
    #[prost(sint32, optional, tag = "1")]
    pub offset: Option<i32>,
    /// Number of buckets.
    #[prost(uint32, optional, tag = "2")]
    pub length: Option<u32>,
}

/// Exemplar.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Labels.
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    /// Value.
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
    /// Time.
    #[prost(message, optional, tag = "3")]
    pub timestamp: Option<Timestamp>,
}

/// One metric (series) of a family.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// Labels (sorted by name once stored).
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    /// Gauge value.
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Gauge>,
    /// Counter value.
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Counter>,
    /// Summary value.
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    /// Untyped value.
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<Untyped>,
    /// Histogram value.
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
    /// Explicit timestamp (ms); Pushgateway rejects pushes carrying one.
    #[prost(int64, optional, tag = "6")]
    pub timestamp_ms: Option<i64>,
}

/// A metric family: name, help, type and its metrics.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricFamily {
    /// Family name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Help text (`None` = no HELP line).
    #[prost(string, optional, tag = "2")]
    pub help: Option<String>,
    /// Type.
    #[prost(enumeration = "MetricType", optional, tag = "3")]
    pub r#type: Option<i32>,
    /// Metrics.
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
    /// Unit.
    #[prost(string, optional, tag = "5")]
    pub unit: Option<String>,
}

impl MetricFamily {
    /// The type; absent or unknown values read as `Counter` as in Go's `GetType()`.
    pub fn kind(&self) -> MetricType {
        self.r#type
            .and_then(|t| MetricType::try_from(t).ok())
            .unwrap_or(MetricType::Counter)
    }
}
