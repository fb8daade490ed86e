//! Integration tests for the argus binary, one module per theme.

mod federate;
mod kubernetes;
mod push;
mod scrape;
mod server;
