//! Text exposition format 0.0.4 for push bodies: families assembled into the client model the
//! way Go's `expfmt.TextParser` (Pushgateway's parser) does, over the one exposition cursor in
//! its Go-rules mode ([`Parser::new_strict`]). The cursor checks the syntax; this layer adds what
//! needs the families: one HELP and one TYPE per name, TYPE before samples, `__name__` reserved,
//! no duplicate label names, `quantile`/`le` folded into summaries/histograms (with `_sum`,
//! `_count`, `_bucket` joining their family), and families without samples dropped.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::expose::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile,
    Summary, Untyped,
};
use crate::scrape::expfmt::{Entry, Parser};
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

/// Parses a whole text body into families, in order of first appearance.
pub fn parse_text(src: &[u8]) -> Result<Vec<MetricFamily>, TextError> {
    let mut p = Parser::new_strict(src);
    let mut a = Assembler::default();
    while let Some(e) = p.next() {
        let r = match e {
            Entry::Help => a.help(&p),
            Entry::Type => a.type_line(&p),
            Entry::Series => a.series(&p, true),
            Entry::Comment | Entry::Unit => Ok(()),
        };
        r.map_err(|msg| TextError {
            line: p.line(),
            msg,
        })?;
    }
    if let Some(e) = p.err() {
        // Go checks as it reads: what this layer finds in the part read comes first.
        let earlier = match p.partial() {
            Some(Entry::Series) => a.series(&p, false),
            Some(k @ (Entry::Help | Entry::Type)) => a.described(&p, k).map(drop),
            _ => Ok(()),
        };
        return Err(TextError {
            line: e.line,
            msg: earlier.err().unwrap_or_else(|| e.msg.clone()),
        });
    }
    a.families.retain(|f| !f.metric.is_empty());
    Ok(a.families)
}

/// Parses a float as Go's `strconv.ParseFloat` does for the forms exposition uses (decimal,
/// exponent, `Inf`/`Infinity`/`NaN` in any case with optional sign). Rejects `p`, `P`, `_`.
pub fn parse_float(s: &str) -> Option<f64> {
    argus_query::gofloat::parse(s)
}

/// Which derived series of a summary or histogram the current line is.
#[derive(Clone, Copy, Default)]
struct Suffix {
    summary_count: bool,
    summary_sum: bool,
    hist_count: bool,
    hist_sum: bool,
}

#[derive(Default)]
struct Assembler {
    families: Vec<MetricFamily>,
    by_name: HashMap<String, usize>,
    /// (family index, label signature without quantile/le) → metric index, for summaries and
    /// histograms assembled from several lines.
    compound: HashMap<(usize, Vec<(String, String)>), usize>,
    /// Family of the current line and which of its series the line is.
    cur: usize,
    suffix: Suffix,
}

impl Assembler {
    fn family(&mut self) -> Result<&mut MetricFamily, String> {
        self.families
            .get_mut(self.cur)
            .ok_or_else(|| "BUG: family index out of range".to_string())
    }

    fn kind(&self) -> MetricType {
        self.families
            .get(self.cur)
            .filter(|f| f.r#type.is_some())
            .map_or(MetricType::Untyped, MetricFamily::kind)
    }

    /// Finds the family `name` belongs to (`x_sum`/`x_count` of a summary or histogram `x`,
    /// `x_bucket` of a histogram), creating it when there is none, and makes it current.
    fn set_or_create_family(&mut self, name: &str) -> Result<(), String> {
        self.suffix = Suffix::default();
        if !argus_query::names::is_legacy_metric_name(name) {
            return Err(format!("invalid metric name {name:?}"));
        }
        if let Some(&i) = self.by_name.get(name) {
            self.cur = i;
            return Ok(());
        }
        let type_of = |i: usize| self.families.get(i).and_then(|f| f.r#type);
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
            && type_of(i) == Some(MetricType::Summary as i32)
        {
            self.cur = i;
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
                type_of(i),
                Some(t) if t == MetricType::Histogram as i32 || t == MetricType::GaugeHistogram as i32
            )
        {
            self.cur = i;
            self.suffix.hist_count = is_count;
            self.suffix.hist_sum = is_sum;
            return Ok(());
        }
        self.by_name.insert(name.to_string(), self.families.len());
        self.cur = self.families.len();
        self.families.push(MetricFamily {
            name: Some(name.to_string()),
            ..Default::default()
        });
        Ok(())
    }

    /// For a HELP or TYPE line with a text: its family, refused when it already has one.
    fn described(&mut self, p: &Parser<'_>, kind: Entry) -> Result<&mut MetricFamily, String> {
        self.set_or_create_family(&p.help().0)?;
        let f = self.family()?;
        match kind {
            Entry::Help if f.help.is_some() => {
                Err(format!("second HELP line for metric name {:?}", f.name()))
            }
            Entry::Type if f.r#type.is_some() => Err(format!(
                "second TYPE line for metric name {:?}, or TYPE reported after samples",
                f.name()
            )),
            _ => Ok(f),
        }
    }

