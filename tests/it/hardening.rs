//! Hardening issue (storage and ingest side), through HTTP against the real binary: checked
//! time ranges, `limit` on the metadata endpoints, remote-write label bounds, `/federate`
//! bounds and escaping, config defaults.

use crate::server::harness::{Argus, enc, now_ms};
use crate::server::{series, write};

fn healthy(a: &Argus) {
    let r = a.get("/-/healthy");
    assert_eq!(r.status, 200, "argus died: {}", a.log());
}

#[test]
fn query_range_span_that_overflows_i64_is_a_400() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    // -9e15 s .. 9e15 s: end - start = 1.8e19 ms does not fit in i64. It used to wrap (release)
    // and slip past the 11,000-points check, or overflow-panic the handler (debug).
    for step in ["1e12", "1"] {
        let r = a.post_form(
            "/api/v1/query_range",
            &format!("query=1&start=-9e15&end=9e15&step={step}"),
        );
        assert_eq!(r.status, 400, "step {step}: {}", r.text());
        assert!(r.text().contains("time range too large"), "{}", r.text());
    }
    // Largest span that fits is still checked against the points limit.
    let r = a.post_form("/api/v1/query_range", "query=1&start=-4e15&end=4e15&step=1");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("11,000 points"), "{}", r.text());
    healthy(&a);
}

#[test]
fn series_labels_and_values_stop_at_limit() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    let now = now_ms();
    let ts = ["e", "d", "c", "b", "a"]
        .iter()
        .map(|x| {
            series(
                &[("__name__", &format!("lim_{x}")), ("k", x)],
                &[(now, 1.0)],
            )
        })
        .collect();
    assert_eq!(write(&a, ts).status, 204);
    let sel = |s: &str| format!("match[]={}", enc(s));
    let q = format!(
        "{}&{}&limit=2",
        sel("lim_c"),
        sel(r#"{__name__=~"lim_.*"}"#)
    );
    let j = a.get(&format!("/api/v1/series?{q}")).json();
    let names: Vec<&str> = j["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["__name__"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lim_a", "lim_b"], "{j}");
    assert_eq!(j["warnings"][0], "results truncated due to limit", "{j}");
    let j = a.get(&format!("/api/v1/label/k/values?{q}")).json();
    assert_eq!(j["data"], serde_json::json!(["a", "b"]), "{j}");
    assert_eq!(j["warnings"][0], "results truncated due to limit", "{j}");
    let j = a
        .get(&format!("/api/v1/labels?{}&limit=1", sel("lim_a")))
        .json();
    assert_eq!(j["data"], serde_json::json!(["__name__"]), "{j}");
    let j = a
        .get(&format!(
            "/api/v1/series?{}&limit=5",
            sel(r#"{__name__=~"lim_.*"}"#)
        ))
        .json();
    assert_eq!(j["data"].as_array().unwrap().len(), 5, "{j}");
    assert!(j.get("warnings").is_none(), "exactly at the limit: {j}");
}

