//! Remote-write body decoder: arbitrary bytes must decode or fail cleanly (no panic, bounded
//! allocation); a decoded request must re-encode and decode to the same request, and appending
//! it to the in-memory storage must not panic. The in-place scan of the fast path must accept
//! only bodies prost accepts and read the same series from them, and `append_body` must not
//! panic either. (The scan leaves label fields to a check made before use: where that check
//! accepts them, they must read as prost reads them.)
#![no_main]

use argus::ingest::prompb::WriteRequest;
use argus::ingest::remote_write::{Decoder, LabelLimits, append_body, append_request, encode};
use argus::ingest::remote_write_scan::{Scan, for_each_label};
use argus::ingest::series_cache::SeriesCache;
use argus_storage::Appendable;
use argus_storage::testing::MemStorage;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut dec = Decoder::new();
    if let Ok(raw) = dec.decompress(data, 1 << 20) {
        let raw = raw.to_vec();
        let mut scan = Scan::default();
        if scan.scan(&raw) {
            let mut req = WriteRequest::default();
            let labels_ok = scan
                .series
                .iter()
                .all(|s| for_each_label(&raw[s.labels.clone()], |_, _| {}));
            match dec.decode_into(data, 1 << 20, &mut req) {
                // Only metadata and label fields, which the fast path checks before use, may
                // still fail.
                Err(_) => assert!(
                    !scan.metadata.is_empty() || !labels_ok,
                    "prost refused what the scan read"
                ),
                Ok(()) => {
                    assert_eq!(req.timeseries.len(), scan.series.len());
                    for (ts, s) in req.timeseries.iter().zip(&scan.series) {
                        // The scan leaves label fields unchecked; where the check accepts
                        // them, they read as prost reads them.
                        let mut labels = Vec::new();
                        if for_each_label(&raw[s.labels.clone()], |n, v| {
                            labels.push((n.to_string(), v.to_string()))
                        }) {
                            let want: Vec<_> = ts
                                .labels
                                .iter()
                                .map(|l| (l.name.clone(), l.value.clone()))
                                .collect();
                            assert_eq!(labels, want);
                        }
                        let got: Vec<_> = scan.samples[s.samples.clone()]
                            .iter()
                            .map(|x| (x.timestamp, x.value.to_bits()))
                            .collect();
                        let want: Vec<_> = ts
                            .samples
                            .iter()
                            .map(|x| (x.timestamp, x.value.to_bits()))
                            .collect();
                        assert_eq!(got, want);
                    }
                }
            }
        }
        let storage = MemStorage::new();
        let cache = SeriesCache::new(LabelLimits::default());
        let mut app = storage.appender();
        if append_body(&mut dec, &cache, data, app.as_mut(), 0).is_ok() {
            let _ = app.commit();
        }
    }
    let mut req = WriteRequest::default();
    if dec.decode_into(data, 1 << 20, &mut req).is_err() {
        return;
    }
    let mut again = WriteRequest::default();
    dec.decode_into(&encode(&req), 1 << 22, &mut again)
        .expect("re-encoded request decodes");
    let bits = |r: &WriteRequest| {
        r.timeseries
            .iter()
            .map(|t| {
                (
                    t.labels.clone(),
                    t.samples
                        .iter()
                        .map(|s| (s.timestamp, s.value.to_bits()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&req), bits(&again));
    let storage = MemStorage::new();
    let mut app = storage.appender();
    if append_request(app.as_mut(), &mut req, 0).is_ok() {
        let _ = app.commit();
    }
});
