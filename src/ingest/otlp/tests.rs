use super::decode::{self, Encoding};
use super::example::{self, attr, metric, number};
use super::translate::{self, Outcome, Settings};
use crate::config::otlp::{OtlpConfig, TranslationStrategy};
use crate::ingest::remote_write::LabelLimits;
use argus_storage::testing::MemStorage;
use argus_storage::{Appendable, CounterResetHint, FloatHistogram, Labels, SampleValue, Span};
use opentelemetry_proto::tonic::metrics::v1::{Gauge, metric::Data, number_data_point};
use std::collections::BTreeMap;

const T_MS: i64 = 1_700_000_000_000;
const T_NS: u64 = T_MS as u64 * 1_000_000;

fn run(cfg: &OtlpConfig, req: &super::ExportMetricsServiceRequest) -> (MemStorage, Outcome) {
    run_limited(cfg, req, LabelLimits::default())
}

fn run_limited(
    cfg: &OtlpConfig,
    req: &super::ExportMetricsServiceRequest,
    limits: LabelLimits,
) -> (MemStorage, Outcome) {
    let db = MemStorage::new();
    let mut app = db.appender();
    let s = Settings {
        config: cfg,
        limits,
        now_ms: T_MS,
    };
    let out = translate::append(app.as_mut(), req, &s).unwrap();
    app.commit().unwrap();
    (db, out)
}

/// `name{a="b", …}` (the storage's `Display` prints `__name__` as a label).
fn render(l: &Labels) -> String {
    let rest: Vec<String> = l
        .iter()
        .filter(|l| l.name != argus_storage::METRIC_NAME)
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!(
        "{}{{{}}}",
        l.metric_name().unwrap_or_default(),
        rest.join(", ")
    )
}

/// Every series rendered as text with its samples.
fn series(db: &MemStorage) -> BTreeMap<String, Vec<(i64, SampleValue)>> {
    db.dump_values()
        .into_iter()
        .map(|(l, s)| (render(&l), s))
        .collect()
}

fn floats(db: &MemStorage) -> BTreeMap<String, f64> {
    db.dump()
        .into_iter()
        .filter_map(|(l, s)| s.last().map(|(_, v)| (render(&l), *v)))
        .collect()
}

