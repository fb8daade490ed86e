//! OTLP/HTTP metrics receiver through the real binary: requests built with the official proto
//! types (protobuf, OTLP/JSON, gzip) land as the series Prometheus 3's translation gives, as
//! `/api/v1/query` shows; refused parts come back in `partial_success`; bad bodies get 400/415;
//! the endpoint is 404 without `--web.enable-otlp-receiver`.

use crate::server::harness;

use argus::ingest::otlp::decode::{self, Encoding};
use argus::ingest::otlp::{ExportMetricsServiceResponse, example};
use harness::{Argus, Resp, enc, now_ms};
use prost::Message;
use std::collections::BTreeMap;

const PATH: &str = "/api/v1/otlp/v1/metrics";

fn post(a: &Argus, body: &[u8], headers: &[(&str, &str)]) -> Resp {
    a.request("POST", PATH, headers, body)
}

/// `name{labels…}` → value of every series an instant query returns at `t_ms`.
fn query(a: &Argus, q: &str, t_ms: i64) -> BTreeMap<String, f64> {
    let r = a.get(&format!(
        "/api/v1/query?query={}&time={}",
        enc(q),
        t_ms as f64 / 1000.0
    ));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    let j = r.json();
    j["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{q}: {j}"))
        .iter()
        .map(|s| {
            let m = s["metric"].as_object().unwrap();
            let name = m.get("__name__").and_then(|v| v.as_str()).unwrap_or("");
            let labels: Vec<String> = m
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            let v: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
            (format!("{name}{{{}}}", labels.join(",")), v)
        })
        .collect()
}

/// The series of `example::request` for one `job`/`instance`, as `query` renders them.
fn expected(job: &str) -> BTreeMap<String, f64> {
    let id = format!("instance=i-1,job={job}");
    [
        (
            format!("system_memory_usage_bytes{{{id},state=used}}"),
            1024.0,
        ),
        (
            format!("http_server_requests_total{{http_method=GET,{id}}}"),
            42.0,
        ),
        (format!("queue_size{{{id}}}"), 7.0),
        (
            format!("http_server_duration_seconds_bucket{{{id},le=+Inf}}"),
            10.0,
        ),
        (
            format!("http_server_duration_seconds_bucket{{{id},le=0.1}}"),
            1.0,
        ),
        (
            format!("http_server_duration_seconds_bucket{{{id},le=0.5}}"),
            3.0,
        ),
        (
            format!("http_server_duration_seconds_bucket{{{id},le=1}}"),
            6.0,
        ),
        (format!("http_server_duration_seconds_sum{{{id}}}"), 7.5),
        (format!("http_server_duration_seconds_count{{{id}}}"), 10.0),
        (format!("gc_pause_seconds{{{id},quantile=0.5}}"), 0.4),
        (format!("gc_pause_seconds{{{id},quantile=0.99}}"), 1.2),
        (format!("gc_pause_seconds_sum{{{id}}}"), 2.5),
        (format!("gc_pause_seconds_count{{{id}}}"), 5.0),
        (
            format!("target_info{{deployment_environment=prod,host_name=h1,{id}}}"),
            1.0,
        ),
    ]
    .into_iter()
    .collect()
}

/// Every float series of `job` (the query excludes the native histogram and its name).
fn stored(a: &Argus, job: &str, t_ms: i64) -> BTreeMap<String, f64> {
    query(
        a,
        &format!(r#"{{job="{job}", __name__!="rpc_latency_milliseconds"}}"#),
        t_ms,
    )
}

/// `example::request` for service `shop/<service>`.
fn request_for(service: &str, t_ms: i64) -> argus::ingest::otlp::ExportMetricsServiceRequest {
    let mut req = example::request(t_ms as u64 * 1_000_000);
    let attrs = &mut req.resource_metrics[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes;
    attrs[0] = example::attr("service.name", service);
    req
}

fn check_partial(r: &Resp, enc: Encoding) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(enc.media_type()));
    let resp: ExportMetricsServiceResponse = match enc {
        Encoding::Protobuf => Message::decode(&r.body[..]).unwrap(),
        Encoding::Json => serde_json::from_slice(&r.body).unwrap(),
    };
    let ps = resp.partial_success.expect("partial_success");
    assert_eq!(ps.rejected_data_points, 1, "{ps:?}");
    assert!(
        ps.error_message.contains("invalid temporality")
            && ps.error_message.contains("delta.calls"),
        "{ps:?}"
    );
}

