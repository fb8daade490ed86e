//! Go's float layouts (`strconv.FormatFloat` with `e`, `g` and `x`) from Rust's correctly
//! rounded digits.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fmt::Write as _;

/// Decimal digits (no trailing zeros; "0" for zero) and decimal point position of `v` ≥ 0,
/// rounded to `sig` significant digits, or shortest round-trip digits when `sig` is `None`.
fn digits(v: f64, sig: Option<usize>) -> (String, i32) {
    let s = match sig {
        Some(p) => format!("{:.*e}", p.saturating_sub(1), v),
        None => format!("{v:e}"),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: String = mant.chars().filter(char::is_ascii_digit).collect();
    d.truncate(d.trim_end_matches('0').len().max(1));
    (d, exp + 1)
}

/// `%e` with `prec` decimals: `1.234560e+06`.
pub(super) fn fmt_e(v: f64, prec: usize, upper: bool) -> String {
    let s = format!("{v:.prec$e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let e = if upper { 'E' } else { 'e' };
    format!(
        "{mant}{e}{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    )
}

/// `%g` (`None` = shortest) for `v` ≥ 0, Go's layout rules.
pub(super) fn fmt_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if v.is_nan() || v.is_infinite() {
        return String::new();
    }
    let prec = prec.map(|p| p.max(1));
    let (d, dp) = if v == 0.0 {
        ("0".to_string(), 1)
    } else {
        digits(v, prec)
    };
    let nd = i32::try_from(d.len()).unwrap_or(i32::MAX);
    let mut eprec = prec.map_or(6, |p| i32::try_from(p).unwrap_or(i32::MAX));
    if prec.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        let mut s = String::new();
        let mut chars = d.chars();
        s.push(chars.next().unwrap_or('0'));
        let rest = chars.as_str();
        if !rest.is_empty() {
            s.push('.');
            s.push_str(rest);
        }
        let e = if upper { 'E' } else { 'e' };
        let _ = write!(
            s,
            "{e}{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
        return s;
    }
    // Plain decimal from the digits: all of them, no trailing zeros beyond the point.
    let decimals = usize::try_from((nd - dp).max(0)).unwrap_or(0);
    layout_f(&d, dp, decimals)
}

fn layout_f(d: &str, dp: i32, decimals: usize) -> String {
    let mut s = String::new();
    let digit = |i: i32| -> char {
        usize::try_from(i)
            .ok()
            .and_then(|i| d.as_bytes().get(i))
            .map_or('0', |&b| b as char)
    };
    if dp <= 0 {
        s.push('0');
    } else {
        for i in 0..dp {
            s.push(digit(i));
        }
    }
    if decimals > 0 {
        s.push('.');
        for k in 0..i32::try_from(decimals).unwrap_or(0) {
            s.push(digit(dp + k));
        }
    }
    s
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: shortest digits, `1e+00`, `1.234567e+06`.
pub(super) fn fmt_e_shortest(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let (d, dp) = if v == 0.0 {
        ("0".to_string(), 1)
    } else {
        digits(v.abs(), None)
    };
    let mut s = String::new();
    if v.is_sign_negative() {
        s.push('-');
    }
    let mut chars = d.chars();
    s.push(chars.next().unwrap_or('0'));
    if !chars.as_str().is_empty() {
        s.push('.');
        s.push_str(chars.as_str());
    }
    let exp = dp - 1;
    let _ = write!(
        s,
        "e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    );
    s
}

/// Go's `%x` for floats (`strconv.FormatFloat(v, 'x', -1, 64)`) of `v` ≥ 0: `0x1.8p+00`.
pub(super) fn fmt_hex_float(v: f64, upper: bool) -> String {
    if v.is_nan() || v.is_infinite() {
        return String::new();
    }
    let bits = v.to_bits();
    let mut exp = i64::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let mut mant = bits & ((1 << 52) - 1);
    if exp == 0 && mant == 0 {
        return if upper {
            "0X0P+00".into()
        } else {
            "0x0p+00".into()
        };
    }
    if exp == 0 {
        // Subnormal: normalise so the leading 1 sits at bit 52.
        exp = 1;
        while mant & (1 << 52) == 0 {
            mant <<= 1;
            exp -= 1;
        }
        mant &= (1 << 52) - 1;
    }
    let e = exp - 1023;
    let frac = format!("{mant:013x}");
    let frac = frac.trim_end_matches('0');
    let mut s = String::from("0x1");
    if !frac.is_empty() {
        s.push('.');
        s.push_str(frac);
    }
    let _ = write!(
        s,
        "p{}{:02}",
        if e < 0 { '-' } else { '+' },
        e.unsigned_abs()
    );
    if upper {
        s = s.to_uppercase();
    }
    s
}
