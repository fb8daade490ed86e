//! Go's `fmt` as templates use it: `Sprint`, `Sprintln`, `Sprintf` (flags `+- #0`, width,
//! precision, verbs `v s q d b o x X c U t e E f F g G T %`) and Go's float layouts.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::gostr::{go_quote, go_quote_ascii, go_quote_rune, is_print};
use super::value::Value;
use std::fmt::Write as _;

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let prev_string = i > 0 && args.get(i - 1).is_some_and(Value::is_string);
        if i > 0 && !a.is_string() && !prev_string {
            out.push(' ');
        }
        a.write_v(&mut out, false);
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands, newline at the end.
pub(super) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        a.write_v(&mut out, false);
    }
    out.push('\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Largest width or precision accepted (Go's limit is 1e6 too).
const MAX_WIDTH: usize = 1_000_000;

/// `fmt.Sprintf`.
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next_arg = 0;
    let mut reordered = false;
    let mut it = format.chars().peekable();
    type It<'x> = std::iter::Peekable<std::str::Chars<'x>>;
    // `[n]` argument index (1-based): moves `next_arg`; false when malformed.
    let arg_index = |it: &mut It<'_>, next_arg: &mut usize, reordered: &mut bool| -> bool {
        if it.peek() != Some(&'[') {
            return true;
        }
        it.next();
        *reordered = true;
        let mut n = 0usize;
        let mut ok = false;
        while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
            n = (n * 10 + d as usize).min(MAX_WIDTH);
            ok = true;
            it.next();
        }
        if it.next() != Some(']') || !ok || n == 0 || n > args.len() {
            return false;
        }
        *next_arg = n - 1;
        true
    };
    // Width or precision: digits, or `*` taking an int argument.
    let number = |it: &mut It<'_>, next_arg: &mut usize| -> Result<Option<usize>, ()> {
        if it.peek() == Some(&'*') {
            it.next();
            let v = match args.get(*next_arg) {
                Some(Value::Int(i)) => usize::try_from(i.unsigned_abs())
                    .ok()
                    .filter(|v| *v <= MAX_WIDTH),
                _ => None,
            };
            *next_arg += 1;
            return v.map(Some).ok_or(());
        }
        let mut n: Option<usize> = None;
        while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
            n = Some((n.unwrap_or(0) * 10 + d as usize).min(MAX_WIDTH + 1));
            it.next();
        }
        Ok(n)
    };
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = it.peek() {
            match f {
                '+' => spec.plus = true,
                '-' => spec.minus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            it.next();
        }
        let mut good_index = arg_index(&mut it, &mut next_arg, &mut reordered);
        let neg_star =
            it.peek() == Some(&'*') && matches!(args.get(next_arg), Some(Value::Int(i)) if *i < 0);
        match number(&mut it, &mut next_arg) {
            Ok(w) => spec.width = w,
            Err(()) => out.push_str("%!(BADWIDTH)"),
        }
        if neg_star {
            spec.minus = true;
        }
        if it.peek() == Some(&'.') {
            it.next();
            good_index &= arg_index(&mut it, &mut next_arg, &mut reordered);
            match number(&mut it, &mut next_arg) {
                Ok(p) => spec.prec = Some(p.unwrap_or(0)),
                Err(()) => out.push_str("%!(BADPREC)"),
            }
        }
        good_index &= arg_index(&mut it, &mut next_arg, &mut reordered);
        if spec.width.is_some_and(|w| w > MAX_WIDTH) || spec.prec.is_some_and(|p| p > MAX_WIDTH) {
            out.push_str("%!(BADWIDTH)");
            spec.width = None;
            spec.prec = None;
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        if !good_index {
            let _ = write!(out, "%!{verb}(BADINDEX)");
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next_arg += 1;
        format_one(&mut out, verb, spec, arg);
    }
    if !reordered && next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args.iter().skip(next_arg).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if matches!(a, Value::Nil | Value::Invalid) {
                out.push_str("<nil>");
            } else {
                let _ = write!(out, "{}={}", a.type_name(), a.to_v_string());
            }
        }
        out.push(')');
    }
    out
}

fn bad_verb(out: &mut String, verb: char, arg: &Value) {
    match arg {
        Value::Nil | Value::Invalid => {
            let _ = write!(out, "%!{verb}(<nil>)");
        }
        _ => {
            let _ = write!(out, "%!{verb}({}={})", arg.type_name(), arg.to_v_string());
        }
    }
}

