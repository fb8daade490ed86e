//! Agent mode (`--agent`) through the real binary: an agent scrapes a target and remote-writes
//! to a second Argus; its query API answers Prometheus's agent error, its UI leads to the agent
//! page, it writes no block, and its WAL is truncated once the queue has acknowledged it.

#[allow(dead_code, clippy::duplicate_mod)]
#[path = "server/harness.rs"]
mod harness;

use harness::{Argus, enc, free_port, now_ms};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

/// Series the target exposes (enough to fill a 32 KiB WAL segment every second or so).
const SERIES: usize = 300;

/// Serves `/metrics` with `SERIES` gauges whose values change at every scrape.
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
            let mut body = String::from("# TYPE agent_g gauge\n");
            // Noisy values: the WAL encodes each sample against the series' previous one, so
            // the rotation tests need values that do not shrink to nothing.
            for i in 0..SERIES {
                let v = (n * 2_654_435_761 + i as u64 * 40_503) % 1_000_003;
                body.push_str(&format!("agent_g{{i=\"{i}\"}} {}\n", v as f64 / 7.0));
            }
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

/// Polls `f` every 100 ms for at most `timeout`.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
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

/// Indexes of the WAL segment files in `wal`.
fn segments(wal: &Path) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir(wal)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// Number of series of `{job="t"}` the receiver holds.
fn received(r: &Argus) -> usize {
    let q = enc("count({__name__=\"agent_g\",job=\"t\"})");
    let v = r
        .get(&format!(
            "/api/v1/query?query={q}&time={}",
            now_ms() as f64 / 1000.0
        ))
        .json();
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn agent_forwards_refuses_queries_and_truncates_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Argus::start(
        &dir.path().join("receiver"),
        &["--web.enable-remote-write-receiver"],
    );
    let target = start_target();
    let cfg = dir.path().join("agent.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  external_labels:\n    agent: a1\nscrape_configs:\n  - job_name: t\n    \
             scrape_interval: 100ms\n    scrape_timeout: 100ms\n    static_configs:\n      \
             - targets: ['{target}']\nremote_write:\n  - url: http://{}/api/v1/write\n    \
             queue_config:\n      batch_send_deadline: 100ms\n",
            receiver.addr
        ),
    )
    .unwrap();
    let agent_dir = dir.path().join("agent");
    let agent = Argus::start(
        &dir.path().join("unused"),
        &[
            "--agent",
            &format!("--config.file={}", cfg.display()),
            &format!("--storage.agent.path={}", agent_dir.display()),
            "--storage.agent.wal-truncate-frequency=2s",
            "--storage.agent.wal-segment-size=32KB",
            "--storage.agent.retention.min-time=1s",
        ],
    );

    // The local query API answers as Prometheus's agent does.
    for path in [
        "/api/v1/query?query=up",
        "/api/v1/query_range?query=up&start=0&end=1&step=1",
        "/api/v1/series?match[]=up",
        "/api/v1/labels",
        "/api/v1/label/job/values",
        "/api/v1/rules",
        "/api/v1/alerts",
    ] {
        let r = agent.get(path);
        assert_eq!(r.status, 422, "{path}");
        assert_eq!(
            r.text(),
            r#"{"status":"error","errorType":"execution","error":"unavailable with Prometheus Agent"}"#,
            "{path}"
        );
    }
    assert_eq!(agent.get("/federate?match[]=up").status, 500);
    assert_eq!(agent.get("/api/v1/status/config").status, 200);
    let r = agent.get("/");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("agent"));
    let r = agent.get("/agent");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("agent mode"), "{}", r.text());

    // Every scraped series arrives at the receiver, with the agent's external label.
    assert!(
        wait_until(Duration::from_secs(60), || received(&receiver) == SERIES),
        "receiver holds {} of {SERIES} series; agent log:\n{}",
        received(&receiver),
        agent.log()
    );
    // The queue's state, as `/api/v1/status/remote_write` shows it. The receiver stores a batch
    // before the sender has read the answer and counted it, so wait for the count to catch up.
    let status = || agent.get("/api/v1/status/remote_write").json();
    let sent = |st: &serde_json::Value| st["data"]["queues"][0]["samples_sent"].as_u64();
    assert!(
        wait_until(Duration::from_secs(10), || sent(&status())
            .is_some_and(|n| n >= SERIES as u64)),
        "{}",
        status()
    );
    let st = status();
    let q0 = &st["data"]["queues"][0];
    assert_eq!(st["status"], "success", "{st}");
    assert_eq!(
        q0["url"],
        format!("http://{}/api/v1/write", receiver.addr),
        "{st}"
    );
    assert!(
        q0["samples_sent"].as_u64().unwrap() >= SERIES as u64,
        "{st}"
    );
    assert!(q0["shards"].as_u64().unwrap() >= 1, "{st}");
    assert!(
        q0["highest_timestamp_sent_ms"].as_i64().unwrap() > now_ms() - 60_000,
        "{st}"
    );
    assert!(q0["lag_seconds"].as_f64().is_some(), "{st}");
    assert_eq!(q0["last_error"], serde_json::Value::Null, "{st}");
    let q = enc("agent_g{i=\"7\",agent=\"a1\"}");
    let v = receiver.get(&format!("/api/v1/query?query={q}")).json();
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(1), "{v}");

    // The WAL rotates through many segments while acknowledged ones are truncated: the
    // directory keeps a bounded few.
    let wal = agent_dir.join("wal");
    let mut most = 0usize;
    let rotated = wait_until(Duration::from_secs(90), || {
        let s = segments(&wal);
        most = most.max(s.len());
        s.last().is_some_and(|l| *l >= 12)
    });
    let s = segments(&wal);
    assert!(rotated, "segments {s:?}; agent log:\n{}", agent.log());
    assert!(s[0] > 0, "no segment truncated: {s:?}");
    assert!(most <= 8, "up to {most} segments kept: {s:?}");
    // No block directory is ever written.
    let blocks: Vec<String> = std::fs::read_dir(&agent_dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.len() == 26 && n.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect();
    assert!(blocks.is_empty(), "blocks written: {blocks:?}");
    assert!(
        !dir.path().join("unused").exists(),
        "--storage.tsdb.path used in agent mode"
    );
}

