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
    check_numeric_durations(q)?;
    let q = utf8_byte_escapes(q);
    // promql-parser 0.11 panics (`Duration::from_secs_f64`) on numeric durations that are not
    // finite or do not fit (`x offset NaN`, `x[1e20]`). `check_numeric_durations` refuses
    // those first; should another shape reach the panic, it still becomes a parse error.
    let parsed = std::panic::catch_unwind(|| promql_parser::parser::parse(&q))
        .map_err(|_| Error::bad_data("parse error: duration out of range"))?;
    let e = parsed.map_err(|e| Error::bad_data(format!("parse error: {e}")))?;
    check_tree(&e, MAX_DEPTH)?;
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

/// Largest numeric duration accepted, in seconds (about 31 million years; promql-parser
/// panics on non-finite ones and on those beyond about 1.8e19).
const MAX_NUMERIC_DURATION_S: f64 = 1e15;

/// Refuses numeric durations promql-parser cannot convert: a number (`NaN`, `Inf`, `1e300`)
/// after `offset` (and an optional sign), or as a range or subquery step inside `[…]`.
fn check_numeric_durations(q: &str) -> Result<()> {
    let b = q.as_bytes();
    let word = |i: usize| -> usize {
        let mut j = i;
        while let Some(&c) = b.get(j) {
            let exp_sign = matches!(c, b'+' | b'-')
                && j > i
                && matches!(b.get(j - 1), Some(b'e' | b'E'))
                && b.get(i).is_some_and(u8::is_ascii_digit);
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign {
                j += 1;
            } else {
                break;
            }
        }
        j
    };
    // The last significant token before the current one: `offset`, `[`, `:` (inside
    // brackets), a sign after `offset`, or something else.
    #[derive(Clone, Copy, PartialEq)]
    enum Prev {
        DurationPlace,
        Offset,
        Other,
    }
    let (mut prev, mut brackets, mut i) = (Prev::Other, 0usize, 0usize);
    let mut quote: Option<u8> = None;
    while let Some(&c) = b.get(i) {
        if let Some(qc) = quote {
            if c == b'\\' && qc != b'`' {
                i += 1;
            } else if c == qc {
                quote = None;
                prev = Prev::Other;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' | b'\'' | b'`' => quote = Some(c),
            b'[' => {
                brackets += 1;
                prev = Prev::DurationPlace;
            }
            b']' => {
                brackets = brackets.saturating_sub(1);
                prev = Prev::Other;
            }
            b':' if brackets > 0 => prev = Prev::DurationPlace,
            b'+' | b'-' if prev == Prev::Offset => prev = Prev::DurationPlace,
            c if c.is_ascii_whitespace() => {}
            c if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' => {
                let end = word(i);
                let w = q.get(i..end).unwrap_or_default();
                if w.eq_ignore_ascii_case("offset") {
                    prev = Prev::Offset;
                } else {
                    let place = matches!(prev, Prev::Offset | Prev::DurationPlace);
                    if let Some(v) = crate::gofloat::parse(w).filter(|_| place)
                        && (v.is_nan() || v.abs() >= MAX_NUMERIC_DURATION_S)
                    {
                        return Err(Error::bad_data(format!(
                            "parse error: duration {w:?} out of range"
                        )));
                    }
                    prev = Prev::Other;
                }
                i = end;
                continue;
            }
            _ => prev = Prev::Other,
        }
        i += 1;
    }
    Ok(())
}

/// Rewrites the byte escapes (`\xNN`, octal `\NNN`) of quoted string literals that make up
/// non-ASCII bytes into the characters they spell in Go.
///
/// A Go string literal is a byte string: `"\xc3\xa9"` is `é`, and `"a\xc5z"` is not UTF-8
/// at all, which Prometheus refuses where a label name is needed (`invalid label name`).
/// `promql-parser` turns each byte escape into the char of that code point instead (`Ã©`,
/// `aÅz`). Runs of such escapes are therefore decoded here as UTF-8 before parsing; each byte
/// of an invalid sequence becomes its [`raw_byte_char`], which the label-name checks refuse
/// and [`go_quote`] prints back as `\xNN`. Escapes of ASCII bytes are kept, so no quote or
/// backslash is ever introduced.
fn utf8_byte_escapes(q: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    if !q.contains('\\') {
        return q.into();
    }
    let b = q.as_bytes();
    let mut out = String::new();
    // Start of the text not yet copied to `out`.
    let mut copied = 0;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let Some(qc) = quote else {
            if matches!(c, b'"' | b'\'' | b'`') {
                quote = Some(c);
            }
            i += 1;
            continue;
        };
        if c == qc {
            quote = None;
            i += 1;
            continue;
        }
        if c != b'\\' || qc == b'`' {
            i += 1;
            continue;
        }
        // A run of byte escapes starting at `i`.
        let start = i;
        let mut bytes = Vec::new();
        while let Some((byte, len)) = byte_escape(b.get(i..).unwrap_or_default()) {
            bytes.push(byte);
            i += len;
        }
        if bytes.is_empty() {
            // Another escape (`\"`, `\\`, `\n`, `\u…`): skip it whole.
            i += 2;
            continue;
        }
        if bytes.is_ascii() {
            continue;
        }
        out.push_str(q.get(copied..start).unwrap_or_default());
        for chunk in bytes.utf8_chunks() {
            for ch in chunk.valid().chars() {
                if ch.is_ascii() {
                    let _ = write!(out, "\\x{:02x}", u32::from(ch));
                } else {
                    out.push(ch);
                }
            }
            out.extend(chunk.invalid().iter().map(|&b| raw_byte_char(b)));
        }
        copied = i;
    }
    if copied == 0 {
        return q.into();
    }
    out.push_str(q.get(copied..).unwrap_or_default());
    out.into()
}

