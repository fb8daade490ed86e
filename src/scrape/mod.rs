//! Pull scraper: exposition parsers, scrape loops, relabeling. OWNER: scrape helper.

pub mod expfmt;
