//! Integration tests for argus-query.
