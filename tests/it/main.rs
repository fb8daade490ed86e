//! Integration tests for the argus binary, one module per theme.

mod federate;
mod federate_from_prometheus;
mod kubernetes;
mod push;
mod remote_write;
mod scrape;
mod server;
