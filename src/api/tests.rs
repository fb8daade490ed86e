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
        rw_cache: Arc::new(crate::ingest::series_cache::SeriesCache::new(
            Default::default(),
        )),
        notifier: None,
        rules: None,
        remote_write_enabled: true,
        otlp_enabled: true,
        ct_zero_ingestion: false,
        query_slots: Arc::new(tokio::sync::Semaphore::new(20)),
        remote_read: Arc::new(crate::api::read::ReadGate::new(Default::default())),
        agent: false,
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

/// A range query whose JSON exceeds one chunk is streamed in pieces; the pieces must join into
/// the same document a single buffer would hold: every series and point, in order.
#[tokio::test]
async fn large_range_result_streams_whole() {
    let f = fixture(false);
    const SERIES: usize = 2_000;
    const POINTS: i64 = 101;
    for i in 0..SERIES {
        let l = Labels::from_pairs(&[("__name__", "big"), ("i", &format!("{i:04}"))]);
        for k in 0..POINTS {
            f.storage
                .insert(l.clone(), k * 1000, i as f64 * 1000.0 + k as f64 / 8.0);
        }
    }
    // Gzip-encoded too: the compression layer polls the body once more after its end.
    let req = HttpRequest::get("/api/v1/query_range?query=big&start=0&end=100&step=1")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let gz = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let mut unzipped = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped)
        .expect("complete gzip stream");
    let (status, body) = get(
        &f.app,
        "/api/v1/query_range?query=big&start=0&end=100&step=1",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(unzipped, body, "gzip and plain bodies differ");
    assert!(
        body.len() > 2 * format::QUERY_DATA_CHUNK,
        "the body ({} bytes) must span several chunks for this test to mean anything",
        body.len()
    );
    let doc: serde_json::Value =
        serde_json::from_str(&body).expect("streamed body is one JSON document");
    assert_eq!(doc["status"], "success");
    let result = doc["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), SERIES);
    for (i, s) in result.iter().enumerate() {
        assert_eq!(s["metric"]["i"], format!("{i:04}"));
        let values = s["values"].as_array().unwrap();
        assert_eq!(values.len(), POINTS as usize);
        for (k, p) in values.iter().enumerate() {
            assert_eq!(p[0], serde_json::json!(k));
            let want = i as f64 * 1000.0 + k as f64 / 8.0;
            assert_eq!(p[1].as_str().unwrap().parse::<f64>().unwrap(), want);
        }
    }
}

/// Native histograms in `/api/v1/query` and `query_range` JSON, and the query's annotations in
/// `warnings`/`infos` (issue 16).
#[tokio::test]
async fn native_histograms_and_annotations_in_query_json() {
    let f = fixture(false);
    let h = argus_storage::FloatHistogram {
        schema: 0,
        count: 3.0,
        sum: 2.5,
        positive_spans: vec![argus_storage::Span::new(0, 2)],
        positive_buckets: vec![1.0, 2.0],
        ..Default::default()
    };
    let hl = Labels::from_pairs(&[("__name__", "hist"), ("job", "a")]);
    f.storage.insert_histogram(hl.clone(), 10_000, h.clone());
    f.storage.insert_histogram(hl, 20_000, h);
    let (code, body) = get(&f.app, "/api/v1/query?query=hist&time=20").await;
    assert_eq!(code, 200, "{body}");
    assert_json(
        &body,
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "hist", "job": "a"}, "histogram": [20, {
                "count": "3", "sum": "2.5",
                "buckets": [[0, "0.5", "1", "1"], [0, "1", "2", "2"]]}]}]}}),
    );
    let (code, body) = get(
        &f.app,
        "/api/v1/query_range?query=hist*2&start=10&end=20&step=10",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let series = &v["data"]["result"][0];
    assert!(series.get("values").is_none(), "{body}");
    assert_eq!(
        series["histograms"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    assert_eq!(series["histograms"][1][1]["count"], "6", "{body}");
    // A histogram compared with a float is dropped with an info.
    let (_, body) = get(&f.app, "/api/v1/query?query=hist%3E1&time=20").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"], serde_json::json!([]), "{body}");
    assert!(
        v["infos"][0]
            .as_str()
            .is_some_and(|s| s.starts_with("PromQL info: incompatible sample types")),
        "{body}"
    );
    // Floats and histograms in one aggregation group: a warning and no result.
    let (_, body) = get(&f.app, "/api/v1/query?query=sum(hist%20or%20up)&time=20").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["warnings"],
        serde_json::json!([
            "PromQL warning: encountered a mix of histograms and floats for aggregation"
        ]),
        "{body}"
    );
}
