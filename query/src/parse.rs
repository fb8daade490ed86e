//! Parser wrapper: `promql-parser` errors become `bad_data`.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::error::{Error, Result};
use argus_storage::Matcher;
use promql_parser::parser::Expr;

/// Longest query text accepted.
const MAX_QUERY_LEN: usize = 64 * 1024;

/// Deepest bracket nesting accepted.
const MAX_NESTING: usize = 128;

/// Most operator characters accepted outside string literals.
const MAX_OPERATORS: usize = 2048;

/// Parses a PromQL expression, refusing texts that are too long, too deeply nested or too long a
/// chain of operators before the recursive parser sees them (so no input can exhaust the stack).
/// Every caller in Argus parses PromQL through this function.
pub fn parse(q: &str) -> Result<Expr> {
    if q.len() > MAX_QUERY_LEN {
        return Err(Error::bad_data("query too long"));
    }
    // Deep nesting (brackets or long operator chains) would exhaust the stack in the parser and
    // the evaluator: count both outside string literals before parsing.
    let (mut depth, mut ops) = (0usize, 0usize);
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for b in q.bytes() {
        if let Some(qc) = quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' && qc != b'`' {
                escaped = true;
            } else if b == qc {
                quote = None;
            }
            continue;
        }
        match b {
            b'"' | b'\'' | b'`' => quote = Some(b),
            b'(' | b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Error::bad_data("query is nested too deeply"));
                }
            }
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'<' | b'>' | b'=' | b'!' => {
                ops += 1;
                if ops > MAX_OPERATORS {
                    return Err(Error::bad_data("query has too many operators"));
                }
            }
            _ => {}
        }
    }
    let e = promql_parser::parser::parse(q)
        .map_err(|e| Error::bad_data(format!("parse error: {e}")))?;
    if depth_exceeds(&e, MAX_DEPTH) {
        return Err(Error::bad_data("query is nested too deeply"));
    }
    Ok(e)
}

/// Parses a series selector as the API's `match[]` takes it (`up{job="a"}`,
/// `{a="1" or b="2"}`) into matcher sets, one per `or` alternative: a series matches the
/// selector when it matches every matcher of any one set. Offsets, `@` and anything but a plain
/// vector selector are refused, as is a set that would match every series.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>> {
    let expr = parse(s)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(Error::bad_data(format!(
            "1:1: parse error: unexpected expression, want a series selector: {s:?}"
        )));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(Error::bad_data(format!(
            "1:1: parse error: unexpected offset or @ modifier in series selector {s:?}"
        )));
    }
    let groups = crate::eval::matcher_groups(&vs)?;
    for g in &groups {
        argus_storage::validate_selector(g).map_err(|e| Error::bad_data(e.to_string()))?;
    }
    Ok(groups)
}

/// Deepest expression tree evaluated (operator chains nest without brackets).
const MAX_DEPTH: usize = 512;

/// Iterative depth check, so that a hostile query cannot exhaust the stack here.
fn depth_exceeds(root: &Expr, max: usize) -> bool {
    let mut stack: Vec<(&Expr, usize)> = vec![(root, 1)];
    while let Some((e, d)) = stack.pop() {
        if d > max {
            return true;
        }
        match e {
            Expr::Aggregate(a) => {
                stack.push((&a.expr, d + 1));
                if let Some(p) = &a.param {
                    stack.push((p, d + 1));
                }
            }
            Expr::Unary(u) => stack.push((&u.expr, d + 1)),
            Expr::Binary(b) => {
                stack.push((&b.lhs, d + 1));
                stack.push((&b.rhs, d + 1));
            }
            Expr::Paren(p) => stack.push((&p.expr, d + 1)),
            Expr::Subquery(s) => stack.push((&s.expr, d + 1)),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| (a.as_ref(), d + 1))),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn rejects_deep_queries_without_overflowing() {
        let long = vec!["1"; 20_000].join("+");
        assert!(parse(&long).is_err());
        let parens = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(parse(&parens).is_err());
        assert!(parse("sum(rate(x[5m])) by (job)").is_ok());
        let chain = vec!["1"; 600].join("-");
        assert!(matches!(parse(&chain), Err(e) if e.message.contains("nested too deeply")));
        assert!(parse(r#"x{a=~"((((((((((.*))))))))))+++---"}"#).is_ok());
    }

    #[test]
    fn selectors_split_or_alternatives() {
        let names = |g: &Vec<Matcher>| {
            g.iter()
                .map(|m| format!("{}={}", m.name, m.value))
                .collect::<Vec<_>>()
        };
        let sets = parse_selector(r#"up{job="a" or job="b"}"#).unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(names(&sets[0]), ["__name__=up", "job=a"]);
        assert_eq!(names(&sets[1]), ["__name__=up", "job=b"]);
        let sets = parse_selector(r#"{a="1" or b="2"}"#).unwrap();
        assert_eq!(
            sets.iter().map(names).collect::<Vec<_>>(),
            [["a=1"], ["b=2"]]
        );
        assert_eq!(parse_selector("up").unwrap().len(), 1);
        for bad in [
            "rate(up[5m])",
            "up offset 5m",
            "up @ 10",
            r#"{job=~".*"}"#,
            r#"{a="1" or b=~".*"}"#,
            "up{",
            "-up",
        ] {
            assert!(parse_selector(bad).is_err(), "{bad}");
        }
        let bomb = format!("{}up{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse_selector(&bomb).is_err());
    }
}
