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
