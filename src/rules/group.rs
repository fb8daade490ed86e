//! A rule group: evaluation of its rules at a timestamp (FORMAT.md C.1–C.5, C.7), the series
//! each rule wrote last (for stale markers), and the status snapshot for the API.

use super::alerting::{AlertEval, AlertSet, AlertState};
use super::expand::EngineQuery;
use super::file::{GroupSpec, RuleKind, RuleSpec};
use super::notify::OutgoingAlert;
use super::status::{AlertStatus, GroupStatus, Health, RuleStatus};
use argus_query::{Engine, Value};
use argus_storage::{Appendable, Labels, METRIC_NAME, Queryable, stale_nan};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Instant, SystemTime};

/// What a group evaluation needs from the server (or the unit-test runner).
pub struct EvalEnv<'a> {
    /// The PromQL engine.
    pub engine: &'a Engine,
    /// Where rule queries read.
    pub queryable: &'a dyn Queryable,
    /// Where rule output, `ALERTS` and stale markers go.
    pub appendable: &'a dyn Appendable,
    /// Global external labels (`$externalLabels` in templates; never added to series).
    pub external_labels: &'a BTreeMap<String, String>,
    /// For `generatorURL` and `$externalURL`.
    pub external_url: &'a str,
    /// `--rules.alert.resend-delay` (default 1m), ms.
    pub resend_delay_ms: i64,
}

/// Per-rule evaluation state.
#[derive(Clone, Debug)]
struct RuleState {
    spec: RuleSpec,
    health: Health,
    last_error: Option<String>,
    evaluation_time_secs: f64,
    last_evaluation: Option<SystemTime>,
    /// Series written by the last successful evaluation (stale-marked when they disappear).
    last_written: BTreeSet<Labels>,
    /// Alerting rules only.
    alerts: AlertSet,
}

/// A rule group with its evaluation state. Not shared: the scheduler owns it and calls
/// [`Group::eval`] from one task at a time.
pub struct Group {
    spec: GroupSpec,
    interval_ms: i64,
    query_offset_ms: i64,
    rules: Vec<RuleState>,
    evaluation_time_secs: f64,
    last_evaluation: Option<SystemTime>,
    /// Series of rules that disappeared on reload, stale-marked at the next evaluation.
    orphans: BTreeSet<Labels>,
}

impl Group {
    /// Builds a group; `interval` and `query_offset` fall back to the given defaults.
    pub fn new(spec: GroupSpec, default_interval_ms: i64, default_query_offset_ms: i64) -> Group {
        let interval_ms = spec.interval_ms.unwrap_or(default_interval_ms).max(1);
        let query_offset_ms = spec.query_offset_ms.unwrap_or(default_query_offset_ms);
        let rules = spec
            .rules
            .iter()
            .map(|r| RuleState {
                spec: r.clone(),
                health: Health::Unknown,
                last_error: None,
                evaluation_time_secs: 0.0,
                last_evaluation: None,
                last_written: BTreeSet::new(),
                alerts: AlertSet::default(),
            })
            .collect();
        Group {
            spec,
            interval_ms,
            query_offset_ms,
            rules,
            evaluation_time_secs: 0.0,
            last_evaluation: None,
            orphans: BTreeSet::new(),
        }
    }

    /// The definition.
    pub fn spec(&self) -> &GroupSpec {
        &self.spec
    }

    /// Effective evaluation interval, ms.
    pub fn interval_ms(&self) -> i64 {
        self.interval_ms
    }

    /// Effective query offset, ms.
    pub fn query_offset_ms(&self) -> i64 {
        self.query_offset_ms
    }

    /// Evaluates every rule in order at `t_ms` (C.1–C.5, C.7): each rule's output is committed
    /// before the next rule runs. Records health, last error, evaluation time and wall-clock
    /// last evaluation, and returns the alerts due for sending now (C.8).
    pub fn eval(&mut self, t_ms: i64, env: &EvalEnv<'_>) -> Vec<OutgoingAlert> {
        let started = Instant::now();
        self.last_evaluation = Some(SystemTime::now());
        let qt = t_ms.saturating_sub(self.query_offset_ms);
        if !self.orphans.is_empty() {
            let orphans = std::mem::take(&mut self.orphans);
            write_stale(env.appendable, orphans.iter(), qt);
        }
        let mut out = Vec::new();
        for i in 0..self.rules.len() {
            if let Some(r) = self.rules.get_mut(i) {
                eval_rule(
                    r,
                    t_ms,
                    qt,
                    self.interval_ms,
                    self.spec.limit,
                    env,
                    &mut out,
                );
            }
        }
        self.evaluation_time_secs = started.elapsed().as_secs_f64();
        out
    }

