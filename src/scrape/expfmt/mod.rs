//! Zero-copy exposition parsers: Prometheus text format 0.0.4 and OpenMetrics 1.0.
//!
//! [`Parser`] is a cursor over a scrape body. [`Parser::next`] validates one entry and returns
//! its kind; for a series, [`Parser::series`] is the raw series text (metric name plus label
//! braces, exactly the bytes of the body) that the scrape cache is keyed by, and
//! [`Parser::value`]/[`Parser::timestamp`] are already decoded. Labels are only decoded on demand
//! with [`Parser::labels`] (a cache miss), so a steady-state scrape allocates nothing per sample.
//!
//! ```
//! use argus::scrape::expfmt::{Entry, Format, Parser};
//! let mut p = Parser::new(b"# TYPE up gauge\nup{job=\"a\"} 1 1700000000000\n", Format::Text);
//! let mut n = 0;
//! while let Some(e) = p.next() {
//!     if e == Entry::Series {
//!         assert_eq!(p.series(), b"up{job=\"a\"}");
//!         assert_eq!(p.value(), 1.0);
//!         assert_eq!(p.timestamp(), Some(1_700_000_000_000));
//!         n += 1;
//!     }
//! }
//! assert!(p.err().is_none());
//! assert_eq!(n, 1);
//! ```
//!
//! [`Parser::new_strict`] reads the text format by the rules of Go's `expfmt.TextParser` instead
//! (Pushgateway's parser, `strict.rs`); `push::text` assembles pushed families over it.
//!
//! Error wording follows Prometheus's `textparse` where feasible ("expected value after metric,
//! got ...", "data does not end with # EOF", ...).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod lex;
mod openmetrics;
mod strict;
mod text;

use argus_storage::Label;
use std::borrow::Cow;
use std::fmt;

/// The exposition format of a body, chosen from the response's `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0` (or 0.0.1).
    OpenMetrics,
    /// `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
    /// encoding=delimited`: decoded by `scrape::protobuf`, not by [`Parser`] (which yields
    /// nothing for it).
    Protobuf,
}

impl Format {
    /// The format named by a `Content-Type` header value, `None` when unsupported.
    pub fn from_content_type(ct: &str) -> Option<Format> {
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Some(Format::OpenMetrics)
        } else if media.eq_ignore_ascii_case("text/plain") {
            Some(Format::Text)
        } else if media.eq_ignore_ascii_case("application/vnd.google.protobuf")
            && ct.contains("io.prometheus.client.MetricFamily")
        {
            Some(Format::Protobuf)
        } else {
            None
        }
    }
}

/// The kind of entry [`Parser::next`] stopped at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A sample line: [`Parser::series`], [`Parser::value`], [`Parser::timestamp`].
    Series,
    /// `# HELP`: [`Parser::help`].
    Help,
    /// `# TYPE`: [`Parser::metric_type`].
    Type,
    /// `# UNIT` (OpenMetrics): [`Parser::unit`].
    Unit,
    /// Any other comment line (text format only).
    Comment,
}

/// A metric family type, as written in `# TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `gaugehistogram` (OpenMetrics)
    GaugeHistogram,
    /// `summary`
    Summary,
    /// `info` (OpenMetrics)
    Info,
    /// `stateset` (OpenMetrics)
    StateSet,
    /// `untyped` (text) / `unknown` (OpenMetrics); also the type of a family without `# TYPE`.
    #[default]
    Unknown,
}

impl MetricType {
    /// The name Prometheus's metadata API reports (`unknown` for untyped).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// A malformed body. `Display` is the message a failed scrape reports as `lastError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the offending entry.
    pub line: usize,
    /// What was wrong, Prometheus's wording where feasible.
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (line {})", self.msg, self.line)
    }
}

impl std::error::Error for ParseError {}

/// Byte range `[start, end)` of the body.
pub(crate) type Span = (usize, usize);

/// The series text the caller of [`Parser::next_expecting_by`] expects at the next sample line.
#[derive(Clone, Copy)]
pub(crate) struct Expect<'e> {
    /// Its length in bytes (0: nothing expected).
    pub(crate) len: usize,
    /// Whether `len` bytes of the body are it.
    pub(crate) is: &'e dyn Fn(&[u8]) -> bool,
}

