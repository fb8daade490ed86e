//! `argus` binary entry point. OWNER: server helper.
fn main() {}
