//! The allocator options the binary applies before it starts (`src/main.rs`,
//! benches/README.md "rss"), read back from mimalloc itself: with `MIMALLOC_VERBOSE=1` it
//! prints every option's value to stderr when a process loads.
#![cfg(all(target_os = "linux", not(feature = "system-alloc")))]

use std::process::Command;

/// The `option 'purge_delay': N` lines `argus --version` makes mimalloc print, in order, with
/// `env` added to an environment without `MIMALLOC_PURGE_DELAY`.
fn purge_delay_lines(env: &[(&str, &str)]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_argus"))
        .arg("--version")
        .env_remove("MIMALLOC_PURGE_DELAY")
        .env("MIMALLOC_VERBOSE", "1")
        .envs(env.iter().copied())
        .output()
        .expect("cannot run argus --version");
    assert!(out.status.success(), "argus --version failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("argus, version"),
        "expected the version on stdout, got:\n{stdout}"
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("option 'purge_delay':"))
        .map(|l| l.trim_end().to_owned())
        .collect()
}

#[test]
fn purge_delay_is_zero_unless_set() {
    // The process as started reports mimalloc's default, then executes itself again with the
    // option set: the process that runs Argus purges freed memory at once.
    let got = purge_delay_lines(&[]);
    assert_eq!(
        got.len(),
        2,
        "expected two processes' options, got:\n{got:#?}"
    );
    assert_eq!(
        got.last().map(String::as_str),
        Some("option 'purge_delay': 0"),
        "expected the running process to purge at once, got:\n{got:#?}"
    );
}

#[test]
fn purge_delay_from_the_environment_is_kept() {
    // A value the caller set is used as it is, without executing again.
    let got = purge_delay_lines(&[("MIMALLOC_PURGE_DELAY", "250")]);
    let want = ["option 'purge_delay': 250"];
    assert_eq!(got, want, "expected:\n{want:#?}\ngot:\n{got:#?}");
}
