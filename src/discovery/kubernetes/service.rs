//! `role: service`: one target per service port at `<svc>.<ns>.svc:<port>`
//! (Prometheus `discovery/kubernetes/service.go`), and service labels for endpoints roles.

use super::labels::{
    ADDRESS, LabelSet, META, NAMESPACE, add_namespace_labels, add_object_meta, join_host_port,
};
use super::{Options, Stores};
use crate::discovery::TargetGroup;
use k8s_openapi::api::core::v1::Service;

/// Group source of a service.
pub(crate) fn source(namespace: &str, name: &str) -> String {
    format!("svc/{namespace}/{name}")
}

/// Namespace, name, labels and annotations of a service (Prometheus `serviceLabels`).
pub(crate) fn service_labels(svc: &Service) -> LabelSet {
    let mut ls = LabelSet::new();
    ls.insert(
        NAMESPACE.into(),
        svc.metadata.namespace.clone().unwrap_or_default(),
    );
    add_object_meta(&mut ls, &svc.metadata, "service");
    ls
}

/// LoadBalancer ingress IPs joined with commas, else the deprecated `spec.loadBalancerIP`.
fn load_balancer_ips(svc: &Service) -> String {
    let ips: Vec<&str> = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref().filter(|ip| !ip.is_empty()))
        .collect();
    if ips.is_empty() {
        svc.spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.clone())
            .unwrap_or_default()
    } else {
        ips.join(",")
    }
}

/// The target group of one service.
pub(crate) fn build(svc: &Service, stores: &Stores, opts: &Options) -> TargetGroup {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let mut tg = TargetGroup {
        source: source(&ns, &name),
        labels: service_labels(svc),
        ..Default::default()
    };
    if opts.attach_namespace {
        add_namespace_labels(&mut tg.labels, stores, &ns);
    }
    let Some(spec) = svc.spec.as_ref() else {
        return tg;
    };
    let ty = spec.type_.clone().unwrap_or_default();
    for port in spec.ports.iter().flatten() {
        let mut t = LabelSet::new();
        t.insert(
            ADDRESS.into(),
            join_host_port(&format!("{name}.{ns}.svc"), port.port),
        );
        t.insert(
            format!("{META}service_port_name"),
            port.name.clone().unwrap_or_default(),
        );
        t.insert(format!("{META}service_port_number"), port.port.to_string());
        t.insert(
            format!("{META}service_port_protocol"),
            port.protocol.clone().unwrap_or_default(),
        );
        t.insert(format!("{META}service_type"), ty.clone());
        if ty == "ExternalName" {
            t.insert(
                format!("{META}service_external_name"),
                spec.external_name.clone().unwrap_or_default(),
            );
        } else {
            t.insert(
                format!("{META}service_cluster_ip"),
                spec.cluster_ip.clone().unwrap_or_default(),
            );
        }
        if ty == "LoadBalancer" {
            t.insert(
                format!("{META}service_loadbalancer_ip"),
                load_balancer_ips(svc),
            );
        }
        tg.targets.push(t);
    }
    tg
}
