//! Group evaluation and the alert state machine, through the public `Group` API.

use super::*;
use argus_query::{Engine, EngineOptions};
use argus_storage::testing::MemStorage;
use argus_storage::{Labels, is_stale_nan};
use std::collections::BTreeMap;

const M: i64 = 60_000;

struct Fixture {
    db: MemStorage,
    engine: Engine,
    ext: BTreeMap<String, String>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            db: MemStorage::new(),
            engine: Engine::new(EngineOptions::default()),
            ext: BTreeMap::new(),
        }
    }

    fn env(&self) -> EvalEnv<'_> {
        EvalEnv {
            engine: &self.engine,
            queryable: &self.db,
            appendable: &self.db,
            external_labels: &self.ext,
            external_url: "http://prom:9090",
            resend_delay_ms: M,
        }
    }

    /// Samples of the series named `name` (any labels) as (labels, t, v).
    fn series(&self, name: &str) -> Vec<(Labels, i64, f64)> {
        self.db
            .dump()
            .into_iter()
            .filter(|(l, _)| l.metric_name() == Some(name))
            .flat_map(|(l, s)| s.into_iter().map(move |(t, v)| (l.clone(), t, v)))
            .collect()
    }

    fn set(&self, name: &str, t: i64, v: f64) {
        self.db
            .insert(Labels::from_pairs(&[("__name__", name)]), t, v);
    }
}

fn group(yaml: &str) -> Group {
    let mut specs = parse_text(yaml, "test.yml", &LoadOptions::default()).expect("valid rules");
    Group::new(specs.remove(0), M, 0)
}

fn alert_states(g: &Group) -> Vec<(String, AlertState)> {
    let mut out = Vec::new();
    for r in g.status().rules {
        if let RuleStatus::Alerting { alerts, .. } = r {
            for a in alerts {
                out.push((a.labels["alertname"].clone(), a.state));
            }
        }
    }
    out
}

#[test]
fn recording_rule_writes_and_marks_stale() {
    let f = Fixture::new();
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: job:up\n    expr: up\n    labels: {src: rule}\n",
    );
    f.db.insert(
        Labels::from_pairs(&[("__name__", "up"), ("job", "a")]),
        0,
        1.0,
    );
    g.eval(0, &f.env());
    let got = f.series("job:up");
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].0,
        Labels::from_pairs(&[("__name__", "job:up"), ("job", "a"), ("src", "rule")])
    );
    assert_eq!((got[0].1, got[0].2), (0, 1.0));
    // `up` is out of the 5m lookback at 6m: the recorded series gets a stale marker.
    g.eval(6 * M, &f.env());
    let got = f.series("job:up");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].1, 6 * M);
    assert!(is_stale_nan(got[1].2));
    let st = g.status();
    assert!(matches!(
        &st.rules[0],
        RuleStatus::Recording {
            health: Health::Ok,
            ..
        }
    ));
}

#[test]
fn recording_rule_errors_write_nothing() {
    let f = Fixture::new();
    let mut g = group(
        "groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: up\n  - record: dup\n    expr: up\n    labels: {job: same}\n",
    );
    f.db.insert(
        Labels::from_pairs(&[("__name__", "up"), ("job", "a")]),
        0,
        1.0,
    );
    f.db.insert(
        Labels::from_pairs(&[("__name__", "up"), ("job", "b")]),
        0,
        1.0,
    );
    g.eval(0, &f.env());
    let errs = g.rule_errors();
    assert_eq!(
        errs,
        vec![
            (
                "r".to_string(),
                "exceeded limit of 1 with 2 series".to_string()
            ),
            (
                "dup".to_string(),
                "vector contains metrics with the same labelset after applying rule labels"
                    .to_string()
            ),
        ]
    );
    assert!(f.series("r").is_empty() && f.series("dup").is_empty());
}

