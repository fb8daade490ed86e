//! `role: node`: one target per node at `<address>:<kubelet port>`
//! (Prometheus `discovery/kubernetes/node.go`), and node metadata for other roles.

use super::Stores;
use super::labels::{ADDRESS, LabelSet, META, add_object_meta, join_host_port, sanitize};
use crate::discovery::TargetGroup;
use k8s_openapi::api::core::v1::Node;
use std::collections::BTreeMap;

/// Group source of a node.
pub(crate) fn source(name: &str) -> String {
    format!("node/{name}")
}

/// Address preference, as `k8s.io/kubernetes/pkg/util/node`.
const ADDRESS_PRIORITY: [&str; 6] = [
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
];

/// The target group of one node; no targets when the node has no usable address.
pub(crate) fn build(node: &Node) -> TargetGroup {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut tg = TargetGroup {
        source: source(&name),
        ..Default::default()
    };
    // First address of each type, in the order the node reports them.
    let mut by_type: BTreeMap<&str, &str> = BTreeMap::new();
    let status = node.status.as_ref();
    for a in status
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
    {
        by_type
            .entry(a.type_.as_str())
            .or_insert(a.address.as_str());
    }
    let Some(addr) = ADDRESS_PRIORITY.iter().find_map(|t| by_type.get(t)) else {
        tracing::warn!(node = %name, "no node address found");
        return tg;
    };
    tg.labels.insert(
        format!("{META}node_provider_id"),
        node.spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default(),
    );
    for c in status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
    {
        tg.labels.insert(
            format!("{META}node_condition_{}", sanitize(&c.type_.to_lowercase())),
            c.status.to_lowercase(),
        );
    }
    add_object_meta(&mut tg.labels, &node.metadata, "node");
    let port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map_or(0, |e| e.port);
    let mut t = LabelSet::new();
    t.insert(ADDRESS.into(), join_host_port(addr, port));
    t.insert("instance".into(), name);
    for (ty, a) in by_type {
        t.insert(sanitize(&format!("{META}node_address_{ty}")), a.to_string());
    }
    tg.targets.push(t);
    tg
}

/// Adds `__meta_kubernetes_node_name` plus the node's label and annotation labels when the
/// node is known (Prometheus `addNodeLabels`).
pub(crate) fn add_node_labels(ls: &mut LabelSet, stores: &Stores, node_name: Option<&str>) {
    let Some(name) = node_name else { return };
    let Some(node) = stores.nodes.get("", name) else {
        return;
    };
    add_object_meta(ls, &node.metadata, "node");
}
