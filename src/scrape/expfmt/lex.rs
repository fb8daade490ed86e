//! Byte-level lexing shared by the text and OpenMetrics parsers.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::{Format, Span, span};
use std::borrow::Cow;

pub(crate) struct Lexer<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(b: &'a [u8], pos: usize) -> Self {
        Self { b, pos }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn eat_str(&mut self, s: &[u8]) -> bool {
        if self.b.get(self.pos..self.pos + s.len()) == Some(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Skips spaces and tabs; returns how many.
    pub(crate) fn blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Bytes up to (not including) a blank, newline or the end.
    pub(crate) fn token_until_blank(&mut self) -> Span {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, b' ' | b'\t' | b'\n') {
                break;
            }
            self.pos += 1;
        }
        (start, self.pos)
    }

    /// Bytes up to (not including) a space, newline or the end.
    pub(crate) fn token_until_space(&mut self) -> Span {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, b' ' | b'\n') {
                break;
            }
            self.pos += 1;
        }
        (start, self.pos)
    }

    /// Bytes up to the newline (not included) or the end.
    pub(crate) fn rest_of_line(&mut self) -> Span {
        let start = self.pos;
        let n = self
            .b
            .get(start..)
            .unwrap_or_default()
            .iter()
            .position(|&c| c == b'\n')
            .unwrap_or(self.b.len().saturating_sub(start));
        self.pos = start + n;
        (start, self.pos)
    }

    /// A metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`; empty span when none.
    pub(crate) fn metric_name(&mut self) -> Span {
        let start = self.pos;
        if matches!(self.peek(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':') {
            self.pos += 1;
            while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b':')
            {
                self.pos += 1;
            }
        }
        (start, self.pos)
    }

    /// A label name `[a-zA-Z_][a-zA-Z0-9_]*`; empty span when none.
    pub(crate) fn label_name(&mut self) -> Span {
        let start = self.pos;
        if matches!(self.peek(), Some(c) if c.is_ascii_alphabetic() || c == b'_') {
            self.pos += 1;
            while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
                self.pos += 1;
            }
        }
        (start, self.pos)
    }

    /// A quoted string starting at `"`; the span includes both quotes. A backslash escapes the
    /// next byte. Raw newlines are allowed only when `newlines` (text format leniency).
    pub(crate) fn quoted(&mut self, newlines: bool) -> Result<Span, String> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err(format!(
                "expected label value, got {}",
                describe(self.b, self.pos)
            ));
        }
        loop {
            match self.peek() {
                None => return Err("unexpected end of input in quoted string".into()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok((start, self.pos));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    if self.peek().is_none() {
                        return Err("unexpected end of input in quoted string".into());
                    }
                    self.pos += 1;
                }
                Some(b'\n') if !newlines => {
                    return Err("unexpected newline in quoted string".into());
                }
                Some(_) => self.pos += 1,
            }
        }
    }
}

/// `"x"` as Prometheus prints an offending token in errors.
pub(crate) fn describe(b: &[u8], pos: usize) -> String {
    match b.get(pos) {
        None => "EOF".into(),
        Some(b'\n') => "\"\\n\"".into(),
        Some(_) => {
            let end = b
                .get(pos..)
                .unwrap_or_default()
                .iter()
                .position(|&c| matches!(c, b' ' | b'\t' | b'\n'))
                .map_or(b.len(), |n| pos + n.max(1));
            format!("{:?}", String::from_utf8_lossy(span(b, (pos, end))))
        }
    }
}

