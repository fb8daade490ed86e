//! Incremental rebuilds checked against a full rebuild after every batch of random events.

use super::*;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::Event;
use proptest::prelude::*;
use serde_json::json;

#[derive(Clone, Debug)]
enum Obj {
    Pod {
        ns: u8,
        name: u8,
        node: Option<u8>,
        ip: bool,
        label: u8,
    },
    Service {
        ns: u8,
        name: u8,
        label: u8,
    },
    Endpoints {
        ns: u8,
        name: u8,
        pods: Vec<u8>,
        port: u16,
    },
    Slice {
        ns: u8,
        name: u8,
        svc: u8,
        pods: Vec<u8>,
    },
    Node {
        name: u8,
        label: u8,
        addr: bool,
    },
    Namespace {
        name: u8,
        label: u8,
    },
    /// A ReplicaSet (`job: false`) or Job named `o<name>`, owned by a Deployment or
    /// CronJob `top<top>` when `top` is set.
    Owner {
        ns: u8,
        name: u8,
        job: bool,
        top: Option<u8>,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Apply(Obj),
    Delete(Obj),
    /// Re-list of one kind keeping objects whose name index is in the mask.
    Relist(u8, u8),
    /// Rebuild now (ends a batch).
    Flush,
}

fn ns(i: u8) -> String {
    format!("ns{}", i % 2)
}

fn to_update(obj: &Obj, delete: bool) -> Update {
    macro_rules! ev {
        ($v:expr) => {
            Box::new(if delete {
                Event::Delete($v)
            } else {
                Event::Apply($v)
            })
        };
    }
    let parse = |v: serde_json::Value| v;
    match obj {
        Obj::Pod {
            ns: n,
            name,
            node,
            ip,
            label,
        } => {
            let mut v = parse(json!({
                "metadata": {"namespace": ns(*n), "name": format!("p{}", name % 4),
                             "labels": {"app": format!("v{label}")}},
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}, {"containerPort": 9090}]}]},
                "status": {}
            }));
            if let Some(node) = node {
                v["spec"]["nodeName"] = json!(format!("n{}", node % 2));
            }
            if *ip {
                v["status"]["podIP"] = json!(format!("10.0.{n}.{name}"));
            }
            // The label picks the controller kind: ReplicaSet or Job `o<name % 2>`.
            let kind = if label % 2 == 0 { "ReplicaSet" } else { "Job" };
            v["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": kind,
                "name": format!("o{}", name % 2), "uid": "u", "controller": true}]);
            let p: Pod = serde_json::from_value(v).expect("pod");
            Update::Pod(0, ev!(p))
        }
        Obj::Service { ns: n, name, label } => {
            let s: Service = serde_json::from_value(json!({
                "metadata": {"namespace": ns(*n), "name": format!("s{}", name % 2),
                             "labels": {"tier": format!("t{label}")}},
                "spec": {"ports": [{"port": 80}]}
            }))
            .expect("service");
            Update::Service(0, ev!(s))
        }
        Obj::Endpoints {
            ns: n,
            name,
            pods,
            port,
        } => {
            let addrs: Vec<serde_json::Value> = pods
                .iter()
                .map(|p| {
                    json!({"ip": format!("10.0.{n}.{p}"), "targetRef":
                    {"kind": "Pod", "namespace": ns(*n), "name": format!("p{}", p % 4)}})
                })
                .collect();
            let e: Endpoints = serde_json::from_value(json!({
                "metadata": {"namespace": ns(*n), "name": format!("s{}", name % 2)},
                "subsets": [{"addresses": addrs, "ports": [{"port": port % 3 + 8080}]}]
            }))
            .expect("endpoints");
            Update::Endpoints(0, ev!(e))
        }
        Obj::Slice {
            ns: n,
            name,
            svc,
            pods,
        } => {
            let eps: Vec<serde_json::Value> = pods
                .iter()
                .map(|p| json!({"addresses": [format!("10.0.{n}.{p}")], "nodeName": format!("n{}", p % 2),
                    "targetRef": {"kind": "Pod", "namespace": ns(*n), "name": format!("p{}", p % 4)}}))
                .collect();
            let e: EndpointSlice = serde_json::from_value(json!({
                "metadata": {"namespace": ns(*n), "name": format!("sl{}", name % 2),
                             "labels": {"kubernetes.io/service-name": format!("s{}", svc % 2)}},
                "addressType": "IPv4", "endpoints": eps, "ports": [{"port": 8080}]
            }))
            .expect("slice");
            Update::EndpointSlice(0, ev!(e))
        }
        Obj::Node { name, label, addr } => {
            let mut v = json!({"metadata": {"name": format!("n{}", name % 2),
                               "labels": {"zone": format!("z{label}")}}, "status": {}});
            if *addr {
                v["status"]["addresses"] =
                    json!([{"type": "InternalIP", "address": format!("192.168.0.{name}")}]);
            }
            let n: Node = serde_json::from_value(v).expect("node");
            Update::Node(0, ev!(n))
        }
        Obj::Owner {
            ns: n,
            name,
            job,
            top,
        } => {
            let mut v =
                json!({"metadata": {"namespace": ns(*n), "name": format!("o{}", name % 2)}});
            if let Some(t) = top {
                let kind = if *job { "CronJob" } else { "Deployment" };
                v["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": kind,
                    "name": format!("top{t}"), "uid": "u", "controller": true}]);
            }
            if *job {
                let j: Job = serde_json::from_value(v).expect("job");
                Update::Job(0, ev!(j))
            } else {
                let r: ReplicaSet = serde_json::from_value(v).expect("replicaset");
                Update::ReplicaSet(0, ev!(r))
            }
        }
        Obj::Namespace { name, label } => {
            let n: Namespace = serde_json::from_value(json!({
                "metadata": {"name": ns(*name), "labels": {"team": format!("t{label}")}}
            }))
            .expect("namespace");
            Update::Namespace(0, ev!(n))
        }
    }
}

