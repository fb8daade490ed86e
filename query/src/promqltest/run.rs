//! Executes parsed test scripts against [`MemStorage`] and compares results.

use super::parse::Item;
use super::script::{Cmd, Eval, Load, parse_file};
use crate::{Engine, EngineOptions, Value};
use argus_storage::testing::MemStorage;
use argus_storage::{Labels, MatchType, Matcher, stale_nan};
use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Runner options.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Also run every plain instant eval as a range query `t-1m … t+1m` (step 1m) and compare
    /// the point at `t`, and re-run it with `@ t` pinned on every selector at other evaluation
    /// times (step invariance), as the reference harness does.
    pub cross_check: bool,
}

/// Functions whose value depends on the evaluation time even with `@`.
const AT_UNSAFE: [&str; 15] = [
    "time(",
    "timestamp(",
    "start(",
    "end(",
    "range(",
    "step(",
    "day_of_month(",
    "day_of_week(",
    "day_of_year(",
    "days_in_month(",
    "hour(",
    "minute(",
    "month(",
    "year(",
    "predict_linear(",
];

/// Attaches `@ t` to every selector and subquery lacking one (not inside subqueries).
fn pin_at(e: &mut Expr, t: std::time::SystemTime) {
    use promql_parser::parser::AtModifier;
    match e {
        Expr::VectorSelector(vs) if vs.at.is_none() => vs.at = Some(AtModifier::At(t)),
        Expr::MatrixSelector(ms) if ms.vs.at.is_none() => ms.vs.at = Some(AtModifier::At(t)),
        // The subquery is pinned as a whole; what it evaluates inside is left alone.
        Expr::Subquery(sq) if sq.at.is_none() => sq.at = Some(AtModifier::At(t)),
        Expr::Paren(p) => pin_at(&mut p.expr, t),
        Expr::Unary(u) => pin_at(&mut u.expr, t),
        Expr::Aggregate(a) => {
            pin_at(&mut a.expr, t);
            if let Some(p) = &mut a.param {
                pin_at(p, t);
            }
        }
        Expr::Binary(b) => {
            pin_at(&mut b.lhs, t);
            pin_at(&mut b.rhs, t);
        }
        Expr::Call(c) => c.args.args.iter_mut().for_each(|a| pin_at(a, t)),
        _ => {}
    }
}

/// The step-invariance check: the query with `@ t` pinned, evaluated at other times.
fn check_pinned(engine: &Engine, st: &State, e: &Eval, expr: &Expr) -> Result<(), String> {
    let t = e.at;
    let when = std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::from_millis(t.max(0) as u64))
        .ok_or("bad time")?;
    if t < 0 {
        return Ok(());
    }
    let mut pinned = expr.clone();
    pin_at(&mut pinned, when);
    let q = pinned.to_string();
    let times = if t == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * t, 0, t / 5, t, 10 * t]
    };
    for at in times {
        match engine.instant_query(&st.storage, &q, at) {
            Err(err) => return Err(format!("  pinned variant {q} at {at}ms failed: {err}")),
            Ok(got) => {
                let got = match got {
                    // Scalars and vectors carry the evaluation time; only values matter here.
                    Value::Scalar(_, v) => Value::Scalar(t, v),
                    other => other,
                };
                compare(e, &got)
                    .map_err(|why| format!("  pinned variant {q} at {at}ms:\n{why}"))?;
            }
        }
    }
    Ok(())
}

/// Outcome of one file.
#[derive(Clone, Debug, Default)]
pub struct FileReport {
    /// File name.
    pub name: String,
    /// Eval statements that passed.
    pub passed: usize,
    /// Eval statements that failed.
    pub failed: usize,
    /// Eval statements skipped (see `skips`).
    pub skipped: usize,
    /// One entry per failure: location, query, expected and got.
    pub failures: Vec<String>,
    /// One entry per skip: location and reason.
    pub skips: Vec<String>,
    /// Set when the file itself could not be parsed (then nothing ran).
    pub error: Option<String>,
    /// Every eval query of the file, for round-trip checks.
    pub queries: Vec<String>,
}

