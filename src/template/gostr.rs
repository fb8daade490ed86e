//! Go string literals: `strconv.Quote` (for `%q` and error texts) and `strconv.Unquote` (for
//! string and character literals in templates).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fmt::Write as _;

/// Go's `strconv.Quote`: double-quoted, with Go escapes for non-printable characters.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        quote_char(c, '"', &mut out);
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteToASCII` (for `%+q`).
pub(super) fn go_quote_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c.is_ascii() {
            quote_char(c, '"', &mut out);
        } else if (c as u32) < 0x10000 {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune` (for `%q` of an integer).
pub(crate) fn go_quote_rune(c: char) -> String {
    let mut out = String::from("'");
    quote_char(c, '\'', &mut out);
    out.push('\'');
    out
}

fn quote_char(c: char, quote: char, out: &mut String) {
    match c {
        c if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        '\u{fffd}' => out.push_str("\\ufffd"),
        c if is_print(c) => out.push(c),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// An approximation of Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols
/// and the ASCII space.
pub(super) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !c.is_control()
        && !c.is_whitespace()
        && !matches!(c as u32, 0xad | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff)
}

/// Go's `strconv.Unquote` for `"…"`, `` `…` `` and `'…'` literals. Err is Go's text.
pub(super) fn go_unquote(s: &str) -> Result<String, &'static str> {
    const BAD: &str = "invalid syntax";
    let mut chars = s.chars();
    let quote = chars.next().ok_or(BAD)?;
    if chars.next_back() != Some(quote) {
        return Err(BAD);
    }
    let body = chars.as_str();
    match quote {
        '`' => {
            if body.contains('`') {
                return Err(BAD);
            }
            Ok(body.replace('\r', ""))
        }
        '"' | '\'' => {
            let mut out = Vec::with_capacity(body.len());
            let mut rest = body;
            let mut count = 0;
            while !rest.is_empty() {
                let (c, tail) = unquote_char(rest, quote)?;
                match c {
                    Piece::Char(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    Piece::Byte(b) => out.push(b),
                }
                rest = tail;
                count += 1;
            }
            if quote == '\'' && count != 1 {
                return Err(BAD);
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        _ => Err(BAD),
    }
}

/// A decoded character or, from `\xNN` and octal escapes, one raw byte.
pub(super) enum Piece {
    Char(char),
    Byte(u8),
}

/// One (possibly escaped) character from the front of `s`, and the rest.
pub(super) fn unquote_char(s: &str, quote: char) -> Result<(Piece, &str), &'static str> {
    const BAD: &str = "invalid syntax";
    let mut it = s.chars();
    let c = it.next().ok_or(BAD)?;
    if c == quote && quote != '`' {
        return Err(BAD);
    }
    if c == '\n' {
        return Err(BAD);
    }
    if c != '\\' {
        return Ok((Piece::Char(c), it.as_str()));
    }
    let e = it.next().ok_or(BAD)?;
    let simple = match e {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '\'' | '"' if e == quote => Some(e),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((Piece::Char(c), it.as_str()));
    }
    let (n, radix) = match e {
        'x' => (2, 16),
        'u' => (4, 16),
        'U' => (8, 16),
        '0'..='7' => (3, 8),
        _ => return Err(BAD),
    };
    let digits_start = if radix == 8 {
        s.get(1..).ok_or(BAD)?
    } else {
        it.as_str()
    };
    let digits = digits_start.get(..n).ok_or(BAD)?;
    let v = u32::from_str_radix(digits, radix).map_err(|_| BAD)?;
    let rest = digits_start.get(n..).ok_or(BAD)?;
    let piece = match e {
        'x' | '0'..='7' => Piece::Byte(u8::try_from(v).map_err(|_| BAD)?),
        _ => Piece::Char(char::from_u32(v).ok_or(BAD)?),
    };
    Ok((piece, rest))
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
