#![no_main]
//! Prometheus text 0.0.4 parser: no panic, no hang, on any bytes; every accessor safe; and the
//! full scrape append path (cache, relabel-free) survives the same bytes. The input split at its
//! first 0xff is also read as two bodies of one target: the second parsed with the first's
//! series texts as hints (`next_expecting`) must read exactly as without them, and the cache
//! (which passes those hints) survives both scrapes.
use argus::scrape::expfmt::{Entry, Format, Parser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut p = Parser::new(data, Format::Text);
    let mut ls = Vec::new();
    let mut n = 0usize;
    while let Some(e) = p.next() {
        n += 1;
        assert!(n <= data.len() + 1, "BUG: more entries than bytes");
        match e {
            Entry::Series => {
                let _ = p.labels(&mut ls);
                let _ = p.metric_name();
                assert!(
                    p.exemplar(&mut ls).is_none(),
                    "BUG: no exemplars in text format"
                );
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
    let _ = cache.append_body(data, Format::Text, 1000, app.as_mut(), &Default::default());

    let cut = data.iter().position(|&b| b == 0xff).unwrap_or(data.len());
    let (a, b) = (&data[..cut], data.get(cut + 1..).unwrap_or_default());
    let mut keys = Vec::new();
    let mut p = Parser::new(a, Format::Text);
    while let Some(e) = p.next() {
        if e == Entry::Series {
            keys.push(p.series().to_vec());
        }
    }
    assert_eq!(
        read(b, Some(&keys)),
        read(b, None),
        "BUG: hints changed what was read"
    );
    let mut cache = argus::scrape::cache::SeriesCache::new();
    for (body, ts) in [(a, 1000), (b, 2000)] {
        let mut app = argus_storage::Appendable::appender(&storage);
        let _ = cache.append_body(body, Format::Text, ts, app.as_mut(), &Default::default());
    }
});

/// Everything observable about each entry of `body`, and the error at the end.
fn read(body: &[u8], hints: Option<&[Vec<u8>]>) -> (Vec<String>, Option<String>) {
    let mut p = Parser::new(body, Format::Text);
    let mut out = Vec::new();
    let mut n = 0;
    let mut ls = Vec::new();
    loop {
        let expect = hints.and_then(|h| h.get(n)).map_or(&[][..], |k| &k[..]);
        let Some(e) = p.next_expecting(expect) else {
            break;
        };
        if e == Entry::Series {
            n += 1;
        }
        let l = p.labels(&mut ls);
        out.push(format!(
            "{e:?} {:?} {:?} {} {:?} {l:?} {ls:?}",
            p.series(),
            p.metric_name(),
            p.value().to_bits(),
            p.timestamp()
        ));
    }
    (out, p.err().map(|e| e.to_string()))
}
