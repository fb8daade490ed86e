//! OpenTelemetry metrics receiver (OTLP/HTTP), as Prometheus 3's `--web.enable-otlp-receiver`.
//!
//! [`decode`] turns a request body (protobuf or OTLP/JSON, optionally gzip) into the official
//! `opentelemetry-proto` messages under size bounds; [`translate`] maps metrics to Prometheus
//! series and appends them (names per [`names`], exponential histograms per [`exphist`]). The
//! HTTP edge is `api::otlp`.

pub mod decode;
pub mod exphist;
pub mod names;
pub mod translate;

pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

/// Most samples one request may translate to (see [`translate::output_size`]).
pub const MAX_SAMPLES_PER_REQUEST: u64 = 1_000_000;

pub mod example;

#[cfg(test)]
mod tests;
