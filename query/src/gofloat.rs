//! Floats as Go reads and writes them, the one implementation every crate of the workspace uses:
//! the exposition decoders and the Pushgateway parse with [`parse`], the JSON API and PromQL
//! strings format with [`push_f`] (`strconv.FormatFloat(v, 'f', -1, 64)`), the exposition
//! writers, templates and label values with [`push_g`] (`'g'`, also `fmt.Sprint`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fmt::Write as _;

/// Go's `math.NaN()` bits; [`parse`] returns every NaN as this value.
pub const GO_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Parses `s` as Go's `strconv.ParseFloat(s, 64)` does for the decimal forms the exposition
/// formats allow (prometheus/common's `parseFloat` rejects `p`, `P` and `_`, so no hex floats
/// and no digit separators): optional sign, digits with an optional point, optional exponent;
/// `Inf`/`Infinity` in any case with an optional sign, `NaN` in any case without one. A finite
/// literal out of `f64` range is `None` (Go's `ErrRange`). NaN comes back as [`GO_NAN_BITS`].
pub fn parse(s: &str) -> Option<f64> {
    if let Some(v) = plain_decimal(s.as_bytes()) {
        return Some(v);
    }
    parse_general(s)
}

/// [`parse`] of bytes: decimals within the fast path's bounds (see `plain_decimal`) without a
/// UTF-8 check; anything else must be UTF-8.
#[inline]
pub fn parse_bytes(s: &[u8]) -> Option<f64> {
    if let Some(v) = plain_decimal(s) {
        return Some(v);
    }
    parse_general(std::str::from_utf8(s).ok()?)
}

/// 10^0 to 10^22: the powers of ten an `f64` holds exactly.
const EXACT_POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `[+-]?digits[.digits][(e|E)[+-]?digits]` (either side of the point may be empty, not both)
/// with at most 19 mantissa digits whose value `m` is at most 2^53, and a power of ten `e` (the
/// exponent less the digits after the point) within ±22: `±m · 10^e` or `±m / 10^-e`, or
/// `None` for anything else (the general parser's case). Exact by Clinger's fast path: `m` and
/// `10^|e|` are both exact `f64`s, and one IEEE multiplication or division rounds correctly, so
/// the result is the correctly rounded value that Go's `ParseFloat` and Rust's `parse` return
/// (sign of zero included). Saves the UTF-8 check and the general parser on most sample values
/// (a third of a warm scrape's append went to parsing values; with exponents, as Go writes
/// `%g` values below 1e-4 and from 1e21 and client libraries write many more, over a quarter of
/// node_exporter-like values went to the general parser).
#[inline]
fn plain_decimal(s: &[u8]) -> Option<f64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let (mut m, mut n, mut frac, mut point) = (0u64, 0u32, 0i32, false);
    // What follows an `e`/`E`, if there is one.
    let mut exp: Option<&[u8]> = None;
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' if n < 19 => {
                m = m * 10 + u64::from(c - b'0');
                n += 1;
                frac += i32::from(point);
            }
            b'.' if !point => point = true,
            b'e' | b'E' => {
                exp = digits.get(i + 1..);
                break;
            }
            _ => return None,
        }
    }
    if n == 0 || m > 1 << 53 {
        return None;
    }
    let mut e = -frac;
    if let Some(x) = exp {
        let (eneg, edigits) = match x.split_first() {
            Some((b'-', r)) => (true, r),
            Some((b'+', r)) => (false, r),
            _ => (false, x),
        };
        // 1 to 3 exponent digits: a longer exponent is past the fast path's range (or zeros).
        if edigits.is_empty() || edigits.len() > 3 {
            return None;
        }
        let mut x = 0i32;
        for &c in edigits {
            if !c.is_ascii_digit() {
                return None;
            }
            x = x * 10 + i32::from(c - b'0');
        }
        e += if eneg { -x } else { x };
    }
    let p = EXACT_POW10.get(e.unsigned_abs() as usize)?;
    let v = if e >= 0 { m as f64 * p } else { m as f64 / p };
    Some(if neg { -v } else { v })
}

