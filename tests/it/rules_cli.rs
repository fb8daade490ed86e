//! `argus check rules|config` and `argus test rules` against the shared promtool fixtures
//! (`../shared/conformance/rules/{promtool,files}/EXPECTED.md`) and our own cases in
//! `testdata/rules/`. Prints a per-file table (file, command, outcome, skipped cases).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `conformance/rules` from `$ARGUS_SHARED_DIR`, `../shared` beside the checkout (or one level
/// further up for worktrees), or `/work/shared`. Fails under `CI=true` when missing.
fn rules_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = std::env::var_os("ARGUS_SHARED_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            root.join("../shared"),
            root.join("../../shared"),
            PathBuf::from("/work/shared"),
        ])
        .map(|d| d.join("conformance/rules"))
        .find(|d| d.join("FORMAT.md").is_file());
    if found.is_none() {
        crate::missing(
            "rule conformance",
            "shared conformance/rules not found beside the checkout",
        );
    }
    found
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn argus(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run argus");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One expectation: arguments, exit code, texts the combined output must contain, and the
/// number of skipped cases.
struct Case {
    args: &'static [&'static str],
    code: i32,
    contains: &'static [&'static str],
    skipped: usize,
    note: &'static str,
}

const fn case(args: &'static [&'static str], code: i32, contains: &'static [&'static str]) -> Case {
    Case {
        args,
        code,
        contains,
        skipped: 0,
        note: "",
    }
}

/// Runs every case in `dir`, prints the table, and returns the mismatches.
fn run_cases(dir: &Path, title: &str, cases: &[Case]) -> Vec<String> {
    let mut bad = Vec::new();
    // One print per table: the tests run in parallel.
    let mut table = format!(
        "\n{title}\n| command | exit (want) | outcome | skipped |\n| --- | --- | --- | --- |\n"
    );
    for c in cases {
        let r = argus(dir, c.args);
        let all = format!("{}{}", r.stdout, r.stderr);
        let skipped: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| l.trim_start().starts_with("SKIPPED:"))
            .map(str::trim)
            .collect();
        let mut problems = Vec::new();
        if r.code != c.code {
            problems.push(format!("exit {} want {}", r.code, c.code));
        }
        for want in c.contains {
            if !all.contains(want) {
                problems.push(format!("output lacks {want:?}"));
            }
        }
        if skipped.len() != c.skipped {
            problems.push(format!("{} skipped, want {}", skipped.len(), c.skipped));
        }
        let outcome = if problems.is_empty() {
            "as expected".to_string()
        } else {
            format!("MISMATCH: {}", problems.join("; "))
        };
        let skip_text = if skipped.is_empty() {
            "0".to_string()
        } else {
            format!("{} ({})", skipped.len(), skipped.join("; "))
        };
        let note = if c.note.is_empty() {
            String::new()
        } else {
            format!(" — {}", c.note)
        };
        table.push_str(&format!(
            "| `argus {}` | {} ({}) | {outcome}{note} | {skip_text} |\n",
            c.args.join(" "),
            r.code,
            c.code
        ));
        if !problems.is_empty() {
            bad.push(format!(
                "argus {}: {}\n--- stdout\n{}--- stderr\n{}",
                c.args.join(" "),
                problems.join("; "),
                r.stdout,
                r.stderr
            ));
        }
    }
    println!("{table}");
    bad
}

/// Every file of `dir` with extension `ext` must appear in some case's arguments.
fn assert_covered(dir: &Path, ext: &str, cases: &[Case]) {
    let mut missing = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if name.ends_with(ext) && !cases.iter().any(|c| c.args.contains(&name.as_str())) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "fixtures without an expectation: {missing:?}"
    );
}

