//! Engine API: result shapes, errors and limits, against the in-memory storage.

use argus_query::{Engine, EngineOptions, ErrorKind, Value};
use argus_storage::Labels;
use argus_storage::testing::MemStorage;
use std::time::Duration;

fn storage() -> MemStorage {
    let db = MemStorage::new();
    for i in 0..3 {
        let l = Labels::from_pairs(&[("__name__", "x"), ("i", &i.to_string())]);
        for k in 0..=120 {
            db.insert(l.clone(), k * 15_000, (k * (i + 1)) as f64);
        }
    }
    // A counter that resets every 7 samples (rate and increase add the values before resets).
    let c = Labels::from_pairs(&[("__name__", "c")]);
    for k in 0..=120 {
        db.insert(c.clone(), k * 15_000, ((k % 7) * 5 + k / 7) as f64);
    }
    db
}

#[test]
fn range_query_is_sorted_matrix() {
    let db = storage();
    let e = Engine::new(EngineOptions::default());
    let v = e
        .range_query(&db, "rate(x[1m])", 60_000, 1_800_000, 60_000)
        .unwrap();
    let Value::Matrix(m) = v else {
        panic!("expected a matrix, got {v:?}");
    };
    assert_eq!(m.len(), 3);
    assert!(m.windows(2).all(|w| w[0].labels < w[1].labels));
    assert_eq!(m[0].points.len(), 30);
    for (s, per_step) in m.iter().zip([1.0, 2.0, 3.0]) {
        for &(_, r) in &s.points {
            assert!((r - per_step / 15.0).abs() < 1e-9, "{r}");
        }
    }
}

#[test]
fn instant_query_shapes() {
    let db = storage();
    let e = Engine::new(EngineOptions::default());
    assert_eq!(
        e.instant_query(&db, "1 + 2", 5_000).unwrap(),
        Value::Scalar(5_000, 3.0)
    );
    assert_eq!(
        e.instant_query(&db, "\"hi\"", 5_000).unwrap(),
        Value::String(5_000, "hi".into())
    );
    let Value::Matrix(m) = e.instant_query(&db, "x{i=\"0\"}[1m]", 60_000).unwrap() else {
        panic!("expected a matrix");
    };
    assert_eq!(
        m[0].points,
        vec![(15_000, 1.0), (30_000, 2.0), (45_000, 3.0), (60_000, 4.0)]
    );
}

#[test]
fn errors_are_typed() {
    let db = storage();
    let e = Engine::new(EngineOptions::default());
    let check = |q: &str, kind: ErrorKind| {
        let err = e.instant_query(&db, q, 0).unwrap_err();
        assert_eq!(err.kind, kind, "{q}: {err}");
    };
    check("sum(", ErrorKind::BadData);
    check("x + on() x", ErrorKind::Execution);
    let err = e.range_query(&db, "x[1m]", 0, 10, 1).unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadData);
    assert!(err.message.contains("range vector"), "{err}");
    assert_eq!(
        e.range_query(&db, "x", 10, 0, 1).unwrap_err().kind,
        ErrorKind::BadData
    );
}

#[test]
fn limits_apply() {
    let db = storage();
    let small = Engine::new(EngineOptions {
        max_samples: 100,
        ..EngineOptions::default()
    });
    let err = small
        .range_query(&db, "x", 0, 1_800_000, 15_000)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Execution);
    assert_eq!(
        err.message,
        "query processing would load too many samples into memory in query execution"
    );
    let slow = Engine::new(EngineOptions {
        timeout: Duration::ZERO,
        ..EngineOptions::default()
    });
    assert_eq!(
        slow.instant_query(&db, "x", 0).unwrap_err().kind,
        ErrorKind::Timeout
    );
}

mod prop {
    //! Property: evaluating a query as a range query gives, at every step, what the instant
    //! query gives at that time (over the in-memory storage and over a `Db`, whose instant
    //! vector selectors read only each series' newest sample); and nothing panics on generated
    //! queries.