    fn help(&mut self, p: &Parser<'_>) -> Result<(), String> {
        if p.meta_raw().is_empty() {
            return self.set_or_create_family(&p.help().0);
        }
        let f = self.described(p, Entry::Help)?;
        f.help = Some(p.help_text());
        Ok(())
    }

    fn type_line(&mut self, p: &Parser<'_>) -> Result<(), String> {
        if p.meta_raw().is_empty() {
            return self.set_or_create_family(&p.metric_type().0);
        }
        let f = self.described(p, Entry::Type)?;
        // Go reads the type without escapes, dropping every backslash.
        let raw: Vec<u8> = p
            .meta_raw()
            .iter()
            .copied()
            .filter(|&c| c != b'\\')
            .collect();
        let raw = String::from_utf8_lossy(&raw);
        let kind = match raw.to_ascii_uppercase().as_str() {
            "COUNTER" => MetricType::Counter,
            "GAUGE" => MetricType::Gauge,
            "SUMMARY" => MetricType::Summary,
            "UNTYPED" => MetricType::Untyped,
            "HISTOGRAM" => MetricType::Histogram,
            "GAUGE_HISTOGRAM" | "GAUGEHISTOGRAM" => MetricType::GaugeHistogram,
            _ => return Err(format!("unknown metric type {raw:?}")),
        };
        f.r#type = Some(kind as i32);
        Ok(())
    }