#[test]
fn promtool_fixtures() {
    let Some(root) = rules_dir() else { return };
    let dir = root.join("promtool");
    let t = |f: &'static [&'static str], code: i32| case(f, code, &[]);
    let cases = [
        Case {
            skipped: 3,
            note: "3 native-histogram expr cases skipped",
            ..t(&["test", "rules", "unittest.yml"], 0)
        },
        t(&["test", "rules", "long-period.yml"], 0),
        case(
            &["test", "rules", "bad-input-series.yml"],
            1,
            &["unexpected character inside braces: '0'"],
        ),
        case(
            &["test", "rules", "bad-promql.yml"],
            1,
            &[
                "    expr: \"join_1 + on(a) join_2\", time: 0s, err: found duplicate series for the match group {a=\"1\"} on the right hand-side of the operation",
                "many-to-many matching not allowed: matching labels must be unique on one side",
            ],
        ),
        case(
            &["test", "rules", "bad-rules-syntax-test.yml"],
            1,
            &[
                "bad-rules-syntax.yml: 7:15: group \"bad-syntax\", rule 1, \"x\": could not parse expression: ",
            ],
        ),
        case(
            &["test", "rules", "bad-rules-error-test.yml"],
            1,
            &["    rule: joined, time: 0s, err: found duplicate series for the match group"],
        ),
        case(
            &["test", "rules", "failing.yml"],
            1,
            &[
                "  FAILED:\n    name: Failing test,\n    alertname: Test, time: 0s, \n        exp:[\n            0:\n              Labels:{alertname=\"Test\"}\n              Annotations:{}\n            ], \n        got:[]\n",
                "    expr: \"test\", time: 0s,\n        exp: {__name__=\"test\"} 1E+00\n        got: {__name__=\"test\"} 0E+00\n",
                "    name: Failing alert test,\n    alertname: InstanceDown, time: 5m, \n        exp:[], \n        got:[\n            0:\n              Labels:{alertname=\"InstanceDown\", job=\"test\", severity=\"page\"}\n              Annotations:{description=\" of job test has been down for more than 5 minutes.\", summary=\"Instance  down\"}\n            ]\n",
                "    alertname: AlwaysFiring, time: 5m, \n        exp:[], \n        got:[\n            0:\n              Labels:{alertname=\"AlwaysFiring\"}\n              Annotations:{}\n            ]\n",
            ],
        ),
        t(&["test", "rules", "at-modifier-test.yml"], 0),
        t(&["test", "rules", "negative-offset-test.yml"], 0),
        t(&["test", "rules", "no-test-group-interval.yml"], 0),
        t(&["test", "rules", "start-time-test.yml"], 0),
        case(&["test", "rules", "rules_run.yml"], 1, &["  FAILED:"]),
        case(
            &["test", "rules", "--run", "correct", "rules_run.yml"],
            0,
            &["  SUCCESS"],
        ),
        t(&["test", "rules", "--run", "wrong", "rules_run.yml"], 1),
        t(
            &[
                "test",
                "rules",
                "--run",
                "correct",
                "--run",
                "wrong",
                "rules_run.yml",
            ],
            1,
        ),
        case(
            &["test", "rules", "rules_run_extrafields.yml"],
            1,
            &["line 7: field namespace not found in type rulefmt.RuleGroup"],
        ),
        t(
            &[
                "test",
                "rules",
                "--ignore-unknown-fields",
                "rules_run_extrafields.yml",
            ],
            0,
        ),
        t(&["test", "rules", "rules_run_fuzzy.yml"], 1),
        t(
            &["test", "rules", "--run", "correct", "rules_run_fuzzy.yml"],
            0,
        ),
        t(&["test", "rules", "--run=wrong", "rules_run_fuzzy.yml"], 1),
        case(
            &["test", "rules", "rules_run_no_fuzzy.yml"],
            1,
            &[
                "exp: {__name__=\"test_low\"} 3E+00\n        got: {__name__=\"test_low\"} 2.9999999999999996E+00",
            ],
        ),
        Case {
            skipped: 3,
            ..t(
                &[
                    "test",
                    "rules",
                    "unittest.yml",
                    "long-period.yml",
                    "bad-input-series.yml",
                    "bad-promql.yml",
                    "bad-rules-syntax-test.yml",
                    "bad-rules-error-test.yml",
                    "failing.yml",
                    "at-modifier-test.yml",
                    "negative-offset-test.yml",
                    "no-test-group-interval.yml",
                    "start-time-test.yml",
                    "rules_run.yml",
                    "rules_run_extrafields.yml",
                    "rules_run_fuzzy.yml",
                    "rules_run_no_fuzzy.yml",
                ],
                1,
            )
        },
        // `promtool check rules` fixtures (EXPECTED.md §3) and the rule files of the unit tests.
        case(
            &["check", "rules", "rules.yml"],
            0,
            &["Checking rules.yml\n  SUCCESS: 5 rules found\n"],
        ),
        case(
            &["check", "rules", "rules-bad.yml"],
            1,
            &[
                "rules-bad.yml: group \"alerts\", rule 1, \"InstanceDown\": annotation \"summary\": template: __alert_InstanceDown:1: undefined variable \"$label\"",
            ],
        ),
        case(
            &["check", "rules", "rules_duplicates.yml"],
            0,
            &[
                "  FAILED:\nlint error 1 duplicate rule(s) found.\nMetric: job:test:count_over_time1m\nLabel(s):\nMight cause inconsistency while recording expressions\n",
            ],
        ),
        case(
            &["check", "rules", "prometheus-rules.lint.yml"],
            0,
            &[
                "lint error 1 duplicate rule(s) found.\nMetric: HighRequestLatency\nLabel(s):\n\tseverity: page\n",
            ],
        ),
        t(
            &[
                "check",
                "rules",
                "--lint-fatal",
                "prometheus-rules.lint.yml",
            ],
            3,
        ),
        t(
            &[
                "check",
                "rules",
                "--lint=none",
                "--lint-fatal",
                "prometheus-rules.lint.yml",
            ],
            0,
        ),
        t(&["check", "rules", "features.yml"], 1),
        Case {
            note: "KNOWN DEVIATION: promtool 3.x exits 0; promql-parser rejects the duration expression `[1m * 2]` and `anchored`",
            ..t(
                &[
                    "check",
                    "rules",
                    "--enable-feature=promql-experimental-functions",
                    "--enable-feature=promql-extended-range-selectors",
                    "--enable-feature=promql-binop-fill-modifiers",
                    "features.yml",
                ],
                1,
            )
        },
        case(
            &["check", "rules", "rules_extrafields.yml"],
            1,
            &[
                "yaml: unmarshal errors:\n  line 7: field namespace not found in type rulefmt.RuleGroup\n  line 21: field ownership not found in type rulefmt.RuleGroup",
            ],
        ),
        t(
            &[
                "check",
                "rules",
                "--ignore-unknown-fields",
                "rules_extrafields.yml",
            ],
            0,
        ),
        t(&["check", "rules", "bad-rules-syntax.yml"], 1),
        t(&["check", "rules", "bad-rules-error.yml"], 0),
        t(&["check", "rules", "at-modifier.yml"], 0),
        t(&["check", "rules", "negative-offset.yml"], 0),
    ];
    assert_covered(&dir, ".yml", &cases);
    let bad = run_cases(&dir, "promtool fixtures", &cases);
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

