//! Remote read request decoder: arbitrary bytes must decode or fail cleanly (no panic, bounded
//! allocation), and a decoded request must be answered from a small in-memory storage without
//! panicking, within the sample limit, and streamed as framed chunks that decode again.
#![no_main]

use argus::remote::read::{answer, decode};
use argus::remote::read_stream::{decode_frames, stream};
use argus_storage::Labels;
use argus_storage::testing::MemStorage;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(req) = decode(data) else {
        return;
    };
    let db = MemStorage::new();
    for t in 0..3 {
        db.insert(Labels::from_pairs(&[("__name__", "up"), ("job", "a")]), t, 1.0);
        db.insert(Labels::from_pairs(&[("__name__", "x"), ("job", "b")]), t, 2.0);
    }
    let ext = Labels::from_pairs(&[("replica", "r")]);
    if let Ok(resp) = answer(&db, &req, &ext, 4) {
        let n: usize = resp
            .results
            .iter()
            .flat_map(|r| &r.timeseries)
            .map(|t| t.samples.len())
            .sum();
        assert!(n <= 4, "sample limit exceeded: {n}");
        assert_eq!(resp.results.len(), req.queries.len());
    }
    let mut body = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    if stream(&db, &req, &ext, 64, deadline, &mut |f| {
        body.extend_from_slice(&f);
        true
    })
    .is_ok()
    {
        assert!(decode_frames(&body, 1 << 20).is_ok(), "own stream does not decode");
    }
});
