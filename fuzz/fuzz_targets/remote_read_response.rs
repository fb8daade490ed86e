//! Remote read client decoders: a `SAMPLES` answer (snappy + `ReadResponse`) and a streamed
//! answer (framed `ChunkedReadResponse`s with Prometheus XOR chunks). Arbitrary bytes must
//! decode or fail cleanly; decoded samples are sorted without duplicate timestamps.
#![no_main]

use argus::remote::read_client::decode_response;
use argus::remote::read_stream::decode_frames;
use argus_storage::decode_prometheus_xor;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(series) = decode_response(data) {
        for (_, s) in series {
            assert!(s.windows(2).all(|w| w[0].0 < w[1].0), "unsorted samples");
        }
    }
    if let Ok(frames) = decode_frames(data, 1 << 20) {
        let mut dst = Vec::new();
        for f in frames {
            for s in f.chunked_series {
                for c in s.chunks {
                    dst.clear();
                    let _ = decode_prometheus_xor(&mut dst, &c.data);
                }
            }
        }
    }
});
