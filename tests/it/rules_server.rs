//! Rules in the server (owner: rules-server helper), through HTTP against the real binary:
//! recording rules, alerts pending → firing, `/api/v1/rules` filters and pagination,
//! `/api/v1/alerts`, `ALERTS`/`ALERTS_FOR_STATE`, reload (invalid file, changed group, removed
//! rules and groups), `for` state across SIGKILL, and a bad rule file at start-up.
//! `differential` compares rule output with real Prometheus 2.42.

use crate::server::harness;

mod differential;

use harness::{Argus, Resp, enc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A config dir: `prometheus.yml` with `rule_files: [rules/*.yml]` (relative, so the glob is
/// resolved against the config file's directory), evaluation interval 1 s.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs: []\nrule_files: [\"rules/*.yml\"]\n",
        )
        .unwrap();
        Setup { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("prometheus.yml")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes `rules/<name>` and returns its path as the server names it.
    fn rules(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join("rules").join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn start(&self, extra: &[&str]) -> Argus {
        let cfg = format!("--config.file={}", self.config().display());
        let mut args = vec![cfg.as_str(), "--web.enable-lifecycle"];
        args.extend_from_slice(extra);
        Argus::start(&self.data(), &args)
    }
}

/// Polls `f` every 100 ms until it returns `Some`, at most `secs` seconds.
fn wait_for<T>(a: &Argus, what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}; log:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Instant query at now: (labels, value) sorted by labels.
fn query(a: &Argus, q: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let r = a.get(&format!("/api/v1/query?query={}", enc(q)));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    let v = r.json();
    let mut out: Vec<_> = v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{q}: {v}"))
        .iter()
        .map(|s| {
            let labels: BTreeMap<String, String> = s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let val: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
            (labels, val)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Raw samples of `q` (a range selector) at now: ts (ms) → value, for a single series.
fn raw_samples(a: &Argus, q: &str) -> BTreeMap<i64, f64> {
    let r = a.get(&format!("/api/v1/query?query={}", enc(q)));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    let v = r.json();
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{q}: {v}");
    result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            (t, p[1].as_str().unwrap().parse::<f64>().unwrap())
        })
        .collect()
}

fn alerts(a: &Argus) -> Vec<Value> {
    let r = a.get("/api/v1/alerts");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]["alerts"].as_array().unwrap().clone()
}

/// The listed alert named `name`, if any.
fn alert(a: &Argus, name: &str) -> Option<Value> {
    alerts(a)
        .into_iter()
        .find(|x| x["labels"]["alertname"] == name)
}

fn rules(a: &Argus, params: &str) -> Resp {
    a.get(&format!("/api/v1/rules{params}"))
}

fn rules_json(a: &Argus, params: &str) -> Value {
    let r = rules(a, params);
    assert_eq!(r.status, 200, "{params}: {}", r.text());
    r.json()
}

/// `(group name, [rule names])` of a `/api/v1/rules` answer.
fn shape(v: &Value) -> Vec<(String, Vec<String>)> {
    v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let rules = g["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect();
            (g["name"].as_str().unwrap().to_string(), rules)
        })
        .collect()
}

fn names(groups: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    groups
        .iter()
        .map(|(g, r)| (g.to_string(), r.iter().map(|s| s.to_string()).collect()))
        .collect()
}

fn reload(a: &Argus) -> Resp {
    a.post_form("/-/reload", "")
}

#[test]
fn recording_rules_chain_at_one_timestamp_and_report_metrics() {
    let s = Setup::new();
    let file = s.rules(
        "rec.yml",
        "groups:\n- name: rec\n  rules:\n  - record: t:now\n    expr: time()\n    labels:\n      source: rule\n\
         \x20 - record: t:copy\n    expr: t:now\n",
    );
    let a = s.start(&[]);
    // Both series exist with at least three evaluations.
    wait_for(&a, "three evaluations of t:copy", 20, || {
        let r = a.get(&format!(
            "/api/v1/query?query={}",
            enc("count_over_time(t:copy[1m])")
        ));
        let v = r.json();
        let n: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        (n >= 3.0).then_some(())
    });
    let now = raw_samples(&a, "t:now[1m]");
    let copy = raw_samples(&a, "t:copy[1m]");
    let common: Vec<_> = now.keys().filter(|t| copy.contains_key(t)).collect();
    assert!(common.len() >= 3, "now {now:?} copy {copy:?}");
    for t in common {
        // time() at the evaluation timestamp, seen by the next rule at the same timestamp.
        assert_eq!(now[t], *t as f64 / 1000.0, "t:now at {t}");
        assert_eq!(
            copy[t], now[t],
            "t:copy at {t} saw another evaluation's t:now"
        );
    }
    // Consecutive evaluations are one interval apart (aligned slots, none skipped here or not).
    let ts: Vec<i64> = now.keys().copied().collect();
    for w in ts.windows(2) {
        assert_eq!(
            (w[1] - w[0]) % 1000,
            0,
            "timestamps not on 1s slots: {ts:?}"
        );
    }
    let got = query(&a, "t:copy");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.get("__name__").map(String::as_str), Some("t:copy"));
    assert_eq!(got[0].0.get("source").map(String::as_str), Some("rule"));

    let metrics = a.get("/metrics").text();
    let key = format!("{{rule_group=\"{file};rec\"}}");
    for name in [
        "argus_rule_group_interval_seconds",
        "argus_rule_group_last_evaluation_timestamp_seconds",
        "argus_rule_group_last_duration_seconds",
        "argus_rule_group_last_evaluation_samples",
        "argus_rule_evaluations_total",
        "argus_rule_evaluation_failures_total",
        "argus_rule_group_iterations_total",
        "argus_rule_group_iterations_missed_total",
    ] {
        assert!(
            metrics.contains(&format!("{name}{key} ")),
            "{name}{key} missing"
        );
    }
    assert!(metrics.contains(&format!("argus_rule_group_interval_seconds{key} 1\n")));
    assert!(metrics.contains(&format!("argus_rule_group_rules{key} 2\n")));
    assert!(metrics.contains(&format!(
        "argus_rule_group_last_evaluation_samples{key} 2\n"
    )));
    assert!(metrics.contains(&format!("argus_rule_evaluation_failures_total{key} 0\n")));
}

