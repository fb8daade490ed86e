#![no_main]
//! Arbitrary query text through parse + evaluate (instant and range) against a small data set.
//! Properties: no panic, no hang (small timeout), bounded memory (small max_samples).

use argus_query::{Engine, EngineOptions};
use argus_storage::{Labels, stale_nan, testing::MemStorage};
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
