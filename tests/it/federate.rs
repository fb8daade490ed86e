//! federation tests (owner: push helper): the worked cases in
//! `conformance/federation/cases.json` through the router, and real Prometheus scraping Argus's
//! `/federate` with `honor_labels: true`.

use crate::push::{http, runtime, serve, wait_ready};
use argus_storage::testing::MemStorage;
use argus_storage::{Labels, stale_nan};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `conformance/federation/cases.json` from `$ARGUS_CONFORMANCE`, `/work/shared/conformance` or
/// `../shared/conformance` next to the checkout.
fn cases_path() -> Option<std::path::PathBuf> {
    let rel = "federation/cases.json";
    std::env::var_os("ARGUS_CONFORMANCE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain([
            std::path::PathBuf::from("/work/shared/conformance"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"),
        ])
        .map(|d| d.join(rel))
        .find(|p| p.exists())
}

/// Loads the float series of a promqltest `load <step>` block (`a+bxN`, `axN`, `stale`, `_`);
/// histogram series (`{{…}}`) are returned by name as skipped.
fn load(storage: &MemStorage, block: &str) -> Vec<String> {
    let mut skipped = Vec::new();
    let mut lines = block.lines();
    let header = lines.next().expect("load line");
    let step_ms: i64 = match header.trim().strip_prefix("load ").expect("load") {
        "1m" => 60_000,
        "30s" => 30_000,
        "15s" => 15_000,
        other => panic!("unsupported step {other}"),
    };
    for line in lines.map(str::trim).filter(|l| !l.is_empty()) {
        let close = line.find('}').expect("labels");
        let (series, values) = (&line[..=close], line[close + 1..].trim());
        let (name, rest) = series.split_once('{').expect("brace");
        let mut pairs = vec![("__name__".to_string(), name.to_string())];
        for kv in rest
            .trim_end_matches('}')
            .split(',')
            .filter(|s| !s.is_empty())
        {
            let (k, v) = kv.split_once('=').expect("label");
            pairs.push((k.to_string(), v.trim_matches('"').to_string()));
        }
        let labels = Labels::from_pairs(&pairs);
        if values.starts_with("{{") {
            skipped.push(name.to_string());
            continue;
        }
        let mut t = 0i64;
        for tok in values.split_whitespace() {
            match tok {
                "stale" => {
                    storage.insert(labels.clone(), t, stale_nan());
                    t += step_ms;
                }
                "_" => t += step_ms,
                _ => {
                    let (start, n) = tok.split_once('x').expect("axN");
                    let n: i64 = n.parse().expect("count");
                    let (a, d) = match start.find(['+', '-']).filter(|&i| i > 0) {
                        Some(i) => (
                            start[..i].parse::<f64>().expect("a"),
                            start[i..]
                                .trim_start_matches('+')
                                .parse::<f64>()
                                .expect("delta"),
                        ),
                        None => (start.parse::<f64>().expect("a"), 0.0),
                    };
                    for i in 0..=n {
                        storage.insert(labels.clone(), t, a + d * i as f64);
                        t += step_ms;
                    }
                }
            }
        }
    }
    skipped
}

fn encode_query(q: &str) -> String {
    // Percent-encode everything in values except the structural '&' and the first '=' of each pair.
    q.split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => format!("{}={}", enc(k), enc(v)),
            None => enc(kv),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sorts sample lines inside each `# TYPE` block (the reference leaves their order open).
fn canonical(body: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let flush = |out: &mut Vec<String>, block: &mut Vec<&str>| {
        block.sort();
        out.extend(block.drain(..).map(str::to_string));
    };
    for line in body.lines() {
        if line.starts_with('#') {
            flush(&mut out, &mut block);
            out.push(line.to_string());
        } else {
            block.push(line);
        }
    }
    flush(&mut out, &mut block);
    out.join("\n")
}

#[test]
fn conformance_cases() {
    let Some(path) = cases_path() else {
        crate::missing("conformance_cases", "federation/cases.json not found");
        return;
    };
    let raw = std::fs::read_to_string(path).expect("cases.json");
    let doc: Value = serde_json::from_str(&raw).expect("json");
    let storage = MemStorage::new();
    let skipped_series = load(&storage, doc["load"].as_str().expect("load"));
    assert!(!storage.dump().is_empty());
    let now = doc["now_ms"].as_i64().expect("now");
    assert_eq!(doc["lookback"], "5m");
    let rt = runtime();
    let (mut passed, mut skipped) = (0, 0);
    for case in doc["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let uses_histograms = case.to_string().contains("histogram");
        let ext: Vec<(String, String)> = case["external_labels"]
            .as_object()
            .expect("ext")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("str").to_string()))
            .collect();
        let router = argus::api::federate::router_at(
            Arc::new(storage.clone()),
            Labels::from_pairs(&ext),
            300_000,
            Some(now),
        );
        let addr = serve(&rt, router);
        let q = case["query"].as_str().expect("query");
        let path = if q.is_empty() {
            "/federate".to_string()
        } else {
            format!("/federate?{}", encode_query(q))
        };
        let mut headers = vec![];
        if let Some(a) = case["accept"].as_str() {
            headers.push(("Accept", a));
        }
        let r = http(&addr, "GET", &path, &headers, b"");
        assert_eq!(
            r.status as i64,
            case["status"].as_i64().expect("status"),
            "{name}: {}",
            r.text()
        );
        if r.status != 200 {
            // promql-parser's messages are worded differently from Prometheus's.
            assert!(!r.text().trim().is_empty(), "{name}: error body");
            eprintln!(
                "case {name:?}: status ok; want body {:?}, got {:?}",
                case["body"],
                r.text()
            );
            passed += 1;
            continue;
        }
        if let Some(ct) = case["response_content_type"]
            .as_str()
            .or(doc["default_response_content_type"].as_str())
        {
            assert_eq!(r.header("content-type"), Some(ct), "{name}");
        }
        if uses_histograms {
            eprintln!(
                "SKIP case {name:?}: native/NHCB histograms ({skipped_series:?}) are not storable in argus-storage (float-only)"
            );
            skipped += 1;
            continue;
        }
        let want = case["body"].as_str().expect("body");
        assert_eq!(canonical(&r.text()), canonical(want), "{name}");
        passed += 1;
    }
    eprintln!("federation cases: {passed} passed, {skipped} skipped");
    assert!(passed >= 10, "too few cases ran: {passed}");
}