#[test]
fn rule_file_fixtures() {
    let Some(root) = rules_dir() else { return };
    let dir = root.join("files");
    let cr =
        |f: &'static str| -> &'static [&'static str] { Box::leak(Box::new(["check", "rules", f])) };
    let cases = [
        case(
            cr("duplicate_grp.bad.yaml"),
            1,
            &["duplicate_grp.bad.yaml: 3:5: groupname: \"yolo\" is repeated in the same file"],
        ),
        case(
            cr("bad_expr.bad.yaml"),
            1,
            &[
                "bad_expr.bad.yaml: 5:15: group \"yolo\", rule 1, \"yolo\": could not parse expression: ",
                "parse error",
            ],
        ),
        case(
            cr("record_and_alert.bad.yaml"),
            1,
            &[
                "4:17: 5:16: group \"yolo\", rule 1, \"Hello\": only one of 'record' and 'alert' must be set",
            ],
        ),
        case(
            cr("no_rec_alert.bad.yaml"),
            1,
            &["0:0: 0:0: group \"yolo\", rule 1, \"\": one of 'record' or 'alert' must be set"],
        ),
        case(
            cr("noexpr.bad.yaml"),
            1,
            &["0:0: group \"yolo\", rule 1, \"ylo\": field 'expr' must be set in rule"],
        ),
        case(
            cr("invalid_record_name.bad.yaml"),
            1,
            &[
                "4:17: group \"yolo\", rule 1, \"strawberry{flavor=\\\"sweet\\\"}\": braces present in the recording rule name; should it be in expr?: strawberry{flavor=\"sweet\"}",
            ],
        ),
        case(
            cr("bad_field.bad.yaml"),
            1,
            &["yaml: unmarshal errors:\n  line 8: field annotation not found in type rulefmt.Rule"],
        ),
        t_ok(&[
            "check",
            "rules",
            "--ignore-unknown-fields",
            "bad_field.bad.yaml",
        ]),
        case(
            cr("invalid_label_name.bad.yaml"),
            1,
            &["group \"yolo\", rule 1, \"hola\": invalid label name: __name__"],
        ),
        case(
            cr("record_and_for.bad.yaml"),
            1,
            &["4:17: group \"yolo\", rule 1, \"Hello\": invalid field 'for' in recording rule"],
        ),
        case(
            cr("record_and_keep_firing_for.bad.yaml"),
            1,
            &[
                "4:17: group \"yolo\", rule 1, \"Hello\": invalid field 'keep_firing_for' in recording rule",
            ],
        ),
        case(
            &[
                "check",
                "rules",
                "--metric-name-validation-scheme=legacy",
                "legacy_validation_annotation.bad.yaml",
            ],
            1,
            &["group \"yolo\", rule 1, \"hola\": invalid annotation name: ins-tance"],
        ),
        t_ok(cr("legacy_validation_annotation.bad.yaml")),
        case(
            &[
                "check",
                "rules",
                "--metric-name-validation-scheme=legacy",
                "invalid_record_name.bad.yaml",
            ],
            1,
            &["invalid recording rule name: strawberry{flavor=\"sweet\"}"],
        ),
        case(
            cr("test.yaml"),
            0,
            &[
                "lint error 1 duplicate rule(s) found.\nMetric: HighErrors\nLabel(s):\n\tseverity: critical\nMight cause inconsistency while recording expressions",
            ],
        ),
        case(
            cr("test_aliases.yaml"),
            0,
            &[
                "Metric: HighAlert\nLabel(s):\n\tseverity: critical\nMetric: HighAlert2\nLabel(s):\n\tseverity: critical\n",
            ],
        ),
        t_ok(cr("utf-8_lname.good.yaml")),
        t_ok(cr("utf-8_annotation.good.yaml")),
        t_ok(&[
            "check",
            "rules",
            "--metric-name-validation-scheme=legacy",
            "legacy_validation_annotation.good.yaml",
        ]),
    ];
    assert_covered(&dir, ".yaml", &cases);
    let bad = run_cases(&dir, "rule-file fixtures", &cases);
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

const fn t_ok(args: &'static [&'static str]) -> Case {
    case(args, 0, &[])
}

#[test]
fn check_config_loads_rule_files_relative_to_the_config() {
    let Some(root) = rules_dir() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let files = root.join("files");
    std::fs::write(
        tmp.path().join("good.yml"),
        format!(
            "rule_files:\n  - {}/utf-8_*.good.yaml\n  - nothing-matches-*.yml\n",
            files.display()
        ),
    )
    .expect("write");
    std::fs::create_dir(tmp.path().join("rules")).expect("mkdir");
    std::fs::copy(
        files.join("noexpr.bad.yaml"),
        tmp.path().join("rules/noexpr.yml"),
    )
    .expect("copy");
    std::fs::write(tmp.path().join("bad.yml"), "rule_files: [rules/*.yml]\n").expect("write");
    std::fs::write(tmp.path().join("broken.yml"), "global: {bogus: 1}\n").expect("write");
    let annotation = files.join("legacy_validation_annotation.bad.yaml");
    std::fs::write(
        tmp.path().join("legacy.yml"),
        format!(
            "global:\n  metric_name_validation_scheme: legacy\nrule_files: [{}]\n",
            annotation.display()
        ),
    )
    .expect("write");
    std::fs::write(
        tmp.path().join("utf8.yml"),
        format!("rule_files: [{}]\n", annotation.display()),
    )
    .expect("write");
    let cases = [
        case(
            &["check", "config", "good.yml"],
            0,
            &["  SUCCESS: 2 rule files found", "  SUCCESS: 1 rules found"],
        ),
        case(
            &["check", "config", "bad.yml"],
            1,
            &["noexpr.yml: 0:0: group \"yolo\", rule 1, \"ylo\": field 'expr' must be set in rule"],
        ),
        case(&["check", "config", "broken.yml"], 1, &["  FAILED: "]),
        case(
            &["check", "config", "legacy.yml"],
            1,
            &[
                "legacy_validation_annotation.bad.yaml: group \"yolo\", rule 1, \"hola\": invalid annotation name: ins-tance",
            ],
        ),
        case(
            &["check", "config", "utf8.yml"],
            0,
            &["  SUCCESS: 1 rules found"],
        ),
        case(&["check", "configs", "good.yml"], 2, &["unknown command"]),
        case(
            &["test", "rules", "does-not-exist.yml"],
            2,
            &["does not exist"],
        ),
    ];
    let bad = run_cases(tmp.path(), "check config", &cases);
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

#[test]
fn own_rule_unit_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rules");
    let cases = [
        t_ok(&["test", "rules", "features_test.yml"]),
        t_ok(&["test", "rules", "eval_order_test.yml"]),
        t_ok(&["test", "rules", "eval_order_reverse_test.yml"]),
        case(
            &["test", "rules", "eval_order_repeated_test.yml"],
            1,
            &["group name repeated in evaluation order: first"],
        ),
        case(
            &["test", "rules", "limit_recording_test.yml"],
            1,
            &["    rule: limited, time: 0s, err: exceeded limit of 1 with 2 series"],
        ),
        case(
            &["test", "rules", "limit_alerting_test.yml"],
            1,
            &["    rule: TooMany, time: 0s, err: exceeded limit of 1 with 2 alerts"],
        ),
        t_ok(&["check", "rules", "features_rules.yml"]),
        t_ok(&["check", "rules", "eval_order_rules.yml"]),
        t_ok(&["check", "rules", "limit_rules.yml"]),
        t_ok(&["check", "rules", "limit_alert_rules.yml"]),
    ];
    assert_covered(&dir, ".yml", &cases);
    let bad = run_cases(&dir, "testdata/rules", &cases);
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

#[test]
fn junit_report_has_one_case_per_group() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rules");
    let tmp = tempfile::tempdir().expect("tempdir");
    let junit = tmp.path().join("out.xml");
    let junit_s = junit.to_string_lossy().into_owned();
    let r = argus(
        &dir,
        &[
            "test",
            "rules",
            "--junit",
            &junit_s,
            "features_test.yml",
            "limit_recording_test.yml",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 5, "{xml}");
    assert!(xml.contains("<testcase name=\"keep_firing_for\">"), "{xml}");
    assert!(xml.contains("<testcase name=\"unnamed#0\">"), "{xml}");
    assert!(xml.contains("exceeded limit of 1 with 2 series"), "{xml}");
}

#[test]
fn check_rules_reads_standard_input() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["check", "rules"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"groups:\n- name: g\n  rules:\n  - record: a\n    expr: vector(1)\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Checking standard input\n  SUCCESS: 1 rules found\n\n"
    );
}
