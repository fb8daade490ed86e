//! Kubernetes service discovery (kube-rs list+watch).
//!
//! [`Discoverer`] watches the objects a role needs (pods, services, endpoints, endpoint
//! slices, nodes, and namespaces/ReplicaSets/Jobs for `attach_metadata`; per namespace when
//! `namespaces` is set), keeps them in local stores and, after every batch of watch events,
//! rebuilds the groups those events can affect (all of them after a re-list) and sends the
//! ones that changed. A group that disappeared is sent once with no targets. Source names
//! and `__meta_kubernetes_*` labels are Prometheus's.
//!
//! Nothing is sent until every watcher has completed its first list (as Prometheus waits for
//! its informers' caches), so endpoints never appear without their pods' and services'
//! labels. A re-list (after `410 Gone`, a dropped watch or an API server restart) replaces a
//! store's contents atomically at its end, so only objects truly gone produce removals.
//!
//! ```no_run
//! # async fn demo() {
//! use argus::discovery::kubernetes::{KubernetesSdConfig, run};
//! let cfg: KubernetesSdConfig =
//!     serde_yaml_ng::from_str("role: pod\napi_server: http://127.0.0.1:8001\n").unwrap();
//! cfg.validate().unwrap();
//! let (tx, mut rx) = tokio::sync::mpsc::channel(16);
//! tokio::spawn(run(cfg, tx));
//! while let Some(groups) = rx.recv().await {
//!     for g in groups {
//!         println!("{}: {} targets", g.source, g.targets.len());
//!     }
//! }
//! # }
//! ```

mod client;
mod endpoints;
mod endpointslice;
mod groups;
mod labels;
mod node;
mod pod;
mod service;
mod store;
mod watch;

pub use crate::config::kubernetes::{
    AttachMetadata, Authorization, BasicAuth, KubernetesSdConfig, NamespaceDiscovery,
    SelectorConfig, TlsConfig,
};

use crate::config::kubernetes::{self as config, Role};
use crate::discovery::TargetGroup;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::path::PathBuf;
use store::Stores;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use watch::Update;

/// Errors of Kubernetes discovery setup (watch errors are retried, never returned).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `kubernetes_sd_configs` entry is invalid.
    #[error("invalid kubernetes_sd_config: {0}")]
    Config(String),
    /// The client configuration (kubeconfig, in-cluster account) could not be loaded.
    #[error("cannot configure the Kubernetes client: {0}")]
    ClientConfig(String),
    /// A credentials or namespace file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be created.
    #[error("cannot create the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

impl From<crate::config::kubernetes::InvalidSdConfig> for Error {
    fn from(e: crate::config::kubernetes::InvalidSdConfig) -> Self {
        Error::Config(e.0)
    }
}

/// Role options the builders need.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Options {
    /// `attach_metadata.node`.
    pub(crate) attach_node: bool,
    /// `attach_metadata.namespace`.
    pub(crate) attach_namespace: bool,
    /// `attach_metadata.deployment`.
    pub(crate) attach_deployment: bool,
    /// `attach_metadata.cronjob`.
    pub(crate) attach_cronjob: bool,
    /// `attach_metadata.job`.
    pub(crate) attach_job: bool,
}

/// How long to wait for all first lists before sending what is known anyway.
const SYNC_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// A configured Kubernetes discoverer. Create with [`Discoverer::new`], then [`run`](Self::run).
pub struct Discoverer {
    client: Client,
    cfg: KubernetesSdConfig,
    role: Role,
    own_namespace: Option<String>,
}

/// Aborts the watcher tasks when the discoverer stops (or its future is dropped).
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

impl Discoverer {
    /// Validates `cfg` and builds the API client. Must be called inside a Tokio runtime.
    pub async fn new(cfg: KubernetesSdConfig) -> Result<Self, Error> {
        cfg.validate()?;
        let role = cfg.parsed_role()?;
        let (kcfg, own_namespace) = client::kube_config(&cfg).await?;
        let client = Client::try_from(kcfg).map_err(Error::Client)?;
        Ok(Self {
            client,
            cfg,
            role,
            own_namespace,
        })
    }

    /// Namespaces to watch; `None` = all namespaces.
    fn namespaces(&self) -> Vec<Option<String>> {
        let mut names: Vec<Option<String>> = self
            .cfg
            .namespaces
            .names
            .iter()
            .cloned()
            .map(Some)
            .collect();
        if let Some(own) = &self.own_namespace {
            names.push(Some(own.clone()));
        }
        if names.is_empty() {
            names.push(None);
        }
        names
    }

    fn options(&self) -> Options {
        let with_pods = matches!(self.role, Role::Pod | Role::Endpoints | Role::EndpointSlice);
        Options {
            attach_node: self.cfg.attach_metadata.node
                && matches!(self.role, Role::Pod | Role::Endpoints | Role::EndpointSlice),
            attach_namespace: self.cfg.attach_metadata.namespace && self.role != Role::Node,
            attach_job: self.cfg.attach_metadata.job && with_pods,
            attach_deployment: self.cfg.attach_metadata.deployment && with_pods,
            attach_cronjob: self.cfg.attach_metadata.cronjob && with_pods,
        }
    }