    use super::storage;
    use argus_query::{Engine, EngineOptions, Value};
    use argus_storage::{Appendable, Db, Labels, Options, Queryable, SyncMode, stale_nan};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// The data of [`storage`] in a `Db` head, plus `x{i="3"}`, which goes stale at 10 min and
    /// comes back at 15 min, and a series with one sample per 2.5 min (the lookback's edges).
    fn db() -> &'static Db {
        static DB: OnceLock<(tempfile::TempDir, Db)> = OnceLock::new();
        &DB.get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let opts = Options {
                background: false,
                sync: SyncMode::Buffer,
                retention_ms: None,
                ..Options::default()
            };
            let db = Db::open(dir.path(), opts).expect("open");
            let mut app = db.appender();
            let mut add = |pairs: &[(&str, &str)], t: i64, v: f64| {
                app.append(None, &Labels::from_pairs(pairs), t, v)
                    .expect("append");
            };
            for k in 0..=120i64 {
                let t = k * 15_000;
                for i in 0..3i64 {
                    let i_s = i.to_string();
                    add(&[("__name__", "x"), ("i", &i_s)], t, (k * (i + 1)) as f64);
                }
                add(&[("__name__", "c")], t, ((k % 7) * 5 + k / 7) as f64);
                match k {
                    ..40 | 60.. => add(&[("__name__", "x"), ("i", "3")], t, k as f64),
                    40 => add(&[("__name__", "x"), ("i", "3")], t, stale_nan()),
                    _ => {}
                }
                if k % 10 == 0 {
                    add(&[("__name__", "x"), ("i", "4")], t, -(k as f64));
                }
            }
            app.commit().expect("commit");
            (dir, db)
        })
        .1
    }

    fn expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("x".to_string()),
            Just("x{i=\"1\"}".to_string()),
            Just("x offset 1m".to_string()),
            Just("x @ 300".to_string()),
            (
                prop::sample::select(vec![
                    "rate",
                    "increase",
                    "delta",
                    "irate",
                    "deriv",
                    "changes",
                    "resets",
                    "avg_over_time",
                    "max_over_time",
                    "stddev_over_time",
                    "last_over_time",
                    "count_over_time",
                ]),
                prop::sample::select(vec!["30s", "1m", "2m"]),
            )
                .prop_map(|(f, r)| format!("{f}(x[{r}])")),
            Just("max_over_time(x[2m:30s])".to_string()),
            (
                prop::sample::select(vec!["rate", "increase", "resets"]),
                prop::sample::select(vec!["1m", "2m", "5m"]),
            )
                .prop_map(|(f, r)| format!("{f}(c[{r}])")),
        ];
        leaf.prop_recursive(3, 16, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| format!("sum by (i) ({e})")),
                inner.clone().prop_map(|e| format!("avg({e})")),
                inner.clone().prop_map(|e| format!("topk(2, {e})")),
                inner.clone().prop_map(|e| format!("abs(-{e})")),
                inner.clone().prop_map(|e| format!("({e}) * 2")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) + ({b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) > bool ({b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
                (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) unless ({b})")),
            ]
        })
    }

    fn vector_at(v: Value) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = match v {
            Value::Vector(v) => v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect(),
            Value::Scalar(_, v) => vec![("{}".to_string(), v)],
            other => panic!("unexpected {other:?}"),
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Token soup in the spirit of the `promql_eval` fuzz target: must never panic.
    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                "x",
                "y",
                "{",
                "}",
                "(",
                ")",
                "[",
                "]",
                "1m",
                "5s",
                ":",
                ",",
                "\"a\"",
                "i",
                "=",
                "=~",
                "!=",
                "+",
                "-",
                "*",
                "/",
                "^",
                "%",
                "==",
                ">",
                "bool",
                "and",
                "or",
                "unless",
                "on",
                "ignoring",
                "group_left",
                "group_right",
                "by",
                "without",
                "sum",
                "topk",
                "quantile",
                "count_values",
                "rate",
                "offset",
                "@",
                "start()",
                "end()",
                "label_replace",
                "histogram_quantile",
                "absent",
                "scalar",
                "vector",
                "time()",
                "0",
                "-1",
                "NaN",
                "Inf",
                "1e9",
                "0.5",
                "\".*\"",
                "le",
                "sort",
                "holt_winters",
                "info",
                "limitk",
                "limit_ratio",
                "fill(0)",
                "1y",
                "1ms",
            ]),
            1..24,
        )
        .prop_map(|toks| toks.join(" "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn token_soup_never_panics(q in soup()) {
            let db = storage();
            let e = Engine::new(EngineOptions {
                max_samples: 100_000,
                timeout: std::time::Duration::from_secs(2),
                ..EngineOptions::default()
            });
            let _ = e.instant_query(&db, &q, 600_000);
            let _ = e.range_query(&db, &q, 0, 900_000, 15_000);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn range_steps_match_instant_queries(q in expr()) {
            steps_match_instants(&storage(), &q, (120_000, 900_000, 60_000))?;
        }

        #[test]
        fn range_steps_match_instant_queries_on_a_db(q in expr()) {
            // Steps of 15 s from before the first sample to past the last one's lookback.
            steps_match_instants(db(), &q, (-30_000, 2_160_000, 15_000))?;
        }
    }

    fn steps_match_instants(
        db: &dyn Queryable,
        q: &str,
        (start, end, step): (i64, i64, i64),
    ) -> Result<(), TestCaseError> {
        let e = Engine::new(EngineOptions::default());
        let Ok(Value::Matrix(m)) = e.range_query(db, q, start, end, step) else {
            return Ok(());
        };
        let mut t = start;
        while t <= end {
            let Ok(inst) = e.instant_query(db, q, t) else {
                t += step;
                continue;
            };
            let want = vector_at(inst);
            let mut got: Vec<(String, f64)> = m
                .iter()
                .filter_map(|s| {
                    s.points
                        .iter()
                        .find(|p| p.0 == t)
                        .map(|p| (s.labels.to_string(), p.1))
                })
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(got.len(), want.len(), "{} at {}", q, t);
            for (g, w) in got.iter().zip(&want) {
                prop_assert_eq!(&g.0, &w.0);
                prop_assert!(
                    g.1 == w.1 || (g.1.is_nan() && w.1.is_nan()) || (g.1 - w.1).abs() < 1e-9,
                    "{} at {}: {} vs {}",
                    q,
                    t,
                    g.1,
                    w.1
                );
            }
            t += step;
        }
        Ok(())
    }
}
