//! The promtool-compatible commands of the `argus` binary: `argus check config FILE...`,
//! `argus check rules [flags] [FILE...]`, `argus test rules [flags] FILE...`.
//! Exit codes: 0 ok, 1 failure, 3 lint finding with `--lint-fatal`, 2 usage error.

use super::check::{self, LintOptions};
use super::file::LoadOptions;
use super::unittest::{self, FileOutcome, RunOptions, report::xml_escape};
use crate::flags::UsageError;
use std::io::Write;

/// A parsed tool command.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolCommand {
    /// `check config FILE...`
    CheckConfig {
        /// Config files.
        files: Vec<String>,
    },
    /// `check rules [FILE...]`
    CheckRules {
        /// Rule files; standard input when empty.
        files: Vec<String>,
        /// `--lint` / `--lint-fatal`.
        lint: LintOptions,
        /// `--ignore-unknown-fields`, `--metric-name-validation-scheme=legacy`.
        load: LoadOptions,
    },
    /// `test rules FILE...`
    TestRules {
        /// Unit-test files.
        files: Vec<String>,
        /// `--run` values (joined with `|`).
        run: Vec<String>,
        /// `--ignore-unknown-fields`.
        ignore_unknown_fields: bool,
        /// `--junit FILE`.
        junit: Option<String>,
        /// `--diff`.
        diff: bool,
        /// `--debug`.
        debug: bool,
    },
    /// Help text to print (exit 0).
    Help(String),
}

const USAGE: &str = "usage: argus check config FILE...
       argus check rules [--lint=duplicate-rules|all|none] [--lint-fatal] [--ignore-unknown-fields]
                         [--metric-name-validation-scheme=utf8|legacy] [FILE...]
       argus test rules [--run=REGEX]... [--ignore-unknown-fields] [--junit=FILE] [--diff] [--debug]
                        TEST.yml...

