//! kubernetes integration tests (owner: kubernetes helper).
