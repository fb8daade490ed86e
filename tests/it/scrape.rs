//! scrape integration tests (owner: scrape helper).