#[test]
fn later_rule_sees_earlier_output_at_same_time() {
    let f = Fixture::new();
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: vector(2)\n  - record: b\n    expr: a * 10\n",
    );
    g.eval(0, &f.env());
    assert_eq!(f.series("b")[0].2, 20.0);
}

#[test]
fn pending_firing_resolved_deleted() {
    let f = Fixture::new();
    let mut g =
        group("groups:\n- name: g\n  rules:\n  - alert: High\n    expr: x > 0\n    for: 2m\n");
    g.mark_restored();
    f.set("x", 0, 1.0);
    let sent = g.eval(0, &f.env());
    assert!(sent.is_empty(), "pending is never sent");
    assert_eq!(
        alert_states(&g),
        vec![("High".to_string(), AlertState::Pending)]
    );
    f.set("x", M, 1.0);
    g.eval(M, &f.env());
    assert_eq!(alert_states(&g)[0].1, AlertState::Pending);
    f.set("x", 2 * M, 1.0);
    let sent = g.eval(2 * M, &f.env());
    assert_eq!(alert_states(&g)[0].1, AlertState::Firing);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].starts_at_ms, 2 * M);
    assert_eq!(sent[0].ends_at_ms, 2 * M + 4 * M);
    assert_eq!(
        sent[0].generator_url,
        "http://prom:9090/graph?g0.expr=x+%3E+0&g0.tab=1"
    );
    // ALERTS: pending at 0 and 1m, firing at 2m; ALERTS_FOR_STATE = ActiveAt in seconds.
    let alerts = f.series("ALERTS");
    let states: Vec<(&str, i64)> = alerts
        .iter()
        .filter(|(_, _, v)| !is_stale_nan(*v))
        .map(|(l, t, _)| (l.get("alertstate").unwrap(), *t))
        .collect();
    assert!(states.contains(&("pending", 0)) && states.contains(&("firing", 2 * M)));
    assert!(
        alerts
            .iter()
            .any(|(l, t, v)| l.get("alertstate") == Some("pending")
                && *t == 2 * M
                && is_stale_nan(*v)),
        "pending series gets a stale marker when the alert fires"
    );
    assert!(
        f.series("ALERTS_FOR_STATE")
            .iter()
            .all(|(_, _, v)| *v == 0.0)
    );
    // Condition gone at 3m (stale input): resolved, sent once with endsAt = resolve time.
    f.db.insert(
        Labels::from_pairs(&[("__name__", "x")]),
        3 * M,
        argus_storage::stale_nan(),
    );
    let sent = g.eval(3 * M, &f.env());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].ends_at_ms, 3 * M);
    assert!(
        alert_states(&g).is_empty(),
        "resolved alerts are not listed"
    );
    // Re-sent while retained (resend delay 1m, strict comparison), deleted after 15 min.
    assert!(g.eval(4 * M, &f.env()).is_empty());
    assert_eq!(g.eval(5 * M, &f.env()).len(), 1);
    assert_eq!(
        g.eval(18 * M, &f.env()).len(),
        1,
        "still retained at 15m after resolve"
    );
    assert!(g.eval(19 * M, &f.env()).is_empty(), "deleted after 15m");
    assert!(g.eval(21 * M, &f.env()).is_empty());
}

#[test]
fn pending_alert_vanishing_is_deleted() {
    let f = Fixture::new();
    let mut g = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    for: 5m\n");
    g.mark_restored();
    f.set("x", 0, 1.0);
    g.eval(0, &f.env());
    f.set("x", M, 0.0);
    assert!(g.eval(M, &f.env()).is_empty());
    assert!(alert_states(&g).is_empty());
    f.set("x", 2 * M, 1.0);
    g.eval(2 * M, &f.env());
    let st = g.status();
    let RuleStatus::Alerting { alerts, .. } = &st.rules[0] else {
        panic!()
    };
    assert_eq!(alerts[0].active_at_ms, 2 * M, "a new instance starts over");
}

