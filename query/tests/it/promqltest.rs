//! Runs the promqltest runner over the shared Prometheus conformance files and over our own
//! `testdata/promql` files, and checks parse → Display → parse round trips of every query.

use argus_query::promqltest::{FileReport, RunOptions, run_file};
use std::path::{Path, PathBuf};

/// Pass count reached on the shared files; a regression below it fails the test.
const SHARED_PASS_FLOOR: usize = 1887;

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "test"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn run_all(files: &[PathBuf]) -> Vec<FileReport> {
    let opts = RunOptions { cross_check: true };
    let reports: Vec<FileReport> = files.iter().map(|f| run_file(f, &opts)).collect();
    let (mut p, mut f, mut s) = (0, 0, 0);
    for r in &reports {
        println!(
            "{:<28} {:>4} passed {:>4} failed {:>4} skipped{}",
            r.name,
            r.passed,
            r.failed,
            r.skipped,
            r.error
                .as_deref()
                .map(|e| format!("  ERROR {e}"))
                .unwrap_or_default()
        );
        p += r.passed;
        f += r.failed;
        s += r.skipped;
    }
    println!("{p} passed, {f} failed, {s} skipped");
    reports
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("BUG: crate dir has a parent")
        .to_path_buf()
}

/// The shared conformance directory: `../shared` next to the repository (also tried one level
/// further up, for worktrees kept in a subdirectory), or `$ARGUS_SHARED_DIR`.
fn shared_dir() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(d) = std::env::var_os("ARGUS_SHARED_DIR") {
        candidates.push(PathBuf::from(d));
    }
    candidates.push(workspace_root().join("../shared"));
    candidates.push(workspace_root().join("../../shared"));
    candidates
        .into_iter()
        .map(|d| d.join("conformance/promqltest"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| workspace_root().join("../shared/conformance/promqltest"))
}

#[test]
fn shared_conformance_files() {
    let dir = shared_dir();
    let files = test_files(&dir);
    if files.is_empty() {
        // A test that cannot run fails under CI (STYLE.md 23), like tests/it's `missing()`.
        assert!(
            std::env::var_os("CI").is_none(),
            "no shared conformance files at {} (required under CI=true)",
            dir.display()
        );
        println!("skipping: no shared conformance files at {}", dir.display());
        return;
    }
    let reports = run_all(&files);
    for r in &reports {
        assert!(r.error.is_none(), "{}: {:?}", r.name, r.error);
    }
    let passed: usize = reports.iter().map(|r| r.passed).sum();
    assert!(
        passed >= SHARED_PASS_FLOOR,
        "expected at least {SHARED_PASS_FLOOR} passing evals, got {passed}"
    );
}

#[test]
fn own_testdata_all_pass() {
    let dir = workspace_root().join("testdata/promql");
    let files = test_files(&dir);
    assert!(!files.is_empty(), "no files in {}", dir.display());
    let reports = run_all(&files);
    for r in &reports {
        assert!(r.error.is_none(), "{}: {:?}", r.name, r.error);
        assert!(
            r.failed == 0 && r.skipped == 0 && r.passed > 0,
            "{}:\n{}",
            r.name,
            r.failures.join("\n")
        );
    }
}

/// Every query the parser accepts prints (Display) to text that parses back to the same AST.
#[test]
fn parse_display_round_trip() {
    let mut files = test_files(&shared_dir());
    files.extend(test_files(&workspace_root().join("testdata/promql")));
    let opts = RunOptions { cross_check: false };
    let (mut total, mut ok, mut exact) = (0, 0, 0);
    let mut bad = Vec::new();
    for f in &files {
        for q in run_file(f, &opts).queries {
            let Ok(a) = promql_parser::parser::parse(&q) else {
                continue;
            };
            total += 1;
            let printed = a.to_string();
            match promql_parser::parser::parse(&printed) {
                Ok(b) if b == a => {
                    exact += 1;
                    ok += 1;
                }
                // Display sorts label matchers and normalises empty/duplicate modifiers, so the
                // AST may differ in order only; the printed form must then be a fixed point.
                Ok(b) if b.to_string() == printed => ok += 1,
                Ok(_) => bad.push(format!("{q}\n    printed as {printed} (different AST)")),
                Err(e) => bad.push(format!("{q}\n    printed as {printed} ({e})")),
            }
        }
    }
    println!("round trip: {ok} of {total} queries stable ({exact} with an identical AST)");
    for b in bad.iter().take(20) {
        println!("  {b}");
    }
    assert!(total > 0);
    // Known Display limitations of promql-parser 0.11 are listed in the output above.
    assert!(bad.is_empty(), "{} queries do not round-trip", bad.len());
}
