//! push integration tests (owner: push helper): differential tests against the real
//! Pushgateway, restart durability, the push pool against `MemStorage`, TTL and limits.

use argus::push::{PushOptions, PushService};
use argus_storage::testing::MemStorage;
use argus_storage::{Labels, is_stale_nan};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A response from [`http`]: status, lower-cased headers, body.
pub(crate) struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Minimal blocking HTTP/1.1 client for loopback tests (Connection: close, chunked bodies).
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        assert!(!raw.is_empty(), "{method} {path}: read failed: {e}");
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size");
            let size = usize::from_str_radix(
                std::str::from_utf8(&rest[..nl])
                    .expect("utf8")
                    .split(';')
                    .next()
                    .expect("size")
                    .trim(),
                16,
            )
            .expect("hex");
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Serves `router` on a loopback port in `rt`; returns `host:port`.
pub(crate) fn serve(rt: &tokio::runtime::Runtime, router: axum::Router) -> String {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    rt.spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A child process killed (by its own handle) when dropped.
pub(crate) struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `GET addr/path` answers 200.
pub(crate) fn wait_ready(addr: &str, path: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect(addr).is_ok() && http(addr, "GET", path, &[], b"").status == 200 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn open(dir: &Path, opts: PushOptions, storage: &MemStorage) -> Arc<PushService> {
    PushService::open(dir, opts, Arc::new(storage.clone())).expect("open push service")
}

const TEXT: (&str, &str) = ("Content-Type", "text/plain; version=0.0.4");
const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Hand-encoded delimited protobuf: one gauge family `proto_gauge{a="x"} 3.5` with HELP.
fn proto_body() -> Vec<u8> {
    use argus::expose::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};
    let fam = MetricFamily {
        name: Some("proto_gauge".into()),
        help: Some("from protobuf".into()),
        r#type: Some(MetricType::Gauge as i32),
        metric: vec![Metric {
            label: vec![LabelPair::new("a", "x")],
            gauge: Some(Gauge { value: Some(3.5) }),
            ..Default::default()
        }],
        unit: None,
    };
    let mut buf = Vec::new();
    argus::push::body::encode_delimited(&[fam], &mut buf);
    buf
}

/// [`proto_body`] with one change applied.
fn proto_variant(f: impl FnOnce(&mut argus::expose::proto::MetricFamily)) -> Vec<u8> {
    let mut fams = argus::push::body::decode_delimited(&proto_body()).expect("own body");
    f(&mut fams[0]);
    let mut buf = Vec::new();
    argus::push::body::encode_delimited(&fams, &mut buf);
    buf
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

struct Step {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
}

fn step(method: &'static str, path: &'static str, body: &str) -> Step {
    Step {
        method,
        path,
        headers: vec![TEXT],
        body: body.as_bytes().to_vec(),
    }
}

/// The push sequence both servers receive. (Non-integer histogram counts are left out: 1.5.1
/// truncates them to integers, current Pushgateway keeps them as floats, as Argus does.)
fn sequence() -> Vec<Step> {
    let mut v = vec![
        step(
            "PUT",
            "/metrics/job/j1",
            "# HELP req_total Requests.\n# TYPE req_total counter\nreq_total{code=\"200\"} 10\nreq_total{code=\"500\"} 1\n# TYPE temp gauge\ntemp 21.5\n# HELP lat Latency.\n# TYPE lat summary\nlat{quantile=\"0.5\"} 0.2\nlat{quantile=\"0.99\"} 1.5e-07\nlat_sum 12\nlat_count 100\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 4\nh_sum 2.5\nh_count 4\nbig 1234567\n",
        ),
        step(
            "POST",
            "/metrics/job/j1",
            "# TYPE temp gauge\ntemp 22\nextra{x=\"y\"} 1e+06\n",
        ),
        step(
            "PUT",
            "/metrics/job/j2/instance/i1",
            "# TYPE temp gauge\ntemp{job=\"other\",instance=\"zzz\"} 5\n",
        ),
        step(
            "PUT",
            "/metrics/job@base64/L3Zhci90bXA=/path@base64/=",
            "b64_metric{v=\"a\\\"b\\\\c\\nd\"} 7\n",
        ),
        step(
            "PUT",
            "/metrics/job/j3/a/b",
            "# HELP req_total Other help.\n# TYPE req_total counter\nreq_total{code=\"200\"} 3\n",
        ),
        step("PUT", "/metrics/job/j4", "# TYPE temp counter\ntemp 1\n"),
        step("PUT", "/metrics/job/j5", "ts_metric 1 1700000000000\n"),
        step("PUT", "/metrics/job/j1", "# HELP x a\n# HELP x b\nx 1\n"),
        step("PUT", "/metrics/job/j1", "x 1\n# TYPE x counter\n"),
        step("PUT", "/metrics/job/j1", "x{a=\"\\q\"} 1\n"),
        step("PUT", "/metrics/job/j1", "# TYPE x foo\nx 1\n"),
        step("PUT", "/metrics/job/j1", "x 1"),
        step("PUT", "/metrics/job/j1", "x{a=\"1\",a=\"2\"} 1\n"),
        step("PUT", "/metrics/job/j1", "x abc\n"),
        step(
            "PUT",
            "/metrics/job/j1",
            "# TYPE s summary\ns{quantile=\"x\"} 1\n",
        ),
        step("PUT", "/metrics/job/j6", "dup 1\ndup 2\n"),
        step("PUT", "/metrics/job/j1/odd", "x 1\n"),
        step("PUT", "/metrics/job/j1/__reserved/v", "x 1\n"),
        step("PUT", "/metrics/job@base64/=", "x 1\n"),
        step("GET", "/metrics/job/j1", ""),
        step(
            "PUT",
            "/metrics/job/j7",
            "# TYPE lat_count gauge\nlat_count 1\n",
        ),
        step(
            "PUT",
            "/metrics/job/j8/instance/i1",
            "# TYPE temp gauge\ntemp{instance=\"i1\"} 9\n",
        ),
        step(
            "PUT",
            "/metrics/job/j9",
            "   \n# some comment\n\nspaced{a=\"1\" , b=\"2\",}   3  \n",
        ),
        step("PUT", "/metrics/job/j9", ""),
        step("DELETE", "/metrics/job/j2/instance/i1", ""),
        step("DELETE", "/metrics/job/never", ""),
        step("POST", "/metrics/job/j3/a/b", ""),
        step(
            "PUT",
            "/metrics/job/j10",
            "# HELP only_help x\n# TYPE only_type gauge\n",
        ),
        step(
            "PUT",
            "/metrics/job/j11",
            "# TYPE UPPER COUNTER\nUPPER 1\n# TYPE hh histogram\nhh_bucket{le=\"1\"} 1\nhh_count 2\nhh_sum 3\n",
        ),
        step(
            "PUT",
            "/metrics/job/j12",
            "# TYPE hh_count gauge\nhh_count 1\n",
        ),
        step(
            "PUT",
            "/metrics/job/j12",
            "# TYPE s2 summary\ns2_count 1\ns2_sum 1\ns2{quantile=\"0.5\",q=\"a\"} 1\n",
        ),
        step(
            "PUT",
            "/metrics/job/j13",
            "# TYPE push_time_seconds counter\npush_time_seconds 5\n",
        ),
        step(
            "PUT",
            "/metrics/job/j14",
            "# TYPE push_failure_time_seconds gauge\npush_failure_time_seconds 5\n",
        ),
        step(
            "POST",
            "/metrics/job/j14",
            "# TYPE push_failure_time_seconds gauge\npush_failure_time_seconds 5\n",
        ),
        step(
            "PUT",
            "/metrics/job/j15",
            "nanval NaN\nposinf +Inf\nneginf -inf\nexpval 1.5E3\nsmall 0.000012345\n",
        ),
        step("PUT", "/metrics/job/j16", "x{le=\"1\"} 1\n"),
        step(
            "PUT",
            "/metrics/job/j17",
            "# TYPE hh histogram\nhh_bucket{le=\"0.5\"} 1\n",
        ),
        step(
            "PUT",
            "/metrics/job/j1",
            "# TYPE temp gauge\ntemp{instance=\"\"} 23\n",
        ),
        step("PUT", "/metrics/job/j18", "# HELP esc a\\\\b\\nc\nesc 1\n"),
        step("PUT", "/metrics/job/j19", "bad_ts 1 1.5\n"),
        step("PUT", "/metrics/job/j19", "x 1 2 3\n"),
        step("PUT", "/metrics/job/j19", "0x 1\n"),
        step("PUT", "/metrics/job/j19", "x{0a=\"1\"} 1\n"),
        step("PUT", "/metrics/job/j19", "x{a=1} 1\n"),
        step("PUT", "/metrics/job/j19", "x{a=\"1\"\n"),
        step("PUT", "/metrics/job/j19", "x{__name__=\"y\"} 1\n"),
        step("PUT", "/metrics/job/j19", "x{__a=\"y\"} 1\n"),
        step("PUT", "/metrics/job/j19", "# TYPE x gauge extra\nx 1\n"),
        step("PUT", "/metrics/job/j19", "x\t{a=\"b\"}\t1\n"),
    ];
    v.push(Step {
        method: "PUT",
        path: "/metrics/job/jp",
        headers: vec![("Content-Type", PROTO_CT)],
        body: proto_body(),
    });
    v.push(Step {
        method: "PUT",
        path: "/metrics/job/jpts",
        headers: vec![("Content-Type", PROTO_CT)],
        body: proto_variant(|f| f.metric[0].timestamp_ms = Some(0)),
    });
    v.push(Step {
        method: "PUT",
        path: "/metrics/job/jptype",
        headers: vec![("Content-Type", PROTO_CT)],
        body: proto_variant(|f| {
            f.r#type = Some(0);
            f.name = Some("mistyped".into())
        }),
    });
    // (A family typed COUNTER holding a gauge metric under a name another group has as a gauge
    // is accepted or refused by Pushgateway depending on Go's map order; Argus refuses it.)
    v.push(Step {
        method: "PUT",
        path: "/metrics/job/jpsame",
        headers: vec![("Content-Type", PROTO_CT)],
        body: proto_variant(|f| f.name = Some("temp".into())),
    });
    v.push(Step {
        method: "PUT",
        path: "/metrics/job/jpnohelp",
        headers: vec![("Content-Type", PROTO_CT)],
        body: proto_variant(|f| {
            f.help = None;
            f.name = Some("nohelp".into())
        }),
    });
    v.push(Step {
        method: "PUT",
        path: "/metrics/job/jbad",
        headers: vec![("Content-Type", PROTO_CT)],
        body: vec![0x0a, 0x05, 0x0a],
    });
    v.push(Step {
        method: "PUT",
        path: "/metrics/job/jz",
        headers: vec![TEXT, ("Content-Encoding", "gzip")],
        body: gzip(b"zipped 1\n"),
    });
    // Pushgateway 1.5.1 leaves a mutex locked after an invalid base64 job name, so every later
    // PUT to `job@base64` hangs there: this must stay the last such PUT.
    v.push(step("PUT", "/metrics/job@base64/!!", "x 1\n"));
    v.push(Step {
        method: "PUT",
        path: "/metrics/job/jz2",
        headers: vec![TEXT, ("Content-Encoding", "gzip")],
        body: b"not gzip".to_vec(),
    });
    v
}

const OWN_PREFIXES: &[&str] = &["go_", "process_", "pushgateway_", "promhttp_"];

/// The pushed part of a `/metrics` exposition with push times masked and the HELP of families
/// pushed with conflicting help removed.
fn normalise_exposition(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        if OWN_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        // Families pushed with differing help: Pushgateway picks one at random (Go map order).
        // That includes push_time_seconds / push_failure_time_seconds, which one step pushes
        // itself without HELP: Pushgateway then shows its own HELP line or none, by chance.
        if [
            "req_total",
            "temp",
            "push_time_seconds",
            "push_failure_time_seconds",
        ]
        .iter()
        .any(|f| {
            line.strip_prefix("# HELP ")
                .is_some_and(|r| r.starts_with(&format!("{f} ")))
        }) {
            continue;
        }
        if line.starts_with("push_time_seconds") || line.starts_with("push_failure_time_seconds") {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let value = if value == "0" { "0" } else { "<T>" };
            out.push(format!("{series} {value}"));
            continue;
        }
        out.push(line.to_string());
    }
    out.join("\n")
}

fn normalise_api(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).expect("json");
    assert_eq!(v["status"], "success");
    let mut groups: Vec<Value> = v["data"].as_array().expect("data array").clone();
    for g in &mut groups {
        for (name, fam) in g.as_object_mut().expect("group object").iter_mut() {
            if name == "labels" || name == "last_push_successful" {
                continue;
            }
            fam["time_stamp"] = Value::String("<TS>".into());
            if name == "push_time_seconds" || name == "push_failure_time_seconds" {
                for m in fam["metrics"].as_array_mut().expect("metrics") {
                    if m["value"] != "0" {
                        m["value"] = Value::String("<T>".into());
                    }
                }
            }
            if name == "req_total" {
                fam.as_object_mut().expect("family").remove("help");
            }
        }
    }
    groups.sort_by_key(|g| g["labels"].to_string());
    Value::Array(groups)
}

