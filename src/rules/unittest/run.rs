//! The promtool unit-test loop (FORMAT.md B.4–B.7) over in-memory storage.

use super::file::{AlertTest, ExprTest, TestFile, TestGroup};
use super::report::{go_duration, go_float_upper_e, labels_string, map_string, prom_duration};
use crate::rules::group::query_samples;
use crate::rules::validate::go_quote;
use crate::rules::{EvalEnv, Group, LoadOptions, expand_glob, parse_file};
use argus_query::promqltest::{LoadValue, parse_load_line, parse_series_labels};
use argus_query::{Engine, EngineOptions};
use argus_storage::testing::MemStorage;
use argus_storage::{Labels, stale_nan};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Most evaluation steps one test group may ask for (`max eval_time / evaluation_interval`).
const MAX_STEPS: i64 = 1_000_000;

/// Why histogram cases are skipped.
const NO_HISTOGRAMS: &str = "native histograms are not supported by Argus storage";

/// Flags of `argus test rules` that shape a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--run` values joined with `|` (unanchored).
    pub run: Option<regex::Regex>,
    /// `--ignore-unknown-fields` (rule files only).
    pub ignore_unknown_fields: bool,
    /// `--diff`.
    pub diff: bool,
    /// `--debug`.
    pub debug: bool,
}

/// The outcome of one test group.
#[derive(Clone, Debug, Default)]
pub struct GroupOutcome {
    /// The group `name`, or `unnamed#<index>`.
    pub name: String,
    /// Failure messages in report order.
    pub failures: Vec<String>,
    /// Cases not run, with the reason.
    pub skipped: Vec<String>,
}

/// The outcome of one test file.
#[derive(Clone, Debug, Default)]
pub struct FileOutcome {
    /// The file as given.
    pub file: String,
    /// Executed groups.
    pub groups: Vec<GroupOutcome>,
    /// Errors that stopped the whole file (read, decode, `group_eval_order`).
    pub errors: Vec<String>,
    /// `  WARNING: …` lines.
    pub warnings: Vec<String>,
}

impl FileOutcome {
    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.groups.iter().all(|g| g.failures.is_empty())
    }

    /// Every failure message, file errors first.
    pub fn messages(&self) -> Vec<String> {
        let mut out = self.errors.clone();
        for g in &self.groups {
            out.extend(g.failures.iter().cloned());
        }
        out
    }
}

/// Runs one unit-test file.
pub fn run_file(path: &str, opts: &RunOptions) -> FileOutcome {
    let mut out = FileOutcome {
        file: path.to_string(),
        ..FileOutcome::default()
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            out.errors.push(format!("open {path}: {e}"));
            return out;
        }
    };
    let mut tf = match super::file::decode(&text) {
        Ok(f) => f,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    let base = Path::new(path).parent().unwrap_or(Path::new(""));
    let mut files = Vec::new();
    for pattern in &tf.rule_files {
        match expand_glob(pattern, base) {
            Ok(found) if found.is_empty() => out
                .warnings
                .push(format!("  WARNING: no file match pattern {pattern}")),
            Ok(found) => files.extend(found),
            Err(e) => {
                out.errors.push(e);
                return out;
            }
        }
    }
    if tf.evaluation_interval_ms <= 0 {
        tf.evaluation_interval_ms = 60_000;
    }
    let mut order: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, name) in tf.group_eval_order.iter().enumerate() {
        if order.insert(name, i).is_some() {
            out.errors
                .push(format!("group name repeated in evaluation order: {name}"));
            return out;
        }
    }
    for (i, tg) in tf.tests.iter().enumerate() {
        if let Some(re) = &opts.run
            && !re.is_match(&tg.name)
        {
            continue;
        }
        let name = if tg.name.is_empty() {
            format!("unnamed#{i}")
        } else {
            tg.name.clone()
        };
        let mut g = GroupOutcome {
            name,
            ..GroupOutcome::default()
        };
        run_group(&tf, tg, &files, &order, opts, &mut g);
        out.groups.push(g);
    }
    out
}

