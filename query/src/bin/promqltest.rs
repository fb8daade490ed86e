//! Runs Prometheus's promqltest files. OWNER: query helper.
fn main() {}