Rule files are read from standard input when `check rules` gets no FILE.
`--enable-feature=...` is accepted for promtool compatibility and ignored.
";

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Parses `args` (starting with `check` or `test`).
pub fn parse(args: Vec<String>) -> Result<ToolCommand, UsageError> {
    let mut it = args.into_iter();
    let verb = it.next().unwrap_or_default();
    let what = it.next().unwrap_or_default();
    let mut files = Vec::new();
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    const VALUED: &[&str] = &[
        "run",
        "junit",
        "lint",
        "enable-feature",
        "metric-name-validation-scheme",
    ];
    while let Some(a) = it.next() {
        if a == "-h" || a == "--help" {
            return Ok(ToolCommand::Help(USAGE.into()));
        }
        let Some(body) = a.strip_prefix("--") else {
            files.push(a);
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        let value = if VALUED.contains(&name.as_str()) && inline.is_none() {
            Some(
                it.next()
                    .ok_or_else(|| usage(format!("expected argument for flag '--{name}'")))?,
            )
        } else {
            inline
        };
        flags.push((name, value));
    }
    let boolean = |name: &str, v: &Option<String>| -> Result<bool, UsageError> {
        match v.as_deref() {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(o) => Err(usage(format!("invalid boolean value {o:?} for --{name}"))),
        }
    };
    match (verb.as_str(), what.as_str()) {
        ("check", "config") => {
            for (n, _) in &flags {
                if n != "enable-feature" {
                    return Err(usage(format!("unknown long flag '--{n}'")));
                }
            }
            if files.is_empty() {
                return Err(usage("required argument 'config-files' not provided"));
            }
            Ok(ToolCommand::CheckConfig { files })
        }
        ("check", "rules") => {
            let mut lint = LintOptions {
                duplicate_rules: true,
                fatal: false,
            };
            let mut load = LoadOptions::default();
            for (n, v) in &flags {
                match n.as_str() {
                    "lint" => {
                        lint.duplicate_rules = false;
                        for item in v.as_deref().unwrap_or("").split(',') {
                            match item {
                                "all" | "duplicate-rules" => lint.duplicate_rules = true,
                                "none" => {}
                                o => {
                                    return Err(usage(format!(
                                        "invalid lint option {o:?} (one of duplicate-rules, all, none)"
                                    )));
                                }
                            }
                        }
                    }
                    "lint-fatal" => lint.fatal = boolean(n, v)?,
                    "ignore-unknown-fields" => load.ignore_unknown_fields = boolean(n, v)?,
                    "metric-name-validation-scheme" => {
                        load.legacy_names = match v.as_deref() {
                            Some("legacy") => true,
                            Some("utf8") => false,
                            o => {
                                return Err(usage(format!(
                                    "invalid --metric-name-validation-scheme {o:?} (utf8 or legacy)"
                                )));
                            }
                        };
                    }
                    "enable-feature" => {}
                    o => return Err(usage(format!("unknown long flag '--{o}'"))),
                }
            }
            Ok(ToolCommand::CheckRules { files, lint, load })
        }
        ("test", "rules") => {
            let (mut run, mut ignore, mut junit, mut diff, mut debug) =
                (Vec::new(), false, None, false, false);
            for (n, v) in &flags {
                match n.as_str() {
                    "run" => run.push(v.clone().unwrap_or_default()),
                    "ignore-unknown-fields" => ignore = boolean(n, v)?,
                    "junit" => junit = v.clone(),
                    "diff" => diff = boolean(n, v)?,
                    "debug" => debug = boolean(n, v)?,
                    "enable-feature" => {}
                    o => return Err(usage(format!("unknown long flag '--{o}'"))),
                }
            }
            if files.is_empty() {
                return Err(usage("required argument 'test-rule-file' not provided"));
            }
            for f in &files {
                if !std::path::Path::new(f).is_file() {
                    return Err(usage(format!("path '{f}' does not exist")));
                }
            }
            Ok(ToolCommand::TestRules {
                files,
                run,
                ignore_unknown_fields: ignore,
                junit,
                diff,
                debug,
            })
        }
        _ => Err(usage(format!(
            "unknown command '{verb} {what}' (check config, check rules, test rules)"
        ))),
    }
}

/// Runs a tool command, printing to stdout/stderr; returns the exit code.
pub fn run(cmd: ToolCommand) -> u8 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    match cmd {
        ToolCommand::Help(text) => {
            let _ = write!(out, "{text}");
            0
        }
        ToolCommand::CheckConfig { files } => check::check_config(
            &files,
            &LoadOptions::default(),
            LintOptions {
                duplicate_rules: true,
                fatal: false,
            },
            &mut out,
            &mut err,
        ),
        ToolCommand::CheckRules { files, lint, load } => {
            check::check_rules(&files, &load, lint, &mut out, &mut err)
        }
        ToolCommand::TestRules {
            files,
            run,
            ignore_unknown_fields,
            junit,
            diff,
            debug,
        } => {
            let run = if run.is_empty() {
                None
            } else {
                match regex::Regex::new(&run.join("|")) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        let _ = writeln!(err, "argus: error: invalid --run regex: {e}");
                        return 2;
                    }
                }
            };
            let opts = RunOptions {
                run,
                ignore_unknown_fields,
                diff,
                debug,
            };
            let mut outcomes = Vec::new();
            let mut failed = false;
            for f in &files {
                let o = unittest::run_file(f, &opts);
                for w in &o.warnings {
                    let _ = writeln!(err, "{w}");
                }
                for g in &o.groups {
                    for s in &g.skipped {
                        let _ = writeln!(err, "  SKIPPED: {}: {s}", g.name);
                    }
                }
                if o.passed() {
                    let _ = writeln!(out, "  SUCCESS");
                } else {
                    failed = true;
                    let _ = writeln!(err, "  FAILED:");
                    for m in o.messages() {
                        let _ = writeln!(err, "{m}");
                        let _ = err.flush();
                        let _ = writeln!(out);
                        let _ = out.flush();
                    }
                }
                let _ = writeln!(out);
                outcomes.push(o);
            }
            if let Some(path) = junit
                && let Err(e) = std::fs::write(&path, junit_xml(&outcomes))
            {
                let _ = writeln!(err, "argus: error: cannot write {path}: {e}");
                return 1;
            }
            u8::from(failed)
        }
    }
}

/// JUnit XML: one `<testsuite>` per file, one `<testcase>` per executed group.
pub fn junit_xml(outcomes: &[FileOutcome]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for o in outcomes {
        let failures: usize = o.groups.iter().filter(|g| !g.failures.is_empty()).count();
        let skipped: usize = o.groups.iter().map(|g| g.skipped.len()).sum();
        s.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\" skipped=\"{skipped}\">\n",
            xml_escape(&o.file),
            o.groups.len() + usize::from(!o.errors.is_empty()),
            usize::from(!o.errors.is_empty()),
        ));
        if !o.errors.is_empty() {
            s.push_str("    <testcase name=\"unknown\">\n");
            for e in &o.errors {
                s.push_str(&format!(
                    "      <error message=\"{}\"></error>\n",
                    xml_escape(e)
                ));
            }
            s.push_str("    </testcase>\n");
        }
        for g in &o.groups {
            s.push_str(&format!(
                "    <testcase name=\"{}\">\n",
                xml_escape(&g.name)
            ));
            for f in &g.failures {
                s.push_str(&format!(
                    "      <failure message=\"{}\"></failure>\n",
                    xml_escape(f)
                ));
            }
            for k in &g.skipped {
                s.push_str(&format!(
                    "      <skipped message=\"{}\"></skipped>\n",
                    xml_escape(k)
                ));
            }
            s.push_str("    </testcase>\n");
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}
