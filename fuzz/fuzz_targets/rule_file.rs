//! Rule files: parse + validate arbitrary YAML (no panic, bounded work), then evaluate the first
//! valid group twice on a tiny in-memory storage.
#![no_main]

use argus::rules::{EvalEnv, Group, LoadOptions, parse_text};
use argus_query::{Engine, EngineOptions};
use argus_storage::Labels;
use argus_storage::testing::MemStorage;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let opts = LoadOptions {
        ignore_unknown_fields: data.first().is_some_and(|b| b & 1 == 1),
        legacy_names: data.first().is_some_and(|b| b & 2 == 2),
    };
    let Ok(groups) = parse_text(text, "fuzz.yml", &opts) else {
        return;
    };
    let Some(spec) = groups.into_iter().next() else {
        return;
    };
    let db = MemStorage::new();
    db.insert(Labels::from_pairs(&[("__name__", "up"), ("job", "a")]), 0, 1.0);
    db.insert(Labels::from_pairs(&[("__name__", "up"), ("job", "b")]), 0, 0.0);
    let engine = Engine::new(EngineOptions {
        lookback_delta_ms: 300_000,
        timeout: Duration::from_secs(2),
        max_samples: 10_000,
    });
    let ext = BTreeMap::from([("cluster".to_string(), "c".to_string())]);
    let env = EvalEnv {
        engine: &engine,
        queryable: &db,
        appendable: &db,
        external_labels: &ext,
        external_url: "http://x",
        resend_delay_ms: 60_000,
    };
    let mut g = Group::new(spec, 60_000, 0);
    g.mark_restored();
    let _ = g.eval(0, &env);
    let _ = g.eval(60_000, &env);
    let _ = g.status();
});