/// First of the 256 private-use code points (U+10FF00 + byte, plane 16) that stand for the
/// bytes of Go strings that are not UTF-8.
const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// The char standing for a byte of a Go string that is not part of valid UTF-8.
fn raw_byte_char(b: u8) -> char {
    char::from_u32(RAW_BYTE_BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The byte a char from [`raw_byte_char`] stands for.
fn raw_byte(c: char) -> Option<u8> {
    u32::from(c)
        .checked_sub(RAW_BYTE_BASE)
        .and_then(|b| u8::try_from(b).ok())
}

/// True when `s` came from a Go string that is not valid UTF-8 (see [`utf8_byte_escapes`]).
pub(crate) fn has_raw_bytes(s: &str) -> bool {
    s.chars().any(|c| raw_byte(c).is_some())
}

/// `s` quoted as Go's `%q` prints it, raw bytes as `\xNN` (for error messages).
pub(crate) fn go_quote(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match raw_byte(c) {
            Some(b) => {
                let _ = write!(out, "\\x{b:02x}");
            }
            None => out.extend(c.escape_debug()),
        }
    }
    out.push('"');
    out
}

/// The byte of a `\xNN` or `\NNN` (octal) escape at the start of `s`, and its length.
fn byte_escape(s: &[u8]) -> Option<(u8, usize)> {
    let (digits, radix) = match s {
        [b'\\', b'x', ..] => (s.get(2..4)?, 16),
        [b'\\', b'0'..=b'7', ..] => (s.get(1..4)?, 8),
        _ => return None,
    };
    let byte = u8::from_str_radix(std::str::from_utf8(digits).ok()?, radix).ok()?;
    Some((byte, 4))
}

/// Deepest expression tree evaluated (operator chains nest without brackets).
const MAX_DEPTH: usize = 512;

/// Refuses trees deeper than `max` and calls of functions Argus does not evaluate (those
/// `promql-parser` knows but the function table lacks). Iterative, so that a hostile query
/// cannot exhaust the stack here.
fn check_tree(root: &Expr, max: usize) -> Result<()> {
    let mut stack: Vec<(&Expr, usize)> = vec![(root, 1)];
    while let Some((e, d)) = stack.pop() {
        if d > max {
            return Err(Error::bad_data("query is nested too deeply"));
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
            Expr::Call(c) => {
                crate::functions::def_of(c)?;
                stack.extend(c.args.args.iter().map(|a| (a.as_ref(), d + 1)));
            }
            _ => {}
        }
    }
    Ok(())
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
    fn numeric_durations_out_of_range_are_errors() {
        for q in [
            "x offset NaN",
            "x offset -Inf",
            "x offset - 1e300",
            "x OFFSET 1e300",
            "x[1e20]",
            "x[5m:1e300]",
            "sum(x)[1e300:]",
        ] {
            let e = parse(q).unwrap_err();
            assert_eq!(e.kind, crate::ErrorKind::BadData, "{q}");
            assert!(e.message.contains("out of range"), "{q}: {}", e.message);
        }
        for q in [
            "x offset 60",
            "x[60]",
            "x[5m:30]",
            "x[1e6] offset -1.5e3",
            r#"label_replace(x, "a", "[NaN", "b", ":1e300")"#,
            "x - NaN",
            "1e300",
        ] {
            assert!(parse(q).is_ok(), "{q}");
        }
    }

    #[test]
    fn functions_outside_the_table_are_refused() {
        assert!(parse("sum(rate(x[5m])) + time()").is_ok());
        let e = parse("1 + sum(start_timestamp(x))").unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::BadData);
        assert!(e.message.contains("start_timestamp"), "{}", e.message);
        assert!(parse("integral(x[5m], 1)").is_err());
    }

    #[test]
    fn byte_escapes_decode_as_go_strings() {
        let lit = |q: &str| match parse(q).unwrap() {
            Expr::StringLiteral(s) => s.val,
            e => panic!("{e:?}"),
        };
        assert_eq!(lit(r#""\xc3\xa9""#), "é");
        assert_eq!(lit(r#""\303\251x""#), "éx");
        let bad = lit(r#""a\xc5z""#);
        assert!(has_raw_bytes(&bad));
        assert_eq!(go_quote(&bad), r#""a\xc5z""#);
        assert_eq!(go_quote(&lit(r#"'\xff\xfe'"#)), r#""\xff\xfe""#);
        assert!(!has_raw_bytes(&lit(r#""\ufffd""#)));
        assert_eq!(lit(r#""\x41\x22\\xc5""#), "A\"\\xc5");
        assert_eq!(lit(r#""Å""#), "Å");
        assert_eq!(lit("`\\xc5`"), "\\xc5");
        assert!(matches!(
            parse(r#"count_values("a\xc5z", up)"#),
            Ok(Expr::Aggregate(_))
        ));
    }

    proptest::proptest! {
        /// Any byte string written as `\xNN` escapes reads back as the same bytes: valid
        /// UTF-8 as its characters, other bytes as their stand-in characters.
        #[test]
        fn byte_escapes_round_trip(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..24)) {
            let q: String = std::iter::once("\"".to_string())
                .chain(bytes.iter().map(|b| format!("\\x{b:02x}")))
                .chain(std::iter::once("\"".to_string()))
                .collect();
            let Ok(Expr::StringLiteral(s)) = parse(&q) else {
                panic!("{q} does not parse as a string");
            };
            let mut back = Vec::new();
            for c in s.val.chars() {
                match raw_byte(c) {
                    Some(b) => back.push(b),
                    None => back.extend_from_slice(c.to_string().as_bytes()),
                }
            }
            proptest::prop_assert_eq!(back, bytes);
        }
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
