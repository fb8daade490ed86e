//! sort, sort_desc, sort_by_label, sort_by_label_desc. Ordering only matters for instant
//! queries; range queries return series sorted by labels anyway.

use crate::error::Result;
use crate::eval::{Ctx, Evaluator};
use crate::value::{Series, Val};
use promql_parser::parser::Expr;
use std::cmp::Ordering;

pub(crate) fn sort(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: Ctx) -> Result<Val> {
    let mut labels = Vec::new();
    for a in args.iter().skip(1) {
        labels.push(ev.eval_string(a, c)?);
    }
    let Some(first) = args.first() else {
        return Ok(Val::Vector(Vec::new()));
    };
    let mut v = ev.eval_vector(first, c)?;
    if ev.query_step != 0 {
        ev.annos.warn(
            "sort is ineffective for range queries since results are always ordered by labels",
        );
    }
    if c.n() > 1 {
        return Ok(Val::Vector(v));
    }
    let val = |s: &Series| s.points.first().map(|p| p.1).unwrap_or(f64::NAN);
    match name {
        "sort" | "sort_desc" => {
            // Histogram samples are dropped (Prometheus's `filterFloats`).
            v.retain(|s| !s.points.is_empty());
            v.iter_mut().for_each(|s| s.hists.clear());
            let desc = name == "sort_desc";
            v.sort_by(|a, b| {
                let (x, y) = (val(a), val(b));
                match (x.is_nan(), y.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ if desc => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
                    _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                }
            });
        }
        _ => {
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                for l in &labels {
                    let (x, y) = (a.labels.get(l).unwrap_or(""), b.labels.get(l).unwrap_or(""));
                    if x == y {
                        continue;
                    }
                    let o = natural_cmp(x, y);
                    return if desc { o.reverse() } else { o };
                }
                let o = a.labels.cmp(&b.labels);
                if desc { o.reverse() } else { o }
            });
        }
    }
    Ok(Val::Vector(v))
}

/// Natural ordering: runs of digits compare as numbers.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                let ex = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ey = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..ex], &y[..ey]);
                let tx = &dx[dx.iter().take_while(|c| **c == b'0').count()..];
                let ty = &dy[dy.iter().take_while(|c| **c == b'0').count()..];
                let o = tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[ex..];
                y = &y[ey..];
            }
            (Some(p), Some(q)) => {
                if p != q {
                    return p.cmp(q);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("b", "a10"), Ordering::Greater);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }
}