/// Input samples of one test group, appended lazily.
struct Input {
    series: Vec<(Labels, Vec<(i64, f64)>)>,
    /// Next sample to load per series.
    next: Vec<usize>,
    /// Metric names of series given as native histograms (not loaded).
    histograms: Vec<String>,
}

impl Input {
    fn parse(tg: &TestGroup, interval_ms: i64) -> Result<Input, String> {
        let mut series = Vec::new();
        let mut histograms = Vec::new();
        for (s, values) in &tg.input_series {
            let (labels, items) = parse_load_line(&format!("{s} {values}"))?;
            let mut samples = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let t = tg
                    .start_ms
                    .saturating_add((i as i64).saturating_mul(interval_ms));
                match item {
                    LoadValue::Value(v) => samples.push((t, v)),
                    LoadValue::Stale => samples.push((t, stale_nan())),
                    LoadValue::Omitted => {}
                    LoadValue::Histogram => {
                        let name = labels.metric_name().unwrap_or_default().to_string();
                        if !histograms.contains(&name) {
                            histograms.push(name);
                        }
                    }
                }
            }
            series.push((labels, samples));
        }
        let next = vec![0; series.len()];
        Ok(Input {
            series,
            next,
            histograms,
        })
    }

    /// Loads every sample with a timestamp ≤ `t`.
    fn load_until(&mut self, db: &MemStorage, t: i64) {
        for ((labels, samples), next) in self.series.iter().zip(self.next.iter_mut()) {
            while let Some(&(st, v)) = samples.get(*next) {
                if st > t {
                    break;
                }
                db.insert(labels.clone(), st, v);
                *next += 1;
            }
        }
    }

    fn touches_histogram(&self, expr: &str) -> bool {
        self.histograms
            .iter()
            .any(|h| !h.is_empty() && expr.contains(h.as_str()))
    }
}

