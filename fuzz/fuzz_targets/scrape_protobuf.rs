//! Protobuf scrape format: arbitrary bytes (first byte picks the histogram options, classic→NHCB conversion included) must decode
//! or fail cleanly; every native histogram decoded has a consistent layout and at most the
//! bucket limit; created timestamps only with the feature; appending the samples (and their
//! created-timestamp zero samples) to the in-memory storage must not panic.
#![no_main]

use argus::scrape::protobuf::{self, Options, Value};
use argus_storage::testing::MemStorage;
use argus_storage::{Appendable, Labels};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let opts = Options {
        native_histograms: mode & 1 != 0,
        always_classic: mode & 2 != 0,
        bucket_limit: u64::from((mode >> 4) & 7),
        min_bucket_factor: if mode & 4 != 0 { 1.5 } else { 0.0 },
        ct_zero_ingestion: mode & 8 != 0,
        convert_nhcb: mode & 0x80 != 0,
    };
    let mut out = Vec::new();
    if protobuf::decode(body, &opts, &mut out).is_err() {
        return;
    }
    let storage = MemStorage::new();
    let mut app = storage.appender();
    for s in &out {
        let labels = Labels::new(s.labels.clone());
        assert!(opts.ct_zero_ingestion || s.start_ms.is_none());
        if let Some(ct) = s.start_ms {
            let _ = match &s.value {
                Value::Float(_) => app.append_ct_zero(None, &labels, 0, ct),
                Value::Histogram(h) => app.append_histogram_ct_zero(None, &labels, 0, ct, h),
            };
        }
        let _ = match &s.value {
            Value::Float(v) => app.append(None, &labels, 0, *v),
            Value::Histogram(h) => {
                assert_eq!(h.check_layout(), Ok(()));
                // The limit is for exponential histograms; converted classic ones keep their
                // buckets.
                if opts.bucket_limit > 0 && h.schema != -53 {
                    let n = (h.positive_buckets.len() + h.negative_buckets.len()) as u64;
                    assert!(n <= opts.bucket_limit, "{n} buckets over {}", opts.bucket_limit);
                }
                app.append_histogram(None, &labels, 0, h)
            }
        };
    }
    let _ = app.commit();
});
