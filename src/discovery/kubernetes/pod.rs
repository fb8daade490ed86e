//! `role: pod`: one target per declared container port, or one per port-less container with
//! `__address__` = pod IP (Prometheus `discovery/kubernetes/pod.go`).

use super::labels::{
    ADDRESS, LabelSet, META, NAMESPACE, add_namespace_labels, add_object_meta, controller_of,
    join_host_port,
};
use super::node::add_node_labels;
use super::{Options, Stores};
use crate::discovery::TargetGroup;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};

fn ns_of(pod: &Pod) -> String {
    pod.metadata.namespace.clone().unwrap_or_default()
}

/// Group source of a pod.
pub(crate) fn source(namespace: &str, name: &str) -> String {
    format!("pod/{namespace}/{name}")
}

/// Pod-level labels shared by the pod role and pod-backed endpoints (Prometheus `podLabels`).
pub(crate) fn pod_labels(pod: &Pod, stores: &Stores, opts: &Options) -> LabelSet {
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    let s = |v: Option<&String>| v.cloned().unwrap_or_default();
    let mut ls = LabelSet::new();
    ls.insert(
        format!("{META}pod_ip"),
        s(status.and_then(|st| st.pod_ip.as_ref())),
    );
    ls.insert(format!("{META}pod_ready"), pod_ready(pod));
    ls.insert(
        format!("{META}pod_phase"),
        s(status.and_then(|st| st.phase.as_ref())),
    );
    ls.insert(
        format!("{META}pod_node_name"),
        s(spec.and_then(|sp| sp.node_name.as_ref())),
    );
    ls.insert(
        format!("{META}pod_host_ip"),
        s(status.and_then(|st| st.host_ip.as_ref())),
    );
    ls.insert(format!("{META}pod_uid"), s(pod.metadata.uid.as_ref()));
    add_object_meta(&mut ls, &pod.metadata, "pod");
    if let Some(owner) = controller_of(&pod.metadata) {
        if !owner.kind.is_empty() {
            ls.insert(format!("{META}pod_controller_kind"), owner.kind.clone());
        }
        if !owner.name.is_empty() {
            ls.insert(format!("{META}pod_controller_name"), owner.name.clone());
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        match owner.kind.as_str() {
            "ReplicaSet" if opts.attach_deployment => {
                let deploy = stores
                    .replica_sets
                    .get(ns, &owner.name)
                    .and_then(|rs| controller_of(&rs.metadata))
                    .filter(|o| o.kind == "Deployment");
                if let Some(d) = deploy {
                    ls.insert(format!("{META}pod_deployment_name"), d.name.clone());
                }
            }
            "Job" => {
                if opts.attach_job {
                    ls.insert(format!("{META}pod_job_name"), owner.name.clone());
                }
                if opts.attach_cronjob {
                    let cron = stores
                        .jobs
                        .get(ns, &owner.name)
                        .and_then(|j| controller_of(&j.metadata))
                        .filter(|o| o.kind == "CronJob");
                    if let Some(c) = cron {
                        ls.insert(format!("{META}pod_cronjob_name"), c.name.clone());
                    }
                }
            }
            _ => {}
        }
    }
    ls
}

/// `true`/`false`/`unknown` from the `Ready` condition, lower-cased.
fn pod_ready(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map_or_else(|| "unknown".to_string(), |c| c.status.to_lowercase())
}

/// Regular containers then init containers, each with its `is_init` flag.
pub(crate) fn containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    let spec = pod.spec.as_ref();
    let regular = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let init = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    regular
        .iter()
        .map(|c| (c, false))
        .chain(init.iter().map(|c| (c, true)))
}

fn container_id(statuses: Option<&Vec<ContainerStatus>>, name: &str) -> String {
    statuses
        .into_iter()
        .flatten()
        .find(|s| s.name == name)
        .and_then(|s| s.container_id.clone())
        .unwrap_or_default()
}

