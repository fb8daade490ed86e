//! Exposition conformance: `shared/conformance/exposition/cases.json` (expected samples and
//! metadata), the official OpenMetrics parser suite (accept/reject), and the larger fixtures.

use argus::scrape::expfmt::{Entry, Format, MetricType, Parser};
use argus_storage::Label;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The shared exposition fixtures, or `None` (the caller prints why it skips).
pub(crate) fn exposition_dir() -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        manifest.join("../shared/conformance/exposition"),
        PathBuf::from("/work/shared/conformance/exposition"),
    ]
    .into_iter()
    .find(|p| p.join("cases.json").exists())
}

#[derive(Debug, Default, PartialEq)]
struct Family {
    ty: Option<String>,
    help: Option<String>,
    unit: Option<String>,
}

#[derive(Debug, PartialEq)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: String,
    ts: Option<i64>,
    exemplar: Option<(BTreeMap<String, String>, String, Option<i64>)>,
}

struct Outcome {
    families: Vec<(String, Family)>,
    samples: Vec<Sample>,
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        assert_eq!(v.to_bits(), 0x7ff8_0000_0000_0001, "NaN must be canonical");
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

fn to_map(ls: &[Label]) -> BTreeMap<String, String> {
    ls.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

/// Parses `input` the way a scrape ingests it: parse errors and duplicate label names fail,
/// a repeated series (same labels, no timestamp) keeps the first sample.
fn scrape_like(input: &[u8], format: Format) -> Result<Outcome, String> {
    let mut fams: Vec<(String, Family)> = Vec::new();
    fn fam(fams: &mut Vec<(String, Family)>, name: &str) -> usize {
        match fams.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                fams.push((name.to_string(), Family::default()));
                fams.len() - 1
            }
        }
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    if input.is_empty() {
        return Ok(Outcome {
            families: Vec::new(),
            samples: out,
        });
    }
    let mut p = Parser::new(input, format);
    let mut ls = Vec::new();
    let mut ex = Vec::new();
    while let Some(e) = p.next() {
        match e {
            Entry::Series => {
                p.labels(&mut ls).map_err(|e| e.to_string())?;
                if p.timestamp().is_none() && !seen.insert(ls.clone()) {
                    continue;
                }
                let exemplar = p
                    .exemplar(&mut ex)
                    .map(|(v, t)| (to_map(&ex), fmt_value(v), t));
                out.push(Sample {
                    labels: to_map(&ls),
                    value: fmt_value(p.value()),
                    ts: p.timestamp(),
                    exemplar,
                });
            }
            Entry::Help => {
                let (n, h) = p.help();
                let i = fam(&mut fams, &n);
                fams[i].1.help = Some(h.into_owned());
            }
            Entry::Type => {
                let (n, t) = p.metric_type();
                let i = fam(&mut fams, &n);
                let kw = if t == MetricType::Unknown && format == Format::Text {
                    "untyped"
                } else {
                    t.as_str()
                };
                fams[i].1.ty = Some(kw.to_string());
            }
            Entry::Unit => {
                let (n, u) = p.unit();
                let i = fam(&mut fams, &n);
                fams[i].1.unit = Some(u.into_owned());
            }
            Entry::Comment => {}
        }
    }
    if let Some(e) = p.err() {
        return Err(e.to_string());
    }
    Ok(Outcome {
        families: fams,
        samples: out,
    })
}

fn json_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => fmt_value(n.as_f64().expect("number")),
        other => panic!("unexpected value {other}"),
    }
}