#[test]
fn translates_every_kind() {
    let (db, out) = run(&OtlpConfig::default(), &example::request(T_NS));
    let id = r#"instance="i-1", job="shop/checkout""#;
    let want: BTreeMap<String, f64> = [
        (
            format!(r#"system_memory_usage_bytes{{{id}, state="used"}}"#),
            1024.0,
        ),
        (
            format!(r#"http_server_requests_total{{http_method="GET", {id}}}"#),
            42.0,
        ),
        (format!(r#"queue_size{{{id}}}"#), 7.0),
        (
            format!(r#"http_server_duration_seconds_bucket{{{id}, le="0.1"}}"#),
            1.0,
        ),
        (
            format!(r#"http_server_duration_seconds_bucket{{{id}, le="0.5"}}"#),
            3.0,
        ),
        (
            format!(r#"http_server_duration_seconds_bucket{{{id}, le="1"}}"#),
            6.0,
        ),
        (
            format!(r#"http_server_duration_seconds_bucket{{{id}, le="+Inf"}}"#),
            10.0,
        ),
        (format!(r#"http_server_duration_seconds_sum{{{id}}}"#), 7.5),
        (
            format!(r#"http_server_duration_seconds_count{{{id}}}"#),
            10.0,
        ),
        (format!(r#"gc_pause_seconds{{{id}, quantile="0.5"}}"#), 0.4),
        (format!(r#"gc_pause_seconds{{{id}, quantile="0.99"}}"#), 1.2),
        (format!(r#"gc_pause_seconds_sum{{{id}}}"#), 2.5),
        (format!(r#"gc_pause_seconds_count{{{id}}}"#), 5.0),
        (
            format!(r#"target_info{{deployment_environment="prod", host_name="h1", {id}}}"#),
            1.0,
        ),
    ]
    .into_iter()
    .collect();
    let got = floats(&db);
    let rendered = |m: &BTreeMap<String, f64>| format!("{m:#?}");
    assert_eq!(
        got.iter()
            .filter(|(k, _)| !k.starts_with("rpc_latency"))
            .map(|(k, v)| (k.clone(), *v))
            .collect::<BTreeMap<_, _>>(),
        want,
        "\nexpected:\n{}\ngot:\n{}",
        rendered(&want),
        rendered(&got)
    );
    let all = series(&db);
    let hist = &all[&format!("rpc_latency_milliseconds{{{id}}}")];
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].0, T_MS);
    let SampleValue::Histogram(h) = &hist[0].1 else {
        panic!("not a histogram: {hist:?}")
    };
    let want_h = FloatHistogram {
        counter_reset_hint: CounterResetHint::Unknown,
        schema: 1,
        zero_threshold: super::exphist::DEFAULT_ZERO_THRESHOLD,
        zero_count: 1.0,
        count: 7.0,
        sum: 12.0,
        positive_spans: vec![Span::new(1, 2)],
        positive_buckets: vec![2.0, 3.0],
        negative_spans: vec![Span::new(0, 1)],
        negative_buckets: vec![1.0],
        custom_values: vec![],
    };
    assert_eq!(**h, want_h);
    assert_eq!(out.samples_written, 14);
    assert_eq!(out.histograms_written, 1);
    assert_eq!(out.rejected_points, 1);
    let msg = out.partial_message().unwrap();
    assert!(
        msg.contains("invalid temporality") && msg.contains("delta.calls"),
        "{msg}"
    );
    assert_eq!(out.storage_error(), None);
}

#[test]
fn strategies_promotion_and_scope() {
    let cfg = OtlpConfig {
        translation_strategy: TranslationStrategy::NoTranslation,
        promote_resource_attributes: vec!["host.name".into()],
        keep_identifying_resource_attributes: true,
        promote_scope_metadata: true,
        ..Default::default()
    };
    let (db, _) = run(&cfg, &example::request(T_NS));
    let got = floats(&db);
    let scope = r#"otel_scope_name="io.example", otel_scope_version="1.0""#;
    let key = format!(
        r#"system.memory.usage{{host.name="h1", instance="i-1", job="shop/checkout", {scope}, state="used"}}"#
    );
    assert_eq!(got.get(&key), Some(&1024.0), "{got:#?}");
    let info = got
        .keys()
        .find(|k| k.starts_with("target_info"))
        .expect("target_info");
    assert!(
        info.contains(r#"service.name="checkout""#) && !info.contains("otel_scope"),
        "{info}"
    );
    let all = OtlpConfig {
        promote_all_resource_attributes: true,
        ignore_resource_attributes: vec!["deployment.environment".into()],
        ..Default::default()
    };
    let (db, _) = run(&all, &example::request(T_NS));
    let got = floats(&db);
    let key = r#"queue_size{host_name="h1", instance="i-1", job="shop/checkout", service_instance_id="i-1", service_name="checkout", service_namespace="shop"}"#;
    assert_eq!(got.get(key), Some(&7.0), "{got:#?}");
}

#[test]
fn stale_markers_collisions_and_bounds() {
    use number_data_point::Value::AsDouble;
    let mut p = number(
        T_NS,
        AsDouble(1.0),
        vec![attr("a.b", "v1"), attr("a_b", "v2")],
    );
    p.flags = super::exphist::FLAG_NO_RECORDED_VALUE;
    let mut req = example::request(T_NS);
    req.resource_metrics[0].scope_metrics[0].metrics = vec![metric(
        "g",
        "",
        Data::Gauge(Gauge {
            data_points: vec![p],
        }),
    )];
    let (db, out) = run(&OtlpConfig::default(), &req);
    let got = db.dump();
    let (labels, samples) = got
        .iter()
        .find(|(l, _)| l.metric_name() == Some("g"))
        .unwrap();
    assert_eq!(labels.get("a_b"), Some("v1;v2"));
    assert!(argus_storage::is_stale_nan(samples[0].1));
    assert_eq!(out.rejected_points, 0);

    // Label bounds refuse the point (counted), the resource's target_info too.
    let tight = LabelLimits {
        max_labels: 3,
        ..Default::default()
    };
    let (db, out) = run_limited(&OtlpConfig::default(), &example::request(T_NS), tight);
    // Every point but queue_size's and rpc.latency's (name, job, instance), plus delta.calls.
    assert_eq!(out.rejected_points, 5, "{out:?}");
    assert!(
        out.partial_message()
            .unwrap()
            .contains("max-labels-per-series"),
        "{out:?}"
    );
    // queue_size has name, job, instance: exactly 3 labels.
    assert!(
        db.dump()
            .iter()
            .any(|(l, _)| l.metric_name() == Some("queue_size"))
    );

    // Samples too far in the future are refused by the storage side (HTTP 400).
    let future = (T_MS + 3_600_000) as u64 * 1_000_000;
    let (_, out) = run(&OtlpConfig::default(), &example::request(future));
    assert!(
        out.storage_rejected > 0 && out.storage_error().is_some(),
        "{out:?}"
    );
}

#[test]
fn target_info_spans_the_resource() {
    let mut req = example::request(T_NS);
    let later = T_NS + 600 * 1_000_000_000;
    let extra = example::metrics(later).remove(0);
    req.resource_metrics[0].scope_metrics[0].metrics.push(extra);
    let db = MemStorage::new();
    let mut app = db.appender();
    let cfg = OtlpConfig::default();
    let s = Settings {
        config: &cfg,
        limits: LabelLimits::default(),
        now_ms: T_MS + 600_000,
    };
    translate::append(app.as_mut(), &req, &s).unwrap();
    app.commit().unwrap();
    let info = db
        .dump()
        .into_iter()
        .find(|(l, _)| l.metric_name() == Some("target_info"))
        .unwrap();
    let times: Vec<i64> = info.1.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        times,
        vec![
            T_MS,
            T_MS + 150_000,
            T_MS + 300_000,
            T_MS + 450_000,
            T_MS + 600_000
        ]
    );
}

mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    fn arb_request() -> impl Strategy<Value = super::super::ExportMetricsServiceRequest> {
        (
            any::<u64>(),
            "[a-z.]{1,12}",
            "\\PC{0,12}",
            -1e12f64..1e12,
            proptest::collection::vec(0u64..1000, 0..6),
            -4i32..12,
        )
            .prop_map(|(t, name, value, v, counts, scale)| {
                let mut req = example::request(t);
                let rm = &mut req.resource_metrics[0];
                rm.resource
                    .as_mut()
                    .unwrap()
                    .attributes
                    .push(attr(&name, &value));
                let ms = &mut rm.scope_metrics[0].metrics;
                ms.push(metric(
                    &name,
                    "s",
                    Data::Gauge(Gauge {
                        data_points: vec![number(
                            t,
                            number_data_point::Value::AsDouble(v),
                            vec![attr(&name, &value)],
                        )],
                    }),
                ));
                let mut p = example::exp_point(t);
                p.scale = scale;
                if let Some(b) = p.positive.as_mut() {
                    b.bucket_counts = counts;
                }
                ms.push(metric(
                    "e",
                    "",
                    Data::ExponentialHistogram(
                        opentelemetry_proto::tonic::metrics::v1::ExponentialHistogram {
                            data_points: vec![p],
                            aggregation_temporality: example::CUMULATIVE,
                        },
                    ),
                ));
                req
            })
    }

    proptest! {
        #[test]
        fn encode_decode(req in arb_request()) {
            for enc in [Encoding::Protobuf, Encoding::Json] {
                let bytes = decode::encode(&req, enc);
                prop_assert_eq!(&decode::decode(&bytes, enc).unwrap(), &req);
            }
            // And it translates without a storage failure.
            let db = MemStorage::new();
            let mut app = db.appender();
            let cfg = OtlpConfig::default();
            let s = Settings { config: &cfg, limits: LabelLimits::default(), now_ms: i64::MAX / 2 };
            prop_assert!(translate::append(app.as_mut(), &req, &s).is_ok());
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::decode(&bytes, Encoding::Protobuf);
            let _ = decode::decode(&bytes, Encoding::Json);
            let mut buf = Vec::new();
            let _ = decode::gunzip(&bytes, 1 << 16, &mut buf);
        }
    }
}
