//! Integration tests for the argus binary, one module per theme.

mod federate;
mod federate_from_prometheus;
mod kubernetes;
mod notifier;
mod push;
mod rules_cli;
mod rules_server;
mod scrape;
mod server;
