//! Remote-write sender through the real binary: samples remote-written into Argus must reach a
//! receiver exactly as Argus stored them (external labels attached, `write_relabel_configs`
//! applied), through receiver outages (503, 429 with `Retry-After`), restarts of Argus
//! (SIGTERM and SIGKILL) in the middle of an outage, dropped 400 batches, reloads, and against
//! real receivers (VictoriaMetrics, Prometheus, a second Argus over Remote Write 2.0).

use crate::server::harness;

use crate::server::peer::{self, Peer};
use argus::ingest::prompb::{TimeSeries, WriteRequest};
use argus::ingest::remote_write::{Decoder, MAX_DECOMPRESSED_BYTES, encode};
use argus::ingest::{prompb_v2, remote_write_v2};
use harness::{Argus, enc, free_port, now_ms, try_request};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Samples by rendered label set: `(t, value bits)` in arrival order.
type Store = BTreeMap<String, Vec<(i64, u64)>>;

/// What the fake receiver answers.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// 204 (and the samples are kept).
    Ok,
    /// This status, with `Retry-After: n` seconds when set (nothing kept).
    Fail(u16, Option<u64>),
    /// This status for the next request only, then `Ok`.
    FailOnce(u16),
}

#[derive(Default)]
struct RecvState {
    answer: Option<Answer>,
    accepted: Store,
    /// `(status, samples, was 2.0)` per request.
    requests: Vec<(u16, usize, bool)>,
}

/// A remote-write receiver the test runs: HTTP/1.1 with keep-alive, decodes 1.0 and 2.0.
struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<RecvState>>,
}

impl Receiver {
    fn start() -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let state = Arc::new(Mutex::new(RecvState::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { return };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &st);
                });
            }
        });
        Receiver { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    fn set(&self, a: Answer) {
        self.state.lock().unwrap().answer = Some(a);
    }

    fn accepted(&self) -> Store {
        self.state.lock().unwrap().accepted.clone()
    }

    fn requests(&self) -> Vec<(u16, usize, bool)> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn render(labels: &[argus::ingest::prompb::Label]) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

fn serve(s: TcpStream, st: &Mutex<RecvState>) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let (mut len, mut v2) = (0usize, false);
        loop {
            let mut h = String::new();
            r.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("content-type:") && lower.contains("io.prometheus.write.v2") {
                v2 = true;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        let mut req = WriteRequest::default();
        let decoded = if v2 {
            let mut r2 = prompb_v2::Request::default();
            remote_write_v2::decode_into(
                &mut Decoder::new(),
                &body,
                MAX_DECOMPRESSED_BYTES,
                &mut r2,
            )
            .map(|()| remote_write_v2::to_v1(&r2, &mut req).rejected_total == 0)
            .unwrap_or(false)
        } else {
            Decoder::new()
                .decode_into(&body, MAX_DECOMPRESSED_BYTES, &mut req)
                .is_ok()
        };
        let n: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
        let (status, retry_after) = {
            let mut g = st.lock().unwrap();
            let answer = g.answer.unwrap_or(Answer::Ok);
            let (status, retry) = match answer {
                _ if !decoded => (400, None),
                Answer::Ok => (204, None),
                Answer::Fail(s, r) => (s, r),
                Answer::FailOnce(s) => {
                    g.answer = Some(Answer::Ok);
                    (s, None)
                }
            };
            if status == 204 {
                for ts in &req.timeseries {
                    let e = g.accepted.entry(render(&ts.labels)).or_default();
                    e.extend(ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())));
                }
            }
            g.requests.push((status, n, v2));
            (status, retry)
        };
        let mut resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n");
        if let Some(s) = retry_after {
            resp.push_str(&format!("Retry-After: {s}\r\n"));
        }
        resp.push_str("\r\n");
        w.write_all(resp.as_bytes())?;
    }
}

/// Polls `f` every 100 ms for at most `timeout`.
pub(crate) fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The stale-marker bit pattern.
const STALE: u64 = 0x7ff0_0000_0000_0002;

/// Series written into Argus in every batch; `rw_dropped` is dropped by the write relabeling.
const SERIES: &[&[(&str, &str)]] = &[
    &[("__name__", "rw_a"), ("k", "1")],
    &[("__name__", "rw_a"), ("k", "2")],
    &[("__name__", "rw_b"), ("job", "j")],
    &[("__name__", "rw_dropped")],
];

