//! Router tests over `MemStorage` (no engine evaluation: the query endpoints are exercised up
//! to parameter validation here, end to end in `tests/it/server.rs`).

use super::*;
use crate::ingest::prompb::{Label as PLabel, Sample, TimeSeries, WriteRequest};
use crate::ingest::remote_write::encode;
use argus_storage::testing::MemStorage;
use argus_storage::{Appender, Labels, Querier};
use axum::body::Body;
use axum::http::Request as HttpRequest;
use tower::ServiceExt;

struct MemTsdb(MemStorage);

impl Queryable for MemTsdb {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> StorageResult<Box<dyn Querier + '_>> {
        self.0.querier(mint, maxt)
    }
}
impl Appendable for MemTsdb {
    fn appender(&self) -> Box<dyn Appender> {
        self.0.appender()
    }
}
impl Tsdb for MemTsdb {
    fn delete_series(&self, _: &[Matcher], _: Timestamp, _: Timestamp) -> StorageResult<()> {
        Err(argus_storage::Error::InvalidArgument(
            "not supported by MemStorage".into(),
        ))
    }
    fn clean_tombstones(&self) -> StorageResult<()> {
        Ok(())
    }
    fn snapshot(&self, dir: &Path, _with_head: bool) -> StorageResult<()> {
        std::fs::create_dir(dir).map_err(|e| argus_storage::Error::io("snapshot", e))
    }
    fn stats(&self, _limit: usize) -> TsdbStats {
        TsdbStats {
            num_series: self.0.dump().len() as u64,
            ..Default::default()
        }
    }
    fn metrics(&self) -> DbMetrics {
        DbMetrics::default()
    }
}

struct Fixture {
    storage: MemStorage,
    app: Router,
    dir: tempfile::TempDir,
    _reload_rx: mpsc::Receiver<ReloadRequest>,
}

fn fixture(admin: bool) -> Fixture {
    let storage = MemStorage::new();
    for (job, t, v) in [("a", 1000, 1.0), ("a", 2000, 2.0), ("b", 1000, 3.0)] {
        storage.insert(
            Labels::from_pairs(&[("__name__", "up"), ("job", job)]),
            t,
            v,
        );
    }
    storage.insert(
        Labels::from_pairs(&[("__name__", "other"), ("zone", "z1")]),
        5000,
        1.0,
    );
    let dir = tempfile::tempdir().unwrap();
    let (reload_tx, reload_rx) = mpsc::channel(1);
    let state = Arc::new(AppState {
        db: Arc::new(MemTsdb(storage.clone())),
        engine_opts: EngineOptions::default(),
        engine: Arc::new(Engine::new(EngineOptions::default())),
        config: Arc::new(ConfigState::new(crate::config::Config::default(), 0)),
        admin_enabled: admin,
        lifecycle_enabled: false,
        flags: [("web.listen-address".to_string(), ":9090".to_string())].into(),
        data_dir: dir.path().to_path_buf(),
        retention_text: "15d".into(),
        start_time: SystemTime::now(),
        registry: Arc::new(Registry::new()),
        http_metrics: Arc::new(HttpMetrics::default()),
        query_metrics: Arc::new(QueryMetrics::default()),
        rw_metrics: Arc::new(RemoteWriteMetrics::default()),
        metadata: Arc::new(MetadataStore::new()),
        reload_tx,
        quit: Arc::new(Notify::new()),
        remote_write_limits: Default::default(),
        notifier: None,
        rules: None,
        remote_write_enabled: true,
        query_slots: Arc::new(tokio::sync::Semaphore::new(20)),
    });
    state.registry.register(state.http_metrics.clone());
    let app = crate::server::build_router(state, None, Vec::new());
    Fixture {
        storage,
        app,
        dir,
        _reload_rx: reload_rx,
    }
}