/// Runs one file from disk.
pub fn run_file(path: &Path, opts: &RunOptions) -> FileReport {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match std::fs::read_to_string(path) {
        Ok(src) => run_source(&name, &src, opts),
        Err(e) => FileReport {
            name,
            error: Some(format!("cannot read {}: {e}", path.display())),
            ..FileReport::default()
        },
    }
}

struct State {
    storage: MemStorage,
    /// The last histogram loaded per series (None after a float or stale sample), to set
    /// counter-reset hints as Prometheus's head does.
    last_hist: std::collections::HashMap<Labels, Option<argus_storage::FloatHistogram>>,
    /// Label sets of series holding native histograms (unsupported) or start timestamps.
    unsupported: Vec<(Labels, &'static str)>,
    opts: EngineOptions,
}

/// Runs a script given as text.
pub fn run_source(name: &str, src: &str, opts: &RunOptions) -> FileReport {
    let mut rep = FileReport {
        name: name.to_string(),
        ..FileReport::default()
    };
    let cmds = match parse_file(src) {
        Ok(c) => c,
        Err(e) => {
            rep.error = Some(e);
            return rep;
        }
    };
    let mut st = State {
        storage: MemStorage::new(),
        last_hist: Default::default(),
        unsupported: Vec::new(),
        opts: EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            timeout: Duration::from_secs(100),
            max_samples: 50_000_000,
        },
    };
    for cmd in cmds {
        match cmd {
            Cmd::Clear => {
                st.storage.clear();
                st.last_hist.clear();
                st.unsupported.clear();
            }
            Cmd::Set(k, v) => match k.as_str() {
                "max_samples" => st.opts.max_samples = usize::try_from(v).unwrap_or(0),
                "timeout_ms" => st.opts.timeout = Duration::from_millis(v.max(0) as u64),
                "lookback_ms" => st.opts.lookback_delta_ms = v,
                _ => {
                    rep.error = Some(format!("unknown setting {k:?}"));
                    return rep;
                }
            },
            Cmd::Load(l) => load(&mut st, l),
            Cmd::Eval(e) => {
                rep.queries.push(e.query.clone());
                match run_eval(&st, &e, opts) {
                    Outcome::Pass => rep.passed += 1,
                    Outcome::Skip(why) => {
                        rep.skipped += 1;
                        rep.skips
                            .push(format!("{name}:{}: {why}: {}", e.line, e.query));
                    }
                    Outcome::Fail(why) => {
                        rep.failed += 1;
                        rep.failures
                            .push(format!("{name}:{}: {}\n{why}", e.line, e.query));
                    }
                }
            }
        }
    }
    rep
}

fn load(st: &mut State, l: Load) {
    for (labels, items) in &l.series {
        for (k, it) in items.iter().enumerate() {
            let t = k as i64 * l.interval;
            match it {
                Item::Value(v) => {
                    st.storage.insert(labels.clone(), t, *v);
                    st.last_hist.insert(labels.clone(), None);
                }
                Item::Stale => {
                    st.storage.insert(labels.clone(), t, stale_nan());
                    st.last_hist.insert(labels.clone(), None);
                }
                Item::Omitted => {}
                Item::Histogram(h) => {
                    let prev = st.last_hist.get(labels).and_then(Option::as_ref);
                    let stored = with_head_hint(&h.h, prev);
                    st.storage
                        .insert_histogram(labels.clone(), t, stored.clone());
                    st.last_hist.insert(labels.clone(), Some(stored));
                }
            }
        }
    }
    if l.nhcb {
        load_nhcb(st, &l);
    }
    for s in l.st_series {
        st.unsupported.push((s, "start timestamps"));
    }
}

/// One classic histogram at one timestamp, collected for the NHCB conversion.
#[derive(Default)]
struct TempHistogram {
    /// `(le, cumulative count)`, ascending by `le`.
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: f64,
    bad: bool,
}

