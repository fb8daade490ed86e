//! Criterion benchmark (placeholder until its owner fills it).
fn main() {}