#[test]
fn protobuf_json_and_gzip_requests_land_as_prometheus_series() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-otlp-receiver"]);
    let t = now_ms() - 5_000;

    // Protobuf.
    let body = decode::encode(&request_for("pb", t), Encoding::Protobuf);
    let r = post(&a, &body, &[("Content-Type", "application/x-protobuf")]);
    check_partial(&r, Encoding::Protobuf);
    assert_eq!(stored(&a, "shop/pb", t), expected("shop/pb"));
    // The delta sum was refused, not stored under any name.
    assert!(query(&a, "delta_calls_total", t).is_empty());

    // OTLP/JSON, with the enum written as its name and 64-bit integers as strings.
    let json = String::from_utf8(decode::encode(&request_for("js", t), Encoding::Json)).unwrap();
    assert!(json.contains(r#""timeUnixNano":""#), "{json}");
    let json = json.replace(
        r#""aggregationTemporality":2"#,
        r#""aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE""#,
    );
    let r = post(&a, json.as_bytes(), &[("Content-Type", "application/json")]);
    check_partial(&r, Encoding::Json);
    assert_eq!(stored(&a, "shop/js", t), expected("shop/js"));

    // gzip-compressed protobuf.
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&decode::encode(&request_for("gz", t), Encoding::Protobuf))
        .unwrap();
    let r = post(
        &a,
        &gz.finish().unwrap(),
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
    );
    check_partial(&r, Encoding::Protobuf);
    assert_eq!(stored(&a, "shop/gz", t), expected("shop/gz"));
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-otlp-receiver"]);
    let check = |body: &[u8], headers: &[(&str, &str)], status: u16, want: &str| {
        let r = post(&a, body, headers);
        assert_eq!(r.status, status, "{}", r.text());
        assert!(r.text().contains(want), "want {want:?} in {:?}", r.text());
    };
    let pb = [("Content-Type", "application/x-protobuf")];
    check(
        b"\xff\xff\xff",
        &pb,
        400,
        "cannot decode protobuf ExportMetricsServiceRequest",
    );
    check(
        b"{\"resourceMetrics\": 5}",
        &[("Content-Type", "application/json")],
        400,
        "cannot decode OTLP/JSON",
    );
    check(
        b"x",
        &[("Content-Type", "text/plain")],
        415,
        "unsupported content type",
    );
    check(
        b"x",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "br"),
        ],
        415,
        "unsupported content encoding",
    );
    check(
        b"not gzip",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        400,
        "cannot decompress gzip",
    );
    // A sample an hour ahead is refused by the storage: 400, as Prometheus answers.
    let body = decode::encode(
        &request_for("future", now_ms() + 3_600_000),
        Encoding::Protobuf,
    );
    check(&body, &pb, 400, "rejected by the storage");
}

#[test]
fn disabled_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &[]);
    let body = decode::encode(&request_for("off", now_ms()), Encoding::Protobuf);
    let r = post(&a, &body, &[("Content-Type", "application/x-protobuf")]);
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("--web.enable-otlp-receiver"),
        "{}",
        r.text()
    );
}

#[test]
fn otlp_config_section_applies() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        "otlp:\n  translation_strategy: NoUTF8EscapingWithSuffixes\n  \
         promote_resource_attributes: [host.name]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let a = Argus::start(
        &data,
        &[
            "--web.enable-otlp-receiver",
            &format!("--config.file={}", cfg.display()),
        ],
    );
    let t = now_ms() - 5_000;
    let body = decode::encode(&request_for("cfg", t), Encoding::Protobuf);
    let r = post(&a, &body, &[("Content-Type", "application/x-protobuf")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = query(&a, r#"{"system.memory.usage_bytes", job="shop/cfg"}"#, t);
    let want: BTreeMap<String, f64> = [(
        "system.memory.usage_bytes{host.name=h1,instance=i-1,job=shop/cfg,state=used}".to_string(),
        1024.0,
    )]
    .into_iter()
    .collect();
    assert_eq!(got, want);
}

/// The exponential histogram of `example::request` read back through remote read: a native
/// histogram (schema 1, OTel offsets shifted by one, integer counts).
#[test]
fn exponential_histogram_is_stored_as_a_native_histogram() {
    use argus::ingest::prompb::{BucketSpan, Histogram};
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-otlp-receiver"]);
    let t = now_ms() - 5_000;
    let body = decode::encode(&request_for("nh", t), Encoding::Protobuf);
    let r = post(&a, &body, &[("Content-Type", "application/x-protobuf")]);
    assert_eq!(r.status, 200, "{}", r.text());

    let got = crate::server::remote::read(&a, "rpc_latency_milliseconds", t - 1, t + 1);
    let series = crate::server::remote::series(&got);
    assert_eq!(series.len(), 1, "{got:?}");
    let labels: BTreeMap<&str, &str> = series[0]
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(labels.get("job"), Some(&"shop/nh"));
    assert_eq!(labels.get("instance"), Some(&"i-1"));
    let want = Histogram {
        count_int: Some(7),
        zero_count_int: Some(1),
        sum: 12.0,
        schema: 1,
        zero_threshold: 1e-128,
        positive_spans: vec![BucketSpan {
            offset: 1,
            length: 2,
        }],
        positive_deltas: vec![2, 1],
        negative_spans: vec![BucketSpan {
            offset: 0,
            length: 1,
        }],
        negative_deltas: vec![1],
        timestamp: t,
        ..Default::default()
    };
    let got: Vec<Histogram> = series[0]
        .histograms
        .iter()
        .map(|h| Histogram {
            reset_hint: 0,
            ..h.clone()
        })
        .collect();
    assert_eq!(got, vec![want]);
}