    /// A sample line; `complete` is false for a line that failed part-way (only the checks on
    /// the part read are made, for the error they find first).
    fn series(&mut self, p: &Parser<'_>, complete: bool) -> Result<(), String> {
        self.set_or_create_family(&p.metric_name())?;
        let family = self.family()?;
        if family.r#type.is_none() {
            family.r#type = Some(MetricType::Untyped as i32);
        }
        let family_name = family.name().to_string();
        let kind = self.kind();
        let summary = kind == MetricType::Summary;
        let histogram = matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram);
        let mut labels: Vec<LabelPair> = Vec::new();
        let mut sig: Vec<(String, String)> = Vec::new();
        let (mut quantile, mut bucket) = (f64::NAN, f64::NAN);
        for (name, value) in p.raw_labels() {
            if name == "__name__" {
                return Err("label name \"__name__\" is reserved".into());
            }
            let is_quantile = summary && name == "quantile";
            let is_le = histogram && name == "le";
            if !is_quantile && !is_le {
                if labels.iter().any(|l| l.name.as_deref() == Some(name)) {
                    return Err(format!("duplicate label names for metric {family_name:?}"));
                }
                labels.push(LabelPair {
                    name: Some(name.to_string()),
                    value: None,
                });
            }
            let Some(value) = value else {
                break;
            };
            let value = value.map_err(|v| format!("invalid label value {v:?}"))?;
            if is_quantile {
                quantile = parse_float(&value).ok_or_else(|| {
                    format!("expected float as value for 'quantile' label, got {value:?}")
                })?;
            } else if is_le {
                bucket = parse_float(&value).ok_or_else(|| {
                    format!("expected float as value for 'le' label, got {value:?}")
                })?;
            } else {
                if summary || histogram {
                    sig.push((name.to_string(), value.clone()));
                }
                if let Some(last) = labels.last_mut() {
                    last.value = Some(value);
                }
            }
        }
        if !complete {
            if p.bad_label_name() {
                return Err(format!("invalid label name for metric {family_name:?}"));
            }
            if !p.value_read() {
                return Ok(());
            }
        }
        // Attach the metric to its family, or find the summary/histogram it continues.
        let fam = self.cur;
        let metric = Metric {
            label: labels,
            ..Default::default()
        };
        let idx = if summary || histogram {
            sig.sort();
            match self.compound.get(&(fam, sig.clone())) {
                Some(&i) => i,
                None => {
                    let f = self.family()?;
                    f.metric.push(metric);
                    let i = f.metric.len() - 1;
                    self.compound.insert((fam, sig), i);
                    i
                }
            }
        } else {
            let f = self.family()?;
            f.metric.push(metric);
            f.metric.len() - 1
        };
        let suffix = self.suffix;
        let m = self
            .family()?
            .metric
            .get_mut(idx)
            .ok_or_else(|| "BUG: metric index out of range".to_string())?;
        let value = p.value();
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
                } else if !quantile.is_nan() {
                    s.quantile.push(Quantile {
                        quantile: Some(quantile),
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
                        return Err(format!("negative count for histogram {family_name:?}"));
                    } else {
                        h.sample_count_float = Some(value);
                    }
                } else if suffix.hist_sum {
                    h.sample_sum = Some(value);
                } else if !bucket.is_nan() {
                    let mut b = Bucket {
                        upper_bound: Some(bucket),
                        ..Default::default()
                    };
                    if exact {
                        b.cumulative_count = Some(as_int);
                    } else if value < 0.0 {
                        return Err(format!(
                            "negative bucket population for histogram {family_name:?}"
                        ));
                    } else {
                        b.cumulative_count_float = Some(value);
                    }
                    h.bucket.push(b);
                }
            }
        }
        if let Some(ts) = p.timestamp() {
            m.timestamp_ms = Some(ts);
        }
        Ok(())
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

    /// Go checks labels as it reads them, so on a line that also fails later (or is cut short
    /// by the end of the body) the label's error is the one reported, with the family's name.
    #[test]
    fn reports_the_error_go_meets_first() {
        let check = |src: &str, want: &str| {
            let e = parse_text(src.as_bytes()).expect_err(src);
            assert_eq!(e.to_string(), want, "{src:?}");
        };
        check(
            "metric{__name__=\"bla\"} 3.14",
            "text format parsing error in line 1: label name \"__name__\" is reserved",
        );
        check(
            "a 1\na{b=\"1\",b=\"2\"} x\n",
            "text format parsing error in line 2: duplicate label names for metric \"a\"",
        );
        check(
            "# TYPE h histogram\nh_bucket{:le=\"1\"} 1\n",
            "text format parsing error in line 2: invalid label name for metric \"h\"",
        );
        check(
            "# TYPE h histogram\nh_bucket{le=\"x\" 1\n",
            "text format parsing error in line 2: expected float as value for 'le' label, got \"x\"",
        );
        check(
            "# TYPE h histogram\nh_count -1.5 x\n",
            "text format parsing error in line 2: negative count for histogram \"h\"",
        );
        check(
            "# HELP a x\n# HELP a y",
            "text format parsing error in line 2: second HELP line for metric name \"a\"",
        );
        check(
            "a 1\na 2",
            "text format parsing error in line 2: unexpected end of input stream",
        );
    }

    /// What Go accepts that Prometheus's scrape parser does not, and the families it makes.
    #[test]
    fn accepts_what_go_accepts() {
        let f = parse_text(b"# TYPE a COUNTER\na{b=\"c\"}1 -5\n# HELP a \n# HELP a x\n").unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].r#type, Some(MetricType::Counter as i32));
        assert_eq!(f[0].help.as_deref(), Some("x"));
        assert_eq!(f[0].metric[0].timestamp_ms, Some(-5));
        assert_eq!(f[0].metric[0].counter.as_ref().unwrap().value, Some(1.0));
        // Backslashes are dropped where Go reads without escapes.
        let f = parse_text(b"# TYPE g gau\\ge\ng 1 2\n").unwrap();
        assert_eq!(f[0].r#type, Some(MetricType::Gauge as i32));
        let f = parse_text(b"# HELP e a\\\"b\\\\c\\nd\ne 1\n").unwrap();
        assert_eq!(f[0].help.as_deref(), Some("a\"b\\c\nd"));
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
