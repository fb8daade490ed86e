//! Server integration tests (owner: server helper): the real binary over HTTP.
//! `harness` starts it; `interop` compares with real Prometheus; `durability` SIGKILLs it.

mod durability;
pub(crate) mod harness;
mod head_snapshot;
mod interop;
pub(crate) mod peer;
pub(crate) mod remote;
mod request_layer;

use argus::ingest::prompb::{MetricMetadata, TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use harness::{Argus, Resp, enc, now_ms};
use serde_json::json;
use std::time::Duration;

/// A remote-write series.
pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries::from_pairs(labels, samples)
}

/// POSTs a remote-write request.
pub fn write(a: &Argus, ts: Vec<TimeSeries>) -> Resp {
    remote::write_series(a, ts)
}

fn write_raw(a: &Argus, body: &[u8]) -> Resp {
    a.request(
        "POST",
        "/api/v1/write",
        crate::server::remote::WRITE_V1,
        body,
    )
}

fn assert_error(r: &Resp, status: u16, kind: &str, contains: &str) {
    assert_eq!(r.status, status, "body: {}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["errorType"], kind, "{v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.contains(contains), "expected {contains:?} in {msg:?}");
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Writes `test_metric{job="a"|"b"}` every 15 s for 20 points ending a minute ago; returns the
/// first timestamp.
fn seed(a: &Argus) -> i64 {
    let base = (now_ms() / 1000 - 600) * 1000;
    let pts = |k: f64| {
        (0..20)
            .map(|i| (base + i * 15_000, k * i as f64))
            .collect::<Vec<_>>()
    };
    let r = write(
        a,
        vec![
            series(&[("__name__", "test_metric"), ("job", "a")], &pts(1.0)),
            series(&[("__name__", "test_metric"), ("job", "b")], &pts(2.0)),
            series(&[("__name__", "other_metric"), ("zone", "z")], &pts(0.5)),
        ],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    base
}

#[test]
fn query_endpoints_answer_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    // No self-scrape: the head's label names and values (as Prometheus's) are those of every
    // series in it, so the default config's `argus` job would add its labels whenever its first
    // scrape lands before the assertions (it did once in CI).
    let cfg = tempfile::tempdir().unwrap();
    let cfg = cfg.path().join("argus.yml");
    std::fs::write(&cfg, "scrape_configs: []\n").unwrap();
    let a = Argus::start(
        dir.path(),
        &[
            "--web.enable-remote-write-receiver",
            &format!("--config.file={}", cfg.display()),
        ],
    );
    let base = seed(&a);

    // Instant query between samples: the lookback picks the sample before.
    let t = base + 100_500;
    let r = a.get(&format!("/api/v1/query?query=test_metric&time={}", secs(t)));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "test_metric", "job": "a"}, "value": [t as f64 / 1000.0, "6"]},
            {"metric": {"__name__": "test_metric", "job": "b"}, "value": [t as f64 / 1000.0, "12"]},
        ]}})
    );
    // Scalar and string results, RFC 3339 time.
    let r = a.get("/api/v1/query?query=1%2F3&time=2015-07-01T20:10:51.781Z");
    assert_eq!(
        r.json(),
        json!({"status": "success", "data": {"resultType": "scalar", "result": [1435781451.781, "0.3333333333333333"]}})
    );
    let r = a.get("/api/v1/query?query=%22hi%22&time=10");
    assert_eq!(
        r.json()["data"],
        json!({"resultType": "string", "result": [10, "hi"]})
    );
    // Special values are strings.
    let r = a.get("/api/v1/query?query=vector(1%2F0)&time=1");
    assert_eq!(r.json()["data"]["result"][0]["value"], json!([1, "+Inf"]));

    // Range query, GET and Grafana-style form POST with a timeout.
    let (s, e) = (secs(base + 30_000), secs(base + 75_000));
    let q = format!("query=sum(test_metric)&start={s}&end={e}&step=15");
    let r = a.get(&format!("/api/v1/query_range?{q}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let want = json!({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [
            [(base + 30_000) / 1000, "6"], [(base + 45_000) / 1000, "9"],
            [(base + 60_000) / 1000, "12"], [(base + 75_000) / 1000, "15"],
        ]},
    ]}});
    assert_eq!(r.json(), want);
    let r = a.post_form("/api/v1/query_range", &format!("{q}&timeout=30s"));
    assert_eq!(r.json(), want);
    let r = a.get(&format!(
        "/api/v1/query_range?query=test_metric&start={s}&end={e}&step=500ms"
    ));
    assert_eq!(r.status, 200, "duration steps accepted: {}", r.text());

    // Series, labels, label values (Grafana's shapes).
    let (s, e) = (secs(base), secs(base + 300_000));
    let r = a.get(&format!(
        "/api/v1/series?match[]={}&start={s}&end={e}",
        enc("test_metric{job=\"a\"}")
    ));
    assert_eq!(
        r.json(),
        json!({"status": "success", "data": [{"__name__": "test_metric", "job": "a"}]})
    );
    let r = a.post_form(
        "/api/v1/series",
        &format!("match%5B%5D=other_metric&match%5B%5D=test_metric&start={s}&end={e}"),
    );
    assert_eq!(
        r.json()["data"].as_array().map(Vec::len),
        Some(3),
        "{}",
        r.text()
    );
    let r = a.get(&format!("/api/v1/labels?start={s}&end={e}"));
    assert_eq!(
        r.json(),
        json!({"status": "success", "data": ["__name__", "job", "zone"]})
    );
    let r = a.get(&format!("/api/v1/label/__name__/values?start={s}&end={e}"));
    assert_eq!(
        r.json(),
        json!({"status": "success", "data": ["other_metric", "test_metric"]})
    );
    let r = a.get("/api/v1/label/job/values?match[]=test_metric&limit=1");
    assert_eq!(
        r.json(),
        json!({"status": "success", "data": ["a"], "warnings": ["results truncated due to limit"]})
    );
    let r = a.get("/api/v1/query_exemplars?query=test_metric&start=0&end=1");
    assert_eq!(r.json(), json!({"status": "success", "data": []}));

    // Error cases, answered like Prometheus and never with a 500.
    assert_error(
        &a.get("/api/v1/query?query=sum(test_metric"),
        400,
        "bad_data",
        "invalid parameter \"query\"",
    );
    assert_error(
        &a.get("/api/v1/query?query=up&time=yesterday"),
        400,
        "bad_data",
        "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"yesterday\" to a valid timestamp",
    );
    assert_error(
        &a.get("/api/v1/query"),
        400,
        "bad_data",
        "invalid parameter \"query\"",
    );
    assert_error(
        &a.get("/api/v1/query_range?query=up&start=1&end=2"),
        400,
        "bad_data",
        "invalid parameter \"step\"",
    );
    assert_error(
        &a.get("/api/v1/query_range?query=up&start=0&end=100000&step=1"),
        400,
        "bad_data",
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
    );
    assert_error(
        &a.get("/api/v1/series"),
        400,
        "bad_data",
        "no match[] parameter provided",
    );
    assert_error(
        &a.get("/api/v1/series?match[]=%7B"),
        400,
        "bad_data",
        "invalid parameter \"match[]\"",
    );
    assert_error(
        &a.get("/api/v1/labels?end=x"),
        400,
        "bad_data",
        "invalid parameter \"end\"",
    );
    let r = a.get(&format!(
        "/api/v1/query?query={}&time={}",
        enc("test_metric + on() test_metric"),
        secs(t)
    ));
    assert_eq!(
        r.status,
        422,
        "many-to-many matching is an execution error: {}",
        r.text()
    );
    assert_eq!(r.json()["errorType"], "execution");
    let r = a.get("/api/v1/nope");
    assert_eq!((r.status, r.text().as_str()), (404, "404 page not found\n"));
    let r = a.post_form("/api/v1/admin/tsdb/snapshot", "");
    assert_error(&r, 500, "unavailable", "admin APIs disabled");
    let r = a.request("POST", "/-/reload", &[], b"");
    assert_eq!(r.status, 403);

    // gzip when asked.
    let r = a.request("GET", "/api/v1/labels", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut text)
        .unwrap();
    assert!(text.starts_with("{\"status\":\"success\""), "{text}");
}

