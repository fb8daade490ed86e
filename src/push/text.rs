//! Text exposition format 0.0.4 decoder for push bodies, with the acceptance rules of the
//! `expfmt` text parser Pushgateway uses (legacy names, every line ends in `\n`, one HELP and one
//! TYPE per name, TYPE before samples, `quantile`/`le` folded into summaries/histograms, empty
//! families dropped).
//!
//! NOTE: this duplicates part of `scrape::expfmt` on purpose (the push path needs the client-model
//! structs, presence of timestamps and Pushgateway's exact error cases); unify later.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::expose::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile,
    Summary, Untyped,
};
use std::collections::HashMap;

/// A text-format parse error: line number (1-based) and message, displayed as `expfmt` does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("text format parsing error in line {line}: {msg}")]
pub struct TextError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub msg: String,
}

/// Signals end of input inside the state machine.
struct Eof;

type Step = Result<State, Stop>;

enum Stop {
    Eof,
    Err(String),
}

impl From<Eof> for Stop {
    fn from(_: Eof) -> Self {
        Stop::Eof
    }
}

#[derive(Clone, Copy)]
enum State {
    StartOfLine,
    Comment,
    MetricName,
    Labels,
    LabelName,
    LabelValue,
    Value,
    Timestamp,
    Help,
    Type,
    Done,
}

#[derive(Clone, Copy, Default)]
struct Suffix {
    summary_count: bool,
    summary_sum: bool,
    hist_count: bool,
    hist_sum: bool,
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    cur: u8,
    line: usize,
    token: Vec<u8>,
    families: Vec<MetricFamily>,
    by_name: HashMap<String, usize>,
    /// (family index, label signature without quantile/le) → metric index, for summaries and
    /// histograms assembled from several lines.
    compound: HashMap<(usize, Vec<(String, String)>), usize>,
    cur_mf: Option<usize>,
    cur_metric: Metric,
    cur_metric_idx: Option<usize>,
    cur_labels: Vec<LabelPair>,
    cur_pair_name: String,
    cur_sig: Vec<(String, String)>,
    cur_quantile: f64,
    cur_bucket: f64,
    suffix: Suffix,
}

/// Parses a whole text body into families, in order of first appearance.
pub fn parse_text(src: &[u8]) -> Result<Vec<MetricFamily>, TextError> {
    let mut p = Parser {
        src,
        pos: 0,
        cur: 0,
        line: 0,
        token: Vec::new(),
        families: Vec::new(),
        by_name: HashMap::new(),
        compound: HashMap::new(),
        cur_mf: None,
        cur_metric: Metric::default(),
        cur_metric_idx: None,
        cur_labels: Vec::new(),
        cur_pair_name: String::new(),
        cur_sig: Vec::new(),
        cur_quantile: f64::NAN,
        cur_bucket: f64::NAN,
        suffix: Suffix::default(),
    };
    let mut state = State::StartOfLine;
    loop {
        let step = match state {
            State::StartOfLine => p.start_of_line(),
            State::Comment => p.comment(),
            State::MetricName => p.metric_name(),
            State::Labels => p.labels(),
            State::LabelName => p.label_name(),
            State::LabelValue => p.label_value(),
            State::Value => p.value(),
            State::Timestamp => p.timestamp(),
            State::Help => p.help(),
            State::Type => p.type_line(),
            State::Done => break,
        };
        match step {
            Ok(s) => state = s,
            Err(Stop::Eof) => {
                return Err(TextError {
                    line: p.line,
                    msg: "unexpected end of input stream".into(),
                });
            }
            Err(Stop::Err(msg)) => return Err(TextError { line: p.line, msg }),
        }
    }
    p.families.retain(|f| !f.metric.is_empty());
    Ok(p.families)
}

fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn label_cont(b: u8) -> bool {
    label_start(b) || b.is_ascii_digit()
}

/// Parses a float as Go's `strconv.ParseFloat` does for the forms exposition uses (decimal,
/// exponent, `Inf`/`Infinity`/`NaN` in any case with optional sign). Rejects `p`, `P`, `_`.
pub fn parse_float(s: &str) -> Option<f64> {
    argus_query::gofloat::parse(s)
}

