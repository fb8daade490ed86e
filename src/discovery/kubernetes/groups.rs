//! From store changes to target-group updates: which groups an event can affect, rebuilding
//! just those (or all after a re-list), and diffing against what was sent.

use super::config::Role;
use super::store::{Change, Key, Stores};
use super::watch::Update;
use super::{Options, endpoints, endpointslice, node, pod, service};
use crate::discovery::TargetGroup;
use std::collections::{BTreeMap, BTreeSet};

/// Groups to rebuild after a batch of events.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    /// Rebuild everything (a store was re-listed, or node metadata of endpoints changed).
    all: bool,
    /// Primary objects of the role (`(namespace, name)`; nodes: `("", name)`).
    keys: BTreeSet<Key>,
    /// Every primary object in these namespaces.
    namespaces: BTreeSet<String>,
    /// Pods on these nodes (pod role with `attach_metadata.node`).
    nodes: BTreeSet<String>,
}

impl Dirty {
    /// Whether nothing needs rebuilding.
    pub(crate) fn is_empty(&self) -> bool {
        !self.all && self.keys.is_empty() && self.namespaces.is_empty() && self.nodes.is_empty()
    }

    /// Marks everything dirty.
    pub(crate) fn mark_all(&mut self) {
        self.all = true;
    }

    fn mark(&mut self, role: Role, kind: Role, change: Change) {
        let key = match change {
            Change::None => return,
            Change::All => {
                self.all = true;
                return;
            }
            Change::Object(key) => key,
        };
        match (role, kind) {
            (r, k) if r == k => {
                self.keys.insert(key);
            }
            // Endpoints carry the labels of the service with the same name.
            (Role::Endpoints, Role::Service) => {
                self.keys.insert(key);
            }
            // Slices name their service in a label; pods are referenced from slices and
            // endpoints of their namespace.
            (Role::EndpointSlice, Role::Service)
            | (Role::Endpoints | Role::EndpointSlice, Role::Pod) => {
                self.namespaces.insert(key.0);
            }
            (Role::Pod, Role::Node) => {
                self.nodes.insert(key.1);
            }
            _ => self.all = true,
        }
    }
}

/// A ReplicaSet or Job changed: pod labels of its namespace may change.
fn owner_changed(dirty: &mut Dirty, role: Role, change: Change) {
    match change {
        Change::None => {}
        Change::All => dirty.all = true,
        Change::Object((ns, _)) => {
            if matches!(role, Role::Pod | Role::Endpoints | Role::EndpointSlice) {
                dirty.namespaces.insert(ns);
            }
        }
    }
}

/// Applies one watcher update to the stores and records what it may have changed.
pub(crate) fn apply(stores: &mut Stores, dirty: &mut Dirty, role: Role, u: Update) {
    let (kind, change) = match u {
        Update::Pod(w, ev) => (Role::Pod, stores.pods.apply(w, *ev)),
        Update::Service(w, ev) => (Role::Service, stores.services.apply(w, *ev)),
        Update::Endpoints(w, ev) => (Role::Endpoints, stores.endpoints.apply(w, *ev)),
        Update::EndpointSlice(w, ev) => (Role::EndpointSlice, stores.endpoint_slices.apply(w, *ev)),
        Update::Node(w, ev) => (Role::Node, stores.nodes.apply(w, *ev)),
        Update::Namespace(w, ev) => {
            match stores.namespaces.apply(w, *ev) {
                Change::None => {}
                Change::All => dirty.all = true,
                // Namespace metadata goes on every group of the namespace.
                Change::Object((_, name)) => {
                    dirty.namespaces.insert(name);
                }
            }
            return;
        }
        Update::ReplicaSet(w, ev) => {
            owner_changed(dirty, role, stores.replica_sets.apply(w, *ev));
            return;
        }
        Update::Job(w, ev) => {
            owner_changed(dirty, role, stores.jobs.apply(w, *ev));
            return;
        }
    };
    dirty.mark(role, kind, change);
}