#[test]
fn keep_firing_for() {
    let f = Fixture::new();
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: K\n    expr: x > 0\n    keep_firing_for: 2m\n",
    );
    g.mark_restored();
    f.set("x", 0, 1.0);
    g.eval(0, &f.env());
    f.set("x", M, 0.0);
    g.eval(M, &f.env());
    let st = g.status();
    let RuleStatus::Alerting { alerts, .. } = &st.rules[0] else {
        panic!()
    };
    assert_eq!(alerts[0].state, AlertState::Firing);
    assert_eq!(alerts[0].keep_firing_since_ms, Some(M));
    f.set("x", 2 * M, 0.0);
    g.eval(2 * M, &f.env());
    assert_eq!(alert_states(&g)[0].1, AlertState::Firing);
    f.set("x", 3 * M, 0.0);
    let sent = g.eval(3 * M, &f.env());
    assert!(
        alert_states(&g).is_empty(),
        "resolved once keep_firing_for has passed"
    );
    assert_eq!(sent[0].ends_at_ms, 3 * M);
}

#[test]
fn keep_firing_cleared_when_condition_returns() {
    let f = Fixture::new();
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: K\n    expr: x > 0\n    keep_firing_for: 5m\n",
    );
    f.set("x", 0, 1.0);
    g.eval(0, &f.env());
    f.set("x", M, 0.0);
    g.eval(M, &f.env());
    f.set("x", 2 * M, 1.0);
    g.eval(2 * M, &f.env());
    let st = g.status();
    let RuleStatus::Alerting { alerts, .. } = &st.rules[0] else {
        panic!()
    };
    assert_eq!(alerts[0].keep_firing_since_ms, None);
    assert_eq!(alerts[0].active_at_ms, 0);
    assert!(
        f.series("ALERTS").is_empty(),
        "not restored: ALERTS not written"
    );
}

#[test]
fn raised_for_on_reload_drops_back_to_pending() {
    let f = Fixture::new();
    let mut old = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n");
    old.mark_restored();
    f.set("x", 0, 1.0);
    old.eval(0, &f.env());
    assert_eq!(alert_states(&old)[0].1, AlertState::Firing);
    let mut new =
        group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    for: 5m\n");
    new.inherit_state(&old);
    f.set("x", M, 1.0);
    new.eval(M, &f.env());
    assert_eq!(alert_states(&new)[0].1, AlertState::Pending);
    f.set("x", 5 * M, 1.0);
    new.eval(5 * M, &f.env());
    assert_eq!(alert_states(&new)[0].1, AlertState::Firing);
}

#[test]
fn reload_stale_marks_removed_rules_and_removed_groups() {
    let f = Fixture::new();
    let mut old = group(
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: vector(1)\n  - record: b\n    expr: vector(2)\n",
    );
    old.eval(0, &f.env());
    let mut new = group("groups:\n- name: g\n  rules:\n  - record: a\n    expr: vector(1)\n");
    new.inherit_state(&old);
    new.eval(M, &f.env());
    let b = f.series("b");
    assert_eq!(b.len(), 2);
    assert!(is_stale_nan(b[1].2) && b[1].1 == M);
    new.write_stale_markers(2 * M, &f.db);
    let a = f.series("a");
    assert!(is_stale_nan(a.last().unwrap().2) && a.last().unwrap().1 == 2 * M);
}

#[test]
fn alert_limit_and_duplicate_labelsets() {
    let f = Fixture::new();
    f.db.insert(
        Labels::from_pairs(&[("__name__", "up"), ("job", "a")]),
        0,
        0.0,
    );
    f.db.insert(
        Labels::from_pairs(&[("__name__", "up"), ("job", "b")]),
        0,
        0.0,
    );
    let mut g = group(
        "groups:\n- name: g\n  limit: 1\n  rules:\n  - alert: Down\n    expr: up == 0\n  - alert: Dup\n    expr: up == 0\n    labels: {job: x}\n",
    );
    g.mark_restored();
    let sent = g.eval(0, &f.env());
    assert!(sent.is_empty());
    assert_eq!(
        g.rule_errors(),
        vec![
            (
                "Down".to_string(),
                "exceeded limit of 1 with 2 alerts".to_string()
            ),
            (
                "Dup".to_string(),
                "vector contains metrics with the same labelset after applying alert labels"
                    .to_string()
            )
        ]
    );
    assert!(f.series("ALERTS").is_empty());
}

