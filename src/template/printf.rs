//! Go's `fmt` as templates use it: `Sprint`, `Sprintln`, `Sprintf` (flags `+- #0`, width,
//! precision, verbs `v s q d b o x X c U t e E f F g G T %`) and Go's float layouts.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::float::{fmt_e, fmt_g, fmt_hex_float};
use super::gostr::{go_quote, go_quote_ascii, go_quote_rune, is_print};
use super::value::Value;
use std::fmt::Write as _;

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if out.len() > MAX_STRING {
            break;
        }
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
        if out.len() > MAX_STRING {
            break;
        }
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

/// Largest string a formatting call produces; longer results are cut short here and rejected
/// by the executor.
pub(super) const MAX_STRING: usize = 1 << 20;

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
        if out.len() > MAX_STRING {
            // The caller rejects the oversized result; stop working on it.
            break;
        }
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
    } else if spec.zero {
        // Zeros go after a number's sign.
        let (sign, digits) = match s.chars().next() {
            Some(c @ ('+' | '-' | ' ')) if numeric => (Some(c), s.get(1..).unwrap_or("")),
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
            // Go formats the value as a uint64: -1 is U+FFFFFFFFFFFFFFFF.
            let u = i64::try_from(v).map_or(0, |i| i as u64);
            let s = match c {
                Some(c) => format!("U+{u:04X} '{c}'"),
                None => format!("U+{u:04X}"),
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