/// Batch `j`: one sample per series at `t0 + j s`, value `j * 10 + series index`.
fn batch(t0: i64, j: i64) -> Vec<TimeSeries> {
    SERIES
        .iter()
        .enumerate()
        .map(|(i, l)| TimeSeries::from_pairs(l, &[(t0 + j * 1000, (j * 10 + i as i64) as f64)]))
        .collect()
}

fn write(a: &Argus, ts: Vec<TimeSeries>) {
    let body = encode(&WriteRequest {
        timeseries: ts,
        metadata: vec![],
    });
    let r = a.request(
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
        &body,
    );
    assert_eq!(r.status, 204, "{}", r.text());
}

/// What the receiver must hold after batches `js` (with `replica="a"` attached, no
/// `rw_dropped`), plus a stale marker for `rw_b` when `stale_at` is set.
fn expected(t0: i64, js: impl Iterator<Item = i64> + Clone, stale_at: Option<i64>) -> Store {
    let mut want = Store::new();
    for (i, l) in SERIES.iter().enumerate().take(3) {
        let mut labels: Vec<(&str, &str)> = l.to_vec();
        labels.push(("replica", "a"));
        labels.sort();
        let ts = TimeSeries::from_pairs(&labels, &[]);
        let e: &mut Vec<(i64, u64)> = want.entry(render(&ts.labels)).or_default();
        e.extend(
            js.clone()
                .map(|j| (t0 + j * 1000, ((j * 10 + i as i64) as f64).to_bits())),
        );
        if i == 2
            && let Some(t) = stale_at
        {
            e.push((t, STALE));
        }
    }
    want
}

fn config(dir: &Path, text: &str) -> String {
    let p = dir.join("argus.yml");
    std::fs::write(&p, text).unwrap();
    format!("--config.file={}", p.display())
}

const GLOBAL: &str = "global:\n  external_labels:\n    replica: a\nremote_write:\n";

/// One `remote_write:` entry with small batches and fast retries; `extra_queue` adds
/// `queue_config` lines, `extra` entry lines.
fn queue_yaml(url: &str, name: &str, extra_queue: &str, extra: &str) -> String {
    format!(
        "  - url: {url}\n    name: {name}\n{extra}    queue_config:\n      \
         batch_send_deadline: 200ms\n      min_backoff: 50ms\n      max_backoff: 400ms\n      \
         max_samples_per_send: 5\n      capacity: 20\n      max_shards: 4\n{extra_queue}\
         \n    write_relabel_configs:\n      - source_labels: [__name__]\n        \
         regex: rw_dropped\n        action: drop\n"
    )
}

fn sender_config(url: &str, extra_queue: &str) -> String {
    format!("{GLOBAL}{}", queue_yaml(url, "fake", extra_queue, ""))
}

/// A counter of `/metrics` for the queue named `fake`.
fn queue_metric(a: &Argus, name: &str) -> f64 {
    let text = a.get("/metrics").text();
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{remote_name=\"fake\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} for queue fake not in /metrics:\n{text}"))
}

/// Asserts the receiver holds exactly `want`: same series, per series the same samples in the
/// same order, none twice.
fn assert_delivered(r: &Receiver, want: &Store) {
    let ok = wait_until(Duration::from_secs(60), || {
        let got = r.accepted();
        want.iter()
            .all(|(k, v)| got.get(k).is_some_and(|g| g.len() >= v.len()))
    });
    let got = r.accepted();
    assert!(ok, "not everything arrived\nwant: {want:?}\ngot:  {got:?}");
    assert_eq!(&got, want, "\nwant: {want:?}\ngot:  {got:?}");
}

/// The samples of `{__name__=~"rw_.+"}` in `[t0 - 1h, now]` as an Argus or Prometheus query
/// API answers them (stale markers are not returned by range selectors).
fn stored(addr: SocketAddr) -> Store {
    let q = enc("{__name__=~\"rw_.+\"}[3h]");
    let path = format!(
        "/api/v1/query?query={q}&time={}",
        now_ms() as f64 / 1000.0 + 60.0
    );
    let r = try_request(addr, "GET", &path, &[], b"").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let mut out = Store::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let mut labels: Vec<(String, String)> = s["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        labels.sort();
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let key = render(&TimeSeries::from_pairs(&pairs, &[]).labels);
        let samples = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                let v: f64 = p[1].as_str().unwrap().parse().unwrap();
                (t, v.to_bits())
            })
            .collect();
        out.insert(key, samples);
    }
    out
}

