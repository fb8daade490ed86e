//! Remote-write receiver. OWNER: server helper.
