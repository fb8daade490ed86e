//! `convert_classic_histograms_to_nhcb` through the real binary: a test-served text target
//! exposes a classic histogram (two label sets, counts growing every scrape); one job converts
//! it and keeps the classic series (`always_scrape_classic_histograms`), another only converts.
//! The converted native histogram must answer `histogram_quantile`, `histogram_count`,
//! `histogram_sum` and rates exactly as the classic series do.

use crate::server::harness::{Argus, enc, now_ms};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The body of the `n`th request: per code, cumulative bucket counts (one shape times `n`, so
/// quantiles stay put while rates are non-zero; code 500's top observations are above the
/// highest bound, in the +Inf bucket).
fn body(n: u64) -> String {
    let mut out = String::from("# HELP rpc_seconds RPC latency.\n# TYPE rpc_seconds histogram\n");
    let shapes: [(&str, [u64; 5], f64); 2] = [
        ("200", [1, 3, 7, 9, 10], 2.5),
        ("500", [0, 0, 2, 3, 8], 20.0),
    ];
    for (code, cum, sum) in shapes {
        for (le, c) in ["0.05", "0.1", "0.5", "1", "+Inf"].iter().zip(cum) {
            out.push_str(&format!(
                "rpc_seconds_bucket{{code=\"{code}\",le=\"{le}\"}} {}\n",
                c * n
            ));
        }
        out.push_str(&format!(
            "rpc_seconds_sum{{code=\"{code}\"}} {}\n",
            sum * n as f64
        ));
        out.push_str(&format!(
            "rpc_seconds_count{{code=\"{code}\"}} {}\n",
            cum[4] * n
        ));
    }
    out.push_str("# TYPE other gauge\nother 1\n");
    out
}

/// Serves `body(n)` to the `n`th request (counted across both jobs).
fn serve() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let b = body(count.fetch_add(1, Ordering::SeqCst) + 1);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(b.as_bytes());
        }
    });
    addr
}

/// `(code label, value)` of each series of an instant vector at `t` (ms).
fn query(a: &Argus, q: &str, t: i64) -> Vec<(String, f64)> {
    let r = a.get(&format!(
        "/api/v1/query?query={}&time={}",
        enc(q),
        t as f64 / 1000.0
    ));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    let j = r.json();
    let mut out: Vec<(String, f64)> = j["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let code = s["metric"]["code"].as_str().unwrap_or("").to_string();
            let v = s["value"][1].as_str().unwrap().parse().unwrap();
            (code, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn classic_histogram_scraped_as_custom_bucket_native_histogram() {
    let target = serve();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
             \x20 - job_name: keep\n    convert_classic_histograms_to_nhcb: true\n    \
             always_scrape_classic_histograms: true\n    static_configs:\n      - targets: [\"{target}\"]\n\
             \x20 - job_name: convert\n    convert_classic_histograms_to_nhcb: true\n    \
             static_configs:\n      - targets: [\"{target}\"]\n"
        ),
    )
    .unwrap();
    let a = Argus::start(
        &dir.path().join("data"),
        &[&format!("--config.file={}", cfg.display())],
    );
    // Four scrapes per job: rates over the last ones then have two samples or more.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = query(&a, "count_over_time(other{job=\"keep\"}[1m])", now_ms());
        if n.first().is_some_and(|x| x.1 >= 4.0) {
            break;
        }
        assert!(Instant::now() < deadline, "too few scrapes: {}", a.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    // A time every scrape before it has committed.
    let t = now_ms() - 1500;
    let keep = "job=\"keep\"";
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
    let same = |native: &str, classic: &str| {
        let n = query(&a, native, t);
        let c = query(&a, classic, t);
        assert_eq!(n.len(), 2, "{native}: {n:?}");
        assert_eq!(n.len(), c.len(), "{native} vs {classic}: {n:?} {c:?}");
        for (x, y) in n.iter().zip(&c) {
            assert_eq!(x.0, y.0);
            assert!(close(x.1, y.1), "{native} = {n:?}, {classic} = {c:?}");
        }
    };
    for q in ["0.1", "0.5", "0.9", "0.99"] {
        same(
            &format!("histogram_quantile({q}, rpc_seconds{{{keep}}})"),
            &format!("histogram_quantile({q}, rpc_seconds_bucket{{{keep}}})"),
        );
        same(
            &format!("histogram_quantile({q}, rate(rpc_seconds{{{keep}}}[1m]))"),
            &format!("histogram_quantile({q}, rate(rpc_seconds_bucket{{{keep}}}[1m]))"),
        );
    }
    same(
        &format!("histogram_count(rpc_seconds{{{keep}}})"),
        &format!("rpc_seconds_count{{{keep}}}"),
    );
    same(
        &format!("histogram_sum(rpc_seconds{{{keep}}})"),
        &format!("rpc_seconds_sum{{{keep}}}"),
    );
    same(
        &format!("histogram_count(rate(rpc_seconds{{{keep}}}[1m]))"),
        &format!("rate(rpc_seconds_count{{{keep}}}[1m])"),
    );
    // The median of code 200 is in (0.1, 0.5]: a real interpolation, not a bound.
    let med = query(
        &a,
        &format!("histogram_quantile(0.5, rpc_seconds{{{keep}}})"),
        t,
    );
    assert!(med[0].1 > 0.1 && med[0].1 < 0.5, "{med:?}");
    // Without always_scrape_classic_histograms only the native histogram is stored.
    let conv = query(&a, "count by (code) (rpc_seconds{job=\"convert\"})", t);
    assert_eq!(conv.len(), 2, "{conv:?}");
    for classic in ["rpc_seconds_bucket", "rpc_seconds_sum", "rpc_seconds_count"] {
        let got = query(&a, &format!("{classic}{{job=\"convert\"}}"), t);
        assert!(got.is_empty(), "{classic} stored: {got:?}");
    }
    // scrape_samples_scraped counts the histogram once per label set, plus `other`.
    let scraped = query(&a, "scrape_samples_scraped{job=\"convert\"}", t);
    assert_eq!(scraped[0].1, 3.0, "{scraped:?}");
}