/// `store` without stale markers.
fn without_stale(store: &Store) -> Store {
    store
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter().copied().filter(|s| s.1 != STALE).collect(),
            )
        })
        .collect()
}

#[test]
fn forwards_what_argus_stored() {
    let r = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &sender_config(&r.url(), ""));
    let a = Argus::start(
        &dir.path().join("data"),
        &[&cfg, "--web.enable-remote-write-receiver"],
    );
    let t0 = now_ms() - 3_600_000;
    for j in 0..20 {
        write(&a, batch(t0, j));
    }
    let stale_at = t0 + 20_000;
    let mut stale = TimeSeries::from_pairs(SERIES[2], &[(stale_at, 0.0)]);
    stale.samples[0].value = f64::from_bits(STALE);
    write(&a, vec![stale]);
    let want = expected(t0, 0..20, Some(stale_at));
    assert_delivered(&r, &want);
    // Exactly what Argus answers for its own data, with the external label added.
    let mut own = stored(a.addr);
    assert_eq!(own.len(), 4, "{own:?}");
    own.retain(|k, _| !k.contains("rw_dropped"));
    let own: Store = own
        .into_iter()
        .map(|(k, v)| (k.replace('}', ",replica=\"a\"}"), v))
        .collect();
    assert_eq!(without_stale(&r.accepted()), own);
    assert_eq!(queue_metric(&a, "argus_remote_storage_samples_total"), 61.0);
    assert_eq!(
        queue_metric(&a, "argus_remote_storage_samples_dropped_total"),
        20.0
    );
    assert_eq!(
        queue_metric(&a, "argus_remote_storage_samples_failed_total"),
        0.0
    );
    assert!(r.requests().iter().all(|q| !q.2), "1.0 by default");
}

/// Writes batches `js` while the receiver answers `a`.
fn outage_phase(argus: &Argus, r: &Receiver, a: Answer, t0: i64, js: std::ops::Range<i64>) {
    r.set(a);
    for j in js {
        write(argus, batch(t0, j));
        std::thread::sleep(Duration::from_millis(150));
    }
}

#[test]
fn outage_503_then_429_then_recovery() {
    let r = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &sender_config(&r.url(), "      retry_on_http_429: true\n"),
    );
    let a = Argus::start(
        &dir.path().join("data"),
        &[&cfg, "--web.enable-remote-write-receiver"],
    );
    let t0 = now_ms() - 3_600_000;
    outage_phase(&a, &r, Answer::Ok, t0, 0..5);
    outage_phase(&a, &r, Answer::Fail(503, None), t0, 5..25);
    outage_phase(&a, &r, Answer::Fail(429, Some(1)), t0, 25..45);
    r.set(Answer::Ok);
    write(&a, batch(t0, 45));
    assert_delivered(&r, &expected(t0, 0..46, None));
    let reqs = r.requests();
    assert!(reqs.iter().any(|q| q.0 == 503), "{reqs:?}");
    assert!(reqs.iter().any(|q| q.0 == 429), "{reqs:?}");
    assert!(queue_metric(&a, "argus_remote_storage_samples_retried_total") > 0.0);
    assert_eq!(
        queue_metric(&a, "argus_remote_storage_samples_failed_total"),
        0.0
    );
}