/// A cursor over one exposition body; see the module docs.
///
/// Call order: [`Parser::next`] until it returns `None`, then [`Parser::err`] once. Accessors
/// describe the entry the last `next` returned and may be called in any order, any number of
/// times. Not `Sync`-shared; one per scrape (reuse by building a new one, it is cheap).
pub struct Parser<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
    pub(crate) format: Format,
    pub(crate) err: Option<ParseError>,
    pub(crate) done: bool,
    /// OpenMetrics: `# EOF` seen.
    pub(crate) eof: bool,
    // Current series.
    pub(crate) series: Span,
    /// Name token: plain name, or a quoted string (quotes included).
    pub(crate) name: Span,
    pub(crate) value: f64,
    pub(crate) ts: Option<i64>,
    /// Exemplar text after ` # `, OpenMetrics only.
    pub(crate) exemplar: Option<Span>,
    /// Label whose value Prometheus normalises for this series (`le`/`quantile`).
    pub(crate) norm: Option<&'static str>,
    // Current metadata entry.
    pub(crate) meta_name: Span,
    pub(crate) meta_text: Span,
    pub(crate) meta_type: MetricType,
    // The family named by the last `# TYPE`.
    pub(crate) fam_name: Span,
    pub(crate) fam_type: MetricType,
    /// Go `expfmt.TextParser` rules (`strict.rs`) instead of Prometheus's scrape parser's.
    pub(crate) strict: bool,
    /// 1-based line of the current entry (text format; what strict mode reports errors at).
    pub(crate) line: usize,
    /// Strict mode: (name, quoted value) spans of the current series' labels, in order; the
    /// value is `None` while unread (an entry that failed there).
    pub(crate) raw_labels: Vec<(Span, Option<Span>)>,
    /// Strict mode: the entry under way got far enough for the caller's checks to run on it
    /// before the error that stopped it (Go runs them as it reads).
    pub(crate) partial: Option<Entry>,
    /// Strict mode: the current series' value was read.
    pub(crate) value_read: bool,
    /// Strict mode: the entry failed on a label name.
    pub(crate) bad_label_name: bool,
    /// The current series is the one [`Parser::next_expecting`] was told to expect.
    pub(crate) as_expected: bool,
}

impl<'a> Parser<'a> {
    /// A parser over `buf` in `format`.
    pub fn new(buf: &'a [u8], format: Format) -> Self {
        Self {
            buf,
            pos: 0,
            format,
            err: None,
            done: false,
            eof: false,
            series: (0, 0),
            name: (0, 0),
            value: 0.0,
            ts: None,
            exemplar: None,
            norm: None,
            meta_name: (0, 0),
            meta_text: (0, 0),
            meta_type: MetricType::Unknown,
            fam_name: (0, 0),
            fam_type: MetricType::Unknown,
            strict: false,
            line: 0,
            raw_labels: Vec::new(),
            partial: None,
            value_read: false,
            bad_label_name: false,
            as_expected: false,
        }
    }