#[test]
fn query_offset_shifts_query_and_sample_time_not_alert_time() {
    let f = Fixture::new();
    let specs = parse_text(
        "groups:\n- name: g\n  query_offset: 1m\n  rules:\n  - record: r\n    expr: vector(time())\n  - alert: A\n    expr: vector(1)\n",
        "f",
        &LoadOptions::default(),
    )
    .unwrap();
    let mut g = Group::new(specs[0].clone(), M, 0);
    g.mark_restored();
    g.eval(10 * M, &f.env());
    assert_eq!(f.series("r")[0].1, 9 * M);
    assert_eq!(f.series("r")[0].2, 540.0);
    assert_eq!(f.series("ALERTS")[0].1, 9 * M);
    let st = g.status();
    let RuleStatus::Alerting { alerts, .. } = &st.rules[1] else {
        panic!()
    };
    assert_eq!(alerts[0].active_at_ms, 10 * M);
}

#[test]
fn restore_for_state_from_alerts_for_state() {
    let f = Fixture::new();
    let spec = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    for: 30m\n    labels: {sev: page, tmpl: '{{ $value }}'}\n";
    // Before the restart every instance was active since 10m (600 s).
    let series = |t: i64, v: f64, extra: (&str, &str)| {
        f.db.insert(
            Labels::from_pairs(&[
                ("__name__", "ALERTS_FOR_STATE"),
                ("alertname", "A"),
                ("sev", "page"),
                ("tmpl", "1"),
                extra,
            ]),
            t,
            v,
        )
    };
    series(38 * M, 600.0, ("i", "grace"));
    series(25 * M, 600.0, ("i", "long"));
    series(15 * M, 600.0, ("i", "old"));
    series(40 * M, 600.0, ("i", "firing"));
    series(40 * M, 600.0, ("i", "stale"));
    series(41 * M, argus_storage::stale_nan(), ("i", "stale"));
    for i in ["grace", "long", "old", "firing", "stale", "new"] {
        f.db.insert(
            Labels::from_pairs(&[("__name__", "x"), ("i", i)]),
            100 * M,
            1.0,
        );
    }
    let mut g = group(spec);
    g.eval(100 * M, &f.env());
    g.eval(101 * M, &f.env());
    assert!(
        f.series("ALERTS").is_empty(),
        "nothing written before the restore"
    );
    g.restore_for_state(101 * M, &f.env(), 80 * M, 10 * M);
    let st = g.status();
    let RuleStatus::Alerting { alerts, .. } = &st.rules[0] else {
        panic!()
    };
    let active: BTreeMap<String, i64> = alerts
        .iter()
        .map(|a| (a.labels["i"].clone(), a.active_at_ms))
        .collect();
    // Outside the 80m outage tolerance (written at 15m < 21m) ⇒ not restored.
    assert_eq!(active["old"], 100 * M);
    // 15m of `for` left: the 76m downtime does not count.
    assert_eq!(active["long"], 10 * M + (101 * M - 25 * M));
    assert_eq!(active["grace"], 101 * M + 10 * M - 30 * M);
    assert_eq!(active["firing"], 10 * M);
    assert_eq!(active["stale"], 100 * M, "stale marker: not restored");
    assert_eq!(active["new"], 100 * M);
    f.db.insert(
        Labels::from_pairs(&[("__name__", "x"), ("i", "firing")]),
        102 * M,
        1.0,
    );
    g.eval(102 * M, &f.env());
    assert!(!f.series("ALERTS").is_empty(), "written after the restore");
}

