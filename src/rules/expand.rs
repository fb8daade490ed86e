//! The bridge from rules to the PromQL parser and the template engine (`crate::template`):
//! parsing rule expressions, checking alert templates at load time and expanding them at
//! evaluation time with a `query` function over the engine at the evaluation time.

use crate::template::{self, AlertTemplateData, QuerySample, TemplateQuery};
use argus_storage::{Labels, Queryable};
use std::collections::BTreeMap;

/// Parses a rule expression with the engine's guarded parser.
pub(crate) fn parse_expr(expr: &str) -> Result<promql_parser::parser::Expr, String> {
    argus_query::parse_expr(expr).map_err(|e| e.to_string())
}

/// Checks that `text` parses as an alert template (FORMAT.md A.4 check 7).
pub(crate) fn check_template(alert: &str, text: &str) -> Result<(), String> {
    template::check_alert_template(alert, text).map_err(|e| e.to_string())
}

/// What an alert template sees (FORMAT.md C.9).
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
pub(crate) struct EngineQuery<'a> {
    pub engine: &'a argus_query::Engine,
    pub queryable: &'a dyn Queryable,
    pub t_ms: i64,
}

impl TemplateQuery for EngineQuery<'_> {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        let samples = super::group::query_samples(self.engine, self.queryable, expr, self.t_ms)?;
        Ok(samples
            .into_iter()
            .map(|(l, value)| QuerySample {
                labels: to_map(&l),
                value,
            })
            .collect())
    }
}

fn to_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect()
}

/// Expands one alert label or annotation template; a failure renders as
/// `<error expanding template: …>` and is logged.
pub(crate) fn expand(alert: &str, text: &str, data: &AlertData<'_>, q: &EngineQuery<'_>) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let labels = to_map(data.labels);
    let d = AlertTemplateData {
        labels: &labels,
        external_labels: data.external_labels,
        external_url: data.external_url,
        value: data.value,
        eval_time_secs: data.eval_time_secs,
    };
    match template::expand_alert_template(alert, text, &d, q) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(alert, err = %e, "expanding alert template failed");
            format!("<error expanding template: {e}>")
        }
    }
}
