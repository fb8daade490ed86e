//! Helpers shared by the integration tests.

use argus_storage::{Db, Labels, Matcher, Options, Queryable, SyncMode, Timestamp};

/// Options for tests: no background thread, page-cache durability.
pub fn opts() -> Options {
    Options {
        background: false,
        sync: SyncMode::Buffer,
        ..Options::default()
    }
}

/// Labels from pairs.
pub fn lbl(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

/// Every series matching `matchers` in `[mint, maxt]`, with samples, checking errors.
pub fn dump(
    db: &Db,
    matchers: &[Matcher],
    mint: Timestamp,
    maxt: Timestamp,
) -> Vec<(Labels, Vec<(Timestamp, f64)>)> {
    let q = db.querier(mint, maxt).expect("querier");
    let mut set = q.select(matchers);
    let mut out = Vec::new();
    while set.next() {
        let mut it = set.samples();
        let mut samples = Vec::new();
        while it.next() {
            samples.push(it.at());
        }
        assert!(it.err().is_none(), "iterator error: {:?}", it.err());
        drop(it);
        out.push((set.labels().clone(), samples));
    }
    assert!(set.err().is_none(), "series set error: {:?}", set.err());
    out
}

/// A matcher selecting every series that has a `__name__`.
pub fn all() -> Vec<Matcher> {
    vec![Matcher::new(argus_storage::MatchType::Regex, "__name__", ".+").expect("matcher")]
}
