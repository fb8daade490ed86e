//! One task per watched resource and namespace: kube's list+watch state machine with
//! backoff, feeding [`Update`]s to the discoverer loop.
//!
//! kube's watcher re-lists on a `410 Gone` watch event, re-watches from the last
//! resourceVersion when a watch connection ends, and keeps retrying (with backoff) when list
//! or watch requests fail. One case it retries forever without re-listing is a watch
//! *request* answered with HTTP 410; this task then restarts the watcher, which re-lists.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use tokio::sync::mpsc;

use super::config::ResourceSelector;

/// One watcher event, tagged with the kind and the id of the watcher within its store.
/// Boxed: the objects are kilobytes and the channel holds up to 1024 of them.
pub(crate) enum Update {
    Pod(usize, Box<Event<Pod>>),
    Service(usize, Box<Event<Service>>),
    Endpoints(usize, Box<Event<Endpoints>>),
    EndpointSlice(usize, Box<Event<EndpointSlice>>),
    Node(usize, Box<Event<Node>>),
    Namespace(usize, Box<Event<Namespace>>),
    ReplicaSet(usize, Box<Event<ReplicaSet>>),
    Job(usize, Box<Event<Job>>),
}

/// Runs list+watch of `api` until `tx` is closed; never returns early on API errors.
pub(crate) async fn watch<K>(
    api: Api<K>,
    sel: ResourceSelector,
    id: usize,
    wrap: fn(usize, Box<Event<K>>) -> Update,
    tx: mpsc::Sender<Update>,
) where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let wc = watcher::Config {
        label_selector: sel.label,
        field_selector: sel.field,
        ..Default::default()
    };
    let kind = std::any::type_name::<K>()
        .rsplit("::")
        .next()
        .unwrap_or("object");
    loop {
        let mut stream = watcher::watcher(api.clone(), wc.clone())
            .default_backoff()
            .boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(ev) => {
                    if tx.send(wrap(id, Box::new(ev))).await.is_err() {
                        return;
                    }
                }
                Err(watcher::Error::WatchStartFailed(kube::Error::Api(status)))
                    if status.code == 410 =>
                {
                    tracing::warn!(%kind, "watch request answered 410 Gone; re-listing");
                    break;
                }
                Err(e) => {
                    tracing::warn!(%kind, error = %e, "kubernetes watch error; retrying");
                }
            }
            if tx.is_closed() {
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
        // Bound the restart rate should a server keep answering 410 right after a list.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