impl TempHistogram {
    fn set_bucket(&mut self, le: f64, count: f64) {
        if le.is_nan() || count < 0.0 {
            self.bad = true;
            return;
        }
        let i = self.buckets.partition_point(|b| b.0 < le);
        if self.buckets.get(i).is_some_and(|b| b.0 == le) {
            return;
        }
        let below_ok = i == 0 || count >= self.buckets[i - 1].1;
        let above_ok = self.buckets.get(i).is_none_or(|b| count <= b.1);
        if !(below_ok && above_ok) {
            self.bad = true;
            return;
        }
        self.buckets.insert(i, (le, count));
    }

    /// The native histogram with custom buckets (Prometheus's `convertnhcb`), `None` when the
    /// classic data is inconsistent.
    fn convert(mut self) -> Option<argus_storage::FloatHistogram> {
        if self.bad {
            return None;
        }
        let count = self
            .count
            .or(self.buckets.last().map(|b| b.1))
            .unwrap_or(0.0);
        if self.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
            self.buckets.push((f64::INFINITY, count));
        }
        if self.buckets.last().is_some_and(|b| b.1 != count) {
            return None;
        }
        let mut h = argus_storage::FloatHistogram {
            schema: argus_storage::histogram::CUSTOM_BUCKETS_SCHEMA,
            count,
            sum: self.sum,
            positive_spans: vec![argus_storage::Span::new(0, self.buckets.len() as u32)],
            ..Default::default()
        };
        let mut prev = 0.0;
        for &(le, c) in &self.buckets {
            h.positive_buckets.push(c - prev);
            prev = c;
            if le != f64::INFINITY {
                h.custom_values.push(le);
            }
        }
        argus_storage::histogram::ops::compact(&mut h);
        Some(h)
    }
}

/// `load_with_nhcb`: the classic histograms of the block (`_bucket`/`_count`/`_sum` series)
/// are also stored as native histograms with custom buckets under the base name.
fn load_nhcb(st: &mut State, l: &Load) {
    use std::collections::{BTreeMap, HashMap};
    let mut hists: HashMap<Labels, BTreeMap<i64, TempHistogram>> = HashMap::new();
    for (labels, items) in &l.series {
        let Some(name) = labels.metric_name() else {
            continue;
        };
        let (kind, base) = if let Some(b) = name.strip_suffix("_bucket") {
            (0, b)
        } else if let Some(b) = name.strip_suffix("_sum") {
            (1, b)
        } else if let Some(b) = name.strip_suffix("_count") {
            (2, b)
        } else {
            continue;
        };
        let le = match kind {
            0 => match labels.get("le").and_then(crate::functions::parse_le) {
                Some(le) if !le.is_nan() => Some(le),
                _ => continue,
            },
            _ => None,
        };
        let mut key = labels.clone();
        key.remove("le");
        key.set("__name__", base);
        let per_t = hists.entry(key).or_default();
        for (k, it) in items.iter().enumerate() {
            let Item::Value(v) = it else {
                continue;
            };
            let th = per_t.entry(k as i64 * l.interval).or_default();
            match (kind, le) {
                (0, Some(le)) => th.set_bucket(le, *v),
                (1, _) => th.sum = *v,
                _ => {
                    if *v < 0.0 {
                        th.bad = true;
                    }
                    th.count = Some(*v);
                }
            }
        }
    }
    let mut keys: Vec<Labels> = hists.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let Some(per_t) = hists.remove(&key) else {
            continue;
        };
        for (t, th) in per_t {
            let Some(h) = th.convert() else {
                continue;
            };
            let prev = st.last_hist.get(&key).and_then(Option::as_ref);
            let stored = with_head_hint(&h, prev);
            st.storage.insert_histogram(key.clone(), t, stored.clone());
            st.last_hist.insert(key.clone(), Some(stored));
        }
    }
}

