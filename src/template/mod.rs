//! Go `text/template` with Prometheus's template functions, for alert labels and annotations.
//!
//! An alert template is parsed the way Prometheus does it: the user text is prefixed with
//! `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}`,
//! named `__alert_<alertname>`, and parsed with Go's checks (undefined variables and unknown
//! functions are parse errors; error positions count the invisible prefix). Execution follows
//! `text/template` with `missingkey=zero`: a missing label is empty, `{{ .Foo }}` is an error,
//! values print with Go's `%v` (`1.234567e+06`), and errors read as Go prints them
//! (`template: __alert_X:1:115: executing "__alert_X" at <first>: error calling first: …`).
//! The pipeline is lexer (`lex`) → parser to an AST (`parse`, `ast`) → executor (`exec`,
//! `eval`) over dynamic values (`value`), with Go's built-ins (`builtins`, `printf`) and
//! Prometheus's functions (`funcs`, `humanize`, `gotime`). Output, work and `template`
//! recursion are bounded, so no rule file can hang or exhaust the evaluator.
//!
//! ```
//! use argus::template::{expand_alert_template, AlertTemplateData, QuerySample, TemplateQuery};
//! use std::collections::BTreeMap;
//! struct NoQuery;
//! impl TemplateQuery for NoQuery {
//!     fn query(&self, _: &str) -> Result<Vec<QuerySample>, String> { Ok(Vec::new()) }
//! }
//! let labels = BTreeMap::from([("instance".to_string(), "a:9100".to_string())]);
//! let ext = BTreeMap::new();
//! let data = AlertTemplateData { labels: &labels, external_labels: &ext, external_url: "", value: 1234567.0, eval_time_secs: 0.0 };
//! let out = expand_alert_template("Up", "{{ $labels.instance }} = {{ $value }} ({{ humanize $value }})", &data, &NoQuery);
//! assert_eq!(out.unwrap(), "a:9100 = 1.234567e+06 (1.235M)");
//! ```

mod ast;
mod builtins;
mod eval;
mod exec;
mod float;
mod funcs;
mod gostr;
mod gotime;
mod humanize;
mod lex;
mod number;
mod parse;
mod printf;
mod value;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::rc::Rc;

/// A sample returned by the template `query` function.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySample {
    /// Labels of the series, including `__name__` when it has one.
    pub labels: BTreeMap<String, String>,
    /// The sample value.
    pub value: f64,
}

/// Runs PromQL for the `query` template function (the caller evaluates at the rule's
/// evaluation time). Err is the message the template error shows after `error calling query: `.
pub trait TemplateQuery {
    /// Evaluates `expr` as an instant query.
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String>;
}

/// Data of one alert template expansion.
pub struct AlertTemplateData<'a> {
    /// The result sample's labels, including `__name__` if any (`$labels`, `.Labels`).
    pub labels: &'a BTreeMap<String, String>,
    /// Global external labels (`$externalLabels`).
    pub external_labels: &'a BTreeMap<String, String>,
    /// `--web.external-url`; `""` when none (`$externalURL`; `externalURL`/`pathPrefix` then fail
    /// as they do in promtool).
    pub external_url: &'a str,
    /// The sample value (`$value`).
    pub value: f64,
    /// Evaluation time in seconds (`now`).
    pub eval_time_secs: f64,
}

/// A template error; `Display` is the Go-style text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The text does not parse, e.g. `template: __alert_X:1: undefined variable "$label"`.
    #[error("{0}")]
    Parse(String),
    /// Parsing or execution failed during expansion, e.g. `error executing template __alert_X:
    /// template: __alert_X:1:114: executing "__alert_X" at <.Foo>: can't evaluate field Foo …`.
    #[error("{0}")]
    Expand(String),
}

/// The variable definitions Prometheus puts in front of every alert template.
const ALERT_PREFIX: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Largest template text accepted, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 1 << 20;

/// A parsed alert template, reusable for every alert of a rule. `Send + Sync`.
#[derive(Debug)]
pub struct AlertTemplate {
    name: String,
    /// `None` when the text has no action and expands to itself.
    parsed: Option<Parsed>,
    text: String,
}

