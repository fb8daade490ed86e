//! `GET /api/v1/rules` and `GET /api/v1/alerts` over the rule manager's group statuses.
//!
//! Field order, filters, pagination and error texts follow Prometheus (`web/api/v1/api.go`,
//! described in `shared/conformance/rules/FORMAT.md` D). JSON is written by hand so that the
//! field order and Go's number and time formats are exact.

use super::error::ApiError;
use super::format::push_json_str;
use super::params::Params;
use super::{SharedState, read_params, success_json};
use crate::rules::{AlertState, AlertStatus, GroupStatus, Health, RuleStatus};
use crate::util::time::rfc3339_nano;
use argus_storage::Matcher;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Which rule kinds `type=` keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kinds {
    All,
    Alerting,
    Recording,
}

/// The parsed parameters of `/api/v1/rules`.
#[derive(Debug)]
struct RulesQuery {
    kinds: Kinds,
    rule_names: HashSet<String>,
    groups: HashSet<String>,
    files: HashSet<String>,
    matchers: Vec<Vec<Matcher>>,
    exclude_alerts: bool,
    /// `group_limit` and `group_next_token`; the token only with a limit.
    page: Option<(usize, Option<String>)>,
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl RulesQuery {
    /// Checks in Prometheus's order: `match[]`, `type`, `exclude_alerts`, pagination.
    fn parse(p: &Params) -> Result<Self, ApiError> {
        let set = |name: &str| p.all(name).into_iter().map(str::to_string).collect();
        let matchers = p.selectors()?;
        let typ = p.get("type").unwrap_or("").to_lowercase();
        let kinds = match typ.as_str() {
            "" => Kinds::All,
            "alert" => Kinds::Alerting,
            "record" => Kinds::Recording,
            _ => {
                return Err(ApiError::invalid_param(
                    "type",
                    format!("not supported value {typ:?}"),
                ));
            }
        };
        let exclude = p.get("exclude_alerts").unwrap_or("").to_lowercase();
        let exclude_alerts = if exclude.is_empty() {
            false
        } else {
            parse_go_bool(&exclude).ok_or_else(|| {
                ApiError::invalid_param(
                    "exclude_alerts",
                    format!(
                        "error converting exclude_alerts: strconv.ParseBool: parsing {exclude:?}: invalid syntax"
                    ),
                )
            })?
        };
        let limit = p.get("group_limit");
        let token = p.get("group_next_token");
        if token.is_some() && limit.is_none() {
            return Err(ApiError::invalid_param(
                "group_next_token",
                "group_limit needs to be present in order to paginate over the groups",
            ));
        }
        let page = match limit {
            None => None,
            Some(s) => {
                let n: i32 = s.parse().map_err(|_| {
                    ApiError::invalid_param(
                        "group_limit",
                        format!(
                            "group_limit needs to be a valid number: strconv.ParseInt: parsing {s:?}: {}",
                            if s.trim_start_matches(['-', '+']).bytes().all(|b| b.is_ascii_digit())
                                && !s.trim_start_matches(['-', '+']).is_empty()
                            {
                                "value out of range"
                            } else {
                                "invalid syntax"
                            }
                        ),
                    )
                })?;
                if n <= 0 {
                    return Err(ApiError::invalid_param(
                        "group_limit",
                        "group_limit needs to be greater than 0",
                    ));
                }
                Some((
                    usize::try_from(n).unwrap_or(usize::MAX),
                    token.map(str::to_string),
                ))
            }
        };
        Ok(Self {
            kinds,
            rule_names: set("rule_name[]"),
            groups: set("rule_group[]"),
            files: set("file[]"),
            matchers,
            exclude_alerts,
            page,
        })
    }
}

/// The pagination token of a group: hex SHA-256 of `<file>;<name>`.
fn group_token(file: &str, name: &str) -> String {
    let mut h = Sha256::new();
    h.update(file.as_bytes());
    h.update(b";");
    h.update(name.as_bytes());
    let mut out = String::with_capacity(64);
    for b in h.finalize() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether the configured labels of a rule match one of the matcher sets (none = all).
fn labels_match(sets: &[Vec<Matcher>], labels: &BTreeMap<String, String>) -> bool {
    sets.is_empty()
        || sets.iter().any(|set| {
            set.iter()
                .all(|m| m.matches(labels.get(&m.name).map(String::as_str).unwrap_or("")))
        })
}

/// A label map as a JSON object in name order (`{}` when empty).
fn push_map(out: &mut String, m: &BTreeMap<String, String>) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, k);
        out.push(':');
        push_json_str(out, v);
    }
    out.push('}');
}

