//! `role: endpointslice`: one target per endpoint address and slice port, enriched with the
//! owning service's (label `kubernetes.io/service-name`) and the backing pod's labels
//! (Prometheus `discovery/kubernetes/endpointslice.go`, `discovery.k8s.io/v1` only).

use super::endpoints::{SeenPods, add_pod_target_labels, resolve_pod};
use super::labels::{
    ADDRESS, LabelSet, META, NAMESPACE, add_namespace_labels, add_object_meta, join_host_port,
    sanitize,
};
use super::node::add_node_labels;
use super::service::service_labels;
use super::{Options, Stores};
use crate::discovery::TargetGroup;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

/// Group source of an EndpointSlice.
pub(crate) fn source(namespace: &str, name: &str) -> String {
    format!("endpointslice/{namespace}/{name}")
}

/// Whether `eps` is the secondary-family slice of a dual-stack service (its targets would
/// duplicate the primary slice's).
fn non_primary_ip_family(svc: Option<&Service>, eps: &EndpointSlice) -> bool {
    let Some(spec) = svc.and_then(|s| s.spec.as_ref()) else {
        return false;
    };
    match spec.ip_family_policy.as_deref() {
        Some("PreferDualStack" | "RequireDualStack") => {}
        _ => return false,
    }
    match spec.ip_families.as_ref().and_then(|f| f.first()) {
        Some(primary) => eps.address_type != *primary,
        None => false,
    }
}

fn endpoint_target(ep: &Endpoint, addr: &str, port: &EndpointPort) -> LabelSet {
    let mut t = LabelSet::new();
    let a = match port.port {
        Some(p) => join_host_port(addr, p),
        None => addr.to_string(),
    };
    t.insert(ADDRESS.into(), a);
    let mut opt = |name: &str, v: Option<String>| {
        if let Some(v) = v {
            t.insert(format!("{META}{name}"), v);
        }
    };
    opt("endpointslice_port_name", port.name.clone());
    opt("endpointslice_port_protocol", port.protocol.clone());
    opt("endpointslice_port", port.port.map(|p| p.to_string()));
    opt("endpointslice_port_app_protocol", port.app_protocol.clone());
    let cond = ep.conditions.as_ref();
    opt(
        "endpointslice_endpoint_conditions_ready",
        cond.and_then(|c| c.ready).map(|b| b.to_string()),
    );
    opt(
        "endpointslice_endpoint_conditions_serving",
        cond.and_then(|c| c.serving).map(|b| b.to_string()),
    );
    opt(
        "endpointslice_endpoint_conditions_terminating",
        cond.and_then(|c| c.terminating).map(|b| b.to_string()),
    );
    opt("endpointslice_endpoint_hostname", ep.hostname.clone());
    if let Some(r) = &ep.target_ref {
        opt(
            "endpointslice_address_target_kind",
            Some(r.kind.clone().unwrap_or_default()),
        );
        opt(
            "endpointslice_address_target_name",
            Some(r.name.clone().unwrap_or_default()),
        );
    }
    opt("endpointslice_endpoint_node_name", ep.node_name.clone());
    opt("endpointslice_endpoint_zone", ep.zone.clone());
    for (k, v) in ep.deprecated_topology.iter().flatten() {
        let ln = sanitize(k);
        t.insert(
            format!("{META}endpointslice_endpoint_topology_{ln}"),
            v.clone(),
        );
        t.insert(
            format!("{META}endpointslice_endpoint_topology_present_{ln}"),
            "true".into(),
        );
    }
    t
}

/// The target group of one EndpointSlice.
pub(crate) fn build(eps: &EndpointSlice, stores: &Stores, opts: &Options) -> TargetGroup {
    let ns = eps.metadata.namespace.clone().unwrap_or_default();
    let name = eps.metadata.name.clone().unwrap_or_default();
    let mut tg = TargetGroup {
        source: source(&ns, &name),
        ..Default::default()
    };
    tg.labels.insert(NAMESPACE.into(), ns.clone());
    tg.labels.insert(
        format!("{META}endpointslice_address_type"),
        eps.address_type.clone(),
    );
    add_object_meta(&mut tg.labels, &eps.metadata, "endpointslice");
    let svc = eps
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/service-name"))
        .and_then(|svc_name| stores.services.get(&ns, svc_name));
    if let Some(svc) = svc {
        tg.labels.extend(service_labels(svc));
    }
    if opts.attach_namespace {
        add_namespace_labels(&mut tg.labels, stores, &ns);
    }
    if non_primary_ip_family(svc, eps) {
        return tg;
    }
    let mut seen = SeenPods::default();
    for ep in &eps.endpoints {
        for port in eps.ports.iter().flatten() {
            for addr in &ep.addresses {
                let mut t = endpoint_target(ep, addr, port);
                if opts.attach_node {
                    let node = match &ep.target_ref {
                        Some(r) if r.kind.as_deref() == Some("Node") => r.name.as_deref(),
                        _ => ep.node_name.as_deref(),
                    };
                    add_node_labels(&mut t, stores, node);
                }
                if let Some(pod) = resolve_pod(stores, ep.target_ref.as_ref()) {
                    add_pod_target_labels(&mut t, pod, port.port, None, stores, opts);
                    seen.mark(pod, port.port);
                }
                tg.targets.push(t);
            }
        }
    }
    tg.targets.extend(seen.uncovered_targets(stores, opts));
    tg
}