fn restart_during_outage(kill: bool) {
    let r = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config(dir.path(), &sender_config(&r.url(), ""));
    let args = [cfg.as_str(), "--web.enable-remote-write-receiver"];
    let mut a = Argus::start(&data, &args);
    let t0 = now_ms() - 3_600_000;
    outage_phase(&a, &r, Answer::Ok, t0, 0..5);
    assert!(wait_until(Duration::from_secs(30), || r.accepted().len() == 3));
    outage_phase(&a, &r, Answer::Fail(503, None), t0, 5..15);
    assert!(wait_until(Duration::from_secs(30), || r
        .requests()
        .iter()
        .any(|q| q.0 == 503)));
    if kill {
        a.kill9();
    } else {
        a.signal("TERM");
        assert!(a.wait(Duration::from_secs(30)).success(), "{}", a.log());
    }
    let a = Argus::start(&data, &args);
    outage_phase(&a, &r, Answer::Fail(503, None), t0, 15..20);
    r.set(Answer::Ok);
    write(&a, batch(t0, 20));
    assert_delivered(&r, &expected(t0, 0..21, None));
}

#[test]
fn outage_survives_sigterm() {
    restart_during_outage(false);
}

#[test]
fn outage_survives_sigkill() {
    restart_during_outage(true);
}

#[test]
fn bad_request_is_dropped_and_counted() {
    let r = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &sender_config(&r.url(), ""));
    let a = Argus::start(
        &dir.path().join("data"),
        &[&cfg, "--web.enable-remote-write-receiver"],
    );
    let t0 = now_ms() - 3_600_000;
    r.set(Answer::FailOnce(400));
    write(&a, batch(t0, 0));
    assert!(wait_until(Duration::from_secs(30), || !r
        .requests()
        .is_empty()));
    for j in 1..5 {
        write(&a, batch(t0, j));
    }
    let reqs = r.requests();
    assert_eq!(reqs[0].0, 400, "{reqs:?}");
    let dropped = reqs[0].1;
    assert_delivered(&r, &{
        // The first request's samples (a prefix of batch 0's) are gone for good.
        let mut want = expected(t0, 0..5, None);
        let mut left = dropped;
        for v in want.values_mut() {
            if left > 0 && v.first().is_some_and(|s| s.0 == t0) {
                v.remove(0);
                left -= 1;
            }
        }
        want.retain(|_, v| !v.is_empty());
        want
    });
    assert_eq!(
        queue_metric(&a, "argus_remote_storage_samples_failed_total"),
        dropped as f64
    );
}

#[test]
fn reload_adds_changes_and_removes_queues() {
    let r = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config(dir.path(), "global:\n  external_labels:\n    replica: a\n");
    let a = Argus::start(
        &data,
        &[
            &cfg,
            "--web.enable-remote-write-receiver",
            "--web.enable-lifecycle",
        ],
    );
    let reload = |text: &str| {
        config(dir.path(), text);
        let resp = a.request("POST", "/-/reload", &[], b"");
        assert_eq!(resp.status, 200, "{}", resp.text());
    };
    let t0 = now_ms() - 3_600_000;
    // Before the queue exists: not sent (a new queue starts at the end of the WAL).
    write(&a, batch(t0, 0));
    reload(&sender_config(&r.url(), ""));
    write(&a, batch(t0, 1));
    assert_delivered(&r, &expected(t0, 1..2, None));
    // Changed during an outage: restarts from its acknowledged position, loses nothing.
    r.set(Answer::Fail(503, None));
    write(&a, batch(t0, 2));
    assert!(wait_until(Duration::from_secs(30), || r
        .requests()
        .iter()
        .any(|q| q.0 == 503)));
    reload(&sender_config(&r.url(), "      min_shards: 2\n"));
    write(&a, batch(t0, 3));
    r.set(Answer::Ok);
    assert_delivered(&r, &expected(t0, 1..4, None));
    // Removed: nothing more is sent.
    reload("global:\n  external_labels:\n    replica: a\n");
    let n = r.requests().len();
    write(&a, batch(t0, 4));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(r.requests().len(), n);
}

pub(crate) fn spawn(bin: &str, args: &[String]) -> Peer {
    Peer(
        Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin}: {e}")),
    )
}

pub(crate) fn wait_ready(addr: SocketAddr, path: &str) {
    assert!(
        wait_until(Duration::from_secs(60), || try_request(
            addr,
            "GET",
            path,
            &[],
            b""
        )
        .is_ok_and(|r| r.status == 200)),
        "{addr}{path} not ready"
    );
}

