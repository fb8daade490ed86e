//! promtool unit-test files (FORMAT.md B.2, B.3): strict decoding.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::rules::yaml::{self, Errors, Kind, Node};
use std::collections::BTreeMap;

/// A decoded test file.
#[derive(Debug, Default)]
pub(crate) struct TestFile {
    pub rule_files: Vec<String>,
    /// ms; 0 ⇒ 1m.
    pub evaluation_interval_ms: i64,
    pub group_eval_order: Vec<String>,
    pub fuzzy_compare: bool,
    pub tests: Vec<TestGroup>,
}

/// One entry of `tests:`.
#[derive(Debug, Default)]
pub(crate) struct TestGroup {
    pub name: String,
    /// ms; 0 ⇒ the evaluation interval.
    pub interval_ms: i64,
    pub input_series: Vec<(String, String)>,
    /// ms since the epoch.
    pub start_ms: i64,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub alert_tests: Vec<AlertTest>,
    pub expr_tests: Vec<ExprTest>,
}

/// One `alert_rule_test` entry.
#[derive(Debug, Default)]
pub(crate) struct AlertTest {
    pub eval_time_ms: i64,
    pub alertname: String,
    pub exp_alerts: Vec<(BTreeMap<String, String>, BTreeMap<String, String>)>,
}

/// One `promql_expr_test` entry.
#[derive(Debug, Default)]
pub(crate) struct ExprTest {
    pub expr: String,
    pub eval_time_ms: i64,
    pub exp_samples: Vec<ExpSample>,
}

/// One expected sample.
#[derive(Debug, Default)]
pub(crate) struct ExpSample {
    pub labels: String,
    pub value: f64,
    pub histogram: String,
}

/// Decodes a test file; the error is the complete message.
pub(crate) fn decode(text: &str) -> Result<TestFile, String> {
    let doc = yaml::parse(text)?;
    let mut errs = Errors::default();
    let mut hard: Option<String> = None;
    let mut f = TestFile::default();
    if let Some(root) = doc.root.as_ref().filter(|r| !r.is_null()) {
        match root.entries() {
            None => errs.mismatch(root, "main.unitTestFile"),
            Some(entries) => {
                for (k, v) in entries {
                    match k.scalar().unwrap_or("") {
                        "rule_files" => {
                            f.rule_files = errs
                                .seq(v, "[]string")
                                .into_iter()
                                .map(|n| errs.string(n))
                                .collect();
                        }
                        "evaluation_interval" => {
                            f.evaluation_interval_ms = keep(duration(v, &mut errs), &mut hard);
                        }
                        "group_eval_order" => {
                            f.group_eval_order = errs
                                .seq(v, "[]string")
                                .into_iter()
                                .map(|n| errs.string(n))
                                .collect();
                        }
                        "fuzzy_compare" => f.fuzzy_compare = boolean(v, &mut errs),
                        "tests" => {
                            for t in errs.seq(v, "[]main.testGroup") {
                                f.tests.push(group(t, &mut errs, &mut hard));
                            }
                        }
                        _ => errs.unknown(k, "main.unitTestFile"),
                    }
                }
            }
        }
    }
    if let Some(m) = errs.message() {
        return Err(m);
    }
    if let Some(h) = hard {
        return Err(h);
    }
    Ok(f)
}

fn keep(r: Result<i64, String>, hard: &mut Option<String>) -> i64 {
    r.unwrap_or_else(|e| {
        hard.get_or_insert(e.to_string());
        0
    })
}

fn duration(n: &Node, errs: &mut Errors) -> Result<i64, String> {
    let s = errs.string(n);
    if s.is_empty() {
        return Ok(0);
    }
    let d = crate::config::parse_duration(&s)?;
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn boolean(n: &Node, errs: &mut Errors) -> bool {
    match n.scalar() {
        Some("true" | "True" | "TRUE") => true,
        Some("false" | "False" | "FALSE") => false,
        _ if n.is_null() => false,
        _ => {
            errs.mismatch(n, "bool");
            false
        }
    }
}

fn float(n: &Node, errs: &mut Errors) -> f64 {
    if n.is_null() {
        return 0.0;
    }
    match n
        .scalar()
        .and_then(crate::rules::unittest::report::parse_yaml_float)
    {
        Some(v) if matches!(&n.kind, Kind::Scalar { plain: true, .. }) => v,
        _ => {
            errs.mismatch(n, "float64");
            0.0
        }
    }
}

fn each<'n>(n: &'n Node, errs: &mut Errors, ty: &str) -> Vec<(&'n Node, &'n Node)> {
    if n.is_null() {
        return Vec::new();
    }
    match n.entries() {
        Some(e) => e,
        None => {
            errs.mismatch(n, ty);
            Vec::new()
        }
    }
}

