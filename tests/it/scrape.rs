//! scrape integration tests (owner: scrape helper).

mod conformance;