fn diff(what: &str, want: &str, got: &str) {
    if want != got
        && let Some(dir) = std::env::var_os("ARGUS_TEST_DUMP")
    {
        let base = Path::new(&dir).join(what.replace(['/', ' '], "_"));
        let _ = std::fs::write(base.with_extension("want"), want);
        let _ = std::fs::write(base.with_extension("got"), got);
    }
    assert!(
        want == got,
        "{what} differ\n--- pushgateway ---\n{want}\n--- argus ---\n{got}\n"
    );
}

#[test]
fn differential_against_real_pushgateway() {
    let bin = "/usr/bin/prometheus-pushgateway";
    if !Path::new(bin).exists() {
        crate::missing(
            "differential_against_real_pushgateway",
            &format!("{bin} not installed"),
        );
        return;
    }
    let port = free_port();
    let pg_addr = format!("127.0.0.1:{port}");
    let pg_dir = tempfile::tempdir().expect("tempdir");
    // Debian's build defaults --persistence.file to /var/lib/prometheus: keep ours private.
    let _pg = KillOnDrop(
        Command::new(bin)
            .arg(format!("--web.listen-address={pg_addr}"))
            .arg(format!(
                "--persistence.file={}",
                pg_dir.path().join("pg.data").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pushgateway"),
    );
    assert!(
        wait_ready(&pg_addr, "/-/ready", Duration::from_secs(10)),
        "pushgateway did not start"
    );

    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = MemStorage::new();
    let svc = open(dir.path(), PushOptions::default(), &storage);
    let ours = serve(&rt, argus::api::push::standalone_router(&svc));

    let mut mismatches = Vec::new();
    for s in sequence() {
        let h: Vec<(&str, &str)> = s.headers.clone();
        let a = http(&pg_addr, s.method, s.path, &h, &s.body);
        let b = http(&ours, s.method, s.path, &h, &s.body);
        if a.status != b.status {
            mismatches.push(format!(
                "{} {}: pushgateway {} {:?}, argus {} {:?}",
                s.method,
                s.path,
                a.status,
                a.text(),
                b.status,
                b.text()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "status mismatches:\n{}",
        mismatches.join("\n")
    );

    let a = http(&pg_addr, "GET", "/metrics", &[], b"");
    let b = http(&ours, "GET", "/metrics", &[], b"");
    assert_eq!((a.status, b.status), (200, 200));
    for want in [
        "req_total{a=\"b\",code=\"200\",instance=\"\",job=\"j3\"} 3",
        "proto_gauge",
        "zipped",
        "b64_metric",
    ] {
        assert!(b.text().contains(want), "argus /metrics lacks {want}");
    }
    diff(
        "/metrics",
        &normalise_exposition(&a.text()),
        &normalise_exposition(&b.text()),
    );

    let a = http(&pg_addr, "GET", "/api/v1/metrics", &[], b"");
    let b = http(&ours, "GET", "/api/v1/metrics", &[], b"");
    let (na, nb) = (normalise_api(&a.text()), normalise_api(&b.text()));
    diff(
        "/api/v1/metrics",
        &serde_json::to_string_pretty(&na).expect("json"),
        &serde_json::to_string_pretty(&nb).expect("json"),
    );
    assert_eq!(b.header("access-control-allow-origin"), Some("*"));
}

fn push(addr: &str, method: &str, path: &str, body: &str) -> Resp {
    http(addr, method, path, &[TEXT], body.as_bytes())
}

#[test]
fn groups_survive_restart_without_clean_shutdown() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = MemStorage::new();
    let before = {
        let svc = open(dir.path(), PushOptions::default(), &storage);
        let addr = serve(&rt, argus::api::push::standalone_router(&svc));
        assert_eq!(
            push(
                &addr,
                "PUT",
                "/metrics/job/a",
                "# HELP m help\n# TYPE m counter\nm{x=\"1\"} 1\n"
            )
            .status,
            200
        );
        assert_eq!(
            push(
                &addr,
                "PUT",
                "/metrics/job/b/instance/i",
                "# TYPE s summary\ns_sum 1\ns_count 2\n"
            )
            .status,
            200
        );
        assert_eq!(push(&addr, "POST", "/metrics/job/a", "n 2\n").status, 200);
        assert_eq!(push(&addr, "PUT", "/metrics/job/c", "gone 1\n").status, 200);
        assert_eq!(push(&addr, "DELETE", "/metrics/job/c", "").status, 202);
        assert_eq!(
            push(&addr, "PUT", "/metrics/job/d", "t 1 1000\n").status,
            400
        );
        let m = http(&addr, "GET", "/metrics", &[], b"").text();
        let j = http(&addr, "GET", "/api/v1/metrics", &[], b"").text();
        (m, j)
        // The service, its server task and the runtime's state are simply abandoned: no close,
        // no flush (all acknowledged writes must already be on disk).
    };
    drop(rt);
    let rt = runtime();
    let svc = open(dir.path(), PushOptions::default(), &storage);
    let addr = serve(&rt, argus::api::push::standalone_router(&svc));
    let m = http(&addr, "GET", "/metrics", &[], b"").text();
    let j = http(&addr, "GET", "/api/v1/metrics", &[], b"").text();
    diff("/metrics after restart", &before.0, &m);
    diff("/api/v1/metrics after restart", &before.1, &j);
    assert!(m.contains("m{instance=\"\",job=\"a\",x=\"1\"} 1\n"), "{m}");
    assert!(
        m.contains("push_failure_time_seconds{instance=\"\",job=\"d\"}"),
        "failure recorded: {m}"
    );
    assert!(!m.contains("gone"), "{m}");
}

fn find(storage: &MemStorage, pairs: &[(&str, &str)]) -> Option<Vec<(i64, f64)>> {
    let want = Labels::from_pairs(pairs);
    storage
        .dump()
        .into_iter()
        .find(|(l, _)| *l == want)
        .map(|(_, s)| s)
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn pool_appends_series_and_marks_deleted_ones_stale() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = MemStorage::new();
    let opts = PushOptions {
        interval: Duration::from_millis(50),
        ..PushOptions::default()
    };
    let svc = open(dir.path(), opts, &storage);
    let addr = serve(&rt, argus::api::push::router(&svc));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let pool = rt.spawn(svc.clone().run(rx));
    assert_eq!(push(&addr, "PUT", "/metrics/job/batch/instance/host1", "# TYPE done gauge\ndone{job=\"x\"} 3\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1.5\nh_count 2\n").status, 200);
    assert_eq!(
        push(&addr, "PUT", "/metrics/job/other", "v 1\n").status,
        200
    );
    let done = [
        ("__name__", "done"),
        ("job", "batch"),
        ("instance", "host1"),
    ];
    assert!(
        wait_for(Duration::from_secs(5), || find(&storage, &done)
            .is_some_and(|s| s.len() >= 2)),
        "done not appended twice: {:?}",
        storage.dump()
    );
    let s = find(&storage, &done).expect("series");
    assert!(s.iter().all(|&(_, v)| v == 3.0));
    assert!(
        s.windows(2).all(|w| w[0].0 < w[1].0),
        "increasing timestamps"
    );
    // Classic histogram exploded; no instance label where the grouping key has none.
    assert!(
        find(
            &storage,
            &[
                ("__name__", "h_bucket"),
                ("job", "batch"),
                ("instance", "host1"),
                ("le", "+Inf")
            ]
        )
        .is_some()
    );
    assert!(find(&storage, &[("__name__", "v"), ("job", "other")]).is_some());
    assert!(
        find(
            &storage,
            &[("__name__", "push_time_seconds"), ("job", "other")]
        )
        .is_some()
    );
    assert_eq!(push(&addr, "DELETE", "/metrics/job/other", "").status, 202);
    let v = [("__name__", "v"), ("job", "other")];
    assert!(
        wait_for(Duration::from_secs(5), || find(&storage, &v)
            .and_then(|s| s.last().copied())
            .is_some_and(|(_, x)| is_stale_nan(x))),
        "no stale marker: {:?}",
        find(&storage, &v)
    );
    tx.send(true).expect("shutdown");
    rt.block_on(pool).expect("pool stops");
}

#[test]
fn ttl_expires_groups_with_stale_markers() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = MemStorage::new();
    let opts = PushOptions {
        interval: Duration::from_millis(50),
        group_ttl: Some(Duration::from_millis(300)),
        ..PushOptions::default()
    };
    let svc = open(dir.path(), opts.clone(), &storage);
    let addr = serve(&rt, argus::api::push::router(&svc));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    rt.spawn(svc.clone().run(rx));
    assert_eq!(
        push(&addr, "PUT", "/metrics/job/short", "x 1\n").status,
        200
    );
    let x = [("__name__", "x"), ("job", "short")];
    assert!(
        wait_for(Duration::from_secs(5), || find(&storage, &x)
            .and_then(|s| s.last().copied())
            .is_some_and(|(_, v)| is_stale_nan(v))),
        "expected stale marker: {:?}",
        find(&storage, &x)
    );
    let j = http(&addr, "GET", "/api/v1/metrics", &[], b"").text();
    assert_eq!(
        serde_json::from_str::<Value>(&j).expect("json")["data"],
        Value::Array(vec![])
    );
    // Expired groups stay gone after a restart.
    let again = open(dir.path(), opts, &storage);
    let addr2 = serve(&rt, argus::api::push::router(&again));
    let j = http(&addr2, "GET", "/api/v1/metrics", &[], b"").text();
    assert_eq!(
        serde_json::from_str::<Value>(&j).expect("json")["data"],
        Value::Array(vec![])
    );
}

/// Gzip push bodies go through the shared bounded decoder: every member of a multi-member body
/// is read (as Pushgateway's Go reader does), a body decompressing to exactly the limit fits and
/// one byte more is refused with 413, and a broken stream is a 400 naming the decoder's error.
#[test]
fn gzip_bodies_read_every_member_within_the_limit() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = MemStorage::new();
    let opts = PushOptions {
        max_body_bytes: 64,
        ..PushOptions::default()
    };
    let svc = open(dir.path(), opts, &storage);
    let addr = serve(&rt, argus::api::push::router(&svc));
    let put = |path: &str, body: &[u8]| {
        http(
            &addr,
            "PUT",
            path,
            &[TEXT, ("Content-Encoding", "gzip")],
            body,
        )
    };
    let two = [gzip(b"first 1\n"), gzip(b"second 2\n")].concat();
    let r = put("/metrics/job/multi", &two);
    assert_eq!(r.status, 200, "{}", r.text());
    let j: Value = serde_json::from_str(&http(&addr, "GET", "/api/v1/metrics", &[], b"").text())
        .expect("json");
    let group = &j["data"][0];
    assert!(
        group.get("first").is_some() && group.get("second").is_some(),
        "both members' series pushed: {j}"
    );
    // 64 bytes exactly; one byte more (a blank line) does not fit.
    let mut exact: String = (0..10).map(|i| format!("m{i} 1\n")).collect();
    exact.push_str("m10 123456789\n");
    assert_eq!(exact.len(), 64);
    let r = put("/metrics/job/exact", &gzip(exact.as_bytes()));
    assert_eq!(r.status, 200, "{}", r.text());
    let over = format!("{exact}\n");
    let r = put("/metrics/job/over", &gzip(over.as_bytes()));
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("limit of 64 bytes"), "{}", r.text());
    let r = put("/metrics/job/bad", b"certainly not a gzip stream");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("invalid gzip header"), "{}", r.text());
}