fn run_group(
    tf: &TestFile,
    tg: &TestGroup,
    rule_files: &[String],
    order: &BTreeMap<&str, usize>,
    opts: &RunOptions,
    out: &mut GroupOutcome,
) {
    let started = Instant::now();
    if opts.debug {
        eprintln!("DEBUG: Starting test {}", out.name);
    }
    let eval_interval = tf.evaluation_interval_ms;
    let interval = if tg.interval_ms > 0 {
        tg.interval_ms
    } else {
        eval_interval
    };
    let mut input = match Input::parse(tg, interval) {
        Ok(i) => i,
        Err(e) => {
            out.failures.push(e);
            return;
        }
    };
    let load = LoadOptions {
        ignore_unknown_fields: opts.ignore_unknown_fields,
        legacy_names: false,
    };
    let mut groups = Vec::new();
    let mut load_errors = Vec::new();
    for f in rule_files {
        match parse_file(f, &load) {
            Ok(specs) => groups.extend(specs),
            Err(errs) => load_errors.extend(errs.into_iter().map(|e| e.to_string())),
        }
    }
    if !load_errors.is_empty() {
        out.failures = load_errors;
        return;
    }
    // Listed groups in the listed order; unlisted ones tie with the first (position 0).
    groups.sort_by_key(|g| order.get(g.name.as_str()).copied().unwrap_or(0));
    let mut groups: Vec<Group> = groups
        .into_iter()
        .map(|spec| {
            let mut g = Group::new(spec, eval_interval, 0);
            g.mark_restored();
            g
        })
        .collect();

    for a in &tg.alert_tests {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            out.failures.push(format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                prom_duration(a.eval_time_ms)
            ));
            return;
        }
    }
    let mint = tg.start_ms;
    let max_eval = tg
        .alert_tests
        .iter()
        .map(|a| a.eval_time_ms)
        .chain(tg.expr_tests.iter().map(|e| e.eval_time_ms))
        .max()
        .unwrap_or(0);
    let maxt = mint.saturating_add(max_eval);
    if max_eval / eval_interval > MAX_STEPS {
        out.failures.push(format!(
            "too many evaluation steps: the largest eval_time {} is more than {MAX_STEPS} evaluation intervals",
            prom_duration(max_eval)
        ));
        return;
    }
    let mut alert_times: Vec<i64> = tg.alert_tests.iter().map(|a| a.eval_time_ms).collect();
    alert_times.sort_unstable();
    alert_times.dedup();
    let mut curr = 0usize;

    let db = MemStorage::new();
    let engine = Engine::new(EngineOptions {
        lookback_delta_ms: 5 * 60_000,
        timeout: Duration::from_secs(100),
        max_samples: 10_000,
    });
    let env = EvalEnv {
        engine: &engine,
        queryable: &db,
        appendable: &db,
        external_labels: &tg.external_labels,
        external_url: &tg.external_url,
        resend_delay_ms: 60_000,
    };
    let mut ts = mint;
    while ts <= maxt {
        input.load_until(&db, ts);
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            g.eval(ts, &env);
            for (rule, err) in g.rule_errors() {
                eval_errs.push(format!(
                    "    rule: {rule}, time: {}, err: {err}",
                    go_duration(ts)
                ));
            }
        }
        if !eval_errs.is_empty() {
            out.failures.extend(eval_errs);
            return;
        }
        while let Some(&t) = alert_times.get(curr) {
            if !(ts - mint <= t && t < ts.saturating_add(eval_interval).saturating_sub(mint)) {
                break;
            }
            for case in tg.alert_tests.iter().filter(|a| a.eval_time_ms == t) {
                check_alerts(tg, case, &groups, opts, out);
            }
            curr += 1;
        }
        let Some(next) = ts.checked_add(eval_interval) else {
            break;
        };
        ts = next;
    }

    for case in &tg.expr_tests {
        if case.exp_samples.iter().any(|s| !s.histogram.is_empty())
            || input.touches_histogram(&case.expr)
        {
            out.skipped.push(format!(
                "expr {} at {}: {NO_HISTOGRAMS}",
                go_quote(&case.expr),
                prom_duration(case.eval_time_ms)
            ));
            continue;
        }
        check_expr(tf, case, mint, &env, out);
    }
    if opts.debug {
        eprintln!("DEBUG: series up to {}:", go_duration(maxt));
        for (l, samples) in db.dump() {
            let pts: Vec<String> = samples
                .iter()
                .filter(|(t, _)| *t <= maxt)
                .map(|(t, v)| format!("{} @[{t}]", go_float_upper_e(*v)))
                .collect();
            eprintln!("  {} => {}", labels_string(&l), pts.join(" "));
        }
        eprintln!("DEBUG: test {} took {:?}", out.name, started.elapsed());
    }
}

type AlertList = Vec<(Labels, BTreeMap<String, String>)>;

fn alert_list_string(list: &AlertList) -> String {
    if list.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[");
    for (i, (l, a)) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "\n{i}:\n  Labels:{}\n  Annotations:{}",
            labels_string(l),
            map_string(a)
        ));
    }
    s.push_str("\n]");
    s.replace('\n', "\n            ")
}

fn alert_list_json(list: &AlertList) -> Vec<String> {
    let mut lines = vec!["[".to_string()];
    for (l, a) in list {
        let labels: BTreeMap<&str, &str> = l
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        lines.push("  {".into());
        lines.push(format!(
            "    \"annotations\": {},",
            serde_json::to_string(a).unwrap_or_default()
        ));
        lines.push(format!(
            "    \"labels\": {}",
            serde_json::to_string(&labels).unwrap_or_default()
        ));
        lines.push("  },".into());
    }
    lines.push("]".into());
    lines
}