#[test]
fn restore_skips_rules_with_short_for() {
    let f = Fixture::new();
    f.db.insert(
        Labels::from_pairs(&[("__name__", "ALERTS_FOR_STATE"), ("alertname", "A")]),
        10 * M,
        0.0,
    );
    f.set("x", 20 * M, 1.0);
    let mut g = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    for: 5m\n");
    g.eval(20 * M, &f.env());
    g.restore_for_state(20 * M, &f.env(), 60 * M, 10 * M);
    let st = g.status();
    let RuleStatus::Alerting { alerts, .. } = &st.rules[0] else {
        panic!()
    };
    assert_eq!(alerts[0].active_at_ms, 20 * M);
}

#[test]
fn notification_resend_is_strict() {
    let f = Fixture::new();
    let mut g =
        group("groups:\n- name: g\n  interval: 2s\n  rules:\n  - alert: A\n    expr: vector(1)\n");
    let sec = 1000;
    let env = EvalEnv {
        resend_delay_ms: 4 * sec,
        ..f.env()
    };
    let mut sent_at = Vec::new();
    for k in 0..10 {
        let t = k * 2 * sec;
        let out = g.eval(t, &env);
        if let Some(a) = out.first() {
            assert_eq!(a.starts_at_ms, 0);
            assert_eq!(
                a.ends_at_ms,
                t + 4 * 4 * sec,
                "ValidUntil = t + 4 × max(interval, resend)"
            );
            sent_at.push(t);
        }
    }
    assert_eq!(sent_at, vec![0, 6 * sec, 12 * sec, 18 * sec]);
}

#[test]
fn group_can_move_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Group>();
    assert_send_sync::<GroupStatus>();
}

/// A deterministic stand-in for the `rule_file` fuzz target that runs with the unit tests:
/// byte-level mutations of real rule files through parse, validate and two evaluations.
#[test]
fn mutated_rule_files_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rules");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("testdata/rules")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("_rules.yml"))
        .map(|e| std::fs::read(e.path()).expect("read"))
        .collect();
    seeds.push(b"groups:\n- name: a\n  rules:\n  - &r\n    alert: X\n    expr: up == 0\n    labels: {v: '{{ $value }}'}\n  - <<: *r\n    alert: Y\n".to_vec());
    assert!(seeds.len() >= 4);
    let f = Fixture::new();
    f.db.insert(
        Labels::from_pairs(&[("__name__", "up"), ("job", "a")]),
        0,
        0.0,
    );
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n.max(1) as u64) as usize
    };
    const TOKENS: &[&[u8]] = &[
        b"{{", b"}}", b"&a", b"*a", b"<<: ", b"\n- ", b": ", b"[", b"{", b"'", b"\"", b"---\n",
        b"\t", b"0",
    ];
    let mut parsed = 0;
    for round in 0..3000 {
        let mut data = seeds[round % seeds.len()].clone();
        for _ in 0..1 + rnd(4) {
            let pos = rnd(data.len() + 1);
            match rnd(3) {
                0 if !data.is_empty() => {
                    let end = (pos + rnd(8)).min(data.len());
                    data.drain(pos.min(end)..end);
                }
                1 => {
                    let t = TOKENS[rnd(TOKENS.len())];
                    data.splice(pos..pos, t.iter().copied());
                }
                _ => {
                    if let Some(b) = data.get_mut(pos) {
                        *b = (rnd(95) + 32) as u8;
                    }
                }
            }
        }
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let Ok(groups) = parse_text(text, "m.yml", &LoadOptions::default()) else {
            continue;
        };
        parsed += 1;
        for spec in groups.into_iter().take(2) {
            let mut g = Group::new(spec, M, 0);
            g.mark_restored();
            g.eval(0, &f.env());
            g.eval(M, &f.env());
            let _ = g.status();
        }
    }
    assert!(
        parsed > 50,
        "too few mutants parsed ({parsed}) to exercise evaluation"
    );
}