/// The counter-reset hint a histogram reads back with from Prometheus's head: gauges stay
/// gauges; the first sample of a chunk (after a float, a stale marker, or a layout change) is
/// `Unknown`, and so is a sample after a reset (it starts a new chunk); other samples are
/// `NotCounterReset`.
fn with_head_hint(
    h: &argus_storage::FloatHistogram,
    prev: Option<&argus_storage::FloatHistogram>,
) -> argus_storage::FloatHistogram {
    use argus_storage::CounterResetHint as H;
    let mut out = h.clone();
    if h.counter_reset_hint == H::Gauge {
        return out;
    }
    let Some(prev) = prev.filter(|p| p.counter_reset_hint != H::Gauge) else {
        if h.counter_reset_hint != H::CounterReset {
            out.counter_reset_hint = H::Unknown;
        }
        return out;
    };
    let reset = h.counter_reset_hint == H::CounterReset
        || argus_storage::histogram::ops::detect_reset(
            &argus_storage::FloatHistogram {
                counter_reset_hint: H::Unknown,
                ..h.clone()
            },
            prev,
        );
    let same_layout = prev.schema == h.schema
        && prev.zero_threshold == h.zero_threshold
        && prev.custom_values == h.custom_values;
    // A reset starts a new chunk, whose first sample reads back as `Unknown` (see the note on
    // prometheus/prometheus#15346 in native_histograms.test).
    out.counter_reset_hint = if reset {
        H::Unknown
    } else if same_layout {
        H::NotCounterReset
    } else {
        H::Unknown
    };
    out
}

enum Outcome {
    Pass,
    Skip(String),
    Fail(String),
}

fn run_eval(st: &State, e: &Eval, opts: &RunOptions) -> Outcome {
    let expr = match promql_parser::parser::parse(&e.query) {
        Ok(x) => x,
        Err(err) => return Outcome::Skip(format!("promql-parser cannot parse it ({err})")),
    };
    if let Some(why) = touches_unsupported(&expr, &st.unsupported) {
        return Outcome::Skip(why.to_string());
    }
    // The cross-checked variants are built from the AST the engine sees (string literals
    // decoded as Go decodes them), when Argus accepts the query.
    let expr = crate::parse::parse(&e.query).unwrap_or(expr);
    let engine = Engine::new(st.opts.clone());
    let cancel = crate::CancelToken::new();
    let res = match e.range {
        Some((s, en, step)) => {
            engine.range_query_annotated(&st.storage, &e.query, s, en, step, &cancel)
        }
        None => {
            let t = e.expect.range_vector.map_or(e.at, |r| r.1);
            engine.instant_query_annotated(&st.storage, &e.query, t, &cancel)
        }
    };
    let x = &e.expect;
    let got = match res {
        Err(err) => {
            if !x.fail {
                return Outcome::Fail(format!("  unexpected error: {err}"));
            }
            if let Some(m) = &x.fail_msg
                && err.message != *m
            {
                return Outcome::Fail(format!(
                    "  expected error: {m}\n  got error:      {}",
                    err.message
                ));
            }
            if let Some(r) = &x.fail_regex {
                match regex::Regex::new(r) {
                    Ok(re) if re.is_match(&err.message) => {}
                    _ => {
                        return Outcome::Fail(format!(
                            "  expected error matching: {r}\n  got error: {}",
                            err.message
                        ));
                    }
                }
            }
            return Outcome::Pass;
        }
        Ok(v) => v,
    };
    let (got, annos) = got;
    if x.fail {
        return Outcome::Fail(format!("  expected an error, got: {}", show(&got)));
    }
    if let Err(why) = compare(e, &got) {
        return Outcome::Fail(why);
    }
    if let Err(why) = check_annotations(x, &annos) {
        return Outcome::Fail(why);
    }
    if opts.cross_check
        && e.range.is_none()
        && !x.ordered
        && x.range_vector.is_none()
        && x.string.is_none()
        && !["start()", "end()", "range()", "step()"]
            .iter()
            .any(|f| e.query.contains(f))
    {
        let t = e.at;
        match engine.range_query(&st.storage, &e.query, t - 60_000, t + 60_000, 60_000) {
            Err(err) => return Outcome::Fail(format!("  range-mode cross-check error: {err}")),
            Ok(Value::Matrix(m)) => {
                let mut v = Vec::new();
                for s in m {
                    if let Some(p) = s.points.iter().find(|p| p.0 == t) {
                        v.push(crate::VectorSample {
                            labels: s.labels,
                            t,
                            v: p.1,
                            h: None,
                        });
                    } else if let Some(p) = s.histograms.iter().find(|p| p.0 == t) {
                        v.push(crate::VectorSample {
                            labels: s.labels,
                            t,
                            v: 0.0,
                            h: Some(Box::new(p.1.clone())),
                        });
                    }
                }
                let as_instant = match (&got, v.len()) {
                    (Value::Scalar(..), 1) if v[0].labels.is_empty() && v[0].h.is_none() => {
                        Value::Scalar(t, v[0].v)
                    }
                    _ => Value::Vector(v),
                };
                if let Err(why) = compare(e, &as_instant) {
                    return Outcome::Fail(format!("  range-mode cross-check:\n{why}"));
                }
            }
            Ok(other) => {
                return Outcome::Fail(format!("  range-mode cross-check got {}", show(&other)));
            }
        }
    }
    if opts.cross_check
        && e.range.is_none()
        && x.range_vector.is_none()
        && x.string.is_none()
        && !AT_UNSAFE.iter().any(|f| e.query.contains(f))
        && let Err(why) = check_pinned(&engine, st, e, &expr)
    {
        return Outcome::Fail(why);
    }
    Outcome::Pass
}

