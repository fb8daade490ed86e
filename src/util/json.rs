//! JSON string literals written into a caller's buffer, escaped as Go's `encoding/json` does
//! (HTML-safe `<`, `>`, `&`, and U+2028/U+2029 escaped), so output matches Prometheus byte for
//! byte.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use argus_storage::Labels;
use std::fmt::Write as _;

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    // Runs of bytes that need no escape are copied whole. Every byte that may need one is
    // ASCII or 0xE2 (the lead byte of U+2028 and U+2029), so each stop is a char boundary.
    let mut rest = s;
    while let Some(i) = rest
        .bytes()
        .position(|b| STOP.get(usize::from(b)) == Some(&true))
    {
        let Some((safe, tail)) = rest.split_at_checked(i) else {
            break;
        };
        out.push_str(safe);
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            push_json_char(out, c);
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

/// True for the bytes [`push_json_str`] stops at: controls, `"`, `\`, `<`, `>`, `&` and 0xE2.
const fn stops_at(b: u8) -> bool {
    b < 0x20 || matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&' | 0xE2)
}

/// [`stops_at`] for every byte: one table load per byte instead of a chain of comparisons.
#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of bounds fails the build"
)]
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = stops_at(b as u8);
        b += 1;
    }
    t
};

/// Appends one char of a JSON string, escaped as Go's encoder escapes it.
fn push_json_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '<' => out.push_str("\\u003c"),
        '>' => out.push_str("\\u003e"),
        '&' => out.push_str("\\u0026"),
        c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => out.push(c),
    }
}

/// Appends a label set as a JSON object in label order.
pub fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, &l.name);
        out.push(':');
        push_json_str(out, &l.value);
    }
    out.push('}');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_go() {
        let check = |s: &str, want: &str| {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, want);
        };
        check("plain", r#""plain""#);
        check("a\"b\\c", r#""a\"b\\c""#);
        check("<&>", r#""\u003c\u0026\u003e""#);
        check("\n\r\t\u{1}\u{2028}", r#""\n\r\t\u0001\u2028""#);
        // Other chars with the lead byte 0xE2 pass through; escapes amid runs of plain text.
        check("a€b\u{2029}c—", "\"a€b\\u2029c—\"");
        check("x=\"1\",y<2", r#""x=\"1\",y\u003c2""#);
        check("", r#""""#);
    }

    proptest::proptest! {
        /// Whatever the string, the output is a JSON string that decodes back to it.
        #[test]
        fn round_trips_through_a_json_decoder(s in "\\PC*|[\u{0}-\u{7f}\u{2028}\u{2029}€]*") {
            let mut out = String::new();
            push_json_str(&mut out, &s);
            let back: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }
}
