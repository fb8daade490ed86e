//! JSON string literals written into a caller's buffer, escaped as Go's `encoding/json` does
//! (HTML-safe `<`, `>`, `&`, and U+2028/U+2029 escaped), so output matches Prometheus byte for
//! byte.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use argus_storage::Labels;
use std::fmt::Write as _;

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
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
    out.push('"');
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
    }
}