    /// Reload (C.1): takes over alert instances, the restored flag and the series written last
    /// time from `old` for rules with the same name and labels (first match wins). Series of
    /// `old` rules with no match get stale markers at this group's next evaluation.
    pub fn inherit_state(&mut self, old: &Group) {
        self.evaluation_time_secs = old.evaluation_time_secs;
        self.last_evaluation = old.last_evaluation;
        let mut used = vec![false; old.rules.len()];
        for r in &mut self.rules {
            let found = old.rules.iter().enumerate().find(|(i, o)| {
                !used.get(*i).copied().unwrap_or(true)
                    && o.spec.name == r.spec.name
                    && o.spec.labels == r.spec.labels
            });
            let Some((i, o)) = found else { continue };
            if let Some(u) = used.get_mut(i) {
                *u = true;
            }
            r.last_written = o.last_written.clone();
            if r.spec.kind == RuleKind::Alerting && o.spec.kind == RuleKind::Alerting {
                r.alerts.active = o.alerts.active.clone();
                r.alerts.restored |= o.alerts.restored;
            }
        }
        self.orphans = old.orphans.clone();
        for (i, o) in old.rules.iter().enumerate() {
            if !used.get(i).copied().unwrap_or(true) {
                self.orphans.extend(o.last_written.iter().cloned());
            }
        }
    }

    /// C.6: restores `for` state from `ALERTS_FOR_STATE` at wall-clock `now_ms`, then marks
    /// every alerting rule restored (so `ALERTS*` are written from the next evaluation on).
    pub fn restore_for_state(
        &mut self,
        now_ms: i64,
        env: &EvalEnv<'_>,
        outage_tolerance_ms: i64,
        grace_period_ms: i64,
    ) {
        for r in &mut self.rules {
            if r.spec.kind != RuleKind::Alerting {
                continue;
            }
            if r.spec.for_ms >= grace_period_ms {
                let series = super::restore::for_state_series(
                    env.queryable,
                    &r.spec,
                    now_ms.saturating_sub(outage_tolerance_ms),
                    now_ms,
                );
                for a in r.alerts.active.values_mut() {
                    let Some(&(down_at_ms, old_active_secs)) = series.get(&a.labels) else {
                        continue;
                    };
                    if let Some(t) = super::restore::restored_active_at(
                        now_ms,
                        down_at_ms,
                        old_active_secs,
                        r.spec.for_ms,
                        grace_period_ms,
                    ) {
                        a.active_at_ms = t;
                    }
                }
            }
            r.alerts.restored = true;
        }
    }

    /// Marks every alerting rule restored: `ALERTS` are written from the next evaluation on
    /// (promtool, and groups created by a reload).
    pub fn mark_restored(&mut self) {
        for r in &mut self.rules {
            r.alerts.restored = true;
        }
    }

    /// Group removed by reload (C.7): stale markers at `t_ms` for every series its rules wrote
    /// in their last evaluation (and for orphans not yet marked). Append errors are ignored.
    pub fn write_stale_markers(&mut self, t_ms: i64, appendable: &dyn Appendable) {
        let mut all = std::mem::take(&mut self.orphans);
        for r in &mut self.rules {
            all.extend(std::mem::take(&mut r.last_written));
        }
        write_stale(appendable, all.iter(), t_ms);
    }

    /// Snapshot for `/api/v1/rules` and `/api/v1/alerts`.
    pub fn status(&self) -> GroupStatus {
        GroupStatus {
            name: self.spec.name.clone(),
            file: self.spec.file.clone(),
            interval_ms: self.interval_ms,
            limit: self.spec.limit,
            evaluation_time_secs: self.evaluation_time_secs,
            last_evaluation: self.last_evaluation,
            rules: self.rules.iter().map(rule_status).collect(),
        }
    }

    /// Every alert instance of every alerting rule named `name` in state firing, as
    /// (labels, annotations) — what promtool's `alert_rule_test` compares.
    pub fn firing_alerts(&self, name: &str) -> Vec<(Labels, BTreeMap<String, String>)> {
        self.rules
            .iter()
            .filter(|r| r.spec.kind == RuleKind::Alerting && r.spec.name == name)
            .flat_map(|r| r.alerts.active.values())
            .filter(|a| a.state == AlertState::Firing)
            .map(|a| (a.labels.clone(), a.annotations.clone()))
            .collect()
    }

    /// Rules whose last evaluation failed: (name, error).
    pub fn rule_errors(&self) -> Vec<(String, String)> {
        self.rules
            .iter()
            .filter_map(|r| {
                r.last_error
                    .as_ref()
                    .map(|e| (r.spec.name.clone(), e.clone()))
            })
            .collect()
    }
}

