//! Remote Write 2.0 body decoder: arbitrary bytes must decode or fail cleanly (no panic, bounded
//! allocation); a decoded request converts to the 1.0 shape without panicking (bad symbol refs
//! are per-series rejections), and the accepted series survive 1.0 → 2.0 → 1.0 unchanged;
//! appending them to the in-memory storage must not panic.
#![no_main]

use argus::ingest::prompb::WriteRequest;
use argus::ingest::prompb_v2::Request;
use argus::ingest::remote_write::{Decoder, append_request};
use argus::ingest::remote_write_v2::{decode_into, encode, from_v1, to_v1};
use argus_storage::Appendable;
use argus_storage::testing::MemStorage;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut dec = Decoder::new();
    let mut req = Request::default();
    if decode_into(&mut dec, data, 1 << 20, &mut req).is_err() {
        return;
    }
    let mut v1 = WriteRequest::default();
    let _ = to_v1(&req, &mut v1);
    // 2.0 carries samples or histograms per series; Argus re-encodes float samples only.
    let mut floats = v1.clone();
    floats.timeseries.retain(|t| !t.samples.is_empty());
    floats.timeseries.iter_mut().for_each(|t| t.histograms.clear());
    let mut again = Request::default();
    decode_into(&mut dec, &encode(&from_v1(&floats)), 1 << 22, &mut again)
        .expect("re-encoded request decodes");
    let mut v1_again = WriteRequest::default();
    let out = to_v1(&again, &mut v1_again);
    assert_eq!(out.rejected_total, 0, "re-encoded series are valid");
    let bits = |r: &WriteRequest| {
        r.timeseries
            .iter()
            .map(|t| {
                (
                    t.labels.clone(),
                    t.samples
                        .iter()
                        .map(|s| (s.timestamp, (s.value + 0.0).to_bits()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    // Histogram-only series lose their histograms in 2.0 → 1.0 (reduced to timestamps) and
    // are not re-encoded; compare the series that have samples.
    let with_samples = |r: &WriteRequest| {
        let mut b = bits(r);
        b.retain(|(_, s)| !s.is_empty());
        b
    };
    assert_eq!(with_samples(&v1), with_samples(&v1_again));
    let storage = MemStorage::new();
    let mut app = storage.appender();
    if append_request(app.as_mut(), &mut v1, 0).is_ok() {
        let _ = app.commit();
    }
});