    /// Advances to the next entry. `None` at the end of the body or on the first error (then
    /// [`Parser::err`] says which).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Entry> {
        self.next_expecting(&[])
    }

    /// [`Parser::next`], told the series text the caller expects next: the text of the series
    /// at the same place in the previous body of the same format (the scrape cache's order).
    /// When a sample line (text or OpenMetrics) starts with exactly those bytes and a blank, its
    /// label braces are not scanned again: they are the bytes of a series text this parser
    /// accepted before, and scanning is deterministic. The result is the same as `next`'s for
    /// every input; `expect` must be a [`Parser::series`] of an earlier body in this format
    /// (anything else may let a malformed series through), or empty.
    pub fn next_expecting(&mut self, expect: &[u8]) -> Option<Entry> {
        self.next_expecting_by(expect.len(), &|b| b == expect)
    }

    /// [`Parser::next_expecting`] for a caller that keeps no copy of the expected series text:
    /// `len` is its length (0: none expected), and `is(bytes)` (called with `len` bytes of the
    /// body, only once the cheap checks passed) says whether they are it. `is` must return true
    /// only for bytes equal to a [`Parser::series`] of an earlier body in this format (the scrape
    /// cache compares a keyed 128-bit hash).
    pub fn next_expecting_by(&mut self, len: usize, is: &dyn Fn(&[u8]) -> bool) -> Option<Entry> {
        let expect = Expect { len, is };
        if self.done {
            return None;
        }
        self.as_expected = false;
        let start = self.pos;
        let r = match self.format {
            Format::Text => self.next_text(expect),
            Format::OpenMetrics => self.next_openmetrics(expect),
            Format::Protobuf => Ok(None),
        };
        match r {
            Ok(Some(e)) => Some(e),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(msg) => {
                self.done = true;
                let line = if self.strict {
                    self.line
                } else {
                    line_of(self.buf, start)
                };
                self.err = Some(ParseError { line, msg });
                None
            }
        }
    }

    /// The error that stopped parsing, if any (sticky).
    pub fn err(&self) -> Option<&ParseError> {
        self.err.as_ref()
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Raw series text of the current [`Entry::Series`]: the metric name and the label braces as
    /// written in the body. Identical text always decodes to identical labels.
    pub fn series(&self) -> &'a [u8] {
        span(self.buf, self.series)
    }

    /// True when the current series text is the `expect` of the [`Parser::next_expecting`]
    /// call that returned it (so the caller need not compare it again).
    pub fn as_expected(&self) -> bool {
        self.as_expected
    }

    /// Sample value of the current series. Every NaN is Prometheus's canonical NaN
    /// (`0x7ff8000000000001`), so a body can never inject a staleness marker.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// Explicit timestamp of the current series in ms, if written.
    pub fn timestamp(&self) -> Option<i64> {
        self.ts
    }

    /// Metric name of the current series (unquoted, unescaped).
    pub fn metric_name(&self) -> Cow<'a, str> {
        lex::decode_name(self.buf, self.name)
    }

    /// Decodes the current series' labels into `dst` (cleared first), `__name__` included,
    /// sorted by name, empty values dropped, `le`/`quantile` normalised as Prometheus stores
    /// them. Errors on duplicate label names and invalid UTF-8.
    pub fn labels(&self, dst: &mut Vec<Label>) -> Result<(), ParseError> {
        dst.clear();
        let err = |msg: String| ParseError {
            line: line_of(self.buf, self.series.0),
            msg,
        };
        let name = lex::decode_name(self.buf, self.name);
        let name = match name {
            Cow::Borrowed(s) => s.to_string(),
            Cow::Owned(s) => s,
        };
        dst.push(Label::new(argus_storage::METRIC_NAME, name));
        let mut bad: Option<String> = None;
        lex::scan_labels(self.buf, self.series.0, self.format, |n, v| {
            if bad.is_some() {
                return;
            }
            let n = lex::decode_name(self.buf, n);
            let mut val = match lex::unquote(self.buf, v) {
                Ok(val) => val,
                Err(e) => {
                    bad = Some(e);
                    return;
                }
            };
            if self.norm == Some(n.as_ref())
                && let Some(f) = lex::parse_float(val.as_bytes())
            {
                val = format_openmetrics_float(f);
            }
            dst.push(Label::new(n.into_owned(), val));
        })
        .map_err(&err)?;
        if let Some(b) = bad {
            return Err(err(b));
        }
        dst.sort_by(|a, b| a.name.cmp(&b.name));
        for w in dst.windows(2) {
            if let [a, b] = w
                && a.name == b.name
            {
                return Err(err(format!(
                    "label name {:?} is not unique: invalid sample",
                    a.name
                )));
            }
        }
        dst.retain(|l| !l.value.is_empty());
        Ok(())
    }

    /// Exemplar of the current series (OpenMetrics), decoded into `labels` (cleared first; values
    /// kept as written, as Prometheus does): `Some((value, timestamp_ms))`.
    pub fn exemplar(&self, labels: &mut Vec<Label>) -> Option<(f64, Option<i64>)> {
        let sp = self.exemplar?;
        labels.clear();
        let mut lx = lex::Lexer::new(self.buf, sp.0);
        let mut ok = true;
        let r = lex::scan_labels(self.buf, sp.0, Format::OpenMetrics, |n, v| {
            let name = lex::decode_name(self.buf, n).into_owned();
            let raw = span(self.buf, (v.0 + 1, v.1.saturating_sub(1)));
            match std::str::from_utf8(raw) {
                Ok(s) => labels.push(Label::new(name, s)),
                Err(_) => ok = false,
            }
        });
        let end = r.ok()?.0;
        lx.pos = end;
        if !ok || !lx.eat(b' ') {
            return None;
        }
        let v = lx.token_until_space();
        let value = lex::parse_float(span(self.buf, v))?;
        let ts = if lx.eat(b' ') {
            let t = lx.token_until_space();
            Some(lex::om_timestamp(span(self.buf, t)).ok()?)
        } else {
            None
        };
        Some((value, ts))
    }

    /// `# HELP` of the current entry: (metric name, unescaped text).
    pub fn help(&self) -> (Cow<'a, str>, Cow<'a, str>) {
        let name = lex::decode_name(self.buf, self.meta_name);
        let text = span(self.buf, self.meta_text);
        (name, lex::unescape_help(text, self.format))
    }

    /// `# TYPE` of the current entry: (metric name, type).
    pub fn metric_type(&self) -> (Cow<'a, str>, MetricType) {
        (lex::decode_name(self.buf, self.meta_name), self.meta_type)
    }

    /// `# UNIT` of the current entry: (metric name, unit).
    pub fn unit(&self) -> (Cow<'a, str>, Cow<'a, str>) {
        (
            lex::decode_name(self.buf, self.meta_name),
            String::from_utf8_lossy(span(self.buf, self.meta_text)),
        )
    }

    /// The current metadata entry (after [`Entry::Help`], [`Entry::Type`] or [`Entry::Unit`])
    /// as positions in the body, to decode later with [`Meta::decode`] or to compare.
    pub fn meta(&self, kind: Entry) -> Meta {
        Meta {
            kind,
            name: self.meta_name,
            text: self.meta_text,
            ty: self.meta_type,
        }
    }

    /// Sets `norm` for the series just parsed, from the last `# TYPE`.
    pub(crate) fn set_norm(&mut self) {
        self.norm = None;
        let fam = span(self.buf, self.fam_name);
        let name = span(self.buf, self.name);
        if fam.is_empty() || !name.starts_with(fam) {
            return;
        }
        let suffix = name.get(fam.len()..).unwrap_or_default();
        self.norm = match self.fam_type {
            MetricType::Histogram | MetricType::GaugeHistogram if suffix == b"_bucket" => {
                Some("le")
            }
            MetricType::Summary if suffix.is_empty() => Some("quantile"),
            _ => None,
        };
    }
}

