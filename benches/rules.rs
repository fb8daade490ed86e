//! Rule-group evaluation: one group of 1,000 recording rules over 10,000 series in a temp `Db`
//! (head, 1 h of 15 s data), time per group evaluation. Throughput is the number of rules.
//! The floor is the same 1,000 queries run by the engine without appending their output.
//!
//! The rules (and the series they read) are the ones `rules_vs_prometheus.py` gives Argus and
//! Prometheus; keep the two generators in step.

use argus::rules::{EvalEnv, Group, LoadOptions, parse_text};
use argus_query::{Engine, EngineOptions};
use argus_storage::{Appendable, Db, Labels, Options, SyncMode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

const SHARDS: usize = 100;
const INSTANCES: usize = 100;
const RULES: usize = 1_000;
const STEP_MS: i64 = 15_000;
const SPAN_MS: i64 = 3_600_000;
const START: i64 = 1_700_000_000_000;

/// Rule `i` of the group (see `rules_vs_prometheus.py`).
fn rule_expr(i: usize) -> String {
    let k = i % SHARDS;
    match i % 4 {
        0 => format!("sum by (instance) (rate(bench_metric{{shard=\"s{k}\"}}[5m]))"),
        1 => format!("bench_metric{{shard=\"s{k}\"}} * 2"),
        2 => format!("avg(bench_metric{{shard=\"s{k}\"}})"),
        _ => format!("count(bench_metric{{shard=\"s{k}\"}} > 50)"),
    }
}

fn rules_yaml() -> String {
    let mut y = String::from("groups:\n- name: bench\n  interval: 15s\n  rules:\n");
    for i in 0..RULES {
        let _ = writeln!(
            y,
            "  - record: bench:rule_{i}\n    expr: '{}'",
            rule_expr(i)
        );
    }
    y
}

/// 10,000 counters `bench_metric{shard, instance}` with 15 s samples over 1 h.
fn fill(db: &Db) {
    let mut app = db.appender();
    for s in 0..SHARDS {
        for inst in 0..INSTANCES {
            let labels = Labels::from_pairs(&[
                ("__name__", "bench_metric".to_string()),
                ("shard", format!("s{s}")),
                ("instance", format!("i{inst}")),
            ]);
            let per_step = ((s + inst) % 5 + 1) as f64;
            let mut r = None;
            for k in 0..=SPAN_MS / STEP_MS {
                r = Some(
                    app.append(r, &labels, START + k * STEP_MS, k as f64 * per_step)
                        .expect("append"),
                );
            }
        }
        app.commit().expect("commit");
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        background: false,
        sync: SyncMode::Buffer,
        retention_ms: None,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).expect("open");
    fill(&db);
    let engine = Engine::new(EngineOptions::default());
    let specs = parse_text(&rules_yaml(), "bench.yml", &LoadOptions::default()).expect("rules");
    let spec = specs.into_iter().next().expect("one group");
    let mut group = Group::new(spec, 15_000, 0);
    group.mark_restored();
    let external = BTreeMap::new();
    let env = EvalEnv {
        engine: &engine,
        queryable: &db,
        appendable: &db as &dyn Appendable,
        external_labels: &external,
        external_url: "http://localhost:9090",
        resend_delay_ms: 60_000,
    };

    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(RULES as u64));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    // Evaluation times advance by 1 s per iteration from 10 minutes into the data, so each
    // iteration appends fresh samples (as a running server does) and 5 m windows stay full.
    let mut t = START + 600_000;
    g.bench_function("group_1000_recording_rules_10k_series", |b| {
        b.iter(|| {
            t += 1_000;
            black_box(group.eval(t, &env));
        })
    });
    let exprs: Vec<String> = (0..RULES).map(rule_expr).collect();
    let mut tq = START + 600_000;
    g.bench_function("floor_queries_only", |b| {
        b.iter(|| {
            tq += 1_000;
            for e in &exprs {
                black_box(engine.instant_query(&db, e, tq).expect("query"));
            }
        })
    });
    g.finish();
    let errors = group.rule_errors();
    assert!(errors.is_empty(), "rule errors: {errors:?}");
    db.close().expect("close");
}

criterion_group!(benches, bench);
criterion_main!(benches);
