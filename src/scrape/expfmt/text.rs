//! Prometheus text format 0.0.4, with the leniencies of Prometheus's scrape parser
//! (`model/textparse/promparse.go`): blanks around tokens, trailing comma, late or repeated
//! metadata, unknown escapes kept, no final newline; plus quoted UTF-8 names.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::lex::{self, Lexer, describe};
use super::{Entry, Expect, Format, MetricType, Parser, span};

impl Parser<'_> {
    /// The next entry: blank lines skipped, then a comment or a series, read by Prometheus's
    /// rules or, in strict mode, by Go `expfmt`'s (`strict.rs`).
    /// `expect`: see [`Parser::next_expecting`].
    pub(crate) fn next_text(&mut self, expect: Expect<'_>) -> Result<Option<Entry>, String> {
        let b = self.buf;
        self.partial = None;
        loop {
            self.line += 1;
            let mut lx = Lexer::new(b, self.pos);
            lx.blanks();
            match lx.peek() {
                None => {
                    self.pos = lx.pos;
                    return Ok(None);
                }
                Some(b'\n') => {
                    self.pos = lx.pos + 1;
                    continue;
                }
                Some(b'#') => {
                    lx.pos += 1;
                    let e = if self.strict {
                        self.strict_comment(&mut lx)?
                    } else {
                        self.text_comment(&mut lx)?
                    };
                    self.pos = lx.pos;
                    return Ok(Some(e));
                }
                Some(_) => {
                    if self.strict {
                        self.strict_series(&mut lx)?;
                    } else {
                        self.text_series(&mut lx, expect)?;
                    }
                    self.pos = lx.pos;
                    return Ok(Some(Entry::Series));
                }
            }
        }
    }

    fn text_comment(&mut self, lx: &mut Lexer<'_>) -> Result<Entry, String> {
        let b = self.buf;
        lx.blanks();
        let kind = if lx.eat_str(b"HELP") {
            Some(Entry::Help)
        } else if lx.eat_str(b"TYPE") {
            Some(Entry::Type)
        } else {
            None
        };
        let kind = match kind {
            Some(k) if matches!(lx.peek(), Some(b' ' | b'\t')) => k,
            _ => {
                lx.rest_of_line();
                lx.eat(b'\n');
                return Ok(Entry::Comment);
            }
        };
        lx.blanks();
        let name = if lx.peek() == Some(b'"') {
            lx.quoted(false)?
        } else {
            lx.metric_name()
        };
        if name.0 == name.1 {
            return Err(format!(
                "expected metric name after {}, got {}",
                if kind == Entry::Help { "HELP" } else { "TYPE" },
                describe(b, lx.pos)
            ));
        }
        self.meta_name = name;
        match kind {
            Entry::Help => {
                if !matches!(lx.peek(), None | Some(b'\n')) && lx.blanks() == 0 {
                    return Err(format!(
                        "expected text in HELP, got {}",
                        describe(b, lx.pos)
                    ));
                }
                self.meta_text = lx.rest_of_line();
            }
            _ => {
                if lx.blanks() == 0 {
                    return Err(format!(
                        "expected text in TYPE, got {}",
                        describe(b, lx.pos)
                    ));
                }
                let t = lx.token_until_blank();
                let ty = match span(b, t) {
                    b"counter" => MetricType::Counter,
                    b"gauge" => MetricType::Gauge,
                    b"histogram" => MetricType::Histogram,
                    b"summary" => MetricType::Summary,
                    b"untyped" => MetricType::Unknown,
                    other => {
                        return Err(format!(
                            "invalid metric type {:?}",
                            String::from_utf8_lossy(other)
                        ));
                    }
                };
                lx.blanks();
                if !matches!(lx.peek(), None | Some(b'\n')) {
                    return Err(format!(
                        "linebreak expected after metadata, got {}",
                        describe(b, lx.pos)
                    ));
                }
                self.meta_type = ty;
                self.fam_name = name;
                self.fam_type = ty;
            }
        }
        lx.eat(b'\n');
        Ok(kind)
    }

    /// The series text at `lx` when it is `expect` (see [`Parser::next_expecting`]): sets the
    /// series and name spans as [`lex::scan_labels`] would and moves `lx` past it. `false`
    /// (nothing changed) when it is not, or when the shortcut does not apply.
    pub(crate) fn expected_series(&mut self, lx: &mut Lexer<'_>, expect: Expect<'_>) -> bool {
        let b = self.buf;
        let start = lx.pos;
        let Some(end) = start.checked_add(expect.len) else {
            return false;
        };
        let Some(text) = b.get(start..end) else {
            return false;
        };
        // A quoted name inside the braces: rare, left to the full scan.
        if text.is_empty()
            || text.first() == Some(&b'{')
            || !matches!(b.get(end), Some(b' ' | b'\t'))
            || !(expect.is)(text)
        {
            return false;
        }
        if text.last() != Some(&b'}') {
            // A name without braces: the full scan would read braces after the blanks.
            let mut after = Lexer::new(b, end);
            after.blanks();
            if after.peek() == Some(b'{') {
                return false;
            }
        }
        // The name is what precedes the braces (blanks before them trimmed), or all of it: the
        // text was scanned before.
        let mut name_len = text.iter().position(|&c| c == b'{').unwrap_or(text.len());
        while name_len > 0 && matches!(text.get(name_len - 1), Some(b' ' | b'\t')) {
            name_len -= 1;
        }
        if name_len == 0 {
            return false;
        }
        let name = (start, start + name_len);
        self.name = name;
        self.series = (start, end);
        lx.pos = end;
        true
    }

    fn text_series(&mut self, lx: &mut Lexer<'_>, expect: Expect<'_>) -> Result<(), String> {
        let start = lx.pos;
        self.as_expected = self.expected_series(lx, expect);
        if !self.as_expected {
            self.scan_series(lx)?;
        }
        self.text_value(lx, start)
    }

    /// Scans the series text at `lx` (name and label braces) and moves `lx` past it.
    fn scan_series(&mut self, lx: &mut Lexer<'_>) -> Result<(), String> {
        let b = self.buf;
        let start = lx.pos;
        match lx.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':' || c == b'{' => {}
            _ => {
                return Err(format!(
                    "{} is not a valid start token",
                    describe(b, lx.pos)
                ));
            }
        }
        let (end, name) = lex::scan_labels(b, start, Format::Text, |_, _| {})?;
        if name.0 == name.1 {
            return Err(format!(
                "metric name not set while parsing: {:?}",
                String::from_utf8_lossy(span(b, (start, end)))
            ));
        }
        self.name = name;
        self.series = (start, end);
        lx.pos = end;
        Ok(())
    }

    /// The rest of a series line after its series text: value, optional timestamp, newline.
    fn text_value(&mut self, lx: &mut Lexer<'_>, start: usize) -> Result<(), String> {
        let b = self.buf;
        if lx.blanks() == 0 {
            return Err(format!(
                "expected value after metric, got {} while parsing: {:?}",
                describe(b, lx.pos),
                line_text(b, start)
            ));
        }
        let v = lx.token_until_blank();
        if v.0 == v.1 {
            return Err(format!(
                "expected value after metric, got {} while parsing: {:?}",
                describe(b, lx.pos),
                line_text(b, start)
            ));
        }
        self.value = lex::parse_float(span(b, v)).ok_or_else(|| {
            format!(
                "strconv.ParseFloat: parsing {:?}: invalid syntax while parsing: {:?}",
                String::from_utf8_lossy(span(b, v)),
                line_text(b, start)
            )
        })?;
        lx.blanks();
        self.ts = None;
        self.exemplar = None;
        match lx.peek() {
            None | Some(b'\n') => {}
            Some(c) if c.is_ascii_digit() => {
                let t = lx.token_until_blank();
                let ts = span(b, t);
                if !ts.iter().all(u8::is_ascii_digit) {
                    return Err(format!(
                        "invalid timestamp {:?} while parsing: {:?}",
                        String::from_utf8_lossy(ts),
                        line_text(b, start)
                    ));
                }
                let ts = std::str::from_utf8(ts)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(|| {
                        format!("invalid timestamp while parsing: {:?}", line_text(b, start))
                    })?;
                self.ts = Some(ts);
                lx.blanks();
                if !matches!(lx.peek(), None | Some(b'\n')) {
                    return Err(format!(
                        "expected next entry after timestamp, got {} while parsing: {:?}",
                        describe(b, lx.pos),
                        line_text(b, start)
                    ));
                }
            }
            Some(_) => {
                return Err(format!(
                    "expected timestamp or new record, got {} while parsing: {:?}",
                    describe(b, lx.pos),
                    line_text(b, start)
                ));
            }
        }
        lx.eat(b'\n');
        self.set_norm();
        Ok(())
    }
}

/// The line starting at `start`, for error messages (at most 100 bytes).
pub(crate) fn line_text(b: &[u8], start: usize) -> String {
    let rest = b.get(start..).unwrap_or_default();
    let n = rest
        .iter()
        .position(|&c| c == b'\n')
        .unwrap_or(rest.len())
        .min(100);
    String::from_utf8_lossy(rest.get(..n).unwrap_or_default()).into_owned()
}