/// Appends a float as Prometheus's JSON has it for durations: Go's `%v` (shortest digits,
/// an exponent below 1e-4 or from 1e21: `3.8651e-05`, `0.000296612`, `3600`).
fn push_json_float(out: &mut String, v: f64) {
    if v.is_finite() {
        out.push_str(&crate::template::format_go_float(v));
    } else {
        // Not representable in JSON; durations are never infinite or NaN.
        out.push('0');
    }
}

fn push_ms_seconds(out: &mut String, ms: i64) {
    push_json_float(out, ms as f64 / 1000.0);
}

/// Go's zero `time.Time` for "never".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn push_wall_time(out: &mut String, t: Option<SystemTime>) {
    out.push('"');
    match t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
        Some(d) => out.push_str(&rfc3339_nano(
            i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        )),
        None => out.push_str(ZERO_TIME),
    }
    out.push('"');
}

fn push_ms_time(out: &mut String, ms: i64) {
    out.push('"');
    out.push_str(&rfc3339_nano(ms.saturating_mul(1_000_000)));
    out.push('"');
}

/// One alert object (D.2).
fn push_alert(out: &mut String, a: &AlertStatus) {
    out.push_str("{\"labels\":");
    push_map(out, &a.labels);
    out.push_str(",\"annotations\":");
    push_map(out, &a.annotations);
    out.push_str(",\"state\":\"");
    out.push_str(a.state.as_str());
    out.push_str("\",\"activeAt\":");
    push_ms_time(out, a.active_at_ms);
    if let Some(t) = a.keep_firing_since_ms {
        out.push_str(",\"keepFiringSince\":");
        push_ms_time(out, t);
    }
    out.push_str(",\"value\":");
    push_json_str(out, &crate::template::format_go_float_e(a.value));
    out.push('}');
}

/// Whether an alert is listed (pending or firing).
fn is_active(a: &AlertStatus) -> bool {
    matches!(a.state, AlertState::Pending | AlertState::Firing)
}

/// The shared tail of both rule objects: health, lastError, evaluationTime, lastEvaluation.
fn push_rule_tail(
    out: &mut String,
    health: Health,
    last_error: Option<&str>,
    evaluation_time_secs: f64,
    last_evaluation: Option<SystemTime>,
) {
    out.push_str(",\"health\":\"");
    out.push_str(health.as_str());
    out.push('"');
    if let Some(e) = last_error.filter(|e| !e.is_empty()) {
        out.push_str(",\"lastError\":");
        push_json_str(out, e);
    }
    out.push_str(",\"evaluationTime\":");
    push_json_float(out, evaluation_time_secs);
    out.push_str(",\"lastEvaluation\":");
    push_wall_time(out, last_evaluation);
}

fn rule_name(r: &RuleStatus) -> &str {
    match r {
        RuleStatus::Recording { name, .. } | RuleStatus::Alerting { name, .. } => name,
    }
}

fn rule_labels(r: &RuleStatus) -> &BTreeMap<String, String> {
    match r {
        RuleStatus::Recording { labels, .. } | RuleStatus::Alerting { labels, .. } => labels,
    }
}

