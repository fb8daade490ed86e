//! push integration tests (owner: push helper).
