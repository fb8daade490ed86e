//! Text format 0.0.4 with the acceptance rules of Go's `expfmt.TextParser` (what Pushgateway
//! parses pushes with), as a mode of the same cursor: [`Parser::new_strict`].
//!
//! Where Go is stricter than Prometheus's scrape parser: every line ends in `\n`; names are
//! legacy (no quoted names, no `{` first); label values have only the `\\`, `\"`, `\n` escapes
//! and no raw newline; HELP has the same three escapes; a blank after the value asks for a
//! timestamp, and nothing may follow one. Where Go is looser: no blank is needed between `}` and the value, or between a
//! name and a value that is not a float (the value is then refused as a float); timestamps may
//! carry a sign; TYPE is any case (the text is handed on raw, the caller names the type); a
//! HELP/TYPE line with a name and no text names the family without describing it (an empty
//! [`Parser::meta_raw`]). Every error names the line (Go's count) and uses Go's wording; where a
//! line is cut short by the end of the body, the error is Go's "unexpected end of input stream".
//!
//! Checks that need the family (`__name__`, duplicate labels, `quantile`/`le` floats, a second
//! HELP or TYPE) belong to the caller, which assembles families (`push::text`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::lex::Lexer;
use super::{Entry, Parser, Span, span};

/// Go's error for a line cut short by the end of the body.
const EOF: &str = "unexpected end of input stream";

impl<'a> Parser<'a> {
    /// A cursor over `buf` (text format) with the rules of Go's `expfmt.TextParser`; see
    /// `strict.rs`. Accessors as for [`Parser::new`], plus the raw label list of a series
    /// (`raw_labels`) and the raw text of HELP/TYPE (`meta_raw`).
    pub fn new_strict(buf: &'a [u8]) -> Self {
        let mut p = Self::new(buf, super::Format::Text);
        p.strict = true;
        p
    }

    /// Strict mode: 1-based line of the current entry (Go's line count).
    pub(crate) fn line(&self) -> usize {
        self.line
    }

    /// Strict mode: the raw text of the current HELP (escapes kept) or TYPE; empty when the line
    /// names the family without a text.
    pub(crate) fn meta_raw(&self) -> &'a [u8] {
        span(self.buf, self.meta_text)
    }

    /// Strict mode: the labels of the current series in written order, as (name, value); the
    /// value unescaped, or `Err` with it lossily decoded when it is not UTF-8; `None` when the
    /// entry failed before the value was read.
    pub(crate) fn raw_labels(
        &self,
    ) -> impl Iterator<Item = (&'a str, Option<Result<String, String>>)> + '_ {
        self.raw_labels.iter().map(|&(n, v)| {
            let name = std::str::from_utf8(span(self.buf, n)).unwrap_or_default();
            let value = v.map(|v| {
                let raw = unescape(span(self.buf, (v.0 + 1, v.1.saturating_sub(1))));
                String::from_utf8(raw).map_err(|e| String::from_utf8_lossy(e.as_bytes()).into())
            });
            (name, value)
        })
    }

    /// Strict mode, after an error: the kind of the entry that failed when it got far enough for
    /// the caller's own checks, which Go makes as it reads and so reports first (a series with
    /// its name read; a HELP or TYPE with its name and the start of its text).
    pub(crate) fn partial(&self) -> Option<Entry> {
        self.partial
    }

    /// Strict mode: the current series' value was read (false only for a failed entry).
    pub(crate) fn value_read(&self) -> bool {
        self.value_read
    }

    /// Strict mode, after an error: it was an invalid label name (Go names the family in the
    /// message, which the caller knows).
    pub(crate) fn bad_label_name(&self) -> bool {
        self.bad_label_name
    }

    /// Strict mode: the current HELP text unescaped (`\\`, `\n`, `\"`), lossily decoded.
    pub(crate) fn help_text(&self) -> String {
        String::from_utf8_lossy(&unescape(self.meta_raw())).into_owned()
    }

    pub(crate) fn strict_comment(&mut self, lx: &mut Lexer<'a>) -> Result<Entry, String> {
        let b = self.buf;
        blanks(lx)?;
        let keyword = span(b, lx.token_until_blank());
        if lx.peek().is_none() {
            return Err(EOF.into());
        }
        let kind = match keyword {
            b"HELP" => Entry::Help,
            b"TYPE" => Entry::Type,
            _ => {
                lx.rest_of_line();
                return newline(lx).map(|()| Entry::Comment);
            }
        };
        if lx.eat(b'\n') {
            return Ok(Entry::Comment);
        }
        blanks(lx)?;
        let name = lx.metric_name();
        match lx.peek() {
            None => return Err(EOF.into()),
            Some(b'\n') => {
                lx.pos += 1;
                return Ok(Entry::Comment);
            }
            Some(b' ' | b'\t') => {}
            Some(_) => return Err("invalid metric name in comment".into()),
        }
        self.meta_name = name;
        blanks(lx)?;
        if lx.peek() != Some(b'\n') {
            self.partial = Some(kind);
        }
        let start = lx.pos;
        if kind == Entry::Help {
            // Go checks the escapes as it reads them, so a bad one is reported before the end.
            while let Some(c) = lx.peek() {
                match c {
                    b'\n' => break,
                    b'\\' => {
                        lx.pos += 1;
                        escape(lx)?;
                    }
                    _ => lx.pos += 1,
                }
            }
            self.meta_text = (start, lx.pos);
        } else {
            self.meta_text = lx.rest_of_line();
        }
        newline(lx)?;
        Ok(kind)
    }

    pub(crate) fn strict_series(&mut self, lx: &mut Lexer<'a>) -> Result<(), String> {
        let b = self.buf;
        let start = lx.pos;
        let name = lx.metric_name();
        if name.0 == name.1 {
            return Err("invalid metric name".into());
        }
        self.name = name;
        self.raw_labels.clear();
        self.partial = Some(Entry::Series);
        self.value_read = false;
        self.bad_label_name = false;
        if matches!(lx.peek(), Some(b' ' | b'\t')) {
            blanks(lx)?;
        }
        if lx.eat(b'{') {
            loop {
                blanks(lx)?;
                if lx.eat(b'}') {
                    blanks(lx)?;
                    break;
                }
                let label = lx.label_name();
                if label.0 == label.1 {
                    self.bad_label_name = true;
                    return Err(format!(
                        "invalid label name for metric {:?}",
                        String::from_utf8_lossy(span(b, name))
                    ));
                }
                if matches!(lx.peek(), Some(b' ' | b'\t')) {
                    blanks(lx)?;
                }
                match lx.peek() {
                    None => return Err(EOF.into()),
                    Some(b'=') => lx.pos += 1,
                    Some(c) => {
                        return Err(format!(
                            "expected '=' after label name, found {:?}",
                            char::from(c)
                        ));
                    }
                }
                self.raw_labels.push((label, None));
                blanks(lx)?;
                let value = quoted(lx)?;
                if let Some(last) = self.raw_labels.last_mut() {
                    last.1 = Some(value);
                }
                blanks(lx)?;
                match lx.peek() {
                    Some(b',') => lx.pos += 1,
                    Some(b'}') => {
                        lx.pos += 1;
                        blanks(lx)?;
                        break;
                    }
                    _ => {
                        let v = unescape(span(b, (value.0 + 1, value.1.saturating_sub(1))));
                        return Err(format!(
                            "unexpected end of label value {:?}",
                            String::from_utf8_lossy(&v)
                        ));
                    }
                }
            }
        }
        self.series = (start, lx.pos);
        let v = span(b, lx.token_until_blank());
        if lx.peek().is_none() {
            return Err(EOF.into());
        }
        let text = std::str::from_utf8(v).unwrap_or_default();
        self.value = argus_query::gofloat::parse(text)
            .ok_or_else(|| format!("expected float as value, got {text:?}"))?;
        self.value_read = true;
        self.ts = None;
        if lx.eat(b'\n') {
            return Ok(());
        }
        blanks(lx)?;
        let t = span(b, lx.token_until_blank());
        if lx.peek().is_none() {
            return Err(EOF.into());
        }
        let text = std::str::from_utf8(t).unwrap_or_default();
        self.ts = Some(
            text.parse::<i64>()
                .map_err(|_| format!("expected integer as timestamp, got {text:?}"))?,
        );
        // Go reads the rest of the line without escapes, dropping every backslash.
        let rest: Vec<u8> = span(b, lx.rest_of_line())
            .iter()
            .copied()
            .filter(|&c| c != b'\\')
            .collect();
        newline(lx)?;
        if !rest.is_empty() {
            return Err(format!(
                "spurious string after timestamp: {:?}",
                String::from_utf8_lossy(&rest)
            ));
        }
        Ok(())
    }
}