impl Parser<'_> {
    fn read(&mut self) -> Result<u8, Eof> {
        match self.src.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                self.cur = b;
                Ok(b)
            }
            None => Err(Eof),
        }
    }

    fn skip_blank(&mut self) -> Result<(), Eof> {
        loop {
            if !blank(self.read()?) {
                return Ok(());
            }
        }
    }

    fn skip_blank_if_blank(&mut self) -> Result<(), Eof> {
        if blank(self.cur) {
            self.skip_blank()?;
        }
        Ok(())
    }

    fn token_str(&self) -> Result<String, Stop> {
        String::from_utf8(self.token.clone()).map_err(|_| Stop::Err("invalid UTF-8".into()))
    }

    fn token_until_whitespace(&mut self) -> Result<(), Eof> {
        self.token.clear();
        while !blank(self.cur) && self.cur != b'\n' {
            self.token.push(self.cur);
            self.read()?;
        }
        Ok(())
    }

    fn token_until_newline(&mut self, escapes: bool) -> Result<(), Stop> {
        self.token.clear();
        let mut escaped = false;
        loop {
            if escapes && escaped {
                match self.cur {
                    b'\\' => self.token.push(b'\\'),
                    b'n' => self.token.push(b'\n'),
                    b'"' => self.token.push(b'"'),
                    c => {
                        return Err(Stop::Err(format!(
                            "invalid escape sequence '\\{}'",
                            char::from(c)
                        )));
                    }
                }
                escaped = false;
            } else {
                match self.cur {
                    b'\n' => return Ok(()),
                    b'\\' => escaped = true,
                    c => self.token.push(c),
                }
            }
            self.read()?;
        }
    }

    fn token_metric_name(&mut self) -> Result<(), Eof> {
        self.token.clear();
        if !(label_start(self.cur) || self.cur == b':') {
            return Ok(());
        }
        loop {
            self.token.push(self.cur);
            self.read()?;
            if !(label_cont(self.cur) || self.cur == b':') {
                return Ok(());
            }
        }
    }

    fn token_label_name(&mut self) -> Result<(), Eof> {
        self.token.clear();
        if !label_start(self.cur) {
            return Ok(());
        }
        loop {
            self.token.push(self.cur);
            self.read()?;
            if !label_cont(self.cur) {
                return Ok(());
            }
        }
    }

    fn token_label_value(&mut self) -> Result<(), Stop> {
        self.token.clear();
        let mut escaped = false;
        loop {
            let b = self.read()?;
            if escaped {
                match b {
                    b'"' | b'\\' => self.token.push(b),
                    b'n' => self.token.push(b'\n'),
                    c => {
                        return Err(Stop::Err(format!(
                            "invalid escape sequence '\\{}'",
                            char::from(c)
                        )));
                    }
                }
                escaped = false;
                continue;
            }
            match b {
                b'"' => return Ok(()),
                b'\n' => {
                    return Err(Stop::Err(format!(
                        "label value {:?} contains unescaped new-line",
                        String::from_utf8_lossy(&self.token)
                    )));
                }
                b'\\' => escaped = true,
                c => self.token.push(c),
            }
        }
    }

    fn family(&mut self) -> Result<&mut MetricFamily, Stop> {
        let idx = self
            .cur_mf
            .ok_or_else(|| Stop::Err("invalid metric name".into()))?;
        self.families
            .get_mut(idx)
            .ok_or_else(|| Stop::Err("BUG: family index out of range".into()))
    }

    fn family_kind(&self) -> MetricType {
        self.cur_mf
            .and_then(|i| self.families.get(i))
            .filter(|f| f.r#type.is_some())
            .map_or(MetricType::Untyped, MetricFamily::kind)
    }

    fn family_has_type(&self) -> bool {
        self.cur_mf
            .and_then(|i| self.families.get(i))
            .is_some_and(|f| f.r#type.is_some())
    }

    fn set_or_create_family(&mut self) -> Result<(), Stop> {
        self.suffix = Suffix::default();
        let name = self.token_str()?;
        if !argus_query::names::is_legacy_metric_name(&name) {
            return Err(Stop::Err(format!("invalid metric name {name:?}")));
        }
        if let Some(&i) = self.by_name.get(&name) {
            self.cur_mf = Some(i);
            return Ok(());
        }
        let is_count = name.len() > 6 && name.ends_with("_count");
        let is_sum = name.len() > 4 && name.ends_with("_sum");
        let is_bucket = name.len() > 7 && name.ends_with("_bucket");
        let summary_name = if is_count {
            name.get(..name.len() - 6)
        } else if is_sum {
            name.get(..name.len() - 4)
        } else {
            None
        };
        if let Some(&i) = summary_name.and_then(|n| self.by_name.get(n))
            && self.families.get(i).map(|f| f.r#type) == Some(Some(MetricType::Summary as i32))
        {
            self.cur_mf = Some(i);
            self.suffix.summary_count = is_count;
            self.suffix.summary_sum = is_sum;
            return Ok(());
        }
        let hist_name = if is_bucket {
            name.get(..name.len() - 7)
        } else {
            summary_name
        };
        if let Some(&i) = hist_name.and_then(|n| self.by_name.get(n))
            && matches!(
                self.families.get(i).and_then(|f| f.r#type),
                Some(t) if t == MetricType::Histogram as i32 || t == MetricType::GaugeHistogram as i32
            )
        {
            self.cur_mf = Some(i);
            self.suffix.hist_count = is_count;
            self.suffix.hist_sum = is_sum;
            return Ok(());
        }
        self.by_name.insert(name.clone(), self.families.len());
        self.cur_mf = Some(self.families.len());
        self.families.push(MetricFamily {
            name: Some(name),
            ..Default::default()
        });
        Ok(())
    }

    fn start_of_line(&mut self) -> Step {
        self.line += 1;
        if self.skip_blank().is_err() {
            return Ok(State::Done);
        }
        Ok(match self.cur {
            b'#' => State::Comment,
            b'\n' => State::StartOfLine,
            _ => State::MetricName,
        })
    }

    fn comment(&mut self) -> Step {
        self.skip_blank()?;
        if self.cur == b'\n' {
            return Ok(State::StartOfLine);
        }
        self.token_until_whitespace()?;
        if self.cur == b'\n' {
            return Ok(State::StartOfLine);
        }
        let keyword = self.token.clone();
        if keyword != b"HELP" && keyword != b"TYPE" {
            while self.cur != b'\n' {
                self.read()?;
            }
            return Ok(State::StartOfLine);
        }
        self.skip_blank()?;
        self.token_metric_name()?;
        if self.cur == b'\n' {
            return Ok(State::StartOfLine);
        }
        if !blank(self.cur) {
            return Err(Stop::Err("invalid metric name in comment".into()));
        }
        self.set_or_create_family()?;
        self.skip_blank()?;
        if self.cur == b'\n' {
            return Ok(State::StartOfLine);
        }
        Ok(if keyword == b"HELP" {
            State::Help
        } else {
            State::Type
        })
    }

    fn help(&mut self) -> Step {
        if self.family()?.help.is_some() {
            let name = self.family()?.name().to_string();
            return Err(Stop::Err(format!(
                "second HELP line for metric name {name:?}"
            )));
        }
        self.token_until_newline(true)?;
        let help = String::from_utf8_lossy(&self.token).into_owned();
        self.family()?.help = Some(help);
        Ok(State::StartOfLine)
    }

    fn type_line(&mut self) -> Step {
        if self.family()?.r#type.is_some() {
            let name = self.family()?.name().to_string();
            return Err(Stop::Err(format!(
                "second TYPE line for metric name {name:?}, or TYPE reported after samples"
            )));
        }
        self.token_until_newline(false)?;
        let raw = String::from_utf8_lossy(&self.token).into_owned();
        let kind = match raw.to_ascii_uppercase().as_str() {
            "COUNTER" => MetricType::Counter,
            "GAUGE" => MetricType::Gauge,
            "SUMMARY" => MetricType::Summary,
            "UNTYPED" => MetricType::Untyped,
            "HISTOGRAM" => MetricType::Histogram,
            "GAUGE_HISTOGRAM" | "GAUGEHISTOGRAM" => MetricType::GaugeHistogram,
            _ => return Err(Stop::Err(format!("unknown metric type {raw:?}"))),
        };
        self.family()?.r#type = Some(kind as i32);
        Ok(State::StartOfLine)
    }

    fn metric_name(&mut self) -> Step {
        self.token_metric_name()?;
        if self.token.is_empty() {
            return Err(Stop::Err("invalid metric name".into()));
        }
        self.set_or_create_family()?;
        if !self.family_has_type() {
            self.family()?.r#type = Some(MetricType::Untyped as i32);
        }
        self.cur_metric = Metric::default();
        self.cur_metric_idx = None;
        self.cur_labels.clear();
        self.skip_blank_if_blank()?;
        Ok(State::Labels)
    }

    fn compound(&self) -> bool {
        matches!(
            self.family_kind(),
            MetricType::Summary | MetricType::Histogram | MetricType::GaugeHistogram
        )
    }

    fn labels(&mut self) -> Step {
        if self.compound() {
            self.cur_sig.clear();
            self.cur_quantile = f64::NAN;
            self.cur_bucket = f64::NAN;
        }
        if self.cur != b'{' {
            return Ok(State::Value);
        }
        Ok(State::LabelName)
    }

    fn label_name(&mut self) -> Step {
        self.skip_blank()?;
        if self.cur == b'}' {
            self.cur_metric.label.append(&mut self.cur_labels);
            self.skip_blank()?;
            return Ok(State::Value);
        }
        self.token_label_name()?;
        let family_name = self.family()?.name().to_string();
        if self.token.is_empty() {
            return Err(Stop::Err(format!(
                "invalid label name for metric {family_name:?}"
            )));
        }
        self.skip_blank_if_blank()?;
        if self.cur != b'=' {
            return Err(Stop::Err(format!(
                "expected '=' after label name, found {:?}",
                char::from(self.cur)
            )));
        }
        let name = self.token_str()?;
        if name == "__name__" {
            return Err(Stop::Err("label name \"__name__\" is reserved".into()));
        }
        let kind = self.family_kind();
        let folded = (kind == MetricType::Summary && name == "quantile")
            || (matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram) && name == "le");
        let dup = self
            .cur_labels
            .iter()
            .any(|l| l.name.as_deref() == Some(name.as_str()));
        if !folded {
            if dup {
                return Err(Stop::Err(format!(
                    "duplicate label names for metric {family_name:?}"
                )));
            }
            self.cur_labels.push(LabelPair {
                name: Some(name.clone()),
                value: None,
            });
        }
        self.cur_pair_name = name;
        Ok(State::LabelValue)
    }

    fn label_value(&mut self) -> Step {
        self.skip_blank()?;
        if self.cur != b'"' {
            return Err(Stop::Err(format!(
                "expected '\"' at start of label value, found {:?}",
                char::from(self.cur)
            )));
        }
        self.token_label_value()?;
        let value = String::from_utf8(self.token.clone()).map_err(|_| {
            Stop::Err(format!(
                "invalid label value {:?}",
                String::from_utf8_lossy(&self.token)
            ))
        })?;
        let kind = self.family_kind();
        let name = self.cur_pair_name.clone();
        let is_quantile = kind == MetricType::Summary && name == "quantile";
        let is_le =
            matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram) && name == "le";
        if is_quantile {
            self.cur_quantile = parse_float(&value).ok_or_else(|| {
                Stop::Err(format!(
                    "expected float as value for 'quantile' label, got {value:?}"
                ))
            })?;
        } else if is_le {
            self.cur_bucket = parse_float(&value).ok_or_else(|| {
                Stop::Err(format!(
                    "expected float as value for 'le' label, got {value:?}"
                ))
            })?;
        } else {
            if self.compound() {
                self.cur_sig.push((name, value.clone()));
            }
            if let Some(last) = self.cur_labels.last_mut() {
                last.value = Some(value.clone());
            }
        }
        self.skip_blank()?;
        match self.cur {
            b',' => Ok(State::LabelName),
            b'}' => {
                self.cur_metric.label.append(&mut self.cur_labels);
                self.skip_blank()?;
                Ok(State::Value)
            }
            _ => Err(Stop::Err(format!(
                "unexpected end of label value {value:?}"
            ))),
        }
    }

    fn value(&mut self) -> Step {
        let fam = self
            .cur_mf
            .ok_or_else(|| Stop::Err("invalid metric name".into()))?;
        let kind = self.family_kind();
        let compound = self.compound();
        // Attach the metric to its family (or find the summary/histogram it continues).
        if compound {
            let mut sig = self.cur_sig.clone();
            sig.sort();
            match self.compound.get(&(fam, sig.clone())) {
                Some(&i) => self.cur_metric_idx = Some(i),
                None => {
                    let m = std::mem::take(&mut self.cur_metric);
                    let f = self.family()?;
                    f.metric.push(m);
                    let i = f.metric.len() - 1;
                    self.compound.insert((fam, sig), i);
                    self.cur_metric_idx = Some(i);
                }
            }
        } else {
            let m = std::mem::take(&mut self.cur_metric);
            let f = self.family()?;
            f.metric.push(m);
            self.cur_metric_idx = Some(f.metric.len() - 1);
        }
        self.token_until_whitespace()?;
        let raw = self.token_str().unwrap_or_default();
        let value = parse_float(&raw)
            .ok_or_else(|| Stop::Err(format!("expected float as value, got {raw:?}")))?;
        let suffix = self.suffix;
        let (q, b) = (self.cur_quantile, self.cur_bucket);
        let name = self.family()?.name().to_string();
        let m = self.metric_mut()?;
        match kind {
            MetricType::Counter => {
                m.counter = Some(Counter {
                    value: Some(value),
                    ..Default::default()
                })
            }
            MetricType::Gauge => m.gauge = Some(Gauge { value: Some(value) }),
            MetricType::Untyped => m.untyped = Some(Untyped { value: Some(value) }),
            MetricType::Summary => {
                let s = m.summary.get_or_insert_with(Summary::default);
                if suffix.summary_count {
                    s.sample_count = Some(go_f64_to_u64(value));
                } else if suffix.summary_sum {
                    s.sample_sum = Some(value);
                } else if !q.is_nan() {
                    s.quantile.push(Quantile {
                        quantile: Some(q),
                        value: Some(value),
                    });
                }
            }
            MetricType::Histogram | MetricType::GaugeHistogram => {
                let h = m.histogram.get_or_insert_with(Histogram::default);
                let as_int = go_f64_to_u64(value);
                let exact = value == as_int as f64;
                if suffix.hist_count {
                    if exact {
                        h.sample_count = Some(as_int);
                    } else if value < 0.0 {
                        return Err(Stop::Err(format!("negative count for histogram {name:?}")));
                    } else {
                        h.sample_count_float = Some(value);
                    }
                } else if suffix.hist_sum {
                    h.sample_sum = Some(value);
                } else if !b.is_nan() {
                    let mut bucket = Bucket {
                        upper_bound: Some(b),
                        ..Default::default()
                    };
                    if exact {
                        bucket.cumulative_count = Some(as_int);
                    } else if value < 0.0 {
                        return Err(Stop::Err(format!(
                            "negative bucket population for histogram {name:?}"
                        )));
                    } else {
                        bucket.cumulative_count_float = Some(value);
                    }
                    h.bucket.push(bucket);
                }
            }
        }
        if self.cur == b'\n' {
            return Ok(State::StartOfLine);
        }
        Ok(State::Timestamp)
    }

    fn metric_mut(&mut self) -> Result<&mut Metric, Stop> {
        let i = self
            .cur_metric_idx
            .ok_or_else(|| Stop::Err("BUG: no current metric".into()))?;
        self.family()?
            .metric
            .get_mut(i)
            .ok_or_else(|| Stop::Err("BUG: metric index out of range".into()))
    }

    fn timestamp(&mut self) -> Step {
        self.skip_blank()?;
        self.token_until_whitespace()?;
        let raw = self.token_str().unwrap_or_default();
        let ts = raw
            .parse::<i64>()
            .ok()
            .ok_or_else(|| Stop::Err(format!("expected integer as timestamp, got {raw:?}")))?;
        self.metric_mut()?.timestamp_ms = Some(ts);
        self.token_until_newline(false)?;
        if !self.token.is_empty() {
            return Err(Stop::Err(format!(
                "spurious string after timestamp: {:?}",
                String::from_utf8_lossy(&self.token)
            )));
        }
        Ok(State::StartOfLine)
    }
}