fn rule_status(r: &RuleState) -> RuleStatus {
    match r.spec.kind {
        RuleKind::Recording => RuleStatus::Recording {
            name: r.spec.name.clone(),
            query: r.spec.query.clone(),
            labels: r.spec.labels.clone(),
            health: r.health,
            last_error: r.last_error.clone(),
            evaluation_time_secs: r.evaluation_time_secs,
            last_evaluation: r.last_evaluation,
        },
        RuleKind::Alerting => RuleStatus::Alerting {
            name: r.spec.name.clone(),
            query: r.spec.query.clone(),
            for_secs: r.spec.for_ms as f64 / 1000.0,
            keep_firing_for_secs: r.spec.keep_firing_for_ms as f64 / 1000.0,
            labels: r.spec.labels.clone(),
            annotations: r.spec.annotations.clone(),
            state: if r.last_evaluation.is_none() {
                AlertState::Unknown
            } else {
                r.alerts.rule_state()
            },
            alerts: r
                .alerts
                .active
                .values()
                .filter(|a| matches!(a.state, AlertState::Pending | AlertState::Firing))
                .map(|a| AlertStatus {
                    labels: a
                        .labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect(),
                    annotations: a.annotations.clone(),
                    state: a.state,
                    active_at_ms: a.active_at_ms,
                    keep_firing_since_ms: a.keep_firing_since_ms,
                    value: a.value,
                })
                .collect(),
            health: r.health,
            last_error: r.last_error.clone(),
            evaluation_time_secs: r.evaluation_time_secs,
            last_evaluation: r.last_evaluation,
        },
    }
}

/// Runs an instant query for a rule: a vector as is, a scalar as one sample without labels,
/// anything else an error.
pub(crate) fn query_samples(
    engine: &Engine,
    queryable: &dyn Queryable,
    expr: &str,
    t_ms: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    match engine.instant_query(queryable, expr, t_ms) {
        Ok(Value::Vector(v)) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
        Ok(Value::Scalar(_, v)) => Ok(vec![(Labels::empty(), v)]),
        Ok(_) => Err("rule result is not a vector or scalar".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `external_url/graph?g0.expr=<query-escaped expr>&g0.tab=1`.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{external_url}/graph?g0.expr={}&g0.tab=1",
        query_escape(expr)
    )
}

/// Go's `url.QueryEscape`: space as `+`, everything but `A-Za-z0-9-_.~` percent-encoded.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn write_stale<'a>(appendable: &dyn Appendable, series: impl Iterator<Item = &'a Labels>, t: i64) {
    let mut app = appendable.appender();
    for l in series {
        // Out-of-order and duplicate errors on markers are expected and ignored (C.7).
        let _ = app.append(None, l, t, stale_nan());
    }
    if let Err(e) = app.commit() {
        tracing::warn!(err = %e, "cannot write stale markers");
    }
}

fn recording_output(
    rule: &RuleSpec,
    result: Vec<(Labels, f64)>,
    limit: usize,
) -> Result<Vec<(Labels, f64)>, String> {
    let mut out = Vec::with_capacity(result.len());
    let mut seen = BTreeSet::new();
    for (mut l, v) in result {
        l.set(METRIC_NAME, &rule.name);
        for (k, val) in &rule.labels {
            l.set(k, val);
        }
        if !seen.insert(l.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push((l, v));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        ));
    }
    Ok(out)
}

fn eval_rule(
    r: &mut RuleState,
    t: i64,
    qt: i64,
    interval_ms: i64,
    limit: usize,
    env: &EvalEnv<'_>,
    out: &mut Vec<OutgoingAlert>,
) {
    let started = Instant::now();
    r.last_evaluation = Some(SystemTime::now());
    let result = query_samples(env.engine, env.queryable, &r.spec.query, qt);
    let samples = result.and_then(|res| match r.spec.kind {
        RuleKind::Recording => recording_output(&r.spec, res, limit),
        RuleKind::Alerting => {
            let ev = AlertEval {
                t_ms: t,
                limit,
                external_labels: env.external_labels,
                external_url: env.external_url,
                query: EngineQuery {
                    engine: env.engine,
                    queryable: env.queryable,
                    t_ms: t,
                },
            };
            r.alerts.eval(&r.spec, res, &ev)
        }
    });
    let samples = match samples {
        Ok(s) => s,
        Err(e) => {
            r.health = Health::Err;
            r.last_error = Some(e);
            r.evaluation_time_secs = started.elapsed().as_secs_f64();
            return;
        }
    };
    r.health = Health::Ok;
    r.last_error = None;
    if r.spec.kind == RuleKind::Alerting {
        let url = generator_url(env.external_url, &r.spec.query);
        out.extend(r.alerts.due(t, env.resend_delay_ms, interval_ms, &url));
    }
    let mut app = env.appendable.appender();
    let mut written = BTreeSet::new();
    for (l, v) in samples {
        match app.append(None, &l, qt, v) {
            Ok(_) => {
                written.insert(l);
            }
            Err(e) => {
                r.health = Health::Err;
                r.last_error = Some(e.to_string());
            }
        }
    }
    for l in r.last_written.difference(&written) {
        let _ = app.append(None, l, qt, stale_nan());
    }
    if let Err(e) = app.commit() {
        r.health = Health::Err;
        r.last_error = Some(e.to_string());
    }
    r.last_written = written;
    r.evaluation_time_secs = started.elapsed().as_secs_f64();
}
