//! `argus` binary entry point: maps [`argus::server::run`] to an exit code.
//! Exit codes: 0 after a clean shutdown or `--help`, 1 on a runtime error, 2 on bad flags
//! or rule files that do not load at startup.
#![deny(unsafe_code)]

use argus::flags::{self, Command};
use std::process::ExitCode;

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process before the heap grows: with THP a heap
/// page touched once makes its whole 2 MiB resident, which made the heap's RSS about twice its
/// live bytes under ingest (benches/README.md "Peak RSS"). Best effort: an older kernel without
/// `PR_SET_THP_DISABLE` keeps THP.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("argus: warning: cannot turn transparent huge pages off: {e}");
    }
}

/// mimalloc options Argus runs with unless the environment sets them. `purge_delay` 0: memory
/// a thread's heap frees is returned to the OS at once instead of a second later. With the
/// delay, the buffers freed by the harness's remote-write ingest and queries kept 15–20 MiB
/// resident at the peak (benches/README.md "rss"), for no CPU cost the harness could measure.
#[cfg(all(target_os = "linux", not(feature = "system-alloc")))]
const ALLOCATOR_ENV: &[(&str, &str)] = &[("MIMALLOC_PURGE_DELAY", "0")];

/// mimalloc reads its options from the environment when the process loads, before `main`, and
/// setting one from Rust needs `unsafe` FFI; so, if [`ALLOCATOR_ENV`] is not all set, the
/// process executes itself again (same PID, arguments, `argv[0]` and descriptors) with it
/// added. A variable the caller set is kept as it is, so `MIMALLOC_PURGE_DELAY=1000` restores
/// mimalloc's default. Best effort: when the binary cannot be executed again (its file gone
/// from `/proc/self/exe`), Argus runs on with mimalloc's defaults after a warning.
#[cfg(all(target_os = "linux", not(feature = "system-alloc")))]
fn apply_allocator_options() {
    use std::os::unix::process::CommandExt;
    let unset: Vec<_> = ALLOCATOR_ENV
        .iter()
        .filter(|(k, _)| std::env::var_os(k).is_none())
        .collect();
    if unset.is_empty() {
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("argus: warning: cannot apply allocator options: {e}");
            return;
        }
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args);
    for (k, v) in unset {
        cmd.env(k, v);
    }
    // `exec` returns only on failure.
    let e = cmd.exec();
    eprintln!("argus: warning: cannot apply allocator options: {e}");
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", not(feature = "system-alloc")))]
    apply_allocator_options();
    disable_transparent_huge_pages();
    let flags = match flags::parse(std::env::args().skip(1)) {
        Ok(Command::Run(f)) => f,
        Ok(Command::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Tool(t)) => return ExitCode::from(argus::rules::cli::run(t)),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&flags.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("argus: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(argus::server::run(*flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Rule files that do not load and an invalid --web.config.file are usage errors,
            // as in Prometheus.
            let code = if e.is_usage() { 2 } else { 1 };
            eprintln!("argus: error: {:#}", anyhow::Error::from(e));
            ExitCode::from(code)
        }
    }
}
