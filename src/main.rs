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

fn main() -> ExitCode {
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