fn obj() -> impl Strategy<Value = Obj> {
    prop_oneof![
        (
            0..2u8,
            0..4u8,
            proptest::option::of(0..2u8),
            any::<bool>(),
            0..2u8
        )
            .prop_map(|(ns, name, node, ip, label)| Obj::Pod {
                ns,
                name,
                node,
                ip,
                label
            }),
        (0..2u8, 0..2u8, 0..2u8).prop_map(|(ns, name, label)| Obj::Service { ns, name, label }),
        (
            0..2u8,
            0..2u8,
            proptest::collection::vec(0..4u8, 0..3),
            0..3u16
        )
            .prop_map(|(ns, name, pods, port)| Obj::Endpoints {
                ns,
                name,
                pods,
                port
            }),
        (
            0..2u8,
            0..2u8,
            0..2u8,
            proptest::collection::vec(0..4u8, 0..3)
        )
            .prop_map(|(ns, name, svc, pods)| Obj::Slice {
                ns,
                name,
                svc,
                pods
            }),
        (0..2u8, 0..2u8, any::<bool>()).prop_map(|(name, label, addr)| Obj::Node {
            name,
            label,
            addr
        }),
        (0..2u8, 0..2u8).prop_map(|(name, label)| Obj::Namespace { name, label }),
        (0..2u8, 0..2u8, any::<bool>(), proptest::option::of(0..2u8))
            .prop_map(|(ns, name, job, top)| Obj::Owner { ns, name, job, top }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => obj().prop_map(Op::Apply),
        2 => obj().prop_map(Op::Delete),
        1 => (0..8u8, any::<u8>()).prop_map(|(k, m)| Op::Relist(k, m)),
        2 => Just(Op::Flush),
    ]
}

/// Re-lists kind `k`: Init, the current objects whose name matches the mask, InitDone.
fn relist(stores: &mut Stores, dirty: &mut Dirty, role: Role, k: u8, mask: u8) {
    fn keep(name: &Option<String>, mask: u8) -> bool {
        let last = name
            .as_deref()
            .and_then(|n| n.bytes().last())
            .unwrap_or(b'0');
        mask & (1 << (last.wrapping_sub(b'0') % 8)) != 0
    }
    macro_rules! run {
        ($store:ident, $variant:ident) => {{
            let objs: Vec<_> = stores
                .$store
                .iter()
                .filter(|o| keep(&o.metadata.name, mask))
                .cloned()
                .collect();
            apply(
                stores,
                dirty,
                role,
                Update::$variant(0, Box::new(Event::Init)),
            );
            for o in objs {
                apply(
                    stores,
                    dirty,
                    role,
                    Update::$variant(0, Box::new(Event::InitApply(o))),
                );
            }
            apply(
                stores,
                dirty,
                role,
                Update::$variant(0, Box::new(Event::InitDone)),
            );
        }};
    }
    match k {
        0 => run!(pods, Pod),
        1 => run!(services, Service),
        2 => run!(endpoints, Endpoints),
        3 => run!(endpoint_slices, EndpointSlice),
        4 => run!(nodes, Node),
        5 => run!(namespaces, Namespace),
        6 => run!(replica_sets, ReplicaSet),
        _ => run!(jobs, Job),
    }
}

/// Options with all metadata attached; node metadata as given.
fn meta(attach_node: bool) -> Options {
    Options {
        attach_node,
        attach_namespace: true,
        attach_job: true,
        attach_deployment: true,
        attach_cronjob: true,
    }
}

fn check(role: Role, opts: Options, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut stores = Stores::default();
    for s in [
        stores.pods.add_watcher(),
        stores.services.add_watcher(),
        stores.endpoints.add_watcher(),
        stores.endpoint_slices.add_watcher(),
        stores.nodes.add_watcher(),
        stores.namespaces.add_watcher(),
        stores.replica_sets.add_watcher(),
        stores.jobs.add_watcher(),
    ] {
        prop_assert_eq!(s, 0);
    }
    let mut dirty = Dirty::default();
    let mut sent = BTreeMap::new();
    let mut consumer: BTreeMap<String, TargetGroup> = BTreeMap::new();
    for op in ops.iter().chain([&Op::Flush]) {
        match op {
            Op::Apply(o) => apply(&mut stores, &mut dirty, role, to_update(o, false)),
            Op::Delete(o) => apply(&mut stores, &mut dirty, role, to_update(o, true)),
            Op::Relist(k, m) => relist(&mut stores, &mut dirty, role, *k, *m),
            Op::Flush => {
                for g in rebuild(role, &stores, &opts, &mut dirty, &mut sent) {
                    if g.targets.is_empty() {
                        prop_assert!(
                            consumer.remove(&g.source).is_some(),
                            "removal of unknown {}",
                            g.source
                        );
                    } else {
                        consumer.insert(g.source.clone(), g);
                    }
                }
                let full = build_all(role, &stores, &opts);
                prop_assert_eq!(&sent, &full);
                prop_assert_eq!(&consumer, &full);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn incremental_matches_full_rebuild(ops in proptest::collection::vec(op(), 1..40)) {
        check(Role::Pod, Options::default(), &ops)?;
        check(Role::Pod, meta(false), &ops)?;
        check(Role::Pod, meta(true), &ops)?;
        check(Role::Endpoints, meta(true), &ops)?;
        check(Role::Endpoints, meta(false), &ops)?;
        check(Role::EndpointSlice, meta(false), &ops)?;
        check(Role::Service, meta(false), &ops)?;
        check(Role::Node, Options::default(), &ops)?;
    }
}