/// Skips blanks, as Go's `skipBlankTab` after the current byte: the line must go on.
fn blanks(lx: &mut Lexer<'_>) -> Result<(), String> {
    lx.blanks();
    match lx.peek() {
        None => Err(EOF.into()),
        Some(_) => Ok(()),
    }
}

/// Consumes the `\n` ending a line; the end of the body instead is Go's error.
fn newline(lx: &mut Lexer<'_>) -> Result<(), String> {
    if lx.eat(b'\n') {
        Ok(())
    } else {
        Err(EOF.into())
    }
}

/// After a backslash: one of Go's three escapes.
fn escape(lx: &mut Lexer<'_>) -> Result<(), String> {
    match lx.peek() {
        None => Err(EOF.into()),
        Some(b'\\' | b'"' | b'n') => {
            lx.pos += 1;
            Ok(())
        }
        Some(c) => Err(format!("invalid escape sequence '\\{}'", char::from(c))),
    }
}

/// A label value at `"`: the span including both quotes.
fn quoted(lx: &mut Lexer<'_>) -> Result<Span, String> {
    let start = lx.pos;
    match lx.peek() {
        None => return Err(EOF.into()),
        Some(b'"') => lx.pos += 1,
        Some(c) => {
            return Err(format!(
                "expected '\"' at start of label value, found {:?}",
                char::from(c)
            ));
        }
    }
    loop {
        match lx.peek() {
            None => return Err(EOF.into()),
            Some(b'"') => {
                lx.pos += 1;
                return Ok((start, lx.pos));
            }
            Some(b'\\') => {
                lx.pos += 1;
                escape(lx)?;
            }
            Some(b'\n') => {
                let v = unescape(span(lx.b, (start + 1, lx.pos)));
                return Err(format!(
                    "label value {:?} contains unescaped new-line",
                    String::from_utf8_lossy(&v)
                ));
            }
            Some(_) => lx.pos += 1,
        }
    }
}

/// Undoes the escapes of a text already checked by [`escape`].
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&c) = it.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some(b'n') => out.push(b'\n'),
            Some(&o) => out.push(o),
            None => {}
        }
    }
    out
}