/// A metadata entry of a body, by position: see [`Parser::meta`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    kind: Entry,
    name: Span,
    text: Span,
    ty: MetricType,
}

impl Meta {
    /// Feeds what the entry says (its kind, name and text bytes, type) to `h`.
    pub fn hash_into(&self, body: &[u8], h: &mut impl std::hash::Hasher) {
        h.write_u8(self.kind as u8);
        h.write_u8(self.ty as u8);
        h.write(span(body, self.name));
        if self.kind != Entry::Type {
            h.write(span(body, self.text));
        }
    }

    /// (metric name, text): the help text for [`Entry::Help`], the type's name for
    /// [`Entry::Type`], the unit for [`Entry::Unit`]. `body` and `format` are the parser's.
    pub fn decode<'b>(&self, body: &'b [u8], format: Format) -> (Cow<'b, str>, Cow<'b, str>) {
        let name = lex::decode_name(body, self.name);
        let text = match self.kind {
            Entry::Help => lex::unescape_help(span(body, self.text), format),
            Entry::Type => Cow::Borrowed(self.ty.as_str()),
            _ => String::from_utf8_lossy(span(body, self.text)),
        };
        (name, text)
    }

    /// The entry's kind.
    pub fn kind(&self) -> Entry {
        self.kind
    }
}

/// `buf[sp.0..sp.1]`, empty when out of range (never panics).
pub(crate) fn span(buf: &[u8], sp: Span) -> &[u8] {
    buf.get(sp.0..sp.1).unwrap_or_default()
}

fn line_of(buf: &[u8], pos: usize) -> usize {
    1 + buf
        .get(..pos)
        .unwrap_or(buf)
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Formats `f` as Go's `strconv.FormatFloat(f, 'g', -1, 64)` plus `.0` when the result has no
/// `.`/`e`: Prometheus's spelling of normalised `le`/`quantile` values.
pub fn format_openmetrics_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let mut s = go_format_g(f);
    if !s.contains(['.', 'e', 'E']) {
        s.push_str(".0");
    }
    s
}

/// Go's shortest `'g'` formatting: shortest round-tripping digits, `%e` (two-digit exponent at
/// least) when the decimal exponent is < -4 or >= 6 (Go uses precision 6 for that decision in
/// shortest mode), `%f` otherwise.
fn go_format_g(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, like Go's shortest mode.
    let e = format!("{:e}", f.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let nd = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        // %e with at least two exponent digits.
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
        return out;
    }
    let dp = exp + 1;
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..-dp {
            out.push('0');
        }
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        for _ in 0..(dp - nd) {
            out.push('0');
        }
    } else {
        let (a, b) = digits.split_at(usize::try_from(dp).unwrap_or(0));
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    }
    out
}

#[cfg(test)]
mod tests;
