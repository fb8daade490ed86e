//! Integration tests for the argus binary, one module per theme.

mod agent;
mod allocator;
mod federate;
mod federate_from_prometheus;
mod hardening;
mod http_client;
mod kubernetes;
mod native_histograms_edges;
mod native_histograms_ingest;
mod native_histograms_scrape;
mod nhcb;
mod notifier;
mod otlp;
mod push;
mod remote_read;
mod remote_write;
mod remote_write_native;
mod remote_write_sharding;
mod rules_cli;
mod rules_server;
mod scrape;
mod security;
mod server;

/// Called by a test when something it needs (a peer binary, a conformance fixture) is
/// missing: under `CI=true` the test fails (a test that cannot run must not pass there);
/// otherwise it prints why it is skipped and the caller returns.
pub fn missing(test: &str, reason: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{test}: {reason} (CI=true: a test that cannot run fails)"
    );
    eprintln!("SKIP {test}: {reason}");
}
mod ui;
