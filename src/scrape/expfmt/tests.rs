#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;

#[test]
fn go_float_format() {
    let check = |f: f64, want: &str| assert_eq!(format_openmetrics_float(f), want, "{f}");
    check(1.0, "1.0");
    check(0.0, "0.0");
    check(1e3, "1000.0");
    check(0.05, "0.05");
    check(2.5, "2.5");
    check(1e-5, "1e-05");
    check(0.0001, "0.0001");
    check(1e6, "1e+06");
    check(123456.0, "123456.0");
    check(1.5e21, "1.5e+21");
    check(f64::INFINITY, "+Inf");
    check(-1.0, "-1.0");
}

/// The cases where the two rule sets of the text format part: Prometheus's scrape parser
/// ([`Parser::new`]) against Go's `expfmt.TextParser` ([`Parser::new_strict`], Pushgateway's).
#[test]
fn strict_mode_parts_from_scrape_rules_where_go_does() {
    // (body, scrape accepts, strict accepts)
    let check = |body: &str, scrape: bool, strict: bool| {
        let run = |mut p: Parser<'_>| {
            let mut n = 0;
            while p.next().is_some() {
                n += 1;
            }
            (p.err().is_none(), n)
        };
        let (a, _) = run(Parser::new(body.as_bytes(), Format::Text));
        let (b, _) = run(Parser::new_strict(body.as_bytes()));
        assert_eq!((a, b), (scrape, strict), "{body:?}: (scrape, strict)");
    };
    check("a 1\n", true, true);
    // Go is stricter.
    check("a 1", true, false); // every line ends in a newline
    check("# TYPE a gauge", true, false);
    check("a{b=\"x\ny\"} 1\n", true, false); // raw newline in a label value
    check("a{b=\"\\q\"} 1\n", true, false); // unknown escape
    check("# HELP a x\\q\n", true, false);
    check("{\"a\"} 1\n", true, false); // quoted names
    check("a 1 \n", true, false); // a blank after the value asks for a timestamp
    check("a 1 2 \n", true, false);
    check("# TYPE a gauge \n", true, true); // (the caller refuses "gauge ")
    // Go is looser.
    check("a{b=\"c\"}1\n", false, true); // no blank before the value
    check("a 1 -5\n", false, true); // signed timestamps
    check("a 1 +5\n", false, true);
    check("# TYPE a COUNTER\n", false, true); // type names in any case (named by the caller)
    check("# HELP \n", false, true); // a HELP without a name is a comment
    check(
        "a 0000000000000000000000000000000000000000000000000000000000000000001\n",
        false,
        true,
    );
}

#[test]
fn strict_mode_errors_name_go_line_and_wording() {
    let check = |body: &str, line: usize, msg: &str| {
        let mut p = Parser::new_strict(body.as_bytes());
        while p.next().is_some() {}
        let e = p.err().expect("an error");
        assert_eq!((e.line, e.msg.as_str()), (line, msg), "{body:?}");
    };
    check("\n\na 1", 3, "unexpected end of input stream");
    check("a 1\n\n  {a=\"b\"} 1\n", 3, "invalid metric name");
    check("a{b=\"\\q\"} 1\n", 1, "invalid escape sequence '\\q'");
    check(
        "a{b=\"x\ny\"} 1\n",
        1,
        "label value \"x\" contains unescaped new-line",
    );
    check(
        "a{b=1} 1\n",
        1,
        "expected '\"' at start of label value, found '1'",
    );
    check(
        "a{b\"1\"} 1\n",
        1,
        "expected '=' after label name, found '\"'",
    );
    check("a{b=\"1\" c} 1\n", 1, "unexpected end of label value \"1\"");
    check("a x\n", 1, "expected float as value, got \"x\"");
    check("a 1 1.5\n", 1, "expected integer as timestamp, got \"1.5\"");
    check("a 1 2 3\n", 1, "spurious string after timestamp: \" 3\"");
    check("# HELP 0a x\n", 1, "invalid metric name in comment");
}

mod prop {
    use super::super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    struct Sample {
        labels: BTreeMap<String, String>,
        value: f64,
        ts: Option<i64>,
    }

