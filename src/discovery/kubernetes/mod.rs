//! Kubernetes service discovery (kube-rs list+watch). OWNER: kubernetes helper.

mod config;

pub use config::KubernetesSdConfig;
