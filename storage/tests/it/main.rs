//! Integration tests for argus-storage.