#[test]
fn status_health_and_metrics_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        dir.path(),
        &[
            "--query.lookback-delta=1m",
            "--web.enable-remote-write-receiver",
        ],
    );
    seed(&a);
    let r = a.get("/api/v1/status/buildinfo");
    assert_eq!(r.json()["data"]["version"], env!("CARGO_PKG_VERSION"));
    let r = a.get("/api/v1/status/flags");
    assert_eq!(r.json()["data"]["query.lookback-delta"], "1m");
    assert_eq!(r.json()["data"]["web.enable-remote-write-receiver"], "true");
    let r = a.get("/api/v1/status/config");
    let yaml = r.json()["data"]["yaml"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        yaml.contains("job_name: argus"),
        "default config scrapes argus itself: {yaml}"
    );
    let r = a.get("/api/v1/status/runtimeinfo");
    let d = &r.json()["data"];
    assert_eq!(d["reloadConfigSuccess"], true);
    assert_eq!(d["storageRetention"], "2w1d");
    let r = a.get("/api/v1/status/tsdb");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["data"]["headStats"]["numSeries"]
            .as_u64()
            .unwrap_or(0)
            >= 3,
        "{}",
        r.text()
    );
    let names = &r.json()["data"]["seriesCountByMetricName"];
    assert!(names.as_array().is_some_and(|a| !a.is_empty()), "{names}");
    for path in [
        "/api/v1/targets",
        "/api/v1/metadata",
        "/api/v1/targets/metadata",
        "/api/v1/status/walreplay",
        "/api/v1/rules",
        "/api/v1/alerts",
    ] {
        let r = a.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.json()["status"], "success", "{path}");
    }
    assert_eq!(a.get("/-/healthy").status, 200);
    assert_eq!(a.get("/-/ready").status, 200);
    a.get("/api/v1/query?query=test_metric");
    let m = a.get("/metrics");
    assert_eq!(m.status, 200);
    let text = m.text();
    for want in [
        "argus_remote_write_samples_received_total 60",
        "argus_remote_write_samples_rejected_total{reason=\"out_of_order\"} 0",
        "argus_tsdb_head_series ",
        "argus_tsdb_wal_fsync_duration_seconds_count ",
        "argus_tsdb_compactions_total ",
        "argus_engine_query_duration_seconds_bucket{kind=\"instant\",le=\"+Inf\"} ",
        "argus_http_requests_total{code=\"204\",handler=\"/api/v1/write\"} 1",
    ] {
        assert!(text.contains(want), "missing {want:?} in /metrics:\n{text}");
    }
}

