//! OpenMetrics 1.0 text, as strict as Prometheus's `openmetricsparse.go`: single spaces, no
//! blank lines, `# EOF` last (newline after it optional), `# UNIT` must be a name suffix,
//! float-second timestamps, exemplars after ` # `. Semantic rules of the spec that Prometheus does
//! not enforce (family grouping, `_total` suffix, counter sign, bucket consistency) are not
//! enforced here either.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::lex::{self, Lexer, describe};
use super::text::line_text;
use super::{Entry, Expect, Format, MetricType, Parser, span};

impl Parser<'_> {
    /// `expect`: see [`Parser::next_expecting`].
    pub(crate) fn next_openmetrics(&mut self, expect: Expect<'_>) -> Result<Option<Entry>, String> {
        let b = self.buf;
        let mut lx = Lexer::new(b, self.pos);
        if self.eof {
            if lx.peek().is_none() {
                return Ok(None);
            }
            return Err("unexpected data after # EOF".into());
        }
        match lx.peek() {
            None => {
                // A zero-length body never reaches a parser (the scrape loop treats it as empty).
                Err("data does not end with # EOF".into())
            }
            Some(b'#') => {
                let e = self.om_meta(&mut lx)?;
                self.pos = lx.pos;
                match e {
                    Some(e) => Ok(Some(e)),
                    None => self.next_openmetrics(expect),
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':' || c == b'{' => {
                self.om_series(&mut lx, expect)?;
                self.pos = lx.pos;
                Ok(Some(Entry::Series))
            }
            Some(_) => Err(format!(
                "{} is not a valid start token",
                describe(b, lx.pos)
            )),
        }
    }

    /// A `#` line. `Ok(None)` after `# EOF`.
    fn om_meta(&mut self, lx: &mut Lexer<'_>) -> Result<Option<Entry>, String> {
        let b = self.buf;
        if lx.eat_str(b"# EOF") {
            match lx.peek() {
                None => {}
                Some(b'\n') => lx.pos += 1,
                Some(_) => return Err("unexpected data after # EOF".into()),
            }
            self.eof = true;
            return Ok(None);
        }
        let kind = if lx.eat_str(b"# HELP ") {
            Entry::Help
        } else if lx.eat_str(b"# TYPE ") {
            Entry::Type
        } else if lx.eat_str(b"# UNIT ") {
            Entry::Unit
        } else {
            return Err(format!(
                "invalid metadata line while parsing: {:?}",
                line_text(b, lx.pos)
            ));
        };
        let name = if lx.peek() == Some(b'"') {
            lx.quoted(false)?
        } else {
            lx.metric_name()
        };
        if name.0 == name.1 {
            return Err(format!(
                "expected metric name in metadata, got {}",
                describe(b, lx.pos)
            ));
        }
        self.meta_name = name;
        let text = match lx.peek() {
            Some(b' ') => {
                lx.pos += 1;
                lx.rest_of_line()
            }
            Some(b'\n') if kind != Entry::Type => (lx.pos, lx.pos),
            _ => {
                return Err(format!(
                    "expected space after metric name in metadata, got {}",
                    describe(b, lx.pos)
                ));
            }
        };
        if !lx.eat(b'\n') {
            return Err("metadata line must end with a newline".into());
        }
        self.meta_text = text;
        let raw = span(b, text);
        match kind {
            Entry::Type => {
                let ty = match raw {
                    b"counter" => MetricType::Counter,
                    b"gauge" => MetricType::Gauge,
                    b"histogram" => MetricType::Histogram,
                    b"gaugehistogram" => MetricType::GaugeHistogram,
                    b"summary" => MetricType::Summary,
                    b"info" => MetricType::Info,
                    b"stateset" => MetricType::StateSet,
                    b"unknown" => MetricType::Unknown,
                    other => {
                        return Err(format!(
                            "invalid metric type {:?}",
                            String::from_utf8_lossy(other)
                        ));
                    }
                };
                self.meta_type = ty;
                self.fam_name = name;
                self.fam_type = ty;
            }
            Entry::Unit => {
                if raw.iter().any(|&c| matches!(c, b' ' | b'\t')) {
                    return Err(format!("invalid unit {:?}", String::from_utf8_lossy(raw)));
                }
                let n = span(b, name);
                let is_suffix = n.len() > raw.len() + 1
                    && n.ends_with(raw)
                    && n.get(n.len() - raw.len() - 1) == Some(&b'_');
                if !raw.is_empty() && !is_suffix {
                    return Err(format!(
                        "unit {:?} not a suffix of metric {:?}",
                        String::from_utf8_lossy(raw),
                        String::from_utf8_lossy(n)
                    ));
                }
            }
            _ => {}
        }
        Ok(Some(kind))
    }

    fn om_series(&mut self, lx: &mut Lexer<'_>, expect: Expect<'_>) -> Result<(), String> {
        let b = self.buf;
        let start = lx.pos;
        self.as_expected = self.expected_series(lx, expect);
        if !self.as_expected {
            let (end, name) = lex::scan_labels(b, start, Format::OpenMetrics, |_, _| {})?;
            if name.0 == name.1 {
                return Err(format!(
                    "metric name not set while parsing: {:?}",
                    line_text(b, start)
                ));
            }
            self.name = name;
            self.series = (start, end);
            lx.pos = end;
        }
        if !lx.eat(b' ') {
            return Err(format!(
                "expected value after metric, got {} while parsing: {:?}",
                describe(b, lx.pos),
                line_text(b, start)
            ));
        }
        let v = lx.token_until_space();
        self.value = lex::parse_float(span(b, v)).ok_or_else(|| {
            format!(
                "strconv.ParseFloat: parsing {:?}: invalid syntax while parsing: {:?}",
                String::from_utf8_lossy(span(b, v)),
                line_text(b, start)
            )
        })?;
        self.ts = None;
        self.exemplar = None;
        if lx.eat(b' ') {
            if lx.peek() != Some(b'#') {
                let t = lx.token_until_space();
                self.ts = Some(lex::om_timestamp(span(b, t))?);
                if lx.eat(b' ') && lx.peek() != Some(b'#') {
                    return Err(format!(
                        "expected exemplar or newline, got {} while parsing: {:?}",
                        describe(b, lx.pos),
                        line_text(b, start)
                    ));
                }
                if lx.peek() == Some(b' ') {
                    return Err("unexpected double space".into());
                }
            }
            if lx.peek() == Some(b'#') {
                self.exemplar = Some(self.om_exemplar(lx, start)?);
            } else if lx.peek() != Some(b'\n') {
                return Err(format!(
                    "expected timestamp or newline, got {} while parsing: {:?}",
                    describe(b, lx.pos),
                    line_text(b, start)
                ));
            }
        }
        if !lx.eat(b'\n') {
            return Err(format!(
                "expected newline after sample, got {} while parsing: {:?}",
                describe(b, lx.pos),
                line_text(b, start)
            ));
        }
        self.set_norm();
        Ok(())
    }

    /// ` # {labels} value [timestamp]`, positioned at `#`; returns the span from `{`.
    fn om_exemplar(&mut self, lx: &mut Lexer<'_>, start: usize) -> Result<(usize, usize), String> {
        let b = self.buf;
        if !lx.eat_str(b"# {") {
            return Err(format!(
                "expected exemplar label set, got {} while parsing: {:?}",
                describe(b, lx.pos),
                line_text(b, start)
            ));
        }
        let ex_start = lx.pos - 1;
        let mut runes = 0usize;
        let (end, _) = lex::scan_labels(b, ex_start, Format::OpenMetrics, |n, v| {
            runes += String::from_utf8_lossy(span(b, n)).chars().count()
                + String::from_utf8_lossy(span(b, (v.0 + 1, v.1.saturating_sub(1))))
                    .chars()
                    .count();
        })?;
        if runes > 128 {
            return Err(format!(
                "exemplar labels have {runes} runes, exceeding the limit of 128"
            ));
        }
        lx.pos = end;
        if !lx.eat(b' ') {
            return Err("expected value after exemplar labels".into());
        }
        let v = lx.token_until_space();
        lex::parse_float(span(b, v)).ok_or_else(|| {
            format!(
                "invalid exemplar value {:?}",
                String::from_utf8_lossy(span(b, v))
            )
        })?;
        if lx.eat(b' ') {
            let t = lx.token_until_space();
            lex::om_timestamp(span(b, t))?;
        }
        Ok((ex_start, lx.pos))
    }
}
