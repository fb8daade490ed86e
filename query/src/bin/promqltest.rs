//! Runs Prometheus's promqltest files: `promqltest [-v] [-s] [--no-cross-check] FILE...`
//! (`cargo run -p argus-query --features promqltest --bin promqltest -- FILE...`).
//! Prints one line per file and the totals `N passed, M failed, K skipped`.

use argus_query::promqltest::{RunOptions, run_file};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut verbose = false;
    let mut show_skips = false;
    let mut opts = RunOptions { cross_check: true };
    let mut files = Vec::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--ast") {
        for q in &args[1..] {
            println!("{:#?}", promql_parser::parser::parse(q));
        }
        return ExitCode::SUCCESS;
    }
    for a in args {
        match a.as_str() {
            "-v" | "--verbose" => verbose = true,
            "-s" | "--skips" => show_skips = true,
            "--no-cross-check" => opts.cross_check = false,
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        eprintln!("usage: promqltest [-v] [-s] [--no-cross-check] FILE.test...");
        return ExitCode::from(2);
    }
    let (mut p, mut f, mut s) = (0, 0, 0);
    let mut broken = false;
    for file in &files {
        let r = run_file(Path::new(file), &opts);
        if let Some(e) = &r.error {
            println!("{}: ERROR {e}", r.name);
            broken = true;
            continue;
        }
        println!(
            "{}: {} passed, {} failed, {} skipped",
            r.name, r.passed, r.failed, r.skipped
        );
        if verbose {
            for fl in &r.failures {
                println!("  FAIL {fl}");
            }
        }
        if show_skips {
            for sk in &r.skips {
                println!("  SKIP {sk}");
            }
        }
        p += r.passed;
        f += r.failed;
        s += r.skipped;
    }
    println!("{p} passed, {f} failed, {s} skipped");
    if f > 0 || broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
