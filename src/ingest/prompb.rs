//! Remote Write 1.0 messages (`prometheus.WriteRequest`), written by hand with prost derive from
//! `remote.proto`/`types.proto` (package `prometheus`). Only what a receiver reads is declared;
//! prost skips undeclared fields.

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Field 3 (field 2 is reserved).
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Field 1: label pairs, sorted by name on the wire.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Field 2: samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Field 3: exemplars (accepted, not stored).
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Field 4: native histograms, oldest first.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

impl TimeSeries {
    /// A series of float samples `(timestamp ms, value)` with the given label pairs (sent as
    /// given: senders sort them by name).
    pub fn from_pairs(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> Self {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
            exemplars: vec![],
            histograms: vec![],
        }
    }
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// Field 1.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Field 2: ms since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Field 2.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Field 3: ms.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.Histogram` (also 2.0's `io.prometheus.write.v2.Histogram`, which adds field 17).
/// An integer histogram sets `count_int` and bucket deltas, a float one `count_float` and
/// absolute bucket counts. The `oneof`s are declared as two optional fields each.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Field 1: observations (integer histogram).
    #[prost(uint64, optional, tag = "1")]
    pub count_int: Option<u64>,
    /// Field 2: observations (float histogram).
    #[prost(double, optional, tag = "2")]
    pub count_float: Option<f64>,
    /// Field 3: sum of observations.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Field 4: `-4..=8` exponential, `-53` custom bounds.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Field 5: width of the zero bucket.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Field 6: zero-bucket count (integer histogram).
    #[prost(uint64, optional, tag = "6")]
    pub zero_count_int: Option<u64>,
    /// Field 7: zero-bucket count (float histogram).
    #[prost(double, optional, tag = "7")]
    pub zero_count_float: Option<f64>,
    /// Field 8.
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    /// Field 9: integer histograms: each bucket's count minus the previous bucket's.
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Field 10: float histograms: absolute counts.
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    /// Field 11.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    /// Field 12: as field 9.
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Field 13: as field 10.
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// Field 14: 0 unknown, 1 counter reset, 2 no counter reset, 3 gauge.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    /// Field 15: ms.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    /// Field 16: custom bucket upper bounds (schema -53).
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
    /// Field 17 (2.0 only): start ("created") time, ms; 0 = unset.
    #[prost(int64, tag = "17")]
    pub start_timestamp: i64,
}

/// `prometheus.BucketSpan`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct BucketSpan {
    /// Field 1: gap to the previous span (first span: starting index).
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Field 2: number of consecutive buckets.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// Field 1: `MetricType` enum (0 unknown, 1 counter, 2 gauge, 3 histogram,
    /// 4 gaugehistogram, 5 summary, 6 info, 7 stateset).
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Field 4.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Field 5.
    #[prost(string, tag = "5")]
    pub unit: String,
}

impl MetricMetadata {
    /// The type as Prometheus's metadata API spells it.
    pub fn type_name(&self) -> &'static str {
        match self.r#type {
            1 => "counter",
            2 => "gauge",
            3 => "histogram",
            4 => "gaugehistogram",
            5 => "summary",
            6 => "info",
            7 => "stateset",
            _ => "unknown",
        }
    }
}
