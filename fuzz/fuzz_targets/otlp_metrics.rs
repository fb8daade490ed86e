//! OTLP metrics receiver: arbitrary bytes (first byte picks protobuf or OTLP/JSON, optionally
//! gzip) must decode or fail cleanly; a decoded request must re-encode to protobuf and decode to
//! the same bytes, and translating it into the in-memory storage must not panic.
#![no_main]

use argus::config::otlp::OtlpConfig;
use argus::ingest::otlp::decode::{self, Encoding};
use argus::ingest::otlp::translate::{self, Settings};
use argus::ingest::otlp::MAX_SAMPLES_PER_REQUEST;
use argus_storage::Appendable;
use argus_storage::testing::MemStorage;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let enc = if mode & 1 == 0 { Encoding::Protobuf } else { Encoding::Json };
    let mut buf = Vec::new();
    let body = if mode & 2 != 0 {
        if decode::gunzip(body, 1 << 20, &mut buf).is_err() {
            return;
        }
        &buf[..]
    } else {
        body
    };
    let Ok(req) = decode::decode(body, enc) else {
        return;
    };
    let bytes = decode::encode(&req, Encoding::Protobuf);
    let again = decode::decode(&bytes, Encoding::Protobuf).expect("re-encoded request decodes");
    assert_eq!(decode::encode(&again, Encoding::Protobuf), bytes);
    if translate::output_size(&req) > MAX_SAMPLES_PER_REQUEST {
        return;
    }
    let storage = MemStorage::new();
    let mut app = storage.appender();
    let cfg = OtlpConfig {
        promote_all_resource_attributes: mode & 4 != 0,
        ..OtlpConfig::default()
    };
    let s = Settings {
        config: &cfg,
        limits: Default::default(),
        now_ms: i64::MAX / 2,
    };
    if translate::append(app.as_mut(), &req, &s).is_ok() {
        let _ = app.commit();
    }
});