fn check_alerts(
    tg: &TestGroup,
    case: &AlertTest,
    groups: &[Group],
    opts: &RunOptions,
    out: &mut GroupOutcome,
) {
    let mut got: AlertList = groups
        .iter()
        .flat_map(|g| g.firing_alerts(&case.alertname))
        .collect();
    let mut exp: AlertList = case
        .exp_alerts
        .iter()
        .map(|(labels, annotations)| {
            let mut l = labels.clone();
            l.insert("alertname".into(), case.alertname.clone());
            let l = Labels::from_pairs(&l.iter().collect::<Vec<_>>());
            (l, annotations.clone())
        })
        .collect();
    got.sort();
    exp.sort();
    if got == exp {
        return;
    }
    let name = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };
    if opts.diff {
        let (e, g) = (alert_list_json(&exp), alert_list_json(&got));
        let mut diff = String::new();
        for line in &e {
            if !g.contains(line) {
                diff.push_str(&format!("\x1b[31m- {line}\x1b[0m\n"));
            } else {
                diff.push_str(&format!("  {line}\n"));
            }
        }
        for line in &g {
            if !e.contains(line) {
                diff.push_str(&format!("\x1b[32m+ {line}\x1b[0m\n"));
            }
        }
        out.failures.push(format!(
            "{name}    alertname: {}, time: {}, \n        diff: {}",
            case.alertname,
            prom_duration(case.eval_time_ms),
            diff.trim_end().replace('\n', "\n            ")
        ));
        return;
    }
    out.failures.push(format!(
        "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
        case.alertname,
        prom_duration(case.eval_time_ms),
        alert_list_string(&exp),
        alert_list_string(&got)
    ));
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| format!("{} {}", labels_string(l), go_float_upper_e(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Equal, or (fuzzy) one float64 step apart; NaN never equals.
fn float_eq(a: f64, b: f64, fuzzy: bool) -> bool {
    if a == b {
        return true;
    }
    if !fuzzy || !a.is_finite() || !b.is_finite() {
        return false;
    }
    next_up(a) == b || next_up(b) == a
}

fn next_up(x: f64) -> f64 {
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    if x > 0.0 {
        f64::from_bits(bits + 1)
    } else {
        f64::from_bits(bits - 1)
    }
}

fn check_expr(
    tf: &TestFile,
    case: &ExprTest,
    mint: i64,
    env: &EvalEnv<'_>,
    out: &mut GroupOutcome,
) {
    let when = prom_duration(case.eval_time_ms);
    let expr_q = go_quote(&case.expr);
    let t = mint.saturating_add(case.eval_time_ms);
    let mut got = match query_samples(env.engine, env.queryable, &case.expr, t) {
        Ok(g) => g,
        Err(e) => {
            out.failures
                .push(format!("    expr: {expr_q}, time: {when}, err: {e}"));
            return;
        }
    };
    let mut exp = Vec::new();
    for s in &case.exp_samples {
        let labels = if s.labels.trim().is_empty() {
            Labels::empty()
        } else {
            match parse_series_labels(&s.labels) {
                Ok(l) => l,
                Err(e) => {
                    out.failures.push(format!(
                        "    expr: {expr_q}, time: {when}, err: labels {}: {e}",
                        go_quote(&s.labels)
                    ));
                    return;
                }
            }
        };
        exp.push((labels, s.value));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    let same = got.len() == exp.len()
        && got
            .iter()
            .zip(&exp)
            .all(|(g, e)| g.0 == e.0 && float_eq(g.1, e.1, tf.fuzzy_compare));
    if !same {
        out.failures.push(format!(
            "    expr: {expr_q}, time: {when},\n        exp: {}\n        got: {}",
            samples_string(&exp),
            samples_string(&got)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy_compare_is_one_ulp() {
        let three = 3.0f64;
        assert!(float_eq(three, next_up(three), true));
        assert!(!float_eq(three, next_up(three), false));
        assert!(!float_eq(three, next_up(next_up(three)), true));
        assert!(float_eq(2.9999999999999996, three, true));
        assert!(!float_eq(f64::NAN, f64::NAN, true));
    }
}
