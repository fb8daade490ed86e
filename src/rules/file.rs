//! Rule files (FORMAT.md A): strict decoding with `yaml.v3`-style errors, then validation with
//! Prometheus's exact messages and value-node positions.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::validate::{self, Pos, RuleError};
use super::yaml::{self, Errors, Node};
use std::collections::BTreeMap;
use std::path::Path;

/// How rule files are decoded and validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Unknown YAML keys are ignored instead of being errors (`--ignore-unknown-fields`).
    pub ignore_unknown_fields: bool,
    /// Metric and label names are checked against the legacy charset
    /// (`metric_name_validation_scheme: legacy`) instead of "any UTF-8".
    pub legacy_names: bool,
}

/// A rule-file error: `<path>: <message>` (FORMAT.md A.5).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RuleFileError {
    /// The file as named by the caller (glob result).
    pub path: String,
    /// The message, position and group/rule prefix included.
    pub message: String,
}

/// A validated rule group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSpec {
    /// File path as loaded (identity together with `name`).
    pub file: String,
    /// Group name, unique within the file.
    pub name: String,
    /// `interval`; `None` when absent or 0 (the global evaluation interval applies).
    pub interval_ms: Option<i64>,
    /// `query_offset`; `None` when absent (the global `rule_query_offset` applies).
    pub query_offset_ms: Option<i64>,
    /// `limit`; 0 = unlimited.
    pub limit: usize,
    /// Group `labels`.
    pub labels: BTreeMap<String, String>,
    /// Rules in file order.
    pub rules: Vec<RuleSpec>,
}

/// Recording or alerting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// `record:`
    Recording,
    /// `alert:`
    Alerting,
}

/// A validated rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// Recording or alerting.
    pub kind: RuleKind,
    /// `record` or `alert` value.
    pub name: String,
    /// The expression in canonical form (`Expr`'s `Display`).
    pub query: String,
    /// `for`, ms (alerting only).
    pub for_ms: i64,
    /// `keep_firing_for`, ms (alerting only).
    pub keep_firing_for_ms: i64,
    /// Group labels with the rule's own labels merged over them (alerting: unexpanded templates).
    pub labels: BTreeMap<String, String>,
    /// Annotations (unexpanded templates; alerting only).
    pub annotations: BTreeMap<String, String>,
}

impl RuleSpec {
    /// The `record` or `alert` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The canonical expression text.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Whether this is an alerting rule.
    pub fn is_alerting(&self) -> bool {
        self.kind == RuleKind::Alerting
    }
}