#[test]
fn remote_write_label_bounds_are_a_400_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    let now = now_ms();
    let names: Vec<String> = (0..600).map(|i| format!("l{i:03}")).collect();
    let mut many: Vec<(&str, &str)> = vec![("__name__", "too_many")];
    many.extend(names.iter().map(|n| (n.as_str(), "v")));
    many.sort();
    let long = "v".repeat(20_000);
    let r = write(
        &a,
        vec![
            series(&many, &[(now, 1.0)]),
            series(&[("__name__", "long_value"), ("x", &long)], &[(now, 1.0)]),
            series(&[("__name__", "fine")], &[(now, 1.0)]),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let t = r.text();
    assert!(
        t.contains("has 601 labels, more than the limit of 512"),
        "{t}"
    );
    assert!(
        t.contains("value of label \"x\" is 20000 bytes long, more than the limit of 16384"),
        "{t}"
    );
    let j = a
        .get("/api/v1/series?match[]=%7B__name__%3D~%22.%2B%22%7D")
        .json();
    let names: Vec<&str> = j["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["__name__"].as_str())
        .filter(|n| ["too_many", "long_value", "fine"].contains(n))
        .collect();
    assert_eq!(names, ["fine"], "the valid rest of the request is kept");
    drop(a);

    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        dir.path(),
        &[
            "--web.enable-remote-write-receiver",
            "--storage.remote-write.max-labels-per-series=2",
            "--storage.remote-write.max-label-name-length=8",
        ],
    );
    let r = write(
        &a,
        vec![series(
            &[("__name__", "m"), ("abcdefghi", "1")],
            &[(now, 1.0)],
        )],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("label name \"abcdefghi\" is 9 bytes long"),
        "{}",
        r.text()
    );
    let r = write(
        &a,
        vec![series(
            &[("__name__", "m"), ("a", "1"), ("b", "2")],
            &[(now, 1.0)],
        )],
    );
    assert!(
        r.text().contains("more than the limit of 2"),
        "{}",
        r.text()
    );
    let r = write(
        &a,
        vec![series(
            &[("__name__", "m"), ("abcdefgh", "1")],
            &[(now, 1.0)],
        )],
    );
    assert_eq!(r.status, 204, "{}", r.text());
}

#[test]
fn federate_escapes_names_so_no_input_breaks_the_exposition() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    let now = now_ms();
    let r = write(
        &a,
        vec![series(
            &[
                ("__name__", "evil\nx{\"é"),
                ("a\"b", "v\"\n\\"),
                ("c{d", "é"),
            ],
            &[(now, 1.0)],
        )],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = a.get(&format!(
        "/federate?match[]={}",
        enc(r#"{__name__=~"evil.*"}"#)
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines,
        [
            "# TYPE evil_x___ untyped",
            &*format!("evil_x___{{a_b=\"v\\\"\\n\\\\\",c_d=\"é\",instance=\"\"}} 1 {now}"),
        ],
        "{body}"
    );
    healthy(&a);
}

#[test]
fn federate_obeys_query_timeout_and_max_samples() {
    let now = now_ms();
    let ts = || {
        (0..10)
            .map(|i| series(&[("__name__", "fed"), ("i", &i.to_string())], &[(now, 1.0)]))
            .collect()
    };
    let m = format!("/federate?match[]={}", enc("fed"));

    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        dir.path(),
        &[
            "--web.enable-remote-write-receiver",
            "--query.max-samples=5",
        ],
    );
    assert_eq!(write(&a, ts()).status, 204);
    let r = a.get(&m);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("more than 5 samples"), "{}", r.text());
    drop(a);

    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        dir.path(),
        &[
            "--web.enable-remote-write-receiver",
            "--query.max-samples=10",
        ],
    );
    assert_eq!(write(&a, ts()).status, 204);
    assert_eq!(a.get(&m).status, 200);
    drop(a);

    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        dir.path(),
        &["--web.enable-remote-write-receiver", "--query.timeout=0s"],
    );
    assert_eq!(write(&a, ts()).status, 204);
    let r = a.get(&m);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("timed out"), "{}", r.text());
    healthy(&a);
}

