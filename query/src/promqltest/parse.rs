//! Series notation and value sequences of the `.test` script format (see the shared
//! FORMAT.md), shared by the runner (`script.rs`) and `argus test rules`.

use argus_storage::Labels;
use promql_parser::parser::Expr;
use std::sync::LazyLock;

/// One item of a value sequence.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Item {
    /// A float (may be NaN).
    Value(f64),
    /// No sample / no point at this position.
    Omitted,
    /// A staleness marker.
    Stale,
    /// A native histogram, and whether its counter-reset hint was written out.
    Histogram(Box<super::hist::HistLit>),
}

static SEQ_ITEM: LazyLock<regex::Regex> = LazyLock::new(|| {
    let num = r"[+-]?(?:[iI][nN][fF]|[nN][aA][nN]|[0-9_]*\.?[0-9_]+(?:[eE][+-]?[0-9]+)?)";
    regex::Regex::new(&format!(r"^({num})(?:([+-])({num}))?x([0-9]+)$")).expect("BUG: static regex")
});

/// Parses a Prometheus duration (`1h30m`, `100ms`, `0`), optionally negative, to ms.
#[cfg(feature = "promqltest")]
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if body == "0" {
        return Ok(0);
    }
    let mut total: i64 = 0;
    let mut rest = body;
    if rest.is_empty() {
        return Err(format!("invalid duration {s:?}"));
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let mult = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            u => return Err(format!("invalid duration unit {u:?} in {s:?}")),
        };
        rest = &rest[unit_len..];
        total = total
            .checked_add(n.checked_mul(mult).ok_or("duration overflow")?)
            .ok_or("duration overflow")?;
    }
    Ok(if neg { -total } else { total })
}

/// Parses a number as the format allows (decimal, `Inf`, `NaN`, underscores).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let t = s.replace('_', "");
    let (sign, body) = match t.strip_prefix('-') {
        Some(b) => (-1.0, b.to_string()),
        None => (1.0, t.strip_prefix('+').unwrap_or(&t).to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let v = if lower == "inf" {
        f64::INFINITY
    } else if lower == "nan" {
        f64::NAN
    } else if let Some(hex) = lower.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()? as f64
    } else {
        if lower.contains("inf") || lower.contains("nan") {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    Some(sign * v)
}

/// Splits a value sequence into items, keeping `{{…}}` histograms (which contain spaces) whole.
fn split_items(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            if b[i] == b'{' && b.get(i + 1) == Some(&b'{') {
                match s[i..].find("}}") {
                    Some(e) => i += e + 2,
                    None => i = b.len(),
                }
            } else {
                i += 1;
            }
        }
        out.push(&s[start..i]);
    }
    out
}

/// Expands a value sequence (`1+2x3 _ stale 5 _x2 {{…}}`).
pub(crate) fn parse_sequence(s: &str) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    for item in split_items(s) {
        if item.contains("{{") {
            // A histogram, possibly with `xN` / `+{{…}}xN`.
            out.extend(
                super::hist::expand(item)?
                    .into_iter()
                    .map(|h| Item::Histogram(Box::new(h))),
            );
            continue;
        }
        if item == "_" {
            out.push(Item::Omitted);
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad item {item:?}"))?;
            out.extend(std::iter::repeat_n(Item::Omitted, n));
            continue;
        }
        if item == "stale" {
            out.push(Item::Stale);
            continue;
        }
        if let Some(caps) = SEQ_ITEM.captures(item) {
            let start = parse_number(&caps[1]).ok_or_else(|| format!("bad number in {item:?}"))?;
            let times: usize = caps[4]
                .parse()
                .map_err(|_| format!("bad count in {item:?}"))?;
            let delta = match (caps.get(2), caps.get(3)) {
                (Some(sign), Some(d)) => {
                    let d =
                        parse_number(d.as_str()).ok_or_else(|| format!("bad delta {item:?}"))?;
                    if sign.as_str() == "-" { -d } else { d }
                }
                _ => 0.0,
            };
            if times > 1_000_000 {
                return Err(format!("sequence too long: {item:?}"));
            }
            let mut v = start;
            for _ in 0..=times {
                out.push(Item::Value(v));
                v += delta;
            }
            continue;
        }
        let v = parse_number(item).ok_or_else(|| format!("bad value {item:?}"))?;
        out.push(Item::Value(v));
    }
    Ok(out)
}

/// Splits `series values…` at the end of the series notation. Returns (series, rest, has @st).
pub(crate) fn split_series(line: &str) -> Result<(&str, &str, bool), String> {
    let b = line.as_bytes();
    let mut i = 0;
    // Metric name (optional).
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'{' {
        i += 1;
    }
    if i < b.len() && b[i] == b'{' {
        let mut quote: Option<u8> = None;
        while i < b.len() {
            let ch = b[i];
            match quote {
                Some(q) => {
                    if ch == b'\\' && q != b'`' {
                        i += 1;
                    } else if ch == q {
                        quote = None;
                    }
                }
                None => {
                    if ch == b'"' || ch == b'\'' || ch == b'`' {
                        quote = Some(ch);
                    } else if ch == b'}' {
                        i += 1;
                        break;
                    }
                }
            }
            i += 1;
        }
    }
    let mut series = &line[..i.min(line.len())];
    let mut rest = &line[i.min(line.len())..];
    if let Some(name) = series.strip_suffix("@st") {
        series = name;
        rest = &line[i - 3..];
    }
    let st = rest.starts_with("@st");
    if st {
        rest = &rest[3..];
    }
    Ok((series, rest, st))
}

/// Parses series notation into labels using the PromQL parser.
pub(crate) fn parse_series(s: &str) -> Result<Labels, String> {
    let t = s.trim();
    if t == "{}" {
        return Ok(Labels::empty());
    }
    let expr = promql_parser::parser::parse(t).map_err(|e| format!("bad series {t:?}: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("bad series {t:?}"));
    };
    let mut pairs = Vec::new();
    if let Some(n) = &vs.name {
        pairs.push(argus_storage::Label::new("__name__", n.clone()));
    }
    for m in &vs.matchers.matchers {
        pairs.push(argus_storage::Label::new(m.name.clone(), m.value.clone()));
    }
    Ok(Labels::new(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_expand() {
        let check = |s: &str, want: Vec<Item>| assert_eq!(parse_sequence(s).unwrap(), want, "{s}");
        use Item::*;
        check("1+1x2", vec![Value(1.0), Value(2.0), Value(3.0)]);
        check(
            "10-1x1 _ stale",
            vec![Value(10.0), Value(9.0), Omitted, Stale],
        );
        check("_x2 3x1", vec![Omitted, Omitted, Value(3.0), Value(3.0)]);
        check(
            "-Inf 1e3 +2",
            vec![Value(f64::NEG_INFINITY), Value(1000.0), Value(2.0)],
        );
    }

    #[cfg(feature = "promqltest")]
    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("100ms").unwrap(), 100);
        assert!(parse_duration("1x").is_err());
    }

    #[test]
    fn series_notation() {
        let l = parse_series(r#"foo{a="x y}", b='2'}"#).unwrap();
        assert_eq!(l.to_string(), r#"{__name__="foo", a="x y}", b="2"}"#);
        let (s, rest, st) = split_series(r#"foo{a="x y}"} 1 2"#).unwrap();
        assert_eq!((s, rest.trim(), st), (r#"foo{a="x y}"}"#, "1 2", false));
        assert_eq!(parse_series("{}").unwrap(), Labels::empty());
    }
}
