//! `argus check rules` and `argus check config` (promtool's output and exit codes, FORMAT.md A.5).

use super::file::{GroupSpec, LoadOptions, expand_glob, parse_file, parse_text};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// Lint settings of `check rules`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LintOptions {
    /// `--lint=duplicate-rules` (default) or `all`.
    pub duplicate_rules: bool,
    /// `--lint-fatal`: lint findings exit 3.
    pub fatal: bool,
}

/// Largest rule file read from standard input.
const MAX_STDIN_BYTES: u64 = 64 << 20;

/// Duplicate rules: same name and same merged labels, each reported once.
pub fn duplicates(groups: &[GroupSpec]) -> Vec<(String, BTreeMap<String, String>)> {
    let mut all: Vec<(&str, &BTreeMap<String, String>)> = groups
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| (r.name.as_str(), &r.labels)))
        .collect();
    all.sort();
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for w in all.windows(2) {
        if let [a, b] = w
            && a == b
            && out
                .last()
                .is_none_or(|l| (l.0.as_str(), &l.1) != (a.0, a.1))
        {
            out.push((b.0.to_string(), b.1.clone()));
        }
    }
    out
}

fn lint_message(d: &[(String, BTreeMap<String, String>)]) -> String {
    let mut s = format!("lint error {} duplicate rule(s) found.\n", d.len());
    for (name, labels) in d {
        s.push_str(&format!("Metric: {name}\nLabel(s):\n"));
        for (k, v) in labels {
            s.push_str(&format!("\t{k}: {v}\n"));
        }
    }
    s.push_str("Might cause inconsistency while recording expressions");
    s
}

/// Outcome of checking one rule file: (failed, had non-lint errors).
fn check_one(
    label: &str,
    parsed: Result<Vec<GroupSpec>, Vec<String>>,
    lint: LintOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> (bool, bool) {
    let _ = writeln!(out, "Checking {label}");
    let result = match parsed {
        Err(errs) => {
            let _ = writeln!(err, "  FAILED:");
            for e in errs {
                let _ = writeln!(err, "{e}");
            }
            (true, true)
        }
        Ok(groups) => {
            let dups = if lint.duplicate_rules {
                duplicates(&groups)
            } else {
                Vec::new()
            };
            if dups.is_empty() {
                let n: usize = groups.iter().map(|g| g.rules.len()).sum();
                let _ = writeln!(out, "  SUCCESS: {n} rules found");
                (false, false)
            } else {
                let _ = writeln!(err, "  FAILED:");
                let _ = writeln!(err, "{}", lint_message(&dups));
                (true, false)
            }
        }
    };
    let _ = writeln!(out);
    result
}

/// Exit code from (any failure, any non-lint error).
fn exit_code(failed: bool, has_errors: bool, lint: LintOptions) -> u8 {
    if failed && has_errors {
        1
    } else if failed && lint.fatal {
        3
    } else {
        0
    }
}

/// `check rules FILE...` (standard input when `files` is empty); returns the exit code.
pub fn check_rules(
    files: &[String],
    opts: &LoadOptions,
    lint: LintOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let (mut failed, mut has_errors) = (false, false);
    if files.is_empty() {
        let mut text = String::new();
        let read = std::io::stdin()
            .take(MAX_STDIN_BYTES)
            .read_to_string(&mut text);
        let parsed = match read {
            Ok(_) => parse_text(&text, "", opts),
            Err(e) => Err(vec![format!("cannot read standard input: {e}")]),
        };
        let (f, h) = check_one("standard input", parsed, lint, out, err);
        return exit_code(f, h, lint);
    }
    for f in files {
        let parsed =
            parse_file(f, opts).map_err(|errs| errs.into_iter().map(|e| e.to_string()).collect());
        let (fl, h) = check_one(f, parsed, lint, out, err);
        failed |= fl;
        has_errors |= h;
    }
    exit_code(failed, has_errors, lint)
}

/// `check config FILE...`: the config, then each rule file it names (with the config's
/// `metric_name_validation_scheme`); returns the exit code.
pub fn check_config(
    files: &[String],
    opts: &LoadOptions,
    lint: LintOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let (mut failed, mut has_errors) = (false, false);
    for f in files {
        let _ = writeln!(out, "Checking {f}");
        let cfg = match crate::config::Config::load(Path::new(f)) {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(err, "  FAILED: {e}");
                let _ = writeln!(out);
                failed = true;
                has_errors = true;
                continue;
            }
        };
        let opts = &LoadOptions {
            legacy_names: opts.legacy_names
                || cfg.global.metric_name_validation_scheme.as_deref() == Some("legacy"),
            ..*opts
        };
        let base = Path::new(f).parent().unwrap_or(Path::new(""));
        let mut rule_files = Vec::new();
        let mut glob_failed = false;
        for pattern in &cfg.rule_files {
            match expand_glob(pattern, base) {
                Ok(found) => rule_files.extend(found),
                Err(e) => {
                    let _ = writeln!(err, "  FAILED: {e}");
                    glob_failed = true;
                }
            }
        }
        if glob_failed {
            failed = true;
            has_errors = true;
            let _ = writeln!(out);
            continue;
        }
        if rule_files.is_empty() {
            let _ = writeln!(out, "  SUCCESS: {f} is valid prometheus config file syntax");
        } else {
            let _ = writeln!(out, "  SUCCESS: {} rule files found", rule_files.len());
            let _ = writeln!(out, " SUCCESS: {f} is valid prometheus config file syntax");
        }
        let _ = writeln!(out);
        for rf in &rule_files {
            let parsed = parse_file(rf, opts)
                .map_err(|errs| errs.into_iter().map(|e| e.to_string()).collect());
            let (fl, h) = check_one(rf, parsed, lint, out, err);
            failed |= fl;
            has_errors |= h;
        }
    }
    exit_code(failed, has_errors, lint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_rules_are_reported_once() {
        let g = parse_text(
            "groups:\n- name: a\n  labels: {s: x}\n  rules:\n  - record: r\n    expr: '1'\n  - record: r\n    expr: '2'\n  - record: r\n    expr: '3'\n  - record: r\n    expr: '3'\n    labels: {s: y}\n",
            "f",
            &LoadOptions::default(),
        )
        .unwrap();
        let d = duplicates(&g);
        assert_eq!(d.len(), 1);
        assert_eq!(
            lint_message(&d),
            "lint error 1 duplicate rule(s) found.\nMetric: r\nLabel(s):\n\ts: x\nMight cause inconsistency while recording expressions"
        );
    }
}
