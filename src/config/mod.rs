//! Prometheus-format YAML configuration. OWNER: server helper (top level);
//! `scrape.rs` and `relabel.rs`: scrape helper.