    #[derive(Debug, Clone)]
    struct Family {
        name: String,
        kind: Option<&'static str>,
        help: Option<String>,
        samples: Vec<Sample>,
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => any::<f64>().prop_filter("finite", |v| v.is_finite()),
            2 => (-1000i64..1000).prop_map(|v| v as f64),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
        ]
    }

    fn sample() -> impl Strategy<Value = Sample> {
        (
            prop::collection::btree_map("[a-z][a-z0-9_]{0,6}", "[a-zA-Z0-9 _./:-]{0,12}", 0..4),
            value(),
            prop::option::of(1i64..1_600_000_000_000),
        )
            .prop_map(|(labels, value, ts)| Sample { labels, value, ts })
    }

    fn families() -> impl Strategy<Value = Vec<Family>> {
        prop::collection::btree_map(
            "[a-z][a-z0-9_]{0,10}",
            (
                prop::option::of(prop_oneof![Just("counter"), Just("gauge"), Just("untyped")]),
                prop::option::of("[a-zA-Z0-9][a-zA-Z0-9 ]{0,18}[a-zA-Z0-9]"),
                prop::collection::vec(sample(), 1..4),
            ),
            1..5,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(name, (kind, help, samples))| Family {
                    name,
                    kind,
                    help,
                    samples,
                })
                .collect()
        })
    }

    fn fmt_value(v: f64) -> String {
        if v.is_nan() {
            "NaN".into()
        } else if v == f64::INFINITY {
            "+Inf".into()
        } else if v == f64::NEG_INFINITY {
            "-Inf".into()
        } else {
            format!("{v:?}")
        }
    }

    /// Renders families in text 0.0.4 or OpenMetrics (timestamps as seconds there).
    fn render(fams: &[Family], om: bool) -> String {
        let mut s = String::new();
        for f in fams {
            if let Some(h) = &f.help {
                s.push_str(&format!("# HELP {} {h}\n", f.name));
            }
            if let Some(k) = f.kind {
                let k = if om && k == "untyped" { "unknown" } else { k };
                s.push_str(&format!("# TYPE {} {k}\n", f.name));
            }
            for smp in &f.samples {
                s.push_str(&f.name);
                if om && f.kind == Some("counter") {
                    s.push_str("_total");
                }
                if !smp.labels.is_empty() {
                    let ls: Vec<String> = smp
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{v}\""))
                        .collect();
                    s.push_str(&format!("{{{}}}", ls.join(",")));
                }
                s.push(' ');
                s.push_str(&fmt_value(smp.value));
                if let Some(t) = smp.ts {
                    if om {
                        // Whole seconds keep int64(s*1000) exact.
                        s.push_str(&format!(" {}", t / 1000));
                    } else {
                        s.push_str(&format!(" {t}"));
                    }
                }
                s.push('\n');
            }
        }
        if om {
            s.push_str("# EOF\n");
        }
        s
    }

    type Got = Vec<(String, BTreeMap<String, String>, f64, Option<i64>)>;

    fn ours(body: &str, format: Format) -> (Got, BTreeMap<String, String>) {
        let mut p = Parser::new(body.as_bytes(), format);
        let mut out = Vec::new();
        let mut helps = BTreeMap::new();
        let mut ls = Vec::new();
        while let Some(e) = p.next() {
            match e {
                Entry::Series => {
                    p.labels(&mut ls).unwrap();
                    let mut m: BTreeMap<String, String> = ls
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect();
                    let name = m.remove("__name__").unwrap();
                    out.push((name, m, p.value(), p.timestamp()));
                }
                Entry::Help => {
                    let (n, h) = p.help();
                    helps.insert(n.into_owned(), h.into_owned());
                }
                _ => {}
            }
        }
        assert!(p.err().is_none(), "{:?}\n{body}", p.err());
        (out, helps)
    }

    fn same_value(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a == b
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        /// Differential test against the `prometheus-parse` crate on the subset of the text
        /// format it handles: same samples (name, labels, value, timestamp) and HELP texts.
        #[test]
        fn text_matches_prometheus_parse(fams in families()) {
            let body = render(&fams, false);
            let (got, helps) = ours(&body, Format::Text);
            let lines = body.lines().map(|l| Ok(l.to_string()));
            let oracle = prometheus_parse::Scrape::parse(lines).unwrap();
            prop_assert_eq!(got.len(), oracle.samples.len(), "{}", body);
            for (g, o) in got.iter().zip(&oracle.samples) {
                prop_assert_eq!(&g.0, &o.metric);
                let ol: BTreeMap<String, String> = o
                    .labels
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                prop_assert_eq!(&g.1, &ol);
                let ov = match o.value {
                    prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    _ => unreachable!("BUG: generator makes no histograms or summaries"),
                };
                prop_assert!(same_value(g.2, ov), "value {} vs {}\n{}", g.2, ov, body);
                // The oracle stamps untimestamped samples with "now" (after 2020; ours are
                // generated before).
                let ot = o.timestamp.timestamp_millis();
                match g.3 {
                    Some(t) => prop_assert_eq!(t, ot),
                    None => prop_assert!(ot >= 1_600_000_000_000),
                }
            }
            let oh: BTreeMap<String, String> =
                oracle.docs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(helps, oh);
        }

        /// Render → parse gives back exactly the generated samples, in both formats.
        #[test]
        fn roundtrip_both_formats(fams in families(), om in any::<bool>()) {
            let body = render(&fams, om);
            let format = if om { Format::OpenMetrics } else { Format::Text };
            let (got, _) = ours(&body, format);
            let want: Vec<_> = fams
                .iter()
                .flat_map(|f| {
                    let name = if om && f.kind == Some("counter") {
                        format!("{}_total", f.name)
                    } else {
                        f.name.clone()
                    };
                    f.samples.iter().map(move |s| {
                        let labels: BTreeMap<String, String> = s
                            .labels
                            .iter()
                            .filter(|(_, v)| !v.is_empty())
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        let ts = s.ts.map(|t| if om { t / 1000 * 1000 } else { t });
                        (name.clone(), labels, s.value, ts)
                    })
                })
                .collect();
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                prop_assert_eq!(&g.0, &w.0);
                prop_assert_eq!(&g.1, &w.1);
                prop_assert!(same_value(g.2, w.2), "{} vs {}", g.2, w.2);
                if g.2.is_nan() {
                    prop_assert_eq!(g.2.to_bits(), 0x7ff8_0000_0000_0001u64);
                }
                prop_assert_eq!(g.3, w.3);
            }
        }

        /// Arbitrary bytes never panic or loop; every accessor is safe after every entry.
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300), om in any::<bool>()) {
            let format = if om { Format::OpenMetrics } else { Format::Text };
            let mut p = Parser::new(&body, format);
            let mut ls = Vec::new();
            let mut n = 0;
            while let Some(e) = p.next() {
                n += 1;
                prop_assert!(n <= body.len() + 1, "more entries than bytes");
                match e {
                    Entry::Series => {
                        let _ = p.labels(&mut ls);
                        let _ = p.exemplar(&mut ls);
                        let _ = p.metric_name();
                    }
                    Entry::Help => { let _ = p.help(); }
                    Entry::Type => { let _ = p.metric_type(); }
                    Entry::Unit => { let _ = p.unit(); }
                    Entry::Comment => {}
                }
            }
        }

        /// Mutated valid bodies (a byte flipped or cut) never panic either.
        #[test]
        fn mutated_bodies_never_panic(fams in families(), om in any::<bool>(), at in any::<prop::sample::Index>(), b in any::<u8>(), cut in any::<bool>()) {
            let mut body = render(&fams, om).into_bytes();
            let i = at.index(body.len());
            if cut { body.truncate(i) } else { body[i] = b }
            let format = if om { Format::OpenMetrics } else { Format::Text };
            let mut p = Parser::new(&body, format);
            let mut ls = Vec::new();
            while let Some(e) = p.next() {
                if e == Entry::Series {
                    let _ = p.labels(&mut ls);
                }
            }
        }
    }
}

