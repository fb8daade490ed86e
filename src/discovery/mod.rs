//! Service discovery: static, file, Kubernetes. OWNER: scrape helper (static/file) and
//! kubernetes helper (`kubernetes/`).
pub mod kubernetes;