const ALERT_RULES: &str = "groups:
- name: alerts
  rules:
  - alert: Slow
    expr: vector(1)
    for: 3s
    labels:
      severity: page
    annotations:
      summary: something is slow
      url: \"{{ $externalURL }}\"
      value: \"{{ $value }}\"
  - record: alerts:rec
    expr: vector(2)
- name: other
  rules:
  - alert: Instant
    expr: vector(5)
    labels:
      severity: info
";

#[test]
fn alert_goes_pending_then_firing_with_api_and_series() {
    let s = Setup::new();
    let file = s.rules("alerts.yml", ALERT_RULES);
    // The external URL's path would also become the route prefix; keep routes at `/`.
    let a = s.start(&[
        "--web.external-url=http://prom.example:9090/prefix/",
        "--web.route-prefix=/",
    ]);

    let pending = wait_for(&a, "Slow pending", 20, || alert(&a, "Slow"));
    assert_eq!(pending["state"], "pending", "{pending}");
    let active_at = pending["activeAt"].as_str().unwrap().to_string();
    let firing = wait_for(&a, "Slow firing", 20, || {
        alert(&a, "Slow").filter(|x| x["state"] == "firing")
    });
    assert_eq!(firing["activeAt"], active_at.as_str(), "activeAt changed");
    assert_eq!(
        firing["labels"],
        serde_json::json!({"alertname": "Slow", "severity": "page"})
    );
    assert_eq!(
        firing["annotations"],
        serde_json::json!({
            "summary": "something is slow",
            "url": "http://prom.example:9090/prefix",
            "value": "1",
        })
    );
    assert_eq!(firing["value"], "1e+00");

    // ALERTS and ALERTS_FOR_STATE (ActiveAt as Unix seconds), without external labels.
    let got = wait_for(&a, "ALERTS firing series", 10, || {
        let v = query(&a, "ALERTS{alertname=\"Slow\"}");
        (v.len() == 1 && v[0].0["alertstate"] == "firing").then_some(v)
    });
    assert_eq!(got[0].1, 1.0);
    assert_eq!(got[0].0["severity"], "page");
    let fs = query(&a, "ALERTS_FOR_STATE{alertname=\"Slow\"}");
    assert_eq!(fs.len(), 1, "{fs:?}");
    assert_eq!(fs[0].0.get("alertstate"), None);
    let active_secs = fs[0].1;
    assert_eq!(active_secs.fract(), 0.0);
    let now_secs = harness::now_ms() as f64 / 1000.0;
    assert!(
        (now_secs - 60.0..=now_secs).contains(&active_secs),
        "ALERTS_FOR_STATE {active_secs} vs now {now_secs}"
    );

    // /api/v1/rules: whole answer shape and field order.
    let all = rules(&a, "");
    assert_eq!(all.status, 200);
    let text = all.text();
    assert!(
        text.starts_with(&format!(
            "{{\"status\":\"success\",\"data\":{{\"groups\":[{{\"name\":\"alerts\",\"file\":\"{file}\",\"rules\":[{{\"state\":\"firing\",\"name\":\"Slow\",\"query\":\"vector(1)\",\"duration\":3,\"keepFiringFor\":0,\"labels\":{{\"severity\":\"page\"}},\"annotations\":{{\"summary\":\"something is slow\",\"url\":\"{{{{ $externalURL }}}}\",\"value\":\"{{{{ $value }}}}\"}},\"alerts\":[{{\"labels\":{{\"alertname\":\"Slow\",\"severity\":\"page\"}},\"annotations\":{{\"summary\":\"something is slow\",\"url\":\"http://prom.example:9090/prefix\",\"value\":\"1\"}},\"state\":\"firing\",\"activeAt\":\"{active_at}\",\"value\":\"1e+00\"}}],\"health\":\"ok\",\"evaluationTime\":"
        )),
        "{text}"
    );
    assert!(text.contains(",\"type\":\"alerting\"},{\"name\":\"alerts:rec\",\"query\":\"vector(2)\",\"labels\":{},\"health\":\"ok\",\"evaluationTime\":"), "{text}");
    assert!(
        text.contains("\"type\":\"recording\"}],\"interval\":1,\"limit\":0,\"evaluationTime\":"),
        "{text}"
    );
    let v = all.json();
    assert_eq!(
        shape(&v),
        names(&[("alerts", &["Slow", "alerts:rec"]), ("other", &["Instant"])])
    );
    assert!(v["data"].get("groupNextToken").is_none());
    let last = v["data"]["groups"][0]["lastEvaluation"].as_str().unwrap();
    assert!(last.ends_with('Z') && last.len() > 20, "{last}");

    // Each filter.
    let check = |params: &str, want: &[(&str, &[&str])]| {
        assert_eq!(shape(&rules_json(&a, params)), names(want), "{params}");
    };
    check(
        "?type=alert",
        &[("alerts", &["Slow"]), ("other", &["Instant"])],
    );
    check("?type=RECORD", &[("alerts", &["alerts:rec"])]);
    check("?rule_name[]=Instant", &[("other", &["Instant"])]);
    check(
        "?rule_name[]=Instant&rule_name[]=alerts:rec",
        &[("alerts", &["alerts:rec"]), ("other", &["Instant"])],
    );
    check("?rule_group[]=other", &[("other", &["Instant"])]);
    check(
        &format!("?file[]={}", enc(&file)),
        &[("alerts", &["Slow", "alerts:rec"]), ("other", &["Instant"])],
    );
    check("?file[]=/nope.yml", &[]);
    check(
        &format!("?match[]={}", enc("{severity=\"page\"}")),
        &[("alerts", &["Slow"])],
    );
    check(
        &format!(
            "?match[]={}&match[]={}",
            enc("{severity=\"page\"}"),
            enc("{severity=\"info\"}")
        ),
        &[("alerts", &["Slow"]), ("other", &["Instant"])],
    );
    let ex = rules_json(&a, "?exclude_alerts=true");
    assert_eq!(ex["data"]["groups"][0]["rules"][0]["alerts"], Value::Null);
    assert!(ex["data"]["groups"][0]["rules"][0].get("alerts").is_some());

    // Pagination.
    let p1 = rules_json(&a, "?group_limit=1");
    assert_eq!(shape(&p1), names(&[("alerts", &["Slow", "alerts:rec"])]));
    let token = p1["data"]["groupNextToken"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    let p2 = rules_json(&a, &format!("?group_limit=1&group_next_token={token}"));
    assert_eq!(shape(&p2), names(&[("other", &["Instant"])]));
    assert!(p2["data"].get("groupNextToken").is_none());

    // Errors.
    let bad = |params: &str, want: &str| {
        let r = rules(&a, params);
        assert_eq!(r.status, 400, "{params}: {}", r.text());
        assert_eq!(r.text(), want, "{params}");
    };
    bad(
        "?type=bogus",
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"type\": not supported value \"bogus\""}"#,
    );
    bad(
        "?group_limit=1&group_next_token=abc",
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"group_next_token\": invalid group_next_token 'abc'. were rule groups changed?"}"#,
    );
    bad(
        "?group_next_token=abc",
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"group_next_token\": group_limit needs to be present in order to paginate over the groups"}"#,
    );
    bad(
        "?group_limit=0",
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"group_limit\": group_limit needs to be greater than 0"}"#,
    );
    assert_eq!(rules(&a, &format!("?match[]={}", enc("{"))).status, 400);
    assert_eq!(a.post_form("/api/v1/rules", "").status, 405);

    // /api/v1/alerts lists both firing alerts.
    let mut listed: Vec<String> = alerts(&a)
        .iter()
        .map(|x| format!("{}={}", x["labels"]["alertname"], x["state"]))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec!["\"Instant\"=\"firing\"", "\"Slow\"=\"firing\""]
    );
}