#[test]
fn remote_write_errors_and_partial_batches() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    let base = seed(&a);
    // Out of order + invalid labels + a good series: 400, the good series is kept.
    let r = write(
        &a,
        vec![
            series(
                &[("__name__", "test_metric"), ("job", "a")],
                &[(base, 99.0)],
            ),
            series(&[("job", "x"), ("__name__", "unsorted")], &[(base, 1.0)]),
            series(
                &[("__name__", "dup"), ("a", "1"), ("a", "2")],
                &[(base, 1.0)],
            ),
            series(&[("__name__", "kept")], &[(base + 1000, 5.0)]),
        ],
    );
    assert_eq!(r.status, 400);
    let msg = r.text();
    for want in [
        "out of order sample",
        "labels not sorted",
        "duplicate label name",
    ] {
        assert!(msg.contains(want), "{want:?} missing in {msg:?}");
    }
    let r = a.get(&format!(
        "/api/v1/query?query=kept&time={}",
        secs(base + 2000)
    ));
    assert_eq!(
        r.json()["data"]["result"][0]["value"][1],
        "5",
        "{}",
        r.text()
    );
    // Metadata is accepted and served.
    let body = encode(&WriteRequest {
        timeseries: vec![],
        metadata: vec![MetricMetadata {
            r#type: 1,
            metric_family_name: "kept".into(),
            help: "Kept.".into(),
            unit: String::new(),
        }],
    });
    assert_eq!(write_raw(&a, &body).status, 204);
    // Malformed bodies.
    let r = write_raw(&a, b"\x05garbage");
    assert_eq!(r.status, 400, "corrupt snappy: {}", r.text());
    let truncated = {
        let full = WriteRequest {
            timeseries: vec![series(&[("__name__", "x")], &[(base, 1.0)])],
            metadata: vec![],
        };
        let raw = prost::Message::encode_to_vec(&full);
        snap::raw::Encoder::new()
            .compress_vec(&raw[..raw.len() - 3])
            .unwrap()
    };
    let r = write_raw(&a, &truncated);
    assert_eq!(r.status, 400, "truncated protobuf: {}", r.text());
    let r = write_raw(&a, &vec![0u8; (32 << 20) + 10]);
    assert_eq!(r.status, 413, "oversized body");
    let bomb = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 33 << 20])
        .unwrap();
    let r = write_raw(&a, &bomb);
    assert_eq!(r.status, 400, "oversized decompressed body: {}", r.text());
    let r = a.request(
        "POST",
        "/api/v1/write",
        &[(
            "Content-Type",
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        )],
        &body,
    );
    // A 1.0 body sent as 2.0 is an empty 2.0 request (fields 1-3 are reserved there).
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some("0")
    );
    let r = a.request(
        "POST",
        "/api/v1/write",
        &[(
            "Content-Type",
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
        )],
        &body,
    );
    assert_eq!(r.status, 415);
    assert_eq!(a.get("/api/v1/write").status, 405);
    // Still healthy and the data is intact.
    let r = a.get(&format!(
        "/api/v1/query?query=count(test_metric)&time={}",
        secs(base + 2000)
    ));
    assert_eq!(
        r.json()["data"]["result"][0]["value"][1],
        "2",
        "{}",
        r.text()
    );
}

