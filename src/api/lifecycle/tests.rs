//! Readiness and liveness under disk faults, injected through the WAL's I/O seam into a real
//! `Db` behind the real router.

use super::super::*;
use crate::ingest::prompb::{Label as PLabel, Sample, TimeSeries, WriteRequest};
use crate::ingest::remote_write::encode;
use argus_storage::testing::WalFaults;
use argus_storage::{Db, Options};
use axum::http::Request as HttpRequest;
use std::time::{Duration, Instant};
use tower::ServiceExt;

struct Fixture {
    db: Db,
    faults: WalFaults,
    state: SharedState,
    _dir: tempfile::TempDir,
    _reload_rx: mpsc::Receiver<ReloadRequest>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let faults = WalFaults::new();
    let opts = Options {
        background: false,
        ..Options::default()
    };
    let db = Db::open_with_wal_files(dir.path().join("data"), opts, faults.opener()).unwrap();
    let (reload_tx, reload_rx) = mpsc::channel(1);
    let state = Arc::new(AppState {
        db: Arc::new(db.clone()),
        engine_opts: EngineOptions::default(),
        engine: Arc::new(Engine::new(EngineOptions::default())),
        config: Arc::new(ConfigState::new(crate::config::Config::default(), 0)),
        admin_enabled: false,
        lifecycle_enabled: false,
        flags: BTreeMap::new(),
        data_dir: dir.path().to_path_buf(),
        retention_text: "15d".into(),
        start_time: SystemTime::now(),
        registry: Arc::new(Registry::new()),
        http_metrics: Arc::new(HttpMetrics::default()),
        query_metrics: Arc::new(QueryMetrics::default()),
        rw_metrics: Arc::new(RemoteWriteMetrics::default()),
        metadata: Arc::new(MetadataStore::new()),
        remote_write_enabled: true,
        otlp_enabled: true,
        ct_zero_ingestion: false,
        query_slots: Arc::new(tokio::sync::Semaphore::new(20)),
        remote_read: Arc::new(crate::api::read::ReadGate::new(Default::default())),
        agent: false,
        reload_tx,
        quit: Arc::new(Notify::new()),
        remote_write_limits: Default::default(),
        rw_cache: Arc::new(crate::ingest::series_cache::SeriesCache::new(
            Default::default(),
        )),
        notifier: None,
        rules: None,
    });
    Fixture {
        db,
        faults,
        state,
        _dir: dir,
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

fn get(uri: &str) -> HttpRequest<Body> {
    HttpRequest::get(uri).body(Body::empty()).unwrap()
}

fn write(t: i64) -> HttpRequest<Body> {
    let wr = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![PLabel {
                name: "__name__".into(),
                value: "disk_full_probe".into(),
            }],
            samples: vec![Sample {
                value: t as f64,
                timestamp: t,
            }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    HttpRequest::post("/api/v1/write")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(Body::from(encode(&wr)))
        .unwrap()
}

/// `/-/ready` is 503 while WAL writes fail, and 200 again once a write succeeds, without a
/// restart; the write refused meanwhile was not acknowledged, the others are all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_wal_writes_fail_then_recovers() {
    let f = fixture();
    let app = crate::server::build_router(f.state.clone(), None, Vec::new());
    let now = crate::util::time::now_ms();
    assert_eq!(call(&app, write(now)).await.0, 204);
    assert_eq!(call(&app, get("/-/ready")).await.0, 200);

    f.faults.set_disk_full(true);
    let (code, body) = call(&app, write(now + 1)).await;
    assert_eq!(code, 500, "{body}");
    let (code, body) = call(&app, get("/-/ready")).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("No space left on device"), "{body}");

    f.faults.set_disk_full(false);
    assert_eq!(call(&app, write(now + 2)).await.0, 204);
    assert_eq!(call(&app, get("/-/ready")).await.0, 200);

    f.faults.set_sync_fails(true);
    assert_eq!(call(&app, write(now + 3)).await.0, 500);
    let (code, body) = call(&app, get("/-/ready")).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("Input/output error"), "{body}");
    f.faults.set_sync_fails(false);
    assert_eq!(call(&app, write(now + 4)).await.0, 204);
    assert_eq!(call(&app, get("/-/ready")).await.0, 200);

    let q = f.db.querier(now - 10, now + 10).unwrap();
    let m = [Matcher::new(
        argus_storage::MatchType::Equal,
        "__name__",
        "disk_full_probe",
    )
    .unwrap()];
    let mut set = q.select(&m);
    assert!(set.next());
    let mut it = set.samples();
    let mut got = Vec::new();
    while it.next() {
        got.push(it.at().0 - now);
    }
    assert_eq!(got, [0, 2, 4]);
}

/// A stalled disk (every WAL sync sleeps 6 s) does not stall HTTP: while the push pool's commit
/// is stuck in its sync, `/-/healthy` still answers. One async worker, so a commit run on it
/// would block every other request until the sync returns. A liveness bound, not a timing
/// benchmark: the margin is seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn healthy_answers_while_a_wal_sync_is_stalled() {
    let f = fixture();
    let push_dir = tempfile::tempdir().unwrap();
    let svc = crate::push::PushService::open(
        push_dir.path(),
        crate::push::PushOptions {
            interval: Duration::from_millis(100),
            ..Default::default()
        },
        Arc::new(f.db.clone()),
    )
    .unwrap();
    let app =
        crate::server::build_router(f.state.clone(), None, vec![crate::api::push::router(&svc)]);
    let put = HttpRequest::put("/metrics/job/stall")
        .body(Body::from("stalled_metric 1\n"))
        .unwrap();
    let (code, body) = call(&app, put).await;
    assert_eq!(code, 200, "{body}");

    f.faults.set_sync_delay(Duration::from_secs(6));
    let before = f.faults.syncs();
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(svc.clone().run(stop_rx));
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.faults.syncs() == before {
        assert!(Instant::now() < deadline, "the pool never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The pool's commit is now inside its 6 s sync.
    let started = Instant::now();
    let probe = tokio::spawn({
        let app = app.clone();
        async move { call(&app, get("/-/healthy")).await }
    });
    let (code, _) = probe.await.unwrap();
    let took = started.elapsed();
    assert_eq!(code, 200);
    assert!(
        took < Duration::from_secs(2),
        "/-/healthy took {took:?} while a WAL sync was stalled"
    );
    f.faults.set_sync_delay(Duration::ZERO);
}
