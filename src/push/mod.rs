//! Pushgateway-compatible push ingest and federation. OWNER: push helper.