    /// Watches the cluster and sends changed target groups on `tx` until `tx` is closed.
    /// API errors are logged and retried with backoff; they never end the loop.
    pub async fn run(self, tx: mpsc::Sender<Vec<TargetGroup>>) {
        let (utx, mut urx) = mpsc::channel::<Update>(1024);
        let mut stores = Stores::default();
        let tasks = Tasks(self.spawn_watchers(&mut stores, &utx));
        drop(utx);
        let opts = self.options();
        let mut sent: BTreeMap<String, TargetGroup> = BTreeMap::new();
        let mut dirty = groups::Dirty::default();
        let mut initial_done = false;
        let grace = tokio::time::sleep(SYNC_GRACE);
        tokio::pin!(grace);
        loop {
            let mut first = false;
            tokio::select! {
                _ = tx.closed() => break,
                () = &mut grace, if !initial_done => {
                    tracing::warn!(role = %self.cfg.role,
                        "kubernetes caches not synced after {SYNC_GRACE:?}; sending partial targets");
                    first = true;
                }
                u = urx.recv() => {
                    let Some(u) = u else { break };
                    groups::apply(&mut stores, &mut dirty, self.role, u);
                    // Take what is already queued too, so a burst becomes one update.
                    while let Ok(u) = urx.try_recv() {
                        groups::apply(&mut stores, &mut dirty, self.role, u);
                    }
                }
            }
            if !initial_done {
                if !first && !stores.synced() {
                    continue;
                }
                initial_done = true;
                first = true;
                dirty.mark_all();
            }
            if dirty.is_empty() {
                continue;
            }
            let diff = groups::rebuild(self.role, &stores, &opts, &mut dirty, &mut sent);
            // The first message is sent even when empty: it tells the consumer the initial
            // list is complete.
            if (!diff.is_empty() || first) && tx.send(diff).await.is_err() {
                break;
            }
        }
        drop(tasks);
    }

    fn spawn_watchers(
        &self,
        stores: &mut Stores,
        tx: &mpsc::Sender<Update>,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        let c = &self.client;
        let namespaces = self.namespaces();
        let want_pods = matches!(self.role, Role::Pod | Role::Endpoints | Role::EndpointSlice);
        let want_services = matches!(
            self.role,
            Role::Service | Role::Endpoints | Role::EndpointSlice
        );
        let want_nodes = self.role == Role::Node || self.options().attach_node;
        for ns in &namespaces {
            if want_pods {
                let id = stores.pods.add_watcher();
                tasks.push(tokio::spawn(watch::watch(
                    api::<Pod>(c, ns.as_deref()),
                    self.cfg.selector("pod"),
                    id,
                    Update::Pod,
                    tx.clone(),
                )));
            }
            if want_services {
                let id = stores.services.add_watcher();
                tasks.push(tokio::spawn(watch::watch(
                    api::<Service>(c, ns.as_deref()),
                    self.cfg.selector("service"),
                    id,
                    Update::Service,
                    tx.clone(),
                )));
            }
            if self.options().attach_deployment {
                let id = stores.replica_sets.add_watcher();
                tasks.push(tokio::spawn(watch::watch(
                    api::<ReplicaSet>(c, ns.as_deref()),
                    config::ResourceSelector::default(),
                    id,
                    Update::ReplicaSet,
                    tx.clone(),
                )));
            }
            if self.options().attach_cronjob {
                let id = stores.jobs.add_watcher();
                tasks.push(tokio::spawn(watch::watch(
                    api::<Job>(c, ns.as_deref()),
                    config::ResourceSelector::default(),
                    id,
                    Update::Job,
                    tx.clone(),
                )));
            }
            if self.role == Role::Endpoints {
                let id = stores.endpoints.add_watcher();
                tasks.push(tokio::spawn(watch::watch(
                    api::<Endpoints>(c, ns.as_deref()),
                    self.cfg.selector("endpoints"),
                    id,
                    Update::Endpoints,
                    tx.clone(),
                )));
            }
            if self.role == Role::EndpointSlice {
                let id = stores.endpoint_slices.add_watcher();
                tasks.push(tokio::spawn(watch::watch(
                    api::<EndpointSlice>(c, ns.as_deref()),
                    self.cfg.selector("endpointslice"),
                    id,
                    Update::EndpointSlice,
                    tx.clone(),
                )));
            }
        }
        if self.options().attach_namespace {
            let id = stores.namespaces.add_watcher();
            tasks.push(tokio::spawn(watch::watch(
                Api::<Namespace>::all(c.clone()),
                config::ResourceSelector::default(),
                id,
                Update::Namespace,
                tx.clone(),
            )));
        }
        if want_nodes {
            let id = stores.nodes.add_watcher();
            tasks.push(tokio::spawn(watch::watch(
                Api::<Node>::all(c.clone()),
                self.cfg.selector("node"),
                id,
                Update::Node,
                tx.clone(),
            )));
        }
        tasks
    }
}

fn api<K>(c: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(c.clone(), ns),
        None => Api::all(c.clone()),
    }
}

/// Validates `cfg`, then runs discovery until `tx` is closed. A setup error (bad config,
/// unreadable kubeconfig, no in-cluster account) is logged and ends the call.
pub async fn run(cfg: KubernetesSdConfig, tx: mpsc::Sender<Vec<TargetGroup>>) {
    match Discoverer::new(cfg).await {
        Ok(d) => d.run(tx).await,
        Err(e) => tracing::error!(error = %e, "kubernetes discovery cannot start"),
    }
}
