//! The HTTP request layer's parameter parsing (`argus::api::params`, `argus::util::time`):
//! times, durations, steps, `limit`, selectors and the range checks of `query_range`, over an
//! arbitrary query string.
//! Properties: no panic (no overflow: `start=-9e15&end=9e15` once wrapped), no hang, parsed
//! times within Prometheus's range, a checked span is never negative, and a range that passes
//! `range_params` has a positive step and a span that fits in i64.
#![no_main]

use argus::api::params::{MAX_TIME_MS, MIN_TIME_MS, Params, checked_span_ms, parse_duration_ns};
use argus::api::query::range_params;
use argus::util::time::parse_time;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // Each piece alone.
    if let Ok(t) = parse_time(s) {
        assert!((MIN_TIME_MS..=MAX_TIME_MS).contains(&t), "{s:?} -> {t}");
    }
    // Negative steps parse (Prometheus's `parseDuration` takes `-1`); `range_params` refuses
    // them, which the last check below covers.
    let _ = parse_duration_ns(s);
    if let Ok(sets) = argus_query::parse_selector(s) {
        assert!(!sets.is_empty(), "{s:?}");
    }
    // As a request: `start`, `end`, `step`, `limit`, `match[]`.
    let Ok(p) = Params::new(Some(s), None) else {
        return;
    };
    let _ = p.limit();
    let _ = p.selectors();
    if let (Ok(a), Ok(b)) = (p.time_or("start", MIN_TIME_MS), p.time_or("end", MAX_TIME_MS))
        && let Ok(span) = checked_span_ms(a, b)
    {
        assert!(span >= 0 && b >= a);
    }
    if let Ok((start, end, step)) = range_params(&p) {
        assert!(step > 0 && end >= start, "{s:?}");
        assert!(end.checked_sub(start).is_some(), "{s:?}");
    }
});