/// One rule object, or nothing (false) when `kinds` excludes it.
fn push_rule(out: &mut String, r: &RuleStatus, q: &RulesQuery) -> bool {
    match r {
        RuleStatus::Alerting {
            name,
            query,
            for_secs,
            keep_firing_for_secs,
            labels,
            annotations,
            state,
            alerts,
            health,
            last_error,
            evaluation_time_secs,
            last_evaluation,
        } => {
            if q.kinds == Kinds::Recording {
                return false;
            }
            out.push_str("{\"state\":\"");
            out.push_str(state.as_str());
            out.push_str("\",\"name\":");
            push_json_str(out, name);
            out.push_str(",\"query\":");
            push_json_str(out, query);
            out.push_str(",\"duration\":");
            push_json_float(out, *for_secs);
            out.push_str(",\"keepFiringFor\":");
            push_json_float(out, *keep_firing_for_secs);
            out.push_str(",\"labels\":");
            push_map(out, labels);
            out.push_str(",\"annotations\":");
            push_map(out, annotations);
            out.push_str(",\"alerts\":");
            if q.exclude_alerts {
                out.push_str("null");
            } else {
                out.push('[');
                for (i, alert) in alerts.iter().filter(|a| is_active(a)).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_alert(out, alert);
                }
                out.push(']');
            }
            push_rule_tail(
                out,
                *health,
                last_error.as_deref(),
                *evaluation_time_secs,
                *last_evaluation,
            );
            out.push_str(",\"type\":\"alerting\"}");
        }
        RuleStatus::Recording {
            name,
            query,
            labels,
            health,
            last_error,
            evaluation_time_secs,
            last_evaluation,
        } => {
            if q.kinds == Kinds::Alerting {
                return false;
            }
            out.push_str("{\"name\":");
            push_json_str(out, name);
            out.push_str(",\"query\":");
            push_json_str(out, query);
            out.push_str(",\"labels\":");
            push_map(out, labels);
            push_rule_tail(
                out,
                *health,
                last_error.as_deref(),
                *evaluation_time_secs,
                *last_evaluation,
            );
            out.push_str(",\"type\":\"recording\"}");
        }
    }
    true
}

/// The `data` object of `/api/v1/rules`. `groups` must be ordered by file, then name.
fn render_rules(groups: &[GroupStatus], q: &RulesQuery) -> Result<String, ApiError> {
    let mut out = String::from("{\"groups\":[");
    let mut emitted = 0usize;
    let mut next_token = None;
    let mut found_token = false;
    let mut rules = String::new();
    for g in groups {
        if let Some((_, Some(token))) = &q.page
            && !found_token
        {
            if *token != group_token(&g.file, &g.name) {
                continue;
            }
            found_token = true;
        }
        if !q.groups.is_empty() && !q.groups.contains(&g.name) {
            continue;
        }
        if !q.files.is_empty() && !q.files.contains(&g.file) {
            continue;
        }
        rules.clear();
        let mut n = 0usize;
        for r in &g.rules {
            if !labels_match(&q.matchers, rule_labels(r)) {
                continue;
            }
            if !q.rule_names.is_empty() && !q.rule_names.contains(rule_name(r)) {
                continue;
            }
            let mark = rules.len();
            if n > 0 {
                rules.push(',');
            }
            if push_rule(&mut rules, r, q) {
                n += 1;
            } else {
                rules.truncate(mark);
            }
        }
        if n == 0 {
            continue;
        }
        if let Some((limit, _)) = q.page
            && emitted == limit
        {
            next_token = Some(group_token(&g.file, &g.name));
            break;
        }
        if emitted > 0 {
            out.push(',');
        }
        emitted += 1;
        out.push_str("{\"name\":");
        push_json_str(&mut out, &g.name);
        out.push_str(",\"file\":");
        push_json_str(&mut out, &g.file);
        out.push_str(",\"rules\":[");
        out.push_str(&rules);
        out.push_str("],\"interval\":");
        push_ms_seconds(&mut out, g.interval_ms);
        let _ = write!(out, ",\"limit\":{}", g.limit);
        out.push_str(",\"evaluationTime\":");
        push_json_float(&mut out, g.evaluation_time_secs);
        out.push_str(",\"lastEvaluation\":");
        push_wall_time(&mut out, g.last_evaluation);
        out.push('}');
    }
    if let Some((_, Some(token))) = &q.page
        && !found_token
    {
        return Err(ApiError::invalid_param(
            "group_next_token",
            format!("invalid group_next_token '{token}'. were rule groups changed?"),
        ));
    }
    out.push(']');
    if let Some(t) = next_token {
        out.push_str(",\"groupNextToken\":\"");
        out.push_str(&t);
        out.push('"');
    }
    out.push('}');
    Ok(out)
}

