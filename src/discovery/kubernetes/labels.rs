//! Label helpers shared by the role builders: sanitising, object metadata labels.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

/// A label set as stored in a [`TargetGroup`](crate::discovery::TargetGroup).
pub(crate) type LabelSet = BTreeMap<String, String>;

/// Prefix of every label this provider produces.
pub(crate) const META: &str = "__meta_kubernetes_";
/// `__meta_kubernetes_namespace`.
pub(crate) const NAMESPACE: &str = "__meta_kubernetes_namespace";
/// `__address__`.
pub(crate) const ADDRESS: &str = "__address__";

/// Replaces every character outside `[a-zA-Z0-9_]` with `_` (one per character, as
/// Prometheus's `strutil.SanitizeLabelName` does with its regexp).
pub(crate) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Inserts `__meta_kubernetes_<resource>_name` plus label and annotation labels.
pub(crate) fn add_object_meta(ls: &mut LabelSet, meta: &ObjectMeta, resource: &str) {
    ls.insert(
        format!("{META}{resource}_name"),
        meta.name.clone().unwrap_or_default(),
    );
    add_labels_and_annotations(ls, meta, resource);
}

/// Inserts `_<resource>_label_<k>`, `_<resource>_labelpresent_<k>`, `_<resource>_annotation_<k>`
/// and `_<resource>_annotationpresent_<k>` for every label and annotation of `meta`.
pub(crate) fn add_labels_and_annotations(ls: &mut LabelSet, meta: &ObjectMeta, resource: &str) {
    for (kind, map) in [("label", &meta.labels), ("annotation", &meta.annotations)] {
        for (k, v) in map.iter().flatten() {
            let ln = sanitize(k);
            ls.insert(format!("{META}{resource}_{kind}_{ln}"), v.clone());
            ls.insert(
                format!("{META}{resource}_{kind}present_{ln}"),
                "true".into(),
            );
        }
    }
}

/// Adds `__meta_kubernetes_namespace_label_*`/`_annotation_*` (and `present` forms) of
/// namespace `ns` when it is known (Prometheus `addNamespaceLabels`).
pub(crate) fn add_namespace_labels(ls: &mut LabelSet, stores: &super::Stores, ns: &str) {
    if let Some(n) = stores.namespaces.get("", ns) {
        add_labels_and_annotations(ls, &n.metadata, "namespace");
    }
}

/// The owner reference with `controller: true`, as `metav1.GetControllerOf`.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// `host:port`, bracketing IPv6 hosts as Go's `net.JoinHostPort`.
pub(crate) fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_like_prometheus() {
        let check = |input: &str, want: &str| assert_eq!(sanitize(input), want, "{input}");
        check("app.kubernetes.io/name", "app_kubernetes_io_name");
        check("prometheus.io/scrape", "prometheus_io_scrape");
        check("ok_Name9", "ok_Name9");
        check("ünï", "_n_");
        check("9lives", "9lives");
    }

    #[test]
    fn joins_host_port() {
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", "8080"), "[fd00::1]:8080");
    }

    #[test]
    fn object_meta_labels() {
        let meta = ObjectMeta {
            name: Some("web".into()),
            labels: Some([("app.kubernetes.io/name".to_string(), "web".to_string())].into()),
            annotations: Some([("prometheus.io/port".to_string(), "9102".to_string())].into()),
            ..Default::default()
        };
        let mut ls = LabelSet::new();
        add_object_meta(&mut ls, &meta, "service");
        let want: LabelSet = [
            ("__meta_kubernetes_service_name", "web"),
            (
                "__meta_kubernetes_service_label_app_kubernetes_io_name",
                "web",
            ),
            (
                "__meta_kubernetes_service_labelpresent_app_kubernetes_io_name",
                "true",
            ),
            (
                "__meta_kubernetes_service_annotation_prometheus_io_port",
                "9102",
            ),
            (
                "__meta_kubernetes_service_annotationpresent_prometheus_io_port",
                "true",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(ls, want);
    }
}
