//! Shared by the remote-write benches (`remote_write`, `write_scratch`): the requests of live
//! remote write's shape and the loop that times them.

use argus::ingest::prompb::{Label, Sample, TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;
use std::time::{Duration, Instant};

/// Series of the `db/*` benches: the harness data set's label shape (job, instance,
/// namespace, pod, and method/code on some).
pub const DB_SERIES: usize = 2000;

/// Request `part` of round `round`: series `part * DB_SERIES ..` of a larger set.
pub fn db_request(round: i64, part: usize) -> Vec<u8> {
    let label = |n: &str, v: String| Label {
        name: n.into(),
        value: v,
    };
    let timeseries = (part * DB_SERIES..(part + 1) * DB_SERIES)
        .map(|i| {
            let pod = i / 50;
            // Unique within a pod: the name.
            let mut labels = vec![label("__name__", format!("app_metric_{}_total", i % 50))];
            if i % 3 == 0 {
                labels.push(label("code", ["200", "404", "500"][i % 7 % 3].into()));
            }
            labels.extend([
                label("instance", format!("10.1.{}.{}:8080", pod / 200, pod % 200)),
                label("job", "api-server".into()),
            ]);
            if i % 3 == 0 {
                labels.push(label("method", ["GET", "POST"][i % 2].into()));
            }
            labels.extend([
                label("namespace", "prod".into()),
                label("pod", format!("api-server-{pod:05}")),
            ]);
            TimeSeries {
                labels,
                samples: vec![Sample {
                    value: (round * 17 + i as i64) as f64,
                    timestamp: 1_700_000_000_000 + round * 15_000,
                }],
                exemplars: vec![],
                histograms: vec![],
            }
        })
        .collect();
    encode(&WriteRequest {
        timeseries,
        metadata: vec![],
    })
}

/// Benches `run` (decode, append, commit a body at a time) as `name` in `g` on requests of
/// `parts` × [`DB_SERIES`] series, each request one round later than the one before; the
/// first round is sent untimed, so every series is known. Only `run` is timed, not building
/// the next body.
#[allow(
    dead_code,
    reason = "not every bench that includes this module uses it"
)]
pub fn bench_rounds(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    parts: usize,
    run: impl FnMut(&[u8], i64),
) {
    bench_rounds_clock(g, name, parts, false, run);
}

/// [`bench_rounds`] in thread CPU time ([`thread_cpu`]; run with `--sample-size 10
/// --measurement-time 8`, see [`bench_cpu`]): on a shared machine wall time swings 2–3× between
/// rounds (`benches/README.md`, "ingest8").
#[allow(
    dead_code,
    reason = "not every bench that includes this module uses it"
)]
pub fn bench_rounds_cpu(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    parts: usize,
    run: impl FnMut(&[u8], i64),
) {
    bench_rounds_clock(g, name, parts, true, run);
}

fn bench_rounds_clock(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    parts: usize,
    cpu: bool,
    mut run: impl FnMut(&[u8], i64),
) {
    for part in 0..parts {
        run(&db_request(0, part), 1_700_000_000_000);
    }
    let mut sent = parts;
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let (round, part) = ((sent / parts) as i64, sent % parts);
                sent += 1;
                let body = db_request(round, part);
                let now = 1_700_000_000_000 + round * 15_000;
                if cpu {
                    let t0 = thread_cpu();
                    run(&body, now);
                    spent += thread_cpu().saturating_sub(t0);
                } else {
                    let t0 = Instant::now();
                    run(&body, now);
                    spent += t0.elapsed();
                }
            }
            spent
        })
    });
}

/// CPU time this thread has run (`/proc/thread-self/schedstat`'s first field), for benches
/// on a machine shared with other work: time spent waiting for a core is not counted, as it
/// is in wall time.
#[allow(
    dead_code,
    reason = "not every bench that includes this module uses it"
)]
pub fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns = stat.split_whitespace().next().and_then(|f| f.parse().ok());
    Duration::from_nanos(ns.expect("schedstat's run time"))
}

/// Benches `step` as `name` in `g` in thread CPU time ([`thread_cpu`]): a batch of iterations
/// between two readings, so the reading's own cost is spread over them. The kernel updates
/// the reading at scheduler ticks, so samples must be long: run with `--sample-size 10
/// --measurement-time 8` (short samples read as zero and criterion refuses them).
#[allow(
    dead_code,
    reason = "not every bench that includes this module uses it"
)]
pub fn bench_cpu(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut step: impl FnMut()) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let t0 = thread_cpu();
            for _ in 0..iters {
                step();
            }
            thread_cpu().saturating_sub(t0)
        })
    });
}