/// An agent scraping `target` (300 series every 100 ms) into 32 KB WAL segments, truncating
/// every second, with `extra` flags and `remote_write` YAML.
fn small_agent(dir: &Path, target: SocketAddr, remote_write: &str, extra: &[&str]) -> Argus {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("agent.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: t\n    scrape_interval: 100ms\n    \
             scrape_timeout: 100ms\n    static_configs:\n      - targets: ['{target}']\n\
             {remote_write}"
        ),
    )
    .unwrap();
    let mut args = vec![
        "--agent".to_string(),
        format!("--config.file={}", cfg.display()),
        format!("--storage.agent.path={}", dir.join("data").display()),
        "--storage.agent.wal-truncate-frequency=1s".into(),
        "--storage.agent.wal-segment-size=32KB".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Argus::start(&dir.join("unused"), &args)
}

fn metric(a: &Argus, name: &str) -> f64 {
    let text = a.get("/metrics").text();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// `--storage.agent.retention.max-time` deletes segments a queue could not deliver once they
/// are older; `min-time` keeps young samples although nothing needs them.
#[test]
fn agent_retention_min_and_max_time() {
    let dir = tempfile::tempdir().unwrap();
    // A receiver that is never there: the queue retries forever and acknowledges nothing.
    let nowhere = format!(
        "remote_write:\n  - url: http://127.0.0.1:{}/api/v1/write\n",
        free_port()
    );
    let capped = small_agent(
        &dir.path().join("capped"),
        start_target(),
        &nowhere,
        &[
            "--storage.agent.retention.min-time=1s",
            "--storage.agent.retention.max-time=3s",
        ],
    );
    // No queue at all, so any truncation could drop everything, but samples are young.
    let young = small_agent(
        &dir.path().join("young"),
        start_target(),
        "",
        &["--storage.agent.retention.min-time=1h"],
    );
    let capped_wal = dir.path().join("capped/data/wal");
    let young_wal = dir.path().join("young/data/wal");
    let dropped = "argus_remote_storage_wal_segments_dropped_total";
    let ok = wait_until(Duration::from_secs(60), || {
        metric(&capped, dropped) > 0.0 && segments(&young_wal).last().is_some_and(|l| *l >= 6)
    });
    let (c, y) = (segments(&capped_wal), segments(&young_wal));
    assert!(
        ok,
        "capped: {c:?}, dropped {}; young: {y:?}; logs:\n{}\n{}",
        metric(&capped, dropped),
        capped.log(),
        young.log()
    );
    assert!(c[0] > 0, "no segment of the capped agent deleted: {c:?}");
    assert_eq!(y[0], 0, "young samples truncated: {y:?}");
    let checkpoints = std::fs::read_dir(&young_wal)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("checkpoint"))
        .count();
    assert_eq!(checkpoints, 0, "young agent checkpointed");
}
