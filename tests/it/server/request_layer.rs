//! Hardening issue, the two confirmed bugs: a nesting bomb in any query or selector parameter
//! crashed the process (stack overflow in the parser), and `match[]` with `or` matched every
//! series of the metric on `/series` and `delete_series` while `/query` matched the branches.

use super::harness::{Argus, enc, now_ms};
use super::{series, write};

fn healthy(a: &Argus) {
    let r = a.get("/-/healthy");
    assert_eq!(r.status, 200, "argus died: {}", a.log());
}

#[test]
fn nesting_bomb_is_a_400_on_every_endpoint_that_parses_promql() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        dir.path(),
        &[
            "--web.enable-remote-write-receiver",
            "--web.enable-admin-api",
        ],
    );
    // Under the 64 KiB length limit, so the nesting guard (not the length check) must catch it.
    let bomb = format!("{}1{}", "(".repeat(20_000), ")".repeat(20_000));
    let sel_bomb = format!("{}up{}", "(".repeat(20_000), ")".repeat(20_000));
    let huge = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    let q = enc(&bomb);
    let s = enc(&sel_bomb);
    // URLs are capped by the HTTP layer (414 beyond ~64 KiB), so GETs carry a smaller bomb.
    let gq = enc(&format!("{}1{}", "(".repeat(5_000), ")".repeat(5_000)));
    let gs = enc(&format!("{}up{}", "(".repeat(5_000), ")".repeat(5_000)));
    let cases: Vec<(&str, String, String)> = vec![
        ("POST", "/api/v1/query".into(), format!("query={q}")),
        (
            "POST",
            "/api/v1/query".into(),
            format!("query={}", enc(&huge)),
        ),
        (
            "POST",
            "/api/v1/query_range".into(),
            format!("query={q}&start=0&end=100&step=10"),
        ),
        (
            "POST",
            "/api/v1/query_exemplars".into(),
            format!("query={q}&start=0&end=100"),
        ),
        ("POST", "/api/v1/series".into(), format!("match[]={s}")),
        ("POST", "/api/v1/labels".into(), format!("match[]={s}")),
        (
            "GET",
            format!("/api/v1/label/job/values?match[]={gs}"),
            String::new(),
        ),
        ("GET", format!("/federate?match[]={gs}"), String::new()),
        (
            "POST",
            "/api/v1/admin/tsdb/delete_series".into(),
            format!("match[]={s}"),
        ),
        ("GET", format!("/api/v1/query?query={gq}"), String::new()),
    ];
    for (method, path, form) in &cases {
        let r = a.request(
            method,
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        );
        let short: String = path.chars().take(40).collect();
        assert_eq!(r.status, 400, "{method} {short}: {}", r.text());
        if short.starts_with("/api/") {
            assert_eq!(r.json()["status"], "error", "{short}");
            assert_eq!(r.json()["errorType"], "bad_data", "{short}");
        }
        healthy(&a);
    }
    let r = a.get(&format!("/api/v1/targets/metadata?match_target={gs}"));
    assert_eq!(r.status, 400, "{}", r.text());
    healthy(&a);
}

#[test]
fn or_selector_matches_exactly_its_branches_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        dir.path(),
        &[
            "--web.enable-remote-write-receiver",
            "--web.enable-admin-api",
        ],
    );
    let t = now_ms();
    let r = write(
        &a,
        ["a", "b", "c"]
            .iter()
            .map(|j| series(&[("__name__", "up"), ("job", j)], &[(t, 1.0)]))
            .collect(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let sel = enc(r#"up{job="a" or job="b"}"#);
    let jobs = |v: &serde_json::Value, key: &str| {
        let mut j: Vec<String> = v
            .as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|s| s[key]["job"].as_str().unwrap_or("").to_string())
            .collect();
        j.sort();
        j
    };
    let r = a.get(&format!("/api/v1/series?match[]={sel}"));
    let data = r.json()["data"].clone();
    let mut got: Vec<&str> = data
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["job"].as_str().unwrap_or(""))
        .collect();
    got.sort();
    assert_eq!(got, ["a", "b"], "{}", r.text());
    let r = a.get(&format!(
        "/api/v1/query?query={sel}&time={}",
        t as f64 / 1000.0
    ));
    assert_eq!(
        jobs(&r.json()["data"]["result"], "metric"),
        ["a", "b"],
        "{}",
        r.text()
    );
    let r = a.get(&format!("/api/v1/label/job/values?match[]={sel}"));
    assert_eq!(
        r.json()["data"],
        serde_json::json!(["a", "b"]),
        "{}",
        r.text()
    );
    let r = a.get(&format!("/federate?match[]={sel}"));
    let text = r.text();
    assert!(
        text.contains("job=\"a\"") && text.contains("job=\"b\""),
        "{text}"
    );
    assert!(!text.contains("job=\"c\""), "{text}");

    let r = a.post_form(
        "/api/v1/admin/tsdb/delete_series",
        &format!("match[]={sel}"),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = a.get(&format!("/api/v1/series?match[]={}", enc("up")));
    let left: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["job"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(left.contains(&"c".to_string()), "{left:?}");
    assert!(
        !left.contains(&"a".to_string()) && !left.contains(&"b".to_string()),
        "{left:?}"
    );
}
