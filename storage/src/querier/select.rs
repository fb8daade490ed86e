//! Matchers → postings with Prometheus semantics, over any [`BlockReader`].

use crate::block::BlockReader;
use crate::error::Result;
use crate::matcher::{MatchType, Matcher};
use crate::postings::{intersect_all, union_all};
use roaring::RoaringBitmap;

/// Ids of series in `r` matching every matcher.
///
/// A matcher that matches the empty string also selects series lacking the label, so it is
/// applied by subtracting the series whose value it rejects; other matchers intersect the union
/// of the postings of the values they accept (`=` and literal alternations without listing
/// values). With no restricting matcher, all postings are the starting set.
pub(crate) fn postings_for_matchers(
    r: &dyn BlockReader,
    matchers: &[Matcher],
) -> Result<RoaringBitmap> {
    let mut intersect = Vec::new();
    let mut subtract = Vec::new();
    for m in matchers {
        if m.matches_empty() {
            // Series whose value m rejects; everything else (including label absent) stays.
            subtract.push(values_postings(r, m, false)?);
        } else {
            intersect.push(values_postings(r, m, true)?);
        }
    }
    let mut acc = match intersect_all(intersect) {
        Some(acc) => acc,
        None => r.all_postings()?,
    };
    for s in subtract {
        if acc.is_empty() {
            break;
        }
        acc -= s;
    }
    Ok(acc)
}

/// Union of postings of the values of `m.name` for which `m.matches(v) == want`.
fn values_postings(r: &dyn BlockReader, m: &Matcher, want: bool) -> Result<RoaringBitmap> {
    if want && let Some(set) = m.set_matches() {
        let mut sets = Vec::with_capacity(set.len());
        for v in set {
            sets.push(r.postings(&m.name, v)?);
        }
        return Ok(union_all(sets));
    }
    if !want && m.kind == MatchType::NotEqual {
        // `l!="x"` rejects exactly `l="x"`.
        return r.postings(&m.name, &m.value);
    }
    let mut sets = Vec::new();
    for v in r.label_values(&m.name)? {
        if m.matches(&v) == want {
            sets.push(r.postings(&m.name, &v)?);
        }
    }
    Ok(union_all(sets))
}