/// Source and group (`None` when the object is gone or has no targets) of one primary object.
fn build_one(
    role: Role,
    stores: &Stores,
    opts: &Options,
    key: &Key,
) -> (String, Option<TargetGroup>) {
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let (source, group) = match role {
        Role::Pod => (
            pod::source(ns, name),
            stores
                .pods
                .get(ns, name)
                .map(|p| pod::build(p, stores, opts)),
        ),
        Role::Service => (
            service::source(ns, name),
            stores
                .services
                .get(ns, name)
                .map(|s| service::build(s, stores, opts)),
        ),
        Role::Endpoints => (
            endpoints::source(ns, name),
            stores
                .endpoints
                .get(ns, name)
                .map(|e| endpoints::build(e, stores, opts)),
        ),
        Role::EndpointSlice => (
            endpointslice::source(ns, name),
            stores
                .endpoint_slices
                .get(ns, name)
                .map(|e| endpointslice::build(e, stores, opts)),
        ),
        Role::Node => (
            node::source(name),
            stores.nodes.get("", name).map(node::build),
        ),
    };
    (source, group.filter(|g| !g.targets.is_empty()))
}

fn primary_keys_in(role: Role, stores: &Stores, ns: &str) -> Vec<Key> {
    match role {
        Role::Pod => stores.pods.keys_in(ns),
        Role::Service => stores.services.keys_in(ns),
        Role::Endpoints => stores.endpoints.keys_in(ns),
        Role::EndpointSlice => stores.endpoint_slices.keys_in(ns),
        Role::Node => stores.nodes.keys_in(ns),
    }
}

/// Every non-empty group of `role` from the stores, keyed by source.
pub(crate) fn build_all(
    role: Role,
    stores: &Stores,
    opts: &Options,
) -> BTreeMap<String, TargetGroup> {
    let keys: Vec<Key> = match role {
        Role::Pod => stores.pods.keys(),
        Role::Service => stores.services.keys(),
        Role::Endpoints => stores.endpoints.keys(),
        Role::EndpointSlice => stores.endpoint_slices.keys(),
        Role::Node => stores.nodes.keys(),
    };
    keys.iter()
        .filter_map(|k| {
            let (src, g) = build_one(role, stores, opts, k);
            g.map(|g| (src, g))
        })
        .collect()
}

/// Rebuilds the dirty groups, updates `sent` and returns the groups that changed (an empty
/// group for each one that disappeared), ordered by source. Clears `dirty`.
pub(crate) fn rebuild(
    role: Role,
    stores: &Stores,
    opts: &Options,
    dirty: &mut Dirty,
    sent: &mut BTreeMap<String, TargetGroup>,
) -> Vec<TargetGroup> {
    let d = std::mem::take(dirty);
    if d.all {
        return diff_all(sent, build_all(role, stores, opts));
    }
    let mut keys = d.keys;
    for ns in &d.namespaces {
        keys.extend(primary_keys_in(role, stores, ns));
    }
    if !d.nodes.is_empty() {
        for p in stores.pods.iter() {
            let on = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
            if on.is_some_and(|n| d.nodes.contains(n)) {
                keys.insert((
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    for k in &keys {
        let (src, g) = build_one(role, stores, opts, k);
        match g {
            Some(g) => {
                if sent.get(&src) != Some(&g) {
                    sent.insert(src, g.clone());
                    out.push(g);
                }
            }
            None => {
                if sent.remove(&src).is_some() {
                    out.push(TargetGroup {
                        source: src,
                        ..Default::default()
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.source.cmp(&b.source));
    out
}

/// Updates `sent` to `now` and returns the groups that changed, with an empty group (no
/// targets, no labels) for each source that disappeared. Ordered by source.
pub(crate) fn diff_all(
    sent: &mut BTreeMap<String, TargetGroup>,
    now: BTreeMap<String, TargetGroup>,
) -> Vec<TargetGroup> {
    let mut out = Vec::new();
    for src in sent.keys() {
        if !now.contains_key(src) {
            out.push(TargetGroup {
                source: src.clone(),
                ..Default::default()
            });
        }
    }
    for (src, g) in &now {
        if sent.get(src) != Some(g) {
            out.push(g.clone());
        }
    }
    out.sort_by(|a, b| a.source.cmp(&b.source));
    *sent = now;
    out
}

#[cfg(test)]
mod tests;
