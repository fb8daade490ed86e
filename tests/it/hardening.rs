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
