//! server integration tests (owner: server helper).
