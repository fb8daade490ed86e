//! Rule validation (FORMAT.md A.4) with Prometheus's messages and error layout (A.5).

use super::file::{RawRule, RuleKind, RuleSpec};
use argus_query::names::{ValidationScheme, is_valid_label_name, is_valid_metric_name};
use std::fmt;

/// A YAML value-node position (`line:col`, 1-based; `0:0` when the key is absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos(pub usize, pub usize);

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// One problem with a rule, with zero, one or two positions.
#[derive(Clone, Debug)]
pub(crate) struct WrappedError {
    pub msg: String,
    pub pos: Option<Pos>,
    pub pos2: Option<Pos>,
}

/// A rule error as the loader prints it.
pub(crate) struct RuleError<'a> {
    pub group: &'a str,
    pub index: usize,
    pub name: &'a str,
    pub err: WrappedError,
}

impl fmt::Display for RuleError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.err.pos {
            write!(f, "{p}: ")?;
            if let Some(p2) = self.err.pos2 {
                write!(f, "{p2}: ")?;
            }
        }
        write!(
            f,
            "group {}, rule {}, {}: {}",
            go_quote(self.group),
            self.index,
            go_quote(self.name),
            self.err.msg
        )
    }
}

/// Go's `%q` for a string: double quotes, `\"`, `\\` and escapes for control characters.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The validation scheme of a `legacy_names` flag.
pub(crate) fn scheme(legacy: bool) -> ValidationScheme {
    if legacy {
        ValidationScheme::Legacy
    } else {
        ValidationScheme::Utf8
    }
}

/// Parses a rule expression with the engine's guarded parser and returns its canonical text.
pub fn canonical_expr(expr: &str) -> Result<String, String> {
    super::expand::parse_expr(expr).map(|e| e.to_string())
}

fn at(msg: impl Into<String>, pos: Pos) -> WrappedError {
    WrappedError {
        msg: msg.into(),
        pos: Some(pos),
        pos2: None,
    }
}

fn bare(msg: impl Into<String>) -> WrappedError {
    WrappedError {
        msg: msg.into(),
        pos: None,
        pos2: None,
    }
}

/// Validates one decoded rule. `Ok(None)` never happens for a valid rule; every applicable
/// check is reported.
pub(crate) fn rule(r: &RawRule, legacy: bool) -> Result<Option<RuleSpec>, Vec<WrappedError>> {
    let mut errs = Vec::new();
    let (record, alert) = (&r.record.0, &r.alert.0);
    if !record.is_empty() && !alert.is_empty() {
        errs.push(WrappedError {
            msg: "only one of 'record' and 'alert' must be set".into(),
            pos: Some(r.record.1),
            pos2: Some(r.alert.1),
        });
    }
    if record.is_empty() && alert.is_empty() {
        errs.push(WrappedError {
            msg: "one of 'record' or 'alert' must be set".into(),
            pos: Some(r.record.1),
            pos2: Some(r.alert.1),
        });
    }
    let mut query = String::new();
    if r.expr.0.is_empty() {
        errs.push(at("field 'expr' must be set in rule", r.expr.1));
    } else {
        match canonical_expr(&r.expr.0) {
            Ok(q) => query = q,
            Err(e) => errs.push(at(format!("could not parse expression: {e}"), r.expr.1)),
        }
    }
    if !record.is_empty() {
        if !r.annotations.is_empty() {
            errs.push(at(
                "invalid field 'annotations' in recording rule",
                r.record.1,
            ));
        }
        if r.for_ms != 0 {
            errs.push(at("invalid field 'for' in recording rule", r.record.1));
        }
        if r.keep_firing_for_ms != 0 {
            errs.push(at(
                "invalid field 'keep_firing_for' in recording rule",
                r.record.1,
            ));
        }
        if !is_valid_metric_name(record, scheme(legacy)) {
            errs.push(at(
                format!("invalid recording rule name: {record}"),
                r.record.1,
            ));
        }
        if record.contains('{') || record.contains('}') {
            errs.push(at(
                format!(
                    "braces present in the recording rule name; should it be in expr?: {record}"
                ),
                r.record.1,
            ));
        }
    }
    for (k, _) in &r.labels {
        if !is_valid_label_name(k, scheme(legacy)) || k == "__name__" {
            errs.push(bare(format!("invalid label name: {k}")));
        }
    }
    for (k, _) in &r.annotations {
        if !is_valid_label_name(k, scheme(legacy)) {
            errs.push(bare(format!("invalid annotation name: {k}")));
        }
    }
    if !alert.is_empty() {
        for (k, v) in &r.labels {
            if let Err(e) = super::expand::check_template(alert, v) {
                errs.push(bare(format!("label {}: {e}", go_quote(k))));
            }
        }
        for (k, v) in &r.annotations {
            if let Err(e) = super::expand::check_template(alert, v) {
                errs.push(bare(format!("annotation {}: {e}", go_quote(k))));
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let alerting = !alert.is_empty();
    Ok(Some(RuleSpec {
        kind: if alerting {
            RuleKind::Alerting
        } else {
            RuleKind::Recording
        },
        name: if alerting {
            alert.clone()
        } else {
            record.clone()
        },
        query,
        for_ms: r.for_ms,
        keep_firing_for_ms: r.keep_firing_for_ms,
        labels: r.labels.iter().cloned().collect(),
        annotations: r.annotations.iter().cloned().collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_label_name("ins-tance", scheme(false)));
        assert!(!is_valid_label_name("ins-tance", scheme(true)));
        assert!(is_valid_label_name("_a1", scheme(true)));
        assert!(!is_valid_label_name("", scheme(false)));
        assert!(is_valid_metric_name("a:b_c", scheme(true)));
        assert!(!is_valid_metric_name("1a", scheme(true)));
        assert_eq!(go_quote("a\"b"), "\"a\\\"b\"");
    }
}
