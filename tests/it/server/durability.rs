//! Crash durability: remote-write batches while argus is SIGKILLed; after a restart every batch
//! that got a 2xx must be queryable with all its samples.

use super::harness::{Argus, enc, now_ms, try_request};
use super::series;
use argus::ingest::prompb::WriteRequest;
use argus::ingest::remote_write::encode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SAMPLES_PER_BATCH: i64 = 10;

#[test]
fn acknowledged_batches_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    let base = now_ms() - 60_000;
    let acked = Arc::new(Mutex::new(Vec::<u32>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let addr = a.addr;
    let writers: Vec<_> = (0..2u32)
        .map(|w| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut batch = w;
                while !stop.load(Ordering::Relaxed) {
                    let id = batch.to_string();
                    let samples: Vec<(i64, f64)> = (0..SAMPLES_PER_BATCH)
                        .map(|i| (base + i * 1000, f64::from(batch) + i as f64))
                        .collect();
                    let body = encode(&WriteRequest {
                        timeseries: vec![series(
                            &[("__name__", "durable"), ("batch", &id)],
                            &samples,
                        )],
                        metadata: vec![],
                    });
                    let headers = [
                        ("Content-Type", "application/x-protobuf"),
                        ("Content-Encoding", "snappy"),
                    ];
                    match try_request(addr, "POST", "/api/v1/write", &headers, &body) {
                        Ok(r) if (200..300).contains(&r.status) => {
                            acked.lock().unwrap().push(batch)
                        }
                        Ok(r) => panic!("batch {batch}: status {} {}", r.status, r.text()),
                        Err(_) => return, // the server died mid-request: not acknowledged
                    }
                    batch += 2;
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    a.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    drop(a);

    let b = Argus::start(dir.path(), &[]);
    let t = base + SAMPLES_PER_BATCH * 1000;
    let q = enc("count_over_time(durable[1m])");
    let r = b.get(&format!(
        "/api/v1/query?query={q}&time={}.{:03}",
        t / 1000,
        t % 1000
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let mut found = std::collections::BTreeMap::new();
    for s in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let batch: u32 = s["metric"]["batch"]
            .as_str()
            .unwrap_or("x")
            .parse()
            .unwrap();
        found.insert(
            batch,
            s["value"][1].as_str().unwrap_or_default().to_string(),
        );
    }
    let missing: Vec<_> = acked
        .iter()
        .filter(|b| found.get(b).map(String::as_str) != Some(&SAMPLES_PER_BATCH.to_string()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged batches lost or incomplete after SIGKILL: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(20)]
    );
}