#[test]
fn admin_api_snapshot_delete_clean() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        dir.path(),
        &[
            "--web.enable-admin-api",
            "--web.enable-remote-write-receiver",
        ],
    );
    let base = seed(&a);
    let r = a.post_form("/api/v1/admin/tsdb/snapshot", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let name = r.json()["data"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        name.len(),
        "20171210T211224Z-2be650b6d019eb54".len(),
        "{name}"
    );
    assert!(dir.path().join("snapshots").join(&name).is_dir());
    let r = a.post_form(
        "/api/v1/admin/tsdb/delete_series",
        &format!("match[]={}", enc("test_metric{job=\"a\"}")),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_error(
        &a.post_form("/api/v1/admin/tsdb/delete_series", ""),
        400,
        "bad_data",
        "no match[] parameter provided",
    );
    let r = a.get(&format!(
        "/api/v1/query?query=count(test_metric)&time={}",
        secs(base + 100_000)
    ));
    assert_eq!(
        r.json()["data"]["result"][0]["value"][1],
        "1",
        "{}",
        r.text()
    );
    assert_eq!(
        a.post_form("/api/v1/admin/tsdb/clean_tombstones", "")
            .status,
        204
    );
}

#[test]
fn bad_flags_exit_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_argus"))
        .arg("--no.such-flag=1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown long flag '--no.such-flag'"), "{err}");
    // An invalid configuration file stops the start with status 2, as Prometheus 2.42 does
    // (checked: it exits 2 with the same message for this file).
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        "remote_write:\n  - url: http://x\n    basic_auth: {username: a, password: b}\n    \
         authorization: {credentials: c}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_argus"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("at most one of basic_auth, oauth2 & authorization must be configured"),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_argus"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--web.enable-lifecycle"));
}

#[test]
fn reload_via_http_and_sighup_keeps_old_config_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 1m\nscrape_configs:\n  - job_name: one\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let a = Argus::start(
        &data,
        &[
            &format!("--config.file={}", cfg.display()),
            "--web.enable-lifecycle",
        ],
    );
    let yaml = |a: &Argus| {
        a.get("/api/v1/status/config").json()["data"]["yaml"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(yaml(&a).contains("job_name: one"));

    std::fs::write(&cfg, "global:\n  scrape_intervall: 1m\n").unwrap();
    let r = a.request("POST", "/-/reload", &[], b"");
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("failed to reload config") && r.text().contains("scrape_intervall"),
        "{}",
        r.text()
    );
    assert!(yaml(&a).contains("job_name: one"), "old config kept");
    assert_eq!(
        a.get("/api/v1/status/runtimeinfo").json()["data"]["reloadConfigSuccess"],
        false
    );

    std::fs::write(&cfg, "scrape_configs:\n  - job_name: two\n").unwrap();
    assert_eq!(a.request("PUT", "/-/reload", &[], b"").status, 200);
    assert!(yaml(&a).contains("job_name: two"));

    std::fs::write(&cfg, "scrape_configs:\n  - job_name: three\n").unwrap();
    a.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !yaml(&a).contains("job_name: three") {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        a.get("/api/v1/status/runtimeinfo").json()["data"]["reloadConfigSuccess"],
        true
    );
}

#[test]
fn sigterm_flushes_and_restart_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    let base = seed(&a);
    a.signal("TERM");
    let status = a.wait(Duration::from_secs(40));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        a.log()
    );
    drop(a);
    let b = Argus::start(dir.path(), &[]);
    let r = b.get(&format!(
        "/api/v1/query?query=sum(test_metric)&time={}",
        secs(base + 285_000)
    ));
    assert_eq!(
        r.json()["data"]["result"][0]["value"][1],
        "57",
        "{}",
        r.text()
    );
}

#[test]
fn quit_endpoint_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Argus::start(dir.path(), &["--web.enable-lifecycle"]);
    let r = a.request("POST", "/-/quit", &[], b"");
    assert_eq!(r.status, 200);
    assert!(a.wait(Duration::from_secs(40)).success());
}