#[test]
fn bounds_are_enforced_without_losing_data() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = MemStorage::new();
    let opts = PushOptions {
        max_body_bytes: 64,
        max_groups: 2,
        max_series_per_group: 4,
        enable_admin: true,
        ..PushOptions::default()
    };
    let svc = open(dir.path(), opts, &storage);
    let addr = serve(&rt, argus::api::push::router(&svc));
    assert_eq!(push(&addr, "PUT", "/metrics/job/a", "a 1\n").status, 200);
    let big = "x 1\n".repeat(20);
    let r = push(&addr, "PUT", "/metrics/job/a", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("64 bytes"), "{}", r.text());
    let r = http(
        &addr,
        "PUT",
        "/metrics/job/a",
        &[TEXT, ("Content-Encoding", "gzip")],
        &gzip(big.as_bytes()),
    );
    assert_eq!(r.status, 413, "decompressed size is bounded too");
    // 2 series from the push + push_time + push_failure = 4: fits; one more does not.
    assert_eq!(
        push(&addr, "PUT", "/metrics/job/b", "b 1\nc 1\n").status,
        200
    );
    let r = push(&addr, "POST", "/metrics/job/b", "d 1\n");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("limit of 4"), "{}", r.text());
    let r = push(&addr, "PUT", "/metrics/job/c", "c 1\n");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("limit of 2"), "{}", r.text());
    let j: Value = serde_json::from_str(&http(&addr, "GET", "/api/v1/metrics", &[], b"").text())
        .expect("json");
    let groups = j["data"].as_array().expect("array");
    assert_eq!(groups.len(), 2);
    assert!(
        groups[1].get("d").is_none() && groups[1].get("b").is_some(),
        "{j}"
    );
    assert_eq!(groups[1]["last_push_successful"], true);
    // Admin wipe.
    assert_eq!(
        http(&addr, "PUT", "/api/v1/admin/wipe", &[], b"").status,
        202
    );
    let j: Value = serde_json::from_str(&http(&addr, "GET", "/api/v1/metrics", &[], b"").text())
        .expect("json");
    assert_eq!(j["data"], Value::Array(vec![]));
    let svc2 = open(dir.path(), PushOptions::default(), &storage);
    let addr2 = serve(&rt, argus::api::push::router(&svc2));
    assert_eq!(
        http(&addr2, "PUT", "/api/v1/admin/wipe", &[], b"").status,
        404,
        "admin API off by default"
    );
}