#[derive(Debug)]
struct Parsed {
    source: String,
    trees: parse::TreeSet,
}

impl AlertTemplate {
    /// Parses `text` as the template of alert `alert_name`. Err is Go's parse error text.
    pub fn parse(alert_name: &str, text: &str) -> Result<Self, TemplateError> {
        let name = format!("__alert_{alert_name}");
        if !text.contains("{{") {
            return Ok(AlertTemplate {
                name,
                parsed: None,
                text: text.to_string(),
            });
        }
        if text.len() > MAX_TEMPLATE_LEN {
            return Err(TemplateError::Parse(format!(
                "template: {name}: template text exceeds {MAX_TEMPLATE_LEN} bytes"
            )));
        }
        let source = format!("{ALERT_PREFIX}{text}");
        let trees = parse::parse(&name, &source, &|f| funcs::Func::lookup(f).is_some())
            .map_err(TemplateError::Parse)?;
        Ok(AlertTemplate {
            name,
            parsed: Some(Parsed { source, trees }),
            text: text.to_string(),
        })
    }

    /// The template text as written in the rule.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Expands the template for one alert. Err reads `error executing template __alert_X: …`.
    pub fn execute(
        &self,
        data: &AlertTemplateData<'_>,
        query: &dyn TemplateQuery,
    ) -> Result<String, TemplateError> {
        let Some(p) = &self.parsed else {
            return Ok(self.text.clone());
        };
        let ctx = funcs::FuncCtx {
            query,
            eval_time_secs: data.eval_time_secs,
            external_url: data.external_url,
        };
        let dot = value::Value::Data(Rc::new(value::AlertFields {
            labels: Rc::new(data.labels.clone()),
            external_labels: Rc::new(data.external_labels.clone()),
            external_url: Rc::from(data.external_url),
            value: data.value,
        }));
        let mut ex = exec::Exec::new(&p.trees, &p.source, &self.name, ctx);
        ex.run(&self.name, dot).map_err(|e| {
            TemplateError::Expand(format!("error executing template {}: {e}", self.name))
        })?;
        Ok(ex.out)
    }
}

/// Parse-time check of an alert label/annotation template (variables `$labels`,
/// `$externalLabels`, `$externalURL`, `$value` predefined; Prometheus functions available).
/// Err text as Go prints it, e.g. `template: __alert_InstanceDown:1: undefined variable "$label"`.
pub fn check_alert_template(alert_name: &str, text: &str) -> Result<(), TemplateError> {
    AlertTemplate::parse(alert_name, text).map(|_| ())
}

/// Expands one alert template. Err = the Go-style error text; the caller renders
/// `<error expanding template: {err}>`. Templates without `{{` return the text unchanged.
pub fn expand_alert_template(
    alert_name: &str,
    text: &str,
    data: &AlertTemplateData<'_>,
    query: &dyn TemplateQuery,
) -> Result<String, TemplateError> {
    let t = AlertTemplate::parse(alert_name, text).map_err(|e| {
        TemplateError::Expand(format!("error parsing template __alert_{alert_name}: {e}"))
    })?;
    t.execute(data, query)
}

/// Go's `%v` for float64 (`strconv.FormatFloat(v, 'g', -1, 64)` with Go's exponent form:
/// `1e-05`, `1.234567e+06`, `+Inf`, `NaN`).
pub fn format_go_float(v: f64) -> String {
    argus_query::gofloat::format_g(v)
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: `1e+00`, `1.234567e+06`, `NaN`, `+Inf`.
pub fn format_go_float_e(v: f64) -> String {
    float::fmt_e_shortest(v)
}

/// Prometheus's `humanize`: SI prefixes with 4 significant digits (`1.235M`, `120m`).
pub fn humanize(v: f64) -> String {
    humanize::humanize(v)
}

/// Prometheus's `humanizeDuration`: `1d 1h 0m 0s`, `1.234s`, `100ms`.
pub fn humanize_duration(secs: f64) -> String {
    humanize::humanize_duration(secs)
}
