//! Kubernetes service discovery (kube-rs list+watch). OWNER: kubernetes helper.