fn conformance_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("ARGUS_CONFORMANCE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain([
            std::path::PathBuf::from("/work/shared/conformance"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"),
        ])
        .find(|p| p.join("exposition").exists())
}

/// The push text decoder accepts exactly what the strict `expfmt` parser (Pushgateway's)
/// accepts, on the conformance corpus and the hand-written cases.
#[test]
fn text_decoder_matches_strict_expfmt_on_conformance_corpus() {
    use argus::push::text::parse_text;
    let Some(dir) = conformance_dir() else {
        crate::missing(
            "text_decoder_matches_strict_expfmt_on_conformance_corpus",
            "conformance/exposition not found",
        );
        return;
    };
    let dir = dir.join("exposition");
    let mut wrong = Vec::new();
    let mut checked = 0;
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expfmt-corpus/INDEX.json")).expect("index"),
    )
    .expect("json");
    for f in index["files"].as_array().expect("files") {
        let name = f["file"].as_str().expect("file");
        let want = f["strict_valid"].as_bool().expect("strict_valid");
        let input = std::fs::read(dir.join("expfmt-corpus").join(name)).expect("read");
        let got = parse_text(&input);
        checked += 1;
        if got.is_ok() != want {
            wrong.push(format!("{name}: want valid={want}, got {got:?}"));
        }
    }
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).expect("cases"))
            .expect("json");
    for c in cases["cases"].as_array().expect("cases") {
        if c["format"] != "text" {
            continue;
        }
        let want = c["strict_valid"]
            .as_bool()
            .or(c["valid"].as_bool())
            .expect("valid");
        let got = parse_text(c["input"].as_str().expect("input").as_bytes());
        checked += 1;
        if got.is_ok() != want {
            wrong.push(format!("{}: want valid={want}, got {got:?}", c["id"]));
        }
    }
    // Real expfmt output in both encodings: the same families.
    let text = parse_text(&std::fs::read(dir.join("expfmt-testdata/text")).expect("text"));
    let proto = argus::push::body::decode_delimited(
        &std::fs::read(dir.join("expfmt-testdata/protobuf")).expect("protobuf"),
    );
    match (text, proto) {
        (Ok(t), Ok(p)) => {
            let names = |v: &[argus::expose::proto::MetricFamily]| {
                let mut n: Vec<(String, usize)> = v
                    .iter()
                    .map(|f| (f.name().to_string(), f.metric.len()))
                    .collect();
                n.sort();
                n
            };
            assert!(!t.is_empty());
            assert_eq!(names(&t), names(&p), "text vs protobuf testdata");
        }
        (t, p) => wrong.push(format!(
            "expfmt-testdata: text {:?}, protobuf {:?}",
            t.err(),
            p.err()
        )),
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked > 40, "only {checked} inputs checked");
}

/// `testdata/push/*.txt` bodies: accepted, and rendered back exactly (they are written in the
/// canonical exposition form) or at least re-parsable.
#[test]
fn testdata_bodies_roundtrip() {
    use argus::push::text::parse_text;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/push");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("testdata/push") {
        let path = e.expect("entry").path();
        if path.extension().and_then(|x| x.to_str()) != Some("txt") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("read");
        let fams = parse_text(src.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let out = argus::push::text_exposition(&fams);
        let again = parse_text(out.as_bytes()).expect("exposition re-parses");
        assert_eq!(again.len(), fams.len(), "{}", path.display());
        if !path.ends_with("escapes.txt") {
            assert_eq!(out, src, "{} is canonical", path.display());
        }
        n += 1;
    }
    assert!(n >= 3);
}