/// Argus with the queues `queues` (YAML entries) gets 20 batches; returns it and what the
/// receivers must hold (with `replica="a"` added, without `rw_dropped`).
fn send_to(dir: &Path, queues: &str) -> (Argus, Store, i64) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = config(dir, &format!("{GLOBAL}{queues}"));
    let a = Argus::start(
        &dir.join("data"),
        &[&cfg, "--web.enable-remote-write-receiver"],
    );
    let t0 = now_ms() - 3_600_000;
    for j in 0..20 {
        write(&a, batch(t0, j));
    }
    let want = without_stale(&expected(t0, 0..20, None));
    (a, want, t0)
}

#[test]
fn interop_victoria_metrics() {
    const VM: &str = "/usr/bin/victoria-metrics";
    if !peer::installed(VM, "victoria-metrics", "remote-write interop") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _vm = spawn(
        VM,
        &[
            format!("-storageDataPath={}", dir.path().join("vm").display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-retentionPeriod=100y".into(),
        ],
    );
    wait_ready(addr, "/health");
    let url = format!("http://{addr}/api/v1/write");
    let (_a, want, _) = send_to(dir.path(), &queue_yaml(&url, "vm", "", ""));
    let export = || -> Store {
        let _ = try_request(addr, "GET", "/internal/force_flush", &[], b"");
        let q = enc("{__name__=~\"rw_.+\"}");
        let r = try_request(
            addr,
            "GET",
            &format!("/api/v1/export?match[]={q}"),
            &[],
            b"",
        );
        let mut out = Store::new();
        for line in r.map(|r| r.text()).unwrap_or_default().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut labels: Vec<(String, String)> = v["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            labels.sort();
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let key = render(&TimeSeries::from_pairs(&pairs, &[]).labels);
            let samples = v["timestamps"]
                .as_array()
                .unwrap()
                .iter()
                .zip(v["values"].as_array().unwrap())
                .map(|(t, x)| (t.as_i64().unwrap(), x.as_f64().unwrap().to_bits()))
                .collect();
            out.insert(key, samples);
        }
        out
    };
    let ok = wait_until(Duration::from_secs(60), || export() == want);
    assert!(ok, "\nwant: {want:?}\ngot:  {:?}", export());
}

#[test]
fn interop_prometheus_receiver() {
    if !peer::installed(peer::PROMETHEUS, "prometheus", "remote-write interop") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcfg = dir.path().join("prometheus.yml");
    std::fs::write(&pcfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let (_p, addr) = peer::prometheus(
        &pcfg,
        &dir.path().join("prom"),
        &["--web.enable-remote-write-receiver"],
    );
    peer::wait_ready(addr, Duration::from_secs(60));
    let url = format!("http://{addr}/api/v1/write");
    let (a, want, _) = send_to(dir.path(), &queue_yaml(&url, "prom", "", ""));
    let ok = wait_until(Duration::from_secs(60), || stored(addr) == want);
    assert!(ok, "\nwant: {want:?}\ngot:  {:?}", stored(addr));
    // And Prometheus answers like Argus does for its own data (plus the external label).
    let own: Store = stored(a.addr)
        .into_iter()
        .filter(|(k, _)| !k.contains("rw_dropped"))
        .map(|(k, v)| (k.replace('}', ",replica=\"a\"}"), v))
        .collect();
    assert_eq!(stored(addr), own);
}

#[test]
fn argus_to_argus_over_2_0_and_1_0() {
    let dir = tempfile::tempdir().unwrap();
    let b2 = Argus::start(
        &dir.path().join("b2"),
        &["--web.enable-remote-write-receiver"],
    );
    let b1 = Argus::start(
        &dir.path().join("b1"),
        &["--web.enable-remote-write-receiver"],
    );
    let queues = format!(
        "{}{}",
        queue_yaml(
            &format!("http://{}/api/v1/write", b2.addr),
            "v2",
            "",
            "    protobuf_message: io.prometheus.write.v2.Request\n"
        ),
        queue_yaml(&format!("http://{}/api/v1/write", b1.addr), "v1", "", "")
    );
    let (a, want, _) = send_to(&dir.path().join("a"), &queues);
    for b in [&b2, &b1] {
        let ok = wait_until(Duration::from_secs(60), || stored(b.addr) == want);
        assert!(ok, "\nwant: {want:?}\ngot:  {:?}", stored(b.addr));
    }
    let own: Store = stored(a.addr)
        .into_iter()
        .filter(|(k, _)| !k.contains("rw_dropped"))
        .map(|(k, v)| (k.replace('}', ",replica=\"a\"}"), v))
        .collect();
    assert_eq!(stored(b2.addr), own);
}

/// Serves `/metrics` with a counter that grows at each scrape.
fn start_target() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut n = 0u64;
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            n += 1;
            let body = format!(
                "# TYPE rw_scraped_total counter\nrw_scraped_total{{path=\"/a\"}} {n}\n\
                 rw_scraped_total{{path=\"/b\"}} {}\nrw_gauge 42\n",
                n * 2
            );
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// Samples of `{job="t"}` over the last hour as the query API answers them.
fn stored_job(addr: SocketAddr) -> Store {
    let q = enc("{job=\"t\"}[1h]");
    let path = format!(
        "/api/v1/query?query={q}&time={}",
        now_ms() as f64 / 1000.0 + 60.0
    );
    let r = try_request(addr, "GET", &path, &[], b"").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let mut out = Store::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let mut labels: Vec<(String, String)> = s["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        labels.sort();
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let key = render(&TimeSeries::from_pairs(&pairs, &[]).labels);
        let samples = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                let v: f64 = p[1].as_str().unwrap().parse().unwrap();
                (t, v.to_bits())
            })
            .collect();
        out.insert(key, samples);
    }
    out
}

