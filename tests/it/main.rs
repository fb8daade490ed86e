//! Integration tests for the argus binary.