async fn call(app: &Router, req: HttpRequest<Body>) -> (u16, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn get(app: &Router, uri: &str) -> (u16, String) {
    call(app, HttpRequest::get(uri).body(Body::empty()).unwrap()).await
}

async fn post_form(app: &Router, uri: &str, form: &str) -> (u16, String) {
    let req = HttpRequest::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap();
    call(app, req).await
}

fn bad_data(msg: &str) -> String {
    serde_json::json!({"status": "error", "errorType": "bad_data", "error": msg}).to_string()
}

fn assert_json(got: &str, want: serde_json::Value) {
    let got: serde_json::Value = serde_json::from_str(got).unwrap_or_else(|e| panic!("{e}: {got}"));
    assert_eq!(got, want, "\nwant: {want}\n got: {got}");
}

#[tokio::test]
async fn query_parameter_errors_match_prometheus() {
    let f = fixture(false);
    let check = async |uri: &str, want: &str| {
        let (code, body) = get(&f.app, uri).await;
        assert_eq!(code, 400, "{uri}: {body}");
        assert_json(&body, serde_json::from_str(&bad_data(want)).unwrap());
    };
    check(
        "/api/v1/query?query=up&time=abc",
        "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"abc\" to a valid timestamp",
    )
    .await;
    check(
        "/api/v1/query?query=up&timeout=x",
        "invalid parameter \"timeout\": cannot parse \"x\" to a valid duration",
    )
    .await;
    check(
        "/api/v1/query_range?query=up&end=10&step=1",
        "invalid parameter \"start\": cannot parse \"\" to a valid timestamp",
    )
    .await;
    check(
        "/api/v1/query_range?query=up&start=10&end=5&step=1",
        "invalid parameter \"end\": end timestamp must not be before start time",
    )
    .await;
    check(
        "/api/v1/query_range?query=up&start=0&end=5&step=",
        "invalid parameter \"step\": cannot parse \"\" to a valid duration",
    )
    .await;
    check(
        "/api/v1/query_range?query=up&start=0&end=5&step=0",
        "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
    )
    .await;
    check("/api/v1/query_range?query=up&start=0&end=11001&step=1", "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)").await;
    check("/api/v1/query_range?query=up[5m]&start=0&end=10&step=1", "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector").await;
    check("/api/v1/series", "no match[] parameter provided").await;

    let (code, body) = get(&f.app, "/api/v1/query?query=sum(").await;
    assert_eq!(code, 400);
    assert!(body.contains("invalid parameter \\\"query\\\": "), "{body}");
    let (code, body) = post_form(
        &f.app,
        "/api/v1/query_range",
        "query=up&start=0&end=11001&step=1",
    )
    .await;
    assert_eq!(code, 400, "form POST is validated the same: {body}");
    // 11,000 points exactly is allowed by the check (the engine is not called: bad query).
    let (code, body) = get(
        &f.app,
        "/api/v1/query_range?query=(&start=0&end=11000&step=1",
    )
    .await;
    assert_eq!(code, 400);
    assert!(body.contains("query\\\""), "{body}");
}

#[tokio::test]
async fn series_labels_values() {
    let f = fixture(false);
    let (code, body) = get(
        &f.app,
        "/api/v1/series?match[]=up&match[]=other&start=0&end=10",
    )
    .await;
    assert_eq!(code, 200);
    assert_json(
        &body,
        serde_json::json!({"status": "success", "data": [
            {"__name__": "other", "zone": "z1"},
            {"__name__": "up", "job": "a"},
            {"__name__": "up", "job": "b"},
        ]}),
    );
    let (_, body) = post_form(
        &f.app,
        "/api/v1/series",
        "match%5B%5D=up%7Bjob%3D%22b%22%7D",
    )
    .await;
    assert_json(
        &body,
        serde_json::json!({"status": "success", "data": [{"__name__": "up", "job": "b"}]}),
    );
    let (_, body) = get(&f.app, "/api/v1/series?match[]=up&limit=1").await;
    assert_json(
        &body,
        serde_json::json!({"status": "success", "data": [{"__name__": "up", "job": "a"}],
            "warnings": ["results truncated due to limit"]}),
    );
    // Time range applies: only `other` has data at 5 s.
    let (_, body) = get(&f.app, "/api/v1/labels?start=4&end=6").await;
    assert_json(
        &body,
        serde_json::json!({"status": "success", "data": ["__name__", "zone"]}),
    );
    let (_, body) = get(&f.app, "/api/v1/labels").await;
    assert_json(
        &body,
        serde_json::json!({"status": "success", "data": ["__name__", "job", "zone"]}),
    );
    let (_, body) = get(&f.app, "/api/v1/labels?match[]=up").await;
    assert_json(
        &body,
        serde_json::json!({"status": "success", "data": ["__name__", "job"]}),
    );
    let (_, body) = get(&f.app, "/api/v1/label/__name__/values?start=0&end=3").await;
    assert_json(
        &body,
        serde_json::json!({"status": "success", "data": ["up"]}),
    );
    let (_, body) = get(
        &f.app,
        "/api/v1/label/job/values?match[]=up%7Bjob!%3D%22a%22%7D",
    )
    .await;
    assert_json(
        &body,
        serde_json::json!({"status": "success", "data": ["b"]}),
    );
    let (_, body) = get(&f.app, "/api/v1/label/nope/values").await;
    assert_json(&body, serde_json::json!({"status": "success", "data": []}));
    let (code, body) = get(&f.app, "/api/v1/series?match[]=up%7B").await;
    assert_eq!(code, 400);
    assert!(body.contains("invalid parameter \\\"match[]\\\""), "{body}");
    let (code, body) = get(&f.app, "/api/v1/labels?match[]=%7Bjob%3D~%22.*%22%7D").await;
    assert_eq!(code, 400);
    assert_json(
        &body,
        serde_json::from_str(&bad_data(
            "match[] must contain at least one non-empty matcher",
        ))
        .unwrap(),
    );
    let (code, _) = get(&f.app, "/api/v1/labels?start=x").await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn status_and_misc_endpoints() {
    let f = fixture(false);
    let (code, body) = get(&f.app, "/api/v1/status/buildinfo").await;
    assert_eq!(code, 200);
    assert!(body.contains("\"version\":\"0.1.0\""), "{body}");
    let (_, body) = get(&f.app, "/api/v1/status/flags").await;
    assert_json(
        &body,
        serde_json::json!({"status": "success", "data": {"web.listen-address": ":9090"}}),
    );
    let (_, body) = get(&f.app, "/api/v1/status/config").await;
    assert!(body.contains("scrape_interval: 1m"), "{body}");
    let (_, body) = get(&f.app, "/api/v1/status/runtimeinfo").await;
    assert!(body.contains("\"storageRetention\":\"15d\""), "{body}");
    let (_, body) = get(&f.app, "/api/v1/status/tsdb").await;
    assert!(body.contains("\"numSeries\":3"), "{body}");
    let (code, _) = get(&f.app, "/api/v1/status/tsdb?limit=0").await;
    assert_eq!(code, 400);
    let (_, body) = get(&f.app, "/api/v1/metadata").await;
    assert_json(&body, serde_json::json!({"status": "success", "data": {}}));
    let (_, body) = get(&f.app, "/api/v1/targets").await;
    assert!(body.contains("activeTargets"), "{body}");
    let (_, body) = get(&f.app, "/api/v1/query_exemplars?query=up&start=0&end=1").await;
    assert_json(&body, serde_json::json!({"status": "success", "data": []}));
    let (code, body) = get(&f.app, "/api/v1/nope").await;
    assert_eq!((code, body.as_str()), (404, "404 page not found\n"));
    let (code, _) = get(&f.app, "/-/healthy").await;
    assert_eq!(code, 200);
    let (code, body) = call(
        &f.app,
        HttpRequest::post("/-/reload").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (code, body.as_str()),
        (403, "Lifecycle API is not enabled.\n")
    );
    let (_, body) = get(&f.app, "/metrics").await;
    assert!(
        body.contains("argus_http_requests_total{code=\"404\",handler=\"other\"} 1"),
        "{body}"
    );
    assert!(body.contains("handler=\"/api/v1/status/tsdb\""), "{body}");
}

#[tokio::test]
async fn admin_endpoints() {
    let off = fixture(false);
    let (code, body) = call(
        &off.app,
        HttpRequest::post("/api/v1/admin/tsdb/snapshot")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, 500, "Prometheus answers `unavailable` with 500");
    assert_json(
        &body,
        serde_json::json!({"status": "error", "errorType": "unavailable", "error": "admin APIs disabled"}),
    );
    let on = fixture(true);
    let (code, body) = call(
        &on.app,
        HttpRequest::post("/api/v1/admin/tsdb/snapshot")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let name = v["data"]["name"].as_str().unwrap();
    assert!(on.dir.path().join("snapshots").join(name).is_dir());
    let (code, _) = post_form(&on.app, "/api/v1/admin/tsdb/snapshot", "skip_head=maybe").await;
    assert_eq!(code, 400);
    let (code, body) = post_form(&on.app, "/api/v1/admin/tsdb/delete_series", "").await;
    assert_eq!(code, 400);
    assert_json(
        &body,
        serde_json::from_str(&bad_data("no match[] parameter provided")).unwrap(),
    );
    let (code, _) = post_form(&on.app, "/api/v1/admin/tsdb/clean_tombstones", "").await;
    assert_eq!(code, 204);
}

fn write_req(body: Vec<u8>) -> HttpRequest<Body> {
    HttpRequest::post("/api/v1/write")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn remote_write_statuses() {
    let f = fixture(false);
    let ts = |name: &str, t: i64| TimeSeries {
        labels: vec![PLabel {
            name: "__name__".into(),
            value: name.into(),
        }],
        samples: vec![Sample {
            value: 7.0,
            timestamp: t,
        }],
        exemplars: vec![],
        histograms: vec![],
    };
    let now = crate::util::time::now_ms();
    let ok = WriteRequest {
        timeseries: vec![ts("rw", now)],
        metadata: vec![],
    };
    let (code, body) = call(&f.app, write_req(encode(&ok))).await;
    assert_eq!((code, body.as_str()), (204, ""));
    assert!(
        f.storage
            .dump()
            .iter()
            .any(|(l, s)| l.metric_name() == Some("rw") && s == &[(now, 7.0)])
    );

    // Out of order sample is 400, the valid rest of the request is kept.
    let mixed = WriteRequest {
        timeseries: vec![ts("rw", now - 1000), ts("rw2", now)],
        metadata: vec![],
    };
    let (code, body) = call(&f.app, write_req(encode(&mixed))).await;
    assert_eq!(code, 400);
    assert!(body.contains("out of order sample"), "{body}");
    assert!(
        f.storage
            .dump()
            .iter()
            .any(|(l, _)| l.metric_name() == Some("rw2"))
    );

    let (code, body) = call(&f.app, write_req(b"\x05garbage".to_vec())).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("snappy"), "{body}");
    let truncated = snap::raw::Encoder::new()
        .compress_vec(&[0x0a, 0x20, 0x0a, 0x02])
        .unwrap();
    let (code, body) = call(&f.app, write_req(truncated)).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("protobuf"), "{body}");
    let bomb = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 40 << 20])
        .unwrap();
    let (code, body) = call(&f.app, write_req(bomb)).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("exceeds the limit"), "{body}");
    let huge = vec![0u8; (32 << 20) + 1];
    let (code, _) = call(&f.app, write_req(huge)).await;
    assert_eq!(code, 413);
    // A 1.0 body announced as 2.0 is an empty 2.0 request (fields 1-3 are reserved).
    let req = HttpRequest::post("/api/v1/write")
        .header(
            "content-type",
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        )
        .body(Body::from(encode(&ok)))
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        resp.headers()["x-prometheus-remote-write-samples-written"],
        "0"
    );
    let req = HttpRequest::post("/api/v1/write")
        .header(
            "content-type",
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
        )
        .body(Body::from(encode(&ok)))
        .unwrap();
    assert_eq!(call(&f.app, req).await.0, 415);
    let req = HttpRequest::post("/api/v1/write")
        .header("content-encoding", "gzip")
        .body(Body::from(encode(&ok)))
        .unwrap();
    assert_eq!(call(&f.app, req).await.0, 415);
    assert_eq!(get(&f.app, "/api/v1/write").await.0, 405);
}

#[tokio::test]
async fn gzip_when_asked() {
    let f = fixture(false);
    let req = HttpRequest::get("/api/v1/labels")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(
        resp.headers().get("content-encoding").map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).unwrap();
    assert_json(
        &text,
        serde_json::json!({"status": "success", "data": ["__name__", "job", "zone"]}),
    );
}