fn json_labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.as_str().unwrap_or("").is_empty())
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn cases_json() {
    let Some(dir) = exposition_dir() else {
        crate::missing("cases_json", "shared/conformance/exposition not found");
        return;
    };
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let format = match c["format"].as_str().unwrap() {
            "text" => Format::Text,
            _ => Format::OpenMetrics,
        };
        let input = c["input"].as_str().unwrap().as_bytes();
        let valid = c["valid"].as_bool().unwrap();
        let got = scrape_like(input, format);
        match (&got, valid) {
            (Err(e), true) => failures.push(format!("{id}: expected valid, got error: {e}")),
            (Ok(_), false) => failures.push(format!("{id}: expected an error, parsed fine")),
            (Err(_), false) => {}
            (Ok(o), true) => {
                let mut want_s = Vec::new();
                for s in c["samples"].as_array().unwrap() {
                    let mut labels = json_labels(
                        s.get("prometheus_stored_labels")
                            .map(|p| {
                                // Stored labels override the written ones they name.
                                let mut m = s["labels"].as_object().unwrap().clone();
                                for (k, v) in p.as_object().unwrap() {
                                    m.insert(k.clone(), v.clone());
                                }
                                Value::Object(m)
                            })
                            .as_ref()
                            .unwrap_or(&s["labels"]),
                    );
                    labels.insert("__name__".into(), s["name"].as_str().unwrap().into());
                    let exemplar = s.get("exemplar").map(|e| {
                        (
                            json_labels(&e["labels"]),
                            json_value(&e["value"]),
                            e["timestamp_ms"].as_i64(),
                        )
                    });
                    want_s.push(Sample {
                        labels,
                        value: json_value(&s["value"]),
                        ts: s["timestamp_ms"].as_i64(),
                        exemplar,
                    });
                }
                if o.samples != want_s {
                    failures.push(format!(
                        "{id}: samples differ\n  want: {want_s:?}\n  got:  {:?}",
                        o.samples
                    ));
                }
                let want_f: Vec<(String, Family)> = c["families"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| {
                        let s = |k: &str| f.get(k).and_then(|v| v.as_str()).map(String::from);
                        (
                            f["name"].as_str().unwrap().to_string(),
                            Family {
                                ty: s("type"),
                                help: s("help"),
                                unit: s("unit"),
                            },
                        )
                    })
                    .collect();
                let mut got_f: Vec<_> = o.families.iter().collect();
                let mut want_sorted: Vec<_> = want_f.iter().collect();
                got_f.sort_by(|a, b| a.0.cmp(&b.0));
                want_sorted.sort_by(|a, b| a.0.cmp(&b.0));
                if got_f != want_sorted {
                    failures.push(format!(
                        "{id}: families differ\n  want: {want_sorted:?}\n  got:  {got_f:?}"
                    ));
                }
            }
        }
    }
    println!(
        "cases.json: {} cases, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The official OpenMetrics suite: every case that must parse parses; of the cases that must
/// not, the ones Prometheus also rejects on syntax are rejected (semantic rules that Prometheus
/// does not check are reported, not enforced).
#[test]
fn openmetrics_suite() {
    let Some(dir) = exposition_dir() else {
        crate::missing(
            "openmetrics_suite",
            "shared/conformance/exposition not found",
        );
        return;
    };
    let mut good_failed = Vec::new();
    let (mut good, mut bad, mut bad_rejected) = (0, 0, 0);
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("openmetrics-parsers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for case in entries {
        let meta: Value =
            serde_json::from_slice(&std::fs::read(case.join("test.json")).unwrap()).unwrap();
        let body = std::fs::read(case.join("metrics")).unwrap();
        let ok = scrape_like(&body, Format::OpenMetrics);
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if meta["shouldParse"].as_bool().unwrap() {
            good += 1;
            if let Err(e) = ok {
                good_failed.push(format!("{name}: {e}"));
            }
        } else {
            bad += 1;
            if ok.is_err() {
                bad_rejected += 1;
            }
        }
    }
    println!(
        "openmetrics suite: {good} must-parse ({} failed), {bad} must-reject ({bad_rejected} rejected, \
         the rest are semantic rules Prometheus does not enforce either)",
        good_failed.len()
    );
    assert!(good_failed.is_empty(), "{}", good_failed.join("\n"));
    assert!(
        bad_rejected >= bad / 3,
        "too few bad cases rejected: {bad_rejected}/{bad}"
    );
}

/// Large realistic fixtures parse completely.
#[test]
fn fixtures_parse() {
    let Some(dir) = exposition_dir() else {
        crate::missing("fixtures_parse", "shared/conformance/exposition not found");
        return;
    };
    let check = |rel: &str, format: Format, min_samples: usize| {
        let body = std::fs::read(dir.join(rel)).unwrap();
        let o = scrape_like(&body, format).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(
            o.samples.len() >= min_samples,
            "{rel}: {} samples",
            o.samples.len()
        );
    };
    check("expfmt-testdata/text", Format::Text, 10);
    check(
        "prometheus-textparse/alltypes.237mfs.prom.txt",
        Format::Text,
        237,
    );
    check(
        "prometheus-textparse/alltypes.237mfs.nometa.prom.txt",
        Format::Text,
        237,
    );
    check(
        "prometheus-textparse/alltypes.5mfs.om.txt",
        Format::OpenMetrics,
        5,
    );
    check(
        "prometheus-textparse/1histogram.om.txt",
        Format::OpenMetrics,
        3,
    );
    check("promtool/metrics-test.prom", Format::Text, 10);
}
