//! scrape integration tests (owner: scrape helper).

mod conformance;
mod e2e;
