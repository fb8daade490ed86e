//! Remote-write body decoder: arbitrary bytes must decode or fail cleanly (no panic, bounded
//! allocation); a decoded request must re-encode and decode to the same request, and appending
//! it to the in-memory storage must not panic.
#![no_main]

use argus::ingest::prompb::WriteRequest;
use argus::ingest::remote_write::{Decoder, append_request, encode};
use argus_storage::Appendable;
use argus_storage::testing::MemStorage;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut dec = Decoder::new();
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