/// [`parse`] without the plain-decimal fast path.
fn parse_general(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.eq_ignore_ascii_case("nan") {
        // Go's `special` takes no sign before NaN.
        return (body.len() == s.len()).then(|| f64::from_bits(GO_NAN_BITS));
    }
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Rust's grammar for the rest is Go's decimal grammar; it also knows `inf`/`nan` words,
    // handled above, so anything but digits, point, exponent and signs is refused first.
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Appends `v` as Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest round-trip digits,
/// never an exponent (`1e-7` → `0.0000001`, `1e21` → `1000000000000000000000`), `-0` for
/// negative zero, and `NaN`, `+Inf`, `-Inf` as Prometheus writes them.
pub fn push_f(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // Ryū's shortest round-trip digits (the same digits as Rust's `Display`, about three
        // times faster: float formatting was a quarter of a large range query's CPU), laid out
        // without an exponent as Go's 'f' does.
        let mut buf = ryu::Buffer::new();
        push_f_layout(out, buf.format_finite(v));
    }
}

/// Appends `v` as Prometheus's JSON API writes sample values (`jsonutil.MarshalFloat`): Go's
/// 'e' format with shortest digits for magnitudes below 1e-6 or from 1e21 up (`1e-07`,
/// `1.7976931348623157e+308`), 'f' otherwise (checked against Prometheus 2.42).
pub fn push_json(out: &mut String, v: f64) {
    let abs = v.abs();
    if !v.is_finite() || abs == 0.0 || (1e-6..1e21).contains(&abs) {
        push_f(out, v);
        return;
    }
    let mut buf = ryu::Buffer::new();
    let r = buf.format_finite(v);
    let (neg, r) = match r.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, r),
    };
    let (mant, exp) = r.split_once('e').unwrap_or((r, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    // Significant digits and the power of ten of the first one.
    let all: String = [int, frac].concat();
    let lead = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_start_matches('0').trim_end_matches('0');
    let e10 = i32::try_from(int.len()).unwrap_or(0) - 1 - i32::try_from(lead).unwrap_or(0) + exp;
    if neg {
        out.push('-');
    }
    let (first, rest) = digits.split_at(digits.len().min(1));
    out.push_str(first);
    if !rest.is_empty() {
        out.push('.');
        out.push_str(rest);
    }
    let _ = write!(out, "e{}{:02}", if e10 < 0 { '-' } else { '+' }, e10.abs());
}

/// Rewrites Ryū's output (`1.0`, `0.25`, `-0.0`, `1e-7`, `1.2345e20`) in Go's 'f' layout
/// (`1`, `0.25`, `-0`, `0.0000001`, `123450000000000000000`).
fn push_f_layout(out: &mut String, r: &str) {
    let (neg, r) = match r.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, r),
    };
    if neg {
        out.push('-');
    }
    let Some((mant, exp)) = r.split_once('e') else {
        out.push_str(r.strip_suffix(".0").unwrap_or(r));
        return;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    // The digits are int ++ frac; the decimal point sits after `dp` of them.
    let nd = i32::try_from(int.len() + frac.len()).unwrap_or(i32::MAX);
    let dp = i32::try_from(int.len())
        .unwrap_or(i32::MAX)
        .saturating_add(exp);
    let zeros = |out: &mut String, n: i32| {
        for _ in 0..n {
            out.push('0');
        }
    };
    if dp <= 0 {
        out.push_str("0.");
        zeros(out, -dp);
        out.push_str(int);
        out.push_str(frac);
    } else if dp >= nd {
        out.push_str(int);
        out.push_str(frac);
        zeros(out, dp - nd);
    } else {
        let split = usize::try_from(dp).unwrap_or(0);
        let digits: String = [int, frac].concat();
        let (a, b) = digits.split_at(split.min(digits.len()));
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    }
}

/// [`push_f`] into a new string.
pub fn format_f(v: f64) -> String {
    let mut s = String::new();
    push_f(&mut s, v);
    s
}

/// Appends `v` as Go's `strconv.FormatFloat(v, 'g', -1, 64)` (also `fmt.Sprint`): shortest
/// round-trip digits, exponent form `d.ddde±XX` when the decimal exponent is below -4 or at least 6,
/// with `+Inf`/`-Inf`/`NaN` as the text exposition writes them.
pub fn push_g(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Shortest round-trip digits from Rust, laid out with Go's %g rules.
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        // %e: d[.ddd]e±XX
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
        return;
    }
    let nd = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let dp = exp + 1;
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..-dp {
            out.push('0');
        }
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        for _ in 0..dp - nd {
            out.push('0');
        }
    } else {
        let (a, b) = digits.split_at(usize::try_from(dp).unwrap_or(0));
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    }
}