fn group(n: &Node, errs: &mut Errors, hard: &mut Option<String>) -> TestGroup {
    let mut g = TestGroup::default();
    for (k, v) in each(n, errs, "main.testGroup") {
        match k.scalar().unwrap_or("") {
            "name" => g.name = errs.string(v),
            "interval" => g.interval_ms = keep(duration(v, errs), hard),
            "input_series" => {
                for s in errs.seq(v, "[]main.series") {
                    let (mut series, mut values) = (String::new(), String::new());
                    for (k2, v2) in each(s, errs, "main.series") {
                        match k2.scalar().unwrap_or("") {
                            "series" => series = errs.string(v2),
                            "values" => values = errs.string(v2),
                            _ => errs.unknown(k2, "main.series"),
                        }
                    }
                    g.input_series.push((series, values));
                }
            }
            "start_timestamp" => {
                let s = errs.string(v);
                if !s.is_empty() {
                    match crate::util::time::parse_time(&s) {
                        Ok(ms) => g.start_ms = ms,
                        Err(e) => {
                            hard.get_or_insert(e.to_string());
                        }
                    }
                }
            }
            "external_labels" => g.external_labels = errs.string_map(v).into_iter().collect(),
            "external_url" => g.external_url = errs.string(v),
            "alert_rule_test" => {
                for a in errs.seq(v, "[]main.alertTestCase") {
                    g.alert_tests.push(alert_test(a, errs, hard));
                }
            }
            "promql_expr_test" => {
                for e in errs.seq(v, "[]main.promqlTestCase") {
                    g.expr_tests.push(expr_test(e, errs, hard));
                }
            }
            _ => errs.unknown(k, "main.testGroup"),
        }
    }
    g
}

fn alert_test(n: &Node, errs: &mut Errors, hard: &mut Option<String>) -> AlertTest {
    let mut a = AlertTest::default();
    for (k, v) in each(n, errs, "main.alertTestCase") {
        match k.scalar().unwrap_or("") {
            "eval_time" => a.eval_time_ms = keep(duration(v, errs), hard),
            "alertname" => a.alertname = errs.string(v),
            "exp_alerts" => {
                for e in errs.seq(v, "[]main.alert") {
                    let (mut labels, mut annotations) = (BTreeMap::new(), BTreeMap::new());
                    for (k2, v2) in each(e, errs, "main.alert") {
                        match k2.scalar().unwrap_or("") {
                            "exp_labels" => labels = errs.string_map(v2).into_iter().collect(),
                            "exp_annotations" => {
                                annotations = errs.string_map(v2).into_iter().collect();
                            }
                            _ => errs.unknown(k2, "main.alert"),
                        }
                    }
                    a.exp_alerts.push((labels, annotations));
                }
            }
            _ => errs.unknown(k, "main.alertTestCase"),
        }
    }
    a
}

fn expr_test(n: &Node, errs: &mut Errors, hard: &mut Option<String>) -> ExprTest {
    let mut t = ExprTest::default();
    for (k, v) in each(n, errs, "main.promqlTestCase") {
        match k.scalar().unwrap_or("") {
            "expr" => t.expr = errs.string(v),
            "eval_time" => t.eval_time_ms = keep(duration(v, errs), hard),
            "exp_samples" => {
                for s in errs.seq(v, "[]main.sample") {
                    let mut e = ExpSample::default();
                    for (k2, v2) in each(s, errs, "main.sample") {
                        match k2.scalar().unwrap_or("") {
                            "labels" => e.labels = errs.string(v2),
                            "value" => e.value = float(v2, errs),
                            "histogram" => e.histogram = errs.string(v2),
                            _ => errs.unknown(k2, "main.sample"),
                        }
                    }
                    t.exp_samples.push(e);
                }
            }
            _ => errs.unknown(k, "main.promqlTestCase"),
        }
    }
    t
}