/// Scans a series starting at `start` (at the metric name or `{`), calling `sink(name, value)`
/// for each label (spans include quotes for quoted tokens). Returns the position after the
/// closing `}` (or after the name when there are no braces) and the metric-name token (plain,
/// or quoted inside the braces; empty when there is none). The text format tolerates blanks
/// around tokens, a trailing comma and raw newlines in values; OpenMetrics does not.
pub(crate) fn scan_labels(
    b: &[u8],
    start: usize,
    format: Format,
    mut sink: impl FnMut(Span, Span),
) -> Result<(usize, Span), String> {
    let lenient = format == Format::Text;
    let mut lx = Lexer::new(b, start);
    let n = lx.metric_name();
    let named = n.0 != n.1;
    if lenient {
        lx.blanks();
    }
    if !lx.eat(b'{') {
        return Ok(if named {
            (n.1, n)
        } else {
            (start, (start, start))
        });
    }
    let mut first = true;
    let mut has_name = named;
    let mut name = if named { n } else { (start, start) };
    loop {
        if lenient {
            lx.blanks();
        }
        if lx.eat(b'}') {
            return Ok((lx.pos, name));
        }
        let tok = match lx.peek() {
            Some(b'"') => lx.quoted(false)?,
            _ => {
                let t = lx.label_name();
                if t.0 == t.1 {
                    return Err(format!("expected label name, got {}", describe(b, lx.pos)));
                }
                t
            }
        };
        if lenient {
            lx.blanks();
        }
        if lx.eat(b'=') {
            if lenient {
                lx.blanks();
            }
            let v = lx.quoted(lenient)?;
            sink(tok, v);
        } else if b.get(tok.0) == Some(&b'"') && first && !has_name {
            // `{"metric.name", ...}`: a quoted metric name.
            has_name = true;
            name = tok;
        } else {
            return Err(format!("expected equal, got {}", describe(b, lx.pos)));
        }
        first = false;
        if lenient {
            lx.blanks();
        }
        if lx.eat(b',') {
            if !lenient && lx.peek() == Some(b'}') {
                return Err("unexpected \"}\" after \",\" in label set".into());
            }
            continue;
        }
        if lx.peek() == Some(b'}') {
            continue;
        }
        return Err(format!(
            "expected comma or \"}}\" in label set, got {}",
            describe(b, lx.pos)
        ));
    }
}

/// A name token decoded: plain names borrow, quoted names are unescaped.
pub(crate) fn decode_name(b: &[u8], sp: Span) -> Cow<'_, str> {
    let raw = span(b, sp);
    if raw.first() == Some(&b'"') {
        match unquote(b, sp) {
            Ok(s) => Cow::Owned(s),
            Err(_) => String::from_utf8_lossy(raw),
        }
    } else {
        String::from_utf8_lossy(raw)
    }
}

/// Unescapes a quoted token (span includes the quotes): `\\`, `\"`, `\n`; any other escape is
/// kept verbatim as Prometheus's scrape parser does. Errors on invalid UTF-8.
pub(crate) fn unquote(b: &[u8], sp: Span) -> Result<String, String> {
    let inner = span(b, (sp.0 + 1, sp.1.saturating_sub(1)));
    let s = std::str::from_utf8(inner).map_err(|_| {
        format!(
            "invalid UTF-8 label value: {:?}",
            String::from_utf8_lossy(inner)
        )
    })?;
    if !s.contains('\\') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    Ok(out)
}

/// HELP text unescaped: text format `\\` and `\n` only; OpenMetrics also `\"`.
pub(crate) fn unescape_help(raw: &[u8], format: Format) -> Cow<'_, str> {
    let s = String::from_utf8_lossy(raw);
    if !s.contains('\\') {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if format == Format::OpenMetrics => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Parses a sample value with `argus_query::gofloat::parse_bytes` (Go's `strconv.ParseFloat`
/// as the exposition formats use it; NaN as Go's canonical NaN), bounded to 64 bytes.
pub(crate) fn parse_float(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    argus_query::gofloat::parse_bytes(s)
}

/// OpenMetrics timestamp: float seconds → ms as `int64(seconds * 1000)`; NaN/Inf rejected.
pub(crate) fn om_timestamp(s: &[u8]) -> Result<i64, String> {
    let f = parse_float(s)
        .ok_or_else(|| format!("invalid timestamp {:?}", String::from_utf8_lossy(s)))?;
    if !f.is_finite() {
        return Err(format!("invalid timestamp {}", String::from_utf8_lossy(s)));
    }
    // `as` truncates toward zero and saturates, like Go's conversion on amd64 for in-range values.
    Ok((f * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_values_are_bounded_and_go_parsed() {
        assert_eq!(parse_float(b"3700.3"), Some(3700.3));
        assert_eq!(parse_float(b"1e3"), Some(1000.0));
        assert_eq!(parse_float(b""), None);
        assert_eq!(parse_float(&[b'1'; 65]), None);
        assert!(parse_float(b"NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_float(b"\xff"), None);
    }
}
