#![no_main]
//! Arbitrary query text through parse + evaluate (instant and range) against a small data set.
//! Properties: no panic, no hang (small timeout), bounded memory (small max_samples).

use argus_query::{Engine, EngineOptions};
use argus_storage::{FloatHistogram, Labels, Span, stale_nan, testing::MemStorage};
use std::sync::OnceLock;
use std::time::Duration;

fn storage() -> &'static MemStorage {
    static DB: OnceLock<MemStorage> = OnceLock::new();
    DB.get_or_init(|| {
        let db = MemStorage::new();
        for (name, job) in [("x", "a"), ("x", "b"), ("y", "a"), ("h_bucket", "a")] {
            for le in ["0.1", "1", "+Inf"] {
                let mut l = Labels::from_pairs(&[("__name__", name), ("job", job)]);
                if name == "h_bucket" {
                    l.set("le", le);
                } else if le != "0.1" {
                    continue;
                }
                for k in 0..40i64 {
                    let v = if k == 30 {
                        stale_nan()
                    } else {
                        (k * (k % 7)) as f64
                    };
                    db.insert(l.clone(), k * 15_000, v);
                }
            }
        }
        // Native histograms: exponential (with a reset and a schema change), custom buckets,
        // and a series mixing floats and histograms.
        for (job, schema) in [("a", 0), ("b", -53)] {
            let l = Labels::from_pairs(&[("__name__", "nh"), ("job", job)]);
            for k in 0..40i64 {
                let c = (k % 25 + 1) as f64;
                let h = FloatHistogram {
                    schema: if schema == 0 && k > 20 { 1 } else { schema },
                    count: 3.0 * c,
                    sum: c,
                    zero_count: if schema == 0 { c } else { 0.0 },
                    zero_threshold: if schema == 0 { 0.001 } else { 0.0 },
                    positive_spans: vec![Span::new(if schema == 0 { -1 } else { 0 }, 2)],
                    positive_buckets: vec![c, c],
                    custom_values: if schema == 0 { vec![] } else { vec![1.0, 5.0] },
                    ..Default::default()
                };
                if k == 30 {
                    db.insert(l.clone(), k * 15_000, stale_nan());
                } else {
                    db.insert_histogram(l.clone(), k * 15_000, h);
                }
            }
        }
        let m = Labels::from_pairs(&[("__name__", "x"), ("job", "mixed")]);
        for k in 0..40i64 {
            if k % 2 == 0 {
                db.insert(m.clone(), k * 15_000, k as f64);
            } else {
                let h = FloatHistogram {
                    count: k as f64,
                    sum: 1.0,
                    positive_spans: vec![Span::new(0, 1)],
                    positive_buckets: vec![k as f64],
                    ..Default::default()
                };
                db.insert_histogram(m.clone(), k * 15_000, h);
            }
        }
        db
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let engine = Engine::new(EngineOptions {
        lookback_delta_ms: 5 * 60 * 1000,
        timeout: Duration::from_millis(200),
        max_samples: 20_000,
    });
    let db = storage();
    let _ = engine.instant_query(db, q, 300_000);
    let _ = engine.range_query(db, q, 0, 600_000, 15_000);
});