#[test]
fn reload_with_invalid_rules_keeps_rules_and_alert_state() {
    let s = Setup::new();
    s.rules(
        "a.yml",
        "groups:\n- name: a\n  rules:\n  - alert: Held\n    expr: vector(1)\n    for: 1h\n",
    );
    let a = s.start(&[]);
    let before = wait_for(&a, "Held pending", 20, || alert(&a, "Held"));
    s.rules(
        "a.yml",
        "groups:\n- name: a\n  rules:\n  - alert: Held\n    expr: vector(1) +\n",
    );
    let r = reload(&a);
    assert_eq!(r.status, 500, "{}", r.text());
    // The log is read by a thread of the harness: the line may land just after the answer.
    let logged = (0..50).any(|_| {
        let found = a
            .log()
            .contains("error loading rules, previous rule set restored");
        if !found {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        found
    });
    assert!(logged, "{}", a.log());
    // Two more evaluations: the same instance, still pending since the same time.
    let first_eval = rules_json(&a, "")["data"]["groups"][0]["lastEvaluation"].clone();
    wait_for(&a, "two more evaluations", 10, || {
        let v = rules_json(&a, "");
        (v["data"]["groups"][0]["lastEvaluation"] != first_eval).then_some(())
    });
    let after = alert(&a, "Held").expect("alert kept");
    assert_eq!(after["activeAt"], before["activeAt"]);
    assert_eq!(after["state"], "pending");
    assert_eq!(shape(&rules_json(&a, "")), names(&[("a", &["Held"])]));
}

#[test]
fn reload_changing_one_group_keeps_both_pending_timers() {
    let s = Setup::new();
    s.rules(
        "a.yml",
        "groups:\n- name: keep\n  rules:\n  - alert: KeepMe\n    expr: vector(1)\n    for: 1h\n\
         - name: change\n  rules:\n  - alert: ChangeMe\n    expr: vector(1)\n    for: 1h\n",
    );
    let a = s.start(&[]);
    let keep = wait_for(&a, "KeepMe pending", 20, || alert(&a, "KeepMe"));
    let change = wait_for(&a, "ChangeMe pending", 20, || alert(&a, "ChangeMe"));
    s.rules(
        "a.yml",
        "groups:\n- name: keep\n  rules:\n  - alert: KeepMe\n    expr: vector(1)\n    for: 1h\n\
         - name: change\n  rules:\n  - alert: ChangeMe\n    expr: vector(1)\n    for: 1h\n\
         \x20 - record: added\n    expr: vector(3)\n",
    );
    let r = reload(&a);
    assert_eq!(r.status, 200, "{}", r.text());
    // The changed group runs its new rule ...
    wait_for(&a, "the added rule's output", 20, || {
        (!query(&a, "added").is_empty()).then_some(())
    });
    // ... and both alerts are still the same pending instances.
    let keep2 = alert(&a, "KeepMe").expect("KeepMe kept");
    let change2 = alert(&a, "ChangeMe").expect("ChangeMe inherited");
    assert_eq!(keep2["activeAt"], keep["activeAt"]);
    assert_eq!(change2["activeAt"], change["activeAt"]);
    assert_eq!(change2["state"], "pending");
}

#[test]
fn removed_rules_and_groups_get_stale_markers() {
    let s = Setup::new();
    s.rules(
        "a.yml",
        "groups:\n- name: g1\n  rules:\n  - record: stay\n    expr: vector(1)\n\
         \x20 - record: dropped_rule\n    expr: vector(2)\n\
         - name: g2\n  rules:\n  - record: dropped_group\n    expr: vector(3)\n",
    );
    let a = s.start(&[]);
    wait_for(&a, "all three series", 20, || {
        let n = query(&a, "{__name__=~\"stay|dropped_rule|dropped_group\"}").len();
        (n == 3).then_some(())
    });
    s.rules(
        "a.yml",
        "groups:\n- name: g1\n  rules:\n  - record: stay\n    expr: vector(1)\n",
    );
    assert_eq!(reload(&a).status, 200);
    // The removed rule's series is marked stale at g1's next evaluation; the removed group's
    // after 2 × its interval. Without markers both would stay visible for 5 minutes.
    wait_for(&a, "stale markers for both removed series", 20, || {
        let v = query(&a, "{__name__=~\"stay|dropped_rule|dropped_group\"}");
        (v.len() == 1).then_some(v)
    });
    assert_eq!(query(&a, "stay").len(), 1);
    assert_eq!(shape(&rules_json(&a, "")), names(&[("g1", &["stay"])]));
    let metrics = a.get("/metrics").text();
    assert!(!metrics.contains(";g2\""), "removed group's metrics remain");
}

#[test]
fn firing_alert_is_firing_again_right_after_restart() {
    let s = Setup::new();
    s.rules(
        "a.yml",
        "groups:\n- name: a\n  rules:\n  - alert: Survivor\n    expr: vector(1)\n    for: 4s\n",
    );
    let flags = ["--rules.alert.for-grace-period=1s"];
    let mut a = s.start(&flags);
    let firing = wait_for(&a, "Survivor firing", 30, || {
        alert(&a, "Survivor").filter(|x| x["state"] == "firing")
    });
    a.kill9();
    let b = s.start(&flags);
    // ALERTS_FOR_STATE keeps ActiveAt in whole seconds, so the restored activeAt is the old one
    // truncated to the second (as in Prometheus).
    let old_second = whole_second(&firing["activeAt"]);
    // Without restore the alert would be pending for 4 s with a new activeAt; restored, it
    // keeps the old activeAt and fires at the first evaluation after the restore.
    let again = wait_for(&b, "Survivor restored after restart", 20, || {
        alert(&b, "Survivor").filter(|x| whole_second(&x["activeAt"]) == old_second)
    });
    let again = if again["state"] == "firing" {
        again
    } else {
        wait_for(&b, "Survivor firing after restore", 10, || {
            alert(&b, "Survivor").filter(|x| x["state"] == "firing")
        })
    };
    assert_eq!(whole_second(&again["activeAt"]), old_second, "{again}");
}

/// An RFC 3339 time without its fractional seconds.
fn whole_second(v: &Value) -> String {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    match s.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => s.to_string(),
    }
}

#[test]
fn invalid_rule_file_at_startup_exits_2() {
    let s = Setup::new();
    s.rules(
        "bad.yml",
        "groups:\n- name: bad\n  rules:\n  - record: x\n    expr: sum(\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_argus"))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!("--storage.tsdb.path={}", s.data().display()))
        .arg(format!("--config.file={}", s.config().display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn argus");
    let (status, stderr) = wait_exit(out, Duration::from_secs(30));
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("Error loading rule file patterns from config"),
        "{stderr}"
    );
    assert!(stderr.contains("bad.yml"), "{stderr}");
}

/// Waits (bounded) for a child to exit: its exit code and stderr.
fn wait_exit(mut child: std::process::Child, timeout: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (st.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("argus did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