/// `next_expecting` with the series texts of an earlier body as hints reads every body exactly
/// as `next` does: same entries, spans, values, labels and errors, whatever the hints.
mod expecting {
    use super::super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 4] = ["a", "a_b", "ab", "# TYPE a histogram\na_bucket"];
    const BRACES: [&str; 7] = [
        "",
        "{x=\"1\"}",
        "{x=\"1\",le=\"1\"}",
        " {x=\"1\"}",
        "{x=\"}\"}",
        "{x=\"1\",x=\"2\"}",
        "{\"q.name\",x=\"1\"}",
    ];
    const RESTS: [&str; 10] = [
        " 1",
        "\t2",
        " NaN",
        "  3 123",
        " {x=\"2\"} 4",
        " x",
        "1",
        " 1 12a",
        " 1 2 3",
        "",
    ];

    fn body(lines: &[(usize, usize, usize)]) -> String {
        lines
            .iter()
            .map(|&(n, b, r)| {
                format!(
                    "{}{}{}\n",
                    NAMES[n % NAMES.len()],
                    BRACES[b % BRACES.len()],
                    RESTS[r % RESTS.len()]
                )
            })
            .collect()
    }

    /// Everything observable about each entry, and the error at the end.
    fn read(
        body: &[u8],
        hints: Option<&[Vec<u8>]>,
        format: Format,
    ) -> (Vec<String>, Option<ParseError>) {
        let mut p = Parser::new(body, format);
        let mut out = Vec::new();
        let mut n = 0;
        loop {
            let expect = hints.and_then(|h| h.get(n)).map_or(&[][..], |k| &k[..]);
            let Some(e) = p.next_expecting(expect) else {
                break;
            };
            let mut labels = Vec::new();
            let l = p.labels(&mut labels);
            if e == Entry::Series {
                n += 1;
            }
            out.push(format!(
                "{e:?} {:?} {:?} {} {:?} {l:?} {labels:?}",
                String::from_utf8_lossy(p.series()),
                p.metric_name(),
                p.value().to_bits(),
                p.timestamp(),
            ));
        }
        (out, p.err().cloned())
    }

    fn series_texts(body: &[u8], format: Format) -> Vec<Vec<u8>> {
        let mut p = Parser::new(body, format);
        let mut out = Vec::new();
        while let Some(e) = p.next() {
            if e == Entry::Series {
                out.push(p.series().to_vec());
            }
        }
        out
    }

    #[test]
    fn same_as_next_on_a_steady_body() {
        let a = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nup 1\n";
        let b = "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 4\nup 0 17\n";
        let hints = series_texts(a.as_bytes(), Format::Text);
        let got = read(b.as_bytes(), Some(&hints), Format::Text);
        assert_eq!(got, read(b.as_bytes(), None, Format::Text));
        assert!(got.1.is_none() && got.0.len() == 4, "{got:?}");
        // Every series line took the shortcut.
        let mut p = Parser::new(b.as_bytes(), Format::Text);
        let mut taken = Vec::new();
        while let Some(e) = p.next_expecting(hints.get(taken.len()).map_or(&[][..], |h| &h[..])) {
            if e == Entry::Series {
                taken.push(p.as_expected());
            }
        }
        assert_eq!(taken, [true, true, true]);
        // OpenMetrics too.
        let (a, b) = (format!("{a}# EOF\n"), format!("{b}# EOF\n"));
        let om = Format::OpenMetrics;
        let hints = series_texts(a.as_bytes(), om);
        assert_eq!(
            read(b.as_bytes(), Some(&hints), om),
            read(b.as_bytes(), None, om)
        );
        let mut p = Parser::new(b.as_bytes(), om);
        let mut taken = Vec::new();
        while let Some(e) = p.next_expecting(hints.get(taken.len()).map_or(&[][..], |h| &h[..])) {
            if e == Entry::Series {
                taken.push(p.as_expected());
            }
        }
        assert!(p.err().is_none(), "{:?}", p.err());
        assert_eq!(taken, [true, true, true]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]
        #[test]
        fn same_as_next(
            prev in proptest::collection::vec((0usize..4, 0usize..7, 0usize..10), 0..8),
            cur in proptest::collection::vec((0usize..4, 0usize..7, 0usize..10), 0..8),
            shift in 0usize..3,
        ) {
            let a = body(&prev);
            let b = body(&cur);
            let mut hints = series_texts(a.as_bytes(), Format::Text);
            let n = shift.min(hints.len());
            hints.rotate_left(n);
            prop_assert_eq!(read(b.as_bytes(), Some(&hints), Format::Text), read(b.as_bytes(), None, Format::Text), "{:?} / {:?}", a, b);
        }

        #[test]
        fn same_as_next_openmetrics(
            prev in proptest::collection::vec((0usize..4, 0usize..7, 0usize..10), 0..8),
            cur in proptest::collection::vec((0usize..4, 0usize..7, 0usize..10), 0..8),
            shift in 0usize..3,
        ) {
            let a = body(&prev) + "# EOF\n";
            let b = body(&cur) + "# EOF\n";
            let mut hints = series_texts(a.as_bytes(), Format::OpenMetrics);
            let n = shift.min(hints.len());
            hints.rotate_left(n);
            let om = Format::OpenMetrics;
            prop_assert_eq!(read(b.as_bytes(), Some(&hints), om), read(b.as_bytes(), None, om), "{:?} / {:?}", a, b);
        }
    }
}