fn pad(out: &mut String, s: &str, spec: Spec, numeric: bool) {
    let len = s.chars().count();
    let width = spec.width.unwrap_or(0);
    if len >= width {
        out.push_str(s);
        return;
    }
    let fill = width - len;
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        // Zeros go after the sign.
        let (sign, digits) = match s.chars().next() {
            Some(c @ ('+' | '-' | ' ')) => (Some(c), s.get(1..).unwrap_or("")),
            _ => (None, s),
        };
        if let Some(c) = sign {
            out.push(c);
        }
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

fn format_one(out: &mut String, verb: char, spec: Spec, arg: &Value) {
    if verb == 'T' {
        pad(out, arg.type_name(), spec, false);
        return;
    }
    match arg {
        Value::Bool(b) if matches!(verb, 't' | 'v') => {
            pad(out, if *b { "true" } else { "false" }, spec, false)
        }
        Value::Int(i) => format_int(out, verb, spec, i128::from(*i), arg),
        Value::Byte(b) => format_int(out, verb, spec, i128::from(*b), arg),
        Value::Float(f) => format_float(out, verb, spec, *f, arg),
        Value::Str(s) | Value::Html(s) => format_str(out, verb, spec, s, arg),
        Value::Time(_) | Value::Duration(_) | Value::Named(_)
            if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') =>
        {
            format_str(out, verb, spec, &arg.to_v_string(), arg)
        }
        Value::Nil if verb == 'v' => pad(out, "<nil>", spec, false),
        Value::StrMap(m) if verb != 'v' => {
            out.push_str("map[");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_str(out, verb, spec, k, &Value::str(k));
                out.push(':');
                format_str(out, verb, spec, v, &Value::str(v));
            }
            out.push(']');
        }
        Value::AnyMap(m) if verb != 'v' => {
            out.push_str("map[");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_str(out, verb, spec, k, &Value::str(k));
                out.push(':');
                format_one(out, verb, spec, v);
            }
            out.push(']');
        }
        _ if verb == 'v'
            || (verb == 's' && !matches!(arg, Value::Nil | Value::Invalid | Value::Bool(_))) =>
        {
            pad(out, &arg.to_v_string(), spec, false)
        }
        _ => bad_verb(out, verb, arg),
    }
}

fn format_str(out: &mut String, verb: char, spec: Spec, s: &str, arg: &Value) {
    let s: String = match spec.prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    match verb {
        'v' | 's' => pad(out, &s, spec, false),
        'q' if spec.plus => pad(out, &go_quote_ascii(&s), spec, false),
        'q' => pad(out, &go_quote(&s), spec, false),
        'x' | 'X' => {
            let mut h = String::new();
            for (i, b) in s.bytes().enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                let _ = if verb == 'x' {
                    write!(h, "{b:02x}")
                } else {
                    write!(h, "{b:02X}")
                };
            }
            pad(out, &h, spec, false)
        }
        _ => bad_verb(out, verb, arg),
    }
}

fn format_int(out: &mut String, verb: char, spec: Spec, v: i128, arg: &Value) {
    let abs = v.unsigned_abs();
    let mut digits = match verb {
        'd' | 'v' => abs.to_string(),
        'b' => format!("{abs:b}"),
        'o' | 'O' => format!("{abs:o}"),
        'x' => format!("{abs:x}"),
        'X' => format!("{abs:X}"),
        'c' => {
            let c = u32::try_from(v)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}');
            return pad(out, &c.to_string(), spec, false);
        }
        'q' => {
            let c = u32::try_from(v)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}');
            return pad(out, &go_quote_rune(c), spec, false);
        }
        'U' => {
            let c = u32::try_from(v)
                .ok()
                .and_then(char::from_u32)
                .filter(|c| spec.sharp && is_print(*c));
            let s = match c {
                Some(c) => format!("U+{abs:04X} '{c}'"),
                None => format!("U+{abs:04X}"),
            };
            return pad(out, &s, spec, false);
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => return bad_verb(out, verb, arg),
        _ => return bad_verb(out, verb, arg),
    };
    if let Some(p) = spec.prec {
        if p == 0 && v == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let prefix = match (verb, spec.sharp) {
        ('o', true) => "0",
        ('O', _) => "0o",
        ('x', true) => "0x",
        ('X', true) => "0X",
        ('b', true) => "0b",
        _ => "",
    };
    let sign = if v < 0 {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let spec = Spec {
        zero: spec.zero && spec.prec.is_none(),
        ..spec
    };
    pad(out, &format!("{sign}{prefix}{digits}"), spec, true);
}

fn format_float(out: &mut String, verb: char, spec: Spec, v: f64, arg: &Value) {
    let body = match verb {
        'v' | 'g' | 'G' => fmt_g(v.abs(), spec.prec, verb == 'G'),
        'e' | 'E' => fmt_e(v.abs(), spec.prec.unwrap_or(6), verb == 'E'),
        'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), v.abs()),
        'x' | 'X' => fmt_hex_float(v.abs(), verb == 'X'),
        _ => return bad_verb(out, verb, arg),
    };
    if v.is_nan() {
        let s = if spec.plus {
            "+NaN"
        } else if spec.space {
            " NaN"
        } else {
            "NaN"
        };
        return pad(
            out,
            s,
            Spec {
                zero: false,
                ..spec
            },
            false,
        );
    }
    if v.is_infinite() {
        let s = if v < 0.0 {
            "-Inf"
        } else if spec.space && !spec.plus {
            " Inf"
        } else {
            "+Inf"
        };
        return pad(
            out,
            s,
            Spec {
                zero: false,
                ..spec
            },
            false,
        );
    }
    let sign = if v.is_sign_negative() {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    pad(out, &format!("{sign}{body}"), spec, true);
}

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

/// Go's `template.HTMLEscapeString`.
pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(super) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if !is_print(c) => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(super) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
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
fn fmt_hex_float(v: f64, upper: bool) -> String {
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