#[test]
fn scraped_samples_and_staleness_markers_are_forwarded() {
    let r = Receiver::start();
    let target = start_target();
    let dir = tempfile::tempdir().unwrap();
    let scrape = format!(
        "scrape_configs:\n  - job_name: t\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    \
         static_configs:\n      - targets: ['{target}']\n"
    );
    let queue = queue_yaml(&r.url(), "fake", "", "");
    let cfg = config(dir.path(), &format!("{GLOBAL}{queue}{scrape}"));
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            &cfg,
            "--web.enable-remote-write-receiver",
            "--web.enable-lifecycle",
        ],
    );
    assert!(wait_until(Duration::from_secs(30), || {
        stored_job(a.addr)
            .values()
            .next()
            .is_some_and(|v| v.len() >= 8)
    }));
    // Removing the target ends its series with staleness markers; then nothing changes.
    config(dir.path(), &format!("{GLOBAL}{queue}"));
    assert_eq!(a.request("POST", "/-/reload", &[], b"").status, 200);
    let marked =
        |s: &Store| !s.is_empty() && s.values().all(|v| v.last().is_some_and(|x| x.1 == STALE));
    assert!(
        wait_until(Duration::from_secs(30), || marked(&r.accepted())),
        "no staleness markers: {:?}",
        r.accepted()
    );
    let own: Store = stored_job(a.addr)
        .into_iter()
        .map(|(k, v)| (k.replace('}', ",replica=\"a\"}"), v))
        .collect();
    assert!(
        own.keys().any(|k| k.contains("rw_scraped_total")),
        "{own:?}"
    );
    assert_eq!(without_stale(&r.accepted()), own);
}

#[test]
fn prometheus_reads_argus_over_remote_read() {
    if !peer::installed(peer::PROMETHEUS, "prometheus", "remote-write interop") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "global:\n  external_labels:\n    replica: a\n");
    let a = Argus::start(
        &dir.path().join("data"),
        &[&cfg, "--web.enable-remote-write-receiver"],
    );
    let t0 = now_ms() - 3_600_000;
    for j in 0..20 {
        write(&a, batch(t0, j));
    }
    let pcfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &pcfg,
        format!(
            "global:\n  scrape_interval: 1h\nremote_read:\n  - url: http://{}/api/v1/read\n    \
             read_recent: true\n",
            a.addr
        ),
    )
    .unwrap();
    let (_p, addr) = peer::prometheus(&pcfg, &dir.path().join("prom"), &[]);
    peer::wait_ready(addr, Duration::from_secs(60));
    // Prometheus answers from Argus's data exactly as Argus does, external label included.
    let own: Store = stored(a.addr)
        .into_iter()
        .map(|(k, v)| (k.replace('}', ",replica=\"a\"}"), v))
        .collect();
    assert_eq!(own.len(), 4);
    assert_eq!(stored(addr), own);
}