/// Checks `expect warn/info/no_warn/no_info` and `eval_warn/eval_info` (FORMAT.md §5.2).
/// Argus's annotations carry no ` (line:column)` position, so expected texts and patterns are
/// compared without it.
fn check_annotations(x: &super::script::Expect, got: &crate::Annotations) -> Result<(), String> {
    use super::script::AnnoMatch;
    let matches = |m: &Option<AnnoMatch>, a: &str| -> bool {
        match m {
            None => true,
            Some(AnnoMatch::Msg(want)) => strip_position(want) == a,
            Some(AnnoMatch::Regex(r)) => regex::Regex::new(&strip_position_regex(r))
                .map(|re| re.is_match(a))
                .unwrap_or(false),
        }
    };
    let check = |kind: &str,
                 want: &[Option<AnnoMatch>],
                 none: bool,
                 some: bool,
                 got: &[String]|
     -> Result<(), String> {
        if none && !got.is_empty() {
            return Err(format!("  expected no {kind}, got: {got:?}"));
        }
        if (some || !want.is_empty()) && got.is_empty() {
            return Err(format!("  expected a {kind}, got none"));
        }
        for w in want {
            if !got.iter().any(|a| matches(w, a)) {
                return Err(format!(
                    "  expected {kind} {w:?} not produced; got: {got:?}"
                ));
            }
        }
        if !want.is_empty() {
            for a in got {
                if !want.iter().any(|w| matches(w, a)) {
                    return Err(format!("  unexpected {kind}: {a}"));
                }
            }
        }
        Ok(())
    };
    check("warning", &x.warn, x.no_warn, x.some_warn, &got.warnings)?;
    check("info", &x.info, x.no_info, x.some_info, &got.infos)
}

/// `text (1:5)` → `text`.
fn strip_position(s: &str) -> &str {
    static POS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\s*\(\d+:\d+\)$").expect("BUG: static regex")
    });
    match POS.find(s) {
        Some(m) => &s[..m.start()],
        None => s,
    }
}

