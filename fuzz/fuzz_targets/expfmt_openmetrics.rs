#![no_main]
//! OpenMetrics 1.0 parser: no panic, no hang, on any bytes; every accessor safe (exemplars
//! included); and the scrape append path survives the same bytes.
use argus::scrape::expfmt::{Entry, Format, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut p = Parser::new(data, Format::OpenMetrics);
    let mut ls = Vec::new();
    let mut ex = Vec::new();
    let mut n = 0usize;
    while let Some(e) = p.next() {
        n += 1;
        assert!(n <= data.len() + 1, "BUG: more entries than bytes");
        match e {
            Entry::Series => {
                let _ = p.labels(&mut ls);
                let _ = p.metric_name();
                let _ = p.exemplar(&mut ex);
            }
            Entry::Help => drop(p.help()),
            Entry::Type => drop(p.metric_type()),
            Entry::Unit => drop(p.unit()),
            Entry::Comment => {}
        }
    }
    let storage = argus_storage::testing::MemStorage::new();
    let mut cache = argus::scrape::cache::SeriesCache::new();
    let mut app = argus_storage::Appendable::appender(&storage);
    let _ = cache.append_body(data, Format::OpenMetrics, 1000, app.as_mut(), &Default::default());
});