#[test]
fn protobuf_negotiation() {
    use argus::push::body::decode_delimited;
    let storage = MemStorage::new();
    storage.insert(
        Labels::from_pairs(&[("__name__", "m"), ("job", "a")]),
        1000,
        2.5,
    );
    let rt = runtime();
    let addr = serve(
        &rt,
        argus::api::federate::router_at(Arc::new(storage), Labels::empty(), 300_000, Some(2000)),
    );
    let ct = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
    let r = http(&addr, "GET", "/federate?match[]=m", &[("Accept", ct)], b"");
    assert_eq!(r.status, 200);
    let fams = decode_delimited(&r.body).expect("delimited protobuf");
    assert_eq!(fams.len(), 1);
    let m = &fams[0].metric[0];
    assert_eq!(m.untyped.as_ref().and_then(|u| u.value), Some(2.5));
    assert_eq!(m.timestamp_ms, Some(1000));
    let r = http(
        &addr,
        "GET",
        "/federate?match[]=m",
        &[("Accept", "text/plain;version=0.0.4")],
        b"",
    );
    assert_eq!(
        r.text(),
        "# TYPE m untyped\nm{job=\"a\",instance=\"\"} 2.5 1000\n"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[test]
fn real_prometheus_scrapes_argus_federation() {
    let bin = crate::server::peer::PROMETHEUS;
    if !crate::server::peer::installed(
        bin,
        "prometheus",
        "real_prometheus_scrapes_argus_federation",
    ) {
        return;
    }
    let storage = MemStorage::new();
    let t = now_ms() - 5_000;
    let series: &[(&[(&str, &str)], f64)] = &[
        (
            &[
                ("__name__", "fed_a"),
                ("job", "api"),
                ("instance", "h:1"),
                ("code", "200"),
            ],
            10.0,
        ),
        (
            &[
                ("__name__", "fed_a"),
                ("job", "api"),
                ("instance", "h:1"),
                ("code", "500"),
            ],
            0.5,
        ),
        (&[("__name__", "fed_b"), ("job", "batch")], 1e6),
        (&[("__name__", "fed_b"), ("job", "other")], -3.25),
        (&[("__name__", "fed_c"), ("job", "api")], 7.0), // not selected
    ];
    for (pairs, v) in series {
        let l = Labels::from_pairs(pairs);
        storage.insert(l.clone(), t - 30_000, v - 1.0);
        storage.insert(l, t, *v);
    }
    let rt = runtime();
    let addr = serve(
        &rt,
        argus::api::federate::router(Arc::new(storage.clone()), Labels::empty(), 300_000),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{job=\"api\",__name__=\"fed_a\"}}', '{{__name__=\"fed_b\"}}']\n    static_configs:\n      - targets: ['{addr}']\n"
    );
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, config).expect("config");
    let (_prom, prom_addr) = crate::server::peer::prometheus(&cfg, &dir.path().join("data"), &[]);
    let prom_addr = prom_addr.to_string();
    assert!(
        wait_ready(&prom_addr, "/-/ready", Duration::from_secs(20)),
        "prometheus did not start"
    );
    // What Argus itself holds for the two selectors (latest samples).
    let mut want: Vec<(Value, String)> = series[..4]
        .iter()
        .map(|(pairs, v)| {
            let m: serde_json::Map<String, Value> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            (Value::Object(m), v.to_string())
        })
        .collect();
    want.sort_by_key(|(m, _)| m.to_string());
    let query = enc("{__name__=~\"fed_.*\"}");
    let start = Instant::now();
    let mut got: Vec<(Value, String)> = Vec::new();
    while start.elapsed() < Duration::from_secs(20) {
        let r = http(
            &prom_addr,
            "GET",
            &format!(
                "/api/v1/query?query={query}&time={}",
                (t as f64) / 1000.0 + 1.0
            ),
            &[],
            b"",
        );
        let v: Value = serde_json::from_str(&r.text()).expect("json");
        got = v["data"]["result"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        (
                            s["metric"].clone(),
                            s["value"][1].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        got.sort_by_key(|(m, _)| m.to_string());
        if got.len() >= want.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(got, want, "series Prometheus stored from Argus's /federate");
    // The oracle on an empty request: Prometheus answers 200 with an empty body, as Argus does.
    let theirs = http(&prom_addr, "GET", "/federate", &[], b"");
    let ours = http(&addr, "GET", "/federate", &[], b"");
    assert_eq!((theirs.status, theirs.body.len()), (200, 0));
    assert_eq!((ours.status, ours.body.len()), (200, 0));
    let gz = http(
        &addr,
        "GET",
        "/federate?match[]=fed_b",
        &[("Accept-Encoding", "gzip")],
        b"",
    );
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut plain)
        .expect("gunzip");
    assert!(plain.starts_with("# TYPE fed_b untyped\n"), "{plain}");
}
