//! A request with one metric of each kind, built with the official proto types: the fixture of
//! the unit tests, the integration tests (`tests/it/otlp.rs`), the fuzz target's seed and the
//! README. What it translates to (default `translation_strategy`, `job="shop/checkout"`,
//! `instance="i-1"` on every series):
//!
//! ```text
//! system_memory_usage_bytes{state="used"}                 1024
//! http_server_requests_total{http_method="GET"}           42
//! queue_size                                              7
//! http_server_duration_seconds_bucket{le="0.1"|"0.5"|"1"|"+Inf"}  1 3 6 10
//! http_server_duration_seconds_sum / _count               7.5 10
//! rpc_latency_milliseconds                                native histogram (count 7, sum 12)
//! gc_pause_seconds{quantile="0.5"|"0.99"}, _sum, _count   0.4 1.2 2.5 5
//! target_info{host_name="h1", deployment_environment="prod"}  1
//! delta_calls_total                                       refused: delta temporality (1 point)
//! ```

use super::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// `AGGREGATION_TEMPORALITY_DELTA`.
pub const DELTA: i32 = 1;
/// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
pub const CUMULATIVE: i32 = 2;

/// A string attribute.
pub fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// A metric with a name, unit and data.
pub fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

/// A number data point at `t_ns`.
pub fn number(t_ns: u64, v: number_data_point::Value, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t_ns,
        value: Some(v),
        ..Default::default()
    }
}

/// An exponential histogram data point at `t_ns`: scale 1, zero count 1, positive buckets
/// `[2, 3]` from index 0, negative bucket `[1]` at index -1; count 7, sum 12.
pub fn exp_point(t_ns: u64) -> ExponentialHistogramDataPoint {
    ExponentialHistogramDataPoint {
        time_unix_nano: t_ns,
        count: 7,
        sum: Some(12.0),
        scale: 1,
        zero_count: 1,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![2, 3],
        }),
        negative: Some(Buckets {
            offset: -1,
            bucket_counts: vec![1],
        }),
        ..Default::default()
    }
}

/// The metrics of [`request`], each with one point at `t_ns`.
pub fn metrics(t_ns: u64) -> Vec<Metric> {
    use number_data_point::Value::{AsDouble, AsInt};
    vec![
        metric(
            "system.memory.usage",
            "By",
            Data::Gauge(Gauge {
                data_points: vec![number(t_ns, AsInt(1024), vec![attr("state", "used")])],
            }),
        ),
        metric(
            "http.server.requests",
            "{request}",
            Data::Sum(Sum {
                data_points: vec![number(
                    t_ns,
                    AsDouble(42.0),
                    vec![attr("http.method", "GET")],
                )],
                aggregation_temporality: CUMULATIVE,
                is_monotonic: true,
            }),
        ),
        metric(
            "queue.size",
            "1",
            Data::Sum(Sum {
                data_points: vec![number(t_ns, AsInt(7), vec![])],
                aggregation_temporality: CUMULATIVE,
                is_monotonic: false,
            }),
        ),
        metric(
            "delta.calls",
            "",
            Data::Sum(Sum {
                data_points: vec![number(t_ns, AsInt(3), vec![])],
                aggregation_temporality: DELTA,
                is_monotonic: true,
            }),
        ),
        metric(
            "http.server.duration",
            "s",
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: t_ns,
                    count: 10,
                    sum: Some(7.5),
                    bucket_counts: vec![1, 2, 3, 4],
                    explicit_bounds: vec![0.1, 0.5, 1.0],
                    ..Default::default()
                }],
                aggregation_temporality: CUMULATIVE,
            }),
        ),
        metric(
            "rpc.latency",
            "ms",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![exp_point(t_ns)],
                aggregation_temporality: CUMULATIVE,
            }),
        ),
        metric(
            "gc.pause",
            "s",
            Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: t_ns,
                    count: 5,
                    sum: 2.5,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.5,
                            value: 0.4,
                        },
                        ValueAtQuantile {
                            quantile: 0.99,
                            value: 1.2,
                        },
                    ],
                    ..Default::default()
                }],
            }),
        ),
    ]
}

/// A request from service `shop/checkout` instance `i-1` (plus `host.name` and
/// `deployment.environment` resource attributes) with [`metrics`] at `t_ns`.
pub fn request(t_ns: u64) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    attr("service.name", "checkout"),
                    attr("service.namespace", "shop"),
                    attr("service.instance.id", "i-1"),
                    attr("host.name", "h1"),
                    attr("deployment.environment", "prod"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "io.example".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                metrics: metrics(t_ns),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
