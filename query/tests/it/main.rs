//! Integration tests for argus-query, one module per theme.

mod engine;
mod functions;
mod promqltest;
