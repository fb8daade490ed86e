//! Local caches of watched objects, fed by watcher events.
//!
//! Each resource kind may be watched by several watchers (one per namespace); every object
//! remembers which watcher owns it, so a re-list by one watcher replaces exactly that
//! watcher's objects: objects missing from the new list are dropped, the rest survive.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Resource;
use kube::runtime::watcher::Event;
use std::collections::{BTreeMap, HashMap, HashSet};

/// `(namespace, name)`; cluster-scoped objects have an empty namespace.
pub(crate) type Key = (String, String);

/// What an event changed in a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing visible (a list in progress, deletion of an unknown object).
    None,
    /// One object was added, modified or deleted.
    Object(Key),
    /// A list completed: any object may have changed.
    All,
}

/// Objects of one kind, keyed by namespace and name.
pub(crate) struct Store<K> {
    objs: BTreeMap<Key, (usize, K)>,
    /// Objects received since a watcher's `Init`, applied at its `InitDone`.
    pending: HashMap<usize, BTreeMap<Key, K>>,
    /// Watchers that completed at least one initial list.
    synced: HashSet<usize>,
    /// Number of watchers feeding this store.
    watchers: usize,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Self {
            objs: BTreeMap::new(),
            pending: HashMap::new(),
            synced: HashSet::new(),
            watchers: 0,
        }
    }
}

fn key_of<K: Resource>(obj: &K) -> Key {
    let m = obj.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// Drops `metadata.managedFields`: often the bulk of an object, never used for targets.
fn strip<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

impl<K: Resource> Store<K> {
    /// Registers one more watcher feeding this store and returns its id.
    pub(crate) fn add_watcher(&mut self) -> usize {
        self.watchers += 1;
        self.watchers - 1
    }

    /// Whether every watcher completed its first list.
    pub(crate) fn synced(&self) -> bool {
        self.synced.len() == self.watchers
    }

    /// Applies one watcher event and says what changed.
    pub(crate) fn apply(&mut self, watcher: usize, ev: Event<K>) -> Change {
        match ev {
            Event::Apply(mut obj) => {
                strip(&mut obj);
                let key = key_of(&obj);
                self.objs.insert(key.clone(), (watcher, obj));
                Change::Object(key)
            }
            Event::Delete(obj) => {
                let key = key_of(&obj);
                match self.objs.remove(&key) {
                    Some(_) => Change::Object(key),
                    None => Change::None,
                }
            }
            Event::Init => {
                self.pending.insert(watcher, BTreeMap::new());
                Change::None
            }
            Event::InitApply(mut obj) => {
                strip(&mut obj);
                self.pending
                    .entry(watcher)
                    .or_default()
                    .insert(key_of(&obj), obj);
                Change::None
            }
            Event::InitDone => {
                let fresh = self.pending.remove(&watcher).unwrap_or_default();
                self.objs.retain(|_, (w, _)| *w != watcher);
                for (k, obj) in fresh {
                    self.objs.insert(k, (watcher, obj));
                }
                self.synced.insert(watcher);
                Change::All
            }
        }
    }

    /// The object `namespace/name`.
    pub(crate) fn get(&self, namespace: &str, name: &str) -> Option<&K> {
        // BTreeMap<(String, String)> lookups need owned keys; objects are few per lookup.
        self.objs
            .get(&(namespace.to_string(), name.to_string()))
            .map(|(_, o)| o)
    }

    /// All objects, ordered by namespace and name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &K> {
        self.objs.values().map(|(_, o)| o)
    }

    /// Keys of all objects, ordered.
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.objs.keys().cloned().collect()
    }

    /// Keys of the objects in `namespace`, ordered by name.
    pub(crate) fn keys_in(&self, namespace: &str) -> Vec<Key> {
        self.objs
            .range((namespace.to_string(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Number of objects.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.objs.len()
    }
}

/// All caches a role may need.
#[derive(Default)]
pub(crate) struct Stores {
    pub(crate) pods: Store<Pod>,
    pub(crate) services: Store<Service>,
    pub(crate) endpoints: Store<Endpoints>,
    pub(crate) endpoint_slices: Store<EndpointSlice>,
    pub(crate) nodes: Store<Node>,
    pub(crate) namespaces: Store<Namespace>,
    pub(crate) replica_sets: Store<ReplicaSet>,
    pub(crate) jobs: Store<Job>,
}

impl Stores {
    /// Whether every watched kind completed its first list.
    pub(crate) fn synced(&self) -> bool {
        self.pods.synced()
            && self.services.synced()
            && self.endpoints.synced()
            && self.endpoint_slices.synced()
            && self.nodes.synced()
            && self.namespaces.synced()
            && self.replica_sets.synced()
            && self.jobs.synced()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(ns: &str, name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(s: &Store<Pod>) -> Vec<String> {
        s.iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn relist_replaces_only_its_watchers_objects() {
        let mut s = Store::<Pod>::default();
        let a = s.add_watcher();
        let b = s.add_watcher();
        s.apply(a, Event::Init);
        s.apply(b, Event::Init);
        for (w, ns, name) in [(a, "ns-a", "p1"), (a, "ns-a", "p2"), (b, "ns-b", "q1")] {
            s.apply(w, Event::InitApply(pod(ns, name)));
        }
        assert_eq!(s.len(), 0, "nothing visible before InitDone");
        assert!(!s.synced());
        s.apply(a, Event::InitDone);
        assert!(!s.synced(), "b has not listed yet");
        s.apply(b, Event::InitDone);
        assert!(s.synced());
        assert_eq!(names(&s), vec!["p1", "p2", "q1"]);

        // Re-list of `a`: during the list old objects stay visible.
        s.apply(a, Event::Init);
        s.apply(a, Event::InitApply(pod("ns-a", "p3")));
        assert_eq!(names(&s), vec!["p1", "p2", "q1"]);
        s.apply(a, Event::InitDone);
        assert_eq!(names(&s), vec!["p3", "q1"], "p1, p2 gone; b's q1 kept");

        s.apply(b, Event::Delete(pod("ns-b", "q1")));
        s.apply(b, Event::Apply(pod("ns-b", "q2")));
        assert_eq!(names(&s), vec!["p3", "q2"]);
        assert!(s.get("ns-b", "q2").is_some());
        assert_eq!(s.len(), 2);
    }
}