/// The `data` object of `/api/v1/alerts`: every pending or firing alert.
fn render_alerts(groups: &[GroupStatus]) -> String {
    let mut out = String::from("{\"alerts\":[");
    let mut first = true;
    let alerts = groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| match r {
            RuleStatus::Alerting { alerts, .. } => Some(alerts),
            RuleStatus::Recording { .. } => None,
        })
        .flatten()
        .filter(|a| is_active(a));
    for a in alerts {
        if !first {
            out.push(',');
        }
        first = false;
        push_alert(&mut out, a);
    }
    out.push_str("]}");
    out
}

/// `GET /api/v1/rules`.
pub async fn rules(State(state): State<SharedState>, req: Request) -> Response {
    let params = match read_params(req).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let q = match RulesQuery::parse(&params) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let groups = match &state.rules {
        Some(m) => m.statuses().await,
        None => Vec::new(),
    };
    match render_rules(&groups, &q) {
        Ok(data) => success_json(&data, &[]),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/v1/alerts`.
pub async fn alerts(State(state): State<SharedState>) -> Response {
    let groups = match &state.rules {
        Some(m) => m.statuses().await,
        None => Vec::new(),
    };
    success_json(&render_alerts(&groups), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_floats_follow_go() {
        let check = |v: f64, want: &str| {
            let mut s = String::new();
            push_json_float(&mut s, v);
            assert_eq!(s, want, "{v}");
        };
        check(0.0, "0");
        check(2.0, "2");
        check(3600.0, "3600");
        check(0.000296612, "0.000296612");
        check(3.8651e-05, "3.8651e-05");
        check(0.000841701, "0.000841701");
        check(1e21, "1e+21");
        check(1.5e-7, "1.5e-07");
    }

    #[test]
    fn values_use_go_e_format() {
        let check =
            |v: f64, want: &str| assert_eq!(crate::template::format_go_float_e(v), want, "{v}");
        check(1.0, "1e+00");
        check(1234567.0, "1.234567e+06");
        check(0.5, "5e-01");
        check(-2.5e-300, "-2.5e-300");
        check(f64::NAN, "NaN");
        check(f64::INFINITY, "+Inf");
        check(f64::NEG_INFINITY, "-Inf");
    }

    #[test]
    fn token_is_sha256_hex() {
        let t = group_token("a.yml", "g");
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(t, group_token("a.yml", "h"));
        // sha256("a;b")
        assert_eq!(
            group_token("a", "b"),
            "5719af18823567701f70e9f302f75d96e574215493286286a57b0a4959672283"
        );
    }

    #[test]
    fn parameter_errors() {
        let check = |q: &str, want: &str| {
            let p = Params::new(Some(q), None).unwrap();
            let e = RulesQuery::parse(&p).unwrap_err();
            assert_eq!(e.message, want, "{q}");
        };
        check(
            "type=bogus",
            "invalid parameter \"type\": not supported value \"bogus\"",
        );
        check(
            "group_next_token=abc",
            "invalid parameter \"group_next_token\": group_limit needs to be present in order to paginate over the groups",
        );
        check(
            "group_limit=0",
            "invalid parameter \"group_limit\": group_limit needs to be greater than 0",
        );
        check(
            "exclude_alerts=maybe",
            "invalid parameter \"exclude_alerts\": error converting exclude_alerts: strconv.ParseBool: parsing \"maybe\": invalid syntax",
        );
        let p = Params::new(Some("type=ALERT&exclude_alerts=TRUE&group_limit=2"), None).unwrap();
        let q = RulesQuery::parse(&p).unwrap();
        assert_eq!(q.kinds, Kinds::Alerting);
        assert!(q.exclude_alerts);
        assert_eq!(q.page, Some((2, None)));
    }
}