#[test]
fn global_interval_defaults_follow_prometheus() {
    for (yaml, interval, timeout) in [
        // Refused before: "global scrape timeout greater than scrape interval (10s > 1s)".
        ("global: {scrape_interval: 1s}\n", "1s", "1s"),
        // Panicked the push pool before (`interval(0)`); zero means the 1m default.
        ("global: {scrape_interval: 0s}\n", "1m", "10s"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("argus.yml");
        std::fs::write(&cfg, yaml).unwrap();
        let a = Argus::start(
            &dir.path().join("data"),
            &[
                "--web.enable-remote-write-receiver",
                &format!("--config.file={}", cfg.display()),
            ],
        );
        let j = a.get("/api/v1/status/config").json();
        let text = j["data"]["yaml"].as_str().unwrap();
        assert!(
            text.contains(&format!("scrape_interval: {interval}")),
            "{yaml}: {text}"
        );
        assert!(
            text.contains(&format!("scrape_timeout: {timeout}")),
            "{yaml}: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        healthy(&a);
    }
}

#[test]
fn limit_on_thousands_of_series_returns_the_sorted_first_ones() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    let now = now_ms();
    let n = 3000;
    let ts = (0..n)
        .map(|i| {
            let inst = format!("h{:05}", n - i);
            let name = format!("many_{}", i % 3);
            series(
                &[
                    ("__name__", name.as_str()),
                    ("inst", inst.as_str()),
                    (format!("l{}", i % 40).as_str(), "x"),
                ],
                &[(now, 1.0)],
            )
        })
        .collect();
    assert_eq!(write(&a, ts).status, 204);
    let sel = format!("match[]={}", enc(r#"{__name__=~"many_.*"}"#));
    let strings = |j: &serde_json::Value| -> Vec<String> {
        let arr = j["data"].as_array().unwrap_or_else(|| panic!("{j}"));
        arr.iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    for path in ["/api/v1/label/inst/values", "/api/v1/labels"] {
        for with_match in [false, true] {
            let m = if with_match { sel.as_str() } else { "" };
            let full = a.get(&format!("{path}?{m}")).json();
            assert!(full.get("warnings").is_none(), "{full}");
            let mut want = strings(&full);
            assert!(want.len() > 10, "{path}: {} values", want.len());
            assert!(want.is_sorted(), "{path}: sorted");
            want.truncate(10);
            let j = a.get(&format!("{path}?{m}&limit=10")).json();
            assert_eq!(strings(&j), want, "{path} {m}");
            assert_eq!(j["warnings"][0], "results truncated due to limit", "{j}");
        }
    }
    let j = a.get("/api/v1/label/inst/values?limit=10").json();
    let want: Vec<String> = (1..=10).map(|i| format!("h{i:05}")).collect();
    assert_eq!(strings(&j), want, "{j}");

    let j = a.get(&format!("/api/v1/series?{sel}&limit=10")).json();
    let got: Vec<(String, String)> = j["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap().to_string();
            (f("__name__"), f("inst"))
        })
        .collect();
    let mut all: Vec<(String, String)> = (0..n)
        .map(|i| (format!("many_{}", i % 3), format!("h{:05}", n - i)))
        .collect();
    all.sort();
    all.truncate(10);
    assert_eq!(got, all, "{j}");
    assert_eq!(j["warnings"][0], "results truncated due to limit", "{j}");
    healthy(&a);
}

/// Serves each `(path, body)` as `text/plain` on a loopback port, from a background thread.
fn serve_bodies(routes: Vec<(&'static str, String)>) -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut app = axum::Router::new();
            for (path, body) in routes {
                app = app.route(path, axum::routing::get(move || async move { body }));
            }
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    addr
}

#[test]
fn scrape_limits_from_global_and_job_fail_the_scrape() {
    let many: String = (0..50)
        .map(|i| format!("many_s{{i=\"{i}\"}} {i}\n"))
        .collect();
    let fx = serve_bodies(vec![
        ("/small", "small_a 1\nsmall_b 2\n".to_string()),
        ("/many", many),
        (
            "/labels",
            "lab{a=\"1\",b=\"2\",c=\"3\",d=\"4\"} 1\n".to_string(),
        ),
        ("/longname", format!("ln{{{}=\"v\"}} 1\n", "n".repeat(31))),
        ("/longvalue", format!("lv{{k=\"{}\"}} 1\n", "v".repeat(41))),
        ("/big", format!("# {}\nbig 1\n", "x".repeat(20_000))),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    let job = |name: &str, path: &str, extra: &str| {
        format!(
            "  - {{job_name: {name}, metrics_path: {path}, static_configs: [{{targets: ['{fx}']}}]{extra}}}\n"
        )
    };
    let mut yaml = String::from(
        "global:\n  scrape_interval: 1s\n  sample_limit: 20\n  label_limit: 6\n  \
         label_name_length_limit: 30\n  label_value_length_limit: 40\n  body_size_limit: 16KB\n  \
         keep_dropped_targets: 3\n  convert_classic_histograms_to_nhcb: true\n\
         scrape_configs:\n",
    );
    yaml += &job("ok", "/small", ", native_histogram_bucket_limit: 160");
    yaml += &job("many", "/many", "");
    yaml += &job("many_raised", "/many", ", sample_limit: 100");
    yaml += &job("labels", "/labels", "");
    yaml += &job("longname", "/longname", "");
    yaml += &job("longvalue", "/longvalue", "");
    yaml += &job("big", "/big", "");
    yaml += &format!(
        "  - {{job_name: two_targets, metrics_path: /small, target_limit: 1, \
         static_configs: [{{targets: ['{fx}', 'localhost:{}']}}]}}\n",
        fx.port()
    );
    std::fs::write(&cfg, &yaml).unwrap();
    let a = Argus::start(
        &dir.path().join("data"),
        &[&format!("--config.file={}", cfg.display())],
    );
    let want_up = [
        ("ok", 1.0),
        ("many", 0.0),
        ("many_raised", 1.0),
        ("labels", 0.0),
        ("longname", 0.0),
        ("longvalue", 0.0),
        ("big", 0.0),
    ];
    // `up` per job; two_targets has two series.
    let ups = || -> Vec<(String, f64)> {
        let j = a.get(&format!("/api/v1/query?query={}", enc("up"))).json();
        let mut v: Vec<(String, f64)> = j["data"]["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|s| {
                        let job = s["metric"]["job"].as_str().unwrap_or("").to_string();
                        let val = s["value"][1].as_str().unwrap_or("nan").parse().unwrap();
                        (job, val)
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut got = ups();
    while got.len() < want_up.len() + 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        got = ups();
    }
    for (job, want) in want_up {
        let v: Vec<f64> = got.iter().filter(|g| g.0 == job).map(|g| g.1).collect();
        assert_eq!(v, [want], "up of {job}: {got:?}\n{}", a.log());
    }
    let two: Vec<f64> = got
        .iter()
        .filter(|g| g.0 == "two_targets")
        .map(|g| g.1)
        .collect();
    assert_eq!(two, [0.0, 0.0], "target_limit fails every target: {got:?}");

    // Nothing of a failed scrape is stored; the raised per-job limit stores all 50.
    let count = |q: &str| {
        let j = a.get(&format!("/api/v1/query?query={}", enc(q))).json();
        j["data"]["result"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(count(r#"many_s{job="many"}"#), 0);
    assert_eq!(count(r#"many_s{job="many_raised"}"#), 50);
    for m in ["lab", "ln", "lv", "big", r#"small_a{job="two_targets"}"#] {
        assert_eq!(count(m), 0, "{m} stored from a failed scrape");
    }
    assert_eq!(count(r#"small_a{job="ok"}"#), 1);

    // The reasons, as Prometheus words them.
    let t = a.get("/api/v1/targets").json();
    let err_of = |job: &str| -> String {
        t["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["labels"]["job"] == job)
            .map(|x| x["lastError"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("no target for {job}: {t}"))
    };
    for (job, want) in [
        ("ok", ""),
        ("many", "sample limit exceeded"),
        (
            "labels",
            "label_limit exceeded (metric: lab, number of labels: 7, limit: 6)",
        ),
        ("longname", "label_name_length_limit exceeded"),
        ("longvalue", "label_value_length_limit exceeded"),
        ("big", "body size limit exceeded"),
        (
            "two_targets",
            "target_limit exceeded (number of targets: 2, limit: 1)",
        ),
    ] {
        let e = err_of(job);
        assert!(
            if want.is_empty() {
                e.is_empty()
            } else {
                e.contains(want)
            },
            "{job}: want {want:?}, got {e:?}"
        );
    }

    // Counters.
    let metrics = a.get("/metrics").text();
    let counter = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    for name in [
        "argus_target_scrapes_exceeded_sample_limit_total",
        "argus_target_scrapes_exceeded_body_size_limit_total",
        "argus_target_scrape_pool_exceeded_target_limit_total",
    ] {
        assert!(counter(name) >= 1.0, "{name}");
    }
    assert!(counter("argus_target_scrape_pool_exceeded_label_limits_total") >= 3.0);

    // The loaded config shows the inherited values, as Prometheus's does.
    let j = a.get("/api/v1/status/config").json();
    let text = j["data"]["yaml"].as_str().unwrap();
    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
    let jobs = parsed["scrape_configs"].as_sequence().unwrap();
    let ok = jobs.iter().find(|j| j["job_name"] == "ok").unwrap();
    assert_eq!(ok["sample_limit"], 20, "{text}");
    assert_eq!(ok["keep_dropped_targets"], 3, "{text}");
    assert_eq!(ok["native_histogram_bucket_limit"], 160, "{text}");
    assert_eq!(ok["convert_classic_histograms_to_nhcb"], true, "{text}");
    let raised = jobs
        .iter()
        .find(|j| j["job_name"] == "many_raised")
        .unwrap();
    assert_eq!(raised["sample_limit"], 100, "{text}");
    healthy(&a);
}
