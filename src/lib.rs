//! The Argus server: config, scraping, discovery, push, remote write, federation, HTTP API.
#![deny(unsafe_code)]

pub mod agent;
pub mod api;
pub mod config;
pub mod discovery;
pub mod expose;
pub mod flags;
pub mod ingest;
pub(crate) mod metrics;
pub mod notifier;
pub mod push;
pub mod remote;
pub mod rules;
pub mod scrape;
pub mod server;
pub mod template;
pub mod util;
pub mod web;