/// A pattern without its trailing position part (`… \(1:5\)`, `… \([0-9]+:[0-9]+\)`).
fn strip_position_regex(r: &str) -> String {
    let t = r.strip_suffix('$').unwrap_or(r);
    if t.ends_with("\\)")
        && let Some(i) = t.rfind("\\(")
        && t[i..].contains(':')
    {
        return t[..i].trim_end().to_string();
    }
    r.to_string()
}

/// Whether any selector of `e` matches a series the engine cannot represent.
fn touches_unsupported(e: &Expr, unsupported: &[(Labels, &'static str)]) -> Option<&'static str> {
    if unsupported.is_empty() {
        return None;
    }
    let mut found = None;
    visit_selectors(e, &mut |vs| {
        let mut groups: Vec<Vec<&promql_parser::label::Matcher>> =
            vec![vs.matchers.matchers.iter().collect()];
        if !vs.matchers.or_matchers.is_empty() {
            groups = vs
                .matchers
                .or_matchers
                .iter()
                .map(|g| g.iter().collect())
                .collect();
        }
        for (labels, why) in unsupported {
            for g in &groups {
                let name_ok = vs
                    .name
                    .as_ref()
                    .is_none_or(|n| labels.metric_name() == Some(n));
                let all = g.iter().all(|m| {
                    let kind = match m.op {
                        MatchOp::Equal => MatchType::Equal,
                        MatchOp::NotEqual => MatchType::NotEqual,
                        MatchOp::Re(_) => MatchType::Regex,
                        MatchOp::NotRe(_) => MatchType::NotRegex,
                    };
                    Matcher::new(kind, m.name.clone(), m.value.clone())
                        .map(|mm| mm.matches(labels.get(&m.name).unwrap_or("")))
                        .unwrap_or(false)
                });
                if name_ok && all {
                    found = Some(*why);
                }
            }
        }
    });
    found
}

fn visit_selectors(e: &Expr, f: &mut dyn FnMut(&promql_parser::parser::VectorSelector)) {
    match e {
        Expr::VectorSelector(vs) => f(vs),
        Expr::MatrixSelector(ms) => f(&ms.vs),
        Expr::Subquery(s) => visit_selectors(&s.expr, f),
        Expr::Paren(p) => visit_selectors(&p.expr, f),
        Expr::Unary(u) => visit_selectors(&u.expr, f),
        Expr::Aggregate(a) => {
            visit_selectors(&a.expr, f);
            if let Some(p) = &a.param {
                visit_selectors(p, f);
            }
        }
        Expr::Binary(b) => {
            visit_selectors(&b.lhs, f);
            visit_selectors(&b.rhs, f);
        }
        Expr::Call(c) => c.args.args.iter().for_each(|a| visit_selectors(a, f)),
        _ => {}
    }
}

/// Float equality of the reference harness.
pub(crate) fn float_eq(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return argus_storage::is_stale_nan(a) == argus_storage::is_stale_nan(b);
    }
    if a == b {
        return true;
    }
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < 1e-6 * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < 1e-6
}

fn show(v: &Value) -> String {
    let mut s = String::new();
    match v {
        Value::Scalar(_, x) => {
            let _ = write!(s, "scalar {x}");
        }
        Value::String(_, x) => {
            let _ = write!(s, "string {x:?}");
        }
        Value::Vector(vs) => {
            s.push_str("vector:");
            for x in vs {
                match &x.h {
                    Some(h) => {
                        let _ = write!(s, "\n    {} {h}", x.labels);
                    }
                    None => {
                        let _ = write!(s, "\n    {} {}", x.labels, x.v);
                    }
                }
            }
        }
        Value::Matrix(m) => {
            s.push_str("matrix:");
            for x in m {
                let _ = write!(s, "\n    {} {:?}", x.labels, x.points);
                for (t, h) in &x.histograms {
                    let _ = write!(s, "\n      @{t} {h}");
                }
            }
        }
    }
    s
}

fn show_expected(e: &Eval) -> String {
    let x = &e.expect;
    if let Some(v) = x.scalar {
        return format!("scalar {v}");
    }
    if let Some(v) = &x.string {
        return format!("string {v:?}");
    }
    let mut s = String::new();
    for (l, items) in &x.series {
        let _ = write!(s, "\n    {l} {items:?}");
    }
    if s.is_empty() { " (empty)".into() } else { s }
}

fn compare(e: &Eval, got: &Value) -> Result<(), String> {
    let mismatch = |why: &str| {
        format!(
            "  {why}\n  expected:{}\n  got: {}",
            show_expected(e),
            show(got)
        )
    };
    let x = &e.expect;
    match got {
        Value::Scalar(_, v) => match x.scalar {
            Some(want) if float_eq(want, *v) => Ok(()),
            _ => Err(mismatch("scalar mismatch")),
        },
        Value::String(_, s) => match &x.string {
            Some(want) if want == s => Ok(()),
            _ => Err(mismatch("string mismatch")),
        },
        Value::Vector(vs) => {
            if x.scalar.is_some() || x.string.is_some() {
                return Err(mismatch("expected a scalar/string, got a vector"));
            }
            if vs.len() != x.series.len() {
                return Err(mismatch("series count differs"));
            }
            for (i, s) in vs.iter().enumerate() {
                let Some(pos) = x.series.iter().position(|(l, _)| *l == s.labels) else {
                    return Err(mismatch(&format!("unexpected series {}", s.labels)));
                };
                if x.ordered && pos != i {
                    return Err(mismatch(&format!(
                        "series {} at position {i}, want {pos}",
                        s.labels
                    )));
                }
                match (x.series[pos].1.first(), &s.h) {
                    (Some(Item::Value(want)), None) => {
                        if !float_eq(*want, s.v) {
                            return Err(mismatch(&format!("value of {} differs", s.labels)));
                        }
                    }
                    (Some(Item::Histogram(want)), Some(h)) => {
                        if !super::hist::approx_eq(want, h, float_eq) {
                            return Err(mismatch(&format!("histogram of {} differs", s.labels)));
                        }
                    }
                    (Some(_), _) => {
                        return Err(mismatch(&format!("sample kind of {} differs", s.labels)));
                    }
                    _ => return Err(mismatch("expected line has no value")),
                }
            }
            Ok(())
        }
        Value::Matrix(m) => {
            let (start, step) = match (e.range, x.range_vector) {
                (Some((s, _, st)), _) => (s, st),
                (None, Some((a, _, st))) => (a, st),
                _ => return Err(mismatch("unexpected range vector")),
            };
            if m.windows(2).any(|w| w[0].labels >= w[1].labels) {
                return Err(mismatch("result not sorted by labels"));
            }
            let mut expected_nonempty = 0;
            for (l, items) in &x.series {
                let want: Vec<(i64, f64)> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(k, it)| match it {
                        Item::Value(v) => Some((start + k as i64 * step, *v)),
                        _ => None,
                    })
                    .collect();
                let hwant: Vec<(i64, &super::hist::HistLit)> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(k, it)| match it {
                        Item::Histogram(h) => Some((start + k as i64 * step, &**h)),
                        _ => None,
                    })
                    .collect();
                if want.is_empty() && hwant.is_empty() {
                    continue;
                }
                expected_nonempty += 1;
                let Some(s) = m.iter().find(|s| s.labels == *l) else {
                    return Err(mismatch(&format!("missing series {l}")));
                };
                let same = s.points.len() == want.len()
                    && s.points
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.0 == b.0 && float_eq(a.1, b.1))
                    && s.histograms.len() == hwant.len()
                    && s.histograms
                        .iter()
                        .zip(&hwant)
                        .all(|(a, b)| a.0 == b.0 && super::hist::approx_eq(b.1, &a.1, float_eq));
                if !same {
                    return Err(mismatch(&format!("points of {l} differ")));
                }
            }
            if m.len() != expected_nonempty {
                return Err(mismatch("series count differs"));
            }
            Ok(())
        }
    }
}
