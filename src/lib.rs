//! The Argus server: config, scraping, discovery, push, remote write, federation, HTTP API.
#![deny(unsafe_code)]

pub mod api;
pub mod config;
pub mod discovery;
pub mod federate;
pub mod ingest;
pub mod push;
pub mod scrape;
