//! Remote Write 2.0 messages (`io.prometheus.write.v2.Request`, `v2.0-rc.4`), written by hand
//! with prost derive from `io/prometheus/write/v2/types.proto`. Native histograms share 1.0's
//! message type ([`Histogram`]); exemplars are reduced to what a count needs.

/// `io.prometheus.write.v2.Request`. Fields 1–3 are reserved, so a 1.0 body decodes as empty.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    /// Field 4: the string table; `symbols[0]` must be `""`.
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    /// Field 5.
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

/// `io.prometheus.write.v2.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Field 1: symbol indices, alternating name and value, sorted by name.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// Field 2: float samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Field 3: native histograms, oldest first.
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Histogram>,
    /// Field 4: exemplars (accepted, not stored).
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<Exemplar>,
    /// Field 5.
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata>,
    /// Field 6: the series' created time, ms; 0 = unset. Sent by Prometheus 3.0–3.7 (spec
    /// `v2.0-rc.3`); later senders put a start timestamp on each sample instead and reserve 6.
    #[prost(int64, tag = "6")]
    pub created_timestamp: i64,
}

/// `io.prometheus.write.v2.Sample`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// Field 1.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Field 2: ms.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
    /// Field 3: start ("created") time, ms; 0 = unset.
    #[prost(int64, tag = "3")]
    pub start_timestamp: i64,
}

/// `io.prometheus.write.v2.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Field 1.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// Field 2.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Field 3: ms.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `io.prometheus.write.v2.Histogram`: 1.0's message plus `start_timestamp` (field 17).
pub use super::prompb::Histogram;

/// `io.prometheus.write.v2.Metadata`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Metadata {
    /// Field 1: `METRIC_TYPE_*` (same numbers as 1.0's `MetricType`).
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Field 3: symbol of the help text (0 = empty).
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    /// Field 4: symbol of the unit (0 = empty).
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}
