//! `role: endpoints`: one target per address and port of an Endpoints object, enriched with
//! the service's and the backing pod's labels, plus one target per pod container port not
//! covered by the endpoints (Prometheus `discovery/kubernetes/endpoints.go`).

use super::labels::{
    ADDRESS, LabelSet, META, NAMESPACE, add_namespace_labels, add_object_meta, join_host_port,
};
use super::node::add_node_labels;
use super::pod::{containers, pod_labels};
use super::service::service_labels;
use super::{Options, Stores};
use crate::discovery::TargetGroup;
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints, ObjectReference, Pod};

/// Group source of an Endpoints object.
pub(crate) fn source(namespace: &str, name: &str) -> String {
    format!("endpoints/{namespace}/{name}")
}

/// Pods met while building one group, in first-seen order, with the endpoint ports that
/// already produced a target for them.
#[derive(Default)]
pub(crate) struct SeenPods<'a> {
    pods: Vec<(&'a Pod, Vec<i32>)>,
}

impl<'a> SeenPods<'a> {
    /// Records that `pod` got a target for endpoint port `port` (if any).
    pub(crate) fn mark(&mut self, pod: &'a Pod, port: Option<i32>) {
        let idx = match self.pods.iter().position(|(p, _)| std::ptr::eq(*p, pod)) {
            Some(i) => i,
            None => {
                self.pods.push((pod, Vec::new()));
                self.pods.len() - 1
            }
        };
        if let (Some(port), Some((_, ports))) = (port, self.pods.get_mut(idx)) {
            ports.push(port);
        }
    }

    /// Targets for every container port of a seen pod that no endpoint port covered.
    pub(crate) fn uncovered_targets(&self, stores: &Stores, opts: &Options) -> Vec<LabelSet> {
        let mut out = Vec::new();
        for (pod, seen) in &self.pods {
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .unwrap_or_default();
            if ip.is_empty() {
                continue;
            }
            for (c, is_init) in containers(pod) {
                for cp in c.ports.iter().flatten() {
                    if seen.contains(&cp.container_port) {
                        continue;
                    }
                    let mut t = pod_labels(pod, stores, opts);
                    t.insert(ADDRESS.into(), join_host_port(ip, cp.container_port));
                    t.insert(format!("{META}pod_container_name"), c.name.clone());
                    t.insert(
                        format!("{META}pod_container_image"),
                        c.image.clone().unwrap_or_default(),
                    );
                    t.insert(
                        format!("{META}pod_container_port_name"),
                        cp.name.clone().unwrap_or_default(),
                    );
                    t.insert(
                        format!("{META}pod_container_port_number"),
                        cp.container_port.to_string(),
                    );
                    t.insert(
                        format!("{META}pod_container_port_protocol"),
                        cp.protocol.clone().unwrap_or_default(),
                    );
                    t.insert(format!("{META}pod_container_init"), is_init.to_string());
                    out.push(t);
                }
            }
        }
        out
    }
}

/// The pod an address points at, when it is a known pod.
pub(crate) fn resolve_pod<'a>(
    stores: &'a Stores,
    target_ref: Option<&ObjectReference>,
) -> Option<&'a Pod> {
    let r = target_ref?;
    if r.kind.as_deref() != Some("Pod") {
        return None;
    }
    stores.pods.get(
        r.namespace.as_deref().unwrap_or_default(),
        r.name.as_deref().unwrap_or_default(),
    )
}

/// Adds the pod labels and, when a container declares `port`, its container labels.
/// `protocol` is the protocol to report for a matching container port (`None`: the
/// container port's own).
pub(crate) fn add_pod_target_labels(
    t: &mut LabelSet,
    pod: &Pod,
    port: Option<i32>,
    protocol: Option<&str>,
    stores: &Stores,
    opts: &Options,
) {
    t.extend(pod_labels(pod, stores, opts));
    let Some(port) = port else { return };
    for (c, is_init) in containers(pod) {
        if let Some(cp) = c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.container_port == port)
        {
            t.insert(format!("{META}pod_container_name"), c.name.clone());
            t.insert(
                format!("{META}pod_container_image"),
                c.image.clone().unwrap_or_default(),
            );
            t.insert(
                format!("{META}pod_container_port_name"),
                cp.name.clone().unwrap_or_default(),
            );
            t.insert(format!("{META}pod_container_port_number"), port.to_string());
            let proto = protocol
                .map(str::to_string)
                .or_else(|| cp.protocol.clone())
                .unwrap_or_default();
            t.insert(format!("{META}pod_container_port_protocol"), proto);
            t.insert(format!("{META}pod_container_init"), is_init.to_string());
            // Prometheus stops at the first matching port of each container but keeps
            // scanning later containers, so the last matching container wins.
        }
    }
}

/// The target group of one Endpoints object.
pub(crate) fn build(eps: &Endpoints, stores: &Stores, opts: &Options) -> TargetGroup {
    let ns = eps.metadata.namespace.clone().unwrap_or_default();
    let name = eps.metadata.name.clone().unwrap_or_default();
    let mut tg = TargetGroup {
        source: source(&ns, &name),
        ..Default::default()
    };
    tg.labels.insert(NAMESPACE.into(), ns.clone());
    if let Some(svc) = stores.services.get(&ns, &name) {
        tg.labels.extend(service_labels(svc));
    }
    add_object_meta(&mut tg.labels, &eps.metadata, "endpoints");
    if opts.attach_namespace {
        add_namespace_labels(&mut tg.labels, stores, &ns);
    }

    let mut seen = SeenPods::default();
    let mut add = |addr: &EndpointAddress, port: &EndpointPort, ready: &str| {
        let mut t = LabelSet::new();
        t.insert(ADDRESS.into(), join_host_port(&addr.ip, port.port));
        t.insert(
            format!("{META}endpoint_port_name"),
            port.name.clone().unwrap_or_default(),
        );
        t.insert(
            format!("{META}endpoint_port_protocol"),
            port.protocol.clone().unwrap_or_default(),
        );
        t.insert(format!("{META}endpoint_ready"), ready.into());
        if let Some(r) = &addr.target_ref {
            t.insert(
                format!("{META}endpoint_address_target_kind"),
                r.kind.clone().unwrap_or_default(),
            );
            t.insert(
                format!("{META}endpoint_address_target_name"),
                r.name.clone().unwrap_or_default(),
            );
        }
        if let Some(n) = &addr.node_name {
            t.insert(format!("{META}endpoint_node_name"), n.clone());
        }
        if let Some(h) = addr.hostname.as_ref().filter(|h| !h.is_empty()) {
            t.insert(format!("{META}endpoint_hostname"), h.clone());
        }
        if opts.attach_node {
            let node = addr.node_name.as_deref().or_else(|| {
                addr.target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Node"))
                    .and_then(|r| r.name.as_deref())
            });
            add_node_labels(&mut t, stores, node);
        }
        if let Some(pod) = resolve_pod(stores, addr.target_ref.as_ref()) {
            add_pod_target_labels(
                &mut t,
                pod,
                Some(port.port),
                port.protocol.as_deref(),
                stores,
                opts,
            );
            seen.mark(pod, Some(port.port));
        }
        tg.targets.push(t);
    };
    for ss in eps.subsets.iter().flatten() {
        for port in ss.ports.iter().flatten() {
            for addr in ss.addresses.iter().flatten() {
                add(addr, port, "true");
            }
            for addr in ss.not_ready_addresses.iter().flatten() {
                add(addr, port, "false");
            }
        }
    }
    let extra = seen.uncovered_targets(stores, opts);
    tg.targets.extend(extra);
    tg
}