/// The target group of one pod; empty targets when the pod has no IP yet.
pub(crate) fn build(pod: &Pod, stores: &Stores, opts: &Options) -> TargetGroup {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut tg = TargetGroup {
        source: source(&ns, &name),
        ..Default::default()
    };
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default();
    if ip.is_empty() {
        return tg;
    }
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    if opts.attach_node {
        // Pods on nodes missing from the node store were filtered out by node selectors.
        match node_name.as_deref().and_then(|n| stores.nodes.get("", n)) {
            Some(_) => {}
            None => return tg,
        }
    }
    tg.labels = pod_labels(pod, stores, opts);
    tg.labels.insert(NAMESPACE.into(), ns);
    if opts.attach_node {
        add_node_labels(&mut tg.labels, stores, node_name.as_deref());
    }
    if opts.attach_namespace {
        add_namespace_labels(&mut tg.labels, stores, &ns_of(pod));
    }
    let status = pod.status.as_ref();
    for (c, is_init) in containers(pod) {
        let statuses = if is_init {
            status.and_then(|s| s.init_container_statuses.as_ref())
        } else {
            status.and_then(|s| s.container_statuses.as_ref())
        };
        let mut base = LabelSet::new();
        base.insert(format!("{META}pod_container_name"), c.name.clone());
        base.insert(
            format!("{META}pod_container_id"),
            container_id(statuses, &c.name),
        );
        base.insert(
            format!("{META}pod_container_image"),
            c.image.clone().unwrap_or_default(),
        );
        base.insert(format!("{META}pod_container_init"), is_init.to_string());
        let ports = c.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            let mut t = base;
            t.insert(ADDRESS.into(), ip.clone());
            tg.targets.push(t);
            continue;
        }
        for p in ports {
            let mut t = base.clone();
            t.insert(ADDRESS.into(), join_host_port(&ip, p.container_port));
            t.insert(
                format!("{META}pod_container_port_number"),
                p.container_port.to_string(),
            );
            t.insert(
                format!("{META}pod_container_port_name"),
                p.name.clone().unwrap_or_default(),
            );
            t.insert(
                format!("{META}pod_container_port_protocol"),
                p.protocol.clone().unwrap_or_default(),
            );
            tg.targets.push(t);
        }
    }
    tg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(text: &str) -> Pod {
        serde_json::from_str(text).expect("pod fixture")
    }

    #[test]
    fn job_metadata_and_unknown_readiness() {
        let mut pod = fixture(include_str!("../../../testdata/k8s/pod-batch.json"));
        let plain = pod_labels(&pod, &Stores::default(), &Options::default());
        assert_eq!(
            plain.get("__meta_kubernetes_pod_ready").map(String::as_str),
            Some("unknown")
        );
        assert_eq!(
            plain
                .get("__meta_kubernetes_pod_controller_kind")
                .map(String::as_str),
            Some("Job")
        );
        assert_eq!(plain.get("__meta_kubernetes_pod_job_name"), None);
        let opts = Options {
            attach_job: true,
            ..Options::default()
        };
        let with_job = pod_labels(&pod, &Stores::default(), &opts);
        assert_eq!(
            with_job
                .get("__meta_kubernetes_pod_job_name")
                .map(String::as_str),
            Some("report-29123456")
        );

        // No IP yet: a group without targets.
        let stores = Stores::default();
        assert!(build(&pod, &stores, &opts).targets.is_empty());
        if let Some(s) = pod.status.as_mut() {
            s.pod_ip = Some("fd00::9".into());
        }
        let g = build(&pod, &stores, &opts);
        assert_eq!(g.source, "pod/jobs/report-29123456-abcde");
        assert_eq!(g.targets.len(), 1);
        assert_eq!(
            g.targets[0].get("__address__").map(String::as_str),
            Some("fd00::9")
        );
    }

    #[test]
    fn attach_node_drops_pods_on_unknown_nodes() {
        let pod = fixture(include_str!("../../../testdata/k8s/pod-web.json"));
        let opts = Options {
            attach_node: true,
            ..Options::default()
        };
        let stores = Stores::default();
        assert!(
            build(&pod, &stores, &opts).targets.is_empty(),
            "node-1 is not in the (selector-filtered) node store"
        );
        assert_eq!(build(&pod, &stores, &Options::default()).targets.len(), 4);
    }
}
