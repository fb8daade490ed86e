//! HTTP API (axum). OWNER: server helper.
