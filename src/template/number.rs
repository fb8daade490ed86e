//! Number literals of templates (Go's `newNumber`): integers in any Go base, floats and
//! character constants. Complex literals are refused.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::ast::Number;
use super::gostr::{Piece, go_quote, unquote_char};
use super::lex::ItemType;

/// Parses a number token. Err is Go's message (`illegal number syntax: "1.2.3"`).
pub(super) fn parse_number(text: &str, typ: ItemType) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        int: None,
        is_uint: false,
        float: None,
    };
    if typ == ItemType::CharConstant {
        let inner = text
            .strip_prefix('\'')
            .ok_or_else(|| "invalid syntax".to_string())?;
        let (piece, tail) = unquote_char(inner, '\'').map_err(str::to_string)?;
        if tail != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        let v = match piece {
            Piece::Char(c) => i64::from(u32::from(c)),
            Piece::Byte(b) => i64::from(b),
        };
        n.int = Some(v);
        n.is_uint = true;
        n.float = Some(v as f64);
        return Ok(n);
    }
    if typ == ItemType::Complex || text.ends_with('i') {
        return Err(format!(
            "complex numbers are not supported: {}",
            go_quote(text)
        ));
    }
    let u = parse_int(text).filter(|v| *v >= 0 && !text.starts_with('-'));
    let i = parse_int(text).and_then(|v| i64::try_from(v).ok());
    if let Some(u) = u {
        n.is_uint = u64::try_from(u).is_ok();
    }
    n.int = i;
    if let Some(i) = i {
        n.float = Some(i as f64);
    } else if let Some(u) = u.and_then(|u| u64::try_from(u).ok()) {
        n.float = Some(u as f64);
    } else if let Some(f) = parse_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", go_quote(text)));
        }
        n.float = Some(f);
        if f.fract() == 0.0 && f.abs() < 9.2e18 {
            n.int = Some(f as i64);
        }
        if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) {
            n.is_uint = true;
        }
    }
    if n.int.is_none() && !n.is_uint && n.float.is_none() {
        return Err(format!("illegal number syntax: {}", go_quote(text)));
    }
    Ok(n)
}

/// Go's `strconv.ParseInt(text, 0, 64)` widened: sign, base prefix, underscores between digits.
fn parse_int(text: &str) -> Option<i128> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower.get(1..)?)
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let v = i128::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    if v > i128::from(u64::MAX) {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// Go float literals: decimal (`1.5`, `.5`, `1e-3`) and hexadecimal (`0x1p-2`); out of range
/// is refused like Go's `strconv.ParseFloat`.
fn parse_float(text: &str) -> Option<f64> {
    let t = text.replace('_', "");
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..)?),
        Some(b'+') => (false, t.get(1..)?),
        _ => (false, t.as_str()),
    };
    let v = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        parse_hex_float(hex)?
    } else {
        if body.contains(['x', 'X', 'p', 'P', 'n', 'N', 'i', 'I']) {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    if v.is_infinite() {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// `1.8p+3` (after `0x`): hex mantissa with optional point, mandatory binary exponent.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = s.split_once(['p', 'P'])?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
}
