//! The `{{…}}` native-histogram literal of the test format (FORMAT.md §8) and the
//! `{{A}}+{{B}}xN` / `{{A}}-{{B}}xN` / `{{A}}xN` series expansions.

use super::parse::parse_number;
use argus_storage::histogram::ops;
use argus_storage::{CounterResetHint, FloatHistogram, Span};

/// A parsed literal and whether it spelled out `counter_reset_hint`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HistLit {
    pub h: FloatHistogram,
    pub hint_given: bool,
}

/// Parses the inside of `{{ … }}` (without the braces).
pub(crate) fn parse_literal(body: &str) -> Result<HistLit, String> {
    let mut h = FloatHistogram::default();
    let mut hint_given = false;
    let mut seen: Vec<String> = Vec::new();
    let mut rest = body.trim();
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let (mut buckets, mut n_buckets): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once(':') else {
            return Err(format!("bad histogram field {rest:?}"));
        };
        let key = key.trim();
        if seen.iter().any(|k| k == key) {
            return Err(format!("duplicate histogram field {key:?}"));
        }
        seen.push(key.to_string());
        let after = after.trim_start();
        let (value, tail) = if let Some(list) = after.strip_prefix('[') {
            let end = list
                .find(']')
                .ok_or_else(|| format!("unterminated list in {body:?}"))?;
            (&list[..end], &list[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        rest = tail.trim_start();
        let num = |v: &str| parse_number(v).ok_or_else(|| format!("bad number {v:?} in {key}"));
        let list =
            |v: &str| -> Result<Vec<f64>, String> { v.split_whitespace().map(num).collect() };
        let int = |v: &str| {
            v.parse::<i32>()
                .map_err(|_| format!("bad integer {v:?} in {key}"))
        };
        match key {
            "schema" => h.schema = int(value)?,
            "sum" => h.sum = num(value)?,
            "count" => h.count = num(value)?,
            "z_bucket" => h.zero_count = num(value)?,
            "z_bucket_w" => h.zero_threshold = num(value)?,
            "buckets" => buckets = list(value)?,
            "n_buckets" => n_buckets = list(value)?,
            "offset" => offset = int(value)?,
            "n_offset" => n_offset = int(value)?,
            "custom_values" => h.custom_values = list(value)?,
            "counter_reset_hint" => {
                hint_given = true;
                h.counter_reset_hint = match value {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::CounterReset,
                    "not_reset" => CounterResetHint::NotCounterReset,
                    "gauge" => CounterResetHint::Gauge,
                    v => return Err(format!("bad counter_reset_hint {v:?}")),
                }
            }
            k => return Err(format!("unknown histogram field {k:?}")),
        }
    }
    if !buckets.is_empty() {
        h.positive_spans = vec![Span::new(offset, buckets.len() as u32)];
        h.positive_buckets = buckets;
    }
    if !n_buckets.is_empty() {
        h.negative_spans = vec![Span::new(n_offset, n_buckets.len() as u32)];
        h.negative_buckets = n_buckets;
    }
    Ok(HistLit { h, hint_given })
}

/// Expands one sequence item containing `{{`: `{{A}}`, `{{A}}xN`, `{{A}}+{{B}}xN`,
/// `{{A}}-{{B}}xN`.
pub(crate) fn expand(item: &str) -> Result<Vec<HistLit>, String> {
    let parse_braced = |s: &str| -> Result<(HistLit, usize), String> {
        let inner = s
            .strip_prefix("{{")
            .ok_or_else(|| format!("bad histogram {item:?}"))?;
        let end = inner
            .find("}}")
            .ok_or_else(|| format!("unterminated histogram {item:?}"))?;
        Ok((parse_literal(&inner[..end])?, end + 4))
    };
    let (a, used) = parse_braced(item)?;
    let rest = &item[used..];
    if rest.is_empty() {
        return Ok(vec![a]);
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n: usize = n.parse().map_err(|_| format!("bad count in {item:?}"))?;
        if n > 100_000 {
            return Err(format!("sequence too long: {item:?}"));
        }
        return Ok(vec![a; n + 1]);
    }
    let negate = match rest.as_bytes().first() {
        Some(b'+') => false,
        Some(b'-') => true,
        _ => return Err(format!("bad histogram sequence {item:?}")),
    };
    let (b, used_b) = parse_braced(&rest[1..])?;
    let n: usize = rest[1 + used_b..]
        .strip_prefix('x')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("bad count in {item:?}"))?;
    if n > 100_000 {
        return Err(format!("sequence too long: {item:?}"));
    }
    if b.h.schema < a.h.schema && !b.h.uses_custom_buckets() {
        return Err(format!(
            "cannot merge from schema {} to {}",
            a.h.schema, b.h.schema
        ));
    }
    let mut out = Vec::with_capacity(n + 1);
    let mut cur = a.h.clone();
    out.push(a.clone());
    for _ in 0..n {
        ops::add(&mut cur, &b.h, negate).map_err(|e| e.to_string())?;
        let mut h = cur.clone();
        h.counter_reset_hint = b.h.counter_reset_hint;
        out.push(HistLit {
            h,
            hint_given: b.hint_given,
        });
    }
    // The generated histograms keep the increment's hint; the first keeps its own.
    Ok(out)
}

/// Compacts a copy: removes empty buckets and merges spans.
#[cfg(feature = "promqltest")]
fn compacted(h: &FloatHistogram) -> FloatHistogram {
    let mut c = h.clone();
    ops::compact(&mut c);
    c
}

/// Histogram equality of the reference harness (FORMAT.md §5.1).
#[cfg(feature = "promqltest")]
pub(crate) fn approx_eq(want: &HistLit, got: &FloatHistogram, feq: fn(f64, f64) -> bool) -> bool {
    let (a, b) = (compacted(&want.h), compacted(got));
    if want.hint_given && a.counter_reset_hint != b.counter_reset_hint {
        return false;
    }
    let buckets_eq = |x: &[(i32, f64)], y: &[(i32, f64)]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.0 == q.0 && feq(p.1, q.1))
    };
    a.schema == b.schema
        && feq(a.count, b.count)
        && feq(a.sum, b.sum)
        && feq(a.zero_count, b.zero_count)
        && a.zero_threshold == b.zero_threshold
        && (!a.uses_custom_buckets() || a.custom_values == b.custom_values)
        && buckets_eq(
            &ops::indexed(&a.positive_spans, &a.positive_buckets),
            &ops::indexed(&b.positive_spans, &b.positive_buckets),
        )
        && buckets_eq(
            &ops::indexed(&a.negative_spans, &a.negative_buckets),
            &ops::indexed(&b.negative_spans, &b.negative_buckets),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_fields() {
        let l = parse_literal(
            "schema:1 sum:-3 count:22 buckets:[5 10 7] offset:2 counter_reset_hint:gauge",
        )
        .unwrap();
        assert_eq!(l.h.schema, 1);
        assert_eq!(l.h.positive_spans, vec![Span::new(2, 3)]);
        assert_eq!(l.h.positive_buckets, vec![5.0, 10.0, 7.0]);
        assert!(l.hint_given);
        assert!(parse_literal("sum:1 sum:2").is_err());
        assert_eq!(parse_literal("").unwrap().h, FloatHistogram::default());
    }

    #[test]
    fn sequences() {
        let v = expand(
            "{{schema:0 count:1 sum:2 buckets:[1]}}+{{schema:0 count:2 sum:1 buckets:[2]}}x2",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].h.count, 5.0);
        assert_eq!(v[2].h.positive_buckets, vec![5.0]);
        assert_eq!(expand("{{count:1}}x3").unwrap().len(), 4);
    }
}