/// [`push_g`] into a new string.
pub fn format_g(v: f64) -> String {
    let mut s = String::new();
    push_g(&mut s, v);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        a.map(f64::to_bits) == b.map(f64::to_bits)
    }

    #[test]
    fn plain_decimals_parse_as_the_general_parser_does() {
        let check = |s: &str, want: Option<f64>| {
            let got = parse(s);
            assert!(same(got, want), "{s:?}: expected {want:?}, got {got:?}");
            assert!(
                same(got, parse_general(s)),
                "{s:?}: differs from the general parser"
            );
            assert!(
                same(parse_bytes(s.as_bytes()), got),
                "{s:?}: parse_bytes differs"
            );
        };
        check("0", Some(0.0));
        check("-0", Some(-0.0));
        check("-0.000", Some(-0.0));
        check("+12", Some(12.0));
        check("3700.3", Some(3700.3));
        check("5.", Some(5.0));
        check(".5", Some(0.5));
        check("0.1", Some(0.1));
        check("9007199254740992", Some(9_007_199_254_740_992.0));
        // Past the fast path's bounds: the general parser's answer.
        check("9007199254740993", Some(9_007_199_254_740_992.0));
        check("12345678901234567890", Some(12_345_678_901_234_567_890.0));
        check("0.00000000000000000000001", Some(1e-23));
        check("1e3", Some(1000.0));
        // Exponents: within the fast path (±22 after the point's digits) and past it.
        check("7.306e-06", Some(7.306e-6));
        check("2.991246e+06", Some(2_991_246.0));
        check("1.E5", Some(1e5));
        check(".5e1", Some(5.0));
        check("-0e5", Some(-0.0));
        check("1e22", Some(1e22));
        check("1e23", Some(1e23));
        check("1.5e-22", Some(1.5e-22));
        check("123456789e-30", Some(123_456_789e-30));
        check("1e0001", Some(10.0));
        check("1e308", Some(1e308));
        check("1e309", None);
        check("1e", None);
        check("1e+", None);
        check("1e-", None);
        check("e5", None);
        check(".e5", None);
        check("1e5.0", None);
        check("1e5e5", None);
        check("1e+-5", None);
        check(".", None);
        check("-", None);
        check("", None);
        check("1.2.3", None);
        check("--1", None);
        check("1_000", None);
        check("0x10", None);
        check("+Inf", Some(f64::INFINITY));
        assert!(parse("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_bytes(b"\xff1"), None);
    }

    proptest::proptest! {
        /// Any string over the decimal alphabet, and any formatted float, parses as the general
        /// parser parses it, bit for bit (the plain-decimal fast path changes no answer).
        #[test]
        fn fast_path_agrees(
            s in "[-+]?[0-9]{0,21}(\\.[0-9]{0,24})?([eE][-+]?[0-9]{0,4})?",
            v in proptest::prelude::any::<f64>(),
            d in 0usize..20,
        ) {
            proptest::prop_assert!(same(parse(&s), parse_general(&s)), "{:?}", s);
            for t in [
                format!("{v}"),
                format!("{v:.d$}"),
                format!("{:.d$}", v / 1e9),
                format!("{v:e}"),
                format!("{v:.d$e}"),
            ] {
                proptest::prop_assert!(same(parse(&t), parse_general(&t)), "{:?}", t);
            }
        }
    }

    #[test]
    fn parses_as_go() {
        let check = |s: &str, want: Option<f64>| {
            let got = parse(s);
            match (got, want) {
                (Some(g), Some(w)) if w.is_nan() => assert!(g.is_nan(), "{s:?}: got {g}"),
                _ => assert_eq!(got, want, "{s:?}"),
            }
        };
        check("1", Some(1.0));
        check("-1.5e3", Some(-1500.0));
        check("+.5", Some(0.5));
        check("1.", Some(1.0));
        check("1E-2", Some(0.01));
        check("Inf", Some(f64::INFINITY));
        check("+inf", Some(f64::INFINITY));
        check("-Infinity", Some(f64::NEG_INFINITY));
        check("NaN", Some(f64::NAN));
        check("nan", Some(f64::NAN));
        check("+NaN", None);
        check("-nan", None);
        check("infinit", None);
        check("", None);
        check("+", None);
        check(".", None);
        check("e5", None);
        check("1_000", None);
        check("0x1p-2", None);
        check("1e999", None);
        check(" 1", None);
        check("1 ", None);
        assert_eq!(parse("NaN").map(f64::to_bits), Some(GO_NAN_BITS));
    }

    #[test]
    fn formats_f_as_go() {
        let check = |v: f64, want: &str| assert_eq!(format_f(v), want, "{v:?}");
        check(1.0, "1");
        check(0.5, "0.5");
        check(-2.25, "-2.25");
        check(-0.0, "-0");
        check(1e-7, "0.0000001");
        check(1e21, "1000000000000000000000");
        check(f64::INFINITY, "+Inf");
        check(f64::NEG_INFINITY, "-Inf");
        check(f64::NAN, "NaN");
        check(1.5, "1.5");
        check(0.1 + 0.2, "0.30000000000000004");
        check(123456789.0, "123456789");
        check(1e20, "100000000000000000000");
        check(1.5e22, "15000000000000000000000");
        check(0.000001, "0.000001");
        check(-2.5e-10, "-0.00000000025");
        assert_eq!(format_f(f64::MAX).len(), 309);
        assert!(format_f(5e-324).starts_with("0.0000") && format_f(5e-324).ends_with("0005"));
    }

    #[test]
    fn formats_g_as_go() {
        let check = |v: f64, want: &str| assert_eq!(format_g(v), want, "{v:?}");
        check(0.0, "0");
        check(-0.0, "-0");
        check(1.0, "1");
        check(-2.5, "-2.5");
        check(100000.0, "100000");
        check(1e6, "1e+06");
        check(1234567.0, "1.234567e+06");
        check(0.0001, "0.0001");
        check(0.00001, "1e-05");
        check(1.5e-7, "1.5e-07");
        check(123.456, "123.456");
        check(1e21, "1e+21");
        check(1e100, "1e+100");
        check(f64::INFINITY, "+Inf");
        check(f64::NEG_INFINITY, "-Inf");
        check(f64::NAN, "NaN");
        check(1782458400.123456, "1.782458400123456e+09");
        check(0.1, "0.1");
    }

    /// Values written by Prometheus 2.42's query API (remote-written, then queried): an exact
    /// tie between two shortest forms rounds to even (Rust's `Display` rounds it up), and tiny
    /// or huge magnitudes use the exponent form.
    #[test]
    fn json_floats_as_prometheus() {
        let json = |v: f64| {
            let mut s = String::new();
            push_json(&mut s, v);
            s
        };
        assert_eq!(json(-(1416489785392610.0 + 0.25)), "-1416489785392610.2");
        assert_eq!(json(1416489785392610.0 + 0.25), "1416489785392610.2");
        assert_eq!(json(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(json(1e-7), "1e-07");
        assert_eq!(json(5e-324), "5e-324");
        assert_eq!(json(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(json(123456789012345680.0), "123456789012345680");
        assert_eq!(json(-2.5e-7), "-2.5e-07");
        assert_eq!(json(1e21), "1e+21");
        assert_eq!(json(0.0), "0");
        assert_eq!(json(1e-6), "0.000001");
    }

    proptest::proptest! {
        /// The 'f' layout has the digits of Rust's `Display` (shortest, no exponent), up to the
        /// choice between two equally short forms, and reads back to the same value.
        #[test]
        fn f_is_shortest_and_exact(bits in proptest::prelude::any::<u64>(), v in -1e17f64..1e17, small in -1e-3f64..1e-3) {
            for x in [f64::from_bits(bits), v, small, 1e-5, 9.999e-6, 1e16, 9.999e15, 1.5e16] {
                if x.is_finite() {
                    let f = format_f(x);
                    proptest::prop_assert_eq!(f.len(), format!("{x}").len(), "{}", f);
                    proptest::prop_assert_eq!(parse(&f).map(f64::to_bits), Some(x.to_bits()));
                    let mut j = String::new();
                    push_json(&mut j, x);
                    proptest::prop_assert_eq!(parse(&j).map(f64::to_bits), Some(x.to_bits()), "{}", j);
                }
            }
        }

        #[test]
        fn both_formats_round_trip(bits in proptest::prelude::any::<u64>()) {
            let v = f64::from_bits(bits);
            for s in [format_f(v), format_g(v)] {
                let back = parse(&s).unwrap_or_else(|| panic!("{s:?} does not parse"));
                proptest::prop_assert!(back.to_bits() == v.to_bits() || (v.is_nan() && back.is_nan()), "{v:?} → {s:?} → {back:?}");
            }
        }
    }
}
