//! Helpers shared by the storage benches (a module, not a bench target of its own).

use argus_storage::Labels;

/// The environment variable `name` as a number, or `default` when unset or not a number.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `series` label sets `{__name__="metric_<i % 100>", instance="host-<i / 100>"}`.
pub fn metric_host_labels(series: u64) -> Vec<Labels> {
    (0..series)
        .map(|i| {
            let name = format!("metric_{}", i % 100);
            let inst = format!("host-{}", i / 100);
            Labels::from_pairs(&[("__name__", name.as_str()), ("instance", inst.as_str())])
        })
        .collect()
}