/// Expands `patterns` (globs, relative to `base_dir`), parses and validates every matched file.
/// A pattern matching nothing is not an error. Returns every error of every file.
pub fn load_groups(
    patterns: &[String],
    base_dir: &Path,
    opts: &LoadOptions,
) -> Result<Vec<GroupSpec>, Vec<RuleFileError>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for pattern in patterns {
        let files = match expand_glob(pattern, base_dir) {
            Ok(f) => f,
            Err(message) => {
                errors.push(RuleFileError {
                    path: pattern.clone(),
                    message,
                });
                continue;
            }
        };
        for path in files {
            match parse_file(&path, opts) {
                Ok(g) => groups.extend(g),
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Expands one glob relative to `base_dir`; the results are sorted.
pub fn expand_glob(pattern: &str, base_dir: &Path) -> Result<Vec<String>, String> {
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_string()
    } else {
        base_dir.join(pattern).to_string_lossy().into_owned()
    };
    let paths =
        glob::glob(&full).map_err(|e| format!("error retrieving rule files for {pattern}: {e}"))?;
    let mut out: Vec<String> = paths
        .filter_map(Result::ok)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    out.sort();
    Ok(out)
}

/// Largest rule file read.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads, parses and validates one rule file; errors are prefixed with `path`.
pub fn parse_file(path: &str, opts: &LoadOptions) -> Result<Vec<GroupSpec>, Vec<RuleFileError>> {
    let err = |message: String| {
        vec![RuleFileError {
            path: path.to_string(),
            message,
        }]
    };
    let meta = std::fs::metadata(path).map_err(|e| err(io_message(path, &e)))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!("file larger than {MAX_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(io_message(path, &e)))?;
    parse_text(&text, path, opts).map_err(|msgs| {
        msgs.into_iter()
            .map(|message| RuleFileError {
                path: path.to_string(),
                message,
            })
            .collect()
    })
}

/// Go's `open <path>: <reason>` text for a file that cannot be read.
fn io_message(path: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("open {path}: no such file or directory"),
        std::io::ErrorKind::PermissionDenied => format!("open {path}: permission denied"),
        _ => format!("read {path}: {e}"),
    }
}

/// Parses and validates rule-file text. `file` is recorded in each [`GroupSpec`]. Errors are
/// the messages without the path prefix.
pub fn parse_text(
    text: &str,
    file: &str,
    opts: &LoadOptions,
) -> Result<Vec<GroupSpec>, Vec<String>> {
    let raw = decode(text, opts.ignore_unknown_fields).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for g in &raw {
        if g.name.is_empty() {
            errors.push(format!("{}: Groupname must not be empty", g.name_pos));
        }
        if seen.contains(&g.name.as_str()) {
            errors.push(format!(
                "{}: groupname: \"{}\" is repeated in the same file",
                g.name_pos, g.name
            ));
        }
        seen.push(&g.name);
        for (k, v) in &g.labels {
            if !argus_query::names::is_valid_label_name(k, validate::scheme(opts.legacy_names))
                || k == "__name__"
            {
                errors.push(format!("invalid label name: {k}"));
            }
            let _ = v; // Rust strings are valid UTF-8, so every value is valid.
        }
        let mut rules = Vec::new();
        for (i, r) in g.rules.iter().enumerate() {
            let name = if r.alert.0.is_empty() {
                &r.record.0
            } else {
                &r.alert.0
            };
            match validate::rule(r, opts.legacy_names) {
                Ok(spec) => {
                    if let Some(mut spec) = spec {
                        let mut labels: BTreeMap<String, String> =
                            g.labels.iter().cloned().collect();
                        labels.append(&mut spec.labels);
                        spec.labels = labels;
                        rules.push(spec);
                    }
                }
                Err(errs) => {
                    for e in errs {
                        errors.push(
                            RuleError {
                                group: &g.name,
                                index: i + 1,
                                name,
                                err: e,
                            }
                            .to_string(),
                        );
                    }
                }
            }
        }
        out.push(GroupSpec {
            file: file.to_string(),
            name: g.name.clone(),
            interval_ms: g.interval_ms.filter(|v| *v > 0),
            query_offset_ms: g.query_offset_ms,
            limit: usize::try_from(g.limit).unwrap_or(0),
            labels: g.labels.iter().cloned().collect(),
            rules,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A decoded, not yet validated group.
pub(crate) struct RawGroup {
    pub name: String,
    pub name_pos: Pos,
    pub interval_ms: Option<i64>,
    pub query_offset_ms: Option<i64>,
    pub limit: i64,
    pub labels: Vec<(String, String)>,
    pub rules: Vec<RawRule>,
}

/// A decoded, not yet validated rule: string values with the position of their value node.
#[derive(Default)]
pub(crate) struct RawRule {
    pub record: (String, Pos),
    pub alert: (String, Pos),
    pub expr: (String, Pos),
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
}

fn pos(n: &Node) -> Pos {
    Pos(n.line, n.col)
}

/// Decodes the document into raw groups; the `Err` is one complete message.
pub(crate) fn decode(text: &str, ignore_unknown: bool) -> Result<Vec<RawGroup>, String> {
    let doc = yaml::parse(text)?;
    if doc.more_documents {
        tracing::warn!(
            "Multiple document yaml rules files are not supported, only the first document is processed"
        );
    }
    let mut errs = Errors {
        lines: Vec::new(),
        ignore_unknown,
    };
    let mut groups = Vec::new();
    let mut hard: Option<String> = None;
    if let Some(root) = doc.root.as_ref().filter(|r| !r.is_null()) {
        match root.entries() {
            None => errs.mismatch(root, "rulefmt.RuleGroups"),
            Some(entries) => {
                for (k, v) in entries {
                    if k.scalar() != Some("groups") {
                        errs.unknown(k, "rulefmt.RuleGroups");
                        continue;
                    }
                    for g in errs.seq(v, "[]rulefmt.RuleGroup") {
                        match decode_group(g, &mut errs) {
                            Ok(Some(g)) => groups.push(g),
                            Ok(None) => {}
                            Err(e) => {
                                hard.get_or_insert(e);
                            }
                        }
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
    Ok(groups)
}

fn duration_ms(n: &Node, errs: &mut Errors) -> Result<i64, String> {
    let s = errs.string(n);
    if s.is_empty() {
        return Ok(0);
    }
    let d = crate::config::parse_duration(&s)?;
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn decode_group(n: &Node, errs: &mut Errors) -> Result<Option<RawGroup>, String> {
    let Some(entries) = n.entries() else {
        if !n.is_null() {
            errs.mismatch(n, "rulefmt.RuleGroup");
        }
        return Ok(None);
    };
    // Group-level errors point at the group's mapping node, as Prometheus's do.
    let mut g = RawGroup {
        name: String::new(),
        name_pos: pos(n),
        interval_ms: None,
        query_offset_ms: None,
        limit: 0,
        labels: Vec::new(),
        rules: Vec::new(),
    };
    for (k, v) in entries {
        match k.scalar().unwrap_or("") {
            "name" => g.name = errs.string(v),
            "interval" => g.interval_ms = Some(duration_ms(v, errs)?),
            "query_offset" => {
                g.query_offset_ms = (!v.is_null()).then(|| duration_ms(v, errs)).transpose()?;
            }
            "limit" => g.limit = errs.int(v),
            "labels" => g.labels = errs.string_map(v),
            "rules" => {
                for r in errs.seq(v, "[]rulefmt.Rule") {
                    g.rules.push(decode_rule(r, errs)?);
                }
            }
            _ => errs.unknown(k, "rulefmt.RuleGroup"),
        }
    }
    Ok(Some(g))
}

fn decode_rule(n: &Node, errs: &mut Errors) -> Result<RawRule, String> {
    let mut r = RawRule {
        record: (String::new(), Pos(0, 0)),
        alert: (String::new(), Pos(0, 0)),
        expr: (String::new(), Pos(0, 0)),
        ..RawRule::default()
    };
    let Some(entries) = n.entries() else {
        if !n.is_null() {
            errs.mismatch(n, "rulefmt.Rule");
        }
        return Ok(r);
    };
    for (k, v) in entries {
        match k.scalar().unwrap_or("") {
            "record" => r.record = (errs.string(v), pos(v)),
            "alert" => r.alert = (errs.string(v), pos(v)),
            "expr" => r.expr = (errs.string(v), pos(v)),
            "for" => r.for_ms = duration_ms(v, errs)?,
            "keep_firing_for" => r.keep_firing_for_ms = duration_ms(v, errs)?,
            "labels" => r.labels = errs.string_map(v),
            "annotations" => r.annotations = errs.string_map(v),
            _ => errs.unknown(k, "rulefmt.Rule"),
        }
    }
    Ok(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn first_error(text: &str) -> String {
        parse_text(text, "f.yml", &LoadOptions::default())
            .err()
            .and_then(|e| e.into_iter().next())
            .unwrap_or_default()
    }

    #[test]
    fn positions_and_messages() {
        let check = |text: &str, want: &str| assert_eq!(first_error(text), want, "{text}");
        check(
            "groups:\n  - name: yolo\n    rules:\n      - record: Hi\n        alert: Hello\n        expr: 1\n",
            "4:17: 5:16: group \"yolo\", rule 1, \"Hello\": only one of 'record' and 'alert' must be set",
        );
        check(
            "groups:\n  - name: yolo\n    rules:\n      - expr: 1\n",
            "0:0: 0:0: group \"yolo\", rule 1, \"\": one of 'record' or 'alert' must be set",
        );
        check(
            "groups:\n- name: a\n  bogus: 1\n  rules:\n  - record: x\n    expr: 1\n    annotation: {}\n",
            "yaml: unmarshal errors:\n  line 3: field bogus not found in type rulefmt.RuleGroup\n  line 7: field annotation not found in type rulefmt.Rule",
        );
        check(
            "groups:\n  - name: a\n  - name: a\n",
            "3:5: groupname: \"a\" is repeated in the same file",
        );
    }

    #[test]
    fn every_rule_error_is_reported_and_templates_are_checked() {
        let errs = parse_text(
            "groups:\n- name: example\n  rules:\n  - alert: InstanceDown\n    expr: up ===== 0\n    annotations:\n      summary: \"{{ $label.instance }}\"\n  - record: r\n    expr: up ===== 0\n",
            "f",
            &LoadOptions::default(),
        )
        .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with(
                "5:11: group \"example\", rule 1, \"InstanceDown\": could not parse expression: "
            ),
            "{errs:?}"
        );
        assert_eq!(
            errs[1],
            "group \"example\", rule 1, \"InstanceDown\": annotation \"summary\": template: __alert_InstanceDown:1: undefined variable \"$label\""
        );
        assert!(
            errs[2].starts_with(
                "9:11: group \"example\", rule 2, \"r\": could not parse expression: "
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn only_the_first_document_counts_and_empty_files_are_valid() {
        let g = parse_text(
            "groups: []\n---\ngroups: [{name: x}]\n",
            "f",
            &LoadOptions::default(),
        )
        .unwrap();
        assert!(g.is_empty());
        assert!(
            parse_text("", "f", &LoadOptions::default())
                .unwrap()
                .is_empty()
        );
        let e = parse_text(
            "groups:\n- name: a\n  interval: 5x\n",
            "f",
            &LoadOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e, vec!["not a valid duration string: \"5x\"".to_string()]);
    }

    #[test]
    fn missing_file_reads_like_go() {
        let e = parse_file("/nonexistent/r.yml", &LoadOptions::default()).unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "/nonexistent/r.yml: open /nonexistent/r.yml: no such file or directory"
        );
    }

    #[test]
    fn group_labels_merge_under_rule_labels() {
        let g = parse_text(
            "groups:\n- name: a\n  labels: {team: x, sev: low}\n  rules:\n  - alert: A\n    expr: up\n    labels: {sev: high}\n",
            "f",
            &LoadOptions::default(),
        )
        .unwrap();
        let want: BTreeMap<String, String> = [("sev", "high"), ("team", "x")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(g[0].rules[0].labels, want);
    }
}