/// Go's `uint64(f)` conversion for the values the text parser feeds it (saturating in Rust;
/// Go's result for out-of-range values is implementation-defined).
fn go_f64_to_u64(v: f64) -> u64 {
    v as u64
}

/// Post-processing Go applies to histograms: if any count is a float, all become floats.
pub(crate) fn normalize_histograms(families: &mut [MetricFamily]) {
    for m in families.iter_mut().flat_map(|f| f.metric.iter_mut()) {
        let Some(h) = m.histogram.as_mut() else {
            continue;
        };
        let any_float = h.sample_count_float.is_some_and(|v| v != 0.0)
            || h.bucket
                .iter()
                .any(|b| b.cumulative_count_float.is_some_and(|v| v != 0.0));
        if !any_float {
            continue;
        }
        if h.sample_count_float.is_none_or(|v| v == 0.0) {
            h.sample_count_float = Some(h.sample_count.unwrap_or(0) as f64);
            h.sample_count = None;
        }
        for b in &mut h.bucket {
            if b.cumulative_count_float.is_none_or(|v| v == 0.0) {
                b.cumulative_count_float = Some(b.cumulative_count.unwrap_or(0) as f64);
                b.cumulative_count = None;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::expose::text::write_family;
    use crate::push::body::{decode_delimited, encode_delimited};
    use proptest::prelude::*;

    #[test]
    fn accepts_and_rejects_like_expfmt() {
        let check = |src: &str, want: Result<usize, &str>| match (parse_text(src.as_bytes()), want)
        {
            (Ok(f), Ok(n)) => assert_eq!(f.len(), n, "{src:?}"),
            (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{src:?}: {e}"),
            (got, want) => panic!("{src:?}: got {got:?}, want {want:?}"),
        };
        check("", Ok(0));
        check("\n  \n# just a comment\n", Ok(0));
        check("a 1\nb{x=\"y\"} 2 123\n", Ok(2));
        check("# TYPE a counter\n", Ok(0)); // families without samples are dropped
        check("a 1", Err("unexpected end of input stream"));
        check("# HELP a x\n# HELP a y\na 1\n", Err("second HELP line"));
        check("a 1\n# TYPE a gauge\n", Err("second TYPE line"));
        check("# TYPE a nonsense\n", Err("unknown metric type"));
        check("# TYPE a GAUGE\na 1\n", Ok(1));
        check("a{b=\"\\x\"} 1\n", Err("invalid escape sequence"));
        check("a{b=\"1\",b=\"2\"} 1\n", Err("duplicate label names"));
        check("a{__name__=\"b\"} 1\n", Err("reserved"));
        check("a x\n", Err("expected float as value"));
        check("a 1 1.5\n", Err("expected integer as timestamp"));
        check("a 1 2 3\n", Err("spurious string after timestamp"));
        check("a{b=1} 1\n", Err("expected '\"' at start of label value"));
        check(
            "# TYPE s summary\ns{quantile=\"x\"} 1\n",
            Err("'quantile' label"),
        );
        check(
            "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
            Err("'le' label"),
        );
        check("# TYPE h histogram\nh_count -1.5\n", Err("negative count"));
        check("a 0x1p3\n", Err("expected float"));
        check("a 1_0\n", Err("expected float"));
        check("a +nan\n", Err("expected float"));
    }

    #[test]
    fn folds_summaries_and_histograms() {
        let src = "# TYPE s summary\ns{a=\"1\",quantile=\"0.5\"} 2\ns_sum{a=\"1\"} 10\ns_count{a=\"1\"} 4\ns{a=\"2\",quantile=\"0.5\"} 3\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2.5\nh_sum 3\nh_count 2\n";
        let mut f = parse_text(src.as_bytes()).unwrap();
        normalize_histograms(&mut f);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].metric.len(), 2);
        let s = f[0].metric[0].summary.as_ref().unwrap();
        assert_eq!(
            (s.sample_count, s.sample_sum, s.quantile.len()),
            (Some(4), Some(10.0), 1)
        );
        assert_eq!(f[0].metric[0].label, vec![LabelPair::new("a", "1")]);
        let h = f[1].metric[0].histogram.as_ref().unwrap();
        // One float bucket turns every count into a float (Go's normalizeHistogram).
        assert_eq!(h.sample_count, None);
        assert_eq!(h.sample_count_float, Some(2.0));
        assert_eq!(h.bucket[1].cumulative_count_float, Some(2.5));
        assert_eq!(h.bucket[0].cumulative_count_float, Some(1.0));
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}"
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN),
            (-1000i64..1000).prop_map(|v| v as f64),
        ]
    }

    fn family() -> impl Strategy<Value = MetricFamily> {
        let metric = (
            proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "(?s).{0,10}", 0..4),
            value(),
            proptest::option::of(any::<i64>()),
        );
        (
            name(),
            // A HELP text that is empty or starts with a blank does not survive the format
            // (the blanks after the name are skipped), in Go as here.
            proptest::option::of("[^ \t\n](?s).{0,20}"),
            prop_oneof![
                Just(MetricType::Counter),
                Just(MetricType::Gauge),
                Just(MetricType::Untyped)
            ],
            proptest::collection::vec(metric, 1..4),
        )
            .prop_map(|(name, help, kind, metrics)| MetricFamily {
                name: Some(name),
                help,
                r#type: Some(kind as i32),
                metric: metrics
                    .into_iter()
                    .map(|(labels, v, ts)| {
                        let mut m = Metric {
                            label: labels
                                .into_iter()
                                .filter(|(k, _)| k != "__name__")
                                .map(|(k, v)| LabelPair::new(&k, &v))
                                .collect(),
                            timestamp_ms: ts,
                            ..Default::default()
                        };
                        match kind {
                            MetricType::Counter => {
                                m.counter = Some(Counter {
                                    value: Some(v),
                                    ..Default::default()
                                })
                            }
                            MetricType::Gauge => m.gauge = Some(Gauge { value: Some(v) }),
                            _ => m.untyped = Some(Untyped { value: Some(v) }),
                        }
                        m
                    })
                    .collect(),
                unit: None,
            })
    }

    /// Values compared bit-for-bit except that every NaN equals every NaN.
    fn canon(mut f: MetricFamily) -> MetricFamily {
        for m in &mut f.metric {
            for v in [
                m.counter.as_mut().and_then(|c| c.value.as_mut()),
                m.gauge.as_mut().and_then(|c| c.value.as_mut()),
                m.untyped.as_mut().and_then(|c| c.value.as_mut()),
            ]
            .into_iter()
            .flatten()
            {
                if v.is_nan() {
                    *v = 0.123_456;
                }
            }
        }
        f
    }

    proptest! {
        #[test]
        fn text_roundtrip(f in family()) {
            let mut text = String::new();
            write_family(&f, &mut text);
            let back = parse_text(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(back.len(), 1);
            prop_assert_eq!(canon(back[0].clone()), canon(f));
        }

        #[test]
        fn protobuf_roundtrip(fs in proptest::collection::vec(family(), 0..4)) {
            // Later families with the same name replace earlier ones.
            let mut want: Vec<MetricFamily> = Vec::new();
            for f in &fs {
                match want.iter_mut().find(|w| w.name == f.name) {
                    Some(w) => *w = f.clone(),
                    None => want.push(f.clone()),
                }
            }
            let mut buf = Vec::new();
            encode_delimited(&fs, &mut buf);
            let back = decode_delimited(&buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.into_iter().map(canon).collect::<Vec<_>>(), want.into_iter().map(canon).collect::<Vec<_>>());
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_text(&b);
            let _ = decode_delimited(&b);
        }
    }
}
