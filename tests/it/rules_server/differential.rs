//! Differential test against real Prometheus 2.42: both servers scrape the same target (served by
//! this test) every second and evaluate the same rules file every second; the recorded series
//! (label sets and values) and the `ALERTS` label sets must agree. Fails under `CI=true` when
//! `/usr/bin/prometheus` is missing; skips with a printed reason otherwise.
//!
//! Values: gauges are constant, so every rule over them is exact. The counters grow linearly
//! with wall-clock time (10/s and 20/s), so `rate(...[5s])` is exactly the slope when the 5 s
//! window is fully extrapolated; a scrape delayed by more than 10 % of the interval shortens
//! the extrapolation in one server and not the other, hence a 10 % tolerance for those rules
//! (and for nothing else). Timestamps are not compared: each server has its own slot offset.

use super::harness::{Argus, enc, request, try_request};
use crate::server::peer::{self, PROMETHEUS};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RULES: &str = "groups:
- name: diff
  interval: 1s
  rules:
  - record: diff:gauge:sum
    expr: sum(diff_gauge)
  - record: diff:gauge:by_k
    expr: diff_gauge * 2 + 1
    labels:
      origin: rule
  - record: diff:chain
    expr: diff:gauge:sum / 3
  - record: diff:rate
    expr: sum by (k) (rate(diff_requests_total[5s]))
  - record: diff:scalar
    expr: scalar(sum(diff_gauge)) * 2
  - alert: GaugeHigh
    expr: diff_gauge > 5
    labels:
      severity: page
  - alert: GaugeLowPending
    expr: diff_gauge < 5
    for: 1h
  - alert: NeverFires
    expr: diff_gauge > 100
";

/// The scrape target: constant gauges and counters linear in wall-clock time.
struct Target {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Target {
    fn start() -> Target {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 1024];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match s.read(&mut chunk) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let now = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap()
                            .as_secs_f64();
                        let body = format!(
                            "# TYPE diff_gauge gauge\ndiff_gauge{{k=\"a\"}} 3\n\
                             diff_gauge{{k=\"b\"}} 8\ndiff_gauge{{k=\"c\"}} 10\n\
                             # TYPE diff_requests_total counter\n\
                             diff_requests_total{{k=\"a\"}} {}\ndiff_requests_total{{k=\"b\"}} {}\n",
                            (now - 1.7e9) * 10.0,
                            (now - 1.7e9) * 20.0
                        );
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Target { addr, stop }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Instant query at now: labels JSON → value.
fn instant(addr: SocketAddr, q: &str) -> BTreeMap<String, f64> {
    let r = request(
        addr,
        "GET",
        &format!("/api/v1/query?query={}", enc(q)),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{addr} {q}: {}", r.text());
    let v = r.json();
    v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{addr} {q}: {v}"))
        .iter()
        .map(|s| {
            (
                s["metric"].to_string(),
                s["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
            )
        })
        .collect()
}

/// How many evaluations of `diff:gauge:sum` a server has made in the last minute.
fn evaluations(addr: SocketAddr) -> f64 {
    instant(addr, "count_over_time(diff:gauge:sum[1m])")
        .values()
        .next()
        .copied()
        .unwrap_or(0.0)
}

#[test]
fn rules_agree_with_prometheus() {
    if !peer::installed(PROMETHEUS, "prometheus", "rules differential") {
        return;
    }
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: [\"{}\"]\n\
             scrape_configs:\n  - job_name: diff\n    static_configs:\n      - targets: [\"{}\"]\n",
            rules.display(),
            target.addr
        ),
    )
    .unwrap();

    let (_prom, prom_addr) = peer::prometheus(&cfg, &dir.path().join("prom-data"), &[]);
    let argus = Argus::start(
        &dir.path().join("argus-data"),
        &[&format!("--config.file={}", cfg.display())],
    );

    // Both have evaluated for at least 8 s (the 5 s rate windows are full).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready =
            try_request(prom_addr, "GET", "/-/ready", &[], b"").is_ok_and(|r| r.status == 200);
        if ready && evaluations(prom_addr) >= 8.0 && evaluations(argus.addr) >= 8.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 8 evaluations on both within 60s; argus log:\n{}",
            argus.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let recorded = "{__name__=~\"diff:.+\"}";
    let want = instant(prom_addr, recorded);
    let got = instant(argus.addr, recorded);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "recorded label sets differ"
    );
    assert_eq!(want.len(), 8, "{want:?}");
    for (labels, w) in &want {
        let g = got[labels];
        if labels.contains("\"diff:rate\"") {
            assert!(
                (g - w).abs() <= 0.1 * w.abs(),
                "{labels}: argus {g} prometheus {w}"
            );
        } else {
            assert_eq!(g, *w, "{labels}");
        }
    }

    let want = instant(prom_addr, "ALERTS");
    let got = instant(argus.addr, "ALERTS");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "ALERTS label sets differ"
    );
    assert_eq!(want.len(), 3, "{want:?}");
    let want = instant(prom_addr, "count by (alertname) (ALERTS_FOR_STATE)");
    let got = instant(argus.addr, "count by (alertname) (ALERTS_FOR_STATE)");
    assert_eq!(got, want, "ALERTS_FOR_STATE series differ");
}
